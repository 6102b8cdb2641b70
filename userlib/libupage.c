// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>

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
