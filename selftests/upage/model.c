// SPDX-License-Identifier: GPL-2.0
/*
 * A differential model fuzzer. It keeps, in userspace, a model of one
 * space: per slot the model frame it shows, its protection, its
 * copy-on-write flag, tracking and trap bits; per frame its contents
 * (a stamp), residency, pin and lazy-free state. It applies random steps
 * to the module and to the model, and after every step checks the module
 * against the model: UPAGE_QUERY of every slot, UPAGE_STATS, and the
 * contents of every page through every mapping of every process.
 *
 * The steps: UPAGE_EDIT batches that mix every op (some must fail: a bad
 * op late in the batch, or an op on a frame pinned by vmsplice into a
 * pipe not read yet), reads and writes through MAP_SHARED and MAP_PRIVATE
 * mappings, munmap/mmap/mremap/mprotect of those mappings, fork (children
 * map the space and access it too), UPAGE_RESIZE, UPAGE_RESIDENCY,
 * UPAGE_TRACK and UPAGE_DIRTY, UPAGE_TRAP with accesses that a handler
 * thread sees as events and UPAGE_RESOLVE answers, vmsplice, and
 * drop_caches (the shrinker). While an edit or an eviction runs, hammer
 * threads read slots whose state the step does not change, so that a
 * fault racing with the step can leave a stale page table entry behind.
 *
 * Every write stores a stamp (space tag, slot and process that wrote it,
 * model frame, a serial number) in the first words of the page and fills
 * the rest from the serial, so a read tells exactly which write (and so
 * which frame and version) it sees, and a torn or foreign page shows.
 *
 * Where the module may legitimately choose, the model accepts either and
 * learns: a lazily freed frame may be reclaimed by the shrinker at any
 * time (its slots then read zeros and say UPAGE_SLOT_RECLAIMED), and an
 * access to a trapped slot whose page may still be mapped need not trap.
 * Page table entries are modelled as an upper bound (none, read-only,
 * maybe writable) per page of each mapping: only a page that cannot be
 * mapped must fault, and so trap.
 *
 * Environment:
 *   UPAGE_MODEL_SEED=S     replay: the seed a mismatch report names
 *   UPAGE_MODEL_SECONDS=N  time budget (default 120 on a debug kernel,
 *                          one with kmemleak, else 50)
 *   UPAGE_MODEL_STEPS=N    stop after N steps
 *   UPAGE_MODEL_AVOID=a,b  leave out patterns while a known bug is open:
 *                          hot (long batches over a few slots), widen
 *                          (widening protection in failing batches),
 *                          mprotect, private (MAP_PRIVATE), relazy (lazy
 *                          free of reclaimed frames), hammer
 *   UPAGE_MODEL_VERBOSE=1  print every step
 *
 * On a mismatch it prints the seed, the step, what was expected and what
 * was found, the model's slot table next to the module's, the mappings,
 * and the last steps; then the test fails. A kernel splat (read from
 * /dev/kmsg after every step) is a mismatch too, at the step that caused
 * it; a step that makes no progress for STALL_S seconds is reported as a
 * hang.
 *
 * Not modelled, on purpose: UPAGE_STORE and the shrinker's page-out
 * (UPAGE_STORE_RECLAIM: which frames it takes depends on timing), memory
 * cgroup limits and allocation failures (failnth.c), get_user_pages other
 * than vmsplice (gup.c), the handler's death and signals during trap
 * waits (trap.c), the ABI's struct sizes (abi.c), UPAGE_STATS counters
 * that depend on timing (faults, page-ins, tracked writes), and physical
 * frame numbers. The fault path's order (protection before traps, traps
 * before page-in) is the design's; where the UAPI leaves an errno open
 * (an unknown op, a bad protection value), either EINVAL or EOPNOTSUPP
 * is accepted.
 */
#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include "upage_utils.h"

#define MAX_SLOTS	32	/* a space never has more slots */
#define WIN		40	/* mappings reach this far, beyond the end */
#define MAX_FRAMES	16384	/* model frames per round */
#define MAX_PROCS	4	/* this process and up to 3 children */
#define MAX_MAPS	6	/* mappings per process */
#define MAX_PIPES	3	/* vmsplice pipes not read yet */
#define MAX_OPS		64	/* ops per batch */
#define NR_HAMMERS	2
#define MAX_TARGETS	24
#define RING		24	/* steps kept for a mismatch report */
#define WORDS		(PAGE / 8)
#define HDR		4	/* stamp words at the start of a page */
#define STAMP_MAGIC	0x75706d64ULL	/* "upmd" */
#define STALL_S		90	/* no step for this long: report a hang */

/* ------------------------------------------------------------------ */
/* Configuration, randomness, reports.                                 */

enum {
	AVOID_HOT = 1 << 0,
	AVOID_WIDEN = 1 << 1,
	AVOID_MPROTECT = 1 << 2,
	AVOID_PRIVATE = 1 << 3,
	AVOID_RELAZY = 1 << 4,
	AVOID_HAMMER = 1 << 5,
};

static struct {
	uint64_t seed;
	double seconds;
	unsigned long max_steps;
	unsigned int avoid;
	int verbose;
	bool debug_kernel;
} cfg;

/* xoshiro256**: small, fast, and the same everywhere for replays. */
struct rng {
	uint64_t s[4];
};

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed)
{
	int i;

	for (i = 0; i < 4; i++)
		r->s[i] = splitmix(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

static struct rng R;		/* the step stream: replays with the seed */

static uint32_t below(uint32_t n)
{
	return n ? rng_next(&R) % n : 0;
}

static bool chance(unsigned int pct)
{
	return below(100) < pct;
}

static struct {
	unsigned long rounds, steps, ops, edits, failing, accesses, forks;
	unsigned long sessions, events, splices, reclaims_seen, hammer_reads;
	unsigned long procs_max;
} tot;

static uint64_t round_seed;
static unsigned long step_no;
static atomic_ulong progress;	/* the watchdog's heartbeat */
static char ring[RING][400];
static unsigned long ring_n;
static sigjmp_buf fail_env;
static bool failed;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

/* Record what the current step does, for a report; print it if verbose. */
static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	char *line = ring[ring_n++ % RING];
	va_list ap;
	int len;

	len = snprintf(line, sizeof(ring[0]), "step %lu: ", step_no);
	va_start(ap, fmt);
	vsnprintf(line + len, sizeof(ring[0]) - len, fmt, ap);
	va_end(ap);
	if (cfg.verbose)
		say("%s", line);
}

static void dump_state(void);

static void dump_ring(void)
{
	unsigned long i = ring_n > RING ? ring_n - RING : 0;

	say("  the last steps:");
	for (; i < ring_n; i++)
		say("    %s", ring[i % RING]);
}

/*
 * The module and the model disagree: report and leave the round (main
 * thread only).
 */
static void mismatch(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void mismatch(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	say("MISMATCH at step %lu, seed %#llx: %s", step_no,
	    (unsigned long long)round_seed, msg);
	say("  replay: UPAGE_MODEL_SEED=%#llx", (unsigned long long)round_seed);
	dump_state();
	dump_ring();
	failed = true;
	siglongjmp(fail_env, 1);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------ */
/* Stamps.                                                             */

static uint32_t space_tag;

/* Who wrote a serial, for reports and to check a page's header. */
struct wrec {
	unsigned long step;
	uint32_t slot;
	uint32_t frame;		/* model frame; 0 for a private copy */
	uint8_t proc;
	char how;		/* 's' shared, 'p' private, 'c' UPAGE_RESOLVE_COPY */
};

static struct wrec *wrecs;
static uint64_t nr_wrecs, max_wrecs;

static uint64_t fill_word(uint64_t serial, unsigned int i)
{
	uint64_t x = serial * WORDS + i;

	return splitmix(&x);
}

static void stamp_hdr(uint64_t serial, uint64_t *hdr)
{
	const struct wrec *w = &wrecs[serial];

	hdr[0] = STAMP_MAGIC << 32 | space_tag;
	hdr[1] = (uint64_t)w->proc << 48 | (uint64_t)w->how << 40 | w->slot;
	hdr[2] = w->frame;
	hdr[3] = serial;
}

/* A new serial, recorded as written by @proc to @slot (@frame) by @how. */
static uint64_t new_serial(int proc, uint32_t slot, uint32_t frame, char how)
{
	if (nr_wrecs + 1 >= max_wrecs) {
		max_wrecs = max_wrecs ? 2 * max_wrecs : 65536;
		wrecs = realloc(wrecs, max_wrecs * sizeof(*wrecs));
		if (!wrecs) {
			say("out of memory for write records");
			abort();
		}
	}
	nr_wrecs++;
	wrecs[nr_wrecs] = (struct wrec){ .step = step_no, .slot = slot,
		.frame = frame, .proc = proc, .how = how };
	return nr_wrecs;
}

static void make_page(uint64_t *buf, const uint64_t *hdr)
{
	unsigned int i;

	memcpy(buf, hdr, HDR * sizeof(*buf));
	for (i = HDR; i < WORDS; i++)
		buf[i] = fill_word(hdr[3], i);
}

/* The words a quick (not full) read looks at besides the header. */
static unsigned int sample_word(uint64_t serial)
{
	return HDR + serial % (WORDS - HDR);
}

/*
 * What one access saw. @kind: 0 zeros, 1 a stamp (@serial), -1 neither
 * (a torn, foreign or corrupt page: @w holds its first words).
 */
struct ares {
	int32_t sig, code;
	uint64_t addr;		/* si_addr */
	int32_t kind;
	uint32_t tid;
	uint64_t serial;
	uint64_t w[HDR];
	uint32_t skipped;	/* C_CHECK: not accessed */
	uint32_t bad_word;	/* kind -1: the first word that did not fit */
};

static void decode(const uint64_t *buf, bool full, struct ares *r)
{
	unsigned int i, n = full ? WORDS : HDR;
	uint64_t serial = buf[3];
	bool zero = true;

	memcpy(r->w, buf, sizeof(r->w));
	for (i = 0; i < n; i++)
		zero &= !buf[i];
	if (!full)
		zero &= !buf[WORDS - 1] && !buf[WORDS / 2];
	if (zero) {
		r->kind = 0;
		return;
	}
	r->kind = -1;
	r->bad_word = 0;
	if (buf[0] != (STAMP_MAGIC << 32 | space_tag) || !serial ||
	    serial >= 1ULL << 40)
		return;
	for (i = HDR; i < WORDS; i++) {
		if (!full && i != WORDS / 2 && i != WORDS - 1 &&
		    i != sample_word(serial))
			continue;
		if (buf[i] != fill_word(serial, i)) {
			r->bad_word = i;
			return;
		}
	}
	r->kind = 1;
	r->serial = serial;
}

/* ------------------------------------------------------------------ */
/* Accesses that survive SIGSEGV and SIGBUS, in any thread.            */

struct fault {
	int sig, code;
	void *addr;
};

/*
 * Per thread, so that hammers, the accessor thread and the main thread
 * can all fault at once. SA_NODEFER and sigsetjmp(.., 0): no system call
 * per access, and the signal is not left blocked by the jump.
 */
static __thread sigjmp_buf *volatile fault_env;
static __thread volatile struct fault fault_seen;

/* The compiler must not move the accesses out of the fault_env window. */
static inline void barrier(void)
{
	__asm__ __volatile__("" ::: "memory");
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (!fault_env) {
		/* Not an access of ours: die of it as if unhandled. */
		signal(sig, SIG_DFL);
		return;
	}
	fault_seen.sig = sig;
	fault_seen.code = si->si_code;
	fault_seen.addr = si->si_addr;
	siglongjmp(*fault_env, 1);
}

static void install_fault_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
}

/*
 * Read the page at @p into @buf: word @first first (the access that
 * faults, if one does), then all words (@full) or the header and a few.
 */
static void page_read(volatile uint64_t *p, uint64_t *buf, bool full,
		      unsigned int first, struct fault *f)
{
	sigjmp_buf env;
	unsigned int i;

	fault_seen.sig = 0;
	if (!sigsetjmp(env, 0)) {
		fault_env = &env;
		barrier();
		buf[first] = p[first];
		if (full) {
			for (i = 0; i < WORDS; i++)
				buf[i] = p[i];
		} else {
			for (i = 0; i < HDR; i++)
				buf[i] = p[i];
			buf[WORDS / 2] = p[WORDS / 2];
			buf[WORDS - 1] = p[WORDS - 1];
			/* The stamp's own sample, once its serial is known. */
			buf[sample_word(buf[3])] = p[sample_word(buf[3])];
		}
	}
	barrier();
	fault_env = NULL;
	f->sig = fault_seen.sig;
	f->code = fault_seen.code;
	f->addr = fault_seen.addr;
}

/* Write the whole page @buf to @p, word @first first. */
static void page_write(volatile uint64_t *p, const uint64_t *buf,
		       unsigned int first, struct fault *f)
{
	sigjmp_buf env;
	unsigned int i;

	fault_seen.sig = 0;
	if (!sigsetjmp(env, 0)) {
		fault_env = &env;
		barrier();
		p[first] = buf[first];
		for (i = 0; i < WORDS; i++)
			p[i] = buf[i];
	}
	barrier();
	fault_env = NULL;
	f->sig = fault_seen.sig;
	f->code = fault_seen.code;
	f->addr = fault_seen.addr;
}

/* One access of a page of a mapping, as any process or thread makes it. */
struct areq {
	uint32_t map, page, write, first, full;
	uint64_t hdr[HDR];	/* a write: the stamp */
};

static void do_access(char *base, const struct areq *q, struct ares *r)
{
	volatile uint64_t *p = (volatile uint64_t *)(base + (size_t)q->page * PAGE);
	static __thread uint64_t buf[WORDS];
	struct fault f;


	memset(r, 0, sizeof(*r));
	r->tid = gettid();
	if (q->write) {
		make_page(buf, q->hdr);
		page_write(p, buf, q->first, &f);
	} else {
		memset(buf, 0, sizeof(buf));
		page_read(p, buf, q->full, q->first, &f);
		if (!f.sig)
			decode(buf, q->full, r);
	}
	r->sig = f.sig;
	r->code = f.code;
	r->addr = (uintptr_t)f.addr;
}

/* ------------------------------------------------------------------ */
/* The model.                                                          */

struct mframe {
	uint64_t kid;		/* the module's frame_id, once seen; 0 before */
	uint64_t content;	/* serial of its last write; 0: zeros */
	bool resident;		/* false: evicted, or reclaimed and not read */
	bool pinned;		/* UPAGE_RES_PIN */
	bool lazy;		/* lazily freed, not written since */
	bool reclaimed;		/* dropped by reclaim, not written since */
	int gup;		/* its page sits in this many unread pipes */
};

struct mslot {
	uint32_t frame;		/* index into M.frame; 0: a hole */
	uint32_t prot;
	uint32_t trap;		/* UPAGE_TRAP_READ | UPAGE_TRAP_WRITE */
	bool cow, tracked, dirty;
};

static struct {
	uint32_t size;
	struct mslot slot[MAX_SLOTS];
	struct mframe *frame;	/* [MAX_FRAMES], [0] unused */
	uint32_t nr_frames;
	uint64_t edits, batches, cow_breaks, evictions;
} M;

/* Upper bound of a mapping's page table entry for a page. */
enum { PTE_NONE, PTE_RO, PTE_RW };

struct map {
	char *addr;		/* NULL: unused */
	uint32_t pgoff, pages;
	bool shared, ro;	/* ro: mprotect(PROT_READ) */
	bool copy[WIN];		/* private: the page is the process's copy */
	uint64_t copy_content[WIN];
	uint8_t pte[WIN];
	bool wrote[WIN];	/* written through since last unmapped: a dirty entry */
	unsigned long born;	/* the step that mapped it */
};

struct proc {
	pid_t pid;		/* 0: unused */
	int sock;		/* children: the command socket */
	struct map map[MAX_MAPS];
};

static struct proc P[MAX_PROCS];	/* P[0]: this process */
static int space_fd = -1;

/* The last UPAGE_QUERY, for reports. */
static struct upage_slot_info last_info[MAX_SLOTS];
static uint32_t last_info_n;

static bool slots_exist(uint64_t first, uint64_t n)
{
	return first < M.size && n <= M.size - first;
}

static uint32_t frame_new(uint64_t content)
{
	uint32_t f = M.nr_frames++;

	memset(&M.frame[f], 0, sizeof(M.frame[f]));
	M.frame[f].content = content;
	M.frame[f].resident = true;
	return f;
}

static unsigned int frame_slots(uint32_t f)
{
	unsigned int s, n = 0;

	for (s = 0; s < M.size; s++)
		n += M.slot[s].frame == f;
	return n;
}

/* A lazily freed frame that the shrinker may have dropped by now. */
static bool may_be_reclaimed(uint32_t f)
{
	const struct mframe *fr = &M.frame[f];

	return f && fr->lazy && fr->resident && !fr->pinned;
}

/* Every page of every mapping that shows slot @s: unmap or write-protect. */
static void pte_slot(uint32_t s, int bound)
{
	int p, m;

	for (p = 0; p < MAX_PROCS; p++) {
		if (!P[p].pid)
			continue;
		for (m = 0; m < MAX_MAPS; m++) {
			struct map *mp = &P[p].map[m];

			if (!mp->addr || s < mp->pgoff || s >= mp->pgoff + mp->pages)
				continue;
			if (mp->pte[s - mp->pgoff] > bound)
				mp->pte[s - mp->pgoff] = bound;
			if (bound == PTE_NONE)
				mp->wrote[s - mp->pgoff] = false;
		}
	}
}

static void pte_frame(uint32_t f, int bound)
{
	uint32_t s;

	for (s = 0; s < M.size; s++)
		if (M.slot[s].frame == f)
			pte_slot(s, bound);
}

static void pte_raise(struct map *mp, unsigned int i, int v)
{
	if (mp->pte[i] < v)
		mp->pte[i] = v;
	if (v == PTE_RW)
		mp->wrote[i] = true;
}

/* Slot @s changed its contents: dirty if tracked. */
static void frame_dirties(uint32_t f)
{
	uint32_t s;

	for (s = 0; s < M.size; s++)
		if (M.slot[s].frame == f && M.slot[s].tracked)
			M.slot[s].dirty = true;
}

/* A write reached frame @f (its new contents already set). */
static void frame_written(uint32_t f)
{
	struct mframe *fr = &M.frame[f];

	fr->lazy = false;
	fr->reclaimed = false;
	fr->resident = true;
	frame_dirties(f);
}

/* Frame @f's contents were dropped (evicted lazily freed, or reclaimed). */
static void frame_reclaimed(uint32_t f, bool resident)
{
	struct mframe *fr = &M.frame[f];

	fr->content = 0;
	fr->lazy = false;
	fr->reclaimed = true;
	fr->resident = resident;
	frame_dirties(f);
	pte_frame(f, PTE_NONE);
}

/* The module says the lazily freed @f was reclaimed: learn it. */
static void learn_reclaim(uint32_t f, bool resident, const char *how)
{
	note("  learnt: frame F%u (id %llu) was reclaimed (%s)", f,
	     (unsigned long long)M.frame[f].kid, how);
	tot.reclaims_seen++;
	frame_reclaimed(f, resident);
}

static const char *prot_name(uint32_t prot)
{
	switch (prot) {
	case UPAGE_PROT_NONE: return "NONE";
	case UPAGE_PROT_READ: return "READ";
	case UPAGE_PROT_RW: return "RW";
	}
	return "?";
}

/* "c123 (written at step 40 by proc 0 to slot 3, frame F7, shared)" */
static const char *describe(char *buf, size_t len, int kind, uint64_t serial)
{
	const struct wrec *w;

	if (kind == 0 || (kind == 1 && !serial))
		return "zeros";
	if (kind < 0 || serial > nr_wrecs) {
		snprintf(buf, len, "garbage");
		return buf;
	}
	w = &wrecs[serial];
	if (w->how == 'p')
		snprintf(buf, len, "c%llu (a private copy written at step %lu by proc %u at slot %u)",
			 (unsigned long long)serial, w->step, w->proc, w->slot);
	else
		snprintf(buf, len, "c%llu (written at step %lu by proc %u to slot %u, frame F%u%s)",
			 (unsigned long long)serial, w->step, w->proc, w->slot,
			 w->frame, w->how == 'c' ? ", by a COPY resolve" : "");
	return buf;
}

/* UPAGE_SLOT_* bits as words. */
static const char *state_str(char *buf, size_t len, uint32_t st)
{
	static const char *const names[] = {
		"RESIDENT", "COW", "EVICTED", "PINNED", "LAZY", "RECLAIMED",
		"TRACKED", "DIRTY", "TRAP_READ", "TRAP_WRITE",
	};
	size_t i, at = 0;

	buf[0] = 0;
	for (i = 0; i < ARRAY_SIZE(names); i++)
		if (st & (1U << i))
			at += snprintf(buf + at, len - at, "%s%s", at ? "|" : "",
				       names[i]);
	if (st >> 10)
		snprintf(buf + at, len - at, "%s%#x", at ? "|" : "", st & ~0x3ffU);
	if (!st)
		snprintf(buf, len, "-");
	return buf;
}

static void dump_state(void)
{
	uint32_t s;
	int p, m;

	for (p = 0; p < MAX_PROCS; p++) {
		for (m = 0; m < MAX_MAPS && P[p].pid; m++) {
			const struct map *mp = &P[p].map[m];

			if (mp->addr)
				say("  proc %d (pid %d) mapping %d: slots %u-%u %s%s at %p, mapped at step %lu",
				    p, P[p].pid, m, mp->pgoff, mp->pgoff + mp->pages - 1,
				    mp->shared ? "shared" : "private",
				    mp->ro ? " read-only" : "", mp->addr, mp->born);
		}
	}

	say("  slot: model [frame (id) contents prot flags] | module [id aliases prot state]");
	for (s = 0; s < M.size; s++) {
		const struct mslot *sl = &M.slot[s];
		const struct mframe *fr = &M.frame[sl->frame];
		const struct upage_slot_info *in = &last_info[s];
		char c[160], st[160];

		say("  %2u: F%-4u (%3llu) %-8s %-4s%s%s%s%s%s%s%s%s%s%s | %3llu x%u %-4s %s",
		    s, sl->frame, (unsigned long long)fr->kid,
		    sl->frame ? (fr->content ? (snprintf(c, sizeof(c), "c%llu",
				(unsigned long long)fr->content), c) : "zeros") : "hole",
		    prot_name(sl->prot), sl->cow ? " cow" : "",
		    sl->frame && !fr->resident ? (fr->reclaimed ? "" : " evicted") : "",
		    sl->frame && fr->reclaimed ? " reclaimed" : "",
		    sl->frame && fr->lazy ? " lazy" : "",
		    sl->frame && fr->pinned ? " pinned" : "",
		    sl->frame && fr->gup ? " spliced" : "",
		    sl->tracked ? " tracked" : "", sl->dirty ? " dirty" : "",
		    sl->trap & UPAGE_TRAP_READ ? " trapR" : "",
		    sl->trap & UPAGE_TRAP_WRITE ? " trapW" : "",
		    s < last_info_n ? (unsigned long long)in->frame_id : 0ULL,
		    s < last_info_n ? in->nr_aliases : 0,
		    s < last_info_n ? prot_name(in->prot) : "-",
		    s < last_info_n ? state_str(st, sizeof(st), in->state) : "-");
	}
}

/* ------------------------------------------------------------------ */
/* Accesses: what the model says one must do, and what it changes.     */

enum { TRAP_NO, TRAP_MAY, TRAP_MUST };

struct want {
	int sig;		/* 0, SIGSEGV or SIGBUS */
	int code;		/* SIGSEGV's si_code; 0: any */
	int trap;		/* whether the access waits on a trap */
	uint64_t content;	/* a read: the serial it must see, 0 zeros */
	bool or_zero;		/* ... or zeros: maybe reclaimed meanwhile */
};

/*
 * What an access (@write or read) of page @i of process @p's mapping @m
 * does, were it let through a trap. The order is the fault path's: VMA
 * permissions, the end of the space, the process's private copy, the
 * slot's protection, then traps.
 */
static struct want predict(int p, int m, unsigned int i, bool write)
{
	const struct map *mp = &P[p].map[m];
	uint32_t s = mp->pgoff + i;
	const struct mslot *sl;
	struct want w = { 0 };
	bool catches;

	if (write && mp->ro) {
		w.sig = SIGSEGV;
		w.code = SEGV_ACCERR;
		return w;
	}
	if (s >= M.size) {
		w.sig = SIGBUS;
		return w;
	}
	if (!mp->shared && mp->copy[i]) {
		w.content = mp->copy_content[i];
		return w;
	}
	sl = &M.slot[s];
	if (sl->prot == UPAGE_PROT_NONE ||
	    (write && mp->shared && sl->prot != UPAGE_PROT_RW)) {
		w.sig = SIGSEGV;
		w.code = SEGV_MAPERR;
		return w;
	}
	catches = (sl->trap & UPAGE_TRAP_READ) ||
		  (write && (sl->trap & UPAGE_TRAP_WRITE));
	if (catches) {
		/*
		 * Only an access that must fault must trap: a shared write
		 * to a page not mapped writable, anything else to a page
		 * not mapped at all. A private write to a page mapped
		 * read-only is copied by the core without asking.
		 */
		if (write && mp->shared)
			w.trap = mp->pte[i] < PTE_RW ? TRAP_MUST : TRAP_MAY;
		else
			w.trap = mp->pte[i] == PTE_NONE ? TRAP_MUST : TRAP_MAY;
	}
	w.content = sl->frame ? M.frame[sl->frame].content : 0;
	w.or_zero = w.content && may_be_reclaimed(sl->frame);
	return w;
}

/* The model frame a shared write to slot @s lands in (a hole or a cow alias gets a new one). */
static uint32_t write_frame(uint32_t s)
{
	const struct mslot *sl = &M.slot[s];

	return !sl->frame || sl->cow ? M.nr_frames : sl->frame;
}

/* A stamp for a write through page @i of @p's mapping @m. */
static uint64_t write_serial(int p, int m, unsigned int i, uint64_t *hdr)
{
	const struct map *mp = &P[p].map[m];
	uint32_t s = mp->pgoff + i;
	uint64_t serial;

	if (mp->shared)
		serial = new_serial(p, s, s < M.size ? write_frame(s) : 0, 's');
	else
		serial = new_serial(p, s, 0, 'p');
	stamp_hdr(serial, hdr);
	return serial;
}

/*
 * The access went through (it raised no signal): change the model as
 * the module must have changed the space. @r is what a read saw.
 */
static void apply_access(int p, int m, unsigned int i, bool write,
			 uint64_t serial, const struct ares *r)
{
	struct map *mp = &P[p].map[m];
	uint32_t s = mp->pgoff + i, f;
	struct mslot *sl = &M.slot[s];

	if (!mp->shared && mp->copy[i]) {
		if (write)
			mp->copy_content[i] = serial;
		return;
	}
	/* Any fault that reaches the slot fills a hole or pages in. */
	f = sl->frame;
	if (!f) {
		f = frame_new(0);
		sl->frame = f;
	} else {
		M.frame[f].resident = true;
	}
	if (!write) {
		if (r && r->kind == 0 && M.frame[f].content && may_be_reclaimed(f))
			learn_reclaim(f, true, "a read saw zeros");
		pte_raise(mp, i, PTE_RO);
		return;
	}
	if (!mp->shared) {
		mp->copy[i] = true;
		mp->copy_content[i] = serial;
		return;
	}
	if (sl->cow) {
		/* A shared write to a copy-on-write alias: its own copy. */
		f = frame_new(M.frame[f].content);
		sl->frame = f;
		sl->cow = false;
		M.cow_breaks++;
		pte_slot(s, PTE_NONE);
	}
	M.frame[f].content = serial;
	frame_written(f);
	pte_raise(mp, i, PTE_RW);
}

static char *who(char *buf, size_t len, int p, int m, unsigned int i, bool write)
{
	const struct map *mp = &P[p].map[m];

	snprintf(buf, len, "%s by proc %d (pid %d) through mapping %d (%s%s, slots %u-%u) page %u = slot %u",
		 write ? "write" : "read", p, P[p].pid, m,
		 mp->shared ? "shared" : "private", mp->ro ? ", read-only" : "",
		 mp->pgoff, mp->pgoff + mp->pages - 1, i, mp->pgoff + i);
	return buf;
}

static const char *sig_name(int sig)
{
	return sig == SIGSEGV ? "SIGSEGV" : sig == SIGBUS ? "SIGBUS" :
	       sig ? "a signal" : "no signal";
}

/* Compare what an access did with @w; @addr is where it first touched. */
static void check_access(int p, int m, unsigned int i, bool write,
			 const struct want *w, const struct ares *r, uintptr_t addr)
{
	char wb[200], e[200], f[200];
	uint64_t got, hdr[HDR];

	who(wb, sizeof(wb), p, m, i, write);
	if (w->sig) {
		if (!r->sig)
			mismatch("%s: expected %s at %#lx (si_code %d), found the access went through%s%s",
				 wb, sig_name(w->sig), (unsigned long)addr, w->code,
				 write ? "" : " and read ",
				 write ? "" : describe(f, sizeof(f), r->kind, r->serial));
		if (r->sig != w->sig || r->addr != addr ||
		    (w->code && r->code != w->code))
			mismatch("%s: expected %s at %#lx (si_code %d), found %s at %#llx (si_code %d)",
				 wb, sig_name(w->sig), (unsigned long)addr, w->code,
				 sig_name(r->sig), (unsigned long long)r->addr, r->code);
		return;
	}
	if (r->sig)
		mismatch("%s: expected it to succeed%s%s, found %s at %#llx (si_code %d)",
			 wb, write ? "" : " and show ",
			 write ? "" : describe(e, sizeof(e), 1, w->content),
			 sig_name(r->sig), (unsigned long long)r->addr, r->code);
	if (write)
		return;
	if (r->kind < 0)
		mismatch("%s: expected %s, found a page that is neither zeros nor one whole stamp: %#llx %#llx %#llx %#llx, word %u wrong",
			 wb, describe(e, sizeof(e), 1, w->content),
			 (unsigned long long)r->w[0], (unsigned long long)r->w[1],
			 (unsigned long long)r->w[2], (unsigned long long)r->w[3],
			 r->bad_word);
	got = r->kind ? r->serial : 0;
	if (got) {
		if (got > nr_wrecs)
			mismatch("%s: found serial %llu, never written", wb,
				 (unsigned long long)got);
		stamp_hdr(got, hdr);
		if (memcmp(hdr, r->w, sizeof(hdr)))
			mismatch("%s: the stamp of %s has header %#llx %#llx %#llx, not %#llx %#llx %#llx",
				 wb, describe(f, sizeof(f), 1, got),
				 (unsigned long long)r->w[0], (unsigned long long)r->w[1],
				 (unsigned long long)r->w[2], (unsigned long long)hdr[0],
				 (unsigned long long)hdr[1], (unsigned long long)hdr[2]);
	}
	if (got != w->content && !(w->or_zero && !got))
		mismatch("%s: expected %s%s, found %s", wb,
			 describe(e, sizeof(e), 1, w->content),
			 w->or_zero ? " or zeros (lazily freed)" : "",
			 describe(f, sizeof(f), 1, got));
}

/* ------------------------------------------------------------------ */
/* Hammers: threads that read while a step runs.                       */

/*
 * A step that changes slots runs with hammer threads reading other
 * pages, and pages whose state the step must leave alone, so that faults
 * race with it. They only read slots that have a resident frame before
 * and after the step and are not trapped, so that they change nothing the
 * model can see; what they may leave behind is a page table entry, which
 * the checks after the step then find if it is stale.
 */
static struct hammer {
	pthread_t th[NR_HAMMERS];
	int nr;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned int gen, acked;
	bool quit;
	atomic_bool stop;
	volatile uint64_t *target[MAX_TARGETS];
	unsigned int nr_target;
	atomic_ulong reads;
} H;

static void *hammer_fn(void *arg)
{
	unsigned int gen = 0, seed = (uintptr_t)arg * 2654435761U + 1;
	struct fault f;
	uint64_t buf[WORDS];

	pthread_mutex_lock(&H.lock);
	for (;;) {
		while (H.gen == gen && !H.quit)
			pthread_cond_wait(&H.cond, &H.lock);
		if (H.quit)
			break;
		gen = H.gen;
		pthread_mutex_unlock(&H.lock);
		while (!atomic_load_explicit(&H.stop, memory_order_relaxed)) {
			unsigned int t = rand_r(&seed) % H.nr_target;

			page_read(H.target[t], buf, false, 0, &f);
			/* Now and then let the step's own thread run (2 CPUs). */
			if (!(atomic_fetch_add_explicit(&H.reads, 1,
							memory_order_relaxed) % 32))
				sched_yield();
		}
		pthread_mutex_lock(&H.lock);
		H.acked++;
		pthread_cond_broadcast(&H.cond);
	}
	pthread_mutex_unlock(&H.lock);
	return NULL;
}

static void hammer_init(int nr)
{
	int i;

	memset(&H, 0, sizeof(H));
	pthread_mutex_init(&H.lock, NULL);
	pthread_cond_init(&H.cond, NULL);
	for (i = 0; i < nr; i++)
		if (!pthread_create(&H.th[i], NULL, hammer_fn, (void *)(uintptr_t)(i + 1)))
			H.nr++;
}

static void hammer_go(volatile uint64_t **targets, unsigned int n)
{
	if (!n || !H.nr)
		return;
	pthread_mutex_lock(&H.lock);
	memcpy(H.target, targets, n * sizeof(*targets));
	H.nr_target = n;
	H.acked = 0;
	atomic_store(&H.stop, false);
	H.gen++;
	pthread_cond_broadcast(&H.cond);
	pthread_mutex_unlock(&H.lock);
	/* Let them start before the step does. */
	sched_yield();
}

/* Stop the hammers; none reads any more when this returns. */
static void hammer_halt(void)
{
	if (!H.nr_target)
		return;
	atomic_store(&H.stop, true);
	pthread_mutex_lock(&H.lock);
	while (H.acked < (unsigned int)H.nr)
		pthread_cond_wait(&H.cond, &H.lock);
	H.nr_target = 0;
	pthread_mutex_unlock(&H.lock);
}

static void hammer_exit(void)
{
	int i;

	hammer_halt();
	pthread_mutex_lock(&H.lock);
	H.quit = true;
	pthread_cond_broadcast(&H.cond);
	pthread_mutex_unlock(&H.lock);
	for (i = 0; i < H.nr; i++)
		pthread_join(H.th[i], NULL);
	H.nr = 0;
}

/* ------------------------------------------------------------------ */
/* The trap handler thread and the accessor thread.                    */

/*
 * The handler thread polls the space and reads its events (so this
 * process is the space's handler) and passes them on through a pipe; the
 * main thread answers them. The accessor thread makes the accesses that
 * may wait on a trap, so that the main thread stays free to answer.
 */
static int ev_pipe[2] = { -1, -1 };
static int acc_req[2] = { -1, -1 }, acc_res[2] = { -1, -1 };
static pthread_t handler_th, accessor_th;
static atomic_bool handler_quit;
static pid_t accessor_tid;

static void *handler_fn(void *arg)
{
	struct upage_trap_event ev[4];
	struct pollfd pfd;
	ssize_t n;

	(void)arg;
	while (!atomic_load(&handler_quit)) {
		pfd.fd = space_fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 50) <= 0 || !(pfd.revents & POLLIN))
			continue;
		n = read(space_fd, ev, sizeof(ev));
		if (n > 0 && write(ev_pipe[1], ev, n) != n)
			break;
	}
	return NULL;
}

struct acc_msg {
	struct areq q;
	char *base;		/* NULL: quit */
};

static void *accessor_fn(void *arg)
{
	struct acc_msg req;
	struct ares r;

	(void)arg;
	accessor_tid = gettid();
	while (read(acc_req[0], &req, sizeof(req)) == sizeof(req)) {
		if (!req.base)
			break;
		do_access(req.base, &req.q, &r);
		if (write(acc_res[1], &r, sizeof(r)) != sizeof(r))
			break;
	}
	return NULL;
}

static int threads_start(void)
{
	if (pipe2(ev_pipe, O_CLOEXEC) || pipe2(acc_req, O_CLOEXEC) ||
	    pipe2(acc_res, O_CLOEXEC))
		return -errno;
	atomic_store(&handler_quit, false);
	accessor_tid = 0;
	if (pthread_create(&handler_th, NULL, handler_fn, NULL) ||
	    pthread_create(&accessor_th, NULL, accessor_fn, NULL))
		return -EAGAIN;
	while (!__atomic_load_n(&accessor_tid, __ATOMIC_ACQUIRE))
		usleep(1000);
	hammer_init(cfg.avoid & AVOID_HAMMER ? 0 : NR_HAMMERS);
	return 0;
}

/* Hand an access to the accessor thread; its result comes on acc_res. */
static void accessor_send(int m, const struct areq *q)
{
	struct acc_msg req = { *q, P[0].map[m].addr };

	if (write(acc_req[1], &req, sizeof(req)) != sizeof(req))
		mismatch("cannot reach the accessor thread: %s", strerror(errno));
}

/* ------------------------------------------------------------------ */
/* Children: other processes that map and access the space.           */

enum { C_MAP = 1, C_UNMAP, C_ACCESS, C_CHECK, C_HAMMER, C_HALT, C_EDIT, C_EXIT };

struct creq {
	uint32_t cmd, map;
	uint32_t pgoff, pages, shared;	/* C_MAP */
	struct areq acc;		/* C_ACCESS */
	uint64_t skip, full;		/* C_CHECK: pages to leave, to read whole */
	uint32_t nr_targets;		/* C_HAMMER */
	uint8_t tmap[MAX_TARGETS], tpage[MAX_TARGETS];
	uint32_t nr_ops;		/* C_EDIT */
	uint32_t edit_flags;		/* C_EDIT: UPAGE_EDIT_POPULATE or 0 */
	struct upage_edit_op ops[MAX_OPS];
};

struct cres {
	int64_t ret;
	uint64_t addr;
};

static int pipes[MAX_PIPES][2];
static uint32_t pipe_frame[MAX_PIPES];	/* 0: the pipe is not in use */

/* A child's command loop; it never returns. */
static void __attribute__((noreturn)) child_main(int sock)
{
	struct { char *addr; uint32_t pages; } cm[MAX_MAPS];
	static struct ares res[WIN];
	volatile uint64_t *targets[MAX_TARGETS];
	bool hammers = false;
	struct creq q;
	struct cres cr;
	unsigned int i;
	int c;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* Only the command socket: pipes held open here would outlive reads. */
	for (c = 1; c < MAX_PROCS; c++)
		if (P[c].pid)
			close(P[c].sock);
	for (c = 0; c < MAX_PIPES; c++)
		if (pipe_frame[c]) {
			close(pipes[c][0]);
			close(pipes[c][1]);
		}
	close(ev_pipe[0]);
	close(ev_pipe[1]);
	close(acc_req[0]);
	close(acc_req[1]);
	close(acc_res[0]);
	close(acc_res[1]);
	/* The parent's mappings, inherited at their addresses. */
	for (c = 0; c < MAX_MAPS; c++) {
		cm[c].addr = P[0].map[c].addr;
		cm[c].pages = P[0].map[c].pages;
	}
	while (recv(sock, &q, sizeof(q), 0) == sizeof(q)) {
		memset(&cr, 0, sizeof(cr));
		switch (q.cmd) {
		case C_MAP:
			cm[q.map].addr = mmap(NULL, (size_t)q.pages * PAGE,
					      PROT_READ | PROT_WRITE,
					      q.shared ? MAP_SHARED : MAP_PRIVATE,
					      space_fd, (off_t)q.pgoff * PAGE);
			if (cm[q.map].addr == MAP_FAILED) {
				cr.ret = -errno;
				cm[q.map].addr = NULL;
			}
			cm[q.map].pages = q.pages;
			cr.addr = (uintptr_t)cm[q.map].addr;
			send(sock, &cr, sizeof(cr), 0);
			break;
		case C_UNMAP:
			if (munmap(cm[q.map].addr, (size_t)cm[q.map].pages * PAGE))
				cr.ret = -errno;
			cm[q.map].addr = NULL;
			send(sock, &cr, sizeof(cr), 0);
			break;
		case C_ACCESS:
			do_access(cm[q.map].addr, &q.acc, &res[0]);
			send(sock, &res[0], sizeof(res[0]), 0);
			break;
		case C_CHECK:
			memset(res, 0, sizeof(res));
			for (i = 0; i < cm[q.map].pages; i++) {
				struct areq a = { .page = i, .full = q.full >> i & 1 };

				if (q.skip >> i & 1)
					res[i].skipped = 1;
				else
					do_access(cm[q.map].addr, &a, &res[i]);
			}
			send(sock, res, sizeof(res), 0);
			break;
		case C_HAMMER:
			if (!hammers) {
				hammer_init(1);
				hammers = true;
			}
			for (i = 0; i < q.nr_targets; i++)
				targets[i] = (volatile uint64_t *)
					(cm[q.tmap[i]].addr + (size_t)q.tpage[i] * PAGE);
			hammer_go(targets, q.nr_targets);
			send(sock, &cr, sizeof(cr), 0);
			break;
		case C_HALT:
			hammer_halt();
			send(sock, &cr, sizeof(cr), 0);
			break;
		case C_EDIT: {
			uint32_t idx = 0x5a5a5a5a;

			cr.ret = upage_edit_flags(space_fd, q.ops, q.nr_ops,
						  q.edit_flags, &idx);
			cr.addr = idx;
			send(sock, &cr, sizeof(cr), 0);
			break;
		}
		case C_EXIT:
		default:
			_exit(0);
		}
	}
	_exit(0);
}

static void child_died(int c, const char *what)
{
	int st = 0;
	pid_t pid = P[c].pid;

	waitpid(pid, &st, 0);
	P[c].pid = 0;
	close(P[c].sock);
	mismatch("child %d (pid %d) %s: %s %d", c, pid, what,
		 WIFSIGNALED(st) ? "killed by signal" : "exit status",
		 WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
}

static void child_send(int c, const struct creq *q)
{
	if (send(P[c].sock, q, sizeof(*q), MSG_NOSIGNAL) != sizeof(*q))
		child_died(c, "cannot be reached");
}

/* A reply from child @c within @ms, else a mismatch (a hang or a death). */
static void child_recv(int c, void *buf, size_t len, int ms)
{
	struct pollfd pfd = { .fd = P[c].sock, .events = POLLIN };
	ssize_t n;

	if (poll(&pfd, 1, ms) != 1)
		mismatch("child %d (pid %d) did not answer within %d ms", c,
			 P[c].pid, ms);
	n = recv(P[c].sock, buf, len, 0);
	if (n != (ssize_t)len)
		child_died(c, "died");
}

static int nr_children(void)
{
	int c, n = 0;

	for (c = 1; c < MAX_PROCS; c++)
		n += !!P[c].pid;
	return n;
}

/* Ask child @c to exit and check that it did so cleanly. */
static void child_exit(int c, bool kill_it)
{
	struct creq q = { .cmd = C_EXIT };
	pid_t pid = P[c].pid;
	int st = 0;

	if (kill_it)
		kill(pid, SIGKILL);
	else
		send(P[c].sock, &q, sizeof(q), MSG_NOSIGNAL);
	close(P[c].sock);
	P[c].pid = 0;
	memset(P[c].map, 0, sizeof(P[c].map));
	if (waitpid(pid, &st, 0) != pid)
		return;
	if (!kill_it && (!WIFEXITED(st) || WEXITSTATUS(st)))
		mismatch("child %d (pid %d) ended with status %#x", c, pid, st);
}

/* ------------------------------------------------------------------ */
/* Hammer targets.                                                     */

/* Whether a read of slot @s can change nothing the model sees. */
static bool quiet_slot(const struct mslot *before, const struct mslot *after,
		       uint32_t s)
{
	const struct mslot *a = &before[s], *b = &after[s];

	if (s >= M.size || !a->frame || !b->frame)
		return false;
	if (!M.frame[a->frame].resident || !M.frame[b->frame].resident)
		return false;
	return !(a->trap & UPAGE_TRAP_READ) && !(b->trap & UPAGE_TRAP_READ);
}

/*
 * Start hammers in this process and in each child on pages of the slots
 * a step leaves quiet, those in @hot first (the step's own slots).
 */
static void hammers_start(const struct mslot *after, const bool *hot)
{
	volatile uint64_t *t[MAX_TARGETS];
	struct creq q;
	unsigned int n, i, tries;
	int p, m;

	if (cfg.avoid & AVOID_HAMMER)
		return;
	for (p = 0; p < MAX_PROCS; p++) {
		if (!P[p].pid)
			continue;
		memset(&q, 0, sizeof(q));
		n = 0;
		for (tries = 0; tries < 4 * MAX_TARGETS && n < MAX_TARGETS / 2; tries++) {
			m = below(MAX_MAPS);
			if (!P[p].map[m].addr)
				continue;
			i = below(P[p].map[m].pages);
			if (!quiet_slot(M.slot, after, P[p].map[m].pgoff + i))
				continue;
			/* Prefer the slots the step touches. */
			if (!hot[P[p].map[m].pgoff + i] && chance(50))
				continue;
			q.tmap[n] = m;
			q.tpage[n] = i;
			t[n++] = (volatile uint64_t *)(P[p].map[m].addr + (size_t)i * PAGE);
		}
		if (!n)
			continue;
		/* Afterwards, their pages may be mapped. */
		for (i = 0; i < n; i++)
			pte_raise(&P[p].map[q.tmap[i]], q.tpage[i], PTE_RO);
		if (p == 0) {
			hammer_go(t, n);
		} else {
			struct cres cr;

			q.cmd = C_HAMMER;
			q.nr_targets = n;
			child_send(p, &q);
			child_recv(p, &cr, sizeof(cr), 20000);
		}
	}
}

static void hammers_stop(void)
{
	struct creq q = { .cmd = C_HALT };
	struct cres cr;
	int p;

	hammer_halt();
	for (p = 1; p < MAX_PROCS; p++) {
		if (!P[p].pid)
			continue;
		child_send(p, &q);
		child_recv(p, &cr, sizeof(cr), 20000);
	}
}

/* ------------------------------------------------------------------ */
/* Edits.                                                              */

static const char *op_name(uint32_t op)
{
	static const char *const names[] = {
		"?", "ALIAS", "ALIAS_COW", "MOVE", "SWAP", "PROTECT", "DISCARD",
	};

	return op < ARRAY_SIZE(names) ? names[op] : "BAD";
}

static int fmt_ops(char *buf, size_t len, const struct upage_edit_op *ops,
		   unsigned int n)
{
	unsigned int i;
	int at = 0;

	for (i = 0; i < n && at < (int)len - 40; i++) {
		const struct upage_edit_op *o = &ops[i];

		at += snprintf(buf + at, len - at, "%s%s %llu", i ? "; " : "",
			       op_name(o->op), (unsigned long long)o->dst);
		if (o->op != UPAGE_OP_PROTECT && o->op != UPAGE_OP_DISCARD)
			at += snprintf(buf + at, len - at, "<%llu",
				       (unsigned long long)o->src);
		if (o->n != 1)
			at += snprintf(buf + at, len - at, " n%llu",
				       (unsigned long long)o->n);
		if (o->op == UPAGE_OP_PROTECT || o->prot)
			at += snprintf(buf + at, len - at, " %s", prot_name(o->prot));
		if (o->flags || o->__reserved || (o->src && o->op >= UPAGE_OP_PROTECT))
			at += snprintf(buf + at, len - at, " [flags %u rsv %u src %llu]",
				       o->flags, o->__reserved,
				       (unsigned long long)o->src);
	}
	if (i < n)
		at += snprintf(buf + at, len - at, "; ... (%u ops)", n);
	return at;
}

/*
 * The check phase of a batch, on the space as it is: 0, or the errno of
 * the first bad op (*either: EINVAL would do as well as EOPNOTSUPP).
 */
static int sim_check(const struct upage_edit_op *op, bool *either)
{
	*either = false;
	if (op->flags || op->__reserved)
		return -EOPNOTSUPP;
	switch (op->op) {
	case UPAGE_OP_DISCARD:
		if (op->src || op->prot || !op->n || !slots_exist(op->dst, op->n))
			return -EINVAL;
		return 0;
	case UPAGE_OP_PROTECT:
		if (op->prot != UPAGE_PROT_NONE && op->prot != UPAGE_PROT_READ &&
		    op->prot != UPAGE_PROT_RW) {
			*either = true;
			return -EOPNOTSUPP;
		}
		if (op->src || !op->n || !slots_exist(op->dst, op->n))
			return -EINVAL;
		return 0;
	case UPAGE_OP_ALIAS:
	case UPAGE_OP_ALIAS_COW:
	case UPAGE_OP_MOVE:
	case UPAGE_OP_SWAP:
		if (op->prot || !op->n || !slots_exist(op->dst, op->n) ||
		    !slots_exist(op->src, op->n) ||
		    (op->dst < op->src + op->n && op->src < op->dst + op->n))
			return -EINVAL;
		return 0;
	}
	*either = true;
	return -EOPNOTSUPP;
}

/* A batch applied to a copy of the slots. */
struct sim {
	struct mslot slot[MAX_SLOTS];
	bool touched[MAX_SLOTS];	/* set or reprotected: unmapped at commit */
	uint32_t nr_frames;		/* frames made for holes go from here */
	uint32_t busy_slot;
};

/* Whether the frame of slot @s may not leave it for @next (vmsplice). */
static bool sim_busy(struct sim *S, uint32_t s, uint32_t next)
{
	uint32_t f = S->slot[s].frame;

	if (!f || f == next || !M.frame[f].gup)
		return false;
	S->busy_slot = s;
	return true;
}

static void sim_set(struct sim *S, uint32_t s, uint32_t f, bool cow)
{
	S->slot[s].frame = f;
	S->slot[s].cow = cow;
	S->touched[s] = true;
}

static int sim_op(struct sim *S, const struct upage_edit_op *op)
{
	uint64_t i;

	for (i = 0; i < op->n; i++) {
		uint32_t d = op->dst + i, s = op->src + i, f;
		struct mslot a, b;

		switch (op->op) {
		case UPAGE_OP_ALIAS:
		case UPAGE_OP_ALIAS_COW:
			/* A hole in the source first gets a zeroed frame. */
			if (!S->slot[s].frame) {
				f = S->nr_frames++;
				memset(&M.frame[f], 0, sizeof(M.frame[f]));
				M.frame[f].resident = true;
				sim_set(S, s, f, false);
			}
			if (sim_busy(S, d, S->slot[s].frame))
				return -EBUSY;
			sim_set(S, d, S->slot[s].frame,
				op->op == UPAGE_OP_ALIAS_COW || S->slot[s].cow);
			break;
		case UPAGE_OP_MOVE:
			a = S->slot[s];
			if (sim_busy(S, d, a.frame) || sim_busy(S, s, 0))
				return -EBUSY;
			sim_set(S, d, a.frame, a.cow);
			sim_set(S, s, 0, false);
			break;
		case UPAGE_OP_SWAP:
			a = S->slot[d];
			b = S->slot[s];
			if (sim_busy(S, d, b.frame) || sim_busy(S, s, a.frame))
				return -EBUSY;
			sim_set(S, d, b.frame, b.cow);
			sim_set(S, s, a.frame, a.cow);
			break;
		case UPAGE_OP_DISCARD:
			if (sim_busy(S, d, 0))
				return -EBUSY;
			sim_set(S, d, 0, false);
			break;
		case UPAGE_OP_PROTECT:
			if (S->slot[d].prot != op->prot) {
				S->slot[d].prot = op->prot;
				S->touched[d] = true;
			}
			break;
		}
	}
	return 0;
}

/*
 * Run a batch on the model, into @S: 0 or -errno, *index the op refused.
 * Nothing changes the model itself until sim_commit().
 */
static int sim_batch(struct sim *S, const struct upage_edit_op *ops,
		     unsigned int n, uint32_t *index, bool *either)
{
	unsigned int i;
	int ret;

	memcpy(S->slot, M.slot, sizeof(S->slot));
	memset(S->touched, 0, sizeof(S->touched));
	S->nr_frames = M.nr_frames;
	*index = UINT32_MAX;
	for (i = 0; i < n; i++) {
		ret = sim_check(&ops[i], either);
		if (ret) {
			*index = i;
			return ret;
		}
	}
	*either = false;
	for (i = 0; i < n; i++) {
		ret = sim_op(S, &ops[i]);
		if (ret) {
			*index = i;
			return ret;
		}
	}
	return 0;
}

static void sim_commit(struct sim *S, unsigned int count)
{
	uint32_t s;

	for (s = 0; s < M.size; s++) {
		/* Another frame (or a hole) for a tracked slot: dirty. */
		if (S->slot[s].frame != M.slot[s].frame && S->slot[s].tracked)
			S->slot[s].dirty = true;
	}
	memcpy(M.slot, S->slot, sizeof(M.slot));
	M.nr_frames = S->nr_frames;
	for (s = 0; s < M.size; s++)
		if (S->touched[s])
			pte_slot(s, PTE_NONE);
	M.edits += count;
	M.batches++;
}

static uint32_t random_prot(void)
{
	uint32_t r = below(10);

	return r < 3 ? UPAGE_PROT_NONE : r < 6 ? UPAGE_PROT_READ : UPAGE_PROT_RW;
}

/* Two distinct slots of @hot (or of the space), for a two-range op. */
static void pick_pair(const uint32_t *hot, unsigned int nhot, __u64 *a,
		      __u64 *b)
{
	uint32_t n = nhot ? nhot : M.size, x = below(n), y = below(n - 1);

	y += y >= x;
	*a = nhot ? hot[x] : x;
	*b = nhot ? hot[y] : y;
}

/* A valid op on the space as it is; from the slots @hot if there are some. */
static void gen_op(struct upage_edit_op *o, const uint32_t *hot,
		   unsigned int nhot)
{
	uint32_t r = below(100), maxn, tries;
	bool two;

	memset(o, 0, sizeof(*o));
	if (nhot)
		/* Mostly holes made and refilled by aliasing them. */
		o->op = r < 30 ? UPAGE_OP_ALIAS : r < 45 ? UPAGE_OP_ALIAS_COW :
			r < 70 ? UPAGE_OP_MOVE : r < 80 ? UPAGE_OP_SWAP :
			r < 85 ? UPAGE_OP_PROTECT : UPAGE_OP_DISCARD;
	else
		o->op = r < 18 ? UPAGE_OP_ALIAS : r < 30 ? UPAGE_OP_ALIAS_COW :
			r < 46 ? UPAGE_OP_MOVE : r < 62 ? UPAGE_OP_SWAP :
			r < 84 ? UPAGE_OP_PROTECT : UPAGE_OP_DISCARD;
	two = o->op <= UPAGE_OP_SWAP;
	if (two && M.size < 2)
		o->op = chance(50) ? UPAGE_OP_PROTECT : UPAGE_OP_DISCARD;
	two = o->op <= UPAGE_OP_SWAP;
	if (o->op == UPAGE_OP_PROTECT)
		o->prot = random_prot();
	o->n = 1;
	if (nhot) {
		if (two)
			pick_pair(hot, nhot, &o->dst, &o->src);
		else
			o->dst = hot[below(nhot)];
		return;
	}
	maxn = two ? M.size / 2 : M.size;
	if (maxn > 4)
		maxn = 4;
	if (chance(30))
		o->n = 1 + below(maxn);
	o->dst = below(M.size - o->n + 1);
	if (!two)
		return;
	for (tries = 0; tries < 32; tries++) {
		o->src = below(M.size - o->n + 1);
		if (o->dst >= o->src + o->n || o->src >= o->dst + o->n)
			return;
	}
	/* Sizes where no other range fits: fall back to one slot each. */
	o->n = 1;
	pick_pair(NULL, 0, &o->dst, &o->src);
}

/* Make @o invalid on the space as it is (the check phase refuses it). */
static void make_bad(struct upage_edit_op *o)
{
	switch (below(11)) {
	case 0:
		o->flags = 1 + below(3);
		break;
	case 1:
		o->__reserved = 1;
		break;
	case 2:
		o->op = chance(50) ? 0 : 7 + below(100);
		break;
	case 3:
		o->op = UPAGE_OP_PROTECT;
		o->src = 0;
		o->prot = chance(50) ? 2 : 4 + below(10);
		break;
	case 4:
		o->n = 0;
		break;
	case 5:
		/* Past the end. */
		o->dst = M.size - (o->n > M.size ? M.size : o->n) + 1 + below(3);
		break;
	case 6:
		o->op = UPAGE_OP_MOVE + below(2);
		o->prot = 0;
		o->n = 1 + below(2);
		o->src = o->dst + below(o->n);	/* overlapping ranges */
		break;
	case 7:
		o->op = UPAGE_OP_PROTECT;
		o->src = 1 + below(4);
		o->prot = UPAGE_PROT_READ;
		break;
	case 8:
		o->op = UPAGE_OP_DISCARD;
		o->src = 0;
		o->prot = UPAGE_PROT_READ;
		break;
	case 9:
		o->op = UPAGE_OP_ALIAS;
		o->prot = UPAGE_PROT_RW;
		break;
	default:
		o->n = M.size + 1 + below(5);
		break;
	}
}

/* An op that takes a frame pinned by vmsplice from its slot, if any. */
static bool make_busy(struct upage_edit_op *o)
{
	uint32_t p, s, x;

	for (p = 0; p < MAX_PIPES; p++) {
		uint32_t f = pipe_frame[p];

		if (!f || !frame_slots(f) || M.size < 2)
			continue;
		for (s = 0; M.slot[s].frame != f; s++)
			;
		do
			x = below(M.size);
		while (x == s);
		memset(o, 0, sizeof(*o));
		o->n = 1;
		switch (below(5)) {
		case 0:
			o->op = UPAGE_OP_DISCARD;
			o->dst = s;
			break;
		case 1:
			o->op = UPAGE_OP_MOVE;
			o->dst = x;
			o->src = s;
			break;
		case 2:
			o->op = UPAGE_OP_MOVE;
			o->dst = s;
			o->src = x;
			break;
		case 3:
			o->op = UPAGE_OP_SWAP;
			o->dst = s;
			o->src = x;
			break;
		default:
			o->op = UPAGE_OP_ALIAS;
			o->dst = s;
			o->src = x;
			break;
		}
		return true;
	}
	return false;
}

static const char *err_name(int err)
{
	static char buf[32];

	switch (-err) {
	case 0: return "0";
	case EINVAL: return "EINVAL";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case EBUSY: return "EBUSY";
	case ENOENT: return "ENOENT";
	case EEXIST: return "EEXIST";
	case ENOSPC: return "ENOSPC";
	case ENOMEM: return "ENOMEM";
	case EFAULT: return "EFAULT";
	case EAGAIN: return "EAGAIN";
	}
	snprintf(buf, sizeof(buf), "errno %d", -err);
	return buf;
}

/*
 * A committed batch with UPAGE_EDIT_POPULATE by process @p: the changed
 * slots that a read would map may now be mapped read-only in @p's
 * mappings (an upper bound: populating is best effort). Slots that must
 * fault (a hole, PROT_NONE, a trap, an evicted frame) keep no entry, so
 * the model still requires their fault, and their trap.
 */
static void model_populated(int p, const bool *touched)
{
	uint32_t s;
	int m;

	for (s = 0; s < M.size; s++) {
		const struct mslot *sl = &M.slot[s];

		if (!touched[s] || !sl->frame || !M.frame[sl->frame].resident ||
		    sl->prot == UPAGE_PROT_NONE || sl->trap)
			continue;
		for (m = 0; m < MAX_MAPS; m++) {
			struct map *mp = &P[p].map[m];
			unsigned int i = s - mp->pgoff;

			if (!mp->addr || s < mp->pgoff || i >= mp->pages ||
			    (!mp->shared && mp->copy[i]))
				continue;
			pte_raise(mp, i, PTE_RO);
		}
	}
}

/* Apply a batch to the module and the model, with hammers running. */
static void run_batch(const struct upage_edit_op *ops, unsigned int n,
		      const char *what)
{
	static char text[2048];
	bool hot[MAX_SLOTS] = { false }, either;
	uint32_t idx = 0x5a5a5a5a, want_idx, i, flags;
	struct sim S;
	int want, ret, c, editor = 0;

	flags = chance(30) ? UPAGE_EDIT_POPULATE : 0;
	want = sim_batch(&S, ops, n, &want_idx, &either);
	if (want == -EBUSY && (cfg.avoid & AVOID_WIDEN)) {
		/* No protection widened in a batch that fails after it. */
		struct upage_edit_op *o = (struct upage_edit_op *)ops;

		for (i = 0; i < n; i++)
			if (o[i].op == UPAGE_OP_PROTECT)
				o[i].prot = UPAGE_PROT_NONE;
		want = sim_batch(&S, ops, n, &want_idx, &either);
	}
	for (i = 0; i < M.size; i++)
		hot[i] = S.touched[i];
	for (i = 0; i < n; i++) {
		if (ops[i].dst < M.size)
			hot[ops[i].dst] = true;
		if (ops[i].src < M.size)
			hot[ops[i].src] = true;
	}
	fmt_ops(text, sizeof(text), ops, n);
	note("%s EDIT%s [%s]: expect %s at op %d", what,
	     flags ? "+POPULATE" : "", text, err_name(want), (int)want_idx);
	hammers_start(want ? M.slot : S.slot, hot);
	c = 1 + below(MAX_PROCS - 1);
	if (P[c].pid && chance(20)) {
		/* Another process edits the space through its own descriptor. */
		static struct creq q;
		struct cres cr;

		memset(&q, 0, sizeof(q));
		q.cmd = C_EDIT;
		q.nr_ops = n;
		memcpy(q.ops, ops, n * sizeof(*ops));
		q.edit_flags = flags;
		editor = c;
		note("  (by child %d)", c);
		child_send(c, &q);
		child_recv(c, &cr, sizeof(cr), 60000);
		ret = cr.ret;
		idx = cr.addr;
	} else {
		ret = upage_edit_flags(space_fd, ops, n, flags, &idx);
	}
	hammers_stop();
	tot.ops++;
	tot.edits++;
	if (ret != want && !(either && ret == -EINVAL))
		mismatch("EDIT [%s]: expected %s (op %d), found %s (op %d)", text,
			 err_name(want), (int)want_idx, err_name(ret), (int)idx);
	if (ret && idx != want_idx)
		mismatch("EDIT [%s] failed with %s as expected, but out_error_index is %d, not %d",
			 text, err_name(ret), (int)idx, (int)want_idx);
	if (ret) {
		tot.failing++;
		return;
	}
	sim_commit(&S, n);
	if (flags)
		model_populated(editor, S.touched);
}

static void step_edit(void)
{
	struct upage_edit_op ops[MAX_OPS];
	uint32_t hot[4], nhot = 0, i, n;

	if (!M.size) {
		memset(ops, 0, sizeof(ops[0]));
		ops[0].op = UPAGE_OP_PROTECT;
		ops[0].n = 1;
		run_batch(ops, 1, "empty space:");
		return;
	}
	n = 1 + below(chance(70) ? 3 : 8);
	if (!(cfg.avoid & AVOID_HOT) && chance(12) && M.size >= 3) {
		/*
		 * A long batch over a few slots: holes refilled and frames
		 * passed around many times in one batch.
		 */
		nhot = 3 + below(2);
		if (nhot > M.size)
			nhot = M.size;
		for (i = 0; i < nhot; i++) {
			uint32_t j, s;

			do {
				s = below(M.size);
				for (j = 0; j < i && hot[j] != s; j++)
					;
			} while (j < i);
			hot[i] = s;
		}
		n = 12 + below(MAX_OPS - 12);
	}
	for (i = 0; i < n; i++)
		gen_op(&ops[i], hot, nhot);
	run_batch(ops, n, nhot ? "hot" : "");
}

/*
 * A batch that must fail: valid ops (some widening a protection), then a
 * bad one or one that takes a frame spliced into a pipe, then maybe more.
 * Nothing may change, and no page may stay mapped as the failed batch
 * had it for a moment.
 */
static void step_edit_fail(void)
{
	struct upage_edit_op ops[MAX_OPS];
	uint32_t i, j, n = 0, pre = 1 + below(6), s;
	bool busy;

	if (!M.size) {
		step_edit();
		return;
	}
	for (i = 0; i < pre; i++) {
		if (!(cfg.avoid & AVOID_WIDEN) && chance(50)) {
			/* Widen a NONE slot (one with a frame if there is one). */
			s = below(M.size);
			for (j = 0; j < M.size; j++) {
				uint32_t t = (s + j) % M.size;

				if (M.slot[t].prot == UPAGE_PROT_NONE && M.slot[t].frame) {
					s = t;
					break;
				}
			}
			memset(&ops[n], 0, sizeof(ops[0]));
			ops[n].op = UPAGE_OP_PROTECT;
			ops[n].dst = s;
			ops[n].n = 1;
			ops[n].prot = M.slot[s].prot == UPAGE_PROT_NONE && chance(50) ?
				      UPAGE_PROT_READ : UPAGE_PROT_RW;
			n++;
			continue;
		}
		gen_op(&ops[n++], NULL, 0);
	}
	busy = chance(50) && make_busy(&ops[n]);
	if (!busy) {
		gen_op(&ops[n], NULL, 0);
		make_bad(&ops[n]);
	}
	n++;
	for (i = below(3); i > 0; i--)
		gen_op(&ops[n++], NULL, 0);
	run_batch(ops, n, busy ? "busy" : "bad");
}

/* ------------------------------------------------------------------ */
/* Accesses and mappings.                                              */

static int random_proc(void)
{
	int p;

	if (chance(60))
		return 0;
	p = 1 + below(MAX_PROCS - 1);
	return P[p].pid ? p : 0;
}

/* A mapping of process @p (a shared one if @shared), or -1. */
static int pick_map(int p, bool shared)
{
	int m, start = below(MAX_MAPS), k;

	for (k = 0; k < MAX_MAPS; k++) {
		m = (start + k) % MAX_MAPS;
		if (P[p].map[m].addr && (!shared || P[p].map[m].shared))
			return m;
	}
	return -1;
}

/* A page of mapping @m, mostly one inside the space. */
static unsigned int pick_page(int p, int m)
{
	const struct map *mp = &P[p].map[m];
	unsigned int i, tries;

	for (tries = 0; tries < 8; tries++) {
		i = below(mp->pages);
		if (mp->pgoff + i < M.size || chance(10))
			return i;
	}
	return below(mp->pages);
}

/*
 * One access by process @p (not one that may wait on a trap), checked
 * and applied to the model.
 */
static void access_one(int p, int m, unsigned int i, bool write, bool full)
{
	struct areq q = { .map = m, .page = i, .write = write, .full = full };
	const struct map *mp = &P[p].map[m];
	struct want w = predict(p, m, i, write);
	uint64_t serial = 0;
	struct ares r;
	char wb[200];

	if (w.trap != TRAP_NO)
		return;
	q.first = below(WORDS);
	if (write)
		serial = write_serial(p, m, i, q.hdr);
	note("  %s%s", who(wb, sizeof(wb), p, m, i, write),
	     write ? "" : (full ? " (whole page)" : ""));
	if (p == 0) {
		do_access(mp->addr, &q, &r);
	} else {
		struct creq cq = { .cmd = C_ACCESS, .map = m, .acc = q };

		child_send(p, &cq);
		child_recv(p, &r, sizeof(r), 30000);
	}
	tot.accesses++;
	tot.ops++;
	check_access(p, m, i, write, &w, &r,
		     (uintptr_t)mp->addr + (size_t)i * PAGE + q.first * 8);
	if (!r.sig)
		apply_access(p, m, i, write, serial, &r);
}

static void step_write(void)
{
	int p = random_proc(), m, k, n = 1 + below(4);

	for (k = 0; k < n; k++) {
		m = pick_map(p, chance(70));
		if (m < 0 || (P[p].map[m].ro && !chance(10)))
			continue;
		access_one(p, m, pick_page(p, m), true, false);
	}
}

static void step_read(void)
{
	int p = random_proc(), m = pick_map(p, false);

	if (m >= 0)
		access_one(p, m, pick_page(p, m), false, true);
}

static int free_map(int p)
{
	int m;

	for (m = 0; m < MAX_MAPS; m++)
		if (!P[p].map[m].addr)
			return m;
	return -1;
}

/* Map slots pgoff..pgoff+pages-1 into process @p as mapping @m. */
static void map_new(int p, int m, uint32_t pgoff, uint32_t pages, bool shared)
{
	struct map *mp = &P[p].map[m];
	char *addr;

	if (p == 0) {
		addr = mmap(NULL, (size_t)pages * PAGE, PROT_READ | PROT_WRITE,
			    shared ? MAP_SHARED : MAP_PRIVATE, space_fd,
			    (off_t)pgoff * PAGE);
		if (addr == MAP_FAILED)
			mismatch("mmap of slots %u-%u: %s", pgoff, pgoff + pages - 1,
				 strerror(errno));
	} else {
		struct creq q = { .cmd = C_MAP, .map = m, .pgoff = pgoff,
				  .pages = pages, .shared = shared };
		struct cres r;

		child_send(p, &q);
		child_recv(p, &r, sizeof(r), 20000);
		if (r.ret)
			mismatch("mmap of slots %u-%u in child %d: %s", pgoff,
				 pgoff + pages - 1, p, strerror(-r.ret));
		addr = (char *)(uintptr_t)r.addr;
	}
	memset(mp, 0, sizeof(*mp));
	mp->addr = addr;
	mp->pgoff = pgoff;
	mp->pages = pages;
	mp->shared = shared;
	mp->born = step_no;
	note("proc %d maps slots %u-%u %s as mapping %d at %p", p, pgoff,
	     pgoff + pages - 1, shared ? "shared" : "private", m, addr);
}

static void map_del(int p, int m)
{
	struct map *mp = &P[p].map[m];

	note("proc %d unmaps mapping %d (slots %u-%u)", p, m, mp->pgoff,
	     mp->pgoff + mp->pages - 1);
	if (p == 0) {
		if (munmap(mp->addr, (size_t)mp->pages * PAGE))
			mismatch("munmap: %s", strerror(errno));
	} else {
		struct creq q = { .cmd = C_UNMAP, .map = m };
		struct cres r;

		child_send(p, &q);
		child_recv(p, &r, sizeof(r), 20000);
	}
	memset(mp, 0, sizeof(*mp));
}

static int nr_shared_maps(int p)
{
	int m, n = 0;

	for (m = 0; m < MAX_MAPS; m++)
		n += P[p].map[m].addr && P[p].map[m].shared && !P[p].map[m].ro;
	return n;
}

static void random_window(uint32_t *pgoff, uint32_t *pages)
{
	*pgoff = chance(30) ? 0 : below(WIN);
	*pages = 1 + below(WIN - *pgoff);
	if (*pages > 16 && chance(50))
		*pages = 1 + below(16);
}

/*
 * Before mprotect() takes write access away from mapping @m and gives it
 * back: a page of it whose entry is dirty from an earlier write, armed
 * for tracking now (which write-protects the entry, dirty as it is).
 * Written after the mprotect() calls, it must still reach the module.
 */
static unsigned int dance_page(int m)
{
	struct map *mp = &P[0].map[m];
	unsigned int i = 0, k, start = below(mp->pages);
	struct upage_track t = { .size = sizeof(t), .op = UPAGE_TRACK_START, .n = 1 };
	uint32_t s = 0;

	for (k = 0; k < mp->pages; k++) {
		i = (start + k) % mp->pages;
		s = mp->pgoff + i;
		if (s < M.size && mp->wrote[i] && !M.slot[s].trap &&
		    M.slot[s].prot == UPAGE_PROT_RW)
			break;
	}
	if (k == mp->pages) {
		/* None: write one first, if one can be written. */
		i = start;
		s = mp->pgoff + i;
		if (s >= M.size || M.slot[s].trap || M.slot[s].prot != UPAGE_PROT_RW)
			return i;
		access_one(0, m, i, true, false);
	}
	if (!M.slot[s].tracked || M.slot[s].dirty) {
		t.first = s;
		if (ioctl(space_fd, UPAGE_TRACK, &t))
			mismatch("TRACK START slot %u: %s", s, strerror(errno));
		note("  TRACK START slot %u", s);
		M.slot[s].tracked = true;
		M.slot[s].dirty = false;
		pte_slot(s, PTE_RO);
		if (M.slot[s].frame)
			pte_frame(M.slot[s].frame, PTE_RO);
	}
	return i;
}

static void step_map(void)
{
	int p = random_proc(), m;
	uint32_t pgoff, pages, r = below(100), i;
	bool shared;

	if (r < 35) {
		m = free_map(p);
		if (m < 0)
			return;
		random_window(&pgoff, &pages);
		shared = (cfg.avoid & AVOID_PRIVATE) || chance(65);
		map_new(p, m, pgoff, pages, shared);
	} else if (r < 60) {
		m = pick_map(p, false);
		if (m < 0)
			return;
		/* This process keeps a writable shared mapping. */
		if (p == 0 && P[0].map[m].shared && !P[0].map[m].ro &&
		    nr_shared_maps(0) < 2)
			return;
		map_del(p, m);
		/* Mapped again: now after the others in the space's tree. */
		if (chance(50)) {
			random_window(&pgoff, &pages);
			map_new(p, m, pgoff, pages, true);
		}
	} else if (r < 80 || (cfg.avoid & AVOID_MPROTECT)) {
		struct map *mp;
		char *addr;

		m = pick_map(0, false);
		if (m < 0)
			return;
		mp = &P[0].map[m];
		pages = 1 + below(WIN - mp->pgoff);
		addr = mremap(mp->addr, (size_t)mp->pages * PAGE,
			      (size_t)pages * PAGE, MREMAP_MAYMOVE);
		if (addr == MAP_FAILED)
			mismatch("mremap of mapping %d to %u pages: %s", m, pages,
				 strerror(errno));
		note("proc 0 mremaps mapping %d (slots %u-%u) to %u pages at %p",
		     m, mp->pgoff, mp->pgoff + mp->pages - 1, pages, addr);
		for (i = pages; i < WIN; i++) {
			mp->copy[i] = false;
			mp->pte[i] = PTE_NONE;
			mp->wrote[i] = false;
		}
		for (i = mp->pages; i < pages; i++) {
			mp->copy[i] = false;
			mp->pte[i] = PTE_NONE;
			mp->wrote[i] = false;
		}
		mp->addr = addr;
		mp->pages = pages;
		/* A moved mapping is a new VMA, last in the space's tree. */
		mp->born = step_no;
	} else {
		struct map *mp;
		unsigned int dance = WIN;

		m = pick_map(0, false);
		if (m < 0)
			return;
		mp = &P[0].map[m];
		if (!mp->ro && mp->shared && nr_shared_maps(0) < 2)
			return;
		if (!mp->ro && mp->shared && chance(60))
			dance = dance_page(m);
		if (mprotect(mp->addr, (size_t)mp->pages * PAGE,
			     mp->ro ? PROT_READ | PROT_WRITE : PROT_READ))
			mismatch("mprotect: %s", strerror(errno));
		note("proc 0 mprotects mapping %d (slots %u-%u) %s", m, mp->pgoff,
		     mp->pgoff + mp->pages - 1, mp->ro ? "read-write" : "read-only");
		if (!mp->ro) {
			mp->ro = true;
			for (i = 0; i < mp->pages; i++)
				if (mp->pte[i] > PTE_RO)
					mp->pte[i] = PTE_RO;
			if (dance == WIN)
				return;
			/* And back, then a write: it must still fault. */
			if (mprotect(mp->addr, (size_t)mp->pages * PAGE,
				     PROT_READ | PROT_WRITE))
				mismatch("mprotect: %s", strerror(errno));
			note("proc 0 mprotects mapping %d back read-write", m);
		}
		mp->ro = false;
		if (dance < WIN)
			access_one(0, m, dance, true, false);
	}
}

static void step_fork(void)
{
	int c, sv[2];
	pid_t pid;

	for (c = 1; c < MAX_PROCS && P[c].pid; c++)
		;
	if (c == MAX_PROCS || chance(25)) {
		/* Full, or just a turn: one child goes. */
		for (c = 1 + below(MAX_PROCS - 1); !P[c].pid; c = 1 + below(MAX_PROCS - 1))
			if (!nr_children())
				return;
		note("child %d (pid %d) exits", c, P[c].pid);
		child_exit(c, false);
		return;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		mismatch("socketpair: %s", strerror(errno));
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		mismatch("fork: %s", strerror(errno));
	if (pid == 0) {
		close(sv[0]);
		child_main(sv[1]);
	}
	close(sv[1]);
	P[c].pid = pid;
	P[c].sock = sv[0];
	/* It has this process's mappings: shared ones, private copies and all. */
	memcpy(P[c].map, P[0].map, sizeof(P[c].map));
	tot.forks++;
	if ((unsigned long)nr_children() + 1 > tot.procs_max)
		tot.procs_max = nr_children() + 1;
	note("fork: child %d is pid %d", c, pid);
}

/* ------------------------------------------------------------------ */
/* Residency, tracking, resize, splice.                                */

/* A range of slots; now and then an invalid one (*valid false). */
static void pick_range(uint64_t *first, uint64_t *n, bool *valid)
{
	*valid = true;
	if (!M.size || chance(4)) {
		*valid = false;
		if (chance(50)) {
			*first = below(M.size + 1);
			*n = 0;
		} else {
			*n = 1 + below(3);
			*first = M.size - (*n > M.size ? M.size : *n) + 1 + below(2);
		}
		return;
	}
	*n = 1 + below(chance(50) ? 3 : M.size);
	if (*n > M.size)
		*n = M.size;
	*first = below(M.size - *n + 1);
}

/* Learn from UPAGE_QUERY whether the lazily freed @f was reclaimed. */
static bool learn_by_query(uint32_t f, const char *why)
{
	struct upage_slot_info info;
	uint32_t s;

	for (s = 0; s < M.size && M.slot[s].frame != f; s++)
		;
	if (s == M.size || upage_query(space_fd, s, 1, &info))
		return false;
	/*
	 * A frame that reclaim drops stops being LAZY; one reclaimed earlier
	 * and lazily freed again is LAZY and still RECLAIMED (until written),
	 * and was not reclaimed since.
	 */
	if (!(info.state & UPAGE_SLOT_RECLAIMED) ||
	    (info.state & UPAGE_SLOT_LAZY))
		return false;
	learn_reclaim(f, info.state & UPAGE_SLOT_RESIDENT, why);
	return true;
}

static void check_count(const char *what, int ret, uint64_t done, uint64_t lo,
			uint64_t hi)
{
	if (!ret && (done < lo || done > hi))
		mismatch("%s: out_frames %llu, expected %llu%s%llu", what,
			 (unsigned long long)done, (unsigned long long)lo,
			 lo == hi ? "" : " to ", lo == hi ? 0ULL : (unsigned long long)hi);
}

static void step_residency(void)
{
	static const char *const names[] = {
		"?", "EVICT", "PREFETCH", "PIN", "UNPIN", "LAZY_FREE",
	};
	uint32_t r = below(100), op, s, f, cands = 0, maybe = 0, busy = 0;
	uint64_t first, n, done = 0xdead, lo, hi;
	bool valid, hot[MAX_SLOTS] = { false };
	struct mslot after[MAX_SLOTS];
	struct upage_residency res;
	char what[120];
	int want, ret;

	op = r < 30 ? UPAGE_RES_EVICT : r < 45 ? UPAGE_RES_PREFETCH :
	     r < 62 ? UPAGE_RES_PIN : r < 77 ? UPAGE_RES_UNPIN : UPAGE_RES_LAZY_FREE;
	pick_range(&first, &n, &valid);
	snprintf(what, sizeof(what), "RESIDENCY %s slots %llu+%llu", names[op],
		 (unsigned long long)first, (unsigned long long)n);
	memcpy(after, M.slot, sizeof(after));

	if (valid && op == UPAGE_RES_LAZY_FREE && (cfg.avoid & AVOID_RELAZY)) {
		for (s = first; s < first + n; s++) {
			f = M.slot[s].frame;
			if (f && M.frame[f].reclaimed && M.frame[f].resident)
				return;
		}
	}
	/* The frames the call acts on, each once (aliases are one frame). */
	for (s = valid ? first : 0; valid && s < first + n; s++) {
		uint32_t t;

		f = M.slot[s].frame;
		for (t = first; t < s && M.slot[t].frame != f; t++)
			;
		if (!f || t < s)
			continue;
		switch (op) {
		case UPAGE_RES_EVICT:
			if (!M.frame[f].resident || M.frame[f].pinned)
				continue;
			busy += !!M.frame[f].gup;
			maybe += may_be_reclaimed(f);
			/* Its slots are not quiet for the hammers. */
			for (t = 0; t < M.size; t++)
				if (M.slot[t].frame == f)
					after[t].frame = 0;
			break;
		case UPAGE_RES_PREFETCH:
			maybe += may_be_reclaimed(f);
			if (M.frame[f].resident)
				continue;
			break;
		case UPAGE_RES_PIN:
			if (M.frame[f].pinned)
				continue;
			break;
		case UPAGE_RES_UNPIN:
			if (!M.frame[f].pinned)
				continue;
			break;
		case UPAGE_RES_LAZY_FREE:
			if (M.frame[f].lazy ||
			    (!M.frame[f].resident && M.frame[f].reclaimed))
				continue;
			if (!M.frame[f].resident)
				for (t = 0; t < M.size; t++)
					if (M.slot[t].frame == f)
						after[t].frame = 0;
			break;
		}
		cands++;
	}
	/* PIN also fills holes: each is a frame newly pinned. */
	if (valid && op == UPAGE_RES_PIN)
		for (s = first; s < first + n; s++)
			cands += !M.slot[s].frame;
	want = !valid ? -EINVAL : op == UPAGE_RES_EVICT && busy ? -EBUSY : 0;
	lo = cands;
	hi = cands;
	if (op == UPAGE_RES_EVICT)
		lo = cands - maybe;
	if (op == UPAGE_RES_PREFETCH)
		hi = cands + maybe;
	note("%s: expect %s, %llu frames", what, err_name(want), (unsigned long long)lo);

	for (s = 0; s < M.size; s++)
		hot[s] = s >= first && s < first + n;
	if (valid && (op == UPAGE_RES_EVICT || op == UPAGE_RES_LAZY_FREE))
		hammers_start(after, hot);
	memset(&res, 0, sizeof(res));
	res.size = sizeof(res);
	res.op = op;
	res.first = first;
	res.n = n;
	if (op == UPAGE_RES_PREFETCH && chance(30))
		res.flags = UPAGE_RES_POPULATE;
	ret = ioctl(space_fd, UPAGE_RESIDENCY, &res) ? -errno : 0;
	done = res.out_frames;
	hammers_stop();
	tot.ops++;
	if (ret != want)
		mismatch("%s: expected %s, found %s", what, err_name(want), err_name(ret));
	check_count(what, ret, done, lo, hi);
	if (want == -EBUSY && done)
		mismatch("%s: EBUSY, yet out_frames is %llu", what,
			 (unsigned long long)done);
	if (ret)
		return;

	for (s = first; s < first + n; s++) {
		struct mslot *sl = &M.slot[s];
		struct mframe *fr;

		f = sl->frame;
		if (!f && op == UPAGE_RES_PIN) {
			/* PIN fills a hole with a zeroed frame. */
			f = frame_new(0);
			sl->frame = f;
		}
		if (!f)
			continue;
		fr = &M.frame[f];
		switch (op) {
		case UPAGE_RES_EVICT:
			if (!fr->resident || fr->pinned)
				break;
			if (fr->lazy) {
				/* Not written since: dropped, not written out. */
				frame_reclaimed(f, false);
			} else {
				fr->resident = false;
				M.evictions++;
				pte_frame(f, PTE_NONE);
			}
			break;
		case UPAGE_RES_PREFETCH:
			fr->resident = true;
			break;
		case UPAGE_RES_PIN:
			fr->resident = true;
			fr->pinned = true;
			break;
		case UPAGE_RES_UNPIN:
			fr->pinned = false;
			break;
		case UPAGE_RES_LAZY_FREE:
			if (fr->lazy || (!fr->resident && fr->reclaimed))
				break;
			if (!fr->resident) {
				/* Evicted: its stored copy goes now. */
				frame_reclaimed(f, false);
				break;
			}
			fr->lazy = true;
			pte_frame(f, PTE_NONE);
			break;
		}
	}
	if (res.flags & UPAGE_RES_POPULATE) {
		bool range[MAX_SLOTS] = { false };

		for (s = first; s < first + n; s++)
			range[s] = true;
		model_populated(0, range);
	}
}

static void step_drop_caches(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);

	note("drop_caches: the shrinker may reclaim lazily freed frames");
	if (fd < 0)
		return;
	if (write(fd, "2", 1) != 1)
		note("  drop_caches: %s", strerror(errno));
	close(fd);
	tot.ops++;
}

static void step_track(void)
{
	struct upage_track t = { .size = sizeof(t) };
	uint64_t first, n;
	bool valid, start = chance(70);
	uint32_t s;
	int want, ret;

	pick_range(&first, &n, &valid);
	t.op = start ? UPAGE_TRACK_START : UPAGE_TRACK_STOP;
	t.first = first;
	t.n = n;
	want = valid ? 0 : -EINVAL;
	if (valid && chance(3)) {
		t.op = 3 + below(5);
		want = -EOPNOTSUPP;
	}
	note("TRACK %s slots %llu+%llu: expect %s", start ? "START" : "STOP",
	     (unsigned long long)first, (unsigned long long)n, err_name(want));
	ret = ioctl(space_fd, UPAGE_TRACK, &t) ? -errno : 0;
	tot.ops++;
	if (ret != want)
		mismatch("TRACK op %u slots %llu+%llu: expected %s, found %s", t.op,
			 (unsigned long long)first, (unsigned long long)n,
			 err_name(want), err_name(ret));
	if (ret)
		return;
	for (s = first; s < first + n; s++) {
		M.slot[s].tracked = start;
		M.slot[s].dirty = false;
		/* Arming write-protects the slot and every alias of its frame. */
		if (start) {
			pte_slot(s, PTE_RO);
			if (M.slot[s].frame)
				pte_frame(M.slot[s].frame, PTE_RO);
		}
	}
}

static void step_dirty(void)
{
	uint64_t first, n, bm[2], nr = 0xdead, want_nr = 0;
	bool valid, clear = chance(50);
	uint32_t s;
	int want, ret;

	pick_range(&first, &n, &valid);
	want = valid ? 0 : -EINVAL;
	memset(bm, 0xff, sizeof(bm));
	note("DIRTY%s slots %llu+%llu: expect %s", clear ? " CLEAR" : "",
	     (unsigned long long)first, (unsigned long long)n, err_name(want));
	ret = upage_dirty(space_fd, first, n, bm, clear ? UPAGE_DIRTY_CLEAR : 0, &nr);
	tot.ops++;
	if (ret != want)
		mismatch("DIRTY slots %llu+%llu: expected %s, found %s",
			 (unsigned long long)first, (unsigned long long)n,
			 err_name(want), err_name(ret));
	if (ret)
		return;
	for (s = first; s < first + n; s++) {
		struct mslot *sl = &M.slot[s];
		bool bit = bm[(s - first) / 64] >> ((s - first) % 64) & 1;

		/* A reclaim the model did not see yet is a change too. */
		if (bit && !(sl->tracked && sl->dirty) && sl->tracked &&
		    may_be_reclaimed(sl->frame))
			learn_by_query(sl->frame, "UPAGE_DIRTY reported it");
		if (bit != (sl->tracked && sl->dirty))
			mismatch("DIRTY slots %llu+%llu: slot %u is %s, expected %s (%s%s)",
				 (unsigned long long)first, (unsigned long long)n, s,
				 bit ? "dirty" : "clean",
				 sl->tracked && sl->dirty ? "dirty" : "clean",
				 sl->tracked ? "tracked" : "not tracked",
				 sl->tracked && !sl->dirty ?
				 ", not written or edited since armed" : "");
		want_nr += bit;
	}
	if (nr != want_nr)
		mismatch("DIRTY slots %llu+%llu: out_dirty %llu, %llu bits set",
			 (unsigned long long)first, (unsigned long long)n,
			 (unsigned long long)nr, (unsigned long long)want_nr);
	for (s = first; clear && s < first + n; s++) {
		struct mslot *sl = &M.slot[s];

		if (!sl->tracked || !sl->dirty)
			continue;
		sl->dirty = false;
		pte_slot(s, PTE_RO);
		if (sl->frame)
			pte_frame(sl->frame, PTE_RO);
	}
}

static void step_resize(void)
{
	uint64_t old = 0xdead, pages;
	uint32_t s, i, old_size = M.size;
	int p, m, ret;

	if (chance(5)) {
		struct upage_resize rz = { .size = sizeof(rz), .flags = 1, .pages = 1 };

		ret = ioctl(space_fd, UPAGE_RESIZE, &rz) ? -errno : 0;
		if (ret != -EOPNOTSUPP)
			mismatch("RESIZE with flags 1: expected EOPNOTSUPP, found %s",
				 err_name(ret));
		ret = upage_resize(space_fd, 1ULL << 50, &old);
		if (ret != -ENOSPC)
			mismatch("RESIZE to 2^50 pages: expected ENOSPC, found %s",
				 err_name(ret));
		note("RESIZE refused (flags, too large)");
		return;
	}
	pages = chance(50) ? below(M.size + 1) : M.size + below(MAX_SLOTS - M.size + 1);
	/* Small spaces now and then: batches then cover them many times. */
	if (chance(25))
		pages = 2 + below(5);
	if (chance(3))
		pages = 0;
	note("RESIZE %u -> %llu", M.size, (unsigned long long)pages);
	ret = upage_resize(space_fd, pages, &old);
	tot.ops++;
	if (ret || old != M.size)
		mismatch("RESIZE %u -> %llu: %s, out_old_pages %llu", M.size,
			 (unsigned long long)pages, err_name(ret),
			 (unsigned long long)old);
	for (s = pages; s < old_size; s++) {
		/* Cut off: unmapped everywhere, private copies too. */
		for (p = 0; p < MAX_PROCS; p++) {
			for (m = 0; m < MAX_MAPS && P[p].pid; m++) {
				struct map *mp = &P[p].map[m];

				if (!mp->addr || s < mp->pgoff || s >= mp->pgoff + mp->pages)
					continue;
				i = s - mp->pgoff;
				mp->copy[i] = false;
				mp->pte[i] = PTE_NONE;
				mp->wrote[i] = false;
			}
		}
		memset(&M.slot[s], 0, sizeof(M.slot[s]));
	}
	for (s = old_size; s < pages; s++) {
		memset(&M.slot[s], 0, sizeof(M.slot[s]));
		M.slot[s].prot = UPAGE_PROT_RW;
	}
	M.size = pages;
}

/* vmsplice a page into a pipe that nobody reads: its frame is pinned. */
static void step_splice(void)
{
	struct iovec iov;
	uint32_t k, s, f;
	unsigned int i;
	struct want w;
	ssize_t n;
	int m;

	for (k = 0; k < MAX_PIPES && pipe_frame[k]; k++)
		;
	m = pick_map(0, true);
	if (k == MAX_PIPES || m < 0 || !M.size)
		return;
	i = pick_page(0, m);
	s = P[0].map[m].pgoff + i;
	w = predict(0, m, i, false);
	if (s >= M.size || w.sig || w.trap != TRAP_NO)
		return;
	if (pipe2(pipes[k], O_CLOEXEC | O_NONBLOCK))
		return;
	iov.iov_base = P[0].map[m].addr + (size_t)i * PAGE;
	iov.iov_len = PAGE;
	n = vmsplice(pipes[k][1], &iov, 1, 0);
	tot.ops++;
	if (n != (ssize_t)PAGE)
		mismatch("vmsplice of slot %u through mapping %d: %zd (%s)", s, m, n,
			 strerror(errno));
	/* As a read: it fills a hole, pages in, maps. */
	apply_access(0, m, i, false, 0, NULL);
	f = M.slot[s].frame;
	M.frame[f].gup++;
	pipe_frame[k] = f;
	tot.splices++;
	note("vmsplice slot %u (frame F%u) into pipe %u: edits taking it must fail with EBUSY",
	     s, f, k);
}

/* Read a pipe: it holds the frame's page, with the frame's contents. */
static void drain_pipe(uint32_t k)
{
	static uint64_t buf[WORDS];
	uint32_t f = pipe_frame[k];
	size_t got = 0;
	struct ares r;
	struct want w = { .content = M.frame[f].content };
	ssize_t n;
	char e[200], g[200];

	while (got < PAGE) {
		n = read(pipes[k][0], (char *)buf + got, PAGE - got);
		if (n <= 0)
			mismatch("pipe %u (frame F%u): read %zd after %zu bytes", k, f,
				 n, got);
		got += n;
	}
	close(pipes[k][0]);
	close(pipes[k][1]);
	pipe_frame[k] = 0;
	M.frame[f].gup--;
	tot.ops++;
	memset(&r, 0, sizeof(r));
	decode(buf, true, &r);
	note("read pipe %u (frame F%u)", k, f);
	if (r.kind == 0 && w.content && may_be_reclaimed(f) &&
	    learn_by_query(f, "its spliced page reads zeros"))
		w.content = 0;
	if (r.kind < 0 || (r.kind ? r.serial : 0) != w.content)
		mismatch("pipe %u of frame F%u: expected %s, found %s", k, f,
			 describe(e, sizeof(e), 1, w.content),
			 describe(g, sizeof(g), r.kind, r.serial));
}

static void step_drain(void)
{
	uint32_t k, start = below(MAX_PIPES);

	for (k = 0; k < MAX_PIPES; k++)
		if (pipe_frame[(start + k) % MAX_PIPES]) {
			drain_pipe((start + k) % MAX_PIPES);
			return;
		}
}

/* UPAGE_QUERY_BY_ADDR of a page of a mapping of this process. */
static void step_query_addr(void)
{
	struct upage_slot_info info, by_slot;
	int m = pick_map(0, false), ret, want;
	uint64_t slot = 0xdead;
	unsigned int i;
	uint32_t s;

	if (m < 0)
		return;
	i = pick_page(0, m);
	s = P[0].map[m].pgoff + i;
	want = s < M.size ? 0 : -EINVAL;
	ret = upage_query_addr(space_fd, P[0].map[m].addr + (size_t)i * PAGE + 8,
			       &slot, &info);
	tot.ops++;
	note("QUERY_BY_ADDR mapping %d page %u (slot %u): expect %s", m, i, s,
	     err_name(want));
	if (ret != want || (!ret && slot != s))
		mismatch("QUERY_BY_ADDR of mapping %d page %u: expected %s and slot %u, found %s and slot %llu",
			 m, i, err_name(want), s, err_name(ret),
			 (unsigned long long)slot);
	if (!ret && (upage_query(space_fd, s, 1, &by_slot) ||
		     info.frame_id != by_slot.frame_id || info.state != by_slot.state ||
		     info.prot != by_slot.prot))
		mismatch("QUERY_BY_ADDR of slot %u differs from UPAGE_QUERY of it", s);
	/* An address in no mapping of the space. */
	ret = upage_query_addr(space_fd, &info, &slot, &info);
	if (ret != -ENOENT)
		mismatch("QUERY_BY_ADDR of a stack address: expected ENOENT, found %s",
			 err_name(ret));
}

/* ------------------------------------------------------------------ */
/* Traps.                                                              */

static void step_trap(void)
{
	struct upage_trap t = { .size = sizeof(t) };
	uint64_t first, n;
	uint32_t s, access = below(4);
	bool valid;
	int want, ret;

	if (chance(35))
		access = 0;
	pick_range(&first, &n, &valid);
	t.first = first;
	t.n = n;
	t.access = access;
	if (chance(10)) {
		/* The timeout stays 0: wait until answered. */
		t.flags = UPAGE_TRAP_SET_TIMEOUT;
	}
	want = valid ? 0 : -EINVAL;
	/* With the timeout flag, no slots and no access: only the timeout. */
	if (!n && t.flags && !access)
		want = 0;
	if (valid && chance(3)) {
		t.access = 4 << below(3);
		want = -EOPNOTSUPP;
	} else if (valid && chance(3)) {
		t.timeout_ms = 5;
		t.flags = 0;
		want = -EINVAL;
	}
	note("TRAP slots %llu+%llu access %s%s: expect %s",
	     (unsigned long long)first, (unsigned long long)n,
	     access == 0 ? "none (lift)" : access == 1 ? "READ" :
	     access == 2 ? "WRITE" : "READ|WRITE",
	     t.flags ? " (+timeout 0)" : "", err_name(want));
	ret = ioctl(space_fd, UPAGE_TRAP, &t) ? -errno : 0;
	tot.ops++;
	if (ret != want)
		mismatch("TRAP slots %llu+%llu access %#x flags %#x timeout %u: expected %s, found %s",
			 (unsigned long long)first, (unsigned long long)n, t.access,
			 t.flags, t.timeout_ms, err_name(want), err_name(ret));
	if (ret)
		return;
	for (s = first; s < first + n; s++) {
		M.slot[s].trap = access;
		/* Setting a trap unmaps (read) or write-protects (write). */
		if (access & UPAGE_TRAP_READ)
			pte_slot(s, PTE_NONE);
		else if (access)
			pte_slot(s, PTE_RO);
	}
}

/* An access that may wait on a trap, made by the accessor thread or a child. */
struct waiter {
	int p, m;
	unsigned int i;
	bool write, done, answered;
	uint64_t serial;
	struct areq q;
	struct want w;
	uintptr_t addr;		/* where it first touches */
	pid_t tid;
	struct ares r;
	int answer;		/* UPAGE_RESOLVE_* that let it go */
};

static int waiter_fd(const struct waiter *a)
{
	return a->p ? P[a->p].sock : acc_res[0];
}

static void waiter_start(struct waiter *a)
{
	a->q.map = a->m;
	a->q.page = a->i;
	a->q.write = a->write;
	a->q.first = below(WORDS);
	a->q.full = 1;
	a->w = predict(a->p, a->m, a->i, a->write);
	if (a->write)
		a->serial = write_serial(a->p, a->m, a->i, a->q.hdr);
	a->addr = (uintptr_t)P[a->p].map[a->m].addr + (size_t)a->i * PAGE +
		  a->q.first * 8;
	a->tid = a->p ? P[a->p].pid : accessor_tid;
	if (a->p) {
		struct creq cq = { .cmd = C_ACCESS, .map = a->m, .acc = a->q };

		child_send(a->p, &cq);
	} else {
		accessor_send(a->m, &a->q);
	}
	tot.accesses++;
}

static bool waiter_ready(const struct waiter *a, int ms)
{
	struct pollfd pfd = { .fd = waiter_fd(a), .events = POLLIN };

	return poll(&pfd, 1, ms) == 1;
}

static void waiter_collect(struct waiter *a)
{
	ssize_t n = read(waiter_fd(a), &a->r, sizeof(a->r));

	if (n != sizeof(a->r)) {
		if (a->p)
			child_died(a->p, "died during an access");
		mismatch("the accessor thread's result: %zd", n);
	}
	a->done = true;
}

/*
 * The access of @a completed (let go by @answer, or never trapped):
 * check it against the model as it is now, and apply it.
 */
static void waiter_finish(struct waiter *a)
{
	char wb[200];
	struct want w;

	who(wb, sizeof(wb), a->p, a->m, a->i, a->write);
	if (a->answer == UPAGE_RESOLVE_SIGBUS) {
		if (a->r.sig != SIGBUS || a->r.addr != a->addr)
			mismatch("%s answered with SIGBUS: found %s at %#llx, expected SIGBUS at %#lx",
				 wb, sig_name(a->r.sig), (unsigned long long)a->r.addr,
				 (unsigned long)a->addr);
		return;
	}
	/*
	 * Not let go by an answer: it must not have been trapped, unless
	 * an answer to another thread lifted the trap before it faulted.
	 */
	w = predict(a->p, a->m, a->i, a->write);
	if (!a->answered && a->w.trap == TRAP_MUST && w.trap == TRAP_MUST)
		mismatch("%s completed without trapping (%s at %#llx): the slot traps %s and its page could not be mapped%s",
			 wb, sig_name(a->r.sig), (unsigned long long)a->r.addr,
			 a->write ? "writes" : "reads",
			 a->write ? " writable" : "");
	/* A thread let through a trap completes its access as the slot is now. */
	w.trap = TRAP_NO;
	check_access(a->p, a->m, a->i, a->write, &w, &a->r, a->addr);
	if (!a->r.sig)
		apply_access(a->p, a->m, a->i, a->write, a->serial, &a->r);
}

/* Read one forwarded event within @ms: 1, or 0 if none came. */
static int next_event(struct upage_trap_event *ev, int ms)
{
	struct pollfd pfd = { .fd = ev_pipe[0], .events = POLLIN };

	if (poll(&pfd, 1, ms) != 1)
		return 0;
	if (read(ev_pipe[0], ev, sizeof(*ev)) != sizeof(*ev))
		mismatch("reading the handler's events: %s", strerror(errno));
	return 1;
}

static int resolve(uint32_t action, uint32_t flags, uint64_t first, uint64_t n,
		   const void *src, uint64_t *woken)
{
	*woken = 0xdead;
	tot.ops++;
	return upage_resolve(space_fd, first, n, action, flags, src, woken);
}

static const char *action_name(uint32_t a)
{
	switch (a) {
	case UPAGE_RESOLVE_MAP: return "MAP";
	case UPAGE_RESOLVE_COPY: return "COPY";
	case UPAGE_RESOLVE_ZERO: return "ZERO";
	case UPAGE_RESOLVE_SIGBUS: return "SIGBUS";
	}
	return "BAD";
}

/*
 * Apply UPAGE_RESOLVE to the model and the module: MAP and SIGBUS change
 * nothing, ZERO discards the slots (an edit: EBUSY on a spliced frame),
 * COPY fills them (EEXIST unless all are holes), LIFT lifts their traps.
 * Returns the module's result; a wrong one is a mismatch.
 */
static int resolve_apply(uint32_t action, uint32_t flags, uint64_t first,
			 uint64_t n, uint64_t *woken, unsigned int max_woken,
			 unsigned int min_woken)
{
	static uint64_t buf[4][WORDS];
	uint64_t serial[4] = { 0 }, hdr[HDR], s;
	struct upage_edit_op op = { .op = UPAGE_OP_DISCARD, .dst = first, .n = n };
	int want = 0, ret;
	struct sim S;
	uint32_t idx;
	bool either;

	if (action == UPAGE_RESOLVE_COPY) {
		for (s = first; s < first + n; s++)
			if (M.slot[s].frame)
				want = -EEXIST;
		for (s = 0; s < n; s++) {
			serial[s] = new_serial(0, first + s, M.nr_frames + s, 'c');
			stamp_hdr(serial[s], hdr);
			make_page(buf[s], hdr);
		}
	} else if (action == UPAGE_RESOLVE_ZERO) {
		want = sim_batch(&S, &op, 1, &idx, &either);
	}
	ret = resolve(action, flags, first, n,
		      action == UPAGE_RESOLVE_COPY ? buf : NULL, woken);
	note("  RESOLVE %s%s slots %llu+%llu: %s, woke %llu (expected %s)",
	     action_name(action), flags ? "|LIFT" : "",
	     (unsigned long long)first, (unsigned long long)n, err_name(ret),
	     (unsigned long long)*woken, err_name(want));
	if (ret != want)
		mismatch("RESOLVE %s%s slots %llu+%llu: expected %s, found %s",
			 action_name(action), flags ? "|LIFT" : "",
			 (unsigned long long)first, (unsigned long long)n,
			 err_name(want), err_name(ret));
	if (ret)
		return ret;
	if (*woken < min_woken || *woken > max_woken)
		mismatch("RESOLVE %s slots %llu+%llu: woke %llu threads, expected %u to %u",
			 action_name(action), (unsigned long long)first,
			 (unsigned long long)n, (unsigned long long)*woken,
			 min_woken, max_woken);
	if (action == UPAGE_RESOLVE_ZERO)
		sim_commit(&S, 1);
	for (s = first; s < first + n; s++) {
		struct mslot *sl = &M.slot[s];

		if (action == UPAGE_RESOLVE_COPY) {
			sl->frame = frame_new(serial[s - first]);
			if (sl->tracked)
				sl->dirty = true;
		}
		if (flags & UPAGE_RESOLVE_LIFT)
			sl->trap = 0;
	}
	return 0;
}

/*
 * Answer an event of slot @s, @waiting threads at most waiting on it:
 * some action, else MAP; returns the action, *woken how many went.
 */
static uint32_t answer(uint32_t s, unsigned int waiting, uint64_t *woken)
{
	uint32_t r = below(100), action, flags = chance(40) ? UPAGE_RESOLVE_LIFT : 0;
	uint64_t first = s, n = 1;

	action = r < 45 ? UPAGE_RESOLVE_MAP : r < 60 ? UPAGE_RESOLVE_ZERO :
		 r < 75 ? UPAGE_RESOLVE_COPY : UPAGE_RESOLVE_SIGBUS;
	/* Sometimes a few slots around it too. */
	if (chance(30) && action != UPAGE_RESOLVE_COPY) {
		first = s - below(s + 1 < 3 ? s + 1 : 3);
		n = s - first + 1 + below(M.size - s < 3 ? M.size - s : 3);
	}
	if (resolve_apply(action, flags, first, n, woken, waiting, 1)) {
		/* Refused (EEXIST, EBUSY): nobody was let go; map it then. */
		action = UPAGE_RESOLVE_MAP;
		resolve_apply(action, flags, s, 1, woken, waiting, 1);
	}
	return action;
}

/*
 * Accesses to a trapped slot: one by the accessor thread, sometimes a
 * read by a child as well. Each event must name the slot, the exact
 * address, the access and the thread; each answer must let the waiting
 * threads go as it says; an access that cannot avoid a fault must not
 * complete without an event; an access not trapped must not wait.
 */
static void step_trap_session(void)
{
	struct waiter w[2];
	struct upage_trap_event ev;
	unsigned int nw = 1, k, running, tries;
	int c = 0, m;
	uint32_t s;
	double deadline;

	if (!M.size)
		return;
	/* A slot, mostly a trapped one. */
	s = below(M.size);
	for (k = 0; k < M.size && chance(80); k++)
		if (M.slot[(s + k) % M.size].trap) {
			s = (s + k) % M.size;
			break;
		}
	if (!M.slot[s].trap && chance(70)) {
		struct upage_trap t = { .size = sizeof(t), .first = s, .n = 1,
					.access = 1 + below(3) };

		if (ioctl(space_fd, UPAGE_TRAP, &t))
			mismatch("TRAP slot %u access %u: %s", s, t.access,
				 strerror(errno));
		note("TRAP slot %u access %u", s, t.access);
		M.slot[s].trap = t.access;
		pte_slot(s, t.access & UPAGE_TRAP_READ ? PTE_NONE : PTE_RO);
	}
	memset(w, 0, sizeof(w));
	w[0].write = chance(M.slot[s].trap == UPAGE_TRAP_WRITE ? 70 : 40);
	for (tries = 0; tries < 16; tries++) {
		m = pick_map(0, chance(70));
		if (m >= 0 && s >= P[0].map[m].pgoff &&
		    s < P[0].map[m].pgoff + P[0].map[m].pages)
			break;
		m = -1;
	}
	if (m < 0)
		return;
	w[0].m = m;
	w[0].i = s - P[0].map[m].pgoff;
	/* A read from a child joins the same event, or queues its own. */
	for (k = 1; k < MAX_PROCS && !w[0].write && chance(40); k++) {
		c = 1 + below(MAX_PROCS - 1);
		if (!P[c].pid)
			continue;
		m = pick_map(c, false);
		if (m < 0 || s < P[c].map[m].pgoff ||
		    s >= P[c].map[m].pgoff + P[c].map[m].pages)
			continue;
		/*
		 * Only if both must trap: an access that may complete on its
		 * own could do so before or after an answer changes the slot.
		 */
		if (predict(0, w[0].m, w[0].i, false).trap != TRAP_MUST ||
		    predict(c, m, s - P[c].map[m].pgoff, false).trap != TRAP_MUST)
			break;
		w[1].p = c;
		w[1].m = m;
		w[1].i = s - P[c].map[m].pgoff;
		nw = 2;
		break;
	}
	note("trap session on slot %u (traps %#x): %s%s", s, M.slot[s].trap,
	     w[0].write ? "write" : "read", nw == 2 ? ", and a read by a child" : "");
	tot.sessions++;
	for (k = 0; k < nw; k++)
		waiter_start(&w[k]);

	deadline = now_s() + (cfg.debug_kernel ? 60 : 30);
	for (;;) {
		for (k = 0, running = 0; k < nw; k++) {
			if (!w[k].done && waiter_ready(&w[k], 0)) {
				waiter_collect(&w[k]);
				waiter_finish(&w[k]);
			}
			running += !w[k].done;
		}
		if (!running)
			break;
		if (!next_event(&ev, 50)) {
			if (now_s() > deadline)
				mismatch("trap session on slot %u: an access neither completed nor trapped within %.0f s",
					 s, cfg.debug_kernel ? 60.0 : 30.0);
			continue;
		}
		tot.events++;
		for (k = 0; k < nw; k++)
			if (!w[k].done && ev.tid == (uint32_t)w[k].tid)
				break;
		if (k == nw || ev.slot != s || ev.address != w[k].addr ||
		    ev.access != (w[k].write ? UPAGE_TRAP_WRITE : UPAGE_TRAP_READ) ||
		    ev.flags || ev.__reserved)
			mismatch("trap event slot %llu address %#llx access %u tid %u flags %u: expected slot %u, address %#lx, access %s, a tid of the accessors (%d, %d)",
				 (unsigned long long)ev.slot,
				 (unsigned long long)ev.address, ev.access, ev.tid,
				 ev.flags, s, (unsigned long)w[0].addr,
				 w[0].write ? "WRITE" : "READ", w[0].tid,
				 nw > 1 ? w[1].tid : 0);
		if (w[k].w.trap == TRAP_NO)
			mismatch("trap event for a %s of slot %u that the slot does not trap (traps %#x, protection %s)",
				 w[k].write ? "write" : "read", s, M.slot[s].trap,
				 prot_name(M.slot[s].prot));
		{
			unsigned int j, waiting = 0;
			uint64_t woken;
			uint32_t action;

			for (j = 0; j < nw; j++)
				waiting += !w[j].done;
			action = answer(s, waiting, &woken);
			/*
			 * The event's thread was let go; the other one too if
			 * it waited (joined the event) by then.
			 */
			for (j = 0; j < nw; j++) {
				if (w[j].done || (j != k && woken < 2))
					continue;
				w[j].answered = true;
				w[j].answer = action;
				if (!waiter_ready(&w[j], now_s() < deadline ?
						  (int)((deadline - now_s()) * 1000) + 1 : 1))
					mismatch("trap session on slot %u: a thread let go by %s did not complete",
						 s, action_name(action));
				waiter_collect(&w[j]);
				waiter_finish(&w[j]);
			}
		}
	}
	/* Every event was answered: none may be left. */
	if (next_event(&ev, 0))
		mismatch("trap session on slot %u: a stray event (slot %llu, access %u, tid %u)",
			 s, (unsigned long long)ev.slot, ev.access, ev.tid);
}

/* UPAGE_RESOLVE with nobody waiting: wakes nobody, still acts. */
static void step_resolve(void)
{
	uint64_t first, n, woken;
	bool valid;
	uint32_t action = 1 + below(4), flags = chance(40) ? UPAGE_RESOLVE_LIFT : 0;
	int ret;

	pick_range(&first, &n, &valid);
	if (action == UPAGE_RESOLVE_COPY && n > 4)
		n = 4;
	if (!valid) {
		ret = resolve(action, flags, first, n, NULL, &woken);
		if (ret != -EINVAL)
			mismatch("RESOLVE %s slots %llu+%llu (invalid range): expected EINVAL, found %s",
				 action_name(action), (unsigned long long)first,
				 (unsigned long long)n, err_name(ret));
		note("RESOLVE invalid range: %s", err_name(ret));
		return;
	}
	if (chance(5)) {
		ret = resolve(chance(50) ? 0 : 5, 0, first, n, NULL, &woken);
		if (ret != -EOPNOTSUPP)
			mismatch("RESOLVE with a bad action: expected EOPNOTSUPP, found %s",
				 err_name(ret));
		ret = resolve(UPAGE_RESOLVE_MAP, 0, first, n, &woken, &woken);
		if (ret != -EINVAL)
			mismatch("RESOLVE MAP with a source: expected EINVAL, found %s",
				 err_name(ret));
		note("RESOLVE refused (bad action, MAP with a source)");
		return;
	}
	resolve_apply(action, flags, first, n, &woken, 0, 0);
}

/*
 * A trapped read that nobody answers ends in SIGBUS after the space's
 * timeout; the event, if the handler read it in time, is dropped.
 */
static void step_trap_timeout(void)
{
	struct upage_trap t = { .size = sizeof(t) };
	struct upage_trap_event ev;
	struct waiter w;
	double end;
	int m, ret;
	uint32_t s;

	m = pick_map(0, true);
	if (m < 0 || !M.size)
		return;
	memset(&w, 0, sizeof(w));
	w.m = m;
	w.i = pick_page(0, m);
	s = P[0].map[m].pgoff + w.i;
	if (s >= M.size)
		return;
	if (!(M.slot[s].trap & UPAGE_TRAP_READ)) {
		t.first = s;
		t.n = 1;
		t.access = UPAGE_TRAP_READ | (M.slot[s].trap & UPAGE_TRAP_WRITE);
		ret = ioctl(space_fd, UPAGE_TRAP, &t) ? -errno : 0;
		if (ret)
			mismatch("TRAP slot %u: %s", s, err_name(ret));
		M.slot[s].trap = t.access;
		pte_slot(s, PTE_NONE);
	}
	if (predict(0, m, w.i, false).trap != TRAP_MUST)
		return;
	memset(&t, 0, sizeof(t));
	t.size = sizeof(t);
	t.flags = UPAGE_TRAP_SET_TIMEOUT;
	t.timeout_ms = 200;
	if (ioctl(space_fd, UPAGE_TRAP, &t))
		mismatch("TRAP timeout 200 ms: %s", strerror(errno));
	note("trap timeout session on slot %u: a read nobody answers", s);
	tot.sessions++;
	waiter_start(&w);
	end = now_s() + (cfg.debug_kernel ? 60 : 30);
	while (!waiter_ready(&w, 50)) {
		if (next_event(&ev, 0) && ev.slot != s)
			mismatch("timeout session on slot %u: an event for slot %llu",
				 s, (unsigned long long)ev.slot);
		if (now_s() > end)
			mismatch("a trapped read of slot %u did not time out", s);
	}
	waiter_collect(&w);
	t.timeout_ms = 0;
	if (ioctl(space_fd, UPAGE_TRAP, &t))
		mismatch("TRAP timeout 0: %s", strerror(errno));
	while (next_event(&ev, 0))
		if (ev.slot != s)
			mismatch("timeout session on slot %u: an event for slot %llu",
				 s, (unsigned long long)ev.slot);
	w.answered = true;
	w.answer = UPAGE_RESOLVE_SIGBUS;
	waiter_finish(&w);
}

/* ------------------------------------------------------------------ */
/* Checks after every step.                                            */

static uint32_t want_state(uint32_t s)
{
	const struct mslot *sl = &M.slot[s];
	const struct mframe *fr = &M.frame[sl->frame];
	uint32_t st = 0;

	if (sl->tracked)
		st |= UPAGE_SLOT_TRACKED;
	if (sl->tracked && sl->dirty)
		st |= UPAGE_SLOT_DIRTY;
	if (sl->trap & UPAGE_TRAP_READ)
		st |= UPAGE_SLOT_TRAP_READ;
	if (sl->trap & UPAGE_TRAP_WRITE)
		st |= UPAGE_SLOT_TRAP_WRITE;
	if (!sl->frame)
		return st;
	if (fr->resident)
		st |= UPAGE_SLOT_RESIDENT;
	else if (!fr->reclaimed)
		st |= UPAGE_SLOT_EVICTED;
	if (fr->lazy)
		st |= UPAGE_SLOT_LAZY;
	if (fr->reclaimed)
		st |= UPAGE_SLOT_RECLAIMED;
	if (sl->cow)
		st |= UPAGE_SLOT_COW;
	if (fr->pinned)
		st |= UPAGE_SLOT_PINNED;
	return st;
}

/* UPAGE_QUERY of every slot against the model. */
static void check_query(void)
{
	struct upage_slot_info info[MAX_SLOTS];
	char a[160], b[160];
	uint32_t s, t, f, g;
	int ret;

	last_info_n = 0;
	if (!M.size) {
		ret = upage_query(space_fd, 0, 1, info);
		if (ret != -EINVAL)
			mismatch("QUERY of slot 0 of an empty space: expected EINVAL, found %s",
				 err_name(ret));
		return;
	}
	memset(info, 0xee, sizeof(info));
	ret = upage_query(space_fd, 0, M.size, info);
	if (ret)
		mismatch("QUERY of slots 0+%u: %s", M.size, err_name(ret));
	memcpy(last_info, info, sizeof(info[0]) * M.size);
	last_info_n = M.size;
	if (chance(10)) {
		ret = upage_query(space_fd, M.size - 1, 2, info);
		if (ret != -EINVAL)
			mismatch("QUERY past the end: expected EINVAL, found %s",
				 err_name(ret));
		memcpy(info, last_info, sizeof(info[0]) * M.size);
	}
	/* What the shrinker did since: learn it first (never a pinned frame). */
	for (s = 0; s < M.size; s++) {
		f = M.slot[s].frame;
		/* Still LAZY: reclaimed before its lazy free, not since. */
		if (may_be_reclaimed(f) &&
		    (info[s].state & UPAGE_SLOT_RECLAIMED) &&
		    !(info[s].state & UPAGE_SLOT_LAZY))
			learn_reclaim(f, info[s].state & UPAGE_SLOT_RESIDENT,
				      "UPAGE_QUERY says RECLAIMED");
	}
	for (s = 0; s < M.size; s++) {
		const struct mslot *sl = &M.slot[s];
		const struct upage_slot_info *in = &info[s];
		uint32_t st = want_state(s), aliases;

		f = sl->frame;
		aliases = f ? frame_slots(f) : 0;
		if (in->prot != sl->prot || in->state != st ||
		    !in->frame_id != !f || in->nr_aliases != aliases ||
		    in->__reserved || (f && M.frame[f].kid && in->frame_id != M.frame[f].kid))
			mismatch("QUERY slot %u: expected %s, frame F%u (id %llu), %u aliases, prot %s, state %s; found id %llu, %u aliases, prot %s, state %s",
				 s, f ? "a frame" : "a hole", f,
				 (unsigned long long)M.frame[f].kid, aliases,
				 prot_name(sl->prot), state_str(a, sizeof(a), st),
				 (unsigned long long)in->frame_id, in->nr_aliases,
				 prot_name(in->prot), state_str(b, sizeof(b), in->state));
		if (!f || M.frame[f].kid)
			continue;
		/* First sight of this frame: its id must be no other's. */
		for (t = 0; t < M.size; t++) {
			g = M.slot[t].frame;
			if (g && g != f && M.frame[g].kid == in->frame_id)
				mismatch("QUERY slot %u: frame id %llu is frame F%u's (slot %u), but the slot shows frame F%u",
					 s, (unsigned long long)in->frame_id, g, t, f);
		}
		M.frame[f].kid = in->frame_id;
	}
}

static void check_stats(void)
{
	struct upage_stats st;
	uint64_t frames = 0;
	uint32_t s, t;

	memset(&st, 0, sizeof(st));
	st.size = sizeof(st);
	if (ioctl(space_fd, UPAGE_STATS, &st))
		mismatch("STATS: %s", strerror(errno));
	for (s = 0; s < M.size; s++) {
		if (!M.slot[s].frame)
			continue;
		for (t = 0; t < s && M.slot[t].frame != M.slot[s].frame; t++)
			;
		frames += t == s;
	}
	if (st.out_pages != M.size || st.out_frames != frames ||
	    st.out_edits != M.edits || st.out_batches != M.batches ||
	    st.out_cow_breaks != M.cow_breaks || st.out_evictions != M.evictions)
		mismatch("STATS: pages %llu frames %llu edits %llu batches %llu cow breaks %llu evictions %llu; expected %u %llu %llu %llu %llu %llu",
			 (unsigned long long)st.out_pages,
			 (unsigned long long)st.out_frames,
			 (unsigned long long)st.out_edits,
			 (unsigned long long)st.out_batches,
			 (unsigned long long)st.out_cow_breaks,
			 (unsigned long long)st.out_evictions, M.size,
			 (unsigned long long)frames, (unsigned long long)M.edits,
			 (unsigned long long)M.batches,
			 (unsigned long long)M.cow_breaks,
			 (unsigned long long)M.evictions);
}

/*
 * Which pages of a mapping a check reads: not those that would wait on a
 * trap, holes only now and then (reading fills them, and holes are worth
 * keeping), and pages beyond the end only now and then.
 */
static bool check_skips(const struct map *mp, unsigned int i,
			const bool *read_hole, bool beyond)
{
	uint32_t s = mp->pgoff + i;

	if (s >= M.size)
		return !beyond;
	if (!mp->shared && mp->copy[i])
		return false;
	if (M.slot[s].trap & UPAGE_TRAP_READ)
		return true;
	return !M.slot[s].frame && !read_hole[s];
}

static void check_contents(void)
{
	bool read_hole[MAX_SLOTS], beyond = chance(30);
	int m, full = below(MAX_MAPS), p;
	unsigned int i;
	uint32_t s;

	for (s = 0; s < M.size; s++)
		read_hole[s] = chance(25);
	for (m = 0; m < MAX_MAPS; m++) {
		const struct map *mp = &P[0].map[m];

		for (i = 0; mp->addr && i < mp->pages; i++) {
			struct areq q = { .map = m, .page = i, .full = m == full };
			struct want w;
			struct ares r;

			if (check_skips(mp, i, read_hole, beyond))
				continue;
			w = predict(0, m, i, false);
			do_access(mp->addr, &q, &r);
			check_access(0, m, i, false, &w, &r,
				     (uintptr_t)mp->addr + (size_t)i * PAGE);
			if (!r.sig)
				apply_access(0, m, i, false, 0, &r);
		}
	}
	/* One child's mappings now and then. */
	p = 1 + below(MAX_PROCS - 1);
	if (!P[p].pid || chance(50))
		return;
	for (m = 0; m < MAX_MAPS; m++) {
		const struct map *mp = &P[p].map[m];
		struct creq q = { .cmd = C_CHECK, .map = m };
		static struct ares r[WIN];

		if (!mp->addr)
			continue;
		for (i = 0; i < mp->pages; i++) {
			if (check_skips(mp, i, read_hole, beyond))
				q.skip |= 1ULL << i;
			if (chance(20))
				q.full |= 1ULL << i;
		}
		child_send(p, &q);
		child_recv(p, r, sizeof(r), 60000);
		for (i = 0; i < mp->pages; i++) {
			struct want w;

			if (q.skip >> i & 1)
				continue;
			w = predict(p, m, i, false);
			check_access(p, m, i, false, &w, &r[i],
				     (uintptr_t)mp->addr + (size_t)i * PAGE);
			if (!r[i].sig)
				apply_access(p, m, i, false, 0, &r[i]);
		}
	}
}

/* The kernel log: a splat is a failure at the step that caused it. */
static int kmsg_fd = -1;

static void check_kmsg(void)
{
	static const char *const splats[] = {
		"BUG:", "WARNING:", "Oops", "general protection", "KASAN",
		"UBSAN", "Bad page", "kernel BUG", "circular locking",
		"possible recursive locking", "suspicious RCU usage",
		"page_table_check",
	};
	char rec[1024];
	unsigned int i;
	ssize_t n;

	if (kmsg_fd < 0)
		return;
	for (;;) {
		n = read(kmsg_fd, rec, sizeof(rec) - 1);
		if (n < 0 && errno == EPIPE)
			continue;	/* overwritten records: read on */
		if (n <= 0)
			return;
		rec[n] = 0;
		for (i = 0; i < ARRAY_SIZE(splats); i++)
			if (strstr(rec, splats[i]))
				break;
		if (i == ARRAY_SIZE(splats))
			continue;
		/* The splat and what follows it, then the report. */
		say("kernel log:");
		for (i = 0; i < 40 && n > 0; i++) {
			char *text = strchr(rec, ';');

			rec[strcspn(rec, "\n")] = 0;
			say("  %s", text ? text + 1 : rec);
			usleep(i ? 0 : 200000);
			n = read(kmsg_fd, rec, sizeof(rec) - 1);
			if (n > 0)
				rec[n] = 0;
		}
		mismatch("a kernel splat (above)");
	}
}

static void check_all(void)
{
	struct upage_trap_event ev;

	check_kmsg();
	check_query();
	check_stats();
	check_contents();
	if (next_event(&ev, 0))
		mismatch("a trap event nobody caused: slot %llu, access %u, tid %u",
			 (unsigned long long)ev.slot, ev.access, ev.tid);
	check_kmsg();
}

/* ------------------------------------------------------------------ */
/* Rounds: one space each, from one seed.                              */

static const struct {
	void (*fn)(void);
	unsigned int weight;
} steps[] = {
	{ step_edit, 22 },
	{ step_edit_fail, 8 },
	{ step_write, 15 },
	{ step_read, 3 },
	{ step_map, 5 },
	{ step_fork, 2 },
	{ step_resize, 3 },
	{ step_residency, 10 },
	{ step_drop_caches, 1 },
	{ step_track, 4 },
	{ step_dirty, 5 },
	{ step_trap, 4 },
	{ step_trap_session, 6 },
	{ step_trap_timeout, 1 },
	{ step_resolve, 1 },
	{ step_splice, 2 },
	{ step_drain, 2 },
	{ step_query_addr, 1 },
};

static void one_step(void)
{
	unsigned int total = 0, i, r;

	for (i = 0; i < ARRAY_SIZE(steps); i++)
		total += steps[i].weight;
	r = below(total);
	for (i = 0; r >= steps[i].weight; i++)
		r -= steps[i].weight;
	steps[i].fn();
}

/* Where each thread of process @pid waits, from /proc, for a hang report. */
static void dump_stacks(pid_t pid)
{
	char path[320], line[256];
	struct dirent *de;
	DIR *dir;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	dir = opendir(path);
	if (!dir)
		return;
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", pid, de->d_name);
		f = fopen(path, "r");
		if (f && fgets(line, sizeof(line), f))
			say("  task %s of %d: %.60s", de->d_name, pid, line);
		if (f)
			fclose(f);
		snprintf(path, sizeof(path), "/proc/%d/task/%s/stack", pid, de->d_name);
		f = fopen(path, "r");
		while (f && fgets(line, sizeof(line), f)) {
			line[strcspn(line, "\n")] = 0;
			say("    %s", line);
		}
		if (f)
			fclose(f);
	}
	closedir(dir);
}

static void *watchdog_fn(void *arg)
{
	unsigned long last = 0, seen;
	int idle = 0, c;

	(void)arg;
	for (;;) {
		sleep(1);
		seen = atomic_load(&progress);
		idle = seen == last ? idle + 1 : 0;
		last = seen;
		if (idle < STALL_S)
			continue;
		say("MISMATCH at step %lu, seed %#llx: no progress for %d s (a hang?)",
		    step_no, (unsigned long long)round_seed, STALL_S);
		say("  replay: UPAGE_MODEL_SEED=%#llx", (unsigned long long)round_seed);
		dump_ring();
		for (c = 0; c < MAX_PROCS; c++)
			if (P[c].pid)
				dump_stacks(P[c].pid);
		fflush(stdout);
		_exit(KSFT_FAIL);
	}
	return NULL;
}

/* Let any thread that waits on a trap go, and stop the threads. */
static void round_cleanup(void)
{
	tot.hammer_reads += atomic_load(&H.reads);
	struct acc_msg quit = { .base = NULL };
	struct timespec ts;
	uint64_t woken;
	int c, m;

	if (M.size)
		upage_resolve(space_fd, 0, M.size, UPAGE_RESOLVE_MAP,
			      UPAGE_RESOLVE_LIFT, NULL, &woken);
	for (c = 1; c < MAX_PROCS; c++)
		if (P[c].pid)
			child_exit(c, true);
	for (c = 0; c < MAX_PIPES; c++)
		if (pipe_frame[c]) {
			close(pipes[c][0]);
			close(pipes[c][1]);
			pipe_frame[c] = 0;
		}
	hammer_exit();
	atomic_store(&handler_quit, true);
	pthread_join(handler_th, NULL);
	if (write(acc_req[1], &quit, sizeof(quit)) == sizeof(quit)) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 10;
		/* A thread stuck in the kernel stays stuck: do not wait for it. */
		if (pthread_timedjoin_np(accessor_th, NULL, &ts))
			pthread_detach(accessor_th);
	}
	close(ev_pipe[0]);
	close(ev_pipe[1]);
	close(acc_req[0]);
	close(acc_req[1]);
	close(acc_res[0]);
	close(acc_res[1]);
	for (m = 0; m < MAX_MAPS; m++)
		if (P[0].map[m].addr)
			munmap(P[0].map[m].addr, (size_t)P[0].map[m].pages * PAGE);
	memset(P, 0, sizeof(P));
	close(space_fd);
	space_fd = -1;
	if (kmsg_fd >= 0)
		close(kmsg_fd);
	kmsg_fd = -1;
}

/* One space: @seed's steps until the time or the step budget is up. */
static int run_round(uint64_t seed, double deadline, unsigned long max_steps)
{
	volatile unsigned long steps_done = 0;
	uint64_t old;
	int order, m, ret, store_fd;

	round_seed = seed;
	rng_seed(&R, seed);
	memset(M.slot, 0, sizeof(M.slot));
	M.size = 0;
	M.nr_frames = 1;
	M.edits = 0;
	M.batches = 0;
	M.cow_breaks = 0;
	M.evictions = 0;
	memset(P, 0, sizeof(P));
	memset(pipe_frame, 0, sizeof(pipe_frame));
	last_info_n = 0;
	ring_n = 0;
	step_no = 0;
	space_tag = rng_next(&R);

	space_fd = upage_open(O_CLOEXEC);
	if (space_fd < 0)
		return space_fd;
	/*
	 * A program's store, without UPAGE_STORE_RECLAIM: the shrinker drops
	 * lazily freed frames (which the model learns) but pages nothing else
	 * out behind the model's back, as it would on the module's own store
	 * when the guest has swap. Evictions take the path that writes with
	 * no lock held.
	 */
	store_fd = memfd_create("upage-model-store", MFD_CLOEXEC);
	if (store_fd < 0)
		return -errno;
	ret = upage_set_store(space_fd, store_fd, 0, 0);
	close(store_fd);
	if (ret)
		return ret;
	/* Events are read by the handler thread without blocking it. */
	fcntl(space_fd, F_SETFL, fcntl(space_fd, F_GETFL) | O_NONBLOCK);
	P[0].pid = getpid();
	ret = threads_start();
	if (ret)
		return ret;
	kmsg_fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (kmsg_fd >= 0)
		lseek(kmsg_fd, 0, SEEK_END);
	tot.rounds++;

	if (!sigsetjmp(fail_env, 0)) {
		M.size = 8 + below(MAX_SLOTS - 7);
		if (upage_resize(space_fd, M.size, &old))
			mismatch("RESIZE to %u: %s", M.size, strerror(errno));
		for (m = 0; m < (int)M.size; m++)
			M.slot[m].prot = UPAGE_PROT_RW;
		/*
		 * A shared and a private mapping of the whole window, in
		 * either order: which comes first in the space's tree of
		 * mappings matters to the module's walks.
		 */
		order = below(2);
		if (order && !(cfg.avoid & AVOID_PRIVATE))
			map_new(0, 1, 0, WIN, false);
		map_new(0, 0, 0, WIN, true);
		if (!order && !(cfg.avoid & AVOID_PRIVATE))
			map_new(0, 1, 0, WIN, false);
		check_all();
		while (now_s() < deadline && steps_done < max_steps &&
		       M.nr_frames < MAX_FRAMES - 4 * MAX_OPS * MAX_SLOTS &&
		       step_no < 600 + (round_seed % 900)) {
			step_no++;
			one_step();
			check_all();
			steps_done++;
			atomic_fetch_add(&progress, 1);
		}
		/* The pipes' pages, and the children's last word. */
		note("end of round: read the pipes, children exit");
		for (m = 0; m < MAX_PIPES; m++)
			if (pipe_frame[m])
				drain_pipe(m);
		for (m = 1; m < MAX_PROCS; m++)
			if (P[m].pid)
				child_exit(m, false);
		check_all();
	}
	tot.steps += steps_done;
	if (cfg.verbose || failed)
		say("round %lu: seed %#llx, %lu steps%s", tot.rounds,
		    (unsigned long long)seed, steps_done, failed ? ", FAILED" : "");
	round_cleanup();
	return 0;
}

static double env_num(const char *name, double def)
{
	const char *v = getenv(name);

	return v && *v ? strtod(v, NULL) : def;
}

static void configure(void)
{
	const char *v = getenv("UPAGE_MODEL_SEED"), *a = getenv("UPAGE_MODEL_AVOID");
	static const char *const avoid_names[] = {
		"hot", "widen", "mprotect", "private", "relazy", "hammer",
	};
	unsigned int i;

	cfg.debug_kernel = !access("/sys/kernel/debug/kmemleak", F_OK);
	cfg.seconds = env_num("UPAGE_MODEL_SECONDS", cfg.debug_kernel ? 120 : 50);
	cfg.max_steps = env_num("UPAGE_MODEL_STEPS", 1e12);
	cfg.verbose = env_num("UPAGE_MODEL_VERBOSE", 0);
	if (v && *v)
		cfg.seed = strtoull(v, NULL, 0);
	else if (getrandom(&cfg.seed, sizeof(cfg.seed), 0) != sizeof(cfg.seed))
		cfg.seed = (uint64_t)time(NULL) * 2654435761U ^ getpid();
	cfg.avoid = 0;
	for (i = 0; a && i < ARRAY_SIZE(avoid_names); i++)
		if (strstr(a, avoid_names[i]))
			cfg.avoid |= 1U << i;
}

FIXTURE(model) {
	int unused;
};

FIXTURE_SETUP(model)
{
	configure();
}

FIXTURE_TEARDOWN(model)
{
}

/*
 * Random steps over every ioctl, mapping kind and process, each checked
 * against the model, for UPAGE_MODEL_SECONDS; each space (round) starts
 * from a seed that replays it.
 */
TEST_F(model, fuzz)
{
	double start = now_s(), deadline = start + cfg.seconds;
	uint64_t seed = cfg.seed;
	pthread_t wd;
	int fd, ret = 0;

	upage_open_or_skip(fd);
	upage_require_cmd(fd, UPAGE_CMD_TRAP);
	upage_require_cmd(fd, UPAGE_CMD_TRACK);
	upage_require_cmd(fd, UPAGE_CMD_RESIDENCY);
	close(fd);
	say("model: seed %#llx, %.0f s%s%s (replay: UPAGE_MODEL_SEED=%#llx)",
	    (unsigned long long)cfg.seed, cfg.seconds,
	    cfg.debug_kernel ? " (debug kernel)" : "",
	    cfg.avoid ? ", avoiding some patterns" : "",
	    (unsigned long long)cfg.seed);
	M.frame = calloc(MAX_FRAMES, sizeof(*M.frame));
	ASSERT_NE(NULL, M.frame);
	install_fault_handler();
	ASSERT_EQ(0, pthread_create(&wd, NULL, watchdog_fn, NULL));
	tot.procs_max = 1;
	while (!failed && !ret && now_s() < deadline && tot.steps < cfg.max_steps) {
		ret = run_round(seed, deadline, cfg.max_steps - tot.steps);
		splitmix(&seed);
		seed = splitmix(&seed);
	}
	say("model-summary: seed=%#llx rounds=%lu steps=%lu ops=%lu edits=%lu failing_edits=%lu accesses=%lu forks=%lu procs=%lu trap_sessions=%lu events=%lu splices=%lu reclaims_seen=%lu hammer_reads=%lu seconds=%.0f mismatches=%d",
	    (unsigned long long)cfg.seed, tot.rounds, tot.steps, tot.ops,
	    tot.edits, tot.failing, tot.accesses, tot.forks, tot.procs_max,
	    tot.sessions, tot.events, tot.splices, tot.reclaims_seen,
	    tot.hammer_reads, now_s() - start, failed);
	ASSERT_EQ(0, ret);
	EXPECT_FALSE(failed);
	EXPECT_LT(0, tot.steps);
}

/*
 * The harness's timeout is a constant; the budget is not. Give the test
 * its budget plus time for the last round and its teardown.
 */
static void __attribute__((constructor(KSELFTEST_PRIO_TEST + 1))) model_timeout(void)
{
	configure();
	_model_fuzz_object->timeout = cfg.seconds + 120;
}

TEST_HARNESS_MAIN
