/* SPDX-License-Identifier: MIT */
/*
 * The binary interface a program compiled against the header relies on:
 * the place of every field of every public struct, the values of the
 * public constants, the version check, and the reserved fields (zero in
 * what the library fills, refused when nonzero in what it is given).
 *
 * The layout is asserted at compile time: moving or resizing a field, or
 * growing a struct, fails the build.  A field added later is carved out of
 * a struct's reserved room: the reserved array's start moves, its end (the
 * struct's size) does not, which is what is asserted for reserved arrays.
 * (The exported symbols are checked by abi-symbols.sh.)
 */
#include <stddef.h>

#include "common.h"

#ifndef LP_PROJECT_VERSION
#error "LP_PROJECT_VERSION must be defined by the build"
#endif

#define AT(s, f, off)                                                         \
	_Static_assert(offsetof(struct s, f) == (off), #s "." #f " moved")
#define END(s, f, end)                                                        \
	_Static_assert(offsetof(struct s, f) + sizeof(((struct s *)0)->f) ==  \
			       (end),                                         \
		       #s "." #f " does not end where it did")
#define SIZE(s, n)                                                            \
	_Static_assert(sizeof(struct s) == (n), "struct " #s " changed size")
#define VALUE(c, v) _Static_assert((c) == (v), #c " changed value")

/* The layouts of the LP64 ABI (x86-64, aarch64). */
#if defined(__LP64__)
AT(lp_config, frames, 0);
AT(lp_config, swap_path, 8);
AT(lp_config, swap_max, 16);
AT(lp_config, threads, 24);
AT(lp_config, policy, 32);
AT(lp_config, ref_scan, 40);
AT(lp_config, flags, 44);
AT(lp_config, tier, 48);
AT(lp_config, tier_share, 52);
AT(lp_config, remote, 56);
AT(lp_config, remote_replicas, 64);
END(lp_config, reserved, 112);
SIZE(lp_config, 112);

AT(lp_initializer, fill, 0);
AT(lp_initializer, aux, 8);
AT(lp_initializer, flags, 16);
AT(lp_initializer, reserved_int, 20);
END(lp_initializer, reserved, 56);
SIZE(lp_initializer, 56);

AT(lp_latency, count, 0);
AT(lp_latency, mean_ns, 8);
AT(lp_latency, p50_ns, 16);
AT(lp_latency, p90_ns, 24);
AT(lp_latency, p99_ns, 32);
AT(lp_latency, max_ns, 40);
END(lp_latency, reserved, 64);
SIZE(lp_latency, 64);

AT(lp_stats, fault_kinds, 0);
AT(lp_stats, reserved_head, 4);
AT(lp_stats, faults, 8);
END(lp_stats, faults, 8 + 16 * 8);
AT(lp_stats, latency, 136);
END(lp_stats, latency, 136 + 16 * 64);
AT(lp_stats, readahead_pages, 1160);
AT(lp_stats, evictions, 1168);
AT(lp_stats, clean_drops, 1176);
AT(lp_stats, swap_outs, 1184);
AT(lp_stats, file_writebacks, 1192);
AT(lp_stats, ref_sweeps, 1200);
AT(lp_stats, swap_read_bytes, 1208);
AT(lp_stats, swap_write_bytes, 1216);
AT(lp_stats, file_read_bytes, 1224);
AT(lp_stats, file_write_bytes, 1232);
AT(lp_stats, io_errors, 1240);
AT(lp_stats, swap_full, 1248);
AT(lp_stats, fill_errors, 1256);
AT(lp_stats, frame_waits, 1264);
AT(lp_stats, resident_frames, 1272);
AT(lp_stats, peak_frames, 1280);
AT(lp_stats, budget_frames, 1288);
AT(lp_stats, swap_slots_used, 1296);
AT(lp_stats, swap_slots_peak, 1304);
AT(lp_stats, last_error, 1312);
AT(lp_stats, reserved_int, 1316);
AT(lp_stats, verify_checks, 1320);
AT(lp_stats, verify_mismatches, 1328);
AT(lp_stats, miss_phase_p50_ns, 1336);
AT(lp_stats, miss_phase_p99_ns, 1368);
AT(lp_stats, tier_stores, 1400);
AT(lp_stats, tier_peak_frames, 1456);
AT(lp_stats, tier_limit_frames, 1464);
AT(lp_stats, move_fixups, 1472);
AT(lp_stats, tier_bypasses, 1480);
AT(lp_stats, remote_pages, 1488);
AT(lp_stats, remote_errors, 1496);
AT(lp_stats, reserved, 1504);
END(lp_stats, reserved, 1512);
SIZE(lp_stats, 1512);

AT(lp_spawn_err, kind, 0);
AT(lp_spawn_err, msg, 4);
END(lp_spawn_err, msg, 260);
END(lp_spawn_err, reserved, 288);
SIZE(lp_spawn_err, 288);

AT(lp_proc_info, pid, 0);
AT(lp_proc_info, running, 4);
AT(lp_proc_info, program, 8);
AT(lp_proc_info, faults, 24);
AT(lp_proc_info, evictions, 32);
AT(lp_proc_info, peak_frames, 40);
END(lp_proc_info, reserved, 88);
SIZE(lp_proc_info, 88);
#endif

/* Constants compiled into programs. */
VALUE(LP_PAGE_SIZE, 4096u);
VALUE(LP_MIN_FRAMES, 4);
VALUE(LP_PROC_MIN_FRAMES, 16);
VALUE(LP_FAULT_KINDS_MAX, 16);
VALUE(LP_PHASES_MAX, 4);
_Static_assert(LP_FAULT_KINDS <= LP_FAULT_KINDS_MAX, "no room for the kinds");
VALUE(LP_CFG_STATS_AT_EXIT, 0x1u);
VALUE(LP_CFG_NO_READAHEAD, 0x2u);
VALUE(LP_CFG_ENCRYPT_SWAP, 0x4u);
VALUE(LP_CFG_NO_PIN, 0x8u);
VALUE(LP_CFG_VERIFY, 0x10u);
VALUE(LP_CFG_SYNC_READS, 0x20u);
VALUE(LP_CFG_MEM_PER_PROCESS, 0x40u);
VALUE(LP_CFG_SYNC_EVICT, 0x80u);
VALUE(LP_PROC_TREE_MAX, 256);
VALUE(LP_MAP_PRIVATE, 0x1);
VALUE(LP_MAP_SHARED, 0x2);
VALUE(LP_INIT_REFILL, 0x1u);
VALUE(LP_FAULT_ZERO, 0);
VALUE(LP_FAULT_FILE, 1);
VALUE(LP_FAULT_INIT, 2);
VALUE(LP_FAULT_SWAPIN, 3);
VALUE(LP_FAULT_REREF, 4);
VALUE(LP_FAULT_WP, 5);
VALUE(LP_FAULT_TIER, 6);
VALUE(LP_TIER_NONE, 0u);
VALUE(LP_TIER_LZ4, 1u);
VALUE(LP_TIER_ZSTD, 2u);
VALUE(LP_SPAWN_OK, 0);
VALUE(LP_SPAWN_NOT_FOUND, 1);
VALUE(LP_SPAWN_NO_ACCESS, 2);
VALUE(LP_SPAWN_NOT_ELF, 3);
VALUE(LP_SPAWN_BAD_ARCH, 4);
VALUE(LP_SPAWN_CORRUPT, 5);
VALUE(LP_SPAWN_NO_INTERP, 6);
VALUE(LP_SPAWN_CAP, 7);
VALUE(LP_SPAWN_UNSUPPORTED, 8);
VALUE(LP_SPAWN_SYSTEM, 9);
VALUE(LP_SPAWN_SWAP, 10);
VALUE(LP_SPAWN_CONFIG, 11);

#define STR_(x) #x
#define STR(x) STR_(x)

Test(abi, version_is_the_header_s_and_the_build_s)
{
	const char *hdr = STR(LP_VERSION_MAJOR) "." STR(LP_VERSION_MINOR) "." STR(
		LP_VERSION_PATCH);

	cr_assert_str_eq(lp_version(), hdr, "library %s, header %s",
			 lp_version(), hdr);
	cr_assert_str_eq(hdr, LP_PROJECT_VERSION,
			 "header %s, meson.build (and pkg-config) %s", hdr,
			 LP_PROJECT_VERSION);
}

Test(abi, version_check)
{
	int M = LP_VERSION_MAJOR, m = LP_VERSION_MINOR;

	cr_assert_eq(LP_VERSION_CHECK(), 0);
	cr_assert_eq(lp_version_check(M, m), 0);
	cr_assert_eq(lp_version_check(M, m + 1), -ENOTSUP, "a newer minor");
	cr_assert_eq(lp_version_check(M + 1, 0), -ENOTSUP, "a newer major");
	cr_assert_eq(lp_version_check(M + 1, m), -ENOTSUP, "a newer major");
	if (M > 0)
		cr_assert_eq(lp_version_check(M - 1, m), -ENOTSUP, "an older major");
	/* 0.1 laid lp_stats and lp_initializer out otherwise. */
	cr_assert_eq(lp_version_check(0, 0), -ENOTSUP);
	cr_assert_eq(lp_version_check(0, 1), -ENOTSUP, "0.1's structs differ");
	for (int k = 2; k <= m; k++)
		cr_assert_eq(lp_version_check(M, k), 0, "%d.%d", M, k);
	cr_assert_eq(lp_version_check(-1, 0), -EINVAL);
	cr_assert_eq(lp_version_check(M, -1), -EINVAL);
}

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		if (c[i])
			return false;
	return true;
}

static int fill_seven(void *page, void *buf, void *aux)
{
	memset(buf, 7, PG);
	return 0;
}

Test(abi, stats_say_how_many_kinds_and_zero_the_rest)
{
	struct lp_vm *vm;
	struct lp_config c = cfg_frames(0);
	VM_OR_SKIP(&vm, &c);
	char *p;
	cr_assert_eq(lp_map_anon(vm, 4 * PG, PROT_READ | PROT_WRITE, (void **)&p), 0);
	p[0] = 1;

	struct lp_stats st;
	memset(&st, 0xa5, sizeof st); /* what a caller's stack may hold */
	cr_assert_eq(lp_stats_get(vm, &st), 0);
	cr_assert_eq(st.fault_kinds, LP_FAULT_KINDS);
	cr_assert_eq(st.reserved_head, 0);
	for (unsigned k = st.fault_kinds; k < LP_FAULT_KINDS_MAX; k++) {
		cr_assert_eq(st.faults[k], 0, "kind %u", k);
		cr_assert(all_zero(&st.latency[k], sizeof st.latency[k]), "kind %u", k);
	}
	for (unsigned k = 0; k < LP_FAULT_KINDS_MAX; k++)
		cr_assert(all_zero(st.latency[k].reserved, sizeof st.latency[k].reserved),
			  "latency[%u].reserved", k);
	cr_assert_eq(st.reserved_int, 0);
	cr_assert(all_zero(st.reserved, sizeof st.reserved));
	for (unsigned k = 0; k < st.fault_kinds; k++)
		cr_assert_str_neq(lp_fault_kind_name((enum lp_fault_kind)k), "?",
				  "kind %u has no name", k);
	cr_assert_str_eq(lp_fault_kind_name((enum lp_fault_kind)st.fault_kinds), "?");
	lp_vm_destroy(vm);
}

Test(abi, initializer_reserved_fields_must_be_zero)
{
	struct lp_vm *vm;
	VM_OR_SKIP(&vm, NULL);
	void *p;

	struct lp_initializer init = { fill_seven, NULL, 0 };
	init.reserved_int = 1;
	cr_assert_eq(lp_map_lazy(vm, PG, PROT_READ, &init, &p), -EINVAL);
	for (unsigned i = 0; i < sizeof init.reserved / sizeof init.reserved[0]; i++) {
		struct lp_initializer r = { fill_seven, NULL, 0 };
		r.reserved[i] = 1;
		cr_assert_eq(lp_map_lazy(vm, PG, PROT_READ, &r, &p), -EINVAL,
			     "reserved[%u] set", i);
	}
	struct lp_initializer bad_flag = { fill_seven, NULL, 0x80000000u };
	cr_assert_eq(lp_map_lazy(vm, PG, PROT_READ, &bad_flag, &p), -EINVAL);

	/* Zeroed as the header shows, it works. */
	struct lp_initializer ok = { fill_seven, NULL, 0 };
	cr_assert_eq(lp_map_lazy(vm, PG, PROT_READ, &ok, &p), 0);
	cr_assert_eq(((volatile char *)p)[100], 7);
	lp_vm_destroy(vm);
}

Test(abi, spawn_error_reserved_fields_are_zero)
{
	struct lp_config c = cfg_frames(LP_PROC_MIN_FRAMES - 1);
	char *argv[] = { (char *)"/bin/true", NULL };
	struct lp_proc *pr;
	struct lp_spawn_err err;

	/* Refused before anything starts (no userfaultfd needed). */
	memset(&err, 0xa5, sizeof err);
	cr_assert_eq(lp_spawn(&pr, argv[0], argv, NULL, &c, &err), -EINVAL);
	cr_assert_eq(err.kind, LP_SPAWN_CAP);
	cr_assert(strlen(err.msg) > 0 && strlen(err.msg) < sizeof err.msg);
	cr_assert(all_zero(err.reserved, sizeof err.reserved));
}
