// SPDX-License-Identifier: GPL-2.0
/*
 * Read-only views of spaces, for upagectl and for people: the upage lines
 * of /proc/PID/fdinfo/FD, and root's list of every live space in debugfs
 * (upage/spaces). docs/design.md ("Views") gives the formats, which are a
 * contract with upagectl: add lines, never change one.
 *
 * Locks: upage_view_lock is a leaf, held only to step along the list of
 * spaces and to change a reader count, never with another upage lock. A
 * space is counted under space->lock, then space->table_lock (space.c's
 * order), and its VMAs walked under i_mmap_rwsem with no space lock held.
 *
 * upage_view_lock protects the list of live spaces and each space's
 * view_readers. open() adds a space once it is made, release() takes it
 * off before it is torn down, both with no other upage lock held. The
 * debugfs reader holds the lock only to step along the list: to count a
 * space it takes a reader count and drops the lock, and release() waits
 * for that space's readers alone. So no user's long hold of their own
 * space's lock makes the opens and closes of other spaces wait, and a
 * release waits at most for one count of its own space, which nobody
 * else holds any more. The order cannot turn round: nothing that holds a
 * space's lock opens or releases a space (the last fput() of a file runs
 * later, from task work or a workqueue, or from close() itself with no
 * upage lock held).
 *
 * A space's id is space->id, 64 bits from a counter, never reused while
 * the module is loaded (an inode number comes from a 32-bit counter that
 * every pipe and socket shares, and wraps).
 *
 * A view's counts are a snapshot: each space is counted under its own
 * locks, the mappings under i_mmap_rwsem after those are dropped, so a
 * count may be one table change older than the next line.
 */
#include <linux/cred.h>
#include <linux/debugfs.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/pid.h>
#include <linux/rbtree.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/seq_file.h>
#include <linux/uidgid.h>
#include <linux/wait_bit.h>

#include "upage_private.h"

/* Slots counted per hold of table_lock, between two cond_resched(). */
#define UPAGE_VIEW_CHUNK 512
/* VMAs printed per space in debugfs; a last line counts the rest. */
#define UPAGE_VIEW_MAX_MAPS 64

static LIST_HEAD(upage_views);
static DEFINE_MUTEX(upage_view_lock);
static struct dentry *upage_view_dir;

/* What a view says of a space's table (slots, except @resident: frames). */
struct upage_view_counts {
	unsigned long slots;
	unsigned long resident;
	unsigned long evicted;
	unsigned long pinned;
	unsigned long lazy;
	unsigned long tracked;
	unsigned long dirty;
	unsigned long trapped;
};

void upage_view_add(struct upage_space *space)
{
	mutex_lock(&upage_view_lock);
	list_add_tail(&space->view_node, &upage_views);
	mutex_unlock(&upage_view_lock);
}

/*
 * Off the list, once no debugfs reader is looking at the space: a reader
 * counts it with upage_view_lock dropped (upage_view_show()).
 */
void upage_view_del(struct upage_space *space)
{
	mutex_lock(&upage_view_lock);
	while (space->view_readers) {
		mutex_unlock(&upage_view_lock);
		wait_var_event(&space->view_readers,
			       !READ_ONCE(space->view_readers));
		mutex_lock(&upage_view_lock);
	}
	list_del(&space->view_node);
	mutex_unlock(&upage_view_lock);
}

/* Count slots first..end-1 as UPAGE_QUERY would report them. */
static void upage_view_count_chunk(struct upage_space *space, pgoff_t first,
				   pgoff_t end, struct upage_view_counts *c)
{
	pgoff_t i;

	lockdep_assert_held(&space->table_lock);
	for (i = first; i < end; i++) {
		struct upage_slot *slot = &space->slots[i];
		struct upage_frame *frame = slot->frame;

		if (slot->flags & UPAGE_SLOT_F_TRACKED)
			c->tracked++;
		if (upage_slot_dirty(slot))
			c->dirty++;
		if (slot->flags & UPAGE_SLOT_F_TRAPS)
			c->trapped++;
		if (!frame)
			continue;
		if (!frame->page && !frame->reclaimed)
			c->evicted++;
		if (frame->pinned)
			c->pinned++;
		if (frame->lazy)
			c->lazy++;
	}
}

/*
 * Count the table under both space locks: space->lock keeps the table's
 * size and frames' pins still (a resize waits for the walk), table_lock
 * the lazy frames and dirty bits the fault path changes. table_lock is
 * dropped between chunks, so a large table does not hold off the fault
 * path, and the walk may sleep there.
 */
static int upage_view_count(struct upage_space *space,
			    struct upage_view_counts *c)
{
	pgoff_t first, end;

	memset(c, 0, sizeof(*c));
	if (mutex_lock_killable(&space->lock))
		return -EINTR;
	/* Writes still in dirty bits count, as UPAGE_QUERY's (track.c). */
	upage_track_harvest(space, 0, space->nr_pages);
	c->slots = space->nr_pages;
	c->resident = atomic_long_read(&space->nr_resident);
	for (first = 0; first < space->nr_pages; first = end) {
		end = min_t(pgoff_t, space->nr_pages, first + UPAGE_VIEW_CHUNK);
		spin_lock(&space->table_lock);
		upage_view_count_chunk(space, first, end, c);
		spin_unlock(&space->table_lock);
		cond_resched();
	}
	mutex_unlock(&space->lock);
	return 0;
}

/*
 * The VMAs that map a space are the nodes of its mapping's i_mmap tree
 * (the helpers that walk it by range are not exported); under
 * i_mmap_rwsem.
 */
static unsigned long upage_view_nr_vmas(struct address_space *mapping)
{
	struct rb_node *node;
	unsigned long nr = 0;

	lockdep_assert_held(&mapping->i_mmap_rwsem);
	for (node = rb_first_cached(&mapping->i_mmap); node; node = rb_next(node))
		nr++;
	return nr;
}

void upage_view_show_fdinfo(struct seq_file *m, struct file *file)
{
	struct upage_space *space = file->private_data;
	struct address_space *mapping = space->inode->i_mapping;
	struct upage_view_counts c;
	unsigned long nr_vmas;

	if (upage_view_count(space, &c))
		return;
	i_mmap_lock_read(mapping);
	nr_vmas = upage_view_nr_vmas(mapping);
	i_mmap_unlock_read(mapping);

	seq_printf(m, "upage_space:\t%llu\n", space->id);
	seq_printf(m, "upage_owner:\t%u\n",
		   from_kuid_munged(seq_user_ns(m), space->owner));
	seq_printf(m, "upage_slots:\t%lu\n", c.slots);
	seq_printf(m, "upage_resident:\t%lu\n", c.resident);
	seq_printf(m, "upage_evicted:\t%lu\n", c.evicted);
	seq_printf(m, "upage_pinned:\t%lu\n", c.pinned);
	seq_printf(m, "upage_lazy:\t%lu\n", c.lazy);
	seq_printf(m, "upage_tracked:\t%lu\n", c.tracked);
	seq_printf(m, "upage_dirty:\t%lu\n", c.dirty);
	seq_printf(m, "upage_trapped:\t%lu\n", c.trapped);
	seq_printf(m, "upage_mappings:\t%lu\n", nr_vmas);
}

/*
 * The process @mm belongs to, as a PID in the reader's namespace: 0 when
 * it has none there, has exited, or the kernel does not record an mm's
 * owner (it does for the memory controller only). The mm lives as long as
 * its VMA is in i_mmap; its owner is freed after an RCU grace period.
 */
static pid_t upage_view_mm_pid(struct mm_struct *mm)
{
	pid_t pid = 0;
#ifdef CONFIG_MEMCG
	struct task_struct *owner;

	rcu_read_lock();
	owner = rcu_dereference(mm->owner);
	if (owner)
		pid = task_tgid_vnr(owner);
	rcu_read_unlock();
#endif
	return pid;
}

/*
 * One map line. vm_start, vm_end and vm_pgoff of a file VMA change only
 * under i_mmap_rwsem, held here; vm_flags changes under the mm's
 * mmap_lock, which a view does not take, so prot may be a moment old.
 */
static void upage_view_show_vma(struct seq_file *m, struct vm_area_struct *vma)
{
	unsigned long flags = READ_ONCE(vma->vm_flags);

	seq_printf(m, "  map pid %d start 0x%lx end 0x%lx pgoff %lu prot %c%c%c\n",
		   upage_view_mm_pid(vma->vm_mm), vma->vm_start, vma->vm_end,
		   vma->vm_pgoff, flags & VM_READ ? 'r' : '-',
		   flags & VM_WRITE ? 'w' : '-',
		   flags & VM_MAYSHARE ? 's' : 'p');
}

static void upage_view_show_vmas(struct seq_file *m,
				 struct address_space *mapping)
{
	unsigned long shown = 0, nr;
	struct rb_node *node;

	lockdep_assert_held(&mapping->i_mmap_rwsem);
	nr = upage_view_nr_vmas(mapping);
	for (node = rb_first_cached(&mapping->i_mmap);
	     node && shown < UPAGE_VIEW_MAX_MAPS; node = rb_next(node)) {
		upage_view_show_vma(m, rb_entry(node, struct vm_area_struct,
						shared.rb));
		shown++;
	}
	if (nr > shown)
		seq_printf(m, "  map ... more %lu\n", nr - shown);
}

static void *upage_view_start(struct seq_file *m, loff_t *pos)
{
	mutex_lock(&upage_view_lock);
	return seq_list_start(&upage_views, *pos);
}

static void *upage_view_next(struct seq_file *m, void *v, loff_t *pos)
{
	return seq_list_next(v, &upage_views, pos);
}

static void upage_view_stop(struct seq_file *m, void *v)
{
	mutex_unlock(&upage_view_lock);
}

/*
 * One space's block. upage_view_lock is dropped while the space is
 * counted, so that opens and closes of other spaces never wait for this
 * space's lock; the reader count keeps the space on the list, and alive,
 * meanwhile (upage_view_del() waits for it), so the walk goes on from it.
 */
static int upage_view_show(struct seq_file *m, void *v)
{
	struct upage_space *space = list_entry(v, struct upage_space,
					       view_node);
	struct address_space *mapping = space->inode->i_mapping;
	struct upage_view_counts c;
	int ret;

	lockdep_assert_held(&upage_view_lock);
	space->view_readers++;
	mutex_unlock(&upage_view_lock);

	ret = upage_view_count(space, &c);
	if (!ret) {
		/* The count and the lines under one hold: they agree. */
		i_mmap_lock_read(mapping);
		seq_printf(m, "space %llu owner %u slots %lu resident %lu evicted %lu pinned %lu lazy %lu tracked %lu dirty %lu trapped %lu mappings %lu\n",
			   space->id,
			   from_kuid_munged(seq_user_ns(m), space->owner),
			   c.slots, c.resident, c.evicted, c.pinned, c.lazy,
			   c.tracked, c.dirty, c.trapped,
			   upage_view_nr_vmas(mapping));
		upage_view_show_vmas(m, mapping);
		i_mmap_unlock_read(mapping);
	}

	mutex_lock(&upage_view_lock);
	if (!--space->view_readers)
		wake_up_var(&space->view_readers);
	return ret;
}

static const struct seq_operations upage_view_sops = {
	.start = upage_view_start,
	.next = upage_view_next,
	.stop = upage_view_stop,
	.show = upage_view_show,
};
DEFINE_SEQ_ATTRIBUTE(upage_view);

/*
 * debugfs is for debugging: without it (not built, or debugfs=off) the
 * module works as ever, so its errors are not the module's. The
 * debugfs_* calls take an error pointer as parent and do nothing.
 */
void upage_view_init(void)
{
	upage_view_dir = debugfs_create_dir("upage", NULL);
	debugfs_create_file("spaces", 0400, upage_view_dir, NULL,
			    &upage_view_fops);
}

void upage_view_uninit(void)
{
	debugfs_remove_recursive(upage_view_dir);
}
