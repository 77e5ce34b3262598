/* SPDX-License-Identifier: MIT */
/*
 * LD_PRELOAD shim for test_lifecycle.c, as on a hung filesystem:
 * - open() of a path holding "slow-start" creates $LP_SLOW_START_MARK and
 *   then never returns: a program that starts slowly, deterministically;
 * - with $LP_STUCK_TEARDOWN set, ftruncate(fd, 0) (the pager's last touch
 *   of its swap file, in its teardown) never returns: a stuck teardown.
 */
/* Our own names for open and ftruncate: not redirected to the *64 ones. */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

/* Not <fcntl.h>: its declarations (redirected to open64 and the like)
 * would clash with these definitions. */
#define AT_FDCWD_ (-100)
#define O_WRONLY_ 01
#define O_CREAT_ 0100
#define O_CLOEXEC_ 02000000

int open(const char *path, int flags, ...);
int open64(const char *path, int flags, ...);
int openat(int dirfd, const char *path, int flags, ...);
int openat64(int dirfd, const char *path, int flags, ...);
int __open_2(const char *path, int flags);
int ftruncate(int fd, off_t len);
int ftruncate64(int fd, off_t len);
int __open64_2(const char *path, int flags);

static void hang(void)
{
	for (;;)
		pause();
}

static void maybe_hang(const char *path)
{
	const char *mark = getenv("LP_SLOW_START_MARK");

	if (!path || !mark || !strstr(path, "slow-start"))
		return;
	int fd = (int)syscall(SYS_openat, AT_FDCWD_, mark,
			      O_WRONLY_ | O_CREAT_ | O_CLOEXEC_, 0600);
	if (fd >= 0)
		close(fd);
	hang();
}

int ftruncate(int fd, off_t len)
{
	if (len == 0 && getenv("LP_STUCK_TEARDOWN"))
		hang();
	return (int)syscall(SYS_ftruncate, fd, len);
}

int ftruncate64(int fd, off_t len)
{
	return ftruncate(fd, len);
}

#define WRAP(name, ...)                                                     \
	int name(const char *path, int flags, ...)                          \
	{                                                                   \
		static int (*real)(const char *, int, ...);                 \
		va_list ap;                                                 \
		va_start(ap, flags);                                        \
		mode_t mode = va_arg(ap, mode_t);                           \
		va_end(ap);                                                 \
		maybe_hang(path);                                           \
		if (!real)                                                  \
			real = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, #name); \
		return real(path, flags, mode);                             \
	}
WRAP(open)
WRAP(open64)

#define WRAPAT(name)                                                        \
	int name(int dirfd, const char *path, int flags, ...)               \
	{                                                                   \
		static int (*real)(int, const char *, int, ...);            \
		va_list ap;                                                 \
		va_start(ap, flags);                                        \
		mode_t mode = va_arg(ap, mode_t);                           \
		va_end(ap);                                                 \
		maybe_hang(path);                                           \
		if (!real)                                                  \
			real = (int (*)(int, const char *, int, ...))dlsym(RTLD_NEXT, #name); \
		return real(dirfd, path, flags, mode);                      \
	}
WRAPAT(openat)
WRAPAT(openat64)

int __open_2(const char *path, int flags)
{
	return open(path, flags);
}

int __open64_2(const char *path, int flags)
{
	return open(path, flags);
}
