// SPDX-License-Identifier: GPL-2.0
/*
 * Write tracking: UPAGE_TRACK and UPAGE_DIRTY.
 *
 * Generations. space->track_gen counts arming passes. A write recorded by
 * .page_mkwrite (upage_frame_record_write() in space.c, under the page
 * lock and table_lock) sets frame->written to the current generation. Arming a
 * slot sets slot->armed to the current generation, then the generation
 * moves on, so a slot is dirty when its frame was written after it was
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
 * reported by this collection) has installed its PTE by then, and the
 * unmap removes it; one that reads the new generation records a write
 * that the next collection reports.
 *
 * Everything here runs under space->lock, which keeps frames and their
 * pages in place (evictions, edits and page-ins take it too).
 */
#include <linux/bitmap.h>
#include <linux/mm.h>
#include <linux/pagemap.h>

#include "upage_private.h"

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

/* Arm slots first..first+n-1, whose armed generation was just set. */
static void upage_track_arm(struct upage_space *space, u64 first, u64 n)
{
	upage_space_fence(space, first, n);
	upage_space_unmap(space, first, n);
	upage_track_unmap_aliases(space, first, n);
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
	u64 i;

	if (op != UPAGE_TRACK_START && op != UPAGE_TRACK_STOP)
		return -EOPNOTSUPP;
	if (upage_track_lock(space, first, n))
		return -EINVAL;
	spin_lock(&space->table_lock);
	for (i = first; i < first + n; i++) {
		struct upage_slot *slot = &space->slots[i];

		slot->flags &= ~(UPAGE_SLOT_F_TRACKED | UPAGE_SLOT_F_DIRTY);
		if (op == UPAGE_TRACK_START) {
			slot->flags |= UPAGE_SLOT_F_TRACKED;
			slot->armed = space->track_gen;
		}
	}
	if (op == UPAGE_TRACK_START)
		space->track_gen++;
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
	u64 i, lo = U64_MAX, hi = 0;

	*nr_dirty = 0;
	if (upage_track_lock(space, first, n))
		return -EINVAL;
	spin_lock(&space->table_lock);
	for (i = first; i < first + n; i++) {
		struct upage_slot *slot = &space->slots[i];

		if (!upage_slot_dirty(slot))
			continue;
		__set_bit(i - first, bitmap);
		(*nr_dirty)++;
		lo = min(lo, i);
		hi = i;
		if (clear) {
			slot->flags &= ~UPAGE_SLOT_F_DIRTY;
			slot->armed = space->track_gen;
		}
	}
	if (clear && *nr_dirty)
		space->track_gen++;
	spin_unlock(&space->table_lock);
	/* Clean slots are still mapped read-only at most (see above). */
	if (clear && *nr_dirty)
		upage_track_arm(space, lo, hi - lo + 1);
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

		if (test_bit(i, bitmap) && (slot->flags & UPAGE_SLOT_F_TRACKED))
			slot->flags |= UPAGE_SLOT_F_DIRTY;
	}
	spin_unlock(&space->table_lock);
	mutex_unlock(&space->lock);
}
