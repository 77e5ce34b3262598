/* SPDX-License-Identifier: MIT */
/* The program's first instructions (see trampoline.h). */
#include "loader/trampoline.h"

#include <asm/prctl.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#define NOSP __attribute__((no_stack_protector, noinline))

static inline long sc(long n, long a, long b, long c, long d, long e, long f)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

/* The kernel's struct sigaction for rt_sigaction (not glibc's). */
struct ksigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

NOSP static void wait_stage(struct lp_tramp *t, int from)
{
	while (atomic_load(&t->stage) == from)
		sc(SYS_futex, (long)&t->stage, FUTEX_WAIT, from, 0, 0, 0);
}

NOSP static void set_stage(struct lp_tramp *t, int to)
{
	atomic_store(&t->stage, to);
	sc(SYS_futex, (long)&t->stage, FUTEX_WAKE, 1, 0, 0, 0);
}

NOSP static void fail(struct lp_tramp *t, long err)
{
	t->err = (int)err;
	set_stage(t, TR_FAILED);
	sc(SYS_exit_group, 127, 0, 0, 0, 0, 0);
}

NOSP int tramp_main(void *arg)
{
	struct lp_tramp *t = arg;
	long rc;

	/* Die with the pager: without it our faults would never be served.
	 * (A pager we started ourselves is our child whose exit signal is
	 * SIGKILL: host_exec_main.) */
	if (!t->own_parent) {
		sc(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0, 0);
		if (sc(SYS_getppid, 0, 0, 0, 0, 0, 0) != t->pager)
			sc(SYS_exit_group, 127, 0, 0, 0, 0, 0);
	}

	if (t->no_new_privs &&
	    (rc = sc(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0)) < 0)
		fail(t, rc);
	if (t->guard &&
	    (rc = sc(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, (long)t->guard, 0,
		     0, 0)) < 0)
		fail(t, rc);
	/* (No filter: we have the tree's already, with its listener.) */
	rc = -1;
	if (t->filter) {
		rc = sc(SYS_seccomp, SECCOMP_SET_MODE_FILTER, t->filter_flags,
			(long)t->filter, 0, 0, 0);
		if (rc == -22 /* EINVAL: no WAIT_KILLABLE_RECV before 5.19 */)
			rc = sc(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
				SECCOMP_FILTER_FLAG_NEW_LISTENER, (long)t->filter,
				0, 0, 0);
		if (rc < 0)
			fail(t, rc);
	}
	t->listener = (int)rc;
	set_stage(t, TR_LISTENER);
	wait_stage(t, TR_LISTENER);
	if (t->listener >= 0)
		sc(SYS_close, t->listener, 0, 0, 0, 0, 0);

	/* What execve() does. */
	for (int i = 0; i < t->nclose; i++)
		sc(SYS_close, t->close_fds[i], 0, 0, 0, 0, 0);
	for (int sig = 1; sig <= 64; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		struct ksigaction ka = { t->ignored[sig] ? SIG_IGN : SIG_DFL, 0, 0, 0 };
		sc(SYS_rt_sigaction, sig, (long)&ka, 0, 8, 0, 0);
	}
	stack_t ss = { .ss_flags = SS_DISABLE };
	sc(SYS_sigaltstack, (long)&ss, 0, 0, 0, 0, 0);
	sc(SYS_rt_sigprocmask, SIG_SETMASK, (long)&t->sigmask, 0, 8, 0, 0);
	sc(SYS_prctl, PR_SET_NAME, (long)t->comm, 0, 0, 0, 0);
	sc(SYS_arch_prctl, ARCH_SET_FS, 0, 0, 0, 0, 0);

	uintptr_t sp = t->sp, entry = t->entry;
	set_stage(t, TR_RUNNING); /* the pager may let go of t now */
	/* As the kernel starts a program: rsp at argc, rdx (the atexit
	 * function of the ABI) zero, the other registers cleared. */
	__asm__ volatile("mov %0, %%rsp\n\t"
			 "mov %1, %%r11\n\t"
			 "xor %%eax, %%eax\n\t"
			 "xor %%ebx, %%ebx\n\t"
			 "xor %%ecx, %%ecx\n\t"
			 "xor %%edx, %%edx\n\t"
			 "xor %%esi, %%esi\n\t"
			 "xor %%edi, %%edi\n\t"
			 "xor %%ebp, %%ebp\n\t"
			 "xor %%r8d, %%r8d\n\t"
			 "xor %%r9d, %%r9d\n\t"
			 "xor %%r10d, %%r10d\n\t"
			 "xor %%r12d, %%r12d\n\t"
			 "xor %%r13d, %%r13d\n\t"
			 "xor %%r14d, %%r14d\n\t"
			 "xor %%r15d, %%r15d\n\t"
			 "jmp *%%r11"
			 :
			 : "r"(sp), "r"(entry)
			 : "memory");
	__builtin_unreachable();
}
