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
 * unmap moves the PTEs' dirty bits to the page, so upage_frame_dirty()
 * (PG_dirty, or the bits write tracking moved off it, track.c) says
 * whether the frame was written since the store last got it. The store
 * write itself runs with no lock held (see "Eviction" below).
 *
 * A page-in reads the store with no lock held, then installs the page
 * under space->lock only if the frame is still the one it read for
 * (upage_space_page_in()); the new page is in no page table until it is
 * in the table.
 */
#include <linux/bsearch.h>
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
#include <linux/sort.h>
#include <linux/vmalloc.h>

#include "upage_private.h"
#include "upage_trace.h"

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

/*
 * Lazy free of the evicted @frame: its contents go with its store page;
 * it reads zeros from now on.
 */
void upage_backing_forget(struct upage_space *space,
			  struct upage_frame *frame)
{
	upage_store_release(space, frame);
	frame->out_seq++;
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

/*
 * Give the reclaimed @frame (lazily freed and dropped: it reads zeros) a
 * zeroed page; the caller holds space->lock. No store is read.
 */
static int upage_frame_zero_in(struct upage_space *space,
			       struct upage_frame *frame)
{
	struct page *page;

	lockdep_assert_held(&space->lock);
	page = upage_alloc_frame_page(space);
	if (IS_ERR(page))
		return PTR_ERR(page);
	atomic64_inc(&space->stats.zero_fills);
	upage_frame_set_page(space, frame, page);
	return 0;
}

/*
 * Pin @frame (resident), charging space->pin_user, which the first pin
 * sets to the caller's user; under space->lock.
 */
static int upage_frame_pin(struct upage_space *space,
			   struct upage_frame *frame)
{
	struct user_struct *user = space->pin_user ?: get_current_user();
	int ret;

	lockdep_assert_held(&space->lock);
	ret = upage_pin_charge(user, 1);
	if (ret) {
		if (user != space->pin_user)
			free_uid(user);
		return ret;
	}
	space->pin_user = user;
	frame->pinned = true;
	space->nr_pinned++;
	return 0;
}

/*
 * The fault path found slot @idx's frame evicted: bring it back, reading
 * the store with no space lock held. A read of the store may allocate (a
 * swapped-out shmem page comes back in), and the reclaim that allocation
 * runs must be able to page out this very space, whose lock the shrinker
 * only trylocks; and a program's store may take its own locks (XFS takes
 * its inode lock for a read), which a pwrite() to it from this space's
 * slots holds while it faults here. So: note the frame (its id, where its
 * contents are, and out_seq, which moves whenever they stop being there),
 * drop the lock, allocate and read, take the lock again, and install the
 * page only if the slot still shows that frame, still evicted with those
 * contents. Otherwise the fault looks again. Returns 1 if it paged the
 * frame in, 0 if there was nothing (more) to do, or an errno of the
 * allocation or the read (-EINTR: killed waiting for the lock).
 *
 * UPAGE_RES_PIN pages in the same way (@pin_id set): it allocates as an
 * ioctl does (-ENOMEM, not the OOM killer, in a cgroup at its limit),
 * and pins the frame in the lock hold that installs its page, so that
 * reclaim cannot page it out again first; *@pin_id is then the frame's
 * id.
 */
static int upage_page_in(struct upage_space *space, pgoff_t idx,
			 u64 *pin_id)
{
	struct upage_frame *frame;
	struct file *store = NULL;
	bool reclaimed, user;
	u64 seq;
	struct page *page;
	loff_t base;
	long off;
	u64 id;
	int ret = 0;

	if (mutex_lock_killable(&space->lock))
		return -EINTR;
	frame = idx < space->nr_pages ? space->slots[idx].frame : NULL;
	/* Nothing to do if an edit or another fault got there first. */
	if (!frame || frame->page) {
		mutex_unlock(&space->lock);
		return 0;
	}
	id = frame->id;
	seq = frame->out_seq;
	reclaimed = frame->reclaimed;
	off = frame->store_off;
	base = space->store_base;
	user = space->store_user;
	if (!reclaimed)
		store = get_file(space->store);
	mutex_unlock(&space->lock);

	page = pin_id ? upage_alloc_frame_page(space) :
			upage_alloc_fault_page(space);
	if (IS_ERR(page)) {
		ret = PTR_ERR(page);
		goto out_put;
	}
	if (!reclaimed)
		ret = upage_store_read_at(space, store, user, base, off,
					  page);

	if (mutex_lock_killable(&space->lock)) {
		ret = -EINTR;
		goto out_free;
	}
	frame = idx < space->nr_pages ? space->slots[idx].frame : NULL;
	if (!frame || frame->page || frame->id != id || frame->out_seq != seq) {
		/* Changed meanwhile: what was read may be stale; look again. */
		ret = 0;
	} else if (!ret) {
		atomic64_inc(reclaimed ? &space->stats.zero_fills :
			     &space->stats.page_ins);
		upage_frame_set_page(space, frame, page);
		page = NULL;
		ret = 1;
		if (pin_id) {
			ret = upage_frame_pin(space, frame);
			if (!ret) {
				*pin_id = frame->id;
				ret = 1;
			}
		}
	}
	mutex_unlock(&space->lock);
out_free:
	if (page)
		upage_free_frame_page(space, page);
out_put:
	if (store)
		fput(store);
	return ret;
}

int upage_space_page_in(struct upage_space *space, pgoff_t idx)
{
	return upage_page_in(space, idx, NULL);
}

int upage_backing_prefetch(struct upage_space *space, u64 first, u64 n,
			   u64 *done)
{
	int ret = 0;
	u64 i;

	*done = 0;
	if (!upage_space_range_ok(space, first, n))
		return -EINVAL;
	/* As a fault pages in: the store is read with no space lock held. */
	for (i = first; i < first + n; i++) {
		ret = upage_space_page_in(space, i);
		/* Slots with nothing to bring back are not traced. */
		if (ret)
			trace_upage_page_in(space, i, UPAGE_TRACE_BY_PREFETCH,
					    ret);
		if (ret < 0)
			break;
		*done += ret;
		ret = 0;
		if (!((i - first + 1) % 1024))
			cond_resched();
		if (fatal_signal_pending(current)) {
			ret = -EINTR;
			break;
		}
	}
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
	upage_free_frame_page(space, page);
	atomic64_inc(&space->stats.reclaims);
}

/*
 * Eviction, in three steps, because the store write must run with no
 * space lock and no claim held (store.c explains why):
 *
 *  1. Under space->lock, with the frames claimed, unmapped and checked
 *     for pins (upage_backing_evict_claimed()'s callers):
 *     upage_frame_evict_begin() drops a lazily freed frame not written
 *     since, evicts at once a frame the store already has (clean), and
 *     for the others clears PG_dirty, takes a page reference for the
 *     write (frame->wb_page) and ends the claim. Those frames stay
 *     resident and mappable while they are written.
 *  2. With no lock: write each page to its store page.
 *  3. Under space->lock again, upage_frame_evict_end(): a frame that
 *     died meanwhile is freed; one whose write failed, that was pinned,
 *     lazily freed or given another page stays resident; the others are
 *     claimed, unmapped (wherever their slots are now) and checked for
 *     pins again, and evicted only if still clean: a write during step 2
 *     went through a fault (no PTE was left) and set PG_dirty, so such a
 *     frame stays resident with its data, not evicted with an old copy.
 *
 * Only one write-out of a frame runs at a time (evictions skip frames
 * with wb_page set), and UPAGE_STORE refuses to change the store while
 * any runs (space->nr_io).
 */

/*
 * Step 1 for @frame (claimed, page locked, unmapped, not pinned): 0 if
 * it is done (evicted or dropped, page unlocked and freed), 1 if it needs
 * a write (page unlocked, frame->wb_page holds a reference), or a
 * negative errno (page unlocked, frame resident).
 */
static int upage_frame_evict_begin(struct upage_space *space,
				   struct upage_frame *frame, bool reclaim)
{
	struct page *page = frame->page;
	int ret;

	lockdep_assert_held(&space->lock);
	if (frame->lazy) {
		/* Dirty: written through a pin (get_user_pages) since. */
		if (!upage_frame_dirty(frame)) {
			upage_frame_drop(space, frame);
			return 0;
		}
		spin_lock(&space->table_lock);
		frame->lazy = false;
		space->nr_lazy--;
		spin_unlock(&space->table_lock);
	}
	if (!space->store_user && (upage_frame_dirty(frame) || !frame->stored)) {
		/* The module's own store takes no lock: write it now. */
		ret = upage_store_write_own(space, frame, page, reclaim);
		if (ret) {
			unlock_page(page);
			return ret;
		}
		upage_frame_clear_dirty(space, frame);
		frame->stored = true;
	}
	if (frame->stored && !upage_frame_dirty(frame)) {
		/* The store has these contents already. */
		upage_frame_set_page(space, frame, NULL);
		unlock_page(page);
		upage_free_frame_page(space, page);
		atomic64_inc(&space->stats.evictions);
		return 0;
	}
	ret = upage_store_alloc(space, frame);
	if (ret) {
		unlock_page(page);
		return ret;
	}
	/* From here, a write to the page sets PG_dirty again (step 3). */
	upage_frame_clear_dirty(space, frame);
	frame->stored = false;
	frame->wb_error = 0;
	get_page(page);
	frame->wb_page = page;
	space->nr_io++;
	unlock_page(page);
	return 1;
}

/*
 * Step 3 for @frame, written out: end the write-out. Returns true if the
 * frame is still one to evict (its page is then claimed and locked).
 */
static bool upage_frame_evict_end(struct upage_space *space,
				  struct upage_frame *frame, int *error)
{
	struct page *page = frame->wb_page;

	lockdep_assert_held(&space->lock);
	frame->wb_page = NULL;
	space->nr_io--;
	if (frame->dead) {
		put_page(page);
		upage_frame_free(space, frame);
		return false;
	}
	if (frame->wb_error && !*error)
		*error = frame->wb_error;
	if (frame->wb_error || frame->page != page || frame->pinned ||
	    frame->lazy) {
		put_page(page);
		return false;
	}
	/* The frame's own reference keeps the page: drop ours before the
	 * pin check counts references.
	 */
	put_page(page);
	upage_frame_claim(space, frame);
	return true;
}

/*
 * Unmap @frames[0..nr-1], claimed, from slots first..first+n-1 (from the
 * whole space if @wide: some have aliases elsewhere, or may have moved),
 * and check them for pins. The check may let faults that waited for a
 * page lock through, and those map the page that is about to go: unmap
 * again after any such drain (a few times at most), until a check passes
 * with every page locked since the unmap. With @skip_pinned, a pinned
 * frame's entry is set to NULL (its page unlocked and its claim ended);
 * else -EBUSY is returned with every frame still claimed. -EINTR: a fatal
 * signal, every frame still claimed.
 */
static int upage_evict_unmap(struct upage_space *space,
			     struct upage_frame **frames, size_t nr,
			     u64 first, u64 n, bool wide, bool skip_pinned)
{
	bool drained = true;
	int rounds, ret = 0;
	size_t i;

	for (rounds = 0; drained; rounds++) {
		drained = false;
		if (wide)
			upage_space_unmap(space, 0, space->nr_pages);
		else
			upage_space_unmap(space, first, n);
		ret = upage_frames_drain(space, frames, nr, NULL, &drained);
		/* Faults keep finding the pages: take that for a pin. */
		if (!ret && drained && rounds == UPAGE_BUSY_TRIES) {
			for (i = 0; i < nr; i++) {
				if (frames[i])
					frames[i]->busy = true;
			}
			ret = -EBUSY;
		}
		if (ret != -EBUSY || !skip_pinned)
			return ret;
		for (i = 0; i < nr; i++) {
			if (!frames[i] || !frames[i]->busy)
				continue;
			upage_space_end_claims(space, &frames[i], 1);
			unlock_page(frames[i]->page);
			frames[i] = NULL;
		}
		ret = 0;
	}
	return ret;
}

/*
 * Evict @frames[0..nr-1]: claimed, their pages locked, unmapped and
 * checked for pins, found in slots first..first+n-1 (@wide: some have
 * aliases outside it); @reclaim: called from the shrinker (store.c, the
 * module's own store). For a program's store, drops space->lock for the
 * store writes and takes it again. Returns 0 or the first store error (the frames it concerns
 * stay resident with their data); *@done counts frames evicted or
 * dropped. Ends every claim.
 */
int upage_backing_evict_claimed(struct upage_space *space,
				struct upage_frame **frames, size_t nr,
				u64 first, u64 n, bool wide, bool reclaim,
				u64 *done)
{
	unsigned long edits = space->edit_seq;
	struct file *store = NULL;
	size_t i, nr_wb = 0;
	bool punched = false;
	loff_t base = 0;
	int ret = 0, err;

	lockdep_assert_held(&space->lock);
	if (!nr)
		return 0;
	ret = upage_store_open(space);
	for (i = 0; i < nr; i++) {
		/* After a failure, the rest stays resident, data intact. */
		if (ret) {
			unlock_page(frames[i]->page);
			continue;
		}
		err = upage_frame_evict_begin(space, frames[i], reclaim);
		if (err < 0)
			ret = err;
		else if (!err)
			(*done)++;
	}
	/*
	 * Every claim ends: faults on an evicted frame page it in; the
	 * frames being written (wb_page set) stay mappable meanwhile.
	 */
	upage_space_end_claims(space, frames, nr);
	for (i = 0; i < nr; i++) {
		if (frames[i]->wb_page)
			frames[nr_wb++] = frames[i];
	}
	if (!nr_wb)
		return ret;
	store = get_file(space->store);
	base = space->store_base;
	mutex_unlock(&space->lock);

	for (i = 0; i < nr_wb; i++) {
		/* Stable while written: the frame's store page stays its own. */
		err = upage_store_write(space, store, base, frames[i]->store_off,
					frames[i]->wb_page);
		/* Full: store pages given back may be waiting to be punched. */
		if (err == -ENOSPC && !punched) {
			upage_store_punch(space);
			punched = true;
			err = upage_store_write(space, store, base,
						frames[i]->store_off,
						frames[i]->wb_page);
		}
		frames[i]->wb_error = err;
		cond_resched();
	}
	fput(store);

	mutex_lock(&space->lock);
	for (i = 0; i < nr_wb; i++) {
		if (!upage_frame_evict_end(space, frames[i], &ret))
			frames[i] = NULL;
	}
	/* An edit meanwhile may have moved the frames anywhere. */
	err = upage_evict_unmap(space, frames, nr_wb, first, n,
				wide || edits != space->edit_seq, true);
	if (err) {
		/* Killed: the frames stay resident, their data intact. */
		for (i = 0, nr = 0; i < nr_wb; i++) {
			if (!frames[i])
				continue;
			unlock_page(frames[i]->page);
			frames[nr++] = frames[i];
		}
		upage_space_end_claims(space, frames, nr);
		return ret ?: err;
	}
	for (i = 0; i < nr_wb; i++) {
		struct upage_frame *frame = frames[i];
		struct page *page;

		if (!frame)
			continue;
		page = frame->page;
		/* Written during the store write: keep the new contents. */
		if (upage_frame_dirty(frame)) {
			unlock_page(page);
			continue;
		}
		frame->stored = true;
		upage_frame_set_page(space, frame, NULL);
		unlock_page(page);
		upage_free_frame_page(space, page);
		atomic64_inc(&space->stats.evictions);
		(*done)++;
	}
	for (i = 0, nr = 0; i < nr_wb; i++) {
		if (frames[i])
			frames[nr++] = frames[i];
	}
	upage_space_end_claims(space, frames, nr);
	return ret;
}

/*
 * Evict the resident frames of slots first..first+n-1. All are claimed,
 * unmapped and checked for pins (EBUSY, nothing done), then written out
 * (see above). The check comes after the unmap: until then GUP-fast may
 * take a reference through a present PTE, with no fault and no page
 * lock, a moment after any count.
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
	frames = kvmalloc_array(n, sizeof(*frames),
				GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
	if (!frames) {
		ret = -ENOMEM;
		goto out_unlock;
	}

	/* Claim each frame once; aliases outside the range need a wider unmap. */
	for (s = first; s < first + n; s++) {
		struct upage_frame *frame = space->slots[s].frame;

		if (!frame || !frame->page || frame->claimed || frame->pinned ||
		    frame->wb_page)
			continue;
		upage_frame_claim(space, frame);
		frames[nr++] = frame;
		aliased |= frame->nr_slots > 1;
		if (!((s - first + 1) % 1024))
			cond_resched();
	}
	ret = upage_evict_unmap(space, frames, nr, first, n, aliased, false);
	if (ret) {
		/* Nothing changed: the frames are as they were. */
		upage_space_end_claims(space, frames, nr);
		for (i = 0; i < nr; i++)
			unlock_page(frames[i]->page);
		goto out_free;
	}
	ret = upage_backing_evict_claimed(space, frames, nr, first, n, aliased,
					  false, done);
out_free:
	kvfree(frames);
out_unlock:
	mutex_unlock(&space->lock);
	return ret;
}

static int upage_cmp_id(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return x < y ? -1 : x > y;
}

/*
 * A pin failed: unpin the frames of ids[0..nr-1] that it pinned, looking
 * at slots from..to-1: the whole table if the lock was dropped for a
 * page-in (they may have moved; one that died was unpinned then, and ids
 * are never reused), else the slots the pin went over.
 */
static void upage_pin_unwind(struct upage_space *space, u64 *ids, u64 nr,
			     pgoff_t from, pgoff_t to)
{
	pgoff_t i;

	lockdep_assert_held(&space->lock);
	if (!nr)
		return;
	sort(ids, nr, sizeof(*ids), upage_cmp_id, NULL);
	for (i = from; i < to; i++) {
		struct upage_frame *frame = space->slots[i].frame;

		if (frame && frame->pinned &&
		    bsearch(&frame->id, ids, nr, sizeof(*ids), upage_cmp_id))
			upage_frame_unpin(space, frame);
		if (!((i - from + 1) % 4096))
			cond_resched();
	}
}

/* Looks at one slot a pin makes while other threads keep changing it. */
#define UPAGE_PIN_TRIES 16

/*
 * Pin the frames of slots first..first+n-1: page them in, fill holes, and
 * charge each frame newly pinned. An evicted frame is read back with no
 * lock held and pinned in the lock hold that installs it
 * (upage_page_in()), never read under space->lock: a program's store may
 * take a lock (XFS's inode lock, for a read) that a pwrite() to it from
 * this space's slots holds while it faults here. On failure the frames
 * pinned here are unpinned again (frames paged in or filled stay so:
 * that is invisible). Pins run one at a time (space->pin_lock), so that
 * the failure of one never unpins frames that another reported pinned
 * while the lock was dropped (review 11).
 */
int upage_backing_pin(struct upage_space *space, u64 first, u64 n,
		      u64 *done)
{
	pgoff_t size = READ_ONCE(space->nr_pages);
	u64 *ids, s, id, nr = 0;
	unsigned int tries = 0;
	bool dropped = false;
	int ret = 0;

	*done = 0;
	/* A hint, checked again under the lock: allocate for no bad range. */
	if (first >= size || n > size - first)
		return -EINVAL;
	ids = kvmalloc_array(n, sizeof(*ids), GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
	if (!ids)
		return -ENOMEM;
	if (mutex_lock_killable(&space->pin_lock)) {
		kvfree(ids);
		return -EINTR;
	}
	mutex_lock(&space->lock);
	if (!upage_slots_exist(space, first, n)) {
		ret = -EINVAL;
		goto out_unlock;
	}
	for (s = first; s < first + n; s++) {
		struct upage_frame *frame;

		ret = upage_space_fill_hole_locked(space, s);
		if (ret)
			break;
		frame = space->slots[s].frame;
		if (frame->pinned) {
			tries = 0;
			continue;
		}
		/*
		 * Room for n ids: more only if other threads kept discarding
		 * what this call pinned; then give up.
		 */
		if (nr == n || tries == UPAGE_PIN_TRIES) {
			ret = -EAGAIN;
			break;
		}
		if (!frame->page && !frame->reclaimed) {
			mutex_unlock(&space->lock);
			dropped = true;
			id = 0;
			ret = upage_page_in(space, s, &id);
			mutex_lock(&space->lock);
			if (id)
				ids[nr++] = id;
			if (ret >= 0 && fatal_signal_pending(current))
				ret = -EINTR;
			if (ret >= 0 && !upage_slots_exist(space, first, n))
				ret = -EINVAL;
			if (ret < 0)
				break;
			ret = 0;
			tries++;
			s--;	/* look at the slot again */
			continue;
		}
		tries = 0;
		if (!frame->page) {
			ret = upage_frame_zero_in(space, frame);
			if (ret)
				break;
		}
		ret = upage_frame_pin(space, frame);
		if (ret)
			break;
		ids[nr++] = frame->id;
	}
	if (ret)
		upage_pin_unwind(space, ids, nr,
				 dropped ? 0 : first, dropped ? space->nr_pages :
				 min_t(u64, s + 1, first + n));
	else
		*done = nr;
out_unlock:
	mutex_unlock(&space->lock);
	mutex_unlock(&space->pin_lock);
	kvfree(ids);
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
	trace_upage_evict(space, first, n, *done, ret);
	return ret;
}
