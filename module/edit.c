// SPDX-License-Identifier: GPL-2.0
/*
 * Edits: alias, copy-on-write alias, move, swap and protect, applied in
 * batches that take effect whole or not at all.
 *
 * A batch runs under space->lock in three phases:
 *
 *  1. Check every op against the space as it is (ranges, overlap, flags).
 *  2. Apply the ops in order to the table. Each slot's first change is
 *     recorded in an undo log (and the slot marked UPAGE_SLOT_F_EDITED), so
 *     that a failure half-way (a pinned frame, no memory for a hole's
 *     frame) puts every slot back as it was. Frame reference counts are not
 *     touched in this phase; new frames for holes are made here, and a
 *     frame leaves a slot only with its page locked (fault.c).
 *  3. Commit: unmap the changed slots from every process in one pass,
 *     unlock the pages, then settle the counts (every slot's new frame
 *     gains a slot before any old frame loses one, so no frame still in
 *     the table is freed).
 *
 * A frame whose page has references that neither slots nor page tables
 * explain (get_user_pages: O_DIRECT, vmsplice, io_uring) cannot leave a
 * slot: the batch fails with -EBUSY, as UFFDIO_MOVE does. The check runs
 * with the frame claimed (space.c), so that faults do not take references
 * meanwhile; the core can still hold one for a moment around our fault
 * handlers, so a busy batch is retried a few times before -EBUSY is
 * returned.
 */
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/vmalloc.h>

#include "upage_private.h"

/* Unmap changed slots run by run up to this many runs, else their span. */
#define UPAGE_EDIT_MAX_RUNS	16

struct upage_undo {
	pgoff_t idx;
	struct upage_slot old;
};

struct upage_edit_ctx {
	struct upage_space *space;
	struct upage_undo *undo;	/* first change of each slot */
	size_t nr_undo, max_undo;
	struct upage_frame **locked;	/* frames whose page we locked */
	size_t nr_locked, max_locked;
	struct upage_frame **created;	/* frames made for holes */
	size_t nr_created;
	pgoff_t *runs;			/* scratch for the unmap */
};

static bool upage_ranges_overlap(u64 a, u64 b, u64 n)
{
	return a < b + n && b < a + n;
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

/* Claim @frame (lock its page) for the rest of the batch, once. */
static void upage_edit_lock(struct upage_edit_ctx *ctx,
			    struct upage_frame *frame)
{
	/* An evicted frame has no page to map: nothing to lock. */
	if (!frame || !frame->page || frame->claimed)
		return;
	if (WARN_ON_ONCE(ctx->nr_locked >= ctx->max_locked))
		return;
	upage_frame_claim(ctx->space, frame);
	ctx->locked[ctx->nr_locked++] = frame;
}

/*
 * The frame of slot @idx is about to leave it for @next: refuse if its page
 * is pinned. The check is made each time the frame leaves a slot, with the
 * frame claimed, so that faults in flight are not taken for pins.
 */
static int upage_edit_take(struct upage_edit_ctx *ctx, pgoff_t idx,
			   struct upage_frame *next)
{
	struct upage_frame *frame = ctx->space->slots[idx].frame;

	if (!frame || frame == next)
		return 0;
	upage_edit_lock(ctx, frame);
	return upage_frame_busy(ctx->space, frame) ? -EBUSY : 0;
}

/*
 * Point slot @idx at @frame with copy-on-write state @cow. Frames placed
 * are locked as well as frames taken: if the batch is rolled back, they
 * are taken away again, and no fault may have mapped them meanwhile.
 */
static void upage_edit_set(struct upage_edit_ctx *ctx, pgoff_t idx,
			   struct upage_frame *frame, bool cow)
{
	struct upage_slot *slot = &ctx->space->slots[idx];

	upage_edit_lock(ctx, frame);
	upage_edit_record(ctx, idx);
	spin_lock(&ctx->space->table_lock);
	slot->frame = frame;
	if (cow)
		slot->flags |= UPAGE_SLOT_F_COW;
	else
		slot->flags &= ~UPAGE_SLOT_F_COW;
	spin_unlock(&ctx->space->table_lock);
}

/* Give the hole at @idx a zeroed frame, so that aliases share it. */
static int upage_edit_fill(struct upage_edit_ctx *ctx, pgoff_t idx)
{
	struct upage_frame *frame;
	struct page *page;

	if (ctx->space->slots[idx].frame)
		return 0;
	page = upage_alloc_frame_page();
	if (IS_ERR(page))
		return PTR_ERR(page);
	frame = upage_frame_new(ctx->space, page);
	if (!frame) {
		upage_free_frame_page(page);
		return -ENOMEM;
	}
	ctx->created[ctx->nr_created++] = frame;
	upage_edit_set(ctx, idx, frame, false);
	return 0;
}

static int upage_edit_alias(struct upage_edit_ctx *ctx,
			    const struct upage_edit_op *op, bool cow)
{
	struct upage_slot *slots = ctx->space->slots;
	u64 i;
	int ret;

	for (i = 0; i < op->n; i++) {
		struct upage_slot *src = &slots[op->src + i];

		ret = upage_edit_fill(ctx, op->src + i);
		if (!ret)
			ret = upage_edit_take(ctx, op->dst + i, src->frame);
		if (ret)
			return ret;
		/* An alias of a copy-on-write alias is one too. */
		upage_edit_set(ctx, op->dst + i, src->frame,
			       cow || (src->flags & UPAGE_SLOT_F_COW));
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

		ret = upage_edit_take(ctx, op->dst + i, src->frame);
		if (!ret)
			ret = upage_edit_take(ctx, op->src + i, NULL);
		if (ret)
			return ret;
		upage_edit_set(ctx, op->dst + i, src->frame,
			       src->flags & UPAGE_SLOT_F_COW);
		upage_edit_set(ctx, op->src + i, NULL, false);
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

		ret = upage_edit_take(ctx, op->dst + i, b.frame);
		if (!ret)
			ret = upage_edit_take(ctx, op->src + i, a.frame);
		if (ret)
			return ret;
		upage_edit_set(ctx, op->dst + i, b.frame, b.flags & UPAGE_SLOT_F_COW);
		upage_edit_set(ctx, op->src + i, a.frame, a.flags & UPAGE_SLOT_F_COW);
	}
	return 0;
}

static int upage_edit_discard(struct upage_edit_ctx *ctx,
			      const struct upage_edit_op *op)
{
	u64 i;
	int ret;

	for (i = 0; i < op->n; i++) {
		ret = upage_edit_take(ctx, op->dst + i, NULL);
		if (ret)
			return ret;
		upage_edit_set(ctx, op->dst + i, NULL, false);
	}
	return 0;
}

static int upage_edit_protect(struct upage_edit_ctx *ctx,
			      const struct upage_edit_op *op)
{
	struct upage_slot *slots = ctx->space->slots;
	u64 i;

	for (i = 0; i < op->n; i++) {
		struct upage_slot *slot = &slots[op->dst + i];

		if (slot->prot == op->prot)
			continue;
		/*
		 * Narrowing: lock the page so that a fault which checked the
		 * old protection cannot map it after our unmap. Pins do not
		 * matter here: the frame stays.
		 */
		if ((op->prot & ~slot->prot) == 0)
			upage_edit_lock(ctx, slot->frame);
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
	size_t i;

	upage_space_end_claims(ctx->space, ctx->locked, ctx->nr_locked);
	for (i = 0; i < ctx->nr_locked; i++)
		unlock_page(ctx->locked[i]->page);
	ctx->nr_locked = 0;
}

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
	 * Every frame placed or taken was locked, so no fault mapped one at a
	 * changed slot: nothing to unmap. Faults waiting on those locks
	 * re-check and find the slots as they were.
	 */
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

/* Unmap the changed slots: run by run when they are few, else the span. */
static void upage_edit_unmap(struct upage_edit_ctx *ctx)
{
	pgoff_t *idx = ctx->runs, start;
	size_t i, nr_runs = 1;

	if (!ctx->nr_undo)
		return;
	for (i = 0; i < ctx->nr_undo; i++)
		idx[i] = ctx->undo[i].idx;
	sort(idx, ctx->nr_undo, sizeof(*idx), upage_cmp_pgoff, NULL);
	for (i = 1; i < ctx->nr_undo; i++)
		nr_runs += idx[i] != idx[i - 1] + 1;

	if (nr_runs > UPAGE_EDIT_MAX_RUNS) {
		upage_space_unmap(ctx->space, idx[0],
				  idx[ctx->nr_undo - 1] - idx[0] + 1);
		return;
	}
	start = 0;
	for (i = 1; i <= ctx->nr_undo; i++) {
		if (i < ctx->nr_undo && idx[i] == idx[i - 1] + 1)
			continue;
		upage_space_unmap(ctx->space, idx[start], idx[i - 1] - idx[start] + 1);
		start = i;
	}
}

static void upage_edit_commit(struct upage_edit_ctx *ctx)
{
	struct upage_space *space = ctx->space;
	size_t i;

	upage_edit_unmap(ctx);
	upage_edit_unlock_pages(ctx);

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
}

/*
 * Size the logs for @slots slot changes at most: each slot is recorded
 * once, each frame locked once (at most the slots' frames plus new ones).
 */
static int upage_edit_ctx_alloc(struct upage_edit_ctx *ctx, size_t slots)
{
	gfp_t gfp = GFP_KERNEL_ACCOUNT | __GFP_NOWARN;

	ctx->max_undo = slots;
	ctx->max_locked = 2 * slots;
	ctx->undo = kvmalloc_array(slots, sizeof(*ctx->undo), gfp);
	ctx->locked = kvmalloc_array(2 * slots, sizeof(*ctx->locked), gfp);
	ctx->created = kvmalloc_array(slots, sizeof(*ctx->created), gfp);
	ctx->runs = kvmalloc_array(slots, sizeof(*ctx->runs), gfp);
	if (ctx->undo && ctx->locked && ctx->created && ctx->runs)
		return 0;
	upage_edit_ctx_free(ctx);
	return -ENOMEM;
}

/* How many slot changes @ops may make, capped at @cap. */
static size_t upage_edit_slots(const struct upage_edit_op *ops, u32 count,
			       size_t cap)
{
	size_t total = 0;
	u32 i;

	for (i = 0; i < count && total < cap; i++) {
		u64 n = min_t(u64, ops[i].n, cap);

		total += ops[i].op == UPAGE_OP_PROTECT ||
			 ops[i].op == UPAGE_OP_DISCARD ? n : 2 * n;
	}
	return min(total, cap);
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
	for (i = 0; i < count; i++) {
		ret = upage_edit_one(ctx, &ops[i]);
		if (ret) {
			/* Out of memory is not the op's fault; a limit is. */
			*error_index = ret == -ENOMEM ? U32_MAX : i;
			upage_edit_rollback(ctx);
			return ret;
		}
	}
	upage_edit_commit(ctx);
	atomic64_add(count, &space->stats.edits);
	atomic64_inc(&space->stats.batches);
	return 0;
}

int upage_edit_apply(struct upage_space *space, struct upage_edit_op *ops,
		     u32 count, u32 *error_index)
{
	struct upage_edit_ctx ctx = { .space = space };
	size_t slots = 0, need;
	int busy = 0, ret;

	*error_index = U32_MAX;
	for (;;) {
		mutex_lock(&space->lock);
		/* No slot is recorded twice: the space's size bounds the logs. */
		need = upage_edit_slots(ops, count, space->nr_pages + 1);
		if (need > slots) {
			mutex_unlock(&space->lock);
			upage_edit_ctx_free(&ctx);
			slots = need;
			ret = upage_edit_ctx_alloc(&ctx, slots);
			if (ret)
				return ret;
			continue;
		}
		ret = upage_edit_try(&ctx, ops, count, error_index);
		mutex_unlock(&space->lock);
		if (ret != -EBUSY || ++busy == UPAGE_BUSY_TRIES)
			break;
		/* Let a fault in flight finish before looking again. */
		schedule_timeout_uninterruptible(1);
	}
	upage_edit_ctx_free(&ctx);
	return ret;
}
