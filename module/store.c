// SPDX-License-Identifier: GPL-2.0
/*
 * The backing store file: where evicted frames live (backing.c decides
 * what goes there and when; this file reads, writes and punches it).
 *
 * The store is a shmem file the space creates at its first eviction, or a
 * regular file the program hands in (UPAGE_STORE). A frame has at most
 * one store page, at store_base + store_off pages, store_off from the
 * space's ida.
 *
 * The lock rule of this file: **no store I/O that may take the store's
 * inode lock runs under space->lock, a claim, or any lock the fault path
 * waits for.** A program can hold the inode lock of its own store
 * (pwrite(2) to it) while the kernel copies from a buffer that lies in
 * evicted slots or holes of the same space; that copy faults into the
 * space and waits for space->lock. If an eviction held space->lock while
 * its write waited for the inode lock, both would wait for ever, and a
 * store on FUSE would let another process hold that lock as long as it
 * likes. So:
 *
 *  - Writes (kernel_write(), which takes the inode lock) run with no space
 *    lock held (backing.c: upage_backing_evict_claimed()).
 *  - Punches (vfs_fallocate(), inode lock) are queued under table_lock and
 *    made by a work item that takes no space lock, only punch_lock, which
 *    serialises punches with a change of the store. An offset returns to
 *    the ida only once punched, so no frame reuses a page a punch is
 *    about to zero. A store write that finds the store full first waits
 *    for the queued punches, so that a full store that frames gave pages
 *    back to has room again.
 *  - Reads of a page-in (a fault, prefetch, a pin) run with no space lock
 *    held either (backing.c: upage_page_in()), and check afterwards that
 *    what they read is still the frame's.
 *
 * The module's own store is different: nobody else has it open, and it is
 * read and written through its page cache (shmem_read_mapping_page_gfp()
 * and a copy), which takes no inode lock at all. So its writes may run
 * anywhere, under space->lock and from the shrinker too, and the space's
 * frames page out synchronously under memory pressure (reclaim.c). Its
 * pages are charged to the space's memory cgroup wherever that runs
 * (set_active_memcg()), so a frame paged out under a cgroup's limit stays
 * that cgroup's memory, and the kernel swaps it from there as any shmem.
 */
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/idr.h>
#include <linux/memcontrol.h>
#include <linux/mm.h>
#include <linux/mount.h>
#include <linux/sched/mm.h>
#include <linux/shmem_fs.h>
#include <linux/slab.h>

#include "upage_private.h"

/*
 * The module's own stores live on a private tmpfs mount with huge=never:
 * a store page inside a huge folio would be split by a punch, with the
 * folio locked and memory allocated, and that allocation's reclaim would
 * come back to the shrinker, which locks the same folio. Without the
 * mount (no tmpfs), the kernel's internal shmem mount is used.
 */
static struct vfsmount *upage_store_mnt;

int upage_store_mount(void)
{
	struct file_system_type *type = get_fs_type("tmpfs");
	char opts[] = "huge=never";
	struct vfsmount *mnt;

	if (!type)
		return 0;
	mnt = vfs_kern_mount(type, SB_KERNMOUNT, type->name, opts);
	if (IS_ERR(mnt))	/* no huge= option without THP */
		mnt = vfs_kern_mount(type, SB_KERNMOUNT, type->name, NULL);
	if (!IS_ERR(mnt))
		upage_store_mnt = mnt;
	return 0;
}

void upage_store_unmount(void)
{
	if (upage_store_mnt)
		kern_unmount(upage_store_mnt);
}

/* A store page given back, waiting to be punched out of the store. */
struct upage_punch {
	struct list_head node;
	int off;
};

int upage_store_open(struct upage_space *space)
{
	struct file *store;

	lockdep_assert_held(&space->lock);
	if (space->store)
		return 0;
	if (upage_store_mnt)
		store = shmem_file_setup_with_mnt(upage_store_mnt, "upage-store",
						  (loff_t)upage_max_space_pages <<
						  PAGE_SHIFT, VM_NORESERVE);
	else
		store = shmem_file_setup("upage-store",
					 (loff_t)upage_max_space_pages <<
					 PAGE_SHIFT, VM_NORESERVE);
	if (IS_ERR(store))
		return PTR_ERR(store);
	spin_lock(&space->table_lock);
	space->store = store;
	spin_unlock(&space->table_lock);
	return 0;
}

static loff_t upage_store_pos(struct upage_space *space, long off)
{
	return space->store_base + ((loff_t)off << PAGE_SHIFT);
}

/* Give @frame a store page if it has none; under space->lock. */
int upage_store_alloc(struct upage_space *space, struct upage_frame *frame)
{
	int off;

	lockdep_assert_held(&space->lock);
	if (frame->store_off >= 0)
		return 0;
	off = ida_alloc(&space->store_ida, GFP_KERNEL);
	if (off < 0)
		return off;
	frame->store_off = off;
	return 0;
}

/*
 * Copy @page to (@out) or from store page @off of the module's own shmem
 * store, through its page cache: no inode lock, so under space->lock and
 * in reclaim too. The store page is charged to the space's cgroup. From
 * the shrinker (@reclaim), nothing blocks: a charge that would have to
 * reclaim fails instead (in reclaim proper it is forced, as memory that
 * frees memory), so a drop_caches never OOM-kills for it. Elsewhere an
 * allocation may fail rather than OOM-kill: the caller may hold
 * space->lock, which keeps reclaim off this space.
 */
static int upage_store_copy_shmem(struct upage_space *space, struct file *store,
				  long off, struct page *page, bool out,
				  bool reclaim)
{
	struct address_space *mapping = store->f_mapping;
	gfp_t gfp = mapping_gfp_mask(mapping);
	struct mem_cgroup *old;
	struct page *spage;

	if (reclaim)
		gfp = (gfp & ~__GFP_RECLAIM) | __GFP_NOWARN;
	else
		gfp |= __GFP_RETRY_MAYFAIL;
	old = set_active_memcg(space->memcg);
	spage = shmem_read_mapping_page_gfp(mapping, off, gfp);
	set_active_memcg(old);
	if (IS_ERR(spage))
		return PTR_ERR(spage);
	if (out) {
		copy_highpage(spage, page);
		set_page_dirty(spage);
		atomic64_add(PAGE_SIZE, &space->stats.bytes_written);
	} else {
		copy_highpage(page, spage);
		atomic64_add(PAGE_SIZE, &space->stats.bytes_read);
	}
	put_page(spage);
	return 0;
}

/*
 * Write @frame's locked @page to a store page in the module's own store;
 * under space->lock, from anywhere (see above). From reclaim (@reclaim),
 * a frame written before goes to a fresh store page and gives its old one
 * back: rewriting the old one could mean swapping it in, and the task in
 * reclaim may be swapping in that very entry (it would wait on itself).
 * A fresh page is a hole, never in swap, since an offset returns to the
 * ida only once punched.
 */
int upage_store_write_own(struct upage_space *space, struct upage_frame *frame,
			  struct page *page, bool reclaim)
{
	int ret;

	lockdep_assert_held(&space->lock);
	if (WARN_ON_ONCE(space->store_user))
		return -EINVAL;
	if (reclaim && frame->store_off >= 0)
		upage_store_release(space, frame);
	ret = upage_store_alloc(space, frame);
	if (!ret)
		ret = upage_store_copy_shmem(space, space->store,
					     frame->store_off, page, true, reclaim);
	return ret;
}

/*
 * Write @page to store page @off of @store, a program's file. No space
 * lock may be held (see above): the write takes the store's inode lock.
 * Page cache the write allocates is charged to the space's cgroup, not
 * to whoever runs it (the reclaim worker).
 */
int upage_store_write(struct upage_space *space, struct file *store,
		      loff_t base, long off, struct page *page)
{
	loff_t pos = base + ((loff_t)off << PAGE_SHIFT);
	struct mem_cgroup *old;
	ssize_t done;
	void *addr;

	/* Set with fcntl() since UPAGE_STORE checked: the write would go astray. */
	if (store->f_flags & (O_APPEND | O_DIRECT))
		return -EINVAL;
	addr = kmap_local_page(page);
	old = set_active_memcg(space->memcg);
	done = kernel_write(store, addr, PAGE_SIZE, &pos);
	set_active_memcg(old);
	kunmap_local(addr);
	if (done != PAGE_SIZE)
		return done < 0 ? done : -EIO;
	atomic64_add(PAGE_SIZE, &space->stats.bytes_written);
	return 0;
}

/*
 * Read store page @off of @store (the store the caller noted under
 * space->lock with @user and @base, and holds a reference to; it may have
 * been replaced since, and the caller re-checks the frame after) into
 * @page, holding no lock or any: a page-in reads with none, so that the
 * store's locks and the allocations of a swap-in never wait behind
 * space->lock (backing.c).
 */
int upage_store_read_at(struct upage_space *space, struct file *store,
			bool user, loff_t base, long off, struct page *page)
{
	loff_t pos = base + ((loff_t)off << PAGE_SHIFT);
	ssize_t done;
	void *addr;

	/* @store and @user, not space->store: UPAGE_STORE may change it. */
	if (!user)
		return upage_store_copy_shmem(space, store, off, page, false,
					      false);
	addr = kmap_local_page(page);
	done = kernel_read(store, addr, PAGE_SIZE, &pos);
	kunmap_local(addr);
	if (done != PAGE_SIZE)
		return done < 0 ? done : -EIO;
	atomic64_add(PAGE_SIZE, &space->stats.bytes_read);
	return 0;
}

/*
 * Give back @frame's store page: queue it to be punched (and then freed
 * for reuse) by the punch work. If the queue entry cannot be allocated,
 * the page is never reused: better a page of store lost than a punch
 * made under space->lock.
 */
void upage_store_release(struct upage_space *space, struct upage_frame *frame)
{
	struct upage_punch *punch;

	lockdep_assert_held(&space->lock);
	frame->stored = false;
	if (frame->store_off < 0)
		return;
	punch = kmalloc(sizeof(*punch), GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
	/* Queued with table_lock, as the punch work takes the queue. */
	if (punch) {
		punch->off = frame->store_off;
		spin_lock(&space->table_lock);
		list_add_tail(&punch->node, &space->punch_list);
		spin_unlock(&space->table_lock);
		queue_work(system_unbound_wq, &space->punch_work);
	}
	frame->store_off = -1;
}

/*
 * Punch the queued store pages, with no space lock held: the queue is
 * taken under table_lock, the punches made and the offsets given back
 * under punch_lock, which UPAGE_STORE takes to change the store. So
 * every queued page belongs to the store of the moment.
 */
static void upage_store_punch_locked(struct upage_space *space)
{
	struct upage_punch *punch, *next;
	LIST_HEAD(todo);

	lockdep_assert_held(&space->punch_lock);
	spin_lock(&space->table_lock);
	list_splice_init(&space->punch_list, &todo);
	spin_unlock(&space->table_lock);
	list_for_each_entry_safe(punch, next, &todo, node) {
		/* Not every filesystem can punch: then the page just stays. */
		vfs_fallocate(space->store,
			      FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      upage_store_pos(space, punch->off), PAGE_SIZE);
		ida_free(&space->store_ida, punch->off);
		kfree(punch);
		cond_resched();
	}
}

void upage_store_punch(struct upage_space *space)
{
	mutex_lock(&space->punch_lock);
	upage_store_punch_locked(space);
	mutex_unlock(&space->punch_lock);
}

static void upage_store_punch_work(struct work_struct *work)
{
	upage_store_punch(container_of(work, struct upage_space, punch_work));
}

void upage_store_init(struct upage_space *space)
{
	INIT_LIST_HEAD(&space->punch_list);
	INIT_WORK(&space->punch_work, upage_store_punch_work);
	mutex_init(&space->punch_lock);
}

/*
 * The space dies: nothing maps it and no I/O is in flight. Queued punches
 * are dropped: the module's own store goes with its last reference, and a
 * program's store is the program's to truncate (close() never waits for
 * a filesystem the program chose).
 */
void upage_store_destroy(struct upage_space *space)
{
	struct upage_punch *punch, *next;

	cancel_work_sync(&space->punch_work);
	list_for_each_entry_safe(punch, next, &space->punch_list, node)
		kfree(punch);
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

/* Whether @file at @offset (NULL: the module's own) is the space's store. */
static bool upage_store_same(struct upage_space *space, struct file *file,
			     u64 offset)
{
	if (!file)
		return !space->store_user;
	return space->store_user && space->store_base == offset &&
	       file_inode(space->store) == file_inode(file);
}

/*
 * Whether the store may change: no frame evicted, no write in flight, no
 * punch queued (it would go to the new file). Under space->lock and
 * punch_lock.
 */
static int upage_store_busy(struct upage_space *space)
{
	pgoff_t i;

	if (space->nr_io)
		return -EBUSY;
	for (i = 0; i < space->nr_pages; i++) {
		struct upage_frame *frame = space->slots[i].frame;

		if (frame && !frame->page && !frame->reclaimed)
			return -EBUSY;
	}
	return list_empty_careful(&space->punch_list) ? 0 : -EAGAIN;
}

/*
 * Make @fd's file (-1: the module's own shmem file, created when needed)
 * the space's store from @offset on. Only while nothing is evicted: the
 * store pages of resident frames are forgotten (a user's old store is the
 * program's to truncate; the module's own goes with its last reference),
 * and the frames are written to the new store when next evicted.
 */
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

	/* No punch of the old store may land in the new one: hold them off. */
	ret = mutex_lock_killable(&space->punch_lock);
	if (ret)
		goto out_put;
	for (;;) {
		/* Finish the punches of the old store, without space->lock. */
		upage_store_punch_locked(space);
		mutex_lock(&space->lock);
		if (upage_store_same(space, file, offset)) {
			/* Only the policy changes. */
			space->reclaim = flags & UPAGE_STORE_RECLAIM;
			ret = 0;
			goto out_unlock;
		}
		ret = upage_store_busy(space);
		if (ret != -EAGAIN)
			break;
		mutex_unlock(&space->lock);
	}
	if (ret)
		goto out_unlock;
	for (i = 0; i < space->nr_pages; i++) {
		struct upage_frame *frame = space->slots[i].frame;

		if (frame) {
			frame->stored = false;
			frame->store_off = -1;
		}
	}
	old = space->store;
	ida_destroy(&space->store_ida);
	ida_init(&space->store_ida);
	spin_lock(&space->table_lock);
	space->store = file;
	spin_unlock(&space->table_lock);
	space->store_base = offset;
	/* The shrinker's count reads these two with no lock (reclaim.c). */
	WRITE_ONCE(space->store_user, !!file);
	WRITE_ONCE(space->reclaim, !!(flags & UPAGE_STORE_RECLAIM));
	mutex_unlock(&space->lock);
	mutex_unlock(&space->punch_lock);
	if (old)
		fput(old);
	return 0;

out_unlock:
	mutex_unlock(&space->lock);
	mutex_unlock(&space->punch_lock);
out_put:
	if (file)
		fput(file);
	return ret;
}
