/* SPDX-License-Identifier: MIT */
/*
 * lazypage — user-level virtual memory for Linux.
 *
 * Regions returned by lp_map_*() are paged by this library, not by the
 * kernel: each page is created on first touch (through userfaultfd), the
 * number of resident pages is capped by a budget of frames, and pages over
 * the budget are evicted to a swap file written through io_uring.
 *
 * Conventions
 *   - Every function returning int returns 0 (or a count) on success and a
 *     negative errno value on failure.  errno itself is left untouched.
 *   - The library never aborts the process and never prints, except through
 *     lp_stats_print() or when LAZYPAGE_STATS asks for it at destroy time.
 *
 * Thread safety
 *   - All functions taking a struct lp_vm may be called concurrently from
 *     any number of threads, except lp_vm_destroy(): no other call on the
 *     same vm may run during or after it, and no thread may touch the vm's
 *     regions after it starts.
 *   - Memory of a region may be accessed by any thread at any time,
 *     including from inside system calls (read(2) into a region works).
 *   - The library runs its own threads (fault handlers and one evictor).
 *     They block every signal and never call back into user code except the
 *     lp_initializer fill callback.
 *
 * fork
 *   - A vm and an lp_proc belong to the process that created them.  In a
 *     child of fork() — which shares their descriptors (userfaultfd,
 *     eventfds, io_uring rings, swap file) with the parent and has none of
 *     the library's threads — every call on them returns -ECHILD, and
 *     lp_vm_destroy() returns without touching anything: an atexit()
 *     destroy in a child that calls exit() leaves the parent's vm intact.
 *     lp_proc_free() there frees the child's copy only (the program is not
 *     killed).  The child's copies of memory and of the close-on-exec
 *     descriptors go at its exit or execve().  The child may create vms
 *     of its own.
 *
 * Not supported inside a region: munmap(), mremap(), madvise(MADV_DONTNEED)
 * and mprotect() by the caller — use lp_unmap().  Regions are not inherited
 * across fork(): a child that touches one gets SIGSEGV (MADV_DONTFORK),
 * never silently different data.
 *
 * This header compiles as C99 and as C++.
 */
#ifndef LAZYPAGE_LAZYPAGE_H
#define LAZYPAGE_LAZYPAGE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Versions and binary compatibility
 *
 * LP_VERSION_* are the version of this header; lp_version() and
 * lp_version_check() answer for the library the program runs with, which
 * may be a newer one installed since.  From 0.2 on, a release of the same
 * major version only adds:
 *   - functions, under a new symbol version (LAZYPAGE_<major>.<minor>): a
 *     program using one fails to start with an older library instead of
 *     calling what is not there;
 *   - flags, fault kinds (up to LP_FAULT_KINDS_MAX) and struct fields
 *     taken from a struct's reserved room: no public struct changes size
 *     and no field moves;
 * so a library of the same major version and the same or a later minor
 * serves a program built against this header.  A release that breaks this
 * changes LP_VERSION_MAJOR and the soname (liblazypage.so.N).  0.1
 * (liblazypage.so.0) had other struct layouts; 0.2 is liblazypage.so.1.
 *
 * Reserved fields.  Structs the caller fills (lp_config, lp_initializer)
 * must have them zero — lp_config_init() zeroes them, as does an
 * initializer such as `struct lp_initializer init = { fill, aux, 0 };` —
 * and the library refuses nonzero ones, and unknown flags, with -EINVAL:
 * asking an older library for something it does not know is an error, not
 * ignored.  Structs the library fills (lp_stats, lp_spawn_err) get their
 * reserved fields written as zero: a field a later version adds reads 0
 * from an older library.
 */
#define LP_VERSION_MAJOR 0
#define LP_VERSION_MINOR 9
#define LP_VERSION_PATCH 0

/* The library's version as "MAJOR.MINOR.PATCH". */
const char *lp_version(void);

/*
 * Whether the library linked at run time serves a program built against
 * version major.minor of this header: 0 when it does (same major version,
 * its minor at least minor), -ENOTSUP when not (an older library, another
 * major version, or 0.1, whose structs differ), -EINVAL when major or
 * minor is negative.  LP_VERSION_CHECK() asks about this header:
 *
 *	if (LP_VERSION_CHECK() != 0)
 *		errx(1, "liblazypage %s cannot serve this program (built "
 *		     "for %d.%d)", lp_version(), LP_VERSION_MAJOR,
 *		     LP_VERSION_MINOR);
 *
 * Since 0.2.
 */
int lp_version_check(int major, int minor);
#define LP_VERSION_CHECK() lp_version_check(LP_VERSION_MAJOR, LP_VERSION_MINOR)

/* Size of the pages lazypage manages (always the base page size, 4 KiB). */
#define LP_PAGE_SIZE 4096u

struct lp_vm;

/*
 * Configuration.  Initialise with lp_config_init(), which fills in the
 * defaults and applies the LAZYPAGE_* environment variables (see README),
 * then set the fields you want.  Strings are copied by lp_vm_create().
 */
struct lp_config {
	/* Resident budget in frames of LP_PAGE_SIZE bytes; 0 = unlimited.
	 * Budgets below LP_MIN_FRAMES are rejected with -EINVAL. */
	size_t frames;
	/* Swap file, always a new 0600 file without a name (nothing is left
	 * behind, however the process ends): NULL = one in $TMPDIR (or /tmp);
	 * a directory (or a symlink to one) = one in it (O_TMPFILE); any other
	 * path = created there new (O_CREAT|O_EXCL|O_NOFOLLOW), its name
	 * removed at once.  A path that exists and is no directory (a file, a
	 * symlink, a device) is never opened, changed or removed: -EEXIST. */
	const char *swap_path;
	/* Largest swap file in bytes; 0 = grow until the filesystem is full. */
	uint64_t swap_max;
	/* Fault-handler threads; 0 = one per online CPU. */
	unsigned threads;
	/* Eviction policy by name (see lp_policy_names()); NULL = "clock". */
	const char *policy;
	/* Reference-bit sampling for policies that use reference bits: at most
	 * this many resident pages are unmapped per evicted page to observe
	 * re-references (0 = default 4).  Each costs one minor fault when the
	 * page is touched again. */
	unsigned ref_scan;
	/* LP_CFG_* flags. */
	unsigned flags;
	/* Since 0.4.  The compressed tier in front of the swap file
	 * (LP_TIER_*): evicted pages that compress to half a page or less are
	 * kept compressed in memory, inside the budget, and written on to the
	 * swap file when the tier is full.  Needs a budget (frames). */
	unsigned tier;
	/* The tier's largest share of the budget, in percent (1..90; 0 =
	 * LP_TIER_SHARE_DEFAULT). */
	unsigned tier_share;
	/* Since 0.9.  A remote store in the swap file's place: pages evicted
	 * with content (and those the tier writes on) go to Redis servers,
	 * "redis://host:port,host:port,..." (NULL = the swap file), each on
	 * remote_replicas of them (0 = 2).  The password comes from the
	 * environment only (LAZYPAGE_REMOTE_AUTH, LAZYPAGE_REMOTE_AUTH_FILE).
	 * lp_vm_create() fails with -ENOTSUP where the library was built
	 * without hiredis, -ECONNREFUSED where fewer servers answer than
	 * replicas, -EACCES where AUTH is refused. */
	const char *remote;
	unsigned remote_replicas;
	unsigned reserved_int;
	/* Reserved for future fields: must be zero (lp_config_init() zeroes
	 * them). */
	uint64_t reserved[5];
};

/* Compressed tiers (lp_config.tier, LAZYPAGE_TIER=none|lz4|zstd).
 * lp_vm_create() fails with -ENOTSUP for a codec the library was built
 * without. */
#define LP_TIER_NONE 0u
#define LP_TIER_LZ4 1u  /* fastest: ~1 us per page out, less in */
#define LP_TIER_ZSTD 2u /* level 1: smaller, ~3x the time */
#define LP_TIER_SHARE_DEFAULT 50u

#define LP_MIN_FRAMES 4

/* Print statistics to stderr when the vm is destroyed. */
#define LP_CFG_STATS_AT_EXIT 0x1u
/* Bring in only the pages touched: no readahead of sequential swap-ins,
 * no fill-around of first touches (files, zeros, initialized regions). */
#define LP_CFG_NO_READAHEAD 0x2u
/* Encrypt swapped pages (XChaCha20-Poly1305, a random key per vm, kept in
 * locked memory): the swap file holds nothing readable, and a page altered
 * on disk is refused (SIGBUS) instead of returned.  lp_vm_create() fails
 * with -ENOTSUP when the library was built without libsodium. */
#define LP_CFG_ENCRYPT_SWAP 0x4u
/* Do not pin fault handler i to the i-th CPU the process may use (pinning
 * keeps the handler next to the faulting thread: half the fault latency
 * on a two-CPU machine). */
#define LP_CFG_NO_PIN 0x8u
/* Verify mode: keep a checksum of every page whose content leaves memory
 * and check it when the content comes back (swap-in, un-park, readahead,
 * fork copy); a mismatch is reported on stderr (the address, the page's
 * recent state changes, where the content came from) and counted in
 * lp_stats.verify_mismatches.  Costs ~0.3 us per page out and in, and
 * ~250 bytes per touched page; nothing when off.  LAZYPAGE_VERIFY=1. */
#define LP_CFG_VERIFY 0x10u
/* Since 0.3.  Each fault handler reads one swapped page at a time and
 * sleeps until it is read (the behaviour of 0.2), instead of keeping the
 * reads of every pending fault in flight: for comparisons.
 * LAZYPAGE_SYNC_READS=1. */
#define LP_CFG_SYNC_READS 0x20u
/* Since 0.5, lp_spawn() only: each program the tree executes has a budget
 * of frames of its own (by default they share one, as a memory cgroup's
 * processes do).  vmrun --mem-per-process. */
#define LP_CFG_MEM_PER_PROCESS 0x40u
/* Since 0.8.  A fault that leaves fewer free frames than the evictor's low
 * watermark waits until the evictor has chosen the victims that refill the
 * reserve, so that victims are chosen at the same point of the program's
 * accesses on every run, however busy the machine: a single-threaded
 * program's misses repeat exactly, and under FIFO they are what lp-sim's
 * sampled host says.  For comparing policies; costs a wake-up of the
 * evictor every few dozen misses.  LAZYPAGE_SYNC_EVICT=1. */
#define LP_CFG_SYNC_EVICT 0x80u

/* Fill *cfg with defaults, overridden by LAZYPAGE_* environment variables.
 * A malformed variable is ignored here and reported by lp_vm_create(). */
void lp_config_init(struct lp_config *cfg);

/* Parse a size: an integer with an optional K, M, G or T suffix (powers of
 * 1024; "KiB", "MB" and the like are read the same way), e.g. "64M".
 * Returns 0, -EINVAL (malformed, or s or bytes NULL) or -ERANGE (well
 * formed but beyond 64 bits); *bytes is set only on success. */
int lp_parse_size(const char *s, uint64_t *bytes);

/* NULL-terminated list of the eviction policies this build knows. */
const char *const *lp_policy_names(void);

/*
 * Create an address-space object that owns a set of regions, a frame budget,
 * a swap file and the threads that serve faults.  cfg NULL = lp_config_init()
 * defaults.
 * Errors: -EINVAL bad configuration or malformed LAZYPAGE_* variable,
 * -ENOENT unknown policy, -EPERM/-EACCES userfaultfd refused (needs
 * CAP_SYS_PTRACE, /dev/userfaultfd access, or vm.unprivileged_userfaultfd=1),
 * -ENOSYS kernel without userfaultfd or io_uring, -EEXIST swap_path exists
 * and is no directory, -EACCES/-ENOENT/-ENOTDIR/-EROFS swap path not usable,
 * -EINVAL swap_max below one page (but not 0), -ENOMEM.
 */
int lp_vm_create(struct lp_vm **out, const struct lp_config *cfg);

/*
 * Destroy vm: write back dirty pages of shared file regions, unmap every
 * region, stop the threads, close every descriptor and release the swap
 * file.  NULL is accepted.  Write-back errors are counted in the
 * statistics.  In a child of fork() it does nothing (see "fork" above).
 */
void lp_vm_destroy(struct lp_vm *vm);

/*
 * Map len bytes (rounded up to whole pages) of zero-filled memory.  Pages
 * are created on first touch.  prot is PROT_* from <sys/mman.h>.
 * Errors: -EINVAL len 0 or bad prot, -ENOMEM no address space.
 */
int lp_map_anon(struct lp_vm *vm, size_t len, int prot, void **addr);

/* Flags for lp_map_file(); exactly one of PRIVATE and SHARED. */
#define LP_MAP_PRIVATE 0x1
#define LP_MAP_SHARED 0x2

/*
 * Map len bytes of the file open at fd, starting at offset off (a multiple
 * of LP_PAGE_SIZE).  Bytes are read on first touch; bytes past the end of the
 * file read as zero.  LP_MAP_PRIVATE: writes stay private (they go to swap
 * when evicted).  LP_MAP_SHARED: dirty pages are written back to the file
 * when evicted, by lp_sync(), lp_unmap() and lp_vm_destroy(); the file is
 * never extended.  fd is duplicated; the caller may close it.
 * Errors: -EINVAL len 0, off unaligned or negative, bad flags or prot;
 * -EBADF fd not open; -EACCES fd not open for reading (or, for SHARED with
 * PROT_WRITE, not for writing); -ENODEV fd is not a regular file or block
 * device; -ENOMEM.
 */
int lp_map_file(struct lp_vm *vm, int fd, off_t off, size_t len, int prot,
		int flags, void **addr);

/*
 * Lazily initialised pages (Pintos' vm_alloc_page_with_initializer): the
 * first touch of each page calls fill(page, buf, aux) on a library thread,
 * with page = the page's address in the region (not yet accessible: do not
 * touch it) and buf = LP_PAGE_SIZE writable bytes, zeroed, to fill in.  fill
 * returns 0 on success or a negative errno; on failure the faulting thread
 * receives SIGBUS (as for an I/O error on a kernel file mapping) and the error
 * is counted; a touch of the page a few milliseconds later calls fill again.
 * After fill, the page behaves as an anonymous page.
 *
 * fill may run concurrently for different pages, must not touch memory of
 * any lp region that is not resident, and must not call lp_* functions on
 * the same vm.  Each page is filled successfully exactly once unless flags has
 * LP_INIT_REFILL: then fill is deterministic and a page never written since
 * its fill is dropped on eviction (no swap I/O) and filled again on its next
 * touch.
 */
struct lp_initializer {
	int (*fill)(void *page, void *buf, void *aux);
	void *aux;
	unsigned flags;          /* LP_INIT_* */
	/* Reserved for future fields: must be zero. */
	unsigned reserved_int;
	uint64_t reserved[4];
};
#define LP_INIT_REFILL 0x1u

/* Map len bytes of pages filled by init (copied).  Errors as lp_map_anon,
 * and -EINVAL when init or init->fill is NULL, init->flags has an unknown
 * flag or a reserved field of init is not zero. */
int lp_map_lazy(struct lp_vm *vm, size_t len, int prot,
		const struct lp_initializer *init, void **addr);

/*
 * Unmap [addr, addr+len): page-aligned and inside regions of vm (it may span
 * several regions or split one).  Dirty pages of shared file regions are
 * written back first; swap slots are freed.  Waits for I/O in flight on the
 * range.  A later touch of the range is an ordinary SIGSEGV.
 * Errors: -EINVAL unaligned, len 0, or a part of the range is not mapped by
 * vm; -EIO write-back failed (the range is unmapped anyway; the count is in
 * the statistics).
 */
int lp_unmap(struct lp_vm *vm, void *addr, size_t len);

/*
 * Write dirty pages of shared file regions in [addr, addr+len) back to their
 * file and wait for completion.  addr NULL and len 0 means every region.
 * Ranges of anonymous or private regions are accepted and do nothing.
 * Errors: -EINVAL unaligned or not mapped by vm; -EIO (or the write's error)
 * when a page could not be written; the page stays dirty and resident.
 */
int lp_sync(struct lp_vm *vm, void *addr, size_t len);

/* Fault kinds, indexes into lp_stats.faults[] and lp_stats.latency[].
 * LP_FAULT_KINDS is the number this header knows; a later library may
 * count more (up to LP_FAULT_KINDS_MAX, the room in lp_stats), and says how
 * many it filled in lp_stats.fault_kinds; lp_fault_kind_name() names each. */
#define LP_FAULT_KINDS_MAX 16
enum lp_fault_kind {
	LP_FAULT_ZERO = 0,   /* anonymous page created zero-filled */
	LP_FAULT_FILE,       /* page read from its file */
	LP_FAULT_INIT,       /* page filled by an lp_initializer */
	LP_FAULT_SWAPIN,     /* page read back from swap */
	LP_FAULT_REREF,      /* page re-referenced after a reference sweep (no I/O) */
	LP_FAULT_WP,         /* first write to a clean page (dirty tracking) */
	LP_FAULT_TIER,       /* since 0.4: page read back from the compressed
			      * tier (no I/O) */
	LP_FAULT_KINDS
};

/* Fault-service latency, measured in the handler from reading the fault to
 * resolving it (nanoseconds). */
struct lp_latency {
	uint64_t count;
	uint64_t mean_ns;
	uint64_t p50_ns;
	uint64_t p90_ns;
	uint64_t p99_ns;
	uint64_t max_ns;
	uint64_t reserved[2];      /* zero */
};

/* Filled by lp_stats_get() and lp_proc_stats(); reserved fields are zero. */
/* Phases of a swap-in fault (lp_stats.miss_phase_*). */
#define LP_PHASES_MAX 4
enum lp_miss_phase {
	LP_PHASE_QUEUE = 0, /* fault read by a handler -> its read submitted
			     * (waiting for a frame, for the handler) */
	LP_PHASE_DEVICE,    /* read submitted -> its completion seen */
	LP_PHASE_INSTALL,   /* completion -> page installed, thread woken */
	LP_PHASE_HANDLER,   /* the whole: fault read -> thread woken */
};

struct lp_stats {
	/* Entries of faults[] and latency[] the library counts (its
	 * LP_FAULT_KINDS); the rest, up to LP_FAULT_KINDS_MAX, are zero. */
	uint32_t fault_kinds;
	uint32_t reserved_head;
	uint64_t faults[LP_FAULT_KINDS_MAX];
	struct lp_latency latency[LP_FAULT_KINDS_MAX];
	uint64_t readahead_pages;  /* pages brought in ahead of a fault: swap
				    * readahead, and zero fill-around of
				    * anonymous pages touched in order */
	uint64_t evictions;        /* pages that left residency under the budget */
	uint64_t clean_drops;      /* evictions without I/O (copy still valid) */
	uint64_t swap_outs;        /* pages written to swap */
	uint64_t file_writebacks;  /* pages written back to their file */
	uint64_t ref_sweeps;       /* pages unmapped to sample reference bits */
	uint64_t swap_read_bytes;
	uint64_t swap_write_bytes;
	uint64_t file_read_bytes;
	uint64_t file_write_bytes;
	uint64_t io_errors;        /* failed reads/writes (each retried or kept) */
	uint64_t swap_full;        /* evictions refused: swap file full */
	uint64_t fill_errors;      /* faults answered with SIGBUS */
	uint64_t frame_waits;      /* faults that waited for a free frame */
	uint64_t resident_frames;  /* frames in use now */
	uint64_t peak_frames;      /* most frames ever in use */
	uint64_t budget_frames;    /* the budget (0 = unlimited) */
	uint64_t swap_slots_used;
	uint64_t swap_slots_peak;
	int last_error;            /* last background error (-errno), 0 if none */
	int reserved_int;
	uint64_t verify_checks;    /* LP_CFG_VERIFY: pages checked on return */
	uint64_t verify_mismatches; /* ... that came back with other content */
	/* Since 0.3: where a swap-in's time goes inside the library, as the
	 * median and 99th percentile over the swap-in faults of each phase
	 * (LP_PHASE_*).  What the program sees beyond LP_PHASE_HANDLER is the
	 * kernel's delivery of the fault and of the wake-up. */
	uint64_t miss_phase_p50_ns[LP_PHASES_MAX];
	uint64_t miss_phase_p99_ns[LP_PHASES_MAX];
	/* Since 0.4: the compressed tier (lp_config.tier); all zero without.
	 * Its read-back latency is latency[LP_FAULT_TIER]. */
	uint64_t tier_stores;      /* pages stored compressed */
	uint64_t tier_rejects;     /* pages that did not compress to half a
				    * page: written to swap instead */
	uint64_t tier_loads;       /* pages read back (faults and readahead) */
	uint64_t tier_writebacks;  /* pages written on to the swap file */
	uint64_t tier_pages;       /* pages held now */
	uint64_t tier_bytes;       /* their compressed size now */
	uint64_t tier_frames;      /* frames of the budget the tier holds now
				    * (counted in resident_frames) */
	uint64_t tier_peak_frames;
	uint64_t tier_limit_frames; /* its share now: it adapts between an
				     * eighth of tier_share and tier_share
				     * (docs/DESIGN.md, the compressed tier) */
	/* Since 0.6: UFFDIO_MOVEs that failed although the page moved (a
	 * kernel's answer corrected, docs/RELIABILITY.md); 0 on a sound
	 * kernel. */
	uint64_t move_fixups;
	/* Since 0.7: pages the compressed tier did not take, sent to swap as
	 * they were, while the pages it took were written on unread (its
	 * admission, docs/DESIGN.md) */
	uint64_t tier_bypasses;
	/* Since 0.9: the remote store (lp_config.remote); zero without.
	 * Pages it holds now (each on remote_replicas servers), and requests
	 * that failed (a write fewer servers took than remote_replicas, a
	 * read no live server answered: the fault path retried or answered
	 * SIGBUS).  Its traffic is in swap_read_bytes and swap_write_bytes. */
	uint64_t remote_pages;
	uint64_t remote_errors;
	uint64_t reserved[1];
};

/* Snapshot the statistics of vm into *st.  A fault is counted just after
 * the faulting thread was let go, so a thread may see its own last fault
 * counted a moment later.  Errors: -EINVAL NULL argument. */
int lp_stats_get(struct lp_vm *vm, struct lp_stats *st);

/* Print st in human-readable form to f (or, with json != 0, as one JSON
 * object).  Returns 0 or -EIO when the stream reported an error. */
int lp_stats_print(const struct lp_stats *st, FILE *f, int json);

/* The name of a fault kind ("zero", "file", ...), or "?". */
const char *lp_fault_kind_name(enum lp_fault_kind kind);

/*
 * Running a program with its memory managed (what vmrun does).
 *
 * lp_spawn() starts an unmodified ELF program (static, static-pie or
 * dynamically linked; a #! script runs its interpreter) whose memory —
 * code, data, stack, brk heap, anonymous and private file mappings — is
 * paged by lazypage under cfg's budget.  Two processes are created: the
 * program, and a pager process that serves its faults and its memory
 * system calls (it shares the program's address space and outlives it
 * while children the program forked still need it).  The calling process's
 * address space is not shared with either: they run in a copy of it.
 *
 * The program starts as after execve(): argv, envp, the caller's signal
 * mask, ignored signals, descriptors not marked close-on-exec, cwd, rlimits.
 * Memory the program's forked children map after the fork runs unmanaged.
 * Programs it (or its children) executes with execve() run managed, each
 * with a pager of its own under the same configuration, if the caller
 * called lp_exec_main() first (vmrun does); otherwise natively.  See the
 * README for the limits.
 */
struct lp_proc;

enum lp_spawn_error {
	LP_SPAWN_OK = 0,
	LP_SPAWN_NOT_FOUND,   /* the program does not exist */
	LP_SPAWN_NO_ACCESS,   /* it cannot be read or executed */
	LP_SPAWN_NOT_ELF,     /* not an ELF file nor a #! script */
	LP_SPAWN_BAD_ARCH,    /* ELF of another architecture or class */
	LP_SPAWN_CORRUPT,     /* truncated or inconsistent ELF headers */
	LP_SPAWN_NO_INTERP,   /* its interpreter (PT_INTERP) is missing or bad */
	LP_SPAWN_CAP,         /* the memory cap is too small to run anything */
	LP_SPAWN_UNSUPPORTED, /* userfaultfd or seccomp refused on this system */
	LP_SPAWN_SYSTEM,      /* anything else (out of memory, ...) */
	LP_SPAWN_SWAP,        /* the swap file cannot be created (msg: the path
			       * and why; exists and is no directory: EEXIST) */
	LP_SPAWN_CONFIG,      /* cfg refused, or a LAZYPAGE_* variable
			       * malformed (msg names it) */
	LP_SPAWN_PRIVILEGED,  /* set-user-ID, set-group-ID or with file
			       * capabilities: the kernel would run it with
			       * privileges a pager cannot give (run it
			       * natively, as vmrun does) */
};

struct lp_spawn_err {
	int kind;       /* enum lp_spawn_error */
	char msg[256];  /* one line, naming the file and the reason */
	int reserved[7]; /* zero */
};

/* The smallest budget a program can run under (frames). */
#define LP_PROC_MIN_FRAMES 16

/*
 * Start path with argv and envp (NULL: the caller's environ).  path without
 * a '/' is looked up in PATH, as execvp() does.  cfg NULL: lp_config_init()
 * defaults.  Returns 0 once the program runs, or -errno with err (if not
 * NULL) saying why: -ENOENT, -EACCES, -ENOEXEC (not ELF, wrong architecture,
 * corrupt), -EINVAL (cap below LP_PROC_MIN_FRAMES or bad cfg), -EPERM (no
 * userfaultfd or seccomp), -ENOMEM.  If the caller dies, the program and
 * its forked children are killed and the pager ends.
 */
int lp_spawn(struct lp_proc **out, const char *path, char *const argv[],
	     char *const envp[], const struct lp_config *cfg,
	     struct lp_spawn_err *err);

/* The program's process id. */
pid_t lp_proc_pid(const struct lp_proc *p);

/*
 * Wait for the program to change state, as waitpid(2) with options WNOHANG,
 * WUNTRACED and WCONTINUED: *status is a wait status (WIFEXITED, WEXITSTATUS,
 * WIFSIGNALED, ...).  Returns 1 when a state was reported, 0 with WNOHANG
 * and nothing new, -EINTR when a signal interrupted the wait, -ECHILD after
 * the exit was reported, -EPIPE when the pager died (the program was killed
 * with it).
 */
int lp_wait(struct lp_proc *p, int *status, int options);

/* The statistics of the program and of the programs it executed (since
 * 0.5; see lp_proc_tree()): counts are their sums, peak_frames the
 * largest sum of frames in use seen at once (under a shared budget; else
 * the sum of their peaks), latency percentiles those of the process with
 * the most faults of that kind.  Updated while it runs, final once
 * lp_wait() reported its exit.  0, -EINVAL, or -EPIPE when the pager was killed
 * while it wrote them. */
int lp_proc_stats(struct lp_proc *p, struct lp_stats *st);

/*
 * Since 0.5.  The processes of the run: the first program, then each
 * program it (or a process it forked) executed that ran managed, in the
 * order they started, and each forked child that executed
 * nothing, as it ended (pid its own, program its parent's; what a child
 * that executed a program did before counts in its parent's record).  Fills out[0..max) and returns how many there are
 * (up to LP_PROC_TREE_MAX are remembered), or -errno.  lp_proc_stats()
 * covers them all.
 */
#define LP_PROC_TREE_MAX 256

struct lp_proc_info {
	int32_t pid;
	int32_t running;           /* 1 while its program runs */
	char program[16];          /* its file's name */
	uint64_t faults;           /* of every kind */
	uint64_t evictions;
	uint64_t peak_frames;
	uint64_t reserved[5];      /* zero */
};

int lp_proc_tree(struct lp_proc *p, struct lp_proc_info *out, unsigned max);

/* Send sig to the program.  0 or -errno. */
int lp_proc_kill(struct lp_proc *p, int sig);

/*
 * Since 0.5.  Call it first thing in main(), before anything else runs, in
 * a program that uses lp_spawn() and wants the programs its managed
 * programs execute to run managed too: it makes this program's executable
 * the helper that starts them.  The pager makes an exec'd program's first
 * instruction an execve of the helper with argv[0] "lazypage-exec"; in that
 * run lp_exec_main() never returns (it becomes the program).  In any other
 * run it returns 0 at once.
 */
int lp_exec_main(int argc, char **argv, char **envp);

/* Release p.  A program still running is killed (SIGKILL) first.  Returns
 * once the pager has ended (within about a second; a stuck one is killed),
 * or when it stays to serve children the program forked.  NULL is
 * accepted. */
void lp_proc_free(struct lp_proc *p);

#ifdef __cplusplus
}
#endif

#endif /* LAZYPAGE_LAZYPAGE_H */
