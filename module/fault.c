// SPDX-License-Identifier: GPL-2.0
/*
 * mmap and the fault path.
 *
 * The fault/edit race. An edit changes the slot table, then unmaps the
 * slots it changed from every process. A fault that looked a slot up
 * before the edit must not install the old frame after that unmap. The
 * page lock closes the window, as it does for the page cache:
 *
 *  - .fault looks the slot up, takes a page reference, locks the page and
 *    re-checks that the slot still holds it (else it unlocks, drops it and
 *    looks again). It returns VM_FAULT_LOCKED: the core installs the PTE
 *    before it unlocks the page.
 *  - An edit claims every frame it takes away from a slot (or whose slot's
 *    protection it narrows), which locks its page, changes the table,
 *    unmaps, and only then unlocks.
 *
 * While a frame is claimed the fault path waits without holding a page
 * reference (space.c, "Claims"), so that the claimer can tell a pin from
 * a fault in flight.
 *
 * So either the fault re-checks after the table change and retries, or it
 * installed its PTE before the edit's unmap, which removes it.
 *
 * Protection and copy-on-write. Because the VMAs have .page_mkwrite, the
 * core maps pages of shared writable mappings read-only first, so the
 * first write to each page of a MAP_SHARED mapping reaches
 * upage_vm_page_mkwrite(), which enforces UPAGE_PROT_RW and gives a
 * copy-on-write alias its own copy. Narrowing a slot's protection unmaps
 * it, so the next access faults again. A private mapping never writes the
 * frame (the core copies it first, without asking the driver), so there
 * only UPAGE_PROT_NONE is enforced, on the pages that still show the frame.
 */
#include <linux/mm.h>
#include <linux/pagemap.h>

#include "upage_private.h"
#include "upage_trace.h"

static bool upage_vma_shared(struct vm_area_struct *vma)
{
	return vma->vm_flags & VM_SHARED;
}

/* Whether @state lets this fault through (protection only). */
static bool upage_access_ok(struct vm_fault *vmf, struct upage_slot_state *state)
{
	if (state->prot == UPAGE_PROT_NONE)
		return false;
	if ((vmf->flags & FAULT_FLAG_WRITE) && upage_vma_shared(vmf->vma))
		return state->prot == UPAGE_PROT_RW;
	return true;
}

/*
 * Whether the access of kind @access must wait on the slot's trap: not if
 * this thread's pass (@passed, given under traps @pass_seq) lets it go.
 */
static bool upage_trapped(struct upage_slot_state *state, u32 access,
			  bool passed, unsigned long pass_seq)
{
	if (!state->trap || !upage_trap_catches(state->trap, access))
		return false;
	return !passed || state->trap_seq != pass_seq;
}

/*
 * A wait of the fault path (space->lock, a claim) was cut short by a
 * fatal signal: give up the fault without a page. With the lock dropped
 * and VM_FAULT_RETRY, the core sees the signal and a kernel-mode access
 * fails (EFAULT) instead of faulting again at once.
 */
static vm_fault_t upage_fault_killed(struct vm_fault *vmf)
{
	if (!(vmf->flags & FAULT_FLAG_ALLOW_RETRY))
		return VM_FAULT_SIGBUS;
	if (!(vmf->flags & FAULT_FLAG_RETRY_NOWAIT))
		upage_release_fault_lock(vmf);
	return VM_FAULT_RETRY;
}

/* An errno of the fault path's helpers as a fault result. */
static vm_fault_t upage_fault_error(struct vm_fault *vmf, int err)
{
	return err == -EINTR ? upage_fault_killed(vmf) : vmf_error(err);
}

/* Drop the page reference (and lock) a lookup gave. */
static void upage_state_put(struct upage_slot_state *state)
{
	if (!state->page)
		return;
	if (state->locked)
		unlock_page(state->page);
	put_page(state->page);
	state->page = NULL;
}

/* *@waited: the fault waited on a trap (for the tracepoint). */
static vm_fault_t upage_do_fault(struct vm_fault *vmf, bool *waited)
{
	struct upage_space *space = vmf->vma->vm_file->private_data;
	bool shared = upage_vma_shared(vmf->vma);
	bool write = (vmf->flags & FAULT_FLAG_WRITE) && shared;
	u32 access = vmf->flags & FAULT_FLAG_WRITE ? UPAGE_TRAP_WRITE :
						     UPAGE_TRAP_READ;
	/*
	 * A fault that must not wait (populate.c, GUP's FOLL_NOWAIT): where
	 * this one would sleep (a claim, a page-in, a hole fill, a page lock,
	 * a copy), it returns VM_FAULT_RETRY with the mmap lock still held.
	 */
	bool nowait = vmf->flags & FAULT_FLAG_RETRY_NOWAIT;
	struct upage_slot_state state;
	unsigned long pass_seq = 0;
	bool passed = false;
	vm_fault_t trapped;
	int ret;

	atomic64_inc(&space->stats.faults);
	/*
	 * A retry after a wait on a trap: its answer. A shared write keeps
	 * its pass for .page_mkwrite (trap.c).
	 */
	switch (upage_trap_ticket(space, vmf->pgoff, write, shared,
				  &pass_seq)) {
	case UPAGE_WAIT_SIGBUS:
		return VM_FAULT_SIGBUS;
	case UPAGE_WAIT_PASS:
		passed = true;
		break;
	case UPAGE_WAIT_WRITE:
		/*
		 * The write .page_mkwrite sent back (a trapped write, or a
		 * copy-on-write break), whatever this fault says: emulators
		 * retry a locked read-modify-write as a read first.
		 */
		access = UPAGE_TRAP_WRITE;
		write = shared;
		break;
	}
	for (;;) {
		upage_space_lookup(space, vmf->pgoff, &state);
		if (state.beyond_end)
			return VM_FAULT_SIGBUS;
		if (state.claimed) {
			if (nowait)
				return VM_FAULT_RETRY;
			/* Killed while waiting: the task never sees the page. */
			if (upage_space_wait_claim(space, state.claim_seq))
				return upage_fault_killed(vmf);
			continue;
		}
		if (!upage_access_ok(vmf, &state))
			goto out_segv;
		if (upage_trapped(&state, access, passed, pass_seq)) {
			upage_state_put(&state);
			/* Waits, then retries the fault; 0: lifted meanwhile. */
			trapped = upage_trap_fault(vmf, access);
			*waited = !!(trapped & VM_FAULT_RETRY);
			if (trapped)
				return trapped;
			continue;
		}
		if (nowait && (state.evicted || !state.page)) {
			upage_state_put(&state);
			return VM_FAULT_RETRY;
		}
		if (state.evicted) {
			ret = upage_space_page_in(space, vmf->pgoff);
			trace_upage_page_in(space, vmf->pgoff,
					    UPAGE_TRACE_BY_FAULT, ret);
			if (ret == -EINTR || ret == -ENOMEM)
				return upage_fault_error(vmf, ret);
			/* A store that cannot be read is SIGBUS. */
			if (ret < 0)
				return VM_FAULT_SIGBUS;
			continue;
		}
		if (!state.page) {
			ret = upage_space_fill_hole(space, vmf->pgoff);
			if (ret)
				return upage_fault_error(vmf, ret);
			continue;
		}

		if (!state.locked) {
			if (nowait && !trylock_page(state.page)) {
				put_page(state.page);
				return VM_FAULT_RETRY;
			}
			/* An edit may hold it for a whole batch: killable. */
			if (!nowait && folio_lock_killable(page_folio(state.page))) {
				put_page(state.page);
				return upage_fault_killed(vmf);
			}
			state.locked = true;
			if (!upage_space_recheck(space, vmf->pgoff, state.page,
						 &state, false))
				goto retry;
			if (!upage_access_ok(vmf, &state))
				goto out_segv;
			if (upage_trapped(&state, access, passed, pass_seq))
				goto retry;
		}
		if (write && state.cow && nowait) {
			unlock_page(state.page);
			put_page(state.page);
			return VM_FAULT_RETRY;
		}
		if (write && state.cow) {
			/*
			 * A shared write to a copy-on-write alias: copy first.
			 * The copy waits for space->lock, which an edit may
			 * hold while it counts the page's references: hold
			 * none (the page is only compared, not touched).
			 */
			unlock_page(state.page);
			put_page(state.page);
			ret = upage_space_break_cow(space, vmf->pgoff, state.page);
			if (ret)
				return upage_fault_error(vmf, ret);
			continue;
		}
		vmf->page = state.page;
		return VM_FAULT_LOCKED;
retry:
		unlock_page(state.page);
		put_page(state.page);
	}

out_segv:
	upage_state_put(&state);
	return VM_FAULT_SIGSEGV;
}

/* What upage_fault reports of a fault's @ret. */
static int upage_fault_result(vm_fault_t ret, bool trapped)
{
	if (ret & VM_FAULT_LOCKED)
		return UPAGE_TRACE_MAPPED;
	if (ret & VM_FAULT_SIGBUS)
		return UPAGE_TRACE_SIGBUS;
	if (ret & VM_FAULT_SIGSEGV)
		return UPAGE_TRACE_SIGSEGV;
	if (ret & VM_FAULT_RETRY)
		return trapped ? UPAGE_TRACE_TRAPPED : UPAGE_TRACE_RETRY;
	return UPAGE_TRACE_ERROR;
}

static vm_fault_t upage_vm_fault(struct vm_fault *vmf)
{
	struct upage_space *space = vmf->vma->vm_file->private_data;
	/* Read now: after a trap's wait the VMA and space may be gone. */
	u64 id = upage_trace_space_id(space);
	bool trapped = false;
	vm_fault_t ret;

	ret = upage_do_fault(vmf, &trapped);
	trace_upage_fault(id, vmf->pgoff, vmf->real_address,
			  vmf->flags & FAULT_FLAG_WRITE,
			  upage_fault_result(ret, trapped));
	return ret;
}

/* The first write to a page of a shared mapping. */
static vm_fault_t upage_vm_page_mkwrite(struct vm_fault *vmf)
{
	struct upage_space *space = vmf->vma->vm_file->private_data;
	struct page *page = vmf->page;
	struct upage_slot_state state = {};
	struct upage_frame *parked;
	unsigned long seq;
	int ret;

	ret = upage_space_mkwrite_lock(space, vmf->pgoff, page, &seq, &parked,
				       &state);
	if (ret == -EAGAIN) {
		/*
		 * An edit or eviction has claimed the frame and counted our
		 * reference as parked: wait it out, then fault again. Killed
		 * meanwhile: .page_mkwrite cannot drop the lock and retry,
		 * and a kernel-mode access would fault again at once.
		 */
		ret = upage_space_wait_claim(space, seq);
		/* Leaving early: our reference no longer needs explaining. */
		upage_space_unpark(space, parked, seq);
		return ret ? VM_FAULT_SIGBUS : VM_FAULT_NOPAGE;
	}
	if (ret) {
		if (folio_lock_killable(page_folio(page)))
			return VM_FAULT_SIGBUS;
		if (!upage_space_recheck(space, vmf->pgoff, page, &state,
					 true)) {
			/*
			 * An edit took the page from the slot and has unmapped
			 * it (it held the page lock until then): fault again.
			 */
			unlock_page(page);
			return VM_FAULT_NOPAGE;
		}
	}
	/* The common case: recorded as the slot was checked. */
	if (state.recorded)
		return VM_FAULT_LOCKED;
	if (state.prot != UPAGE_PROT_RW) {
		unlock_page(page);
		return VM_FAULT_SIGSEGV;
	}
	if (state.trap && upage_trap_catches(state.trap, UPAGE_TRAP_WRITE) &&
	    !upage_trap_mkwrite_pass(space, vmf->pgoff, state.trap_seq)) {
		/*
		 * A trapped write: the wait needs .fault, which may drop the
		 * mmap lock. Unmap the slot; the write faults there.
		 */
		unlock_page(page);
		upage_fault_want_write(space, vmf->pgoff);
		upage_space_unmap(space, vmf->pgoff, 1);
		return VM_FAULT_NOPAGE;
	}
	if (state.cow) {
		/*
		 * The core holds a reference to @page that we cannot drop, so
		 * do not wait for space->lock here (see above): unmap the
		 * slot instead, and let the retried write fault, where .fault
		 * makes the copy.
		 */
		unlock_page(page);
		upage_fault_want_write(space, vmf->pgoff);
		upage_space_unmap(space, vmf->pgoff, 1);
		return VM_FAULT_NOPAGE;
	}
	upage_space_written(space, vmf->pgoff, page);
	return VM_FAULT_LOCKED;
}

#ifdef UPAGE_HAVE_VMA_LOCK
/*
 * Kernels with per-VMA locks (6.4+) call .fault and .page_mkwrite under
 * the VMA's lock only for VMAs that have .map_pages; for the others they
 * drop it and fault again under mmap_lock, which doubles every fault.
 * Nothing here needs mmap_lock (the trap wait drops whichever lock the
 * fault holds), so map nothing around the fault and let it run.
 */
static vm_fault_t upage_vm_map_pages(struct vm_fault *vmf, pgoff_t start,
				     pgoff_t end)
{
	return 0;
}
#endif

static const struct vm_operations_struct upage_vm_ops = {
	.fault = upage_vm_fault,
	.page_mkwrite = upage_vm_page_mkwrite,
#ifdef UPAGE_HAVE_VMA_LOCK
	.map_pages = upage_vm_map_pages,
#endif
};

int upage_mmap(struct file *file, struct vm_area_struct *vma)
{
	/*
	 * Any window within the largest space may be mapped, as a file may be
	 * mapped beyond its end; vm_pgoff + pages cannot overflow past it.
	 */
	if (vma->vm_pgoff > upage_max_space_pages ||
	    vma_pages(vma) > upage_max_space_pages - vma->vm_pgoff)
		return -EINVAL;

	upage_track_mapped(file->private_data, vma->vm_flags);
	vma->vm_ops = &upage_vm_ops;
	return 0;
}

/*
 * The slot that @addr maps in the caller's address space, if @addr lies in
 * a mapping of @space whose remainder covers @n pages; -ENOENT otherwise.
 */
int upage_addr_to_slot(struct upage_space *space, unsigned long addr,
		       u64 n, u64 *slot)
{
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;
	int ret = -ENOENT;

	if (mmap_read_lock_killable(mm))
		return -EINTR;
	vma = vma_lookup(mm, addr);
	if (vma && vma->vm_ops == &upage_vm_ops &&
	    vma->vm_file->private_data == space) {
		u64 off = (addr - vma->vm_start) >> PAGE_SHIFT;

		if (n <= vma_pages(vma) - off) {
			*slot = vma->vm_pgoff + off;
			ret = 0;
		} else {
			ret = -EINVAL;
		}
	}
	mmap_read_unlock(mm);
	return ret;
}
