// SPDX-License-Identifier: GPL-2.0
/*
 * Pinning (UPAGE_RES_PIN / UPAGE_RES_UNPIN): pinned frames are resident
 * (evicted ones are read back, holes get frames), eviction skips them,
 * the pin belongs to the frame, and each pinned frame is charged one page
 * against RLIMIT_MEMLOCK: past it, ENOMEM and nothing newly pinned.
 */
#include <stdlib.h>
#include <sys/resource.h>

#include "upage_utils.h"

#define SLOTS 16
#define NOBODY 65534

FIXTURE(pin) {
	int fd;
	volatile unsigned char *p;
	unsigned char *want;
};

FIXTURE_SETUP(pin)
{
	self->p = NULL;
	self->want = NULL;
	upage_open_or_skip(self->fd);
	upage_require_cmd(self->fd, UPAGE_CMD_RESIDENCY);
	upage_resize_ok(self->fd, SLOTS);
	self->p = upage_map(self->fd, 0, SLOTS, MAP_SHARED);
	ASSERT_NE(NULL, self->p);
	self->want = upage_random_pages(SLOTS, SLOTS + 2);
	ASSERT_NE(NULL, self->want);
	memcpy((void *)self->p, self->want, SLOTS * PAGE);
}

FIXTURE_TEARDOWN(pin)
{
	if (self->p)
		munmap((void *)self->p, SLOTS * PAGE);
	free(self->want);
	if (self->fd >= 0)
		close(self->fd);
}

/* Pin reads evicted frames back; evict then skips them until unpinned. */
TEST_F(pin, pinned_frames_stay_resident)
{
	uint64_t done = 0;

	ASSERT_EQ(0, upage_evict(self->fd, 0, SLOTS, &done));
	ASSERT_EQ(0, upage_pin(self->fd, 0, SLOTS / 2, &done));
	EXPECT_EQ(SLOTS / 2, done);
	EXPECT_EQ(UPAGE_SLOT_RESIDENT | UPAGE_SLOT_PINNED,
		  upage_slot(self->fd, 3).state);
	EXPECT_EQ(UPAGE_SLOT_EVICTED, upage_slot(self->fd, SLOTS / 2).state);

	ASSERT_EQ(0, upage_prefetch(self->fd, 0, SLOTS, &done));
	ASSERT_EQ(0, upage_evict(self->fd, 0, SLOTS, &done));
	EXPECT_EQ(SLOTS / 2, done);
	EXPECT_EQ(UPAGE_SLOT_RESIDENT | UPAGE_SLOT_PINNED,
		  upage_slot(self->fd, 0).state);
	EXPECT_TRUE(upage_same(self->p, self->want, SLOTS * PAGE));

	ASSERT_EQ(0, upage_unpin(self->fd, 0, SLOTS, &done));
	EXPECT_EQ(SLOTS / 2, done);
	EXPECT_EQ(UPAGE_SLOT_RESIDENT, upage_slot(self->fd, 0).state);
	ASSERT_EQ(0, upage_evict(self->fd, 0, SLOTS, &done));
	EXPECT_EQ(SLOTS, done);
	EXPECT_TRUE(upage_same(self->p, self->want, SLOTS * PAGE));
}

/* A pinned hole gets a zeroed frame at once. */
TEST_F(pin, pinning_a_hole_gives_it_a_frame)
{
	uint64_t done = 0;

	upage_resize_ok(self->fd, SLOTS + 2);
	EXPECT_EQ(0, upage_slot(self->fd, SLOTS).frame_id);
	ASSERT_EQ(0, upage_pin(self->fd, SLOTS, 2, &done));
	EXPECT_EQ(2, done);
	EXPECT_NE(0, upage_slot(self->fd, SLOTS + 1).frame_id);
	EXPECT_EQ(UPAGE_SLOT_RESIDENT | UPAGE_SLOT_PINNED,
		  upage_slot(self->fd, SLOTS + 1).state);
}

/* The pin belongs to the frame: aliases show it, moves carry it. */
TEST_F(pin, pin_follows_the_frame)
{
	uint64_t done = 0;

	upage_alias_ok(self->fd, 1, 0, 1);
	ASSERT_EQ(0, upage_pin(self->fd, 0, 1, &done));
	EXPECT_EQ(1, done);
	EXPECT_TRUE(upage_slot(self->fd, 1).state & UPAGE_SLOT_PINNED);
	/* Both slots show one frame: nothing new to pin. */
	ASSERT_EQ(0, upage_pin(self->fd, 0, 2, &done));
	EXPECT_EQ(0, done);
	upage_move_ok(self->fd, 5, 0, 1);
	EXPECT_TRUE(upage_slot(self->fd, 5).state & UPAGE_SLOT_PINNED);
	ASSERT_EQ(0, upage_unpin(self->fd, 1, 1, &done));
	EXPECT_EQ(1, done);
	EXPECT_FALSE(upage_slot(self->fd, 5).state & UPAGE_SLOT_PINNED);
}

/*
 * In a child without CAP_IPC_LOCK and with RLIMIT_MEMLOCK of 4 pages: 4
 * frames pin, a 5th is ENOMEM with nothing newly pinned, and charges come
 * back by unpin, by the death of a frame and by close.
 */
static uint32_t slot_state(int fd, uint64_t slot)
{
	struct upage_slot_info info;

	return upage_query(fd, slot, 1, &info) ? UINT32_MAX : info.state;
}

static int pin_limit_child(int fd)
{
	struct rlimit rl = { 4 * PAGE, 4 * PAGE };
	uint64_t done = 0;
	int a, b;

	/* Two spaces of the child's own, opened while it may still open. */
	a = upage_open(O_CLOEXEC);
	b = upage_open(O_CLOEXEC);
	if (a < 0 || b < 0 || upage_resize(a, 4, NULL) || upage_resize(b, 4, NULL))
		return 10;
	if (setrlimit(RLIMIT_MEMLOCK, &rl) || setresuid(NOBODY, NOBODY, NOBODY))
		return 11;
	if (upage_pin(fd, 0, 4, &done) || done != 4)
		return 12;
	if (upage_pin(fd, 4, 2, &done) != -ENOMEM || done != 0)
		return 13;
	if (slot_state(fd, 4) != UPAGE_SLOT_RESIDENT ||
	    slot_state(fd, 5) != UPAGE_SLOT_RESIDENT)
		return 14;
	if (upage_unpin(fd, 0, 1, &done) || done != 1)
		return 15;
	if (upage_pin(fd, 4, 1, &done) || done != 1)
		return 16;
	/* Discarding a pinned frame gives its charge back. */
	if (upage_discard(fd, 4, 1) || upage_pin(fd, 5, 1, &done) || done != 1)
		return 17;
	if (upage_unpin(fd, 0, SLOTS, &done) || done != 4)
		return 18;
	/* So does closing a space: b may pin 4 once a is gone. */
	if (upage_pin(a, 0, 4, &done) || done != 4)
		return 19;
	if (upage_pin(b, 0, 1, &done) != -ENOMEM)
		return 20;
	close(a);
	if (upage_pin(b, 0, 4, &done) || done != 4)
		return 21;
	return 0;
}

TEST_F(pin, pin_limit_is_enomem_and_charges_come_back)
{
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(pin_limit_child(self->fd));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status)) {
		TH_LOG("pin_limit_child failed at step %d", WEXITSTATUS(status));
	}
}

/* Bad ranges change nothing. */
TEST_F(pin, bad_ranges_are_einval)
{
	uint64_t done = 7;

	EXPECT_EQ(-EINVAL, upage_pin(self->fd, SLOTS - 1, 2, &done));
	EXPECT_EQ(0, done);
	EXPECT_EQ(-EINVAL, upage_pin(self->fd, 0, 0, &done));
	EXPECT_EQ(-EINVAL, upage_unpin(self->fd, UINT64_MAX, 2, &done));
	EXPECT_EQ(UPAGE_SLOT_RESIDENT, upage_slot(self->fd, SLOTS - 1).state);
}

TEST_HARNESS_MAIN
