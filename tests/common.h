/* SPDX-License-Identifier: MIT */
/* Helpers shared by the tests. */
#ifndef LP_TEST_COMMON_H
#define LP_TEST_COMMON_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lazypage/lazypage.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096u

/* Create a vm, or skip the test with the reason when userfaultfd is refused
 * here (no CAP_SYS_PTRACE, no /dev/userfaultfd access, old kernel). */
#define VM_OR_SKIP(vmp, cfgp)                                                 \
	do {                                                                  \
		int rc_ = lp_vm_create((vmp), (cfgp));                        \
		if (rc_ == -EPERM || rc_ == -EACCES || rc_ == -ENOSYS)        \
			cr_skip_test("userfaultfd refused here (%s): needs "  \
				     "CAP_SYS_PTRACE or /dev/userfaultfd",    \
				     strerror(-rc_));                         \
		cr_assert_eq(rc_, 0, "lp_vm_create: %s", strerror(-rc_));     \
	} while (0)

/* Whether userfaultfd is refused here (the tests that need it skip). */
static inline bool userfaultfd_refused(void)
{
	struct lp_vm *vm;
	int rc = lp_vm_create(&vm, NULL);

	if (rc)
		return rc == -EPERM || rc == -EACCES || rc == -ENOSYS;
	lp_vm_destroy(vm);
	return false;
}

static inline struct lp_config cfg_frames(size_t frames)
{
	struct lp_config c;

	lp_config_init(&c);
	c.frames = frames;
	return c;
}

/* A word that identifies (page i, generation g). */
static inline uint64_t stamp(uint64_t i, uint64_t g)
{
	return (i * 0x9e3779b97f4a7c15ull) ^ (g << 48) ^ 0x5a5a;
}

/* Fill page i of p with a pattern of generation g (every word). */
static inline void fill_page(uint64_t *p, uint64_t i, uint64_t g)
{
	uint64_t *q = p + i * (PG / 8);

	for (unsigned w = 0; w < PG / 8; w++)
		q[w] = stamp(i, g) + w;
}

/* Whether page i holds generation g; on a mismatch, the first bad word. */
static inline int check_page(const uint64_t *p, uint64_t i, uint64_t g)
{
	const uint64_t *q = p + i * (PG / 8);

	for (unsigned w = 0; w < PG / 8; w++)
		if (q[w] != stamp(i, g) + w)
			return (int)w;
	return -1;
}

/* One of several threads started together over the pages of p: it writes
 * generation g into pages first, first + step, ... below end, or with
 * check counts those that do not hold g (bad). */
struct page_walk {
	uint64_t *p;
	size_t first, step, end;
	uint64_t g;
	bool check;
	size_t bad;
	pthread_t tid;
};

static inline void *page_walk_main(void *arg)
{
	struct page_walk *w = arg;

	for (size_t i = w->first; i < w->end; i += w->step) {
		if (w->check)
			w->bad += check_page(w->p, i, w->g) != -1;
		else
			fill_page(w->p, i, w->g);
	}
	return NULL;
}

/* Run the n walks at once and wait for them: the pages found bad. */
static inline size_t page_walks(struct page_walk *w, size_t n)
{
	size_t bad = 0;

	for (size_t k = 0; k < n; k++)
		cr_assert_eq(pthread_create(&w[k].tid, NULL, page_walk_main, &w[k]), 0);
	for (size_t k = 0; k < n; k++) {
		pthread_join(w[k].tid, NULL);
		bad += w[k].bad;
	}
	return bad;
}

/* A temporary file of n bytes, each byte = (offset * 31 + 7) & 0xff. */
static inline int temp_file(size_t n, char *path, size_t pathlen)
{
	snprintf(path, pathlen, "/tmp/lp-test-XXXXXX");
	int fd = mkstemp(path);
	cr_assert(fd >= 0, "mkstemp: %s", strerror(errno));
	unsigned char buf[PG];
	for (size_t off = 0; off < n; off += PG) {
		size_t len = n - off < PG ? n - off : PG;
		for (size_t k = 0; k < len; k++)
			buf[k] = (unsigned char)(((off + k) * 31 + 7) & 0xff);
		cr_assert_eq(pwrite(fd, buf, len, (off_t)off), (ssize_t)len);
	}
	return fd;
}

static inline unsigned char file_byte(size_t off)
{
	return (unsigned char)((off * 31 + 7) & 0xff);
}

/* Number of entries in a /proc directory (fds, tasks). */
static inline int count_dir(const char *path)
{
	DIR *d = opendir(path);
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static inline struct lp_stats stats_of(struct lp_vm *vm)
{
	struct lp_stats st;

	cr_assert_eq(lp_stats_get(vm, &st), 0);
	return st;
}

/* The statistics once the faults of one kind number at least want, or
 * after a second: a fault is counted just after its thread was let go
 * (lp_stats_get), so a test that just touched its pages may read the
 * last count a moment early. */
static inline struct lp_stats stats_settled(struct lp_vm *vm,
					    enum lp_fault_kind kind,
					    uint64_t want)
{
	struct lp_stats st = stats_of(vm);

	for (int i = 0; i < 1000 && st.faults[kind] < want; i++) {
		usleep(1000);
		st = stats_of(vm);
	}
	return st;
}

/* What a program run by run_captured() did: its wait status as waitpid()
 * gives it, and all it wrote to stdout and stderr (NUL-terminated, to
 * free()). */
struct run_result {
	int status;
	char *out;
	size_t len;
	char *err;
	size_t errlen;
};

static inline void run_result_free(struct run_result *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

/* All of fd from its current offset, in a new NUL-terminated buffer. */
static inline void slurp(int fd, char **buf, size_t *len)
{
	size_t cap = 4096;
	*buf = malloc(cap);
	*len = 0;
	for (;;) {
		if (*len + 1 >= cap)
			*buf = realloc(*buf, cap *= 2);
		ssize_t n = read(fd, *buf + *len, cap - *len - 1);
		if (n <= 0)
			break;
		*len += (size_t)n;
	}
	(*buf)[*len] = 0;
}

/* Run argv (searched in PATH, which is set to path first if not NULL),
 * stdout and stderr captured in unlinked temporary files (no pipe to fill
 * while nobody reads it).  With timeout_ms, killed after that long: a hung
 * program ends with SIGKILL.  Status 125: the program could not start. */
static inline struct run_result run_captured(char *const argv[],
					     const char *path, int timeout_ms)
{
	struct run_result r = { 0 };
	char outp[] = "/tmp/lp-test-out-XXXXXX";
	char errp[] = "/tmp/lp-test-err-XXXXXX";
	int out = mkstemp(outp), err = mkstemp(errp);
	unlink(outp);
	unlink(errp);
	cr_assert(out >= 0 && err >= 0, "mkstemp: %s", strerror(errno));
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		dup2(out, 1);
		dup2(err, 2);
		if (path)
			setenv("PATH", path, 1);
		execvp(argv[0], argv);
		_exit(125);
	}
	for (int ms = 0;; ms += 5) {
		pid_t w = waitpid(pid, &r.status, timeout_ms ? WNOHANG : 0);
		cr_assert(w >= 0, "waitpid: %s", strerror(errno));
		if (w == pid)
			break;
		if (ms == timeout_ms)
			kill(pid, SIGKILL);
		usleep(5000);
	}
	lseek(out, 0, SEEK_SET);
	lseek(err, 0, SEEK_SET);
	slurp(out, &r.out, &r.len);
	slurp(err, &r.err, &r.errlen);
	close(out);
	close(err);
	return r;
}

/* ---- SIGBUS at a page (a page whose content is lost) ---- */

__attribute__((unused)) static sigjmp_buf bus_jmp;
__attribute__((unused)) static volatile void *bus_addr;
__attribute__((unused)) static volatile int bus_code;

static inline void on_bus(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	bus_addr = si->si_addr;
	bus_code = si->si_code;
	siglongjmp(bus_jmp, 1);
}

/* SIGBUS goes to on_bus (touch_bus() catches it). */
static inline void catch_bus(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_bus;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGBUS, &sa, NULL);
}

/* Touch page i of p; true when it raised SIGBUS (bus_addr: where). */
static inline bool touch_bus(const uint64_t *p, size_t i, uint64_t *word)
{
	if (sigsetjmp(bus_jmp, 1))
		return true;
	*word = ((volatile const uint64_t *)p)[i * (PG / 8)];
	return false;
}

#endif
