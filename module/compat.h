/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Differences between the kernels upage builds for (Debian 12's 6.1 and
 * 6.12). Force-included by module/Kbuild, which probes the target tree and
 * defines UPAGE_HAVE_* for each feature; the .c files use only the names
 * defined here, never a kernel version.
 */
#ifndef UPAGE_COMPAT_H
#define UPAGE_COMPAT_H

#include <linux/mm.h>

#ifndef UPAGE_HAVE_VM_FLAGS_SET
/* vm_flags became read-only with accessors in 6.3. */
static inline void vm_flags_set(struct vm_area_struct *vma, vm_flags_t flags)
{
	vma->vm_flags |= flags;
}

static inline void vm_flags_clear(struct vm_area_struct *vma,
				  vm_flags_t flags)
{
	vma->vm_flags &= ~flags;
}
#endif

/*
 * Write tracking by dirty bits (track.c) needs the mapping dirty helpers,
 * built into a kernel only when a driver selects them (vmwgfx does, in
 * both of Debian's kernels). Without them every slot is re-armed by
 * unmapping, as the space is after a private mapping.
 */
#if IS_ENABLED(CONFIG_MAPPING_DIRTY_HELPERS)
#define UPAGE_HAVE_DIRTY_HELPERS 1
#else
#define UPAGE_HAVE_DIRTY_HELPERS 0
static inline unsigned long
clean_record_shared_mapping_range(struct address_space *mapping,
				  pgoff_t first_index, pgoff_t nr,
				  pgoff_t bitmap_pgoff, unsigned long *bitmap,
				  pgoff_t *start, pgoff_t *end)
{
	return 0;
}
#endif

/* How many PTEs map an order-0 page. */
#ifdef UPAGE_HAVE_INLINE_FOLIO_MAPCOUNT
static inline int upage_page_mapcount(struct page *page)
{
	return folio_mapcount(page_folio(page));
}
#else
/* 6.1: folio_mapcount() is out of line and not exported. */
static inline int upage_page_mapcount(struct page *page)
{
	return page_mapcount(page);
}
#endif

/* Shrinkers are allocated by the core since 6.7; register_shrinker() went. */
#include <linux/list_lru.h>
#include <linux/shrinker.h>
#include <linux/slab.h>

#ifdef UPAGE_HAVE_SHRINKER_ALLOC
static inline struct shrinker *
upage_shrinker_create(unsigned long (*count)(struct shrinker *,
					     struct shrink_control *),
		      unsigned long (*scan)(struct shrinker *,
					    struct shrink_control *),
		      unsigned int flags, const char *name)
{
	struct shrinker *shrinker = shrinker_alloc(flags, "%s", name);

	if (!shrinker)
		return NULL;
	shrinker->count_objects = count;
	shrinker->scan_objects = scan;
	shrinker_register(shrinker);
	return shrinker;
}

static inline void upage_shrinker_destroy(struct shrinker *shrinker)
{
	shrinker_free(shrinker);
}
#else
static inline struct shrinker *
upage_shrinker_create(unsigned long (*count)(struct shrinker *,
					     struct shrink_control *),
		      unsigned long (*scan)(struct shrinker *,
					    struct shrink_control *),
		      unsigned int flags, const char *name)
{
	struct shrinker *shrinker = kzalloc(sizeof(*shrinker), GFP_KERNEL);

	if (!shrinker)
		return NULL;
	shrinker->count_objects = count;
	shrinker->scan_objects = scan;
	shrinker->seeks = DEFAULT_SEEKS;
	shrinker->flags = flags;
	if (register_shrinker(shrinker, "%s", name)) {
		kfree(shrinker);
		return NULL;
	}
	return shrinker;
}

static inline void upage_shrinker_destroy(struct shrinker *shrinker)
{
	unregister_shrinker(shrinker);
	kfree(shrinker);
}
#endif

/*
 * Put @item on @lru's list of the memory cgroup and node of the object it
 * is embedded in (6.8 made list_lru_add() take them explicitly).
 */
#ifdef UPAGE_HAVE_LIST_LRU_ADD_OBJ
static inline bool upage_lru_add(struct list_lru *lru, struct list_head *item)
{
	return list_lru_add_obj(lru, item);
}

static inline bool upage_lru_del(struct list_lru *lru, struct list_head *item)
{
	return list_lru_del_obj(lru, item);
}
#else
static inline bool upage_lru_add(struct list_lru *lru, struct list_head *item)
{
	return list_lru_add(lru, item);
}

static inline bool upage_lru_del(struct list_lru *lru, struct list_head *item)
{
	return list_lru_del(lru, item);
}
#endif

/* The lock a fault holds: the VMA's (6.4+) or mmap_lock. */
#ifdef UPAGE_HAVE_RELEASE_FAULT_LOCK
static inline void upage_release_fault_lock(struct vm_fault *vmf)
{
	release_fault_lock(vmf);
}
#else
static inline void upage_release_fault_lock(struct vm_fault *vmf)
{
	mmap_read_unlock(vmf->vma->vm_mm);
}
#endif

#endif /* UPAGE_COMPAT_H */
