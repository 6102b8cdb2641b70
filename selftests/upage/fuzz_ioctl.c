// SPDX-License-Identifier: GPL-2.0
/*
 * A struct-aware fuzzer of the upage ioctls.
 *
 * Every UPAGE_* ioctl is called with an argument built field by field:
 * its size swept across the struct's versions (0, too small, exact,
 * larger with a zero or a non-zero tail, a page, past a page, huge),
 * unknown flags and non-zero reserved fields, boundary values for every
 * number (0, 1, the space's size and one past it, the module's maximum and
 * one past it, ~0, ranges whose end passes 2^64), counts and element sizes
 * at and past their limits, and every pointer (the struct itself and the
 * buffers it points to) placed in ordinary memory, at the end of a page
 * before an inaccessible one, straddling the two, at NULL, in a hole, in
 * the kernel's half, in a read-only page, or in the space's own mapping on
 * a slot that is protected, trapped, evicted, discarded or tracked.
 * UPAGE_EDIT batches mix every op on a few hot slots, often repeating a
 * short pattern, so that a batch reuses its slots.
 *
 * The oracle here: every result is an errno the UAPI documents for that
 * ioctl; an argument that breaks a rule which does not depend on the
 * space's state (an unknown flag, n == 0, a range that cannot exist, ...)
 * is refused; what a successful call reports is well-formed; no call takes
 * SLOW_FAIL_MS. The real oracle is the kernel log, which the guest checks
 * after the suite (KASAN, lockdep, WARN, hung tasks).
 *
 * Two tests. single_thread: one thread draws everything from one
 * xorshift64* stream, its choices never depend on results, so a seed
 * (UPAGE_FUZZ_SEED) replays the same calls; with UPAGE_FUZZ_ITERS the run
 * stops after that many iterations. concurrent: the same core thread while
 * other threads and a child process map, unmap, mremap, madvise and touch
 * the space (catching SIGSEGV and SIGBUS), resize it, dup and close its fd,
 * fork, do I/O and vmsplice with buffers in it, and a handler thread
 * answers trap events; there a replay is best effort.
 *
 * Environment (passed into the guest by scripts/initramfs):
 *   UPAGE_FUZZ_SEED     the seed to replay (decimal or 0x hex)
 *   UPAGE_FUZZ_SECONDS  the budget of both tests (default 60), a third of
 *                       it single-threaded
 *   UPAGE_FUZZ_ITERS    stop the single-threaded test after N iterations
 *   UPAGE_FUZZ_AVOID    a comma list of patterns that known module bugs
 *                       turn into hangs or crashes, for runs that must get
 *                       past them (default: none, everything is tried):
 *                       edit-log   a batch that fills a hole again after
 *                                  an alias (overflows the batch's logs)
 *                       store-io   writes to tmpfs files from buffers in
 *                                  the space (deadlock with eviction)
 *                       big-batch  65536 ops over 1024 slots in one call
 *                                  (runs for minutes)
 *                       rmw        atomic read-modify-writes (spin on
 *                                  write-trapped slots)
 *                       all
 *   UPAGE_FUZZ_TRACE    1: log every call before it is made; kmsg: log it
 *                       to the kernel log too, next to what it triggers
 *
 * The seed and every failure also go to the kernel log, which outlives a
 * guest that panics or hangs before the suite's output is collected.
 *
 * Nothing here waits for ever: a trapped access ends with the trap
 * timeout (every call that may change it is followed by one that sets it
 * back) or by the handler thread; the space's fd is non-blocking; pipes
 * are non-blocking; children and threads are waited for with deadlines.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/random.h>
#include <sys/ucontext.h>
#include <sys/uio.h>
#include <time.h>

#include "upage_utils.h"

#define SLOTS		64		/* the space's usual size */
#define WIN		(SLOTS + 8)	/* pages of a window: past that end too */
#define NR_WIN		6		/* windows that the mappers remap */
#define NR_DUP		4		/* dup()s of the space's fd that come and go */
#define DUP_BASE	700		/* their numbers: above what open() picks */
#define ARENA		(4UL << 20)	/* argument memory of the core thread */
#define SMALL_ARENA	(64UL << 10)	/* ... of the other threads */
#define NR_EDGE		4		/* pages followed by an inaccessible one */
#define TRAP_MS_SINGLE	30		/* trap timeout without a handler */
#define TRAP_MS_CONC	200		/* ... with the handler thread */
#define SLOW_WARN_MS	10000		/* a call this slow is reported */
#define SLOW_FAIL_MS	60000		/* ... and this slow fails the test */
#define JOIN_MS		20000		/* the longest wait for a thread or child */
#define MAX_FZ		16		/* fuzzing contexts the watchdog watches */
#define MAX_REPORTS	30		/* failures printed in full */
#define TOTAL_PAGES_CAP	32768		/* max_total_pages while fuzzing */
#define DEFAULT_SECONDS	60
#define SWEEP_SIZES	12		/* size classes of pick_size() */
#define MAX_GEN_OPS	64		/* ops of a fuzzed batch, at most */
#define PARAM_TOTAL	"/sys/module/upage/parameters/max_total_pages"

#define AVOID_EDIT_LOG	(1U << 0)
#define AVOID_STORE_IO	(1U << 1)
#define AVOID_BIG_BATCH	(1U << 2)
#define AVOID_RMW	(1U << 3)

/* ---- xorshift64*: the whole state is one word, seeded by splitmix64 ---- */

struct rng {
	uint64_t s;
};

static void rng_seed(struct rng *r, uint64_t seed)
{
	uint64_t z = seed + 0x9e3779b97f4a7c15ULL;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	r->s = (z ^ (z >> 31)) | 1;	/* never 0, the one fixed point */
}

static uint64_t rnd(struct rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 2685821657736338717ULL;
}

static uint64_t below(struct rng *r, uint64_t n)
{
	return n ? rnd(r) % n : 0;
}

static bool one_in(struct rng *r, unsigned int n)
{
	return below(r, n) == 0;
}

/* One of the @n values at @v. */
static uint64_t one_of(struct rng *r, const uint64_t *v, size_t n)
{
	return v[below(r, n)];
}

#define ONE_OF(r, ...)                                                    \
	one_of(r, (const uint64_t[]){ __VA_ARGS__ },                       \
	       sizeof((const uint64_t[]){ __VA_ARGS__ }) / sizeof(uint64_t))

/* The same, from an already drawn @x. */
#define NTH_OF(x, ...)                                                    \
	(((const uint64_t[]){ __VA_ARGS__ })                               \
	 [(x) % (sizeof((const uint64_t[]){ __VA_ARGS__ }) / sizeof(uint64_t))])

/* ---- the ioctls, indexed by UPAGE_CMD_* ---- */

struct ioc {
	const char *name;
	unsigned long cmd;
	unsigned int nr;
	uint32_t size;		/* sizeof() of today's struct */
	uint32_t min;		/* the end of its first version */
	uint32_t flags_all;	/* the flags it knows */
};

#define IOC(_name, _struct, _min, _flags)                                 \
	{ #_name, UPAGE_##_name, UPAGE_CMD_##_name, sizeof(struct _struct), \
	  _min, _flags }

static const struct ioc iocs[] = {
	IOC(API, upage_api, sizeof(struct upage_api), 0),
	IOC(RESIZE, upage_resize, sizeof(struct upage_resize), 0),
	IOC(EDIT, upage_edit, sizeof(struct upage_edit), UPAGE_EDIT_FLAGS_ALL),
	IOC(QUERY, upage_query, sizeof(struct upage_query),
	    UPAGE_QUERY_FLAGS_ALL),
	/* Version 1 ended at out_batches (abi.c). */
	IOC(STATS, upage_stats, offsetof(struct upage_stats, out_evictions), 0),
	IOC(RESIDENCY, upage_residency, sizeof(struct upage_residency),
	    UPAGE_RES_FLAGS_ALL),
	IOC(STORE, upage_store, sizeof(struct upage_store),
	    UPAGE_STORE_FLAGS_ALL),
	IOC(TRACK, upage_track, sizeof(struct upage_track), 0),
	IOC(DIRTY, upage_dirty, sizeof(struct upage_dirty),
	    UPAGE_DIRTY_FLAGS_ALL),
	IOC(TRAP, upage_trap, sizeof(struct upage_trap), UPAGE_TRAP_FLAGS_ALL),
	IOC(RESOLVE, upage_resolve, sizeof(struct upage_resolve),
	    UPAGE_RESOLVE_FLAGS_ALL),
};

#define NR_IOC ARRAY_SIZE(iocs)
#define IOC_READ NR_IOC		/* read(2) of events, in the counters */
#define IOC_OTHER (NR_IOC + 1)	/* unknown ioctl numbers */

/* The errnos counted one by one in the summary; the rest as "other". */
static const int counted[] = {
	0, EINVAL, EOPNOTSUPP, E2BIG, EFAULT, ENOENT, EBUSY, ENOMEM, ENOSPC,
	EEXIST, EBADF, EIO, EAGAIN, ENOTTY,
};

#define NR_COUNTED (ARRAY_SIZE(counted) + 1)

/* ---- shared state ---- */

struct fz;

/* A window of the region: the mappers put a mapping of a space in it. */
struct win {
	pthread_rwlock_t lock;	/* writers of the space: read; remap: write */
	unsigned char *_Atomic addr;	/* the mapping, NULL if none */
	atomic_size_t len;
};

struct world {
	int fd;			/* the space under test */
	int fd2;		/* another space */
	int memfd;		/* a store */
	int iofd;		/* a memfd for I/O (a store too, unless avoided) */
	int ro_fd;		/* memfd reopened read-only: EBADF as a store */
	int append_fd;		/* ... with O_APPEND: EINVAL */
	int dir_fd, null_fd;	/* no regular files: EBADF, EINVAL */
	int pipe[2];		/* I/O out of and into the space */
	int splice[2];		/* vmsplice()d pages stay referenced till read */
	int mem_fd;		/* /proc/self/mem */
	int direct_fd;		/* a tmpfs file with O_DIRECT, where it has it */
	int kmsg;		/* the kernel log: seeds, failures, traces */
	uint64_t max_pages;	/* UPAGE_API */
	uint64_t ioctls;	/* UPAGE_API: the ioctls implemented */
	_Atomic uint64_t size;	/* the size the space was last given */
	unsigned char *core_win;	/* WIN pages of the space, then a guard */
	unsigned char *region;		/* NR_WIN windows of 2 * WIN pages */
	struct win win[NR_WIN];
	unsigned char *hole;	/* nothing mapped here */
	char *mirror;		/* shared: what children are doing */
	unsigned char *none;	/* a PROT_NONE page */
	unsigned int avoid;	/* AVOID_* */
	int trace;
	unsigned int trap_ms;	/* the trap timeout calls leave set */
	bool concurrent;
	long saved_total;	/* max_total_pages before the test, or -1 */
	atomic_int stop;	/* chaos threads: finish */
	atomic_int stop_handler;
	atomic_int stop_watchdog;
	struct fz *fz[MAX_FZ];
	atomic_int nr_fz;
	atomic_int bad;		/* failures */
	atomic_int reports;	/* failures printed */
	_Atomic uint64_t counts[NR_IOC + 2][NR_COUNTED];
};

/* One thread's (or child's) fuzzing context. */
struct fz {
	struct world *w;
	struct rng rng;
	const char *role;
	int id;
	bool core;		/* the core thread: arguments in the space too */
	/* Accesses to the space that may fault jump back here. */
	sigjmp_buf jb;
	volatile sig_atomic_t armed;
	volatile int sig;
	/* Argument memory: an arena, edges and a read-only page (guarded). */
	unsigned char *arena;
	size_t arena_size, arena_used, arena_dirty;
	unsigned char *scratch;	/* where arrays are built before placing */
	size_t scratch_size;
	unsigned char *edge[NR_EDGE];
	unsigned int next_edge;
	unsigned char *ro;
	/* The call in flight, for reports and the watchdog. */
	char desc[1024];
	size_t dlen;
	_Atomic long t0;	/* when it started (ms), 0 when none */
	_Atomic long flagged;	/* t0 of a call the watchdog failed */
	long slow_seen;		/* t0 of a call the watchdog reported */
	/* A child's copy of desc, in memory its parent sees. */
	char *mirror;
	pid_t tid;
	/* Counters, and the longest call with what it was. */
	uint64_t iter, calls;
	long longest;
	char longest_desc[160];
	/* The core's own: iterations left before a huge space shrinks. */
	unsigned int big_left;
	uint64_t big_at;	/* the iteration of the big batch */
	/* place(): a W_SPACE buffer goes to this slot (-1: any). */
	long want_slot;
	/* Forced choices of the ABI sweep (-1: random). */
	int force_nr, force_size, force_where;
	/* vmsplice()d bytes not read back yet. */
	size_t spliced;
};

static __thread struct fz *cur;

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * A TAP comment, written with one write(2): threads and forked children
 * print too, and stdio's buffers and locks are not safe across fork().
 */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char buf[2048] = "# ";
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf + 2, sizeof(buf) - 3, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	n = n + 2 > (int)sizeof(buf) - 2 ? (int)sizeof(buf) - 2 : n + 2;
	buf[n++] = '\n';
	if (write(STDOUT_FILENO, buf, n) < 0)
		return;
}

/* Start describing the call about to be made. */
static void dstart(struct fz *f)
{
	f->dlen = 0;
	f->desc[0] = '\0';
}

static void dadd(struct fz *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void dadd(struct fz *f, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (f->dlen >= sizeof(f->desc) - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(f->desc + f->dlen, sizeof(f->desc) - f->dlen, fmt, ap);
	va_end(ap);
	if (n > 0)
		f->dlen += n;
	if (f->dlen > sizeof(f->desc) - 1)
		f->dlen = sizeof(f->desc) - 1;
}

/*
 * A line in the kernel log: the seed goes there too, since a panic loses
 * the suite's own output but not the console.
 */
static void kmsg(struct world *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void kmsg(struct world *w, const char *fmt, ...)
{
	char buf[1000];
	va_list ap;
	int n;

	if (w->kmsg < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n <= 0)
		return;
	if (n >= (int)sizeof(buf))
		n = sizeof(buf) - 1;
	if (write(w->kmsg, buf, n) < 0)
		w->kmsg = -1;
}

/* A failure: counted, and printed with the call while few. */
static void bad(struct fz *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void bad(struct fz *f, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	atomic_fetch_add(&f->w->bad, 1);
	if (atomic_fetch_add(&f->w->reports, 1) >= MAX_REPORTS)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	say("FAIL %s%d iteration %llu: %s; call: %s", f->role, f->id,
	    (unsigned long long)f->iter, msg, f->desc);
	/* A hang or a panic loses the suite's output, not the console. */
	kmsg(f->w, "upage-fuzz: FAIL %s%d iteration %llu: %s; call: %.600s\n",
	     f->role, f->id, (unsigned long long)f->iter, msg, f->desc);
}

static const char *errname(int err)
{
	const char *s = err ? strerrorname_np(err) : "0";

	return s ? s : "E?";
}

static void count(struct world *w, unsigned int idx, int err)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(counted); i++)
		if (counted[i] == err)
			break;
	atomic_fetch_add_explicit(&w->counts[idx][i], 1, memory_order_relaxed);
}

/* Whether the UAPI documents @err for the ioctl of command @nr. */
static bool documented(const struct world *w, unsigned int nr, int err)
{
	switch (err) {
	case 0:
	case EFAULT:
	case EOPNOTSUPP:
	case EINVAL:
	case ENOSPC:
	case ENOMEM:
	case E2BIG:	/* a non-zero tail; soon also any size past a page */
		return true;
	case ENOTTY:	/* only for an ioctl the module says it lacks */
		return !(w->ioctls & (1ULL << nr));
	}
	switch (nr) {
	case UPAGE_CMD_EDIT:
		return err == EBUSY;
	case UPAGE_CMD_QUERY:
		return err == ENOENT;
	case UPAGE_CMD_RESIDENCY:
		/* Pins, and a store write or read that fails (EIO, EFBIG, ...). */
		return err == EBUSY || err == EIO || err == EFBIG ||
		       err == EDQUOT;
	case UPAGE_CMD_STORE:
		return err == EBADF || err == EBUSY;
	case UPAGE_CMD_RESOLVE:
		return err == EEXIST || err == EBUSY;
	}
	return false;
}

/* A call starts: tell the trace and a forked child's parent. */
static void trace_call(struct fz *f)
{
	char buf[1100];
	int n;

	if (f->mirror)
		memcpy(f->mirror, f->desc, sizeof(f->desc));
	if (f->w->trace)
		say("call %s%d %llu: %s", f->role, f->id,
		    (unsigned long long)f->iter, f->desc);
	if (f->w->trace >= 2 && f->w->kmsg >= 0) {
		/* The kernel takes records of 1 KiB at most. */
		n = snprintf(buf, 900, "upage-fuzz: %s%d %llu: %s", f->role,
			     f->id, (unsigned long long)f->iter, f->desc);
		n = n < 899 ? n : 899;
		buf[n++] = '\n';
		if (write(f->w->kmsg, buf, n) < 0)
			say("kmsg: %s", strerror(errno));
	}
}

/* A blocking syscall starts or ends: the watchdog sees it. */
static void begin(struct fz *f)
{
	trace_call(f);
	atomic_store(&f->t0, now_ms());
}

static void end(struct fz *f)
{
	long dt = now_ms() - atomic_exchange(&f->t0, 0);

	if (dt > f->longest) {
		f->longest = dt;
		snprintf(f->longest_desc, sizeof(f->longest_desc), "%.150s",
			 f->desc);
	}
}

/*
 * Make the call described in f->desc: ioctl @ic on @fd. Checks the result
 * against the UAPI; @must_fail: the argument breaks a rule that holds
 * whatever the space's state; @maybe_closed: @fd may have been closed by
 * another thread (EBADF is then fine). Returns 0 or the errno.
 */
static int call(struct fz *f, int fd, const struct ioc *ic, void *arg,
		bool must_fail, bool maybe_closed)
{
	long t0 = now_ms(), dt;
	int err;

	f->calls++;
	trace_call(f);
	atomic_store(&f->t0, t0);
	err = ioctl(fd, ic->cmd, arg) < 0 ? errno : 0;
	end(f);
	dt = now_ms() - t0;
	count(f->w, ic->nr, err);
	if (dt > SLOW_WARN_MS) {
		say("slow: %s%d took %ld ms: %s", f->role, f->id, dt, f->desc);
		if (dt > SLOW_FAIL_MS && atomic_load(&f->flagged) != t0)
			bad(f, "took %ld ms", dt);
	}
	if (err == EBADF && maybe_closed)
		return err;
	if (!documented(f->w, ic->nr, err))
		bad(f, "UPAGE_%s returned %s, which its UAPI does not document",
		    ic->name, errname(err));
	else if (!err && must_fail)
		bad(f, "UPAGE_%s succeeded with an argument it must refuse",
		    ic->name);
	return err;
}

static void dump_stacks(pid_t pid);
static int write_param(const char *path, long v);

/* ---- catching faults on accesses to the space ---- */

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	struct fz *f = cur;

	if (!f || !f->armed) {
		/*
		 * Not an access made on purpose: say where (an offset in its
		 * object file, for addr2line) and in which call, then die of
		 * it. dladdr() is no async-signal-safe call; dying anyway.
		 */
		uintptr_t ip = ((ucontext_t *)uc)->uc_mcontext.gregs[REG_RIP];
		Dl_info dl = { 0 };

		dladdr((void *)ip, &dl);
		say("signal %d at %p (code %d), ip %s+%#lx, in %s%d: %s",
		    sig, si->si_addr, si->si_code,
		    dl.dli_fname ? dl.dli_fname : "?",
		    (unsigned long)(ip - (uintptr_t)dl.dli_fbase),
		    f ? f->role : "?", f ? f->id : -1, f ? f->desc : "");
		signal(sig, SIG_DFL);
		return;
	}
	f->armed = 0;
	f->sig = sig;
	siglongjmp(f->jb, 1);
}

static void catch_faults(void)
{
	struct sigaction sa = {
		.sa_sigaction = on_fault,
		/* siglongjmp() leaves the handler: do not keep it blocked. */
		.sa_flags = SA_SIGINFO | SA_NODEFER,
	};

	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
}

/* Copy @len bytes, either side possibly in the space: 0 or the signal. */
static int guarded_copy(struct fz *f, void *dst, const void *src, size_t len)
{
	dstart(f);
	dadd(f, "copy %p <- %p len %zu", dst, src, len);
	begin(f);
	if (sigsetjmp(f->jb, 0)) {
		end(f);
		return f->sig;
	}
	f->armed = 1;
	memcpy(dst, src, len);
	f->armed = 0;
	end(f);
	return 0;
}

/* Touch @p: read, write, atomic add or fill its page; 0 or the signal. */
static int touch(struct fz *f, volatile unsigned char *p, unsigned int kind)
{
	/* A fault that never ends shows here, with its address. */
	dstart(f);
	dadd(f, "access %p kind %u", p, kind % 4);
	begin(f);
	if (sigsetjmp(f->jb, 0)) {
		end(f);
		return f->sig;
	}
	f->armed = 1;
	switch (kind % 4) {
	case 0:
		(void)*p;
		break;
	case 1:
		*p = (unsigned char)(uintptr_t)p;
		break;
	case 2:
		/* A locked read-modify-write: one fault, read and write. */
		if (f->w->avoid & AVOID_RMW)
			*p = 2;
		else
			__atomic_fetch_add((volatile uint64_t *)((uintptr_t)p & ~7UL),
					   1, __ATOMIC_SEQ_CST);
		break;
	case 3:
		memset((void *)((uintptr_t)p & ~(PAGE - 1)), f->id, PAGE);
		break;
	}
	f->armed = 0;
	end(f);
	return 0;
}

/* @len bytes, then an inaccessible page. */
static unsigned char *map_guarded(size_t len)
{
	unsigned char *p = mmap(NULL, len + PAGE, PROT_NONE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
				-1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (mprotect(p, len, PROT_READ | PROT_WRITE)) {
		munmap(p, len + PAGE);
		return NULL;
	}
	return p;
}

static void unmap_guarded(unsigned char *p, size_t len)
{
	if (p)
		munmap(p, len + PAGE);
}

static int fz_init(struct fz *f, struct world *w, const char *role, int id,
		   uint64_t seed, bool core)
{
	int i;

	memset(f, 0, sizeof(*f));
	f->w = w;
	f->role = role;
	f->id = id;
	f->core = core;
	f->force_nr = f->force_size = f->force_where = -1;
	f->want_slot = -1;
	rng_seed(&f->rng, seed);
	f->arena_size = core ? ARENA : SMALL_ARENA;
	f->scratch_size = f->arena_size;
	f->arena = map_guarded(f->arena_size);
	f->scratch = map_guarded(f->scratch_size);
	f->ro = map_guarded(PAGE);
	if (!f->arena || !f->scratch || !f->ro)
		return -ENOMEM;
	for (i = 0; i < NR_EDGE; i++) {
		f->edge[i] = map_guarded(PAGE);
		if (!f->edge[i])
			return -ENOMEM;
	}
	i = atomic_fetch_add(&w->nr_fz, 1);
	if (i < MAX_FZ)
		w->fz[i] = f;
	return 0;
}

static void fz_fini(struct fz *f)
{
	int i;

	for (i = 0; i < atomic_load(&f->w->nr_fz) && i < MAX_FZ; i++)
		if (f->w->fz[i] == f)
			f->w->fz[i] = NULL;
	unmap_guarded(f->arena, f->arena_size);
	unmap_guarded(f->scratch, f->scratch_size);
	unmap_guarded(f->ro, PAGE);
	for (i = 0; i < NR_EDGE; i++)
		unmap_guarded(f->edge[i], PAGE);
}

/* ---- where an argument or a buffer goes ---- */

enum where {
	W_HEAP,		/* ordinary memory, zeros after it */
	W_SPACE,	/* the space's own mapping (core thread only) */
	W_PAGE_END,	/* ending where an inaccessible page starts */
	W_STRADDLE,	/* a few bytes before it, the rest in it */
	W_NULL,
	W_HOLE,		/* nothing mapped */
	W_NONE,		/* PROT_NONE */
	W_RDONLY,	/* readable, not writable */
	W_KERNEL,	/* the kernel's half */
	W_NONCANON,	/* a non-canonical address */
	W_NR
};

static const char *const where_name[W_NR] = {
	"heap", "space", "page-end", "straddle", "null", "hole", "none",
	"rdonly", "kernel", "noncanon",
};

/* Where a placement went; describes it as "heap", "space@3:trap", ... */
struct at {
	enum where wh;
	long slot;		/* W_SPACE: the slot given a state */
	const char *state;	/* ... and which */
	size_t off;		/* W_HEAP: offset in the arena */
	bool fits;		/* W_HEAP: all the room is in the arena */
};

static void dat(struct fz *f, const char *name, const struct at *at)
{
	if (at->wh == W_SPACE)
		dadd(f, " %s=space@%ld:%s", name, at->slot, at->state);
	else
		dadd(f, " %s=%s", name, where_name[at->wh]);
}

static enum where pick_where(struct fz *f, bool tame)
{
	struct rng *r = &f->rng;
	unsigned int x = below(r, 100);

	if (f->force_where >= 0)
		return f->force_where;
	if (tame)
		return x < 85 || !f->core ? W_HEAP : W_SPACE;
	if (x < 50)
		return W_HEAP;
	if (x < 66)
		return f->core ? W_SPACE : W_HEAP;
	return W_PAGE_END + below(r, W_NR - W_PAGE_END);
}

/* Start a new call: the arena's memory is zero again, edges reused. */
static void arena_reset(struct fz *f)
{
	memset(f->arena, 0, f->arena_size < f->arena_dirty ? f->arena_size :
	       f->arena_dirty);
	f->arena_used = 0;
	f->arena_dirty = 0;
}

/* Helper ioctls the fuzzer makes for itself, checked like the others. */
static int h_edit1(struct fz *f, uint32_t op, uint64_t dst, uint64_t n,
		   uint32_t prot)
{
	struct upage_edit_op o = { .op = op, .dst = dst, .n = n, .prot = prot };
	struct upage_edit e = {
		.size = sizeof(e), .op_size = sizeof(o), .count = 1,
		.ops = (uintptr_t)&o,
	};

	dstart(f);
	dadd(f, "prep EDIT op=%u dst=%llu n=%llu prot=%u", op,
	     (unsigned long long)dst, (unsigned long long)n, prot);
	return call(f, f->w->fd, &iocs[UPAGE_CMD_EDIT], &e, false, false);
}

static int h_res(struct fz *f, uint32_t op, uint64_t first, uint64_t n)
{
	struct upage_residency a = {
		.size = sizeof(a), .op = op, .first = first, .n = n,
	};

	dstart(f);
	dadd(f, "prep RESIDENCY op=%u first=%llu n=%llu", op,
	     (unsigned long long)first, (unsigned long long)n);
	return call(f, f->w->fd, &iocs[UPAGE_CMD_RESIDENCY], &a, false, false);
}

static int h_trap(struct fz *f, uint64_t first, uint64_t n, uint32_t access)
{
	struct upage_trap a = {
		.size = sizeof(a), .first = first, .n = n, .access = access,
	};

	dstart(f);
	dadd(f, "prep TRAP first=%llu n=%llu access=%u",
	     (unsigned long long)first, (unsigned long long)n, access);
	return call(f, f->w->fd, &iocs[UPAGE_CMD_TRAP], &a, false, false);
}

/* Set the trap timeout the rest of the run relies on, on @fd's space. */
static void h_safe_timeout(struct fz *f, int fd, bool maybe_closed)
{
	struct upage_trap a = {
		.size = sizeof(a), .flags = UPAGE_TRAP_SET_TIMEOUT,
		.timeout_ms = f->w->trap_ms,
	};
	int err;

	dstart(f);
	dadd(f, "prep TRAP timeout_ms=%u fd=%d", a.timeout_ms, fd);
	err = call(f, fd, &iocs[UPAGE_CMD_TRAP], &a, false, maybe_closed);
	if (err && !(err == EBADF && maybe_closed))
		bad(f, "cannot set the trap timeout back");
}

static int h_track(struct fz *f, uint64_t first, uint64_t n)
{
	struct upage_track a = {
		.size = sizeof(a), .op = UPAGE_TRACK_START, .first = first,
		.n = n,
	};

	dstart(f);
	dadd(f, "prep TRACK first=%llu n=%llu", (unsigned long long)first,
	     (unsigned long long)n);
	return call(f, f->w->fd, &iocs[UPAGE_CMD_TRACK], &a, false, false);
}

static int h_resize(struct fz *f, uint64_t pages)
{
	struct upage_resize a = { .size = sizeof(a), .pages = pages };

	dstart(f);
	dadd(f, "prep RESIZE pages=%llu", (unsigned long long)pages);
	return call(f, f->w->fd, &iocs[UPAGE_CMD_RESIZE], &a, false, false);
}

/* Give slot @slot the state a buffer there meets; returns its name. */
static const char *give_state(struct fz *f, uint64_t slot, uint64_t pages)
{
	struct rng *r = &f->rng;

	switch (below(r, 11)) {
	case 0:
		h_edit1(f, UPAGE_OP_PROTECT, slot, 1, UPAGE_PROT_NONE);
		return "prot-none";
	case 1:
		h_edit1(f, UPAGE_OP_PROTECT, slot, 1, UPAGE_PROT_READ);
		return "prot-read";
	case 2:
		h_trap(f, slot, 1, UPAGE_TRAP_READ);
		return "trap";
	case 3:
		h_trap(f, slot, 1, UPAGE_TRAP_WRITE);
		return "trap-write";
	case 4:
		h_res(f, UPAGE_RES_EVICT, slot, pages);
		return "evicted";
	case 5:
		/* Dropped on eviction: reads zeros from then on. */
		h_res(f, UPAGE_RES_LAZY_FREE, slot, 1);
		h_res(f, UPAGE_RES_EVICT, slot, 1);
		return "reclaimed";
	case 6:
		h_edit1(f, UPAGE_OP_DISCARD, slot, 1, 0);
		return "discarded";
	case 7:
		h_track(f, slot, pages);
		return "tracked";
	case 8:
		h_res(f, UPAGE_RES_PIN, slot, 1);
		return "pinned";
	default:
		return "rw";
	}
}

/*
 * Put @len bytes of @data where @wh says; the kernel may touch @room
 * bytes from there (room >= len). Returns the user pointer.
 */
static void *place(struct fz *f, enum where wh, const void *data, size_t len,
		   size_t room, struct at *at)
{
	struct rng *r = &f->rng;
	unsigned char *p;
	size_t off, fit;

	if (wh == W_SPACE && !f->core)
		wh = W_HEAP;
	memset(at, 0, sizeof(*at));
	at->wh = wh;
	if (len > room)
		room = len;
	switch (wh) {
	case W_HEAP:
		off = (f->arena_used + 7) & ~7UL;
		if (one_in(r, 4))
			off += 1 + below(r, 7);	/* unaligned too */
		if (off >= f->arena_size || room > f->arena_size - off)
			off = off < f->arena_size ? off : f->arena_size - 1;
		fit = f->arena_size - off;
		memcpy(f->arena + off, data, len < fit ? len : fit);
		at->fits = room <= fit;
		fit = room < fit ? room : fit;
		f->arena_used = off + fit;
		if (f->arena_dirty < off + fit)
			f->arena_dirty = off + fit;
		at->off = off;
		return f->arena + off;
	case W_SPACE: {
		uint64_t s, pages, size = atomic_load(&f->w->size);

		/* Often across a slot boundary, so that two states meet. */
		off = one_in(r, 3) ? PAGE - (room % PAGE ? room % PAGE : 8) / 2 :
				     below(r, PAGE / 8) * 8;
		off %= PAGE;
		pages = (off + room + PAGE - 1) / PAGE;
		if (pages > WIN)
			pages = WIN;
		if (!pages)
			pages = 1;
		/* The first slots are where the hot ones of batches are. */
		if (f->want_slot >= 0 && f->want_slot + pages <= WIN)
			s = f->want_slot;
		else if (size > pages && one_in(r, 2))
			s = below(r, (size < WIN ? size : WIN) - pages + 1);
		else
			s = below(r, WIN - pages + 1);
		f->want_slot = -1;
		p = f->w->core_win + s * PAGE + off;
		/* Writable first: no trap, read-write; then the bytes. */
		if (s < size) {
			uint64_t n = size - s < pages ? size - s : pages;

			h_trap(f, s, n, 0);
			h_edit1(f, UPAGE_OP_PROTECT, s, n, UPAGE_PROT_RW);
		}
		fit = (WIN - s) * PAGE - off;
		guarded_copy(f, p, data, len < fit ? len : fit);
		at->slot = s + below(r, pages);
		at->state = give_state(f, at->slot, s + pages - at->slot);
		return p;
	}
	case W_PAGE_END:
	case W_STRADDLE:
		p = f->edge[f->next_edge++ % NR_EDGE];
		memset(p, 0, PAGE);
		if (wh == W_PAGE_END)
			off = room < PAGE ? PAGE - room : 0;
		else
			off = PAGE - 1 - below(r, room < 8 ? room : 8);
		fit = PAGE - off;
		memcpy(p + off, data, len < fit ? len : fit);
		return p + off;
	case W_NULL:
		return one_in(r, 2) ? NULL : (void *)(uintptr_t)below(r, PAGE);
	case W_HOLE:
		return f->w->hole + below(r, PAGE);
	case W_NONE:
		return f->w->none + below(r, PAGE);
	case W_RDONLY:
		mprotect(f->ro, PAGE, PROT_READ | PROT_WRITE);
		memset(f->ro, 0, PAGE);
		off = room < PAGE ? below(r, PAGE - room + 1) : 0;
		fit = PAGE - off;
		memcpy(f->ro + off, data, len < fit ? len : fit);
		mprotect(f->ro, PAGE, PROT_READ);
		return f->ro + off;
	case W_KERNEL:
		return (void *)(0xffffffff81000000UL + below(r, PAGE));
	case W_NONCANON:
		return (void *)((one_in(r, 2) ? 0x0000800000000000UL :
					       0x8000000000000000UL) +
				below(r, PAGE));
	case W_NR:
		break;
	}
	return NULL;
}

/* ---- values ---- */

/* x * y, or SIZE_MAX when it does not fit. */
static size_t sat_mul(uint64_t x, uint64_t y)
{
	uint64_t p;

	if (__builtin_mul_overflow(x, y, &p) || p > SIZE_MAX)
		return SIZE_MAX;
	return p;
}

static uint32_t pick_flags(struct fz *f, uint32_t all, bool tame, bool *mf)
{
	struct rng *r = &f->rng;
	uint32_t v;

	if (tame || below(r, 6))
		return (uint32_t)rnd(r) & all;
	v = one_in(r, 2) ? 1U << below(r, 32) : (uint32_t)rnd(r);
	if (v & ~all)
		*mf = true;
	return v;
}

/* A __reserved field: 0, or sometimes not, which must be refused. */
static uint32_t pick_reserved(struct fz *f, bool tame, bool *mf)
{
	struct rng *r = &f->rng;
	uint32_t v;

	if (tame || below(r, 10))
		return 0;
	v = one_in(r, 2) ? 1U << below(r, 32) : (uint32_t)rnd(r);
	if (v)
		*mf = true;
	return v;
}

/* A slot number or count: usually small, else a boundary value. */
static uint64_t pick_num(struct fz *f, uint64_t size)
{
	struct rng *r = &f->rng;
	uint64_t max = f->w->max_pages;

	switch (below(r, 16)) {
	case 0:
		return 0;
	case 1:
		return 1;
	case 2:
		return size;
	case 3:
		return size + 1;
	case 4:
		return size ? size - 1 : 0;
	case 5:
		return max;
	case 6:
		return max + 1;
	case 7:
		return UINT64_MAX;
	case 8:
		return UINT64_MAX - 1 - below(r, 3);
	case 9:
		return 1ULL << (31 + below(r, 33));
	case 10:
		return (uint64_t)UINT32_MAX + below(r, 2);
	case 11:
		return rnd(r);
	default:
		return below(r, (size < SLOTS ? size : SLOTS) + 1);
	}
}

/* Whether first..first+n-1 cannot be slots of any space: must fail. */
static bool impossible(const struct world *w, uint64_t first, uint64_t n)
{
	return !n || first >= w->max_pages || n > w->max_pages - first;
}

/* A range of slots: mostly one that exists, else one way it does not. */
static void pick_range(struct fz *f, uint64_t size, bool tame,
		       __u64 *first, __u64 *n)
{
	struct rng *r = &f->rng;
	uint64_t lim = size < 4096 ? size : 4096, room;

	switch (below(r, tame ? 5 : 14)) {
	case 3:
		*first = 0;
		*n = size ? size : 1;
		return;
	case 4:
		*first = pick_num(f, size);
		*n = pick_num(f, size);
		return;
	case 5:
		*first = below(r, lim + 1);
		*n = 0;
		return;
	case 6:
		*first = size;
		*n = 1 + below(r, 2);
		return;
	case 7:
		*first = below(r, lim + 1);
		*n = size - *first + 1;
		return;
	case 8:
		/* first + n passes 2^64. */
		*first = UINT64_MAX - below(r, 3);
		*n = 2 + below(r, 4);
		return;
	case 9:
		*first = 1 + below(r, lim + 1);
		*n = UINT64_MAX - below(r, 2);
		return;
	case 10:
		*first = 0;
		*n = f->w->max_pages + below(r, 2);
		return;
	case 11:
		*first = f->w->max_pages - below(r, 2);
		*n = 1;
		return;
	default:
		*first = below(r, lim ? lim : 1);
		room = lim > *first ? lim - *first : 1;
		*n = 1 + below(r, room < 8 ? room : 8);
		return;
	}
}

/*
 * A struct size: mostly exact, else one of the classes of the ABI rules.
 * *tail gets the index of a non-zero byte past the struct, or -1.
 */
static uint32_t pick_size(struct fz *f, const struct ioc *ic, bool tame,
			  size_t room, long *tail)
{
	struct rng *r = &f->rng;
	int cls = f->force_size >= 0 ? f->force_size :
		  tame ? SWEEP_SIZES : (int)below(r, 2 * SWEEP_SIZES);
	uint32_t size, end;

	*tail = -1;
	switch (cls) {
	case 0:
		return 0;
	case 1:
		return one_in(r, 2) ? 4 : 8;
	case 2:
		return ic->min - 1;
	case 3:
		return ic->min - 1 - below(r, 8);
	case 4:
		size = ic->size + 8;
		break;
	case 5:
		size = ic->size + 1 + below(r, 256);
		break;
	case 6:
		size = PAGE;
		break;
	case 7:
		/* Past a page: E2BIG once the module caps sizes, as openat2. */
		size = PAGE + 1 + below(r, PAGE);
		break;
	case 8:
		size = 1U << 30;
		break;
	case 9:
		size = UINT32_MAX - below(r, 2);
		break;
	case 10:
		return ic->min;
	default:
		return ic->size;
	}
	/* A non-zero byte in the part of the tail we write, half the time. */
	end = size < room ? size : room;
	if (end > ic->size && one_in(r, 2))
		*tail = one_in(r, 2) ? end - 1 :
			ic->size + below(r, end - ic->size);
	return size;
}

/* ---- the ioctl calls ---- */

union args {
	struct upage_api api;
	struct upage_resize resize;
	struct upage_edit edit;
	struct upage_query query;
	struct upage_stats stats;
	struct upage_residency res;
	struct upage_store store;
	struct upage_track track;
	struct upage_dirty dirty;
	struct upage_trap trap;
	struct upage_resolve resolve;
};

/* One fuzzed call: its fields, where things went, what to check after. */
struct job {
	const struct ioc *ic;
	union args u;
	bool tame;		/* a well-formed header: the fields get tested */
	bool must_fail;
	int fd;
	const char *fd_name;
	bool maybe_closed;
	uint32_t size;
	long tail;		/* a non-zero byte past the struct, or -1 */
	struct at at_arg;
	void *arg;
	struct at at_buf;	/* the buffer the struct points to, if any */
	void *buf;
	const char *store_fd;	/* UPAGE_STORE: which file */
	struct upage_edit_op ops[MAX_GEN_OPS];	/* UPAGE_EDIT: those made */
	uint32_t nr_ops;
	long op_tail;		/* ... an op with a non-zero tail byte */
	unsigned int big_left;	/* UPAGE_RESIZE: iterations a huge size stays */
};

static const char op_letter[] = "?AcMSPD";

static void dnum(struct fz *f, const char *name, uint64_t v)
{
	if (v > (1ULL << 32))
		dadd(f, " %s=%#llx", name, (unsigned long long)v);
	else
		dadd(f, " %s=%llu", name, (unsigned long long)v);
}

/* The ops as "A0,1,1" (alias dst 0 src 1 n 1), "P3,0,2,p1" and so on. */
static void dops(struct fz *f, const struct upage_edit_op *ops, uint32_t nr)
{
	uint32_t i;

	dadd(f, " [");
	for (i = 0; i < nr && f->dlen < sizeof(f->desc) - 64; i++) {
		const struct upage_edit_op *o = &ops[i];

		dadd(f, "%s%c", i ? " " : "", o->op <= 6 ? op_letter[o->op] : '?');
		if (o->op > 6 || !o->op)
			dadd(f, "%u:", o->op);
		dadd(f, o->dst > 1ULL << 32 ? "%#llx" : "%llu",
		     (unsigned long long)o->dst);
		dadd(f, o->src > 1ULL << 32 ? ",%#llx" : ",%llu",
		     (unsigned long long)o->src);
		dadd(f, o->n > 1ULL << 32 ? ",%#llx" : ",%llu",
		     (unsigned long long)o->n);
		if (o->prot)
			dadd(f, ",p%u", o->prot);
		if (o->flags)
			dadd(f, ",f%#x", o->flags);
		if (o->__reserved)
			dadd(f, ",r%#x", o->__reserved);
	}
	dadd(f, "%s]", i < nr ? " ..." : "");
}

/* Whether @op breaks a rule whatever the space holds. */
static bool op_invalid(const struct world *w, const struct upage_edit_op *op)
{
	if (op->flags || op->__reserved || impossible(w, op->dst, op->n))
		return true;
	switch (op->op) {
	case UPAGE_OP_PROTECT:
		return op->src || (op->prot != UPAGE_PROT_NONE &&
				   op->prot != UPAGE_PROT_READ &&
				   op->prot != UPAGE_PROT_RW);
	case UPAGE_OP_DISCARD:
		return op->src || op->prot;
	case UPAGE_OP_ALIAS:
	case UPAGE_OP_ALIAS_COW:
	case UPAGE_OP_MOVE:
	case UPAGE_OP_SWAP:
		/* Both ranges exist here, so their ends do not overflow. */
		return op->prot || impossible(w, op->src, op->n) ||
		       (op->dst < op->src + op->n && op->src < op->dst + op->n);
	}
	return true;
}

static uint64_t pick_slot(struct fz *f, uint64_t size, const uint64_t *hot,
			  unsigned int nr_hot)
{
	struct rng *r = &f->rng;
	unsigned int x = below(r, 10);

	if (x < 7)
		return hot[below(r, nr_hot)];
	if (x < 9)
		return below(r, size ? size : 1);
	return pick_num(f, size);
}

static void gen_op(struct fz *f, struct upage_edit_op *o, uint64_t size,
		   const uint64_t *hot, unsigned int nr_hot, bool tame)
{
	struct rng *r = &f->rng;
	bool dummy = false;

	memset(o, 0, sizeof(*o));
	if (tame || below(r, 20))
		o->op = 1 + below(r, 6);
	else
		o->op = one_in(r, 2) ? below(r, 2) * 7 : (uint32_t)rnd(r);
	o->dst = pick_slot(f, size, hot, nr_hot);
	o->n = below(r, 8) ? 1 + below(r, 3) : pick_num(f, size);
	switch (o->op) {
	case UPAGE_OP_PROTECT:
		o->prot = tame || below(r, 10) ? ONE_OF(r, 0, 1, 3) :
						 below(r, 6);
		o->src = tame || below(r, 12) ? 0 : pick_slot(f, size, hot, nr_hot);
		break;
	case UPAGE_OP_DISCARD:
		o->src = tame || below(r, 12) ? 0 : 1 + below(r, 4);
		o->prot = tame || below(r, 12) ? 0 : 1 + below(r, 3);
		break;
	default:
		o->src = pick_slot(f, size, hot, nr_hot);
		o->prot = tame || below(r, 12) ? 0 : 1 + below(r, 3);
		break;
	}
	o->flags = pick_reserved(f, tame || below(r, 4), &dummy);
	o->__reserved = pick_reserved(f, tame || below(r, 4), &dummy);
}

/*
 * @nr ops on a few hot slots. A third of the batches repeat a pattern of
 * two or three ops, so that the same slots change again and again; a
 * third of them churn (below) on small spaces.
 */
static void gen_ops(struct fz *f, struct upage_edit_op *ops, uint32_t nr,
		    uint64_t size, bool tame)
{
	struct rng *r = &f->rng;
	unsigned int nr_hot = 1 + below(r, 4), period = 2 + below(r, 2), i;
	bool repeat = one_in(r, 3), aliased = false, churn = false;
	uint64_t hot[4], span = size < 8 ? size : 8;

	for (i = 0; i < nr_hot; i++)
		hot[i] = below(r, span ? span : 1);
	if (one_in(r, 3) && size >= 3) {
		/*
		 * Churn: alias a frame into a, then make its source b a hole
		 * again (move it to c, discard it, swap it with c), so that
		 * every round fills b anew; all on three distinct slots.
		 */
		uint64_t a = below(r, span);
		uint64_t b = (a + 1 + below(r, span - 1)) % span;
		uint64_t c = (a + 1) % span == b ? (b + 1) % span :
						    (a + 1) % span;

		period = 2 + one_in(r, 3);
		ops[0] = (struct upage_edit_op){
			.op = one_in(r, 3) ? UPAGE_OP_ALIAS_COW : UPAGE_OP_ALIAS,
			.dst = a, .src = b, .n = 1 };
		switch (below(r, 3)) {
		case 0:
			ops[1] = (struct upage_edit_op){ .op = UPAGE_OP_MOVE,
							 .dst = c, .src = b, .n = 1 };
			break;
		case 1:
			ops[1] = (struct upage_edit_op){ .op = UPAGE_OP_DISCARD,
							 .dst = b, .n = 1 };
			break;
		default:
			ops[1] = (struct upage_edit_op){ .op = UPAGE_OP_SWAP,
							 .dst = c, .src = b, .n = 1 };
			break;
		}
		ops[2] = (struct upage_edit_op){ .op = UPAGE_OP_PROTECT,
			.dst = a, .n = 1, .prot = ONE_OF(r, 0, 1, 3) };
		repeat = churn = true;
	}
	for (i = 0; i < nr; i++) {
		if (repeat && i >= period)
			ops[i] = ops[i % period];
		else if (!churn || (!tame && one_in(r, 16)))
			gen_op(f, &ops[i], size, hot, nr_hot, tame);
	}
	if (!(f->w->avoid & AVOID_EDIT_LOG))
		return;
	/*
	 * The known overflow of the batch's logs needs a hole filled by an
	 * alias twice: after the first alias, no op may make holes.
	 */
	for (i = 0; i < nr; i++) {
		struct upage_edit_op *o = &ops[i];

		if (o->op == UPAGE_OP_ALIAS || o->op == UPAGE_OP_ALIAS_COW) {
			aliased = true;
		} else if (aliased && (o->op == UPAGE_OP_MOVE ||
				       o->op == UPAGE_OP_SWAP ||
				       o->op == UPAGE_OP_DISCARD)) {
			o->op = UPAGE_OP_PROTECT;
			o->src = 0;
			o->prot = UPAGE_PROT_RW;
		}
	}
}

static void build_edit(struct fz *f, struct job *j, uint64_t size)
{
	struct upage_edit *a = &j->u.edit;
	struct rng *r = &f->rng;
	const size_t osz = sizeof(struct upage_edit_op);
	size_t stride, len = 0;
	uint32_t i, op_size = osz;

	a->flags = pick_flags(f, UPAGE_EDIT_FLAGS_ALL, j->tame, &j->must_fail);
	a->__reserved = pick_reserved(f, j->tame, &j->must_fail);
	a->out_error_index = (uint32_t)rnd(r);
	a->count = 1 + below(r, MAX_GEN_OPS);
	if (!j->tame) {
		switch (below(r, 10)) {
		case 0:
			a->count = 0;
			break;
		case 1:
			a->count = UPAGE_EDIT_MAX_OPS;
			break;
		case 2:
			a->count = UPAGE_EDIT_MAX_OPS + 1;
			break;
		case 3:
			a->count = UINT32_MAX;
			break;
		case 4:
			a->count = MAX_GEN_OPS + 1 + below(r, 1000);
			break;
		}
		switch (below(r, 16)) {
		case 0:
			op_size = 0;
			break;
		case 1:
			op_size = 1 + below(r, osz - 1);
			break;
		case 2:
		case 3:
			op_size = osz + 8;
			break;
		case 4:
			op_size = osz + 8 + below(r, 32) * 8;
			break;
		case 5:
			op_size = PAGE;
			break;
		case 6:
			op_size = PAGE + 1;
			break;
		case 7:
			op_size = 1U << 30;
			break;
		case 8:
			op_size = UINT32_MAX;
			break;
		}
	}
	a->op_size = op_size;
	if (!a->count || a->count > UPAGE_EDIT_MAX_OPS || op_size < osz)
		j->must_fail = true;
	j->nr_ops = a->count < MAX_GEN_OPS ? a->count : MAX_GEN_OPS;
	gen_ops(f, j->ops, j->nr_ops, size, j->tame);
	for (i = 0; i < j->nr_ops; i++)
		if (op_invalid(f->w, &j->ops[i]))
			j->must_fail = true;
	/* Ops past those generated are zeros, and op 0 is no op. */
	if (a->count > j->nr_ops)
		j->must_fail = true;

	/* Laid out op_size apart with zero tails, as many as fit. */
	stride = op_size > osz ? op_size : osz;
	for (i = 0; i < j->nr_ops && i * stride + osz <= f->scratch_size; i++)
		len = i * stride + osz;
	memset(f->scratch, 0, len);
	for (i = 0; i < j->nr_ops && i * stride + osz <= len; i++)
		memcpy(f->scratch + i * stride, &j->ops[i], osz);
	j->op_tail = -1;
	if (stride > osz && j->nr_ops && one_in(r, 3)) {
		size_t k = below(r, j->nr_ops) * stride + osz +
			   below(r, stride - osz);

		if (k < f->scratch_size) {
			if (k >= len) {
				memset(f->scratch + len, 0, k + 1 - len);
				len = k + 1;
			}
			f->scratch[k] = 1 + below(r, 255);
			j->op_tail = k / stride;
			j->must_fail = true;
		}
	}
	/* Sometimes in the very slots the batch edits. */
	if (j->nr_ops && j->ops[0].dst < WIN && one_in(r, 4))
		f->want_slot = j->ops[0].dst;
	j->buf = place(f, pick_where(f, j->tame), f->scratch, len,
		       sat_mul(a->count, op_size), &j->at_buf);
	a->ops = (uintptr_t)j->buf;
}

static void pick_fd(struct fz *f, struct job *j)
{
	struct rng *r = &f->rng;
	unsigned int x = below(r, 100);

	j->maybe_closed = false;
	if (j->tame || x < 90) {
		j->fd = f->w->fd;
		j->fd_name = "fd";
	} else if (x < 96) {
		/* A dup another step may have closed: EBADF is fine there. */
		j->fd = DUP_BASE + below(r, NR_DUP);
		j->fd_name = "dup";
		j->maybe_closed = true;
	} else {
		j->fd = f->w->fd2;
		j->fd_name = "fd2";
	}
}

/* An address for UPAGE_QUERY_BY_ADDR: in a mapping of a space or not. */
static uint64_t pick_addr(struct fz *f)
{
	struct rng *r = &f->rng;
	struct world *w = f->w;
	unsigned int k;
	unsigned char *p;
	size_t len;

	switch (below(r, 10)) {
	case 4:
	case 5:
		k = below(r, NR_WIN);
		p = atomic_load(&w->win[k].addr);
		len = atomic_load(&w->win[k].len);
		if (!p || !len)
			return (uintptr_t)w->region + k * 2 * WIN * PAGE +
			       below(r, 2 * WIN * PAGE);
		return (uintptr_t)p + below(r, len);
	case 6:
		return (uintptr_t)w->hole;
	case 7:
		return (uintptr_t)f->arena;
	case 8:
		return (uintptr_t)w->core_win + WIN * PAGE;	/* its guard */
	case 9:
		return ONE_OF(r, 0, UINT64_MAX, 0xffffffff81000000ULL,
			      1ULL << 47);
	default:
		return (uintptr_t)w->core_win + below(r, WIN) * PAGE +
		       below(r, PAGE);
	}
}

/* Fill @len bytes of scratch with @byte, or random bytes when @byte < 0. */
static void fill_scratch(struct fz *f, size_t len, int byte)
{
	size_t i;

	if (len > f->scratch_size)
		len = f->scratch_size;
	if (byte >= 0) {
		memset(f->scratch, byte, len);
		return;
	}
	for (i = 0; i + 8 <= len; i += 8) {
		uint64_t v = rnd(&f->rng);

		memcpy(f->scratch + i, &v, 8);
	}
	memset(f->scratch + i, 0x5c, len - i);
}

/* An output buffer of @room bytes, filled with garbage first. */
static void *place_out(struct fz *f, struct job *j, size_t room)
{
	size_t len = room < (64 << 10) ? room : 64 << 10;

	fill_scratch(f, len, 0xa5);
	j->buf = place(f, pick_where(f, j->tame), f->scratch, len, room,
		       &j->at_buf);
	return j->buf;
}

static void build_query(struct fz *f, struct job *j, uint64_t size)
{
	struct upage_query *a = &j->u.query;
	struct rng *r = &f->rng;

	a->flags = below(r, 4) ? 0 : UPAGE_QUERY_BY_ADDR;
	if (!j->tame && one_in(r, 6))
		a->flags = pick_flags(f, UPAGE_QUERY_FLAGS_ALL, false,
				      &j->must_fail);
	if (a->flags & UPAGE_QUERY_BY_ADDR) {
		a->first = pick_addr(f);
		a->n = below(r, 4) ? 1 + below(r, 4) : pick_num(f, size);
		if (!a->n)
			j->must_fail = true;
	} else {
		pick_range(f, size, j->tame, &a->first, &a->n);
		if (impossible(f->w, a->first, a->n))
			j->must_fail = true;
	}
	a->info_size = sizeof(struct upage_slot_info);
	if (!j->tame) {
		switch (below(r, 12)) {
		case 0:
			a->info_size = 0;
			break;
		case 1:
			a->info_size = 1 + below(r, sizeof(struct upage_slot_info) - 1);
			break;
		case 2:
			a->info_size = sizeof(struct upage_slot_info) + 8 * (1 + below(r, 8));
			break;
		case 3:
			a->info_size = PAGE;
			break;
		case 4:
			a->info_size = UINT32_MAX - below(r, 2);
			break;
		}
	}
	if (a->info_size < sizeof(struct upage_slot_info))
		j->must_fail = true;
	a->__reserved = pick_reserved(f, j->tame, &j->must_fail);
	a->out_slot = rnd(r);
	a->info = (uintptr_t)place_out(f, j, sat_mul(a->n, a->info_size));
}

static void build_residency(struct fz *f, struct job *j, uint64_t size)
{
	struct upage_residency *a = &j->u.res;
	struct rng *r = &f->rng;

	a->flags = pick_flags(f, UPAGE_RES_FLAGS_ALL, j->tame, &j->must_fail);
	a->op = UPAGE_RES_EVICT + below(r, 5);
	if (!j->tame && one_in(r, 8)) {
		a->op = ONE_OF(r, 0, UPAGE_RES_LAZY_FREE + 1, UINT32_MAX,
			       (uint32_t)rnd(r) | 8);
		j->must_fail = true;
	}
	/* UPAGE_RES_POPULATE belongs to PREFETCH: EINVAL with another op. */
	if ((a->flags & UPAGE_RES_POPULATE) && a->op != UPAGE_RES_PREFETCH)
		j->must_fail = true;
	a->__reserved = pick_reserved(f, j->tame, &j->must_fail);
	pick_range(f, size, j->tame, &a->first, &a->n);
	if (impossible(f->w, a->first, a->n))
		j->must_fail = true;
	a->out_frames = rnd(r);
}

static void build_store(struct fz *f, struct job *j)
{
	struct upage_store *a = &j->u.store;
	struct world *w = f->w;
	struct rng *r = &f->rng;
	uint64_t span = w->max_pages * PAGE;

	a->flags = pick_flags(f, UPAGE_STORE_FLAGS_ALL, j->tame, &j->must_fail);
	a->__reserved = pick_reserved(f, j->tame, &j->must_fail);
	switch (below(r, j->tame ? 8 : 16)) {
	case 5:
		a->fd = -1;
		j->store_fd = "own";
		break;
	case 6:
	case 7:
		/* The I/O memfd is a store only when that may hang. */
		if (w->avoid & AVOID_STORE_IO) {
			a->fd = w->memfd;
			j->store_fd = "memfd";
		} else {
			a->fd = w->iofd;
			j->store_fd = "iofd";
		}
		break;
	case 8:
		a->fd = w->ro_fd;
		j->store_fd = "read-only";
		break;
	case 9:
		a->fd = w->append_fd;
		j->store_fd = "append";
		break;
	case 10:
		a->fd = w->dir_fd;
		j->store_fd = "dir";
		break;
	case 11:
		a->fd = w->null_fd;
		j->store_fd = "/dev/null";
		break;
	case 12:
		a->fd = w->fd;
		j->store_fd = "the space";
		break;
	case 13:
		a->fd = w->fd2;
		j->store_fd = "another space";
		break;
	case 14:
		a->fd = w->pipe[0];
		j->store_fd = "pipe";
		break;
	case 15:
		a->fd = (int32_t)ONE_OF(r, -2, INT_MAX, INT_MIN,
				       DUP_BASE + NR_DUP + 7);
		j->store_fd = "bad";
		break;
	default:
		a->fd = w->memfd;
		j->store_fd = "memfd";
		break;
	}
	switch (below(r, j->tame ? 4 : 12)) {
	case 0:
	case 1:
		a->offset = below(r, 64) * PAGE;
		break;
	case 4:
		a->offset = 1 + below(r, PAGE - 1);
		j->must_fail = true;
		break;
	case 5:
		a->offset = (UINT64_MAX & ~(PAGE - 1)) - below(r, 2) * PAGE;
		j->must_fail = true;	/* past any file size limit */
		break;
	case 6:
		/* The largest space just fits before LLONG_MAX, or just not. */
		a->offset = ((LLONG_MAX - span) & ~(PAGE - 1)) +
			    below(r, 2) * PAGE;
		break;
	case 7:
		a->offset = 1ULL << (40 + below(r, 24));
		break;
	default:
		a->offset = 0;
		break;
	}
	if (a->offset > LLONG_MAX)
		j->must_fail = true;
}

static void build_trap(struct fz *f, struct job *j, uint64_t size)
{
	struct upage_trap *a = &j->u.trap;
	struct rng *r = &f->rng;
	bool with_timeout;

	a->flags = j->tame ? (one_in(r, 3) ? UPAGE_TRAP_SET_TIMEOUT : 0) :
			     pick_flags(f, UPAGE_TRAP_FLAGS_ALL, false,
					&j->must_fail);
	with_timeout = a->flags & UPAGE_TRAP_SET_TIMEOUT;
	a->access = below(r, 4);
	if (!j->tame && one_in(r, 10)) {
		a->access = (uint32_t)rnd(r) | 4U << below(r, 29);
		j->must_fail = true;
	}
	pick_range(f, size, j->tame, &a->first, &a->n);
	if (one_in(r, 6))
		a->n = 0;
	if (with_timeout)
		a->timeout_ms = ONE_OF(r, 0, 1, f->w->trap_ms,
				       below(r, 1000), UINT32_MAX);
	else if (!j->tame && one_in(r, 8))
		a->timeout_ms = 1 + below(r, 1000);
	/* A timeout needs its flag; n == 0 is only for the flag. */
	if ((a->timeout_ms && !with_timeout) || (!a->n && !with_timeout) ||
	    (a->n && impossible(f->w, a->first, a->n)))
		j->must_fail = true;
}

static void build_resolve(struct fz *f, struct job *j, uint64_t size)
{
	struct upage_resolve *a = &j->u.resolve;
	struct rng *r = &f->rng;
	size_t room;

	a->flags = pick_flags(f, UPAGE_RESOLVE_FLAGS_ALL, j->tame,
			      &j->must_fail);
	a->action = UPAGE_RESOLVE_MAP + below(r, 4);
	if (!j->tame && one_in(r, 8)) {
		a->action = ONE_OF(r, 0, UPAGE_RESOLVE_SIGBUS + 1, UINT32_MAX);
		j->must_fail = true;
	}
	a->__reserved = pick_reserved(f, j->tame, &j->must_fail);
	pick_range(f, size, j->tame, &a->first, &a->n);
	if (impossible(f->w, a->first, a->n))
		j->must_fail = true;
	a->out_woken = rnd(r);
	if (a->action != UPAGE_RESOLVE_COPY) {
		/* A source is for COPY only. */
		if (!j->tame && one_in(r, 10)) {
			a->src = (uintptr_t)f->arena;
			j->must_fail = true;
		}
		return;
	}
	if (!j->tame && one_in(r, 10)) {
		j->must_fail = true;	/* COPY without a source */
		return;
	}
	if (f->core && a->first < WIN && one_in(r, 5)) {
		/*
		 * The source is the very slot being filled: a hole, trapped
		 * perhaps; reading it faults on the trap being resolved.
		 */
		j->buf = f->w->core_win + a->first * PAGE;
		j->at_buf.wh = W_SPACE;
		j->at_buf.slot = a->first;
		j->at_buf.state = "itself";
	} else {
		room = sat_mul(a->n, PAGE);
		fill_scratch(f, room < (64 << 10) ? room : 64 << 10, -1);
		j->buf = place(f, pick_where(f, j->tame), f->scratch,
			       room < (64 << 10) ? room : 64 << 10, room,
			       &j->at_buf);
	}
	a->src = (uintptr_t)j->buf;
}

static void build(struct fz *f, struct job *j, uint64_t size)
{
	struct rng *r = &f->rng;
	union args *u = &j->u;
	uint64_t words;

	switch (j->ic->nr) {
	case UPAGE_CMD_API:
		u->api.flags = pick_flags(f, 0, j->tame, &j->must_fail);
		u->api.out_version = (uint32_t)rnd(r);
		u->api.out_features = rnd(r);
		break;
	case UPAGE_CMD_RESIZE:
		u->resize.flags = pick_flags(f, 0, j->tame, &j->must_fail);
		switch (below(r, 14)) {
		case 0:
			u->resize.pages = 0;
			break;
		case 1:
			u->resize.pages = f->w->max_pages;
			break;
		case 2:
			u->resize.pages = f->w->max_pages + 1;
			break;
		case 3:
			u->resize.pages = f->w->max_pages - 1;
			break;
		case 4:
			u->resize.pages = UINT64_MAX - below(r, 2);
			break;
		case 5:
			u->resize.pages = 1ULL << (32 + below(r, 31));
			break;
		case 6:
			u->resize.pages = SLOTS * (1 + below(r, 64));
			break;
		case 7:
		case 8:
		case 9:
			/*
			 * Tiny: a batch then changes more slots than there
			 * are, which is what sizes the batch's logs.
			 */
			u->resize.pages = 1 + below(r, 8);
			break;
		default:
			u->resize.pages = below(r, SLOTS + 16);
			break;
		}
		u->resize.out_old_pages = rnd(r);
		j->big_left = 1 + below(r, 8);
		break;
	case UPAGE_CMD_EDIT:
		build_edit(f, j, size);
		break;
	case UPAGE_CMD_QUERY:
		build_query(f, j, size);
		break;
	case UPAGE_CMD_STATS:
		u->stats.flags = pick_flags(f, 0, j->tame, &j->must_fail);
		u->stats.out_pages = rnd(r);
		break;
	case UPAGE_CMD_RESIDENCY:
		build_residency(f, j, size);
		break;
	case UPAGE_CMD_STORE:
		build_store(f, j);
		break;
	case UPAGE_CMD_TRACK:
		u->track.flags = pick_flags(f, 0, j->tame, &j->must_fail);
		u->track.op = UPAGE_TRACK_START + below(r, 2);
		if (!j->tame && one_in(r, 8)) {
			u->track.op = ONE_OF(r, 0, 3, UINT32_MAX);
			j->must_fail = true;
		}
		u->track.__reserved = pick_reserved(f, j->tame, &j->must_fail);
		pick_range(f, size, j->tame, &u->track.first, &u->track.n);
		if (impossible(f->w, u->track.first, u->track.n))
			j->must_fail = true;
		break;
	case UPAGE_CMD_DIRTY:
		u->dirty.flags = pick_flags(f, UPAGE_DIRTY_FLAGS_ALL, j->tame,
					    &j->must_fail);
		pick_range(f, size, j->tame, &u->dirty.first, &u->dirty.n);
		if (impossible(f->w, u->dirty.first, u->dirty.n))
			j->must_fail = true;
		u->dirty.out_dirty = rnd(r);
		words = u->dirty.n / 64 + !!(u->dirty.n % 64);
		u->dirty.bitmap = (uintptr_t)place_out(f, j, sat_mul(words, 8));
		break;
	case UPAGE_CMD_TRAP:
		build_trap(f, j, size);
		break;
	case UPAGE_CMD_RESOLVE:
		build_resolve(f, j, size);
		break;
	}
}

static void describe(struct fz *f, const struct job *j)
{
	const union args *u = &j->u;

	dstart(f);
	dadd(f, "UPAGE_%s %s size=%u", j->ic->name, j->fd_name, j->size);
	if (j->tail >= 0)
		dadd(f, " tail@%ld", j->tail);
	switch (j->ic->nr) {
	case UPAGE_CMD_API:
		dadd(f, " flags=%#x", u->api.flags);
		break;
	case UPAGE_CMD_RESIZE:
		dadd(f, " flags=%#x", u->resize.flags);
		dnum(f, "pages", u->resize.pages);
		break;
	case UPAGE_CMD_EDIT:
		dadd(f, " flags=%#x res=%#x op_size=%u count=%u",
		     u->edit.flags, u->edit.__reserved, u->edit.op_size,
		     u->edit.count);
		if (j->op_tail >= 0)
			dadd(f, " op-tail@%ld", j->op_tail);
		dat(f, "ops", &j->at_buf);
		dops(f, j->ops, j->nr_ops);
		break;
	case UPAGE_CMD_QUERY:
		dadd(f, " flags=%#x", u->query.flags);
		dnum(f, "first", u->query.first);
		dnum(f, "n", u->query.n);
		dadd(f, " info_size=%u res=%#x", u->query.info_size,
		     u->query.__reserved);
		dat(f, "info", &j->at_buf);
		break;
	case UPAGE_CMD_STATS:
		dadd(f, " flags=%#x", u->stats.flags);
		break;
	case UPAGE_CMD_RESIDENCY:
		dadd(f, " flags=%#x op=%u res=%#x", u->res.flags, u->res.op,
		     u->res.__reserved);
		dnum(f, "first", u->res.first);
		dnum(f, "n", u->res.n);
		break;
	case UPAGE_CMD_STORE:
		dadd(f, " flags=%#x fd=%d(%s) res=%#x", u->store.flags,
		     u->store.fd, j->store_fd, u->store.__reserved);
		dnum(f, "offset", u->store.offset);
		break;
	case UPAGE_CMD_TRACK:
		dadd(f, " flags=%#x op=%u res=%#x", u->track.flags,
		     u->track.op, u->track.__reserved);
		dnum(f, "first", u->track.first);
		dnum(f, "n", u->track.n);
		break;
	case UPAGE_CMD_DIRTY:
		dadd(f, " flags=%#x", u->dirty.flags);
		dnum(f, "first", u->dirty.first);
		dnum(f, "n", u->dirty.n);
		dat(f, "bitmap", &j->at_buf);
		break;
	case UPAGE_CMD_TRAP:
		dadd(f, " flags=%#x access=%#x timeout_ms=%u", u->trap.flags,
		     u->trap.access, u->trap.timeout_ms);
		dnum(f, "first", u->trap.first);
		dnum(f, "n", u->trap.n);
		break;
	case UPAGE_CMD_RESOLVE:
		dadd(f, " flags=%#x action=%u res=%#x", u->resolve.flags,
		     u->resolve.action, u->resolve.__reserved);
		dnum(f, "first", u->resolve.first);
		dnum(f, "n", u->resolve.n);
		if (u->resolve.src && j->buf)
			dat(f, "src", &j->at_buf);
		else if (u->resolve.src)
			dadd(f, " src=%#llx", (unsigned long long)u->resolve.src);
		break;
	}
	dat(f, "arg", &j->at_arg);
	if (j->must_fail)
		dadd(f, " (must fail)");
}

/* What a successful UPAGE_QUERY wrote: every entry well-formed. */
static void check_info(struct fz *f, const struct job *j)
{
	const struct upage_query *a = &j->u.query;
	const unsigned char *p = j->buf;
	const uint32_t known = UPAGE_SLOT_TRAP_WRITE * 2 - 1;
	const uint32_t framed = UPAGE_SLOT_RESIDENT | UPAGE_SLOT_COW |
				UPAGE_SLOT_EVICTED | UPAGE_SLOT_PINNED |
				UPAGE_SLOT_LAZY | UPAGE_SLOT_RECLAIMED;
	uint64_t i;
	size_t k;

	for (i = 0; i < a->n && i < 256; i++) {
		struct upage_slot_info e;
		size_t off = j->at_buf.off + i * a->info_size;

		if (off + a->info_size > f->arena_size)
			break;
		memcpy(&e, p + i * a->info_size, sizeof(e));
		if (e.__reserved || (e.state & ~known) ||
		    (e.prot != UPAGE_PROT_NONE && e.prot != UPAGE_PROT_READ &&
		     e.prot != UPAGE_PROT_RW) ||
		    !e.frame_id != !e.nr_aliases ||
		    (!e.frame_id && (e.pfn || (e.state & framed))) ||
		    ((e.state & UPAGE_SLOT_RESIDENT) &&
		     (e.state & UPAGE_SLOT_EVICTED))) {
			bad(f, "entry %llu: frame_id %llu pfn %#llx state %#x nr_aliases %u prot %u reserved %#x",
			    (unsigned long long)i,
			    (unsigned long long)e.frame_id,
			    (unsigned long long)e.pfn, e.state, e.nr_aliases,
			    e.prot, e.__reserved);
			return;
		}
		for (k = sizeof(e); k < a->info_size; k++) {
			if (p[i * a->info_size + k]) {
				bad(f, "entry %llu: byte %zu of its tail not cleared",
				    (unsigned long long)i, k);
				return;
			}
		}
	}
}

/* What a successful UPAGE_DIRTY wrote: out_dirty bits, none past n. */
static void check_bitmap(struct fz *f, const struct job *j, uint64_t out)
{
	const struct upage_dirty *a = &j->u.dirty;
	uint64_t i, words = a->n / 64 + !!(a->n % 64), bits = 0, v;

	if (j->at_buf.off + words * 8 > f->arena_size)
		return;
	for (i = 0; i < words; i++) {
		memcpy(&v, (unsigned char *)j->buf + i * 8, 8);
		if (i == words - 1 && a->n % 64 && (v >> (a->n % 64))) {
			bad(f, "bitmap: bits past n set (%#llx)",
			    (unsigned long long)v);
			return;
		}
		bits += __builtin_popcountll(v);
	}
	if (bits != out)
		bad(f, "out_dirty %llu but %llu bits set",
		    (unsigned long long)out, (unsigned long long)bits);
}

/* After the call: put back what the rest relies on, check what it said. */
static void after(struct fz *f, struct job *j, int err)
{
	struct world *w = f->w;
	union args o;
	bool whole = j->at_arg.wh == W_HEAP && j->at_arg.fits &&
		     j->size >= j->ic->size && j->size <= PAGE && j->tail < 0;

	if (j->ic->nr == UPAGE_CMD_TRAP &&
	    (j->u.trap.flags & UPAGE_TRAP_SET_TIMEOUT))
		h_safe_timeout(f, j->fd, j->maybe_closed);
	if (j->ic->nr == UPAGE_CMD_RESIZE && j->fd == w->fd &&
	    j->u.resize.pages <= w->max_pages) {
		/* What was asked, whatever came of it: draws stay seeded. */
		atomic_store(&w->size, j->u.resize.pages);
		f->big_left = j->u.resize.pages > 4096 ? j->big_left : 0;
	}
	if (!whole)
		return;
	memcpy(&o, j->arg, j->ic->size);
	if (j->ic->nr == UPAGE_CMD_EDIT && err && err != EBADF &&
	    o.edit.out_error_index != UINT32_MAX &&
	    o.edit.out_error_index >= j->u.edit.count)
		bad(f, "out_error_index %u of %u ops", o.edit.out_error_index,
		    j->u.edit.count);
	if (err)
		return;
	switch (j->ic->nr) {
	case UPAGE_CMD_API:
		if (o.api.out_version != UPAGE_API_VERSION ||
		    o.api.out_page_size != PAGE ||
		    o.api.out_max_pages != w->max_pages)
			bad(f, "API says version %u page size %u max pages %llu",
			    o.api.out_version, o.api.out_page_size,
			    (unsigned long long)o.api.out_max_pages);
		break;
	case UPAGE_CMD_RESIZE:
		if (o.resize.out_old_pages > w->max_pages)
			bad(f, "out_old_pages %llu",
			    (unsigned long long)o.resize.out_old_pages);
		break;
	case UPAGE_CMD_QUERY:
		if (!(j->u.query.flags & UPAGE_QUERY_BY_ADDR) &&
		    o.query.out_slot != j->u.query.first)
			bad(f, "out_slot %llu", (unsigned long long)o.query.out_slot);
		if (j->at_buf.wh == W_HEAP)
			check_info(f, j);
		break;
	case UPAGE_CMD_STATS:
		if (o.stats.out_pages > w->max_pages)
			bad(f, "out_pages %llu", (unsigned long long)o.stats.out_pages);
		break;
	case UPAGE_CMD_RESIDENCY:
		if (o.res.out_frames > j->u.res.n)
			bad(f, "out_frames %llu", (unsigned long long)o.res.out_frames);
		break;
	case UPAGE_CMD_DIRTY:
		if (j->at_buf.wh == W_HEAP)
			check_bitmap(f, j, o.dirty.out_dirty);
		break;
	}
}

/*
 * The errnos the UAPI documents for one kind of argument only: ENOENT for
 * an address, EBUSY for an eviction or a ZERO resolve, EEXIST for COPY.
 */
static bool errno_fits(const struct job *j, int err)
{
	const union args *u = &j->u;

	switch (j->ic->nr) {
	case UPAGE_CMD_QUERY:
		return err != ENOENT || (u->query.flags & UPAGE_QUERY_BY_ADDR);
	case UPAGE_CMD_RESIDENCY:
		return err != EBUSY || u->res.op == UPAGE_RES_EVICT;
	case UPAGE_CMD_RESOLVE:
		if (err == EEXIST)
			return u->resolve.action == UPAGE_RESOLVE_COPY;
		return err != EBUSY || u->resolve.action == UPAGE_RESOLVE_ZERO;
	}
	return true;
}

/* Which ioctl: batches most, then the ones with ranges and buffers. */
static int pick_ioctl(struct fz *f)
{
	static const unsigned char weight[NR_IOC] = {
		[UPAGE_CMD_API] = 1, [UPAGE_CMD_RESIZE] = 1,
		[UPAGE_CMD_EDIT] = 5, [UPAGE_CMD_QUERY] = 2,
		[UPAGE_CMD_STATS] = 1, [UPAGE_CMD_RESIDENCY] = 3,
		[UPAGE_CMD_STORE] = 1, [UPAGE_CMD_TRACK] = 1,
		[UPAGE_CMD_DIRTY] = 2, [UPAGE_CMD_TRAP] = 2,
		[UPAGE_CMD_RESOLVE] = 2,
	};
	unsigned int i, total = 0, x;

	for (i = 0; i < NR_IOC; i++)
		total += weight[i];
	x = below(&f->rng, total);
	for (i = 0; x >= weight[i]; i++)
		x -= weight[i];
	return i;
}

/* One fuzzed ioctl. */
static void fuzz_ioctl(struct fz *f)
{
	struct rng *r = &f->rng;
	unsigned char img[2 * PAGE + 64];
	struct job j;
	size_t len;
	enum where wh;
	int err;

	memset(&j, 0, sizeof(j));
	j.tail = j.op_tail = -1;
	arena_reset(f);
	j.ic = &iocs[f->force_nr >= 0 ? f->force_nr : pick_ioctl(f)];
	j.tame = f->force_nr < 0 && one_in(r, 2);
	pick_fd(f, &j);
	build(f, &j, atomic_load(&f->w->size));

	/* The struct itself, last: it holds the pointers placed above. */
	j.size = pick_size(f, j.ic, j.tame, sizeof(img), &j.tail);
	if (j.size < j.ic->min)
		j.must_fail = true;
	memset(img, 0, sizeof(img));
	memcpy(img, &j.u, j.ic->size);
	memcpy(img, &j.size, sizeof(j.size));
	if (j.tail >= 0) {
		img[j.tail] = 1 + below(r, 255);
		j.must_fail = true;
	}
	len = j.size < sizeof(img) ? j.size : sizeof(img);
	if (len < j.ic->size)
		len = j.ic->size;	/* bytes past size: ignored */
	wh = f->force_where >= 0 ? (enum where)f->force_where :
				   pick_where(f, j.tame);
	j.arg = place(f, wh, img, len, j.size > 4 ? j.size : 4, &j.at_arg);
	/*
	 * Bytes in the space may not stay as written: a discarded or
	 * reclaimed slot reads zeros, other threads write there.
	 */
	if (j.at_arg.wh == W_SPACE || j.at_buf.wh == W_SPACE)
		j.must_fail = false;
	describe(f, &j);
	err = call(f, j.fd, j.ic, j.arg, j.must_fail, j.maybe_closed);
	if (j.at_arg.wh != W_SPACE && !errno_fits(&j, err))
		bad(f, "UPAGE_%s returned %s, which its UAPI gives only for other arguments",
		    j.ic->name, errname(err));
	after(f, &j, err);
}

/* An ioctl number the module does not have: ENOTTY, whatever the argument. */
static void unknown_ioctl(struct fz *f)
{
	/* No type the VFS handles itself (0x00, 'T', 'f', 'X', 0x94). */
	static const unsigned int types[] = { 0xBB, 'u', 0xB9, 0x01 };
	struct rng *r = &f->rng;
	struct upage_api api = { .size = sizeof(api) };
	unsigned long cmd;
	struct at at;
	void *arg;
	int err;

	arena_reset(f);
	switch (below(r, 5)) {
	case 0:
	case 1:
		cmd = _IO(UPAGE_TYPE, NR_IOC + below(r, 256 - NR_IOC));
		break;
	case 2:
		cmd = _IO(types[below(r, ARRAY_SIZE(types))], below(r, 256));
		break;
	case 3:
		/* A known number with direction and size bits. */
		cmd = _IOWR(UPAGE_TYPE, below(r, NR_IOC), struct upage_api);
		break;
	default:
		cmd = _IOC(1 + below(r, 3), UPAGE_TYPE, below(r, NR_IOC),
			   1 + below(r, 256));
		break;
	}
	arg = place(f, pick_where(f, false), &api, sizeof(api), sizeof(api), &at);
	dstart(f);
	dadd(f, "ioctl %#lx", cmd);
	dat(f, "arg", &at);
	f->calls++;
	trace_call(f);
	err = ioctl(f->w->fd, cmd, arg) < 0 ? errno : 0;
	count(f->w, IOC_OTHER, err);
	if (err != ENOTTY)
		bad(f, "an unknown ioctl returned %s, not ENOTTY", errname(err));
}

/* read(2) of trap events, into any kind of buffer; also poll(2). */
static void read_events(struct fz *f)
{
	static const size_t lens[] = {
		0, 1, 31, 32, 33, 64, 32 * 64, 32 * 64 + 16, PAGE, 4 * PAGE,
		1U << 30,
	};
	const size_t ev = sizeof(struct upage_trap_event);
	struct rng *r = &f->rng;
	struct pollfd pfd = { .fd = f->w->fd, .events = POLLIN };
	size_t len = lens[below(r, ARRAY_SIZE(lens))], i;
	struct at at;
	ssize_t n;
	void *buf;
	int err;

	if (one_in(r, 4)) {
		/* Polling makes this process the handler, as reading does. */
		poll(&pfd, 1, 0);
		return;
	}
	arena_reset(f);
	fill_scratch(f, len < PAGE ? len : PAGE, 0xa5);
	buf = place(f, pick_where(f, false), f->scratch,
		    len < PAGE ? len : PAGE, len, &at);
	dstart(f);
	dadd(f, "read len=%zu", len);
	dat(f, "buf", &at);
	f->calls++;
	trace_call(f);
	atomic_store(&f->t0, now_ms());
	n = read(f->w->fd, buf, len);
	end(f);
	err = n < 0 ? errno : 0;
	count(f->w, IOC_READ, err);
	if (n < 0) {
		if (err != EAGAIN && err != EINVAL && err != EFAULT &&
		    err != EINTR && err != ENOMEM)
			bad(f, "read returned %s", errname(err));
		return;
	}
	if (len < ev || (size_t)n > len || n % ev) {
		bad(f, "read returned %zd", n);
		return;
	}
	for (i = 0; at.wh == W_HEAP && i < (size_t)n / ev; i++) {
		struct upage_trap_event e;

		memcpy(&e, (unsigned char *)buf + i * ev, ev);
		if ((e.access != UPAGE_TRAP_READ &&
		     e.access != UPAGE_TRAP_WRITE) || e.flags || e.__reserved)
			bad(f, "event %zu: access %u flags %#x reserved %#x", i,
			    e.access, e.flags, e.__reserved);
	}
}

/* ---- what the other threads (and the core, now and then) do ---- */

/* Map @len bytes of nothing at @p: the region keeps its hold there. */
static void reserve(void *p, size_t len)
{
	mmap(p, len, PROT_NONE,
	     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
}

/* Touch a few addresses of the core's window or of the region. */
static void touch_step(struct fz *f)
{
	struct rng *r = &f->rng;
	struct world *w = f->w;
	unsigned int i, nr = 1 + below(r, 8), k = below(r, NR_WIN + 3);

	for (i = 0; i < nr; i++) {
		unsigned int kind = below(r, 4);
		struct win *wi;
		unsigned char *a;
		size_t len, at;
		bool locked;

		if (k >= NR_WIN) {
			touch(f, w->core_win + below(r, WIN * PAGE), kind);
			continue;
		}
		/* A write holds the window, so that it lands in a space. */
		/* Draws never depend on results: replays stay replays. */
		at = rnd(r);
		wi = &w->win[k];
		locked = kind && !pthread_rwlock_tryrdlock(&wi->lock);
		a = atomic_load(&wi->addr);
		len = atomic_load(&wi->len);
		if (a && len) {
			at %= len;
		} else {
			a = w->region + k * 2 * WIN * PAGE;
			at %= 2 * WIN * PAGE;
		}
		touch(f, a + at, locked ? kind : 0);
		if (locked)
			pthread_rwlock_unlock(&wi->lock);
	}
}

static void map_step(struct fz *f)
{
	static const int advice[] = {
		MADV_DONTNEED, MADV_PAGEOUT, MADV_COLD, MADV_WILLNEED,
		MADV_POPULATE_READ, MADV_POPULATE_WRITE, MADV_REMOVE, MADV_FREE,
		MADV_RANDOM, MADV_SEQUENTIAL, MADV_NORMAL, MADV_DONTFORK,
		MADV_DOFORK, MADV_WIPEONFORK, MADV_HUGEPAGE, MADV_DONTDUMP,
	};
	struct rng *r = &f->rng;
	struct world *w = f->w;
	unsigned int k = below(r, NR_WIN), x = below(r, 12);
	struct win *wi = &w->win[k];
	unsigned char *base = w->region + k * 2 * WIN * PAGE, *a, *to, *p;
	size_t len, newlen, part, plen;
	uint64_t off, pages;
	int fd, prot, flags;
	uint64_t d[8];
	unsigned int i;

	/* Every draw first: what follows depends on the window's state. */
	for (i = 0; i < ARRAY_SIZE(d); i++)
		d[i] = rnd(r);
	if (pthread_rwlock_trywrlock(&wi->lock))
		return;
	a = atomic_load(&wi->addr);
	len = atomic_load(&wi->len);
	part = a ? d[0] % (len / PAGE) * PAGE : 0;
	plen = a ? (1 + d[1] % ((len - part) / PAGE)) * PAGE : 0;
	newlen = (1 + d[2] % (a && x == 7 ? len / PAGE : WIN)) * PAGE;
	dstart(f);
	switch (a ? x : 0) {
	case 0:
	case 1:
	case 2:
	case 3:
		pages = 1 + d[0] % WIN;
		off = d[1] % (SLOTS + 8);
		if (d[2] % 10 == 0)
			off = NTH_OF(d[3], w->max_pages - pages, w->max_pages,
				     w->max_pages + 1 - pages, UINT64_MAX >> 12);
		fd = d[4] % 8 == 0 ? DUP_BASE + (int)(d[5] % NR_DUP) :
		     d[4] % 10 == 1 ? w->fd2 : w->fd;
		prot = d[5] % 5 == 1 ? PROT_READ : PROT_READ | PROT_WRITE;
		flags = (d[6] % 4 == 0 ? MAP_PRIVATE : MAP_SHARED) | MAP_FIXED |
			(d[6] % 6 == 1 ? MAP_POPULATE : 0);
		to = base + d[7] % 2 * WIN * PAGE;
		reserve(base, 2 * WIN * PAGE);
		dadd(f, "mmap win%u pages=%llu off=%#llx fd=%d prot=%d flags=%#x",
		     k, (unsigned long long)pages, (unsigned long long)off, fd,
		     prot, flags);
		begin(f);
		p = mmap(to, pages * PAGE, prot, flags, fd, off * PAGE);
		end(f);
		if (p == MAP_FAILED) {
			/* A failed MAP_FIXED may have unmapped the range. */
			reserve(base, 2 * WIN * PAGE);
			atomic_store(&wi->addr, NULL);
		} else {
			atomic_store(&wi->len, pages * PAGE);
			atomic_store(&wi->addr, to);
		}
		break;
	case 4:
		reserve(a, len);
		atomic_store(&wi->addr, NULL);
		break;
	case 5:
		mprotect(a + part, plen, NTH_OF(d[3], PROT_NONE, PROT_READ,
						PROT_READ | PROT_WRITE));
		break;
	case 6:
		/* Move to the other half, maybe growing, maybe leaving a copy. */
		to = a == base ? base + WIN * PAGE : base;
		flags = MREMAP_MAYMOVE | MREMAP_FIXED;
		if (d[3] % 2)
			newlen = len;
		if (newlen == len && d[4] % 2)
			flags |= MREMAP_DONTUNMAP;
		dadd(f, "mremap win%u %zu -> %zu flags=%#x", k, len, newlen,
		     flags);
		begin(f);
		p = mremap(a, len, newlen, flags, to);
		end(f);
		if (p == MAP_FAILED) {
			reserve(to, WIN * PAGE);
		} else {
			reserve(a, len);
			atomic_store(&wi->len, newlen);
			atomic_store(&wi->addr, to);
		}
		break;
	case 7:
		if (newlen < len && mremap(a, len, newlen, 0) != MAP_FAILED) {
			reserve(a + newlen, len - newlen);
			atomic_store(&wi->len, newlen);
		}
		break;
	case 8:
	case 9:
		x = d[3] % ARRAY_SIZE(advice);
		dadd(f, "madvise win%u +%zu len=%zu advice=%d", k, part, plen,
		     advice[x]);
		begin(f);
		madvise(a + part, plen, advice[x]);
		end(f);
		break;
	case 10:
		dadd(f, "mlock win%u +%zu len=%zu", k, part, plen);
		begin(f);
		if (d[3] % 2)
			mlock(a + part, plen);
		else
			mlock2(a + part, plen, MLOCK_ONFAULT);
		end(f);
		munlock(a, len);
		break;
	case 11:
		dadd(f, "msync win%u", k);
		begin(f);
		msync(a, len, NTH_OF(d[3], MS_SYNC, MS_ASYNC, MS_INVALIDATE));
		end(f);
		break;
	}
	pthread_rwlock_unlock(&wi->lock);
}

static void resize_step(struct fz *f)
{
	struct rng *r = &f->rng;
	uint64_t pages = below(r, 3) ? below(r, SLOTS + 16) :
		ONE_OF(r, 0, 1, 2, 3, 5, 8, SLOTS * 4, WIN);

	h_resize(f, pages);
	atomic_store(&f->w->size, pages);
}

/* Drain what vmsplice() left in the pipe: its page references go. */
static void drain_splice(struct fz *f)
{
	ssize_t n;

	do {
		n = read(f->w->splice[0], f->scratch,
			 f->scratch_size < (64 << 10) ? f->scratch_size : 64 << 10);
	} while (n > 0);
	f->spliced = 0;
}

/* I/O system calls whose buffers lie in the space. */
static void io_step(struct fz *f)
{
	struct rng *r = &f->rng;
	struct world *w = f->w;
	uint64_t d[6], at, lr;
	unsigned int k = below(r, NR_WIN + 2), x = below(r, 14), i;
	struct win *wi = NULL;
	unsigned char *buf, *a;
	size_t len, room, alen;
	struct iovec local, remote;
	int store = w->avoid & AVOID_STORE_IO ? w->iofd : w->memfd;
	off_t off = below(r, 64) * PAGE + (one_in(r, 4) ? below(r, PAGE) : 0);
	ssize_t n;

	/* Every draw first: what follows depends on the windows' state. */
	at = rnd(r);
	lr = rnd(r);
	for (i = 0; i < ARRAY_SIZE(d); i++)
		d[i] = rnd(r);
	if (k >= NR_WIN) {
		a = w->core_win;
		alen = WIN * PAGE;
	} else {
		wi = &w->win[k];
		if (pthread_rwlock_tryrdlock(&wi->lock))
			return;
		a = atomic_load(&wi->addr);
		alen = atomic_load(&wi->len);
		if (!a || !alen) {
			pthread_rwlock_unlock(&wi->lock);
			return;
		}
	}
	buf = a + at % alen;
	room = a + alen - buf;
	len = 1 + lr % (room < 3 * PAGE ? room : 3 * PAGE);
	local.iov_base = f->scratch;
	local.iov_len = len < f->scratch_size ? len : f->scratch_size;
	remote.iov_base = buf;
	remote.iov_len = local.iov_len;
	dstart(f);
	switch (x) {
	case 0:
		dadd(f, "pipe write+read len=%zu", len);
		begin(f);
		n = write(w->pipe[1], buf, len);
		if (n > 0)
			n = read(w->pipe[0], w->core_win + d[0] % (WIN * PAGE - n),
				 n);
		end(f);
		break;
	case 1:
		/*
		 * Any tmpfs file: lockdep's classes are per filesystem, so
		 * this and eviction to the store make one cycle.
		 */
		dadd(f, "pwrite iofd len=%zu off=%#lx", len, (long)off);
		begin(f);
		n = w->avoid & AVOID_STORE_IO ? write(w->pipe[1], buf, len) :
						pwrite(w->iofd, buf, len, off);
		end(f);
		break;
	case 2:
		dadd(f, "pread iofd len=%zu off=%#lx", len, (long)off);
		begin(f);
		n = pread(w->iofd, buf, len, off);
		end(f);
		break;
	case 3:
		/* The store file, from the space: see AVOID_STORE_IO. */
		dadd(f, "pwrite store len=%zu off=%#lx", len, (long)off);
		begin(f);
		n = w->avoid & AVOID_STORE_IO ? write(w->pipe[1], buf, len) :
						pwrite(store, buf, len, off);
		end(f);
		break;
	case 4:
		dadd(f, "pread store len=%zu off=%#lx", len, (long)off);
		begin(f);
		n = pread(store, buf, len, off);
		end(f);
		break;
	case 5:
	case 6:
		/* The pages stay referenced while in the pipe: edits see pins. */
		dadd(f, "vmsplice len=%zu", len);
		begin(f);
		n = vmsplice(w->splice[1], &remote, 1, SPLICE_F_NONBLOCK);
		end(f);
		if (n > 0)
			f->spliced += n;
		if (f->spliced > (32 << 10) || d[0] % 4 == 0)
			drain_splice(f);
		break;
	case 7:
		dadd(f, "process_vm_%s len=%zu", k & 1 ? "readv" : "writev",
		     local.iov_len);
		begin(f);
		if (k & 1)
			n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
		else
			n = process_vm_writev(getpid(), &local, 1, &remote, 1, 0);
		end(f);
		break;
	case 8:
		dadd(f, "getrandom len=%zu", len);
		begin(f);
		n = getrandom(buf, len, GRND_NONBLOCK);
		end(f);
		break;
	case 9:
		/* A store cut short reads back short: EIO, SIGBUS. */
		dadd(f, "ftruncate memfd");
		n = ftruncate(w->memfd, d[0] % 2 ? 0 : d[1] % 64 * PAGE);
		break;
	case 10:
		/* Through /proc/self/mem: a fault that may not wait. */
		dadd(f, "/proc/self/mem %s len=%zu", k & 1 ? "read" : "write",
		     local.iov_len);
		begin(f);
		if (k & 1)
			n = pread(w->mem_fd, f->scratch, local.iov_len,
				  (uintptr_t)buf);
		else
			n = pwrite(w->mem_fd, f->scratch, local.iov_len,
				   (uintptr_t)buf);
		end(f);
		break;
	case 11:
		/* O_DIRECT pins the pages of the buffer (FOLL_PIN). */
		buf = (unsigned char *)((uintptr_t)buf & ~(PAGE - 1));
		len = PAGE * (1 + d[0] % 2);
		if (w->direct_fd < 0 || buf + len > a + alen)
			break;
		dadd(f, "O_DIRECT %s len=%zu", k & 1 ? "pread" : "pwrite", len);
		begin(f);
		if (k & 1 || (w->avoid & AVOID_STORE_IO))
			n = pread(w->direct_fd, buf, len, off & ~(PAGE - 1));
		else
			n = pwrite(w->direct_fd, buf, len, off & ~(PAGE - 1));
		end(f);
		break;
	case 12:
		/* Every shrinker, the module's: lazy frames go, cold ones out. */
		if (d[0] % 8)
			break;
		dadd(f, "drop_caches");
		begin(f);
		n = write_param("/proc/sys/vm/drop_caches", 2 + d[1] % 2);
		end(f);
		break;
	default:
		drain_splice(f);
		n = 0;
		break;
	}
	(void)n;
	if (wi)
		pthread_rwlock_unlock(&wi->lock);
}

/* The state letter and the wait channel of a task, as one string. */
static const char *task_state(pid_t pid, const char *tid)
{
	static char out[96];
	char path[320], buf[512], *c;
	ssize_t n;
	int fd;

	snprintf(out, sizeof(out), "?");
	snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", pid, tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return out;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return out;
	buf[n] = '\0';
	c = strrchr(buf, ')');
	if (c && c[1])
		snprintf(out, sizeof(out), "state %c", c[2]);
	snprintf(path, sizeof(path), "/proc/%d/task/%s/wchan", pid, tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0) {
			buf[n] = '\0';
			snprintf(out + strlen(out), sizeof(out) - strlen(out),
				 " wchan %.60s", buf);
		}
	}
	return out;
}

/* Print the kernel stacks of the threads of @pid: where a hang is. */
static void dump_stacks(pid_t pid)
{
	char path[320], buf[4096], *line, *save;
	struct dirent *d;
	DIR *dir;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	dir = opendir(path);
	if (!dir)
		return;
	while ((d = readdir(dir))) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/stack", pid,
			 d->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n < 0)
			continue;
		buf[n] = '\0';
		say("task %s of %d: %s", d->d_name, pid,
		    task_state(pid, d->d_name));
		for (line = strtok_r(buf, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save))
			say("  %s", line);
	}
	closedir(dir);
}

/*
 * Wait for child @pid while it makes calls (@mirror, the call it is in,
 * changes), up to JOIN_MS after the last change and 4 * JOIN_MS in all:
 * its status, or -1 after printing what it was doing and where it
 * sleeps, and killing it. A slow host makes a child's calls slow, not
 * stuck.
 */
static int wait_child(pid_t pid, const char *mirror)
{
	char seen[sizeof(((struct fz *)0)->desc)];
	long t = now_ms(), last = t, cap = t + 4 * JOIN_MS;
	int status;

	memcpy(seen, mirror, sizeof(seen));
	do {
		pid_t got = waitpid(pid, &status, WNOHANG);

		if (got == pid)
			return status;
		if (got < 0)
			return -1;
		usleep(2000);
		t = now_ms();
		if (memcmp(seen, mirror, sizeof(seen))) {
			memcpy(seen, mirror, sizeof(seen));
			last = t;
		}
	} while (t < last + JOIN_MS && t < cap);
	say("child %d stuck in: %s", pid, mirror);
	dump_stacks(pid);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

/* A child: touches through the mappings it inherited, a few ioctls. */
static void child_run(struct fz *f, long until, unsigned int steps)
{
	struct world *w = f->w;
	int bad0 = atomic_load(&w->bad);
	unsigned int i;

	cur = f;
	f->role = "child";
	f->core = false;	/* its arena is the parent's: no space args */
	f->mirror = until ? w->mirror + sizeof(f->desc) : w->mirror;
	for (i = 0; steps ? i < steps : now_ms() < until; i++) {
		unsigned int x = below(&f->rng, 10);

		if (x < 6)
			touch_step(f);
		else if (x < 7)
			map_step(f);
		else
			fuzz_ioctl(f);
		if (until)
			usleep(below(&f->rng, 2000));
	}
	_exit(atomic_load(&w->bad) != bad0);
}

static void fork_step(struct fz *f)
{
	struct rng *r = &f->rng;
	unsigned int steps = 4 + below(r, 16);
	pid_t pid;
	int status;

	dstart(f);
	dadd(f, "fork: child of %u steps", steps);
	fflush(NULL);
	/* Whichever thread forks waits for the child before it goes on. */
	pid = upage_fork_child();
	if (pid < 0)
		return;
	if (pid == 0)
		child_run(f, 0, steps);
	begin(f);
	status = wait_child(pid, f->w->mirror);
	end(f);
	dstart(f);
	dadd(f, "fork: child of %u steps", steps);
	if (status < 0)
		bad(f, "a child did not exit (no new call in %d ms, or %d ms in all)",
		    JOIN_MS, 4 * JOIN_MS);
	else if (WIFEXITED(status) && WEXITSTATUS(status))
		bad(f, "a child failed (above)");
	else if (WIFSIGNALED(status))
		bad(f, "a child died of signal %d", WTERMSIG(status));
}

/* Descriptors of the space come and go; new spaces live and die. */
static void fd_step(struct fz *f)
{
	struct rng *r = &f->rng;
	struct world *w = f->w;
	int k = DUP_BASE + below(r, NR_DUP), fd;
	struct pollfd pfd = { .fd = w->fd, .events = POLLIN };
	size_t at = below(r, 4 * PAGE);
	unsigned char *p;

	switch (below(r, 8)) {
	case 0:
	case 1:
		dup2(w->fd, k);
		break;
	case 2:
		dup3(w->fd, k, O_CLOEXEC);
		break;
	case 3:
	case 4:
		/* Closing any descriptor ends the handler's watch (trap.c). */
		close(k);
		break;
	case 5:
		fork_step(f);
		break;
	case 6:
		poll(&pfd, 1, 0);
		break;
	case 7:
		/* A space closed while still mapped, then unmapped. */
		fd = upage_open(O_CLOEXEC | O_NONBLOCK);
		if (fd < 0)
			break;
		upage_resize(fd, 4, NULL);
		p = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED,
			 fd, 0);
		close(fd);
		if (p != MAP_FAILED) {
			touch(f, p + at, 1);
			munmap(p, 4 * PAGE);
		}
		break;
	}
}

/*
 * The most ops a batch may have, each over a whole space of 1024 slots:
 * 2^26 slot changes in one call, which ran for minutes holding the
 * space's lock (AVOID_BIG_BATCH).
 */
static void big_batch(struct fz *f)
{
	struct rng *r = &f->rng;
	struct upage_edit_op *ops = (struct upage_edit_op *)f->scratch;
	uint64_t size = 1024;
	uint32_t count = UPAGE_EDIT_MAX_OPS;
	unsigned int kind = below(r, 3), i;
	struct upage_edit e = {
		.size = sizeof(e), .op_size = sizeof(*ops), .count = count,
		.ops = (uintptr_t)ops,
	};

	h_resize(f, size);
	atomic_store(&f->w->size, size);
	f->big_left = 1 + below(r, 4);
	for (i = 0; i < count; i++) {
		struct upage_edit_op *o = &ops[i];

		memset(o, 0, sizeof(*o));
		switch (kind) {
		case 0:
			*o = (struct upage_edit_op){ .op = UPAGE_OP_PROTECT,
				.n = size, .prot = i & 1 ? UPAGE_PROT_RW :
							  UPAGE_PROT_NONE };
			break;
		case 1:
			*o = (struct upage_edit_op){ .op = UPAGE_OP_SWAP,
				.dst = 0, .src = size / 2, .n = size / 2 };
			break;
		default:
			*o = (struct upage_edit_op){ .op = UPAGE_OP_ALIAS_COW,
				.dst = i & 1 ? 0 : size / 2,
				.src = i & 1 ? size / 2 : 0, .n = size / 2 };
			break;
		}
	}
	dstart(f);
	dadd(f, "UPAGE_EDIT big batch: %u ops of kind %u over %llu slots",
	     count, kind, (unsigned long long)size);
	call(f, f->w->fd, &iocs[UPAGE_CMD_EDIT], &e, false, false);
}

/* ---- the core: the same sequence for a seed, alone or not ---- */

#define SWEEP (NR_IOC * SWEEP_SIZES * W_NR)

static void core_step(struct fz *f)
{
	struct rng *r = &f->rng;
	struct world *w = f->w;
	unsigned int x;

	if (f->big_left && !--f->big_left) {
		h_resize(f, SLOTS);
		atomic_store(&w->size, SLOTS);
	}
	/* Lift every trap now and then: alone, each access waits them out. */
	if (f->iter % 128 == 127)
		h_trap(f, 0, atomic_load(&w->size), 0);
	if (f->iter == f->big_at && !(w->avoid & AVOID_BIG_BATCH))
		big_batch(f);
	if (f->iter < SWEEP) {
		/* First every ioctl, every size class, every place for it. */
		f->force_nr = f->iter % NR_IOC;
		f->force_size = f->iter / NR_IOC % SWEEP_SIZES;
		f->force_where = f->iter / NR_IOC / SWEEP_SIZES % W_NR;
		fuzz_ioctl(f);
		f->force_nr = f->force_size = f->force_where = -1;
		return;
	}
	x = below(r, 1000);
	if (x < 700)
		fuzz_ioctl(f);
	else if (x < 740)
		read_events(f);
	else if (x < 755)
		unknown_ioctl(f);
	else if (x < 835)
		touch_step(f);
	else if (x < 875)
		map_step(f);
	else if (x < 915)
		io_step(f);
	else if (x < 950)
		fd_step(f);
	else
		resize_step(f);

}

static void core_run(struct fz *f, long until, uint64_t iters)
{
	struct world *w = f->w;

	cur = f;
	/* In a third of the runs, one big batch: it may take a while. */
	f->big_at = one_in(&f->rng, 3) ? f->iter + below(&f->rng, 2000) :
					 UINT64_MAX;
	while (!atomic_load(&w->stop)) {
		if (iters ? f->iter >= iters : now_ms() >= until)
			break;
		core_step(f);
		f->iter++;
	}
}

/* ---- threads ---- */

struct thread {
	pthread_t th;
	struct fz f;
	void (*step)(struct fz *f);
	unsigned int pause_us;	/* between steps, at most */
	bool started;
};

static void *chaos_main(void *arg)
{
	struct thread *t = arg;
	struct fz *f = &t->f;

	cur = f;
	f->tid = gettid();
	while (!atomic_load(&f->w->stop)) {
		t->step(f);
		f->iter++;
		if (t->pause_us)
			usleep(below(&f->rng, t->pause_us));
	}
	return NULL;
}

/* Answer the threads waiting on slots first..first+n-1, somehow. */
static void answer(struct fz *f, uint64_t first, uint64_t n)
{
	struct rng *r = &f->rng;
	unsigned int x = below(r, 20);
	struct upage_resolve a = {
		.size = sizeof(a), .first = first, .n = n,
		.action = x < 12 ? UPAGE_RESOLVE_MAP :
			  x < 15 ? UPAGE_RESOLVE_ZERO :
			  x < 18 ? UPAGE_RESOLVE_COPY : UPAGE_RESOLVE_SIGBUS,
		.flags = one_in(r, 3) ? UPAGE_RESOLVE_LIFT : 0,
	};

	if (a.action == UPAGE_RESOLVE_COPY)
		a.src = (uintptr_t)f->scratch;	/* n is 1: a page of it */
	dstart(f);
	dadd(f, "handler RESOLVE action=%u flags=%#x first=%llu", a.action,
	     a.flags, (unsigned long long)first);
	if (call(f, f->w->fd, &iocs[UPAGE_CMD_RESOLVE], &a, false, false) ==
	    EEXIST) {
		/* COPY needs a hole; the slot has a frame: show it. */
		a.action = UPAGE_RESOLVE_MAP;
		a.src = 0;
		call(f, f->w->fd, &iocs[UPAGE_CMD_RESOLVE], &a, false, false);
	}
}

/* The handler: reads events, answers them, and sweeps up stragglers. */
static void *handler_main(void *arg)
{
	struct thread *t = arg;
	struct fz *f = &t->f;
	struct world *w = f->w;
	const size_t ev_size = sizeof(struct upage_trap_event);
	struct upage_trap_event ev[16];
	long sweep = 0;

	cur = f;
	f->tid = gettid();
	fill_scratch(f, PAGE, -1);
	while (!atomic_load(&w->stop_handler)) {
		struct pollfd pfd = { .fd = w->fd, .events = POLLIN };
		uint64_t size;
		ssize_t n, i;

		poll(&pfd, 1, 20);
		n = read(w->fd, ev, sizeof(ev));
		count(w, IOC_READ, n < 0 ? errno : 0);
		dstart(f);
		dadd(f, "handler read");
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			bad(f, "read returned %s", errname(errno));
		if (n > 0 && n % ev_size)
			bad(f, "read returned %zd", n);
		for (i = 0; i < n / (ssize_t)ev_size; i++) {
			if ((ev[i].access != UPAGE_TRAP_READ &&
			     ev[i].access != UPAGE_TRAP_WRITE) || ev[i].flags ||
			    ev[i].__reserved)
				bad(f, "event: access %u flags %#x reserved %#x",
				    ev[i].access, ev[i].flags, ev[i].__reserved);
			answer(f, ev[i].slot, 1);
		}
		if (now_ms() - sweep < 100)
			continue;
		/* Events the core's read() took: answer every slot. */
		sweep = now_ms();
		size = atomic_load(&w->size);
		if (size) {
			struct upage_resolve a = {
				.size = sizeof(a), .action = UPAGE_RESOLVE_MAP,
				.n = size,
			};

			dstart(f);
			dadd(f, "handler RESOLVE sweep n=%llu",
			     (unsigned long long)size);
			call(f, w->fd, &iocs[UPAGE_CMD_RESOLVE], &a, false,
			     false);
		}
	}
	return NULL;
}

/*
 * A call hangs: show where (kernel stacks, every CPU's backtrace in the
 * kernel log), whether it spins on faults, then end the test rather than
 * wait for the harness's timeout.
 */
static void hang_report(struct world *w)
{
	struct upage_stats a = { .size = sizeof(a) }, b = { .size = sizeof(b) };
	int fd;

	dump_stacks(getpid());
	ioctl(w->fd, UPAGE_STATS, &a);
	usleep(200 * 1000);
	ioctl(w->fd, UPAGE_STATS, &b);
	say("faults served in 200 ms: %llu",
	    (unsigned long long)(b.out_faults - a.out_faults));
	fd = open("/proc/sysrq-trigger", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "l", 1) < 0)
			say("no sysrq");
		close(fd);
	}
	if (w->saved_total > 0)
		write_param(PARAM_TOTAL, w->saved_total);
	_exit(KSFT_FAIL);
}

/* Reports calls in flight for long: a hang names its call. */
static void *watchdog_main(void *arg)
{
	struct world *w = arg;

	while (!atomic_load(&w->stop_watchdog)) {
		int i, nr = atomic_load(&w->nr_fz);
		long now = now_ms();

		for (i = 0; i < nr && i < MAX_FZ; i++) {
			struct fz *f = w->fz[i];
			long t0;

			if (!f)
				continue;
			t0 = atomic_load(&f->t0);
			if (!t0 || now - t0 < SLOW_WARN_MS)
				continue;
			if (now - t0 > SLOW_FAIL_MS &&
			    atomic_exchange(&f->flagged, t0) != t0) {
				bad(f, "in flight for over %d ms", SLOW_FAIL_MS);
				hang_report(w);
			} else if (f->slow_seen != t0) {
				say("in flight for %ld ms: %s%d: %s", now - t0,
				    f->role, f->id, f->desc);
				kmsg(w, "upage-fuzz: in flight for %ld ms: %s%d: %.600s\n",
				     now - t0, f->role, f->id, f->desc);
			}
			f->slow_seen = t0;
		}
		usleep(250 * 1000);
	}
	return NULL;
}

static int join_within(pthread_t th, long ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	return pthread_timedjoin_np(th, NULL, &ts);
}

/* ---- the tests ---- */

FIXTURE(fuzz) {
	struct world *w;
	uint64_t seed;
	long seconds;
	uint64_t iters;
};

static long read_param(const char *path)
{
	char buf[32] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? strtol(buf, NULL, 10) : -1;
}

static int write_param(const char *path, long v)
{
	char buf[32];
	int fd = open(path, O_WRONLY | O_CLOEXEC), n, ret;

	if (fd < 0)
		return -errno;
	n = snprintf(buf, sizeof(buf), "%ld\n", v);
	ret = write(fd, buf, n) == n ? 0 : -EIO;
	close(fd);
	return ret;
}

static uint64_t env_num(const char *name, uint64_t def)
{
	const char *s = getenv(name);

	return s && *s ? strtoull(s, NULL, 0) : def;
}

static unsigned int env_avoid(void)
{
	const char *s = getenv("UPAGE_FUZZ_AVOID");
	unsigned int v = 0;

	if (!s)
		return 0;
	if (strstr(s, "edit-log"))
		v |= AVOID_EDIT_LOG;
	if (strstr(s, "store-io"))
		v |= AVOID_STORE_IO;
	if (strstr(s, "big-batch"))
		v |= AVOID_BIG_BATCH;
	if (strstr(s, "rmw"))
		v |= AVOID_RMW;
	if (strstr(s, "all"))
		v = ~0U;
	return v;
}

FIXTURE_SETUP(fuzz)
{
	const char *trace = getenv("UPAGE_FUZZ_TRACE");
	struct upage_api api;
	struct world *w;
	struct timespec ts;
	char path[64];
	unsigned char *p;
	int i;

	w = mmap(NULL, sizeof(*w), PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, w);
	self->w = w;
	w->fd = w->fd2 = w->memfd = w->iofd = w->ro_fd = w->append_fd = -1;
	w->dir_fd = w->null_fd = w->kmsg = w->mem_fd = w->direct_fd = -1;
	w->pipe[0] = w->pipe[1] = w->splice[0] = w->splice[1] = -1;
	w->saved_total = -1;
	w->fd = upage_open(O_CLOEXEC | O_NONBLOCK);
	if (w->fd == -ENOENT)
		SKIP(return, "/dev/upage missing: module not loaded");
	ASSERT_LE(0, w->fd);
	ASSERT_EQ(0, upage_api(w->fd, &api));
	w->max_pages = api.out_max_pages;
	w->ioctls = api.out_ioctls;
	w->avoid = env_avoid();
	w->trace = trace ? (!strcmp(trace, "kmsg") ? 2 : atoi(trace) > 0) : 0;
	w->kmsg = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
	if (w->trace == 2) {
		/* Every call, not the first few of each interval. */
		i = open("/proc/sys/kernel/printk_devkmsg", O_WRONLY | O_CLOEXEC);
		if (i >= 0 && write(i, "on\n", 3) != 3)
			say("printk_devkmsg stays rate-limited");
		if (i >= 0)
			close(i);
	}

	clock_gettime(CLOCK_REALTIME, &ts);
	self->seed = env_num("UPAGE_FUZZ_SEED",
			     (uint64_t)ts.tv_nsec * 2654435761ULL ^
			     (uint64_t)ts.tv_sec << 20 ^ getpid());
	self->seconds = env_num("UPAGE_FUZZ_SECONDS", DEFAULT_SECONDS);
	if (self->seconds < 3)
		self->seconds = 3;
	self->iters = env_num("UPAGE_FUZZ_ITERS", 0);

	/*
	 * Frames past this many are ENOSPC rather than an OOM kill of the
	 * guest: boundary sizes make whole-space ranges of a million slots.
	 */
	w->saved_total = read_param(PARAM_TOTAL);
	if (w->saved_total <= TOTAL_PAGES_CAP ||
	    write_param(PARAM_TOTAL, TOTAL_PAGES_CAP))
		w->saved_total = -1;

	ASSERT_EQ(0, upage_resize(w->fd, SLOTS, NULL));
	atomic_store(&w->size, SLOTS);
	p = mmap(NULL, (WIN + 1) * PAGE, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	w->core_win = mmap(p, WIN * PAGE, PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_FIXED, w->fd, 0);
	ASSERT_EQ(p, w->core_win);
	w->region = mmap(NULL, NR_WIN * 2 * WIN * PAGE, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ASSERT_NE(MAP_FAILED, w->region);
	for (i = 0; i < NR_WIN; i++)
		ASSERT_EQ(0, pthread_rwlock_init(&w->win[i].lock, NULL));
	/* A one-page hole between two reserved pages: nothing goes there. */
	p = mmap(NULL, 3 * PAGE, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, munmap(p + PAGE, PAGE));
	w->hole = p + PAGE;
	w->none = mmap(NULL, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	ASSERT_NE(MAP_FAILED, w->none);
	w->mirror = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, w->mirror);

	w->fd2 = upage_open(O_CLOEXEC | O_NONBLOCK);
	ASSERT_LE(0, w->fd2);
	ASSERT_EQ(0, upage_resize(w->fd2, 8, NULL));
	w->memfd = memfd_create("upage-fuzz-store", MFD_CLOEXEC);
	ASSERT_LE(0, w->memfd);
	w->iofd = memfd_create("upage-fuzz-io", MFD_CLOEXEC);
	ASSERT_LE(0, w->iofd);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", w->memfd);
	w->ro_fd = open(path, O_RDONLY | O_CLOEXEC);
	w->append_fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
	w->dir_fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	w->null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	w->mem_fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	/* tmpfs takes O_DIRECT since 6.6; without it, that step is skipped. */
	snprintf(path, sizeof(path), "/tmp/upage-fuzz-%d", getpid());
	w->direct_fd = open(path, O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0600);
	if (w->direct_fd >= 0) {
		unlink(path);
		if (ftruncate(w->direct_fd, 64 * PAGE))
			say("cannot size %s", path);
	}
	ASSERT_EQ(0, pipe2(w->pipe, O_NONBLOCK | O_CLOEXEC));
	ASSERT_EQ(0, pipe2(w->splice, O_NONBLOCK | O_CLOEXEC));
	catch_faults();
}

FIXTURE_TEARDOWN(fuzz)
{
	struct world *w = self->w;

	if (!w || w == MAP_FAILED)
		return;
	if (w->saved_total > 0)
		write_param(PARAM_TOTAL, w->saved_total);
}

/* Counts of each result, one line per call kind. */
static void summary(struct world *w)
{
	unsigned int i, k;

	for (i = 0; i < NR_IOC + 2; i++) {
		char line[512];
		int n = snprintf(line, sizeof(line), "%s:",
				 i < NR_IOC ? iocs[i].name :
				 i == IOC_READ ? "read" : "unknown ioctl");

		for (k = 0; k < NR_COUNTED && n < (int)sizeof(line) - 32; k++) {
			uint64_t c = atomic_load(&w->counts[i][k]);

			if (c)
				n += snprintf(line + n, sizeof(line) - n,
					      " %s=%llu",
					      k < ARRAY_SIZE(counted) ?
					      errname(counted[k]) : "other",
					      (unsigned long long)c);
		}
		say("%s", line);
	}
}

/*
 * One thread, everything drawn from the seed: a replay makes the same
 * calls. A third of the budget.
 */
TEST_F_TIMEOUT(fuzz, single_thread, 290)
{
	struct world *w = self->w;
	long start = now_ms(), budget = self->seconds * 1000 / 3;
	struct fz *core;
	pthread_t wd;

	core = mmap(NULL, sizeof(*core), PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, core);
	ASSERT_EQ(0, fz_init(core, w, "core", 0, self->seed, true));
	cur = core;
	w->trap_ms = TRAP_MS_SINGLE;
	h_safe_timeout(core, w->fd, false);
	h_safe_timeout(core, w->fd2, false);
	TH_LOG("seed %#llx (UPAGE_FUZZ_SEED=%#llx replays it), %s %llu%s",
	       (unsigned long long)self->seed,
	       (unsigned long long)self->seed,
	       self->iters ? "iterations" : "budget",
	       (unsigned long long)(self->iters ? self->iters : budget),
	       self->iters ? "" : " ms");
	kmsg(w, "upage-fuzz: single_thread seed %#llx\n",
	     (unsigned long long)self->seed);
	ASSERT_EQ(0, pthread_create(&wd, NULL, watchdog_main, w));
	core_run(core, start + (self->iters ? 250000 : budget), self->iters);
	atomic_store(&w->stop_watchdog, 1);
	pthread_join(wd, NULL);
	TH_LOG("seed %#llx: %llu iterations, %llu calls in %ld ms",
	       (unsigned long long)self->seed,
	       (unsigned long long)core->iter,
	       (unsigned long long)core->calls, now_ms() - start);
	say("longest call: %ld ms: %s", core->longest, core->longest_desc);
	summary(w);
	fz_fini(core);
	EXPECT_EQ(0, atomic_load(&w->bad));
}

static const struct {
	const char *role;
	void (*step)(struct fz *f);
	unsigned int pause_us;
} chaos[] = {
	/* Paced: under TCG every vCPU shares one host thread with the core. */
	{ "touch", touch_step, 200 },
	{ "touch", touch_step, 1000 },
	{ "map", map_step, 4000 },
	{ "resize", resize_step, 20000 },
	{ "fd", fd_step, 10000 },
	{ "io", io_step, 4000 },
};

/*
 * The core again, while threads and a child map, touch, resize, dup,
 * close, fork and do I/O, and a handler thread answers traps. Two thirds
 * of the budget.
 */
TEST_F_TIMEOUT(fuzz, concurrent, 290)
{
	struct world *w = self->w;
	long start = now_ms();
	long budget = self->seconds * 1000 - self->seconds * 1000 / 3;
	const unsigned int nr = ARRAY_SIZE(chaos);
	struct thread *t, *handler;
	bool stuck = false;
	struct fz *core;
	uint64_t iters = 0;
	pthread_t wd;
	unsigned int i;
	int status;
	pid_t child;

	t = mmap(NULL, (nr + 1) * sizeof(*t) + sizeof(*core),
		 PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, t);
	handler = &t[nr];
	core = (struct fz *)&t[nr + 1];
	ASSERT_EQ(0, fz_init(core, w, "core", 0, self->seed, true));
	cur = core;
	w->concurrent = true;
	w->trap_ms = TRAP_MS_CONC;
	h_safe_timeout(core, w->fd, false);
	h_safe_timeout(core, w->fd2, false);
	TH_LOG("seed %#llx (UPAGE_FUZZ_SEED=%#llx replays the core's choices), budget %ld ms",
	       (unsigned long long)self->seed,
	       (unsigned long long)self->seed, budget);

	kmsg(w, "upage-fuzz: concurrent seed %#llx\n",
	     (unsigned long long)self->seed);
	ASSERT_EQ(0, fz_init(&handler->f, w, "handler", 0,
			     self->seed ^ 0x4a4e444cULL, false));
	ASSERT_EQ(0, pthread_create(&handler->th, NULL, handler_main, handler));
	ASSERT_EQ(0, pthread_create(&wd, NULL, watchdog_main, w));
	for (i = 0; i < nr; i++) {
		ASSERT_EQ(0, fz_init(&t[i].f, w, chaos[i].role, i,
				     self->seed ^ (0x9e3779b97f4a7c15ULL * (i + 1)),
				     false));
		t[i].step = chaos[i].step;
		t[i].pause_us = chaos[i].pause_us;
		ASSERT_EQ(0, pthread_create(&t[i].th, NULL, chaos_main, &t[i]));
		t[i].started = true;
	}
	fflush(NULL);
	/* It runs for the budget: it dies with the test if that ends first. */
	child = upage_fork_child();
	ASSERT_LE(0, child);
	if (child == 0) {
		struct fz *c = &t[0].f;	/* a copy: the child's own */

		fz_init(c, w, "child", 0, self->seed ^ 0xc41dULL, false);
		child_run(c, start + budget, 0);
	}

	/* The single-threaded test made the sweep: straight to the rest. */
	core->iter = SWEEP;
	core_run(core, start + budget, 0);
	iters = core->iter - SWEEP;

	/* Wind down: the chaos first, then the child, then the handler. */
	atomic_store(&w->stop, 1);
	for (i = 0; i < nr; i++) {
		if (t[i].started && join_within(t[i].th, JOIN_MS)) {
			bad(&t[i].f, "thread still busy %d ms after the end",
			    JOIN_MS);
			dump_stacks(getpid());
			stuck = true;
		}
	}
	status = wait_child(child, w->mirror + sizeof(core->desc));
	if (status < 0)
		bad(core, "the child did not exit (no new call in %d ms, or %d ms in all)",
		    JOIN_MS, 4 * JOIN_MS);
	else if (!WIFEXITED(status) || WEXITSTATUS(status))
		bad(core, "the child failed (status %#x)", status);
	/* Nobody may stay trapped once the handler goes. */
	h_trap(core, 0, atomic_load(&w->size), 0);
	atomic_store(&w->stop_handler, 1);
	if (join_within(handler->th, JOIN_MS)) {
		bad(&handler->f, "handler still busy %d ms after the end",
		    JOIN_MS);
		stuck = true;
	}
	atomic_store(&w->stop_watchdog, 1);
	pthread_join(wd, NULL);
	TH_LOG("seed %#llx: core %llu iterations, %llu calls in %ld ms",
	       (unsigned long long)self->seed, (unsigned long long)iters,
	       (unsigned long long)core->calls, now_ms() - start);
	say("core: longest call %ld ms: %s", core->longest, core->longest_desc);
	for (i = 0; i < nr; i++)
		say("%s%u: %llu steps, %llu calls, longest %ld ms: %s",
		    t[i].f.role, i, (unsigned long long)t[i].f.iter,
		    (unsigned long long)t[i].f.calls, t[i].f.longest,
		    t[i].f.longest_desc);
	summary(w);
	if (!stuck) {
		for (i = 0; i <= nr; i++)
			fz_fini(&t[i].f);
		fz_fini(core);
	}
	EXPECT_EQ(0, atomic_load(&w->bad));
}

TEST_HARNESS_MAIN
