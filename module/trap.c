// SPDX-License-Identifier: GPL-2.0
/*
 * Traps: UPAGE_TRAP, UPAGE_RESOLVE, and the events read() from the space.
 *
 * A fault on a trapped slot queues an event (one per slot while threads
 * wait on it) and sleeps. It never sleeps holding the mmap lock: it takes
 * a reference to the file (so the space outlives the wait), drops the
 * lock and returns VM_FAULT_RETRY once woken, as userfaultfd does. A
 * fault that may not drop the lock gets SIGBUS without waiting.
 *
 * The retried fault must know how its wait ended, and only the thread
 * that waited may act on it: a resolve without UPAGE_RESOLVE_LIFT leaves
 * the trap in place, yet the waiter must complete its access, and a
 * SIGBUS answer must reach the waiter, not another thread. So a woken
 * waiter leaves a *ticket* (its struct upage_trap_waiter, keyed by its
 * task, at most one per task) that its retried fault takes at the start
 * of upage_vm_fault(). A pass is valid only while the slot's traps are
 * the ones it was given under (space->trap_seq moves on each UPAGE_TRAP
 * that sets traps). A shared write passes twice, in .fault and in
 * .page_mkwrite, so .fault leaves the ticket for .page_mkwrite to take.
 *
 * Trap state (the event lists, tickets, trap_seq, the handler) is
 * protected by space->table_lock, which the fault path already takes; the
 * slots' trap bits change under both space locks, like the rest of a
 * slot. Setting a trap fences faults in flight (track.c) before it unmaps
 * the slots, so no PTE installed by a fault that missed the trap
 * survives.
 *
 * The handler is the process (its files_struct) that last read() or
 * poll()ed the space. Its .flush (a close of any of its descriptors of the
 * space, or its exit) orphans the space's traps: waiters and new trapped
 * faults get SIGBUS until some process reads or polls again.
 */
#include <linux/file.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/pid.h>
#include <linux/poll.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>

#include "upage_private.h"
#include "upage_trace.h"

/* One slot's waiting episode: the event, and the threads waiting on it. */
struct upage_trap_ev {
	struct list_head node;		/* space->trap_queue or ->trap_read */
	struct list_head waiters;	/* struct upage_trap_waiter.node */
	pgoff_t slot;
	unsigned long address;
	u32 access;
	struct pid *pid;
};

/* A thread waiting on an event, then its ticket. */
struct upage_trap_waiter {
	struct list_head node;		/* ev->waiters, then ->trap_tickets */
	struct upage_trap_ev *ev;	/* while pending */
	struct wait_queue_entry wait;	/* on space->trap_wq, while waiting */
	struct task_struct *task;	/* a reference, while a ticket */
	struct mm_struct *mm;		/* whose access waits (no reference) */
	pgoff_t slot;
	int result;
	bool write;			/* waited for a write access */
	unsigned long seq;		/* trap_seq when answered */
};

void upage_trap_init(struct upage_space *space)
{
	INIT_LIST_HEAD(&space->trap_queue);
	INIT_LIST_HEAD(&space->trap_read);
	INIT_LIST_HEAD(&space->trap_tickets);
	init_waitqueue_head(&space->trap_wq);
	init_waitqueue_head(&space->trap_poll);
}

static void upage_trap_ev_free(struct upage_trap_ev *ev)
{
	put_pid(ev->pid);
	kfree(ev);
}

static void upage_trap_ticket_free(struct upage_trap_waiter *w)
{
	if (w->task)
		put_task_struct(w->task);
	kfree(w);
}

/* The space dies: no thread waits (each holds the file), tickets remain. */
void upage_trap_destroy(struct upage_space *space)
{
	struct upage_trap_waiter *w, *wn;
	struct upage_trap_ev *ev, *en;

	list_for_each_entry_safe(w, wn, &space->trap_tickets, node)
		upage_trap_ticket_free(w);
	list_splice_init(&space->trap_read, &space->trap_queue);
	list_for_each_entry_safe(ev, en, &space->trap_queue, node) {
		WARN_ON_ONCE(!list_empty(&ev->waiters));
		upage_trap_ev_free(ev);
	}
}

/*
 * Answer every thread waiting on @ev with @result and drop the event;
 * returns how many there were. Under table_lock; the caller frees the
 * event (on @dead) after unlocking and wakes space->trap_wq, where only
 * the threads answered wake (upage_trap_wake()).
 */
static unsigned int upage_trap_answer(struct upage_space *space,
				      struct upage_trap_ev *ev, int result,
				      struct list_head *dead)
{
	struct upage_trap_waiter *w, *wn;
	unsigned int nr = 0;

	lockdep_assert_held(&space->table_lock);
	list_for_each_entry_safe(w, wn, &ev->waiters, node) {
		list_del_init(&w->node);
		w->ev = NULL;
		w->seq = space->trap_seq;
		WRITE_ONCE(w->result, result);
		nr++;
	}
	list_move(&ev->node, dead);
	return nr;
}

/*
 * Answer the waiters of slots first..first+n-1: all of them with @all,
 * else those whose access the slot's traps no longer catch.
 */
static unsigned int upage_trap_answer_range(struct upage_space *space,
					    u64 first, u64 n, int result,
					    bool all, struct list_head *dead)
{
	struct list_head *lists[] = { &space->trap_queue, &space->trap_read };
	struct upage_trap_ev *ev, *en;
	unsigned int i, nr = 0;

	for (i = 0; i < ARRAY_SIZE(lists); i++) {
		list_for_each_entry_safe(ev, en, lists[i], node) {
			if (ev->slot < first || ev->slot - first >= n)
				continue;
			if (!all && upage_trap_catches(space->slots[ev->slot].flags,
						       ev->access))
				continue;
			nr += upage_trap_answer(space, ev, result, dead);
		}
	}
	return nr;
}

static void upage_trap_free_dead(struct list_head *dead)
{
	struct upage_trap_ev *ev, *en;

	list_for_each_entry_safe(ev, en, dead, node)
		upage_trap_ev_free(ev);
}

static void upage_trap_free_tickets(struct list_head *tickets)
{
	struct upage_trap_waiter *w, *wn;

	list_for_each_entry_safe(w, wn, tickets, node)
		upage_trap_ticket_free(w);
}

/* The pending event of slot @idx, if any; under table_lock. */
static struct upage_trap_ev *upage_trap_find(struct upage_space *space,
					     pgoff_t idx)
{
	struct upage_trap_ev *ev;

	list_for_each_entry(ev, &space->trap_queue, node) {
		if (ev->slot == idx)
			return ev;
	}
	list_for_each_entry(ev, &space->trap_read, node) {
		if (ev->slot == idx)
			return ev;
	}
	return NULL;
}

/* Whether slot flags @flags trap an access of kind @access. */
bool upage_trap_catches(u32 flags, u32 access)
{
	if (flags & UPAGE_SLOT_F_TRAP_READ)
		return true;
	return (flags & UPAGE_SLOT_F_TRAP_WRITE) && access == UPAGE_TRAP_WRITE;
}

/*
 * The start of a fault: take the current task's ticket for slot @idx, if
 * it has one. Returns UPAGE_WAIT_SIGBUS, UPAGE_WAIT_PASS (*seq: the
 * trap_seq it is valid for), UPAGE_WAIT_WRITE (take this fault for the
 * write .page_mkwrite sent back) or UPAGE_WAIT_PENDING (no ticket). With
 * @keep, a pass stays for the .page_mkwrite that follows; so does a pass
 * given to a write, on a @shared mapping.
 */
/* The current task's ticket for slot @idx, or NULL; under table_lock. */
static struct upage_trap_waiter *upage_trap_my_ticket(struct upage_space *space,
						      pgoff_t idx)
{
	struct upage_trap_waiter *w;

	lockdep_assert_held(&space->table_lock);
	list_for_each_entry(w, &space->trap_tickets, node) {
		if (w->task == current && w->slot == idx)
			return w;
	}
	return NULL;
}

int upage_trap_ticket(struct upage_space *space, pgoff_t idx, bool keep,
		      bool shared, unsigned long *seq)
{
	struct upage_trap_waiter *found;
	int result = UPAGE_WAIT_PENDING;

	if (list_empty_careful(&space->trap_tickets))
		return result;
	spin_lock(&space->table_lock);
	found = upage_trap_my_ticket(space, idx);
	if (found) {
		result = found->result;
		*seq = found->seq;
		/*
		 * A pass given to a write stays for .page_mkwrite, also when
		 * the retried access faults as a read first (the emulators
		 * split an atomic read-modify-write so).
		 */
		if ((keep || (found->write && shared)) &&
		    result == UPAGE_WAIT_PASS)
			found = NULL;
		else
			list_del(&found->node);
	}
	spin_unlock(&space->table_lock);
	if (found)
		upage_trap_ticket_free(found);
	return result;
}

/*
 * Whether the current task holds a ticket for slot @idx: a populating
 * fault of its own (populate.c) must not take it.
 */
bool upage_trap_has_ticket(struct upage_space *space, pgoff_t idx)
{
	bool found;

	if (list_empty_careful(&space->trap_tickets))
		return false;
	spin_lock(&space->table_lock);
	found = upage_trap_my_ticket(space, idx);
	spin_unlock(&space->table_lock);
	return found;
}

/* Leave @w as the current task's ticket; drop its older one. */
static void upage_trap_leave_ticket(struct upage_space *space,
				    struct upage_trap_waiter *w,
				    struct list_head *old)
{
	struct upage_trap_waiter *t, *tn;

	lockdep_assert_held(&space->table_lock);
	list_for_each_entry_safe(t, tn, &space->trap_tickets, node) {
		/* Also the tickets of threads that died before their retry. */
		if (t->task == current || (t->task->flags & PF_EXITING))
			list_move(&t->node, old);
	}
	get_task_struct(current);
	w->task = current;
	list_add(&w->node, &space->trap_tickets);
}

/*
 * The wake function of a waiting thread's entry on space->trap_wq: every
 * answer wakes the whole queue, and only the threads whose wait has an
 * answer wake (as userfaultfd's waiters do); the others sleep on.
 */
static int upage_trap_wake(struct wait_queue_entry *wait, unsigned int mode,
			   int sync, void *key)
{
	struct upage_trap_waiter *w = container_of(wait, struct upage_trap_waiter,
						   wait);

	if (!READ_ONCE(w->result))
		return 0;
	return default_wake_function(wait, mode, sync, key);
}

/*
 * Sleep in @state until @w is answered, a signal @state lets in comes,
 * or @timeout (jiffies) passes; whether it passed.
 */
static bool upage_trap_sleep(struct upage_space *space,
			     struct upage_trap_waiter *w, unsigned int state,
			     long timeout)
{
	bool timed_out = false;

	init_wait_entry(&w->wait, 0);
	w->wait.func = upage_trap_wake;
	for (;;) {
		prepare_to_wait(&space->trap_wq, &w->wait, state);
		if (READ_ONCE(w->result) || signal_pending_state(state, current))
			break;
		if (!timeout) {
			timed_out = true;
			break;
		}
		timeout = schedule_timeout(timeout);
	}
	finish_wait(&space->trap_wq, &w->wait);
	return timed_out && !READ_ONCE(w->result);
}

/*
 * How a trapped fault sleeps. A kernel-mode fault sleeps killably even
 * where the fault would allow a signal to interrupt it: x86 retries such
 * a fault at once unless the signal is fatal, so an interruptible wait
 * would end, queue a new event and wait again, for as long as the signal
 * stays pending (a handler without SA_RESTART), without ever timing out.
 */
static unsigned int upage_trap_sleep_state(struct vm_fault *vmf)
{
	if ((vmf->flags & FAULT_FLAG_INTERRUPTIBLE) &&
	    (vmf->flags & FAULT_FLAG_USER))
		return TASK_INTERRUPTIBLE;
	if (vmf->flags & FAULT_FLAG_KILLABLE)
		return TASK_KILLABLE;
	return TASK_UNINTERRUPTIBLE;
}

/*
 * A fault of kind @access on trapped slot vmf->pgoff: queue or join its
 * event and wait. Returns 0 if the slot is no longer trapped (the caller
 * looks again), else what the fault returns: VM_FAULT_RETRY with the mmap
 * lock dropped after the wait, or an error without waiting.
 */
vm_fault_t upage_trap_fault(struct vm_fault *vmf, u32 access)
{
	struct upage_space *space = vmf->vma->vm_file->private_data;
	struct upage_trap_waiter *w;
	struct upage_trap_ev *ev, *new_ev;
	unsigned long timeout, ms;
	LIST_HEAD(dead);
	LIST_HEAD(old);
	struct file *file;
	bool queued = false;
	int result;
	bool timed_out;

	/* Cannot drop the lock: no wait (get_user_pages without one). */
	if (!(vmf->flags & FAULT_FLAG_ALLOW_RETRY))
		return VM_FAULT_SIGBUS;
	/*
	 * A kernel-mode access (copy_{to,from}_user of a system call,
	 * get_user_pages) that waited here would hold the kernel in the
	 * middle of the call for as long as the handler likes: the classic
	 * tool for widening a kernel race window. Only a space opened with
	 * CAP_SYS_PTRACE lets it wait, as userfaultfd without
	 * UFFD_USER_MODE_ONLY requires; otherwise it fails at once.
	 */
	if (!(vmf->flags & FAULT_FLAG_USER) && !space->trap_kernel)
		return VM_FAULT_SIGBUS;
	/*
	 * A core dump (get_dump_page()) or an exiting task: the handler may
	 * be this very process, which answers nothing until the dump is
	 * done. userfaultfd refuses these the same way.
	 */
	if (current->flags & (PF_EXITING | PF_DUMPCORE))
		return VM_FAULT_SIGBUS;
	if (vmf->flags & FAULT_FLAG_RETRY_NOWAIT)
		return VM_FAULT_RETRY;

	w = kzalloc(sizeof(*w), GFP_KERNEL_ACCOUNT);
	new_ev = kzalloc(sizeof(*new_ev), GFP_KERNEL_ACCOUNT);
	if (!w || !new_ev) {
		kfree(w);
		kfree(new_ev);
		return VM_FAULT_OOM;
	}

	spin_lock(&space->table_lock);
	if (vmf->pgoff >= space->nr_pages ||
	    !upage_trap_catches(space->slots[vmf->pgoff].flags, access)) {
		spin_unlock(&space->table_lock);
		kfree(w);
		kfree(new_ev);
		return 0;
	}
	if (space->trap_orphaned) {
		spin_unlock(&space->table_lock);
		kfree(w);
		kfree(new_ev);
		atomic64_inc(&space->stats.traps_timed_out);
		return VM_FAULT_SIGBUS;
	}
	ev = upage_trap_find(space, vmf->pgoff);
	if (!ev) {
		ev = new_ev;
		new_ev = NULL;
		INIT_LIST_HEAD(&ev->waiters);
		ev->slot = vmf->pgoff;
		ev->address = vmf->real_address;
		ev->access = access;
		ev->pid = get_pid(task_pid(current));
		list_add_tail(&ev->node, &space->trap_queue);
		queued = true;
	}
	w->ev = ev;
	w->mm = vmf->vma->vm_mm;
	w->slot = vmf->pgoff;
	w->write = access == UPAGE_TRAP_WRITE;
	list_add_tail(&w->node, &ev->waiters);
	spin_unlock(&space->table_lock);
	kfree(new_ev);
	/* Before the handler hears of it, so that it comes first in a trace. */
	trace_upage_trap(space, vmf->pgoff, access == UPAGE_TRAP_WRITE,
			 current->pid, queued);
	if (queued) {
		atomic64_inc(&space->stats.traps);
		wake_up_interruptible_poll(&space->trap_poll, EPOLLIN | EPOLLRDNORM);
	}

	/* The space must outlive the wait; the VMA may not. */
	file = get_file(vmf->vma->vm_file);
	upage_release_fault_lock(vmf);

	ms = READ_ONCE(space->trap_timeout_ms);
	timeout = ms ? msecs_to_jiffies(ms) : MAX_SCHEDULE_TIMEOUT;
	timed_out = upage_trap_sleep(space, w, upage_trap_sleep_state(vmf),
				     timeout);

	spin_lock(&space->table_lock);
	result = w->result;
	if (result == UPAGE_WAIT_PENDING) {
		/* Timed out or interrupted: leave the event. */
		ev = w->ev;
		list_del(&w->node);
		if (list_empty(&ev->waiters))
			list_move(&ev->node, &dead);
		if (timed_out) {
			result = UPAGE_WAIT_SIGBUS;
			w->result = result;
			w->seq = space->trap_seq;
			atomic64_inc(&space->stats.traps_timed_out);
		}
	}
	/*
	 * A signal: the access is made again after the handler, and faults
	 * afresh. A fatal one: nothing to come back for.
	 */
	if (result != UPAGE_WAIT_PENDING && !fatal_signal_pending(current)) {
		upage_trap_leave_ticket(space, w, &old);
		w = NULL;
	}
	spin_unlock(&space->table_lock);

	kfree(w);
	upage_trap_free_dead(&dead);
	upage_trap_free_tickets(&old);
	fput(file);
	return VM_FAULT_RETRY;
}

/*
 * .page_mkwrite on a slot that traps writes: may the write go on? Only
 * with the pass its .fault kept for it (see above).
 */
bool upage_trap_mkwrite_pass(struct upage_space *space, pgoff_t idx,
			     unsigned long trap_seq)
{
	unsigned long seq;

	return upage_trap_ticket(space, idx, false, false, &seq) ==
	       UPAGE_WAIT_PASS &&
	       seq == trap_seq;
}

/*
 * .page_mkwrite found a write it cannot complete (a trapped write, which
 * must wait; a copy-on-write alias, which needs space->lock) and sends it
 * back to .fault (it unmaps the slot and returns VM_FAULT_NOPAGE). The
 * access is retried, and should fault as a write; but an emulator may
 * retry an atomic read-modify-write as a read first, which maps the page
 * read-only again, and .page_mkwrite would send it back again, for ever.
 * So the task's next fault on the slot is taken as the write (a ticket).
 * Without memory for the ticket, the access just retries.
 */
void upage_fault_want_write(struct upage_space *space, pgoff_t idx)
{
	struct upage_trap_waiter *w;
	LIST_HEAD(old);

	w = kzalloc(sizeof(*w), GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
	if (!w)
		return;
	w->slot = idx;
	w->write = true;
	w->result = UPAGE_WAIT_WRITE;
	spin_lock(&space->table_lock);
	w->seq = space->trap_seq;
	upage_trap_leave_ticket(space, w, &old);
	spin_unlock(&space->table_lock);
	upage_trap_free_tickets(&old);
}

int upage_trap_set(struct upage_space *space, u64 first, u64 n, u32 access,
		   u32 flags, u32 timeout_ms)
{
	u32 bits = 0;
	unsigned int woken;
	LIST_HEAD(dead);
	u64 i;

	if (access & ~UPAGE_TRAP_ACCESS_ALL)
		return -EOPNOTSUPP;
	/* A timeout without its flag would be ignored: refuse it. */
	if (timeout_ms && !(flags & UPAGE_TRAP_SET_TIMEOUT))
		return -EINVAL;
	if (!n && (flags & UPAGE_TRAP_SET_TIMEOUT) && !access) {
		WRITE_ONCE(space->trap_timeout_ms, timeout_ms);
		return 0;
	}
	if (access & UPAGE_TRAP_READ)
		bits |= UPAGE_SLOT_F_TRAP_READ;
	if (access & UPAGE_TRAP_WRITE)
		bits |= UPAGE_SLOT_F_TRAP_WRITE;

	mutex_lock(&space->lock);
	if (!n || !upage_slots_exist(space, first, n)) {
		mutex_unlock(&space->lock);
		return -EINVAL;
	}
	if (flags & UPAGE_TRAP_SET_TIMEOUT)
		WRITE_ONCE(space->trap_timeout_ms, timeout_ms);
	spin_lock(&space->table_lock);
	for (i = first; i < first + n; i++)
		space->slots[i].flags = (space->slots[i].flags &
					 ~UPAGE_SLOT_F_TRAPS) | bits;
	/* Passes given under the old traps are void. */
	if (bits)
		space->trap_seq++;
	/* Threads waiting for an access no longer trapped go on. */
	woken = upage_trap_answer_range(space, first, n, UPAGE_WAIT_PASS,
					false, &dead);
	spin_unlock(&space->table_lock);
	if (bits) {
		upage_space_fence(space, first, n);
		/*
		 * Unmap, not write-protect, for write traps too: see track.c
		 * for how a read-only dirty PTE gets its write back.
		 */
		upage_space_unmap(space, first, n);
	}
	mutex_unlock(&space->lock);
	if (woken) {
		atomic64_add(woken, &space->stats.traps_resolved);
		wake_up_all(&space->trap_wq);
	}
	upage_trap_free_dead(&dead);
	return 0;
}

/*
 * UPAGE_RESOLVE_COPY: n pages filled from @src, before any lock. They are
 * not zeroed first: a page is used only if copy_from_user() filled all of
 * it, and freed otherwise.
 */
static struct page **upage_trap_copy_in(struct upage_space *space, u64 src,
					u64 n)
{
	struct page **pages;
	u64 i;
	int ret = 0;

	pages = kvcalloc(n, sizeof(*pages), GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
	if (!pages)
		return ERR_PTR(-ENOMEM);
	for (i = 0; i < n; i++) {
		void *kaddr;

		pages[i] = upage_alloc_copy_page(space);
		if (IS_ERR(pages[i])) {
			ret = PTR_ERR(pages[i]);
			pages[i] = NULL;
			break;
		}
		kaddr = kmap_local_page(pages[i]);
		if (copy_from_user(kaddr, u64_to_user_ptr(src + i * PAGE_SIZE),
				   PAGE_SIZE))
			ret = -EFAULT;
		kunmap_local(kaddr);
		if (ret)
			break;
		cond_resched();
	}
	if (!ret)
		return pages;
	for (i = 0; i < n && pages[i]; i++)
		upage_free_frame_page(space, pages[i]);
	kvfree(pages);
	return ERR_PTR(ret);
}

/* Put the pages of UPAGE_RESOLVE_COPY in the holes first..first+n-1. */
static int upage_trap_fill(struct upage_space *space, u64 first, u64 n,
			   struct page **pages)
{
	struct upage_frame **frames;
	u64 i;

	lockdep_assert_held(&space->lock);
	for (i = first; i < first + n; i++) {
		if (space->slots[i].frame)
			return -EEXIST;
	}
	frames = kvcalloc(n, sizeof(*frames), GFP_KERNEL | __GFP_NOWARN);
	if (!frames)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		frames[i] = upage_frame_new(space, pages[i]);
		if (!frames[i])
			break;
	}
	if (i < n) {
		/* Frames own their page; the rest are still the caller's. */
		while (i--) {
			frames[i]->nr_slots = 1;
			upage_frame_put(space, frames[i]);
			pages[i] = NULL;
		}
		kvfree(frames);
		return -ENOMEM;
	}
	spin_lock(&space->table_lock);
	for (i = 0; i < n; i++) {
		struct upage_slot *slot = &space->slots[first + i];

		upage_frame_get(frames[i]);
		slot->frame = frames[i];
		if (slot->flags & UPAGE_SLOT_F_TRACKED)
			slot->flags |= UPAGE_SLOT_F_DIRTY;
		pages[i] = NULL;
	}
	spin_unlock(&space->table_lock);
	kvfree(frames);
	return 0;
}

/* The other processes a populating resolve maps for, at most. */
#define UPAGE_RESOLVE_MAX_MMS 8

struct upage_trap_mms {
	struct mm_struct *mm[UPAGE_RESOLVE_MAX_MMS];
	unsigned int nr;
};

/*
 * Take a reference to the mm of each other process with a thread waiting
 * on slots first..first+n-1 (up to UPAGE_RESOLVE_MAX_MMS). Under
 * table_lock: a waiter on an event is still in its fault, which holds
 * its mm.
 */
static void upage_trap_gather_mms(struct upage_space *space, u64 first,
				  u64 n, struct upage_trap_mms *mms)
{
	struct list_head *lists[] = { &space->trap_queue, &space->trap_read };
	struct upage_trap_waiter *w;
	struct upage_trap_ev *ev;
	unsigned int i, j;

	lockdep_assert_held(&space->table_lock);
	for (i = 0; i < ARRAY_SIZE(lists); i++) {
		list_for_each_entry(ev, lists[i], node) {
			if (ev->slot < first || ev->slot - first >= n)
				continue;
			list_for_each_entry(w, &ev->waiters, node) {
				if (w->mm == current->mm ||
				    mms->nr == ARRAY_SIZE(mms->mm))
					continue;
				for (j = 0; j < mms->nr; j++)
					if (mms->mm[j] == w->mm)
						break;
				if (j == mms->nr && mmget_not_zero(w->mm))
					mms->mm[mms->nr++] = w->mm;
			}
		}
	}
}

static int upage_do_resolve(struct upage_space *space, u32 action,
			    u32 flags, u64 first, u64 n, u64 src, u64 *woken)
{
	struct upage_trap_mms mms = { .nr = 0 };
	struct page **pages = NULL;
	bool populate = (flags & UPAGE_RESOLVE_POPULATE) &&
			action != UPAGE_RESOLVE_SIGBUS;
	unsigned int nr;
	LIST_HEAD(dead);
	int ret = 0;
	u64 i;

	*woken = 0;
	if (action < UPAGE_RESOLVE_MAP || action > UPAGE_RESOLVE_SIGBUS)
		return -EOPNOTSUPP;
	if (!n || n > READ_ONCE(upage_max_space_pages) ||
	    (action == UPAGE_RESOLVE_COPY ? !src : !!src))
		return -EINVAL;

	if (action == UPAGE_RESOLVE_COPY) {
		/*
		 * Refuse a bad range before allocating for it; a hint read
		 * without the lock (one lock round per resolve), checked
		 * again under it.
		 */
		pgoff_t size = READ_ONCE(space->nr_pages);

		if (first >= size || n > size - first)
			return -EINVAL;
		pages = upage_trap_copy_in(space, src, n);
		if (IS_ERR(pages))
			return PTR_ERR(pages);
	} else if (action == UPAGE_RESOLVE_ZERO) {
		struct upage_edit_op op = {
			.op = UPAGE_OP_DISCARD, .dst = first, .n = n,
		};
		u32 index;

		ret = upage_edit_apply(space, &op, 1, 0, &index);
		if (ret)
			return ret;
	}

	mutex_lock(&space->lock);
	if (!upage_slots_exist(space, first, n)) {
		ret = -EINVAL;
		goto out_unlock;
	}
	if (pages) {
		ret = upage_trap_fill(space, first, n, pages);
		if (ret)
			goto out_unlock;
	}
	spin_lock(&space->table_lock);
	if (flags & UPAGE_RESOLVE_LIFT) {
		for (i = first; i < first + n; i++)
			space->slots[i].flags &= ~UPAGE_SLOT_F_TRAPS;
	}
	if (populate)
		upage_trap_gather_mms(space, first, n, &mms);
	nr = upage_trap_answer_range(space, first, n,
				     action == UPAGE_RESOLVE_SIGBUS ?
				     UPAGE_WAIT_SIGBUS : UPAGE_WAIT_PASS,
				     true, &dead);
	spin_unlock(&space->table_lock);
	*woken = nr;
out_unlock:
	mutex_unlock(&space->lock);
	/* Before the wake: a waiter finds its page mapped. */
	if (!ret && populate)
		upage_populate_range(space, first, n);
	for (i = 0; i < mms.nr; i++)
		upage_populate_remote(space, mms.mm[i], first, n);
	if (*woken) {
		atomic64_add(*woken, &space->stats.traps_resolved);
		wake_up_all(&space->trap_wq);
	}
	/* The last reference of a process gone meanwhile: torn down later. */
	for (i = 0; i < mms.nr; i++)
		mmput_async(mms.mm[i]);
	upage_trap_free_dead(&dead);
	if (pages) {
		for (i = 0; i < n; i++) {
			if (pages[i])
				upage_free_frame_page(space, pages[i]);
		}
		kvfree(pages);
	}
	return ret;
}

int upage_trap_resolve(struct upage_space *space, u32 action, u32 flags,
		       u64 first, u64 n, u64 src, u64 *woken)
{
	int ret = upage_do_resolve(space, action, flags, first, n, src, woken);

	trace_upage_resolve(space, first, n, action, flags, *woken, ret);
	return ret;
}

static bool upage_trap_queued(struct upage_space *space)
{
	return !list_empty_careful(&space->trap_queue);
}

/*
 * Slots from @first on were cut off by a shrink: their waiters go on, and
 * their retried access finds no slot (SIGBUS, as beyond a file's end).
 */
void upage_trap_cut(struct upage_space *space, u64 first)
{
	unsigned int nr;
	LIST_HEAD(dead);

	spin_lock(&space->table_lock);
	nr = upage_trap_answer_range(space, first, U64_MAX - first,
				     UPAGE_WAIT_PASS, true, &dead);
	spin_unlock(&space->table_lock);
	if (nr)
		wake_up_all(&space->trap_wq);
	upage_trap_free_dead(&dead);
}

/* The handler is whoever reads or polls; under table_lock. */
static void upage_trap_register(struct upage_space *space)
{
	space->trap_owner = current->files;
	space->trap_orphaned = false;
}

#define UPAGE_READ_MAX_EVENTS 64

/*
 * A read() took the events of @out[0..nr-1] but could not copy them out
 * (its buffer was unmapped after the probe): queue those not answered
 * meanwhile again, at the head, so that no event is lost to the handler.
 */
static void upage_trap_unread(struct upage_space *space,
			      const struct upage_trap_event *out, size_t nr)
{
	struct upage_trap_ev *ev, *en;
	size_t i;

	spin_lock(&space->table_lock);
	for (i = nr; i-- > 0;) {
		list_for_each_entry_safe(ev, en, &space->trap_read, node) {
			if (ev->slot == out[i].slot) {
				list_move(&ev->node, &space->trap_queue);
				break;
			}
		}
	}
	spin_unlock(&space->table_lock);
	wake_up_interruptible_poll(&space->trap_poll, EPOLLIN | EPOLLRDNORM);
}

ssize_t upage_trap_read(struct file *file, char __user *buf, size_t count,
			loff_t *ppos)
{
	struct upage_space *space = file->private_data;
	struct upage_trap_event *out;
	struct upage_trap_ev *ev;
	size_t max, nr = 0;
	ssize_t ret;

	if (count < sizeof(*out))
		return -EINVAL;
	max = min_t(size_t, count / sizeof(*out), UPAGE_READ_MAX_EVENTS);
	/* Fault the buffer in first: events taken are put back on failure. */
	if (clear_user(buf, max * sizeof(*out)))
		return -EFAULT;
	out = kcalloc(max, sizeof(*out), GFP_KERNEL);
	if (!out)
		return -ENOMEM;

	for (;;) {
		spin_lock(&space->table_lock);
		upage_trap_register(space);
		while (nr < max && !list_empty(&space->trap_queue)) {
			ev = list_first_entry(&space->trap_queue,
					      struct upage_trap_ev, node);
			out[nr].slot = ev->slot;
			out[nr].address = ev->address;
			out[nr].access = ev->access;
			out[nr].tid = pid_vnr(ev->pid);
			list_move_tail(&ev->node, &space->trap_read);
			nr++;
		}
		spin_unlock(&space->table_lock);
		if (nr)
			break;
		if (file->f_flags & O_NONBLOCK) {
			ret = -EAGAIN;
			goto out_free;
		}
		ret = wait_event_interruptible(space->trap_poll,
					       upage_trap_queued(space));
		if (ret)
			goto out_free;
	}
	ret = nr * sizeof(*out);
	if (copy_to_user(buf, out, ret)) {
		upage_trap_unread(space, out, nr);
		ret = -EFAULT;
	}
out_free:
	kfree(out);
	return ret;
}

__poll_t upage_trap_poll(struct file *file, struct poll_table_struct *pt)
{
	struct upage_space *space = file->private_data;
	__poll_t mask = 0;

	poll_wait(file, &space->trap_poll, pt);
	spin_lock(&space->table_lock);
	upage_trap_register(space);
	if (!list_empty(&space->trap_queue))
		mask = EPOLLIN | EPOLLRDNORM;
	spin_unlock(&space->table_lock);
	return mask;
}

/*
 * A close of a descriptor of the space, or an exit: if it is the
 * handler's, the threads waiting get SIGBUS.
 */
void upage_trap_flush(struct upage_space *space, fl_owner_t id)
{
	unsigned int nr = 0;
	LIST_HEAD(dead);

	spin_lock(&space->table_lock);
	if (space->trap_owner && space->trap_owner == id) {
		space->trap_owner = NULL;
		space->trap_orphaned = true;
		nr = upage_trap_answer_range(space, 0, ULONG_MAX,
					     UPAGE_WAIT_SIGBUS, true, &dead);
	}
	spin_unlock(&space->table_lock);
	if (nr) {
		atomic64_add(nr, &space->stats.traps_timed_out);
		wake_up_all(&space->trap_wq);
	}
	upage_trap_free_dead(&dead);
}
