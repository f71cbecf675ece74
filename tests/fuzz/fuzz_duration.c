// SPDX-License-Identifier: GPL-2.0-only
/*
 * Durations and sizes (--ttl, configuration values): zt_duration_parse and
 * zt_size_parse. A parsed duration formats to text that parses to the same
 * number of nanoseconds.
 */
#include "fuzz.h"
#include "agent/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size), text[64];
	uint64_t ns, ns2, bytes;

	if (zt_duration_parse(s, &ns) == 0) {
		FUZZ_CHECK(zt_duration_format(ns, text, sizeof(text)) == 0, "format %llu",
			   (unsigned long long)ns);
		FUZZ_CHECK(zt_duration_parse(text, &ns2) == 0 && ns2 == ns,
			   "'%s' = %llu ns -> '%s' does not read back", s, (unsigned long long)ns,
			   text);
	}
	zt_size_parse(s, &bytes);
	free(s);
	return 0;
}
