/* The kernel writing into (or reading from) the program's pages through a
 * pin while they are paged out under a cap.  Its output under vmrun must
 * equal its native output.
 *
 *   odirect  one O_DIRECT read of a file into a buffer four times the
 *            largest cap the tests use (its pages pinned while the read
 *            runs): every page holds the file's bytes after
 *   pvm      process_vm_writev on itself from one buffer into another,
 *            each twice the cap: the destination holds the source's bytes
 *   fixed    io_uring registered buffers (pinned until unregistered): a
 *            READ_FIXED into the buffer, its pages swapped out and in; then
 *            the program rewrites it and a WRITE_FIXED takes it to a file
 *   locked   madvise(MADV_DONTNEED_LOCKED) of mlocked memory drops its pages
 *            (it was refused with EINVAL, and nothing dropped)
 *   lockall  mlockall(MCL_CURRENT | MCL_FUTURE) with a buffer four times
 *            the cap, a second one mapped after it, mlock of a third, the
 *            errors mlock and mlockall give natively, and a forked child
 *            doing the same: every page right (under vmrun the populate
 *            waited for ever on a page of ours, even uncapped)
 *   lockperm a forked child, then the program, drop CAP_IPC_LOCK (setuid
 *            to nobody, when root) under a 1 MiB RLIMIT_MEMLOCK: mlock of
 *            8 MiB and mlockall fail with ENOMEM, and with EPERM under a
 *            limit of 0 (the pager makes the call with its own rights:
 *            they succeeded)
 *
 * Each mode swaps the program's other memory out between steps (it touches
 * 24 MiB).  Prints one line per check; exits 1 when a page is wrong.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096ul

static uint64_t word(size_t i, unsigned gen)
{
	return (gen * 0x9E3779B97F4A7C15ull) ^ (i * 0x100000001B3ull) ^ ((uint64_t)i << 32);
}

static void fill(void *p, size_t n, unsigned gen)
{
	uint64_t *q = p;

	for (size_t i = 0; i < n / 8; i++)
		q[i] = word(i, gen);
}

/* Pages of p (n bytes) that do not hold generation gen. */
static size_t bad_pages(const void *p, size_t n, unsigned gen)
{
	const uint64_t *q = p;
	size_t bad = 0;

	for (size_t pg = 0; pg < n / PG; pg++)
		for (size_t w = pg * (PG / 8); w < (pg + 1) * (PG / 8); w++)
			if (q[w] != word(w, gen)) {
				bad++;
				break;
			}
	return bad;
}

static void *buffer(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	return p;
}

/* Touch 24 MiB: under a cap, everything else goes out. */
static void squeeze(void)
{
	size_t n = 24ul << 20;
	unsigned char *e = buffer(n);

	for (size_t i = 0; i < n; i += PG)
		e[i] = (unsigned char)(i >> 12 | 1);
	munmap(e, n);
}

/* A file in /var/tmp holding generation gen (n bytes), unlinked; -1 when
 * it cannot be made. */
static int data_file(size_t n, unsigned gen)
{
	char path[] = "/var/tmp/lp-pinned-XXXXXX";
	int fd = mkstemp(path);

	if (fd < 0)
		return -1;
	unlink(path);
	void *b = buffer(n);
	fill(b, n, gen);
	ssize_t w = write(fd, b, n);
	munmap(b, n);
	if (w != (ssize_t)n || fsync(fd)) {
		close(fd);
		return -1;
	}
	return fd;
}

static int odirect(void)
{
	size_t n = 2ul << 20;
	int fd = data_file(n, 1);
	if (fd < 0) {
		perror("data file");
		return 2;
	}
	char self[64];
	snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
	int dfd = open(self, O_RDONLY | O_DIRECT);
	if (dfd < 0) {
		/* (tmpfs and a few others have no O_DIRECT: the same natively) */
		printf("odirect: no O_DIRECT here\n");
		return 0;
	}
	unsigned char *b = buffer(n);
	fill(b, n, 2);
	squeeze();
	ssize_t r = pread(dfd, b, n, 0);
	printf("odirect: read %zd of %zu\n", r, n);
	size_t bad = bad_pages(b, n, 1);
	printf("odirect: %zu pages differ from the file\n", bad);
	squeeze();
	size_t again = bad_pages(b, n, 1);
	printf("odirect: %zu after swapping out again\n", again);
	return bad || again ? 1 : 0;
}

static int pvm(void)
{
	size_t n = 1ul << 20;
	unsigned char *src = buffer(n), *dst = buffer(n);

	fill(src, n, 6);
	fill(dst, n, 1);
	squeeze();
	struct iovec l = { src, n }, r = { dst, n };
	ssize_t w = process_vm_writev(getpid(), &l, 1, &r, 1, 0);
	printf("pvm: wrote %zd of %zu\n", w, n);
	size_t bad = bad_pages(dst, n, 6);
	printf("pvm: %zu pages differ from the source\n", bad);
	return bad ? 1 : 0;
}

static int one(struct io_uring *ring, int write, int fd, void *b, size_t n)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	struct io_uring_cqe *cqe;

	if (write)
		io_uring_prep_write_fixed(sqe, fd, b, (unsigned)n, 0, 0);
	else
		io_uring_prep_read_fixed(sqe, fd, b, (unsigned)n, 0, 0);
	io_uring_submit(ring);
	if (io_uring_wait_cqe(ring, &cqe))
		return -EIO;
	int res = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return res;
}

static int fixed(void)
{
	size_t n = 512ul << 10;
	struct io_uring ring;
	int rc = io_uring_queue_init(8, &ring, 0);
	if (rc) {
		printf("fixed: no io_uring here\n");
		return 0;
	}
	unsigned char *b = buffer(n);
	fill(b, n, 5);
	struct iovec iov = { b, n };
	rc = io_uring_register_buffers(&ring, &iov, 1);
	if (rc) {
		printf("fixed: cannot register buffers (%s)\n", strerror(-rc));
		return 0;
	}
	int fd = data_file(n, 9);
	if (fd < 0) {
		perror("data file");
		return 2;
	}
	squeeze();
	size_t bad = bad_pages(b, n, 5);
	printf("fixed: %zu pages changed before any I/O\n", bad);
	printf("fixed: read_fixed %d\n", one(&ring, 0, fd, b, n));
	size_t rd = bad_pages(b, n, 9);
	printf("fixed: %zu pages differ from the file after it\n", rd);
	squeeze();
	size_t rd2 = bad_pages(b, n, 9);
	printf("fixed: %zu after swapping out\n", rd2);
	fill(b, n, 11);
	squeeze();
	printf("fixed: write_fixed %d\n", one(&ring, 1, fd, b, n));
	unsigned char *back = buffer(n);
	ssize_t r = pread(fd, back, n, 0);
	size_t wr = r == (ssize_t)n ? bad_pages(back, n, 11) : n / PG;
	printf("fixed: %zu pages of the file differ from what was written\n", wr);
	return bad || rd || rd2 || wr ? 1 : 0;
}

#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24
#endif

static int locked(void)
{
	size_t n = 16 * PG;
	unsigned char *b = buffer(n);

	fill(b, n, 3);
	printf("locked: mlock %d\n", mlock(b, n));
	int r = madvise(b + 4 * PG, 4 * PG, MADV_DONTNEED_LOCKED);
	printf("locked: dontneed_locked %d %s\n", r, r ? strerror(errno) : "");
	size_t zero = 0, kept = 0;
	const uint64_t *q = (const uint64_t *)b;
	for (size_t pg = 0; pg < 16; pg++) {
		size_t z = 1, k = 1;
		for (size_t w = pg * (PG / 8); w < (pg + 1) * (PG / 8); w++) {
			z &= q[w] == 0;
			k &= q[w] == word(w, 3);
		}
		zero += z;
		kept += k;
	}
	printf("locked: %zu pages zero, %zu kept\n", zero, kept);
	munlock(b, n);
	return 0;
}

static int lock_and_check(const char *who)
{
	size_t n = 16ul << 20;
	unsigned char *a = buffer(n);
	fill(a, n, 5);
	int r = mlockall(MCL_CURRENT | MCL_FUTURE);
	printf("lockall %s: mlockall %d %s\n", who, r, r ? strerror(errno) : "");
	unsigned char *b = buffer(n), *c = buffer(n);
	fill(b, n, 6);
	fill(c, n, 7);
	r = mlock(c, n);
	printf("lockall %s: mlock %d %s\n", who, r, r ? strerror(errno) : "");
	squeeze();
	size_t bad = bad_pages(a, n, 5) + bad_pages(b, n, 6) + bad_pages(c, n, 7);
	errno = 0;
	r = mlockall(0);
	printf("lockall %s: mlockall(0) %d %s\n", who, r, strerror(errno));
	unsigned char *d = buffer(3 * PG); /* with a hole in the middle */
	munmap(d + PG, PG);
	errno = 0;
	r = mlock(d, 3 * PG);
	printf("lockall %s: mlock over a hole %d %s\n", who, r, strerror(errno));
	munmap(d, 3 * PG);
	munlockall();
	printf("lockall %s: %zu bad pages\n", who, bad);
	munmap(a, n);
	munmap(b, n);
	munmap(c, n);
	return bad ? 1 : 0;
}

static int lockall(void)
{
	int rc = lock_and_check("parent");
	pid_t pid = fork();
	if (pid == 0)
		_exit(lock_and_check("child"));
	int st = 0;
	waitpid(pid, &st, 0);
	printf("lockall: child exit %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128);
	return rc || st;
}

static void drop_and_try(const char *who, unsigned char *b, size_t n)
{
	struct rlimit rl = { 1 << 20, 1 << 20 };
	setrlimit(RLIMIT_MEMLOCK, &rl);
	if (geteuid() == 0 && setuid(65534))
		perror("setuid");
	errno = 0;
	int r = mlock(b, n);
	printf("lockperm %s: mlock of 8 MiB %d %s\n", who, r, strerror(errno));
	errno = 0;
	r = mlockall(MCL_CURRENT);
	printf("lockperm %s: mlockall %d %s\n", who, r, strerror(errno));
	rl.rlim_cur = 0;
	setrlimit(RLIMIT_MEMLOCK, &rl);
	errno = 0;
	r = mlock(b, PG);
	printf("lockperm %s: mlock under a limit of 0 %d %s\n", who, r, strerror(errno));
}

static int lockperm(void)
{
	size_t n = 8ul << 20;
	unsigned char *b = buffer(n);
	fill(b, n, 9);
	pid_t pid = fork();
	if (pid == 0) {
		drop_and_try("child", b, n);
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	drop_and_try("program", b, n);
	printf("lockperm: %zu bad pages\n", bad_pages(b, n, 9));
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(mode, "odirect"))
		return odirect();
	if (!strcmp(mode, "pvm"))
		return pvm();
	if (!strcmp(mode, "fixed"))
		return fixed();
	if (!strcmp(mode, "locked"))
		return locked();
	if (!strcmp(mode, "lockall"))
		return lockall();
	if (!strcmp(mode, "lockperm"))
		return lockperm();
	fprintf(stderr, "pinned: odirect, pvm or fixed\n");
	return 2;
}
