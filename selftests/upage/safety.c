// SPDX-License-Identifier: GPL-2.0
/*
 * Attacks any local user can make, one test per class of hole found in
 * the module: memory safety of a batch's logs, a failed batch that leaves
 * a mapping behind, protection, tracking and traps bypassed through the
 * kernel's own paths, kernel-mode accesses parked on a trap, lock
 * inversions with a store, unbounded work in one call, and behaviour a
 * memfd has that a space lacked. Each test tries the attack; a fixed
 * module refuses it or survives it with its state intact.
 */
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>

#include "upage_utils.h"


static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Wait up to @ms for child @pid: its exit status (or 128 + signal), or -1
 * if it is still running, in which case it is killed (and reaped, if it
 * can die).
 */
static int wait_child_within(pid_t pid, long ms)
{
	long end = now_ms() + ms;
	int status;

	while (now_ms() < end) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) :
						   128 + WTERMSIG(status);
		usleep(20 * 1000);
	}
	kill(pid, SIGKILL);
	end = now_ms() + 5000;
	while (now_ms() < end && waitpid(pid, &status, WNOHANG) != pid)
		usleep(20 * 1000);
	return -1;
}

/*
 * ---- A thread that keeps touching an address, surviving SIGSEGV ----
 *
 * The handler is per process, the jump buffer per thread, so one prober
 * thread can run while the main thread makes system calls.
 */
static __thread sigjmp_buf probe_env;
static __thread volatile sig_atomic_t probe_armed;

static void probe_handler(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	(void)uc;
	if (!probe_armed) {
		signal(sig, SIG_DFL);
		return;
	}
	probe_armed = 0;
	siglongjmp(probe_env, 1);
}

/* One access in the calling thread: true if it did not fault. */
static bool probe_once(volatile unsigned char *addr, bool write)
{
	if (sigsetjmp(probe_env, 1))
		return false;
	probe_armed = 1;
	if (write)
		*addr = 0xee;
	else
		(void)*addr;
	probe_armed = 0;
	return true;
}

static void probe_install(void)
{
	struct sigaction sa = { .sa_sigaction = probe_handler,
				.sa_flags = SA_SIGINFO | SA_NODEFER };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
}

struct prober {
	volatile unsigned char *addr;
	bool write;
	volatile bool stop;
	volatile long tries, passed;
	pthread_t th;
};

static void *prober_run(void *arg)
{
	struct prober *pr = arg;

	while (!pr->stop) {
		pr->tries++;
		if (probe_once(pr->addr, pr->write))
			pr->passed++;
		sched_yield();
	}
	return NULL;
}

static int prober_start(struct prober *pr)
{
	probe_install();
	pr->stop = false;
	pr->tries = pr->passed = 0;
	return pthread_create(&pr->th, NULL, prober_run, pr);
}

static void prober_stop(struct prober *pr)
{
	pr->stop = true;
	pthread_join(pr->th, NULL);
}

FIXTURE(safety) {
	int fd;
	unsigned char *p;
	size_t pages;
};

FIXTURE_SETUP(safety)
{
	upage_open_or_skip(self->fd);
	self->pages = 16;
	upage_resize_ok(self->fd, self->pages);
	self->p = upage_map(self->fd, 0, self->pages, MAP_SHARED);
	ASSERT_NE(NULL, self->p);
}

FIXTURE_TEARDOWN(safety)
{
	if (self->p)
		munmap(self->p, self->pages * PAGE);
	if (self->fd >= 0)
		close(self->fd);
}

/*
 * Heap overflow class: one batch may fill the same hole again and again
 * (alias from it, move the new frame away). The batch's logs must hold
 * every frame it makes and locks, however often a slot is reused.
 */
TEST_F(safety, batch_refilling_one_hole_stays_within_its_logs)
{
	struct upage_edit_op ops[2 * 64];
	struct upage_slot_info info[3];
	int i;

	upage_resize_ok(self->fd, 3);
	for (i = 0; i < 64; i++) {
		ops[2 * i] = (struct upage_edit_op){ .op = UPAGE_OP_ALIAS,
						     .dst = 0, .src = 1, .n = 1 };
		ops[2 * i + 1] = (struct upage_edit_op){ .op = UPAGE_OP_MOVE,
							 .dst = 2, .src = 1, .n = 1 };
	}
	upage_edit_ok(self->fd, ops, 2 * 64);
	upage_query_ok(self->fd, 0, 3, info);
	/* The last round's frame is at 0 and 2; 1 is a hole again. */
	EXPECT_NE(0, info[0].frame_id);
	EXPECT_EQ(info[0].frame_id, info[2].frame_id);
	EXPECT_EQ(2, info[0].nr_aliases);
	EXPECT_EQ(0, info[1].frame_id);
	self->p[0] = 0x42;
	EXPECT_EQ(0x42, self->p[2 * PAGE]);
	EXPECT_EQ(0, self->p[PAGE]);
	/* The frames of the other rounds are gone. */
	struct upage_stats st;

	upage_stats_ok(self->fd, &st);
	EXPECT_EQ(2, st.out_frames);	/* slot 1's zero fill above */
}

/* Pin the frame of slot @slot with vmsplice into a pipe, left unread. */
static int pin_by_vmsplice(unsigned char *p, size_t slot, int pfd[2])
{
	struct iovec iov = { .iov_base = p + slot * PAGE, .iov_len = PAGE };

	if (pipe(pfd))
		return -1;
	return vmsplice(pfd[1], &iov, 1, 0) == PAGE ? 0 : -1;
}

/*
 * A batch that widens a slot's protection and then fails (a pinned frame:
 * EBUSY) changed nothing, so no access may ever have succeeded through
 * the wider protection, and none may succeed after the call, while
 * another thread keeps faulting on the slot throughout.
 */
static void widen_then_fail(struct __test_metadata *_metadata, int fd,
			    unsigned char *p, uint32_t from, uint32_t to,
			    bool write)
{
	struct upage_edit_op ops[2] = {
		{ .op = UPAGE_OP_PROTECT, .dst = 0, .n = 1, .prot = to },
		{ .op = UPAGE_OP_MOVE, .dst = 2, .src = 1, .n = 1 },
	};
	struct prober pr = { .addr = p + 8, .write = write };
	int pfd[2], round;

	upage_fill(p, 0, 0x20);
	upage_fill(p, 1, 0x21);
	ASSERT_EQ(0, pin_by_vmsplice(p, 1, pfd));
	upage_protect_ok(fd, 0, 1, from);
	ASSERT_EQ(0, prober_start(&pr));
	for (round = 0; round < 4; round++)
		upage_edit_err(EBUSY, 1, fd, ops, 2);
	prober_stop(&pr);
	EXPECT_LT(0, pr.tries);
	EXPECT_EQ(0, pr.passed);
	EXPECT_EQ(from, upage_slot(fd, 0).prot);
	/* Nothing left mapped behind the rollback's back. */
	upage_access_segv(p + 8, write);
	upage_protect_ok(fd, 0, 1, UPAGE_PROT_RW);
	EXPECT_TRUE(upage_page_is(p, 0, 0x20));
	close(pfd[0]);
	close(pfd[1]);
}

TEST_F(safety, failed_batch_leaves_no_read_mapping_of_a_none_slot)
{
	widen_then_fail(_metadata, self->fd, self->p, UPAGE_PROT_NONE,
			UPAGE_PROT_READ, false);
}

TEST_F(safety, failed_batch_leaves_no_write_mapping_of_a_read_slot)
{
	widen_then_fail(_metadata, self->fd, self->p, UPAGE_PROT_READ,
			UPAGE_PROT_RW, true);
}

/* The dirty bitmap of slot @slot alone: 1, 0, or -errno. */
static int dirty_one(int fd, uint64_t slot, bool clear)
{
	uint64_t bm = 0, nr = 0;
	int ret = upage_dirty(fd, slot, 1, &bm,
			      clear ? UPAGE_DIRTY_CLEAR : 0, &nr);

	return ret ? ret : (int)(bm & 1);
}

/*
 * Protection bypass class: the kernel takes a read-only but dirty PTE of
 * a shared mapping as already notified, so mprotect() down and up again
 * would make it writable without a fault. A re-armed slot must still see
 * the next write.
 */
TEST_F(safety, mprotect_cycle_does_not_hide_a_tracked_write)
{
	self->p[3 * PAGE] = 1;
	ASSERT_EQ(0, upage_track_start(self->fd, 3, 1));
	self->p[3 * PAGE] = 2;
	ASSERT_EQ(1, dirty_one(self->fd, 3, true));
	ASSERT_EQ(0, dirty_one(self->fd, 3, false));
	ASSERT_EQ(0, mprotect(self->p, self->pages * PAGE, PROT_READ));
	ASSERT_EQ(0, mprotect(self->p, self->pages * PAGE,
			      PROT_READ | PROT_WRITE));
	self->p[3 * PAGE] = 3;
	EXPECT_EQ(1, dirty_one(self->fd, 3, false));
}

struct writer {
	volatile unsigned char *addr;
	volatile int done;
};

static void *writer_run(void *arg)
{
	struct writer *w = arg;

	*w->addr = 0x77;
	w->done = 1;
	return NULL;
}

static int poll_in(int fd, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, ms) == 1 ? pfd.revents & POLLIN : 0;
}

/*
 * The same for a write trap: after mprotect() down and up, a write to a
 * slot trapped for writes still waits for the handler.
 */
TEST_F(safety, mprotect_cycle_does_not_bypass_a_write_trap)
{
	struct writer w = { .addr = self->p + 4 * PAGE + 1 };
	struct upage_trap_event ev;
	uint64_t woken;
	pthread_t th;

	self->p[4 * PAGE] = 1;	/* a writable, dirty PTE */
	ASSERT_EQ(0, upage_trap(self->fd, 4, 1, UPAGE_TRAP_WRITE));
	ASSERT_EQ(0, mprotect(self->p, self->pages * PAGE, PROT_READ));
	ASSERT_EQ(0, mprotect(self->p, self->pages * PAGE,
			      PROT_READ | PROT_WRITE));
	ASSERT_EQ(0, pthread_create(&th, NULL, writer_run, &w));
	EXPECT_EQ(POLLIN, poll_in(self->fd, 3000));
	EXPECT_EQ(0, w.done);
	if (poll_in(self->fd, 0)) {
		ASSERT_EQ(sizeof(ev), read(self->fd, &ev, sizeof(ev)));
		EXPECT_EQ(4, ev.slot);
		EXPECT_EQ(UPAGE_TRAP_WRITE, ev.access);
	}
	ASSERT_EQ(0, upage_resolve(self->fd, 4, 1, UPAGE_RESOLVE_MAP,
				   UPAGE_RESOLVE_LIFT, NULL, &woken));
	pthread_join(th, NULL);
	EXPECT_EQ(0x77, self->p[4 * PAGE + 1]);
}

struct adder {
	volatile uint64_t *addr;
	volatile int done;
};

static void *adder_run(void *arg)
{
	struct adder *a = arg;

	__atomic_fetch_add(a->addr, 1, __ATOMIC_SEQ_CST);
	a->done = 1;
	return NULL;
}

/*
 * Livelock class: an atomic read-modify-write on a slot trapped for
 * writes waits for the handler like a store does. Emulated CPUs retry it
 * as a read first, which the trap lets through read-only; .page_mkwrite
 * then sent it back, and the two went round for ever, never queuing an
 * event.
 */
TEST_F(safety, atomic_add_to_a_write_trapped_slot_waits_for_the_handler)
{
	struct adder a = { .addr = (volatile uint64_t *)(self->p + 9 * PAGE) };
	struct upage_trap_event ev;
	uint64_t woken;
	pthread_t th;

	*a.addr = 41;
	ASSERT_EQ(0, upage_trap(self->fd, 9, 1, UPAGE_TRAP_WRITE));
	ASSERT_EQ(0, pthread_create(&th, NULL, adder_run, &a));
	EXPECT_EQ(POLLIN, poll_in(self->fd, 3000));
	EXPECT_EQ(0, a.done);
	if (poll_in(self->fd, 0)) {
		ASSERT_EQ(sizeof(ev), read(self->fd, &ev, sizeof(ev)));
		EXPECT_EQ(9, ev.slot);
		EXPECT_EQ(UPAGE_TRAP_WRITE, ev.access);
	}
	/* One answer lets the whole instruction through, without a lift. */
	ASSERT_EQ(0, upage_resolve(self->fd, 9, 1, UPAGE_RESOLVE_MAP, 0, NULL,
				   &woken));
	usleep(200 * 1000);
	if (!a.done)
		ASSERT_EQ(0, upage_resolve(self->fd, 9, 1, UPAGE_RESOLVE_MAP,
					   UPAGE_RESOLVE_LIFT, NULL, &woken));
	pthread_join(th, NULL);
	EXPECT_EQ(42, *a.addr);
	ASSERT_EQ(0, upage_trap(self->fd, 9, 1, 0));
}

/*
 * The same livelock class for a copy-on-write alias: .page_mkwrite sends
 * the write back to .fault to make the copy, and an emulated CPU retried
 * it as a read, for ever. The atomic add must complete on a copy.
 */
TEST_F(safety, atomic_add_to_a_copy_on_write_alias_makes_the_copy)
{
	volatile uint64_t *src = (volatile uint64_t *)(self->p + 10 * PAGE);
	volatile uint64_t *dst = (volatile uint64_t *)(self->p + 11 * PAGE);
	pid_t pid;

	*src = 41;
	upage_alias_cow_ok(self->fd, 11, 10, 1);
	EXPECT_EQ(41, *dst);	/* mapped read-only now */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		__atomic_fetch_add(dst, 1, __ATOMIC_SEQ_CST);
		_exit(0);
	}
	ASSERT_EQ(0, wait_child_within(pid, 20000));
	/* The child's write went to its own copy in the shared table. */
	EXPECT_EQ(42, *dst);
	EXPECT_EQ(41, *src);
	EXPECT_FALSE(upage_slot(self->fd, 11).state & UPAGE_SLOT_COW);
}

/*
 * A MAP_PRIVATE mapping that sorts before the shared ones (same offset,
 * mapped first) must not hide them from arming: a write through the
 * shared mapping after UPAGE_TRACK is reported.
 */
TEST_F(safety, private_mapping_does_not_hide_shared_ones_from_tracking)
{
	unsigned char *priv, *shared;

	priv = upage_map(self->fd, 0, 4, MAP_PRIVATE);
	ASSERT_NE(NULL, priv);
	shared = upage_map(self->fd, 0, 4, MAP_SHARED);
	ASSERT_NE(NULL, shared);
	(void)priv[PAGE];
	shared[PAGE] = 1;
	ASSERT_EQ(0, upage_track_start(self->fd, 1, 1));
	shared[PAGE] = 2;
	EXPECT_EQ(1, dirty_one(self->fd, 1, true));
	shared[PAGE] = 3;
	EXPECT_EQ(1, dirty_one(self->fd, 1, true));
	munmap(shared, 4 * PAGE);
	munmap(priv, 4 * PAGE);
}

/* The same for a write trap set while such a private mapping exists. */
TEST_F(safety, private_mapping_does_not_hide_shared_ones_from_write_traps)
{
	struct writer w = { 0 };
	unsigned char *priv, *shared;
	uint64_t woken;
	pthread_t th;

	priv = upage_map(self->fd, 0, 4, MAP_PRIVATE);
	ASSERT_NE(NULL, priv);
	shared = upage_map(self->fd, 0, 4, MAP_SHARED);
	ASSERT_NE(NULL, shared);
	shared[2 * PAGE] = 1;
	ASSERT_EQ(0, upage_trap(self->fd, 2, 1, UPAGE_TRAP_WRITE));
	w.addr = shared + 2 * PAGE;
	ASSERT_EQ(0, pthread_create(&th, NULL, writer_run, &w));
	EXPECT_EQ(POLLIN, poll_in(self->fd, 3000));
	EXPECT_EQ(0, w.done);
	ASSERT_EQ(0, upage_resolve(self->fd, 2, 1, UPAGE_RESOLVE_MAP,
				   UPAGE_RESOLVE_LIFT, NULL, &woken));
	pthread_join(th, NULL);
	munmap(shared, 4 * PAGE);
	munmap(priv, 4 * PAGE);
}

/*
 * Become nobody, no capabilities, as any local user allowed to use upage:
 * a member of the device's group (udev/60-upage.rules).
 */
static int drop_privileges(void)
{
	gid_t g = 65534, groups[1];
	struct stat st;

	if (geteuid())
		return 0;	/* the suite runs unprivileged already */
	if (stat("/dev/upage", &st))
		return -1;
	groups[0] = st.st_gid;
	if (setgroups(1, groups) || setresgid(g, g, g) ||
	    setresuid(65534, 65534, 65534))
		return -1;
	return prctl(PR_SET_DUMPABLE, 1);
}

/*
 * Race-widening class: a trapped slot used as the buffer of a system call
 * would hold the kernel inside copy_{to,from}_user until userspace
 * answers. For a space opened without privilege, a kernel-mode access to
 * a trapped slot fails at once (EFAULT), with no event, as
 * UFFD_USER_MODE_ONLY does; a user-mode access still waits.
 */
TEST(kernel_mode_access_to_a_trap_fails_without_privilege)
{
	pid_t pid = fork();

	ASSERT_LE(0, pid);
	if (pid == 0) {
		unsigned char *p;
		int fd, pfd[2];
		ssize_t n;

		if (drop_privileges())
			_exit(10);
		fd = upage_open(O_CLOEXEC);
		if (fd < 0)
			_exit(100 - fd);	/* 100 + errno */
		if (upage_resize(fd, 2, NULL))
			_exit(12);
		p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED,
			 fd, 0);
		if (p == MAP_FAILED)
			_exit(13);
		memset(p, 0x33, 2 * PAGE);
		if (upage_trap(fd, 0, 2, UPAGE_TRAP_READ) || pipe(pfd))
			_exit(14);
		/* write(2) from the trapped page: the kernel reads it. */
		n = write(pfd[1], p, 16);
		if (n != -1 || errno != EFAULT)
			_exit(1);
		/* read(2) into it: the kernel writes it. */
		if (write(pfd[1], "abc", 3) != 3)
			_exit(15);
		n = read(pfd[0], p + PAGE, 3);
		if (n != -1 || errno != EFAULT)
			_exit(2);
		if (poll_in(fd, 0))
			_exit(3);	/* no event was queued */
		_exit(0);
	}
	EXPECT_EQ(0, wait_child_within(pid, 10000));
}

/*
 * Lock inversion class: a pwrite() to the space's own store whose buffer
 * lies in evicted slots or holes of the space holds the store's inode
 * lock while it faults on the space, and an eviction writes the store
 * while it holds the space's locks. Both must make progress.
 */
struct store_writer {
	int store;
	unsigned char *buf;
	size_t len;
	volatile bool stop;
	volatile long rounds;
};

static void *store_writer_run(void *arg)
{
	struct store_writer *sw = arg;

	while (!sw->stop) {
		if (pwrite(sw->store, sw->buf, sw->len, 64 << 20) < 0)
			break;
		sw->rounds++;
	}
	return NULL;
}

TEST_F(safety, store_write_from_own_evicted_slots_does_not_deadlock)
{
	pid_t pid = fork();

	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct store_writer sw = { .buf = self->p, .len = 8 * PAGE };
		long end = now_ms() + 3000;
		uint64_t done;
		pthread_t th;
		size_t i;
		int r;

		sw.store = memfd_create("store", MFD_CLOEXEC);
		if (sw.store < 0 || upage_set_store(self->fd, sw.store, 0, 0))
			_exit(10);
		for (i = 0; i < self->pages; i++)
			upage_fill(self->p, i, 1 + i);
		if (upage_evict(self->fd, 0, self->pages, &done))
			_exit(11);
		if (pthread_create(&th, NULL, store_writer_run, &sw))
			_exit(12);
		for (i = 0; now_ms() < end; i++) {
			/* Dirty a frame, then write it out under the locks. */
			self->p[(i % 8) * PAGE + 1] = (unsigned char)i;
			r = upage_evict(self->fd, 0, self->pages, &done);
			if (r && r != -EBUSY)
				_exit(13);
			/* Holes too: discard, and let the writer refill. */
			if (!(i % 16) && upage_discard(self->fd, 0, 8))
				_exit(14);
		}
		sw.stop = true;
		pthread_join(th, NULL);
		_exit(sw.rounds ? 0 : 15);
	}
	EXPECT_EQ(0, wait_child_within(pid, 30000));
}

/*
 * Unbounded work class: the ops of one batch cover a bounded number of
 * slots (UPAGE_EDIT_MAX_SLOTS), so that no call holds a CPU for long; a
 * batch over the bound is refused at once, with nothing changed.
 */
/* 4M slot edits take minutes on the emulated KASAN kernel. */
TEST_F_TIMEOUT(safety, batch_over_the_slot_bound_is_refused, 280)
{
	uint64_t big = 1 << 20;
	struct upage_edit_op *ops;
	size_t count = 64, i;

	if (upage_resize(self->fd, big, NULL) == -ENOSPC)
		SKIP(return, "max_space_pages below 1M");
	ops = calloc(count, sizeof(*ops));
	ASSERT_NE(NULL, ops);
	for (i = 0; i < count; i++)
		ops[i] = (struct upage_edit_op){ .op = UPAGE_OP_PROTECT,
			.dst = 0, .n = big,
			.prot = i % 2 ? UPAGE_PROT_RW : UPAGE_PROT_READ };
	upage_edit_err(EINVAL, UPAGE_EDIT_MAX_SLOTS / big, self->fd, ops, count);
	EXPECT_EQ(UPAGE_PROT_RW, upage_slot(self->fd, big - 1).prot);
	/* At the bound it works, and yields the CPU as it goes. */
	count = UPAGE_EDIT_MAX_SLOTS / big;
	upage_edit_ok(self->fd, ops, count);
	EXPECT_EQ(count % 2 ? UPAGE_PROT_READ : UPAGE_PROT_RW,
		  upage_slot(self->fd, big - 1).prot);
	free(ops);
}

/*
 * Unbounded work class, the pin check: a batch whose taken frames are all
 * held (vmsplice), taken in decreasing op order, must not drain them one
 * by one for jiffies each while holding the space's locks. It fails with
 * EBUSY naming the first op that took a held frame. (The bound is kept by
 * the guest's hung-task detector: 1024 frames drained one by one kept the
 * task in D state for over 30 s.)
 */
TEST_F(safety, busy_batch_ends_without_draining_frame_by_frame)
{
	const size_t per_pipe = 256, nr_pipes = 4, n = per_pipe * nr_pipes;
	struct upage_edit_op *ops;
	int pfd[4][2];
	size_t i, k;

	upage_resize_ok(self->fd, n);
	munmap(self->p, self->pages * PAGE);
	self->pages = n;
	self->p = upage_map(self->fd, 0, n, MAP_SHARED);
	ASSERT_NE(NULL, self->p);
	for (k = 0; k < nr_pipes; k++) {
		ASSERT_EQ(0, pipe(pfd[k]));
		ASSERT_LE(0, fcntl(pfd[k][1], F_SETPIPE_SZ, (int)(per_pipe * PAGE)));
		for (i = k * per_pipe; i < (k + 1) * per_pipe; i++) {
			struct iovec iov = { .iov_base = self->p + i * PAGE,
					     .iov_len = 16 };

			self->p[i * PAGE] = 1;
			ASSERT_EQ(16, vmsplice(pfd[k][1], &iov, 1, 0));
		}
	}
	ops = calloc(n + 1, sizeof(*ops));
	ASSERT_NE(NULL, ops);
	ops[0] = (struct upage_edit_op){ .op = UPAGE_OP_PROTECT, .dst = 0,
					 .n = n, .prot = UPAGE_PROT_READ };
	for (i = 1; i <= n; i++)
		ops[i] = (struct upage_edit_op){ .op = UPAGE_OP_DISCARD,
						 .dst = n - i, .n = 1 };
	upage_edit_err(EBUSY, 1, self->fd, ops, n + 1);
	EXPECT_EQ(UPAGE_PROT_RW, upage_slot(self->fd, 0).prot);
	EXPECT_NE(0, upage_slot(self->fd, n - 1).frame_id);
	free(ops);
	for (k = 0; k < nr_pipes; k++) {
		close(pfd[k][0]);
		close(pfd[k][1]);
	}
}

struct evictor {
	int fd;
	uint64_t n, done;
	volatile bool finished;
	int ret;
};

static void *evictor_run(void *arg)
{
	struct evictor *e = arg;

	e->ret = upage_evict(e->fd, 0, e->n, &e->done);
	e->finished = true;
	return NULL;
}

/*
 * EBUSY means a pin: a frame that an eviction is writing to a program's
 * store (with no lock held, and a page reference of its own) can still be
 * moved, and the eviction then leaves it where it is now, resident.
 */
TEST_F_TIMEOUT(safety, edit_during_a_store_write_is_not_ebusy, 120)
{
	struct evictor e = { .fd = self->fd, .n = 1024 };
	uint64_t i, moved = 0;
	pthread_t th;
	int r, store;

	/*
	 * A program's store: written with no lock held (the module's own
	 * store is written under the lock, through its page cache).
	 */
	store = memfd_create("upage-store", MFD_CLOEXEC);
	ASSERT_LE(0, store);
	ASSERT_EQ(0, upage_set_store(self->fd, store, 0, 0));
	close(store);
	upage_resize_ok(self->fd, e.n + 1);
	munmap(self->p, self->pages * PAGE);
	self->pages = e.n + 1;
	self->p = upage_map(self->fd, 0, self->pages, MAP_SHARED);
	ASSERT_NE(NULL, self->p);
	for (i = 0; i < e.n; i++)
		self->p[i * PAGE] = (unsigned char)(i | 1);
	ASSERT_EQ(0, pthread_create(&th, NULL, evictor_run, &e));
	for (i = 0; !e.finished; i++) {
		uint64_t k = (i * 7919) % e.n;

		r = upage_move(self->fd, e.n, k, 1);
		ASSERT_EQ(0, r);
		ASSERT_EQ(0, upage_move(self->fd, k, e.n, 1));
		moved++;
	}
	pthread_join(th, NULL);
	EXPECT_EQ(0, e.ret);
	TH_LOG("%llu moves during the eviction", (unsigned long long)moved);
	for (i = 0; i < e.n; i++)
		ASSERT_EQ((unsigned char)(i | 1), self->p[i * PAGE]);
}

/* An argument struct larger than a page is E2BIG at once, as openat2. */
TEST_F(safety, argument_larger_than_a_page_is_e2big)
{
	size_t len = 64 << 20;
	struct upage_stats *st;
	struct upage_edit_op op = { .op = UPAGE_OP_PROTECT, .n = 1,
				    .prot = UPAGE_PROT_READ };
	struct upage_edit e = { .size = sizeof(e), .op_size = 0, .count = 1,
				.ops = (uintptr_t)&op };

	st = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, st);
	/* Zeros all the way: without a bound, the tail check reads 64 MiB. */
	st = mmap(st, PAGE, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	ASSERT_NE(MAP_FAILED, st);
	st->size = len;
	EXPECT_EQ(-E2BIG, _upage_ioctl(self->fd, UPAGE_STATS, st));
	st->size = PAGE;
	EXPECT_EQ(0, _upage_ioctl(self->fd, UPAGE_STATS, st));
	/* Each op of a batch too. */
	e.op_size = PAGE + 8;
	EXPECT_EQ(-E2BIG, _upage_ioctl(self->fd, UPAGE_EDIT, &e));
	EXPECT_EQ(UPAGE_PROT_RW, upage_slot(self->fd, 0).prot);
	munmap(st, len);
}

/*
 * A reclaimed lazy frame keeps UPAGE_SLOT_RECLAIMED until it is written,
 * also when it is lazily freed again meanwhile.
 */
TEST_F(safety, lazy_free_again_keeps_reclaimed)
{
	uint64_t done;
	int drop;

	upage_fill(self->p, 5, 0x55);
	ASSERT_EQ(0, upage_lazy_free(self->fd, 5, 1, &done));
	drop = open("/proc/sys/vm/drop_caches", O_WRONLY);
	if (drop < 0)
		SKIP(return, "no /proc/sys/vm/drop_caches");
	ASSERT_EQ(2, write(drop, "2\n", 2));
	close(drop);
	if (!(upage_slot(self->fd, 5).state & UPAGE_SLOT_RECLAIMED))
		SKIP(return, "the shrinker did not drop the frame");
	EXPECT_EQ(0, self->p[5 * PAGE]);	/* read back: zeros */
	ASSERT_EQ(0, upage_lazy_free(self->fd, 5, 1, &done));
	EXPECT_TRUE(upage_slot(self->fd, 5).state & UPAGE_SLOT_RECLAIMED);
	EXPECT_TRUE(upage_page_is(self->p, 5, 0));
	self->p[5 * PAGE] = 1;
	EXPECT_FALSE(upage_slot(self->fd, 5).state & UPAGE_SLOT_RECLAIMED);
}

/* msync(MS_SYNC) and fsync() on a space succeed, as on a memfd. */
TEST_F(safety, msync_and_fsync_succeed_as_on_a_memfd)
{
	self->p[0] = 1;
	EXPECT_EQ(0, msync(self->p, self->pages * PAGE, MS_SYNC));
	EXPECT_EQ(0, msync(self->p, self->pages * PAGE, MS_ASYNC));
	EXPECT_EQ(0, fsync(self->fd));
	EXPECT_EQ(0, fdatasync(self->fd));
}

/*
 * madvise(MADV_REMOVE) and fallocate(2) need a regular file; a space's
 * mapping is of a character device, so both fail with ENODEV (as
 * documented) and change nothing. UPAGE_OP_DISCARD is the way.
 */
TEST_F(safety, madvise_remove_is_enodev_and_changes_nothing)
{
	upage_fill(self->p, 6, 0x66);
	ASSERT_EQ(-1, madvise(self->p + 6 * PAGE, PAGE, MADV_REMOVE));
	EXPECT_EQ(ENODEV, errno);
	ASSERT_EQ(-1, fallocate(self->fd, FALLOC_FL_PUNCH_HOLE |
				FALLOC_FL_KEEP_SIZE, 6 * PAGE, PAGE));
	EXPECT_EQ(ENODEV, errno);
	EXPECT_TRUE(upage_page_is(self->p, 6, 0x66));
	EXPECT_NE(0, upage_slot(self->fd, 6).frame_id);
}

TEST_HARNESS_MAIN
