/* SPDX-License-Identifier: MIT */
/*
 * Swap-ins in flight (fault.c): a handler keeps the reads of every pending
 * fault in flight and answers each as its read completes.  What a program
 * relies on: every thread gets its own page's content, whatever order the
 * reads complete in; and a freeze (fork, mremap) never meets a page whose
 * read is in flight, so that pages hold still while it lasts (white-box:
 * internal library).
 */
#include <pthread.h>
#include <stdatomic.h>

#include "common.h"
#include "core.h"
#include "vm.h"

#define NPAGES 2048u
#define FRAMES 64u
#define NREADERS 4u

struct reader {
	uint64_t *p;
	unsigned seed;
	unsigned reads;
	atomic_bool *stop;
	int bad;          /* first page with wrong content, or -1 */
	unsigned done;
};

static unsigned next(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

static void *read_pages(void *arg)
{
	struct reader *r = arg;

	r->bad = -1;
	for (unsigned k = 0; k < r->reads || r->stop; k++) {
		if (r->stop && atomic_load(r->stop))
			break;
		unsigned i = next(&r->seed) % NPAGES;
		if (check_page(r->p, i, 1) != -1) {
			r->bad = (int)i;
			break;
		}
		r->done++;
	}
	return NULL;
}

static struct lp_vm *swapped_region(unsigned flags, uint64_t **p)
{
	struct lp_config c = cfg_frames(FRAMES);
	struct lp_vm *vm;

	c.flags |= LP_CFG_VERIFY | flags;
	VM_OR_SKIP(&vm, &c);
	cr_assert_eq(lp_map_anon(vm, (size_t)NPAGES * PG, PROT_READ | PROT_WRITE,
				 (void **)p), 0);
	for (unsigned i = 0; i < NPAGES; i++)
		fill_page(*p, i, 1);
	return vm;
}

static void many_readers(unsigned flags)
{
	uint64_t *p;
	struct lp_vm *vm = swapped_region(flags, &p);
	struct reader r[NREADERS];
	pthread_t t[NREADERS];

	for (unsigned k = 0; k < NREADERS; k++) {
		r[k] = (struct reader){ .p = p, .seed = k + 1, .reads = 3000 };
		cr_assert_eq(pthread_create(&t[k], NULL, read_pages, &r[k]), 0);
	}
	for (unsigned k = 0; k < NREADERS; k++) {
		pthread_join(t[k], NULL);
		cr_expect_eq(r[k].bad, -1, "reader %u: page %d has other content",
			     k, r[k].bad);
	}
	struct lp_stats st;
	cr_assert_eq(lp_stats_get(vm, &st), 0);
	cr_expect_eq(st.verify_mismatches, 0);
	cr_expect_eq(st.io_errors, 0);
	/* Under 64 frames most of 12 000 reads of 2048 pages miss. */
	cr_expect_gt(st.faults[LP_FAULT_SWAPIN], 5000, "%" PRIu64 " swap-ins",
		     st.faults[LP_FAULT_SWAPIN]);
	cr_expect_gt(st.miss_phase_p50_ns[LP_PHASE_DEVICE], 0);
	cr_expect_geq(st.miss_phase_p50_ns[LP_PHASE_HANDLER],
		      st.miss_phase_p50_ns[LP_PHASE_DEVICE]);
	lp_vm_destroy(vm);
}

Test(async, every_reader_gets_its_page_with_reads_in_flight, .timeout = 300)
{
	many_readers(0);
}

Test(async, every_reader_gets_its_page_one_read_at_a_time, .timeout = 300)
{
	many_readers(LP_CFG_SYNC_READS);
}

/* Pages of [p, p + NPAGES) in a state a freeze must not meet. */
static unsigned loading_pages(struct lp_vm *vm, const uint64_t *p)
{
	unsigned n = 0;

	for (unsigned i = 0; i < NPAGES; i++) {
		uint64_t vpn = ((uintptr_t)p >> 12) + i;
		struct spt_stripe *s = spt_lock(&vm->spt, vpn);
		struct lp_page *pg = spt_find(&vm->spt, vpn);
		if (pg && (pg->state == PG_LOADING || pg->state == PG_RESTORING))
			n++;
		spt_unlock(s);
	}
	return n;
}

Test(async, a_freeze_never_meets_a_read_in_flight, .timeout = 300)
{
	uint64_t *p;
	struct lp_vm *vm = swapped_region(0, &p);
	struct reader r[NREADERS];
	pthread_t t[NREADERS];
	atomic_bool stop = false;

	for (unsigned k = 0; k < NREADERS; k++) {
		r[k] = (struct reader){ .p = p, .seed = k + 7, .stop = &stop };
		cr_assert_eq(pthread_create(&t[k], NULL, read_pages, &r[k]), 0);
	}
	unsigned met = 0;
	for (int round = 0; round < 300; round++) {
		vm_freeze(vm);
		met += loading_pages(vm, p);
		vm_thaw(vm);
		usleep(1000);
	}
	atomic_store(&stop, true);
	unsigned total = 0;
	for (unsigned k = 0; k < NREADERS; k++) {
		pthread_join(t[k], NULL);
		cr_expect_eq(r[k].bad, -1, "reader %u: page %d has other content",
			     k, r[k].bad);
		total += r[k].done;
	}
	cr_expect_eq(met, 0, "%u pages were being read while frozen", met);
	/* The readers went on between the freezes (deferred faults served). */
	cr_expect_gt(total, 1000, "only %u reads in 300 freezes", total);
	struct lp_stats st;
	cr_assert_eq(lp_stats_get(vm, &st), 0);
	cr_expect_eq(st.verify_mismatches, 0);
	lp_vm_destroy(vm);
}
