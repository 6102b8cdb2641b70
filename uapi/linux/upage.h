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
 *   otherwise); they are ignored.
 * - Outputs (``out_*`` fields) are written back up to the smaller of the two
 *   sizes.
 *
 * Errors, for every ioctl:
 *
 * - ENOTTY: unknown ioctl number.
 * - EFAULT: the argument, or a buffer it points to, is not accessible.
 * - EOPNOTSUPP: an unknown flag, or a non-zero ``__reserved`` field.
 * - EINVAL: a field has a value out of range (a slot range that overflows
 *   or lies beyond the space's size, n == 0, ...).
 * - ENOSPC: a module limit (pages per space, pages in total) would be
 *   exceeded.
 * - ENOMEM: the kernel ran out of memory, or the caller's memory cgroup hit
 *   its limit.
 *
 * A call that fails changes nothing.
 */

#define UPAGE_TYPE 0xBA

enum {
	UPAGE_CMD_BASE = 0x00,
	UPAGE_CMD_API = UPAGE_CMD_BASE,
	UPAGE_CMD_RESIZE,
};

/* The interface version reported by UPAGE_API. */
#define UPAGE_API_VERSION 1

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
 */
struct upage_resize {
	__u32 size;
	__u32 flags;
	__aligned_u64 pages;
	__aligned_u64 out_old_pages;
};

#define UPAGE_RESIZE _IO(UPAGE_TYPE, UPAGE_CMD_RESIZE)

#endif /* _UAPI_LINUX_UPAGE_H */
