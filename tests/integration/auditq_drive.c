// SPDX-License-Identifier: GPL-2.0-only
/*
 * A driver for tests/integration/audit_journal.sh: one audit queue
 * (auditq.h) on a real PostgreSQL, put through a list of steps:
 *
 *   auditq_drive CONNINFO DIR MAX_BYTES STEP...
 *     post:N:KIND            N events of KIND (policy.violation, block.add
 *                            or anything else), subjects "TAG KIND i"
 *     raw:KIND:SUBJECT:DETAIL  one event with that detail as it is
 *     rate:N:PER_S:KIND      N events at PER_S a second; prints the most
 *                            bytes the journal's files (DIR/audit*.journal)
 *                            held on disk, sampled every 16 events
 *     drain:MS               zt_auditq_drain; prints its result
 *     wait-file:PATH         waits (up to 60 s) until PATH exists
 *     stats                  prints the queue's counters
 *
 * TAG is $AUDITQ_TAG (default "it"). One line per step on stdout,
 * key=value. Exit 0 when every step ran, 1 otherwise.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "records/auditq.h"

static const char *dir, *tag;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Bytes of the journal's files on disk: every audit*.journal in dir. */
static uint64_t disk_bytes(void)
{
	char p[4600];
	struct dirent *de;
	uint64_t n = 0;
	DIR *d = opendir(dir);

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		struct stat sb;

		if (strncmp(de->d_name, "audit", 5) || l < 8 ||
		    strcmp(de->d_name + l - 8, ".journal"))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (stat(p, &sb) == 0)
			n += (uint64_t)sb.st_size;
	}
	closedir(d);
	return n;
}

static int post_one(struct zt_auditq *q, const char *kind, unsigned long i)
{
	char subj[128], detail[512];

	if (!strcmp(kind, "policy.violation")) {
		snprintf(subj, sizeof(subj), "%s %s %lu", tag, kind, i);
		snprintf(detail, sizeof(detail),
			 "{\"verdict\":\"denied\",\"src\":\"198.18.1.1\",\"dst\":\"198.18.1.2\","
			 "\"dport\":%lu,\"protocol\":\"UDP\",\"tag\":\"%s\"}",
			 i % 65536, tag);
	} else if (!strncmp(kind, "block.", 6)) {
		/* blocks.cidr needs an address: the subject is one. */
		snprintf(subj, sizeof(subj), "198.19.%lu.%lu/32", (i >> 8) & 255, i & 255);
		snprintf(
			detail, sizeof(detail),
			"{\"kind\":\"manual\",\"source\":\"it\",\"reason\":\"%s %lu\",\"ttl_s\":0}",
			tag, i);
	} else {
		snprintf(subj, sizeof(subj), "%s %s %lu", tag, kind, i);
		snprintf(detail, sizeof(detail), "{\"i\":%lu}", i);
	}
	return zt_auditq_post(q, kind, tag, subj, detail);
}

static void print_stats(struct zt_auditq *q)
{
	struct zt_auditq_stats st;

	zt_auditq_get_stats(q, &st);
	printf("stats posted=%" PRIu64 " written=%" PRIu64 " refused=%" PRIu64 " dropped=%" PRIu64
	       " pending=%" PRIu64 " disk=%" PRIu64 "\n",
	       st.posted, st.written, st.refused, st.dropped, st.pending, disk_bytes());
}

int main(int argc, char **argv)
{
	struct zt_auditq *q = NULL;
	char err[1024] = "";
	int rc = 0;

	if (argc < 4) {
		fprintf(stderr, "usage: auditq_drive CONNINFO DIR MAX_BYTES STEP...\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	dir = argv[2];
	tag = getenv("AUDITQ_TAG") ? getenv("AUDITQ_TAG") : "it";
	if (zt_auditq_open(argv[1], dir, "it-node", strtoull(argv[3], NULL, 0), &q, err,
			   sizeof(err))) {
		fprintf(stderr, "auditq_drive: %s\n", err);
		return 1;
	}
	for (int a = 4; a < argc && rc == 0; a++) {
		char *s = argv[a];

		if (!strncmp(s, "post:", 5)) {
			unsigned long n = strtoul(s + 5, &s, 10), ok = 0;
			const char *kind = *s == ':' ? s + 1 : "it.event";

			for (unsigned long i = 0; i < n; i++)
				ok += post_one(q, kind, i) == 0;
			printf("post kind=%s n=%lu accepted=%lu\n", kind, n, ok);
		} else if (!strncmp(s, "raw:", 4)) {
			char *kind = s + 4, *subj = strchr(kind, ':'), *detail;

			if (!subj || !(detail = strchr(subj + 1, ':'))) {
				rc = 1;
				break;
			}
			*subj++ = '\0';
			*detail++ = '\0';
			printf("raw kind=%s r=%d\n", kind,
			       zt_auditq_post(q, kind, tag, subj, detail));
		} else if (!strncmp(s, "rate:", 5)) {
			unsigned long n = strtoul(s + 5, &s, 10), per_s, ok = 0, dropped = 0;
			uint64_t t0 = now_ns(), maxd = 0;
			const char *kind;

			per_s = *s == ':' ? strtoul(s + 1, &s, 10) : 1000;
			kind = *s == ':' ? s + 1 : "it.event";
			for (unsigned long i = 0; i < n; i++) {
				uint64_t due = t0 + (uint64_t)i * 1000000000ULL / per_s,
					 t = now_ns();

				if (due > t) {
					struct timespec ts = { 0, (long)(due - t) };

					nanosleep(&ts, NULL);
				}
				if (post_one(q, kind, i) == 0)
					ok++;
				else
					dropped++;
				if (i % 16 == 0) {
					uint64_t d = disk_bytes();

					maxd = d > maxd ? d : maxd;
				}
			}
			printf("rate kind=%s n=%lu accepted=%lu dropped=%lu max_disk=%" PRIu64
			       " ms=%" PRIu64 "\n",
			       kind, n, ok, dropped, maxd, (now_ns() - t0) / 1000000);
		} else if (!strncmp(s, "drain:", 6)) {
			uint64_t t0 = now_ns();
			int r = zt_auditq_drain(q, (unsigned int)strtoul(s + 6, NULL, 10));

			printf("drain r=%d ms=%" PRIu64 "\n", r, (now_ns() - t0) / 1000000);
		} else if (!strncmp(s, "wait-file:", 10)) {
			int i;

			for (i = 0; i < 600 && access(s + 10, F_OK) < 0; i++)
				usleep(100000);
			printf("wait-file found=%d\n", i < 600);
		} else if (!strcmp(s, "stats")) {
			print_stats(q);
		} else {
			fprintf(stderr, "auditq_drive: unknown step %s\n", s);
			rc = 1;
		}
	}
	zt_auditq_close(q);
	return rc;
}
