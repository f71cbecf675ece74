// SPDX-License-Identifier: GPL-2.0-only
/*
 * Spool segments (database.spool_dir/seg-*.zsp), read back at every replay:
 * zt_spool_decode. What decodes encodes to a segment that decodes to the
 * same records; what does not is -EBADMSG (so the replay moves it aside and
 * goes on), never another error, for an input of this size.
 *
 * Byte 0 picks how the rest is used, so that the fuzzer gets past the CRCs:
 *   % 3 == 0: the segment as it is;
 *   % 3 == 1: the segment with both CRCs made right;
 *   % 3 == 2: u32 record count, then the CBOR payload, which the harness
 *             compresses and wraps in a correct header.
 */
#include <errno.h>
#include <zlib.h>

#include "fuzz.h"
#include "records/spool.h"

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* The segment to decode, in a buffer of its own size. */
static uint8_t *make_segment(const uint8_t *data, size_t size, size_t *len)
{
	uint8_t mode = data[0] % 3, *seg;

	data++;
	size--;
	if (mode == 2) {
		uLongf clen;

		if (size < 4)
			return NULL;
		clen = compressBound(size - 4);
		seg = malloc(28 + clen);
		if (!seg || compress2(seg + 28, &clen, data + 4, size - 4, 1) != Z_OK)
			abort();
		memcpy(seg, "ZTSPOOL1", 8);
		memcpy(seg + 8, data, 4);
		be32(seg + 12, (uint32_t)(size - 4));
		be32(seg + 16, (uint32_t)clen);
		be32(seg + 20, (uint32_t)crc32(0, seg + 28, (uInt)clen));
		be32(seg + 24, (uint32_t)crc32(0, seg, 24));
		*len = 28 + clen;
		return seg;
	}
	seg = malloc(size ? size : 1);
	if (!seg)
		abort();
	memcpy(seg, data, size);
	if (mode == 1 && size >= 28) {
		be32(seg + 20, (uint32_t)crc32(0, seg + 28, (uInt)(size - 28)));
		be32(seg + 24, (uint32_t)crc32(0, seg, 24));
	}
	*len = size;
	return seg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zt_flow_record *recs = NULL, *again = NULL;
	size_t n = 0, n2 = 0, len = 0, inlen = 0;
	uint8_t *seg = NULL, *in;
	char why[256];
	int r;

	if (!size || !(in = make_segment(data, size, &inlen)))
		return 0;
	r = zt_spool_decode(in, inlen, &recs, &n, why, sizeof(why));
	free(in);
	if (r < 0) {
		FUZZ_CHECK(r == -EBADMSG, "error %d (%s) for a %zu-byte segment", r, why, inlen);
		FUZZ_CHECK(why[0], "refused without a reason");
		return 0;
	}
	FUZZ_CHECK(n > 0, "an empty segment decoded");
	FUZZ_CHECK(zt_spool_encode(recs, n, &seg, &len) == 0, "re-encoding %zu records", n);
	FUZZ_CHECK(zt_spool_decode(seg, len, &again, &n2, why, sizeof(why)) == 0,
		   "the re-encoded segment does not decode: %s", why);
	FUZZ_CHECK(n2 == n && !memcmp(again, recs, n * sizeof(*recs)),
		   "records changed through encode and decode");
	free(seg);
	free(again);
	free(recs);
	return 0;
}
