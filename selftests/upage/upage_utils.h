/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers for the upage suites, three forms per operation, as
 * iommufd_utils.h has them:
 *   _upage_x(...)               the raw result (0 or -errno)
 *   upage_x_ok(...)             asserts success
 *   upage_x_err(ERRNO, ...)     asserts that the call fails with ERRNO
 * They need a harness context (_metadata) in scope.
 */
#ifndef UPAGE_UTILS_H
#define UPAGE_UTILS_H

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "upage.h"

#define PAGE 4096UL

/* Open a space or SKIP the test when the module is not there. */
#define upage_open_or_skip(fd)                                              \
	do {                                                                \
		(fd) = upage_open(O_CLOEXEC);                               \
		if ((fd) == -ENOENT)                                        \
			SKIP(return, "/dev/upage missing: module not loaded"); \
		ASSERT_LE(0, (fd));                                         \
	} while (0)

#define upage_resize_ok(fd, pages) ASSERT_EQ(0, upage_resize((fd), (pages), NULL))
#define upage_resize_err(err, fd, pages) \
	ASSERT_EQ(-(err), upage_resize((fd), (pages), NULL))

/* Map @pages slots from slot @first, shared, read-write. */
static inline void *upage_map(int fd, uint64_t first, size_t pages, int flags)
{
	void *p = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, flags, fd,
		       first * PAGE);

	return p == MAP_FAILED ? NULL : p;
}

/*
 * Touch @addr (read, or write when @write) in a child and return the signal
 * that killed it, 0 if the access succeeded.
 */
static inline int upage_touch_signal(volatile char *addr, int write)
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		if (write)
			*addr = 1;
		else
			(void)*addr;
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

/* Raw ioctl on an arbitrary buffer: 0 or -errno. */
static inline int _upage_ioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) < 0 ? -errno : 0;
}

#endif /* UPAGE_UTILS_H */
