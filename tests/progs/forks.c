/* fork: the child sees exactly the parent's memory at the fork — pages
 * never touched, resident, and swapped out — and they stay apart after. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MB (1024 * 1024)
static unsigned char data[256 * 1024] = { 1 };   /* lazy .data */
static unsigned char bss[256 * 1024];            /* lazy .bss */

static uint64_t sum(const unsigned char *p, size_t n)
{
	uint64_t s = 0;
	for (size_t i = 0; i < n; i += 256)
		s += p[i] * (i / 256 + 1);
	return s;
}

int main(void)
{
	size_t n = 24 * MB;
	unsigned char *heap = malloc(n);
	for (size_t i = 0; i < n; i += 256)
		heap[i] = (unsigned char)(i / 4096 + 3);
	data[4096 * 10] = 77;
	uint64_t before = sum(heap, n) + sum(data, sizeof data) + sum(bss, sizeof bss);
	fflush(stdout);

	pid_t pid = fork();
	if (pid == 0) {
		uint64_t seen = sum(heap, n) + sum(data, sizeof data) + sum(bss, sizeof bss);
		memset(heap, 0xee, n / 2);     /* the parent must not see this */
		bss[1000] = 9;
		printf("child sees %s\n", seen == before ? "the parent's memory" : "OTHER memory");
		fflush(stdout);
		pid_t g = fork();             /* and a grandchild, from the child */
		if (g == 0) {
			printf("grandchild sees %s\n",
			       heap[0] == 0xee && bss[1000] == 9 ? "the child's memory" : "OTHER memory");
			fflush(stdout);
			_exit(0);
		}
		waitpid(g, NULL, 0);
		_exit(seen == before ? 3 : 4);
	}
	int st;
	waitpid(pid, &st, 0);
	uint64_t after = sum(heap, n) + sum(data, sizeof data) + sum(bss, sizeof bss);
	printf("child exit %d; parent memory %s\n", WEXITSTATUS(st),
	       after == before ? "unchanged" : "CHANGED");
	return after == before ? 0 : 1;
}
