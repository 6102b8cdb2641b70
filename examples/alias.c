// SPDX-License-Identifier: MIT
/*
 * alias: can two addresses show one physical page?
 *
 * Alias slot 1 to slot 0, write through slot 1's address, read through
 * slot 0's, and ask the module: both slots report the same frame and two
 * aliases.
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
	fprintf(stderr, "alias: %s: %s\n", what, strerror(-err));
	return 1;
}

int main(void)
{
	struct upage_slot_info info[2];
	char *p, *a, *b;
	int fd, ret;

	fd = upage_open(O_CLOEXEC);
	if (fd < 0)
		return fail("open /dev/upage", fd);
	ret = upage_resize(fd, 2, NULL);
	if (ret)
		return fail("resize", ret);
	p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		perror("alias: mmap");
		return 1;
	}
	a = p;		/* slot 0 */
	b = p + PAGE;	/* slot 1 */

	ret = upage_alias(fd, 1, 0, 1);
	if (ret)
		return fail("alias slot 1 to slot 0", ret);
	printf("alias: slot 1 (%p) now aliases slot 0 (%p)\n", (void *)b, (void *)a);

	strcpy(b, "written through slot 1");
	printf("alias: wrote \"%s\" through slot 1\n", b);
	printf("alias: slot 0 reads \"%s\"\n", a);
	if (strcmp(a, "written through slot 1"))
		return 1;

	strcpy(a, "and back through slot 0");
	printf("alias: wrote through slot 0, slot 1 reads \"%s\"\n", b);
	if (strcmp(b, "and back through slot 0"))
		return 1;

	ret = upage_query(fd, 0, 2, info);
	if (ret)
		return fail("query", ret);
	for (int i = 0; i < 2; i++)
		printf("alias: slot %d: frame_id %llu, nr_aliases %u, %s\n", i,
		       (unsigned long long)info[i].frame_id, info[i].nr_aliases,
		       info[i].state & UPAGE_SLOT_RESIDENT ? "resident" : "not resident");
	if (info[0].frame_id == 0 || info[0].frame_id != info[1].frame_id ||
	    info[0].nr_aliases != 2 || info[1].nr_aliases != 2) {
		printf("alias: expected one frame id and nr_aliases 2 in both slots\n");
		return 1;
	}
	printf("alias: ok: two addresses, one physical page\n");
	return 0;
}
