// SPDX-License-Identifier: GPL-2.0-only
/*
 * Drift of block_notes: the reason texts blocklist (and allowlist) entries
 * point to by note_id. The agent interns each text once and never deletes
 * one, so what it wrote (or found pinned at start) is kept here, by id,
 * and the kernel map is held to it: a note deleted or changed with bpftool
 * is written back (an entry's reason would read as empty or as someone
 * else's text), one added outside is deleted. Under the blocklist's
 * lock, like every other writer of the map (a detector's block interns its
 * note on the thread that decided it).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "guard/blocklist.h"
#include "guard/blocklist_int.h"
#include "guard/drift.h"

#define NOTES_PIN "block_notes"

struct bl_note_rec {
	uint32_t id; /* 0: free (the agent never uses id 0) */
	char text[ZT_NOTE_LEN];
};

struct bl_notes {
	struct bl_note_rec *v;
	size_t cap, n; /* cap a power of two, n < cap / 2 */
};

static struct bl_note_rec *notes_find(const struct bl_notes *m, uint32_t id)
{
	if (!m || !m->cap)
		return NULL;
	for (size_t i = id & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		if (m->v[i].id == id)
			return &m->v[i];
		if (!m->v[i].id)
			return NULL;
	}
}

static int notes_put(struct bl_notes *m, uint32_t id, const char *text)
{
	struct bl_note_rec *r = notes_find(m, id);

	if (!r && (m->n + 1) * 2 > m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		struct bl_note_rec *v = calloc(cap, sizeof(*v)), *old = m->v;
		size_t ocap = m->cap;

		if (!v)
			return -ENOMEM;
		m->v = v;
		m->cap = cap;
		m->n = 0;
		for (size_t i = 0; i < ocap; i++)
			if (old[i].id)
				notes_put(m, old[i].id, old[i].text);
		free(old);
	}
	if (!r) {
		size_t i;

		for (i = id & (m->cap - 1); m->v[i].id; i = (i + 1) & (m->cap - 1))
			;
		r = &m->v[i];
		r->id = id;
		m->n++;
	}
	memset(r->text, 0, sizeof(r->text));
	snprintf(r->text, sizeof(r->text), "%s", text);
	return 0;
}

void bl_notes_remember(struct zt_blocklist *bl, uint32_t id, const char *text)
{
	if (!id)
		return;
	if (!bl->notes) {
		bl->notes = calloc(1, sizeof(*bl->notes));
		if (!bl->notes)
			return;
	}
	/* Out of memory: the note is not checked for drift, nothing else changes. */
	notes_put(bl->notes, id, text);
}

int bl_notes_load(struct zt_blocklist *bl)
{
	uint32_t key = 0, next;
	bool first = true;

	while (bpf_map_get_next_key(bl->fd_notes, first ? NULL : &key, &next) == 0) {
		struct zt_note note;

		first = false;
		key = next;
		if (bpf_map_lookup_elem(bl->fd_notes, &key, &note) == 0) {
			note.text[sizeof(note.text) - 1] = '\0';
			bl_notes_remember(bl, key, note.text);
		}
	}
	return 0;
}

void bl_notes_free(struct zt_blocklist *bl)
{
	if (bl->notes)
		free(bl->notes->v);
	free(bl->notes);
	bl->notes = NULL;
}

static void quote(const char *t, char *buf, size_t n)
{
	size_t o = 0;

	for (; *t && o + 3 < n; t++)
		buf[o++] = *t == '"' || *t == '\\' ? '\'' : *t;
	buf[o] = '\0';
}

/* One id of block_notes against what the agent wrote. */
static void check_key_held(struct zt_blocklist *bl, const uint8_t *key,
			   const struct zt_drift_hooks *h)
{
	const struct bl_note_rec *want;
	struct zt_note cur, put = { 0 };
	char subj[48], what[256], q1[ZT_NOTE_LEN + 1], q2[ZT_NOTE_LEN + 1];
	uint32_t id;
	bool has, fix;
	int r = 0;

	if (!bl || !h || !h->report)
		return;
	memcpy(&id, key, sizeof(id));
	want = notes_find(bl->notes, id);
	has = bpf_map_lookup_elem(bl->fd_notes, &id, &cur) == 0;
	if (has)
		cur.text[sizeof(cur.text) - 1] = '\0';
	if (!want && !has)
		return;
	if (want && has && !strncmp(cur.text, want->text, sizeof(cur.text)))
		return;
	snprintf(subj, sizeof(subj), "%s id %u", NOTES_PIN, id);
	fix = (!h->may || h->may(h->ctx, "blocklist")) && zt_drift_may(h, "blocklist", subj);
	if (!want) {
		quote(cur.text, q1, sizeof(q1));
		snprintf(what, sizeof(what), "note added outside the agent: \"%s\"", q1);
		if (fix && bpf_map_delete_elem(bl->fd_notes, &id) < 0)
			r = -errno;
	} else {
		quote(want->text, q2, sizeof(q2));
		if (has) {
			quote(cur.text, q1, sizeof(q1));
			snprintf(what, sizeof(what), "note changed: \"%s\"; put back: \"%s\"", q1,
				 q2);
		} else {
			snprintf(what, sizeof(what), "note deleted; put back: \"%s\"", q2);
		}
		snprintf(put.text, sizeof(put.text), "%s", want->text);
		if (fix && bpf_map_update_elem(bl->fd_notes, &id, &put, BPF_ANY) < 0)
			r = -errno;
	}
	if (r == -ENOENT && !want)
		return; /* gone meanwhile */
	h->report(h->ctx, "blocklist", subj, what, fix && r == 0, r);
}

/* The whole map both ways: what the kernel has, then what the agent wrote. */
static void check_held(struct zt_blocklist *bl, const struct zt_drift_hooks *h)
{
	uint32_t key = 0, next;
	bool first = true;
	size_t seen = 0, n = 0;

	if (!bl)
		return;
	while (bpf_map_get_next_key(bl->fd_notes, first ? NULL : &key, &next) == 0) {
		bool ours = notes_find(bl->notes, next) != NULL;

		first = false;
		key = next;
		seen += ours;
		check_key_held(bl, (const uint8_t *)&key, h);
		/* An added note deleted: the walk's place is gone, start over. */
		if (!ours && bpf_map_lookup_elem(bl->fd_notes, &key, &(struct zt_note){ 0 }) < 0)
			first = true, seen = 0;
		if (++n > 4 * (size_t)bl->max_notes + 16)
			break; /* a writer racing the walk: the next check goes on */
	}
	if (!bl->notes || seen == bl->notes->n)
		return;
	for (size_t i = 0; i < bl->notes->cap; i++)
		if (bl->notes->v[i].id)
			check_key_held(bl, (const uint8_t *)&bl->notes->v[i].id, h);
}

/* Under the blocklist's lock: an entry's note is written and remembered in one step. */
void zt_blocklist_notes_check_key(struct zt_blocklist *bl, const uint8_t *key,
				  const struct zt_drift_hooks *h)
{
	if (!bl)
		return;
	bl_lock(bl);
	check_key_held(bl, key, h);
	bl_unlock(bl);
}

void zt_blocklist_notes_check(struct zt_blocklist *bl, const struct zt_drift_hooks *h)
{
	if (!bl)
		return;
	bl_lock(bl);
	check_held(bl, h);
	bl_unlock(bl);
}

size_t zt_blocklist_notes_count(const struct zt_blocklist *bl)
{
	size_t n;

	bl_lock(bl);
	n = bl->notes ? bl->notes->n : 0;
	bl_unlock(bl);
	return n;
}
