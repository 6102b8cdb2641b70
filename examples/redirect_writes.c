// SPDX-License-Identifier: MIT
/*
 * redirect_writes: can writes to a page land in a copy while the original
 * stays as it was?
 *
 * Make slot 1 a copy-on-write alias of slot 0 and write through slot 1:
 * slot 0 keeps its contents and the two slots now hold different frames.
 * Then sync the copy back by moving slot 1 onto slot 0.
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
	fprintf(stderr, "redirect_writes: %s: %s\n", what, strerror(-err));
	return 1;
}

static int query2(int fd, struct upage_slot_info info[2])
{
	int ret = upage_query(fd, 0, 2, info);

	if (ret)
		return ret;
	for (int i = 0; i < 2; i++)
		printf("redirect_writes:   slot %d: frame_id %llu%s\n", i,
		       (unsigned long long)info[i].frame_id,
		       info[i].state & UPAGE_SLOT_COW ? " (copy-on-write)" :
		       info[i].frame_id ? "" : " (hole)");
	return 0;
}

int main(void)
{
	struct upage_slot_info info[2];
	uint64_t first_frame;
	char *p, *orig, *copy;
	int fd, ret;

	fd = upage_open(O_CLOEXEC);
	if (fd < 0)
		return fail("open /dev/upage", fd);
	ret = upage_resize(fd, 2, NULL);
	if (ret)
		return fail("resize", ret);
	p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		perror("redirect_writes: mmap");
		return 1;
	}
	orig = p;		/* slot 0 */
	copy = p + PAGE;	/* slot 1 */

	strcpy(orig, "original");
	printf("redirect_writes: slot 0 holds \"%s\"\n", orig);

	ret = upage_alias_cow(fd, 1, 0, 1);
	if (ret)
		return fail("alias_cow slot 1 onto slot 0", ret);
	printf("redirect_writes: slot 1 is a copy-on-write alias of slot 0; it reads \"%s\"\n",
	       copy);
	if (strcmp(copy, "original"))
		return 1;
	ret = query2(fd, info);
	if (ret)
		return fail("query", ret);
	if (info[0].frame_id == 0 || info[0].frame_id != info[1].frame_id ||
	    !(info[1].state & UPAGE_SLOT_COW)) {
		printf("redirect_writes: expected one shared frame, slot 1 copy-on-write\n");
		return 1;
	}
	first_frame = info[0].frame_id;

	strcpy(orig, "original, updated");
	printf("redirect_writes: wrote \"%s\" through slot 0; slot 1 follows: \"%s\"\n",
	       orig, copy);
	if (strcmp(copy, "original, updated"))
		return 1;

	strcpy(copy, "redirected write");
	printf("redirect_writes: wrote \"%s\" through slot 1\n", copy);
	printf("redirect_writes: slot 0 still reads \"%s\"\n", orig);
	if (strcmp(orig, "original, updated") || strcmp(copy, "redirected write"))
		return 1;
	ret = query2(fd, info);
	if (ret)
		return fail("query", ret);
	if (info[0].frame_id != first_frame || info[1].frame_id == first_frame ||
	    info[1].frame_id == 0) {
		printf("redirect_writes: expected slot 1 to have its own frame now\n");
		return 1;
	}

	ret = upage_move(fd, 0, 1, 1);
	if (ret)
		return fail("move slot 1 onto slot 0", ret);
	printf("redirect_writes: moved slot 1 onto slot 0 (sync back)\n");
	printf("redirect_writes: slot 0 now reads \"%s\"\n", orig);
	ret = query2(fd, info);
	if (ret)
		return fail("query", ret);
	if (strcmp(orig, "redirected write") || info[1].frame_id != 0) {
		printf("redirect_writes: expected the write in slot 0 and slot 1 a hole\n");
		return 1;
	}
	printf("redirect_writes: ok: the writes went to a copy, and the copy was synced back\n");
	return 0;
}
