// SPDX-License-Identifier: GPL-2.0
/*
 * Error injection, fail-nth style, over every ioctl, open(), mmap(),
 * read() of trap events and the fault path: for n = 1, 2, ... the n-th
 * allocation of the calling thread fails (/proc/thread-self/fail-nth, with
 * failslab and fail_page_alloc set to fail any allocation), until the
 * operation runs through without reaching an n-th.
 *
 * Each case is a variant of the fixture: a setup that builds a small
 * space, the operation, and the rule its failures must keep:
 *
 *  - EXACT: "a call that fails changes nothing" (uapi/linux/upage.h). The
 *    space is compared before and after: every slot's UPAGE_QUERY entry
 *    (frame ids, so aliases; state bits; protection; pfn), the counters of
 *    UPAGE_STATS but the fault count, the dirty bitmap, whether a trap
 *    event is queued, the contents of the slots that can be read without
 *    changing them, and for open() and mmap() the process's descriptors
 *    and mappings. A waiting thread must still wait.
 *  - EVICT, PREFETCH, PIN: no more than the ABI lets these leave done
 *    when they fail (frames evicted or read in before the failure; holes
 *    filled and frames paged in by a pin).
 *
 * A call that succeeds, with an allocation failure it absorbed or without
 * one, must leave the same space, output and contents as a run without
 * injection. Failures are absorbed by kvmalloc()'s fallback to vmalloc(),
 * by kmemleak (its own metadata, counted as an allocation of the caller,
 * comes from a pool when the slab fails), and by the kernel's copies to
 * and from user memory, which retry a fault that failed to allocate a
 * page, so EFAULT is allowed where a call copies but rarely seen.
 *
 * Errors must be documented ones: ENOMEM, ENOSPC (shmem cannot make the
 * store's inode), EIO, EFAULT. In the fault path the failed allocation is
 * the faulting thread's own; it shows as SIGBUS (then nothing changed) or
 * as a retried fault (VM_FAULT_OOM), and the access must then see the
 * right data. The harness checks dmesg for splats and, on the debug
 * kernel, kmemleak for leaks. Kernels without CONFIG_FAULT_INJECTION
 * (Debian's) skip.
 *
 * Under TCG with KASAN every call is slow, so a failure that (as checked)
 * left the space as it was is retried with the next n on the same space;
 * a new one is built only after a call that changed it.
 */
#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "upage_utils.h"

#define SLOTS		8	/* the space most cases use, all mapped */
#define BIG_SLOTS	1024	/* the largest space a case makes */
#define REFILLS		70	/* ALIAS+MOVE pairs of the refill batch */
#define SWAPPED		30	/* frames on each side of its SWAP */
#define MAX_NTH		200	/* default bound on the injection points */
#define BUF_LEN		(BIG_SLOTS * sizeof(struct upage_slot_info))
#define WAIT_MS		10000	/* bound on waiting for a helper thread */

/* What a fault raised, as an operation's result. */
#define RET_SIG(sig)	(-1000 - (sig))

static const char *const knobs[][2] = {
	{ "/sys/kernel/debug/failslab/ignore-gfp-wait", "N" },
	{ "/sys/kernel/debug/failslab/verbose", "0" },
	{ "/sys/kernel/debug/fail_page_alloc/ignore-gfp-wait", "N" },
	{ "/sys/kernel/debug/fail_page_alloc/ignore-gfp-highmem", "N" },
	{ "/sys/kernel/debug/fail_page_alloc/min-order", "0" },
	{ "/sys/kernel/debug/fail_page_alloc/verbose", "0" },
};

static int write_str(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	ssize_t len = strlen(val), ret;

	if (fd < 0)
		return -errno;
	ret = write(fd, val, len);
	close(fd);
	return ret == len ? 0 : -EIO;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Accesses that survive SIGSEGV and SIGBUS, in any thread: the handler
 * jumps back to the access of the thread that took the signal.
 */
static __thread sigjmp_buf touch_env;
static __thread volatile sig_atomic_t touch_armed, touch_sig;

static void touch_handler(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	(void)uc;
	if (!touch_armed) {
		/* Not an access of ours: die of it. */
		signal(sig, SIG_DFL);
		return;
	}
	touch_armed = 0;
	touch_sig = sig;
	siglongjmp(touch_env, 1);
}

/* Read the byte at @addr into *@val, or write *@val there: the signal. */
static int touch(volatile unsigned char *addr, bool write, unsigned char *val)
{
	touch_sig = 0;
	if (sigsetjmp(touch_env, 1))
		return touch_sig;
	touch_armed = 1;
	if (write)
		*addr = *val;
	else
		*val = *addr;
	touch_armed = 0;
	return 0;
}

/* Copy @len bytes from a mapping of the space: the signal it raised. */
static int touch_copy(void *dst, const volatile unsigned char *src, size_t len)
{
	touch_sig = 0;
	if (sigsetjmp(touch_env, 1))
		return touch_sig;
	touch_armed = 1;
	memcpy(dst, (const void *)src, len);
	touch_armed = 0;
	return 0;
}

/* A thread whose read of a trapped slot waits for an answer. */
struct waiter {
	pthread_t thread;
	bool running;
	volatile unsigned char *addr;
	int sig;		/* what the access raised */
	unsigned char val;	/* what it read */
	volatile bool done;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;

	w->sig = touch(w->addr, false, &w->val);
	__atomic_store_n(&w->done, true, __ATOMIC_RELEASE);
	return NULL;
}

/* A thread that answers every trap event with UPAGE_RESOLVE_MAP. */
struct handler {
	pthread_t thread;
	bool running;
	int fd;
	volatile bool stop;
	int errors;
};

static void *handler_main(void *arg)
{
	struct handler *h = arg;
	struct upage_trap_event ev[4];
	struct pollfd pfd = { .fd = h->fd, .events = POLLIN };
	ssize_t len, i;

	while (!__atomic_load_n(&h->stop, __ATOMIC_ACQUIRE)) {
		if (poll(&pfd, 1, 10) != 1)
			continue;
		len = read(h->fd, ev, sizeof(ev));
		for (i = 0; i < len / (ssize_t)sizeof(ev[0]); i++) {
			if (upage_resolve(h->fd, ev[i].slot, 1, UPAGE_RESOLVE_MAP,
					  0, NULL, NULL))
				h->errors++;
		}
	}
	return NULL;
}

/*
 * What can be seen of the space and the process without changing the
 * space. Reading a hole would fill it and reading an evicted slot would
 * page it in, so only resident, readable, untrapped slots are read.
 */
struct snap {
	uint64_t pages;
	struct upage_stats st;
	struct upage_slot_info info[BIG_SLOTS];
	uint64_t dirty[BIG_SLOTS / 64];
	bool pollin;		/* a trap event is queued */
	bool waiting;		/* the waiter thread still waits */
	int nr_vmas, nr_fds;
	bool readable[SLOTS];
	unsigned char data[SLOTS * PAGE];
};

/* Every slot that can be read, holes filled and evicted frames paged in. */
struct contents {
	bool read[SLOTS];
	unsigned char data[SLOTS * PAGE];
};

/* What an operation left behind for the comparison with the reference. */
struct result {
	size_t len;
	unsigned char data[BUF_LEN + 64];
};

enum rule { EXACT, EVICT, PREFETCH, PIN };

FIXTURE(fail) {
	int nth;			/* /proc/thread-self/fail-nth */
	int fd;				/* the space */
	volatile unsigned char *p;	/* its slots 0..SLOTS-1, shared */
	unsigned char *want;		/* what start() writes there */
	unsigned char *buf;		/* an output buffer, BUF_LEN bytes */
	int memfd;			/* a store, for the cases that set one */
	int new_fd;			/* what open() gave */
	void *new_map;			/* what mmap() gave */
	uint64_t done;			/* out_frames of UPAGE_RESIDENCY */
	const char *bad;		/* an operation's own check that failed */
	struct waiter waiter;
	struct handler handler;
	struct result *out, *ref_out;
	struct snap *before, *after, *ref;
	struct contents *full, *ref_full, *model_full;
	bool have_model;
};

#define SELF FIXTURE_DATA(fail)

FIXTURE_VARIANT(fail) {
	int (*setup)(SELF *self);	/* builds on what start() made */
	void (*prime)(SELF *self);	/* before each call, not injected */
	int (*op)(SELF *self);		/* the call: 0 or -errno, RET_SIG() */
	enum rule rule;
	int errs[4];			/* the errors it may return */
	int max_nth;			/* bound on n (MAX_NTH if 0) */
	bool may_not_allocate;		/* no injection point is fine */
	bool same_data;			/* the contents stay as they are */
	bool wakes;			/* success lets the waiter go */
	bool unmapped;			/* no PTE of the space before a call */
	bool procfs;			/* count descriptors and mappings */
	const struct upage_edit_op *ops; /* for op_edit() */
	uint32_t nr_ops;
};

static const FIXTURE_VARIANT(fail) *current_variant;

static void arm(SELF *self, int n)
{
	char str[16];

	snprintf(str, sizeof(str), "%d", n);
	if (pwrite(self->nth, str, strlen(str), 0) < 0)
		abort();
}

/* Disarm; true if the n-th allocation was reached (and failed). */
static bool disarm(SELF *self)
{
	char str[16] = "";
	int left;

	if (pread(self->nth, str, sizeof(str) - 1, 0) <= 0)
		abort();
	left = atoi(str);
	if (pwrite(self->nth, "0", 1, 0) < 0)
		abort();
	return left == 0;
}

static const char *result_name(int ret)
{
	static char str[32];

	if (ret <= RET_SIG(0)) {
		snprintf(str, sizeof(str), "signal %d (%s)", RET_SIG(0) - ret,
			 strsignal(RET_SIG(0) - ret));
		return str;
	}
	return ret ? strerror(-ret) : "success";
}

static void record(SELF *self, const void *data, size_t len)
{
	if (self->out->len + len > sizeof(self->out->data))
		abort();
	memcpy(self->out->data + self->out->len, data, len);
	self->out->len += len;
}

static int count_fds(void)
{
	DIR *dir = opendir("/proc/self/fd");
	int nr = 0;

	if (!dir)
		return -1;
	while (readdir(dir))
		nr++;
	closedir(dir);
	return nr;
}

static bool readable(const struct upage_slot_info *si)
{
	return (si->state & UPAGE_SLOT_RESIDENT) && si->prot != UPAGE_PROT_NONE &&
	       !(si->state & UPAGE_SLOT_TRAP_READ);
}

static int take_snap(SELF *self, struct snap *s)
{
	struct pollfd pfd = { .fd = self->fd, .events = POLLIN };
	bool tracked = false;
	uint64_t i, nr;
	int ret;

	memset(s, 0, offsetof(struct snap, data));
	ret = upage_stats(self->fd, &s->st);
	if (ret)
		return ret;
	s->pages = s->st.out_pages;
	if (s->pages > BIG_SLOTS)
		return -E2BIG;
	if (s->pages) {
		ret = upage_query(self->fd, 0, s->pages, s->info);
		if (ret)
			return ret;
	}
	for (i = 0; i < s->pages; i++)
		tracked |= s->info[i].state & UPAGE_SLOT_TRACKED;
	if (tracked) {
		ret = upage_dirty(self->fd, 0, s->pages, s->dirty, 0, &nr);
		if (ret)
			return ret;
	}
	s->pollin = poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN);
	s->waiting = self->waiter.running &&
		     !__atomic_load_n(&self->waiter.done, __ATOMIC_ACQUIRE);
	for (i = 0; i < SLOTS && i < s->pages; i++) {
		s->readable[i] = readable(&s->info[i]);
		if (s->readable[i] &&
		    touch_copy(s->data + i * PAGE, self->p + i * PAGE, PAGE))
			return -EFAULT;
	}
	/*
	 * The fault cases need their first access to fault: drop the PTEs
	 * the reads made (the frames stay), as the setup left none.
	 */
	if (current_variant->unmapped &&
	    madvise((void *)self->p, SLOTS * PAGE, MADV_DONTNEED))
		return -errno;
	/* Slow under TCG: only where the call adds a descriptor or mapping. */
	if (current_variant->procfs) {
		s->nr_vmas = upage_nr_vmas();
		s->nr_fds = count_fds();
	}
	return 0;
}

#define STAT(f) { #f, offsetof(struct upage_stats, f) }

/* Every counter but out_faults, which the snapshots' own reads move. */
static const struct {
	const char *name;
	size_t off;
} stat_fields[] = {
	STAT(out_pages), STAT(out_frames), STAT(out_zero_fills),
	STAT(out_cow_breaks), STAT(out_edits), STAT(out_batches),
	STAT(out_evictions), STAT(out_page_ins), STAT(out_bytes_written),
	STAT(out_bytes_read), STAT(out_reclaims), STAT(out_shrinker_evictions),
	STAT(out_tracked_writes), STAT(out_traps), STAT(out_traps_resolved),
	STAT(out_traps_timed_out),
};

static uint64_t stat_of(const struct upage_stats *st, size_t off)
{
	return *(const uint64_t *)((const char *)st + off);
}

static char why_buf[256];

/*
 * Frame ids are never reused, so the frames a call makes get other ids
 * after attempts that failed (they made frames and dropped them). Against
 * the reference, ids are mapped one to one; frames that were there
 * before the call (in ids_before) must keep theirs.
 */
static struct {
	uint64_t from[BIG_SLOTS], to[BIG_SLOTS];
	int nr;
} ids;
static const struct snap *ids_before;

static bool in_snap(const struct snap *s, uint64_t id)
{
	uint64_t i;

	for (i = 0; i < s->pages; i++) {
		if (s->info[i].frame_id == id)
			return true;
	}
	return false;
}

static bool same_frame(uint64_t x, uint64_t y, bool exact)
{
	int k;

	if (exact || !x || !y)
		return x == y;
	for (k = 0; k < ids.nr; k++) {
		if (ids.from[k] == x || ids.to[k] == y)
			return ids.from[k] == x && ids.to[k] == y;
	}
	if (x != y && (in_snap(ids_before, x) || in_snap(ids_before, y)))
		return false;
	ids.from[ids.nr] = x;
	ids.to[ids.nr++] = y;
	return true;
}

/*
 * The first difference between @a and @b, or NULL. @exact: @a and @b are
 * before and after one call, so pfns and frame ids must be equal; else @b
 * is compared with the reference @a (same_frame()). Counters named in
 * @skip (space separated) may differ; the slots' entries are compared
 * only with @slots (the partial rules compare those themselves).
 */
static const char *snap_diff(const struct snap *a, const struct snap *b,
			     bool exact, bool slots, const char *skip)
{
	uint64_t i;

	/* The reference's frames made by the call may have other ids. */
	ids.nr = 0;

	if (a->pages != b->pages) {
		snprintf(why_buf, sizeof(why_buf), "pages %llu -> %llu",
			 (unsigned long long)a->pages, (unsigned long long)b->pages);
		return why_buf;
	}
	for (i = 0; i < ARRAY_SIZE(stat_fields); i++) {
		uint64_t x = stat_of(&a->st, stat_fields[i].off);
		uint64_t y = stat_of(&b->st, stat_fields[i].off);

		if (x != y && !(skip && strstr(skip, stat_fields[i].name))) {
			snprintf(why_buf, sizeof(why_buf), "stats %s %llu -> %llu",
				 stat_fields[i].name, (unsigned long long)x,
				 (unsigned long long)y);
			return why_buf;
		}
	}
	for (i = 0; slots && i < a->pages; i++) {
		const struct upage_slot_info *x = &a->info[i], *y = &b->info[i];

		if (!same_frame(x->frame_id, y->frame_id, exact) ||
		    x->state != y->state ||
		    x->nr_aliases != y->nr_aliases || x->prot != y->prot ||
		    (exact && x->pfn != y->pfn)) {
			snprintf(why_buf, sizeof(why_buf),
				 "slot %llu: frame %llu -> %llu, state %#x -> %#x, aliases %u -> %u, prot %u -> %u, pfn %#llx -> %#llx",
				 (unsigned long long)i,
				 (unsigned long long)x->frame_id,
				 (unsigned long long)y->frame_id, x->state,
				 y->state, x->nr_aliases, y->nr_aliases, x->prot,
				 y->prot, (unsigned long long)x->pfn,
				 (unsigned long long)y->pfn);
			return why_buf;
		}
	}
	if (memcmp(a->dirty, b->dirty, sizeof(a->dirty)))
		return "the dirty bitmap changed";
	if (a->pollin != b->pollin)
		return a->pollin ? "a queued trap event is gone" :
				   "a trap event appeared";
	if (a->nr_vmas != b->nr_vmas) {
		snprintf(why_buf, sizeof(why_buf), "mappings %d -> %d",
			 a->nr_vmas, b->nr_vmas);
		return why_buf;
	}
	if (a->nr_fds != b->nr_fds) {
		snprintf(why_buf, sizeof(why_buf), "descriptors %d -> %d",
			 a->nr_fds, b->nr_fds);
		return why_buf;
	}
	for (i = 0; i < SLOTS && i < a->pages; i++) {
		if (a->readable[i] && b->readable[i] &&
		    memcmp(a->data + i * PAGE, b->data + i * PAGE, PAGE)) {
			snprintf(why_buf, sizeof(why_buf),
				 "slot %llu: contents changed",
				 (unsigned long long)i);
			return why_buf;
		}
	}
	return NULL;
}

/*
 * A failed UPAGE_RES_EVICT (@evict) or UPAGE_RES_PREFETCH may leave
 * @done frames evicted (read in) before the failure, and nothing else.
 */
static const char *partial_diff(const struct snap *a, const struct snap *b,
				bool evict, uint64_t done)
{
	uint32_t from = evict ? UPAGE_SLOT_RESIDENT : UPAGE_SLOT_EVICTED;
	uint32_t to = evict ? UPAGE_SLOT_EVICTED : UPAGE_SLOT_RESIDENT;
	uint64_t seen[SLOTS], nr = 0, i, k;
	const char *why;

	why = snap_diff(a, b, false, false, evict ?
			"out_evictions out_bytes_written" :
			"out_page_ins out_bytes_read");
	if (why)
		return why;
	for (i = 0; i < a->pages; i++) {
		const struct upage_slot_info *x = &a->info[i], *y = &b->info[i];

		if (!memcmp(x, y, sizeof(*x)))
			continue;
		if (!(x->state & from) || y->state != ((x->state & ~from) | to) ||
		    x->frame_id != y->frame_id || x->nr_aliases != y->nr_aliases ||
		    x->prot != y->prot || (evict && y->pfn)) {
			snprintf(why_buf, sizeof(why_buf),
				 "slot %llu: frame %llu -> %llu, state %#x -> %#x",
				 (unsigned long long)i,
				 (unsigned long long)x->frame_id,
				 (unsigned long long)y->frame_id, x->state,
				 y->state);
			return why_buf;
		}
		for (k = 0; k < nr && seen[k] != x->frame_id; k++)
			;
		if (k == nr && nr < SLOTS)
			seen[nr++] = x->frame_id;
	}
	if (nr != done ||
	    stat_of(&b->st, evict ? offsetof(struct upage_stats, out_evictions) :
			    offsetof(struct upage_stats, out_page_ins)) !=
	    stat_of(&a->st, evict ? offsetof(struct upage_stats, out_evictions) :
			    offsetof(struct upage_stats, out_page_ins)) + done) {
		snprintf(why_buf, sizeof(why_buf),
			 "%llu frames changed, out_frames says %llu",
			 (unsigned long long)nr, (unsigned long long)done);
		return why_buf;
	}
	return NULL;
}

/*
 * A failed UPAGE_RES_PIN leaves no frame newly pinned; holes it filled
 * and frames it paged in on the way may stay so (uapi/linux/upage.h).
 */
static const char *pin_diff(const struct snap *a, const struct snap *b,
			    uint64_t done)
{
	const char *why;
	uint64_t i;

	why = snap_diff(a, b, false, false,
			"out_frames out_zero_fills out_page_ins out_bytes_read");
	if (why)
		return why;
	if (done)
		return "out_frames is not 0";
	for (i = 0; i < a->pages; i++) {
		const struct upage_slot_info *x = &a->info[i], *y = &b->info[i];
		bool filled = !x->frame_id && y->frame_id &&
			      y->state == UPAGE_SLOT_RESIDENT && y->nr_aliases == 1;
		bool paged_in = x->frame_id == y->frame_id &&
				(x->state & UPAGE_SLOT_EVICTED) &&
				y->state == ((x->state & ~UPAGE_SLOT_EVICTED) |
					     UPAGE_SLOT_RESIDENT);

		if (!memcmp(x, y, sizeof(*x)) ||
		    (x->prot == y->prot && (filled || paged_in)))
			continue;
		snprintf(why_buf, sizeof(why_buf),
			 "slot %llu: frame %llu -> %llu, state %#x -> %#x",
			 (unsigned long long)i, (unsigned long long)x->frame_id,
			 (unsigned long long)y->frame_id, x->state, y->state);
		return why_buf;
	}
	return NULL;
}

static int full_read(SELF *self, struct contents *c)
{
	struct upage_slot_info info[SLOTS];
	struct upage_stats st;
	uint64_t i, pages;
	int ret;

	memset(c->read, 0, sizeof(c->read));
	ret = upage_stats(self->fd, &st);
	if (ret)
		return ret;
	pages = st.out_pages < SLOTS ? st.out_pages : SLOTS;
	if (pages && upage_query(self->fd, 0, pages, info))
		return -EIO;
	for (i = 0; i < pages; i++) {
		if (info[i].prot == UPAGE_PROT_NONE ||
		    (info[i].state & UPAGE_SLOT_TRAP_READ))
			continue;
		if (touch_copy(c->data + i * PAGE, self->p + i * PAGE, PAGE))
			return -EFAULT;
		c->read[i] = true;
	}
	return 0;
}

static const char *contents_diff(const struct contents *a,
				 const struct contents *b)
{
	int i;

	for (i = 0; i < SLOTS; i++) {
		if (a->read[i] != b->read[i]) {
			snprintf(why_buf, sizeof(why_buf),
				 "slot %d: readable %d -> %d", i, a->read[i],
				 b->read[i]);
			return why_buf;
		}
		if (a->read[i] &&
		    memcmp(a->data + i * PAGE, b->data + i * PAGE, PAGE)) {
			snprintf(why_buf, sizeof(why_buf),
				 "slot %d: contents differ", i);
			return why_buf;
		}
	}
	return NULL;
}

/* Undo what a setup or an operation left: threads, descriptors, traps. */
static void cleanup(SELF *self)
{
	struct timespec ts;
	struct upage_stats st;

	if (self->handler.running) {
		__atomic_store_n(&self->handler.stop, true, __ATOMIC_RELEASE);
		pthread_join(self->handler.thread, NULL);
		self->handler.running = false;
	}
	if (self->waiter.running) {
		/* Lifting the traps lets the waiter go, as a resolve would. */
		if (!upage_stats(self->fd, &st) && st.out_pages)
			upage_trap(self->fd, 0, st.out_pages, 0);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += WAIT_MS / 1000;
		if (pthread_timedjoin_np(self->waiter.thread, NULL, &ts))
			abort();	/* a waiter that never comes back */
		self->waiter.running = false;
	}
	if (self->new_fd >= 0)
		close(self->new_fd);
	self->new_fd = -1;
	if (self->new_map)
		munmap(self->new_map, SLOTS * PAGE);
	self->new_map = NULL;
	if (self->memfd >= 0)
		close(self->memfd);
	self->memfd = -1;
}

/* A space of SLOTS pages of self->want, mapped, then the case's setup. */
static int start(SELF *self, const FIXTURE_VARIANT(fail) *v)
{
	cleanup(self);
	if (self->p)
		munmap((void *)self->p, SLOTS * PAGE);
	self->p = NULL;
	if (self->fd >= 0)
		close(self->fd);
	self->fd = upage_open(O_CLOEXEC);
	if (self->fd < 0 || upage_resize(self->fd, SLOTS, NULL))
		return -1;
	self->p = upage_map(self->fd, 0, SLOTS, MAP_SHARED);
	if (!self->p)
		return -1;
	memcpy((void *)self->p, self->want, SLOTS * PAGE);
	return v->setup ? v->setup(self) : 0;
}

/*
 * ---- Setups: small spaces with a bit of everything the call meets ----
 */

static int discard(SELF *self, uint64_t first, uint64_t n)
{
	return upage_discard(self->fd, first, n);
}

static int evict(SELF *self, uint64_t first, uint64_t n)
{
	return upage_evict(self->fd, first, n, NULL);
}

/* Write a byte of slot @slot (its own value): the frame is written. */
static void rewrite(SELF *self, uint64_t slot)
{
	self->p[slot * PAGE] = self->want[slot * PAGE];
}

static int setup_shrink(SELF *self)
{
	/* Cut: an alias of a slot that stays, an evicted and a pinned frame. */
	return upage_alias(self->fd, 6, 1, 1) ?: evict(self, 7, 1) ?:
	       upage_pin(self->fd, 5, 1, NULL);
}

static int setup_holes_4(SELF *self)
{
	return discard(self, 4, 4);
}

static int setup_hole_2(SELF *self)
{
	return discard(self, 2, 1);
}

/* 2 * SWAPPED frames of their own beyond SLOTS (a pin fills holes). */
static int setup_refill(SELF *self)
{
	return upage_resize(self->fd, SLOTS + 2 * SWAPPED, NULL) ?:
	       upage_pin(self->fd, SLOTS, 2 * SWAPPED, NULL) ?:
	       upage_unpin(self->fd, SLOTS, 2 * SWAPPED, NULL) ?:
	       discard(self, 1, 1);
}

static int setup_move(SELF *self)
{
	return upage_alias_cow(self->fd, 1, 0, 1) ?: evict(self, 2, 1) ?:
	       discard(self, 3, 1);
}

static int setup_swap(SELF *self)
{
	return upage_alias_cow(self->fd, 5, 0, 1) ?: evict(self, 2, 1) ?:
	       discard(self, 7, 1);
}

static int setup_protect(SELF *self)
{
	return upage_protect(self->fd, 1, 1, UPAGE_PROT_NONE) ?:
	       upage_protect(self->fd, 2, 1, UPAGE_PROT_READ) ?:
	       discard(self, 3, 1) ?: evict(self, 4, 1);
}

static int setup_discard(SELF *self)
{
	return upage_alias(self->fd, 6, 1, 1) ?: evict(self, 2, 1) ?:
	       upage_alias_cow(self->fd, 7, 3, 1);
}

static int setup_mixed(SELF *self)
{
	return discard(self, 3, 1) ?: evict(self, 6, 1) ?:
	       upage_protect(self->fd, 7, 1, UPAGE_PROT_READ);
}

static int setup_big(SELF *self)
{
	return upage_resize(self->fd, BIG_SLOTS, NULL) ?:
	       upage_alias(self->fd, BIG_SLOTS - 1, 1, 1);
}

static int setup_aliased(SELF *self)
{
	return upage_alias(self->fd, 5, 1, 1) ?: discard(self, 6, 1);
}

/* Frames the store has clean copies of, and one written since. */
static int setup_evict_again(SELF *self)
{
	int ret = setup_aliased(self) ?: evict(self, 0, SLOTS) ?:
		  upage_prefetch(self->fd, 0, SLOTS, NULL);

	if (!ret)
		rewrite(self, 2);
	return ret;
}

static int setup_memfd(SELF *self)
{
	self->memfd = memfd_create("upage-failnth", MFD_CLOEXEC);
	return self->memfd < 0 ? -errno : 0;
}

/* The memfd is the store, and has had frames (dropped since). */
static int setup_memfd_store(SELF *self)
{
	return setup_memfd(self) ?:
	       upage_set_store(self->fd, self->memfd, 0, 0) ?:
	       evict(self, 0, 2) ?: discard(self, 0, 2);
}

/* A private mapping of the space: written, it becomes the process's. */
static int setup_private(SELF *self)
{
	void *p = mmap(NULL, SLOTS * PAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE, self->fd, 0);

	if (p == MAP_FAILED)
		return -errno;
	self->new_map = p;
	return 0;
}

static int setup_evicted(SELF *self)
{
	return setup_aliased(self) ?: evict(self, 0, SLOTS);
}

static int setup_pin(SELF *self)
{
	return evict(self, 0, SLOTS / 2) ?: discard(self, 6, 1);
}

static int setup_pinned(SELF *self)
{
	return upage_pin(self->fd, 0, SLOTS, NULL);
}

static int setup_evicted_2(SELF *self)
{
	return evict(self, 2, 1);
}

static int setup_tracked(SELF *self)
{
	int ret = upage_track_start(self->fd, 0, SLOTS);

	if (!ret) {
		rewrite(self, 1);
		rewrite(self, 3);
	}
	return ret;
}

/* A thread waits on trapped slot 2: its event is queued. */
static int start_waiter(SELF *self)
{
	struct upage_stats st;
	long end = now_ms() + WAIT_MS;

	self->waiter = (struct waiter){ .addr = self->p + 2 * PAGE + 7 };
	if (pthread_create(&self->waiter.thread, NULL, waiter_main,
			   &self->waiter))
		return -EAGAIN;
	self->waiter.running = true;
	while (now_ms() < end) {
		if (upage_stats(self->fd, &st))
			return -EIO;
		if (st.out_traps)
			return 0;
		usleep(1000);
	}
	return -ETIMEDOUT;
}

static int setup_trap_waiter(SELF *self)
{
	return upage_trap(self->fd, 2, 2, UPAGE_TRAP_READ) ?:
	       start_waiter(self);
}

static int setup_trap_holes_waiter(SELF *self)
{
	return discard(self, 2, 2) ?: setup_trap_waiter(self);
}

static int setup_trap_handler(SELF *self)
{
	int ret = upage_trap(self->fd, 2, 1, UPAGE_TRAP_READ);

	if (ret)
		return ret;
	self->handler = (struct handler){ .fd = self->fd };
	if (pthread_create(&self->handler.thread, NULL, handler_main,
			   &self->handler))
		return -EAGAIN;
	self->handler.running = true;
	return 0;
}

static int setup_evicted_3(SELF *self)
{
	return evict(self, 3, 1);
}

static int setup_cow_4(SELF *self)
{
	return upage_alias_cow(self->fd, 4, 0, 1);
}

/*
 * ---- Primes: what each attempt needs afresh, outside the injection ----
 */

/*
 * The output buffer's pages go: the call's copy to it must fault them
 * in, and those allocations are injected too.
 */
static void prime_buf(SELF *self)
{
	if (madvise(self->buf, BUF_LEN, MADV_DONTNEED))
		abort();
}

/* Slot 4 mapped read-only: the write then goes through .page_mkwrite. */
static void prime_read_4(SELF *self)
{
	unsigned char val;

	if (touch(self->p + 4 * PAGE, false, &val))
		abort();
}

/*
 * ---- Operations ----
 */

static int resize(SELF *self, uint64_t pages)
{
	uint64_t old = 0;
	int ret = upage_resize(self->fd, pages, &old);

	record(self, &old, sizeof(old));
	return ret;
}

/* Past the table's first capacity (64): a kmalloc()ed table. */
static int op_resize_grow(SELF *self)
{
	return resize(self, 100);
}

/* A table of 16 KiB: kvmalloc() falls back to vmalloc(). */
static int op_resize_grow_big(SELF *self)
{
	return resize(self, BIG_SLOTS);
}

static int op_resize_shrink(SELF *self)
{
	return resize(self, 3);
}

/* The variant's batch; a failure for want of memory names no op. */
static int op_edit(SELF *self)
{
	uint32_t idx = 0x5a5a5a5a;
	int ret = upage_edit(self->fd, current_variant->ops,
			     current_variant->nr_ops, &idx);

	if ((ret == -ENOMEM || ret == -EFAULT) && idx != UINT32_MAX)
		self->bad = "out_error_index names an op for a failure that is no op's";
	return ret;
}

/*
 * The batch whose logs grow: a SWAP of 2 * SWAPPED frames, then REFILLS
 * times "ALIAS dst=0 src=1; MOVE dst=2 src=1" on hole 1, which gives the
 * hole a new frame each time. The log of claimed frames goes through 64,
 * 128 and 256 entries (2 * SWAPPED + REFILLS > 128), that of created
 * frames through 64 and 128. Each n replays the batch up to its n-th
 * allocation, so the time grows as the square of its allocations: 200
 * refills took over two minutes under TCG on a loaded host.
 */
static struct upage_edit_op refill_ops[1 + 2 * REFILLS];

static void init_refill_ops(void)
{
	int i;

	refill_ops[0] = (struct upage_edit_op){ .op = UPAGE_OP_SWAP,
		.dst = SLOTS, .src = SLOTS + SWAPPED, .n = SWAPPED };
	for (i = 0; i < REFILLS; i++) {
		refill_ops[1 + 2 * i] = (struct upage_edit_op){
			.op = UPAGE_OP_ALIAS, .dst = 0, .src = 1, .n = 1 };
		refill_ops[2 + 2 * i] = (struct upage_edit_op){
			.op = UPAGE_OP_MOVE, .dst = 2, .src = 1, .n = 1 };
	}
}

#define EDIT(kind, d, s, cnt) \
	{ .op = UPAGE_OP_##kind, .dst = (d), .src = (s), .n = (cnt) }
#define PROTECT(d, cnt, p) \
	{ .op = UPAGE_OP_PROTECT, .dst = (d), .n = (cnt), .prot = UPAGE_PROT_##p }

static const struct upage_edit_op alias_holes_ops[] = { EDIT(ALIAS, 0, 4, 4) };
static const struct upage_edit_op alias_cow_ops[] = { EDIT(ALIAS_COW, 4, 0, 4) };
static const struct upage_edit_op move_ops[] = { EDIT(MOVE, 4, 0, 4) };
static const struct upage_edit_op swap_ops[] = { EDIT(SWAP, 0, 4, 4) };
static const struct upage_edit_op protect_ops[] = {
	PROTECT(0, 8, READ), PROTECT(2, 2, NONE), PROTECT(5, 1, RW),
};
static const struct upage_edit_op discard_ops[] = { EDIT(DISCARD, 0, 0, 4) };
/* Allocations come after every other kind: all of them are rolled back. */
static const struct upage_edit_op mixed_ops[] = {
	PROTECT(0, 8, READ), EDIT(ALIAS_COW, 4, 0, 2), EDIT(SWAP, 2, 6, 1),
	EDIT(DISCARD, 5, 0, 1), EDIT(MOVE, 5, 1, 1), EDIT(ALIAS, 7, 3, 1),
};

static int op_api(SELF *self)
{
	struct upage_api api;
	int ret = upage_api(self->fd, &api);

	if (!ret)
		record(self, &api, sizeof(api));
	return ret;
}

static int op_query(SELF *self)
{
	struct upage_slot_info *info = (void *)self->buf;
	int ret = upage_query(self->fd, 0, BIG_SLOTS, info);
	int i;

	if (ret)
		return ret;
	/* The pfns differ from the reference run's. */
	for (i = 0; i < BIG_SLOTS; i++)
		info[i].pfn = 0;
	record(self, info, BUF_LEN);
	return 0;
}

static int op_stats(SELF *self)
{
	struct upage_stats st;
	int ret = upage_stats(self->fd, &st);

	if (!ret && (st.out_pages != SLOTS || st.out_frames != SLOTS))
		self->bad = "wrong counts";
	return ret;
}

static int op_evict(SELF *self)
{
	return upage_evict(self->fd, 0, SLOTS, &self->done);
}

static int op_store_and_evict(SELF *self)
{
	return upage_set_store(self->fd, self->memfd, 0, 0) ?:
	       upage_evict(self->fd, 0, SLOTS, &self->done);
}

static int op_prefetch(SELF *self)
{
	return upage_prefetch(self->fd, 0, SLOTS, &self->done);
}

static int op_pin(SELF *self)
{
	return upage_pin(self->fd, 0, SLOTS, &self->done);
}

static int op_unpin(SELF *self)
{
	return upage_unpin(self->fd, 0, SLOTS, &self->done);
}

static int op_lazy_free(SELF *self)
{
	return upage_lazy_free(self->fd, 0, SLOTS, &self->done);
}

static int op_store(SELF *self)
{
	return upage_set_store(self->fd, self->memfd, 0, 0);
}

static int op_store_own(SELF *self)
{
	return upage_set_store(self->fd, -1, 0, UPAGE_STORE_RECLAIM);
}

static int op_track_start(SELF *self)
{
	return upage_track_start(self->fd, 0, SLOTS);
}

static int op_track_stop(SELF *self)
{
	return upage_track_stop(self->fd, 0, SLOTS);
}

static int dirty(SELF *self, uint32_t flags)
{
	uint64_t *bits = (void *)self->buf, nr = 0;
	int ret = upage_dirty(self->fd, 0, SLOTS, bits, flags, &nr);

	if (ret)
		return ret;
	record(self, bits, sizeof(*bits));
	record(self, &nr, sizeof(nr));
	return 0;
}

static int op_dirty(SELF *self)
{
	return dirty(self, 0);
}

static int op_dirty_clear(SELF *self)
{
	return dirty(self, UPAGE_DIRTY_CLEAR);
}

static int op_trap(SELF *self)
{
	return upage_trap(self->fd, 2, 2, UPAGE_TRAP_READ | UPAGE_TRAP_WRITE);
}

static int resolve(SELF *self, uint32_t action)
{
	uint64_t woken = 0;
	int ret = upage_resolve(self->fd, 2, 2, action, UPAGE_RESOLVE_LIFT,
				action == UPAGE_RESOLVE_COPY ?
				self->want + 2 * PAGE : NULL, &woken);

	record(self, &woken, sizeof(woken));
	return ret;
}

static int op_resolve_map(SELF *self)
{
	return resolve(self, UPAGE_RESOLVE_MAP);
}

static int op_resolve_copy(SELF *self)
{
	return resolve(self, UPAGE_RESOLVE_COPY);
}

static int op_resolve_zero(SELF *self)
{
	return resolve(self, UPAGE_RESOLVE_ZERO);
}

static int op_resolve_sigbus(SELF *self)
{
	return resolve(self, UPAGE_RESOLVE_SIGBUS);
}

static int op_read_events(SELF *self)
{
	struct upage_trap_event *ev = (void *)self->buf;
	ssize_t len = read(self->fd, ev, 4 * sizeof(*ev));
	int i;

	if (len < 0)
		return -errno;
	for (i = 0; i < len / (ssize_t)sizeof(*ev); i++) {
		/* The tid and address are this run's. */
		if (ev[i].address != (uintptr_t)self->waiter.addr)
			self->bad = "the event's address is wrong";
		ev[i].address = 0;
		ev[i].tid = 0;
	}
	record(self, ev, len);
	return 0;
}

static int op_open(SELF *self)
{
	self->new_fd = open("/dev/upage", O_RDWR | O_CLOEXEC);
	return self->new_fd < 0 ? -errno : 0;
}

static int op_mmap(SELF *self)
{
	void *p = mmap(NULL, SLOTS * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED,
		       self->fd, 0);

	if (p == MAP_FAILED)
		return -errno;
	self->new_map = p;
	return 0;
}

/* One access at @slot, 7 bytes in; what it read is the result. */
static int access_slot(SELF *self, uint64_t slot, bool write)
{
	unsigned char val = 0x5a;
	int sig = touch(self->p + slot * PAGE + 7, write, &val);

	if (sig)
		return RET_SIG(sig);
	record(self, &val, 1);
	return 0;
}

static int op_read_2(SELF *self)
{
	return access_slot(self, 2, false);
}

static int op_write_2(SELF *self)
{
	return access_slot(self, 2, true);
}

static int op_write_3(SELF *self)
{
	return access_slot(self, 3, true);
}

static int op_write_4(SELF *self)
{
	return access_slot(self, 4, true);
}

/* A write to slot 2 of the private mapping: the core copies the page. */
static int op_write_private(SELF *self)
{
	volatile unsigned char *p = self->new_map;
	unsigned char val = 0x5a;
	int sig = touch(p + 2 * PAGE + 7, true, &val);

	if (sig)
		return RET_SIG(sig);
	record(self, (const void *)(p + 2 * PAGE), PAGE);
	return 0;
}

/* Read every slot: eight page-ins. */
static int op_read_all(SELF *self)
{
	int sig = touch_copy(self->buf, self->p, SLOTS * PAGE);

	if (sig)
		return RET_SIG(sig);
	record(self, self->buf, SLOTS * PAGE);
	return 0;
}

/*
 * ---- The cases ----
 */

#define ERRS_MEM	{ -ENOMEM }
#define ERRS_USER	{ -ENOMEM, -EFAULT }
#define ERRS_STORE	{ -ENOMEM, -ENOSPC, -EIO }
#define ERRS_FAULT	{ RET_SIG(SIGBUS) }

FIXTURE_VARIANT_ADD(fail, api) {
	.op = op_api, .errs = ERRS_MEM, .may_not_allocate = true,
	.same_data = true,
};

FIXTURE_VARIANT_ADD(fail, resize_grow) {
	.op = op_resize_grow, .errs = ERRS_MEM, .same_data = true,
};

FIXTURE_VARIANT_ADD(fail, resize_grow_big) {
	.op = op_resize_grow_big, .errs = ERRS_MEM, .same_data = true,
};

FIXTURE_VARIANT_ADD(fail, resize_shrink) {
	.setup = setup_shrink, .op = op_resize_shrink, .errs = ERRS_MEM,
	.same_data = true,
};

FIXTURE_VARIANT_ADD(fail, edit_alias_holes) {
	.setup = setup_holes_4, .op = op_edit, .errs = ERRS_MEM,
	.ops = alias_holes_ops, .nr_ops = ARRAY_SIZE(alias_holes_ops),
};

FIXTURE_VARIANT_ADD(fail, edit_alias_cow) {
	.setup = setup_hole_2, .op = op_edit, .errs = ERRS_MEM,
	.ops = alias_cow_ops, .nr_ops = ARRAY_SIZE(alias_cow_ops),
};

FIXTURE_VARIANT_ADD(fail, edit_move) {
	.setup = setup_move, .op = op_edit, .errs = ERRS_MEM,
	.ops = move_ops, .nr_ops = ARRAY_SIZE(move_ops),
};

FIXTURE_VARIANT_ADD(fail, edit_swap) {
	.setup = setup_swap, .op = op_edit, .errs = ERRS_MEM,
	.ops = swap_ops, .nr_ops = ARRAY_SIZE(swap_ops),
};

FIXTURE_VARIANT_ADD(fail, edit_protect) {
	.setup = setup_protect, .op = op_edit, .errs = ERRS_MEM,
	.ops = protect_ops, .nr_ops = ARRAY_SIZE(protect_ops),
};

FIXTURE_VARIANT_ADD(fail, edit_discard) {
	.setup = setup_discard, .op = op_edit, .errs = ERRS_MEM,
	.ops = discard_ops, .nr_ops = ARRAY_SIZE(discard_ops),
};

FIXTURE_VARIANT_ADD(fail, edit_mixed) {
	.setup = setup_mixed, .op = op_edit, .errs = ERRS_MEM,
	.ops = mixed_ops, .nr_ops = ARRAY_SIZE(mixed_ops),
};

/* The logs of claimed and created frames outgrow their first size. */
FIXTURE_VARIANT_ADD(fail, edit_refill) {
	.setup = setup_refill, .op = op_edit, .errs = ERRS_MEM,
	.ops = refill_ops, .nr_ops = ARRAY_SIZE(refill_ops), .max_nth = 600,
};

FIXTURE_VARIANT_ADD(fail, query_many) {
	.setup = setup_big, .prime = prime_buf, .op = op_query,
	.errs = ERRS_USER, .same_data = true,
};

FIXTURE_VARIANT_ADD(fail, stats) {
	.op = op_stats, .errs = ERRS_MEM, .may_not_allocate = true,
	.same_data = true,
};

/* The first eviction also creates the space's shmem store. */
FIXTURE_VARIANT_ADD(fail, evict) {
	.setup = setup_aliased, .op = op_evict, .rule = EVICT,
	.errs = ERRS_STORE, .same_data = true,
};

FIXTURE_VARIANT_ADD(fail, evict_again) {
	.setup = setup_evict_again, .op = op_evict, .rule = EVICT,
	.errs = ERRS_STORE, .same_data = true,
};

/* Eviction to a store the program gave. */
FIXTURE_VARIANT_ADD(fail, evict_to_memfd_store) {
	.setup = setup_memfd, .op = op_store_and_evict, .rule = EVICT,
	.errs = ERRS_STORE, .same_data = true,
};

FIXTURE_VARIANT_ADD(fail, prefetch) {
	.setup = setup_evicted, .op = op_prefetch, .rule = PREFETCH,
	.errs = ERRS_STORE, .same_data = true,
};

FIXTURE_VARIANT_ADD(fail, pin) {
	.setup = setup_pin, .op = op_pin, .rule = PIN, .errs = ERRS_STORE,
	.same_data = true,
};

FIXTURE_VARIANT_ADD(fail, unpin) {
	.setup = setup_pinned, .op = op_unpin, .errs = ERRS_MEM,
	.may_not_allocate = true, .same_data = true,
};

/* An evicted frame among them: its store copy is dropped at once. */
FIXTURE_VARIANT_ADD(fail, lazy_free) {
	.setup = setup_evicted_2, .op = op_lazy_free, .errs = ERRS_MEM,
};

FIXTURE_VARIANT_ADD(fail, store_memfd) {
	.setup = setup_memfd, .op = op_store, .errs = ERRS_MEM,
	.may_not_allocate = true, .same_data = true,
};

/* Back to the module's own store, which is made at the next eviction. */
FIXTURE_VARIANT_ADD(fail, store_own) {
	.setup = setup_memfd_store, .op = op_store_own, .errs = ERRS_MEM,
	.may_not_allocate = true, .same_data = true,
};

FIXTURE_VARIANT_ADD(fail, track_start) {
	.op = op_track_start, .errs = ERRS_MEM, .may_not_allocate = true,
	.same_data = true,
};

FIXTURE_VARIANT_ADD(fail, track_stop) {
	.setup = setup_tracked, .op = op_track_stop, .errs = ERRS_MEM,
	.may_not_allocate = true, .same_data = true,
};

FIXTURE_VARIANT_ADD(fail, dirty) {
	.setup = setup_tracked, .prime = prime_buf, .op = op_dirty,
	.errs = ERRS_USER, .same_data = true,
};

/*
 * A clearing collection that fails clears nothing: the report did not
 * reach the program, so the slots stay dirty.
 */
FIXTURE_VARIANT_ADD(fail, dirty_collect_and_clear) {
	.setup = setup_tracked, .prime = prime_buf, .op = op_dirty_clear,
	.errs = ERRS_USER, .same_data = true,
};

FIXTURE_VARIANT_ADD(fail, trap) {
	.op = op_trap, .errs = ERRS_MEM, .may_not_allocate = true,
	.same_data = true,
};

/* A resolve that fails lets no waiter go and leaves the traps. */
FIXTURE_VARIANT_ADD(fail, resolve_map) {
	.setup = setup_trap_waiter, .op = op_resolve_map, .errs = ERRS_MEM,
	.may_not_allocate = true, .same_data = true, .wakes = true,
};

FIXTURE_VARIANT_ADD(fail, resolve_copy) {
	.setup = setup_trap_holes_waiter, .op = op_resolve_copy,
	.errs = ERRS_USER, .wakes = true,
};

FIXTURE_VARIANT_ADD(fail, resolve_zero) {
	.setup = setup_trap_waiter, .op = op_resolve_zero, .errs = ERRS_MEM,
	.wakes = true,
};

FIXTURE_VARIANT_ADD(fail, resolve_sigbus) {
	.setup = setup_trap_waiter, .op = op_resolve_sigbus, .errs = ERRS_MEM,
	.may_not_allocate = true, .same_data = true, .wakes = true,
};

/* A read that fails takes no event: it is still queued. */
FIXTURE_VARIANT_ADD(fail, read_events) {
	.setup = setup_trap_waiter, .prime = prime_buf, .op = op_read_events,
	.errs = ERRS_USER, .same_data = true,
};

FIXTURE_VARIANT_ADD(fail, open) {
	.op = op_open, .errs = ERRS_MEM, .same_data = true, .procfs = true,
};

FIXTURE_VARIANT_ADD(fail, mmap) {
	.op = op_mmap, .errs = ERRS_MEM, .same_data = true, .procfs = true,
};

FIXTURE_VARIANT_ADD(fail, fault_hole_read) {
	.setup = setup_hole_2, .op = op_read_2, .errs = ERRS_FAULT,
	.same_data = true, .unmapped = true,
};

FIXTURE_VARIANT_ADD(fail, fault_hole_write) {
	.setup = setup_hole_2, .op = op_write_2, .errs = ERRS_FAULT,
	.unmapped = true,
};

/* The first access is the write: .fault makes the copy. */
FIXTURE_VARIANT_ADD(fail, fault_cow_write) {
	.setup = setup_cow_4, .op = op_write_4, .errs = ERRS_FAULT,
	.unmapped = true,
};

/* Read first, then write: .page_mkwrite sends the write to .fault. */
FIXTURE_VARIANT_ADD(fail, fault_cow_write_after_read) {
	.setup = setup_cow_4, .prime = prime_read_4, .op = op_write_4,
	.errs = ERRS_FAULT, .unmapped = true,
};

/* A page-in by fault retries after an allocation failure (VM_FAULT_OOM). */
FIXTURE_VARIANT_ADD(fail, fault_page_in) {
	.setup = setup_evicted, .op = op_read_all, .errs = ERRS_FAULT,
	.same_data = true, .unmapped = true,
};

FIXTURE_VARIANT_ADD(fail, fault_page_in_write) {
	.setup = setup_evicted_3, .op = op_write_3, .errs = ERRS_FAULT,
	.unmapped = true,
};

/* The space is only read: the copy allocates in the core. */
FIXTURE_VARIANT_ADD(fail, fault_private_write) {
	.setup = setup_private, .op = op_write_private, .errs = ERRS_FAULT,
	.same_data = true, .unmapped = true,
};

/* The trapped fault queues an event and waits; a handler maps the slot. */
FIXTURE_VARIANT_ADD(fail, fault_trapped) {
	.setup = setup_trap_handler, .op = op_read_2, .errs = ERRS_FAULT,
	.same_data = true, .unmapped = true,
};

FIXTURE_SETUP(fail)
{
	struct sigaction sa = { .sa_sigaction = touch_handler,
				.sa_flags = SA_SIGINFO };

	self->fd = -1;
	self->memfd = -1;
	self->new_fd = -1;
	self->nth = open("/proc/thread-self/fail-nth", O_RDWR);
	if (self->nth < 0)
		SKIP(return, "no fail-nth: kernel without CONFIG_FAULT_INJECTION");
	upage_open_or_skip(self->fd);
	for (size_t i = 0; i < ARRAY_SIZE(knobs); i++)
		ASSERT_EQ(0, write_str(knobs[i][0], knobs[i][1]));
	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(0, sigaction(SIGSEGV, &sa, NULL));
	ASSERT_EQ(0, sigaction(SIGBUS, &sa, NULL));
	self->want = upage_random_pages(SLOTS, SLOTS + 7);
	self->buf = mmap(NULL, BUF_LEN, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->buf);
	self->out = calloc(1, sizeof(*self->out));
	self->ref_out = calloc(1, sizeof(*self->ref_out));
	self->before = calloc(1, sizeof(*self->before));
	self->after = calloc(1, sizeof(*self->after));
	self->ref = calloc(1, sizeof(*self->ref));
	self->full = calloc(1, sizeof(*self->full));
	self->ref_full = calloc(1, sizeof(*self->ref_full));
	self->model_full = calloc(1, sizeof(*self->model_full));
	ASSERT_TRUE(self->want && self->out && self->ref_out && self->before &&
		    self->after && self->ref && self->full && self->ref_full &&
		    self->model_full);
	init_refill_ops();
	current_variant = variant;
}

FIXTURE_TEARDOWN(fail)
{
	if (self->nth < 0)
		return;
	(void)!pwrite(self->nth, "0", 1, 0);
	cleanup(self);
	if (self->p)
		munmap((void *)self->p, SLOTS * PAGE);
	if (self->fd >= 0)
		close(self->fd);
	close(self->nth);
}

/*
 * A call that answered the waiting thread: let it finish its access
 * before the space is looked at, as it may fill the hole it reads.
 */
static bool settle(SELF *self)
{
	long end = now_ms() + WAIT_MS;

	while (self->waiter.running &&
	       !__atomic_load_n(&self->waiter.done, __ATOMIC_ACQUIRE)) {
		if (now_ms() > end)
			return false;
		usleep(1000);
	}
	return true;
}

/* What a failed call left must be what its rule allows. */
static const char *rule_diff(SELF *self, enum rule rule)
{
	switch (rule) {
	case EVICT:
		return partial_diff(self->before, self->after, true, self->done);
	case PREFETCH:
		return partial_diff(self->before, self->after, false, self->done);
	case PIN:
		return pin_diff(self->before, self->after, self->done);
	case EXACT:
		break;
	}
	if (self->before->waiting && !self->after->waiting)
		return "the waiting thread was let go";
	return snap_diff(self->before, self->after, true, true, NULL);
}

static bool allowed(const FIXTURE_VARIANT(fail) *v, int ret)
{
	int i;

	for (i = 0; i < 4 && v->errs[i]; i++) {
		if (ret == v->errs[i])
			return true;
	}
	return false;
}

/*
 * The contents a failed call must leave: the reference's for a call that
 * keeps them, else those of the setup alone (made on a new space once).
 */
static struct contents *model(struct __test_metadata *_metadata, SELF *self,
			      const FIXTURE_VARIANT(fail) *v)
{
	if (v->same_data)
		return self->ref_full;
	if (!self->have_model) {
		if (start(self, v) == 0) {
			cleanup(self);
			self->have_model = !full_read(self, self->model_full);
		}
		EXPECT_TRUE(self->have_model);
	}
	return self->model_full;
}

TEST_F_TIMEOUT(fail, nth, 240)
{
	const FIXTURE_VARIANT(fail) *v = variant;
	struct waiter ref_waiter;
	int n, ret, max = v->max_nth ?: MAX_NTH, failed = 0, absorbed = 0;
	bool hit = true, fresh = true;
	const char *why;
	long t0 = now_ms();

	/* The reference: the call without injection, on the same setup. */
	ASSERT_EQ(0, start(self, v));
	ASSERT_EQ(0, take_snap(self, self->before));
	if (v->prime)
		v->prime(self);
	self->out->len = 0;
	ret = v->op(self);
	ASSERT_EQ(0, ret) {
		TH_LOG("without injection: %s", result_name(ret));
	}
	ASSERT_EQ(NULL, self->bad);
	ASSERT_TRUE(!v->wakes || settle(self));
	ASSERT_EQ(0, take_snap(self, self->ref));
	memcpy(self->ref_out, self->out, sizeof(*self->out));
	cleanup(self);
	ref_waiter = self->waiter;
	ASSERT_EQ(0, full_read(self, self->ref_full));

	for (n = 1; n <= max && hit; n++) {
		if (fresh) {
			ASSERT_EQ(0, start(self, v));
			ASSERT_EQ(0, take_snap(self, self->before));
			fresh = false;
		}
		if (v->prime)
			v->prime(self);
		self->out->len = 0;
		self->bad = NULL;
		self->done = 0;
		arm(self, n);
		ret = v->op(self);
		hit = disarm(self);
		if (!ret && v->wakes)
			EXPECT_TRUE(settle(self));
		ASSERT_EQ(0, take_snap(self, self->after));
		EXPECT_TRUE(!ret || allowed(v, ret)) {
			TH_LOG("n=%d: %s is not a documented error", n,
			       result_name(ret));
		}
		EXPECT_EQ(NULL, self->bad) {
			TH_LOG("n=%d: %s", n, self->bad);
		}
		if (ret) {
			failed++;
			EXPECT_TRUE(hit) {
				TH_LOG("n=%d: %s with no allocation failed", n,
				       result_name(ret));
			}
			why = rule_diff(self, v->rule);
			EXPECT_EQ(NULL, why) {
				TH_LOG("n=%d: failed with %s, but changed the space: %s",
				       n, result_name(ret), why);
			}
			/* Kept as it was: the next n can run on it. */
			fresh = why || v->rule != EXACT;
		} else {
			absorbed += hit;
			ids_before = self->before;
			why = snap_diff(self->ref, self->after, false, true,
					NULL);
			EXPECT_EQ(NULL, why) {
				TH_LOG("n=%d: succeeded, unlike the reference: %s",
				       n, why);
			}
			EXPECT_TRUE(self->out->len == self->ref_out->len &&
				    !memcmp(self->out->data, self->ref_out->data,
					    self->out->len)) {
				TH_LOG("n=%d: succeeded with another result", n);
			}
			fresh = true;
		}
		if (!fresh)
			continue;
		/* Before it goes: every slot's data, as it should be. */
		cleanup(self);
		EXPECT_EQ(0, self->handler.errors);
		if (!ret) {
			EXPECT_TRUE(self->waiter.sig == ref_waiter.sig &&
				    self->waiter.val == ref_waiter.val) {
				TH_LOG("n=%d: the waiter saw signal %d, %#x", n,
				       self->waiter.sig, self->waiter.val);
			}
		}
		ASSERT_EQ(0, full_read(self, self->full));
		why = contents_diff(ret ? model(_metadata, self, v) :
				    self->ref_full, self->full);
		EXPECT_EQ(NULL, why) {
			TH_LOG("n=%d: %s: data lost: %s", n, result_name(ret),
			       why);
		}
	}
	EXPECT_FALSE(hit) {
		TH_LOG("still failing at n=%d", max);
	}
	EXPECT_EQ(0, ret);
	TH_LOG("%d injection points: %d failed the call, %d absorbed (%ld ms)",
	       n - 2, failed, absorbed, now_ms() - t0);
	if (!v->may_not_allocate)
		EXPECT_LT(2, n);
}

TEST_HARNESS_MAIN
