/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * upage: a process's own control over the physical pages behind its
 * addresses.
 *
 * Each open() of /dev/upage creates a *space*: an array of page *slots*
 * that processes mmap() with MAP_SHARED or MAP_PRIVATE, at any page-aligned
 * offset. A slot is a hole (demand-zero on first touch) or points at a
 * *frame*, a physical page owned by the space. The ioctls below edit the
 * slot table; the module keeps the page tables of every process that maps
 * the space consistent with it. A space lives as long as its file: share it
 * with fork(), SCM_RIGHTS or pidfd_getfd().
 */
#ifndef _UAPI_LINUX_UPAGE_H
#define _UAPI_LINUX_UPAGE_H

#include <linux/ioctl.h>
#include <linux/types.h>

/**
 * DOC: General ioctl format
 *
 * Every ioctl takes a pointer to a struct that starts with
 * ``__u32 size; __u32 flags;``. Userspace sets size to sizeof() of the
 * struct it was compiled with, so both sides can grow the struct at its end:
 *
 * - size smaller than the first version of the struct: EINVAL.
 * - size larger than the module knows: the extra bytes must be zero (E2BIG
 *   otherwise); they are ignored. A size larger than a page is E2BIG, as
 *   for openat2(2).
 * - Outputs (``out_*`` fields) are written back up to the smaller of the two
 *   sizes.
 *
 * Errors, for every ioctl:
 *
 * - ENOTTY: unknown ioctl number.
 * - EFAULT: the argument, or a buffer it points to, is not accessible.
 * - EOPNOTSUPP: an unknown flag, a non-zero ``__reserved`` field, or an
 *   unknown value of an enumerated field (an edit op, a residency op, a
 *   track op, a resolve action, a protection).
 * - EINVAL: a field has a value out of range (a slot range that overflows
 *   or lies beyond the space's size, n == 0, ...).
 * - ENOSPC: a module limit (pages per space, resident pages in total or
 *   per user) would be exceeded.
 * - ENOMEM: the kernel ran out of memory, or the caller's memory cgroup hit
 *   its limit and reclaim could not make room.
 * - E2BIG: the struct is larger than the module knows and its tail is not
 *   zero, or it is larger than a page.
 * - EFAULT: also when a struct with outputs cannot be written; that is
 *   checked before the call changes anything, so the call changes nothing
 *   then, unless the struct stops being writable during the call (another
 *   thread unmaps it, or it lies in a slot the call itself protects, traps
 *   or cuts off).
 *
 * - EINTR: the caller got a fatal signal while the call waited or worked
 *   (an edit, a query by address, a prefetch, a store change, a resolve
 *   that zeroes); the call is undone as for any failure.
 *
 * A call that fails changes nothing, with one exception: an eviction
 * (UPAGE_RES_EVICT) writes every frame it can; a frame whose store write
 * fails stays resident and the error is returned, while the others stay
 * evicted (@out_frames counts them).
 */

#define UPAGE_TYPE 0xBA

enum {
	UPAGE_CMD_BASE = 0x00,
	UPAGE_CMD_API = UPAGE_CMD_BASE,
	UPAGE_CMD_RESIZE,
	UPAGE_CMD_EDIT,
	UPAGE_CMD_QUERY,
	UPAGE_CMD_STATS,
	UPAGE_CMD_RESIDENCY,
	UPAGE_CMD_STORE,
	UPAGE_CMD_TRACK,
	UPAGE_CMD_DIRTY,
	UPAGE_CMD_TRAP,
	UPAGE_CMD_RESOLVE,
};

/* The interface version reported by UPAGE_API. */
#define UPAGE_API_VERSION 1

/*
 * Bits of struct upage_api.out_features: the edit ops and flags this
 * module implements. A feature added later gets a new bit; test it before
 * use.
 */
#define UPAGE_FEATURE_ALIAS		(1ULL << 0)	/* UPAGE_OP_ALIAS */
#define UPAGE_FEATURE_ALIAS_COW		(1ULL << 1)	/* UPAGE_OP_ALIAS_COW */
#define UPAGE_FEATURE_MOVE		(1ULL << 2)	/* UPAGE_OP_MOVE */
#define UPAGE_FEATURE_SWAP		(1ULL << 3)	/* UPAGE_OP_SWAP */
#define UPAGE_FEATURE_PROTECT		(1ULL << 4)	/* UPAGE_OP_PROTECT */
#define UPAGE_FEATURE_QUERY_BY_ADDR	(1ULL << 5)	/* UPAGE_QUERY_BY_ADDR */
#define UPAGE_FEATURE_DISCARD		(1ULL << 6)	/* UPAGE_OP_DISCARD */
#define UPAGE_FEATURE_EVICT		(1ULL << 7)	/* UPAGE_RES_EVICT, _PREFETCH */
#define UPAGE_FEATURE_STORE		(1ULL << 8)	/* UPAGE_STORE */
#define UPAGE_FEATURE_PIN		(1ULL << 9)	/* UPAGE_RES_PIN, _UNPIN */
#define UPAGE_FEATURE_LAZY_FREE		(1ULL << 10)	/* UPAGE_RES_LAZY_FREE */
#define UPAGE_FEATURE_RECLAIM		(1ULL << 11)	/* UPAGE_STORE_RECLAIM */
#define UPAGE_FEATURE_TRACK		(1ULL << 12)	/* UPAGE_TRACK, UPAGE_DIRTY */
#define UPAGE_FEATURE_TRAP		(1ULL << 13)	/* UPAGE_TRAP, UPAGE_RESOLVE */
#define UPAGE_FEATURE_POPULATE		(1ULL << 14)	/* UPAGE_{EDIT,RES,RESOLVE}_POPULATE */

/**
 * struct upage_api - ioctl(UPAGE_API)
 * @size: sizeof(struct upage_api)
 * @flags: must be 0
 * @out_version: UPAGE_API_VERSION of the module
 * @out_page_size: bytes in a slot (PAGE_SIZE)
 * @out_features: the UPAGE_FEATURE_* bits this module implements
 * @out_ioctls: bit n set if ioctl command n (UPAGE_CMD_*) is implemented
 * @out_max_pages: the most slots a space may have (module parameter
 *                 max_space_pages)
 *
 * Reports what the module supports. Programs and the library check
 * out_ioctls before relying on an ioctl newer than UPAGE_API_VERSION 1.
 */
struct upage_api {
	__u32 size;
	__u32 flags;
	__u32 out_version;
	__u32 out_page_size;
	__aligned_u64 out_features;
	__aligned_u64 out_ioctls;
	__aligned_u64 out_max_pages;
};

#define UPAGE_API _IO(UPAGE_TYPE, UPAGE_CMD_API)

/**
 * struct upage_resize - ioctl(UPAGE_RESIZE)
 * @size: sizeof(struct upage_resize)
 * @flags: must be 0
 * @pages: the new number of slots
 * @out_old_pages: the number of slots before the call
 *
 * Grows or shrinks the space. New slots are holes. Slots cut off by a
 * shrink drop their frames and are unmapped from every process; an access
 * to an address mapped beyond the end of the space raises SIGBUS, as for a
 * file. A space starts with 0 slots.
 *
 * ENOSPC: @pages is above the module's max_space_pages.
 *
 * A fault that needs a frame beyond the module's max_total_pages or
 * max_user_pages ends in SIGBUS; one that the memory cgroup cannot charge
 * after reclaim (which pages this and other spaces out) in the cgroup's
 * OOM handling. An edit that needs one fails with ENOSPC (resp. ENOMEM).
 */
struct upage_resize {
	__u32 size;
	__u32 flags;
	__aligned_u64 pages;
	__aligned_u64 out_old_pages;
};

#define UPAGE_RESIZE _IO(UPAGE_TYPE, UPAGE_CMD_RESIZE)

/**
 * enum upage_prot - what a slot lets a mapping do with its frame
 * @UPAGE_PROT_NONE: every access raises SIGSEGV
 * @UPAGE_PROT_READ: reads are served; a write raises SIGSEGV
 * @UPAGE_PROT_RW: reads and writes are served (the default of every slot)
 *
 * Protection belongs to the slot, not to its frame: it stays when frames
 * are aliased, moved or swapped in and out, and it needs no VMA of its own.
 * A denied access raises SIGSEGV with si_addr the faulting address and
 * si_code SEGV_MAPERR (the kernel sets SEGV_ACCERR only for VMA permission
 * faults). It limits what a mapping may do beyond what mmap/mprotect
 * allow, never more. On a MAP_PRIVATE mapping it applies to the pages that
 * still show the frame; a page the process has written is its own copy,
 * as with any private file mapping.
 */
enum upage_prot {
	UPAGE_PROT_NONE = 0,
	UPAGE_PROT_READ = 1,
	UPAGE_PROT_RW = 3,
};

/**
 * enum upage_op - the edits of struct upage_edit_op
 * @UPAGE_OP_ALIAS: slots dst..dst+n-1 take the frames of src..src+n-1; both
 *	then show the same physical pages. Holes in src are first given zeroed
 *	frames, so that the two ranges share from then on.
 * @UPAGE_OP_ALIAS_COW: as ALIAS, but dst is copy-on-write: it shows src's
 *	frame, writes made through src included, until the first write through
 *	a shared mapping of dst gives dst a private copy. Writes through dst
 *	never reach src. To sync a copy back, MOVE dst onto src.
 * @UPAGE_OP_MOVE: dst takes src's frames (and their copy-on-write state),
 *	src becomes holes.
 * @UPAGE_OP_SWAP: dst and src exchange frames (and their copy-on-write
 *	state), without copying.
 * @UPAGE_OP_PROTECT: slots dst..dst+n-1 get protection @prot; src must be 0.
 * @UPAGE_OP_DISCARD: slots dst..dst+n-1 drop their frames and become holes
 *	(the next access reads zeros); src must be 0. Nothing is written to
 *	the backing store. Aliases elsewhere keep the frame.
 *
 * For ALIAS, ALIAS_COW, MOVE and SWAP the ranges must not overlap. A frame
 * that leaves a slot whose page is pinned by get_user_pages (O_DIRECT,
 * vmsplice, io_uring fixed buffers, ...) makes the whole batch fail with
 * EBUSY. Protection stays with the slots in every case.
 */
enum upage_op {
	UPAGE_OP_ALIAS = 1,
	UPAGE_OP_ALIAS_COW = 2,
	UPAGE_OP_MOVE = 3,
	UPAGE_OP_SWAP = 4,
	UPAGE_OP_PROTECT = 5,
	UPAGE_OP_DISCARD = 6,
};

/**
 * struct upage_edit_op - one edit of a batch
 * @op: an enum upage_op
 * @flags: must be 0
 * @dst: the first slot edited
 * @src: the first slot read (ALIAS, ALIAS_COW, MOVE, SWAP); 0 for PROTECT
 * @n: the number of slots, at least 1
 * @prot: an enum upage_prot for PROTECT; 0 otherwise
 * @__reserved: must be 0
 */
struct upage_edit_op {
	__u32 op;
	__u32 flags;
	__aligned_u64 dst;
	__aligned_u64 src;
	__aligned_u64 n;
	__u32 prot;
	__u32 __reserved;
};

/* The most ops one UPAGE_EDIT may carry. */
#define UPAGE_EDIT_MAX_OPS 65536

/*
 * The most slots one UPAGE_EDIT may edit: the sum of the ops' n, counting
 * both ranges of ALIAS, ALIAS_COW, MOVE and SWAP. It bounds the time one
 * call may take; a batch over it is EINVAL, out_error_index naming the
 * op that crosses it.
 */
#define UPAGE_EDIT_MAX_SLOTS (1ULL << 22)

/**
 * struct upage_edit - ioctl(UPAGE_EDIT)
 * @size: sizeof(struct upage_edit)
 * @flags: 0 or UPAGE_EDIT_POPULATE (other bits: EOPNOTSUPP)
 * @op_size: sizeof(struct upage_edit_op), so that ops can grow like
 *	structs do (a larger op must have a zero tail; smaller than the first
 *	version is EINVAL; larger than a page is E2BIG)
 * @count: the number of ops, 1 to UPAGE_EDIT_MAX_OPS
 * @ops: user pointer to @count ops
 * @out_error_index: on failure, the index of the op that was refused, or
 *	0xffffffff if the failure was not due to one op (EFAULT, ENOMEM, ...)
 * @__reserved: must be 0
 *
 * Applies the ops in order, atomically: every mapping of the space sees
 * either none of them or all of them, and if any op is invalid (EINVAL,
 * EOPNOTSUPP), pinned (EBUSY) or cannot be done (ENOMEM, ENOSPC), none is
 * applied. The changed slots are unmapped from every process in one pass;
 * they fault back in on the next access.
 *
 * With UPAGE_EDIT_POPULATE, the changed slots are then also mapped into the
 * caller's own mappings of the space, as madvise(MADV_POPULATE_READ) would
 * (the page faults are taken inside the call: they count in out_faults
 * and in the caller's minor faults), so that the caller's next read of
 * them takes no fault; other processes still fault. Slots that a read
 * would not map at once are left unmapped: holes, evicted frames,
 * UPAGE_PROT_NONE, trapped slots, and slots another thread is changing.
 * The pages are mapped read-only where the mapping is shared and
 * writable, so the first write still faults (protection, tracking and
 * copy-on-write see it). Mappings without read access, and those past
 * the caller's 16th mapping of the range, are not populated. Populating
 * is best effort and never makes the call fail; UPAGE_STATS'
 * out_populated counts the pages it mapped.
 */
struct upage_edit {
	__u32 size;
	__u32 flags;
	__u32 op_size;
	__u32 count;
	__aligned_u64 ops;
	__u32 out_error_index;
	__u32 __reserved;
};

/* Bits of struct upage_edit.flags. */
#define UPAGE_EDIT_POPULATE	(1U << 0)	/* map the changed slots for the caller */
#define UPAGE_EDIT_FLAGS_ALL	UPAGE_EDIT_POPULATE

#define UPAGE_EDIT _IO(UPAGE_TYPE, UPAGE_CMD_EDIT)

/* Bits of struct upage_slot_info.state. */
#define UPAGE_SLOT_RESIDENT	(1U << 0)	/* has a frame in memory */
#define UPAGE_SLOT_COW		(1U << 1)	/* copy-on-write alias */
#define UPAGE_SLOT_EVICTED	(1U << 2)	/* frame paged out to the store */
#define UPAGE_SLOT_PINNED	(1U << 3)	/* frame pinned (UPAGE_RES_PIN) */
#define UPAGE_SLOT_LAZY		(1U << 4)	/* lazily freed, not written since */
#define UPAGE_SLOT_RECLAIMED	(1U << 5)	/* lazily freed and reclaimed */
#define UPAGE_SLOT_TRACKED	(1U << 6)	/* writes tracked (UPAGE_TRACK) */
#define UPAGE_SLOT_DIRTY	(1U << 7)	/* tracked, and written since armed */
#define UPAGE_SLOT_TRAP_READ	(1U << 8)	/* every access trapped */
#define UPAGE_SLOT_TRAP_WRITE	(1U << 9)	/* writes trapped */

/**
 * struct upage_slot_info - what UPAGE_QUERY reports of one slot
 * @frame_id: the frame's id, unique within the space and stable for the
 *	frame's life (aliases report the same id); 0 for a hole
 * @pfn: the physical frame number, for CAP_SYS_ADMIN only (both the caller
 *	and the opener of the space); 0 otherwise and for holes
 * @state: UPAGE_SLOT_* bits
 * @nr_aliases: how many slots of the space share the frame (1 if none
 *	else does, 0 for a hole)
 * @prot: the slot's enum upage_prot
 * @__reserved: 0
 */
struct upage_slot_info {
	__aligned_u64 frame_id;
	__aligned_u64 pfn;
	__u32 state;
	__u32 nr_aliases;
	__u32 prot;
	__u32 __reserved;
};

/* Flags of struct upage_query. */
#define UPAGE_QUERY_BY_ADDR	(1U << 0)
#define UPAGE_QUERY_FLAGS_ALL	UPAGE_QUERY_BY_ADDR

/**
 * struct upage_query - ioctl(UPAGE_QUERY)
 * @size: sizeof(struct upage_query)
 * @flags: UPAGE_QUERY_BY_ADDR: @first is a virtual address in the caller's
 *	address space, inside a mapping of this space, rather than a slot
 * @first: the first slot (or, with UPAGE_QUERY_BY_ADDR, an address)
 * @n: the number of slots, at least 1
 * @info: user pointer to @n entries of @info_size bytes
 * @info_size: sizeof(struct upage_slot_info)
 * @__reserved: must be 0
 * @out_slot: the slot of @first (useful with UPAGE_QUERY_BY_ADDR)
 *
 * Reports the state of slots first..first+n-1. Each entry is consistent
 * in itself; entries are not one snapshot if the space is edited
 * concurrently. With UPAGE_QUERY_BY_ADDR, an address that is not in a
 * mapping of this space is ENOENT; the range must not run past the end of
 * that mapping.
 */
struct upage_query {
	__u32 size;
	__u32 flags;
	__aligned_u64 first;
	__aligned_u64 n;
	__aligned_u64 info;
	__u32 info_size;
	__u32 __reserved;
	__aligned_u64 out_slot;
};

#define UPAGE_QUERY _IO(UPAGE_TYPE, UPAGE_CMD_QUERY)

/**
 * struct upage_stats - ioctl(UPAGE_STATS)
 * @size: sizeof(struct upage_stats)
 * @flags: must be 0
 * @out_pages: the space's size in slots
 * @out_frames: frames the space holds now
 * @out_faults: page faults served
 * @out_zero_fills: holes filled with a zeroed frame
 * @out_cow_breaks: copy-on-write aliases given their own copy
 * @out_edits: ops applied by UPAGE_EDIT
 * @out_batches: UPAGE_EDIT calls that applied
 * @out_evictions: frames paged out (UPAGE_RES_EVICT)
 * @out_page_ins: frames paged back in, by a fault or UPAGE_RES_PREFETCH
 * @out_bytes_written: bytes written to the backing store
 * @out_bytes_read: bytes read from the backing store
 * @out_reclaims: lazily freed frames whose contents were dropped (by the
 *	shrinker, UPAGE_RES_EVICT, or UPAGE_RES_LAZY_FREE of an evicted frame)
 * @out_shrinker_evictions: frames the shrinker paged out (also counted in
 *	@out_evictions)
 * @out_tracked_writes: first writes to tracked slots recorded (UPAGE_TRACK)
 * @out_traps: trap events queued (UPAGE_TRAP)
 * @out_traps_resolved: faulting threads let go by UPAGE_RESOLVE
 * @out_traps_timed_out: faulting threads whose wait ended in SIGBUS
 *	without a resolve: the timeout, or the handler gone
 * @out_populated: pages UPAGE_EDIT_POPULATE, UPAGE_RES_POPULATE and
 *	UPAGE_RESOLVE_POPULATE faulted in (or found mapped already); these
 *	faults are counted in @out_faults too
 *
 * Counters of the space since it was opened. Fields up to @out_batches are
 * the first version of the struct.
 */
struct upage_stats {
	__u32 size;
	__u32 flags;
	__aligned_u64 out_pages;
	__aligned_u64 out_frames;
	__aligned_u64 out_faults;
	__aligned_u64 out_zero_fills;
	__aligned_u64 out_cow_breaks;
	__aligned_u64 out_edits;
	__aligned_u64 out_batches;
	__aligned_u64 out_evictions;
	__aligned_u64 out_page_ins;
	__aligned_u64 out_bytes_written;
	__aligned_u64 out_bytes_read;
	__aligned_u64 out_reclaims;
	__aligned_u64 out_shrinker_evictions;
	__aligned_u64 out_tracked_writes;
	__aligned_u64 out_traps;
	__aligned_u64 out_traps_resolved;
	__aligned_u64 out_traps_timed_out;
	__aligned_u64 out_populated;
};

#define UPAGE_STATS _IO(UPAGE_TYPE, UPAGE_CMD_STATS)

/**
 * enum upage_res_op - the operations of struct upage_residency
 * @UPAGE_RES_EVICT: write the frames of the slots out to the space's
 *	backing store (only if written since they were last written out),
 *	unmap them everywhere and free their memory. A frame aliased by
 *	several slots is written once and stays aliased. The next access to
 *	an evicted slot pages its frame back in from the fault handler; a
 *	failed read there raises SIGBUS.
 * @UPAGE_RES_PREFETCH: read the evicted frames of the slots back in now,
 *	without faulting.
 * @UPAGE_RES_PIN: keep the frames of the slots resident: evicted frames
 *	are read back in, holes get zeroed frames, and eviction skips pinned
 *	frames. Pinning belongs to the frame: every alias shows a pinned page,
 *	moves and swaps carry it, and the copy a copy-on-write break makes is
 *	not pinned. Each pinned frame is charged one page of locked memory to
 *	the user who made the space's first pin (as io_uring charges its
 *	buffers), checked against the caller's RLIMIT_MEMLOCK unless it has
 *	CAP_IPC_LOCK: ENOMEM past it. All or nothing: on any error no frame of
 *	the range is left newly pinned. Pinning a pinned frame does nothing.
 *	Evicted frames are read with no lock held, each pinned as it comes
 *	in; EAGAIN if other threads keep discarding what the call pinned.
 * @UPAGE_RES_UNPIN: unpin the frames of the slots and give back their
 *	charge. A pinned frame that dies (discard, shrink, close) is unpinned.
 * @UPAGE_RES_LAZY_FREE: the contents of the frames of the slots are no
 *	longer needed, unless written again: as madvise(MADV_FREE). The module
 *	may drop a lazily freed frame under memory pressure (its shrinker) or
 *	when it is evicted, instead of writing it out; from then on its slots
 *	read zeros (UPAGE_SLOT_RECLAIMED) until written. A write through any
 *	shared mapping, or by the kernel on behalf of one (get_user_pages),
 *	after the call cancels it for that frame, which then keeps the data
 *	(UPAGE_SLOT_LAZY is cleared). An evicted frame is dropped at once, its
 *	store page given back, as MADV_FREE does with swapped-out pages.
 *	Pinned frames are marked but not dropped while pinned. Like pinning,
 *	this belongs to the frame: every alias sees it.
 *
 * The backing store is a shmem file the module creates at the first
 * eviction, so paged-out frames live in tmpfs and may go to system swap,
 * or a file the program chose with UPAGE_STORE.
 */
enum upage_res_op {
	UPAGE_RES_EVICT = 1,
	UPAGE_RES_PREFETCH = 2,
	UPAGE_RES_PIN = 3,
	UPAGE_RES_UNPIN = 4,
	UPAGE_RES_LAZY_FREE = 5,
};

/**
 * struct upage_residency - ioctl(UPAGE_RESIDENCY)
 * @size: sizeof(struct upage_residency)
 * @flags: 0, or UPAGE_RES_POPULATE with UPAGE_RES_PREFETCH (EINVAL with
 *	another op; other bits: EOPNOTSUPP)
 * @op: an enum upage_res_op
 * @__reserved: must be 0
 * @first: the first slot
 * @n: the number of slots, at least 1
 * @out_frames: the frames written out or dropped (EVICT), read in
 *	(PREFETCH), newly pinned (PIN), unpinned (UNPIN) or newly lazily
 *	freed (LAZY_FREE)
 *
 * Holes and frames already in the requested state are skipped, and so are
 * pinned frames by EVICT. EBUSY: a
 * frame of the range is pinned by get_user_pages; nothing was evicted.
 * A store write that fails (EIO, ENOSPC of a full store, ...) leaves that
 * frame resident with its data and returns the error; the other frames of
 * the range are written and stay evicted, @out_frames says how many.
 */
struct upage_residency {
	__u32 size;
	__u32 flags;
	__u32 op;
	__u32 __reserved;
	__aligned_u64 first;
	__aligned_u64 n;
	__aligned_u64 out_frames;
};

/*
 * Bits of struct upage_residency.flags. UPAGE_RES_POPULATE: once the
 * prefetch has read the range in, map its slots into the caller's own
 * mappings as UPAGE_EDIT_POPULATE does (resident slots the range already
 * had too), so that the caller's next read of them takes no fault.
 */
#define UPAGE_RES_POPULATE	(1U << 0)
#define UPAGE_RES_FLAGS_ALL	UPAGE_RES_POPULATE

#define UPAGE_RESIDENCY _IO(UPAGE_TYPE, UPAGE_CMD_RESIDENCY)

/* Flags of struct upage_store. */
#define UPAGE_STORE_RECLAIM	(1U << 0)
#define UPAGE_STORE_FLAGS_ALL	UPAGE_STORE_RECLAIM

/**
 * struct upage_store - ioctl(UPAGE_STORE)
 * @size: sizeof(struct upage_store)
 * @flags: UPAGE_STORE_RECLAIM: the module's shrinker may page out cold,
 *	unpinned frames of this space to a store the program gave when memory
 *	runs short (see "Reclaim" below); the module's own store is always
 *	used so
 * @fd: a regular file (a file on any filesystem, or a memfd) open for
 *	reading and writing, without O_APPEND or O_DIRECT; -1 to go back to
 *	the module's own shmem store
 * @__reserved: must be 0
 * @offset: where the space's pages start in the file; a multiple of the
 *	page size
 *
 * Chooses where the space's frames are paged out. The module keeps a
 * reference to the file (closing @fd afterwards is fine) and writes each
 * evicted frame to a page of it at @offset + i * page size, the lowest
 * free i first; a page is reused once its frame is gone, and punched out
 * of the file where the filesystem supports it. The file's size, its
 * space on disk and its quota are the program's to manage: a write that
 * fails (ENOSPC, EDQUOT, EFBIG, EIO) fails the eviction of that frame,
 * which stays resident with its data.
 *
 * The store can be changed only while no frame of the space is evicted
 * and no store write is in flight (EBUSY otherwise); frames written to
 * the old store are written to the new one when next evicted. Giving the
 * current store again (the same file and @offset, or -1 for the module's
 * own) changes only @flags, and is allowed at any time.
 *
 * Reclaim. Memory behaves like shmem: the module's shrinker runs on global
 * memory pressure and for a memory cgroup at its memory.max (the cgroup
 * of the space's opener). It drops lazily freed frames of every space, and
 * pages out frames that are cold (not faulted in since the shrinker's
 * previous pass over them; each pass unmaps the frames it leaves, so that
 * the next access faults and marks them used): always for a space on the
 * module's own store, whose pages are charged to the opener's cgroup and
 * swapped from there like shmem, and for a program's store only with
 * UPAGE_STORE_RECLAIM. It skips frames that are pinned (UPAGE_RES_PIN),
 * locked or in use by the kernel. EBADF: @fd is not an open file, or not open
 * for both reading and writing. EINVAL: not a regular file, O_APPEND or
 * O_DIRECT, @offset unaligned or too large (the largest space, of
 * max_space_pages, must fit between it and the filesystem's file size
 * limit), @fd below -1, or @fd -1 with a non-zero @offset. The module
 * uses the file as it was given: O_APPEND or O_DIRECT set on it later
 * (fcntl) sends the module's writes to the end of the file or makes them
 * fail.
 */
struct upage_store {
	__u32 size;
	__u32 flags;
	__s32 fd;
	__u32 __reserved;
	__aligned_u64 offset;
};

#define UPAGE_STORE _IO(UPAGE_TYPE, UPAGE_CMD_STORE)

/**
 * enum upage_track_op - the operations of struct upage_track
 * @UPAGE_TRACK_START: track writes to the slots, starting clean
 * @UPAGE_TRACK_STOP: stop tracking them and forget what was recorded
 */
enum upage_track_op {
	UPAGE_TRACK_START = 1,
	UPAGE_TRACK_STOP = 2,
};

/**
 * struct upage_track - ioctl(UPAGE_TRACK)
 * @size: sizeof(struct upage_track)
 * @flags: must be 0
 * @op: an enum upage_track_op
 * @__reserved: must be 0
 * @first: the first slot
 * @n: the number of slots, at least 1
 *
 * Write tracking. A tracked slot is *armed* when tracking starts and each
 * time UPAGE_DIRTY collects it with UPAGE_DIRTY_CLEAR; it is *dirty* once
 * its contents may have changed since then:
 *
 * - a write through a shared mapping of the space, in any process, to the
 *   slot's frame, through this slot or through any alias of it (the frame's
 *   contents changed, whichever address wrote them), or by the kernel on
 *   behalf of one (write(2) into the mapping, O_DIRECT reads, ...);
 * - an edit that gave the slot another frame or made it a hole (ALIAS,
 *   ALIAS_COW, MOVE, SWAP, DISCARD, a shrink, UPAGE_RESOLVE of a trap);
 * - the module's reclaim of a lazily freed frame, which now reads zeros.
 *
 * Eviction, page-in, pinning and protection changes are not writes. Writes
 * to a MAP_PRIVATE mapping change the process's own copy, not the frame,
 * and are not recorded. Arming unmaps the slot's page (and its aliases')
 * in every mapping, so the first access after it faults, and a read maps
 * it back read-only; a slot whose page is resident and at that slot
 * alone, RW and untrapped, in a space never mapped privately or
 * read-only, is re-armed after a report by cleaning its PTEs' dirty bits
 * instead, so a page re-written every round takes no fault. No
 * mprotect(), madvise() or other mapping of the space hides a write from
 * tracking.
 */
struct upage_track {
	__u32 size;
	__u32 flags;
	__u32 op;
	__u32 __reserved;
	__aligned_u64 first;
	__aligned_u64 n;
};

#define UPAGE_TRACK _IO(UPAGE_TYPE, UPAGE_CMD_TRACK)

/* Flags of struct upage_dirty. */
#define UPAGE_DIRTY_CLEAR	(1U << 0)
#define UPAGE_DIRTY_FLAGS_ALL	UPAGE_DIRTY_CLEAR

/**
 * struct upage_dirty - ioctl(UPAGE_DIRTY)
 * @size: sizeof(struct upage_dirty)
 * @flags: UPAGE_DIRTY_CLEAR: re-arm the slots reported, in the same step
 * @first: the first slot
 * @n: the number of slots, at least 1
 * @bitmap: user pointer to (n + 63) / 64 __u64 words; bit i % 64 of word
 *	i / 64 is set if slot first + i is dirty, cleared otherwise (and for
 *	slots that are not tracked)
 * @out_dirty: how many bits were set
 *
 * Collects the dirty state of tracked slots (see UPAGE_TRACK). With
 * UPAGE_DIRTY_CLEAR, collecting and re-arming are one step: a write that
 * completes after the call returns is reported by a later call, and one
 * that completed before it by this call (a write racing with the call may
 * be reported by both). EFAULT: @bitmap is not writable; the slots stay
 * dirty.
 */
struct upage_dirty {
	__u32 size;
	__u32 flags;
	__aligned_u64 first;
	__aligned_u64 n;
	__aligned_u64 bitmap;
	__aligned_u64 out_dirty;
};

#define UPAGE_DIRTY _IO(UPAGE_TYPE, UPAGE_CMD_DIRTY)

/* Access kinds: struct upage_trap.access, struct upage_trap_event.access. */
#define UPAGE_TRAP_READ		(1U << 0)
#define UPAGE_TRAP_WRITE	(1U << 1)
#define UPAGE_TRAP_ACCESS_ALL	(UPAGE_TRAP_READ | UPAGE_TRAP_WRITE)

/* Flags of struct upage_trap. */
#define UPAGE_TRAP_SET_TIMEOUT	(1U << 0)
#define UPAGE_TRAP_FLAGS_ALL	UPAGE_TRAP_SET_TIMEOUT

/**
 * struct upage_trap - ioctl(UPAGE_TRAP)
 * @size: sizeof(struct upage_trap)
 * @flags: UPAGE_TRAP_SET_TIMEOUT: also set the space's trap timeout to
 *	@timeout_ms; with this flag @n may be 0 (only the timeout is set;
 *	@access must then be 0, EINVAL otherwise)
 * @first: the first slot
 * @n: the number of slots
 * @access: what to trap on the slots from now on: UPAGE_TRAP_READ (every
 *	access: a slot that can be written can be read), UPAGE_TRAP_WRITE
 *	(writes), both, or 0 to lift their traps
 * @timeout_ms: with UPAGE_TRAP_SET_TIMEOUT, how long a faulting thread
 *	waits for a resolve before it gets SIGBUS; 0 (the default) waits
 *	until resolved, the handler goes away, or the thread is killed.
 *	Must be 0 without the flag (EINVAL)
 *
 * Traps. An access to a trapped slot, through any mapping of the space in
 * any process, does not complete: the thread's fault queues an event
 * (struct upage_trap_event) that a handler reads from the space's fd with
 * read(2) and waits for with poll(2)/epoll, and the thread sleeps, without
 * holding its mmap lock, until UPAGE_RESOLVE answers the slot. Several
 * threads faulting on one slot share one event and are resolved together.
 *
 * Write traps catch the first write through each mapping of the slot (the
 * module maps trapped slots read-only); on a MAP_PRIVATE mapping only a
 * write that is the first access to the page can be trapped, since later
 * writes copy the page without asking the module. Setting a trap unmaps
 * the slots everywhere. Lifting a trap lets the threads waiting on those
 * slots go on, as a resolve would.
 *
 * A fault that cannot wait (get_user_pages without a lock to drop, as
 * /proc/pid/mem access by another process) gets SIGBUS (EFAULT for a
 * syscall) at once, without an event. So does an access the kernel makes
 * for a system call (a trapped slot as the buffer of read(2), write(2),
 * O_DIRECT, ...) in a space opened without CAP_SYS_PTRACE: like
 * userfaultfd's UFFD_USER_MODE_ONLY, this keeps an unprivileged handler
 * from holding the kernel in the middle of a system call. The handler is the process that
 * last called read() or poll() on the space: when it closes a descriptor
 * of the space or exits, waiting threads, and later trapped faults until a
 * process reads or polls again, get SIGBUS. So do threads whose wait
 * exceeds the timeout, and threads whose slot a shrink cut off.
 */
struct upage_trap {
	__u32 size;
	__u32 flags;
	__aligned_u64 first;
	__aligned_u64 n;
	__u32 access;
	__u32 timeout_ms;
};

#define UPAGE_TRAP _IO(UPAGE_TYPE, UPAGE_CMD_TRAP)

/**
 * struct upage_trap_event - what read(2) on a space returns, one per event
 * @slot: the trapped slot
 * @address: the faulting address, in the faulting process
 * @access: UPAGE_TRAP_READ or UPAGE_TRAP_WRITE: the faulting access
 * @tid: the faulting thread, in the reader's pid namespace (0 if not
 *	visible there)
 * @flags: 0
 * @__reserved: 0
 *
 * read(2) returns as many whole events as fit in its buffer, oldest
 * first; a buffer smaller than one event is EINVAL. With no event queued
 * it blocks, or fails with EAGAIN under O_NONBLOCK; poll(2) reports
 * EPOLLIN while an event is queued. An event is queued once per waiting
 * episode of a slot: threads that fault on the slot while it is waiting
 * join the first thread's event. Events of slots resolved or lifted
 * before they were read are dropped.
 */
struct upage_trap_event {
	__aligned_u64 slot;
	__aligned_u64 address;
	__u32 access;
	__u32 tid;
	__u32 flags;
	__u32 __reserved;
};

/**
 * enum upage_resolve_action - how UPAGE_RESOLVE answers the waiting threads
 * @UPAGE_RESOLVE_MAP: the slots' current contents (a hole reads zeros)
 * @UPAGE_RESOLVE_COPY: fill the slots, which must be holes (EEXIST
 *	otherwise, as UFFDIO_COPY), with @n pages from the user buffer @src
 * @UPAGE_RESOLVE_ZERO: drop the slots' frames (as UPAGE_OP_DISCARD): they
 *	read zeros
 * @UPAGE_RESOLVE_SIGBUS: the waiting threads get SIGBUS
 */
enum upage_resolve_action {
	UPAGE_RESOLVE_MAP = 1,
	UPAGE_RESOLVE_COPY = 2,
	UPAGE_RESOLVE_ZERO = 3,
	UPAGE_RESOLVE_SIGBUS = 4,
};

/* Flags of struct upage_resolve. */
#define UPAGE_RESOLVE_LIFT	(1U << 0)
#define UPAGE_RESOLVE_POPULATE	(1U << 1)
#define UPAGE_RESOLVE_FLAGS_ALL	(UPAGE_RESOLVE_LIFT | UPAGE_RESOLVE_POPULATE)

/**
 * struct upage_resolve - ioctl(UPAGE_RESOLVE)
 * @size: sizeof(struct upage_resolve)
 * @flags: UPAGE_RESOLVE_LIFT: also lift the traps of the slots;
 *	UPAGE_RESOLVE_POPULATE: map the slots into the caller's own mappings,
 *	and into those of up to 8 other processes with a thread waiting on
 *	them (skipped if their mmap lock is taken), before the threads are
 *	let go (as UPAGE_EDIT_POPULATE: slots still trapped, and the holes
 *	ZERO leaves, are not mapped), so that a waiting thread finds its
 *	page mapped and does not fault again; the threads answered wait
 *	for it
 * @action: an enum upage_resolve_action
 * @__reserved: must be 0
 * @first: the first slot
 * @n: the number of slots, at least 1
 * @src: for UPAGE_RESOLVE_COPY, user pointer to @n pages; 0 otherwise
 * @out_woken: how many waiting threads were let go
 *
 * Answers the threads waiting on slots first..first+n-1 (there may be
 * none: a resolve may come before the fault). Without UPAGE_RESOLVE_LIFT
 * the traps stay: each waiting thread completes the access it faulted on,
 * and later faults trap again. A thread let go with MAP, COPY or ZERO
 * retries its access; one answered with SIGBUS gets SIGBUS, si_addr the
 * faulting address. EBUSY: ZERO on a frame pinned by get_user_pages;
 * nothing was changed.
 *
 * COPY pages are not zeroed first: each is filled from @src whole, or
 * freed if the copy faults.
 */
struct upage_resolve {
	__u32 size;
	__u32 flags;
	__u32 action;
	__u32 __reserved;
	__aligned_u64 first;
	__aligned_u64 n;
	__aligned_u64 src;
	__aligned_u64 out_woken;
};

#define UPAGE_RESOLVE _IO(UPAGE_TYPE, UPAGE_CMD_RESOLVE)

#endif /* _UAPI_LINUX_UPAGE_H */
