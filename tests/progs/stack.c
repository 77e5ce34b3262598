/* Stack growth: deep recursion, and a read() whose first touch of a stack
 * page is the kernel's. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static unsigned long deep(int n)
{
	volatile char pad[1000];
	pad[0] = (char)n;
	pad[999] = (char)(n >> 3);
	if (n == 0)
		return pad[0];
	return deep(n - 1) + (unsigned char)pad[999] + (unsigned char)pad[0];
}

static unsigned long read_into_stack(void)
{
	char buf[256 * 1024]; /* untouched until read() fills its end */
	int fds[2];
	char msg[4096];
	memset(msg, 'x', sizeof msg);
	if (pipe(fds))
		return 0;
	if (write(fds[1], msg, sizeof msg) != (ssize_t)sizeof msg)
		return 0;
	ssize_t n = read(fds[0], buf + sizeof buf - 8192 - 100, sizeof msg);
	close(fds[0]);
	close(fds[1]);
	unsigned long s = (unsigned long)n;
	for (ssize_t i = 0; i < n; i++)
		s += (unsigned char)buf[sizeof buf - 8192 - 100 + i];
	return s;
}

static unsigned long forever(unsigned long n)
{
	volatile char pad[4096];
	pad[0] = (char)n;
	if (n == ~0ul) /* never: the stack ends first */
		return 0;
	return forever(n + 1) + (unsigned char)pad[0];
}

int main(int argc, char **argv)
{
	if (argc > 1) { /* beyond the stack limit: SIGSEGV, as natively */
		printf("overflow %lu\n", forever(0));
		return 0;
	}
	printf("deep %lu\n", deep(4000)); /* about 4 MB of stack */
	printf("read %lu\n", read_into_stack());
	return 0;
}
