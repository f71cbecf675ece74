/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The largest single allocation made between alloc_peak_start() and now,
 * through ASan's malloc hook (unit tests always run under ASan). For tests
 * of "input must not size an allocation": under ASan a 4 GiB malloc often
 * succeeds (nothing is touched), so only the size shows the defect.
 */
#ifndef ZT_TEST_ALLOC_PEAK_H
#define ZT_TEST_ALLOC_PEAK_H

#include <stddef.h>

int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
					      void (*free_hook)(const volatile void *));

static volatile size_t alloc_peak;

static void alloc_peak_malloc(const volatile void *p, size_t n)
{
	if (n > alloc_peak)
		alloc_peak = n;
}

static void alloc_peak_free(const volatile void *p)
{
}

static inline void alloc_peak_start(void)
{
	static int installed;

	if (!installed)
		installed = __sanitizer_install_malloc_and_free_hooks(alloc_peak_malloc,
								      alloc_peak_free);
	alloc_peak = 0;
}

#endif
