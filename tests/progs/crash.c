/* Faults that must kill the program as natively: SIGSEGV on a write to
 * code and on a wild address; SIGBUS nowhere; argv[1] picks. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

__attribute__((noinline)) int victim(int x);
__attribute__((noinline)) int victim(int x)
{
	return x + 1;
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "code";
	printf("about to %s\n", what);
	fflush(stdout);
	if (!strcmp(what, "code"))
		*(volatile unsigned char *)(void *)victim = 0xc3;
	else if (!strcmp(what, "wild"))
		*(volatile int *)0x10 = 1;
	else if (!strcmp(what, "abort"))
		raise(SIGABRT);
	else if (!strcmp(what, "exit"))
		return 42;
	printf("still alive %d\n", victim(1));
	return 0;
}
