/* SPDX-License-Identifier: MIT */
/*
 * The remote store on real Redis servers (redis-server from Debian, started
 * here on loopback ports and stopped at the end): pages round-trip through
 * three shards with two copies each; a shard killed or frozen mid-run loses
 * nothing; with no copy left a page is SIGBUS at its address, never zeros;
 * AUTH comes from the environment; sealed pages leave the machine sealed;
 * every key of the run is deleted at the end.  Skips where redis-server is
 * not installed (tools/setup installs it).
 */
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include "common.h"

#define SHARDS 3
#define FRAMES 64

struct server {
	pid_t pid;
	int port;
};

static struct server srv[SHARDS];
static char dir[64];

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;

	cr_assert(fd >= 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static redisContext *client(int i)
{
	struct timeval tv = { 1, 0 };
	redisContext *c = redisConnectWithTimeout("127.0.0.1", srv[i].port, tv);
	if (c && c->err) {
		redisFree(c);
		return NULL;
	}
	return c;
}

static long long dbsize(int i, const char *pass)
{
	redisContext *c = client(i);
	long long n = -1;
	if (!c)
		return -1;
	if (pass)
		freeReplyObject(redisCommand(c, "AUTH %s", pass));
	redisReply *r = redisCommand(c, "DBSIZE");
	if (r && r->type == REDIS_REPLY_INTEGER)
		n = r->integer;
	if (r)
		freeReplyObject(r);
	redisFree(c);
	return n;
}

/* Start shard i's redis-server on its port (pass: its password, or
 * NULL), empty, and wait until it answers. */
static void start_server(int i, const char *pass)
{
	pid_t parent = getpid();
	char port[16];

	snprintf(port, sizeof port, "%d", srv[i].port);
	srv[i].pid = fork();
	cr_assert(srv[i].pid >= 0);
	if (srv[i].pid == 0) {
		/* a test that crashes leaves no server behind */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		dup2(null, 2);
		execl("/usr/bin/redis-server", "redis-server", "--port", port, "--bind",
		      "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir,
		      pass ? "--requirepass" : NULL, pass, (char *)NULL);
		_exit(127);
	}
	int k = 0;
	while (dbsize(i, pass) < 0 && k++ < 500)
		usleep(10000);
	cr_assert(k < 500, "redis-server on port %d did not start", srv[i].port);
}

/* Start the shards (pass: their password, or NULL); skip without
 * redis-server. */
static void start_servers(const char *pass)
{
	if (access("/usr/bin/redis-server", X_OK))
		cr_skip_test("redis-server is not installed (tools/setup installs it)");
	if (userfaultfd_refused())
		cr_skip_test("userfaultfd refused here");
	snprintf(dir, sizeof dir, "/tmp/lp-remote-XXXXXX");
	cr_assert(mkdtemp(dir));
	for (int i = 0; i < SHARDS; i++) {
		srv[i].port = free_port();
		start_server(i, pass);
	}
}

static void stop_servers(void)
{
	for (int i = 0; i < SHARDS; i++)
		if (srv[i].pid > 0) {
			kill(srv[i].pid, SIGCONT);
			kill(srv[i].pid, SIGKILL);
			waitpid(srv[i].pid, NULL, 0);
			srv[i].pid = 0;
		}
	if (dir[0]) {
		char cmd[128];
		snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
		(void)!system(cmd);
		dir[0] = 0;
	}
}

static void kill_server(int i, int sig)
{
	kill(srv[i].pid, sig);
	if (sig == SIGKILL) {
		waitpid(srv[i].pid, NULL, 0);
		srv[i].pid = 0;
	}
}

static char spec[256];

static struct lp_config remote_cfg(unsigned replicas)
{
	struct lp_config c = cfg_frames(FRAMES);
	int n = snprintf(spec, sizeof spec, "redis://");
	for (int i = 0; i < SHARDS; i++)
		n += snprintf(spec + n, sizeof spec - (size_t)n, "%s127.0.0.1:%d",
			      i ? "," : "", srv[i].port);
	c.remote = spec;
	c.remote_replicas = replicas;
	return c;
}

static void fill_all(uint64_t *p, size_t pages, uint64_t g)
{
	for (size_t i = 0; i < pages; i++)
		fill_page(p, i, g);
}

static size_t lost(const uint64_t *p, size_t pages, uint64_t g)
{
	size_t bad = 0;
	for (size_t i = 0; i < pages; i++)
		bad += check_page(p, i, g) != -1;
	return bad;
}

TestSuite(remote, .fini = stop_servers, .timeout = 120);

/* Shards started, a vm on them (2 copies, flags added, frames or FRAMES),
 * pages mapped at *p. */
static struct lp_vm *remote_vm(size_t pages, uint64_t **p, unsigned flags, size_t frames)
{
	struct lp_vm *vm;
	start_servers(NULL);
	struct lp_config c = remote_cfg(2);
	c.flags |= flags;
	if (frames)
		c.frames = frames;
	VM_OR_SKIP(&vm, &c);
	cr_assert_eq(lp_map_anon(vm, pages * PG, PROT_READ | PROT_WRITE, (void **)p), 0);
	return vm;
}

Test(remote, pages_round_trip_on_two_of_three_shards)
{
	size_t pages = 1024;
	uint64_t *p;
	struct lp_vm *vm = remote_vm(pages, &p, 0, 0);
	for (uint64_t g = 1; g <= 2; g++) {
		fill_all(p, pages, g);
		cr_assert_eq(lost(p, pages, g), 0, "generation %lu", (unsigned long)g);
		cr_assert_eq(lost(p, pages, g), 0, "generation %lu, again", (unsigned long)g);
	}
	struct lp_stats st = stats_of(vm);
	cr_assert_gt(st.swap_outs, pages / 2);
	cr_assert_gt(st.faults[LP_FAULT_SWAPIN], 0);
	cr_assert_eq(st.io_errors, 0);
	/* Two copies of each page out: every shard holds some, together
	 * about twice what is out. */
	long long sum = 0;
	for (int i = 0; i < SHARDS; i++) {
		long long n = dbsize(i, NULL);
		cr_assert_gt(n, 0, "shard %d holds nothing", i);
		sum += n;
	}
	cr_assert_geq(sum, 2 * (long long)(pages - FRAMES) * 9 / 10,
		      "%lld keys for %zu pages out, two copies each", sum, pages - FRAMES);
	lp_vm_destroy(vm);
	for (int i = 0; i < SHARDS; i++)
		cr_assert_eq(dbsize(i, NULL), 0, "shard %d keeps keys of the run", i);
}

/* With a largest swap file the chain is frames, the file, then the
 * shards: the file takes the first slots, the shards the rest, and pages
 * on both come back (also with a shard gone), each run of slots on one. */
Test(remote, the_swap_file_first_then_the_shards)
{
	start_servers(NULL);
	struct lp_vm *vm;
	struct lp_config c = remote_cfg(2);
	c.swap_max = 256 * PG;
	c.flags &= ~LP_CFG_NO_READAHEAD;
	VM_OR_SKIP(&vm, &c);
	size_t pages = 2048;
	uint64_t *p;
	cr_assert_eq(lp_map_anon(vm, pages * PG, PROT_READ | PROT_WRITE, (void **)&p), 0);
	fill_all(p, pages, 1);
	cr_assert_eq(lost(p, pages, 1), 0);
	struct lp_stats st = stats_of(vm);
	cr_assert_geq(st.remote_pages, 1000, "%lu pages on the shards",
		      (unsigned long)st.remote_pages);
	cr_assert_geq(st.swap_slots_used, st.remote_pages + 200,
		      "%lu slots in use, %lu of them on the shards: the file took few",
		      (unsigned long)st.swap_slots_used, (unsigned long)st.remote_pages);
	fill_all(p, pages, 2);
	kill_server(0, SIGKILL);
	cr_assert_eq(lost(p, pages, 2), 0, "pages lost with shard 0");
	st = stats_of(vm);
	cr_assert_eq(st.io_errors, 0, "%lu I/O errors, last %d", (unsigned long)st.io_errors,
		     st.last_error);
	lp_vm_destroy(vm);
	for (int i = 1; i < SHARDS; i++)
		cr_assert_eq(dbsize(i, NULL), 0, "shard %d keeps keys of the run", i);
}

/* Four threads scan their quarters with readahead on (runs of reads of
 * many slots at once), then read in a stride that defeats it: every page
 * back, from the shards. */
Test(remote, four_threads_scan_with_readahead)
{
	start_servers(NULL);
	struct lp_vm *vm;
	struct lp_config c = remote_cfg(2);
	c.frames = 256;
	c.flags &= ~LP_CFG_NO_READAHEAD;
	VM_OR_SKIP(&vm, &c);
	size_t pages = 8192, n = 4;
	uint64_t *p;
	cr_assert_eq(lp_map_anon(vm, pages * PG, PROT_READ | PROT_WRITE, (void **)&p), 0);
	fill_all(p, pages, 1);
	struct page_walk wk[4];
	for (size_t k = 0; k < n; k++)
		wk[k] = (struct page_walk){ .p = p, .first = k * pages / n, .step = 1,
					    .end = (k + 1) * pages / n, .g = 1, .check = true };
	cr_assert_eq(page_walks(wk, n), 0, "pages lost in the scans");
	for (size_t k = 0; k < n; k++)
		wk[k] = (struct page_walk){ .p = p, .first = k, .step = 37,
					    .end = pages, .g = 1, .check = true };
	cr_assert_eq(page_walks(wk, n), 0, "pages lost in the strides");
	struct lp_stats st = stats_of(vm);
	cr_assert_gt(st.readahead_pages, pages / 4, "no readahead (%lu)",
		     (unsigned long)st.readahead_pages);
	cr_assert_eq(st.io_errors, 0, "%lu I/O errors, last %d, remote errors %lu",
		     (unsigned long)st.io_errors, st.last_error, (unsigned long)st.remote_errors);
	lp_vm_destroy(vm);
}

/* Pages out on every shard, then shard 0 is killed (or frozen): every
 * page reads back from its other copy; new evictions go on. */
static void lose_a_shard(int sig)
{
	size_t pages = 1024;
	uint64_t *p;
	struct lp_vm *vm = remote_vm(pages, &p, 0, 0);
	fill_all(p, pages, 1);
	kill_server(0, sig);
	cr_assert_eq(lost(p, pages, 1), 0, "pages lost with shard 0 %s",
		     sig == SIGKILL ? "killed" : "frozen");
	fill_all(p, pages, 2);
	cr_assert_eq(lost(p, pages, 2), 0, "new evictions lost");
	struct lp_stats st = stats_of(vm);
	cr_assert_eq(st.io_errors, 0);
	cr_assert_eq(st.fill_errors, 0);
	if (sig == SIGSTOP)
		kill(srv[0].pid, SIGCONT);
	lp_vm_destroy(vm);
}

Test(remote, a_shard_killed_mid_run_loses_nothing) { lose_a_shard(SIGKILL); }
Test(remote, a_shard_frozen_mid_run_loses_nothing) { lose_a_shard(SIGSTOP); }

Test(remote, copies_lost_with_a_shard_are_made_again)
{
	size_t pages = 1024;
	uint64_t *p;
	struct lp_vm *vm = remote_vm(pages, &p, 0, 0);
	fill_all(p, pages, 1);
	/* Shard 0 dies; reading the pages finds it gone, and the copies it
	 * held are made again on the others meanwhile. */
	kill_server(0, SIGKILL);
	cr_assert_eq(lost(p, pages, 1), 0);
	fill_all(p, pages / 2, 2); /* the first half anew, out again */
	sleep(3);
	/* Then a second shard dies: every page still has a copy (without
	 * the copies made again, a third of them had theirs on 0 and 1). */
	kill_server(1, SIGKILL);
	cr_assert_eq(lost(p, pages / 2, 2), 0);
	for (size_t i = pages / 2; i < pages; i++)
		cr_assert_eq(check_page(p, i, 1), -1, "page %zu lost with shards 0 and 1", i);
	lp_vm_destroy(vm);
}

/* A shard that restarts empty lost its copies, although it answers: they
 * are made again on the others, so that a second shard's death later
 * loses nothing.  (Its connections break with the restart; the copies
 * were made again only while it was left out, a second: a table too
 * large to go through in that time kept, for its later slots, copies
 * that no longer existed.) */
Test(remote, a_shard_restarted_empty_gets_its_copies_made_again, .timeout = 300)
{
	size_t pages = 32768;
	uint64_t *p;
	struct lp_vm *vm = remote_vm(pages, &p, 0, 256);
	fill_all(p, pages, 1);
	kill_server(0, SIGKILL);
	start_server(0, NULL);
	/* Reads find its connections broken, and its copies gone. */
	cr_assert_eq(lost(p, pages / 16, 1), 0);
	sleep(6);
	kill_server(1, SIGKILL);
	catch_bus();
	size_t bad = 0;
	for (size_t i = 0; i < pages; i++) {
		uint64_t w = 0;
		bad += touch_bus(p, i, &w) || w != stamp(i, 1);
	}
	struct lp_stats st = stats_of(vm);
	cr_assert_eq(bad, 0, "%zu of %zu pages lost with shard 1 after shard 0 restarted "
		     "empty (%lu remote errors)", bad, pages, (unsigned long)st.remote_errors);
	lp_vm_destroy(vm);
}

Test(remote, no_copy_left_is_sigbus_never_zeros)
{
	catch_bus();
	size_t pages = 256;
	uint64_t *p;
	struct lp_vm *vm = remote_vm(pages, &p, LP_CFG_NO_READAHEAD, 0);
	fill_all(p, pages, 1);
	for (int i = 0; i < SHARDS; i++)
		kill_server(i, SIGKILL);
	size_t bus = 0, wrong = 0;
	for (size_t i = 0; i < 32; i++) { /* the first pages are out */
		uint64_t w = 0;
		bus_addr = NULL;
		if (touch_bus(p, i, &w)) {
			bus++;
			cr_assert_eq((uintptr_t)bus_addr, (uintptr_t)(p + i * (PG / 8)),
				     "SIGBUS at %p for page %zu", bus_addr, i);
		} else if (w != stamp(i, 1)) {
			wrong++;
		}
	}
	cr_assert_eq(wrong, 0, "%zu pages read back wrong (zeros?)", wrong);
	cr_assert_gt(bus, 0, "no SIGBUS with every shard gone");
	struct lp_stats st = stats_of(vm);
	cr_assert_gt(st.fill_errors, 0);
	lp_vm_destroy(vm);
}

Test(remote, auth_comes_from_the_environment)
{
	start_servers("s3cret pass");
	struct lp_vm *vm;
	struct lp_config c = remote_cfg(2);
	unsetenv("LAZYPAGE_REMOTE_AUTH");
	unsetenv("LAZYPAGE_REMOTE_AUTH_FILE");
	cr_assert_eq(lp_vm_create(&vm, &c), -EACCES, "no password, yet connected");
	char path[128];
	snprintf(path, sizeof path, "%s/auth", dir);
	FILE *f = fopen(path, "w");
	cr_assert(f);
	fprintf(f, "default s3cret pass\n");
	fclose(f);
	setenv("LAZYPAGE_REMOTE_AUTH_FILE", path, 1);
	VM_OR_SKIP(&vm, &c);
	size_t pages = 512;
	uint64_t *p;
	cr_assert_eq(lp_map_anon(vm, pages * PG, PROT_READ | PROT_WRITE, (void **)&p), 0);
	fill_all(p, pages, 3);
	cr_assert_eq(lost(p, pages, 3), 0);
	cr_assert_gt(dbsize(0, "s3cret pass") + dbsize(1, "s3cret pass") +
			     dbsize(2, "s3cret pass"), 0);
	lp_vm_destroy(vm);
	unsetenv("LAZYPAGE_REMOTE_AUTH_FILE");
}

Test(remote, sealed_pages_leave_sealed)
{
	start_servers(NULL);
	struct lp_vm *vm;
	struct lp_config c = remote_cfg(2);
	c.flags |= LP_CFG_ENCRYPT_SWAP;
	int rc = lp_vm_create(&vm, &c);
	if (rc == -ENOTSUP)
		cr_skip_test("built without libsodium");
	cr_assert_eq(rc, 0, "%s", strerror(-rc));
	size_t pages = 512;
	uint64_t *p;
	cr_assert_eq(lp_map_anon(vm, pages * PG, PROT_READ | PROT_WRITE, (void **)&p), 0);
	fill_all(p, pages, 5);
	/* No value on any shard holds a stamp of ours in clear. */
	size_t values = 0, clear = 0;
	for (int i = 0; i < SHARDS; i++) {
		redisContext *cl = client(i);
		cr_assert(cl);
		redisReply *r = redisCommand(cl, "SCAN 0 COUNT 100");
		cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
		for (size_t k = 0; k < r->element[1]->elements && k < 20; k++) {
			redisReply *v = redisCommand(cl, "GET %s", r->element[1]->element[k]->str);
			if (v && v->type == REDIS_REPLY_STRING) {
				values++;
				for (size_t j = 0; j < pages; j++) {
					uint64_t s = stamp(j, 5);
					if (memmem(v->str, v->len, &s, sizeof s))
						clear++;
				}
			}
			if (v)
				freeReplyObject(v);
		}
		freeReplyObject(r);
		redisFree(cl);
	}
	cr_assert_gt(values, 0);
	cr_assert_eq(clear, 0, "%zu stamps in clear in %zu values", clear, values);
	cr_assert_eq(lost(p, pages, 5), 0);
	lp_vm_destroy(vm);
}

Test(remote, bad_addresses_are_refused)
{
	start_servers(NULL);
	struct lp_vm *vm;
	struct lp_config c = cfg_frames(FRAMES);
	const char *bad[] = { "redis://", "localhost", "127.0.0.1:0", "127.0.0.1:99999",
			      "127.0.0.1:12x", ":6379" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		c.remote = bad[i];
		cr_assert_eq(lp_vm_create(&vm, &c), -EINVAL, "'%s' taken", bad[i]);
	}
	struct lp_config r = remote_cfg(4); /* more copies than shards */
	cr_assert_eq(lp_vm_create(&vm, &r), -EINVAL);
	/* One shard answers, two copies wanted. */
	char one[64];
	snprintf(one, sizeof one, "127.0.0.1:%d,127.0.0.1:%d", srv[0].port, free_port());
	c.remote = one;
	c.remote_replicas = 2;
	cr_assert_eq(lp_vm_create(&vm, &c), -ECONNREFUSED);
}

/* A real program under vmrun at a tight cap, its pages on the three
 * shards, verify mode on; a shard is killed while it runs: the same output
 * and status as natively, no page back wrong, no key left. */
Test(remote, a_real_program_survives_a_killed_shard)
{
	if (access("/usr/bin/perl", X_OK))
		cr_skip_test("perl is not installed (tools/setup installs it)");
	start_servers(NULL);
	remote_cfg(2); /* spec */
	const char *prog = "my %h; $h{\"k$_\"} = $_ * 2 for 1 .. 30000; my $s = 0; "
			   "$s += $h{$_} for keys %h; print scalar(keys %h), \" $s\\n\";";
	char json[128];
	snprintf(json, sizeof json, "%s/stats.json", dir);
	char *nat[] = { (char *)"/usr/bin/perl", (char *)"-e", (char *)prog, NULL };
	char *vm[] = { (char *)VMRUN, (char *)"--mem", (char *)"4M", (char *)"--verify",
		       (char *)"--remote", spec, (char *)"--stats-json", json,
		       (char *)"/usr/bin/perl", (char *)"-e", (char *)prog, NULL };
	struct run_result n = run_captured(nat, NULL, 60000);
	pid_t killer = fork();
	if (killer == 0) {
		usleep(300 * 1000);
		kill(srv[1].pid, SIGKILL);
		_exit(0);
	}
	struct run_result m = run_captured(vm, NULL, 120000);
	waitpid(killer, NULL, 0);
	waitpid(srv[1].pid, NULL, 0);
	srv[1].pid = 0;
	cr_expect_eq(m.status, n.status, "status %#x, natively %#x\nstderr: %s", m.status,
		     n.status, m.err);
	cr_expect_str_eq(m.out, n.out, "output differs");
	FILE *f = fopen(json, "r");
	cr_assert(f, "no statistics");
	char buf[8192];
	size_t len = fread(buf, 1, sizeof buf - 1, f);
	buf[len] = 0;
	fclose(f);
	const char *mm = strstr(buf, "\"verify_mismatches\":");
	const char *so = strstr(buf, "\"swap_outs\":");
	cr_assert(mm && so, "%s", buf);
	cr_expect_eq(strtoul(mm + 20, NULL, 10), 0, "pages came back wrong: %s", buf);
	cr_expect_gt(strtoul(so + 12, NULL, 10), 1000, "it hardly paged: %s", buf);
	for (int i = 0; i < SHARDS; i++)
		if (srv[i].pid)
			cr_expect_eq(dbsize(i, NULL), 0, "shard %d keeps keys of the run", i);
	run_result_free(&n);
	run_result_free(&m);
}
