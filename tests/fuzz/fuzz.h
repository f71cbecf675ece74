/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Shared by the fuzz harnesses (tests/fuzz/fuzz_*.c). Each harness is one
 * LLVMFuzzerTestOneInput over one parser that takes input across a trust
 * boundary. It is built twice: with clang's libFuzzer for `make fuzz`, and
 * with tests/fuzz/replay.c (gcc, ASan + UBSan) for `make test`, which runs
 * every checked-in corpus and regression input through it.
 *
 * FUZZ_CHECK states a property the code must keep (a round trip, an
 * invariant); a violation aborts, so the fuzzer records it as a crash.
 */
#ifndef ZT_FUZZ_H
#define ZT_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond, ...)                                                                 \
	do {                                                                                  \
		if (!(cond)) {                                                                \
			fprintf(stderr, "%s:%d: property violated: %s: ", __FILE__, __LINE__, \
				#cond);                                                       \
			fprintf(stderr, __VA_ARGS__);                                         \
			fputc('\n', stderr);                                                  \
			abort();                                                              \
		}                                                                             \
	} while (0)

/* A NUL-terminated copy of data (the parsers under test take C strings). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	if (size)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

static char fuzz_dir[128];

static inline int fuzz_rm(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
	remove(p);
	return 0;
}

static inline void fuzz_tmpdir_remove(void)
{
	nftw(fuzz_dir, fuzz_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/*
 * A private directory for one harness process, removed at exit: under
 * $ZT_FUZZ_TMP when set (the scripts set it and remove it afterwards, also
 * after a crash, where exit handlers do not run), else on tmpfs, so fsync
 * costs nothing.
 */
static inline const char *fuzz_tmpdir(const char *tag)
{
	const char *parent = getenv("ZT_FUZZ_TMP");
	char *dir = fuzz_dir;

	if (dir[0])
		return dir;
	snprintf(dir, sizeof(fuzz_dir), "%s/zt-fuzz-%s.XXXXXX", parent ? parent : "/dev/shm", tag);
	if (!mkdtemp(dir)) {
		snprintf(dir, sizeof(fuzz_dir), "/tmp/zt-fuzz-%s.XXXXXX", tag);
		if (!mkdtemp(dir))
			abort();
	}
	atexit(fuzz_tmpdir_remove);
	return dir;
}

#endif
