// SPDX-License-Identifier: GPL-2.0
/*
 * Spaces: the slot table, its frames, and the private pseudo filesystem
 * that gives every space an address_space of its own.
 *
 * Lock order (see upage_private.h for what each lock protects):
 *
 *	mmap_lock -> space->lock -> page lock -> i_mmap_rwsem -> PTL
 *	page lock -> space->table_lock
 *	upage_view_lock (view.c) is a leaf: never held with another lock
 *
 * The fault path takes space->lock only without a page lock held (to fill
 * a hole or break a copy-on-write alias), and space->table_lock under a
 * page lock (to re-check a slot). Whoever takes a frame away from a slot
 * holds the frame's page lock from before the table changes until after
 * the slot is unmapped (fault.c explains why).
 */
#include <linux/atomic.h>
#include <linux/capability.h>
#include <linux/err.h>
#include <linux/fs.h>
#include <linux/gfp.h>
#include <linux/cred.h>
#include <linux/user_namespace.h>
#include <linux/hashtable.h>
#include <linux/highmem.h>
#include <linux/memcontrol.h>
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
static struct kmem_cache *upage_space_cache;
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
	int ret = -ENOMEM;

	upage_frame_cache = KMEM_CACHE(upage_frame, SLAB_ACCOUNT);
	if (!upage_frame_cache)
		return -ENOMEM;
	/*
	 * Spaces come from a cache of their own, charged to the opener's
	 * memory cgroup, so that reclaim.c's list_lru can file them under it
	 * (kmem_cache_alloc_lru() makes the cgroup's list first).
	 */
	upage_space_cache = KMEM_CACHE(upage_space, SLAB_ACCOUNT);
	if (!upage_space_cache)
		goto err_frames;
	upage_mnt = kern_mount(&upage_fs_type);
	if (IS_ERR(upage_mnt)) {
		ret = PTR_ERR(upage_mnt);
		goto err_spaces;
	}
	return 0;

err_spaces:
	kmem_cache_destroy(upage_space_cache);
err_frames:
	kmem_cache_destroy(upage_frame_cache);
	return ret;
}

void upage_space_uninit(void)
{
	kern_unmount(upage_mnt);
	kmem_cache_destroy(upage_space_cache);
	kmem_cache_destroy(upage_frame_cache);
}

/*
 * Resident frames per user. max_total_pages bounds all spaces together;
 * max_user_pages bounds the share of one user (the opener of the spaces),
 * so that one user cannot make every other user's faults SIGBUS. A space
 * holds a reference to its opener's entry.
 */
struct upage_user {
	struct hlist_node node;
	kuid_t uid;
	refcount_t ref;
	atomic_long_t pages;
};

static DEFINE_HASHTABLE(upage_users, 6);
static DEFINE_SPINLOCK(upage_users_lock);

/*
 * Whose share a new space counts against: the caller's uid, or, in a
 * user namespace, the user who made the outermost one. Every id of a
 * namespace belongs to its owner: a user with 65536 subordinate ids must
 * not have 65536 shares.
 */
static kuid_t upage_user_key(void)
{
	struct user_namespace *ns = current_user_ns();
	kuid_t uid = current_uid();

	while (ns != &init_user_ns) {
		uid = ns->owner;
		ns = ns->parent;
	}
	return uid;
}

static struct upage_user *upage_user_get(kuid_t uid)
{
	struct upage_user *user, *new;

	new = kzalloc(sizeof(*new), GFP_KERNEL_ACCOUNT);
	spin_lock(&upage_users_lock);
	hash_for_each_possible(upage_users, user, node, __kuid_val(uid)) {
		if (uid_eq(user->uid, uid)) {
			refcount_inc(&user->ref);
			goto out_unlock;
		}
	}
	user = new;
	new = NULL;
	if (user) {
		user->uid = uid;
		refcount_set(&user->ref, 1);
		hash_add(upage_users, &user->node, __kuid_val(uid));
	}
out_unlock:
	spin_unlock(&upage_users_lock);
	kfree(new);
	return user;
}

static void upage_user_put(struct upage_user *user)
{
	if (!refcount_dec_and_lock(&user->ref, &upage_users_lock))
		return;
	hash_del(&user->node);
	spin_unlock(&upage_users_lock);
	WARN_ON_ONCE(atomic_long_read(&user->pages));
	kfree(user);
}

struct upage_space *upage_space_create(void)
{
	struct upage_space *space;
	struct inode *inode;

	space = kmem_cache_alloc_lru(upage_space_cache, upage_reclaim_lru(),
				     GFP_KERNEL | __GFP_ZERO);
	if (!space)
		return ERR_PTR(-ENOMEM);
	space->user = upage_user_get(upage_user_key());
	if (!space->user) {
		kmem_cache_free(upage_space_cache, space);
		return ERR_PTR(-ENOMEM);
	}

	inode = alloc_anon_inode(upage_mnt->mnt_sb);
	if (IS_ERR(inode)) {
		upage_user_put(space->user);
		kmem_cache_free(upage_space_cache, space);
		return ERR_CAST(inode);
	}

	mutex_init(&space->lock);
	mutex_init(&space->pin_lock);
	spin_lock_init(&space->table_lock);
	init_waitqueue_head(&space->claim_wq);
	ida_init(&space->store_ida);
	space->inode = inode;
	space->track_gen = 1;
	upage_trap_init(space);
	upage_store_init(space);
	space->memcg = get_mem_cgroup_from_mm(current->mm);
	space->owner = current_uid();
	/* As userfaultfd without UFFD_USER_MODE_ONLY: a privilege (trap.c). */
	space->trap_kernel = ns_capable_noaudit(&init_user_ns, CAP_SYS_PTRACE);
	space->id = atomic64_inc_return(&upage_space_ids);
	upage_reclaim_add(space);
	return space;
}

static struct page *upage_alloc_page(struct upage_space *space, gfp_t gfp)
{
	struct upage_user *user = space->user;
	struct page *page;

	if (atomic_long_inc_return(&upage_total_pages) > upage_max_total_pages)
		goto err_total;
	if (atomic_long_inc_return(&user->pages) > READ_ONCE(upage_max_user_pages))
		goto err_user;
	page = alloc_page(gfp);
	if (!page) {
		atomic_long_dec(&user->pages);
		atomic_long_dec(&upage_total_pages);
		return ERR_PTR(-ENOMEM);
	}
	return page;

err_user:
	atomic_long_dec(&user->pages);
err_total:
	atomic_long_dec(&upage_total_pages);
	return ERR_PTR(-ENOSPC);
}

/*
 * A zeroed page for a new frame of @space, made by an ioctl: charged to
 * the current task's memory cgroup, and counted against max_total_pages
 * and the opener's max_user_pages: -ENOSPC over a limit. An ioctl may
 * hold space->lock, so reclaim cannot page out this space meanwhile: in a
 * cgroup at its limit, -ENOMEM rather than the OOM killer.
 */
struct page *upage_alloc_frame_page(struct upage_space *space)
{
	return upage_alloc_page(space, GFP_HIGHUSER | __GFP_ZERO |
				__GFP_ACCOUNT | __GFP_RETRY_MAYFAIL);
}

/*
 * The same for the fault path, which allocates holding no space lock:
 * reclaim may page out this space, and failing that, a cgroup at its
 * limit OOM-kills as for any page fault.
 */
struct page *upage_alloc_fault_page(struct upage_space *space)
{
	return upage_alloc_page(space, GFP_HIGHUSER | __GFP_ZERO |
				__GFP_ACCOUNT);
}

/*
 * A page that the caller fills whole before any mapping can see it, so
 * not zeroed (UPAGE_RESOLVE_COPY); given back with
 * upage_free_frame_page() like the others.
 */
struct page *upage_alloc_copy_page(struct upage_space *space)
{
	return upage_alloc_page(space, GFP_HIGHUSER | __GFP_ACCOUNT |
				__GFP_RETRY_MAYFAIL);
}

/* Give back a page of @space from upage_alloc_frame_page(). */
void upage_free_frame_page(struct upage_space *space, struct page *page)
{
	put_page(page);
	atomic_long_dec(&space->user->pages);
	atomic_long_dec(&upage_total_pages);
}

/*
 * Make a frame of a page from upage_alloc_frame_page(space); the allocation's
 * page reference becomes the frame's. It has no slot yet.
 */
/*
 * A frame struct, for the fault path, which allocates before it takes
 * space->lock (so that the reclaim its charge may run can page out this
 * space): upage_frame_init() makes it a frame under the lock, or
 * upage_frame_unused() gives it back.
 */
struct upage_frame *upage_frame_alloc(void)
{
	return kmem_cache_alloc(upage_frame_cache, GFP_KERNEL_ACCOUNT);
}

void upage_frame_unused(struct upage_frame *frame)
{
	kmem_cache_free(upage_frame_cache, frame);
}

/* A new frame's fields, before it is counted (upage_frame_count()). */
static void upage_frame_prepare(struct upage_frame *frame, struct page *page)
{
	frame->page = page;
	frame->nr_slots = 0;
	frame->parked = 0;
	frame->claimed = false;
	frame->stored = false;
	frame->pinned = false;
	frame->lazy = false;
	frame->reclaimed = false;
	frame->used = true;
	frame->marked = false;
	frame->busy = false;
	frame->dirty = false;
	frame->dbit = false;
	frame->dead = false;
	frame->wb_page = NULL;
	frame->wb_error = 0;
	frame->out_seq = 0;
	frame->store_off = -1;
	frame->written = 0;
}

/*
 * Give @frame its id and count it. Atomics: a fill beside an edit
 * (upage_space_fill_beside()) counts without space->lock.
 */
static void upage_frame_count(struct upage_space *space,
			      struct upage_frame *frame)
{
	frame->id = atomic64_inc_return(&space->next_frame_id);
	atomic_long_inc(&space->nr_frames);
	atomic_long_inc(&space->nr_resident);
}

/* Make @frame a frame of @space holding @page; under space->lock. */
struct upage_frame *upage_frame_init(struct upage_space *space,
				     struct upage_frame *frame,
				     struct page *page)
{
	lockdep_assert_held(&space->lock);
	upage_frame_prepare(frame, page);
	upage_frame_count(space, frame);
	return frame;
}

/*
 * The same for an ioctl, allocating under space->lock, which keeps
 * reclaim off this space: in a cgroup at its limit it fails (NULL)
 * rather than OOM-kill.
 */
struct upage_frame *upage_frame_new(struct upage_space *space,
				    struct page *page)
{
	struct upage_frame *frame;

	lockdep_assert_held(&space->lock);
	frame = kmem_cache_alloc(upage_frame_cache, GFP_KERNEL_ACCOUNT |
				 __GFP_RETRY_MAYFAIL | __GFP_NOWARN);
	return frame ? upage_frame_init(space, frame, page) : NULL;
}

/*
 * Give @frame the page @page, or take its page away (@page NULL: evicted
 * or reclaimed, which also ends a lazy free). The caller holds space->lock
 * and, when it takes a page away, that page's lock.
 */
void upage_frame_set_page(struct upage_space *space,
			  struct upage_frame *frame, struct page *page)
{
	lockdep_assert_held(&space->lock);
	spin_lock(&space->table_lock);
	if (!page && frame->lazy) {
		frame->lazy = false;
		space->nr_lazy--;
	}
	frame->page = page;
	spin_unlock(&space->table_lock);
	frame->dirty = false;
	/* A page-in has no PTE yet: its next arm decides (track.c). */
	frame->dbit = false;
	if (page) {
		atomic_long_inc(&space->nr_resident);
	} else {
		atomic_long_dec(&space->nr_resident);
		frame->out_seq++;
	}
}

/* One more slot points at @frame. */
void upage_frame_get(struct upage_frame *frame)
{
	frame->nr_slots++;
}

/*
 * One slot less points at @frame; the last one frees it. The page may live
 * on: the kernel drops its own references when it unmaps or unpins it.
 */
void upage_frame_put(struct upage_space *space, struct upage_frame *frame)
{
	lockdep_assert_held(&space->lock);

	if (WARN_ON_ONCE(!frame->nr_slots))
		return;
	if (--frame->nr_slots)
		return;
	if (frame->page) {
		if (frame->lazy) {
			spin_lock(&space->table_lock);
			frame->lazy = false;
			space->nr_lazy--;
			spin_unlock(&space->table_lock);
		}
		upage_free_frame_page(space, frame->page);
		frame->page = NULL;
		atomic_long_dec(&space->nr_resident);
	}
	atomic_long_dec(&space->nr_frames);
	/* Being written to the store: the writer frees it (backing.c). */
	if (frame->wb_page) {
		frame->dead = true;
		return;
	}
	upage_frame_free(space, frame);
}

/* Free @frame, which no slot shows: its pin charge and store page too. */
void upage_frame_free(struct upage_space *space, struct upage_frame *frame)
{
	lockdep_assert_held(&space->lock);
	upage_backing_release(space, frame);
	kmem_cache_free(upage_frame_cache, frame);
}

/*
 * Claims. An edit, an eviction or a shrink that takes a frame from its
 * slots first claims it: it marks the frame claimed under table_lock, then
 * locks its page. From the mark on, the fault path takes no new reference
 * to the page: .fault sleeps on claim_wq without one, and page_mkwrite,
 * which the core calls with a reference held, counts itself in @parked
 * before it sleeps. So the references to a claimed frame's page that
 * neither the frame, its PTEs nor @parked explain are pins
 * (get_user_pages), or faults that looked the frame up before the claim
 * and wait for its page lock; those drain (upage_frames_drain()) and no new
 * ones come. For that, no fault path may wait for space->lock while it
 * holds a page reference (fault.c: copy-on-write breaks). The core can
 * still hold one for a moment after it unlocks the page, so callers retry
 * a busy batch (UPAGE_BUSY_TRIES).
 */
void upage_frame_claim(struct upage_space *space, struct upage_frame *frame)
{
	lockdep_assert_held(&space->lock);

	spin_lock(&space->table_lock);
	frame->claimed = true;
	spin_unlock(&space->table_lock);
	lock_page(frame->page);
}

/* References to @frame's page beyond its own, its PTEs' and parked ones. */
static bool upage_frame_unexplained(struct upage_space *space,
				    struct upage_frame *frame)
{
	struct page *page = frame->page;
	bool extra;

	/*
	 * A parked caller took its reference before it counted itself. A
	 * store write in flight (backing.c) holds one of its own.
	 */
	spin_lock(&space->table_lock);
	extra = page_count(page) > 1 + upage_page_mapcount(page) +
		frame->parked + !!frame->wb_page;
	spin_unlock(&space->table_lock);
	return extra;
}

/*
 * The pin check of the claimed frames @frames[0..nr-1] (NULL entries, and
 * those @want refuses, are skipped): 0 if none has references that
 * nothing explains, else -EBUSY with ->busy set on each that has, or
 * -EINTR on a fatal signal. Unexplained references may belong to faults
 * that looked a frame up before its claim and wait for its page lock: for
 * up to UPAGE_DRAIN_TRIES jiffies, all the busy pages are unlocked at once
 * to let them through (they re-check the slot and map the page as the
 * table has it, or look again), and *@drained is set. One drain serves
 * the whole set, so the time a check takes does not grow with the number
 * of pinned frames; a DMA pin (FOLL_PIN) ends it at once.
 */
int upage_frames_drain(struct upage_space *space, struct upage_frame **frames,
		       size_t nr, bool (*want)(struct upage_frame *),
		       bool *drained)
{
	size_t i, nr_busy;
	bool hard;
	int tries;

	lockdep_assert_held(&space->lock);
	for (tries = 0;; tries++) {
		nr_busy = 0;
		hard = false;
		for (i = 0; i < nr; i++) {
			struct upage_frame *frame = frames[i];

			if (!frame || (want && !want(frame)))
				continue;
			frame->busy = upage_frame_unexplained(space, frame);
			if (frame->busy) {
				nr_busy++;
				hard |= folio_maybe_dma_pinned(page_folio(frame->page));
			}
			if (!((i + 1) % 1024))
				cond_resched();
		}
		if (!nr_busy)
			return 0;
		if (hard || tries == UPAGE_DRAIN_TRIES)
			return -EBUSY;
		for (i = 0; i < nr; i++) {
			if (frames[i] && frames[i]->busy)
				unlock_page(frames[i]->page);
		}
		*drained = true;
		schedule_timeout_killable(1);
		/* Whoever took a page lock meanwhile is a fault finishing. */
		for (i = 0; i < nr; i++) {
			if (frames[i] && frames[i]->busy)
				lock_page(frames[i]->page);
		}
		if (fatal_signal_pending(current))
			return -EINTR;
	}
}

/*
 * Whether @frame, claimed and locked by the caller and unmapped since,
 * gained a reference nothing explains: a get_user_pages-fast pin taken
 * through a PTE before the unmap.
 */
bool upage_frame_pinned_now(struct upage_space *space,
			    struct upage_frame *frame)
{
	return upage_frame_unexplained(space, frame);
}

/*
 * Claim @frame without waiting for its page lock, for reclaim, which must
 * not sleep on it (the allocating task may hold it). Fails, leaving no
 * claim, if the page is locked or has references nothing explains.
 */
bool upage_frame_try_claim(struct upage_space *space,
			   struct upage_frame *frame)
{
	lockdep_assert_held(&space->lock);

	if (!trylock_page(frame->page))
		return false;
	spin_lock(&space->table_lock);
	frame->claimed = true;
	spin_unlock(&space->table_lock);
	if (!upage_frame_unexplained(space, frame))
		return true;
	upage_space_end_claims(space, &frame, 1);
	unlock_page(frame->page);
	return false;
}

/*
 * End the claims on @frames and wake the faults waiting them out. The
 * caller unlocks the pages (before or after); parked callers return to
 * the core, which drops their references, and fault again.
 */
void upage_space_end_claims(struct upage_space *space,
			    struct upage_frame **frames, size_t nr)
{
	size_t i;

	if (!nr)
		return;
	spin_lock(&space->table_lock);
	for (i = 0; i < nr; i++) {
		frames[i]->claimed = false;
		frames[i]->parked = 0;
	}
	space->claim_seq++;
	spin_unlock(&space->table_lock);
	wake_up_all(&space->claim_wq);
}

/* Sleep until a claim seen at @seq has ended; -EINTR on a fatal signal. */
int upage_space_wait_claim(struct upage_space *space, unsigned long seq)
{
	return wait_event_killable(space->claim_wq,
				   READ_ONCE(space->claim_seq) != seq) ? -EINTR : 0;
}

/* What the fault path needs of slot @slot; under table_lock. */
static void upage_slot_read_state(struct upage_space *space,
				  struct upage_slot *slot,
				  struct upage_slot_state *state)
{
	state->prot = slot->prot;
	state->cow = slot->flags & UPAGE_SLOT_F_COW;
	state->trap = slot->flags & UPAGE_SLOT_F_TRAPS;
	state->trap_seq = space->trap_seq;
}

/*
 * A write through @slot reaches its frame (.page_mkwrite, page locked):
 * record it for write tracking (track.c); it also ends a lazy free.
 * Under table_lock.
 */
static void upage_frame_record_write(struct upage_space *space,
				     struct upage_slot *slot,
				     struct upage_frame *frame)
{
	if ((slot->flags & UPAGE_SLOT_F_TRACKED) &&
	    frame->written <= slot->armed)
		atomic64_inc(&space->stats.tracked_writes);
	frame->written = space->track_gen;
	if (frame->lazy) {
		frame->lazy = false;
		space->nr_lazy--;
	}
	frame->reclaimed = false;
}

/*
 * .page_mkwrite has the page locked and found it still in @slot: read the
 * slot into @state and, when nothing stands in the write's way
 * (protection, copy-on-write, a write trap), record the write in the same
 * lock hold (@state->recorded). Under table_lock.
 */
static void upage_mkwrite_record(struct upage_space *space,
				 struct upage_slot *slot,
				 struct upage_slot_state *state)
{
	upage_slot_read_state(space, slot, state);
	if (state->prot != UPAGE_PROT_RW || state->cow ||
	    upage_trap_catches(state->trap, UPAGE_TRAP_WRITE))
		return;
	upage_frame_record_write(space, slot, slot->frame);
	state->recorded = true;
}

/*
 * page_mkwrite of slot @idx on @page, which the caller holds a reference
 * to: 0 with @page locked and @state read (the write recorded if it may
 * go on: upage_mkwrite_record()); -EAGAIN if the caller must park until
 * the claim at *@seq has ended (it is counted in the @parked frame's
 * count now; upage_space_unpark() when it leaves);
 * -EBUSY if @page is locked by someone else, or no longer the slot's.
 */
int upage_space_mkwrite_lock(struct upage_space *space, pgoff_t idx,
			     struct page *page, unsigned long *seq,
			     struct upage_frame **parked,
			     struct upage_slot_state *state)
{
	struct upage_frame *frame = NULL;
	int ret = -EBUSY;

	spin_lock(&space->table_lock);
	if (idx < space->nr_pages)
		frame = space->slots[idx].frame;
	if (frame && frame->page == page) {
		if (frame->claimed) {
			frame->parked++;
			*seq = space->claim_seq;
			*parked = frame;
			ret = -EAGAIN;
		} else if (trylock_page(page)) {
			/* Locked here, the slot cannot have changed. */
			upage_mkwrite_record(space, &space->slots[idx], state);
			ret = 0;
		}
	}
	spin_unlock(&space->table_lock);
	return ret;
}

/*
 * A .page_mkwrite parked on @frame under the claim seen at @seq leaves
 * (woken, or killed): if no claim has ended since, the frame is still
 * claimed, so alive, and the count must drop, or it would hide a real pin
 * until the claim ends. If a claim ended meanwhile, the frame may be gone:
 * the count stays, at worst until the frame's own claim ends.
 */
void upage_space_unpark(struct upage_space *space, struct upage_frame *frame,
			unsigned long seq)
{
	spin_lock(&space->table_lock);
	if (space->claim_seq == seq && frame->claimed && frame->parked)
		frame->parked--;
	spin_unlock(&space->table_lock);
}

/* Called when the last file reference is gone: nothing maps the space. */
void upage_space_destroy(struct upage_space *space)
{
	pgoff_t i;

	upage_reclaim_del(space);
	mutex_lock(&space->lock);
	for (i = 0; i < space->nr_pages; i++) {
		if (space->slots[i].frame)
			upage_frame_put(space, space->slots[i].frame);
	}
	mutex_unlock(&space->lock);

	upage_store_destroy(space);
	upage_trap_destroy(space);
	kvfree(space->slots);
	iput(space->inode);
	mem_cgroup_put(space->memcg);
	upage_user_put(space->user);
	kmem_cache_free(upage_space_cache, space);
}

/* Unmap slots first..first+nr-1 from every process, private copies kept. */
void upage_space_unmap(struct upage_space *space, pgoff_t first, pgoff_t nr)
{
	unmap_mapping_pages(space->inode->i_mapping, first, nr, false);
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
	capacity = max(min_t(pgoff_t, capacity, upage_max_space_pages), pages);
	slots = kvcalloc(capacity, sizeof(*slots),
			 GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
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

static int upage_space_shrink(struct upage_space *space, pgoff_t pages)
{
	pgoff_t old = space->nr_pages, i, nr_cut = 0;
	struct upage_frame **cut;

	lockdep_assert_held(&space->lock);

	cut = kvcalloc(old - pages, sizeof(*cut), GFP_KERNEL | __GFP_NOWARN);
	if (!cut)
		return -ENOMEM;
	/*
	 * Claim the frames cut off, so that a fault that looked one up cannot
	 * install it after the unmap below. An alias cut twice is claimed once.
	 */
	for (i = pages; i < old; i++) {
		struct upage_frame *frame = space->slots[i].frame;

		if (frame && frame->page && !frame->claimed) {
			upage_frame_claim(space, frame);
			cut[nr_cut++] = frame;
		}
	}
	spin_lock(&space->table_lock);
	space->nr_pages = pages;
	spin_unlock(&space->table_lock);
	/* As truncation does, drop private copies beyond the end too. */
	unmap_mapping_pages(space->inode->i_mapping, pages, old - pages, true);
	/* Threads trapped on the cut slots find them gone. */
	upage_trap_cut(space, pages);
	upage_space_end_claims(space, cut, nr_cut);
	for (i = 0; i < nr_cut; i++)
		unlock_page(cut[i]->page);
	for (i = pages; i < old; i++) {
		if (space->slots[i].frame)
			upage_frame_put(space, space->slots[i].frame);
		space->slots[i].frame = NULL;
	}
	kvfree(cut);
	return 0;
}

int upage_space_resize(struct upage_space *space, u64 pages, u64 *old_pages)
{
	pgoff_t old, i;
	int ret;

	if (pages > upage_max_space_pages)
		return -ENOSPC;

	mutex_lock(&space->lock);
	old = space->nr_pages;
	*old_pages = old;
	if (pages < old) {
		ret = upage_space_shrink(space, pages);
		goto out_unlock;
	}
	/*
	 * A space with slots has a store from the start: the shrinker pages
	 * out to it from reclaim, where making a file is no business.
	 */
	ret = pages ? upage_store_open(space) : 0;
	if (!ret)
		ret = upage_space_grow_table(space, pages);
	if (ret)
		goto out_unlock;
	/* Slots beyond the end are holes (shrink left them so). */
	for (i = old; i < pages; i++) {
		space->slots[i].prot = UPAGE_PROT_RW;
		space->slots[i].flags = 0;
	}
	spin_lock(&space->table_lock);
	space->nr_pages = pages;
	spin_unlock(&space->table_lock);
out_unlock:
	mutex_unlock(&space->lock);
	return ret;
}

/*
 * Read slot @idx for the fault path. A resident page comes with a
 * reference, and locked if that was free (@state->locked); a claimed
 * frame comes with nothing: the caller waits for the claim to end.
 */
void upage_space_lookup(struct upage_space *space, pgoff_t idx,
			struct upage_slot_state *state)
{
	struct upage_slot *slot;

	memset(state, 0, sizeof(*state));
	spin_lock(&space->table_lock);
	if (idx >= space->nr_pages) {
		state->beyond_end = true;
		goto out_unlock;
	}
	slot = &space->slots[idx];
	upage_slot_read_state(space, slot, state);
	if (slot->frame && slot->frame->claimed) {
		/* No reference while a claimer counts them: wait (above). */
		state->claimed = true;
		state->claim_seq = space->claim_seq;
	} else if (slot->frame && slot->frame->page) {
		state->page = slot->frame->page;
		get_page(state->page);
		/* Faulted in: not cold (reclaim.c). */
		if (!slot->frame->used)
			WRITE_ONCE(slot->frame->used, true);
		/* Locked here, the slot cannot have changed: no re-check. */
		state->locked = trylock_page(state->page);
	} else if (slot->frame) {
		state->evicted = true;
	}
out_unlock:
	spin_unlock(&space->table_lock);
}

/*
 * Whether slot @idx still holds @page, whose lock the caller holds, and its
 * state then. No edit can take @page from the slot while the lock is held.
 */
bool upage_space_recheck(struct upage_space *space, pgoff_t idx,
			 struct page *page, struct upage_slot_state *state,
			 bool mkwrite)
{
	struct upage_slot *slot;
	bool same = false;

	spin_lock(&space->table_lock);
	if (idx < space->nr_pages) {
		slot = &space->slots[idx];
		same = slot->frame && slot->frame->page == page;
		if (same && mkwrite)
			upage_mkwrite_record(space, slot, state);
		else
			upage_slot_read_state(space, slot, state);
	}
	spin_unlock(&space->table_lock);
	return same;
}

/*
 * A shared write is about to go to @page, locked by the caller, at slot
 * @idx: it ends a lazy free of the frame, and shows that the contents are
 * no longer the zeros of a reclaimed one.
 */
void upage_space_written(struct upage_space *space, pgoff_t idx,
			 struct page *page)
{
	struct upage_frame *frame;

	spin_lock(&space->table_lock);
	frame = idx < space->nr_pages ? space->slots[idx].frame : NULL;
	if (frame && frame->page == page)
		upage_frame_record_write(space, &space->slots[idx], frame);
	spin_unlock(&space->table_lock);
}

/*
 * Fill the hole at @idx with a zeroed frame; nothing to do if it has one
 * (an edit or another fault got there first).
 */
/*
 * Fill the hole at @idx with a frame of *@page (a zeroed page from
 * upage_alloc_frame_page(), which the frame takes: *@page is then NULL);
 * nothing to do if the slot has a frame (an edit or another fault got
 * there first) or is gone.
 */
static int upage_space_fill_hole_with(struct upage_space *space, pgoff_t idx,
				      struct page **page,
				      struct upage_frame **spare)
{
	struct upage_frame *frame;

	lockdep_assert_held(&space->lock);
	if (idx >= space->nr_pages || space->slots[idx].frame)
		return 0;
	if (*spare) {
		frame = upage_frame_init(space, *spare, *page);
		*spare = NULL;
	} else {
		frame = upage_frame_new(space, *page);
		if (!frame)
			return -ENOMEM;
	}
	*page = NULL;
	upage_frame_get(frame);
	spin_lock(&space->table_lock);
	space->slots[idx].frame = frame;
	spin_unlock(&space->table_lock);
	atomic64_inc(&space->stats.zero_fills);
	return 0;
}

/* Fill the hole at @idx with a zeroed frame, for an ioctl (pin). */
int upage_space_fill_hole_locked(struct upage_space *space, pgoff_t idx)
{
	struct upage_frame *spare = NULL;
	struct page *page;
	int ret;

	lockdep_assert_held(&space->lock);
	if (idx >= space->nr_pages || space->slots[idx].frame)
		return 0;
	page = upage_alloc_frame_page(space);
	if (IS_ERR(page))
		return PTR_ERR(page);
	ret = upage_space_fill_hole_with(space, idx, &page, &spare);
	if (page)
		upage_free_frame_page(space, page);
	return ret;
}

/*
 * Fill the hole at @idx while an edit holds space->lock, if the edit's ops
 * reach neither @idx nor anything a fill changes (edit.c, "Fills beside a
 * batch"): true if done (filled, or no hole any more), false if the
 * caller must wait for space->lock. The edit publishes its ops under
 * table_lock after its checks and withdraws them before it unlocks, so
 * while they are seen here the edit holds space->lock and no other holder
 * can. The frame counters a fill changes are atomic.
 */
static bool upage_space_fill_beside(struct upage_space *space, pgoff_t idx,
				    struct page **page,
				    struct upage_frame **spare)
{
	struct upage_frame *frame = *spare;
	bool done = false;

	/* Private until it is in the table. */
	upage_frame_prepare(frame, *page);
	spin_lock(&space->table_lock);
	if (!space->edit_ops ||
	    upage_edit_reaches(space->edit_ops, space->edit_nr_ops, idx))
		goto out;
	done = true;
	/* Filled meanwhile by another fault beside the same edit. */
	if (idx >= space->nr_pages || space->slots[idx].frame)
		goto out;
	upage_frame_count(space, frame);
	upage_frame_get(frame);
	/* The edit's unmap tests the pointers of its gaps (READ_ONCE). */
	WRITE_ONCE(space->slots[idx].frame, frame);
	*spare = NULL;
	*page = NULL;
	atomic64_inc(&space->stats.zero_fills);
out:
	spin_unlock(&space->table_lock);
	return done;
}

/*
 * For the fault path: the page and the frame are allocated before
 * space->lock is taken, so that the reclaim their charges may run can
 * page out this space too (the shrinker only trylocks it; a charge under
 * the lock could only fail, and the fault would retry for ever in a full
 * cgroup). -EINTR on a fatal signal while waiting for the lock. A fill
 * need not wait for an edit that does not reach its slot (above).
 */
int upage_space_fill_hole(struct upage_space *space, pgoff_t idx)
{
	struct upage_frame *spare;
	struct page *page;
	int ret = 0;

	spare = upage_frame_alloc();
	if (!spare)
		return -ENOMEM;
	page = upage_alloc_fault_page(space);
	if (IS_ERR(page)) {
		upage_frame_unused(spare);
		return PTR_ERR(page);
	}
	if (!mutex_trylock(&space->lock)) {
		if (upage_space_fill_beside(space, idx, &page, &spare))
			goto out_free;
		if (mutex_lock_killable(&space->lock)) {
			ret = -EINTR;
			goto out_free;
		}
	}
	ret = upage_space_fill_hole_with(space, idx, &page, &spare);
	mutex_unlock(&space->lock);
out_free:
	if (page)
		upage_free_frame_page(space, page);
	if (spare)
		upage_frame_unused(spare);
	return ret;
}

/*
 * Give the copy-on-write alias at @idx, which showed @old, a copy of its
 * own. Nothing to do if an edit changed the slot meanwhile. The caller
 * need not hold a reference to @old: it is compared with the slot's page
 * before use.
 */
int upage_space_break_cow(struct upage_space *space, pgoff_t idx,
			  struct page *old)
{
	struct upage_frame *frame, *old_frame;
	struct upage_slot *slot;
	struct page *page;
	int ret = 0;

	/* Allocated before the lock, as for a hole (above). */
	frame = upage_frame_alloc();
	if (!frame)
		return -ENOMEM;
	page = upage_alloc_fault_page(space);
	if (IS_ERR(page)) {
		upage_frame_unused(frame);
		return PTR_ERR(page);
	}

	if (mutex_lock_killable(&space->lock)) {
		ret = -EINTR;
		goto out_free_frame;
	}
	slot = idx < space->nr_pages ? &space->slots[idx] : NULL;
	if (!slot || !slot->frame || slot->frame->page != old ||
	    !(slot->flags & UPAGE_SLOT_F_COW))
		goto out_free;
	upage_frame_init(space, frame, page);
	upage_frame_get(frame);
	old_frame = slot->frame;

	lock_page(old);
	copy_highpage(page, old);
	spin_lock(&space->table_lock);
	slot->frame = frame;
	slot->flags &= ~UPAGE_SLOT_F_COW;
	spin_unlock(&space->table_lock);
	upage_space_unmap(space, idx, 1);
	unlock_page(old);

	upage_frame_put(space, old_frame);
	atomic64_inc(&space->stats.cow_breaks);
	mutex_unlock(&space->lock);
	return 0;

out_free:
	mutex_unlock(&space->lock);
out_free_frame:
	upage_free_frame_page(space, page);
	upage_frame_unused(frame);
	return ret;
}

/* Whether slots first..first+n-1 exist now. */
bool upage_space_range_ok(struct upage_space *space, u64 first, u64 n)
{
	bool ok;

	spin_lock(&space->table_lock);
	ok = upage_slots_exist(space, first, n);
	spin_unlock(&space->table_lock);
	return ok;
}

/* Fill @info for slots first..first+n-1, checked under the lock. */
int upage_space_query(struct upage_space *space, u64 first, u64 n,
		      bool show_pfn, struct upage_slot_info *info)
{
	u64 i;
	int ret;

	mutex_lock(&space->lock);
	if (!upage_slots_exist(space, first, n)) {
		mutex_unlock(&space->lock);
		return -EINVAL;
	}
	/* Writes still in dirty bits (track.c), for UPAGE_SLOT_DIRTY. */
	ret = upage_track_harvest(space, first, n);
	if (ret) {
		mutex_unlock(&space->lock);
		return ret;
	}
	for (i = 0; i < n; i++) {
		struct upage_slot *slot = &space->slots[first + i];
		struct upage_frame *frame = slot->frame;

		memset(&info[i], 0, sizeof(info[i]));
		info[i].prot = slot->prot;
		if (slot->flags & UPAGE_SLOT_F_TRACKED)
			info[i].state |= UPAGE_SLOT_TRACKED;
		spin_lock(&space->table_lock);
		if (upage_slot_dirty(slot))
			info[i].state |= UPAGE_SLOT_DIRTY;
		spin_unlock(&space->table_lock);
		if (slot->flags & UPAGE_SLOT_F_TRAP_READ)
			info[i].state |= UPAGE_SLOT_TRAP_READ;
		if (slot->flags & UPAGE_SLOT_F_TRAP_WRITE)
			info[i].state |= UPAGE_SLOT_TRAP_WRITE;
		if (!frame)
			continue;
		info[i].frame_id = frame->id;
		info[i].nr_aliases = frame->nr_slots;
		if (frame->page)
			info[i].state |= UPAGE_SLOT_RESIDENT;
		else if (!frame->reclaimed)
			info[i].state |= UPAGE_SLOT_EVICTED;
		if (frame->lazy)
			info[i].state |= UPAGE_SLOT_LAZY;
		if (frame->reclaimed)
			info[i].state |= UPAGE_SLOT_RECLAIMED;
		if (slot->flags & UPAGE_SLOT_F_COW)
			info[i].state |= UPAGE_SLOT_COW;
		if (frame->pinned)
			info[i].state |= UPAGE_SLOT_PINNED;
		if (show_pfn && frame->page)
			info[i].pfn = page_to_pfn(frame->page);
	}
	mutex_unlock(&space->lock);
	return 0;
}
