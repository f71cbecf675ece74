// SPDX-License-Identifier: GPL-2.0-only
/*
 * CIDRs and listen addresses, as ztctl arguments, API fields and import lines
 * give them: zt_cidr_parse and zt_listen_parse. What parses must format back
 * to text that parses to the same prefix, with no host bits set, and the
 * text is the one inet_ntop writes.
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "fuzz.h"
#include "agent/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size), text[ZT_CIDR_STRLEN], ntop[INET6_ADDRSTRLEN] = "",
	     want[ZT_CIDR_STRLEN + 8] = "";
	struct sockaddr_storage ss;
	struct zt_cidr c, d;
	bool host_bits = false;

	if (zt_cidr_parse(s, &c, &host_bits) == 0) {
		size_t alen = c.family == AF_INET ? 4 : 16;

		FUZZ_CHECK(c.family == AF_INET || c.family == AF_INET6, "family %d", c.family);
		FUZZ_CHECK(c.prefixlen <= alen * 8, "prefix /%u", c.prefixlen);
		FUZZ_CHECK(zt_cidr_format(&c, text, sizeof(text)) == 0, "format of '%s'", s);
		/* The text is inet_ntop's (zt_cidr_format writes it without sprintf). */
		FUZZ_CHECK(inet_ntop(c.family, c.addr, ntop, sizeof(ntop)) &&
				   snprintf(want, sizeof(want), "%s/%u", ntop, c.prefixlen) > 0 &&
				   !strcmp(text, want),
			   "'%s' formats as '%s', inet_ntop gives '%s'", s, text, want);
		FUZZ_CHECK(zt_cidr_parse(text, &d, NULL) == 0, "'%s' -> '%s' does not parse", s,
			   text);
		FUZZ_CHECK(d.family == c.family && d.prefixlen == c.prefixlen &&
				   !memcmp(d.addr, c.addr, alen),
			   "'%s' -> '%s' is another prefix", s, text);
		d = c;
		zt_cidr_mask(&d);
		FUZZ_CHECK(!memcmp(d.addr, c.addr, sizeof(d.addr)), "'%s' keeps host bits", s);
		FUZZ_CHECK(zt_cidr_contains(&c, c.addr), "'%s' does not contain itself", s);
	}
	if (zt_listen_parse(s, &ss) == 0)
		FUZZ_CHECK(ss.ss_family == AF_INET || ss.ss_family == AF_INET6, "listen '%s'", s);
	free(s);
	return 0;
}
