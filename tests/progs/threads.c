/* Threads share memory; exit_group from a thread ends the process with its
 * status; a signal handler runs on the right thread. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T 4
#define N (4 * 1024 * 1024)
static unsigned char *mem;
static volatile sig_atomic_t got;

static void on_usr1(int s)
{
	got = s;
}

static void *work(void *arg)
{
	long id = (long)arg;
	unsigned long s = 0;
	for (size_t i = (size_t)id * 4096; i < N; i += T * 4096) {
		memset(mem + i, (int)id + 1, 4096);
		s += mem[i];
	}
	return (void *)s;
}

static void *exiter(void *arg)
{
	(void)arg;
	exit(7); /* exit_group from a thread that is not main */
}

int main(int argc, char **argv)
{
	mem = malloc(N);
	signal(SIGUSR1, on_usr1);
	pthread_t th[T];
	for (long i = 0; i < T; i++)
		pthread_create(&th[i], NULL, work, (void *)i);
	unsigned long total = 0;
	for (int i = 0; i < T; i++) {
		void *r;
		pthread_join(th[i], &r);
		total += (unsigned long)r;
	}
	unsigned long check = 0;
	for (size_t i = 0; i < N; i += 4096)
		check += mem[i];
	raise(SIGUSR1);
	printf("threads %lu %lu signal %d\n", total, check, (int)got);
	fflush(stdout);
	if (argc > 1 && !strcmp(argv[1], "exit-from-thread")) {
		pthread_t t;
		pthread_create(&t, NULL, exiter, NULL);
		pause();
	}
	return 0;
}
