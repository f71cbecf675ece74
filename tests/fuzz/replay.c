// SPDX-License-Identifier: GPL-2.0-only
/*
 * Replays inputs through a fuzz harness without libFuzzer: `make test` builds
 * each tests/fuzz/fuzz_*.c with this main (gcc, ASan + UBSan) and runs the
 * checked-in corpus and every regression input. Arguments are files or
 * directories (their regular files, in name order). Exit 0 when every input
 * ran; a crash or a violated property aborts the process.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL, *exact;
	size_t n = 0, cap = 0;

	if (!f) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		size_t got;

		if (n == cap) {
			cap = cap ? cap * 2 : 4096;
			buf = realloc(buf, cap);
			if (!buf)
				abort();
		}
		got = fread(buf + n, 1, cap - n, f);
		if (!got)
			break;
		n += got;
	}
	fclose(f);
	/* An exactly sized copy: ASan sees a read one byte past the input. */
	exact = malloc(n ? n : 1);
	if (!exact)
		abort();
	if (n)
		memcpy(exact, buf, n);
	free(buf);
	fprintf(stderr, "replay: %s (%zu bytes)\n", path, n);
	LLVMFuzzerTestOneInput(exact, n);
	free(exact);
	return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
	size_t ran = 0;
	int bad = 0;

	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		struct stat st;

		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			bad = 1;
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			struct dirent **ents;
			int n = scandir(argv[i], &ents, NULL, by_name);

			for (int k = 0; k < n; k++) {
				char p[4096];
				struct stat fst;

				snprintf(p, sizeof(p), "%s/%s", argv[i], ents[k]->d_name);
				if (ents[k]->d_name[0] != '.' && stat(p, &fst) == 0 &&
				    S_ISREG(fst.st_mode)) {
					bad |= run_file(p) < 0;
					ran++;
				}
				free(ents[k]);
			}
			free(ents);
		} else {
			bad |= run_file(argv[i]) < 0;
			ran++;
		}
	}
	printf("replayed %zu inputs%s\n", ran, bad ? " (some could not be read)" : "");
	return bad;
}
