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
 * Memory behaves like shmem: one shrinker serves every space, and it is
 * memcg-aware, so the kernel calls it for a cgroup that reaches its
 * memory.max as well as on global pressure. Spaces are kept on a list_lru
 * (upage_lru): list_lru files each space under the memory cgroup its
 * struct is charged to, the opener's, so a scan for a cgroup sees the
 * spaces that cgroup opened. (A frame is charged to the cgroup of the task
 * that made it; a space shared across cgroups is reclaimed under its
 * opener's.)
 *
 * A scan, for each space it visits (trylocks only: the allocating task may
 * hold a space lock or a page lock):
 *  - drops lazily freed frames: no I/O, an unmap, as the kernel's own
 *    reclaim does;
 *  - pages out cold frames of a space whose store is the module's own
 *    shmem file, at once: that store is written through its page cache
 *    (store.c), which takes no filesystem lock an allocating task could
 *    hold, and its pages are charged to the space's cgroup, where the
 *    kernel's reclaim then swaps them as it swaps any shmem page;
 *  - for a space with a program's store and UPAGE_STORE_RECLAIM, asks the
 *    reclaim work to page out: writing a program's file takes its inode
 *    lock, which the allocating task may hold, so that happens in process
 *    context on a WQ_MEM_RECLAIM workqueue (as zswap hands its writeback
 *    to a worker).
 * Pinned frames stay: they are what RLIMIT_MEMLOCK is charged for.
 *
 * Cold: a frame is used when the fault path maps it (frame->used). A
 * reclaim pass over a space clears the mark and unmaps the frames it
 * leaves, so only frames not faulted in since its previous pass are cold;
 * it pages those out.
 *
 * The list's spaces stay alive while upage_spaces_lock is held: a space
 * leaves the list under it before it is destroyed. A scan takes a
 * reference (shrink_ref) on each space it will visit, under that lock, and
 * destruction waits for those to go, so the scan itself holds no global
 * lock.
 */
#include <linux/list.h>
#include <linux/list_lru.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/pagemap.h>
#include <linux/sched.h>
#include <linux/shrinker.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/swap.h>
#include <linux/wait_bit.h>
#include <linux/workqueue.h>

#include "upage_private.h"
#include "upage_trace.h"

/* Frames claimed at a time by a pass, and the most slots it looks at. */
#define UPAGE_RECLAIM_BATCH 64
#define UPAGE_RECLAIM_WINDOW 1024
/* Slots one scan looks at in a space at most, per frame it is asked for. */
#define UPAGE_RECLAIM_SLOTS_PER_FRAME 16

/* Spaces one scan visits at most, and one count looks at. */
#define UPAGE_SCAN_SPACES 16
#define UPAGE_COUNT_SPACES 64

static struct list_lru upage_lru;
static bool upage_lru_ready;
static DEFINE_MUTEX(upage_spaces_lock);
static struct shrinker *upage_shrinker;
static struct workqueue_struct *upage_reclaim_wq;

static void upage_reclaim_work(struct work_struct *work);

/* For kmem_cache_alloc_lru() of a space (space.c). */
struct list_lru *upage_reclaim_lru(void)
{
	return &upage_lru;
}

void upage_reclaim_add(struct upage_space *space)
{
	INIT_WORK(&space->reclaim_work, upage_reclaim_work);
	INIT_LIST_HEAD(&space->node);
	mutex_lock(&upage_spaces_lock);
	upage_lru_add(&upage_lru, &space->node);
	mutex_unlock(&upage_spaces_lock);
}

/* After this, neither the shrinker nor the reclaim work touches @space. */
void upage_reclaim_del(struct upage_space *space)
{
	mutex_lock(&upage_spaces_lock);
	upage_lru_del(&upage_lru, &space->node);
	mutex_unlock(&upage_spaces_lock);
	/* A scan that took the space before is done with it. */
	wait_var_event(&space->shrink_ref, !atomic_read(&space->shrink_ref));
	cancel_work_sync(&space->reclaim_work);
}

/*
 * Whether reclaim may page @space out: its own shmem store always, a
 * program's store only if the program asked (UPAGE_STORE_RECLAIM). Read
 * without locks, as a hint.
 */
static bool upage_space_reclaims(struct upage_space *space)
{
	return !READ_ONCE(space->store_user) || READ_ONCE(space->reclaim);
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
	for (i = 0; i < nr; i++)
		upage_frame_clear_dirty(space, frames[i]);
	spin_lock(&space->table_lock);
	/*
	 * A reclaimed frame read since (zeros) stays RECLAIMED: only a write
	 * ends that.
	 */
	for (i = 0; i < nr; i++) {
		frames[i]->lazy = true;
		frames[i]->stored = false;
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
		if (upage_frame_dirty(frame)) {
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

/*
 * Part of a reclaim pass over @space (lock held, dropped while the store
 * is written): from where the last one stopped, page out cold frames (up
 * to *@want) and mark the used ones unused, then unmap what it passed.
 * Returns how many slots it passed, or a negative errno if the store
 * failed.
 */
static long upage_reclaim_batch(struct upage_space *space, unsigned long *want,
				bool reclaim, unsigned long *evicted)
{
	struct upage_frame *frames[UPAGE_RECLAIM_BATCH];
	size_t max = min_t(unsigned long, *want, UPAGE_RECLAIM_BATCH);
	bool aliased = false;
	pgoff_t start, s, end;
	size_t nr = 0, i, kept;
	u64 done = 0;
	int ret;

	start = space->scan_next < space->nr_pages ? space->scan_next : 0;
	/* A window at a time, however few frames in it can go. */
	end = start + min_t(pgoff_t, space->nr_pages - start,
			    UPAGE_RECLAIM_WINDOW);
	for (s = start; s < end && nr < max; s++) {
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
					  aliased, reclaim, &done);
	*evicted += done;
	*want -= min_t(unsigned long, *want, nr);
	return ret ?: (long)(s - start);
}

/*
 * One reclaim pass over @space, whose lock the caller holds (and which a
 * program's store makes it drop while writing): page out up to *@want
 * cold frames, from where the last pass stopped, looking at no more than
 * @slots slots and at most once round the space (cold is "not used since
 * the previous pass"); @reclaim: from the shrinker. Returns the frames
 * paged out, or a negative errno if the store failed.
 */
static long upage_reclaim_pass(struct upage_space *space, unsigned long *want,
			       unsigned long slots, bool reclaim)
{
	unsigned long walked = 0, evicted = 0;
	long ret = 0;

	slots = min_t(unsigned long, slots, space->nr_pages);
	while (*want && upage_space_reclaims(space) && walked < slots) {
		ret = upage_reclaim_batch(space, want, reclaim, &evicted);
		if (ret <= 0)
			break;
		walked += ret;
		cond_resched();
	}
	atomic64_add(evicted, &space->stats.shrinker_evictions);
	return ret < 0 ? ret : (long)evicted;
}

static void upage_reclaim_work(struct work_struct *work)
{
	struct upage_space *space =
		container_of(work, struct upage_space, reclaim_work);
	unsigned long want;
	long ret;

	/*
	 * Do not start on a busy space: a page-in holding its lock may wait
	 * for the program's store (a FUSE file, say) as long as that likes.
	 * The next shrinker scan queues the work again. (The pass itself
	 * writes the store with the lock dropped, and takes it again to
	 * finish; that wait is as long as another holder's.)
	 */
	if (!mutex_trylock(&space->lock))
		return;
	want = atomic_long_xchg(&space->reclaim_target, 0);
	ret = upage_reclaim_pass(space, &want, ULONG_MAX, false);
	mutex_unlock(&space->lock);
	if (ret < 0)
		pr_warn_ratelimited("space %llu: reclaim stopped, store error %ld\n",
				    space->id, ret);
}

/* What reclaim may take from @space now: a hint, read without locks. */
static unsigned long upage_space_reclaimable(struct upage_space *space)
{
	unsigned long count = READ_ONCE(space->nr_lazy);
	unsigned long resident = atomic_long_read(&space->nr_resident);

	if (upage_space_reclaims(space))
		count += resident - min(resident, READ_ONCE(space->nr_pinned) +
					READ_ONCE(space->nr_lazy));
	return count;
}

struct upage_count {
	unsigned long frames;
	unsigned long spaces;
};

static enum lru_status upage_lru_count_one(struct list_head *item,
					   struct list_lru_one *list,
					   spinlock_t *lock, void *arg)
{
	struct upage_count *count = arg;

	count->frames += upage_space_reclaimable(container_of(item,
						struct upage_space, node));
	count->spaces++;
	return LRU_SKIP;
}

/*
 * The frames reclaim may take from the spaces of sc->memcg on sc->nid,
 * estimated from the first UPAGE_COUNT_SPACES of them (the count runs on
 * every reclaim, under the list's spinlock). SHRINK_EMPTY only for an
 * empty list: the core then stops calling us for the cgroup until the
 * list fills again, so a list of spaces with nothing to give right now
 * must answer 0, not "empty".
 */
static unsigned long upage_shrink_count(struct shrinker *shrinker,
					struct shrink_control *sc)
{
	struct upage_count count = { 0 };
	unsigned long nr = UPAGE_COUNT_SPACES, all;

	/* Pairs with the release in upage_reclaim_init(): the list is set up. */
	if (!smp_load_acquire(&upage_lru_ready))
		return 0;
	all = list_lru_count_one(&upage_lru, sc->nid, sc->memcg);
	if (!all)
		return SHRINK_EMPTY;
	list_lru_walk_one(&upage_lru, sc->nid, sc->memcg, upage_lru_count_one,
			  &count, &nr);
	if (count.spaces && all > count.spaces)
		count.frames = count.frames / count.spaces * all;
	return count.frames;
}

struct upage_scan {
	struct upage_space *spaces[UPAGE_SCAN_SPACES];
	unsigned int nr;
};

/*
 * Take the spaces of a scan, rotating them so that the next scan starts
 * with others. Each taken space holds off its destruction (shrink_ref).
 */
static enum lru_status upage_lru_take(struct list_head *item,
				      struct list_lru_one *list,
				      spinlock_t *lock, void *arg)
{
	struct upage_space *space = container_of(item, struct upage_space, node);
	struct upage_scan *scan = arg;
	unsigned int i;

	/* The walk is bounded by its count; a short list comes round again. */
	if (scan->nr == UPAGE_SCAN_SPACES)
		return LRU_SKIP;
	for (i = 0; i < scan->nr; i++) {
		if (scan->spaces[i] == space)
			return LRU_SKIP;
	}
	atomic_inc(&space->shrink_ref);
	scan->spaces[scan->nr++] = space;
	return LRU_ROTATE;
}

/* Reclaim from one space of a scan, whose lock the caller holds. */
static unsigned long upage_shrink_one(struct upage_space *space,
				      struct shrink_control *sc,
				      unsigned long *budget, unsigned long *lazy)
{
	unsigned long freed = upage_shrink_space(space, budget);
	unsigned long want;
	long ret;

	*lazy += freed;

	if (!*budget || !upage_space_reclaims(space))
		return freed;
	if (space->store_user || !space->store) {
		/*
		 * A program's file: written in process context (above). No
		 * store yet: made there too, not in reclaim.
		 */
		atomic_long_add(*budget, &space->reclaim_target);
		queue_work(upage_reclaim_wq, &space->reclaim_work);
		return freed;
	}
	/*
	 * Paging out to the shmem store only moves memory, until the kernel
	 * swaps the store: without free swap it cannot help. And store pages
	 * may come back from swap: I/O must be allowed.
	 */
	if (get_nr_swap_pages() <= 0 || !(sc->gfp_mask & __GFP_IO))
		return freed;
	want = *budget;
	ret = upage_reclaim_pass(space, &want,
				 *budget * UPAGE_RECLAIM_SLOTS_PER_FRAME, true);
	if (ret > 0) {
		freed += ret;
		*budget -= min_t(unsigned long, *budget, ret);
	}
	return freed;
}

static unsigned long upage_shrink_scan(struct shrinker *shrinker,
				       struct shrink_control *sc)
{
	unsigned long budget = sc->nr_to_scan, freed = 0, lazy = 0, nr;
	struct upage_scan scan = { .nr = 0 };
	unsigned int i;

	/* Pairs with the release in upage_reclaim_init(): the list is set up. */
	if (!smp_load_acquire(&upage_lru_ready))
		return SHRINK_STOP;
	/*
	 * The spaces are taken under upage_spaces_lock, and each taken one
	 * holds off its destruction until it is done with: the scan works
	 * with no global lock held, so scans of other cgroups, opens and
	 * closes go on meanwhile.
	 */
	if (!mutex_trylock(&upage_spaces_lock))
		return SHRINK_STOP;
	nr = UPAGE_SCAN_SPACES;
	list_lru_walk_one(&upage_lru, sc->nid, sc->memcg, upage_lru_take,
			  &scan, &nr);
	mutex_unlock(&upage_spaces_lock);
	for (i = 0; i < scan.nr; i++) {
		struct upage_space *space = scan.spaces[i];

		if (budget && mutex_trylock(&space->lock)) {
			freed += upage_shrink_one(space, sc, &budget, &lazy);
			mutex_unlock(&space->lock);
		}
		if (atomic_dec_and_test(&space->shrink_ref))
			wake_up_var(&space->shrink_ref);
	}
	trace_upage_reclaim(sc->nr_to_scan, scan.nr, sc->nr_to_scan - budget,
			    freed - lazy, lazy);
	return freed;
}

int upage_reclaim_init(void)
{
	upage_reclaim_wq = alloc_workqueue("upage_reclaim",
					   WQ_MEM_RECLAIM | WQ_UNBOUND, 0);
	if (!upage_reclaim_wq)
		return -ENOMEM;
	upage_shrinker = upage_shrinker_create(upage_shrink_count,
					       upage_shrink_scan,
					       SHRINKER_MEMCG_AWARE |
					       SHRINKER_NUMA_AWARE |
					       SHRINKER_NONSLAB, "upage");
	if (!upage_shrinker)
		goto err_destroy_wq;
	/*
	 * The list takes the shrinker's id, which 6.1 assigns only when it
	 * registers it: the callbacks wait for upage_lru_ready.
	 */
	if (list_lru_init_memcg(&upage_lru, upage_shrinker))
		goto err_destroy_shrinker;
	/* The callbacks may look at the list once they see this. */
	smp_store_release(&upage_lru_ready, true);
	return 0;

err_destroy_shrinker:
	upage_shrinker_destroy(upage_shrinker);
err_destroy_wq:
	destroy_workqueue(upage_reclaim_wq);
	return -ENOMEM;
}

void upage_reclaim_uninit(void)
{
	upage_shrinker_destroy(upage_shrinker);
	list_lru_destroy(&upage_lru);
	destroy_workqueue(upage_reclaim_wq);
}
