// SPDX-License-Identifier: GPL-2.0
/*
 * upagectl, the command line: it reaches a space held by another process
 * (pidfd_getfd), reports and edits it, and answers bad input with a clear
 * message and exit status 2, a refused call with the errno's meaning and
 * exit status 1, changing nothing.
 */
#include <stdio.h>
#include <stdlib.h>

#include "upage_utils.h"

#define UPAGECTL "/upage/tools/upagectl"

/* Run upagectl on this process's @fd with @args; its output in @out. */
static int ctl(int fd, const char *args, char *out, size_t len)
{
	char cmd[512];
	size_t got;
	FILE *f;
	int status;

	snprintf(cmd, sizeof(cmd), "%s -p %d -f %d %s 2>&1", UPAGECTL,
		 getpid(), fd, args);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	got = fread(out, 1, len - 1, f);
	out[got] = 0;
	status = pclose(f);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

FIXTURE(cli) {
	int fd;
	volatile char *p;
	char out[8192];
};

FIXTURE_SETUP(cli)
{
	self->p = NULL;
	if (access(UPAGECTL, X_OK))
		SKIP(return, "%s not installed", UPAGECTL);
	upage_open_or_skip(self->fd);
	upage_resize_ok(self->fd, 4);
	self->p = upage_map(self->fd, 0, 4, MAP_SHARED);
	ASSERT_NE(NULL, self->p);
	self->p[0] = 'a';
	self->p[PAGE] = 'b';
}

FIXTURE_TEARDOWN(cli)
{
	if (self->p)
		munmap((void *)self->p, 4 * PAGE);
	close(self->fd);
}

/* info reports the module's API version. */
TEST_F(cli, info_reports_version)
{
	FILE *f = popen(UPAGECTL " info", "r");
	size_t got;

	ASSERT_NE(NULL, f);
	got = fread(self->out, 1, sizeof(self->out) - 1, f);
	self->out[got] = 0;
	EXPECT_EQ(0, pclose(f));
	EXPECT_NE(NULL, strstr(self->out, "version 1\n"));
}

/* stats and query show another process's space as it is. */
TEST_F(cli, stats_and_query_show_the_space)
{
	ASSERT_EQ(0, ctl(self->fd, "stats", self->out, sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, "pages 4\n"));
	EXPECT_NE(NULL, strstr(self->out, "frames 2\n"));
	ASSERT_EQ(0, ctl(self->fd, "query 0 3", self->out, sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, "resident"));
	EXPECT_NE(NULL, strstr(self->out, "hole"));
}

/* query names evicted and pinned slots as such. */
TEST_F(cli, query_shows_evicted_and_pinned_slots)
{
	upage_require_cmd(self->fd, UPAGE_CMD_RESIDENCY);
	ASSERT_EQ(0, upage_evict(self->fd, 0, 1, NULL));
	ASSERT_EQ(0, upage_pin(self->fd, 1, 1, NULL));
	ASSERT_EQ(0, ctl(self->fd, "query 0 2", self->out, sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, " evicted\n"));
	EXPECT_NE(NULL, strstr(self->out, " resident,pinned\n"));
}

/* An edit made with the command line shows in this process at once. */
TEST_F(cli, swap_edits_the_other_process)
{
	ASSERT_EQ(0, ctl(self->fd, "swap 0 1", self->out, sizeof(self->out)));
	EXPECT_EQ('b', self->p[0]);
	EXPECT_EQ('a', self->p[PAGE]);
	ASSERT_EQ(0, ctl(self->fd, "protect 2 1 read", self->out,
			 sizeof(self->out)));
	EXPECT_EQ(UPAGE_PROT_READ, upage_slot(self->fd, 2).prot);
}

/* A refused edit: exit 1, the errno and what it means; nothing changes. */
TEST_F(cli, refused_edit_explains_errno)
{
	EXPECT_EQ(1, ctl(self->fd, "swap 0 0", self->out, sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, "Invalid argument"));
	EXPECT_NE(NULL, strstr(self->out, "overlaps"));
	EXPECT_EQ(1, ctl(self->fd, "move 3 9", self->out, sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, "beyond the space's size"));
	EXPECT_EQ('a', self->p[0]);
	EXPECT_EQ('b', self->p[PAGE]);
}

/* Bad input: exit 2 with a message naming what was wrong. */
TEST_F(cli, bad_input_is_usage_error)
{
	EXPECT_EQ(2, ctl(self->fd, "protect 0 1 rwx", self->out,
			 sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, "bad protection 'rwx'"));
	EXPECT_EQ(2, ctl(self->fd, "swap 0 x", self->out, sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, "bad slot 'x'"));
	EXPECT_EQ(2, ctl(self->fd, "frobnicate 1 2", self->out,
			 sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, "unknown command"));
}

/* track and dirty list the slots another process wrote, as ranges. */
TEST_F(cli, dirty_lists_the_written_slots)
{
	upage_require_cmd(self->fd, UPAGE_CMD_DIRTY);
	ASSERT_EQ(0, ctl(self->fd, "track 0 4 start", self->out,
			 sizeof(self->out)));
	self->p[0] = 'c';
	self->p[PAGE] = 'd';
	self->p[3 * PAGE] = 'e';
	ASSERT_EQ(0, ctl(self->fd, "query 0 1", self->out, sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, ",tracked,dirty"));
	ASSERT_EQ(0, ctl(self->fd, "dirty 0 4 clear", self->out,
			 sizeof(self->out)));
	EXPECT_STREQ("3 written: 0-1 3\n", self->out);
	ASSERT_EQ(0, ctl(self->fd, "dirty 0 4", self->out, sizeof(self->out)));
	EXPECT_STREQ("0 written:\n", self->out);
	ASSERT_EQ(0, ctl(self->fd, "stats", self->out, sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, "tracked_writes 3\n"));
	EXPECT_EQ(2, ctl(self->fd, "track 0 4 begin", self->out,
			 sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, "bad tracking 'begin'"));
	EXPECT_EQ(1, ctl(self->fd, "dirty 2 4", self->out, sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, "beyond the space's size"));
}

/* trap sets and lifts traps; query shows them. */
TEST_F(cli, trap_shows_in_query)
{
	upage_require_cmd(self->fd, UPAGE_CMD_TRAP);
	ASSERT_EQ(0, ctl(self->fd, "trap 2 2 write", self->out,
			 sizeof(self->out)));
	EXPECT_EQ(UPAGE_SLOT_TRAP_WRITE, upage_slot(self->fd, 3).state &
		  (UPAGE_SLOT_TRAP_READ | UPAGE_SLOT_TRAP_WRITE));
	ASSERT_EQ(0, ctl(self->fd, "query 2 1", self->out, sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, ",trap-write"));
	ASSERT_EQ(0, ctl(self->fd, "trap 2 2 none", self->out,
			 sizeof(self->out)));
	EXPECT_EQ(0, upage_slot(self->fd, 3).state &
		  (UPAGE_SLOT_TRAP_READ | UPAGE_SLOT_TRAP_WRITE));
	EXPECT_EQ(2, ctl(self->fd, "trap 2 2 exec", self->out,
			 sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, "bad trap 'exec'"));
}

/* An fd that is not a space is refused as such. */
TEST_F(cli, fd_not_a_space_is_enotty)
{
	int null = open("/dev/null", O_RDONLY);

	ASSERT_LE(0, null);
	EXPECT_EQ(1, ctl(null, "stats", self->out, sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, "not a upage space"));
	close(null);
}

TEST_HARNESS_MAIN
