// SPDX-License-Identifier: MIT
/*
 * adopt: can a global variable's page be shared with a forked child, the
 * child writing it by name?
 *
 * Without upage, fork() gives the child a private copy of .data, and the
 * parent never sees the child's writes. upage_adopt() moves the page into
 * a space mapped MAP_SHARED in place, so after fork() both processes use
 * the same physical page, and the initial data is still there.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "upage.h"

#define PAGE 4096

/* In .data, with an initial value, filling exactly one aligned page. */
static struct {
	char greeting[64];
	long counter;
	char rest[PAGE - 64 - sizeof(long)];
} shared_page __attribute__((aligned(PAGE))) = {
	.greeting = "initialised in .data",
	.counter = 41,
};

int main(void)
{
	struct upage_slot_info info;
	uint64_t slot;
	int fd, ret, status;
	pid_t pid;

	setvbuf(stdout, NULL, _IOLBF, 0);
	_Static_assert(sizeof(shared_page) == PAGE, "one page");
	printf("adopt: global at %p reads \"%s\", counter %ld\n",
	       (void *)&shared_page, shared_page.greeting, shared_page.counter);

	fd = upage_adopt(&shared_page, PAGE);
	if (fd < 0) {
		fprintf(stderr, "adopt: upage_adopt: %s\n", strerror(-fd));
		return 1;
	}
	ret = upage_query_addr(fd, &shared_page, &slot, &info);
	if (ret) {
		fprintf(stderr, "adopt: query: %s\n", strerror(-ret));
		return 1;
	}
	printf("adopt: adopted: the global is now slot %llu (frame %llu) of space fd %d\n",
	       (unsigned long long)slot, (unsigned long long)info.frame_id, fd);
	printf("adopt: after adoption it reads \"%s\", counter %ld\n",
	       shared_page.greeting, shared_page.counter);
	if (strcmp(shared_page.greeting, "initialised in .data") ||
	    shared_page.counter != 41)
		return 1;

	pid = fork();
	if (pid < 0) {
		perror("adopt: fork");
		return 1;
	}
	if (pid == 0) {
		shared_page.counter++;
		strcpy(shared_page.greeting, "written by the child");
		printf("adopt: child: set greeting and counter to %ld, by name\n",
		       shared_page.counter);
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status))
		return 1;
	printf("adopt: parent: the global reads \"%s\", counter %ld\n",
	       shared_page.greeting, shared_page.counter);
	if (strcmp(shared_page.greeting, "written by the child") ||
	    shared_page.counter != 42) {
		printf("adopt: the parent did not see the child's write\n");
		return 1;
	}
	printf("adopt: ok: the child's write to the global reached the parent\n");
	return 0;
}
