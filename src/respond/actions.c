// SPDX-License-Identifier: GPL-2.0-only
/* Blocks written on the thread that decided them (see actions.h). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "agent/util.h"
#include "respond/actions.h"

struct zt_actions {
	pthread_t loop_thread;
	zt_block_write_fn write;
	zt_block_done_fn done;
	void *ctx;
	pthread_mutex_t lock; /* st */
	struct zt_actions_stats st;
};

int zt_actions_new(zt_block_write_fn write, zt_block_done_fn done, void *ctx,
		   struct zt_actions **out)
{
	struct zt_actions *a;

	*out = NULL;
	if (!write)
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->loop_thread = pthread_self();
	a->write = write;
	a->done = done;
	a->ctx = ctx;
	pthread_mutex_init(&a->lock, NULL);
	*out = a;
	return 0;
}

void zt_actions_free(struct zt_actions *a)
{
	if (!a)
		return;
	pthread_mutex_destroy(&a->lock);
	free(a);
}

int zt_actions_block(struct zt_actions *a, const struct zt_block_action *b)
{
	struct zt_block_action c = *b;
	char err[256] = "";
	uint64_t now;
	int r;

	c.path = pthread_equal(pthread_self(), a->loop_thread) ? ZT_BP_LOOP : ZT_BP_DIRECT;
	c.write_ns = zt_now_mono_ns();
	r = a->write(a->ctx, &c, err, sizeof(err));
	now = zt_now_mono_ns();
	pthread_mutex_lock(&a->lock);
	if (r)
		a->st.failed++;
	else
		a->st.written++;
	if (c.path == ZT_BP_DIRECT)
		a->st.direct++;
	pthread_mutex_unlock(&a->lock);
	if (a->done)
		a->done(a->ctx, &c, r, now > c.decided_ns ? now - c.decided_ns : 0, err);
	return r;
}

void zt_actions_get_stats(struct zt_actions *a, struct zt_actions_stats *st)
{
	pthread_mutex_lock(&a->lock);
	*st = a->st;
	pthread_mutex_unlock(&a->lock);
}
