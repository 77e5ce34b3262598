/* Threads that end while memory is short, each joined: pthread_join waits
 * for the kernel to clear the thread's tid word (CLONE_CHILD_CLEARTID, at
 * the top of the thread's stack) and wake it.  The kernel makes that write
 * as the thread exits and cannot fault a page in for it: were the word's
 * page not mapped, or write-protected, the write and the wake would be
 * lost and the join would wait for ever.  A join that waits long for a
 * thread that is gone says so and exits 3.
 *
 *   joins [ROUNDS [THREADS [PAGES]]]   (default 100 rounds of 8 threads,
 *                                       each writing 16 pages of its own)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define TMAX 64

struct worker {
	pthread_t th;
	volatile pid_t tid;
	unsigned pages;
	unsigned seed;
	unsigned long sum;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	size_t n = (size_t)w->pages * 4096;
	unsigned char *p = malloc(n);
	unsigned long s = 0;

	w->tid = (pid_t)syscall(SYS_gettid);
	if (!p)
		return NULL;
	for (size_t i = 0; i < n; i += 64)
		p[i] = (unsigned char)(w->seed + i / 64);
	for (size_t i = 0; i < n; i += 64)
		s += p[i];
	free(p);
	w->sum = s;
	return NULL;
}

/* Join w; a thread gone for seconds whose join still waits is a wake lost. */
static int join(struct worker *w)
{
	for (;;) {
		struct timespec t;
		clock_gettime(CLOCK_REALTIME, &t);
		t.tv_sec += 5;
		int rc = pthread_timedjoin_np(w->th, NULL, &t);
		if (rc == 0)
			return 0;
		char path[64];
		if (!w->tid)
			continue; /* not started yet */
		snprintf(path, sizeof path, "/proc/self/task/%d", (int)w->tid);
		if (access(path, F_OK)) {
			printf("thread %d has exited, but its join waits: "
			       "the kernel's clear of its tid word was lost\n",
			       (int)w->tid);
			fflush(stdout);
			return -1;
		}
	}
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 100;
	int nt = argc > 2 ? atoi(argv[2]) : 8;
	unsigned pages = argc > 3 ? (unsigned)atoi(argv[3]) : 16;
	static struct worker w[TMAX];
	unsigned long total = 0;

	if (nt < 1 || nt > TMAX)
		nt = 8;
	for (int r = 0; r < rounds; r++) {
		for (int i = 0; i < nt; i++) {
			w[i].pages = pages;
			w[i].seed = (unsigned)(r * TMAX + i);
			w[i].tid = 0;
			if (pthread_create(&w[i].th, NULL, work, &w[i])) {
				printf("pthread_create failed\n");
				return 2;
			}
		}
		for (int i = 0; i < nt; i++) {
			if (join(&w[i]))
				_exit(3);
			total += w[i].sum;
		}
	}
	printf("joins %d rounds of %d threads: %lu\n", rounds, nt, total);
	return 0;
}
