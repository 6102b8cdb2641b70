// SPDX-License-Identifier: MIT
/*
 * hello: the smallest upage program. Open a space, give it slots, map it,
 * write, and read back through a second mapping of the same slots.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "upage.h"

int main(void)
{
	struct upage_api api;
	char *a, *b;
	int fd, ret;

	fd = upage_open(O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "hello: open /dev/upage: %s\n", strerror(-fd));
		return 1;
	}
	ret = upage_api(fd, &api);
	if (ret == 0)
		ret = upage_resize(fd, 4, NULL);
	if (ret) {
		fprintf(stderr, "hello: %s\n", strerror(-ret));
		return 1;
	}
	printf("hello: upage API %u, %llu-byte pages, up to %llu pages per space\n",
	       api.out_version, (unsigned long long)api.out_page_size,
	       (unsigned long long)api.out_max_pages);

	a = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	b = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 2 * 4096);
	if (a == MAP_FAILED || b == MAP_FAILED) {
		perror("hello: mmap");
		return 1;
	}
	printf("hello: slot 2 reads %s before any write\n",
	       b[0] == 0 ? "zeros" : "GARBAGE");
	strcpy(a + 2 * 4096, "written through the first mapping");
	printf("hello: second mapping of slot 2 reads \"%s\"\n", b);
	if (strcmp(b, "written through the first mapping"))
		return 1;
	printf("hello: ok\n");
	return 0;
}
