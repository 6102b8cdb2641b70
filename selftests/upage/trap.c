// SPDX-License-Identifier: GPL-2.0
/*
 * Traps (UPAGE_TRAP, UPAGE_RESOLVE): an access to a trapped slot, by any
 * thread of any process that maps the space, waits until a handler that
 * read its event from the space's fd answers it. The event tells the slot,
 * the exact address, the kind of access and the thread; the answer (map,
 * copy, zero, SIGBUS) decides what the thread sees. Threads on one slot
 * share one event. No wait outlives its handler or the timeout, and a
 * fault that cannot wait fails at once. Also: a SIGSEGV handler tells a
 * upage protection fault from a stray pointer with UPAGE_QUERY_BY_ADDR.
 *
 * Nothing here may hang: every wait is bounded by WAIT_MS, children are
 * killed in teardown, and accesses that may stay trapped are made by
 * threads or children, never by the thread that answers them.
 */
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>

#include <linux/capability.h>

#include "upage_utils.h"

#define SLOTS 16
#define EV sizeof(struct upage_trap_event)
#define TRAP_BITS (UPAGE_SLOT_TRAP_READ | UPAGE_SLOT_TRAP_WRITE)
/* How long anything that should happen may take before the test fails. */
#define WAIT_MS 5000

FIXTURE(trap) {
	int fd;
	volatile unsigned char *p;
};

/* Children of the test, killed by teardown if a test fails early. */
static pid_t kids[16];
static int nr_kids;

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct upage_stats stats(int fd)
{
	struct upage_stats st;

	memset(&st, 0, sizeof(st));
	upage_stats(fd, &st);
	return st;
}

/*
 * The revents of a poll() for POLLIN that waits up to @ms: 0 if nothing
 * came, -errno on error. Polling makes this process the space's handler.
 */
static int poll_in(int fd, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int ret = poll(&pfd, 1, ms);

	if (ret < 0)
		return -errno;
	return ret ? pfd.revents : 0;
}

/* Wait up to WAIT_MS for an event and read it: 0, -ETIMEDOUT or -errno. */
static int next_event(int fd, struct upage_trap_event *ev)
{
	int ret = poll_in(fd, WAIT_MS);
	ssize_t n;

	memset(ev, 0xee, sizeof(*ev));
	if (ret < 0)
		return ret;
	if (!(ret & POLLIN))
		return -ETIMEDOUT;
	n = read(fd, ev, sizeof(*ev));
	if (n < 0)
		return -errno;
	return n == sizeof(*ev) ? 0 : -EIO;
}

static int set_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	fl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
	return fcntl(fd, F_SETFL, fl) ? -errno : 0;
}

/* Read and drop whatever events are queued (the fd is non-blocking). */
static int drain_events(int fd)
{
	struct upage_trap_event ev[8];
	int n = 0;

	while (read(fd, ev, sizeof(ev)) > 0)
		n++;
	return n;
}

/*
 * Wait up to WAIT_MS until @n events were queued since the space was
 * opened. It does not poll the fd, so the caller does not become the
 * handler.
 */
static int wait_traps(int fd, uint64_t n)
{
	long end = now_ms() + WAIT_MS;

	do {
		if (stats(fd).out_traps >= n)
			return 1;
		usleep(1000);
	} while (now_ms() < end);
	return 0;
}

/* The state of thread @tid of process @pid ('R', 'S', 'D', ...); 0 if gone. */
static char task_state(pid_t pid, pid_t tid)
{
	char path[64], buf[512], *c;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	c = strrchr(buf, ')');
	return c && c[1] == ' ' ? c[2] : 0;
}

/*
 * Wait up to WAIT_MS until thread @tid of process @pid sleeps (S or D) in
 * three looks in a row, as a thread waiting on a trap does.
 */
static int wait_asleep(pid_t pid, pid_t tid)
{
	long end = now_ms() + WAIT_MS;
	int seen = 0;

	do {
		char s = task_state(pid, tid);

		seen = s == 'S' || s == 'D' ? seen + 1 : 0;
		if (seen == 3)
			return 1;
		usleep(2000);
	} while (now_ms() < end);
	return 0;
}

/* A thread that makes one access and tells what it saw. */
struct toucher {
	volatile unsigned char *addr;
	int write;		/* write @val rather than read */
	int delay_ms;		/* sleep this long before the access */
	unsigned char val;	/* the byte written, or the byte read */
	int tid;		/* its tid, set before the access */
	int done;		/* the access completed */
	pthread_t th;
};

static void *toucher_run(void *arg)
{
	struct toucher *t = arg;

	__atomic_store_n(&t->tid, gettid(), __ATOMIC_SEQ_CST);
	if (t->delay_ms)
		usleep(t->delay_ms * 1000);
	if (t->write)
		*t->addr = t->val;
	else
		t->val = *t->addr;
	__atomic_store_n(&t->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* Start @t and wait until it knows its tid: 0 or an error number. */
static int start_toucher(struct toucher *t)
{
	long end = now_ms() + WAIT_MS;
	int ret;

	t->tid = 0;
	t->done = 0;
	ret = pthread_create(&t->th, NULL, toucher_run, t);
	if (ret)
		return ret;
	while (!__atomic_load_n(&t->tid, __ATOMIC_SEQ_CST)) {
		if (now_ms() > end)
			return ETIMEDOUT;
		usleep(500);
	}
	return 0;
}

static int toucher_done(struct toucher *t)
{
	return __atomic_load_n(&t->done, __ATOMIC_SEQ_CST);
}

/* Join @t if it ends within WAIT_MS: 0, or ETIMEDOUT if it still waits. */
static int join_within(struct toucher *t)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_MS / 1000;
	return pthread_timedjoin_np(t->th, NULL, &ts);
}

/*
 * The byte at @addr, read by another thread so that a read that should not
 * wait cannot hang the test: -1 if it still waits after WAIT_MS (its
 * toucher is then left to it).
 */
static int peek(volatile unsigned char *addr)
{
	struct toucher *t = calloc(1, sizeof(*t));
	int val;

	if (!t)
		return -1;
	t->addr = addr;
	if (start_toucher(t) || join_within(t))
		return -1;
	val = t->val;
	free(t);
	return val;
}

/*
 * fork(), remembering the child for teardown; no core dumps in children.
 * Teardown does not run if the test dies of a signal: the child dies with
 * it then (it may pause or wait on a trap that nobody answers).
 */
static pid_t fork_kid(void)
{
	struct rlimit no_core = { 0, 0 };
	pid_t pid;

	fflush(NULL);
	pid = upage_fork_child();
	if (pid == 0)
		setrlimit(RLIMIT_CORE, &no_core);
	else if (pid > 0 && nr_kids < (int)ARRAY_SIZE(kids))
		kids[nr_kids++] = pid;
	return pid;
}

/* What child_result() returns besides an exit code. */
#define KILLED_BY(sig)	(256 + (sig))
#define HUNG		(-1)

/*
 * Wait up to WAIT_MS for child @pid: its exit code, KILLED_BY(signal), or
 * HUNG, and then it is killed.
 */
static int child_result(pid_t pid)
{
	long end = now_ms() + WAIT_MS;
	int i, status, ret = HUNG;

	do {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid) {
			ret = WIFEXITED(status) ? WEXITSTATUS(status) :
			      KILLED_BY(WTERMSIG(status));
			break;
		}
		if (w < 0) {
			ret = -2;
			break;
		}
		usleep(2000);
	} while (now_ms() < end);
	if (ret == HUNG) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	for (i = 0; i < nr_kids; i++)
		if (kids[i] == pid)
			kids[i] = 0;
	return ret;
}

/* Exit codes of a child that caught a signal (fork_toucher()'s @catch). */
#define CAUGHT_AT(sig)		(64 + (sig))	/* si_addr was the address */
#define CAUGHT_ELSEWHERE(sig)	(96 + (sig))

static void *catch_addr;

static void catch_handler(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	_exit(si->si_addr == catch_addr ? CAUGHT_AT(sig) : CAUGHT_ELSEWHERE(sig));
}

/*
 * Fork a child that reads @addr (or writes @val there when @write) and
 * exits 0 once the access completes; for a read, 1 if @val >= 0 and the
 * byte read is not @val. With @catch, a SIGBUS or SIGSEGV ends it with
 * CAUGHT_AT(sig) if si_addr is @addr; otherwise it dies of the signal.
 */
static pid_t fork_toucher(volatile unsigned char *addr, int write, int val,
			  int catch)
{
	pid_t pid = fork_kid();
	unsigned char c;

	if (pid)
		return pid;
	if (catch) {
		struct sigaction sa = {
			.sa_sigaction = catch_handler,
			.sa_flags = SA_SIGINFO,
		};

		catch_addr = (void *)addr;
		sigaction(SIGBUS, &sa, NULL);
		sigaction(SIGSEGV, &sa, NULL);
	}
	if (write) {
		*addr = val;
		_exit(0);
	}
	c = *addr;
	_exit(val < 0 || c == val ? 0 : 1);
}

/* A page of bytes that depend on @seed and on their offset. */
static void make_pattern(unsigned char *page, unsigned int seed)
{
	uint32_t x = seed * 2654435761u + 1;
	size_t i;

	for (i = 0; i < PAGE; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		page[i] = (unsigned char)x;
	}
}

static int page_equals(const volatile unsigned char *p, size_t slot,
		       const unsigned char *want)
{
	return !memcmp((const void *)(p + slot * PAGE), want, PAGE);
}

FIXTURE_SETUP(trap)
{
	self->p = NULL;
	upage_open_or_skip(self->fd);
	upage_require_cmd(self->fd, UPAGE_CMD_RESOLVE);
	upage_resize_ok(self->fd, SLOTS);
	self->p = upage_map(self->fd, 0, SLOTS, MAP_SHARED);
	ASSERT_NE(NULL, self->p);
	/*
	 * Be the space's handler from the start (the last process to poll),
	 * so that a fault made before the test reads its event waits for it.
	 * A test that wants another handler polls in that process.
	 */
	ASSERT_EQ(0, poll_in(self->fd, 0));
}

FIXTURE_TEARDOWN(trap)
{
	int i;

	for (i = 0; i < nr_kids; i++) {
		if (kids[i] > 0) {
			kill(kids[i], SIGKILL);
			waitpid(kids[i], NULL, 0);
		}
	}
	if (self->p)
		munmap((void *)self->p, SLOTS * PAGE);
	if (self->fd >= 0)
		close(self->fd);
}

/*
 * A read of a trapped slot waits; its one event tells the slot, the exact
 * address, the kind of access and the thread; MAP lets it read what the
 * slot holds. The page was mapped before the trap: setting it unmapped it.
 */
TEST_F(trap, read_trap_queues_one_event_and_map_resolves)
{
	struct toucher t = { .addr = self->p + 3 * PAGE + 123 };
	struct upage_trap_event ev;
	struct upage_stats st;
	uint64_t woken = 99;

	upage_fill(self->p, 3, 0x33);
	ASSERT_EQ(0, upage_trap(self->fd, 3, 1, UPAGE_TRAP_READ));
	EXPECT_EQ(UPAGE_SLOT_TRAP_READ, upage_slot(self->fd, 3).state & TRAP_BITS);
	EXPECT_EQ(0, upage_slot(self->fd, 2).state & TRAP_BITS);
	ASSERT_EQ(0, start_toucher(&t));
	ASSERT_EQ(0, next_event(self->fd, &ev));
	EXPECT_EQ(3, ev.slot);
	EXPECT_EQ((uintptr_t)t.addr, ev.address);
	EXPECT_EQ(UPAGE_TRAP_READ, ev.access);
	EXPECT_EQ(t.tid, ev.tid);
	EXPECT_EQ(0, ev.flags);
	EXPECT_EQ(0, ev.__reserved);
	usleep(50000);
	EXPECT_FALSE(toucher_done(&t));
	ASSERT_EQ(0, upage_resolve(self->fd, 3, 1, UPAGE_RESOLVE_MAP,
				   UPAGE_RESOLVE_LIFT, NULL, &woken));
	EXPECT_EQ(1, woken);
	ASSERT_EQ(0, join_within(&t));
	EXPECT_EQ(0x33, t.val);
	ASSERT_EQ(0, upage_slot(self->fd, 3).state & TRAP_BITS);
	st = stats(self->fd);
	EXPECT_EQ(1, st.out_traps);
	EXPECT_EQ(1, st.out_traps_resolved);
	EXPECT_EQ(0, st.out_traps_timed_out);
	/* Lifted: this thread's own access goes through, without an event. */
	EXPECT_TRUE(upage_page_is(self->p, 3, 0x33));
	EXPECT_EQ(0, poll_in(self->fd, 0));
}

/*
 * A write trap lets reads through without an event; a write waits, is
 * reported as a write, and lands once resolved. The page was writable
 * before the trap: setting it write-protected it.
 */
TEST_F(trap, write_trap_lets_reads_through)
{
	struct toucher t = {
		.addr = self->p + 4 * PAGE + 6, .write = 1, .val = 0x99,
	};
	struct upage_trap_event ev;
	uint64_t woken = 99;

	upage_fill(self->p, 4, 0x44);
	ASSERT_EQ(0, upage_trap(self->fd, 4, 1, UPAGE_TRAP_WRITE));
	EXPECT_EQ(UPAGE_SLOT_TRAP_WRITE, upage_slot(self->fd, 4).state & TRAP_BITS);
	ASSERT_EQ(0x44, peek(self->p + 4 * PAGE + 5));
	EXPECT_TRUE(upage_page_is(self->p, 4, 0x44));
	EXPECT_EQ(0, poll_in(self->fd, 0));
	EXPECT_EQ(0, stats(self->fd).out_traps);

	ASSERT_EQ(0, start_toucher(&t));
	ASSERT_EQ(0, next_event(self->fd, &ev));
	EXPECT_EQ(4, ev.slot);
	EXPECT_EQ((uintptr_t)t.addr, ev.address);
	EXPECT_EQ(UPAGE_TRAP_WRITE, ev.access);
	EXPECT_EQ(t.tid, ev.tid);
	/* Not written yet, and still readable meanwhile. */
	EXPECT_EQ(0x44, self->p[4 * PAGE + 6]);
	EXPECT_FALSE(toucher_done(&t));
	ASSERT_EQ(0, upage_resolve(self->fd, 4, 1, UPAGE_RESOLVE_MAP,
				   UPAGE_RESOLVE_LIFT, NULL, &woken));
	EXPECT_EQ(1, woken);
	ASSERT_EQ(0, join_within(&t));
	EXPECT_EQ(0x99, self->p[4 * PAGE + 6]);
	EXPECT_EQ(0x44, self->p[4 * PAGE + 7]);
	EXPECT_EQ(0, upage_slot(self->fd, 4).state & TRAP_BITS);
}

/*
 * A write trap stays after a resolve without LIFT: a write through another
 * mapping, which has only read the page, waits again.
 */
TEST_F(trap, write_trap_catches_the_first_write_of_each_mapping)
{
	struct toucher t1 = { .addr = self->p + 10 * PAGE, .write = 1, .val = 1 };
	struct toucher t2 = { .write = 1, .val = 2 };
	struct upage_trap_event ev;
	volatile unsigned char *q;
	uint64_t woken = 99;

	upage_fill(self->p, 10, 0xa0);
	q = upage_map(self->fd, 10, 1, MAP_SHARED);
	ASSERT_NE(NULL, q);
	ASSERT_EQ(0, upage_trap(self->fd, 10, 1, UPAGE_TRAP_WRITE));
	ASSERT_EQ(0, start_toucher(&t1));
	ASSERT_EQ(0, next_event(self->fd, &ev));
	EXPECT_EQ((uintptr_t)t1.addr, ev.address);
	ASSERT_EQ(0, upage_resolve(self->fd, 10, 1, UPAGE_RESOLVE_MAP, 0, NULL,
				   &woken));
	EXPECT_EQ(1, woken);
	ASSERT_EQ(0, join_within(&t1));
	EXPECT_EQ(UPAGE_SLOT_TRAP_WRITE, upage_slot(self->fd, 10).state & TRAP_BITS);

	/* The other mapping reads freely, then its first write waits. */
	ASSERT_EQ(1, peek(q));
	EXPECT_EQ(0xa0, q[1]);
	t2.addr = q + 2;
	ASSERT_EQ(0, start_toucher(&t2));
	ASSERT_EQ(0, next_event(self->fd, &ev));
	EXPECT_EQ(10, ev.slot);
	EXPECT_EQ((uintptr_t)t2.addr, ev.address);
	EXPECT_EQ(UPAGE_TRAP_WRITE, ev.access);
	EXPECT_EQ(t2.tid, ev.tid);
	EXPECT_EQ(0xa0, self->p[10 * PAGE + 2]);
	ASSERT_EQ(0, upage_resolve(self->fd, 10, 1, UPAGE_RESOLVE_MAP,
				   UPAGE_RESOLVE_LIFT, NULL, &woken));
	EXPECT_EQ(1, woken);
	ASSERT_EQ(0, join_within(&t2));
	EXPECT_EQ(2, self->p[10 * PAGE + 2]);
	EXPECT_EQ(2, stats(self->fd).out_traps);
	munmap((void *)q, PAGE);
}

/* A read trap traps writes too, and the event says it was a write. */
TEST_F(trap, read_trap_traps_writes_as_writes)
{
	struct toucher t = { .addr = self->p + 2 * PAGE + 9, .write = 1, .val = 7 };
	struct upage_trap_event ev;
	uint64_t woken = 99;

	ASSERT_EQ(0, upage_trap(self->fd, 2, 1, UPAGE_TRAP_READ));
	ASSERT_EQ(0, start_toucher(&t));
	ASSERT_EQ(0, next_event(self->fd, &ev));
	EXPECT_EQ(2, ev.slot);
	EXPECT_EQ((uintptr_t)t.addr, ev.address);
	EXPECT_EQ(UPAGE_TRAP_WRITE, ev.access);
	ASSERT_EQ(0, upage_resolve(self->fd, 2, 1, UPAGE_RESOLVE_MAP,
				   UPAGE_RESOLVE_LIFT, NULL, &woken));
	EXPECT_EQ(1, woken);
	ASSERT_EQ(0, join_within(&t));
	EXPECT_EQ(7, self->p[2 * PAGE + 9]);
	EXPECT_EQ(0, self->p[2 * PAGE + 8]);
}

/* A fault on a hole is served by COPY: the thread reads the handler's page. */
TEST_F(trap, copy_fills_a_hole_on_demand)
{
	struct toucher t = { .addr = self->p + 5 * PAGE + 1000 };
	static unsigned char src[PAGE];
	struct upage_trap_event ev;
	struct upage_slot_info si;
	uint64_t woken = 99;

	make_pattern(src, 5);
	EXPECT_EQ(0, upage_slot(self->fd, 5).frame_id);
	ASSERT_EQ(0, upage_trap(self->fd, 5, 1, UPAGE_TRAP_READ));
	ASSERT_EQ(0, start_toucher(&t));
	ASSERT_EQ(0, next_event(self->fd, &ev));
	EXPECT_EQ(5, ev.slot);
	EXPECT_EQ((uintptr_t)t.addr, ev.address);
	ASSERT_EQ(0, upage_resolve(self->fd, 5, 1, UPAGE_RESOLVE_COPY,
				   UPAGE_RESOLVE_LIFT, src, &woken));
	EXPECT_EQ(1, woken);
	ASSERT_EQ(0, join_within(&t));
	EXPECT_EQ(src[1000], t.val);
	si = upage_slot(self->fd, 5);
	EXPECT_NE(0, si.frame_id);
	EXPECT_EQ(0, si.state & TRAP_BITS);
	EXPECT_TRUE(page_equals(self->p, 5, src));
	/* The neighbours are untouched holes. */
	EXPECT_EQ(0, upage_slot(self->fd, 4).frame_id);
	EXPECT_EQ(0, upage_slot(self->fd, 6).frame_id);
}

/* COPY onto a slot that has a frame is EEXIST, and changes nothing. */
TEST_F(trap, copy_on_a_frame_is_eexist)
{
	static unsigned char src[2 * PAGE];
	uint64_t woken = 99;

	make_pattern(src, 1);
	make_pattern(src + PAGE, 2);
	upage_fill(self->p, 2, 0x22);
	ASSERT_EQ(0, upage_trap(self->fd, 1, 2, UPAGE_TRAP_READ));
	EXPECT_EQ(-EEXIST, upage_resolve(self->fd, 2, 1, UPAGE_RESOLVE_COPY,
					 UPAGE_RESOLVE_LIFT, src, &woken));
	/* A hole then a frame: refused as a whole. */
	EXPECT_EQ(-EEXIST, upage_resolve(self->fd, 1, 2, UPAGE_RESOLVE_COPY,
					 UPAGE_RESOLVE_LIFT, src, &woken));
	EXPECT_EQ(0, upage_slot(self->fd, 1).frame_id);
	EXPECT_EQ(UPAGE_SLOT_TRAP_READ, upage_slot(self->fd, 1).state & TRAP_BITS);
	EXPECT_EQ(UPAGE_SLOT_TRAP_READ, upage_slot(self->fd, 2).state & TRAP_BITS);
	ASSERT_EQ(0, upage_trap(self->fd, 1, 2, 0));
	ASSERT_EQ(0, upage_slot(self->fd, 2).state & TRAP_BITS);
	EXPECT_TRUE(upage_page_is(self->p, 2, 0x22));
}

/* A resolve may come before any fault: it answers nobody, and that is fine. */
TEST_F(trap, resolve_before_the_fault_wakes_nobody)
{
	static unsigned char src[PAGE];
	uint64_t woken = 99;

	make_pattern(src, 7);
	ASSERT_EQ(0, upage_trap(self->fd, 7, 1, UPAGE_TRAP_READ));
	ASSERT_EQ(0, upage_resolve(self->fd, 7, 1, UPAGE_RESOLVE_COPY,
				   UPAGE_RESOLVE_LIFT, src, &woken));
	EXPECT_EQ(0, woken);
	ASSERT_EQ(0, upage_slot(self->fd, 7).state & TRAP_BITS);
	EXPECT_TRUE(page_equals(self->p, 7, src));
	/* Without LIFT, the trap stays for the fault to come. */
	woken = 99;
	ASSERT_EQ(0, upage_trap(self->fd, 8, 1, UPAGE_TRAP_WRITE));
	EXPECT_EQ(0, upage_resolve(self->fd, 8, 1, UPAGE_RESOLVE_MAP, 0, NULL,
				   &woken));
	EXPECT_EQ(0, woken);
	EXPECT_EQ(UPAGE_SLOT_TRAP_WRITE, upage_slot(self->fd, 8).state & TRAP_BITS);
	EXPECT_EQ(0, poll_in(self->fd, 0));
	EXPECT_EQ(0, stats(self->fd).out_traps);
}

/* ZERO drops the frame: the waiting thread, and everyone after, reads zeros. */
TEST_F(trap, zero_resolve_reads_zeros)
{
	struct toucher t = { .addr = self->p + 6 * PAGE + 7 };
	struct upage_trap_event ev;
	uint64_t woken = 99;

	upage_fill(self->p, 6, 0x66);
	ASSERT_EQ(0, upage_trap(self->fd, 6, 1, UPAGE_TRAP_READ));
	ASSERT_EQ(0, start_toucher(&t));
	ASSERT_EQ(0, next_event(self->fd, &ev));
	EXPECT_EQ(6, ev.slot);
	ASSERT_EQ(0, upage_resolve(self->fd, 6, 1, UPAGE_RESOLVE_ZERO,
				   UPAGE_RESOLVE_LIFT, NULL, &woken));
	EXPECT_EQ(1, woken);
	ASSERT_EQ(0, join_within(&t));
	EXPECT_EQ(0, t.val);
	ASSERT_EQ(0, upage_slot(self->fd, 6).state & TRAP_BITS);
	EXPECT_TRUE(upage_page_is(self->p, 6, 0));
}

/*
 * SIGBUS answers the waiting thread with SIGBUS at the faulting address; the
 * trap and the slot's data stay.
 */
TEST_F(trap, sigbus_resolve_raises_sigbus_at_the_address)
{
	volatile unsigned char *a = self->p + 7 * PAGE + 77;
	volatile unsigned char *b = self->p + 7 * PAGE + 1234;
	struct upage_trap_event ev;
	uint64_t woken = 99;
	pid_t pid;

	upage_fill(self->p, 7, 0x77);
	ASSERT_EQ(0, upage_trap(self->fd, 7, 1, UPAGE_TRAP_READ));

	/* A child that does not catch it dies of it. */
	pid = fork_toucher(a, 0, -1, 0);
	ASSERT_LT(0, pid);
	ASSERT_EQ(0, next_event(self->fd, &ev));
	EXPECT_EQ(7, ev.slot);
	EXPECT_EQ((uintptr_t)a, ev.address);
	EXPECT_EQ(pid, ev.tid);
	ASSERT_EQ(0, upage_resolve(self->fd, 7, 1, UPAGE_RESOLVE_SIGBUS, 0,
				   NULL, &woken));
	EXPECT_EQ(1, woken);
	EXPECT_EQ(KILLED_BY(SIGBUS), child_result(pid));

	/* One that catches it sees si_addr, for a write too. */
	pid = fork_toucher(b, 1, 5, 1);
	ASSERT_LT(0, pid);
	ASSERT_EQ(0, next_event(self->fd, &ev));
	EXPECT_EQ((uintptr_t)b, ev.address);
	EXPECT_EQ(UPAGE_TRAP_WRITE, ev.access);
	ASSERT_EQ(0, upage_resolve(self->fd, 7, 1, UPAGE_RESOLVE_SIGBUS, 0,
				   NULL, &woken));
	EXPECT_EQ(1, woken);
	EXPECT_EQ(CAUGHT_AT(SIGBUS), child_result(pid));

	EXPECT_EQ(UPAGE_SLOT_TRAP_READ, upage_slot(self->fd, 7).state & TRAP_BITS);
	ASSERT_EQ(0, upage_trap(self->fd, 7, 1, 0));
	ASSERT_EQ(0, upage_slot(self->fd, 7).state & TRAP_BITS);
	EXPECT_TRUE(upage_page_is(self->p, 7, 0x77));
}

/* Four threads faulting on one slot: one event, one resolve wakes all four. */
TEST_F(trap, several_threads_on_one_slot_share_one_event)
{
	struct upage_trap_event ev[4];
	struct toucher t[4];
	struct upage_stats st;
	uint64_t woken = 99;
	int i, j, mine = 0;

	upage_fill(self->p, 8, 0x88);
	ASSERT_EQ(0, upage_trap(self->fd, 8, 1, UPAGE_TRAP_READ));
	memset(t, 0, sizeof(t));
	for (i = 0; i < 4; i++) {
		t[i].addr = self->p + 8 * PAGE + 100 * i;
		ASSERT_EQ(0, start_toucher(&t[i]));
	}
	ASSERT_TRUE(wait_traps(self->fd, 1));
	for (i = 0; i < 4; i++)
		ASSERT_TRUE(wait_asleep(getpid(), t[i].tid));
	EXPECT_EQ(1, stats(self->fd).out_traps);

	ASSERT_EQ(0, set_nonblock(self->fd, 1));
	ASSERT_EQ(EV, read(self->fd, ev, sizeof(ev)));
	EXPECT_EQ(8, ev[0].slot);
	EXPECT_EQ(UPAGE_TRAP_READ, ev[0].access);
	/* The first thread's event: its tid, its address. */
	for (j = 0; j < 4; j++) {
		if (t[j].tid == (int)ev[0].tid) {
			mine++;
			EXPECT_EQ((uintptr_t)t[j].addr, ev[0].address);
		}
	}
	EXPECT_EQ(1, mine);
	EXPECT_EQ(-1, read(self->fd, ev, sizeof(ev)));
	EXPECT_EQ(EAGAIN, errno);

	ASSERT_EQ(0, upage_resolve(self->fd, 8, 1, UPAGE_RESOLVE_MAP,
				   UPAGE_RESOLVE_LIFT, NULL, &woken));
	EXPECT_EQ(4, woken);
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, join_within(&t[i]));
		EXPECT_EQ(0x88, t[i].val);
	}
	st = stats(self->fd);
	EXPECT_EQ(1, st.out_traps);
	EXPECT_EQ(4, st.out_traps_resolved);
}

/*
 * Without LIFT the trap stays: the waiting thread completes its access, and
 * the next fault, here through another mapping, is a new event.
 */
TEST_F(trap, trap_without_lift_traps_again)
{
	struct toucher t1 = { .addr = self->p + 9 * PAGE + 1 };
	struct toucher t2 = { 0 };
	struct upage_trap_event ev;
	volatile unsigned char *q;
	uint64_t woken = 99;

	upage_fill(self->p, 9, 0x99);
	ASSERT_EQ(0, upage_trap(self->fd, 9, 1, UPAGE_TRAP_READ));
	ASSERT_EQ(0, start_toucher(&t1));
	ASSERT_EQ(0, next_event(self->fd, &ev));
	ASSERT_EQ(0, upage_resolve(self->fd, 9, 1, UPAGE_RESOLVE_MAP, 0, NULL,
				   &woken));
	EXPECT_EQ(1, woken);
	ASSERT_EQ(0, join_within(&t1));
	EXPECT_EQ(0x99, t1.val);
	EXPECT_EQ(UPAGE_SLOT_TRAP_READ, upage_slot(self->fd, 9).state & TRAP_BITS);
	EXPECT_EQ(0, poll_in(self->fd, 0));

	q = upage_map(self->fd, 9, 1, MAP_SHARED);
	ASSERT_NE(NULL, q);
	t2.addr = q + 50;
	ASSERT_EQ(0, start_toucher(&t2));
	ASSERT_EQ(0, next_event(self->fd, &ev));
	EXPECT_EQ(9, ev.slot);
	EXPECT_EQ((uintptr_t)t2.addr, ev.address);
	EXPECT_EQ(t2.tid, ev.tid);
	ASSERT_EQ(0, upage_resolve(self->fd, 9, 1, UPAGE_RESOLVE_MAP,
				   UPAGE_RESOLVE_LIFT, NULL, &woken));
	EXPECT_EQ(1, woken);
	ASSERT_EQ(0, join_within(&t2));
	EXPECT_EQ(0x99, t2.val);
	EXPECT_EQ(2, stats(self->fd).out_traps);
	EXPECT_EQ(2, stats(self->fd).out_traps_resolved);
	munmap((void *)q, PAGE);
}

/* Lifting a trap lets its waiting thread go, as a resolve would. */
TEST_F(trap, lift_lets_waiters_go)
{
	struct toucher t = { .addr = self->p + 5 * PAGE + 5 };
	struct toucher w = { .addr = self->p + 5 * PAGE + 6, .write = 1, .val = 3 };
	struct upage_trap_event ev;

	upage_fill(self->p, 5, 0x55);
	ASSERT_EQ(0, upage_trap(self->fd, 5, 1,
				UPAGE_TRAP_READ | UPAGE_TRAP_WRITE));
	EXPECT_EQ(TRAP_BITS, upage_slot(self->fd, 5).state & TRAP_BITS);
	ASSERT_EQ(0, start_toucher(&t));
	ASSERT_EQ(0, next_event(self->fd, &ev));
	EXPECT_EQ(5, ev.slot);
	ASSERT_EQ(0, upage_trap(self->fd, 5, 1, 0));
	ASSERT_EQ(0, join_within(&t));
	EXPECT_EQ(0x55, t.val);
	EXPECT_EQ(0, upage_slot(self->fd, 5).state & TRAP_BITS);
	/* Writes go through too now. */
	ASSERT_EQ(0, start_toucher(&w));
	ASSERT_EQ(0, join_within(&w));
	EXPECT_EQ(3, self->p[5 * PAGE + 6]);
	EXPECT_EQ(0, poll_in(self->fd, 0));
}

/* The event of a slot answered before anyone read it is dropped. */
TEST_F(trap, unread_events_of_answered_slots_are_dropped)
{
	struct toucher t1 = { .addr = self->p + 5 * PAGE };
	struct toucher t2 = { .addr = self->p + 6 * PAGE };
	struct upage_trap_event ev;
	uint64_t woken = 99;

	ASSERT_EQ(0, upage_trap(self->fd, 5, 2, UPAGE_TRAP_READ));
	ASSERT_EQ(0, start_toucher(&t1));
	ASSERT_TRUE(wait_traps(self->fd, 1));
	ASSERT_EQ(0, start_toucher(&t2));
	ASSERT_TRUE(wait_traps(self->fd, 2));
	ASSERT_EQ(0, upage_resolve(self->fd, 5, 1, UPAGE_RESOLVE_MAP,
				   UPAGE_RESOLVE_LIFT, NULL, &woken));
	EXPECT_EQ(1, woken);
	ASSERT_EQ(0, upage_trap(self->fd, 6, 1, 0));
	ASSERT_EQ(0, join_within(&t1));
	ASSERT_EQ(0, join_within(&t2));
	EXPECT_EQ(0, poll_in(self->fd, 0));
	ASSERT_EQ(0, set_nonblock(self->fd, 1));
	EXPECT_EQ(-1, read(self->fd, &ev, sizeof(ev)));
	EXPECT_EQ(EAGAIN, errno);
}

/*
 * Another process faulting through its own mapping: the event has its
 * address and its tid, and this process answers.
 */
TEST_F(trap, another_process_faults_through_its_own_mapping)
{
	struct upage_trap_event ev;
	uint64_t woken = 99;
	uintptr_t addr = 0;
	int pfd[2];
	pid_t pid;

	upage_fill(self->p, 10, 0xaa);
	ASSERT_EQ(0, upage_trap(self->fd, 10, 1, UPAGE_TRAP_READ));
	ASSERT_EQ(0, pipe(pfd));
	pid = fork_kid();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		volatile unsigned char *q = upage_map(self->fd, 10, 1,
						      MAP_SHARED);

		close(pfd[0]);
		if (!q)
			_exit(2);
		addr = (uintptr_t)(q + 10);
		if (write(pfd[1], &addr, sizeof(addr)) != sizeof(addr))
			_exit(3);
		_exit(q[10] == 0xaa ? 0 : 1);
	}
	close(pfd[1]);
	ASSERT_EQ(sizeof(addr), read(pfd[0], &addr, sizeof(addr)));
	close(pfd[0]);
	ASSERT_EQ(0, next_event(self->fd, &ev));
	EXPECT_EQ(10, ev.slot);
	EXPECT_EQ(addr, ev.address);
	EXPECT_EQ(pid, ev.tid);
	EXPECT_EQ(UPAGE_TRAP_READ, ev.access);
	ASSERT_EQ(0, upage_resolve(self->fd, 10, 1, UPAGE_RESOLVE_MAP,
				   UPAGE_RESOLVE_LIFT, NULL, &woken));
	EXPECT_EQ(1, woken);
	EXPECT_EQ(0, child_result(pid));
}

/* The handler may be another process: a child reads the event and answers. */
TEST_F(trap, handler_can_be_another_process)
{
	struct toucher t = { .addr = self->p + 11 * PAGE + 11 };
	static unsigned char src[PAGE];
	struct upage_trap_event ev;
	int pfd[2];
	pid_t pid;

	make_pattern(src, 11);
	ASSERT_EQ(0, upage_trap(self->fd, 11, 1, UPAGE_TRAP_READ));
	ASSERT_EQ(0, pipe(pfd));
	pid = fork_kid();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		uint64_t woken = 0;

		close(pfd[0]);
		if (next_event(self->fd, &ev))
			_exit(1);
		if (write(pfd[1], &ev, sizeof(ev)) != sizeof(ev))
			_exit(2);
		if (upage_resolve(self->fd, 11, 1, UPAGE_RESOLVE_COPY,
				  UPAGE_RESOLVE_LIFT, src, &woken))
			_exit(3);
		_exit(woken == 1 ? 0 : 4);
	}
	close(pfd[1]);
	ASSERT_EQ(0, start_toucher(&t));
	EXPECT_EQ(0, child_result(pid));
	ASSERT_EQ(0, join_within(&t));
	EXPECT_EQ(src[11], t.val);
	ASSERT_EQ(sizeof(ev), read(pfd[0], &ev, sizeof(ev)));
	close(pfd[0]);
	EXPECT_EQ(11, ev.slot);
	EXPECT_EQ((uintptr_t)t.addr, ev.address);
	EXPECT_EQ(t.tid, ev.tid);
	EXPECT_TRUE(page_equals(self->p, 11, src));
}

/* A child touching the mapping it inherited traps; the parent answers. */
TEST_F(trap, trap_across_fork)
{
	volatile unsigned char *a = self->p + 12 * PAGE + 12;
	struct upage_trap_event ev;
	uint64_t woken = 99;
	pid_t pid;

	upage_fill(self->p, 12, 0xc1);
	ASSERT_EQ(0, upage_trap(self->fd, 12, 1, UPAGE_TRAP_READ));
	pid = fork_toucher(a, 0, 0xc1, 0);
	ASSERT_LT(0, pid);
	ASSERT_EQ(0, next_event(self->fd, &ev));
	EXPECT_EQ(12, ev.slot);
	EXPECT_EQ((uintptr_t)a, ev.address);
	EXPECT_EQ(pid, ev.tid);
	ASSERT_EQ(0, upage_resolve(self->fd, 12, 1, UPAGE_RESOLVE_MAP,
				   UPAGE_RESOLVE_LIFT, NULL, &woken));
	EXPECT_EQ(1, woken);
	EXPECT_EQ(0, child_result(pid));

	/* A write through the inherited mapping: the parent sees it land. */
	ASSERT_EQ(0, upage_trap(self->fd, 12, 1, UPAGE_TRAP_WRITE));
	pid = fork_toucher(a + 1, 1, 0x5e, 0);
	ASSERT_LT(0, pid);
	ASSERT_EQ(0, next_event(self->fd, &ev));
	EXPECT_EQ((uintptr_t)(a + 1), ev.address);
	EXPECT_EQ(UPAGE_TRAP_WRITE, ev.access);
	EXPECT_EQ(pid, ev.tid);
	EXPECT_EQ(0xc1, peek(a + 1));
	ASSERT_EQ(0, upage_resolve(self->fd, 12, 1, UPAGE_RESOLVE_MAP,
				   UPAGE_RESOLVE_LIFT, NULL, &woken));
	EXPECT_EQ(1, woken);
	EXPECT_EQ(0, child_result(pid));
	EXPECT_EQ(0x5e, a[1]);
}

/*
 * The handler exits without answering: the waiting process gets SIGBUS,
 * and so does the next trapped fault, at once, until a process polls again.
 */
TEST_F(trap, handler_exit_ends_the_wait_with_sigbus)
{
	volatile unsigned char *a = self->p + 13 * PAGE;
	struct upage_trap_event ev;
	uint64_t woken = 99;
	pid_t f, h;

	ASSERT_EQ(0, upage_trap(self->fd, 13, 1, UPAGE_TRAP_READ));
	f = fork_toucher(a, 0, -1, 0);
	ASSERT_LT(0, f);
	ASSERT_TRUE(wait_traps(self->fd, 1));
	ASSERT_TRUE(wait_asleep(f, f));

	h = fork_kid();
	ASSERT_LE(0, h);
	if (h == 0)
		_exit(next_event(self->fd, &ev) ? 1 : 0);
	EXPECT_EQ(0, child_result(h));
	EXPECT_EQ(KILLED_BY(SIGBUS), child_result(f));
	EXPECT_EQ(1, stats(self->fd).out_traps_timed_out);
	EXPECT_EQ(0, stats(self->fd).out_traps_resolved);

	/* No handler: a trapped fault fails at once. */
	f = fork_toucher(a + 1, 0, -1, 0);
	ASSERT_LT(0, f);
	EXPECT_EQ(KILLED_BY(SIGBUS), child_result(f));

	/* This process polls: it is the handler, and faults wait again. */
	ASSERT_EQ(0, set_nonblock(self->fd, 1));
	poll_in(self->fd, 0);
	drain_events(self->fd);
	f = fork_toucher(a + 2, 0, 0, 0);
	ASSERT_LT(0, f);
	ASSERT_EQ(0, next_event(self->fd, &ev));
	EXPECT_EQ((uintptr_t)(a + 2), ev.address);
	EXPECT_EQ(f, ev.tid);
	ASSERT_EQ(0, upage_resolve(self->fd, 13, 1, UPAGE_RESOLVE_MAP,
				   UPAGE_RESOLVE_LIFT, NULL, &woken));
	EXPECT_EQ(1, woken);
	EXPECT_EQ(0, child_result(f));
}

/*
 * Closing any descriptor of the space ends the handler's watch, even while
 * the handler lives on: the waiting process gets SIGBUS.
 */
TEST_F(trap, handler_closing_a_descriptor_ends_the_wait)
{
	int pfd[2];
	pid_t f, h;
	char c;

	ASSERT_EQ(0, upage_trap(self->fd, 14, 1, UPAGE_TRAP_READ));
	f = fork_toucher(self->p + 14 * PAGE, 0, -1, 0);
	ASSERT_LT(0, f);
	ASSERT_TRUE(wait_traps(self->fd, 1));
	ASSERT_TRUE(wait_asleep(f, f));

	ASSERT_EQ(0, pipe(pfd));
	h = fork_kid();
	ASSERT_LE(0, h);
	if (h == 0) {
		int d = dup(self->fd);

		close(pfd[1]);
		if (d < 0 || !(poll_in(d, WAIT_MS) & POLLIN))
			_exit(1);
		close(d);
		/* Stay alive until the parent is done. */
		_exit(read(pfd[0], &c, 1) == 0 ? 0 : 2);
	}
	close(pfd[0]);
	EXPECT_EQ(KILLED_BY(SIGBUS), child_result(f));
	EXPECT_EQ(0, waitpid(h, NULL, WNOHANG));
	close(pfd[1]);
	EXPECT_EQ(0, child_result(h));
}

/* With a timeout, a wait that is never answered ends in SIGBUS; 0 waits on. */
TEST_F(trap, timeout_ends_the_wait_with_sigbus)
{
	volatile unsigned char *a = self->p + 14 * PAGE + 14;
	struct upage_trap_event ev;
	uint64_t woken = 99;
	struct upage_stats st;
	long start, took;
	pid_t f;

	ASSERT_EQ(0, upage_trap_timeout(self->fd, 200));
	ASSERT_EQ(0, upage_trap(self->fd, 14, 1, UPAGE_TRAP_READ));
	start = now_ms();
	f = fork_toucher(a, 0, -1, 0);
	ASSERT_LT(0, f);
	EXPECT_EQ(KILLED_BY(SIGBUS), child_result(f));
	took = now_ms() - start;
	TH_LOG("the wait ended after %ld ms", took);
	EXPECT_LE(195, took);
	st = stats(self->fd);
	EXPECT_EQ(1, st.out_traps);
	EXPECT_EQ(1, st.out_traps_timed_out);
	EXPECT_EQ(0, st.out_traps_resolved);
	EXPECT_EQ(UPAGE_SLOT_TRAP_READ, upage_slot(self->fd, 14).state & TRAP_BITS);

	/* Timeout 0: the next fault waits until answered. */
	ASSERT_EQ(0, upage_trap_timeout(self->fd, 0));
	ASSERT_EQ(0, set_nonblock(self->fd, 1));
	drain_events(self->fd);
	f = fork_toucher(a, 0, 0, 0);
	ASSERT_LT(0, f);
	ASSERT_EQ(0, next_event(self->fd, &ev));
	EXPECT_EQ(f, ev.tid);
	usleep(500000);
	EXPECT_EQ(0, waitpid(f, NULL, WNOHANG));
	ASSERT_EQ(0, upage_resolve(self->fd, 14, 1, UPAGE_RESOLVE_MAP,
				   UPAGE_RESOLVE_LIFT, NULL, &woken));
	EXPECT_EQ(1, woken);
	EXPECT_EQ(0, child_result(f));
	EXPECT_EQ(1, stats(self->fd).out_traps_timed_out);
}

/*
 * A trap on an evicted slot catches the access before the page-in; MAP
 * then pages the frame in and the thread reads its data.
 */
TEST_F(trap, trap_on_an_evicted_slot_waits_before_the_page_in)
{
	struct toucher t = { .addr = self->p + 5 * PAGE + 5 };
	struct upage_trap_event ev;
	struct upage_stats st;
	uint64_t woken = 99;

	upage_require_cmd(self->fd, UPAGE_CMD_RESIDENCY);
	upage_fill(self->p, 5, 0x55);
	ASSERT_EQ(0, upage_evict(self->fd, 5, 1, NULL));
	ASSERT_EQ(0, upage_trap(self->fd, 5, 1, UPAGE_TRAP_READ));
	ASSERT_EQ(0, start_toucher(&t));
	ASSERT_EQ(0, next_event(self->fd, &ev));
	EXPECT_EQ(5, ev.slot);
	st = stats(self->fd);
	EXPECT_EQ(0, st.out_page_ins);
	EXPECT_EQ(UPAGE_SLOT_EVICTED, upage_slot(self->fd, 5).state &
		  (UPAGE_SLOT_EVICTED | UPAGE_SLOT_RESIDENT));
	ASSERT_EQ(0, upage_resolve(self->fd, 5, 1, UPAGE_RESOLVE_MAP,
				   UPAGE_RESOLVE_LIFT, NULL, &woken));
	EXPECT_EQ(1, woken);
	ASSERT_EQ(0, join_within(&t));
	EXPECT_EQ(0x55, t.val);
	EXPECT_EQ(1, stats(self->fd).out_page_ins);
}

/* Traps belong to slots: a swap moves the frames, not the traps. */
TEST_F(trap, traps_stay_with_their_slots_across_edits)
{
	struct toucher t = { .addr = self->p + 6 * PAGE };
	struct upage_trap_event ev;
	uint64_t woken = 99;

	upage_fill(self->p, 6, 0x66);
	upage_fill(self->p, 7, 0x77);
	ASSERT_EQ(0, upage_trap(self->fd, 6, 1, UPAGE_TRAP_READ));
	upage_swap_ok(self->fd, 6, 7, 1);
	EXPECT_EQ(UPAGE_SLOT_TRAP_READ, upage_slot(self->fd, 6).state & TRAP_BITS);
	EXPECT_EQ(0, upage_slot(self->fd, 7).state & TRAP_BITS);
	/* Slot 7, untrapped, now shows 0x66 at once. */
	EXPECT_EQ(0x66, peek(self->p + 7 * PAGE));
	ASSERT_EQ(0, set_nonblock(self->fd, 1));
	EXPECT_EQ(0, drain_events(self->fd));
	ASSERT_EQ(0, set_nonblock(self->fd, 0));
	/* Slot 6 still traps, and shows 0x77 once answered. */
	ASSERT_EQ(0, start_toucher(&t));
	ASSERT_EQ(0, next_event(self->fd, &ev));
	EXPECT_EQ(6, ev.slot);
	ASSERT_EQ(0, upage_resolve(self->fd, 6, 1, UPAGE_RESOLVE_MAP,
				   UPAGE_RESOLVE_LIFT, NULL, &woken));
	ASSERT_EQ(0, join_within(&t));
	EXPECT_EQ(0x77, t.val);
}

/*
 * A waiter killed before the answer leaves nothing behind: its event is
 * dropped, and a later fault makes a new one.
 */
TEST_F(trap, killed_waiter_leaves_no_event)
{
	volatile unsigned char *a = self->p + 8 * PAGE;
	struct upage_trap_event ev;
	uint64_t woken = 99;
	pid_t f;

	ASSERT_EQ(0, upage_trap(self->fd, 8, 1, UPAGE_TRAP_READ));
	f = fork_toucher(a, 0, -1, 0);
	ASSERT_LT(0, f);
	ASSERT_EQ(1, wait_traps(self->fd, 1));
	ASSERT_EQ(1, wait_asleep(f, f));
	kill(f, SIGKILL);
	EXPECT_EQ(KILLED_BY(SIGKILL), child_result(f));
	ASSERT_EQ(0, set_nonblock(self->fd, 1));
	EXPECT_EQ(0, drain_events(self->fd));
	ASSERT_EQ(0, set_nonblock(self->fd, 0));
	/* Nobody waits: a resolve wakes no one. */
	ASSERT_EQ(0, upage_resolve(self->fd, 8, 1, UPAGE_RESOLVE_MAP, 0, NULL,
				   &woken));
	EXPECT_EQ(0, woken);
	/* The trap is still there: a new fault makes a new event. */
	f = fork_toucher(a, 0, 0, 0);
	ASSERT_LT(0, f);
	ASSERT_EQ(0, next_event(self->fd, &ev));
	EXPECT_EQ(f, ev.tid);
	ASSERT_EQ(0, upage_resolve(self->fd, 8, 1, UPAGE_RESOLVE_MAP,
				   UPAGE_RESOLVE_LIFT, NULL, &woken));
	EXPECT_EQ(1, woken);
	EXPECT_EQ(0, child_result(f));
}

/*
 * A process whose thread waits on a trap exits (another thread calls
 * exit_group): the wait ends, and the space is released cleanly.
 */
TEST_F(trap, exit_of_a_process_with_a_waiting_thread)
{
	volatile unsigned char *a = self->p + 9 * PAGE;
	pid_t f;

	ASSERT_EQ(0, upage_trap(self->fd, 9, 1, UPAGE_TRAP_READ));
	f = fork_kid();
	ASSERT_LE(0, f);
	if (f == 0) {
		struct toucher t = { .addr = a };

		if (start_toucher(&t))
			_exit(1);
		/* The thread is trapped; leave without answering it. */
		usleep(200000);
		_exit(7);
	}
	EXPECT_EQ(7, child_result(f));
	EXPECT_EQ(1, stats(self->fd).out_traps);
	ASSERT_EQ(0, set_nonblock(self->fd, 1));
	EXPECT_EQ(0, drain_events(self->fd));
}

/*
 * A tracked slot with a write trap: the write waits, and once answered it
 * lands and is reported dirty.
 */
TEST_F(trap, trapped_write_to_a_tracked_slot_is_reported)
{
	struct toucher t = { .addr = self->p + 10 * PAGE, .write = 1,
			     .val = 0xab };
	struct upage_trap_event ev;
	uint64_t woken = 99, bits = 0, nr = 0;

	upage_require_cmd(self->fd, UPAGE_CMD_DIRTY);
	upage_fill(self->p, 10, 0x10);
	ASSERT_EQ(0, upage_track_start(self->fd, 0, SLOTS));
	ASSERT_EQ(0, upage_trap(self->fd, 10, 1, UPAGE_TRAP_WRITE));
	ASSERT_EQ(0, start_toucher(&t));
	ASSERT_EQ(0, next_event(self->fd, &ev));
	EXPECT_EQ(UPAGE_TRAP_WRITE, ev.access);
	ASSERT_EQ(0, upage_dirty(self->fd, 0, SLOTS, &bits, 0, &nr));
	EXPECT_EQ(0, nr);
	ASSERT_EQ(0, upage_resolve(self->fd, 10, 1, UPAGE_RESOLVE_MAP, 0,
				   NULL, &woken));
	EXPECT_EQ(1, woken);
	ASSERT_EQ(0, join_within(&t));
	EXPECT_EQ(0xab, peek(self->p + 10 * PAGE));
	ASSERT_EQ(0, upage_dirty(self->fd, 0, SLOTS, &bits,
				 UPAGE_DIRTY_CLEAR, &nr));
	EXPECT_EQ(1, nr);
	EXPECT_EQ(1ULL << 10, bits);
}

/*
 * The space shrinks under a waiting thread: its slot is gone, so it gets
 * SIGBUS, as an access beyond a file's end does, without a resolve.
 */
TEST_F(trap, shrink_under_a_waiting_thread_ends_in_sigbus)
{
	volatile unsigned char *a = self->p + 13 * PAGE + 13;
	struct upage_trap_event ev;
	pid_t f;

	ASSERT_EQ(0, upage_trap(self->fd, 13, 1, UPAGE_TRAP_READ));
	f = fork_toucher(a, 0, -1, 0);
	ASSERT_LT(0, f);
	ASSERT_EQ(0, next_event(self->fd, &ev));
	EXPECT_EQ(13, ev.slot);
	ASSERT_EQ(0, upage_resize(self->fd, 13, NULL));
	EXPECT_EQ(KILLED_BY(SIGBUS), child_result(f));
	/* Nothing is left waiting on the cut slot. */
	ASSERT_EQ(0, set_nonblock(self->fd, 1));
	EXPECT_EQ(0, drain_events(self->fd));
}

/*
 * The page is unmapped under the waiting thread: once answered, its retried
 * access finds no mapping and it dies of SIGSEGV rather than hang.
 */
TEST_F(trap, munmap_under_a_waiting_thread_ends_in_sigsegv)
{
	struct upage_trap_event ev;
	uint64_t woken = 99;
	int pfd[2];
	pid_t pid;
	char c;

	ASSERT_EQ(0, upage_trap(self->fd, 15, 1, UPAGE_TRAP_READ));
	ASSERT_EQ(0, pipe(pfd));
	pid = fork_kid();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		volatile unsigned char *q = upage_map(self->fd, 15, 1,
						      MAP_SHARED);
		struct toucher t = { 0 };

		close(pfd[0]);
		if (!q)
			_exit(1);
		t.addr = q + 15;
		if (start_toucher(&t))
			_exit(2);
		if (!wait_traps(self->fd, 1) || !wait_asleep(getpid(), t.tid))
			_exit(3);
		if (munmap((void *)q, PAGE))
			_exit(4);
		if (write(pfd[1], "u", 1) != 1)
			_exit(5);
		pause();
		_exit(6);
	}
	close(pfd[1]);
	ASSERT_EQ(0, next_event(self->fd, &ev));
	EXPECT_EQ(15, ev.slot);
	/* munmap() does not wait for the trap. */
	EXPECT_EQ(POLLIN, poll_in(pfd[0], WAIT_MS));
	EXPECT_EQ(1, read(pfd[0], &c, 1));
	close(pfd[0]);
	ASSERT_EQ(0, upage_resolve(self->fd, 15, 1, UPAGE_RESOLVE_MAP,
				   UPAGE_RESOLVE_LIFT, NULL, &woken));
	TH_LOG("woken %llu", (unsigned long long)woken);
	EXPECT_EQ(KILLED_BY(SIGSEGV), child_result(pid));
}

/* A buffer smaller than one event is EINVAL, and the event stays queued. */
TEST_F(trap, read_with_short_buffer_is_einval)
{
	struct toucher t = { .addr = self->p + PAGE };
	struct upage_trap_event ev[2];
	uint64_t woken = 99;

	ASSERT_EQ(0, upage_trap(self->fd, 1, 1, UPAGE_TRAP_READ));
	ASSERT_EQ(0, start_toucher(&t));
	ASSERT_EQ(POLLIN, poll_in(self->fd, WAIT_MS));
	EXPECT_EQ(-1, read(self->fd, ev, EV - 1));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, read(self->fd, ev, 1));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(POLLIN, poll_in(self->fd, 0));
	ASSERT_EQ(EV, read(self->fd, ev, EV));
	EXPECT_EQ(1, ev[0].slot);
	EXPECT_EQ(t.tid, ev[0].tid);
	ASSERT_EQ(0, upage_resolve(self->fd, 1, 1, UPAGE_RESOLVE_MAP,
				   UPAGE_RESOLVE_LIFT, NULL, &woken));
	EXPECT_EQ(1, woken);
	ASSERT_EQ(0, join_within(&t));
}

static void on_alarm(int sig)
{
	(void)sig;
}

/* A blocking read() that gives up after WAIT_MS (-1, EINTR). */
static ssize_t read_within(int fd, void *buf, size_t len)
{
	struct sigaction sa = { .sa_handler = on_alarm }, old;
	ssize_t n;
	int err;

	sigaction(SIGALRM, &sa, &old);
	alarm(WAIT_MS / 1000);
	n = read(fd, buf, len);
	err = errno;
	alarm(0);
	sigaction(SIGALRM, &old, NULL);
	errno = err;
	return n;
}

/* With no event, read() fails with EAGAIN under O_NONBLOCK, else blocks. */
TEST_F(trap, read_without_event_blocks_or_is_eagain)
{
	struct toucher t = { .addr = self->p + 2 * PAGE + 2, .delay_ms = 200 };
	struct upage_trap_event ev[2];
	uint64_t woken = 99;
	ssize_t n;

	ASSERT_EQ(0, set_nonblock(self->fd, 1));
	EXPECT_EQ(-1, read(self->fd, ev, sizeof(ev)));
	EXPECT_EQ(EAGAIN, errno);
	ASSERT_EQ(0, set_nonblock(self->fd, 0));

	ASSERT_EQ(0, upage_trap(self->fd, 2, 1, UPAGE_TRAP_READ));
	ASSERT_EQ(0, start_toucher(&t));
	n = read_within(self->fd, ev, sizeof(ev));
	ASSERT_EQ(EV, n) {
		TH_LOG("read: %s", n < 0 ? strerror(errno) : "short");
	}
	EXPECT_EQ(2, ev[0].slot);
	EXPECT_EQ((uintptr_t)t.addr, ev[0].address);
	EXPECT_EQ(t.tid, ev[0].tid);
	ASSERT_EQ(0, upage_resolve(self->fd, 2, 1, UPAGE_RESOLVE_MAP,
				   UPAGE_RESOLVE_LIFT, NULL, &woken));
	EXPECT_EQ(1, woken);
	ASSERT_EQ(0, join_within(&t));
}

/* poll() and epoll report POLLIN exactly while an event is queued. */
TEST_F(trap, poll_reports_pollin_only_while_queued)
{
	struct toucher t1 = { .addr = self->p + 3 * PAGE };
	struct toucher t2 = { .addr = self->p + 4 * PAGE };
	struct epoll_event ee = { .events = EPOLLIN };
	struct upage_trap_event ev;
	uint64_t woken = 99;
	int ep;

	ASSERT_EQ(0, upage_trap(self->fd, 3, 2, UPAGE_TRAP_READ));
	EXPECT_EQ(0, poll_in(self->fd, 0));
	ASSERT_EQ(0, start_toucher(&t1));
	EXPECT_EQ(POLLIN, poll_in(self->fd, WAIT_MS));
	/* Still queued until read. */
	EXPECT_EQ(POLLIN, poll_in(self->fd, 0));
	ASSERT_EQ(EV, read(self->fd, &ev, sizeof(ev)));
	EXPECT_EQ(3, ev.slot);
	/* Read, but not answered yet: nothing to report. */
	EXPECT_EQ(0, poll_in(self->fd, 0));
	EXPECT_FALSE(toucher_done(&t1));

	ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, ep);
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, self->fd, &ee));
	EXPECT_EQ(0, epoll_wait(ep, &ee, 1, 0));
	ASSERT_EQ(0, start_toucher(&t2));
	EXPECT_EQ(1, epoll_wait(ep, &ee, 1, WAIT_MS));
	EXPECT_EQ(EPOLLIN, ee.events & EPOLLIN);
	ASSERT_EQ(EV, read(self->fd, &ev, sizeof(ev)));
	EXPECT_EQ(4, ev.slot);
	EXPECT_EQ(0, epoll_wait(ep, &ee, 1, 0));
	close(ep);

	ASSERT_EQ(0, upage_resolve(self->fd, 3, 2, UPAGE_RESOLVE_MAP,
				   UPAGE_RESOLVE_LIFT, NULL, &woken));
	EXPECT_EQ(2, woken);
	ASSERT_EQ(0, join_within(&t1));
	ASSERT_EQ(0, join_within(&t2));
	EXPECT_EQ(0, poll_in(self->fd, 0));
}

/* One read() returns as many whole events as fit, oldest first. */
TEST_F(trap, read_returns_several_events_in_one_call)
{
	struct upage_trap_event ev[4];
	struct toucher t[3];
	uint64_t woken = 99;
	int i;

	ASSERT_EQ(0, upage_trap(self->fd, 2, 3, UPAGE_TRAP_READ));
	memset(t, 0, sizeof(t));
	for (i = 0; i < 3; i++) {
		t[i].addr = self->p + (2 + i) * PAGE + i;
		ASSERT_EQ(0, start_toucher(&t[i]));
		ASSERT_TRUE(wait_traps(self->fd, i + 1));
	}
	ASSERT_EQ(0, set_nonblock(self->fd, 1));
	/* Room for one and a quarter: one. */
	ASSERT_EQ(EV, read(self->fd, ev, EV + 8));
	EXPECT_EQ(2, ev[0].slot);
	EXPECT_EQ(t[0].tid, ev[0].tid);
	/* Room for four: the two left. */
	ASSERT_EQ(2 * EV, read(self->fd, ev, sizeof(ev)));
	EXPECT_EQ(3, ev[0].slot);
	EXPECT_EQ((uintptr_t)t[1].addr, ev[0].address);
	EXPECT_EQ(t[1].tid, ev[0].tid);
	EXPECT_EQ(4, ev[1].slot);
	EXPECT_EQ((uintptr_t)t[2].addr, ev[1].address);
	EXPECT_EQ(t[2].tid, ev[1].tid);
	EXPECT_EQ(-1, read(self->fd, ev, sizeof(ev)));
	EXPECT_EQ(EAGAIN, errno);
	ASSERT_EQ(0, upage_resolve(self->fd, 2, 3, UPAGE_RESOLVE_MAP,
				   UPAGE_RESOLVE_LIFT, NULL, &woken));
	EXPECT_EQ(3, woken);
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, join_within(&t[i]));
}

struct pipe_writer {
	int fd;
	const volatile unsigned char *buf;
	ssize_t n;
	int tid;
};

static void *pipe_write_run(void *arg)
{
	struct pipe_writer *w = arg;

	__atomic_store_n(&w->tid, gettid(), __ATOMIC_SEQ_CST);
	w->n = write(w->fd, (const void *)w->buf, 16);
	return NULL;
}

/*
 * A system call reading a trapped page (write(2) from it) waits like an
 * access does, and completes once answered, in a space opened with
 * CAP_SYS_PTRACE. Without it (the suite's unprivileged run), the call
 * fails with EFAULT at once and queues no event: an unprivileged handler
 * may not hold the kernel inside copy_from_user.
 */
TEST_F(trap, syscall_reading_a_trapped_page_waits_too)
{
	struct pipe_writer w = { .buf = self->p + 7 * PAGE + 100, .n = -2 };
	struct upage_trap_event ev;
	unsigned char got[16];
	uint64_t woken = 99;
	pthread_t th;
	int pfd[2];

	upage_fill(self->p, 7, 0x70);
	ASSERT_EQ(0, pipe(pfd));
	w.fd = pfd[1];
	ASSERT_EQ(0, upage_trap(self->fd, 7, 1, UPAGE_TRAP_READ));
	if (!upage_has_cap(CAP_SYS_PTRACE)) {
		EXPECT_EQ(-1, write(pfd[1], (const void *)w.buf, 16));
		EXPECT_EQ(EFAULT, errno);
		EXPECT_EQ(0, poll_in(self->fd, 0));
		EXPECT_EQ(0, stats(self->fd).out_traps);
		close(pfd[0]);
		close(pfd[1]);
		return;
	}
	ASSERT_EQ(0, pthread_create(&th, NULL, pipe_write_run, &w));
	ASSERT_EQ(0, next_event(self->fd, &ev));
	EXPECT_EQ(7, ev.slot);
	EXPECT_EQ(UPAGE_TRAP_READ, ev.access);
	EXPECT_LE((uintptr_t)w.buf, ev.address);
	EXPECT_GT((uintptr_t)w.buf + 16, ev.address);
	EXPECT_EQ(w.tid, ev.tid);
	/*
	 * The call has not returned. (A pipe shows POLLIN as soon as it
	 * reserves a buffer, before the copy, so the pipe cannot tell.)
	 */
	usleep(100 * 1000);
	EXPECT_EQ(-2, __atomic_load_n(&w.n, __ATOMIC_SEQ_CST));
	ASSERT_EQ(0, upage_resolve(self->fd, 7, 1, UPAGE_RESOLVE_MAP,
				   UPAGE_RESOLVE_LIFT, NULL, &woken));
	EXPECT_EQ(1, woken);
	ASSERT_EQ(POLLIN, poll_in(pfd[0], WAIT_MS));
	ASSERT_EQ(0, pthread_join(th, NULL));
	EXPECT_EQ(16, w.n);
	ASSERT_EQ(16, read(pfd[0], got, sizeof(got)));
	EXPECT_EQ(0x70, got[0]);
	EXPECT_EQ(0x70, got[15]);
	close(pfd[0]);
	close(pfd[1]);
}

/*
 * Another process reading the trapped page through /proc/pid/mem cannot
 * wait: it fails at once, without an event.
 */
TEST_F(trap, proc_pid_mem_of_a_trapped_page_fails_at_once)
{
	volatile unsigned char *a = self->p + 6 * PAGE + 6;
	pid_t me = getpid(), pid;

	upage_fill(self->p, 6, 0x66);
	ASSERT_EQ(0, upage_trap(self->fd, 6, 1, UPAGE_TRAP_READ));
	pid = fork_kid();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		char path[32], c;
		int m;

		snprintf(path, sizeof(path), "/proc/%d/mem", me);
		m = open(path, O_RDONLY);
		if (m < 0)
			_exit(10);
		if (pread(m, &c, 1, (uintptr_t)a) == 1)
			_exit(1);
		_exit(errno == EIO || errno == EFAULT ? 0 : 2);
	}
	EXPECT_EQ(0, child_result(pid));
	EXPECT_EQ(0, poll_in(self->fd, 0));
	EXPECT_EQ(0, stats(self->fd).out_traps);
	EXPECT_EQ(UPAGE_SLOT_TRAP_READ, upage_slot(self->fd, 6).state & TRAP_BITS);
	ASSERT_EQ(0, upage_trap(self->fd, 6, 1, 0));
	ASSERT_EQ(0, upage_slot(self->fd, 6).state & TRAP_BITS);
	EXPECT_TRUE(upage_page_is(self->p, 6, 0x66));
}

/*
 * A write trap on a private mapping catches a write that is the page's
 * first access there; the write goes to the process's own copy.
 */
TEST_F(trap, private_mapping_traps_a_first_write)
{
	struct toucher t = { .write = 1, .val = 0x5a };
	struct upage_trap_event ev;
	volatile unsigned char *q;
	uint64_t woken = 99;

	upage_fill(self->p, 9, 0x90);
	q = upage_map(self->fd, 9, 1, MAP_PRIVATE);
	ASSERT_NE(NULL, q);
	ASSERT_EQ(0, upage_trap(self->fd, 9, 1, UPAGE_TRAP_WRITE));
	t.addr = q + 9;
	ASSERT_EQ(0, start_toucher(&t));
	ASSERT_EQ(0, next_event(self->fd, &ev));
	EXPECT_EQ(9, ev.slot);
	EXPECT_EQ((uintptr_t)t.addr, ev.address);
	EXPECT_EQ(UPAGE_TRAP_WRITE, ev.access);
	ASSERT_EQ(0, upage_resolve(self->fd, 9, 1, UPAGE_RESOLVE_MAP,
				   UPAGE_RESOLVE_LIFT, NULL, &woken));
	EXPECT_EQ(1, woken);
	ASSERT_EQ(0, join_within(&t));
	EXPECT_EQ(0x5a, q[9]);
	EXPECT_EQ(0x90, q[10]);
	EXPECT_EQ(0x90, self->p[9 * PAGE + 9]);
	munmap((void *)q, PAGE);
}

/* Query shows each slot's traps; a new trap replaces the old one. */
TEST_F(trap, query_shows_the_traps)
{
	struct upage_slot_info si[5];

	ASSERT_EQ(0, upage_trap(self->fd, 0, 2, UPAGE_TRAP_READ));
	ASSERT_EQ(0, upage_trap(self->fd, 2, 1, UPAGE_TRAP_WRITE));
	ASSERT_EQ(0, upage_trap(self->fd, 3, 1, UPAGE_TRAP_ACCESS_ALL));
	upage_query_ok(self->fd, 0, 5, si);
	EXPECT_EQ(UPAGE_SLOT_TRAP_READ, si[0].state & TRAP_BITS);
	EXPECT_EQ(UPAGE_SLOT_TRAP_READ, si[1].state & TRAP_BITS);
	EXPECT_EQ(UPAGE_SLOT_TRAP_WRITE, si[2].state & TRAP_BITS);
	EXPECT_EQ(TRAP_BITS, si[3].state & TRAP_BITS);
	EXPECT_EQ(0, si[4].state & TRAP_BITS);
	ASSERT_EQ(0, upage_trap(self->fd, 2, 1, UPAGE_TRAP_READ));
	EXPECT_EQ(UPAGE_SLOT_TRAP_READ, upage_slot(self->fd, 2).state & TRAP_BITS);
	ASSERT_EQ(0, upage_trap(self->fd, 0, 4, 0));
	upage_query_ok(self->fd, 0, 5, si);
	EXPECT_EQ(0, (si[0].state | si[1].state | si[2].state | si[3].state) &
		     TRAP_BITS);
}

/* COPY and ZERO change the frame of a tracked slot: it is dirty; MAP is not. */
TEST_F(trap, copy_and_zero_resolves_dirty_tracked_slots)
{
	static unsigned char src[PAGE];
	uint64_t w = 0, nr = 0;

	upage_require_cmd(self->fd, UPAGE_CMD_DIRTY);
	make_pattern(src, 1);
	upage_fill(self->p, 2, 2);
	upage_fill(self->p, 3, 3);
	ASSERT_EQ(0, upage_track_start(self->fd, 0, SLOTS));
	ASSERT_EQ(0, upage_trap(self->fd, 1, 3, UPAGE_TRAP_READ));
	ASSERT_EQ(0, upage_resolve(self->fd, 1, 1, UPAGE_RESOLVE_COPY,
				   UPAGE_RESOLVE_LIFT, src, NULL));
	ASSERT_EQ(0, upage_resolve(self->fd, 2, 1, UPAGE_RESOLVE_ZERO,
				   UPAGE_RESOLVE_LIFT, NULL, NULL));
	ASSERT_EQ(0, upage_resolve(self->fd, 3, 1, UPAGE_RESOLVE_MAP,
				   UPAGE_RESOLVE_LIFT, NULL, NULL));
	ASSERT_EQ(0, upage_dirty(self->fd, 0, SLOTS, &w, 0, &nr));
	EXPECT_EQ((1ULL << 1) | (1ULL << 2), w);
	EXPECT_EQ(2, nr);
	EXPECT_TRUE(page_equals(self->p, 1, src));
	EXPECT_TRUE(upage_page_is(self->p, 2, 0));
	EXPECT_TRUE(upage_page_is(self->p, 3, 3));
}

/* Bad ranges, access bits, actions and flags are refused, changing nothing. */
TEST_F(trap, bad_arguments_are_refused)
{
	struct upage_trap tr = {
		.size = sizeof(tr), .flags = 2, .n = 1,
		.access = UPAGE_TRAP_READ,
	};
	struct upage_resolve rs = {
		.size = sizeof(rs), .action = UPAGE_RESOLVE_MAP, .n = 1,
		.__reserved = 1,
	};
	static unsigned char src[PAGE];
	struct upage_slot_info si[SLOTS];
	void *gone;
	int i;

	EXPECT_EQ(-EINVAL, upage_trap(self->fd, 0, 0, UPAGE_TRAP_READ));
	EXPECT_EQ(-EINVAL, upage_trap(self->fd, SLOTS, 1, UPAGE_TRAP_READ));
	EXPECT_EQ(-EINVAL, upage_trap(self->fd, 1, SLOTS, UPAGE_TRAP_READ));
	EXPECT_EQ(-EINVAL, upage_trap(self->fd, UINT64_MAX, 2, UPAGE_TRAP_READ));
	EXPECT_EQ(-EOPNOTSUPP, upage_trap(self->fd, 0, 1,
					  UPAGE_TRAP_ACCESS_ALL + 1));
	EXPECT_EQ(-EOPNOTSUPP, _upage_ioctl(self->fd, UPAGE_TRAP, &tr));
	/* The timeout alone needs no range; without its flag it is refused. */
	EXPECT_EQ(0, upage_trap_timeout(self->fd, 100));
	EXPECT_EQ(0, upage_trap_timeout(self->fd, 0));
	tr.flags = 0;
	tr.timeout_ms = 100;
	EXPECT_EQ(-EINVAL, _upage_ioctl(self->fd, UPAGE_TRAP, &tr));

	EXPECT_EQ(-EOPNOTSUPP, upage_resolve(self->fd, 0, 1, 0, 0, NULL, NULL));
	EXPECT_EQ(-EOPNOTSUPP, upage_resolve(self->fd, 0, 1,
					     UPAGE_RESOLVE_SIGBUS + 1, 0,
					     NULL, NULL));
	EXPECT_EQ(-EOPNOTSUPP, upage_resolve(self->fd, 0, 1, UPAGE_RESOLVE_MAP,
					     UPAGE_RESOLVE_FLAGS_ALL + 1, NULL,
					     NULL));
	EXPECT_EQ(-EOPNOTSUPP, _upage_ioctl(self->fd, UPAGE_RESOLVE, &rs));
	EXPECT_EQ(-EINVAL, upage_resolve(self->fd, 0, 0, UPAGE_RESOLVE_MAP, 0,
					 NULL, NULL));
	EXPECT_EQ(-EINVAL, upage_resolve(self->fd, SLOTS, 1, UPAGE_RESOLVE_MAP,
					 0, NULL, NULL));
	EXPECT_EQ(-EINVAL, upage_resolve(self->fd, 1, SLOTS, UPAGE_RESOLVE_MAP,
					 0, NULL, NULL));
	EXPECT_EQ(-EINVAL, upage_resolve(self->fd, UINT64_MAX, 2,
					 UPAGE_RESOLVE_MAP, 0, NULL, NULL));
	/* A source is for COPY only. */
	EXPECT_EQ(-EINVAL, upage_resolve(self->fd, 0, 1, UPAGE_RESOLVE_MAP, 0,
					 src, NULL));
	EXPECT_EQ(-EINVAL, upage_resolve(self->fd, 0, 1, UPAGE_RESOLVE_ZERO, 0,
					 src, NULL));
	EXPECT_EQ(-EINVAL, upage_resolve(self->fd, 0, 1, UPAGE_RESOLVE_SIGBUS,
					 0, src, NULL));
	/* COPY needs one, and a range that exists before anything is copied. */
	EXPECT_EQ(-EINVAL, upage_resolve(self->fd, 0, 1, UPAGE_RESOLVE_COPY, 0,
					 NULL, NULL));
	EXPECT_EQ(-EINVAL, upage_resolve(self->fd, SLOTS - 1, 2,
					 UPAGE_RESOLVE_COPY, 0, src, NULL));
	EXPECT_EQ(-EINVAL, upage_resolve(self->fd, 0, UINT64_MAX,
					 UPAGE_RESOLVE_MAP, 0, NULL, NULL));
	upage_query_ok(self->fd, 0, SLOTS, si);
	for (i = 0; i < SLOTS; i++)
		EXPECT_EQ(0, si[i].state & TRAP_BITS);

	/* COPY from memory that is not there: EFAULT, and still a hole. */
	gone = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, gone);
	munmap(gone, PAGE);
	ASSERT_EQ(0, upage_trap(self->fd, 0, 1, UPAGE_TRAP_READ));
	EXPECT_EQ(-EFAULT, upage_resolve(self->fd, 0, 1, UPAGE_RESOLVE_COPY,
					 UPAGE_RESOLVE_LIFT, gone, NULL));
	upage_query_ok(self->fd, 0, 1, si);
	EXPECT_EQ(0, si[0].frame_id);
	EXPECT_EQ(UPAGE_SLOT_TRAP_READ, si[0].state & TRAP_BITS);
}

/*
 * A SIGSEGV handler tells a upage protection fault from a stray pointer:
 * UPAGE_QUERY_BY_ADDR of si_addr (an ioctl, async-signal-safe) answers for
 * an address in a mapping of the space, with the slot's protection, and is
 * ENOENT for any other.
 */
static int segv_fd;
static sigjmp_buf segv_env;
static struct {
	void *addr;
	int code;
	int ret;
	uint64_t slot;
	uint32_t prot;
} segv_seen;

static void segv_query(int sig, siginfo_t *si, void *uc)
{
	struct upage_slot_info info;
	int err = errno;

	(void)sig;
	(void)uc;
	segv_seen.addr = si->si_addr;
	segv_seen.code = si->si_code;
	segv_seen.ret = upage_query_addr(segv_fd, si->si_addr, &segv_seen.slot,
					 &info);
	segv_seen.prot = segv_seen.ret ? 0xff : info.prot;
	errno = err;
	siglongjmp(segv_env, 1);
}

/* Access @addr with segv_query() handling SIGSEGV: 1 if it ran. */
static int segv_access(volatile unsigned char *addr, int write)
{
	struct sigaction sa = {
		.sa_sigaction = segv_query, .sa_flags = SA_SIGINFO,
	}, old;
	volatile int faulted = 0;

	memset(&segv_seen, 0, sizeof(segv_seen));
	segv_seen.ret = 1;
	sigaction(SIGSEGV, &sa, &old);
	if (sigsetjmp(segv_env, 1) == 0) {
		if (write)
			*addr = 1;
		else
			(void)*addr;
	} else {
		faulted = 1;
	}
	sigaction(SIGSEGV, &old, NULL);
	return faulted;
}

TEST_F(trap, segv_handler_tells_upage_fault_from_stray_pointer)
{
	volatile unsigned char *a = self->p + 3 * PAGE + 10;
	volatile unsigned char *b = self->p + 4 * PAGE + 20;
	struct upage_api api;
	unsigned char *gone, *none;

	ASSERT_EQ(0, upage_api(self->fd, &api));
	if (!(api.out_features & UPAGE_FEATURE_QUERY_BY_ADDR) ||
	    !(api.out_features & UPAGE_FEATURE_PROTECT))
		SKIP(return, "no UPAGE_QUERY_BY_ADDR or UPAGE_OP_PROTECT");
	upage_fill(self->p, 3, 3);
	upage_fill(self->p, 4, 4);
	upage_protect_ok(self->fd, 3, 1, UPAGE_PROT_NONE);
	upage_protect_ok(self->fd, 4, 1, UPAGE_PROT_READ);
	segv_fd = self->fd;

	/* A read of a slot that allows nothing. */
	ASSERT_TRUE(segv_access(a, 0));
	EXPECT_EQ((void *)a, segv_seen.addr);
	EXPECT_EQ(SEGV_MAPERR, segv_seen.code);
	EXPECT_EQ(0, segv_seen.ret);
	EXPECT_EQ(3, segv_seen.slot);
	EXPECT_EQ(UPAGE_PROT_NONE, segv_seen.prot);

	/* A write to a read-only slot; its reads go through. */
	ASSERT_TRUE(segv_access(b, 1));
	EXPECT_EQ((void *)b, segv_seen.addr);
	EXPECT_EQ(SEGV_MAPERR, segv_seen.code);
	EXPECT_EQ(0, segv_seen.ret);
	EXPECT_EQ(4, segv_seen.slot);
	EXPECT_EQ(UPAGE_PROT_READ, segv_seen.prot);
	EXPECT_FALSE(segv_access(b, 0));

	/* A stray pointer: nothing is mapped there. */
	gone = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, gone);
	munmap(gone, PAGE);
	ASSERT_TRUE(segv_access(gone + 30, 0));
	EXPECT_EQ((void *)(gone + 30), segv_seen.addr);
	EXPECT_EQ(SEGV_MAPERR, segv_seen.code);
	EXPECT_EQ(-ENOENT, segv_seen.ret);

	/* Memory the program itself made inaccessible. */
	none = mmap(NULL, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, none);
	ASSERT_TRUE(segv_access(none + 40, 1));
	EXPECT_EQ((void *)(none + 40), segv_seen.addr);
	EXPECT_EQ(SEGV_ACCERR, segv_seen.code);
	EXPECT_EQ(-ENOENT, segv_seen.ret);
	munmap(none, PAGE);

	/* Access given back: the upage address works again. */
	upage_protect_ok(self->fd, 3, 1, UPAGE_PROT_RW);
	EXPECT_FALSE(segv_access(a, 0));
	EXPECT_TRUE(upage_page_is(self->p, 3, 3));
}

/* Voluntary context switches of thread @tid of this process, -1 if unknown. */
static long voluntary_switches(pid_t tid)
{
	char path[64], line[128];
	long n = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "voluntary_ctxt_switches: %ld", &n) == 1)
			break;
	fclose(f);
	return n;
}

/*
 * A resolve wakes the threads it answers, all of them (24 on one slot),
 * and no other: two threads waiting on another slot are not even woken
 * (their voluntary context switches do not move), until their own
 * resolve. (Review 8 wrote the first version of this test.)
 */
TEST_F(trap, resolve_wakes_every_thread_it_answers_and_no_other)
{
	struct toucher t[24], o[2];
	long switches[2];
	uint64_t woken = 99;
	int i;

	upage_fill(self->p, 3, 0x33);
	upage_fill(self->p, 5, 0x55);
	ASSERT_EQ(0, upage_trap(self->fd, 3, 1, UPAGE_TRAP_READ));
	ASSERT_EQ(0, upage_trap(self->fd, 5, 1, UPAGE_TRAP_READ));
	memset(t, 0, sizeof(t));
	memset(o, 0, sizeof(o));
	for (i = 0; i < 24; i++) {
		t[i].addr = self->p + 3 * PAGE + i;
		ASSERT_EQ(0, start_toucher(&t[i]));
	}
	for (i = 0; i < 2; i++) {
		o[i].addr = self->p + 5 * PAGE + i;
		ASSERT_EQ(0, start_toucher(&o[i]));
	}
	for (i = 0; i < 24; i++)
		ASSERT_TRUE(wait_asleep(getpid(), t[i].tid));
	for (i = 0; i < 2; i++) {
		ASSERT_TRUE(wait_asleep(getpid(), o[i].tid));
		switches[i] = voluntary_switches(o[i].tid);
	}
	ASSERT_EQ(0, upage_resolve(self->fd, 3, 1, UPAGE_RESOLVE_MAP,
				   UPAGE_RESOLVE_LIFT, NULL, &woken));
	EXPECT_EQ(24, woken);
	for (i = 0; i < 24; i++) {
		ASSERT_EQ(0, join_within(&t[i]));
		EXPECT_EQ(0x33, t[i].val);
	}
	for (i = 0; i < 2; i++) {
		EXPECT_FALSE(toucher_done(&o[i]));
		EXPECT_EQ(switches[i], voluntary_switches(o[i].tid));
	}
	ASSERT_EQ(0, upage_resolve(self->fd, 5, 1, UPAGE_RESOLVE_MAP,
				   UPAGE_RESOLVE_LIFT, NULL, &woken));
	EXPECT_EQ(2, woken);
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, join_within(&o[i]));
		EXPECT_EQ(0x55, o[i].val);
	}
}

TEST_HARNESS_MAIN
