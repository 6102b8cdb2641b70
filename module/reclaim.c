// SPDX-License-Identifier: GPL-2.0
/*
 * Lazy free and reclaim under memory pressure.
 *
 * A lazily freed frame (UPAGE_RES_LAZY_FREE) keeps its page until memory
 * runs short. To see the first write after the call, the call unmaps the
 * frame with its page locked, so that every later shared write goes
 * through page_mkwrite, which clears frame->lazy under the page lock
 * (upage_frame_record_write()). It also clears the page's dirty bit, so that a
 * write through a get_user_pages pin, which bypasses page_mkwrite but
 * dirties the page, keeps the frame too.
 *
 * One shrinker serves every space. Its scan drops lazily freed frames
 * directly: that needs no I/O, only trylocks (the allocating task may hold
 * a space lock or a page lock) and an unmap, as the kernel's own reclaim
 * does. Paging out cold frames of spaces with UPAGE_STORE_RECLAIM means
 * writing files, whose locks an allocating task may hold, so the scan only
 * asks for it: it raises the space's target and queues reclaim_work on a
 * WQ_MEM_RECLAIM workqueue, which evicts in process context (as zswap's
 * shrinker hands its writeback to a worker).
 *
 * Cold: a frame is used when the fault path maps it (frame->used). The
 * reclaim work's pass over a space clears the mark and unmaps the frames it
 * leaves, so only frames not faulted in since its previous pass are cold;
 * it pages those out.
 *
 * The shrinker is not memcg-aware: the kernel calls it on global memory
 * pressure, and for the root cgroup, not when a cgroup hits memory.max.
 */
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/pagemap.h>
#include <linux/sched.h>
#include <linux/shrinker.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/workqueue.h>

#include "upage_private.h"

/* Frames claimed at a time by a pass. */
#define UPAGE_RECLAIM_BATCH 64

static LIST_HEAD(upage_spaces);
static DEFINE_MUTEX(upage_spaces_lock);
static struct shrinker *upage_shrinker;
static struct workqueue_struct *upage_reclaim_wq;

static void upage_reclaim_work(struct work_struct *work);

void upage_reclaim_add(struct upage_space *space)
{
	INIT_WORK(&space->reclaim_work, upage_reclaim_work);
	mutex_lock(&upage_spaces_lock);
	list_add_tail(&space->node, &upage_spaces);
	mutex_unlock(&upage_spaces_lock);
}

/* After this, neither the shrinker nor the reclaim work touches @space. */
void upage_reclaim_del(struct upage_space *space)
{
	mutex_lock(&upage_spaces_lock);
	list_del(&space->node);
	mutex_unlock(&upage_spaces_lock);
	cancel_work_sync(&space->reclaim_work);
}

/*
 * Unmap the claimed frames[0..nr-1], found in slots first..end-1: the
 * window, unless one of them has aliases (which may lie anywhere).
 */
static void upage_reclaim_unmap(struct upage_space *space,
				struct upage_frame **frames, size_t nr,
				pgoff_t first, pgoff_t end)
{
	size_t i;

	if (!nr)
		return;
	for (i = 0; i < nr; i++) {
		if (frames[i]->nr_slots > 1) {
			upage_space_unmap(space, 0, space->nr_pages);
			return;
		}
	}
	upage_space_unmap(space, first, end - first);
}

/* Mark slots first..first+n-1 lazily freed; see UPAGE_RES_LAZY_FREE. */
int upage_lazy_free(struct upage_space *space, u64 first, u64 n, u64 *done)
{
	struct upage_frame **frames;
	size_t nr = 0, i;
	int ret = 0;
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
	for (s = first; s < first + n; s++) {
		struct upage_frame *frame = space->slots[s].frame;

		if (!frame || frame->lazy || frame->claimed)
			continue;
		if (!frame->page) {
			/* Evicted: drop the stored copy now, as MADV_FREE does. */
			if (frame->reclaimed)
				continue;
			upage_backing_forget(space, frame);
			atomic64_inc(&space->stats.reclaims);
			(*done)++;
			continue;
		}
		upage_frame_claim(space, frame);
		frames[nr++] = frame;
	}
	upage_reclaim_unmap(space, frames, nr, first, first + n);
	spin_lock(&space->table_lock);
	/*
	 * A reclaimed frame read since (zeros) stays RECLAIMED: only a write
	 * ends that.
	 */
	for (i = 0; i < nr; i++) {
		frames[i]->lazy = true;
		frames[i]->stored = false;
		ClearPageDirty(frames[i]->page);
	}
	space->nr_lazy += nr;
	spin_unlock(&space->table_lock);
	upage_space_end_claims(space, frames, nr);
	for (i = 0; i < nr; i++)
		unlock_page(frames[i]->page);
	*done += nr;
	kvfree(frames);
out_unlock:
	mutex_unlock(&space->lock);
	return ret;
}

/*
 * One shrinker pass over @space, whose lock the caller holds: drop up to
 * *@budget lazily freed frames, from where the last pass stopped.
 */
static unsigned long upage_shrink_space(struct upage_space *space,
					unsigned long *budget)
{
	struct upage_frame *frames[UPAGE_RECLAIM_BATCH];
	unsigned long freed = 0;
	pgoff_t start, s;
	size_t nr = 0, i;

	if (!space->nr_lazy || !space->nr_pages)
		return 0;
	start = space->lazy_next < space->nr_pages ? space->lazy_next : 0;
	for (s = start; s < space->nr_pages && nr < ARRAY_SIZE(frames) &&
	     *budget; s++) {
		struct upage_frame *frame = space->slots[s].frame;

		if (!frame || !frame->page || !frame->lazy || frame->pinned ||
		    frame->claimed || frame->wb_page)
			continue;
		(*budget)--;
		if (upage_frame_try_claim(space, frame))
			frames[nr++] = frame;
	}
	space->lazy_next = s;
	if (!nr)
		return 0;
	upage_reclaim_unmap(space, frames, nr, start, s);
	for (i = 0; i < nr; i++) {
		struct upage_frame *frame = frames[i];

		/*
		 * Pinned through a PTE between the claim and the unmap
		 * (GUP-fast): kept, as the kernel keeps a lazyfree page whose
		 * references it cannot explain.
		 */
		if (upage_frame_pinned_now(space, frame)) {
			unlock_page(frame->page);
			continue;
		}
		if (PageDirty(frame->page)) {
			/* Written through a pin since: keep the data. */
			spin_lock(&space->table_lock);
			frame->lazy = false;
			space->nr_lazy--;
			spin_unlock(&space->table_lock);
			unlock_page(frame->page);
			continue;
		}
		upage_frame_drop(space, frame);
		freed++;
	}
	upage_space_end_claims(space, frames, nr);
	return freed;
}

static unsigned long upage_shrink_count(struct shrinker *shrinker,
					struct shrink_control *sc)
{
	struct upage_space *space;
	unsigned long count = 0;

	if (!mutex_trylock(&upage_spaces_lock))
		return 0;
	list_for_each_entry(space, &upage_spaces, node) {
		count += READ_ONCE(space->nr_lazy);
		if (READ_ONCE(space->reclaim))
			count += READ_ONCE(space->nr_resident) -
				 min(READ_ONCE(space->nr_resident),
				     READ_ONCE(space->nr_pinned));
	}
	mutex_unlock(&upage_spaces_lock);
	return count ?: SHRINK_EMPTY;
}

static unsigned long upage_shrink_scan(struct shrinker *shrinker,
				       struct shrink_control *sc)
{
	unsigned long budget = sc->nr_to_scan, freed = 0;
	struct upage_space *space;

	if (!mutex_trylock(&upage_spaces_lock))
		return SHRINK_STOP;
	list_for_each_entry(space, &upage_spaces, node) {
		if (!budget)
			break;
		if (READ_ONCE(space->reclaim)) {
			/* Page-out is the worker's: it writes files. */
			atomic_long_add(budget, &space->reclaim_target);
			queue_work(upage_reclaim_wq, &space->reclaim_work);
		}
		if (!mutex_trylock(&space->lock))
			continue;
		freed += upage_shrink_space(space, &budget);
		mutex_unlock(&space->lock);
	}
	/* Start with the next space next time. */
	if (!list_empty(&upage_spaces))
		list_rotate_left(&upage_spaces);
	mutex_unlock(&upage_spaces_lock);
	return freed;
}

/*
 * Part of a reclaim pass over @space (lock held, dropped while the store
 * is written): from where the last one stopped, page out cold frames (up
 * to *@want) and mark the used ones unused, then unmap what it passed.
 * Returns how many slots it passed, or a negative errno if the store
 * failed.
 */
static long upage_reclaim_batch(struct upage_space *space, unsigned long *want,
				unsigned long *evicted)
{
	struct upage_frame *frames[UPAGE_RECLAIM_BATCH];
	size_t max = min_t(unsigned long, *want, UPAGE_RECLAIM_BATCH);
	bool aliased = false;
	pgoff_t start, s;
	size_t nr = 0, i, kept;
	u64 done = 0;
	int ret;

	start = space->scan_next < space->nr_pages ? space->scan_next : 0;
	for (s = start; s < space->nr_pages && nr < max; s++) {
		struct upage_frame *frame = space->slots[s].frame;

		/* Lazily freed frames are the shrinker's own. */
		if (!frame || !frame->page || frame->pinned || frame->claimed ||
		    frame->lazy || frame->wb_page)
			continue;
		if (READ_ONCE(frame->used)) {
			WRITE_ONCE(frame->used, false);
			continue;
		}
		if (upage_frame_try_claim(space, frame)) {
			frames[nr++] = frame;
			aliased |= frame->nr_slots > 1;
		}
	}
	space->scan_next = s;
	/* The window, so that the used frames fault (and count) again. */
	if (nr)
		upage_reclaim_unmap(space, frames, nr, start, s);
	else if (s > start)
		upage_space_unmap(space, start, s - start);
	/* A GUP-fast pin taken before the unmap: not cold after all. */
	for (i = 0, kept = 0; i < nr; i++) {
		if (upage_frame_pinned_now(space, frames[i])) {
			upage_space_end_claims(space, &frames[i], 1);
			unlock_page(frames[i]->page);
			continue;
		}
		frames[kept++] = frames[i];
	}
	ret = upage_backing_evict_claimed(space, frames, kept, start, s - start,
					  aliased, &done);
	*evicted += done;
	*want -= min_t(unsigned long, *want, nr);
	return ret ?: (long)(s - start);
}

static void upage_reclaim_work(struct work_struct *work)
{
	struct upage_space *space =
		container_of(work, struct upage_space, reclaim_work);
	unsigned long want, walked = 0, evicted = 0;
	long ret = 0;

	/*
	 * Never wait for space->lock here: a page-in holding it may wait for
	 * the program's store (a FUSE file, say) as long as that likes, and
	 * this worker serves every space. The next shrinker scan queues the
	 * work again.
	 */
	if (!mutex_trylock(&space->lock))
		return;
	want = atomic_long_xchg(&space->reclaim_target, 0);
	/* At most one pass: cold is "not used since the previous one". */
	while (want && space->reclaim && walked < space->nr_pages) {
		ret = upage_reclaim_batch(space, &want, &evicted);
		if (ret <= 0)
			break;
		walked += ret;
		mutex_unlock(&space->lock);
		cond_resched();
		mutex_lock(&space->lock);
	}
	mutex_unlock(&space->lock);
	atomic64_add(evicted, &space->stats.shrinker_evictions);
	if (ret < 0)
		pr_warn_ratelimited("space %llu: reclaim stopped, store error %ld\n",
				    space->id, ret);
}

int upage_reclaim_init(void)
{
	upage_reclaim_wq = alloc_workqueue("upage_reclaim",
					   WQ_MEM_RECLAIM | WQ_UNBOUND, 0);
	if (!upage_reclaim_wq)
		return -ENOMEM;
	upage_shrinker = upage_shrinker_create(upage_shrink_count,
					       upage_shrink_scan, "upage");
	if (!upage_shrinker) {
		destroy_workqueue(upage_reclaim_wq);
		return -ENOMEM;
	}
	return 0;
}

void upage_reclaim_uninit(void)
{
	upage_shrinker_destroy(upage_shrinker);
	destroy_workqueue(upage_reclaim_wq);
}
