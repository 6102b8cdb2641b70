// SPDX-License-Identifier: GPL-2.0
/*
 * Concurrency: threads (or a second process) keep reading and writing the
 * slots while an editor applies batches of swaps, moves, aliases and
 * copy-on-write aliases to them. Every frame carries an identity stamp in
 * its first 8 bytes, written once. The editor keeps a model (slot -> the
 * stamp it must show, 0 for a hole) and publishes it under a userspace
 * seqlock that is odd while a batch is in flight. A read taken while the
 * sequence stayed even must match the model; any read at all must show a
 * valid stamp, else a stale PTE or a freed page was seen.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "upage_utils.h"

#define ACTIVE 32			/* slots the threads use */
#define SLOTS (2 * ACTIVE)		/* slot ACTIVE + a parks a's frame */
#define MAGIC 0x5354524553530000ULL	/* "STRESS", low 16 bits: frame */
#define WRITE_OFF(tid) (64 + 8 * (tid))
#define MAX_THREADS 8
#define DURATION_S 20
#define MIN_BATCHES 100		/* fewer: the race was not run */
#define EXTRA_S 60		/* past DURATION_S, to reach MIN_BATCHES */

/* The model, the seqlock and the verdict, in MAP_SHARED anonymous memory. */
struct shared {
	_Atomic uint64_t seq;
	_Atomic uint64_t model[ACTIVE];
	atomic_int stop;
	_Atomic uint64_t reads, checked_reads, writes, checked_writes;
	_Atomic uint64_t batches, ops;
	_Atomic uint64_t bad;
	atomic_int msg_taken;
	char msg[256];
};

struct worker {
	struct shared *sh;
	char *rd_shared;	/* readers: a shared mapping */
	char *rd_private;	/* readers: a private mapping, never written */
	char *wr;		/* writers: another shared mapping */
	int tid;
	unsigned int seed;
};

static void fail(struct shared *sh, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void fail(struct shared *sh, const char *fmt, ...)
{
	va_list ap;

	atomic_fetch_add(&sh->bad, 1);
	if (atomic_exchange(&sh->msg_taken, 1))
		return;
	va_start(ap, fmt);
	vsnprintf(sh->msg, sizeof(sh->msg), fmt, ap);
	va_end(ap);
	atomic_store(&sh->stop, 1);
}

/* A stamp is 0 (a hole's zero frame) or MAGIC | n, 1 <= n <= ACTIVE. */
static bool stamp_valid(uint64_t v)
{
	return v == 0 || ((v & ~0xffffULL) == MAGIC && (v & 0xffff) >= 1 &&
			  (v & 0xffff) <= ACTIVE);
}

static uint64_t load_stamp(const char *page)
{
	return *(const volatile uint64_t *)page;
}

static void *reader(void *arg)
{
	struct worker *w = arg;
	struct shared *sh = w->sh;
	uint64_t n = 0, checked = 0;

	while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
		unsigned int s = rand_r(&w->seed) % ACTIVE;
		bool priv = n & 1;
		const char *base = priv ? w->rd_private : w->rd_shared;
		uint64_t s1, s2, v, m;

		s1 = atomic_load_explicit(&sh->seq, memory_order_acquire);
		v = load_stamp(base + s * PAGE);
		m = atomic_load_explicit(&sh->model[s], memory_order_relaxed);
		atomic_thread_fence(memory_order_acquire);
		s2 = atomic_load_explicit(&sh->seq, memory_order_relaxed);
		n++;
		if (!stamp_valid(v)) {
			fail(sh, "reader %d: slot %u (%s) shows %#llx, no frame's stamp",
			     w->tid, s, priv ? "private" : "shared",
			     (unsigned long long)v);
			break;
		}
		if (s1 != s2 || (s1 & 1)) {
			if (s1 & 1)
				sched_yield();
			continue;
		}
		checked++;
		if (v != m) {
			fail(sh, "reader %d: slot %u (%s) shows %#llx, model %#llx (seq %llu)",
			     w->tid, s, priv ? "private" : "shared",
			     (unsigned long long)v, (unsigned long long)m,
			     (unsigned long long)s1);
			break;
		}
	}
	atomic_fetch_add(&sh->reads, n);
	atomic_fetch_add(&sh->checked_reads, checked);
	return NULL;
}

static void *writer(void *arg)
{
	struct worker *w = arg;
	struct shared *sh = w->sh;
	uint64_t n = 0, checked = 0;

	while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
		unsigned int s = rand_r(&w->seed) % ACTIVE;
		volatile uint64_t *word = (volatile uint64_t *)
			(w->wr + s * PAGE + WRITE_OFF(w->tid));
		uint64_t mine = ((uint64_t)(w->tid + 1) << 48) | ++n;
		uint64_t s1, s2, back, v;

		s1 = atomic_load_explicit(&sh->seq, memory_order_acquire);
		*word = mine;
		back = *word;
		v = load_stamp(w->wr + s * PAGE);
		atomic_thread_fence(memory_order_acquire);
		s2 = atomic_load_explicit(&sh->seq, memory_order_relaxed);
		if (!stamp_valid(v)) {
			fail(sh, "writer %d: slot %u shows stamp %#llx, no frame's",
			     w->tid, s, (unsigned long long)v);
			break;
		}
		if (s1 != s2 || (s1 & 1)) {
			if (s1 & 1)
				sched_yield();
			continue;
		}
		checked++;
		if (back != mine) {
			fail(sh, "writer %d: slot %u read back %#llx after writing %#llx",
			     w->tid, s, (unsigned long long)back,
			     (unsigned long long)mine);
			break;
		}
	}
	atomic_fetch_add(&sh->writes, n);
	atomic_fetch_add(&sh->checked_writes, checked);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* The editor and its model.                                          */

enum slot_state { NORMAL, ALIASED, COWED, HOLED };

struct editor {
	int fd;
	struct shared *sh;
	uint64_t model[ACTIVE];		/* what each active slot shows */
	uint64_t parked[ACTIVE];	/* stamp of the frame parked for it */
	enum slot_state state[ACTIVE];
	int cow_src[ACTIVE];
	int frozen[ACTIVE];		/* copy-on-write aliases of it */
	unsigned int seed;
	struct upage_edit_op ops[64];
	unsigned int nops;
};

static void add_op(struct editor *ed, uint32_t op, uint64_t dst, uint64_t src)
{
	struct upage_edit_op *o = &ed->ops[ed->nops++];

	memset(o, 0, sizeof(*o));
	o->op = op;
	o->dst = dst;
	o->src = src;
	o->n = 1;
}

/* A random active slot in state NORMAL (and not frozen if asked); -1. */
static int pick(struct editor *ed, bool unfrozen, int not)
{
	int i, s = rand_r(&ed->seed) % ACTIVE;

	for (i = 0; i < ACTIVE; i++, s = (s + 1) % ACTIVE) {
		if (s == not || ed->state[s] != NORMAL)
			continue;
		if (unfrozen && ed->frozen[s])
			continue;
		return s;
	}
	return -1;
}

/* Park slot a's frame at ACTIVE + a. */
static void park(struct editor *ed, int a)
{
	add_op(ed, UPAGE_OP_MOVE, ACTIVE + a, a);
	ed->parked[a] = ed->model[a];
}

static void restore(struct editor *ed, int a)
{
	add_op(ed, UPAGE_OP_MOVE, a, ACTIVE + a);
	if (ed->state[a] == COWED)
		ed->frozen[ed->cow_src[a]]--;
	ed->state[a] = NORMAL;
	ed->model[a] = ed->parked[a];
}

/* Append one random op (or a few forming one step) to the batch. */
static void random_step(struct editor *ed)
{
	unsigned int r = rand_r(&ed->seed) % 100;
	int a, b, c, i;
	uint64_t t;

	if (r < 40) {			/* swap */
		a = pick(ed, true, -1);
		b = pick(ed, true, a);
		if (a < 0 || b < 0)
			return;
		add_op(ed, UPAGE_OP_SWAP, a, b);
		t = ed->model[a];
		ed->model[a] = ed->model[b];
		ed->model[b] = t;
	} else if (r < 52) {		/* rotate three by moves via a's park */
		a = pick(ed, true, -1);
		b = pick(ed, true, a);
		c = pick(ed, true, b);
		if (a < 0 || b < 0 || c < 0 || c == a)
			return;
		add_op(ed, UPAGE_OP_MOVE, ACTIVE + a, a);
		add_op(ed, UPAGE_OP_MOVE, a, b);
		add_op(ed, UPAGE_OP_MOVE, b, c);
		add_op(ed, UPAGE_OP_MOVE, c, ACTIVE + a);
		t = ed->model[a];
		ed->model[a] = ed->model[b];
		ed->model[b] = ed->model[c];
		ed->model[c] = t;
	} else if (r < 62) {		/* alias */
		a = pick(ed, true, -1);
		b = pick(ed, false, a);
		if (a < 0 || b < 0)
			return;
		park(ed, a);
		add_op(ed, UPAGE_OP_ALIAS, a, b);
		ed->state[a] = ALIASED;
		ed->model[a] = ed->model[b];
	} else if (r < 70) {		/* copy-on-write alias */
		a = pick(ed, true, -1);
		b = pick(ed, true, a);
		if (a < 0 || b < 0)
			return;
		park(ed, a);
		add_op(ed, UPAGE_OP_ALIAS_COW, a, b);
		ed->state[a] = COWED;
		ed->cow_src[a] = b;
		ed->frozen[b]++;
		ed->model[a] = ed->model[b];
	} else if (r < 78) {		/* move out: a hole */
		a = pick(ed, true, -1);
		if (a < 0)
			return;
		park(ed, a);
		ed->state[a] = HOLED;
		ed->model[a] = 0;
	} else {			/* move back in */
		a = rand_r(&ed->seed) % ACTIVE;
		for (i = 0; i < ACTIVE; i++, a = (a + 1) % ACTIVE)
			if (ed->state[a] != NORMAL)
				break;
		if (i == ACTIVE)
			return;
		restore(ed, a);
	}
}

/* Apply the batch under the seqlock; false (and the verdict set) on error. */
static bool commit(struct editor *ed)
{
	uint32_t index = UINT32_MAX;
	int ret, i;

	if (!ed->nops)
		return true;
	atomic_fetch_add(&ed->sh->seq, 1);		/* odd: in flight */
	ret = upage_edit(ed->fd, ed->ops, ed->nops, &index);
	if (!ret)
		for (i = 0; i < ACTIVE; i++)
			atomic_store_explicit(&ed->sh->model[i], ed->model[i],
					      memory_order_relaxed);
	atomic_fetch_add(&ed->sh->seq, 1);		/* even: done */
	if (ret) {
		fail(ed->sh, "a batch of %u ops failed: %s (op %u: %u)",
		     ed->nops, strerror(-ret), index,
		     index < ed->nops ? ed->ops[index].op : 0);
		return false;
	}
	atomic_fetch_add(&ed->sh->batches, 1);
	atomic_fetch_add(&ed->sh->ops, ed->nops);
	ed->nops = 0;
	return true;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Edit until @seconds have passed, then undo every alias, copy and hole,
 * so that each active slot holds one of the original frames again.
 */
static void edit_loop(struct editor *ed, double seconds)
{
	double end = now() + seconds, t;
	unsigned long round;
	int i, steps;

	/* Past @seconds only while too few batches ran (slow host). */
	for (round = 0; !atomic_load(&ed->sh->stop); round++) {
		t = now();
		if (t >= end && (atomic_load(&ed->sh->batches) > MIN_BATCHES ||
				 t >= end + EXTRA_S))
			break;
		steps = 1 + rand_r(&ed->seed) % 12;
		for (i = 0; i < steps && ed->nops + 4 <= 64; i++)
			random_step(ed);
		if (!commit(ed))
			return;
		if (round % 4 == 0)
			sched_yield();
	}
	for (i = 0; i < ACTIVE; i++) {
		if (ed->state[i] != NORMAL)
			restore(ed, i);
		if (ed->nops + 1 >= 64 && !commit(ed))
			return;
	}
	commit(ed);
}

/* ------------------------------------------------------------------ */

FIXTURE(stress) {
	int fd;
	struct shared *sh;
	char *rd_shared, *rd_private, *wr;
};

FIXTURE_VARIANT(stress) {
	/* Readers and writers in a forked child, not threads of the editor. */
	bool two_processes;
	int readers, writers;		/* in the editor's process */
	int child_readers, child_writers;
};

FIXTURE_VARIANT_ADD(stress, threads) {
	.two_processes = false,
	.readers = 3,
	.writers = 2,
};

FIXTURE_VARIANT_ADD(stress, two_processes) {
	.two_processes = true,
	.readers = 1,
	.writers = 1,
	.child_readers = 2,
	.child_writers = 2,
};

FIXTURE_SETUP(stress)
{
	int i;

	self->sh = NULL;
	self->rd_shared = self->rd_private = self->wr = NULL;
	upage_open_or_skip(self->fd);
	upage_resize_ok(self->fd, SLOTS);
	self->sh = mmap(NULL, sizeof(*self->sh), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->sh);
	self->rd_shared = upage_map(self->fd, 0, ACTIVE, MAP_SHARED);
	self->wr = upage_map(self->fd, 0, ACTIVE, MAP_SHARED);
	self->rd_private = upage_map(self->fd, 0, ACTIVE, MAP_PRIVATE);
	ASSERT_NE(NULL, self->rd_shared);
	ASSERT_NE(NULL, self->wr);
	ASSERT_NE(NULL, self->rd_private);
	for (i = 0; i < ACTIVE; i++) {
		*(uint64_t *)(self->wr + i * PAGE) = MAGIC | (i + 1);
		self->sh->model[i] = MAGIC | (i + 1);
	}
}

FIXTURE_TEARDOWN(stress)
{
	if (self->sh && self->sh != MAP_FAILED)
		munmap(self->sh, sizeof(*self->sh));
	if (self->rd_shared)
		munmap(self->rd_shared, ACTIVE * PAGE);
	if (self->wr)
		munmap(self->wr, ACTIVE * PAGE);
	if (self->rd_private)
		munmap(self->rd_private, ACTIVE * PAGE);
	if (self->fd >= 0)
		close(self->fd);
}

/* Start @readers readers and @writers writers, tids from @tid. */
static int start_workers(struct worker *w, pthread_t *th, int readers,
			 int writers, int tid, struct shared *sh,
			 char *rd_shared, char *rd_private, char *wr)
{
	int i, n = readers + writers;

	for (i = 0; i < n; i++) {
		w[i] = (struct worker){
			.sh = sh, .rd_shared = rd_shared,
			.rd_private = rd_private, .wr = wr,
			.tid = tid + i, .seed = 7919 * (tid + i + 1),
		};
		if (pthread_create(&th[i], NULL, i < readers ? reader : writer,
				   &w[i]))
			return i;
	}
	return n;
}

/*
 * Readers and writers race with batches of swaps, move rotations, aliases,
 * copy-on-write aliases, holes and refills; every checked read matches
 * the model, no read shows a stamp that is not a frame's, and at the end
 * each slot holds one of the original frames.
 */
TEST_F_TIMEOUT(stress, reads_and_writes_match_model_under_batches, 120)
{
	struct worker w[MAX_THREADS];
	pthread_t th[MAX_THREADS];
	struct editor *ed;
	struct upage_slot_info info[SLOTS];
	uint64_t seen[ACTIVE + 1] = { 0 };
	int started, i, status = 0;
	pid_t child = -1;

	ed = calloc(1, sizeof(*ed));
	ASSERT_NE(NULL, ed);
	ed->fd = self->fd;
	ed->sh = self->sh;
	ed->seed = 12345 + variant->two_processes;
	for (i = 0; i < ACTIVE; i++)
		ed->model[i] = MAGIC | (i + 1);

	if (variant->two_processes) {
		child = upage_fork_child();
		ASSERT_LE(0, child);
		if (child == 0) {
			int n;

			n = start_workers(w, th, variant->child_readers,
					      variant->child_writers,
					      variant->readers + variant->writers,
					      self->sh, self->rd_shared,
					      self->rd_private, self->wr);

			for (i = 0; i < n; i++)
				pthread_join(th[i], NULL);
			_exit(n == variant->child_readers + variant->child_writers ? 0 : 1);
		}
	}
	started = start_workers(w, th, variant->readers, variant->writers, 0,
				self->sh, self->rd_shared, self->rd_private,
				self->wr);
	if (started == variant->readers + variant->writers)
		edit_loop(ed, DURATION_S);
	atomic_store(&self->sh->stop, 1);
	for (i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	if (child > 0) {
		ASSERT_EQ(child, waitpid(child, &status, 0));
		EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			TH_LOG("the child process ended with status %#x", status);
		}
	}
	ASSERT_EQ(variant->readers + variant->writers, started);
	EXPECT_EQ(0, self->sh->bad) {
		TH_LOG("%s", self->sh->msg);
	}
	TH_LOG("%llu batches (%llu ops); reads %llu (%llu checked), writes %llu (%llu checked)",
	       (unsigned long long)self->sh->batches,
	       (unsigned long long)self->sh->ops,
	       (unsigned long long)self->sh->reads,
	       (unsigned long long)self->sh->checked_reads,
	       (unsigned long long)self->sh->writes,
	       (unsigned long long)self->sh->checked_writes);
	EXPECT_LT(MIN_BATCHES, self->sh->batches);
	EXPECT_LT(0, self->sh->checked_reads);
	EXPECT_LT(0, self->sh->checked_writes);

	/* all undone: each active slot holds one original frame, once */
	ASSERT_EQ(0, upage_query(self->fd, 0, SLOTS, info));
	for (i = 0; i < ACTIVE; i++) {
		uint64_t v = load_stamp(self->rd_shared + i * PAGE);

		EXPECT_EQ(ed->model[i], v);
		EXPECT_TRUE(stamp_valid(v) && v != 0);
		if (stamp_valid(v) && v)
			seen[v & 0xffff]++;
		EXPECT_NE(0, info[i].frame_id);
		EXPECT_EQ(1, info[i].nr_aliases);
	}
	for (i = 1; i <= ACTIVE; i++)
		EXPECT_EQ(1, seen[i]);
	for (i = ACTIVE; i < SLOTS; i++)
		EXPECT_EQ(0, info[i].frame_id);
	free(ed);
}

/*
 * Fills beside a batch (edit.c): a fault may fill a hole that the batch in
 * flight does not reach without waiting for it. An editor thread keeps
 * applying batches of 64 random ops to the first BESIDE_EDITED slots
 * while this process and a forked child fill the holes of the rest: the
 * parent by writing the first word of each page, the child by read(2)
 * into the second (the kernel's own fault), both in the same order, so
 * that they often meet at one hole. Every round checks every page, then
 * discards them all again. At the end the frame count, the resident
 * count and the frame ids must agree with the table: a fill that raced a
 * batch's frame bookkeeping, or two fills of one hole, would show there.
 */
#define BESIDE_EDITED	512
#define BESIDE_FILLED	512
#define BESIDE_SLOTS	(BESIDE_EDITED + BESIDE_FILLED)
#define BESIDE_ROUNDS	30

struct beside {
	pthread_barrier_t bar;		/* process-shared: parent and child */
	atomic_int stop;
	_Atomic uint64_t batches;
	int edit_err;
	int fd;
};

static uint64_t beside_stamp(int slot, int round, int who)
{
	return 0x4245534944450000ULL ^ ((uint64_t)who << 40) ^
	       ((uint64_t)round << 20) ^ (uint64_t)slot;
}

static void *beside_editor(void *arg)
{
	static const uint32_t kinds[] = {
		UPAGE_OP_DISCARD, UPAGE_OP_ALIAS, UPAGE_OP_ALIAS_COW,
		UPAGE_OP_MOVE, UPAGE_OP_SWAP, UPAGE_OP_PROTECT,
	};
	static const uint32_t prots[] = {
		UPAGE_PROT_NONE, UPAGE_PROT_READ, UPAGE_PROT_RW,
	};
	struct beside *b = arg;
	struct upage_edit_op ops[64];
	unsigned int seed = 4242;

	while (!atomic_load(&b->stop)) {
		for (int i = 0; i < 64; i++) {
			uint32_t kind = kinds[rand_r(&seed) % 6];
			uint64_t n = 1 + rand_r(&seed) % 4;
			uint64_t dst = rand_r(&seed) % (BESIDE_EDITED / 2 - n);
			uint64_t src = BESIDE_EDITED / 2 +
				       rand_r(&seed) % (BESIDE_EDITED / 2 - n);

			if (rand_r(&seed) % 2) {
				uint64_t t = dst;

				dst = src;
				src = t;
			}
			ops[i] = (struct upage_edit_op){
				.op = kind, .dst = dst, .n = n,
			};
			if (kind == UPAGE_OP_PROTECT)
				ops[i].prot = prots[rand_r(&seed) % 3];
			else if (kind != UPAGE_OP_DISCARD)
				ops[i].src = src;
		}
		b->edit_err = _upage_edit(b->fd, ops, 64, NULL);
		if (b->edit_err)
			break;
		atomic_fetch_add(&b->batches, 1);
	}
	return NULL;
}

/* The child's side: read(2) its stamp into each page's second word. */
static int beside_child(struct beside *b, char *map, int memfd)
{
	for (int r = 0; r < BESIDE_ROUNDS; r++) {
		pthread_barrier_wait(&b->bar);
		for (int s = BESIDE_EDITED; s < BESIDE_SLOTS; s++) {
			uint64_t v = beside_stamp(s, r, 2);

			if (pwrite(memfd, &v, sizeof(v), 0) != sizeof(v) ||
			    pread(memfd, map + (size_t)s * PAGE + 8, sizeof(v),
				  0) != sizeof(v))
				return 1;
		}
		pthread_barrier_wait(&b->bar);
		/* the parent checks and discards */
		pthread_barrier_wait(&b->bar);
	}
	return 0;
}

FIXTURE(beside) {};
FIXTURE_SETUP(beside) {}
FIXTURE_TEARDOWN(beside) {}

TEST_F_TIMEOUT(beside, holes_filled_beside_batches_keep_frames_and_counts,
	       240)
{
	struct upage_slot_info *info;
	pthread_barrierattr_t attr;
	struct upage_stats st = { .size = sizeof(st) };
	struct upage_edit_op drop = {
		.op = UPAGE_OP_DISCARD, .dst = BESIDE_EDITED, .n = BESIDE_FILLED,
	};
	uint64_t *ids, distinct = 0, resident = 0;
	pthread_t editor;
	struct beside *b;
	int fd, memfd, status, bad = 0, r, s;
	char line[128], path[64];
	char *map;
	FILE *f;
	pid_t child;

	upage_open_or_skip(fd);
	upage_resize_ok(fd, BESIDE_SLOTS);
	map = upage_map(fd, 0, BESIDE_SLOTS, MAP_SHARED);
	ASSERT_NE(NULL, map);
	memfd = memfd_create("beside", MFD_CLOEXEC);
	ASSERT_LE(0, memfd);
	b = mmap(NULL, sizeof(*b), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, b);
	b->fd = fd;
	pthread_barrierattr_init(&attr);
	pthread_barrierattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	ASSERT_EQ(0, pthread_barrier_init(&b->bar, &attr, 2));
	/* Frames in the editor's part, so that its ops move real pages. */
	for (s = 0; s < BESIDE_EDITED; s += 2)
		map[(size_t)s * PAGE] = 1;

	child = upage_fork_child();
	ASSERT_LE(0, child);
	if (child == 0)
		_exit(beside_child(b, map, memfd));
	ASSERT_EQ(0, pthread_create(&editor, NULL, beside_editor, b));
	for (r = 0; r < BESIDE_ROUNDS; r++) {
		pthread_barrier_wait(&b->bar);
		for (s = BESIDE_EDITED; s < BESIDE_SLOTS; s++)
			*(volatile uint64_t *)(map + (size_t)s * PAGE) =
				beside_stamp(s, r, 1);
		pthread_barrier_wait(&b->bar);
		for (s = BESIDE_EDITED; s < BESIDE_SLOTS; s++) {
			volatile uint64_t *w = (void *)(map + (size_t)s * PAGE);

			if (w[0] != beside_stamp(s, r, 1) ||
			    w[1] != beside_stamp(s, r, 2) || w[2] ||
			    w[PAGE / 8 - 1]) {
				if (!bad++)
					TH_LOG("round %d slot %d: %#llx %#llx %#llx",
					       r, s, (unsigned long long)w[0],
					       (unsigned long long)w[1],
					       (unsigned long long)w[2]);
			}
		}
		if (r + 1 < BESIDE_ROUNDS)
			EXPECT_EQ(0, _upage_edit(fd, &drop, 1, NULL));
		pthread_barrier_wait(&b->bar);
	}
	atomic_store(&b->stop, 1);
	pthread_join(editor, NULL);
	ASSERT_EQ(child, waitpid(child, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	EXPECT_EQ(0, b->edit_err);
	EXPECT_EQ(0, bad);
	TH_LOG("%llu batches of 64 ops beside %d rounds of %d fills",
	       (unsigned long long)b->batches, BESIDE_ROUNDS, BESIDE_FILLED);
	EXPECT_LT(BESIDE_ROUNDS, b->batches);

	/* Nothing runs now: the counts must match the table. */
	info = calloc(BESIDE_SLOTS, sizeof(*info));
	ids = calloc(BESIDE_SLOTS, sizeof(*ids));
	ASSERT_NE(NULL, info);
	ASSERT_NE(NULL, ids);
	ASSERT_EQ(0, upage_query(fd, 0, BESIDE_SLOTS, info));
	for (s = 0; s < BESIDE_SLOTS; s++) {
		int seen = 0;

		if (!info[s].frame_id)
			continue;
		for (uint64_t k = 0; k < distinct; k++)
			seen |= ids[k] == info[s].frame_id;
		if (!seen)
			ids[distinct++] = info[s].frame_id;
		/* the filled part: one frame per slot, none shared */
		if (s >= BESIDE_EDITED) {
			EXPECT_EQ(1, info[s].nr_aliases);
			EXPECT_FALSE(seen);
		}
	}
	ASSERT_EQ(0, upage_stats(fd, &st));
	EXPECT_EQ(distinct, st.out_frames);
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	ASSERT_NE(NULL, f);
	while (fgets(line, sizeof(line), f))
		sscanf(line, "upage_resident: %" SCNu64, &resident);
	fclose(f);
	EXPECT_EQ(distinct, resident);
	free(info);
	free(ids);
	pthread_barrier_destroy(&b->bar);
	munmap(b, sizeof(*b));
	munmap(map, (size_t)BESIDE_SLOTS * PAGE);
	close(memfd);
	close(fd);
}

TEST_HARNESS_MAIN
