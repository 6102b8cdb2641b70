// SPDX-License-Identifier: GPL-2.0
/*
 * The backing store: page-out (evict), page-in (fault, prefetch).
 *
 * Every space may page its frames out to a store: a shmem file created at
 * the first eviction, so paged-out frames live in tmpfs and may go on to
 * system swap, or a regular file the program gave (UPAGE_STORE). A frame
 * has at most one store page, allocated from the space's ida and given
 * back (and punched out) when the frame dies. An
 * evicted frame keeps its id, its slots and its aliases; only its page is
 * gone (frame->page == NULL), and the store holds its contents.
 *
 * Evicting follows the edits' protocol (edit.c): every page leaves its
 * slots with its page lock held from before the unmap until the frame's
 * page pointer is cleared, so a fault either mapped the page before the
 * unmap (which removes it) or re-checks after and pages the frame in. The
 * unmap moves the PTEs' dirty bits to the page, so PageDirty() says
 * whether the frame was written since the store last got it.
 *
 * Page-in runs under space->lock, so it is serialised with edits and
 * evictions; the new page is in no page table until it is in the table.
 */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/idr.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sched/user.h>
#include <linux/shmem_fs.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "upage_private.h"

static int upage_store_open(struct upage_space *space)
{
	struct file *store;

	lockdep_assert_held(&space->lock);
	if (space->store)
		return 0;
	store = shmem_file_setup("upage-store",
				 (loff_t)upage_max_space_pages << PAGE_SHIFT,
				 VM_NORESERVE);
	if (IS_ERR(store))
		return PTR_ERR(store);
	space->store = store;
	return 0;
}

static loff_t upage_store_pos(struct upage_space *space,
			      struct upage_frame *frame)
{
	return space->store_base + ((loff_t)frame->store_off << PAGE_SHIFT);
}

/* Write @frame's page (locked) to its store page, allocating one. */
static int upage_store_write(struct upage_space *space,
			     struct upage_frame *frame)
{
	loff_t pos;
	ssize_t done;
	void *addr;
	int off;

	if (frame->store_off < 0) {
		off = ida_alloc(&space->store_ida, GFP_KERNEL);
		if (off < 0)
			return off;
		frame->store_off = off;
	}
	pos = upage_store_pos(space, frame);
	addr = kmap_local_page(frame->page);
	done = kernel_write(space->store, addr, PAGE_SIZE, &pos);
	kunmap_local(addr);
	if (done != PAGE_SIZE)
		return done < 0 ? done : -EIO;
	atomic64_add(PAGE_SIZE, &space->stats.bytes_written);
	return 0;
}

static int upage_store_read(struct upage_space *space,
			    struct upage_frame *frame, struct page *page)
{
	loff_t pos = upage_store_pos(space, frame);
	ssize_t done;
	void *addr;

	addr = kmap_local_page(page);
	done = kernel_read(space->store, addr, PAGE_SIZE, &pos);
	kunmap_local(addr);
	if (done != PAGE_SIZE)
		return done < 0 ? done : -EIO;
	atomic64_add(PAGE_SIZE, &space->stats.bytes_read);
	return 0;
}

/*
 * Charge @pages pinned pages to @user, against the caller's
 * RLIMIT_MEMLOCK unless it may lock memory without limit.
 */
static int upage_pin_charge(struct user_struct *user, unsigned long pages)
{
	unsigned long limit = rlimit(RLIMIT_MEMLOCK) >> PAGE_SHIFT;
	long cur = atomic_long_read(&user->locked_vm);

	if (capable(CAP_IPC_LOCK)) {
		atomic_long_add(pages, &user->locked_vm);
		return 0;
	}
	do {
		if (cur + pages > limit)
			return -ENOMEM;
	} while (!atomic_long_try_cmpxchg(&user->locked_vm, &cur, cur + pages));
	return 0;
}

static void upage_frame_unpin(struct upage_space *space,
			      struct upage_frame *frame)
{
	lockdep_assert_held(&space->lock);
	frame->pinned = false;
	atomic_long_sub(1, &space->pin_user->locked_vm);
	if (!--space->nr_pinned) {
		free_uid(space->pin_user);
		space->pin_user = NULL;
	}
}

/* Give back @frame's store page, and the memory behind it. */
static void upage_store_release(struct upage_space *space,
				struct upage_frame *frame)
{
	lockdep_assert_held(&space->lock);
	frame->stored = false;
	if (frame->store_off < 0)
		return;
	/* Not every filesystem can punch holes: then the page just stays. */
	vfs_fallocate(space->store, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      upage_store_pos(space, frame), PAGE_SIZE);
	ida_free(&space->store_ida, frame->store_off);
	frame->store_off = -1;
}

/*
 * Lazy free of the evicted @frame: its contents go with its store page;
 * it reads zeros from now on.
 */
void upage_backing_forget(struct upage_space *space,
			  struct upage_frame *frame)
{
	upage_store_release(space, frame);
	spin_lock(&space->table_lock);
	frame->reclaimed = true;
	frame->written = space->track_gen;	/* now zeros: a change */
	spin_unlock(&space->table_lock);
}

/* The frame is dying: give back its pin charge and its store page. */
void upage_backing_release(struct upage_space *space,
			   struct upage_frame *frame)
{
	lockdep_assert_held(&space->lock);
	if (frame->pinned)
		upage_frame_unpin(space, frame);
	upage_store_release(space, frame);
}

void upage_backing_destroy(struct upage_space *space)
{
	if (space->store)
		fput(space->store);
	ida_destroy(&space->store_ida);
}

/* A file the program may give as a store: see struct upage_store. */
static int upage_store_check(struct file *file, u64 offset)
{
	u64 span = (u64)upage_max_space_pages << PAGE_SHIFT;
	u64 max = file_inode(file)->i_sb->s_maxbytes;

	if ((file->f_mode & (FMODE_READ | FMODE_WRITE)) !=
	    (FMODE_READ | FMODE_WRITE) ||
	    !(file->f_mode & FMODE_CAN_READ) || !(file->f_mode & FMODE_CAN_WRITE))
		return -EBADF;
	if (!S_ISREG(file_inode(file)->i_mode) ||
	    (file->f_flags & (O_APPEND | O_DIRECT)))
		return -EINVAL;
	/* Room for the largest space after @offset, in this filesystem. */
	if (!PAGE_ALIGNED(offset) || offset > max || span > max - offset)
		return -EINVAL;
	return 0;
}

/*
 * Make @fd's file (-1: the module's own shmem file, created when needed)
 * the space's store from @offset on. Only while nothing is evicted: the
 * store pages of resident frames are given back, and the frames are
 * written to the new store when next evicted.
 */
/* Whether @file at @offset (NULL: the module's own) is the space's store. */
static bool upage_store_same(struct upage_space *space, struct file *file,
			     u64 offset)
{
	if (!file)
		return !space->store_user;
	return space->store_user && space->store_base == offset &&
	       file_inode(space->store) == file_inode(file);
}

int upage_backing_set_store(struct upage_space *space, int fd, u64 offset,
			    u32 flags)
{
	struct file *file = NULL, *old;
	pgoff_t i;
	int ret;

	if (fd >= 0) {
		file = fget(fd);
		if (!file)
			return -EBADF;
		ret = upage_store_check(file, offset);
		if (ret)
			goto out_put;
	} else if (fd != -1 || offset) {
		return -EINVAL;
	}

	mutex_lock(&space->lock);
	if (upage_store_same(space, file, offset)) {
		/* Only the policy changes. */
		space->reclaim = flags & UPAGE_STORE_RECLAIM;
		mutex_unlock(&space->lock);
		ret = 0;
		goto out_put;
	}
	for (i = 0; i < space->nr_pages; i++) {
		struct upage_frame *frame = space->slots[i].frame;

		if (frame && !frame->page && !frame->reclaimed) {
			mutex_unlock(&space->lock);
			ret = -EBUSY;
			goto out_put;
		}
	}
	for (i = 0; i < space->nr_pages; i++) {
		struct upage_frame *frame = space->slots[i].frame;

		if (frame)
			upage_store_release(space, frame);
	}
	old = space->store;
	space->store = file;
	space->store_base = offset;
	space->store_user = file;
	space->reclaim = flags & UPAGE_STORE_RECLAIM;
	mutex_unlock(&space->lock);
	if (old)
		fput(old);
	return 0;

out_put:
	if (file)
		fput(file);
	return ret;
}

/*
 * Page the evicted @frame back in (a reclaimed one comes back as zeros);
 * the caller holds space->lock.
 */
static int upage_frame_page_in(struct upage_space *space,
			       struct upage_frame *frame)
{
	struct page *page;
	int ret;

	lockdep_assert_held(&space->lock);
	page = upage_alloc_frame_page();
	if (IS_ERR(page))
		return PTR_ERR(page);
	if (frame->reclaimed) {
		atomic64_inc(&space->stats.zero_fills);
	} else {
		ret = upage_store_read(space, frame, page);
		if (ret) {
			upage_free_frame_page(page);
			return ret;
		}
		atomic64_inc(&space->stats.page_ins);
	}
	upage_frame_set_page(space, frame, page);
	return 0;
}

/* The fault path found slot @idx's frame evicted: bring it back. */
int upage_space_page_in(struct upage_space *space, pgoff_t idx)
{
	struct upage_frame *frame;
	int ret = 0;

	mutex_lock(&space->lock);
	frame = idx < space->nr_pages ? space->slots[idx].frame : NULL;
	/* Nothing to do if an edit or another fault got there first. */
	if (frame && !frame->page)
		ret = upage_frame_page_in(space, frame);
	mutex_unlock(&space->lock);
	return ret;
}

int upage_backing_prefetch(struct upage_space *space, u64 first, u64 n,
			   u64 *done)
{
	int ret = 0;
	u64 i;

	*done = 0;
	mutex_lock(&space->lock);
	if (!upage_slots_exist(space, first, n)) {
		ret = -EINVAL;
		goto out_unlock;
	}
	for (i = first; i < first + n; i++) {
		struct upage_frame *frame = space->slots[i].frame;

		if (!frame || frame->page)
			continue;
		ret = upage_frame_page_in(space, frame);
		if (ret)
			break;
		(*done)++;
	}
out_unlock:
	mutex_unlock(&space->lock);
	return ret;
}

/*
 * Drop the contents of the lazily freed @frame, claimed, its page locked
 * and unmapped: it reads zeros from now on. Its store page, if any, stays
 * allocated until the frame dies (reclaim cannot punch a file).
 */
void upage_frame_drop(struct upage_space *space, struct upage_frame *frame)
{
	struct page *page = frame->page;

	lockdep_assert_held(&space->lock);
	frame->stored = false;
	frame->reclaimed = true;
	spin_lock(&space->table_lock);
	frame->written = space->track_gen;	/* now zeros: a change */
	spin_unlock(&space->table_lock);
	upage_frame_set_page(space, frame, NULL);
	unlock_page(page);
	upage_free_frame_page(page);
	atomic64_inc(&space->stats.reclaims);
}

/*
 * Page out @frame, claimed, its page locked and unmapped everywhere: write
 * it to the store unless the store has it already, then free its memory.
 * A lazily freed frame not written since is dropped instead. Unlocks the
 * page; on a failed write the frame stays resident, its data intact.
 */
int upage_frame_evict_locked(struct upage_space *space,
			     struct upage_frame *frame)
{
	struct page *page = frame->page;
	int ret;

	lockdep_assert_held(&space->lock);
	if (frame->lazy) {
		/* Dirty: written through a pin (get_user_pages) since. */
		if (!PageDirty(page)) {
			upage_frame_drop(space, frame);
			return 0;
		}
		spin_lock(&space->table_lock);
		frame->lazy = false;
		space->nr_lazy--;
		spin_unlock(&space->table_lock);
	}
	ret = upage_store_open(space);
	if (!ret && (PageDirty(page) || !frame->stored))
		ret = upage_store_write(space, frame);
	if (ret) {
		unlock_page(page);
		return ret;
	}
	ClearPageDirty(page);
	frame->stored = true;
	upage_frame_set_page(space, frame, NULL);
	unlock_page(page);
	upage_free_frame_page(page);
	atomic64_inc(&space->stats.evictions);
	return 0;
}

/*
 * Evict the resident frames of slots first..first+n-1. All are claimed and
 * checked for pins first (EBUSY, nothing done); then unmapped at once, and
 * written out one by one.
 */
static int upage_backing_try_evict(struct upage_space *space, u64 first,
				   u64 n, u64 *done)
{
	struct upage_frame **frames;
	bool aliased = false;
	size_t nr = 0, i;
	int ret;
	u64 s;

	*done = 0;
	mutex_lock(&space->lock);
	if (!upage_slots_exist(space, first, n)) {
		ret = -EINVAL;
		goto out_unlock;
	}
	ret = upage_store_open(space);
	if (ret)
		goto out_unlock;
	frames = kvmalloc_array(n, sizeof(*frames),
				GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
	if (!frames) {
		ret = -ENOMEM;
		goto out_unlock;
	}

	/* Claim each frame once; aliases outside the range need a wider unmap. */
	for (s = first; s < first + n; s++) {
		struct upage_frame *frame = space->slots[s].frame;

		if (!frame || !frame->page || frame->claimed || frame->pinned)
			continue;
		upage_frame_claim(space, frame);
		frames[nr++] = frame;
		aliased |= frame->nr_slots > 1;
		if (upage_frame_busy(space, frame)) {
			ret = -EBUSY;
			break;
		}
	}
	if (ret) {
		upage_space_end_claims(space, frames, nr);
		for (i = 0; i < nr; i++)
			unlock_page(frames[i]->page);
		goto out_free;
	}
	if (aliased)
		upage_space_unmap(space, 0, space->nr_pages);
	else
		upage_space_unmap(space, first, n);

	for (i = 0; i < nr; i++) {
		/* After a failed write, the rest stays resident, data intact. */
		if (ret) {
			unlock_page(frames[i]->page);
			continue;
		}
		ret = upage_frame_evict_locked(space, frames[i]);
		if (!ret)
			(*done)++;
	}
	/* Faults waiting on an evicted frame find it evicted and page it in. */
	upage_space_end_claims(space, frames, nr);
out_free:
	kvfree(frames);
out_unlock:
	mutex_unlock(&space->lock);
	return ret;
}

/*
 * Pin the frames of slots first..first+n-1: page them in, fill holes, and
 * charge each frame newly pinned. On failure the frames pinned here are
 * unpinned again (frames paged in or filled stay so: that is invisible).
 */
int upage_backing_pin(struct upage_space *space, u64 first, u64 n,
		      u64 *done)
{
	struct upage_frame **frames;
	struct user_struct *user;
	int ret = 0;
	u64 s, i;

	*done = 0;
	mutex_lock(&space->lock);
	if (!upage_slots_exist(space, first, n)) {
		ret = -EINVAL;
		goto out_unlock;
	}
	frames = kvmalloc_array(n, sizeof(*frames),
				GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
	if (!frames) {
		ret = -ENOMEM;
		goto out_unlock;
	}
	user = space->pin_user ?: get_current_user();
	for (s = first; s < first + n; s++) {
		struct upage_frame *frame;

		ret = upage_space_fill_hole_locked(space, s);
		if (ret)
			break;
		frame = space->slots[s].frame;
		if (frame->pinned)
			continue;
		if (!frame->page) {
			ret = upage_frame_page_in(space, frame);
			if (ret)
				break;
		}
		ret = upage_pin_charge(user, 1);
		if (ret)
			break;
		frame->pinned = true;
		frames[(*done)++] = frame;
	}
	if (ret) {
		for (i = 0; i < *done; i++)
			frames[i]->pinned = false;
		atomic_long_sub(*done, &user->locked_vm);
		*done = 0;
	}
	/* The first pin keeps the user's reference; else it is not needed. */
	if (!space->pin_user && *done)
		space->pin_user = user;
	else if (user != space->pin_user)
		free_uid(user);
	space->nr_pinned += *done;
	kvfree(frames);
out_unlock:
	mutex_unlock(&space->lock);
	return ret;
}

int upage_backing_unpin(struct upage_space *space, u64 first, u64 n,
			u64 *done)
{
	int ret = 0;
	u64 s;

	*done = 0;
	mutex_lock(&space->lock);
	if (!upage_slots_exist(space, first, n)) {
		ret = -EINVAL;
		goto out_unlock;
	}
	for (s = first; s < first + n; s++) {
		struct upage_frame *frame = space->slots[s].frame;

		if (frame && frame->pinned) {
			upage_frame_unpin(space, frame);
			(*done)++;
		}
	}
out_unlock:
	mutex_unlock(&space->lock);
	return ret;
}

int upage_backing_evict(struct upage_space *space, u64 first, u64 n,
			u64 *done)
{
	int busy = 0, ret;

	/* A fault in flight holds a page reference for a moment (edit.c). */
	while ((ret = upage_backing_try_evict(space, first, n, done)) == -EBUSY &&
	       ++busy < UPAGE_BUSY_TRIES)
		schedule_timeout_uninterruptible(1);
	return ret;
}
