// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "upage.h"

#define UPAGE_EXPORT __attribute__((visibility("default")))

static int upage_ioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) < 0 ? -errno : 0;
}

UPAGE_EXPORT int upage_open(int flags)
{
	int fd = open("/dev/upage", O_RDWR | flags);

	return fd < 0 ? -errno : fd;
}

UPAGE_EXPORT int upage_api(int fd, struct upage_api *api)
{
	*api = (struct upage_api){ .size = sizeof(*api) };
	return upage_ioctl(fd, UPAGE_API, api);
}

UPAGE_EXPORT int upage_resize(int fd, uint64_t pages, uint64_t *old_pages)
{
	struct upage_resize cmd = {
		.size = sizeof(cmd),
		.pages = pages,
	};
	int ret = upage_ioctl(fd, UPAGE_RESIZE, &cmd);

	if (!ret && old_pages)
		*old_pages = cmd.out_old_pages;
	return ret;
}

UPAGE_EXPORT int upage_edit(int fd, const struct upage_edit_op *ops,
			    uint32_t count, uint32_t *error_index)
{
	return upage_edit_flags(fd, ops, count, 0, error_index);
}

UPAGE_EXPORT int upage_edit_flags(int fd, const struct upage_edit_op *ops,
				  uint32_t count, uint32_t flags,
				  uint32_t *error_index)
{
	struct upage_edit cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.op_size = sizeof(*ops),
		.count = count,
		.ops = (uintptr_t)ops,
		.out_error_index = UINT32_MAX,
	};
	int ret = upage_ioctl(fd, UPAGE_EDIT, &cmd);

	if (ret && error_index)
		*error_index = cmd.out_error_index;
	return ret;
}

static int upage_edit_one(int fd, uint32_t op, uint64_t dst, uint64_t src,
			  uint64_t n, uint32_t prot)
{
	struct upage_edit_op one = {
		.op = op,
		.dst = dst,
		.src = src,
		.n = n,
		.prot = prot,
	};

	return upage_edit(fd, &one, 1, NULL);
}

UPAGE_EXPORT int upage_alias(int fd, uint64_t dst, uint64_t src, uint64_t n)
{
	return upage_edit_one(fd, UPAGE_OP_ALIAS, dst, src, n, 0);
}

UPAGE_EXPORT int upage_alias_cow(int fd, uint64_t dst, uint64_t src,
				 uint64_t n)
{
	return upage_edit_one(fd, UPAGE_OP_ALIAS_COW, dst, src, n, 0);
}

UPAGE_EXPORT int upage_move(int fd, uint64_t dst, uint64_t src, uint64_t n)
{
	return upage_edit_one(fd, UPAGE_OP_MOVE, dst, src, n, 0);
}

UPAGE_EXPORT int upage_swap(int fd, uint64_t a, uint64_t b, uint64_t n)
{
	return upage_edit_one(fd, UPAGE_OP_SWAP, a, b, n, 0);
}

UPAGE_EXPORT int upage_protect(int fd, uint64_t first, uint64_t n,
			       uint32_t prot)
{
	return upage_edit_one(fd, UPAGE_OP_PROTECT, first, 0, n, prot);
}

UPAGE_EXPORT int upage_discard(int fd, uint64_t first, uint64_t n)
{
	return upage_edit_one(fd, UPAGE_OP_DISCARD, first, 0, n, 0);
}

static int upage_residency(int fd, uint32_t op, uint32_t flags,
			   uint64_t first, uint64_t n, uint64_t *done)
{
	struct upage_residency cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.op = op,
		.first = first,
		.n = n,
	};
	int ret = upage_ioctl(fd, UPAGE_RESIDENCY, &cmd);

	if (done)
		*done = cmd.out_frames;
	return ret;
}

UPAGE_EXPORT int upage_evict(int fd, uint64_t first, uint64_t n,
			     uint64_t *done)
{
	return upage_residency(fd, UPAGE_RES_EVICT, 0, first, n, done);
}

UPAGE_EXPORT int upage_prefetch(int fd, uint64_t first, uint64_t n,
				uint64_t *done)
{
	return upage_residency(fd, UPAGE_RES_PREFETCH, 0, first, n, done);
}

UPAGE_EXPORT int upage_prefetch_flags(int fd, uint64_t first, uint64_t n,
				      uint32_t flags, uint64_t *done)
{
	return upage_residency(fd, UPAGE_RES_PREFETCH, flags, first, n, done);
}

UPAGE_EXPORT int upage_pin(int fd, uint64_t first, uint64_t n, uint64_t *done)
{
	return upage_residency(fd, UPAGE_RES_PIN, 0, first, n, done);
}

UPAGE_EXPORT int upage_unpin(int fd, uint64_t first, uint64_t n,
			     uint64_t *done)
{
	return upage_residency(fd, UPAGE_RES_UNPIN, 0, first, n, done);
}

UPAGE_EXPORT int upage_lazy_free(int fd, uint64_t first, uint64_t n,
				 uint64_t *done)
{
	return upage_residency(fd, UPAGE_RES_LAZY_FREE, 0, first, n, done);
}

UPAGE_EXPORT int upage_set_store(int fd, int store_fd, uint64_t offset,
				 uint32_t flags)
{
	struct upage_store cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.fd = store_fd,
		.offset = offset,
	};

	return upage_ioctl(fd, UPAGE_STORE, &cmd);
}

static int upage_track_op(int fd, uint32_t op, uint64_t first, uint64_t n)
{
	struct upage_track cmd = {
		.size = sizeof(cmd),
		.op = op,
		.first = first,
		.n = n,
	};

	return upage_ioctl(fd, UPAGE_TRACK, &cmd);
}

UPAGE_EXPORT int upage_track_start(int fd, uint64_t first, uint64_t n)
{
	return upage_track_op(fd, UPAGE_TRACK_START, first, n);
}

UPAGE_EXPORT int upage_track_stop(int fd, uint64_t first, uint64_t n)
{
	return upage_track_op(fd, UPAGE_TRACK_STOP, first, n);
}

UPAGE_EXPORT int upage_dirty(int fd, uint64_t first, uint64_t n,
			     uint64_t *bitmap, uint32_t flags,
			     uint64_t *nr_dirty)
{
	struct upage_dirty cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.first = first,
		.n = n,
		.bitmap = (uintptr_t)bitmap,
	};
	int ret;

	ret = upage_ioctl(fd, UPAGE_DIRTY, &cmd);
	if (!ret && nr_dirty)
		*nr_dirty = cmd.out_dirty;
	return ret;
}

UPAGE_EXPORT int upage_trap(int fd, uint64_t first, uint64_t n,
			    uint32_t access)
{
	struct upage_trap cmd = {
		.size = sizeof(cmd),
		.first = first,
		.n = n,
		.access = access,
	};

	return upage_ioctl(fd, UPAGE_TRAP, &cmd);
}

UPAGE_EXPORT int upage_trap_timeout(int fd, uint32_t timeout_ms)
{
	struct upage_trap cmd = {
		.size = sizeof(cmd),
		.flags = UPAGE_TRAP_SET_TIMEOUT,
		.timeout_ms = timeout_ms,
	};

	return upage_ioctl(fd, UPAGE_TRAP, &cmd);
}

UPAGE_EXPORT int upage_resolve(int fd, uint64_t first, uint64_t n,
			       uint32_t action, uint32_t flags,
			       const void *src, uint64_t *woken)
{
	struct upage_resolve cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.action = action,
		.first = first,
		.n = n,
		.src = (uintptr_t)src,
	};
	int ret;

	ret = upage_ioctl(fd, UPAGE_RESOLVE, &cmd);
	if (!ret && woken)
		*woken = cmd.out_woken;
	return ret;
}

UPAGE_EXPORT int upage_query(int fd, uint64_t first, uint64_t n,
			     struct upage_slot_info *info)
{
	struct upage_query cmd = {
		.size = sizeof(cmd),
		.first = first,
		.n = n,
		.info = (uintptr_t)info,
		.info_size = sizeof(*info),
	};

	return upage_ioctl(fd, UPAGE_QUERY, &cmd);
}

UPAGE_EXPORT int upage_query_addr(int fd, const void *addr, uint64_t *slot,
				  struct upage_slot_info *info)
{
	struct upage_query cmd = {
		.size = sizeof(cmd),
		.flags = UPAGE_QUERY_BY_ADDR,
		.first = (uintptr_t)addr,
		.n = 1,
		.info = (uintptr_t)info,
		.info_size = sizeof(*info),
	};
	int ret = upage_ioctl(fd, UPAGE_QUERY, &cmd);

	if (!ret && slot)
		*slot = cmd.out_slot;
	return ret;
}

UPAGE_EXPORT int upage_stats(int fd, struct upage_stats *stats)
{
	*stats = (struct upage_stats){ .size = sizeof(*stats) };
	return upage_ioctl(fd, UPAGE_STATS, stats);
}

UPAGE_EXPORT int upage_adopt(void *addr, size_t len)
{
	long page = sysconf(_SC_PAGESIZE);
	void *tmp, *at;
	int fd, ret;

	if (!len || (uintptr_t)addr % page || len % page)
		return -EINVAL;
	fd = upage_open(O_CLOEXEC);
	if (fd < 0)
		return fd;
	ret = upage_resize(fd, len / page, NULL);
	if (ret)
		goto err_close;

	/* Copy the contents into the space through a temporary mapping... */
	tmp = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (tmp == MAP_FAILED) {
		ret = -errno;
		goto err_close;
	}
	memcpy(tmp, addr, len);
	munmap(tmp, len);

	/* ...then put the space where the memory was. */
	at = mmap(addr, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		  fd, 0);
	if (at == MAP_FAILED) {
		ret = -errno;
		goto err_close;
	}
	return fd;

err_close:
	close(fd);
	return ret;
}
