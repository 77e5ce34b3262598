/* fork: the child sees exactly the parent's memory at the fork — pages
 * never touched, resident, and swapped out — and they stay apart after. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/time.h>
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

static volatile sig_atomic_t chld;

static void on_chld(int sig)
{
	(void)sig;
	chld++;
}

/* Forks and memory calls while children exit, with a SIGCHLD handler
 * without SA_RESTART.  Natively fork and mmap never fail with EINTR.
 * Under vmrun the pager serves them through seccomp notifications, and a
 * caught signal in the microseconds before the pager receives one fails
 * the call with EINTR (README, Limits): busybox sh once failed one fork in
 * six runs ("can't fork: Interrupted system call") while the pager was
 * busy; now a receiver per CPU takes them at once.  This storm retries
 * such calls, reports them as a note (not compared), and checks that
 * every fork and every mapping works. */
static int storm(void)
{
	struct sigaction sa = { .sa_handler = on_chld };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGCHLD, &sa, NULL);
	int forks = 0, eintr = 0;
	for (int i = 0; i < 100; i++) {
		pid_t p;
		while ((p = fork()) < 0 && errno == EINTR)
			eintr++;
		if (p == 0)
			_exit(0);
		if (p < 0) {
			perror("fork");
			return 1;
		}
		forks++;
		void *m;
		while ((m = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) == MAP_FAILED &&
		       errno == EINTR)
			eintr++;
		if (m == MAP_FAILED) {
			perror("mmap");
			return 1;
		}
		memset(m, 1, 1 << 16);
		int rc;
		while ((rc = munmap(m, 1 << 16)) < 0 && errno == EINTR)
			eintr++;
		if (rc) {
			perror("munmap");
			return 1;
		}
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
	}
	for (;;) {
		if (wait(NULL) < 0 && errno != EINTR)
			break;
	}
	printf("storm: %d forks, %d handler calls seen\n", forks, chld > 0 ? 1 : 0);
	printf("note: %d calls interrupted\n", eintr);
	return 0;
}

/* The program exits at once; its child goes on a second later, alone,
 * reads the memory it inherited (much of it swapped out under a cap) and
 * writes its sum to path: natively it does. */
static int orphan(const char *path)
{
	size_t n = 8 * MB;
	unsigned char *heap = malloc(n);
	for (size_t i = 0; i < n; i += 256)
		heap[i] = (unsigned char)(i / 4096 + 5);
	uint64_t before = sum(heap, n);
	pid_t pid = fork();
	if (pid < 0)
		return 1;
	if (pid > 0)
		return 0;
	sleep(1);
	FILE *f = fopen(path, "w");
	if (!f)
		_exit(1);
	fprintf(f, "child alone: sum %s\n", sum(heap, n) == before ? "kept" : "changed");
	fclose(f);
	_exit(0);
}

/* MADV_WIPEONFORK: the child finds zeros there, whether the parent's
 * pages were in memory or swapped out (under a cap, the 16 MiB touched
 * before the fork sends them out); the parent keeps them.  (A child that
 * got them would share secrets and random state the program asked to
 * keep out of children.) */
static int wipe(void)
{
	size_t n = 64 * 4096;
	unsigned char *w = mmap(NULL, n, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char *k = mmap(NULL, n, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (w == MAP_FAILED || k == MAP_FAILED)
		return 1;
	memset(w, 0xab, n);
	memset(k, 0xcd, n);
	printf("madvise wipeonfork: %d\n", madvise(w, n, MADV_WIPEONFORK));
	unsigned char *big = malloc(16 * MB);
	for (size_t i = 0; i < 16 * MB; i += 4096)
		big[i] = (unsigned char)i | 1;
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		size_t left = 0, kept = 0;
		for (size_t i = 0; i < n; i += 4096) {
			left += w[i] != 0 || w[i + 4095] != 0;
			kept += k[i] == 0xcd && k[i + 4095] == 0xcd;
		}
		printf("child: %zu of 64 wiped pages hold data; %zu of 64 others kept\n",
		       left, kept);
		fflush(stdout);
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	size_t kept = 0;
	for (size_t i = 0; i < n; i += 4096)
		kept += w[i] == 0xab && w[i + 4095] == 0xab;
	printf("parent: %zu of 64 pages kept\n", kept);
	return 0;
}

static volatile sig_atomic_t ticks;

static void on_tick(int sig)
{
	(void)sig;
	ticks++;
}

/* 50 forks, each child checking a page of the parent's, under a 1 ms
 * interval timer with an SA_RESTART handler.  A fork that finds a signal
 * pending when it begins is restarted by the kernel after the handler;
 * natively that costs nothing.  Under vmrun the pager took 1 to 20 ms to
 * see that a fork it let go had been restarted, long enough for the next
 * tick to restart the next try: with a 1 to 10 ms timer no fork ended. */
static int timer(void)
{
	struct sigaction sa = { .sa_handler = on_tick, .sa_flags = SA_RESTART };
	struct itimerval it = { { 0, 1000 }, { 0, 1000 } };
	size_t n = 8 * MB;
	unsigned char *buf = malloc(n);
	int ok = 0;

	memset(buf, 3, n);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	setitimer(ITIMER_REAL, &it, NULL);
	for (int i = 0; i < 50; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0)
			_exit(buf[(size_t)i * 4096] == 3 ? 0 : 1);
		int st = 0;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		ok += WIFEXITED(st) && WEXITSTATUS(st) == 0;
	}
	it = (struct itimerval){ { 0, 0 }, { 0, 0 } };
	setitimer(ITIMER_REAL, &it, NULL);
	printf("timer: %d of 50 forks under a 1 ms timer saw their parent's page\n", ok);
	return ok == 50 ? 0 : 1;
}

/* Under a small RLIMIT_DATA (set before vmrun: the pager's memory counts
 * against the same address space): fill private memory to the limit,
 * leave less than a child's pager state needs, fork 8 times; each child
 * reads a page of a file mapping it never touched.  Its content must be
 * the file's, or the child killed (SIGKILL, with a reason), or the fork
 * refused: never zeros (the pager closed the child's userfaultfd when its
 * vm could not be built, and the child ran on, its code pages zero). */
static int starved(const char *path)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_DATA, &rl) || rl.rlim_cur == RLIM_INFINITY) {
		fprintf(stderr, "starved: needs a data limit (ulimit -d)\n");
		return 2;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 64 << 12;
	unsigned char *m = fd < 0 ? MAP_FAILED : mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED) {
		perror(path);
		return 2;
	}
	void *last[2] = { 0 };
	for (size_t n = 0;; n++) {
		void *p = mmap(NULL, 256 << 10, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			break;
		last[n % 2] = p;
	}
	munmap(last[0], 256 << 10);
	munmap(last[1], 256 << 10);
	int bad = 0, done = 0;
	for (int round = 0; round < 8; round++) {
		pid_t pid = fork();
		if (pid < 0)
			continue;
		if (pid == 0) {
			unsigned char want[4096];
			off_t off = (off_t)(8 + round) << 12;
			if (pread(fd, want, sizeof want, off) != (ssize_t)sizeof want)
				_exit(2);
			_exit(memcmp(m + off, want, sizeof want) ? 3 : 0);
		}
		int st = 0;
		waitpid(pid, &st, 0);
		if ((WIFEXITED(st) && WEXITSTATUS(st) == 0) ||
		    (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL))
			done++;
		else
			bad++;
	}
	printf("starved: %d children right or killed, %d wrong\n", done, bad);
	return bad ? 1 : 0;
}

/* The most pages of [m, m + pages) resident at once, as mincore() saw
 * them each time it was asked. */
static size_t peak_resident;

/* How many pages of [m, m + pages) mincore() sees resident ((size_t)-1:
 * it cannot say). */
static size_t resident_now(const uint64_t *m, size_t pages)
{
	static unsigned char vec[1 << 16];
	size_t n = 0;

	if (pages > sizeof vec || mincore((void *)m, pages * 4096, vec))
		return (size_t)-1;
	for (size_t i = 0; i < pages; i++)
		n += vec[i] & 1;
	return n;
}

static void note_resident(const uint64_t *m, size_t pages)
{
	size_t n = resident_now(m, pages);

	if (n != (size_t)-1 && n > peak_resident)
		peak_resident = n;
}

static size_t sample_pages; /* a child's: the whole mapping, to sample */

/* What word w of page pg holds for writer `who` (0: the parent). */
static uint64_t word_of(uint64_t who, size_t pg, size_t w)
{
	return (who + 1) * 0x9e3779b97f4a7c15ull ^ (pg << 9 | w);
}

/* One word in 64 of pages [from, to) checked against writer who; the
 * first page that differs is reported. */
static int check_pages(const uint64_t *m, size_t from, size_t to, uint64_t who,
		       const char *what)
{
	for (size_t pg = from; pg < to; pg++) {
		if (sample_pages && pg % 256 == 0)
			note_resident(m, sample_pages);
		for (size_t w = pg % 64; w < 512; w += 64)
			if (m[pg * 512 + w] != word_of(who, pg, w)) {
				printf("%s: page %zu word %zu is %#llx, not %#llx\n", what, pg, w,
				       (unsigned long long)m[pg * 512 + w],
				       (unsigned long long)word_of(who, pg, w));
				return 1;
			}
	}
	return 0;
}

static void fill_pages(uint64_t *m, size_t pages, uint64_t who)
{
	for (size_t pg = 0; pg < pages; pg++)
		for (size_t w = pg % 64; w < 512; w += 64)
			m[pg * 512 + w] = word_of(who, pg, w);
}

/* New private anonymous memory of `pages` pages, filled by writer who;
 * NULL if it cannot be mapped. */
static uint64_t *map_filled(size_t pages, uint64_t who)
{
	uint64_t *m = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	fill_pages(m, pages, who);
	return m;
}

/* A child's end: how much of its memory it held at once, and its status. */
static void child_done(int k, size_t pages, int r)
{
	printf("child %d: at most %zu of %zu pages resident\n", k, peak_resident, pages);
	fflush(stdout);
	_exit(r);
}

/* Wait for kids children: how many ended other than with status 0. */
static int wait_children(int kids)
{
	int bad = 0;

	for (int k = 0; k < kids; k++) {
		int st = 0;
		if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
			bad++;
	}
	return bad;
}

/* Fork `kids` children at once: in each child its number, in the parent
 * -1 once all are started, -2 when a fork failed. */
static int fork_kids(int kids)
{
	fflush(stdout);
	for (int k = 0; k < kids; k++) {
		pid_t pid = fork();
		if (pid < 0)
			return -2;
		if (pid == 0)
			return k;
	}
	return -1;
}

/*
 * Children that work on what they inherited: the parent fills mb MiB, then
 * `kids` children at once each read all of it (the parent's content),
 * write half of it, and read it all twice more (their half, the parent's
 * half), while the parent waits.  Under a cap smaller than one child's
 * share, their pages must leave memory and come back right.
 */
static int inherit(const char *mbs, const char *kidss)
{
	size_t pages = (size_t)atoi(mbs) * 256;
	int kids = atoi(kidss), bad = 0;
	uint64_t *m = map_filled(pages, 0);
	if (!m)
		return 2;
	int k = fork_kids(kids);
	if (k == -2)
		return 2;
	if (k >= 0) {
		sample_pages = pages;
		int r = check_pages(m, 0, pages, 0, "child reads the parent's");
		fill_pages(m, pages / 2, (uint64_t)k + 1);
		for (int pass = 0; pass < 2 && !r; pass++)
			r = check_pages(m, 0, pages / 2, (uint64_t)k + 1, "child reads its own") |
			    check_pages(m, pages / 2, pages, 0, "child reads the parent's, later");
		child_done(k, pages, r);
	}
	bad += wait_children(kids);
	bad += check_pages(m, 0, pages, 0, "parent reads its own");
	printf("inherit: %d children, %d wrong\n", kids, bad);
	return bad ? 1 : 0;
}

/*
 * Children that allocate: `kids` children at once each map mb MiB of their
 * own after the fork, fill it and read it back twice, then move a quarter
 * of it (mremap) and map more where that quarter was, and read all
 * of it back twice.  Under vmrun their new memory is under the cap too.
 */
static int allocate(const char *mbs, const char *kidss)
{
	size_t pages = (size_t)atoi(mbs) * 256;
	int kids = atoi(kidss), bad = 0;

	int k = fork_kids(kids);
	if (k == -2)
		return 2;
	if (k >= 0) {
		uint64_t *m = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			_exit(2);
		sample_pages = pages;
		fill_pages(m, pages, (uint64_t)k + 7);
		int r = 0;
		for (int pass = 0; pass < 2 && !r; pass++)
			r = check_pages(m, 0, pages, (uint64_t)k + 7, "child reads its new memory");
		/* It moves a quarter of it elsewhere (mremap, as realloc
		 * does) and maps new memory where that was (as malloc's next
		 * mmap may): each keeps its own content. */
		size_t q = pages / 4;
		uint64_t *moved = mremap(m + (pages - q) * 512, q * 4096, 2 * q * 4096,
					 MREMAP_MAYMOVE);
		uint64_t *fresh = mmap(m + (pages - q) * 512, q * 4096, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (moved == MAP_FAILED || fresh == MAP_FAILED)
			_exit(2);
		fill_pages(fresh, q, (uint64_t)k + 99);
		for (int pass = 0; pass < 2 && !r; pass++) {
			r = check_pages(m, 0, pages - q, (uint64_t)k + 7, "child reads what stayed");
			for (size_t pg = 0; pg < q && !r; pg++) {
				size_t w = (pages - q + pg) % 64;
				uint64_t want = word_of((uint64_t)k + 7, pages - q + pg, w);
				r = moved[pg * 512 + w] != want;
				if (r)
					printf("child reads what moved: page %zu of %zu (pass %d) "
					       "word %zu is %#llx, not %#llx (at %p, from %p)\n", pg, q, pass, w,
					       (unsigned long long)moved[pg * 512 + w],
					       (unsigned long long)want, (void *)&moved[pg * 512], (void *)&m[(pages - q + pg) * 512]);
			}
			r = r || check_pages(fresh, 0, q, (uint64_t)k + 99, "child reads what it mapped after");
		}
		child_done(k, pages, r);
	}
	bad += wait_children(kids);
	printf("allocate: %d children, %d wrong\n", kids, bad);
	return bad ? 1 : 0;
}


/*
 * An idle parent and busy children: the parent fills mb MiB, then `kids`
 * children each map kmb MiB of their own, fill it and read it back four
 * times, while the parent only waits, looking every 10 ms at how much of
 * its memory is resident.  Under a cap, an idle parent gives up what it
 * holds beyond its fair part to children that wait for room below theirs.
 * Reports the fewest of its pages it saw resident.
 */
static int idle_parent(const char *mbs, const char *kidss, const char *kmbs)
{
	size_t pages = (size_t)atoi(mbs) * 256, kpages = (size_t)atoi(kmbs) * 256;
	int kids = atoi(kidss), bad = 0;
	uint64_t *m = map_filled(pages, 0);
	if (!m)
		return 2;
	int k = fork_kids(kids);
	if (k == -2)
		return 2;
	if (k >= 0) {
		uint64_t *c = map_filled(kpages, (uint64_t)k + 7);
		if (!c)
			_exit(2);
		int r = 0;
		for (int pass = 0; pass < 4 && !r; pass++)
			r = check_pages(c, 0, kpages, (uint64_t)k + 7, "child reads its memory");
		_exit(r);
	}
	size_t fewest = pages;
	for (int left = kids; left > 0;) {
		int st = 0;
		pid_t w = waitpid(-1, &st, WNOHANG);
		if (w < 0)
			return 2;
		if (w > 0) {
			left--;
			bad += !WIFEXITED(st) || WEXITSTATUS(st);
			continue;
		}
		size_t n = resident_now(m, pages);
		if (n == (size_t)-1)
			return 2;
		if (n < fewest)
			fewest = n;
		usleep(10000);
	}
	bad += check_pages(m, 0, pages, 0, "parent reads its own");
	printf("idle parent: %d children, %d wrong; its pages resident: %zu of %zu at the fewest\n",
	       kids, bad, fewest, pages);
	return bad ? 1 : 0;
}

/* A number (KiB) from /proc/self/status, 0 when there is none. */
static unsigned long status_kib(const char *key)
{
	char line[128];
	unsigned long v = 0;
	size_t n = strlen(key);
	FILE *f = fopen("/proc/self/status", "re");

	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, key, n))
			v = strtoul(line + n, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

/*
 * Children that map new memory and fill it at once, as fast as they can:
 * `kids` children each map mb MiB after the fork and write a word of each
 * page, in order.  Each reports by how much its peak resident set grew
 * (VmHWM at the end minus VmRSS before the mmap), which a cap must bound:
 * a mapping the pager takes only once the child has touched it counts
 * the pages touched meanwhile.
 */
static int fill_new(const char *mbs, const char *kidss)
{
	size_t pages = (size_t)atoi(mbs) * 256;
	int kids = atoi(kidss);

	int k = fork_kids(kids);
	if (k == -2)
		return 2;
	if (k >= 0) {
		unsigned long before = status_kib("VmRSS:");
		volatile uint64_t *m = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE,
					    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			_exit(2);
		for (size_t pg = 0; pg < pages; pg++)
			m[pg * 512] = pg + 1;
		int r = 0;
		for (size_t pg = 0; pg < pages && !r; pg++)
			r = m[pg * 512] != pg + 1;
		printf("child %d: grew by %lu KiB filling %zu KiB, %s\n", k,
		       status_kib("VmHWM:") - before, pages * 4, r ? "WRONG" : "right");
		fflush(stdout);
		_exit(r);
	}
	int bad = wait_children(kids);
	printf("fill: %d children, %d wrong\n", kids, bad);
	return bad ? 1 : 0;
}

/*
 * A child's memory moved, and new memory mapped where it was (as a
 * realloc's mremap and malloc's next mmap may do): a child maps mb MiB,
 * fills it, moves it all with mremap (a page mapped after it keeps it
 * from growing in place), maps mb MiB again at the old address, fills
 * that, reads both back twice, and reports how many pages of what it
 * mapped there are resident at the end (mincore), its resident set
 * (VmRSS), and whether every word read back right.
 */
static int move_refill(const char *mbs)
{
	size_t pages = (size_t)atoi(mbs) * 256;

	int k = fork_kids(1);
	if (k == -2)
		return 2;
	if (k >= 0) {
		uint64_t *m = mmap(NULL, (pages + 1) * 4096, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			_exit(2);
		/* (the page after it, unmapped and mapped again on its own) */
		if (munmap(m + pages * 512, 4096) ||
		    mmap(m + pages * 512, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
			 -1, 0) == MAP_FAILED)
			_exit(2);
		fill_pages(m, pages, 7);
		uint64_t *moved = mremap(m, pages * 4096, 2 * pages * 4096, MREMAP_MAYMOVE);
		if (moved == MAP_FAILED || moved == m)
			_exit(2);
		uint64_t *fresh = mmap(m, pages * 4096, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (fresh != m)
			_exit(2);
		fill_pages(fresh, pages, 8);
		int r = 0;
		for (int pass = 0; pass < 2 && !r; pass++)
			r = check_pages(moved, 0, pages, 7, "child reads what moved") |
			    check_pages(fresh, 0, pages, 8, "child reads what it mapped there");
		/* (What it mapped there, resident at the end: all of it while
		 * it was the kernel's.) */
		unsigned char *vec = malloc(pages);
		size_t in = 0;
		if (!vec || mincore(fresh, pages * 4096, vec))
			_exit(2);
		for (size_t pg = 0; pg < pages; pg++)
			in += vec[pg] & 1;
		printf("child: %s, %zu of the %zu pages mapped where it moved from resident, "
		       "%lu KiB in all\n", r ? "WRONG" : "right", in, pages, status_kib("VmRSS:"));
		fflush(stdout);
		_exit(r);
	}
	return wait_children(1) ? 1 : 0;
}

/* Whether pages [from, to) of m are all zero (one word in 64 looked at). */
static int check_zero(const uint64_t *m, size_t from, size_t to, const char *what)
{
	for (size_t pg = from; pg < to; pg++)
		for (size_t w = pg % 64; w < 512; w += 64)
			if (m[pg * 512 + w]) {
				printf("%s: page %zu word %zu is %#llx, not 0\n", what, pg, w,
				       (unsigned long long)m[pg * 512 + w]);
				return 1;
			}
	return 0;
}

/*
 * A child that moves paged memory every way mremap can, three times: onto
 * another mapping of its own (MREMAP_FIXED), grown where the kernel finds
 * room, shrunk in place with new memory mapped where the tail was; each
 * page read back after each step.
 */
static int shuffle(const char *mbs)
{
	size_t pages = (size_t)atoi(mbs) * 256;

	if (fork_kids(1) == 0) {
		int r = 0;
		for (uint64_t round = 0; round < 3 && !r; round++) {
			uint64_t *a = map_filled(pages, 1 + round), *b = map_filled(pages, 50 + round);
			if (!a || !b)
				_exit(2);
			uint64_t *c = mremap(a, pages * 4096, pages * 4096,
					     MREMAP_MAYMOVE | MREMAP_FIXED, b);
			if (c != b)
				_exit(2);
			r = check_pages(c, 0, pages, 1 + round, "moved onto another mapping");
			uint64_t *d = mremap(c, pages * 4096, 2 * pages * 4096, MREMAP_MAYMOVE);
			if (d == MAP_FAILED)
				_exit(2);
			r = r || check_pages(d, 0, pages, 1 + round, "grown") ||
			    check_zero(d, pages, 2 * pages, "its growth");
			uint64_t *e = mremap(d, 2 * pages * 4096, pages * 4096, MREMAP_MAYMOVE);
			uint64_t *f = mmap(e + pages * 512, pages * 4096, PROT_READ | PROT_WRITE,
					   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
			if (e != d || f == MAP_FAILED)
				_exit(2);
			fill_pages(f, pages, 70 + round);
			r = r || check_pages(e, 0, pages, 1 + round, "shrunk") ||
			    check_pages(f, 0, pages, 70 + round, "mapped where its tail was");
			munmap(e, pages * 4096);
			munmap(f, pages * 4096);
		}
		printf("shuffle: %s\n", r ? "WRONG" : "right");
		fflush(stdout);
		_exit(r);
	}
	return wait_children(1) ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc > 2 && strcmp(argv[1], "refill") == 0)
		return move_refill(argv[2]);
	if (argc > 2 && strcmp(argv[1], "shuffle") == 0)
		return shuffle(argv[2]);
	if (argc > 3 && strcmp(argv[1], "fill") == 0)
		return fill_new(argv[2], argv[3]);
	if (argc > 4 && strcmp(argv[1], "idle") == 0)
		return idle_parent(argv[2], argv[3], argv[4]);
	if (argc > 3 && strcmp(argv[1], "allocate") == 0)
		return allocate(argv[2], argv[3]);
	if (argc > 3 && strcmp(argv[1], "inherit") == 0)
		return inherit(argv[2], argv[3]);
	if (argc > 2 && strcmp(argv[1], "starved") == 0)
		return starved(argv[2]);
	if (argc > 1 && strcmp(argv[1], "timer") == 0)
		return timer();
	if (argc > 1 && strcmp(argv[1], "wipe") == 0)
		return wipe();
	if (argc > 1 && strcmp(argv[1], "storm") == 0)
		return storm();
	if (argc > 2 && strcmp(argv[1], "orphan") == 0)
		return orphan(argv[2]);
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
