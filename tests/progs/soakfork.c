/* fork during eviction (the soak suite runs this under vmrun with a cap far
 * below its heap): two threads do random read-modify-writes over a heap of
 * pages that each carry {magic, page index, sequence number, payload,
 * checksum}, checking every page they touch against the sequence number
 * they expect; a third thread forks over and over.  It holds every page
 * lock across fork(), so the child's snapshot is exact: the child checks
 * every page of it, scribbles over half of it (the parent must not see
 * that) and exits 0 when all was right.
 *
 *   soakfork SECONDS OUTFILE    writes one line of counts to OUTFILE,
 *                               exits 0 when nothing was wrong
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../soakpage.h"

#define PG 4096
#define NPAGES 4096      /* 16 MiB of heap */
#define WRITERS 2
#define STRIPES 64
#define MAGIC 0x50414b534f414b31ull

static struct page *heap;
static uint64_t *expect;           /* seq of each page */
static pthread_mutex_t stripe[STRIPES];
static atomic_bool stop;
static atomic_ulong ops, bad, forks, child_pages;

/* Page i is intact and at its expected sequence number. */
static int good(uint64_t i, uint64_t seq)
{
	const struct page *p = &heap[i];
	return p->magic == MAGIC && p->idx == i && p->seq == seq &&
	       p->sum == checksum(p);
}

static void write_page(uint64_t i, uint64_t seq, uint64_t *x)
{
	struct page *p = &heap[i];
	p->magic = MAGIC;
	p->idx = i;
	p->seq = seq;
	for (unsigned k = 0; k < 8; k++)
		p->payload[xorshift(x) % WORDS] = xorshift(x);
	p->sum = checksum(p);
}

static void *writer(void *arg)
{
	uint64_t x = 0x9e3779b97f4a7c15ull * ((uintptr_t)arg + 1);

	while (!atomic_load(&stop)) {
		uint64_t i = xorshift(&x) % NPAGES;
		pthread_mutex_lock(&stripe[i % STRIPES]);
		if (!good(i, expect[i]))
			atomic_fetch_add(&bad, 1);
		write_page(i, ++expect[i], &x);
		pthread_mutex_unlock(&stripe[i % STRIPES]);
		atomic_fetch_add(&ops, 1);
	}
	return NULL;
}

/* In the child: every page, then a scribble the parent must not see. */
static int child(void)
{
	unsigned long n = 0, b = 0;
	for (uint64_t i = 0; i < NPAGES; i++, n++)
		if (!good(i, expect[i]))
			b++;
	memset(heap, 0xee, (size_t)NPAGES / 2 * PG);
	(void)n;
	return b ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: soakfork SECONDS OUTFILE\n");
		return 2;
	}
	double secs = atof(argv[1]);
	heap = malloc((size_t)NPAGES * PG);
	expect = calloc(NPAGES, sizeof *expect);
	if (!heap || !expect)
		return 2;
	uint64_t x = 12345;
	for (uint64_t i = 0; i < NPAGES; i++)
		write_page(i, 0, &x);
	for (int s = 0; s < STRIPES; s++)
		pthread_mutex_init(&stripe[s], NULL);

	pthread_t th[WRITERS];
	for (uintptr_t t = 0; t < WRITERS; t++)
		pthread_create(&th[t], NULL, writer, (void *)t);

	struct timespec t0, now, nap = { 0, 50 * 1000 * 1000 };
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int failed_children = 0;
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((double)(now.tv_sec - t0.tv_sec) +
		    (double)(now.tv_nsec - t0.tv_nsec) / 1e9 >= secs)
			break;
		nanosleep(&nap, NULL);
		for (int s = 0; s < STRIPES; s++)
			pthread_mutex_lock(&stripe[s]);
		pid_t pid = fork();
		if (pid == 0)
			_exit(child());
		for (int s = 0; s < STRIPES; s++)
			pthread_mutex_unlock(&stripe[s]);
		if (pid < 0) {
			fprintf(stderr, "soakfork: fork: %s\n", strerror(errno));
			failed_children++;
			continue;
		}
		int st;
		pid_t w = waitpid(pid, &st, 0);
		if (w != pid || !WIFEXITED(st) || WEXITSTATUS(st)) {
			if (w != pid)
				fprintf(stderr, "soakfork: waitpid: %s\n", strerror(errno));
			else if (WIFSIGNALED(st))
				fprintf(stderr, "soakfork: child killed by signal %d\n", WTERMSIG(st));
			else
				fprintf(stderr, "soakfork: child saw pages not as they were at the fork\n");
			failed_children++;
		}
		else
			atomic_fetch_add(&child_pages, NPAGES);
		atomic_fetch_add(&forks, 1);
	}
	atomic_store(&stop, true);
	for (int t = 0; t < WRITERS; t++)
		pthread_join(th[t], NULL);

	/* The parent's own pages, all of them, after the children scribbled. */
	unsigned long final_bad = 0;
	for (uint64_t i = 0; i < NPAGES; i++)
		if (!good(i, expect[i]))
			final_bad++;

	FILE *f = fopen(argv[2], "w");
	if (!f)
		return 2;
	fprintf(f, "ops %lu pages %lu forks %lu bad %lu failed_children %d final_bad %lu\n",
		atomic_load(&ops), atomic_load(&child_pages) + NPAGES,
		atomic_load(&forks), atomic_load(&bad), failed_children, final_bad);
	fclose(f);
	return atomic_load(&bad) || failed_children || final_bad ? 1 : 0;
}
