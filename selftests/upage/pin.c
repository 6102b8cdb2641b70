// SPDX-License-Identifier: GPL-2.0
/*
 * Pinning (UPAGE_RES_PIN / UPAGE_RES_UNPIN): pinned frames are resident
 * (evicted ones are read back, holes get frames), eviction skips them,
 * the pin belongs to the frame, and each pinned frame is charged one page
 * against RLIMIT_MEMLOCK: past it, ENOMEM and nothing newly pinned.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

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

/*
 * A pin reads evicted frames back from the program's own store with no
 * lock held, as a fault does (a store whose read takes the inode lock
 * would otherwise wait for a pwrite() to it that faults on this space),
 * and pins each frame in the lock hold that brings it in: all come back
 * whole and pinned, and eviction then skips them.
 */
TEST_F(pin, pin_reads_evicted_frames_back_from_a_program_store)
{
	int memfd = memfd_create("upage-pin-store", MFD_CLOEXEC);
	uint64_t done = 0;
	unsigned int i;

	ASSERT_LE(0, memfd);
	ASSERT_EQ(0, upage_set_store(self->fd, memfd, 0, 0));
	ASSERT_EQ(0, upage_evict(self->fd, 0, SLOTS, &done));
	ASSERT_EQ(SLOTS, done);
	ASSERT_EQ(0, upage_pin(self->fd, 0, SLOTS, &done));
	ASSERT_EQ(SLOTS, done);
	for (i = 0; i < SLOTS; i++)
		ASSERT_EQ(UPAGE_SLOT_RESIDENT | UPAGE_SLOT_PINNED,
			  upage_slot(self->fd, i).state);
	ASSERT_EQ(0, upage_evict(self->fd, 0, SLOTS, &done));
	ASSERT_EQ(0, done);
	ASSERT_TRUE(upage_same(self->p, self->want, SLOTS * PAGE));
	ASSERT_EQ(0, upage_unpin(self->fd, 0, SLOTS, &done));
	ASSERT_EQ(SLOTS, done);
	close(memfd);
}

/*
 * While a pin reads frames back with no lock held, other threads evict
 * and discard the range: a failed pin must unpin exactly what it pinned
 * (a frame it pinned may have moved or died meanwhile), so that after the
 * storm the charges are what they were: RLIMIT_MEMLOCK's SLOTS pages pin
 * again, and one more page is ENOMEM.
 */
struct pin_storm {
	int fd;
	atomic_int stop;
	atomic_int bad;
	atomic_long pins;
	atomic_long failed;
};

static void *pin_storm_evictor(void *arg)
{
	struct pin_storm *r = arg;
	unsigned int seed = 7;
	uint64_t done;

	while (!atomic_load(&r->stop)) {
		upage_evict(r->fd, 0, SLOTS, &done);
		if (!(rand_r(&seed) % 4))
			upage_discard(r->fd, rand_r(&seed) % SLOTS, 1);
	}
	return NULL;
}

static void *pin_storm_pinner(void *arg)
{
	struct pin_storm *r = arg;
	uint64_t done;

	while (!atomic_load(&r->stop)) {
		int ret = upage_pin(r->fd, 0, SLOTS, &done);

		if (!ret)
			atomic_fetch_add(&r->pins, 1);
		else if (ret == -EAGAIN || ret == -ENOMEM)
			atomic_fetch_add(&r->failed, 1);
		else
			atomic_fetch_add(&r->bad, 1);
		if (ret && done)
			atomic_fetch_add(&r->bad, 1);
		upage_unpin(r->fd, 0, SLOTS, &done);
	}
	return NULL;
}

static int pin_storm_child(int fd)
{
	struct rlimit rl = { SLOTS * PAGE, SLOTS * PAGE };
	struct pin_storm r = { .fd = fd };
	int memfd = memfd_create("upage-pin-storm", MFD_CLOEXEC);
	time_t start;
	uint64_t done = 0;
	pthread_t th[3];
	int b, i;

	b = upage_open(O_CLOEXEC);
	if (memfd < 0 || b < 0 || upage_resize(b, 1, NULL) ||
	    upage_set_store(fd, memfd, 0, 0))
		return 10;
	if (setrlimit(RLIMIT_MEMLOCK, &rl) || setresuid(NOBODY, NOBODY, NOBODY))
		return 11;
	if (pthread_create(&th[0], NULL, pin_storm_evictor, &r) ||
	    pthread_create(&th[1], NULL, pin_storm_pinner, &r) ||
	    pthread_create(&th[2], NULL, pin_storm_pinner, &r))
		return 12;
	start = time(NULL);
	while (time(NULL) < start + 3)
		usleep(100 * 1000);
	atomic_store(&r.stop, 1);
	for (i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	if (atomic_load(&r.bad))
		return 13;
	if (!atomic_load(&r.pins))
		return 14;
	if (upage_unpin(fd, 0, SLOTS, &done))
		return 15;
	/* Every charge came back: the whole limit pins, and no more. */
	if (upage_pin(fd, 0, SLOTS, &done) || done != SLOTS)
		return 16;
	if (upage_pin(b, 0, 1, &done) != -ENOMEM)
		return 17;
	if (upage_unpin(fd, 0, SLOTS, &done) || done != SLOTS)
		return 18;
	if (upage_pin(b, 0, 1, &done) || done != 1)
		return 19;
	return 0;
}

TEST_F_TIMEOUT(pin, failed_pins_racing_evictions_give_back_exactly_their_charges, 120)
{
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(pin_storm_child(self->fd));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status)) {
		TH_LOG("pin_storm_child failed at step %d", WEXITSTATUS(status));
	}
}

/*
 * A pin that fails must not unpin frames that another pin, running while
 * the first dropped the lock to read a frame back, reported pinned
 * (review 11): A, limited to half the range, pins evicted frames one by
 * one and fails with ENOMEM half-way; B pins the first ten meanwhile and
 * succeeds. In any order of the two, those ten end up pinned.
 */
#define RACE_SLOTS 2048

static int half_limit_pinner(int fd)
{
	struct rlimit rl = { RACE_SLOTS / 2 * PAGE, RACE_SLOTS / 2 * PAGE };
	uint64_t done = 0;

	if (setrlimit(RLIMIT_MEMLOCK, &rl) || setresuid(NOBODY, NOBODY, NOBODY))
		return 11;
	return upage_pin(fd, 0, RACE_SLOTS, &done) == -ENOMEM ? 0 : 12;
}

TEST(a_failed_pin_never_unpins_what_another_pin_reported_pinned)
{
	int fd, memfd, status, tries, bad = 0, raced = 0;
	unsigned char *p;
	uint64_t done;

	upage_open_or_skip(fd);
	upage_resize_ok(fd, RACE_SLOTS);
	memfd = memfd_create("upage-pin-race", MFD_CLOEXEC);
	ASSERT_LE(0, memfd);
	ASSERT_EQ(0, upage_set_store(fd, memfd, 0, 0));
	p = upage_map(fd, 0, RACE_SLOTS, MAP_SHARED);
	ASSERT_NE(NULL, p);
	memset(p, 0x5a, (size_t)RACE_SLOTS * PAGE);
	for (tries = 0; tries < 3; tries++) {
		pid_t pid;
		int b;

		upage_unpin(fd, 0, RACE_SLOTS, &done);
		ASSERT_EQ(0, upage_evict(fd, 0, RACE_SLOTS, &done));
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid)
			_exit(half_limit_pinner(fd));
		/* Once A has pinned slot 9, pin 0..9 as B. */
		while (!(slot_state(fd, 9) & UPAGE_SLOT_PINNED) &&
		       waitpid(pid, &status, WNOHANG) == 0)
			;
		raced += !!(slot_state(fd, 9) & UPAGE_SLOT_PINNED);
		b = upage_pin(fd, 0, 10, &done);
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		ASSERT_TRUE(WIFEXITED(status));
		ASSERT_EQ(0, WEXITSTATUS(status));
		ASSERT_EQ(0, b);
		if (!(slot_state(fd, 0) & UPAGE_SLOT_PINNED) ||
		    !(slot_state(fd, 9) & UPAGE_SLOT_PINNED))
			bad++;
	}
	TH_LOG("%d of %d rounds pinned while the other pin ran", raced, tries);
	EXPECT_EQ(0, bad);
	EXPECT_LT(0, raced);
	upage_unpin(fd, 0, RACE_SLOTS, &done);
	munmap(p, (size_t)RACE_SLOTS * PAGE);
	close(memfd);
	close(fd);
}

/* Bad ranges change nothing. */
TEST_F(pin, bad_ranges_are_einval)
{
	uint64_t done = 7;

	EXPECT_EQ(-EINVAL, upage_pin(self->fd, SLOTS - 1, 2, &done));
	EXPECT_EQ(0, done);
	EXPECT_EQ(-EINVAL, upage_pin(self->fd, 0, 0, &done));
	EXPECT_EQ(-EINVAL, upage_unpin(self->fd, UINT64_MAX, 2, &done));
	/* Refused before anything is allocated for n (review 11). */
	EXPECT_EQ(-EINVAL, upage_pin(self->fd, 0, UINT64_MAX, &done));
	EXPECT_EQ(-EINVAL, upage_pin(self->fd, 8, 1ULL << 40, &done));
	EXPECT_EQ(-EINVAL, upage_pin(self->fd, 0, 1ULL << 26, &done));
	EXPECT_EQ(UPAGE_SLOT_RESIDENT, upage_slot(self->fd, SLOTS - 1).state);
}

TEST_HARNESS_MAIN
