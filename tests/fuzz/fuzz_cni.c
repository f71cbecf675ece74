// SPDX-License-Identifier: GPL-2.0-only
/*
 * What a container runtime hands ztagent-cni: the network configuration on
 * stdin (zt_cni_conf_parse, prevResult through zt_cni_prev_parse and
 * zt_cni_prev_addrs), and the same bytes as CNI_ARGS (zt_cni_args_parse) and
 * as a queued DEL record (zt_cni_spool_parse). The text of prevResult found
 * by hand (what ADD echoes) is exactly the object json-c read, and every
 * refusal is a CNI error with a message.
 */
#include "fuzz.h"
#include "cni/cni.h"
#include "seg/cnispool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zt_cni_conf c;
	struct zt_cni_err e = { 0 };
	struct zt_cni_args a;
	struct zt_cni_del d;
	char *s = fuzz_cstr(data, size), err[512];

	if (zt_cni_conf_parse((const char *)data, size, false, &c, &e) == 0) {
		FUZZ_CHECK(zt_cni_version_ok(c.version), "version '%s'", c.version);
		if (c.prev) {
			char *text = malloc(c.prev_len + 1), addrs[1024];
			struct zt_cni_prev *p = malloc(sizeof(*p));
			json_object *again;
			size_t n;

			if (!text || !p)
				abort();
			memcpy(text, c.prev_text, c.prev_len);
			text[c.prev_len] = '\0';
			again = json_tokener_parse(text);
			FUZZ_CHECK(again && json_object_equal(again, c.prev),
				   "the echoed prevResult '%.200s' is not the one parsed", text);
			json_object_put(again);
			if (zt_cni_prev_parse(c.prev, "eth0", p, &e) == 0) {
				FUZZ_CHECK(p->n_ifs <= ZT_CNI_MAX_IFACES &&
						   p->n_ips <= ZT_CNI_MAX_IPS,
					   "counts");
				if (zt_cni_prev_addrs(p, addrs, sizeof(addrs), &n, &e) == 0)
					FUZZ_CHECK(n >= 1 && n <= 16 &&
							   strlen(addrs) < sizeof(addrs),
						   "%zu addresses", n);
			}
			free(p);
			free(text);
		}
		zt_cni_conf_free(&c);
	} else {
		FUZZ_CHECK(e.code > 0 && e.msg[0], "a refusal without a code or message");
		FUZZ_CHECK(!c.root, "a refused configuration kept its tree");
	}
	if (zt_cni_args_parse(s, &a, &e) < 0)
		FUZZ_CHECK(e.code == 4 && e.msg[0], "CNI_ARGS refused with code %d", e.code);
	if (zt_cni_spool_parse((const char *)data, size, &d, err, sizeof(err)) == 0)
		FUZZ_CHECK(d.container_id[0] && d.ifname[0], "empty ids accepted");
	free(s);
	return 0;
}
