// SPDX-License-Identifier: GPL-2.0
/*
 * Limits and accounting: frames are charged to the memory cgroup of the
 * task that makes them and uncharged when the space goes; the module's
 * max_total_pages caps frames of all spaces (SIGBUS for a fault, ENOSPC
 * for an edit) and max_space_pages caps one space's size.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "upage_utils.h"

#define PARAM_DIR "/sys/module/upage/parameters/"
#define CG_ROOT "/sys/fs/cgroup"
#define CG_TEST CG_ROOT "/upage-limits"

static long read_long(const char *path)
{
	char buf[64] = "";
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	return buf[0] ? strtol(buf, NULL, 10) : -1;
}

static int write_str(const char *path, const char *s)
{
	FILE *f = fopen(path, "w");
	int ret;

	if (!f)
		return -errno;
	ret = fputs(s, f) < 0 ? -EIO : 0;
	if (fclose(f))
		ret = -errno;
	return ret;
}

static int write_long(const char *path, long v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%ld\n", v);
	return write_str(path, buf);
}

FIXTURE(limit) {
	int fd;
	long saved_total;
};

FIXTURE_SETUP(limit)
{
	upage_open_or_skip(self->fd);
	self->saved_total = read_long(PARAM_DIR "max_total_pages");
	if (self->saved_total < 0)
		SKIP(return, "no %smax_total_pages", PARAM_DIR);
}

FIXTURE_TEARDOWN(limit)
{
	if (self->saved_total > 0)
		write_long(PARAM_DIR "max_total_pages", self->saved_total);
	close(self->fd);
}

/* A fault that needs a frame beyond max_total_pages is SIGBUS. */
TEST_F(limit, total_pages_limit_faults_sigbus)
{
	struct upage_stats st;
	char *p;

	upage_resize_ok(self->fd, 8);
	p = upage_map(self->fd, 0, 8, MAP_SHARED);
	ASSERT_NE(NULL, p);
	p[0] = 1;
	ASSERT_EQ(0, upage_stats(self->fd, &st));
	ASSERT_EQ(1, st.out_frames);
	/* Other spaces may exist: allow exactly what is in use now. */
	ASSERT_EQ(0, write_long(PARAM_DIR "max_total_pages", 1));
	EXPECT_EQ(SIGBUS, upage_touch_signal(p + PAGE, 1));
	EXPECT_EQ(0, upage_touch_signal(p, 1));
	ASSERT_EQ(0, write_long(PARAM_DIR "max_total_pages", self->saved_total));
	EXPECT_EQ(0, upage_touch_signal(p + PAGE, 1));
	munmap(p, 8 * PAGE);
}

/* An alias of holes needs frames: over the limit it is ENOSPC, no change. */
TEST_F(limit, total_pages_limit_refuses_alias_of_holes)
{
	struct upage_slot_info info[4];
	uint32_t idx = 0;
	struct upage_edit_op op = {
		.op = UPAGE_OP_ALIAS, .dst = 0, .src = 2, .n = 2,
	};

	upage_resize_ok(self->fd, 4);
	ASSERT_EQ(0, write_long(PARAM_DIR "max_total_pages", 0));
	EXPECT_EQ(-ENOSPC, upage_edit(self->fd, &op, 1, &idx));
	EXPECT_EQ(0, idx);
	ASSERT_EQ(0, upage_query(self->fd, 0, 4, info));
	for (int i = 0; i < 4; i++)
		EXPECT_EQ(0, info[i].frame_id);
	ASSERT_EQ(0, write_long(PARAM_DIR "max_total_pages", self->saved_total));
	EXPECT_EQ(0, upage_edit(self->fd, &op, 1, &idx));
}

/* max_space_pages is what UPAGE_API reports and what RESIZE enforces. */
TEST_F(limit, space_pages_limit_is_reported_and_enforced)
{
	long saved = read_long(PARAM_DIR "max_space_pages");
	struct upage_api api;

	ASSERT_LT(0, saved);
	ASSERT_EQ(0, write_long(PARAM_DIR "max_space_pages", 100));
	ASSERT_EQ(0, upage_api(self->fd, &api));
	EXPECT_EQ(100, api.out_max_pages);
	EXPECT_EQ(0, upage_resize(self->fd, 100, NULL));
	EXPECT_EQ(-ENOSPC, upage_resize(self->fd, 101, NULL));
	ASSERT_EQ(0, write_long(PARAM_DIR "max_space_pages", saved));
}

/*
 * Frames are charged to the memory cgroup of the task that faults them in,
 * and given back when the space is closed. memory.current moves by more
 * than the frames: each CPU keeps a stock of up to 64 pages charged ahead
 * (MEMCG_CHARGE_BATCH), and freed slab objects (the frames' structs) may
 * stay charged a while (KASAN's quarantine on the debug kernel): so 64
 * pages of slack on 1024.
 */
#define CHARGE_SLACK 64

TEST(frames_are_charged_to_the_memcg)
{
	const long pages = 1024;	/* 4 MiB, far above the noise */
	long before, touched, closed;
	int status, fd;
	pid_t pid;

	if (access(CG_ROOT "/cgroup.controllers", R_OK))
		SKIP(return, "no cgroup v2 at " CG_ROOT);
	if (write_str(CG_ROOT "/cgroup.subtree_control", "+memory") ||
	    (mkdir(CG_TEST, 0755) && errno != EEXIST))
		SKIP(return, "cannot make a memory cgroup");

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		char *p;

		if (write_long(CG_TEST "/cgroup.procs", getpid()))
			_exit(10);
		fd = upage_open(O_CLOEXEC);
		if (fd < 0 || upage_resize(fd, pages, NULL))
			_exit(11);
		p = upage_map(fd, 0, pages, MAP_SHARED);
		if (!p)
			_exit(12);
		before = read_long(CG_TEST "/memory.current");
		for (long i = 0; i < pages; i++)
			p[i * PAGE] = 1;
		touched = read_long(CG_TEST "/memory.current");
		munmap(p, pages * PAGE);
		close(fd);
		closed = read_long(CG_TEST "/memory.current");
		printf("# memory.current: %ld before, %ld touched, %ld closed\n",
		       before, touched, closed);
		if (touched - before < (pages - CHARGE_SLACK) * (long)PAGE)
			_exit(20);
		if (touched - closed < (pages - CHARGE_SLACK) * (long)PAGE)
			_exit(21);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	rmdir(CG_TEST);
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

TEST_HARNESS_MAIN
