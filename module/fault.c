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
 *  - An edit locks every page it takes away from a slot, changes the table,
 *    unmaps, and only then unlocks.
 *
 * So either the fault re-checks after the table change and retries, or it
 * installed its PTE before the edit's unmap, which removes it.
 */
#include <linux/mm.h>
#include <linux/pagemap.h>

#include "upage_private.h"

static vm_fault_t upage_vm_fault(struct vm_fault *vmf)
{
	struct upage_space *space = vmf->vma->vm_file->private_data;
	struct page *page;

	atomic64_inc(&space->stats.faults);
	for (;;) {
		page = upage_space_get_page(space, vmf->pgoff);
		if (IS_ERR(page))
			return PTR_ERR(page) == -EFAULT ? VM_FAULT_SIGBUS :
							  vmf_error(PTR_ERR(page));
		lock_page(page);
		if (upage_space_slot_has_page(space, vmf->pgoff, page))
			break;
		unlock_page(page);
		put_page(page);
	}
	vmf->page = page;
	return VM_FAULT_LOCKED;
}

static const struct vm_operations_struct upage_vm_ops = {
	.fault = upage_vm_fault,
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

	vma->vm_ops = &upage_vm_ops;
	return 0;
}
