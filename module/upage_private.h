/* SPDX-License-Identifier: GPL-2.0 */
#ifndef UPAGE_PRIVATE_H
#define UPAGE_PRIVATE_H

#include <linux/atomic.h>
#include <linux/fs.h>
#include <linux/mm_types.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/types.h>

/*
 * A frame: one physical page owned by a space, referenced by one or more
 * slots (aliases). Each referencing slot holds one page reference through
 * the frame, so the page outlives the frame whenever the kernel still maps
 * or pins it.
 *
 * @page and @nr_slots are protected by space->lock (the mutex); @page is
 * also read under space->table_lock. @id is immutable after creation.
 */
struct upage_frame {
	struct page *page;
	unsigned int nr_slots;
	u64 id;
};

/* One slot of the table: protected by space->lock and space->table_lock. */
struct upage_slot {
	struct upage_frame *frame;	/* NULL: a hole */
};

struct upage_counters {
	atomic64_t faults;
	atomic64_t zero_fills;
};

/*
 * A space, one per open() of /dev/upage.
 *
 * @lock (mutex) serialises every change of the table: edits, resize, and
 * the filling of holes. It is never held across copy_{from,to}_user, since
 * a user buffer may lie in this space's own mapping, whose fault takes it.
 *
 * @table_lock (spinlock) protects @slots, @nr_pages and @capacity for
 * readers that cannot take @lock: the fault path, which holds a page lock
 * when it re-checks a slot. Writers hold both.
 *
 * @inode gives the space its own address_space: every VMA of the space is
 * in inode->i_mapping->i_mmap, so unmap_mapping_pages() reaches every
 * process that maps it. @id and @inode are immutable after creation.
 */
struct upage_space {
	struct mutex lock;		/* serialises table changes */
	spinlock_t table_lock;		/* the table, for the fault path */
	struct upage_slot *slots;
	pgoff_t nr_pages;
	pgoff_t capacity;
	u64 next_frame_id;
	struct inode *inode;
	u64 id;
	struct upage_counters stats;
};

/* Module parameters (main.c). */
extern unsigned long upage_max_space_pages;
extern unsigned long upage_max_total_pages;

/* space.c */
int upage_space_init(void);
void upage_space_uninit(void);
struct upage_space *upage_space_create(void);
void upage_space_destroy(struct upage_space *space);
int upage_space_resize(struct upage_space *space, u64 pages, u64 *old_pages);
struct page *upage_space_get_page(struct upage_space *space, pgoff_t idx);
bool upage_space_slot_has_page(struct upage_space *space, pgoff_t idx,
			       struct page *page);

/* fault.c */
int upage_mmap(struct file *file, struct vm_area_struct *vma);

/* ioctl.c */
long upage_ioctl(struct file *file, unsigned int cmd, unsigned long arg);

#endif /* UPAGE_PRIVATE_H */
