/* SPDX-License-Identifier: MIT */
/* vmrun's command line (vmrun_opts.c), apart from running the program so
 * that it can be tested and fuzzed (fuzz/fuzz_vmrun.c). */
#ifndef LP_VMRUN_OPTS_H
#define LP_VMRUN_OPTS_H

#include <lazypage/lazypage.h>
#include <stdio.h>
#include <sys/types.h>

/* vmrun's own exit statuses (the program's status otherwise). */
enum {
	EX_USAGE_ = 64,     /* bad command line */
	EX_NOTELF = 65,     /* not an ELF program (nor a #! script) */
	EX_CORRUPT_ = 66,   /* truncated or corrupt ELF headers */
	EX_ARCH = 67,       /* ELF for another architecture */
	EX_NOINTERP = 68,   /* the ELF interpreter is missing or unusable */
	EX_CAP = 69,        /* the memory cap is too small to run at all */
	EX_NOUFFD = 70,     /* userfaultfd or seccomp refused here */
	EX_INTERNAL = 71,   /* the pager failed (out of memory, ...) */
	EX_SWAP = 73,       /* the swap file cannot be created */
	EX_PRIVILEGED = 77, /* run set-user-ID/set-group-ID: refused */
	EX_NOEXEC = 126,    /* the program cannot be read or executed */
	EX_NOTFOUND = 127,  /* the program does not exist */
};

struct vmrun_opts {
	struct lp_config cfg;   /* lp_config_init() + the options */
	const char *json;       /* --stats-json FILE, or NULL */
	int stats;              /* --stats (or --stats-interval) */
	double stats_interval;  /* --stats-interval S, or 0 */
	int prog;               /* argv[prog] is the PROGRAM */
};

/* Parse vmrun's options.  Returns -1 when the program is to be run
 * (argv[o->prog] and on), otherwise the status vmrun exits with now: 0
 * after --help or --version (written to out), EX_USAGE_ after a message
 * on err.  getopt's own messages go to stderr only when err is stderr.
 * May be called again (getopt is reset). */
int vmrun_parse(int argc, char **argv, struct vmrun_opts *o, FILE *out,
		FILE *err);

/* Whether vmrun may run with these credentials: -1 yes; EX_PRIVILEGED
 * after a message on err when it was started set-user-ID, set-group-ID or
 * with file capabilities (secure = getauxval(AT_SECURE)), or runs with an
 * effective user or group other than the real one.  vmrun creates files
 * at any path it is given (--swap, --stats-json) and runs any program: with
 * privileges not its user's, that is a way around file permissions. */
int vmrun_check_privilege(FILE *err, unsigned long secure, uid_t uid,
			  uid_t euid, gid_t gid, gid_t egid);

#endif /* LP_VMRUN_OPTS_H */
