// SPDX-License-Identifier: GPL-2.0
/*
 * Spaces: the slot table, its frames, and the private pseudo filesystem
 * that gives every space an address_space of its own.
 *
 * Lock order (see upage_private.h for what each lock protects):
 *
 *	mmap_lock -> space->lock -> page lock -> i_mmap_rwsem -> PTL
 *	page lock -> space->table_lock
 *
 * The fault path takes space->lock only without a page lock held (to fill
 * a hole), and space->table_lock under a page lock (to re-check a slot).
 */
#include <linux/atomic.h>
#include <linux/err.h>
#include <linux/fs.h>
#include <linux/gfp.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/mount.h>
#include <linux/pagemap.h>
#include <linux/pseudo_fs.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "upage_private.h"

#define UPAGE_FS_MAGIC 0x75706167	/* "upag" */

static struct vfsmount *upage_mnt;
static struct kmem_cache *upage_frame_cache;
static atomic64_t upage_space_ids = ATOMIC64_INIT(0);
static atomic_long_t upage_total_pages = ATOMIC_LONG_INIT(0);

static int upage_fs_init_fs_context(struct fs_context *fc)
{
	return init_pseudo(fc, UPAGE_FS_MAGIC) ? 0 : -ENOMEM;
}

static struct file_system_type upage_fs_type = {
	.name = "upage",
	.init_fs_context = upage_fs_init_fs_context,
	.kill_sb = kill_anon_super,
};

int upage_space_init(void)
{
	upage_frame_cache = KMEM_CACHE(upage_frame, SLAB_ACCOUNT);
	if (!upage_frame_cache)
		return -ENOMEM;

	upage_mnt = kern_mount(&upage_fs_type);
	if (IS_ERR(upage_mnt)) {
		kmem_cache_destroy(upage_frame_cache);
		return PTR_ERR(upage_mnt);
	}
	return 0;
}

void upage_space_uninit(void)
{
	kern_unmount(upage_mnt);
	kmem_cache_destroy(upage_frame_cache);
}

struct upage_space *upage_space_create(void)
{
	struct upage_space *space;
	struct inode *inode;

	space = kzalloc(sizeof(*space), GFP_KERNEL_ACCOUNT);
	if (!space)
		return ERR_PTR(-ENOMEM);

	inode = alloc_anon_inode(upage_mnt->mnt_sb);
	if (IS_ERR(inode)) {
		kfree(space);
		return ERR_CAST(inode);
	}

	mutex_init(&space->lock);
	spin_lock_init(&space->table_lock);
	space->inode = inode;
	space->id = atomic64_inc_return(&upage_space_ids);
	return space;
}

/* Take a frame for a newly allocated page; the page's reference moves in. */
static struct upage_frame *upage_frame_new(struct upage_space *space,
					   struct page *page)
{
	struct upage_frame *frame;

	lockdep_assert_held(&space->lock);

	frame = kmem_cache_alloc(upage_frame_cache, GFP_KERNEL_ACCOUNT);
	if (!frame)
		return NULL;
	frame->page = page;
	frame->nr_slots = 0;
	frame->id = ++space->next_frame_id;
	return frame;
}

/*
 * Drop one slot's hold on @frame. The page may live on: the kernel drops
 * its own references when it unmaps or unpins it.
 */
static void upage_frame_put(struct upage_space *space,
			    struct upage_frame *frame)
{
	lockdep_assert_held(&space->lock);

	put_page(frame->page);
	if (--frame->nr_slots)
		return;
	atomic_long_dec(&upage_total_pages);
	kmem_cache_free(upage_frame_cache, frame);
}

/* Called when the last file reference is gone: nothing maps the space. */
void upage_space_destroy(struct upage_space *space)
{
	pgoff_t i;

	mutex_lock(&space->lock);
	for (i = 0; i < space->nr_pages; i++) {
		if (space->slots[i].frame)
			upage_frame_put(space, space->slots[i].frame);
	}
	mutex_unlock(&space->lock);

	kvfree(space->slots);
	iput(space->inode);
	kfree(space);
}

static int upage_space_grow_table(struct upage_space *space, pgoff_t pages)
{
	struct upage_slot *slots, *old;
	pgoff_t capacity;

	lockdep_assert_held(&space->lock);
	if (pages <= space->capacity)
		return 0;

	/* Grow geometrically so that a series of small resizes stays cheap. */
	capacity = max3(pages, space->capacity * 2, (pgoff_t)64);
	capacity = min_t(pgoff_t, capacity, upage_max_space_pages);
	slots = kvcalloc(capacity, sizeof(*slots), GFP_KERNEL_ACCOUNT);
	if (!slots)
		return -ENOMEM;

	spin_lock(&space->table_lock);
	old = space->slots;
	if (old)
		memcpy(slots, old, space->nr_pages * sizeof(*slots));
	space->slots = slots;
	space->capacity = capacity;
	spin_unlock(&space->table_lock);
	kvfree(old);
	return 0;
}

int upage_space_resize(struct upage_space *space, u64 pages, u64 *old_pages)
{
	struct upage_frame **cut = NULL;
	pgoff_t old, i, nr_cut = 0;
	int ret = 0;

	if (pages > upage_max_space_pages)
		return -ENOSPC;

	mutex_lock(&space->lock);
	old = space->nr_pages;
	*old_pages = old;
	if (pages >= old) {
		ret = upage_space_grow_table(space, pages);
		if (!ret) {
			spin_lock(&space->table_lock);
			space->nr_pages = pages;
			spin_unlock(&space->table_lock);
		}
		goto out_unlock;
	}

	cut = kvcalloc(old - pages, sizeof(*cut), GFP_KERNEL);
	if (!cut) {
		ret = -ENOMEM;
		goto out_unlock;
	}
	/*
	 * Shrink: lock the pages cut off, so that a fault that looked one up
	 * cannot install it after the unmap below (see fault.c).
	 */
	for (i = pages; i < old; i++) {
		struct upage_frame *frame = space->slots[i].frame;

		if (frame) {
			lock_page(frame->page);
			cut[nr_cut++] = frame;
		}
	}
	spin_lock(&space->table_lock);
	space->nr_pages = pages;
	for (i = pages; i < old; i++)
		space->slots[i].frame = NULL;
	spin_unlock(&space->table_lock);
	unmap_mapping_pages(space->inode->i_mapping, pages, old - pages, true);
	for (i = 0; i < nr_cut; i++) {
		unlock_page(cut[i]->page);
		upage_frame_put(space, cut[i]);
	}
	kvfree(cut);
out_unlock:
	mutex_unlock(&space->lock);
	return ret;
}

/* Fill the hole at @idx with a zeroed frame, unless an edit got there first. */
static int upage_space_fill_hole(struct upage_space *space, pgoff_t idx)
{
	struct upage_frame *frame;
	struct page *page;
	int ret = 0;

	if (atomic_long_inc_return(&upage_total_pages) > upage_max_total_pages) {
		atomic_long_dec(&upage_total_pages);
		return -ENOSPC;
	}
	/* Charged to the faulting task's memory cgroup. */
	page = alloc_page(GFP_HIGHUSER | __GFP_ZERO | __GFP_ACCOUNT);
	if (!page) {
		atomic_long_dec(&upage_total_pages);
		return -ENOMEM;
	}

	mutex_lock(&space->lock);
	if (idx >= space->nr_pages || space->slots[idx].frame)
		goto out_free;	/* resized or filled meanwhile: look again */
	frame = upage_frame_new(space, page);
	if (!frame) {
		ret = -ENOMEM;
		goto out_free;
	}
	frame->nr_slots = 1;
	spin_lock(&space->table_lock);
	space->slots[idx].frame = frame;
	spin_unlock(&space->table_lock);
	atomic64_inc(&space->stats.zero_fills);
	mutex_unlock(&space->lock);
	return 0;

out_free:
	mutex_unlock(&space->lock);
	put_page(page);
	atomic_long_dec(&upage_total_pages);
	return ret;
}

/*
 * Return the page of slot @idx with a reference, filling a hole first.
 * -EFAULT if @idx lies beyond the end of the space.
 */
struct page *upage_space_get_page(struct upage_space *space, pgoff_t idx)
{
	struct page *page;
	int ret;

	for (;;) {
		spin_lock(&space->table_lock);
		if (idx >= space->nr_pages) {
			spin_unlock(&space->table_lock);
			return ERR_PTR(-EFAULT);
		}
		page = space->slots[idx].frame ?
		       space->slots[idx].frame->page : NULL;
		if (page)
			get_page(page);
		spin_unlock(&space->table_lock);
		if (page)
			return page;

		ret = upage_space_fill_hole(space, idx);
		if (ret)
			return ERR_PTR(ret);
	}
}

/* Whether slot @idx still holds @page; the caller holds the page lock. */
bool upage_space_slot_has_page(struct upage_space *space, pgoff_t idx,
			       struct page *page)
{
	bool same;

	spin_lock(&space->table_lock);
	same = idx < space->nr_pages && space->slots[idx].frame &&
	       space->slots[idx].frame->page == page;
	spin_unlock(&space->table_lock);
	return same;
}
