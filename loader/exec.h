/* SPDX-License-Identifier: MIT */
/*
 * A managed program's execve runs managed too (exec.c).
 *
 * The filter sends execve and execveat to the pager serving the caller.
 * The pager attaches to the calling thread (ptrace, for the length of the
 * exec only), lets the kernel perform the exec as it would natively — so a
 * failed exec fails exactly as natively, and the caller goes on with its
 * errno — and, once it succeeded, makes the new image's first instruction
 * an execve of the helper (a program that calls lp_exec_main(): vmrun),
 * which starts a pager of its own and runs the new program under it, in
 * the same process.  A set-user-ID, set-group-ID or file-capability
 * program (AT_SECURE) is left to run natively, as is every exec where
 * ptrace or the helper is refused.
 */
#ifndef LP_LOADER_EXEC_H
#define LP_LOADER_EXEC_H

#include <linux/seccomp.h>
#include <stdbool.h>
#include <sys/types.h>

/* The helper run's first argument: what lp_exec_main() looks for. */
#define EXEC_MARK "lazypage-exec"
/* The helper's execve carries this in its unused fourth argument (r10):
 * the filter lets that one through to the kernel.  (A program that sets
 * it itself only gets its exec run natively.) */
#define EXEC_MAGIC 0x6578656379b3a7e1ull

/* The helper (an O_PATH descriptor of an executable that calls
 * lp_exec_main) and the tree's shared page (a memfd) this pager hands to
 * the programs it executes; -1: execs run natively.  Both stay open in
 * the pager, which must not close them. */
void exec_set_helper(int helper_fd, int tree_fd);
int exec_helper(void);
bool exec_keeps_fd(int fd);

/* What exec_serve() did. */
enum exec_result {
	EXEC_CONTINUED, /* let the kernel do it, unwatched (not ours to manage) */
	EXEC_FAILED,    /* the kernel's exec failed: the caller has its errno */
	EXEC_NATIVE,    /* it succeeded; the new program runs natively */
	EXEC_MANAGED,   /* it succeeded; the new program runs managed */
	EXEC_GONE,      /* the caller died meanwhile */
};

/* Serve an execve/execveat notification (answers it).  Blocks until the
 * kernel's exec is over, and the helper's too. */
enum exec_result exec_serve(int listener, const struct seccomp_notif *req);

/* Execs that ran managed and natively (this pager's). */
void exec_counts(unsigned long *managed, unsigned long *native);

#endif /* LP_LOADER_EXEC_H */
