// SPDX-License-Identifier: GPL-2.0
/*
 * What a hostile reviewer tries first: the kernel's own ways of reaching
 * a mapping (mremap, madvise, MAP_POPULATE, core dumps, another process's
 * process_vm_writev, ptrace and /proc/pid/mem), churn of the mapping under
 * faults, ioctl arguments that lie in the space's own protected, trapped
 * or evicted slots, and O_DIRECT racing the edits that take its pages.
 * Each test makes the attack and asserts the documented outcome: an errno
 * or a signal, the data intact, the protection, traps and tracking kept,
 * nothing half done, and no wait without an end.
 *
 * The suite also runs as an unprivileged member of the device's group:
 * the parts that need root (core_pattern, loop devices) are skipped then,
 * and kernel-mode accesses to traps fail at once instead of waiting.
 */
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>

#include <linux/capability.h>

#include "upage_utils.h"

#ifndef MREMAP_FIXED
#define MREMAP_FIXED 2
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif
#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif
#ifndef MADV_COLD
#define MADV_COLD 20
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define SLOTS 16
/* How long anything that should happen may take before the test fails. */
#define WAIT_MS 5000
/* The trap timeout of tests whose kernel-mode accesses may wait. */
#define TRAP_MS 300

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * ---- Page contents ----
 *
 * Each page holds a pattern that names it (its tag), so that a page in
 * the wrong place, a torn page or a lost one is seen whole.
 */
static uint64_t pat_word(uint64_t tag, size_t i)
{
	return (tag << 32) ^ (i * 0x9e3779b97f4a7c15ULL) ^ 0x3c3c;
}

static void fill_tag(volatile void *page, uint64_t tag)
{
	volatile uint64_t *w = page;
	size_t i;

	for (i = 0; i < PAGE / 8; i++)
		w[i] = pat_word(tag, i);
}

/* The tag of a page: 0 for zeros, UINT64_MAX if torn or foreign. */
static uint64_t page_tag(const volatile void *page)
{
	const volatile uint64_t *w = page;
	uint64_t tag = (w[0] ^ 0x3c3c) >> 32;
	bool zero = true, match = true;
	size_t i;

	for (i = 0; i < PAGE / 8; i++) {
		zero &= w[i] == 0;
		match &= w[i] == pat_word(tag, i);
	}
	return zero ? 0 : match ? tag : UINT64_MAX;
}

/*
 * Some words of @page, each a word of a tag in [lo, hi): a page read
 * while an edit replaces its frame may mix two tags, but never holds
 * anything else.
 */
static bool words_ok(const volatile void *page, uint64_t lo, uint64_t hi)
{
	const volatile uint64_t *w = page;
	size_t i;

	for (i = 0; i < PAGE / 8; i += 61) {
		uint64_t v = w[i] ^ (i * 0x9e3779b97f4a7c15ULL) ^ 0x3c3c;
		uint64_t tag = v >> 32;

		if (tag < lo || tag >= hi || (uint32_t)v)
			return false;
	}
	return true;
}

static uint64_t frame_id(int fd, uint64_t slot)
{
	struct upage_slot_info info;

	if (upage_query(fd, slot, 1, &info))
		return UINT64_MAX;
	return info.frame_id;
}

static struct upage_stats stats(int fd)
{
	struct upage_stats st;

	memset(&st, 0, sizeof(st));
	upage_stats(fd, &st);
	return st;
}

/*
 * ---- Accesses that survive SIGSEGV and SIGBUS, in any thread ----
 *
 * The handler is the process's, the jump buffer the thread's.
 */
static __thread sigjmp_buf probe_env;
static __thread volatile sig_atomic_t probe_armed;
static __thread volatile int probe_sig;

static void probe_handler(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	(void)uc;
	if (!probe_armed) {
		/* Not ours: die of it as if there were no handler. */
		signal(sig, SIG_DFL);
		return;
	}
	probe_armed = 0;
	probe_sig = sig;
	siglongjmp(probe_env, 1);
}

static void probe_install(void)
{
	struct sigaction sa = { .sa_sigaction = probe_handler,
				.sa_flags = SA_SIGINFO | SA_NODEFER };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
}

/*
 * Read @addr (or write @val there) in the calling thread: 0, or the
 * signal the access raised. *out gets the byte read.
 */
static int probe(volatile unsigned char *addr, bool write, unsigned char val,
		 unsigned char *out)
{
	unsigned char c;

	probe_sig = 0;
	if (sigsetjmp(probe_env, 1))
		return probe_sig;
	probe_armed = 1;
	if (write) {
		*addr = val;
	} else {
		c = *addr;
		if (out)
			*out = c;
	}
	probe_armed = 0;
	return 0;
}

static int probe_read(volatile unsigned char *addr)
{
	return probe(addr, false, 0, NULL);
}

/* Write back the byte that is there: a write that changes no data. */
static int probe_rewrite(volatile unsigned char *addr)
{
	unsigned char c;
	int sig = probe(addr, false, 0, &c);

	return sig ? sig : probe(addr, true, c, NULL);
}

/*
 * ---- Traps ----
 */

/* The revents of a poll() for POLLIN of up to @ms (0 if none came). */
static int poll_in(int fd, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, ms) == 1 ? pfd.revents : 0;
}

/* A thread that makes one access, surviving a signal. */
struct toucher {
	volatile unsigned char *addr;
	bool write;
	int sig;
	volatile int done;
	pthread_t th;
};

static void *toucher_run(void *arg)
{
	struct toucher *t = arg;

	t->sig = t->write ? probe_rewrite(t->addr) : probe_read(t->addr);
	__atomic_store_n(&t->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static int join_within(pthread_t th, long ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return pthread_timedjoin_np(th, NULL, &ts);
}

/* Drop the events queued on @fd (they are dropped anyway once answered). */
static void drain_events(int fd)
{
	struct upage_trap_event ev[8];
	int fl = fcntl(fd, F_GETFL);

	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	while (read(fd, ev, sizeof(ev)) > 0)
		;
	fcntl(fd, F_SETFL, fl);
}

/*
 * An access to @addr by another thread waits on the trap of slot @slot:
 * its event comes, it does not complete before the answer, and it does
 * once answered with MAP (the trap stays). 0 if so, else which step
 * failed. Sets the space's trap timeout to 0 (wait until answered).
 */
static int access_traps(int fd, volatile unsigned char *addr, uint64_t slot,
			bool write)
{
	struct toucher t = { .addr = addr, .write = write };
	struct upage_trap_event ev;
	uint64_t woken;
	int ret = 0;

	if (upage_trap_timeout(fd, 0))
		return -10;
	drain_events(fd);
	probe_install();
	if (pthread_create(&t.th, NULL, toucher_run, &t))
		return -11;
	if (!(poll_in(fd, WAIT_MS) & POLLIN))
		ret = -1;	/* no event */
	else if (read(fd, &ev, sizeof(ev)) != sizeof(ev) || ev.slot != slot)
		ret = -2;	/* not this slot's */
	if (!ret && __atomic_load_n(&t.done, __ATOMIC_SEQ_CST))
		ret = -3;	/* went through without an answer */
	upage_resolve(fd, slot, 1, UPAGE_RESOLVE_MAP, 0, NULL, &woken);
	if (join_within(t.th, WAIT_MS)) {
		upage_resolve(fd, slot, 1, UPAGE_RESOLVE_MAP,
			      UPAGE_RESOLVE_LIFT, NULL, &woken);
		pthread_join(t.th, NULL);
		if (!ret)
			ret = -4;	/* still waiting after the answer */
	}
	if (!ret && t.sig)
		ret = -5;
	return ret;
}

/*
 * ---- The rules every view of the space must keep ----
 *
 * Slot 0 tracked, 1 READ, 2 NONE, 3 trapped (every access), 4 evicted,
 * 5 write-trapped; every slot i holds tag 100 + i.
 */
#define RULE_SLOTS 6

static int arm_rules(int fd)
{
	struct upage_slot_info info;

	if (upage_track_start(fd, 0, 1) ||
	    upage_protect(fd, 1, 1, UPAGE_PROT_READ) ||
	    upage_protect(fd, 2, 1, UPAGE_PROT_NONE) ||
	    upage_trap(fd, 3, 1, UPAGE_TRAP_READ) ||
	    upage_trap(fd, 5, 1, UPAGE_TRAP_WRITE) ||
	    upage_query(fd, 4, 1, &info))
		return -1;
	if (!(info.state & UPAGE_SLOT_EVICTED) && upage_evict(fd, 4, 1, NULL))
		return -1;
	return 0;
}

/* The dirty bit of slot @slot, without clearing it: 1, 0 or -errno. */
static int dirty_bit(int fd, uint64_t slot)
{
	uint64_t bm = 0;
	int ret = upage_dirty(fd, slot, 1, &bm, 0, NULL);

	return ret ? ret : (int)(bm & 1);
}

/* Every rule holds at @q, a view of slots 0..RULE_SLOTS-1. */
static void check_rules(struct __test_metadata *_metadata, int fd,
			volatile unsigned char *q)
{
	probe_install();
	/* Tracking: clean until written through this view. */
	EXPECT_EQ(0, dirty_bit(fd, 0));
	EXPECT_EQ(0, probe_rewrite(q));
	EXPECT_EQ(1, dirty_bit(fd, 0));
	/* READ: reads work, writes do not. */
	EXPECT_EQ(0, probe_read(q + PAGE + 1));
	EXPECT_EQ(101, page_tag(q + PAGE));
	EXPECT_EQ(SIGSEGV, probe(q + PAGE + 2, true, 0xee, NULL));
	/* NONE: nothing. */
	EXPECT_EQ(SIGSEGV, probe_read(q + 2 * PAGE + 3));
	EXPECT_EQ(SIGSEGV, probe(q + 2 * PAGE + 3, true, 0xee, NULL));
	/* Trapped: waits for the handler. */
	EXPECT_EQ(0, access_traps(fd, q + 3 * PAGE + 4, 3, false));
	/* Evicted: pages back in, intact. */
	EXPECT_EQ(104, page_tag(q + 4 * PAGE));
	/* Write-trapped: reads go, writes wait. */
	EXPECT_EQ(105, page_tag(q + 5 * PAGE));
	EXPECT_EQ(0, access_traps(fd, q + 5 * PAGE + 5, 5, true));
}

/*
 * Lift every rule of slots 0..@n-1 and check that each slot still holds
 * its tag, read through @q.
 */
static void check_tags(struct __test_metadata *_metadata, int fd,
		       volatile unsigned char *q, size_t n)
{
	size_t i;

	ASSERT_EQ(0, upage_protect(fd, 0, n, UPAGE_PROT_RW));
	ASSERT_EQ(0, upage_trap(fd, 0, n, 0));
	for (i = 0; i < n; i++)
		EXPECT_EQ(100 + i, page_tag(q + i * PAGE)) {
			TH_LOG("slot %zu lost its data", i);
		}
}

FIXTURE(adv) {
	int fd;
	unsigned char *p;
	size_t len;
};

FIXTURE_SETUP(adv)
{
	size_t i;

	self->p = NULL;
	upage_open_or_skip(self->fd);
	upage_require_cmd(self->fd, UPAGE_CMD_RESOLVE);
	upage_resize_ok(self->fd, SLOTS);
	self->len = SLOTS * PAGE;
	self->p = upage_map(self->fd, 0, SLOTS, MAP_SHARED);
	ASSERT_NE(NULL, self->p);
	for (i = 0; i < SLOTS; i++)
		fill_tag(self->p + i * PAGE, 100 + i);
	probe_install();
}

FIXTURE_TEARDOWN(adv)
{
	uint64_t woken;

	if (self->fd >= 0) {
		/* Let any thread still waiting go before it is unmapped. */
		upage_resolve(self->fd, 0, SLOTS, UPAGE_RESOLVE_MAP,
			      UPAGE_RESOLVE_LIFT, NULL, &woken);
	}
	if (self->p)
		munmap(self->p, self->len);
	if (self->fd >= 0)
		close(self->fd);
}

/* ------------------------------------------------------------------ */
/* mremap                                                             */

/*
 * mremap moves a mapping, not the slots' rules: at the new address the
 * protection, traps, tracking and evicted data hold, and the old address
 * is gone.
 */
TEST_F(adv, mremap_move_keeps_protection_traps_and_tracking)
{
	unsigned char *target, *q;

	ASSERT_EQ(0, arm_rules(self->fd));
	target = mmap(NULL, self->len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		      -1, 0);
	ASSERT_NE(MAP_FAILED, target);
	q = mremap(self->p, self->len, self->len, MREMAP_MAYMOVE | MREMAP_FIXED,
		   target);
	ASSERT_EQ(target, q);
	EXPECT_EQ(SIGSEGV, probe_read(self->p));
	self->p = q;
	check_rules(_metadata, self->fd, q);
	/* Edits reach the new address. */
	ASSERT_EQ(0, upage_swap(self->fd, 6, 7, 1));
	EXPECT_EQ(107, page_tag(q + 6 * PAGE));
	ASSERT_EQ(0, upage_swap(self->fd, 6, 7, 1));
	check_tags(_metadata, self->fd, q, SLOTS);
}

/*
 * Growing a mapping in place or by a move shows the next slots with their
 * rules; shrinking it keeps them on what is left and unmaps the rest.
 */
TEST_F(adv, mremap_grow_and_shrink_keep_slot_rules)
{
	unsigned char *q, *r;

	q = upage_map(self->fd, 0, 2, MAP_SHARED);
	ASSERT_NE(NULL, q);
	ASSERT_EQ(0, arm_rules(self->fd));
	r = mremap(q, 2 * PAGE, 8 * PAGE, MREMAP_MAYMOVE);
	ASSERT_NE(MAP_FAILED, r);
	check_rules(_metadata, self->fd, r);

	ASSERT_EQ(0, arm_rules(self->fd));
	q = mremap(r, 8 * PAGE, 3 * PAGE, 0);
	ASSERT_EQ(r, q);
	EXPECT_EQ(0, dirty_bit(self->fd, 0));
	EXPECT_EQ(0, probe_rewrite(q + 9));
	EXPECT_EQ(1, dirty_bit(self->fd, 0));
	EXPECT_EQ(SIGSEGV, probe(q + PAGE, true, 1, NULL));
	EXPECT_EQ(SIGSEGV, probe_read(q + 2 * PAGE));
	/* The cut part is no mapping any more, not a view of slot 3. */
	EXPECT_EQ(SIGSEGV, probe_read(q + 3 * PAGE));
	munmap(q, 3 * PAGE);
	check_tags(_metadata, self->fd, self->p, SLOTS);
}

/*
 * MREMAP_DONTUNMAP: kernels differ (some take it only for private
 * anonymous memory, EINVAL; 6.1 takes any mapping without VM_DONTEXPAND).
 * Where it is refused nothing changed; where it works, the new and the
 * old address are both views of the space, with every rule. Either way
 * the space is intact.
 */
TEST_F(adv, mremap_dontunmap_keeps_the_space_intact)
{
	unsigned char *q;

	ASSERT_EQ(0, arm_rules(self->fd));
	q = mremap(self->p, RULE_SLOTS * PAGE, RULE_SLOTS * PAGE,
		   MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
	if (q == MAP_FAILED) {
		TH_LOG("MREMAP_DONTUNMAP: %s", strerror(errno));
		EXPECT_EQ(EINVAL, errno);
		check_rules(_metadata, self->fd, self->p);
	} else {
		TH_LOG("MREMAP_DONTUNMAP moved the view");
		check_rules(_metadata, self->fd, q);
		ASSERT_EQ(0, arm_rules(self->fd));
		check_rules(_metadata, self->fd, self->p);
		munmap(q, RULE_SLOTS * PAGE);
	}
	check_tags(_metadata, self->fd, self->p, SLOTS);
}

/*
 * mremap with old_size 0 makes a second view of a shared mapping: writes
 * and edits reach both, and every rule holds in both.
 */
TEST_F(adv, mremap_duplicate_view_keeps_every_rule)
{
	unsigned char *q;

	q = mremap(self->p, 0, 8 * PAGE, MREMAP_MAYMOVE);
	ASSERT_NE(MAP_FAILED, q) {
		TH_LOG("mremap(old_size 0): %s", strerror(errno));
	}
	fill_tag(q + 6 * PAGE, 206);
	EXPECT_EQ(206, page_tag(self->p + 6 * PAGE));
	ASSERT_EQ(0, upage_swap(self->fd, 6, 7, 1));
	EXPECT_EQ(107, page_tag(q + 6 * PAGE));
	EXPECT_EQ(206, page_tag(self->p + 7 * PAGE));
	fill_tag(q + 6 * PAGE, 106);
	fill_tag(q + 7 * PAGE, 107);

	ASSERT_EQ(0, arm_rules(self->fd));
	check_rules(_metadata, self->fd, q);
	ASSERT_EQ(0, arm_rules(self->fd));
	check_rules(_metadata, self->fd, self->p);
	munmap(q, 8 * PAGE);
	check_tags(_metadata, self->fd, self->p, SLOTS);
}

/*
 * mmap refuses a window past the largest space; mremap grows a mapping
 * without asking the driver, so a view may reach past it anyway. Pages
 * there are beyond any space's end: SIGBUS, as beyond a file's, and a
 * query by address there finds no slot.
 */
TEST_F(adv, mremap_grow_past_the_largest_space_is_sigbus)
{
	struct upage_slot_info info;
	struct upage_api api;
	unsigned char *q, *r;
	uint64_t slot;
	int ret;

	ASSERT_EQ(0, upage_api(self->fd, &api));
	q = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd,
		 (api.out_max_pages - 1) * PAGE);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 2 * PAGE, PROT_READ, MAP_SHARED,
				   self->fd, (api.out_max_pages - 1) * PAGE));
	r = mremap(q, PAGE, 4 * PAGE, MREMAP_MAYMOVE);
	if (r == MAP_FAILED) {
		TH_LOG("mremap past the largest space: %s", strerror(errno));
		munmap(q, PAGE);
		return;
	}
	EXPECT_EQ(SIGBUS, probe_read(r));
	EXPECT_EQ(SIGBUS, probe_read(r + 3 * PAGE));
	EXPECT_EQ(SIGBUS, probe(r + 2 * PAGE, true, 1, NULL));
	ret = upage_query_addr(self->fd, r + 3 * PAGE, &slot, &info);
	EXPECT_NE(0, ret) {
		TH_LOG("query by address past the largest space: slot %llu",
		       (unsigned long long)slot);
	}
	EXPECT_EQ(SLOTS, stats(self->fd).out_pages);
	munmap(r, 4 * PAGE);
}

/* ------------------------------------------------------------------ */
/* madvise                                                            */

/*
 * MADV_REMOVE on a space is ENODEV (its file is a character device), on
 * protected and trapped slots too: nothing is dropped, nothing trapped.
 */
TEST_F(adv, madvise_remove_is_enodev_and_changes_nothing)
{
	ASSERT_EQ(0, arm_rules(self->fd));
	EXPECT_EQ(-1, madvise(self->p, self->len, MADV_REMOVE));
	EXPECT_EQ(ENODEV, errno);
	EXPECT_EQ(0, stats(self->fd).out_traps);
	check_rules(_metadata, self->fd, self->p);
	check_tags(_metadata, self->fd, self->p, SLOTS);
}

/*
 * Advice that drops PTEs or asks for reclaim (DONTNEED, COLD, PAGEOUT,
 * FREE) loses no data of shared file memory, and the next access faults
 * into every rule again.
 */
TEST_F(adv, madvise_reclaim_advice_keeps_data_and_rules)
{
	static const int advice[] = { MADV_DONTNEED, MADV_COLD, MADV_PAGEOUT,
				      MADV_FREE };
	static const char *const name[] = { "DONTNEED", "COLD", "PAGEOUT",
					    "FREE" };
	uint64_t traps;
	size_t a, i;

	for (a = 0; a < ARRAY_SIZE(advice); a++) {
		ASSERT_EQ(0, arm_rules(self->fd));
		/* Map what may be mapped, so that there are PTEs to drop. */
		for (i = 6; i < SLOTS; i++)
			(void)page_tag(self->p + i * PAGE);
		(void)page_tag(self->p);
		(void)page_tag(self->p + PAGE);
		traps = stats(self->fd).out_traps;
		if (madvise(self->p, self->len, advice[a]))
			TH_LOG("MADV_%s: %s", name[a], strerror(errno));
		/* The advice itself made no access that could trap. */
		EXPECT_EQ(traps, stats(self->fd).out_traps);
		check_rules(_metadata, self->fd, self->p);
		for (i = 6; i < SLOTS; i++)
			EXPECT_EQ(100 + i, page_tag(self->p + i * PAGE));
		check_tags(_metadata, self->fd, self->p, SLOTS);
	}
}

/*
 * MADV_DONTFORK: the child has no mapping there (SIGSEGV), the parent
 * keeps it; MADV_DOFORK gives the next child the view again.
 */
TEST_F(adv, madvise_dontfork_hides_the_mapping_from_the_child)
{
	int status;
	pid_t pid;

	ASSERT_EQ(0, madvise(self->p, self->len, MADV_DONTFORK));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(probe_read(self->p + 7 * PAGE) == SIGSEGV ? 0 : 1);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	EXPECT_EQ(107, page_tag(self->p + 7 * PAGE));

	ASSERT_EQ(0, madvise(self->p, self->len, MADV_DOFORK));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (page_tag(self->p + 7 * PAGE) != 107)
			_exit(1);
		fill_tag(self->p + 8 * PAGE, 208);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	EXPECT_EQ(208, page_tag(self->p + 8 * PAGE));
}

/*
 * MADV_WIPEONFORK is for private anonymous memory: EINVAL on a space, and
 * a child still shares its contents.
 */
TEST_F(adv, madvise_wipeonfork_is_einval_and_the_child_shares)
{
	int status;
	pid_t pid;

	EXPECT_EQ(-1, madvise(self->p, self->len, MADV_WIPEONFORK));
	EXPECT_EQ(EINVAL, errno);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (page_tag(self->p + 9 * PAGE) != 109)
			_exit(1);
		fill_tag(self->p + 9 * PAGE, 209);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	EXPECT_EQ(209, page_tag(self->p + 9 * PAGE));
}

/*
 * MADV_POPULATE_READ/WRITE fault pages in through get_user_pages: on a
 * slot whose protection refuses the access it fails (EFAULT), on a
 * trapped slot it fails without an answer (at once, or by the timeout in
 * a space whose handler may hold the kernel), and it maps nothing that a
 * later access could use to skip a rule.
 */
TEST_F(adv, madvise_populate_does_not_bypass_protection_or_traps)
{
	unsigned char *p = self->p;
	long t0;

	if (madvise(p + 7 * PAGE, PAGE, MADV_POPULATE_READ) && errno == EINVAL)
		SKIP(return, "no MADV_POPULATE_READ in this kernel");
	EXPECT_EQ(0, madvise(p + 7 * PAGE, PAGE, MADV_POPULATE_WRITE));
	ASSERT_EQ(0, arm_rules(self->fd));
	ASSERT_EQ(0, upage_trap_timeout(self->fd, TRAP_MS));

	EXPECT_EQ(-1, madvise(p + 2 * PAGE, PAGE, MADV_POPULATE_READ));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, madvise(p + 2 * PAGE, PAGE, MADV_POPULATE_WRITE));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(0, madvise(p + PAGE, PAGE, MADV_POPULATE_READ));
	EXPECT_EQ(-1, madvise(p + PAGE, PAGE, MADV_POPULATE_WRITE));
	EXPECT_EQ(EFAULT, errno);
	t0 = now_ms();
	EXPECT_EQ(-1, madvise(p + 3 * PAGE, PAGE, MADV_POPULATE_READ));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, madvise(p + 5 * PAGE, PAGE, MADV_POPULATE_WRITE));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_GT(WAIT_MS, now_ms() - t0);
	EXPECT_EQ(0, madvise(p + 5 * PAGE, PAGE, MADV_POPULATE_READ));
	/* Tracking: a populated read is not a write; a populated write is. */
	EXPECT_EQ(0, madvise(p, PAGE, MADV_POPULATE_READ));
	EXPECT_EQ(0, dirty_bit(self->fd, 0));
	EXPECT_EQ(0, madvise(p, PAGE, MADV_POPULATE_WRITE));
	EXPECT_EQ(1, dirty_bit(self->fd, 0));
	ASSERT_EQ(0, upage_track_start(self->fd, 0, 1));

	check_rules(_metadata, self->fd, p);
	check_tags(_metadata, self->fd, p, SLOTS);
}

/*
 * mmap(MAP_POPULATE) over NONE, READ, trapped and evicted slots, shared
 * and private: the kernel ignores the populate's failures, so mmap
 * succeeds, but no protected page is mapped and no trap is skipped: the
 * next access still faults or traps.
 */
TEST_F(adv, map_populate_skips_no_protection_and_no_trap)
{
	static const int kinds[] = { MAP_SHARED, MAP_PRIVATE };
	volatile unsigned char *q;
	size_t k;

	for (k = 0; k < ARRAY_SIZE(kinds); k++) {
		bool shared = kinds[k] == MAP_SHARED;
		long t0;

		ASSERT_EQ(0, arm_rules(self->fd));
		ASSERT_EQ(0, upage_trap_timeout(self->fd, TRAP_MS));
		t0 = now_ms();
		q = mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE,
			 kinds[k] | MAP_POPULATE, self->fd, 0);
		ASSERT_NE(MAP_FAILED, q) {
			TH_LOG("%s: %s", shared ? "MAP_SHARED" : "MAP_PRIVATE",
			       strerror(errno));
		}
		EXPECT_GT(WAIT_MS, now_ms() - t0);
		EXPECT_EQ(SIGSEGV, probe_read(q + 2 * PAGE));
		EXPECT_EQ(0, access_traps(self->fd, q + 3 * PAGE + 7, 3, false));
		EXPECT_EQ(101, page_tag(q + PAGE));
		EXPECT_EQ(104, page_tag(q + 4 * PAGE));
		if (shared) {
			EXPECT_EQ(SIGSEGV, probe(q + PAGE, true, 1, NULL));
			EXPECT_EQ(0, access_traps(self->fd, q + 5 * PAGE, 5, true));
		}
		munmap((void *)q, 8 * PAGE);
	}
	check_tags(_metadata, self->fd, self->p, SLOTS);
}

/* ------------------------------------------------------------------ */
/* Core dumps                                                         */

/*
 * Become nobody without capabilities, in the device's group, as any local
 * user allowed to use upage (udev/60-upage.rules), and stay dumpable.
 */
static int drop_privileges(void)
{
	gid_t groups[1];
	struct stat st;

	if (geteuid())
		return 0;
	if (stat("/dev/upage", &st))
		return -1;
	groups[0] = st.st_gid;
	if (setgroups(1, groups) || setresgid(65534, 65534, 65534) ||
	    setresuid(65534, 65534, 65534))
		return -1;
	return prctl(PR_SET_DUMPABLE, 1);
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		ret = -errno;
	close(fd);
	return ret;
}

/*
 * The child of core_dump_ends(): a space with every kind of slot, mapped
 * shared and private, that it handles itself (no one else could answer),
 * then abort(). Exits with a code below 64 if the setup failed.
 */
static void core_dump_child(bool unprivileged)
{
	struct rlimit unlimited = { RLIM_INFINITY, RLIM_INFINITY };
	unsigned char *p, *q;
	int fd, i;

	/* The hard limit first: nobody may not raise it. */
	if (setrlimit(RLIMIT_CORE, &unlimited))
		_exit(11);
	if (unprivileged && drop_privileges())
		_exit(10);
	/* Dump file-backed shared and private mappings too. */
	if (write_file("/proc/self/coredump_filter", "0x7f"))
		_exit(12);
	fd = upage_open(O_CLOEXEC);
	if (fd < 0 || upage_resize(fd, 8, NULL))
		_exit(13);
	p = mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	q = mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED || q == MAP_FAILED)
		_exit(14);
	for (i = 0; i < 8; i++)
		fill_tag(p + i * PAGE, 100 + i);
	if (upage_protect(fd, 1, 1, UPAGE_PROT_NONE) ||
	    upage_evict(fd, 3, 2, NULL) ||
	    upage_trap(fd, 2, 2, UPAGE_TRAP_READ) ||
	    upage_trap(fd, 5, 1, UPAGE_TRAP_WRITE) ||
	    upage_protect(fd, 6, 1, UPAGE_PROT_READ) ||
	    upage_track_start(fd, 0, 8))
		_exit(15);
	/* Be the space's handler: nobody else may answer its traps. */
	poll_in(fd, 0);
	signal(SIGABRT, SIG_DFL);
	abort();
}

#define CORE_MS 30000

/*
 * Dump core with a space mapped: it ends (a trapped slot may not hold the
 * dump for ever: the dumping process is the only handler), the process
 * dies of its signal with a core, and the kernel does not crash.
 */
static void core_dump_ends(struct __test_metadata *_metadata, bool unprivileged)
{
	char pattern[256] = "", path[64];
	int status = 0, fd;
	struct stat st;
	bool ended = false;
	ssize_t n;
	long end;
	pid_t pid;

	if (geteuid())
		SKIP(return, "core_pattern needs root");
	fd = open("/proc/sys/kernel/core_pattern", O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, fd);
	n = read(fd, pattern, sizeof(pattern) - 1);
	close(fd);
	ASSERT_LT(0, n);
	pattern[n] = '\0';
	ASSERT_EQ(0, write_file("/proc/sys/kernel/core_pattern",
				"/tmp/upage-adv-core.%p"));
	fflush(NULL);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		core_dump_child(unprivileged);
	end = now_ms() + CORE_MS;
	while (now_ms() < end) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			ended = true;
			break;
		}
		usleep(50 * 1000);
	}
	if (!ended) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	write_file("/proc/sys/kernel/core_pattern", pattern);
	snprintf(path, sizeof(path), "/tmp/upage-adv-core.%d", pid);
	n = stat(path, &st) ? -1 : st.st_size;
	unlink(path);

	ASSERT_TRUE(ended) {
		TH_LOG("the core dump did not end within %d s: a trapped slot held it",
		       CORE_MS / 1000);
	}
	ASSERT_FALSE(WIFEXITED(status)) {
		TH_LOG("setup failed in the child: exit %d", WEXITSTATUS(status));
	}
	EXPECT_EQ(SIGABRT, WTERMSIG(status));
	EXPECT_TRUE(WCOREDUMP(status));
	EXPECT_LT(0, n);
}

FIXTURE(core) {
	int unused;
};

FIXTURE_SETUP(core)
{
	self->unused = 0;
}

FIXTURE_TEARDOWN(core)
{
}

/* ...in a space opened by root, whose traps may hold kernel accesses. */
TEST_F_TIMEOUT(core, dump_with_trapped_none_and_evicted_slots_ends, 90)
{
	core_dump_ends(_metadata, false);
}

/* ...in a space opened without privilege. */
TEST_F_TIMEOUT(core, dump_of_an_unprivileged_space_ends, 90)
{
	core_dump_ends(_metadata, true);
}

/* ------------------------------------------------------------------ */
/* Another process: process_vm_writev, /proc/pid/mem, ptrace          */

/* A child that only waits, with the fixture's mapping. */
static pid_t fork_sleeper(void)
{
	pid_t pid;

	fflush(NULL);
	pid = upage_fork_child();
	if (pid == 0) {
		for (;;)
			pause();
	}
	return pid;
}

static void end_child(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* The ways another process writes @len bytes into @pid's memory. */
enum remote { VM_WRITEV, PROC_MEM, POKEDATA, NR_REMOTE };
static const char *const remote_name[] = { "process_vm_writev",
					   "/proc/pid/mem", "PTRACE_POKEDATA" };

/*
 * Write 8 bytes of @val at @addr in @pid: 0, -errno, or 1 if this way is
 * not open to the caller (ptrace refused).
 */
static int remote_write(enum remote how, pid_t pid, void *addr,
			unsigned char val)
{
	unsigned char buf[8];
	struct iovec local = { .iov_base = buf, .iov_len = 8 };
	struct iovec remote = { .iov_base = addr, .iov_len = 8 };
	char path[32];
	long word;
	int fd, status, ret = 0;

	memset(buf, val, sizeof(buf));
	switch (how) {
	case VM_WRITEV:
		if (process_vm_writev(pid, &local, 1, &remote, 1, 0) == 8)
			return 0;
		return errno == EPERM ? 1 : -errno;
	case PROC_MEM:
		snprintf(path, sizeof(path), "/proc/%d/mem", pid);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			return 1;
		if (pwrite(fd, buf, 8, (uintptr_t)addr) != 8)
			ret = -errno;
		close(fd);
		return ret;
	case POKEDATA:
		if (ptrace(PTRACE_ATTACH, pid, NULL, NULL))
			return 1;
		if (waitpid(pid, &status, 0) != pid)
			return -ECHILD;
		memcpy(&word, buf, sizeof(word));
		if (ptrace(PTRACE_POKEDATA, pid, addr, (void *)word))
			ret = -errno;
		ptrace(PTRACE_DETACH, pid, NULL, NULL);
		return ret;
	default:
		return -EINVAL;
	}
}

/*
 * Another process writing into NONE, READ and trapped slots fails
 * (EFAULT, or EIO where the interface says so), writes nothing and ends:
 * at once, or after the trap timeout in a space whose handler may hold
 * the kernel. Reads of NONE and trapped slots fail the same way.
 */
TEST_F(adv, remote_writes_to_protected_and_trapped_slots_fail)
{
	static const uint64_t slots[] = { 1, 2, 3, 5 };
	unsigned char buf[8];
	struct iovec local = { .iov_base = buf, .iov_len = 8 };
	struct iovec remote = { .iov_len = 8 };
	enum remote how;
	size_t i;
	pid_t pid;

	ASSERT_EQ(0, arm_rules(self->fd));
	ASSERT_EQ(0, upage_trap_timeout(self->fd, TRAP_MS));
	pid = fork_sleeper();
	ASSERT_LE(0, pid);
	for (how = 0; how < NR_REMOTE; how++) {
		for (i = 0; i < ARRAY_SIZE(slots); i++) {
			long t0 = now_ms();
			int ret = remote_write(how, pid, self->p + slots[i] * PAGE + 16,
					       0xee);

			if (ret == 1) {
				TH_LOG("%s: not allowed here, skipped",
				       remote_name[how]);
				break;
			}
			EXPECT_TRUE(ret == -EFAULT || ret == -EIO) {
				TH_LOG("%s into slot %llu: %s", remote_name[how],
				       (unsigned long long)slots[i],
				       ret ? strerror(-ret) : "written");
			}
			EXPECT_GT(WAIT_MS, now_ms() - t0);
		}
	}
	/* Reads: NONE and trapped fail, READ works. */
	remote.iov_base = self->p + 2 * PAGE;
	EXPECT_EQ(-1, process_vm_readv(pid, &local, 1, &remote, 1, 0));
	EXPECT_EQ(EFAULT, errno);
	remote.iov_base = self->p + 3 * PAGE;
	EXPECT_EQ(-1, process_vm_readv(pid, &local, 1, &remote, 1, 0));
	EXPECT_EQ(EFAULT, errno);
	remote.iov_base = self->p + PAGE;
	EXPECT_EQ(8, process_vm_readv(pid, &local, 1, &remote, 1, 0));
	EXPECT_EQ(0, memcmp(buf, (void *)(self->p + PAGE), 8));
	end_child(pid);
	/* The trap is still there for the next access. */
	EXPECT_EQ(0, access_traps(self->fd, self->p + 3 * PAGE, 3, false));
	check_tags(_metadata, self->fd, self->p, SLOTS);
}

/*
 * Into RW slots the same writes land, and tracking reports each one: a
 * write by the kernel on behalf of another process is a write.
 */
TEST_F(adv, remote_writes_to_rw_slots_land_and_are_tracked)
{
	enum remote how;
	pid_t pid;

	ASSERT_EQ(0, upage_track_start(self->fd, 6, NR_REMOTE));
	pid = fork_sleeper();
	ASSERT_LE(0, pid);
	for (how = 0; how < NR_REMOTE; how++) {
		unsigned char *at = self->p + (6 + how) * PAGE + 24;
		int ret = remote_write(how, pid, at, 0x40 + how);

		if (ret == 1) {
			TH_LOG("%s: not allowed here, skipped", remote_name[how]);
			continue;
		}
		EXPECT_EQ(0, ret) {
			TH_LOG("%s: %s", remote_name[how], strerror(-ret));
		}
		EXPECT_EQ(0x40 + how, at[0]);
		EXPECT_EQ(0x40 + how, at[7]);
		EXPECT_EQ(1, dirty_bit(self->fd, 6 + how)) {
			TH_LOG("%s: the write was not tracked", remote_name[how]);
		}
	}
	end_child(pid);
	EXPECT_EQ(0, dirty_bit(self->fd, 6 + NR_REMOTE));
}

/* ------------------------------------------------------------------ */
/* Churn                                                              */

struct churner {
	volatile unsigned char *base;
	size_t pages;
	bool write;
	volatile bool stop;
	unsigned long tries, faults;
	unsigned int seed;
	pthread_t th;
};

/* Touch random pages of the window, surviving the holes in it. */
static void *churner_run(void *arg)
{
	struct churner *c = arg;

	while (!c->stop) {
		size_t i = rand_r(&c->seed) % c->pages;
		volatile unsigned char *a = c->base + i * PAGE + 64;

		c->tries++;
		if (c->write ? probe(a, true, (unsigned char)i, NULL) :
			       probe_read(a))
			c->faults++;
	}
	return NULL;
}

/*
 * Faults in flight while another thread unmaps, maps over (MAP_FIXED),
 * mprotects and edits the same range: every fault ends (mapped or
 * SIGSEGV), and the space's data are where the edits put them.
 */
TEST_F_TIMEOUT(adv, faults_survive_munmap_and_mmap_of_the_same_range, 120)
{
	struct churner c[3] = {
		{ .base = self->p, .pages = 8, .seed = 1 },
		{ .base = self->p, .pages = 8, .seed = 2 },
		{ .base = self->p + 8 * PAGE, .pages = 8, .write = true, .seed = 3 },
	};
	long end = now_ms() + 3000;
	unsigned long rounds = 0;
	bool seen[8] = { 0 };
	size_t i;

	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, pthread_create(&c[i].th, NULL, churner_run, &c[i]));
	while (now_ms() < end) {
		void *q;

		switch (rounds++ % 4) {
		case 0:		/* a gap, then the view back */
			munmap(self->p, self->len);
			q = mmap(self->p, self->len, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_FIXED, self->fd, 0);
			break;
		case 1:		/* replaced in one step */
			q = mmap(self->p, self->len, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_FIXED, self->fd, 0);
			break;
		case 2:
			q = self->p;
			mprotect(self->p, self->len, PROT_READ);
			upage_swap(self->fd, rounds % 8, (rounds + 3) % 8, 1);
			mprotect(self->p, self->len, PROT_READ | PROT_WRITE);
			break;
		default:
			q = self->p;
			upage_evict(self->fd, 0, SLOTS, NULL);
			upage_protect(self->fd, 8, 8, rounds & 4 ?
				      UPAGE_PROT_NONE : UPAGE_PROT_RW);
			break;
		}
		ASSERT_EQ(self->p, q);
	}
	for (i = 0; i < 3; i++) {
		c[i].stop = true;
		pthread_join(c[i].th, NULL);
	}
	TH_LOG("%lu rounds; faults seen %lu/%lu, %lu/%lu, %lu/%lu", rounds,
	       c[0].faults, c[0].tries, c[1].faults, c[1].tries, c[2].faults,
	       c[2].tries);
	EXPECT_LT(0, c[0].tries - c[0].faults);
	/* Slots 0..7 hold their tags, permuted by the swaps. */
	for (i = 0; i < 8; i++) {
		uint64_t tag = page_tag(self->p + i * PAGE);

		ASSERT_TRUE(tag >= 100 && tag < 108 && !seen[tag - 100]) {
			TH_LOG("slot %zu holds %#llx", i, (unsigned long long)tag);
		}
		seen[tag - 100] = true;
	}
}

/*
 * Closing the space's last descriptor while a thread faults through a
 * mapping of it: the mapping keeps the space alive, faults go on to be
 * served (PTEs dropped meanwhile are faulted back), and its data stay.
 */
TEST_F_TIMEOUT(adv, close_while_another_thread_faults_keeps_the_mapping, 120)
{
	const size_t pages = 256;
	struct churner c = { .pages = pages, .write = true, .seed = 9 };
	unsigned char *q;
	int round, fd;

	for (round = 0; round < 8; round++) {
		long end;
		size_t i;

		fd = upage_open(O_CLOEXEC);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, upage_resize(fd, pages, NULL));
		q = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED,
			 fd, 0);
		ASSERT_NE(MAP_FAILED, q);
		c.base = q;
		c.stop = false;
		ASSERT_EQ(0, pthread_create(&c.th, NULL, churner_run, &c));
		usleep(round * 2000);
		ASSERT_EQ(0, close(fd));
		end = now_ms() + 200;
		while (now_ms() < end)
			madvise(q, pages * PAGE, MADV_DONTNEED);
		c.stop = true;
		pthread_join(c.th, NULL);
		/* What the thread wrote last is there, whatever was zapped. */
		for (i = 0; i < pages; i++) {
			unsigned char v = q[i * PAGE + 64];

			ASSERT_TRUE(v == 0 || v == (unsigned char)i);
		}
		ASSERT_EQ(0, munmap(q, pages * PAGE));
	}
}

struct editor {
	int fd;
	volatile bool stop;
	unsigned long ok, busy, other;
	int last_error;
	pthread_t th;
};

/* Swap, evict, protect and track slots 0..7 in a loop; never drop a frame. */
static void *fork_editor_run(void *arg)
{
	struct editor *ed = arg;
	unsigned long i;
	int ret;

	for (i = 0; !ed->stop; i++) {
		switch (i % 5) {
		case 0:
			ret = upage_swap(ed->fd, i % 8,
					 (i % 8 + 1 + (i / 5) % 7) % 8, 1);
			break;
		case 1:
			ret = upage_evict(ed->fd, 0, 8, NULL);
			break;
		case 2:
			ret = upage_protect(ed->fd, 8, 1, i & 8 ? UPAGE_PROT_NONE :
					    UPAGE_PROT_READ);
			break;
		case 3:
			ret = upage_track_start(ed->fd, 0, 8);
			break;
		default:
			ret = upage_swap(ed->fd, 0, 4, 4);
			break;
		}
		if (!ret)
			ed->ok++;
		else if (ret == -EBUSY)
			ed->busy++;
		else {
			ed->other++;
			ed->last_error = ret;
		}
	}
	return NULL;
}

/*
 * fork() while another thread edits the space: the child's shared and
 * private views show whole pages, each a tag of slots 0..7 (a swap moves
 * whole frames), and protection holds in the child.
 */
TEST_F_TIMEOUT(adv, fork_while_edits_run_shows_whole_pages, 120)
{
	struct editor ed = { .fd = self->fd };
	unsigned char *priv;
	int forks, bad = 0;
	size_t i;

	priv = upage_map(self->fd, 0, SLOTS, MAP_PRIVATE);
	ASSERT_NE(NULL, priv);
	fill_tag(priv + 10 * PAGE, 310);	/* a private copy to fork */
	ASSERT_EQ(0, upage_protect(self->fd, 8, 1, UPAGE_PROT_READ));
	ASSERT_EQ(0, pthread_create(&ed.th, NULL, fork_editor_run, &ed));
	for (forks = 0; forks < 24 && !bad; forks++) {
		int status;
		pid_t pid;

		fflush(NULL);
		pid = fork();
		if (pid < 0) {
			bad = -1;
			break;
		}
		if (pid == 0) {
			probe_install();
			for (i = 0; i < 8; i++) {
				if (!words_ok(self->p + i * PAGE, 100, 108))
					_exit(10 + i);
				if (!words_ok(priv + i * PAGE, 100, 108))
					_exit(20 + i);
			}
			if (page_tag(priv + 10 * PAGE) != 310)
				_exit(30);
			/* Slot 8 is READ or NONE: never writable. */
			if (probe(self->p + 8 * PAGE, true, 1, NULL) != SIGSEGV)
				_exit(31);
			_exit(0);
		}
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
		    WEXITSTATUS(status)) {
			TH_LOG("fork %d: child status %#x", forks, status);
			bad = 1;
		}
	}
	ed.stop = true;
	pthread_join(ed.th, NULL);
	EXPECT_EQ(0, bad);
	EXPECT_EQ(0, ed.other) {
		TH_LOG("an edit failed: %s", strerror(-ed.last_error));
	}
	TH_LOG("%d forks; edits %lu applied, %lu EBUSY", forks, ed.ok, ed.busy);
	munmap(priv, SLOTS * PAGE);
}

/* ------------------------------------------------------------------ */
/* ioctl arguments in the space's own slots                           */

enum arg_kind { ARG_NONE, ARG_EVICTED, ARG_TRAPPED };

/* Slots of the arguments, and what they act on. */
#define A_OPS	10
#define A_INFO	11
#define A_BITS	12
#define A_SRC	13
#define A_READ	14
#define A_HOLE	15
#define A_EVENT	9

/* Make slots first..first+n-1 the argument kind @kind. */
static int make_kind(int fd, uint64_t first, uint64_t n, enum arg_kind kind)
{
	switch (kind) {
	case ARG_NONE:
		return upage_protect(fd, first, n, UPAGE_PROT_NONE);
	case ARG_EVICTED:
		return upage_evict(fd, first, n, NULL);
	default:
		return upage_trap(fd, first, n, UPAGE_TRAP_READ);
	}
}

static const char *const kind_name[] = { "NONE", "evicted", "trapped" };

/*
 * Each ioctl buffer and the read(2) buffer in a slot of kind @kind:
 * evicted ones are paged in and the call works; NONE and trapped ones
 * fail with EFAULT (trapped: at once, or by the timeout in a space whose
 * handler may hold the kernel) and change nothing. No call waits for
 * ever: the module takes no lock across its copies.
 */
static void args_in_own_slots(struct __test_metadata *_metadata, int fd,
			      unsigned char *p, enum arg_kind kind)
{
	int want = kind == ARG_EVICTED ? 0 : -EFAULT;
	struct upage_edit_op op = { .op = UPAGE_OP_SWAP, .dst = 0, .src = 1,
				    .n = 1 };
	struct upage_edit edit = { .size = sizeof(edit),
				   .op_size = sizeof(op), .count = 1,
				   .ops = (uintptr_t)(p + A_OPS * PAGE) };
	struct upage_query query = { .size = sizeof(query), .first = 0,
				     .n = 2, .info_size = sizeof(struct upage_slot_info),
				     .info = (uintptr_t)(p + A_INFO * PAGE) };
	struct upage_dirty dirty = { .size = sizeof(dirty),
				     .flags = UPAGE_DIRTY_CLEAR, .first = 0,
				     .n = 2, .bitmap = (uintptr_t)(p + A_BITS * PAGE) };
	struct upage_resolve copy = { .size = sizeof(copy),
				      .action = UPAGE_RESOLVE_COPY,
				      .first = A_HOLE, .n = 1,
				      .src = (uintptr_t)(p + A_SRC * PAGE) };
	struct upage_slot_info *info = (void *)(p + A_INFO * PAGE);
	uint64_t id0 = frame_id(fd, 0), id1 = frame_id(fd, 1);
	struct upage_trap_event ev;
	struct toucher t = { .addr = p + A_EVENT * PAGE };
	long t0 = now_ms();
	ssize_t n;
	int ret;

	memcpy(p + A_OPS * PAGE, &op, sizeof(op));
	ASSERT_EQ(0, upage_discard(fd, A_HOLE, 1));
	ASSERT_EQ(0, upage_track_start(fd, 0, 2));
	((volatile unsigned char *)p)[0] = 1;
	ASSERT_EQ(0, upage_trap_timeout(fd, kind == ARG_TRAPPED ? TRAP_MS : 0));
	ASSERT_EQ(0, make_kind(fd, A_OPS, A_HOLE - A_OPS, kind));

	/* UPAGE_EDIT's ops. */
	ret = _upage_ioctl(fd, UPAGE_EDIT, &edit);
	EXPECT_EQ(want, ret);
	EXPECT_EQ(ret ? id0 : id1, frame_id(fd, 0));
	EXPECT_EQ(ret ? id1 : id0, frame_id(fd, 1));
	/* UPAGE_QUERY's entries. */
	ret = _upage_ioctl(fd, UPAGE_QUERY, &query);
	EXPECT_EQ(want, ret);
	if (!ret)
		EXPECT_EQ(frame_id(fd, 1), info[1].frame_id);
	/* UPAGE_DIRTY's bitmap: a bitmap not written leaves the slot dirty. */
	ret = _upage_ioctl(fd, UPAGE_DIRTY, &dirty);
	EXPECT_EQ(want, ret);
	EXPECT_EQ(ret ? 1 : 0, dirty_bit(fd, 0));
	/* UPAGE_RESOLVE_COPY's source: the hole stays a hole on failure. */
	ret = _upage_ioctl(fd, UPAGE_RESOLVE, &copy);
	EXPECT_EQ(want, ret);
	EXPECT_EQ(ret == 0, frame_id(fd, A_HOLE) != 0);
	if (!ret)
		EXPECT_EQ(100 + A_SRC, page_tag(p + A_HOLE * PAGE));

	/* read(2)'s buffer, with an event queued that must not be lost. */
	if (kind != ARG_TRAPPED) {
		ASSERT_EQ(0, upage_trap(fd, A_EVENT, 1, UPAGE_TRAP_READ));
		ASSERT_EQ(0, pthread_create(&t.th, NULL, toucher_run, &t));
		ASSERT_TRUE(poll_in(fd, WAIT_MS) & POLLIN);
		n = read(fd, p + A_READ * PAGE, sizeof(ev));
		if (n < 0)
			n = -errno;
		EXPECT_EQ(kind == ARG_EVICTED ? (ssize_t)sizeof(ev) : -EFAULT, n);
		if (n < 0) {
			/* The event was not taken. */
			ASSERT_EQ(sizeof(ev), read(fd, &ev, sizeof(ev)));
		} else {
			memcpy(&ev, p + A_READ * PAGE, sizeof(ev));
		}
		EXPECT_EQ(A_EVENT, ev.slot);
		ASSERT_EQ(0, upage_resolve(fd, A_EVENT, 1, UPAGE_RESOLVE_MAP,
					   UPAGE_RESOLVE_LIFT, NULL, NULL));
		ASSERT_EQ(0, join_within(t.th, WAIT_MS));
		EXPECT_EQ(0, t.sig);
	} else {
		/*
		 * A trapped buffer waits on the space's own trap, so no event
		 * may be pending for the read to take (it would be lost with
		 * the timeout). Without one, it fails (EFAULT) or finds none.
		 */
		int fl = fcntl(fd, F_GETFL);

		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
		n = read(fd, p + A_READ * PAGE, sizeof(ev));
		EXPECT_EQ(-1, n);
		EXPECT_TRUE(errno == EFAULT || errno == EAGAIN);
		fcntl(fd, F_SETFL, fl);
	}
	EXPECT_GT(2 * WAIT_MS, now_ms() - t0);

	/* The argument slots themselves are intact. */
	ASSERT_EQ(0, upage_protect(fd, A_OPS, A_HOLE - A_OPS, UPAGE_PROT_RW));
	ASSERT_EQ(0, upage_trap(fd, A_OPS, A_HOLE - A_OPS, 0));
	EXPECT_EQ(0, memcmp(p + A_OPS * PAGE, &op, sizeof(op)));
	EXPECT_EQ(100 + A_SRC, page_tag(p + A_SRC * PAGE));
	if (kind != ARG_EVICTED) {
		EXPECT_EQ(100 + A_INFO, page_tag(p + A_INFO * PAGE));
		EXPECT_EQ(100 + A_BITS, page_tag(p + A_BITS * PAGE));
		EXPECT_EQ(100 + A_READ, page_tag(p + A_READ * PAGE));
	}
	TH_LOG("%s argument slots: %ld ms", kind_name[kind], now_ms() - t0);
}

/* ioctl buffers in NONE slots of the space: EFAULT, nothing changed. */
TEST_F(adv, ioctl_buffers_in_own_none_slots_fail_with_efault)
{
	args_in_own_slots(_metadata, self->fd, self->p, ARG_NONE);
}

/* ioctl buffers in evicted slots of the space are paged in: it works. */
TEST_F(adv, ioctl_buffers_in_own_evicted_slots_are_paged_in)
{
	args_in_own_slots(_metadata, self->fd, self->p, ARG_EVICTED);
}

/* ioctl buffers in trapped slots of the space: EFAULT, no deadlock. */
TEST_F(adv, ioctl_buffers_in_own_trapped_slots_end_without_deadlock)
{
	args_in_own_slots(_metadata, self->fd, self->p, ARG_TRAPPED);
}

/*
 * "A call that fails changes nothing", also when what fails is writing
 * the outputs back: an ioctl whose struct lies in a READ slot (any
 * read-only memory would do) either works or fails with EFAULT having
 * changed nothing.
 */
TEST_F(adv, ioctl_struct_in_a_read_only_slot_fails_whole)
{
	struct upage_resize resize = { .size = sizeof(resize),
				       .pages = SLOTS + 4 };
	struct upage_edit_op op = { .op = UPAGE_OP_SWAP, .dst = 0, .src = 1,
				    .n = 1 };
	struct upage_edit edit = { .size = sizeof(edit), .op_size = sizeof(op),
				   .count = 1, .ops = (uintptr_t)&op };
	struct upage_residency evict = { .size = sizeof(evict),
					 .op = UPAGE_RES_EVICT, .first = 3,
					 .n = 1 };
	struct upage_resolve lift = { .size = sizeof(lift),
				      .flags = UPAGE_RESOLVE_LIFT,
				      .action = UPAGE_RESOLVE_MAP, .first = 4,
				      .n = 1 };
	struct upage_dirty dirty = { .size = sizeof(dirty),
				     .flags = UPAGE_DIRTY_CLEAR, .first = 5,
				     .n = 1 };
	unsigned char *arg = self->p + 12 * PAGE;
	uint64_t id0 = frame_id(self->fd, 0), bm = 0;
	bool done;
	int ret;

	ASSERT_EQ(0, upage_trap(self->fd, 4, 1, UPAGE_TRAP_READ));
	ASSERT_EQ(0, upage_track_start(self->fd, 5, 1));
	((volatile unsigned char *)self->p)[5 * PAGE] = 1;
	dirty.bitmap = (uintptr_t)&bm;

#define IN_READ_ONLY_SLOT(cmd, s)                                           \
	({                                                                  \
		ASSERT_EQ(0, upage_protect(self->fd, 12, 1, UPAGE_PROT_RW)); \
		memcpy(arg, &(s), sizeof(s));                               \
		ASSERT_EQ(0, upage_protect(self->fd, 12, 1, UPAGE_PROT_READ)); \
		_upage_ioctl(self->fd, (cmd), arg);                         \
	})

	ret = IN_READ_ONLY_SLOT(UPAGE_RESIZE, resize);
	EXPECT_TRUE(ret == 0 || ret == -EFAULT);
	EXPECT_EQ(ret ? SLOTS : SLOTS + 4, stats(self->fd).out_pages) {
		TH_LOG("UPAGE_RESIZE returned %d and resized to %llu", ret,
		       (unsigned long long)stats(self->fd).out_pages);
	}
	upage_resize(self->fd, SLOTS, NULL);

	ret = IN_READ_ONLY_SLOT(UPAGE_EDIT, edit);
	EXPECT_TRUE(ret == 0 || ret == -EFAULT);
	EXPECT_EQ(ret == 0, frame_id(self->fd, 0) != id0) {
		TH_LOG("UPAGE_EDIT returned %d and %s the swap", ret,
		       frame_id(self->fd, 0) != id0 ? "applied" : "did not apply");
	}

	ret = IN_READ_ONLY_SLOT(UPAGE_RESIDENCY, evict);
	EXPECT_TRUE(ret == 0 || ret == -EFAULT);
	done = !!(upage_slot(self->fd, 3).state & UPAGE_SLOT_EVICTED);
	EXPECT_EQ(ret == 0, done) {
		TH_LOG("UPAGE_RESIDENCY returned %d and %s slot 3", ret,
		       done ? "evicted" : "did not evict");
	}

	ret = IN_READ_ONLY_SLOT(UPAGE_RESOLVE, lift);
	EXPECT_TRUE(ret == 0 || ret == -EFAULT);
	done = !(upage_slot(self->fd, 4).state & UPAGE_SLOT_TRAP_READ);
	EXPECT_EQ(ret == 0, done) {
		TH_LOG("UPAGE_RESOLVE returned %d and %s the trap", ret,
		       done ? "lifted" : "kept");
	}

	ret = IN_READ_ONLY_SLOT(UPAGE_DIRTY, dirty);
	EXPECT_TRUE(ret == 0 || ret == -EFAULT);
	EXPECT_EQ(ret ? 1 : 0, dirty_bit(self->fd, 5));
#undef IN_READ_ONLY_SLOT
	upage_protect(self->fd, 12, 1, UPAGE_PROT_RW);
	upage_trap(self->fd, 4, 1, 0);
}

struct sig_reader {
	int fd;
	void *buf;
	ssize_t n;
	int err;
	volatile int started, done;
	pthread_t th;
};

static void *sig_reader_run(void *arg)
{
	struct sig_reader *r = arg;

	__atomic_store_n(&r->started, 1, __ATOMIC_SEQ_CST);
	r->n = read(r->fd, r->buf, 16);
	r->err = errno;
	__atomic_store_n(&r->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static void on_usr1(int sig)
{
	(void)sig;
}

/*
 * The trap timeout bounds every wait, also that of a system call whose
 * buffer lies in a trapped slot when a signal comes in the middle: the
 * kernel retries such a fault at once rather than return to user space,
 * and a wait that ends at once on the pending signal must not turn into
 * a loop that never times out.
 */
TEST_F_TIMEOUT(adv, trap_timeout_bounds_a_kernel_wait_with_a_signal_pending, 60)
{
	struct sig_reader r = { .buf = self->p + 6 * PAGE + 8, .n = -2 };
	struct sigaction sa = { .sa_handler = on_usr1 };
	const unsigned int timeout = 2000;
	uint64_t traps, woken;
	bool ended;
	int pfd[2];
	long end;

	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	ASSERT_EQ(0, pipe(pfd));
	ASSERT_EQ(16, write(pfd[1], "0123456789abcdef", 16));
	r.fd = pfd[0];
	ASSERT_EQ(0, upage_trap_timeout(self->fd, timeout));
	ASSERT_EQ(0, upage_trap(self->fd, 6, 1, UPAGE_TRAP_READ));
	ASSERT_EQ(0, pthread_create(&r.th, NULL, sig_reader_run, &r));
	/* The read(2) waits on the trap (privileged) or fails at once. */
	end = now_ms() + WAIT_MS;
	while (!stats(self->fd).out_traps && !r.done && now_ms() < end)
		usleep(1000);
	if (!r.done)
		pthread_kill(r.th, SIGUSR1);
	end = now_ms() + timeout + WAIT_MS;
	while (!__atomic_load_n(&r.done, __ATOMIC_SEQ_CST) && now_ms() < end)
		usleep(10 * 1000);
	traps = stats(self->fd).out_traps;
	ended = __atomic_load_n(&r.done, __ATOMIC_SEQ_CST);
	if (!ended)
		upage_resolve(self->fd, 6, 1, UPAGE_RESOLVE_MAP,
			      UPAGE_RESOLVE_LIFT, NULL, &woken);
	ASSERT_EQ(0, join_within(r.th, WAIT_MS));
	EXPECT_TRUE(ended) {
		TH_LOG("read(2) into the trapped slot still ran %u ms after the timeout",
		       WAIT_MS);
	}
	EXPECT_GT(10, traps) {
		TH_LOG("the interrupted fault queued %llu events: it loops",
		       (unsigned long long)traps);
	}
	/* Ended by the timeout, or answered later: never data out of a trap. */
	EXPECT_TRUE(r.n == -1 ? r.err == EFAULT || r.err == EINTR : r.n == 16) {
		TH_LOG("read: %zd (%s)", r.n, strerror(r.err));
	}
	close(pfd[0]);
	close(pfd[1]);
	signal(SIGUSR1, SIG_DFL);
}

/* ------------------------------------------------------------------ */
/* O_DIRECT against EVICT, DISCARD and MOVE                           */

#define LOOP_BLOCKS 512
/* Pages per read: slots 0..DIO_PAGES-1, each paired with DIO_PAGES + k. */
#define DIO_PAGES 8

FIXTURE(odirect) {
	int fd, backing, loop, dio;
	char path[64], dev[32];
	unsigned char *p;
};

FIXTURE_SETUP(odirect)
{
	unsigned char page[PAGE];
	uint64_t blk;
	int ret;

	self->backing = self->loop = self->dio = -1;
	self->path[0] = 0;
	self->p = NULL;
	upage_open_or_skip(self->fd);
	if (geteuid())
		SKIP(return, "loop devices need root");
	if (access("/dev/loop-control", F_OK))
		SKIP(return, "/dev/loop-control missing");
	snprintf(self->path, sizeof(self->path), "/tmp/upage-adv-XXXXXX");
	self->backing = mkostemp(self->path, O_CLOEXEC);
	ASSERT_LE(0, self->backing);
	for (blk = 0; blk < LOOP_BLOCKS; blk++) {
		fill_tag(page, 1000 + blk);
		ASSERT_EQ(PAGE, pwrite(self->backing, page, PAGE, blk * PAGE));
	}
	ret = upage_loop_attach(self->backing, self->dev, sizeof(self->dev),
			  &self->loop);
	if (ret)
		SKIP(return, "no loop device: %s", strerror(-ret));
	self->dio = open(self->dev, O_RDWR | O_DIRECT | O_CLOEXEC);
	ASSERT_LE(0, self->dio);
	upage_resize_ok(self->fd, 2 * DIO_PAGES);
	self->p = upage_map(self->fd, 0, 2 * DIO_PAGES, MAP_SHARED);
	ASSERT_NE(NULL, self->p);
	for (blk = 0; blk < 2 * DIO_PAGES; blk++)
		fill_tag(self->p + blk * PAGE, 1 + blk);
}

FIXTURE_TEARDOWN(odirect)
{
	if (self->p)
		munmap(self->p, 2 * DIO_PAGES * PAGE);
	if (self->dio >= 0)
		close(self->dio);
	if (self->loop >= 0) {
		ioctl(self->loop, LOOP_CLR_FD);
		close(self->loop);
	}
	if (self->backing >= 0)
		close(self->backing);
	if (self->path[0])
		unlink(self->path);
	if (self->fd >= 0)
		close(self->fd);
}

struct dio_editor {
	int fd;
	bool drops;		/* also MOVE and DISCARD, which drop frames */
	volatile bool stop;
	pthread_mutex_t lock;
	unsigned long ok, busy, other;
	volatile unsigned long dropped;	/* frame-dropping edits applied */
	int last_error;
	pthread_t th;
};

/*
 * Evict, page in and swap the read's slots with their partners (none of
 * which may lose a frame's data); with @drops also move between them and
 * discard the read's slots.
 */
static void *dio_editor_run(void *arg)
{
	struct dio_editor *ed = arg;
	unsigned long i;
	int ret, drop;

	for (i = 0; !ed->stop; i++) {
		drop = 0;
		pthread_mutex_lock(&ed->lock);
		switch (i % (ed->drops ? 6 : 3)) {
		case 0:
			ret = upage_evict(ed->fd, 0, 2 * DIO_PAGES, NULL);
			break;
		case 1:
			ret = upage_swap(ed->fd, 0, DIO_PAGES, DIO_PAGES);
			break;
		case 2:
			ret = upage_prefetch(ed->fd, 0, 2 * DIO_PAGES, NULL);
			break;
		case 3:
			ret = upage_move(ed->fd, DIO_PAGES, 0, DIO_PAGES);
			drop = 1;
			break;
		case 4:
			ret = upage_move(ed->fd, 0, DIO_PAGES, DIO_PAGES);
			drop = 1;
			break;
		default:
			ret = upage_discard(ed->fd, i & 8 ? 0 : DIO_PAGES / 2,
					    DIO_PAGES / 2);
			drop = 1;
			break;
		}
		if (!ret && drop)
			ed->dropped++;
		pthread_mutex_unlock(&ed->lock);
		if (!ret)
			ed->ok++;
		else if (ret == -EBUSY)
			ed->busy++;
		else {
			ed->other++;
			ed->last_error = ret;
		}
		if (i % 4 == 0)
			sched_yield();
	}
	return NULL;
}

#define DIO_ROUNDS 100

/*
 * O_DIRECT reads of DIO_PAGES blocks into slots 0.. while another thread
 * evicts, pages in and swaps them with their partners (and, with @drops,
 * moves and discards): each edit returns 0 or EBUSY, and after every read
 * each block is whole in its slot or the partner, read back through the
 * mapping (which pages it in), unless an edit that drops frames was
 * applied since the read began.
 */
static void dio_race(struct __test_metadata *_metadata, FIXTURE_DATA(odirect) *self,
		     bool drops)
{
	struct dio_editor ed = { .fd = self->fd, .drops = drops,
				 .lock = PTHREAD_MUTEX_INITIALIZER };
	unsigned long lost = 0, excused = 0;
	int round;

	ASSERT_EQ(0, pthread_create(&ed.th, NULL, dio_editor_run, &ed));
	for (round = 0; round < DIO_ROUNDS && !lost; round++) {
		uint64_t first = (round * DIO_PAGES) % LOOP_BLOCKS, a, b, k;
		unsigned long dropped0 = ed.dropped;
		ssize_t n = pread(self->dio, self->p, DIO_PAGES * PAGE,
				  first * PAGE);

		if (n != DIO_PAGES * PAGE) {
			TH_LOG("round %d: pread: %zd %s", round, n, strerror(errno));
			lost++;
			break;
		}
		pthread_mutex_lock(&ed.lock);
		for (k = 0; k < DIO_PAGES; k++) {
			uint64_t want = 1000 + first + k;

			a = page_tag(self->p + k * PAGE);
			b = page_tag(self->p + (DIO_PAGES + k) * PAGE);
			if (a == UINT64_MAX || b == UINT64_MAX) {
				TH_LOG("round %d: slot %llu or its partner is torn (%#llx %#llx)",
				       round, (unsigned long long)k,
				       (unsigned long long)a, (unsigned long long)b);
				lost++;
			} else if (a != want && b != want) {
				if (ed.dropped != dropped0) {
					excused++;
					continue;
				}
				TH_LOG("round %d: block %llu is in neither slot (%#llx %#llx)",
				       round, (unsigned long long)want,
				       (unsigned long long)a, (unsigned long long)b);
				lost++;
			}
		}
		pthread_mutex_unlock(&ed.lock);
	}
	ed.stop = true;
	pthread_join(ed.th, NULL);
	TH_LOG("%d reads; edits %lu applied, %lu EBUSY; %lu blocks dropped by a later edit",
	       round, ed.ok, ed.busy, excused);
	EXPECT_EQ(0, lost);
	EXPECT_EQ(0, ed.other) {
		TH_LOG("an edit failed: %s", strerror(-ed.last_error));
	}
	EXPECT_LT(0, ed.ok);
}

/*
 * An eviction or swap racing O_DIRECT into the slot never loses what the
 * device wrote: the frame held by the read stays (EBUSY) or its data are
 * found after the read, paged back in.
 */
TEST_F_TIMEOUT(odirect, read_racing_evict_and_swap_loses_nothing, 180)
{
	dio_race(_metadata, self, false);
}

/*
 * With MOVE and DISCARD in the mix too: every edit is 0 or EBUSY, no page
 * is torn, and a read's data go missing only after an edit that drops
 * frames.
 */
TEST_F_TIMEOUT(odirect, read_racing_move_and_discard_stays_whole, 180)
{
	dio_race(_metadata, self, true);
}

/* Write @text to the cgroup file @path; 0 or -errno. */
static int cg_write(const char *path, const char *text)
{
	return write_file(path, text);
}

#define SLOW 32

struct slow_read {
	int dio;
	unsigned char *p;
	pthread_mutex_t lock;
	bool done;
	ssize_t n;
};

static void *slow_read_run(void *arg)
{
	struct slow_read *r = arg;
	ssize_t n = pread(r->dio, r->p, SLOW * PAGE, 300 * PAGE);

	pthread_mutex_lock(&r->lock);
	r->n = n;
	r->done = true;
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/*
 * An O_DIRECT read slowed down by blk-throttle holds its pages for
 * seconds: evictions and discards of its slots, tried all along, fail
 * with EBUSY (one may land before the pages are taken, one after they
 * are let go), and the data arrive in the space, paged back in if an
 * eviction came first.
 */
TEST_F_TIMEOUT(odirect, throttled_read_is_neither_evicted_nor_discarded, 120)
{
	struct slow_read r = { .lock = PTHREAD_MUTEX_INITIALIZER };
	unsigned long evicted = 0, discarded = 0, busy = 0, other = 0;
	unsigned long early = 0;
	char cg[64], file[96], text[64];
	struct stat st;
	pthread_t th;
	int k, ret;
	unsigned char *p;

	if (access("/sys/fs/cgroup/cgroup.controllers", F_OK))
		SKIP(return, "no cgroup2 at /sys/fs/cgroup");
	cg_write("/sys/fs/cgroup/cgroup.subtree_control", "+io");
	snprintf(cg, sizeof(cg), "/sys/fs/cgroup/upage-adv-%d", getpid());
	ASSERT_EQ(0, mkdir(cg, 0755));
	ASSERT_EQ(0, fstat(self->dio, &st));
	snprintf(file, sizeof(file), "%s/io.max", cg);
	snprintf(text, sizeof(text), "%u:%u rbps=32768", major(st.st_rdev),
		 minor(st.st_rdev));
	ret = cg_write(file, text);
	if (ret) {
		rmdir(cg);
		SKIP(return, "no blk-throttle (io.max: %s)", strerror(-ret));
	}
	snprintf(file, sizeof(file), "%s/cgroup.procs", cg);
	snprintf(text, sizeof(text), "%d", getpid());
	ASSERT_EQ(0, cg_write(file, text));

	upage_resize_ok(self->fd, SLOW);
	p = upage_map(self->fd, 0, SLOW, MAP_SHARED);
	ASSERT_NE(NULL, p);
	for (k = 0; k < SLOW; k++)
		fill_tag(p + k * PAGE, 1 + k);
	r.dio = self->dio;
	r.p = p;
	ASSERT_EQ(0, pthread_create(&th, NULL, slow_read_run, &r));
	/* 128 KiB at 32 KiB/s: about 4 s in flight. */
	for (k = 0;; k++) {
		usleep(50 * 1000);
		pthread_mutex_lock(&r.lock);
		if (r.done) {
			pthread_mutex_unlock(&r.lock);
			break;
		}
		ret = k % 2 ? upage_discard(self->fd, 0, SLOW) :
			      upage_evict(self->fd, 0, SLOW, NULL);
		pthread_mutex_unlock(&r.lock);
		if (!ret && !busy)
			early++;	/* before the read took the pages */
		else if (!ret)
			k % 2 ? discarded++ : evicted++;
		else if (ret == -EBUSY)
			busy++;
		else
			other++;
	}
	ASSERT_EQ(0, pthread_join(th, NULL));
	cg_write("/sys/fs/cgroup/cgroup.procs", text);
	rmdir(cg);

	ASSERT_EQ(SLOW * PAGE, r.n);
	TH_LOG("during the read: %lu evicted, %lu discarded, %lu EBUSY (%lu before the first)",
	       evicted, discarded, busy, early);
	EXPECT_EQ(0, other);
	EXPECT_LE(evicted + discarded, 2);
	EXPECT_LE(5, busy);
	/* A discard that landed after the read may have dropped data. */
	for (k = 0; k < SLOW && !discarded; k++)
		EXPECT_EQ(1000 + 300 + k, page_tag(p + k * PAGE)) {
			TH_LOG("block %d lost", 300 + k);
		}
	munmap(p, SLOW * PAGE);
}

TEST_HARNESS_MAIN
