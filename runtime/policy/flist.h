/* SPDX-License-Identifier: MIT */
/*
 * Doubly linked lists of frame numbers, for policies: the links live in
 * arrays indexed by frame (shared by every list of one policy, since a
 * frame is on at most one list at a time), a list is a head plus a count.
 */
#ifndef LP_FLIST_H
#define LP_FLIST_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#define FL_NIL UINT32_MAX

struct flinks {
	uint32_t *prev, *next;
	uint8_t *on;          /* which list a frame is on (0 = none) */
};

struct flist {
	uint32_t head;        /* oldest */
	uint32_t tail;        /* newest */
	uint32_t count;
	uint8_t id;           /* nonzero list id */
};

static inline int flinks_init(struct flinks *l, uint32_t n)
{
	l->prev = malloc(n * sizeof(uint32_t));
	l->next = malloc(n * sizeof(uint32_t));
	l->on = calloc(n, 1);
	return l->prev && l->next && l->on ? 0 : -12; /* -ENOMEM */
}

static inline void flinks_fini(struct flinks *l)
{
	free(l->prev);
	free(l->next);
	free(l->on);
}

static inline void flist_init(struct flist *q, uint8_t id)
{
	q->head = q->tail = FL_NIL;
	q->count = 0;
	q->id = id;
}

static inline bool flist_has(const struct flinks *l, const struct flist *q,
			     uint32_t f)
{
	return l->on[f] == q->id;
}

static inline void flist_push(struct flinks *l, struct flist *q, uint32_t f)
{
	l->prev[f] = q->tail;
	l->next[f] = FL_NIL;
	if (q->tail != FL_NIL)
		l->next[q->tail] = f;
	else
		q->head = f;
	q->tail = f;
	q->count++;
	l->on[f] = q->id;
}

/* Insert f just before `at` (at == FL_NIL: at the tail). */
static inline void flist_insert_before(struct flinks *l, struct flist *q,
				       uint32_t at, uint32_t f)
{
	if (at == FL_NIL) {
		flist_push(l, q, f);
		return;
	}
	uint32_t p = l->prev[at];
	l->prev[f] = p;
	l->next[f] = at;
	l->prev[at] = f;
	if (p != FL_NIL)
		l->next[p] = f;
	else
		q->head = f;
	q->count++;
	l->on[f] = q->id;
}

static inline void flist_del(struct flinks *l, struct flist *q, uint32_t f)
{
	uint32_t p = l->prev[f], n = l->next[f];

	if (p != FL_NIL)
		l->next[p] = n;
	else
		q->head = n;
	if (n != FL_NIL)
		l->prev[n] = p;
	else
		q->tail = p;
	q->count--;
	l->on[f] = 0;
}

static inline uint32_t flist_pop(struct flinks *l, struct flist *q)
{
	uint32_t f = q->head;

	if (f != FL_NIL)
		flist_del(l, q, f);
	return f;
}

static inline void flist_move_tail(struct flinks *l, struct flist *q, uint32_t f)
{
	flist_del(l, q, f);
	flist_push(l, q, f);
}

#endif /* LP_FLIST_H */
