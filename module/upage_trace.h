/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Tracepoints of the upage trace system (docs/design.md, "Tracepoints").
 * A space is named by its id, the inode number of its own inode, as in
 * fdinfo and debugfs. Each event fires once the result is known, outside
 * the space locks where the code allows; what they record is at hand
 * there, so a disabled event costs a patched-out branch.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM upage

#if !defined(_UPAGE_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _UPAGE_TRACE_H

#include <linux/fs.h>
#include <linux/mm_types.h>
#include <linux/tracepoint.h>

#include "upage_private.h"

/* What a fault ended in (upage_fault.result). Numbers: tools read them. */
#define UPAGE_TRACE_MAPPED	0	/* the page is mapped */
#define UPAGE_TRACE_SIGBUS	1
#define UPAGE_TRACE_SIGSEGV	2	/* the slot's protection refused it */
#define UPAGE_TRACE_RETRY	3	/* lock dropped: the core faults again */
#define UPAGE_TRACE_TRAPPED	4	/* waited on a trap, then retried */
#define UPAGE_TRACE_ERROR	5	/* out of memory, or another error */

/* How a frame came back (upage_page_in.by). */
#define UPAGE_TRACE_BY_FAULT	0
#define UPAGE_TRACE_BY_PREFETCH	1

#define upage_trace_space_id(space) ((space)->id)

TRACE_DEFINE_ENUM(UPAGE_RESOLVE_MAP);
TRACE_DEFINE_ENUM(UPAGE_RESOLVE_COPY);
TRACE_DEFINE_ENUM(UPAGE_RESOLVE_ZERO);
TRACE_DEFINE_ENUM(UPAGE_RESOLVE_SIGBUS);

/*
 * A .fault call. @id is read before the fault: after a wait on a trap
 * the space may be gone (the fault no longer holds the VMA's file).
 */
TRACE_EVENT(upage_fault,
	TP_PROTO(u64 id, pgoff_t slot, unsigned long address, bool write,
		 int result),
	TP_ARGS(id, slot, address, write, result),
	TP_STRUCT__entry(
		__field(u64, space)
		__field(u64, slot)
		__field(unsigned long, address)
		__field(bool, write)
		__field(int, result)
	),
	TP_fast_assign(
		__entry->space = id;
		__entry->slot = slot;
		__entry->address = address;
		__entry->write = write;
		__entry->result = result;
	),
	TP_printk("space=%llu slot=%llu address=0x%lx %s result=%s",
		  __entry->space, __entry->slot, __entry->address,
		  __entry->write ? "write" : "read",
		  __print_symbolic(__entry->result,
				   { UPAGE_TRACE_MAPPED, "mapped" },
				   { UPAGE_TRACE_SIGBUS, "sigbus" },
				   { UPAGE_TRACE_SIGSEGV, "sigsegv" },
				   { UPAGE_TRACE_RETRY, "retry" },
				   { UPAGE_TRACE_TRAPPED, "trapped" },
				   { UPAGE_TRACE_ERROR, "error" }))
);

/* An edit batch: its ops, the slots it changed (0 if it failed), errno. */
TRACE_EVENT(upage_edit,
	TP_PROTO(struct upage_space *space, u32 ops, u64 changed,
		 u32 error_index, int ret),
	TP_ARGS(space, ops, changed, error_index, ret),
	TP_STRUCT__entry(
		__field(u64, space)
		__field(u64, changed)
		__field(u32, ops)
		__field(u32, error_index)
		__field(int, ret)
	),
	TP_fast_assign(
		__entry->space = upage_trace_space_id(space);
		__entry->changed = changed;
		__entry->ops = ops;
		__entry->error_index = error_index;
		__entry->ret = ret;
	),
	TP_printk("space=%llu ops=%u changed=%llu error_index=%d ret=%d",
		  __entry->space, __entry->ops, __entry->changed,
		  (int)__entry->error_index, __entry->ret)
);

/* UPAGE_RES_EVICT: the frames it wrote out of slots first..first+n-1. */
TRACE_EVENT(upage_evict,
	TP_PROTO(struct upage_space *space, u64 first, u64 n, u64 done,
		 int ret),
	TP_ARGS(space, first, n, done, ret),
	TP_STRUCT__entry(
		__field(u64, space)
		__field(u64, first)
		__field(u64, n)
		__field(u64, done)
		__field(int, ret)
	),
	TP_fast_assign(
		__entry->space = upage_trace_space_id(space);
		__entry->first = first;
		__entry->n = n;
		__entry->done = done;
		__entry->ret = ret;
	),
	TP_printk("space=%llu first=%llu n=%llu done=%llu ret=%d",
		  __entry->space, __entry->first, __entry->n, __entry->done,
		  __entry->ret)
);

/*
 * An evicted frame brought back for slot @slot: @ret 1 paged in (or
 * zero-filled, if reclaimed), 0 nothing left to do, else an errno.
 */
TRACE_EVENT(upage_page_in,
	TP_PROTO(struct upage_space *space, pgoff_t slot, int by, int ret),
	TP_ARGS(space, slot, by, ret),
	TP_STRUCT__entry(
		__field(u64, space)
		__field(u64, slot)
		__field(int, by)
		__field(int, ret)
	),
	TP_fast_assign(
		__entry->space = upage_trace_space_id(space);
		__entry->slot = slot;
		__entry->by = by;
		__entry->ret = ret;
	),
	TP_printk("space=%llu slot=%llu by=%s ret=%d",
		  __entry->space, __entry->slot,
		  __print_symbolic(__entry->by,
				   { UPAGE_TRACE_BY_FAULT, "fault" },
				   { UPAGE_TRACE_BY_PREFETCH, "prefetch" }),
		  __entry->ret)
);

/*
 * A shrinker scan: asked for @nr_to_scan, it took @spaces spaces, looked
 * at @scanned frames, paged @paged_out out and dropped @lazy lazily freed
 * ones.
 */
TRACE_EVENT(upage_reclaim,
	TP_PROTO(unsigned long nr_to_scan, unsigned int spaces,
		 unsigned long scanned, unsigned long paged_out,
		 unsigned long lazy),
	TP_ARGS(nr_to_scan, spaces, scanned, paged_out, lazy),
	TP_STRUCT__entry(
		__field(unsigned long, nr_to_scan)
		__field(unsigned long, scanned)
		__field(unsigned long, paged_out)
		__field(unsigned long, lazy)
		__field(unsigned int, spaces)
	),
	TP_fast_assign(
		__entry->nr_to_scan = nr_to_scan;
		__entry->scanned = scanned;
		__entry->paged_out = paged_out;
		__entry->lazy = lazy;
		__entry->spaces = spaces;
	),
	TP_printk("nr_to_scan=%lu spaces=%u scanned=%lu paged_out=%lu lazy=%lu",
		  __entry->nr_to_scan, __entry->spaces, __entry->scanned,
		  __entry->paged_out, __entry->lazy)
);

/*
 * Thread @tid starts waiting on the trap of slot @slot (a read or a
 * @write access); @queued: its access queued a new event (else it joined one already queued).
 */
TRACE_EVENT(upage_trap,
	TP_PROTO(struct upage_space *space, pgoff_t slot, bool write,
		 pid_t tid, bool queued),
	TP_ARGS(space, slot, write, tid, queued),
	TP_STRUCT__entry(
		__field(u64, space)
		__field(u64, slot)
		__field(pid_t, tid)
		__field(bool, write)
		__field(bool, queued)
	),
	TP_fast_assign(
		__entry->space = upage_trace_space_id(space);
		__entry->slot = slot;
		__entry->tid = tid;
		__entry->write = write;
		__entry->queued = queued;
	),
	TP_printk("space=%llu slot=%llu access=%s tid=%d queued=%d",
		  __entry->space, __entry->slot,
		  __entry->write ? "write" : "read", __entry->tid,
		  __entry->queued)
);

/* UPAGE_RESOLVE of slots first..first+n-1: the threads it woke. */
TRACE_EVENT(upage_resolve,
	TP_PROTO(struct upage_space *space, u64 first, u64 n, u32 action,
		 u32 flags, u64 woken, int ret),
	TP_ARGS(space, first, n, action, flags, woken, ret),
	TP_STRUCT__entry(
		__field(u64, space)
		__field(u64, first)
		__field(u64, n)
		__field(u64, woken)
		__field(u32, action)
		__field(u32, flags)
		__field(int, ret)
	),
	TP_fast_assign(
		__entry->space = upage_trace_space_id(space);
		__entry->first = first;
		__entry->n = n;
		__entry->woken = woken;
		__entry->action = action;
		__entry->flags = flags;
		__entry->ret = ret;
	),
	TP_printk("space=%llu first=%llu n=%llu action=%s lift=%d woken=%llu ret=%d",
		  __entry->space, __entry->first, __entry->n,
		  __print_symbolic(__entry->action,
				   { UPAGE_RESOLVE_MAP, "map" },
				   { UPAGE_RESOLVE_COPY, "copy" },
				   { UPAGE_RESOLVE_ZERO, "zero" },
				   { UPAGE_RESOLVE_SIGBUS, "sigbus" }),
		  !!(__entry->flags & UPAGE_RESOLVE_LIFT), __entry->woken,
		  __entry->ret)
);

#endif /* _UPAGE_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE upage_trace
#include <trace/define_trace.h>
