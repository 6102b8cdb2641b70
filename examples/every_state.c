// SPDX-License-Identifier: MIT
/*
 * every_state: what does each slot state look like from outside?
 *
 * Build one space of 128 slots with a run of every state a slot can be in
 * (resident, hole, aliased, copy-on-write, evicted, pinned, lazily freed,
 * protected, tracked, dirty, trapped) and count them with UPAGE_QUERY.
 * With --wait, stay alive holding the space until SIGTERM or SIGINT, so
 * that `upagectl map PID` can draw it (the demo does).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "upage.h"

#define PAGE 4096
#define SLOTS 128

static int fail(const char *what, int err)
{
	fprintf(stderr, "every_state: %s: %s\n", what, strerror(-err));
	return 1;
}

static void touch(char *p, int first, int n)
{
	int i;

	for (i = first; i < first + n; i++)
		p[(size_t)i * PAGE] = (char)i;
}

/* The runs, in slot order; 60..127 holes but for 64..95 and 100. */
static int build(int fd, char *p)
{
	int ret;

	touch(p, 0, 8);				/* resident; 4..7 aliased below */
	touch(p, 16, 4);			/* copy-on-write sources */
	touch(p, 24, 8 + 4 + 4 + 4 + 4 + 4);	/* to evict .. to track */
	touch(p, 64, 32);
	ret = upage_alias(fd, 12, 4, 4);	/* 8..11 stay holes */
	if (!ret)
		ret = upage_alias_cow(fd, 20, 16, 4);
	if (!ret)
		ret = upage_alias(fd, 100, 70, 1);	/* a link across rows */
	if (!ret)
		ret = upage_evict(fd, 24, 8, NULL);
	if (!ret)
		ret = upage_pin(fd, 32, 4, NULL);
	if (!ret)
		ret = upage_lazy_free(fd, 36, 4, NULL);
	if (!ret)
		ret = upage_protect(fd, 40, 4, UPAGE_PROT_NONE);
	if (!ret)
		ret = upage_protect(fd, 44, 4, UPAGE_PROT_READ);
	if (!ret)
		ret = upage_track_start(fd, 48, 8);
	if (ret)
		return ret;
	touch(p, 52, 4);			/* tracked and written: dirty */
	return upage_trap(fd, 56, 4, UPAGE_TRAP_WRITE);
}

int main(int argc, char **argv)
{
	struct upage_slot_info info[SLOTS];
	int fd, ret, i, resident = 0, shared = 0, trapped = 0, sig;
	int wait = argc > 1 && !strcmp(argv[1], "--wait");
	char *p;
	sigset_t set;

	fd = upage_open(O_CLOEXEC);
	if (fd < 0)
		return fail("open /dev/upage", fd);
	ret = upage_resize(fd, SLOTS, NULL);
	if (ret)
		return fail("resize", ret);
	p = mmap(NULL, SLOTS * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return fail("mmap", -1);
	ret = build(fd, p);
	if (ret)
		return fail("building the states", ret);
	ret = upage_query(fd, 0, SLOTS, info);
	if (ret)
		return fail("query", ret);
	for (i = 0; i < SLOTS; i++) {
		resident += !!(info[i].state & UPAGE_SLOT_RESIDENT);
		shared += info[i].nr_aliases > 1;
		trapped += !!(info[i].state & UPAGE_SLOT_TRAP_WRITE);
	}
	printf("every_state: %d slots: %d resident, %d sharing a frame, %d trapped\n",
	       SLOTS, resident, shared, trapped);
	if (!wait) {
		printf("every_state: ok (run with --wait, then upagectl map %s)\n",
		       "PID");
		return 0;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	printf("every_state: ready, pid %d: upagectl map %d\n", getpid(), getpid());
	fflush(stdout);
	sigwait(&set, &sig);
	return 0;
}
