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
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/loop.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/swap.h>
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

/*
 * fork() for a child that must end with the test: a failed assertion (or
 * a signal) may end the test at any point, and a child left waiting or
 * looping would hold the runner's output pipe open for ever. The child
 * gets SIGKILL when the thread that forked it exits, and exits at once if
 * that happened before it could ask. Fork from a thread that outlives the
 * child (the test's own), not from a helper thread that ends first.
 */
static inline pid_t upage_fork_child(void)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
	}
	return pid;
}

/* Raw ioctl on an arbitrary buffer: 0 or -errno. */
static inline int _upage_ioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) < 0 ? -errno : 0;
}

/*
 * ---- Edits, query, stats (edit.c, protect.c, query.c, abi.c) ----
 */

/*
 * True if this process has capability @cap (a CAP_* number) in its
 * effective set, from /proc/self/status: the suites also run as a user
 * without any, and some behaviour depends on one (kernel-mode accesses
 * to traps need CAP_SYS_PTRACE when the space is opened).
 */
static inline int upage_has_cap(int cap)
{
	unsigned long long eff = 0;
	char line[128];
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "CapEff: %llx", &eff) == 1)
			break;
	}
	fclose(f);
	return !!(eff & (1ULL << cap));
}

/* True if UPAGE_API says ioctl command @cmd (UPAGE_CMD_*) is implemented. */
static inline int upage_has_cmd(int fd, unsigned int cmd)
{
	struct upage_api api;

	if (upage_api(fd, &api))
		return 0;
	return !!(api.out_ioctls & (1ULL << cmd));
}

/* SKIP the test when the module does not report ioctl command @cmd. */
#define upage_require_cmd(fd, cmd)                                          \
	do {                                                                \
		if (!upage_has_cmd((fd), (cmd)))                            \
			SKIP(return, "UPAGE_API: ioctl %s not implemented", #cmd); \
	} while (0)

/* UPAGE_EDIT of a vector; *idx gets out_error_index (UINT32_MAX preset). */
static inline int _upage_edit(int fd, const struct upage_edit_op *ops,
			      uint32_t count, uint32_t *idx)
{
	uint32_t dummy;

	return upage_edit(fd, ops, count, idx ? idx : &dummy);
}

#define upage_edit_ok(fd, ops, count) \
	ASSERT_EQ(0, _upage_edit((fd), (ops), (count), NULL))
/* Fails with @err, and out_error_index is @index. */
#define upage_edit_err(err, index, fd, ops, count)                          \
	do {                                                                \
		uint32_t __idx = 0x5a5a5a5a;                                \
		ASSERT_EQ(-(err), _upage_edit((fd), (ops), (count), &__idx)); \
		ASSERT_EQ((uint32_t)(index), __idx);                        \
	} while (0)

/* One-op edits: raw, ok, err. */
#define _upage_alias(fd, dst, src, n) upage_alias((fd), (dst), (src), (n))
#define upage_alias_ok(fd, dst, src, n) \
	ASSERT_EQ(0, upage_alias((fd), (dst), (src), (n)))
#define upage_alias_err(err, fd, dst, src, n) \
	ASSERT_EQ(-(err), upage_alias((fd), (dst), (src), (n)))
#define _upage_alias_cow(fd, dst, src, n) upage_alias_cow((fd), (dst), (src), (n))
#define upage_alias_cow_ok(fd, dst, src, n) \
	ASSERT_EQ(0, upage_alias_cow((fd), (dst), (src), (n)))
#define upage_alias_cow_err(err, fd, dst, src, n) \
	ASSERT_EQ(-(err), upage_alias_cow((fd), (dst), (src), (n)))
#define _upage_move(fd, dst, src, n) upage_move((fd), (dst), (src), (n))
#define upage_move_ok(fd, dst, src, n) \
	ASSERT_EQ(0, upage_move((fd), (dst), (src), (n)))
#define upage_move_err(err, fd, dst, src, n) \
	ASSERT_EQ(-(err), upage_move((fd), (dst), (src), (n)))
#define _upage_swap(fd, a, b, n) upage_swap((fd), (a), (b), (n))
#define upage_swap_ok(fd, a, b, n) \
	ASSERT_EQ(0, upage_swap((fd), (a), (b), (n)))
#define upage_swap_err(err, fd, a, b, n) \
	ASSERT_EQ(-(err), upage_swap((fd), (a), (b), (n)))
#define _upage_protect(fd, first, n, prot) upage_protect((fd), (first), (n), (prot))
#define upage_protect_ok(fd, first, n, prot) \
	ASSERT_EQ(0, upage_protect((fd), (first), (n), (prot)))
#define upage_protect_err(err, fd, first, n, prot) \
	ASSERT_EQ(-(err), upage_protect((fd), (first), (n), (prot)))

/* UPAGE_QUERY of slots first..first+n-1 into info[]. */
#define _upage_query(fd, first, n, info) upage_query((fd), (first), (n), (info))
#define upage_query_ok(fd, first, n, info) \
	ASSERT_EQ(0, upage_query((fd), (first), (n), (info)))
#define upage_query_err(err, fd, first, n, info) \
	ASSERT_EQ(-(err), upage_query((fd), (first), (n), (info)))

/* UPAGE_QUERY of one slot, returned by value; asserts success. */
#define upage_slot(fd, slot)                                                \
	({                                                                  \
		struct upage_slot_info __si;                                \
		memset(&__si, 0xee, sizeof(__si));                          \
		ASSERT_EQ(0, upage_query((fd), (slot), 1, &__si));          \
		__si;                                                       \
	})

/* UPAGE_QUERY_BY_ADDR: raw, ok (slot and info out), err. */
#define _upage_query_addr(fd, addr, slot, info) \
	upage_query_addr((fd), (addr), (slot), (info))
#define upage_query_addr_ok(fd, addr, slot, info) \
	ASSERT_EQ(0, upage_query_addr((fd), (addr), (slot), (info)))
#define upage_query_addr_err(err, fd, addr) \
	do {                                                                \
		struct upage_slot_info __si;                                \
		uint64_t __slot;                                            \
		ASSERT_EQ(-(err), upage_query_addr((fd), (addr), &__slot, &__si)); \
	} while (0)

/* UPAGE_STATS. */
#define _upage_stats(fd, st) upage_stats((fd), (st))
#define upage_stats_ok(fd, st) ASSERT_EQ(0, upage_stats((fd), (st)))
#define upage_stats_err(err, fd, st) ASSERT_EQ(-(err), upage_stats((fd), (st)))

/*
 * Fill page @i of mapping @p with byte @v. The accesses are volatile: the
 * same frame may be mapped at two addresses (aliases), which the compiler
 * cannot know, so it must not reorder or cache them.
 */
static inline void upage_fill(volatile void *p, size_t i, unsigned char v)
{
	volatile unsigned char *c = (volatile unsigned char *)p + i * PAGE;
	size_t k;

	for (k = 0; k < PAGE; k++)
		c[k] = v;
}

/* True if every byte of page @i of mapping @p is @v (volatile reads). */
static inline int upage_page_is(const volatile void *p, size_t i,
				unsigned char v)
{
	const volatile unsigned char *c =
		(const volatile unsigned char *)p + i * PAGE;
	size_t k;

	for (k = 0; k < PAGE; k++)
		if (c[k] != v)
			return 0;
	return 1;
}

/*
 * Pseudo-random contents for @pages pages, from @seed: returns a malloc()ed
 * copy that the caller compares against with upage_same() and frees.
 */
static inline unsigned char *upage_random_pages(size_t pages, unsigned int seed)
{
	unsigned char *buf = malloc(pages * PAGE);
	size_t i;

	if (!buf)
		return NULL;
	srandom(seed);
	for (i = 0; i < pages * PAGE; i++)
		buf[i] = (unsigned char)random();
	return buf;
}

/* True if the @len bytes at @p equal @want. */
static inline int upage_same(const volatile unsigned char *p,
			     const unsigned char *want, size_t len)
{
	return !memcmp((const void *)p, want, len);
}

/*
 * In-process access that survives SIGSEGV and SIGBUS: the handler records
 * the signal, si_addr and si_code and siglongjmp()s back.
 */
struct upage_fault {
	int sig;		/* 0: the access succeeded */
	void *addr;		/* si_addr */
	int code;		/* si_code */
	unsigned char val;	/* the byte read, for a read that succeeded */
};

static sigjmp_buf upage_fault_env;
static volatile sig_atomic_t upage_fault_armed;
static struct upage_fault upage_fault_seen;

static void upage_fault_handler(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (!upage_fault_armed) {
		/* Not ours: die of it as if there were no handler. */
		signal(sig, SIG_DFL);
		return;
	}
	upage_fault_armed = 0;
	upage_fault_seen.sig = sig;
	upage_fault_seen.addr = si->si_addr;
	upage_fault_seen.code = si->si_code;
	siglongjmp(upage_fault_env, 1);
}

/*
 * Read (or, when @write, write @val to) the byte at @addr in this process.
 * Returns the signal the access raised, 0 if none; *f gets the details.
 */
static inline int _upage_access(volatile unsigned char *addr, int write,
				unsigned char val, struct upage_fault *f)
{
	struct sigaction sa, old_segv, old_bus;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = upage_fault_handler;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old_segv);
	sigaction(SIGBUS, &sa, &old_bus);
	memset(&upage_fault_seen, 0, sizeof(upage_fault_seen));
	if (sigsetjmp(upage_fault_env, 1) == 0) {
		upage_fault_armed = 1;
		if (write)
			*addr = val;
		else
			upage_fault_seen.val = *addr;
		upage_fault_armed = 0;
	}
	sigaction(SIGSEGV, &old_segv, NULL);
	sigaction(SIGBUS, &old_bus, NULL);
	if (f)
		*f = upage_fault_seen;
	return upage_fault_seen.sig;
}

/* The access succeeds. */
#define upage_access_ok(_addr, _write)                                      \
	do {                                                                \
		struct upage_fault __f;                                     \
		ASSERT_EQ(0, _upage_access((volatile unsigned char *)(_addr), \
					   (_write), 0x5c, &__f));          \
	} while (0)

/* The access raises SIGSEGV at exactly @_addr with si_code SEGV_MAPERR. */
#define upage_access_segv(_addr, _write)                                    \
	do {                                                                \
		struct upage_fault __f;                                     \
		void *__a = (void *)(_addr);                                \
		ASSERT_EQ(SIGSEGV, _upage_access((volatile unsigned char *)__a, \
						 (_write), 0x5c, &__f));    \
		ASSERT_EQ(__a, __f.addr);                                   \
		ASSERT_EQ(SEGV_MAPERR, __f.code);                           \
	} while (0)

/*
 * Swap on /dev/zram0 if the guest has zram and no swap yet (root only);
 * true if there is swap. Reclaim pages a space out to its shmem store,
 * which only frees memory once the kernel can swap the store.
 */
static inline int upage_zram_swap(void)
{
	FILE *f = fopen("/proc/swaps", "r");
	char line[256];
	int lines = 0, fd;

	if (f) {
		while (fgets(line, sizeof(line), f))
			lines++;
		fclose(f);
	}
	if (lines > 1)
		return 1;
	fd = open("/sys/block/zram0/disksize", O_WRONLY);
	if (fd < 0)
		return 0;
	if (write(fd, "256M", 4) != 4) {
		close(fd);
		return 0;
	}
	close(fd);
	if (system("mkswap /dev/zram0 >/dev/null 2>&1"))
		return 0;
	return !swapon("/dev/zram0", 0);
}

/* Number of lines of /proc/self/maps: VMAs of this process. */
static inline int upage_nr_vmas(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	int c, lines = 0;

	if (!f)
		return -1;
	while ((c = fgetc(f)) != EOF)
		lines += c == '\n';
	fclose(f);
	return lines;
}

/*
 * Attach @backing to a free loop device (for O_DIRECT through a real block
 * device); its path in @dev, its open fd in *@loop; 0 or -errno.
 */
static inline int upage_loop_attach(int backing, char *dev, size_t devlen,
				    int *loop)
{
	struct loop_config cfg = { .fd = backing };
	int ctl, n, i, fd = -1;

	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return -errno;
	for (i = 0; i < 10; i++) {
		n = ioctl(ctl, LOOP_CTL_GET_FREE);
		if (n < 0) {
			n = -errno;
			close(ctl);
			return n;
		}
		snprintf(dev, devlen, "/dev/loop%d", n);
		/* devtmpfs may create the node a moment later */
		for (int t = 0; t < 100 && fd < 0; t++) {
			fd = open(dev, O_RDWR | O_CLOEXEC);
			if (fd < 0)
				usleep(10000);
		}
		if (fd < 0)
			break;
		if (!ioctl(fd, LOOP_CONFIGURE, &cfg))
			break;
		if ((errno == EINVAL || errno == ENOTTY) &&
		    !ioctl(fd, LOOP_SET_FD, backing))
			break;
		/* EBUSY: someone took it first */
		close(fd);
		fd = -1;
	}
	close(ctl);
	if (fd < 0)
		return -EBUSY;
	*loop = fd;
	return 0;
}

#endif /* UPAGE_UTILS_H */
