/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * libupage: one function per upage ioctl. Every function returns 0 (or a
 * non-negative count where documented) on success and -errno on failure;
 * errno is left as the system call set it. The ABI types are those of
 * <linux/upage.h>; this header declares none of its own.
 */
#ifndef LIBUPAGE_H
#define LIBUPAGE_H

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

#ifdef __cplusplus
}
#endif

#endif /* LIBUPAGE_H */
