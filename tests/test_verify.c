/* SPDX-License-Identifier: MIT */
/*
 * Verify mode (LP_CFG_VERIFY): a page whose content comes back different
 * from what left memory is counted and reported at its address; a run
 * without corruption reports nothing.
 *
 * Corruption is injected behind the runtime's back (white-box: this test
 * links the internal library): a byte flipped in a page's swap slot, in a
 * parked page's kva slot, and two evicted pages' slots exchanged (the
 * shape of the mremap bug of issue 9: a page gets another page's data).
 */
#include <pthread.h>
#include <sched.h>
#include <sys/wait.h>
#include <time.h>

#include "common.h"
#include "api.h"
#include "fork.h"
#include "vm.h"

#define NPAGES 64u

/* ---- stderr, captured ---------------------------------------------------- */

static int saved_err = -1;
static char cap_path[64];

static void capture_start(void)
{
	snprintf(cap_path, sizeof(cap_path), "/tmp/lp-verify-XXXXXX");
	int fd = mkstemp(cap_path);
	cr_assert(fd >= 0);
	fflush(stderr);
	saved_err = dup(2);
	dup2(fd, 2);
	close(fd);
}

/* Stop capturing; the captured text (malloc'd). */
static char *capture_end(void)
{
	fflush(stderr);
	dup2(saved_err, 2);
	close(saved_err);
	FILE *f = fopen(cap_path, "r");
	cr_assert(f);
	char *buf = calloc(1, 65536);
	size_t n = fread(buf, 1, 65535, f);
	buf[n] = 0;
	fclose(f);
	unlink(cap_path);
	fprintf(stderr, "---- captured stderr ----\n%s-------------------------\n", buf);
	return buf;
}

/* ---- helpers ------------------------------------------------------------- */

struct pinfo {
	bool have;
	uint8_t state, backing;
	uint16_t flags;
	uint32_t frame;
	uint64_t slot;
};

static struct pinfo page_info(struct lp_vm *vm, const void *addr)
{
	uint64_t vpn = (uintptr_t)addr >> 12;
	struct pinfo pi = { 0 };
	struct spt_stripe *s = spt_lock(&vm->spt, vpn);
	struct lp_page *pg = spt_find(&vm->spt, vpn);
	if (pg) {
		pi = (struct pinfo){ true, pg->state, pg->backing, pg->flags,
				     pg->frame, pg->slot };
	}
	spt_unlock(s);
	return pi;
}

static struct lp_stats stats(struct lp_vm *vm)
{
	struct lp_stats st;
	cr_assert_eq(lp_stats_get(vm, &st), 0);
	return st;
}

/* Wait (up to 5 s) until the vm counted `want` mismatches. */
static struct lp_stats wait_mismatches(struct lp_vm *vm, uint64_t want)
{
	struct lp_stats st = stats(vm);
	for (int i = 0; i < 500 && st.verify_mismatches < want; i++) {
		usleep(10000);
		st = stats(vm);
	}
	return st;
}

/* Wait until the report names addr (the counter goes first). */
static void wait_report(const char *what)
{
	for (int i = 0; i < 200; i++) {
		FILE *f = fopen(cap_path, "r");
		char buf[8192];
		size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
		if (f)
			fclose(f);
		buf[n] = 0;
		if (strstr(buf, what))
			return;
		usleep(10000);
	}
}

static struct lp_vm *verify_vm(size_t frames, unsigned flags)
{
	struct lp_config c = cfg_frames(frames);
	struct lp_vm *vm;
	c.threads = 1;
	c.flags |= LP_CFG_VERIFY | flags;
	VM_OR_SKIP(&vm, &c);
	return vm;
}

/* Write every page, then push page `i` out to swap by writing the others
 * again until it is evicted with a slot.  Returns its slot. */
static uint64_t evict_to_slot(struct lp_vm *vm, uint64_t *p, unsigned i)
{
	for (unsigned k = 0; k < NPAGES; k++)
		fill_page(p, k, 1);
	for (int round = 0; round < 200; round++) {
		struct pinfo pi = page_info(vm, (char *)p + (size_t)i * PG);
		if (pi.state == PG_EVICTED && pi.backing == BK_SLOT)
			return pi.slot;
		for (unsigned k = 0; k < NPAGES; k++)
			if (k < i || k > i + 4)
				cr_assert_eq(check_page(p, k, 1), -1);
		usleep(2000);
	}
	cr_assert_fail("page %u never went to swap", i);
	return 0;
}

/* Flip one byte of swap slot `slot`, behind the runtime's back. */
static void corrupt_slot(struct lp_vm *vm, uint64_t slot, unsigned at)
{
	unsigned char *b = aligned_alloc(4096, 4096);
	cr_assert_eq(pread(vm->swap->fd, b, 4096, (off_t)swap_off(slot)), 4096);
	b[at] ^= 0x40;
	cr_assert_eq(pwrite(vm->swap->fd, b, 4096, (off_t)swap_off(slot)), 4096);
	free(b);
}

static void assert_reported(const char *err, const void *addr, const char *path)
{
	char want[64];
	snprintf(want, sizeof(want), "MISMATCH #1 at %p", addr);
	cr_assert(strstr(err, want), "no report naming %p", addr);
	if (path)
		cr_assert(strstr(err, path), "the report does not name the path %s", path);
	cr_assert(strstr(err, "last "), "no state history in the report");
}

/* ---- the tests ----------------------------------------------------------- */

Test(verify, swap_slot_corruption_is_caught_at_its_address)
{
	struct lp_vm *vm = verify_vm(8, LP_CFG_NO_READAHEAD);
	uint64_t *p;
	cr_assert_eq(lp_map_anon(vm, NPAGES * PG, PROT_READ | PROT_WRITE, (void **)&p), 0);
	unsigned i = 5;
	uint64_t slot = evict_to_slot(vm, p, i);
	corrupt_slot(vm, slot, 1234);

	capture_start();
	volatile uint64_t *q = p + (size_t)i * (PG / 8);
	(void)q[0]; /* swap-in */
	struct lp_stats st = wait_mismatches(vm, 1);
	wait_report("history");
	char *err = capture_end();
	cr_assert_eq(st.verify_mismatches, 1, "%lu mismatches, want 1",
		     (unsigned long)st.verify_mismatches);
	cr_assert_gt(st.verify_checks, 0);
	/* The corruption was real: the program sees it (verify reports, it
	 * does not repair). */
	cr_assert_eq(check_page(p, i, 1), 1234 / 8);
	void *addr = (char *)p + (size_t)i * PG;
	assert_reported(err, addr, "swap-in");
	char slotname[64];
	snprintf(slotname, sizeof(slotname), "swap slot %lu", (unsigned long)slot);
	cr_assert(strstr(err, slotname), "the report does not name %s", slotname);
	/* Only that page: every other one is checked and right. */
	for (unsigned k = 0; k < NPAGES; k++)
		if (k != i)
			cr_assert_eq(check_page(p, k, 1), -1, "page %u", k);
	cr_assert_eq(stats(vm).verify_mismatches, 1);
	free(err);
	lp_vm_destroy(vm);
}

/* One try of readahead_corruption_is_caught: whether the corrupt page
 * came back by readahead (under load its own fault may come first: then it
 * came by swap-in, and is caught there, but readahead was not tested). */
static bool readahead_corruption_try(void)
{
	struct lp_vm *vm = verify_vm(64, 0);
	unsigned n = 4 * NPAGES;
	uint64_t *p;
	cr_assert_eq(lp_map_anon(vm, n * PG, PROT_READ | PROT_WRITE, (void **)&p), 0);
	/* Pages 8..40 on swap, in neighbouring slots (written in order). */
	for (unsigned k = 0; k < n; k++)
		fill_page(p, k, 1);
	for (int round = 0; round < 200; round++) {
		bool out = true;
		for (unsigned k = 8; k < 40 && out; k++) {
			struct pinfo pi = page_info(vm, (char *)p + (size_t)k * PG);
			out = pi.state == PG_EVICTED && pi.backing == BK_SLOT;
		}
		if (out)
			break;
		for (unsigned k = 64; k < n; k++)
			cr_assert_eq(check_page(p, k, 1), -1);
		usleep(2000);
	}
	/* The window opens at the second fault in order (9) and takes the
	 * four pages after it: 10..13. */
	unsigned bad = 11;
	struct pinfo pi = page_info(vm, (char *)p + (size_t)bad * PG);
	cr_assert_eq(pi.state, PG_EVICTED);
	corrupt_slot(vm, pi.slot, 8);

	capture_start();
	for (unsigned k = 8; k < 40; k++)
		(void)((volatile uint64_t *)p)[(size_t)k * (PG / 8)];
	struct lp_stats st = wait_mismatches(vm, 1);
	wait_report("history");
	char *err = capture_end();
	cr_assert_eq(st.verify_mismatches, 1);
	bool ahead = strstr(err, "by swap readahead") != NULL;
	assert_reported(err, (char *)p + (size_t)bad * PG, ahead ? "by swap readahead"
								 : "by swap-in");
	cr_assert_eq(check_page(p, bad, 1), 1);
	free(err);
	lp_vm_destroy(vm);
	return ahead;
}

Test(verify, readahead_corruption_is_caught)
{
	for (int tries = 0; tries < 5; tries++)
		if (readahead_corruption_try())
			return;
	cr_assert_fail("in 5 tries the corrupt page never came back by readahead");
}

Test(verify, parked_page_corruption_is_caught)
{
	struct lp_vm *vm = verify_vm(16, LP_CFG_NO_READAHEAD);
	uint64_t *p;
	cr_assert_eq(lp_map_anon(vm, NPAGES * PG, PROT_READ | PROT_WRITE, (void **)&p), 0);
	for (unsigned k = 0; k < NPAGES; k++)
		fill_page(p, k, 1);
	/* Catch a page parked (by a reference sweep, or on its way out)
	 * while the vm is frozen: nothing moves meanwhile. */
	int found = -1;
	for (int round = 0; round < 2000 && found < 0; round++) {
		for (unsigned k = 0; k < NPAGES; k++)
			cr_assert_eq(check_page(p, (k * 7) % NPAGES, 1), -1);
		vm_freeze(vm);
		for (unsigned k = 0; k < NPAGES && found < 0; k++) {
			struct pinfo pi = page_info(vm, (char *)p + (size_t)k * PG);
			if (pi.state == PG_PARKED && !(pi.flags & PGF_IO)) {
				found = (int)k;
				((unsigned char *)kva_of(&vm->fr, pi.frame))[100] ^= 1;
			}
		}
		vm_thaw(vm);
	}
	cr_assert_geq(found, 0, "no page was ever parked");

	capture_start();
	/* Back from its kva slot, or (if evicted meanwhile) from swap, where
	 * the evictor wrote the altered slot. */
	(void)((volatile uint64_t *)p)[(size_t)found * (PG / 8)];
	struct lp_stats st = wait_mismatches(vm, 1);
	wait_report("history");
	char *err = capture_end();
	cr_assert_eq(st.verify_mismatches, 1);
	assert_reported(err, (char *)p + (size_t)found * PG, NULL);
	free(err);
	lp_vm_destroy(vm);
}

Test(verify, another_pages_data_is_named)
{
	struct lp_vm *vm = verify_vm(8, LP_CFG_NO_READAHEAD);
	uint64_t *p;
	cr_assert_eq(lp_map_anon(vm, NPAGES * PG, PROT_READ | PROT_WRITE, (void **)&p), 0);
	unsigned a = 3, b = 9;
	(void)evict_to_slot(vm, p, a);
	for (int round = 0; round < 200; round++) {
		struct pinfo pa = page_info(vm, (char *)p + (size_t)a * PG);
		struct pinfo pb = page_info(vm, (char *)p + (size_t)b * PG);
		if (pa.state == PG_EVICTED && pa.backing == BK_SLOT &&
		    pb.state == PG_EVICTED && pb.backing == BK_SLOT)
			break;
		for (unsigned k = 16; k < NPAGES; k++)
			cr_assert_eq(check_page(p, k, 1), -1);
		usleep(2000);
	}
	/* Exchange their slots: each now comes back with the other's data. */
	vm_freeze(vm);
	uint64_t va = ((uintptr_t)p >> 12) + a, vb = ((uintptr_t)p >> 12) + b;
	struct spt_stripe *s = spt_lock(&vm->spt, va);
	struct lp_page *pa = spt_find(&vm->spt, va);
	spt_unlock(s);
	s = spt_lock(&vm->spt, vb);
	struct lp_page *pb = spt_find(&vm->spt, vb);
	spt_unlock(s);
	cr_assert(pa && pb && pa->state == PG_EVICTED && pb->state == PG_EVICTED);
	uint64_t t = pa->slot;
	pa->slot = pb->slot;
	pb->slot = t;
	vm_thaw(vm);

	capture_start();
	(void)((volatile uint64_t *)p)[(size_t)a * (PG / 8)];
	struct lp_stats st = wait_mismatches(vm, 1);
	char whose[96];
	snprintf(whose, sizeof(whose), "what page %p held", (void *)((char *)p + (size_t)b * PG));
	wait_report(whose);
	char *err = capture_end();
	cr_assert_eq(st.verify_mismatches, 1);
	assert_reported(err, (char *)p + (size_t)a * PG, "swap-in");
	cr_assert(strstr(err, whose), "the report does not say whose data it is (%s)", whose);
	cr_assert_eq(check_page(p, a, 1), 0); /* page b's data */
	free(err);
	lp_vm_destroy(vm);
}

/* A fork copies parked pages from the parent's kva slots into the child:
 * the copy is checked too (vmrun's vms serve forks: VMF_FORK). */
Test(verify, fork_copy_of_a_parked_page_is_checked)
{
	struct lp_config c = cfg_frames(16);
	struct lp_vm *vm;
	c.threads = 1;
	c.flags |= LP_CFG_VERIFY | LP_CFG_NO_READAHEAD;
	int rc = vm_create(&vm, &c, VMF_FORK);
	if (rc == -EPERM || rc == -EACCES || rc == -ENOSYS)
		cr_skip_test("userfaultfd (with fork events) refused here: %s", strerror(-rc));
	cr_assert_eq(rc, 0);
	uint64_t *p;
	cr_assert_eq(lp_map_anon(vm, NPAGES * PG, PROT_READ | PROT_WRITE, (void **)&p), 0);
	for (unsigned k = 0; k < NPAGES; k++)
		fill_page(p, k, 1);
	int found = -1;
	for (int round = 0; round < 2000 && found < 0; round++) {
		for (unsigned k = 0; k < NPAGES; k++)
			cr_assert_eq(check_page(p, (k * 7) % NPAGES, 1), -1);
		vm_freeze(vm);
		for (unsigned k = 0; k < NPAGES && found < 0; k++) {
			struct pinfo pi = page_info(vm, (char *)p + (size_t)k * PG);
			if (pi.state == PG_PARKED && !(pi.flags & PGF_IO)) {
				found = (int)k;
				((unsigned char *)kva_of(&vm->fr, pi.frame))[200] ^= 1;
			}
		}
		if (found < 0)
			vm_thaw(vm);
	}
	cr_assert_geq(found, 0, "no page was ever parked");

	/* Still frozen, as vmrun forks: the parked page holds still. */
	capture_start();
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	cr_assert_gt(pid, 0);
	int status;
	waitpid(pid, &status, 0);
	struct lp_stats st = wait_mismatches(vm, 1);
	wait_report("history");
	vm_thaw(vm);
	char *err = capture_end();
	cr_assert_geq(st.verify_mismatches, 1);
	assert_reported(err, (char *)p + (size_t)found * PG, "by fork copy");
	free(err);
	lp_vm_destroy(vm);
}

/* ---- no false alarm -------------------------------------------------------- */

struct churn {
	uint64_t *p;
	unsigned pages, seed, id, nthreads;
	atomic_uint *gen;
	atomic_bool *stop;
	atomic_ulong bad;
};

static void *churn_main(void *arg)
{
	struct churn *c = arg;
	unsigned x = c->seed;

	while (!atomic_load(c->stop)) {
		x = x * 1103515245u + 12345u;
		/* Pages of this thread only: i % nthreads == id. */
		unsigned i = ((x >> 8) % (c->pages / c->nthreads)) * c->nthreads + c->id;
		unsigned g = atomic_load(&c->gen[i]);
		if (check_page(c->p, i, g) != -1)
			atomic_fetch_add(&c->bad, 1);
		if ((x >> 4) & 1) {
			fill_page(c->p, i, g + 1);
			atomic_store(&c->gen[i], g + 1);
		}
	}
	return NULL;
}

/* Every policy, with sequential and random use, 4 threads: every page
 * that comes back is checked, none differs. */
Test(verify, no_mismatch_without_corruption, .timeout = 240)
{
	for (const char *const *pol = lp_policy_names(); *pol; pol++) {
		struct lp_config c = cfg_frames(32);
		struct lp_vm *vm;
		c.flags |= LP_CFG_VERIFY;
		c.policy = *pol;
		VM_OR_SKIP(&vm, &c);
		unsigned pages = 512;
		uint64_t *p;
		cr_assert_eq(lp_map_anon(vm, pages * PG, PROT_READ | PROT_WRITE, (void **)&p), 0);
		atomic_uint *gen = calloc(pages, sizeof(*gen));
		for (unsigned k = 0; k < pages; k++)
			fill_page(p, k, 0);
		for (unsigned k = 0; k < pages; k++) /* in order: readahead */
			cr_assert_eq(check_page(p, k, 0), -1);
		atomic_bool stop = false;
		struct churn ch[4];
		pthread_t t[4];
		for (unsigned k = 0; k < 4; k++) {
			ch[k] = (struct churn){ p, pages, 17 + k, k, 4, gen, &stop, 0 };
			pthread_create(&t[k], NULL, churn_main, &ch[k]);
		}
		usleep(400000);
		atomic_store(&stop, true);
		for (unsigned k = 0; k < 4; k++) {
			pthread_join(t[k], NULL);
			cr_assert_eq(atomic_load(&ch[k].bad), 0, "%s: wrong pages", *pol);
		}
		for (unsigned k = 0; k < pages; k++)
			cr_assert_eq(check_page(p, k, atomic_load(&gen[k])), -1);
		struct lp_stats st = stats(vm);
		fprintf(stderr, "verify: %-6s %lu pages checked, %lu mismatches, %lu swap-ins, %lu re-references\n",
			*pol, (unsigned long)st.verify_checks,
			(unsigned long)st.verify_mismatches,
			(unsigned long)st.faults[LP_FAULT_SWAPIN],
			(unsigned long)st.faults[LP_FAULT_REREF]);
		cr_assert_eq(st.verify_mismatches, 0, "%s", *pol);
		cr_assert_gt(st.verify_checks, st.faults[LP_FAULT_SWAPIN] / 2, "%s", *pol);
		cr_assert_eq(st.last_error, 0);
		free(gen);
		lp_vm_destroy(vm);
	}
}

/* Off: nothing is counted (and nothing is kept). */
Test(verify, off_counts_nothing)
{
	struct lp_config c = cfg_frames(8);
	struct lp_vm *vm;
	c.flags &= ~LP_CFG_VERIFY;
	VM_OR_SKIP(&vm, &c);
	cr_assert_null(vm->vf);
	uint64_t *p;
	cr_assert_eq(lp_map_anon(vm, NPAGES * PG, PROT_READ | PROT_WRITE, (void **)&p), 0);
	for (unsigned k = 0; k < NPAGES; k++)
		fill_page(p, k, 1);
	for (unsigned k = 0; k < NPAGES; k++)
		cr_assert_eq(check_page(p, k, 1), -1);
	struct lp_stats st = stats(vm);
	cr_assert_gt(st.faults[LP_FAULT_SWAPIN], 0);
	cr_assert_eq(st.verify_checks, 0);
	cr_assert_eq(st.verify_mismatches, 0);
	lp_vm_destroy(vm);
}
