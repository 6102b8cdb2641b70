// SPDX-License-Identifier: GPL-2.0
/*
 * Populate: map slots into the caller's own mappings of the space before
 * an edit (UPAGE_EDIT_POPULATE), a prefetch (UPAGE_RES_POPULATE) or a
 * resolve (UPAGE_RESOLVE_POPULATE) returns, so that the program's next
 * read of them takes no fault; a resolve also maps them into the
 * mappings of the other processes whose threads it answers (trap.c).
 *
 * It runs after the call's work is done, with no space lock held, and
 * faults each page in through the mm's own fault path, much as
 * madvise(MADV_POPULATE_READ) does: handle_mm_fault() of a read, under
 * the caller's mmap read lock, with FAULT_FLAG_RETRY_NOWAIT, so the fault
 * never drops the lock and never sleeps: where an ordinary fault would
 * wait (a trap, a claim, a page-in of a frame evicted meanwhile, whose
 * store read could wait for a lock a waiting thread holds, a hole fill, a
 * locked page) it returns VM_FAULT_RETRY, and the slot is left to the
 * program's own fault (review 11). The VMAs come from the space's i_mmap
 * tree, which still holds a VMA that munmap() has taken out of the mm
 * and is tearing down under the read lock: only those the mm's own tree
 * still has are used (review 6: a PTE outlived its VMA). So the PTE is
 * made by .fault, under the protocol every other PTE of the space obeys
 * (fault.c: page lock, re-check, narrowing holds the page lock before it
 * unmaps), read-only in a shared writable mapping (its first write still
 * reaches .page_mkwrite: protection, tracking, copy-on-write), the
 * frame's own page in a private one.
 *
 * The kernel's cheaper way, vm_insert_page(), needs VM_MIXEDMAP on the
 * VMA, and 6.12 then refuses to grow the mapping with mremap (ENOMEM even
 * with MREMAP_MAYMOVE when it could grow in place; the model fuzzer found
 * it), besides ending VMA merging and mlock: not worth a page table walk
 * (docs/design.md, "Populate").
 *
 * Slots a read would not map at once are left alone: holes (a read would
 * allocate; the program may never read them), evicted frames (a read
 * would wait for the store), claimed frames, UPAGE_PROT_NONE, traps, and
 * slots on which the caller holds a trap ticket (the fault would take
 * the answer meant for its own access, trap.c). A slot that changes
 * between that check and its fault is faulted as the table says then
 * (rarely a hole fill or a page-in, as any read would). Populating is best
 * effort: it never fails the call it follows, stops at a fatal signal,
 * lets a waiting mmap or munmap of another thread in now and then, and
 * reaches at most UPAGE_POPULATE_MAX_VMAS of the caller's mappings.
 */
#include <linux/mm.h>
#include <linux/mmap_lock.h>
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

/*
 * Find the caller's readable VMAs of the space that show some of slots
 * @lo..@hi; the caller holds @mm's mmap lock, which keeps them.
 */
static void upage_populate_find(struct upage_populate *pop,
				struct mm_struct *mm, pgoff_t lo, pgoff_t hi)
{
	struct address_space *mapping = pop->space->inode->i_mapping;
	unsigned int walked = 0;
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
		/*
		 * munmap() unlinks a VMA from i_mmap only after taking it out
		 * of the mm's tree and downgrading the mmap lock to read: one
		 * that the tree no longer has is being torn down.
		 */
		if (vma->vm_mm == mm && vma->vm_pgoff + vma_pages(vma) > lo &&
		    (vma->vm_flags & VM_READ) &&
		    vma_lookup(mm, vma->vm_start) == vma)
			pop->vmas[pop->nr_vmas++] = vma;
	}
	i_mmap_unlock_read(mapping);
}

/*
 * Whether a read of slot @idx would map its frame now, without waiting
 * or allocating: a resident frame no claim holds, readable, not trapped.
 */
static bool upage_populate_slot_ok(struct upage_space *space, pgoff_t idx)
{
	struct upage_slot *slot;
	bool ok = false;

	spin_lock(&space->table_lock);
	if (idx < space->nr_pages) {
		slot = &space->slots[idx];
		ok = slot->frame && slot->frame->page &&
		     !slot->frame->claimed &&
		     slot->prot != UPAGE_PROT_NONE &&
		     !(slot->flags & UPAGE_SLOT_F_TRAPS);
	}
	spin_unlock(&space->table_lock);
	return ok;
}

static bool upage_populate_covers(struct upage_populate *pop, pgoff_t idx)
{
	unsigned int i;

	for (i = 0; i < pop->nr_vmas; i++)
		if (idx >= pop->vmas[i]->vm_pgoff &&
		    idx - pop->vmas[i]->vm_pgoff < vma_pages(pop->vmas[i]))
			return true;
	return false;
}

static void upage_populate_slot(struct upage_populate *pop, pgoff_t idx)
{
	unsigned int i;

	if (!upage_populate_covers(pop, idx) ||
	    !upage_populate_slot_ok(pop->space, idx) ||
	    upage_trap_has_ticket(pop->space, idx))
		return;
	for (i = 0; i < pop->nr_vmas; i++) {
		struct vm_area_struct *vma = pop->vmas[i];
		vm_fault_t ret;

		if (idx < vma->vm_pgoff || idx - vma->vm_pgoff >= vma_pages(vma))
			continue;
		/* A read that never waits; the mmap lock stays held. */
		ret = handle_mm_fault(vma, vma->vm_start +
				      ((idx - vma->vm_pgoff) << PAGE_SHIFT),
				      FAULT_FLAG_ALLOW_RETRY |
				      FAULT_FLAG_RETRY_NOWAIT, NULL);
		if (!(ret & (VM_FAULT_ERROR | VM_FAULT_RETRY)))
			pop->mapped++;
	}
}

/*
 * Every UPAGE_POPULATE_RESCHED slots: yield, and let a writer of the mmap
 * lock (an mmap or munmap of another thread) in, finding the VMAs again
 * after it; in another process's mm (@remote), stop instead. False: stop
 * (a fatal signal, or @remote; the lock is then not held).
 */
static bool upage_populate_step(struct upage_populate *pop,
				struct mm_struct *mm, bool remote, pgoff_t lo,
				pgoff_t hi, u64 done)
{
	if (done % UPAGE_POPULATE_RESCHED)
		return true;
	if (mmap_lock_is_contended(mm)) {
		mmap_read_unlock(mm);
		if (remote)
			return false;
		cond_resched();
		if (mmap_read_lock_killable(mm))
			return false;
		upage_populate_find(pop, mm, lo, hi);
	} else {
		cond_resched();
	}
	if (!fatal_signal_pending(current))
		return true;
	mmap_read_unlock(mm);
	return false;
}

/*
 * Populate slots @first..@first+@n-1, or, with @idx, slots @idx[0..@n-1]
 * (sorted), in @mm's mappings; returns the number of pages mapped. In
 * another process's mm (@remote, which the caller holds a reference to)
 * it only tries the mmap lock: a thread of that process may hold it
 * while it waits for something of ours.
 */
static unsigned long upage_populate(struct upage_space *space,
				    struct mm_struct *mm, bool remote,
				    const pgoff_t *idx, u64 first, u64 n)
{
	struct upage_populate pop = { .space = space };
	pgoff_t lo, hi;
	u64 i;

	if (!n || !mm)
		return 0;
	lo = idx ? idx[0] : first;
	hi = idx ? idx[n - 1] : first + n - 1;
	if (remote ? !mmap_read_trylock(mm) : mmap_read_lock_killable(mm))
		return 0;
	upage_populate_find(&pop, mm, lo, hi);
	for (i = 0; i < n && pop.nr_vmas; i++) {
		if (!upage_populate_step(&pop, mm, remote, lo, hi, i + 1))
			goto out;
		upage_populate_slot(&pop, idx ? idx[i] : first + i);
	}
	mmap_read_unlock(mm);
out:
	atomic64_add(pop.mapped, &space->stats.populated);
	return pop.mapped;
}

unsigned long upage_populate_slots(struct upage_space *space,
				   const pgoff_t *idx, size_t n)
{
	return upage_populate(space, current->mm, false, idx, 0, n);
}

unsigned long upage_populate_range(struct upage_space *space, u64 first,
				   u64 n)
{
	return upage_populate(space, current->mm, false, NULL, first, n);
}

/* The same in another process's mappings (a trap resolve's waiters). */
unsigned long upage_populate_remote(struct upage_space *space,
				    struct mm_struct *mm, u64 first, u64 n)
{
	return upage_populate(space, mm, true, NULL, first, n);
}
