// SPDX-License-Identifier: GPL-2.0
/*
 * Populate: map slots into the caller's own mappings of the space before
 * an edit (UPAGE_EDIT_POPULATE) or a prefetch (UPAGE_RES_POPULATE)
 * returns, so that the program's next read of them takes no fault.
 *
 * It runs after the edit or prefetch is complete, with no space lock held,
 * and installs each page the way .fault does (fault.c): it locks the
 * page, checks under table_lock that the slot still holds it and that a
 * read fault would map it now, and installs the PTE before it unlocks.
 * Whatever narrows a slot (an edit, a trap, an arm, an eviction, the
 * shrinker) holds that page lock, or waits for it, before it unmaps, so a
 * PTE installed here is removed like one a fault installed. The lock is
 * only tried, and a slot a read fault would not map is left alone (a
 * hole, an evicted or claimed frame, UPAGE_PROT_NONE, any trap): that
 * slot faults as before. Populating is best effort; it never fails the
 * call it follows.
 *
 * vm_insert_page() makes the same PTE, rmap and counts as a fault of a
 * file page, read-only in a shared writable mapping (which has
 * .page_mkwrite, so its vm_page_prot asks for write notification): the
 * first write still goes through .page_mkwrite, which enforces
 * protection, records tracked writes and breaks copy-on-write aliases.
 * It needs VM_MIXEDMAP on the VMA, which only the mmap write lock may set.
 * A mapping gets it the first time a populating call maps into it, not at
 * mmap(), because it changes what the core does with the VMA (docs/
 * design.md, "Populate"): such a VMA never merges with its neighbours
 * (6.12 then cannot grow it in place: mremap needs MREMAP_MAYMOVE),
 * mlock() leaves it unlocked, fork copies its PTEs, and NUMA balancing
 * skips it. Locked VMAs (mlock, MAP_LOCKED) and VMAs without read access
 * are not populated.
 */
#include <linux/mm.h>
#include <linux/mmap_lock.h>
#include <linux/pagemap.h>
#include <linux/sched/signal.h>

#include "upage_private.h"

/* The caller's VMAs of the space that one populating call maps into. */
#define UPAGE_POPULATE_MAX_VMAS 16
/* VMAs of the space (every process's) looked at per call, at most. */
#define UPAGE_POPULATE_MAX_WALK 4096
/* Slots between two looks at the scheduler and at fatal signals. */
#define UPAGE_POPULATE_RESCHED 256

struct upage_populate {
	struct upage_space *space;
	struct vm_area_struct *vmas[UPAGE_POPULATE_MAX_VMAS];
	unsigned int nr_vmas;
	unsigned long mapped;
};

static bool upage_populate_vma_ok(struct vm_area_struct *vma)
{
	return (vma->vm_flags & VM_READ) && !(vma->vm_flags & (VM_LOCKED | VM_LOCKONFAULT));
}

/*
 * Find the caller's VMAs of the space that show some of slots @lo..@hi,
 * under its mmap lock; returns whether one of them lacks VM_MIXEDMAP.
 */
static bool upage_populate_find(struct upage_populate *pop,
				struct mm_struct *mm, pgoff_t lo, pgoff_t hi)
{
	struct address_space *mapping = pop->space->inode->i_mapping;
	unsigned int walked = 0;
	bool want_mixed = false;
	struct rb_node *node;

	pop->nr_vmas = 0;
	i_mmap_lock_read(mapping);
	/* The tree is ordered by vm_pgoff. */
	for (node = rb_first_cached(&mapping->i_mmap);
	     node && pop->nr_vmas < UPAGE_POPULATE_MAX_VMAS &&
	     walked++ < UPAGE_POPULATE_MAX_WALK;
	     node = rb_next(node)) {
		struct vm_area_struct *vma =
			rb_entry(node, struct vm_area_struct, shared.rb);

		if (vma->vm_pgoff > hi)
			break;
		if (vma->vm_mm != mm || vma->vm_pgoff + vma_pages(vma) <= lo ||
		    !upage_populate_vma_ok(vma))
			continue;
		if (!(vma->vm_flags & VM_MIXEDMAP))
			want_mixed = true;
		pop->vmas[pop->nr_vmas++] = vma;
	}
	i_mmap_unlock_read(mapping);
	return want_mixed;
}

/* Whether a read fault would map the slot's page now (fault.c). */
static bool upage_populate_slot_ok(const struct upage_slot_state *state)
{
	return state->prot != UPAGE_PROT_NONE && !state->trap;
}

static void upage_populate_slot(struct upage_populate *pop, pgoff_t idx)
{
	struct upage_slot_state state;
	unsigned int i;

	/* Holes, evicted and claimed frames come back without a page. */
	upage_space_lookup(pop->space, idx, &state);
	if (!state.page)
		return;
	/* Locked under table_lock: the state is the slot's while we hold it. */
	if (state.locked && upage_populate_slot_ok(&state)) {
		for (i = 0; i < pop->nr_vmas; i++) {
			struct vm_area_struct *vma = pop->vmas[i];
			unsigned long addr;

			if (idx < vma->vm_pgoff ||
			    idx - vma->vm_pgoff >= vma_pages(vma))
				continue;
			addr = vma->vm_start +
			       ((idx - vma->vm_pgoff) << PAGE_SHIFT);
			/* -EBUSY: already mapped (or a private copy there). */
			if (!vm_insert_page(vma, addr, state.page))
				pop->mapped++;
		}
	}
	if (state.locked)
		unlock_page(state.page);
	put_page(state.page);
}

/*
 * Take the caller's mmap lock for reading and find its VMAs of the space
 * over @lo..@hi, giving VM_MIXEDMAP to those that lack it under the write
 * lock (not under i_mmap_rwsem: on 6.12 the flag waits for the VMA's
 * faults, and a fault may wait for i_mmap_rwsem), then downgraded.
 * False: nothing to map, no lock held.
 */
static bool upage_populate_begin(struct upage_populate *pop, pgoff_t lo,
				 pgoff_t hi)
{
	struct mm_struct *mm = current->mm;
	unsigned int i;

	if (!mm || mmap_read_lock_killable(mm))
		return false;
	if (upage_populate_find(pop, mm, lo, hi)) {
		mmap_read_unlock(mm);
		if (mmap_write_lock_killable(mm))
			return false;
		upage_populate_find(pop, mm, lo, hi);
		for (i = 0; i < pop->nr_vmas; i++)
			if (!(pop->vmas[i]->vm_flags & VM_MIXEDMAP))
				vm_flags_set(pop->vmas[i], VM_MIXEDMAP);
		mmap_write_downgrade(mm);
	}
	if (pop->nr_vmas)
		return true;
	mmap_read_unlock(mm);
	return false;
}

static void upage_populate_end(struct upage_populate *pop)
{
	mmap_read_unlock(current->mm);
	atomic64_add(pop->mapped, &pop->space->stats.populated);
}

/* Whether to stop a long populate (after a yield). */
static bool upage_populate_step(u64 done)
{
	if (done % UPAGE_POPULATE_RESCHED)
		return false;
	cond_resched();
	return fatal_signal_pending(current);
}

/* Populate slots @idx[0..@n-1], sorted; the number of PTEs installed. */
unsigned long upage_populate_slots(struct upage_space *space,
				   const pgoff_t *idx, size_t n)
{
	struct upage_populate pop = { .space = space };
	size_t i;

	if (!n || !upage_populate_begin(&pop, idx[0], idx[n - 1]))
		return 0;
	for (i = 0; i < n; i++) {
		if (upage_populate_step(i + 1))
			break;
		upage_populate_slot(&pop, idx[i]);
	}
	upage_populate_end(&pop);
	return pop.mapped;
}

/* Populate slots @first..@first+@n-1 (the range exists, n > 0). */
unsigned long upage_populate_range(struct upage_space *space, u64 first,
				   u64 n)
{
	struct upage_populate pop = { .space = space };
	u64 i;

	if (!n || !upage_populate_begin(&pop, first, first + n - 1))
		return 0;
	for (i = 0; i < n; i++) {
		if (upage_populate_step(i + 1))
			break;
		upage_populate_slot(&pop, first + i);
	}
	upage_populate_end(&pop);
	return pop.mapped;
}
