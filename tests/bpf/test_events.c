// SPDX-License-Identifier: GPL-2.0-only
/*
 * BPF test: the ring-buffer consumer (src/guard/events.c) runs at nice
 * ZT_EVENTS_NICE, on its own thread only (the caller's stays as it was),
 * over a real BPF ring buffer, and stops cleanly.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cmocka.h>

#include <bpf/bpf.h>

#include "guard/events.h"

/* The nice of thread tid (field 19 of its stat), or 100 when unreadable. */
static int thread_nice(long tid)
{
	char path[64], buf[1024], *p;
	FILE *f;
	size_t n;
	int field = 2, nice = 100;

	snprintf(path, sizeof(path), "/proc/self/task/%ld/stat", tid);
	f = fopen(path, "re");
	if (!f)
		return 100;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* after the command name, which may hold spaces */
	if (!p)
		return 100;
	for (p = strtok(p + 1, " "); p; p = strtok(NULL, " "))
		if (++field == 19) {
			nice = atoi(p);
			break;
		}
	return nice;
}

/* The nice of the one thread other than the caller's; 100 when there is none or several. */
static int other_thread_nice(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	long self = syscall(SYS_gettid), other = 0;
	int n = 0;

	if (!d)
		return 100;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && atol(e->d_name) != self) {
			other = atol(e->d_name);
			n++;
		}
	closedir(d);
	return n == 1 ? thread_nice(other) : 100;
}

static void test_consumer_priority(void **state)
{
	int fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "zt_test_rb", 0, 0, 16 * 4096, NULL);
	struct zt_events *ev = NULL;
	int before = getpriority(PRIO_PROCESS, 0), nice = 100;

	assert_true(fd >= 0);
	assert_int_equal(zt_events_init(&ev, fd), 0);
	assert_int_equal(zt_events_start(ev), 0);
	for (int i = 0; i < 200 && nice != ZT_EVENTS_NICE; i++) {
		usleep(5000);
		nice = other_thread_nice();
	}
	assert_int_equal(nice, ZT_EVENTS_NICE);
	/* The caller's thread (the daemon's loop) keeps its own. */
	assert_int_equal(thread_nice(syscall(SYS_gettid)), before);
	zt_events_stop(ev);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_consumer_priority),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
