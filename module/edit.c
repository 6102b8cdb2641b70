// SPDX-License-Identifier: GPL-2.0
/*
 * Edits: alias, copy-on-write alias, move, swap and protect, applied in
 * batches that take effect whole or not at all.
 *
 * A batch runs under space->lock in three phases:
 *
 *  1. Check every op against the space as it is (ranges, overlap, flags,
 *     and the batch's total size, UPAGE_EDIT_MAX_SLOTS).
 *  2. Apply the ops in order to the table. Each slot's first change is
 *     recorded in an undo log (and the slot marked UPAGE_SLOT_F_EDITED), so
 *     that a failure puts every slot back as it was. Frame reference counts
 *     are not touched in this phase; new frames for holes are made here.
 *     Every frame of a slot the batch changes (the frame it takes, the one
 *     it places, the one whose protection changes) is claimed (space.c):
 *     its page stays locked until the batch ends, so no fault maps it at a
 *     changed slot meanwhile.
 *  3. Unmap the changed slots from every process.
 *  4. Check the frames taken from a slot for pins, now that no PTE of a
 *     changed slot can hand out new references (GUP-fast takes them
 *     through a present PTE under the PTL alone, with no fault and no page
 *     lock, so a count made before the unmap could be stale a moment
 *     later). A frame whose page has references that neither slots, page
 *     tables nor parked faults explain (get_user_pages: O_DIRECT, vmsplice,
 *     io_uring) cannot leave a slot: the batch fails with -EBUSY, as
 *     UFFDIO_MOVE does. The check lets faults that looked the frame up
 *     before the claim through (upage_frames_drain()); they map what the
 *     table says *now*, which step 5 makes right either way.
 *  5. Commit: unlock the pages, then settle the counts (every slot's new
 *     frame gains a slot before any old frame loses one, so no frame still
 *     in the table is freed). Or, on any failure, roll back: restore the
 *     table, unmap the changed slots again (removing whatever a fault let
 *     through in step 4 mapped from the table that is being undone), and
 *     only then unlock.
 *
 * The invariant: a PTE of a changed slot is removed after every change of
 * the table (apply or rollback) with the frames involved locked, so no PTE
 * outlives the table state it was made from.
 *
 * Fills beside a batch. A fault that finds a hole fills it under
 * space->lock, so an edit would make every such fault in the space wait
 * for its whole batch (a buffer manager's page-in waited 1-3 ms for the
 * other thread's batch of 64 discards). A batch of at most
 * UPAGE_EDIT_BESIDE_OPS ops publishes them (space->edit_ops, under
 * table_lock) once they are checked and until it ends, and a fault may
 * fill a hole that no op's range holds under table_lock alone
 * (space.c). The batch reads and writes only the slots of its ranges
 * (the unmap reads its gaps' frame pointers, see there), and the frame
 * counters a fill changes are atomic, so the fill is as if it came before
 * the batch or after it. Longer batches do not publish: every such fault
 * looks at the ops under a spinlock.
 *
 * The core can still hold a page reference for a moment around our fault
 * handlers, so a busy batch is retried a few times before -EBUSY is
 * returned. Long batches yield the CPU every UPAGE_EDIT_RESCHED slots and
 * stop with -EINTR (changing nothing) on a fatal signal.
 */
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/vmalloc.h>

#include "upage_private.h"
#include "upage_trace.h"

/*
 * The harness's self-test (scripts/check) builds one module with
 * UPAGE_MUTANT_ROLLBACK, which brings back a fixed bug: a widening is not
 * claimed and a rollback does not unmap. make check must report that
 * module as failing; no other build defines it.
 */
#ifdef UPAGE_MUTANT_ROLLBACK
#define upage_mutant_rollback() true
#else
#define upage_mutant_rollback() false
#endif

/* Unmap calls between two looks at the scheduler. */
#define UPAGE_EDIT_UNMAP_RESCHED	64
/*
 * VMA zaps (unmap calls times the VMAs mapping the space) a batch may make
 * to unmap run by run; past it, one call unmaps the changed slots' span.
 */
#define UPAGE_EDIT_UNMAP_BUDGET		4096
/* The longest gap between two changed runs that an unmap may span. */
#define UPAGE_EDIT_GAP_SCAN	256
/* Slots a batch edits between two looks at the scheduler and signals. */
#define UPAGE_EDIT_RESCHED	1024
/* The longest batch beside which faults fill holes (above). */
#define UPAGE_EDIT_BESIDE_OPS	256

struct upage_undo {
	pgoff_t idx;
	struct upage_slot old;
};

/*
 * The undo log holds each slot once (UPAGE_SLOT_F_EDITED), so the space's
 * size bounds it. The claimed and created frames have no such bound: one
 * batch may fill the same hole again and again (alias from it, move the
 * new frame away), so those two logs grow as needed.
 */
struct upage_edit_ctx {
	struct upage_space *space;
	struct upage_undo *undo;	/* first change of each slot */
	size_t nr_undo, max_undo;
	struct upage_frame **locked;	/* frames whose page we locked */
	size_t nr_locked, max_locked;
	struct upage_frame **created;	/* frames made for holes */
	size_t nr_created, max_created;
	pgoff_t *runs;			/* scratch for the unmap */
	u32 op_index;			/* the op being applied */
	u64 steps;			/* slots edited so far */
};

/*
 * Make room for one more entry of @size bytes in *@vec, holding *@nr of
 * *@max: -ENOMEM if there is none. Called with page locks held, as a
 * hole's new frame is: reclaim never waits for our pages (they are on no
 * LRU) and our shrinker only trylocks.
 */
static int upage_edit_grow(void **vec, size_t *max, size_t nr, size_t size)
{
	size_t want = max_t(size_t, 2 * *max, 64);
	void *bigger;

	if (nr < *max)
		return 0;
	bigger = kvmalloc_array(want, size, GFP_KERNEL_ACCOUNT | __GFP_NOWARN |
				__GFP_RETRY_MAYFAIL);
	if (!bigger)
		return -ENOMEM;
	if (*vec)
		memcpy(bigger, *vec, nr * size);
	kvfree(*vec);
	*vec = bigger;
	*max = want;
	return 0;
}

/*
 * Every UPAGE_EDIT_RESCHED slots: yield the CPU, and give up (the batch
 * is rolled back) if the task is being killed.
 */
static int upage_edit_step(struct upage_edit_ctx *ctx)
{
	if (++ctx->steps % UPAGE_EDIT_RESCHED)
		return 0;
	cond_resched();
	return fatal_signal_pending(current) ? -EINTR : 0;
}

static bool upage_ranges_overlap(u64 a, u64 b, u64 n)
{
	return a < b + n && b < a + n;
}

/* Whether @op uses a source range (an op not known here: assume so). */
static bool upage_edit_has_src(const struct upage_edit_op *op)
{
	return op->op != UPAGE_OP_DISCARD && op->op != UPAGE_OP_PROTECT;
}

/* Whether slot @idx lies in a range of the checked @ops[0..count-1]. */
bool upage_edit_reaches(const struct upage_edit_op *ops, u32 count,
			pgoff_t idx)
{
	u32 i;

	for (i = 0; i < count; i++) {
		if (idx >= ops[i].dst && idx - ops[i].dst < ops[i].n)
			return true;
		if (upage_edit_has_src(&ops[i]) && idx >= ops[i].src &&
		    idx - ops[i].src < ops[i].n)
			return true;
	}
	return false;
}

/* Let faults fill the holes @ops do not reach, until the batch ends. */
static void upage_edit_publish(struct upage_space *space,
			       const struct upage_edit_op *ops, u32 count)
{
	lockdep_assert_held(&space->lock);
	if (count > UPAGE_EDIT_BESIDE_OPS)
		return;
	spin_lock(&space->table_lock);
	space->edit_ops = ops;
	space->edit_nr_ops = count;
	spin_unlock(&space->table_lock);
}

static void upage_edit_withdraw(struct upage_space *space)
{
	if (!space->edit_ops)
		return;
	spin_lock(&space->table_lock);
	space->edit_ops = NULL;
	space->edit_nr_ops = 0;
	spin_unlock(&space->table_lock);
}

/* Phase 1: is @op valid on the space as it is? */
static int upage_edit_check(struct upage_space *space,
			    const struct upage_edit_op *op)
{
	if (op->flags || op->__reserved)
		return -EOPNOTSUPP;
	switch (op->op) {
	case UPAGE_OP_DISCARD:
		if (op->src || op->prot || !op->n ||
		    !upage_slots_exist(space, op->dst, op->n))
			return -EINVAL;
		return 0;
	case UPAGE_OP_PROTECT:
		if (op->prot != UPAGE_PROT_NONE && op->prot != UPAGE_PROT_READ &&
		    op->prot != UPAGE_PROT_RW)
			return -EOPNOTSUPP;
		if (op->src || !op->n || !upage_slots_exist(space, op->dst, op->n))
			return -EINVAL;
		return 0;
	case UPAGE_OP_ALIAS:
	case UPAGE_OP_ALIAS_COW:
	case UPAGE_OP_MOVE:
	case UPAGE_OP_SWAP:
		if (op->prot || !op->n ||
		    !upage_slots_exist(space, op->dst, op->n) ||
		    !upage_slots_exist(space, op->src, op->n) ||
		    upage_ranges_overlap(op->dst, op->src, op->n))
			return -EINVAL;
		return 0;
	default:
		return -EOPNOTSUPP;
	}
}

/* Record slot @idx's state before its first change in this batch. */
static void upage_edit_record(struct upage_edit_ctx *ctx, pgoff_t idx)
{
	struct upage_slot *slot = &ctx->space->slots[idx];

	if (slot->flags & UPAGE_SLOT_F_EDITED)
		return;
	if (WARN_ON_ONCE(ctx->nr_undo >= ctx->max_undo))
		return;
	ctx->undo[ctx->nr_undo].idx = idx;
	ctx->undo[ctx->nr_undo].old = *slot;
	ctx->nr_undo++;
	/* The fault path reads flags under table_lock. */
	spin_lock(&ctx->space->table_lock);
	slot->flags |= UPAGE_SLOT_F_EDITED;
	spin_unlock(&ctx->space->table_lock);
}

/*
 * Claim @frame (lock its page) for the rest of the batch, once; @taken:
 * it leaves a slot, so its pins are checked before the batch commits.
 */
static int upage_edit_lock(struct upage_edit_ctx *ctx,
			   struct upage_frame *frame, bool taken)
{
	int ret;

	/* An evicted frame has no page to map: nothing to lock. */
	if (!frame || !frame->page)
		return 0;
	if (frame->claimed) {
		/* Claimed by this batch (we hold space->lock): mark it taken. */
		if (taken && !WARN_ON_ONCE(frame->edit_idx >= ctx->nr_locked ||
					   ctx->locked[frame->edit_idx] != frame))
			frame->edit_taken = min(frame->edit_taken, ctx->op_index);
		return 0;
	}
	ret = upage_edit_grow((void **)&ctx->locked, &ctx->max_locked,
			      ctx->nr_locked, sizeof(*ctx->locked));
	if (ret)
		return ret;
	upage_frame_claim(ctx->space, frame);
	frame->edit_idx = ctx->nr_locked;
	frame->edit_taken = taken ? ctx->op_index : U32_MAX;
	ctx->locked[ctx->nr_locked++] = frame;
	return 0;
}

/* The frame of slot @idx is about to leave it for @next. */
static int upage_edit_take(struct upage_edit_ctx *ctx, pgoff_t idx,
			   struct upage_frame *next)
{
	struct upage_frame *frame = ctx->space->slots[idx].frame;

	if (!frame || frame == next)
		return 0;
	return upage_edit_lock(ctx, frame, true);
}

/*
 * Point slot @idx at @frame with copy-on-write state @cow. Frames placed
 * are locked as well as frames taken: if the batch is rolled back, they
 * are taken away again, and no fault may have mapped them meanwhile.
 */
static int upage_edit_set(struct upage_edit_ctx *ctx, pgoff_t idx,
			  struct upage_frame *frame, bool cow)
{
	struct upage_slot *slot = &ctx->space->slots[idx];
	int ret;

	ret = upage_edit_lock(ctx, frame, false);
	if (ret)
		return ret;
	upage_edit_record(ctx, idx);
	spin_lock(&ctx->space->table_lock);
	slot->frame = frame;
	if (cow)
		slot->flags |= UPAGE_SLOT_F_COW;
	else
		slot->flags &= ~UPAGE_SLOT_F_COW;
	spin_unlock(&ctx->space->table_lock);
	return 0;
}

/* Give the hole at @idx a zeroed frame, so that aliases share it. */
static int upage_edit_fill(struct upage_edit_ctx *ctx, pgoff_t idx)
{
	struct upage_frame *frame;
	struct page *page;

	int ret;

	if (ctx->space->slots[idx].frame)
		return 0;
	ret = upage_edit_grow((void **)&ctx->created, &ctx->max_created,
			      ctx->nr_created, sizeof(*ctx->created));
	if (ret)
		return ret;
	page = upage_alloc_frame_page(ctx->space);
	if (IS_ERR(page))
		return PTR_ERR(page);
	frame = upage_frame_new(ctx->space, page);
	if (!frame) {
		upage_free_frame_page(ctx->space, page);
		return -ENOMEM;
	}
	ctx->created[ctx->nr_created++] = frame;
	return upage_edit_set(ctx, idx, frame, false);
}

static int upage_edit_alias(struct upage_edit_ctx *ctx,
			    const struct upage_edit_op *op, bool cow)
{
	struct upage_slot *slots = ctx->space->slots;
	u64 i;
	int ret;

	for (i = 0; i < op->n; i++) {
		struct upage_slot *src = &slots[op->src + i];

		ret = upage_edit_step(ctx);
		if (!ret)
			ret = upage_edit_fill(ctx, op->src + i);
		/*
		 * A dbit armed frame's PTE at the source may be writable and
		 * clean (track.c): unmap it with the changed slots.
		 */
		if (!ret && src->frame && src->frame->dbit)
			upage_edit_record(ctx, op->src + i);
		if (!ret)
			ret = upage_edit_take(ctx, op->dst + i, src->frame);
		/* An alias of a copy-on-write alias is one too. */
		if (!ret)
			ret = upage_edit_set(ctx, op->dst + i, src->frame,
					     cow || (src->flags & UPAGE_SLOT_F_COW));
		if (ret)
			return ret;
	}
	return 0;
}

static int upage_edit_move(struct upage_edit_ctx *ctx,
			   const struct upage_edit_op *op)
{
	struct upage_slot *slots = ctx->space->slots;
	u64 i;
	int ret;

	for (i = 0; i < op->n; i++) {
		struct upage_slot *src = &slots[op->src + i];

		ret = upage_edit_step(ctx);
		if (!ret)
			ret = upage_edit_take(ctx, op->dst + i, src->frame);
		if (!ret)
			ret = upage_edit_take(ctx, op->src + i, NULL);
		if (!ret)
			ret = upage_edit_set(ctx, op->dst + i, src->frame,
					     src->flags & UPAGE_SLOT_F_COW);
		if (!ret)
			ret = upage_edit_set(ctx, op->src + i, NULL, false);
		if (ret)
			return ret;
	}
	return 0;
}

static int upage_edit_swap(struct upage_edit_ctx *ctx,
			   const struct upage_edit_op *op)
{
	struct upage_slot *slots = ctx->space->slots;
	u64 i;
	int ret;

	for (i = 0; i < op->n; i++) {
		struct upage_slot a = slots[op->dst + i];
		struct upage_slot b = slots[op->src + i];

		ret = upage_edit_step(ctx);
		if (!ret)
			ret = upage_edit_take(ctx, op->dst + i, b.frame);
		if (!ret)
			ret = upage_edit_take(ctx, op->src + i, a.frame);
		if (!ret)
			ret = upage_edit_set(ctx, op->dst + i, b.frame,
					     b.flags & UPAGE_SLOT_F_COW);
		if (!ret)
			ret = upage_edit_set(ctx, op->src + i, a.frame,
					     a.flags & UPAGE_SLOT_F_COW);
		if (ret)
			return ret;
	}
	return 0;
}

static int upage_edit_discard(struct upage_edit_ctx *ctx,
			      const struct upage_edit_op *op)
{
	u64 i;
	int ret;

	for (i = 0; i < op->n; i++) {
		ret = upage_edit_step(ctx);
		if (!ret)
			ret = upage_edit_take(ctx, op->dst + i, NULL);
		if (!ret)
			ret = upage_edit_set(ctx, op->dst + i, NULL, false);
		if (ret)
			return ret;
	}
	return 0;
}

static int upage_edit_protect(struct upage_edit_ctx *ctx,
			      const struct upage_edit_op *op)
{
	struct upage_slot *slots = ctx->space->slots;
	u64 i;
	int ret;

	for (i = 0; i < op->n; i++) {
		struct upage_slot *slot = &slots[op->dst + i];

		ret = upage_edit_step(ctx);
		if (ret)
			return ret;
		if (slot->prot == op->prot)
			continue;
		/*
		 * Narrowing or widening, lock the page: a fault that checked
		 * the old protection must not map after our unmap, and one
		 * must not map with the new protection before a rollback
		 * takes it back. Pins do not matter here: the frame stays.
		 */
		if (!upage_mutant_rollback() || (op->prot & ~slot->prot) == 0)
			ret = upage_edit_lock(ctx, slot->frame, false);
		if (ret)
			return ret;
		upage_edit_record(ctx, op->dst + i);
		spin_lock(&ctx->space->table_lock);
		slot->prot = op->prot;
		spin_unlock(&ctx->space->table_lock);
	}
	return 0;
}

static int upage_edit_one(struct upage_edit_ctx *ctx,
			  const struct upage_edit_op *op)
{
	switch (op->op) {
	case UPAGE_OP_ALIAS:
		return upage_edit_alias(ctx, op, false);
	case UPAGE_OP_ALIAS_COW:
		return upage_edit_alias(ctx, op, true);
	case UPAGE_OP_MOVE:
		return upage_edit_move(ctx, op);
	case UPAGE_OP_SWAP:
		return upage_edit_swap(ctx, op);
	case UPAGE_OP_PROTECT:
		return upage_edit_protect(ctx, op);
	case UPAGE_OP_DISCARD:
		return upage_edit_discard(ctx, op);
	}
	return -EOPNOTSUPP;
}

static void upage_edit_unlock_pages(struct upage_edit_ctx *ctx)
{
	struct upage_space *space = ctx->space;
	size_t i;

	upage_space_end_claims(space, ctx->locked, ctx->nr_locked);
	for (i = 0; i < ctx->nr_locked; i++)
		unlock_page(ctx->locked[i]->page);
	ctx->nr_locked = 0;
}

static void upage_edit_unmap(struct upage_edit_ctx *ctx);

/* Put every changed slot back; free the frames made for holes. */
static void upage_edit_rollback(struct upage_edit_ctx *ctx)
{
	struct upage_space *space = ctx->space;
	size_t i;

	spin_lock(&space->table_lock);
	for (i = ctx->nr_undo; i-- > 0;) {
		space->slots[ctx->undo[i].idx] = ctx->undo[i].old;
		space->slots[ctx->undo[i].idx].flags &= ~UPAGE_SLOT_F_EDITED;
	}
	spin_unlock(&space->table_lock);
	/*
	 * The pin check let faults that waited on a claimed page through,
	 * and they mapped from the table being undone: unmap again, with
	 * every frame still locked, before any fault may look again.
	 */
	if (!upage_mutant_rollback())
		upage_edit_unmap(ctx);
	upage_edit_unlock_pages(ctx);
	for (i = 0; i < ctx->nr_created; i++) {
		ctx->created[i]->nr_slots = 1;
		upage_frame_put(space, ctx->created[i]);
	}
	ctx->nr_undo = 0;
	ctx->nr_created = 0;
}

static int upage_cmp_pgoff(const void *a, const void *b)
{
	pgoff_t x = *(const pgoff_t *)a, y = *(const pgoff_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * May the unmap of two runs of changed slots span the slots between them?
 * Only if those hold at most upage_unmap_gap_frames frames: a slot with
 * no frame cannot be mapped (a hole fills on its first fault), so with the
 * default of 0 a merge costs no refault and saves an unmap call (a walk of
 * the mapping's VMAs and a TLB flush per VMA). A fault beside the batch
 * may fill a hole of a gap meanwhile (above): then the unmap may take
 * its new PTE too, which costs a refault (the frame stays in the table;
 * trapped holes are not joined over, below). The frame pointers are
 * only tested, never followed. A gap longer
 * than UPAGE_EDIT_GAP_SCAN slots is not looked at (not joined): scanning
 * the holes between pairs scattered over a 1 GiB space made a swap batch
 * cost 4 times as much per page as in 1 MiB.
 */
static bool upage_edit_gap_is_cheap(struct upage_space *space, pgoff_t from,
				    pgoff_t to)
{
	unsigned int allowed = READ_ONCE(upage_unmap_gap_frames);
	unsigned long frames = 0;
	pgoff_t i;

	lockdep_assert_held(&space->lock);
	if (to - from > UPAGE_EDIT_GAP_SCAN)
		return false;
	for (i = from; i < to; i++) {
		struct upage_slot *slot = &space->slots[i];

		/*
		 * A trapped hole may be filled beside the batch after its
		 * trap was answered: taking that PTE would trap it again.
		 */
		if ((READ_ONCE(slot->frame) ||
		     (READ_ONCE(slot->flags) & UPAGE_SLOT_F_TRAPS)) &&
		    ++frames > allowed)
			return false;
	}
	return true;
}

/* The VMAs mapping the space, counted up to @max. */
static unsigned long upage_edit_count_vmas(struct upage_space *space,
					   unsigned long max)
{
	struct address_space *mapping = space->inode->i_mapping;
	unsigned long nr = 0;
	struct rb_node *node;

	i_mmap_lock_read(mapping);
	for (node = rb_first_cached(&mapping->i_mmap); node && nr < max;
	     node = rb_next(node))
		nr++;
	i_mmap_unlock_read(mapping);
	return nr;
}

/*
 * Walk the runs of the sorted changed slots idx[0..n-1], joined across
 * gaps that cannot be mapped, and unmap each in at most @max_calls calls
 * (0: count only); returns the number of runs (or calls). A fault beside
 * the batch may fill a gap between the count and the unmap, splitting a
 * run: the last call allowed then unmaps the rest as one span, so the
 * count bounds the work (UPAGE_EDIT_UNMAP_BUDGET).
 */
static size_t upage_edit_unmap_runs(struct upage_space *space,
				    const pgoff_t *idx, size_t n,
				    size_t max_calls)
{
	size_t i, start = 0, calls = 0;

	for (i = 1; i <= n; i++) {
		if (i < n && (idx[i] == idx[i - 1] + 1 ||
			      upage_edit_gap_is_cheap(space, idx[i - 1] + 1,
						      idx[i])))
			continue;
		if (max_calls && calls + 1 == max_calls) {
			upage_space_unmap(space, idx[start],
					  idx[n - 1] - idx[start] + 1);
			return max_calls;
		}
		if (max_calls)
			upage_space_unmap(space, idx[start],
					  idx[i - 1] - idx[start] + 1);
		start = i;
		if (!(++calls % UPAGE_EDIT_UNMAP_RESCHED))
			cond_resched();
	}
	return calls;
}

/*
 * Unmap exactly the changed slots, run by run, so that no page the batch
 * left alone faults again (a span unmap of 64 scattered discards made a
 * whole buffer pool fault back in); runs are joined only across slots
 * that cannot be mapped (upage_edit_gap_is_cheap()). Each call zaps every
 * VMA of the space, so the runs are bounded by UPAGE_EDIT_UNMAP_BUDGET
 * over the VMAs: past it, one call unmaps the span, as a batch always did
 * before (review 5: 2,048 runs over 257 VMAs took 50 times as long, and
 * over 4,097 VMAs seconds, unkillable). The undo log holds each slot once.
 */
static void upage_edit_unmap(struct upage_edit_ctx *ctx)
{
	struct upage_space *space = ctx->space;
	pgoff_t *idx = ctx->runs;
	unsigned long nr_vmas;
	size_t i, runs, n = ctx->nr_undo;

	if (!n)
		return;
	for (i = 0; i < n; i++)
		idx[i] = ctx->undo[i].idx;
	sort(idx, n, sizeof(*idx), upage_cmp_pgoff, NULL);

	nr_vmas = upage_edit_count_vmas(space, UPAGE_EDIT_UNMAP_BUDGET + 1);
	runs = upage_edit_unmap_runs(space, idx, n, 0);
	if (nr_vmas > UPAGE_EDIT_UNMAP_BUDGET ||
	    runs > UPAGE_EDIT_UNMAP_BUDGET / max(nr_vmas, 1UL)) {
		upage_space_unmap(space, idx[0], idx[n - 1] - idx[0] + 1);
		return;
	}
	upage_edit_unmap_runs(space, idx, n, runs);
}

static bool upage_edit_was_taken(struct upage_frame *frame)
{
	return frame->edit_taken != U32_MAX;
}

/*
 * The changed slots are unmapped: check the frames taken from them for
 * pins. On -EBUSY, *@error_index is the first op that took a pinned one.
 * Faults that the check lets through map from the new table: right if it
 * commits, undone by the rollback's unmap if not.
 */
static int upage_edit_check_pins(struct upage_edit_ctx *ctx, u32 *error_index)
{
	bool drained = false;
	u32 busy = U32_MAX;
	size_t i;
	int ret;

	ret = upage_frames_drain(ctx->space, ctx->locked, ctx->nr_locked,
				 upage_edit_was_taken, &drained);
	if (ret != -EBUSY)
		return ret;
	for (i = 0; i < ctx->nr_locked; i++) {
		struct upage_frame *frame = ctx->locked[i];

		if (upage_edit_was_taken(frame) && frame->busy)
			busy = min(busy, frame->edit_taken);
	}
	*error_index = busy;
	return -EBUSY;
}

static void upage_edit_commit(struct upage_edit_ctx *ctx)
{
	struct upage_space *space = ctx->space;
	size_t i;

	/* Every PTE of the frames is gone: end dbit arming (track.c). */
	for (i = 0; i < ctx->nr_locked; i++)
		upage_track_disarm(space, ctx->locked[i]);
	upage_edit_unlock_pages(ctx);
	/* Frames may have moved under a store write in flight (backing.c). */
	space->edit_seq++;

	spin_lock(&space->table_lock);
	for (i = 0; i < ctx->nr_undo; i++) {
		struct upage_slot *slot = &space->slots[ctx->undo[i].idx];

		slot->flags &= ~UPAGE_SLOT_F_EDITED;
		if (slot->frame != ctx->undo[i].old.frame &&
		    (slot->flags & UPAGE_SLOT_F_TRACKED))
			slot->flags |= UPAGE_SLOT_F_DIRTY;	/* track.c */
		if (slot->frame && slot->frame != ctx->undo[i].old.frame)
			upage_frame_get(slot->frame);
	}
	spin_unlock(&space->table_lock);
	for (i = 0; i < ctx->nr_undo; i++) {
		struct upage_frame *old = ctx->undo[i].old.frame;

		if (old && old != space->slots[ctx->undo[i].idx].frame)
			upage_frame_put(space, old);
	}
	atomic64_add(ctx->nr_created, &space->stats.zero_fills);
	/* A frame made for a hole that no slot kept (moved on, then away). */
	for (i = 0; i < ctx->nr_created; i++) {
		if (!ctx->created[i]->nr_slots) {
			ctx->created[i]->nr_slots = 1;
			upage_frame_put(space, ctx->created[i]);
		}
	}
}

static void upage_edit_ctx_free(struct upage_edit_ctx *ctx)
{
	kvfree(ctx->undo);
	kvfree(ctx->locked);
	kvfree(ctx->created);
	kvfree(ctx->runs);
	ctx->undo = NULL;
	ctx->locked = NULL;
	ctx->created = NULL;
	ctx->runs = NULL;
	ctx->max_locked = 0;
	ctx->max_created = 0;
}

/* Size the undo log for @slots slot changes at most. */
static int upage_edit_ctx_alloc(struct upage_edit_ctx *ctx, size_t slots)
{
	gfp_t gfp = GFP_KERNEL_ACCOUNT | __GFP_NOWARN | __GFP_RETRY_MAYFAIL;

	ctx->max_undo = slots;
	ctx->undo = kvmalloc_array(slots, sizeof(*ctx->undo), gfp);
	ctx->runs = kvmalloc_array(slots, sizeof(*ctx->runs), gfp);
	if (ctx->undo && ctx->runs)
		return 0;
	upage_edit_ctx_free(ctx);
	return -ENOMEM;
}

/*
 * How many slot changes @ops make at most, counting both ranges of a
 * two-range op; U64_MAX past UPAGE_EDIT_MAX_SLOTS, with *@over the op
 * that crosses it.
 */
static u64 upage_edit_slots(const struct upage_edit_op *ops, u32 count,
			    u32 *over)
{
	u64 total = 0;
	u32 i;

	for (i = 0; i < count; i++) {
		u64 n = ops[i].n;

		if (ops[i].op != UPAGE_OP_PROTECT &&
		    ops[i].op != UPAGE_OP_DISCARD)
			n = n > UPAGE_EDIT_MAX_SLOTS ? n : 2 * n;
		if (n > UPAGE_EDIT_MAX_SLOTS - total) {
			*over = i;
			return U64_MAX;
		}
		total += n;
	}
	return total;
}

static int upage_edit_try(struct upage_edit_ctx *ctx,
			  const struct upage_edit_op *ops, u32 count,
			  u32 *error_index)
{
	struct upage_space *space = ctx->space;
	u32 i;
	int ret;

	lockdep_assert_held(&space->lock);
	for (i = 0; i < count; i++) {
		ret = upage_edit_check(space, &ops[i]);
		if (ret) {
			*error_index = i;
			return ret;
		}
	}
	upage_edit_publish(space, ops, count);
	for (i = 0; i < count; i++) {
		ctx->op_index = i;
		ret = upage_edit_one(ctx, &ops[i]);
		if (ret) {
			/* Memory and signals are not the op's fault; a limit is. */
			*error_index = ret == -ENOMEM || ret == -EINTR ? U32_MAX : i;
			goto out_rollback;
		}
	}
	upage_edit_unmap(ctx);
	ret = upage_edit_check_pins(ctx, error_index);
	if (ret == -EINTR)
		*error_index = U32_MAX;
	if (ret)
		goto out_rollback;
	upage_edit_commit(ctx);
	upage_edit_withdraw(space);
	atomic64_add(count, &space->stats.edits);
	atomic64_inc(&space->stats.batches);
	return 0;

out_rollback:
	upage_edit_rollback(ctx);
	upage_edit_withdraw(space);
	return ret;
}

int upage_edit_apply(struct upage_space *space, struct upage_edit_op *ops,
		     u32 count, u32 flags, u32 *error_index)
{
	struct upage_edit_ctx ctx = { .space = space };
	size_t slots = 0, need;
	int busy = 0, ret;
	u64 total;

	*error_index = U32_MAX;
	total = upage_edit_slots(ops, count, error_index);
	if (total == U64_MAX) {
		ret = -EINVAL;
		goto out_trace;
	}
	for (;;) {
		mutex_lock(&space->lock);
		/* No slot is recorded twice: the space's size bounds the log. */
		need = min_t(u64, total, space->nr_pages + 1);
		if (need > slots) {
			mutex_unlock(&space->lock);
			upage_edit_ctx_free(&ctx);
			slots = need;
			ret = upage_edit_ctx_alloc(&ctx, slots);
			if (ret)
				goto out_trace;
			continue;
		}
		ret = upage_edit_try(&ctx, ops, count, error_index);
		mutex_unlock(&space->lock);
		if (ret != -EBUSY || ++busy == UPAGE_BUSY_TRIES)
			break;
		/* Let a fault in flight finish before looking again. */
		schedule_timeout_uninterruptible(1);
	}
	/* The unmap left the changed slots sorted in ctx.runs. */
	if (!ret && (flags & UPAGE_EDIT_POPULATE))
		upage_populate_slots(space, ctx.runs, ctx.nr_undo);
out_trace:
	/* A committed edit's undo log holds each changed slot once. */
	trace_upage_edit(space, count, ret ? 0 : ctx.nr_undo, *error_index,
			 ret);
	upage_edit_ctx_free(&ctx);
	return ret;
}

