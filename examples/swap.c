// SPDX-License-Identifier: MIT
/*
 * swap: can the pages behind two addresses be exchanged without copying?
 *
 * Fill two pages, swap their slots, and show that the contents changed
 * places and that each frame id moved with its contents.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "upage.h"

#define PAGE 4096

static int fail(const char *what, int err)
{
	fprintf(stderr, "swap: %s: %s\n", what, strerror(-err));
	return 1;
}

/* Every byte of @page is @c. */
static int all(const char *page, char c)
{
	for (int i = 0; i < PAGE; i++)
		if (page[i] != c)
			return 0;
	return 1;
}

int main(void)
{
	struct upage_slot_info before[2], after[2];
	char *p;
	int fd, ret;

	fd = upage_open(O_CLOEXEC);
	if (fd < 0)
		return fail("open /dev/upage", fd);
	ret = upage_resize(fd, 2, NULL);
	if (ret)
		return fail("resize", ret);
	p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		perror("swap: mmap");
		return 1;
	}

	memset(p, 'A', PAGE);
	memset(p + PAGE, 'B', PAGE);
	ret = upage_query(fd, 0, 2, before);
	if (ret)
		return fail("query", ret);
	printf("swap: before: slot 0 is all '%c' (frame %llu), slot 1 is all '%c' (frame %llu)\n",
	       p[0], (unsigned long long)before[0].frame_id,
	       p[PAGE], (unsigned long long)before[1].frame_id);

	ret = upage_swap(fd, 0, 1, 1);
	if (ret)
		return fail("swap slots 0 and 1", ret);
	ret = upage_query(fd, 0, 2, after);
	if (ret)
		return fail("query", ret);
	printf("swap: after:  slot 0 is all '%c' (frame %llu), slot 1 is all '%c' (frame %llu)\n",
	       p[0], (unsigned long long)after[0].frame_id,
	       p[PAGE], (unsigned long long)after[1].frame_id);

	if (!all(p, 'B') || !all(p + PAGE, 'A')) {
		printf("swap: the contents were not exchanged\n");
		return 1;
	}
	if (before[0].frame_id == before[1].frame_id ||
	    after[0].frame_id != before[1].frame_id ||
	    after[1].frame_id != before[0].frame_id) {
		printf("swap: the frame ids did not move with the contents\n");
		return 1;
	}
	printf("swap: ok: the frames changed places, nothing was copied\n");
	return 0;
}
