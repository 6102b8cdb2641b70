// SPDX-License-Identifier: GPL-2.0
/*
 * Write tracking: UPAGE_TRACK and UPAGE_DIRTY.
 *
 * Generations. space->track_gen counts arming passes. A write recorded by
 * .page_mkwrite (upage_frame_record_write() in space.c, under the page
 * lock and table_lock) sets frame->written to the current generation. An
 * arm moves the generation on, then sets slot->armed of each slot it arms
 * to the one it left (slot->armed < track_gen whenever table_lock is free),
 * so a slot is dirty when its frame was written after it was
 * armed (frame->written > slot->armed), or when an edit gave it another
 * frame (UPAGE_SLOT_F_DIRTY). Writes are recorded on the frame, so a
 * write through any alias dirties every tracked slot that shows it.
 *
 * Re-arming. Only a write that faults reaches .page_mkwrite, so arming
 * unmaps the armed slots' pages in every mapping of the space, and those
 * of their aliases; the next access faults, and maps a shared page
 * read-only first (the VMAs have .page_mkwrite), so the first write is
 * seen. Slots reported clean need nothing: no write reached their frame,
 * so no mapping of it was made writable.
 *
 * Why unmap and not write-protect (wp_shared_mapping_range()): a
 * write-protected PTE keeps its dirty bit, and the kernel takes a
 * read-only but dirty PTE of a shared write-notify mapping as already
 * notified: mprotect() making the VMA writable again
 * (can_change_pte_writable()) and NUMA hinting faults make it writable
 * without asking us, so a write after mprotect(PROT_READ) and back would
 * go unseen. And walk_page_mapping(), under that helper, stops at the
 * first VMA of the mapping that is not shared and writable: a MAP_PRIVATE
 * mapping of the space that sorts first hides every shared one.
 * unmap_mapping_pages() has neither problem; its price is a read fault
 * after each arm for a page that is read before it is written again.
 *
 * The race with a write in flight: .page_mkwrite records the write, and
 * the core makes the PTE writable after it returns, with the page still
 * locked. If that PTE were installed after our unmap, the store behind
 * it would land unseen. So the arm moves the generation on first, then
 * takes and drops the page lock of each armed frame (upage_space_fence()),
 * then unmaps: a .page_mkwrite that read the old generation (its write is
 * reported by this collection if the walk has not passed its slot yet,
 * else by the next) has installed its PTE by then, and the unmap removes
 * it; one that reads the new generation records a write that the next
 * collection reports.
 *
 * Re-arming by dirty bits. Unmapping costs a fault per page re-written
 * every round, so a slot that only a plain write can reach is re-armed
 * by cleaning the dirty bits of its PTEs instead
 * (clean_record_shared_mapping_range(), as vmwgfx does): its PTEs stay
 * writable, and the hardware's dirty bit records the next write. Such a
 * frame is "dbit armed" (frame->dbit). A write to it is then in one of
 * three places: frame->written (it went through .page_mkwrite), a PTE's
 * dirty bit, or PG_dirty (a zap of a dirty PTE moves the bit there:
 * munmap, madvise, exit, our own unmaps; so does unpinning a
 * get_user_pages pin that wrote). upage_track_harvest() moves the last
 * two into frame->written before every report, so the generation test
 * above stays the whole rule. For PG_dirty to mean "written since the
 * arm", the arm moves the page's PG_dirty into frame->dirty (the
 * eviction's "the store lacks these contents", upage_frame_dirty()), and
 * every path that clears PG_dirty later first records it as a write
 * (upage_frame_clear_dirty()). A harvest cleans the dirty bits of every
 * PTE in its range, so it keeps what it found in frame->dirty too.
 *
 * Which slots: a dbit armed frame must be reachable only through PTEs the
 * harvest cleans and through .page_mkwrite. So a slot is re-armed by
 * dirty bits when its frame is resident, held by that slot alone (an
 * alias or copy-on-write slot is reached through other PTEs), its
 * protection is RW, it has no trap, and it is not lazily freed; and only
 * while the space has never been mapped privately or without write
 * permission: the kernel's walk stops at the first such mapping in
 * i_mmap, so its harvest would miss the shared mappings after it. That
 * choice is sticky (space->dbit_off, set by mmap() before the mapping is
 * linked): a harvest that finds it set, before or after its walk, unmaps
 * its dbit armed frames instead, which moves every dirty bit to PG_dirty,
 * and they go back to re-arming by unmapping. A slot becomes dbit armed
 * through an ordinary arm (an unmap): from then on the next write faults
 * once, and later re-arms cost no unmap and no fault. Any other slot is
 * re-armed by unmapping, as above. The one-slot rule is kept by the
 * edits: aliasing a dbit armed frame unmaps its source slot too, and
 * every frame an edit locked ends its arming (upage_track_disarm(),
 * which records a write still in PG_dirty; review 10 found an alias
 * whose source kept a writable, clean PTE that no harvest looked at).
 * Eviction ends it as well: a paged-in page has no PTE.
 *
 * The harvest needs no fence with .page_mkwrite: a write it records or
 * finds in a dirty bit after the report is counted by the next report,
 * and the pages this report lists are read by the caller after the call
 * returns, writes made while it ran included.
 *
 * Everything here runs under space->lock, which keeps frames and their
 * pages in place (evictions, edits and page-ins take it too).
 */
#include <linux/bitmap.h>
#include <linux/mm.h>
#include <linux/pagemap.h>

#include "upage_private.h"

/*
 * Slots per walk of a harvest (up to 129 page tables per mapping). Each
 * walk that cleans a dirty bit ends with a TLB flush of every mapping it
 * cleaned, an IPI to each CPU running the process: a sparse space whose
 * writes are scattered takes one per walk, so the walks are wide and
 * skip the stretches without a dbit armed frame.
 */
#define UPAGE_HARVEST_CHUNK 65536
/* Slots per table_lock hold of a walk of the table (harvest, report, track). */
#define UPAGE_HARVEST_HOLD 4096

bool upage_slot_dirty(struct upage_slot *slot)
{
	if (!(slot->flags & UPAGE_SLOT_F_TRACKED))
		return false;
	return (slot->flags & UPAGE_SLOT_F_DIRTY) ||
	       (slot->frame && slot->frame->written > slot->armed);
}

/*
 * Wait for faults holding the page lock of a frame of slots
 * first..first+n-1 to finish installing their PTE.
 */
void upage_space_fence(struct upage_space *space, u64 first, u64 n)
{
	u64 i;

	lockdep_assert_held(&space->lock);
	for (i = first; i < first + n; i++) {
		struct upage_frame *frame = space->slots[i].frame;

		if (frame && frame->page) {
			lock_page(frame->page);
			unlock_page(frame->page);
		}
		if (!((i - first + 1) % 1024))
			cond_resched();
	}
}

/*
 * Unmap the slots outside first..first+n-1 that alias a resident frame
 * inside it: a write through them must reach .page_mkwrite too.
 */
static void upage_track_unmap_aliases(struct upage_space *space, u64 first,
				      u64 n)
{
	pgoff_t i, start = 0, run = 0;
	bool any = false;

	for (i = first; i < first + n; i++) {
		struct upage_frame *frame = space->slots[i].frame;

		if (frame && frame->page && frame->nr_slots > 1) {
			frame->marked = true;
			any = true;
		}
	}
	if (!any)
		return;
	for (i = 0; i <= space->nr_pages; i++) {
		struct upage_frame *frame = i < space->nr_pages ?
					    space->slots[i].frame : NULL;
		bool alias = frame && frame->marked &&
			     (i < first || i >= first + n);

		if (alias) {
			if (!run)
				start = i;
			run++;
			continue;
		}
		if (run)
			upage_space_unmap(space, start, run);
		run = 0;
		if (!(i % 4096))
			cond_resched();
	}
	for (i = first; i < first + n; i++) {
		struct upage_frame *frame = space->slots[i].frame;

		if (frame)
			frame->marked = false;
	}
}

/*
 * A mapping of the space is being made with @flags (mmap(), before the
 * VMA is linked): re-arming by dirty bits ends for good if the kernel's
 * walk would stop at it.
 */
void upage_track_mapped(struct upage_space *space, vm_flags_t flags)
{
	if (!UPAGE_HAVE_DIRTY_HELPERS ||
	    (flags & (VM_SHARED | VM_MAYWRITE)) != (VM_SHARED | VM_MAYWRITE))
		WRITE_ONCE(space->dbit_off, true);
}

/* Whether @frame's contents are newer than its store page's. */
bool upage_frame_dirty(struct upage_frame *frame)
{
	return frame->dirty || PageDirty(frame->page);
}

/*
 * The store is getting @frame's contents, or they are dropped: clear its
 * dirty state. A dbit armed frame's PG_dirty is a write since its arm,
 * so it is recorded first. Under space->lock, the page locked.
 */
void upage_frame_clear_dirty(struct upage_space *space,
			     struct upage_frame *frame)
{
	lockdep_assert_held(&space->lock);
	if (TestClearPageDirty(frame->page) && frame->dbit) {
		spin_lock(&space->table_lock);
		frame->written = space->track_gen;
		spin_unlock(&space->table_lock);
	}
	frame->dirty = false;
}

/*
 * @frame, its page locked and none of its PTEs left, is no longer dbit
 * armed: a write of it still in PG_dirty is recorded first.
 */
void upage_track_disarm(struct upage_space *space, struct upage_frame *frame)
{
	lockdep_assert_held(&space->lock);
	if (frame->dbit && frame->page && TestClearPageDirty(frame->page)) {
		frame->dirty = true;
		spin_lock(&space->table_lock);
		frame->written = space->track_gen;
		spin_unlock(&space->table_lock);
	}
	frame->dbit = false;
}

/*
 * Whether @slot may be re-armed by dirty bits, @off being space->dbit_off
 * as the arm read it once.
 */
static bool upage_track_dbit_ok(struct upage_slot *slot, bool off)
{
	struct upage_frame *frame = slot->frame;

	return UPAGE_HAVE_DIRTY_HELPERS && !off && frame && frame->page &&
	       frame->nr_slots == 1 && !frame->lazy && !frame->reclaimed &&
	       !frame->wb_page && slot->prot == UPAGE_PROT_RW &&
	       !(slot->flags & (UPAGE_SLOT_F_COW | UPAGE_SLOT_F_TRAPS));
}

static bool upage_frame_dbit(struct upage_frame *frame)
{
	return frame && frame->page && frame->dbit;
}

/*
 * Harvest slots start..start+nr-1 (nr <= UPAGE_HARVEST_CHUNK) into
 * @bitmap's first nr bits.
 */
static void upage_track_harvest_chunk(struct upage_space *space,
				      pgoff_t start, pgoff_t nr,
				      unsigned long *bitmap)
{
	pgoff_t from = 0, to = 0, i;
	bool walked = false, unmapped = false;

	if (!READ_ONCE(space->dbit_off)) {
		bitmap_zero(bitmap, nr);
		clean_record_shared_mapping_range(space->inode->i_mapping, start,
						  nr, start, bitmap, &from, &to);
		walked = true;
	}
	/*
	 * A mapping the walk may have stopped at (its mmap() set the flag
	 * before linking it, and the walk took i_mmap_rwsem after that):
	 * zap, so that PG_dirty has every dirty bit.
	 */
	if (READ_ONCE(space->dbit_off)) {
		upage_space_unmap(space, start, nr);
		unmapped = true;
	}
	spin_lock(&space->table_lock);
	for (i = start; i < start + nr; i++) {
		struct upage_slot *slot;
		struct upage_frame *frame;
		bool written;

		/* Each slot stands alone; space->lock keeps the frames. */
		if (i > start && !((i - start) % UPAGE_HARVEST_HOLD)) {
			spin_unlock(&space->table_lock);
			cond_resched();
			spin_lock(&space->table_lock);
		}
		slot = &space->slots[i];
		frame = slot->frame;
		if (!frame || !frame->page)
			continue;
		written = walked && test_bit(i - start, bitmap);
		/* Other frames' dirty bits were cleaned too: keep them. */
		if (written)
			frame->dirty = true;
		if (!frame->dbit)
			continue;
		WARN_ON_ONCE(frame->nr_slots > 1);
		if (TestClearPageDirty(frame->page)) {
			frame->dirty = true;
			written = true;
		}
		if (written) {
			if ((slot->flags & UPAGE_SLOT_F_TRACKED) &&
			    frame->written <= slot->armed)
				atomic64_inc(&space->stats.tracked_writes);
			frame->written = space->track_gen;
		}
		if (unmapped)
			frame->dbit = false;
	}
	spin_unlock(&space->table_lock);
}

/*
 * Move the writes to the dbit armed frames of slots first..first+n-1
 * that are still in dirty bits and PG_dirty into frame->written, and
 * clean those dirty bits; in walks of at most UPAGE_HARVEST_CHUNK slots
 * that each start at a dbit armed frame, between which it yields (each
 * walk holds i_mmap_rwsem). -ENOMEM changes nothing.
 */
int upage_track_harvest(struct upage_space *space, u64 first, u64 n)
{
	pgoff_t lo = ULONG_MAX, hi = 0, start, i;
	unsigned long *bitmap;

	lockdep_assert_held(&space->lock);
	for (i = first; i < first + n; i++) {
		if (upage_frame_dbit(space->slots[i].frame)) {
			lo = min(lo, i);
			hi = i;
		}
		if (!((i - first + 1) % 4096))
			cond_resched();
	}
	if (lo > hi)
		return 0;
	bitmap = kvcalloc(BITS_TO_LONGS(UPAGE_HARVEST_CHUNK), sizeof(long),
			  GFP_KERNEL);
	if (!bitmap)
		return -ENOMEM;
	for (start = lo; start <= hi; start += UPAGE_HARVEST_CHUNK) {
		/* From the next dbit armed frame, at most hi. */
		while (start < hi &&
		       !upage_frame_dbit(space->slots[start].frame)) {
			start++;
			if (!(start % UPAGE_HARVEST_HOLD))
				cond_resched();
		}
		upage_track_harvest_chunk(space, start,
					  min_t(pgoff_t, UPAGE_HARVEST_CHUNK,
						hi - start + 1), bitmap);
		cond_resched();
	}
	kvfree(bitmap);
	return 0;
}

/*
 * Whether a slot that this collection reported (re-armed: slot->armed is
 * the generation just closed) or that shares its frame is unmapped by the
 * re-arm: all but the dbit armed ones that stay so.
 */
static bool upage_track_rearm_unmaps(struct upage_space *space,
				     struct upage_slot *slot, bool off)
{
	struct upage_frame *frame = slot->frame;

	if (frame && frame->nr_slots > 1)
		return true;
	if (!(slot->flags & UPAGE_SLOT_F_TRACKED) ||
	    slot->armed != space->track_gen - 1)
		return false;
	return !upage_frame_dbit(frame) || !upage_track_dbit_ok(slot, off);
}

/*
 * After the unmap of an arm (@all: of every slot of first..first+n-1;
 * else of those upage_track_rearm_unmaps() picks): a re-armed frame that
 * may be dbit armed has no PTE left, and its PG_dirty (the writes this
 * report covers) goes to frame->dirty; the others are armed by unmapping.
 */
static void upage_track_set_modes(struct upage_space *space, u64 first,
				  u64 n, bool all, bool off)
{
	u64 i, gen = space->track_gen - 1;

	for (i = first; i < first + n; i++) {
		struct upage_slot *slot = &space->slots[i];
		struct upage_frame *frame = slot->frame;

		if (!((i - first + 1) % 4096))
			cond_resched();
		if (!frame || !frame->page ||
		    !(slot->flags & UPAGE_SLOT_F_TRACKED) || slot->armed != gen)
			continue;
		if (!all && !upage_track_rearm_unmaps(space, slot, off))
			continue;
		if (TestClearPageDirty(frame->page))
			frame->dirty = true;
		frame->dbit = upage_track_dbit_ok(slot, off);
	}
}

/* Arm slots first..first+n-1, whose armed generation was just set. */
static void upage_track_arm(struct upage_space *space, u64 first, u64 n)
{
	bool off = READ_ONCE(space->dbit_off);

	upage_space_fence(space, first, n);
	upage_space_unmap(space, first, n);
	upage_track_unmap_aliases(space, first, n);
	upage_track_set_modes(space, first, n, true, off);
}

/*
 * Re-arm the slots of first..first+n-1 that the collection reported:
 * unmap those that need it (after the page-lock fence), in spans that
 * leave out only the dbit armed frames, as unmapping the others costs at
 * most a read fault on a page mapped read-only.
 */
static void upage_track_rearm(struct upage_space *space, u64 first, u64 n)
{
	bool off = READ_ONCE(space->dbit_off);
	u64 i, start = 0, last = 0;
	bool run = false;

	for (i = first; i <= first + n; i++) {
		struct upage_slot *slot = i < first + n ? &space->slots[i] : NULL;

		/* Holes too: a sparse space is mostly them (helper 28). */
		if (!((i - first + 1) % 4096))
			cond_resched();
		if (slot && upage_track_rearm_unmaps(space, slot, off)) {
			if (!run)
				start = i;
			run = true;
			last = i;
			continue;
		}
		if (slot && !upage_frame_dbit(slot->frame))
			continue;
		if (run) {
			upage_space_fence(space, start, last - start + 1);
			upage_space_unmap(space, start, last - start + 1);
		}
		run = false;
	}
	upage_track_unmap_aliases(space, first, n);
	upage_track_set_modes(space, first, n, false, off);
}

/* Take space->lock if slots first..first+n-1 exist (n > 0). */
static int upage_track_lock(struct upage_space *space, u64 first, u64 n)
{
	mutex_lock(&space->lock);
	if (n && upage_slots_exist(space, first, n))
		return 0;
	mutex_unlock(&space->lock);
	return -EINVAL;
}

int upage_track(struct upage_space *space, u32 op, u64 first, u64 n)
{
	u64 i, gen;

	if (op != UPAGE_TRACK_START && op != UPAGE_TRACK_STOP)
		return -EOPNOTSUPP;
	if (upage_track_lock(space, first, n))
		return -EINVAL;
	/*
	 * table_lock goes every UPAGE_HARVEST_HOLD slots, so that a fault
	 * beside the call does not spin through a whole space; each slot
	 * stands alone. The generation moves on before the first slot is
	 * armed with the old one: a write recorded on a slot already
	 * started is newer than its arm, and reported.
	 */
	spin_lock(&space->table_lock);
	gen = space->track_gen;
	if (op == UPAGE_TRACK_START)
		space->track_gen++;
	for (i = first; i < first + n; i++) {
		struct upage_slot *slot = &space->slots[i];

		if (i > first && !((i - first) % UPAGE_HARVEST_HOLD)) {
			spin_unlock(&space->table_lock);
			cond_resched();
			spin_lock(&space->table_lock);
		}
		slot->flags &= ~(UPAGE_SLOT_F_TRACKED | UPAGE_SLOT_F_DIRTY);
		if (slot->frame && op == UPAGE_TRACK_STOP)
			slot->frame->dbit = false;
		if (op == UPAGE_TRACK_START) {
			slot->flags |= UPAGE_SLOT_F_TRACKED;
			slot->armed = gen;
		}
	}
	spin_unlock(&space->table_lock);
	if (op == UPAGE_TRACK_START)
		upage_track_arm(space, first, n);
	mutex_unlock(&space->lock);
	return 0;
}

/*
 * Report the dirty slots of first..first+n-1 in @bitmap (n bits) and
 * their number in @nr_dirty; with @clear, re-arm them.
 */
int upage_dirty(struct upage_space *space, u64 first, u64 n, bool clear,
		unsigned long *bitmap, u64 *nr_dirty)
{
	u64 i, gen = 0, lo = U64_MAX, hi = 0;
	bool moved = false;
	int ret;

	*nr_dirty = 0;
	if (upage_track_lock(space, first, n))
		return -EINVAL;
	ret = upage_track_harvest(space, first, n);
	if (ret) {
		mutex_unlock(&space->lock);
		return ret;
	}
	/*
	 * The walk lets table_lock go every 4,096 slots, so that faults
	 * recording writes meanwhile do not spin through a whole space.
	 * The generation moves on before the first slot is cleared (armed
	 * with the old one): a write recorded after that is newer than
	 * every clear, whichever side of the walk it falls on, so no write
	 * is lost; one made during the call may be reported by this report
	 * and by the next.
	 */
	spin_lock(&space->table_lock);
	for (i = first; i < first + n; i++) {
		struct upage_slot *slot = &space->slots[i];

		if (!((i - first + 1) % UPAGE_HARVEST_HOLD)) {
			spin_unlock(&space->table_lock);
			cond_resched();
			spin_lock(&space->table_lock);
		}
		if (!upage_slot_dirty(slot))
			continue;
		__set_bit(i - first, bitmap);
		(*nr_dirty)++;
		lo = min(lo, i);
		hi = i;
		if (!clear)
			continue;
		if (!moved) {
			gen = space->track_gen++;
			moved = true;
		}
		slot->flags &= ~UPAGE_SLOT_F_DIRTY;
		slot->armed = gen;
	}
	spin_unlock(&space->table_lock);
	/*
	 * Clean slots are still mapped read-only at most, or dbit armed and
	 * harvested (see above).
	 */
	if (clear && *nr_dirty)
		upage_track_rearm(space, lo, hi - lo + 1);
	mutex_unlock(&space->lock);
	return 0;
}

/*
 * The report of a clearing UPAGE_DIRTY could not be copied out: mark the
 * slots it cleared dirty again, so that no write is lost.
 */
void upage_track_undo_clear(struct upage_space *space, u64 first, u64 n,
			    const unsigned long *bitmap)
{
	u64 i;

	mutex_lock(&space->lock);
	spin_lock(&space->table_lock);
	for (i = 0; i < n && first + i < space->nr_pages; i++) {
		struct upage_slot *slot = &space->slots[first + i];

		if (i && !(i % UPAGE_HARVEST_HOLD)) {
			spin_unlock(&space->table_lock);
			cond_resched();
			spin_lock(&space->table_lock);
		}
		if (test_bit(i, bitmap) && (slot->flags & UPAGE_SLOT_F_TRACKED))
			slot->flags |= UPAGE_SLOT_F_DIRTY;
	}
	spin_unlock(&space->table_lock);
	mutex_unlock(&space->lock);
}
