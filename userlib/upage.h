/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * libupage: one function per upage ioctl. Every function returns 0 (or a
 * non-negative count where documented) on success and -errno on failure;
 * errno is left as the system call set it. The ABI types are those of
 * <linux/upage.h>; this header declares none of its own.
 */
#ifndef LIBUPAGE_H
#define LIBUPAGE_H

#include <stddef.h>
#include <stdint.h>
#include <linux/upage.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Open /dev/upage: a new, empty space. Returns the fd or -errno. */
int upage_open(int flags);

/* UPAGE_API: fill @api with what the module supports. */
int upage_api(int fd, struct upage_api *api);

/* UPAGE_RESIZE: set the number of slots; *old_pages gets the old one. */
int upage_resize(int fd, uint64_t pages, uint64_t *old_pages);

/*
 * UPAGE_EDIT: apply @count ops atomically. On failure, *error_index (if
 * not NULL) gets the index of the refused op, or UINT32_MAX.
 */
int upage_edit(int fd, const struct upage_edit_op *ops, uint32_t count,
	       uint32_t *error_index);
/* upage_edit() with struct upage_edit's flags (UPAGE_EDIT_POPULATE). */
int upage_edit_flags(int fd, const struct upage_edit_op *ops, uint32_t count,
		     uint32_t flags, uint32_t *error_index);

/* One-op edits, each a UPAGE_EDIT of one op. */
int upage_alias(int fd, uint64_t dst, uint64_t src, uint64_t n);
int upage_alias_cow(int fd, uint64_t dst, uint64_t src, uint64_t n);
int upage_move(int fd, uint64_t dst, uint64_t src, uint64_t n);
int upage_swap(int fd, uint64_t a, uint64_t b, uint64_t n);
int upage_protect(int fd, uint64_t first, uint64_t n, uint32_t prot);
int upage_discard(int fd, uint64_t first, uint64_t n);

/*
 * UPAGE_RESIDENCY: page the frames of slots first..first+n-1 out to the
 * space's backing store, or back in. *done (if not NULL) gets the number
 * of frames written out or read in, on failure too.
 */
int upage_evict(int fd, uint64_t first, uint64_t n, uint64_t *done);
int upage_prefetch(int fd, uint64_t first, uint64_t n, uint64_t *done);
/* upage_prefetch() with flags (UPAGE_RES_POPULATE). */
int upage_prefetch_flags(int fd, uint64_t first, uint64_t n, uint32_t flags,
			 uint64_t *done);

/*
 * UPAGE_RESIDENCY: keep the frames of slots first..first+n-1 resident
 * (charged to RLIMIT_MEMLOCK), or let them go again. *done (if not NULL)
 * gets the number of frames newly pinned or unpinned.
 */
int upage_pin(int fd, uint64_t first, uint64_t n, uint64_t *done);
int upage_unpin(int fd, uint64_t first, uint64_t n, uint64_t *done);

/*
 * UPAGE_RESIDENCY: the contents of the frames of slots first..first+n-1
 * may be dropped under memory pressure unless written again, as
 * MADV_FREE. *done (if not NULL) gets the number of frames newly marked.
 */
int upage_lazy_free(int fd, uint64_t first, uint64_t n, uint64_t *done);

/*
 * UPAGE_STORE: page the space out to the regular file @store_fd (open for
 * reading and writing), from byte @offset on; -1 and 0 for the module's
 * own shmem store. Only while no frame is evicted (-EBUSY otherwise),
 * unless it is the current store: then only @flags change
 * (UPAGE_STORE_RECLAIM: the shrinker may page out cold frames).
 */
int upage_set_store(int fd, int store_fd, uint64_t offset, uint32_t flags);

/*
 * UPAGE_TRACK: track writes to slots first..first+n-1, starting clean, or
 * stop tracking them.
 */
int upage_track_start(int fd, uint64_t first, uint64_t n);
int upage_track_stop(int fd, uint64_t first, uint64_t n);

/*
 * UPAGE_DIRTY: bit i of @bitmap ((n + 63) / 64 words) is set if slot
 * first + i was written since it was armed; with @flags
 * UPAGE_DIRTY_CLEAR the slots reported are re-armed in the same step.
 * *nr_dirty (if not NULL) gets the number of bits set.
 */
int upage_dirty(int fd, uint64_t first, uint64_t n, uint64_t *bitmap,
		uint32_t flags, uint64_t *nr_dirty);

/*
 * UPAGE_TRAP: trap @access (UPAGE_TRAP_READ, UPAGE_TRAP_WRITE, both; 0
 * lifts) on slots first..first+n-1. Events are read from @fd with read(2)
 * as struct upage_trap_event.
 */
int upage_trap(int fd, uint64_t first, uint64_t n, uint32_t access);

/* UPAGE_TRAP: how long a trapped thread waits before SIGBUS (0: forever). */
int upage_trap_timeout(int fd, uint32_t timeout_ms);

/*
 * UPAGE_RESOLVE: answer the threads waiting on slots first..first+n-1 with
 * @action (enum upage_resolve_action; @src holds n pages for
 * UPAGE_RESOLVE_COPY); @flags UPAGE_RESOLVE_LIFT lifts the traps too.
 * *woken (if not NULL) gets the number of threads let go.
 */
int upage_resolve(int fd, uint64_t first, uint64_t n, uint32_t action,
		  uint32_t flags, const void *src, uint64_t *woken);

/* UPAGE_QUERY: the state of slots first..first+n-1 into info[0..n-1]. */
int upage_query(int fd, uint64_t first, uint64_t n,
		struct upage_slot_info *info);

/*
 * UPAGE_QUERY by address: the slot mapped at @addr in this process and its
 * state. -ENOENT if @addr is not in a mapping of the space @fd.
 */
int upage_query_addr(int fd, const void *addr, uint64_t *slot,
		     struct upage_slot_info *info);

/* UPAGE_STATS: the space's counters. */
int upage_stats(int fd, struct upage_stats *stats);

/*
 * Move the private, readable and writable, page-aligned range
 * [addr, addr+len) into a new space, in place: its contents are copied into
 * the space, which is then mapped MAP_SHARED over the range. The program
 * keeps using the memory by name and pointer, and its pages become slots
 * 0..len/pagesize-1 of the returned space. Returns the space's fd
 * (O_CLOEXEC) or -errno: -EINVAL if addr or len is not page-aligned or len
 * is 0. Other threads must not write the range during the call.
 */
int upage_adopt(void *addr, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* LIBUPAGE_H */
