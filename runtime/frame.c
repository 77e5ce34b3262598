/* SPDX-License-Identifier: MIT */
/*
 * Frame table: the resident budget, the policy behind it, kva slots.  Only
 * struct lp_frames and what its owner gave frames_init() are reached from
 * here (frame.h): never the vm, never the evictor but through the wake
 * callback it installed.
 */
#include "frame.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "prim.h"

/* The wake callback, read under fr->lock, called once it is dropped. */
struct fr_wake {
	void (*fn)(void *ctx);
	void *ctx;
};

/* Under fr->lock: the callback to call after the unlock if `want`. */
static struct fr_wake wake_if(const struct lp_frames *fr, bool want)
{
	if (!want)
		return (struct fr_wake){ NULL, NULL };
	return (struct fr_wake){ fr->wake, fr->wake_ctx };
}

static void wake_call(struct fr_wake w)
{
	if (w.fn)
		w.fn(w.ctx);
}

/* The policy clears a reference bit: unmap the page (through the evictor)
 * so that its next use faults and sets the bit again.  Under fr->lock. */
static bool host_clear_ref(struct lp_policy_host *h, uint32_t f)
{
	struct lp_frames *fr = h->ctx;
	struct lp_frame *fe = &fr->tab[f];

	if (!fe->page) {
		fr->ref[f] = 0;
		return true;
	}
	if (fr->sweep_left == 0)
		return false;
	fr->sweep_left--;
	fr->ref[f] = 0;
	if (!fe->busy && fr->nparkq < fr->n) {
		fe->busy = 1; /* the evictor parks it; it stays in the policy */
		fr->parkq[fr->nparkq++] = f;
	}
	return true;
}

/* The watermarks: keep free 1/32 of the budget, at least two readahead
 * windows, at most 256 frames and at most a quarter of the budget. */
static void set_watermarks(struct lp_frames *fr, uint32_t ra_max)
{
	uint32_t n = fr->n;

	fr->high = n / 32 > 2 * ra_max ? n / 32 : 2 * ra_max;
	if (fr->high > 256)
		fr->high = 256;
	if (fr->high > n / 4)
		fr->high = n / 4 ? n / 4 : 1;
	fr->low = fr->high / 2 ? fr->high / 2 : 1;
}

/* The kva area: one slot per frame, registered like the regions (same
 * protection bits), so that pages can be moved in and out without a
 * copy.  Without a userfaultfd (a forked child's table: its pages live in
 * another address space, and come here by copy), plain memory. */
static int map_kva(struct lp_frames *fr)
{
	return prim_uffd_area(fr->uffd, (size_t)fr->n << LP_PAGE_SHIFT,
			      UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP,
			      &fr->kva);
}

int frames_init(struct lp_frames *fr, const struct lp_frames_cfg *cfg)
{
	uint32_t n = cfg->n;
	int rc;

	memset(fr, 0, sizeof(*fr));
	pthread_mutex_init(&fr->lock, NULL);
	pthread_cond_init(&fr->cond, NULL);
	fr->n = n;
	fr->uffd = cfg->uffd;
	fr->stopping = cfg->stopping;
	fr->freezing = cfg->freezing;
	fr->st = cfg->st;
	if (!n)
		return 0;
	fr->pops = policy_find(cfg->policy ? cfg->policy : "clock");
	if (!fr->pops)
		return -ENOENT;
	fr->tab = calloc(n, sizeof(*fr->tab));
	fr->free = malloc(n * sizeof(*fr->free));
	fr->ref = calloc(n, 1);
	fr->parkq = malloc(n * sizeof(*fr->parkq));
	fr->relq = malloc(2 * (size_t)n * sizeof(*fr->relq));
	fr->held = malloc(n * sizeof(*fr->held));
	if (!fr->tab || !fr->free || !fr->ref || !fr->parkq || !fr->relq ||
	    !fr->held)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		fr->free[i] = n - 1 - i;
	fr->nfree = n;
	set_watermarks(fr, cfg->ra_max);
	fr->host.ref = fr->ref;
	fr->host.clear_ref = host_clear_ref;
	fr->host.ctx = fr;
	rc = policy_create(fr->pops, &fr->pol, n, &fr->host, cfg->seed);
	if (rc)
		return rc;
	return map_kva(fr);
}

void frames_fini(struct lp_frames *fr)
{
	if (fr->pol)
		policy_destroy(fr->pops, fr->pol);
	if (fr->kva)
		prim_uffd_area_free(fr->uffd, fr->kva, (size_t)fr->n << LP_PAGE_SHIFT);
	free(fr->tab);
	free(fr->free);
	free(fr->held);
	free(fr->ref);
	free(fr->parkq);
	free(fr->relq);
	free(fr->ovq);
	pthread_mutex_destroy(&fr->lock);
	pthread_cond_destroy(&fr->cond);
	memset(fr, 0, sizeof(*fr));
}

/* This process's tables with a wake callback, for kicks across a shared
 * budget (share_kick()).  Taken before any table's lock. */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lp_frames *reg_head;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;

/* In a child process after fork(): none of the tables is its own (their
 * evictors stayed in the parent), and the lock may have been held by a
 * thread that did not come along. */
static void reg_after_fork(void)
{
	pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;

	reg_lock = fresh;
	reg_head = NULL;
}

static void reg_init(void)
{
	(void)pthread_atfork(NULL, NULL, reg_after_fork);
}

void frames_set_wake(struct lp_frames *fr, void (*wake)(void *ctx), void *ctx)
{
	(void)pthread_once(&reg_once, reg_init);
	pthread_mutex_lock(&reg_lock);
	struct lp_frames **pp = &reg_head;
	while (*pp && *pp != fr)
		pp = &(*pp)->reg_next;
	if (wake && !*pp) {
		fr->reg_next = reg_head;
		reg_head = fr;
	} else if (!wake && *pp) {
		*pp = fr->reg_next;
		fr->reg_next = NULL;
	}
	pthread_mutex_lock(&fr->lock);
	fr->wake = wake;
	fr->wake_ctx = ctx;
	pthread_mutex_unlock(&fr->lock);
	pthread_mutex_unlock(&reg_lock);
}

/* The program's thread whose fault the calling thread serves
 * (frames_serving()), and the depth of its frames_beyond() calls. */
static _Thread_local pid_t serving;
static _Thread_local unsigned beyond;

/*
 * LAZYPAGE_BUDGET_TRACE=FILE: a line is appended to FILE (created 0600 if
 * missing, never through a symlink) each time a shared budget's use
 * reaches a new high 64 frames or more beyond its cap, saying why that
 * frame came in (why: a fault while nothing could be evicted, one let
 * through while the evictor waited for its thread, pages taken over
 * from a forked child, a member's floor) and in what state the table
 * was.  A debugging aid for the slack the README documents.
 */
static int trace_fd = -1;
static pthread_once_t trace_once = PTHREAD_ONCE_INIT;

static void trace_init(void)
{
	const char *path = getenv("LAZYPAGE_BUDGET_TRACE");
	if (path && *path)
		trace_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
}

/* Under fr->lock, with fr->share: now frames of the share are in use. */
static void trace_beyond(const struct lp_frames *fr, const char *why, uint64_t now)
{
	static _Atomic uint64_t traced;
	uint64_t cap = fr->share->cap, last = atomic_load(&traced);

	if (now < cap + 64 || now < last + 64)
		return;
	pthread_once(&trace_once, trace_init);
	if (trace_fd < 0 || !atomic_compare_exchange_strong(&traced, &last, now))
		return;
	dprintf(trace_fd,
		"pid %d: %lu frames of a cap of %lu (%u members, %u short), "
		"%s: table %lu used (%lu without a frame, floor %lu), stuck %d, "
		"open to any %u, thread %d served%s\n",
		getpid(), (unsigned long)now, (unsigned long)cap,
		atomic_load(&fr->share->members), atomic_load(&fr->share->short_waiters),
		why, (unsigned long)fr->used, (unsigned long)fr->overflow,
		(unsigned long)fr->share_floor, fr->stuck, fr->open_any, serving,
		beyond ? " beyond" : "");
}

/* Under fr->lock: delta frames more (or fewer) in use, for why (the
 * trace's words, trace_beyond()). */
static void account_why(struct lp_frames *fr, int delta, const char *why)
{
	fr->used = (uint64_t)((int64_t)fr->used + delta);
	if (fr->used > fr->peak)
		fr->peak = fr->used;
	if (fr->share && delta) {
		if (fr->share_mine)
			atomic_fetch_add(fr->share_mine, (uint64_t)(int64_t)delta);
		uint64_t now = atomic_fetch_add(&fr->share->used, (uint64_t)(int64_t)delta) +
			       (uint64_t)(int64_t)delta;
		uint64_t pk = atomic_load(&fr->share->peak);
		while (now > pk && !atomic_compare_exchange_weak(&fr->share->peak, &pk, now))
			;
		if (delta > 0 && now > fr->share->cap)
			trace_beyond(fr, why, now);
	}
}

static void account(struct lp_frames *fr, int delta)
{
	account_why(fr, delta, "a frame of its table, within its floor");
}

/* Under fr->lock: the shared budget is spent and our use is at least our
 * floor (others must not be starved by us: we wait for our evictor). */
static bool share_full(const struct lp_frames *fr)
{
	return fr->share && fr->used >= fr->share_floor &&
	       atomic_load(&fr->share->used) >= fr->share->cap;
}

/* A member's fair part of share: its cap over its members, never below
 * floor. */
static uint64_t share_fair(const struct frame_share *share, uint64_t floor)
{
	uint32_t m = atomic_load(&share->members);
	uint64_t fair = share->cap / (m ? m : 1);
	return fair > floor ? fair : floor;
}

/*
 * Idle members.  Victims are chosen by each member's own policy; across
 * the members, a table whose faults took no frame for FR_IDLE_MS while
 * another's wait for room gives way, down to a quarter of its floor: its
 * pages are the coldest of the tree, as a policy over all of them would
 * find (a shell waiting for its pipeline held 67 of 128 frames while its
 * `seq` thrashed in 32: 250 000 faults, minutes instead of a second).
 * Woken, its faults wait below its fair part, and the others give way in
 * turn.
 */
#define FR_IDLE_MS 50

/* (Read without fr's lock by share_kick(): a hint.) */
static bool fr_idle(const struct lp_frames *fr, uint64_t now)
{
	return !__atomic_load_n(&fr->waiting, __ATOMIC_RELAXED) &&
	       now - __atomic_load_n(&fr->last_take_ns, __ATOMIC_RELAXED) >
		       FR_IDLE_MS * 1000000ull;
}

static uint64_t idle_keep(const struct lp_frames *fr)
{
	return fr->share_floor / 4;
}

/* A fault of fr waits for room in share: kick the evictors of this
 * process's other members that are idle, and, when fr is below its fair
 * part (fair != 0), those beyond theirs: they give frames up
 * (frames_excess()).  (Members in other processes, pagers of programs
 * executed, are balanced by their budget threads.)  Without any table's
 * lock. */
static void share_kick(const struct lp_frames *fr, const struct frame_share *share,
		       uint64_t fair)
{
	uint64_t now = prim_now_ns();

	pthread_mutex_lock(&reg_lock);
	for (struct lp_frames *m = reg_head; m; m = m->reg_next) {
		if (m == fr || __atomic_load_n(&m->share, __ATOMIC_RELAXED) != share ||
		    !m->wake)
			continue;
		/* (Read without m's lock: a hint; its evictor looks again.) */
		uint64_t used = __atomic_load_n(&m->used, __ATOMIC_RELAXED);
		if ((fair && used > fair) || (used > idle_keep(m) && fr_idle(m, now)))
			m->wake(m->wake_ctx);
	}
	pthread_mutex_unlock(&reg_lock);
}

/* Under fr->lock, about to wait for room: count us among the share's
 * waiters while the share is what we wait for (*on, as note_short()). */
static void note_waiting(struct lp_frames *fr, struct frame_share **on)
{
	bool now = fr->share && share_full(fr);
	if (*on && (!now || *on != fr->share)) {
		atomic_fetch_sub(&(*on)->waiters, 1);
		*on = NULL;
	}
	if (now && !*on) {
		*on = fr->share;
		atomic_fetch_add(&(*on)->waiters, 1);
	}
}

/* Under fr->lock, waiting for room: whether fr waits below its fair part
 * of a full share (others must give up frames for it). */
static bool waits_short(const struct lp_frames *fr)
{
	return share_full(fr) && fr->used < share_fair(fr->share, fr->share_floor);
}

/* Under fr->lock, about to wait for room: count us among the share's
 * short waiters while we are one (*on: the share we are counted in), and
 * return the share whose members to kick (share_kick(), after the
 * unlock; fair: our fair part), or NULL. */
static const struct frame_share *note_short(struct lp_frames *fr,
					    struct frame_share **on, uint64_t *fair)
{
	bool now = waits_short(fr);
	if (*on && (!now || *on != fr->share)) {
		atomic_fetch_sub(&(*on)->short_waiters, 1);
		*on = NULL;
	}
	if (!now)
		return NULL;
	if (!*on) {
		*on = fr->share;
		atomic_fetch_add(&(*on)->short_waiters, 1);
	}
	*fair = share_fair(fr->share, fr->share_floor);
	return fr->share;
}

/* The wait over: no longer among the short waiters (on) nor the
 * waiters (won). */
static void end_short(struct frame_share **on, struct frame_share **won)
{
	if (*on)
		atomic_fetch_sub(&(*on)->short_waiters, 1);
	*on = NULL;
	if (*won)
		atomic_fetch_sub(&(*won)->waiters, 1);
	*won = NULL;
}

void frames_share(struct lp_frames *fr, struct frame_share *share,
		  _Atomic uint64_t *mine)
{
	pthread_mutex_lock(&fr->lock);
	if (fr->share == share && fr->share_mine == mine) {
		pthread_mutex_unlock(&fr->lock);
		return;
	}
	if (fr->share) {
		if (fr->share_mine)
			atomic_fetch_sub(fr->share_mine, fr->used);
		atomic_fetch_sub(&fr->share->used, fr->used);
		if (fr->share != share)
			atomic_fetch_sub(&fr->share->members, 1);
	}
	if (share && share != fr->share)
		atomic_fetch_add(&share->members, 1);
	fr->share = share;
	fr->share_mine = share ? mine : NULL;
	if (share) {
		if (mine)
			atomic_fetch_add(mine, fr->used);
		atomic_fetch_add(&share->used, fr->used);
	}
	pthread_cond_broadcast(&fr->cond);
	pthread_mutex_unlock(&fr->lock);
}

void frame_share_drop(struct frame_share *share, _Atomic uint64_t *mine)
{
	atomic_fetch_sub(&share->used, atomic_exchange(mine, 0));
}

void frames_share_floor(struct lp_frames *fr, uint64_t floor)
{
	pthread_mutex_lock(&fr->lock);
	bool lower = floor < fr->share_floor;
	fr->share_floor = floor;
	if (lower)
		pthread_cond_broadcast(&fr->cond);
	pthread_mutex_unlock(&fr->lock);
}

uint64_t frames_share_room(const struct lp_frames *fr)
{
	if (!fr->share)
		return UINT64_MAX;
	uint64_t sum = atomic_load(&fr->share->used), cap = fr->share->cap;
	return cap > sum ? cap - sum : 0;
}

uint64_t frames_room(struct lp_frames *fr)
{
	pthread_mutex_lock(&fr->lock);
	uint64_t room = fr->n > fr->used ? fr->n - fr->used : 0;
	uint64_t left = frames_share_room(fr);
	if (left < room)
		room = left;
	pthread_mutex_unlock(&fr->lock);
	return room;
}

void frames_serving(pid_t tid)
{
	serving = tid;
}

pid_t frames_served(void)
{
	return serving;
}

void frames_beyond(bool on)
{
	if (on)
		beyond++;
	else if (beyond)
		beyond--;
}

/* Under fr->lock: whether the calling thread's take may go beyond the
 * budget now (frames_open(), frames_beyond()). */
static bool opened(const struct lp_frames *fr)
{
	if (beyond || fr->open_any)
		return true;
	for (unsigned i = 0; serving && i < FR_OPEN_MAX; i++)
		if (fr->open[i].n && fr->open[i].tid == serving)
			return true;
	return false;
}

void frames_wait_room(struct lp_frames *fr)
{
	pthread_mutex_lock(&fr->lock);
	struct frame_share *on = NULL, *won = NULL;
	while (fr->n && share_full(fr) && !fr->stuck && !opened(fr) &&
	       !atomic_load(fr->stopping) && !atomic_load(fr->freezing)) {
		fr->waiting++;
		struct fr_wake w = wake_if(fr, true);
		uint64_t fair = 0;
		const struct frame_share *kick = note_short(fr, &on, &fair);
		note_waiting(fr, &won);
		const struct frame_share *share = won;
		pthread_mutex_unlock(&fr->lock);
		wake_call(w);
		if (share)
			share_kick(fr, share, kick ? fair : 0);
		pthread_mutex_lock(&fr->lock);
		struct timespec ts;
		prim_deadline(&ts, 2);
		pthread_cond_timedwait(&fr->cond, &fr->lock, &ts);
		fr->waiting--;
	}
	end_short(&on, &won);
	pthread_mutex_unlock(&fr->lock);
}

void frames_open(struct lp_frames *fr, pid_t tid, bool open)
{
	unsigned i, hole = FR_OPEN_MAX;

	pthread_mutex_lock(&fr->lock);
	for (i = 0; i < FR_OPEN_MAX && fr->open[i].tid != tid; i++)
		if (!fr->open[i].n && hole == FR_OPEN_MAX)
			hole = i;
	if (open) {
		if (i == FR_OPEN_MAX && hole < FR_OPEN_MAX) {
			fr->open[hole].tid = tid;
			i = hole;
		}
		if (i < FR_OPEN_MAX)
			fr->open[i].n++;
		else
			fr->open_any++;
		pthread_cond_broadcast(&fr->cond);
	} else if (i < FR_OPEN_MAX && fr->open[i].n) {
		if (!--fr->open[i].n)
			fr->open[i].tid = 0;
	} else if (fr->open_any) {
		fr->open_any--;
	}
	pthread_mutex_unlock(&fr->lock);
}


uint64_t frames_excess(struct lp_frames *fr, bool beyond_cap)
{
	uint64_t over = 0;

	pthread_mutex_lock(&fr->lock);
	uint64_t keep = idle_keep(fr);
	if (fr->share && fr->used > keep) {
		uint64_t floor = fr->share_floor;
		uint64_t sum = atomic_load(&fr->share->used), cap = fr->share->cap;
		if (beyond_cap && sum > cap)
			over = sum - cap;
		/* Some member below its fair part waits for room: what we
		 * hold beyond ours goes (the victims of each member chosen by
		 * its own policy: a global choice approximated by making the
		 * largest give way first). */
		uint64_t fair = share_fair(fr->share, fr->share_floor);
		if (atomic_load(&fr->share->short_waiters) && fr->used > fair &&
		    fr->used - fair > over)
			over = fr->used - fair;
		/* Some member waits and we are idle: all but what we keep. */
		if (atomic_load(&fr->share->waiters) && fr_idle(fr, prim_now_ns())) {
			floor = keep;
			if (fr->used - keep > over)
				over = fr->used - keep;
		}
		if (fr->used <= floor)
			over = 0;
		else if (over > fr->used - floor)
			over = fr->used - floor;
	}
	pthread_mutex_unlock(&fr->lock);
	return over;
}

uint64_t frames_lent(struct lp_frames *fr)
{
	pthread_mutex_lock(&fr->lock);
	uint64_t n = fr->n;
	if (fr->share) {
		uint64_t sum = atomic_load(&fr->share->used), cap = fr->share->cap;
		uint64_t lent = fr->used + (cap > sum ? cap - sum : 0);
		/* (never below our floor: share_full() lets us have that) */
		if (lent < fr->share_floor)
			lent = fr->share_floor;
		if (lent < n)
			n = lent;
	}
	pthread_mutex_unlock(&fr->lock);
	return n;
}

/* Under fr->lock: f goes back to the free list; waiters may take it.  A
 * frame actually free again, whoever freed it (an eviction, an unmap, a
 * handler giving one back), ends the stuck state: room exists, and pages
 * that came in beyond the budget may be adopted.  Returns whether it ended
 * it, with such pages to adopt: the caller wakes the evictor for them
 * (after the unlock), as it may not free a frame of its own to see it. */
static bool push_free(struct lp_frames *fr, uint32_t f)
{
	bool unstuck = fr->stuck;

	fr->free[fr->nfree++] = f;
	/* (atomic: the evictor reads it without the lock) */
	__atomic_store_n(&fr->stuck, false, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&fr->cond);
	return unstuck && fr->nov;
}

/* Under fr->lock: f's kva slot, if it holds content, is to be released. */
static void queue_release(struct lp_frames *fr, uint32_t f)
{
	if (fr->tab[f].kva == KVA_FULL) {
		fr->tab[f].kva = KVA_RELEASE;
		fr->relq[fr->nrelq++] = f;
	}
}

/* Under fr->lock: f, held by pg, joins the policy (a miss, an adoption,
 * or back from the evictor); its use counts as a reference. */
static void join_policy(struct lp_frames *fr, uint32_t f, struct lp_page *pg)
{
	fr->tab[f].page = pg;
	fr->ref[f] = 1;
	fr->pops->insert(fr->pol, f, pg->vpn);
	fr->tab[f].in_policy = 1;
}

/* Under fr->lock, no frame free: whether the caller must stop waiting, and
 * with what (*rc); a stuck table lets it go on beyond the budget. */
static bool give_up_wait(struct lp_frames *fr, int *rc)
{
	if (atomic_load(fr->stopping)) {
		*rc = -ESHUTDOWN;
		return true;
	}
	if (atomic_load(fr->freezing)) {
		*rc = -EAGAIN;
		return true;
	}
	if (fr->stuck || opened(fr)) {
		/* Nothing can be evicted (swap full, writes failing): keep the
		 * page anyway, beyond the budget, rather than lose data or
		 * stop the program. */
		fr->overflow++;
		account_why(fr, 1, fr->stuck ? "nothing could be evicted"
					     : "its thread awaited by the evictor");
		*rc = 0;
		return true;
	}
	return false;
}

/* Under fr->lock, a frame just taken: the evictor's round that refills the
 * reserve for it (the next to begin), or 0 when none is due. */
static void take_ticket(const struct lp_frames *fr, uint64_t *ticket)
{
	if (ticket)
		*ticket = fr->nfree < fr->low ? fr->rounds_begun + 1 : 0;
}

int frame_get(struct lp_frames *fr, uint32_t *f, uint64_t *ticket)
{
	bool waited = false;
	int rc;

	*f = LP_NO_FRAME;
	pthread_mutex_lock(&fr->lock);
	if (!fr->n) {
		account(fr, 1);
		pthread_mutex_unlock(&fr->lock);
		return 0;
	}
	struct frame_share *on = NULL, *won = NULL;
	while (fr->nfree == 0 || share_full(fr)) {
		if (give_up_wait(fr, &rc)) {
			end_short(&on, &won);
			pthread_mutex_unlock(&fr->lock);
			return rc;
		}
		if (!waited) {
			waited = true;
			st_add(fr->st, C_FRAME_WAIT, 1);
		}
		fr->waiting++;
		struct fr_wake w = wake_if(fr, true);
		uint64_t fair = 0;
		const struct frame_share *kick = note_short(fr, &on, &fair);
		note_waiting(fr, &won);
		const struct frame_share *share = won;
		pthread_mutex_unlock(&fr->lock);
		wake_call(w);
		if (share)
			share_kick(fr, share, kick ? fair : 0);
		pthread_mutex_lock(&fr->lock);
		if ((fr->nfree == 0 || share_full(fr)) && !fr->stuck && !opened(fr) &&
		    !atomic_load(fr->stopping) && !atomic_load(fr->freezing)) {
			/* (Others' frames going back to the shared budget do
			 * not signal us: look again now and then.) */
			struct timespec ts;
			prim_deadline(&ts, 2);
			pthread_cond_timedwait(&fr->cond, &fr->lock, &ts);
		}
		fr->waiting--;
	}
	end_short(&on, &won);
	*f = fr->free[--fr->nfree];
	account(fr, 1);
	if (fr->share) /* (idle members: only a share asks) */
		__atomic_store_n(&fr->last_take_ns, prim_now_ns(), __ATOMIC_RELAXED);
	take_ticket(fr, ticket);
	struct fr_wake w = wake_if(fr, fr->nfree < fr->low);
	pthread_mutex_unlock(&fr->lock);
	wake_call(w);
	return 0;
}

int frame_try_get(struct lp_frames *fr, uint32_t *f, uint64_t *ticket)
{
	int rc = -EAGAIN;

	pthread_mutex_lock(&fr->lock);
	if (!fr->n) {
		*f = LP_NO_FRAME;
		account(fr, 1);
		rc = 0;
	} else if (fr->nfree > 1 && !fr->waiting && !share_full(fr)) {
		/* Leave one for a fault; the evictor refills behind us. */
		*f = fr->free[--fr->nfree];
		account(fr, 1);
		take_ticket(fr, ticket);
		rc = 0;
	}
	struct fr_wake w = wake_if(fr, fr->n && fr->nfree < fr->low);
	pthread_mutex_unlock(&fr->lock);
	wake_call(w);
	return rc;
}

void frame_await_victims(struct lp_frames *fr, uint64_t ticket)
{
	if (!ticket)
		return;
	pthread_mutex_lock(&fr->lock);
	/* 500 waits of 2 ms: a kick lost to a round already under way is
	 * made again; an evictor that never comes costs a second, not a
	 * hang. */
	for (unsigned i = 0; i < 500 && fr->rounds_done < ticket &&
			     !atomic_load(fr->stopping) &&
			     !atomic_load(fr->freezing);
	     i++) {
		fr->awaiting++;
		struct fr_wake w = wake_if(fr, true);
		pthread_mutex_unlock(&fr->lock);
		wake_call(w);
		pthread_mutex_lock(&fr->lock);
		if (fr->rounds_done < ticket) {
			struct timespec ts;
			prim_deadline(&ts, 2);
			pthread_cond_timedwait(&fr->cond, &fr->lock, &ts);
		}
		fr->awaiting--;
	}
	pthread_mutex_unlock(&fr->lock);
}

uint64_t frame_round_begin(struct lp_frames *fr)
{
	return ++fr->rounds_begun;
}

void frame_round_done(struct lp_frames *fr, uint64_t ticket)
{
	pthread_mutex_lock(&fr->lock);
	fr->rounds_done = ticket;
	if (fr->awaiting)
		pthread_cond_broadcast(&fr->cond);
	pthread_mutex_unlock(&fr->lock);
}

void frame_kva_release(struct lp_frames *fr, uint32_t f)
{
	if (f == LP_NO_FRAME)
		return;
	pthread_mutex_lock(&fr->lock);
	queue_release(fr, f);
	pthread_mutex_unlock(&fr->lock);
}

uint32_t frames_hold(struct lp_frames *fr, uint32_t want, uint32_t counted)
{
	if (!fr->n)
		return 0;
	pthread_mutex_lock(&fr->lock);
	while (fr->nheld < want && fr->nfree > 0)
		fr->held[fr->nheld++] = fr->free[--fr->nfree];
	while (fr->nheld > want)
		(void)push_free(fr, fr->held[--fr->nheld]);
	uint32_t acc = fr->nheld < counted ? fr->nheld : counted;
	account(fr, (int)acc - (int)fr->nheld_counted);
	fr->nheld_counted = acc;
	uint32_t n = fr->nheld;
	/* (No wake: only the evictor holds, and it sees the shortage.) */
	pthread_mutex_unlock(&fr->lock);
	return n;
}

void frame_put(struct lp_frames *fr, uint32_t f)
{
	bool wake = false;

	pthread_mutex_lock(&fr->lock);
	if (f == LP_NO_FRAME) {
		if (fr->n && fr->overflow)
			fr->overflow--;
	} else {
		wake = push_free(fr, f);
	}
	account(fr, -1);
	struct fr_wake w = wake_if(fr, wake);
	pthread_mutex_unlock(&fr->lock);
	wake_call(w);
}

void frame_install(struct lp_frames *fr, uint32_t f, struct lp_page *pg)
{
	if (f == LP_NO_FRAME)
		return;
	pthread_mutex_lock(&fr->lock);
	join_policy(fr, f, pg);
	/* A fault waiting for a frame: the evictor may have found nothing to
	 * evict a moment ago (this frame was held while it was being filled,
	 * readahead): tell it there is a candidate now. */
	struct fr_wake w = wake_if(fr, fr->waiting > 0);
	pthread_mutex_unlock(&fr->lock);
	wake_call(w);
}

void frame_touch(struct lp_frames *fr, uint32_t f)
{
	if (f == LP_NO_FRAME)
		return;
	pthread_mutex_lock(&fr->lock);
	fr->ref[f] = 1;
	/* hit is optional: a policy that reads the bits needs no call. */
	if (fr->tab[f].in_policy && fr->pops->hit)
		fr->pops->hit(fr->pol, f);
	pthread_mutex_unlock(&fr->lock);
}

void frame_release(struct lp_frames *fr, uint32_t f)
{
	if (f == LP_NO_FRAME) {
		frame_put(fr, f);
		return;
	}
	bool wake = false;
	pthread_mutex_lock(&fr->lock);
	struct lp_frame *fe = &fr->tab[f];
	if (fe->in_policy) {
		fr->pops->remove(fr->pol, f);
		fe->in_policy = 0;
	}
	fe->page = NULL;
	fr->ref[f] = 0;
	queue_release(fr, f);
	if (!fe->busy)
		wake = push_free(fr, f);
	account(fr, -1);
	struct fr_wake w = wake_if(fr, wake);
	pthread_mutex_unlock(&fr->lock);
	wake_call(w);
}

void frame_idle(struct lp_frames *fr, uint32_t f)
{
	pthread_mutex_lock(&fr->lock);
	struct lp_frame *fe = &fr->tab[f];
	fe->busy = 0;
	if (!fe->page)
		(void)push_free(fr, f); /* the evictor: it sees for itself */
	else if (!fe->in_policy)
		join_policy(fr, f, fe->page);
	pthread_mutex_unlock(&fr->lock);
}

void frame_overflow(struct lp_frames *fr, int delta)
{
	pthread_mutex_lock(&fr->lock);
	fr->overflow = (uint64_t)((int64_t)fr->overflow + delta);
	account_why(fr, delta, "a forked child's own page counted");
	pthread_mutex_unlock(&fr->lock);
}

void frame_set_page(struct lp_frames *fr, uint32_t f, struct lp_page *pg)
{
	if (f == LP_NO_FRAME)
		return;
	pthread_mutex_lock(&fr->lock);
	fr->tab[f].page = pg;
	pthread_mutex_unlock(&fr->lock);
}

void frame_overflow_note(struct lp_frames *fr, uint64_t vpn)
{
	pthread_mutex_lock(&fr->lock);
	if (fr->nov == fr->capov) {
		uint32_t cap = fr->capov ? 2 * fr->capov : 64;
		uint64_t *q = realloc(fr->ovq, cap * sizeof(*q));
		if (q) {
			fr->ovq = q;
			fr->capov = cap;
		}
	}
	/* No memory: that page stays beyond the budget until unmapped. */
	if (fr->nov < fr->capov)
		fr->ovq[fr->nov++] = vpn;
	pthread_mutex_unlock(&fr->lock);
}

int frame_overflow_next(struct lp_frames *fr, uint64_t *vpn)
{
	int rc = -EAGAIN;

	pthread_mutex_lock(&fr->lock);
	/* Not `stuck`: free frames are room whatever that says (it may have
	 * been raised for a waiter just after an unmap freed frames).  Free
	 * frames go to waiters first, unless the shared budget keeps them
	 * waiting: our pages beyond the budget count in its sum, and only
	 * once they are adopted (the free frames taken) does the evictor
	 * see the shortage and bring the sum down.  Waiting for the
	 * waiters to go first left 127 frames free, a fault waiting for
	 * ever, and the program stopped (a process_vm_writev into pinned
	 * pages, under --mem 512K). */
	if (fr->nov && (!fr->waiting || share_full(fr)) && fr->nfree >= fr->low &&
	    fr->nfree > 0) {
		*vpn = fr->ovq[--fr->nov];
		rc = 0;
	}
	pthread_mutex_unlock(&fr->lock);
	return rc;
}

int frame_adopt(struct lp_frames *fr, struct lp_page *pg)
{
	int rc = -EAGAIN;

	pthread_mutex_lock(&fr->lock);
	if (fr->nfree) {
		uint32_t f = fr->free[--fr->nfree];
		/* Counted in `used` since it came in: only the kind changes;
		 * a child's inherited page counts from now on. */
		if (pg->flags & PGF_SHARED_IN)
			account_why(fr, 1, "a forked child's inherited page counted");
		else if (fr->overflow)
			fr->overflow--;
		pg->flags &= (uint16_t)~PGF_SHARED_IN;
		join_policy(fr, f, pg);
		pg->frame = f;
		rc = 0;
	}
	pthread_mutex_unlock(&fr->lock);
	return rc;
}

bool frame_overflow_pending(struct lp_frames *fr)
{
	pthread_mutex_lock(&fr->lock);
	bool any = fr->nov > 0;
	pthread_mutex_unlock(&fr->lock);
	return any;
}
