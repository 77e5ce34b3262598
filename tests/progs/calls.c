/* System calls the pager serves, given what a careless or hostile program
 * gives them; the output must be the same natively and under vmrun.
 *
 *   calls clone3                 clone3 with bad pointers and sizes
 *   calls mmap FILE NOEXEC-FILE  file mappings the kernel refuses
 *   calls interrupt N            N raw brk and N/4 mmap+munmap calls under
 *                                a 100 us timer whose handler has no
 *                                SA_RESTART: none may fail with EINTR
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

static const char *err_name(long r)
{
	if (r >= 0)
		return "ok";
	switch (-r) {
	case EFAULT: return "EFAULT";
	case EINVAL: return "EINVAL";
	case E2BIG: return "E2BIG";
	case EBADF: return "EBADF";
	case EACCES: return "EACCES";
	case EPERM: return "EPERM";
	case EINTR: return "EINTR";
	case ENODEV: return "ENODEV";
	default: return strerror((int)-r);
	}
}

static long raw(long nr, long a, long b, long c, long d, long e, long f)
{
	long r = syscall(nr, a, b, c, d, e, f);
	return r == -1 ? -errno : r;
}

static int clone3_cases(void)
{
	/* A page that was mapped and is not any more. */
	char *gone = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(gone, 4096);
	/* The struct's flags readable, the rest not: the page after the
	 * mapping is unmapped. */
	char *two = mmap(NULL, 8192, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(two + 4096, 4096);
	memset(two, 0, 4096);
	char *edge = two + 4096 - 8;

	printf("clone3(NULL, 88): %s\n", err_name(raw(SYS_clone3, 0, 88, 0, 0, 0, 0)));
	printf("clone3(0x10, 88): %s\n", err_name(raw(SYS_clone3, 0x10, 88, 0, 0, 0, 0)));
	printf("clone3(unmapped, 88): %s\n",
	       err_name(raw(SYS_clone3, (long)gone, 88, 0, 0, 0, 0)));
	printf("clone3(straddling, 88): %s\n",
	       err_name(raw(SYS_clone3, (long)edge, 88, 0, 0, 0, 0)));
	printf("clone3(NULL, 8): %s\n", err_name(raw(SYS_clone3, 0, 8, 0, 0, 0, 0)));
	printf("clone3(NULL, 1 MiB): %s\n",
	       err_name(raw(SYS_clone3, 0, 1 << 20, 0, 0, 0, 0)));
	printf("clone3(kernel address, 88): %s\n",
	       err_name(raw(SYS_clone3, (long)0xffff800000000000ul, 88, 0, 0, 0, 0)));
	return 0;
}

static long map_fd(int fd, int prot)
{
	long r = raw(SYS_mmap, 0, 4096, prot, MAP_PRIVATE, fd, 0);
	if (r >= 0) {
		volatile char c = *(volatile char *)r; /* must not be SIGBUS */
		(void)c;
		munmap((void *)r, 4096);
	}
	return r;
}

static int mmap_cases(const char *file, const char *noexec)
{
	int path = open(file, O_PATH | O_CLOEXEC);
	int wr = open(file, O_WRONLY | O_CLOEXEC);
	int rd = open(file, O_RDONLY | O_CLOEXEC);
	int nx = open(noexec, O_RDONLY | O_CLOEXEC);

	if (path < 0 || wr < 0 || rd < 0 || nx < 0) {
		perror("open");
		return 2;
	}
	printf("mmap O_PATH: %s\n", err_name(map_fd(path, PROT_READ)));
	printf("mmap O_WRONLY: %s\n", err_name(map_fd(wr, PROT_READ)));
	printf("mmap O_RDONLY exec: %s\n", err_name(map_fd(rd, PROT_READ | PROT_EXEC)));
	printf("mmap O_RDONLY write: %s\n", err_name(map_fd(rd, PROT_READ | PROT_WRITE)));
	printf("mmap noexec mount: %s\n", err_name(map_fd(nx, PROT_READ)));
	printf("mmap noexec mount, exec: %s\n", err_name(map_fd(nx, PROT_READ | PROT_EXEC)));
	printf("mmap closed fd: %s\n", err_name(map_fd(1000, PROT_READ)));
	return 0;
}

static volatile sig_atomic_t ticks;

static void tick(int sig)
{
	(void)sig;
	ticks++;
}

static int interrupt_cases(long n)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = tick; /* no SA_RESTART */
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = { { 0, 100 }, { 0, 100 } };
	setitimer(ITIMER_REAL, &it, NULL);

	long base = raw(SYS_brk, 0, 0, 0, 0, 0, 0);
	long brk_bad = 0, brk_eintr = 0, mm_eintr = 0, mm_bad = 0;
	for (long i = 0; i < n; i++) {
		long want = base + ((i & 1) ? 0 : 3 * 4096);
		long r = raw(SYS_brk, want, 0, 0, 0, 0, 0);
		if (r == -EINTR)
			brk_eintr++;
		else if (r != want && r != base)
			brk_bad++;
		if (i % 4)
			continue;
		long p = raw(SYS_mmap, 0, 8192, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == -EINTR)
			mm_eintr++;
		else if (p < 0)
			mm_bad++;
		else if ((r = raw(SYS_munmap, p, 8192, 0, 0, 0, 0)) == -EINTR)
			mm_eintr++;
		else if (r)
			mm_bad++;
	}
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	setitimer(ITIMER_REAL, &off, NULL);
	raw(SYS_brk, base, 0, 0, 0, 0, 0);
	printf("brk: %ld interrupted, %ld wrong\n", brk_eintr, brk_bad);
	printf("mmap/munmap: %ld interrupted, %ld wrong\n", mm_eintr, mm_bad);
	fprintf(stderr, "note: %ld timer signals\n", (long)ticks);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1 && !strcmp(argv[1], "clone3"))
		return clone3_cases();
	if (argc > 3 && !strcmp(argv[1], "mmap"))
		return mmap_cases(argv[2], argv[3]);
	if (argc > 1 && !strcmp(argv[1], "interrupt"))
		return interrupt_cases(argc > 2 ? atol(argv[2]) : 20000);
	fprintf(stderr, "usage: calls clone3 | mmap FILE NOEXEC-FILE | interrupt [N]\n");
	return 2;
}
