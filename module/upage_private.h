/* SPDX-License-Identifier: GPL-2.0 */
#ifndef UPAGE_PRIVATE_H
#define UPAGE_PRIVATE_H

#include <linux/atomic.h>
#include <linux/fs.h>
#include <linux/idr.h>
#include <linux/mm_types.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <linux/upage.h>

/*
 * A frame: the contents one or more slots (aliases) show. It owns one
 * reference to its page, so the page outlives the frame whenever the
 * kernel still maps or pins it. An evicted frame has no page; its contents
 * are in the space's backing store (backing.c).
 *
 * @page changes under space->lock and space->table_lock (NULL: evicted).
 * @nr_slots, @store_off, @stored and @pinned are protected by space->lock.
 * @lazy and @reclaimed change under table_lock with the page locked (a
 * resident frame) or under both space locks (an evicted one), so page
 * lock holders may read them; @used is set by the fault path and cleared
 * by the shrinker, without locks (it is a hint).
 * @claimed changes under both space locks, @parked under table_lock, and
 * both are read under table_lock (see "Claims" in space.c). @written
 * (the space's track_gen at the frame's last recorded write, track.c) is
 * set under table_lock; @marked (track.c), @busy (the pin check) and
 * @edit_idx and @edit_taken (edit.c, while an edit has the frame claimed)
 * are scratch under space->lock. @dirty and @dbit (track.c) are protected
 * by space->lock; whether the store lacks the page's contents is
 * upage_frame_dirty().
 * @wb_page (set while the page is written to the store with no lock
 * held, backing.c), @dead (the frame lost its last slot meanwhile) and
 * @wb_error are protected by space->lock; during the write the writer
 * alone reads @wb_page and @store_off and sets @wb_error. @out_seq
 * (space->lock) moves on whenever the frame loses its page or its stored
 * contents, so that a page-in that read the store with no lock held
 * knows whether what it read is still the frame's (backing.c). @id is
 * immutable. Frames are reached through the slot table under either
 * space lock.
 */
struct upage_frame {
	struct page *page;
	unsigned int nr_slots;
	unsigned int parked;	/* page_mkwrite callers waiting out the claim */
	bool claimed;		/* an edit or eviction holds its page lock */
	bool stored;		/* the store has the contents, unless dirty */
	bool pinned;		/* UPAGE_RES_PIN: charged to space->pin_user */
	bool lazy;		/* UPAGE_RES_LAZY_FREE, not written since */
	bool reclaimed;		/* lazy and dropped: zeros until written */
	bool used;		/* faulted in since the shrinker last looked */
	bool marked;		/* track.c: an alias of an armed slot */
	bool dead;		/* no slot left, freed when written out */
	bool busy;		/* upage_frames_drain(): unexplained references */
	bool dirty;		/* written since the store got it, beside PG_dirty */
	bool dbit;		/* track.c: armed by dirty bits, PG_dirty is news */
	unsigned int edit_idx;	/* edit.c: its entry in the batch's log */
	u32 edit_taken;		/* edit.c: the first op that took it, or U32_MAX */
	int wb_error;		/* backing.c: how its store write went */
	u64 out_seq;		/* counts the times its page went */
	struct page *wb_page;	/* backing.c: being written out, with a ref */
	long store_off;		/* page of the store, -1: none */
	u64 written;
	u64 id;
};

/* Bits of upage_slot.flags. */
#define UPAGE_SLOT_F_COW	BIT(0)	/* copy-on-write alias of its frame */
#define UPAGE_SLOT_F_EDITED	BIT(1)	/* in the running edit's undo log */
#define UPAGE_SLOT_F_TRACKED	BIT(2)	/* UPAGE_TRACK_START */
#define UPAGE_SLOT_F_DIRTY	BIT(3)	/* tracked, and given another frame */
#define UPAGE_SLOT_F_TRAP_READ	BIT(4)	/* UPAGE_TRAP_READ: every access */
#define UPAGE_SLOT_F_TRAP_WRITE	BIT(5)	/* UPAGE_TRAP_WRITE */
#define UPAGE_SLOT_F_TRAPS	(UPAGE_SLOT_F_TRAP_READ | UPAGE_SLOT_F_TRAP_WRITE)

/*
 * One slot of the table: protected by space->lock and space->table_lock
 * (writers hold both, but for a fault's fill of a hole beside an edit,
 * which holds table_lock alone: see struct upage_space). @prot is an
 * enum upage_prot. @armed is the space's track_gen when a tracked slot
 * was last armed (track.c).
 */
struct upage_slot {
	struct upage_frame *frame;	/* NULL: a hole */
	u32 prot;
	u32 flags;
	u64 armed;
};

struct upage_counters {
	atomic64_t faults;
	atomic64_t zero_fills;
	atomic64_t cow_breaks;
	atomic64_t edits;
	atomic64_t batches;
	atomic64_t evictions;
	atomic64_t page_ins;
	atomic64_t bytes_written;
	atomic64_t bytes_read;
	atomic64_t reclaims;
	atomic64_t shrinker_evictions;
	atomic64_t tracked_writes;
	atomic64_t traps;
	atomic64_t traps_resolved;
	atomic64_t traps_timed_out;
	atomic64_t populated;
};

/*
 * A space, one per open() of /dev/upage.
 *
 * @lock (mutex) serialises every change of the table: edits, resize, the
 * filling of holes and copy-on-write breaks. The one exception is a hole
 * filled by a fault beside an edit whose ops do not reach it (edit.c,
 * "Fills beside a batch"): @edit_ops and @edit_nr_ops, the ops of the
 * edit that holds @lock, are set and cleared by it under @table_lock, and
 * the counters such a fill changes (@nr_frames, @next_frame_id and
 * @nr_resident) are atomic. @lock is never held across
 * copy_{from,to}_user, since a user buffer may lie in this space's own
 * mapping, whose fault takes it.
 *
 * @table_lock (spinlock) protects @slots, @nr_pages and @capacity for
 * readers that cannot take @lock: the fault path, which holds a page lock
 * when it re-checks a slot. Writers hold both (but for a fill beside an
 * edit, above).
 *
 * @inode gives the space its own address_space: every VMA of the space is
 * in inode->i_mapping->i_mmap, so unmap_mapping_pages() reaches every
 * process that maps it. @id and @inode are immutable after creation.
 *
 * @store (the backing store: NULL until the first eviction, or the file
 * set by UPAGE_STORE) is set under @lock and @table_lock, and changed
 * again only under @punch_lock too;
 * @store_base and @store_ida under @punch_lock and @lock (the ida has its
 * own lock for allocations and frees); @store_user and @nr_io (store
 * writes in flight, backing.c) are protected by @lock, and so are
 * @pin_user (charged for the pinned frames, while there are any),
 * @nr_pinned and @edit_seq (counts committed edits). @punch_list (store
 * pages to punch, store.c) is protected by @table_lock.
 *
 * @claim_seq (under table_lock) counts the ends of claims; faults that
 * found a claimed frame sleep on @claim_wq until it moves.
 *
 * For the shrinker (reclaim.c): @nr_resident (frames with a page) is
 * atomic (above), @nr_lazy (resident lazy frames) under @table_lock; both are
 * read without locks. @reclaim (UPAGE_STORE_RECLAIM), @scan_next and
 * @lazy_next (where the reclaim work and the shrinker go on) are protected
 * by @lock; @node (on reclaim.c's list_lru) by the list's lock;
 * @shrink_ref counts the shrinker scans that took the space.
 * @reclaim_target counts the frames the shrinker asked @reclaim_work to
 * page out. @memcg (the opener's memory cgroup, referenced; store pages
 * are charged to it) and @user (the opener's share of max_total_pages,
 * space.c) are immutable after creation.
 *
 * @track_gen (track.c) is the write generation, under @table_lock;
 * @dbit_off (track.c) is set, never cleared, by mmap() (WRITE_ONCE).
 *
 * Traps (trap.c): @trap_queue (events not read yet), @trap_read (read,
 * not answered), @trap_tickets, @trap_seq, @trap_owner (the handler's
 * files) and @trap_orphaned are protected by @table_lock. Faulting
 * threads sleep on @trap_wq, readers on @trap_poll. @trap_kernel (the
 * opener had CAP_SYS_PTRACE) is immutable after creation.
 */
struct upage_user;

struct upage_space {
	struct mutex lock;		/* serialises table changes */
	spinlock_t table_lock;		/* the table, for the fault path */
	struct upage_slot *slots;
	pgoff_t nr_pages;
	pgoff_t capacity;
	atomic_long_t nr_frames;
	atomic64_t next_frame_id;
	struct inode *inode;
	struct file *store;
	loff_t store_base;
	bool store_user;	/* @store is the program's, not our shmem */
	struct ida store_ida;
	unsigned long nr_io;
	unsigned long edit_seq;
	const struct upage_edit_op *edit_ops;	/* the edit holding @lock */
	u32 edit_nr_ops;
	struct list_head punch_list;
	struct work_struct punch_work;
	struct mutex punch_lock;	/* the punch work and store changes (above) */
	struct mutex pin_lock;		/* one UPAGE_RES_PIN at a time (backing.c) */
	struct user_struct *pin_user;
	unsigned long nr_pinned;
	unsigned long claim_seq;
	wait_queue_head_t claim_wq;
	atomic_long_t nr_resident;
	unsigned long nr_lazy;
	bool reclaim;
	pgoff_t scan_next;
	pgoff_t lazy_next;
	atomic_long_t reclaim_target;
	struct work_struct reclaim_work;
	struct list_head node;
	atomic_t shrink_ref;
	struct mem_cgroup *memcg;
	struct upage_user *user;
	kuid_t owner;
	struct list_head view_node;
	unsigned int view_readers;
	u64 track_gen;
	bool dbit_off;		/* track.c: mapped private or read-only once */
	struct list_head trap_queue;
	struct list_head trap_read;
	struct list_head trap_tickets;
	wait_queue_head_t trap_wq;
	wait_queue_head_t trap_poll;
	unsigned long trap_seq;
	unsigned int trap_timeout_ms;
	bool trap_orphaned;
	bool trap_kernel;	/* kernel-mode faults may wait on a trap */
	fl_owner_t trap_owner;
	u64 id;
	struct upage_counters stats;
};

/* What the fault path reads of a slot, under table_lock. */
struct upage_slot_state {
	struct page *page;	/* with a reference; NULL: hole or evicted */
	unsigned long claim_seq;
	u32 prot;
	u32 trap;		/* UPAGE_SLOT_F_TRAP_* */
	unsigned long trap_seq;
	bool cow;
	bool evicted;
	bool beyond_end;
	bool locked;		/* @page is locked (trylock under table_lock) */
	bool claimed;		/* wait for the claim to end, then look again */
	bool recorded;		/* .page_mkwrite: the write was recorded */
};

/*
 * How long a claimed frame's unexplained page references may take to
 * drain before it counts as pinned (jiffies), and how often a busy edit
 * or eviction is tried, a jiffy apart, before it returns -EBUSY.
 */
#define UPAGE_DRAIN_TRIES 4
#define UPAGE_BUSY_TRIES 3

/* Module parameters (main.c). */
extern unsigned long upage_max_space_pages;
extern unsigned long upage_max_total_pages;
extern unsigned int upage_unmap_gap_frames;
extern unsigned long upage_max_user_pages;

/* space.c */
int upage_space_init(void);
void upage_space_uninit(void);
struct upage_space *upage_space_create(void);
void upage_space_destroy(struct upage_space *space);
int upage_space_resize(struct upage_space *space, u64 pages, u64 *old_pages);
struct page *upage_alloc_frame_page(struct upage_space *space);
struct page *upage_alloc_fault_page(struct upage_space *space);
struct page *upage_alloc_copy_page(struct upage_space *space);
void upage_free_frame_page(struct upage_space *space, struct page *page);
struct upage_frame *upage_frame_new(struct upage_space *space,
				    struct page *page);
struct upage_frame *upage_frame_alloc(void);
void upage_frame_unused(struct upage_frame *frame);
struct upage_frame *upage_frame_init(struct upage_space *space,
				     struct upage_frame *frame,
				     struct page *page);
void upage_frame_get(struct upage_frame *frame);
void upage_frame_put(struct upage_space *space, struct upage_frame *frame);
void upage_frame_free(struct upage_space *space, struct upage_frame *frame);
void upage_space_lookup(struct upage_space *space, pgoff_t idx,
			struct upage_slot_state *state);
bool upage_space_recheck(struct upage_space *space, pgoff_t idx,
			 struct page *page, struct upage_slot_state *state,
			 bool mkwrite);
int upage_space_fill_hole(struct upage_space *space, pgoff_t idx);
int upage_space_fill_hole_locked(struct upage_space *space, pgoff_t idx);
int upage_space_break_cow(struct upage_space *space, pgoff_t idx,
			  struct page *old);
void upage_space_unmap(struct upage_space *space, pgoff_t first,
		       pgoff_t nr);
bool upage_space_range_ok(struct upage_space *space, u64 first, u64 n);

/* Whether slots first..first+n-1 exist; under space->lock or table_lock. */
static inline bool upage_slots_exist(struct upage_space *space, u64 first,
				     u64 n)
{
	return first < space->nr_pages && n <= space->nr_pages - first;
}

int upage_space_query(struct upage_space *space, u64 first, u64 n,
		      bool show_pfn, struct upage_slot_info *info);

void upage_frame_claim(struct upage_space *space, struct upage_frame *frame);
bool upage_frame_try_claim(struct upage_space *space,
			   struct upage_frame *frame);
void upage_frame_set_page(struct upage_space *space,
			  struct upage_frame *frame, struct page *page);
void upage_space_written(struct upage_space *space, pgoff_t idx,
			 struct page *page);
int upage_frames_drain(struct upage_space *space, struct upage_frame **frames,
		       size_t nr, bool (*want)(struct upage_frame *),
		       bool *drained);
bool upage_frame_pinned_now(struct upage_space *space,
			    struct upage_frame *frame);
void upage_space_end_claims(struct upage_space *space,
			    struct upage_frame **frames, size_t nr);
int upage_space_wait_claim(struct upage_space *space, unsigned long seq);
void upage_space_unpark(struct upage_space *space, struct upage_frame *frame,
			unsigned long seq);
int upage_space_mkwrite_lock(struct upage_space *space, pgoff_t idx,
			     struct page *page, unsigned long *seq,
			     struct upage_frame **parked,
			     struct upage_slot_state *state);

/* backing.c */
int upage_space_page_in(struct upage_space *space, pgoff_t idx);
int upage_backing_evict(struct upage_space *space, u64 first, u64 n,
			u64 *done);
int upage_backing_prefetch(struct upage_space *space, u64 first, u64 n,
			   u64 *done);
int upage_backing_pin(struct upage_space *space, u64 first, u64 n,
		      u64 *done);
int upage_backing_unpin(struct upage_space *space, u64 first, u64 n,
			u64 *done);
void upage_backing_release(struct upage_space *space,
			   struct upage_frame *frame);
int upage_backing_evict_claimed(struct upage_space *space,
				struct upage_frame **frames, size_t nr,
				u64 first, u64 n, bool wide, bool reclaim,
				u64 *done);
void upage_frame_drop(struct upage_space *space, struct upage_frame *frame);
void upage_backing_forget(struct upage_space *space,
			  struct upage_frame *frame);

/* store.c */
void upage_store_init(struct upage_space *space);
void upage_store_destroy(struct upage_space *space);
void upage_store_punch(struct upage_space *space);
int upage_store_open(struct upage_space *space);
int upage_store_alloc(struct upage_space *space, struct upage_frame *frame);
int upage_store_write(struct upage_space *space, struct file *store,
		      loff_t base, long off, struct page *page);
int upage_store_write_own(struct upage_space *space, struct upage_frame *frame,
			  struct page *page, bool reclaim);
int upage_store_mount(void);
void upage_store_unmount(void);
int upage_store_read_at(struct upage_space *space, struct file *store,
			bool user, loff_t base, long off, struct page *page);
void upage_store_release(struct upage_space *space,
			 struct upage_frame *frame);
int upage_backing_set_store(struct upage_space *space, int fd, u64 offset,
			    u32 flags);

/* track.c */
int upage_track(struct upage_space *space, u32 op, u64 first, u64 n);
int upage_dirty(struct upage_space *space, u64 first, u64 n, bool clear,
		unsigned long *bitmap, u64 *nr_dirty);
void upage_track_undo_clear(struct upage_space *space, u64 first, u64 n,
			    const unsigned long *bitmap);
bool upage_slot_dirty(struct upage_slot *slot);
int upage_track_harvest(struct upage_space *space, u64 first, u64 n);
bool upage_frame_dirty(struct upage_frame *frame);
void upage_frame_clear_dirty(struct upage_space *space,
			     struct upage_frame *frame);
void upage_track_mapped(struct upage_space *space, vm_flags_t flags);
void upage_track_disarm(struct upage_space *space, struct upage_frame *frame);
void upage_space_fence(struct upage_space *space, u64 first, u64 n);

/* trap.c: how a thread's wait on a trap ended */
enum {
	UPAGE_WAIT_PENDING,
	UPAGE_WAIT_PASS,
	UPAGE_WAIT_SIGBUS,
	UPAGE_WAIT_WRITE,	/* .page_mkwrite sent a trapped write back */
};

void upage_trap_init(struct upage_space *space);
void upage_trap_destroy(struct upage_space *space);
bool upage_trap_catches(u32 flags, u32 access);
bool upage_trap_has_ticket(struct upage_space *space, pgoff_t idx);
int upage_trap_ticket(struct upage_space *space, pgoff_t idx, bool keep,
		      bool shared, unsigned long *seq);
vm_fault_t upage_trap_fault(struct vm_fault *vmf, u32 access);
bool upage_trap_mkwrite_pass(struct upage_space *space, pgoff_t idx,
			     unsigned long trap_seq);
void upage_fault_want_write(struct upage_space *space, pgoff_t idx);
int upage_trap_set(struct upage_space *space, u64 first, u64 n, u32 access,
		   u32 flags, u32 timeout_ms);
int upage_trap_resolve(struct upage_space *space, u32 action, u32 flags,
		       u64 first, u64 n, u64 src, u64 *woken);
ssize_t upage_trap_read(struct file *file, char __user *buf, size_t count,
			loff_t *ppos);
__poll_t upage_trap_poll(struct file *file, struct poll_table_struct *pt);
void upage_trap_flush(struct upage_space *space, fl_owner_t id);
void upage_trap_cut(struct upage_space *space, u64 first);

/* reclaim.c */
int upage_reclaim_init(void);
void upage_reclaim_uninit(void);
struct list_lru *upage_reclaim_lru(void);
void upage_reclaim_add(struct upage_space *space);
void upage_reclaim_del(struct upage_space *space);
int upage_lazy_free(struct upage_space *space, u64 first, u64 n, u64 *done);

/* fault.c */
int upage_mmap(struct file *file, struct vm_area_struct *vma);
int upage_addr_to_slot(struct upage_space *space, unsigned long addr,
		       u64 n, u64 *slot);

/* edit.c */
int upage_edit_apply(struct upage_space *space, struct upage_edit_op *ops,
		     u32 count, u32 flags, u32 *error_index);
bool upage_edit_reaches(const struct upage_edit_op *ops, u32 count,
			pgoff_t idx);

/* populate.c */
unsigned long upage_populate_slots(struct upage_space *space,
				   const pgoff_t *idx, size_t n);
unsigned long upage_populate_range(struct upage_space *space, u64 first,
				   u64 n);
unsigned long upage_populate_remote(struct upage_space *space,
				    struct mm_struct *mm, u64 first, u64 n);

/* view.c */
struct seq_file;
void upage_view_init(void);
void upage_view_uninit(void);
void upage_view_add(struct upage_space *space);
void upage_view_del(struct upage_space *space);
void upage_view_show_fdinfo(struct seq_file *m, struct file *file);

/* ioctl.c */
long upage_ioctl(struct file *file, unsigned int cmd, unsigned long arg);

#endif /* UPAGE_PRIVATE_H */
