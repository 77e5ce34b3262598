/* SPDX-License-Identifier: MIT */
/*
 * Solo serving (fault.c): while a single thread faults, only the handler
 * pinned to that thread's CPU polls the userfaultfd; the others sleep on
 * their kick.  What a program relies on: every fault is served, whoever
 * faults, wherever it runs — a thread that moves to another CPU, a second
 * thread that starts faulting while one handler serves alone.  And what
 * the mechanism is for: one thread's faults end up with its own CPU's
 * handler (white-box: internal library, vm->solo).
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "common.h"
#include "core.h"
#include "prim.h"
#include "vm.h"

#define NPAGES 2048u
#define FRAMES 64u

static unsigned next(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

/* Two CPUs this test may use, or skip. */
static void two_cpus(int cpu[2])
{
	int cpus[CPU_SETSIZE];
	int n = prim_allowed_cpus(cpus, CPU_SETSIZE);
	if (n < 2)
		cr_skip_test("solo serving needs 2 CPUs, %d allowed here", n);
	cpu[0] = cpus[0];
	cpu[1] = cpus[1];
}

static void pin(int cpu)
{
	cr_assert_eq(prim_pin_self(cpu), 0, "cannot pin to CPU %d", cpu);
}

static struct lp_vm *swapped_region(uint64_t **p)
{
	struct lp_config c = cfg_frames(FRAMES);
	struct lp_vm *vm;

	VM_OR_SKIP(&vm, &c);
	cr_assert_eq(lp_map_anon(vm, (size_t)NPAGES * PG, PROT_READ | PROT_WRITE,
				 (void **)p), 0);
	for (unsigned i = 0; i < NPAGES; i++)
		fill_page(*p, i, 1);
	if (!vm->solo_ok)
		cr_skip_test("handlers are not one per CPU here (%u handlers)", vm->nh);
	return vm;
}

/* n reads of random pages of p, each checked: the first bad page or -1. */
static int read_random(const uint64_t *p, unsigned n, unsigned seed)
{
	for (unsigned k = 0; k < n; k++) {
		unsigned i = next(&seed) % NPAGES;
		if (check_page(p, i, 1) != -1)
			return (int)i;
	}
	return -1;
}

/* How often thread tid (of this process) went to sleep: each wake-up,
 * also one that found nothing to do and slept again inside poll(). */
static uint64_t sleeps(pid_t tid)
{
	char path[64], line[128];
	unsigned long long n = 0;

	snprintf(path, sizeof path, "/proc/self/task/%d/status", tid);
	FILE *f = fopen(path, "re");
	cr_assert_not_null(f, "%s", path);
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "voluntary_ctxt_switches: %llu", &n) == 1)
			break;
	fclose(f);
	return n;
}

/* The index of the handler pinned to cpu. */
static int handler_on(const struct lp_vm *vm, int cpu)
{
	for (unsigned i = 0; i < vm->nh; i++)
		if (vm->h[i].cpu == cpu)
			return (int)i;
	return -1;
}

/* One window of 1000 faults on CPU c: did c's handler serve them alone?
 * NULL if so, else why not. */
static const char *solo_window(struct lp_vm *vm, const uint64_t *p, int c,
			       unsigned seed, char *why, size_t len)
{
	int cpu_other = -1;
	for (unsigned i = 0; i < vm->nh; i++)
		if (vm->h[i].cpu != c)
			cpu_other = vm->h[i].cpu;
	struct lp_handler *mine = &vm->h[handler_on(vm, c)];
	struct lp_handler *other = &vm->h[handler_on(vm, cpu_other)];
	uint64_t r0 = atomic_load(&mine->nread), r1 = atomic_load(&other->nread);
	uint64_t w1 = sleeps(other->ktid);
	unsigned e0 = atomic_load(&vm->solo_ends);
	cr_assert_eq(read_random(p, 1000, seed), -1,
		     "a page had other content (seed %u)", seed);
	uint64_t mr = atomic_load(&mine->nread) - r0;
	uint64_t or = atomic_load(&other->nread) - r1;
	uint64_t ow = sleeps(other->ktid) - w1;
	unsigned ends = atomic_load(&vm->solo_ends) - e0;
	/* Served on its own CPU, and the other handler left alone
	 * (without solo serving it wakes for nearly every fault). */
	if (mr > 8 * or && ow * 4 < mr)
		return NULL;
	snprintf(why, len, "CPU %d's handler read %lu faults, the other %lu and "
		 "woke %lu times; solo serving ended %u times", c,
		 (unsigned long)mr, (unsigned long)or, (unsigned long)ow, ends);
	return why;
}

/* A window may miss solo serving for reasons of the machine's load (the
 * evictor falls behind, a fault waits for a frame, solo serving ends and
 * takes 32 faults to come back): each round gets five windows, and one
 * must show it.  Without solo serving every window fails. */
Test(solo, one_thread_is_served_by_its_cpus_handler_and_followed_when_it_moves,
     .timeout = 240)
{
	int cpu[2];
	uint64_t *p;
	two_cpus(cpu);
	struct lp_vm *vm = swapped_region(&p);
	for (int round = 0; round < 4; round++) {
		int c = cpu[round & 1];
		char why[5][160];
		const char *bad = why[0];
		pin(c);
		/* 64 faults to go solo (32 to see a move), then: */
		cr_assert_eq(read_random(p, 200, (unsigned)round + 1), -1);
		for (int w = 0; w < 5 && bad; w++)
			bad = solo_window(vm, p, c, (unsigned)(round * 10 + w + 100),
					  why[w], sizeof why[w]);
		cr_assert_null(bad, "round %d, five windows: %s | %s | %s | %s | %s",
			       round, why[0], why[1], why[2], why[3], why[4]);
	}
	struct lp_stats st;
	cr_assert_eq(lp_stats_get(vm, &st), 0);
	cr_assert_gt(st.faults[LP_FAULT_SWAPIN], 1000);
	cr_assert_eq(st.io_errors, 0);
	lp_vm_destroy(vm);
}

struct other {
	const uint64_t *p;
	int cpu;
	int bad;
};

static void *other_reader(void *arg)
{
	struct other *o = arg;

	if (o->cpu >= 0)
		(void)prim_pin_self(o->cpu);
	o->bad = read_random(o->p, 2000, 99);
	return NULL;
}

/* One thread faults on CPU 0 until one handler serves alone; then a thread
 * on CPU 1 (whose handler is not listening) and two unpinned ones fault
 * at once: every fault is served, the solo serving over. */
Test(solo, threads_that_start_faulting_beside_a_solo_thread_are_served,
     .timeout = 120)
{
	int cpu[2];
	uint64_t *p;
	two_cpus(cpu);
	struct lp_vm *vm = swapped_region(&p);
	pin(cpu[0]);
	cr_assert_eq(read_random(p, 400, 7), -1);
	struct other o[3] = { { p, cpu[1], 0 }, { p, -1, 0 }, { p, -1, 0 } };
	pthread_t t[3];
	for (int k = 0; k < 3; k++)
		cr_assert_eq(pthread_create(&t[k], NULL, other_reader, &o[k]), 0);
	int bad = read_random(p, 2000, 8);
	for (int k = 0; k < 3; k++) {
		pthread_join(t[k], NULL);
		cr_expect_eq(o[k].bad, -1, "thread %d: page %d has other content", k,
			     o[k].bad);
	}
	cr_assert_eq(bad, -1, "page %d has other content", bad);
	struct lp_stats st;
	cr_assert_eq(lp_stats_get(vm, &st), 0);
	cr_assert_eq(st.io_errors, 0);
	lp_vm_destroy(vm);
}
