// SPDX-License-Identifier: GPL-2.0
/*
 * The basics every other suite relies on: a space opens, reports its API,
 * resizes, maps, fills holes with zeros on first touch, keeps what was
 * written, and raises SIGBUS beyond its end, as a file does.
 */
#include "upage_utils.h"

FIXTURE(space) {
	int fd;
};

FIXTURE_SETUP(space)
{
	upage_open_or_skip(self->fd);
}

FIXTURE_TEARDOWN(space)
{
	if (self->fd >= 0)
		close(self->fd);
}

/* UPAGE_API reports version 1, the page size and the ioctls it has. */
TEST_F(space, api_reports_version_and_ioctls)
{
	struct upage_api api;

	ASSERT_EQ(0, upage_api(self->fd, &api));
	EXPECT_EQ(UPAGE_API_VERSION, api.out_version);
	EXPECT_EQ(PAGE, api.out_page_size);
	EXPECT_TRUE(api.out_ioctls & (1ULL << UPAGE_CMD_API));
	EXPECT_TRUE(api.out_ioctls & (1ULL << UPAGE_CMD_RESIZE));
	EXPECT_LT(0, api.out_max_pages);
}

/* A new space has no slots; resize reports the size it replaced. */
TEST_F(space, resize_reports_old_size)
{
	uint64_t old = 99;

	ASSERT_EQ(0, upage_resize(self->fd, 8, &old));
	EXPECT_EQ(0, old);
	ASSERT_EQ(0, upage_resize(self->fd, 3, &old));
	EXPECT_EQ(8, old);
	ASSERT_EQ(0, upage_resize(self->fd, 3, &old));
	EXPECT_EQ(3, old);
}

/* Every slot of a new space reads as zeros. */
TEST_F(space, first_touch_reads_zeros)
{
	unsigned char *p;
	size_t i;

	upage_resize_ok(self->fd, 16);
	p = upage_map(self->fd, 0, 16, MAP_SHARED);
	ASSERT_NE(NULL, p);
	for (i = 0; i < 16 * PAGE; i++)
		ASSERT_EQ(0, p[i]);
	munmap(p, 16 * PAGE);
}

/* What is written stays in the space after the mapping is gone. */
TEST_F(space, writes_outlive_the_mapping)
{
	unsigned char *p;
	size_t i;

	upage_resize_ok(self->fd, 4);
	p = upage_map(self->fd, 0, 4, MAP_SHARED);
	ASSERT_NE(NULL, p);
	for (i = 0; i < 4 * PAGE; i++)
		p[i] = (unsigned char)(i * 7 + 1);
	munmap(p, 4 * PAGE);

	p = upage_map(self->fd, 0, 4, MAP_SHARED);
	ASSERT_NE(NULL, p);
	for (i = 0; i < 4 * PAGE; i++)
		ASSERT_EQ((unsigned char)(i * 7 + 1), p[i]);
	munmap(p, 4 * PAGE);
}

/* Two mappings of one slot see the same bytes, at any offset. */
TEST_F(space, two_mappings_share_a_slot)
{
	char *a, *b;

	upage_resize_ok(self->fd, 8);
	a = upage_map(self->fd, 0, 8, MAP_SHARED);
	b = upage_map(self->fd, 5, 2, MAP_SHARED);
	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	strcpy(a + 5 * PAGE + 100, "through a");
	EXPECT_STREQ("through a", b + 100);
	strcpy(b + PAGE, "through b");
	EXPECT_STREQ("through b", a + 6 * PAGE);
	munmap(a, 8 * PAGE);
	munmap(b, 2 * PAGE);
}

/* A child made by fork shares the frames of the parent's mapping. */
TEST_F(space, fork_shares_frames)
{
	volatile int *p;
	int status;
	pid_t pid;

	upage_resize_ok(self->fd, 1);
	p = upage_map(self->fd, 0, 1, MAP_SHARED);
	ASSERT_NE(NULL, p);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		p[1] = 42;
		_exit(p[0] == 0 ? 0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(42, p[1]);
	munmap((void *)p, PAGE);
}

/* An access beyond the end of the space is SIGBUS, as for a file. */
TEST_F(space, beyond_end_is_sigbus)
{
	char *p;

	upage_resize_ok(self->fd, 1);
	p = upage_map(self->fd, 0, 2, MAP_SHARED);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(0, upage_touch_signal(p, 1));
	EXPECT_EQ(SIGBUS, upage_touch_signal(p + PAGE, 0));
	EXPECT_EQ(SIGBUS, upage_touch_signal(p + PAGE, 1));
	munmap(p, 2 * PAGE);
}

/* Shrinking unmaps the cut slots everywhere; growing back gives zeros. */
TEST_F(space, shrink_cuts_and_regrow_is_zero)
{
	char *p;

	upage_resize_ok(self->fd, 2);
	p = upage_map(self->fd, 0, 2, MAP_SHARED);
	ASSERT_NE(NULL, p);
	p[PAGE] = 'x';
	upage_resize_ok(self->fd, 1);
	EXPECT_EQ(SIGBUS, upage_touch_signal(p + PAGE, 0));
	upage_resize_ok(self->fd, 2);
	EXPECT_EQ(0, p[PAGE]);
	munmap(p, 2 * PAGE);
}

/* A size above the module's limit is refused and changes nothing. */
TEST_F(space, resize_above_limit_is_enospc)
{
	struct upage_api api;
	uint64_t old;

	ASSERT_EQ(0, upage_api(self->fd, &api));
	upage_resize_ok(self->fd, 2);
	upage_resize_err(ENOSPC, self->fd, api.out_max_pages + 1);
	upage_resize_err(ENOSPC, self->fd, UINT64_MAX);
	ASSERT_EQ(0, upage_resize(self->fd, 2, &old));
	EXPECT_EQ(2, old);
}

/* A mapping offset beyond any possible space is refused at mmap time. */
TEST_F(space, mmap_offset_beyond_limit_is_einval)
{
	struct upage_api api;
	void *p;

	ASSERT_EQ(0, upage_api(self->fd, &api));
	p = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, self->fd,
		 (off_t)(api.out_max_pages * PAGE));
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
}

TEST_HARNESS_MAIN
