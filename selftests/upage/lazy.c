// SPDX-License-Identifier: GPL-2.0
/*
 * Lazy free (UPAGE_RES_LAZY_FREE) and reclaim: a lazily freed frame keeps
 * its data until it is reclaimed, and for good once it is written again;
 * a reclaimed one reads zeros. Reclaim is driven here by eviction and by
 * the shrinker, which writing 2 to /proc/sys/vm/drop_caches runs. It also
 * pages out cold frames: of every space on the module's own store, and of
 * spaces on a program's store that asked (UPAGE_STORE_RECLAIM).
 */
#include <stdlib.h>
#include <sys/uio.h>

#include "upage_utils.h"

#define SLOTS 16

FIXTURE(lazy) {
	int fd;
	volatile unsigned char *p;
	unsigned char *want;
};

FIXTURE_SETUP(lazy)
{
	self->p = NULL;
	self->want = NULL;
	upage_open_or_skip(self->fd);
	upage_require_cmd(self->fd, UPAGE_CMD_RESIDENCY);
	upage_resize_ok(self->fd, SLOTS);
	self->p = upage_map(self->fd, 0, SLOTS, MAP_SHARED);
	ASSERT_NE(NULL, self->p);
	self->want = upage_random_pages(SLOTS, SLOTS + 3);
	ASSERT_NE(NULL, self->want);
	memcpy((void *)self->p, self->want, SLOTS * PAGE);
}

FIXTURE_TEARDOWN(lazy)
{
	if (self->p)
		munmap((void *)self->p, SLOTS * PAGE);
	free(self->want);
	if (self->fd >= 0)
		close(self->fd);
}

static struct upage_stats stats(int fd)
{
	struct upage_stats st;

	memset(&st, 0, sizeof(st));
	upage_stats(fd, &st);
	return st;
}

/* Run every shrinker, ours included (needs root, as the suites run). */
static int drop_caches(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
	int ok;

	if (fd < 0)
		return -errno;
	ok = write(fd, "2", 1) == 1;
	close(fd);
	return ok ? 0 : -EIO;
}

static int all_zero(const volatile unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return 0;
	return 1;
}

/* Lazily freed slots say so, and keep their data until reclaimed. */
TEST_F(lazy, lazy_freed_slots_keep_data_until_reclaimed)
{
	uint64_t done = 0;

	ASSERT_EQ(0, upage_lazy_free(self->fd, 0, SLOTS, &done));
	EXPECT_EQ(SLOTS, done);
	EXPECT_EQ(UPAGE_SLOT_RESIDENT | UPAGE_SLOT_LAZY,
		  upage_slot(self->fd, 3).state);
	/* Reading is not writing: still lazy. */
	EXPECT_TRUE(upage_same(self->p, self->want, SLOTS * PAGE));
	EXPECT_EQ(UPAGE_SLOT_RESIDENT | UPAGE_SLOT_LAZY,
		  upage_slot(self->fd, 3).state);
	/* Again: nothing new. */
	ASSERT_EQ(0, upage_lazy_free(self->fd, 0, SLOTS, &done));
	EXPECT_EQ(0, done);
}

/*
 * Evicting lazily freed frames drops those not written since (no store
 * write) and pages out the rewritten ones with their new data.
 */
TEST_F(lazy, evict_drops_unwritten_and_keeps_rewritten)
{
	struct upage_stats before = stats(self->fd), after;
	uint64_t done = 0;
	size_t i;

	ASSERT_EQ(0, upage_lazy_free(self->fd, 0, SLOTS, &done));
	for (i = 0; i < SLOTS / 2; i++) {
		self->p[i * PAGE + 5] ^= 0x5a;
		self->want[i * PAGE + 5] ^= 0x5a;
	}
	EXPECT_EQ(UPAGE_SLOT_RESIDENT, upage_slot(self->fd, 0).state);
	ASSERT_EQ(0, upage_evict(self->fd, 0, SLOTS, &done));
	EXPECT_EQ(SLOTS, done);
	after = stats(self->fd);
	EXPECT_EQ(SLOTS / 2, after.out_evictions - before.out_evictions);
	EXPECT_EQ(SLOTS / 2, after.out_reclaims - before.out_reclaims);
	EXPECT_EQ(SLOTS / 2 * PAGE,
		  after.out_bytes_written - before.out_bytes_written);
	EXPECT_EQ(UPAGE_SLOT_EVICTED, upage_slot(self->fd, 0).state);
	EXPECT_EQ(UPAGE_SLOT_RECLAIMED, upage_slot(self->fd, SLOTS - 1).state);

	EXPECT_TRUE(upage_same(self->p, self->want, SLOTS / 2 * PAGE));
	EXPECT_TRUE(all_zero(self->p + SLOTS / 2 * PAGE, SLOTS / 2 * PAGE));
	/* Read back as zeros: still reported reclaimed, until written. */
	EXPECT_EQ(UPAGE_SLOT_RESIDENT | UPAGE_SLOT_RECLAIMED,
		  upage_slot(self->fd, SLOTS - 1).state);
	self->p[(SLOTS - 1) * PAGE] = 1;
	EXPECT_EQ(UPAGE_SLOT_RESIDENT, upage_slot(self->fd, SLOTS - 1).state);
	after = stats(self->fd);
	EXPECT_EQ(SLOTS / 2, after.out_page_ins - before.out_page_ins);
}

/* The shrinker reclaims lazily freed frames that were not written since. */
TEST_F(lazy, shrinker_reclaims_unwritten_lazy_frames)
{
	struct upage_stats before = stats(self->fd), after;
	uint64_t done = 0;
	size_t i;

	ASSERT_EQ(0, upage_lazy_free(self->fd, 0, SLOTS, &done));
	for (i = 0; i < SLOTS; i += 2) {
		self->p[i * PAGE] ^= 0xff;
		self->want[i * PAGE] ^= 0xff;
	}
	ASSERT_EQ(0, drop_caches());
	after = stats(self->fd);
	EXPECT_EQ(SLOTS / 2, after.out_reclaims - before.out_reclaims);
	/*
	 * The written frames may be paged out too (they are cold), and only
	 * they are written: a reclaimed lazy frame costs no write.
	 */
	EXPECT_EQ(PAGE * (after.out_shrinker_evictions -
			  before.out_shrinker_evictions),
		  after.out_bytes_written - before.out_bytes_written);
	for (i = 0; i < SLOTS; i++) {
		uint32_t st = upage_slot(self->fd, i).state;

		if (i % 2) {
			EXPECT_EQ(UPAGE_SLOT_RECLAIMED, st);
			EXPECT_TRUE(all_zero(self->p + i * PAGE, PAGE));
		} else {
			EXPECT_TRUE(st == UPAGE_SLOT_RESIDENT ||
				    st == UPAGE_SLOT_EVICTED);
			EXPECT_TRUE(upage_same(self->p + i * PAGE,
					       self->want + i * PAGE, PAGE));
		}
	}
}

/* A lazily freed evicted frame is dropped at once, with its store copy. */
TEST_F(lazy, lazy_free_of_evicted_frame_drops_it)
{
	struct upage_stats before, after;
	uint64_t done = 0;

	ASSERT_EQ(0, upage_evict(self->fd, 0, SLOTS, &done));
	before = stats(self->fd);
	ASSERT_EQ(0, upage_lazy_free(self->fd, 0, 4, &done));
	EXPECT_EQ(4, done);
	EXPECT_EQ(UPAGE_SLOT_RECLAIMED, upage_slot(self->fd, 0).state);
	EXPECT_EQ(UPAGE_SLOT_EVICTED, upage_slot(self->fd, 4).state);
	EXPECT_TRUE(all_zero(self->p, 4 * PAGE));
	EXPECT_TRUE(upage_same(self->p + 4 * PAGE, self->want + 4 * PAGE,
			       (SLOTS - 4) * PAGE));
	after = stats(self->fd);
	EXPECT_EQ(4, after.out_reclaims - before.out_reclaims);
	EXPECT_EQ((SLOTS - 4) * PAGE, after.out_bytes_read - before.out_bytes_read);
}

/* Pinned frames are marked but never reclaimed while pinned. */
TEST_F(lazy, pinned_lazy_frames_are_not_reclaimed)
{
	uint64_t done = 0;

	ASSERT_EQ(0, upage_pin(self->fd, 0, 4, &done));
	ASSERT_EQ(0, upage_lazy_free(self->fd, 0, 4, &done));
	EXPECT_EQ(4, done);
	ASSERT_EQ(0, drop_caches());
	ASSERT_EQ(0, upage_evict(self->fd, 0, 4, &done));
	EXPECT_EQ(0, done);
	EXPECT_EQ(UPAGE_SLOT_RESIDENT | UPAGE_SLOT_PINNED | UPAGE_SLOT_LAZY,
		  upage_slot(self->fd, 2).state);
	EXPECT_TRUE(upage_same(self->p, self->want, 4 * PAGE));
	ASSERT_EQ(0, upage_unpin(self->fd, 0, 4, &done));
	ASSERT_EQ(0, drop_caches());
	EXPECT_EQ(UPAGE_SLOT_RECLAIMED, upage_slot(self->fd, 2).state);
	EXPECT_TRUE(all_zero(self->p, 4 * PAGE));
}

/*
 * A write through an alias, from another process, or by the kernel on
 * another process's behalf (process_vm_writev) cancels the lazy free.
 */
TEST_F(lazy, writes_through_alias_child_and_kernel_keep_data)
{
	volatile unsigned char *q;
	struct iovec local, remote;
	unsigned char byte = 0x77;
	uint64_t done = 0;
	pid_t pid;
	int status;

	upage_alias_ok(self->fd, 1, 0, 1);
	memcpy(self->want + PAGE, self->want, PAGE);
	q = upage_map(self->fd, 0, SLOTS, MAP_SHARED);
	ASSERT_NE(NULL, q);
	ASSERT_EQ(0, upage_lazy_free(self->fd, 0, SLOTS, &done));
	EXPECT_EQ(SLOTS - 1, done);

	/* Through the alias at slot 1, in a second mapping. */
	q[PAGE + 9] = 0x11;
	self->want[9] = self->want[PAGE + 9] = 0x11;
	/* From a child, through its own mapping. */
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		self->p[2 * PAGE + 9] = 0x22;
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, status);
	self->want[2 * PAGE + 9] = 0x22;
	/* By the kernel: a child writes into our mapping. */
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		local.iov_base = &byte;
		local.iov_len = 1;
		remote.iov_base = (void *)(self->p + 3 * PAGE + 9);
		remote.iov_len = 1;
		_exit(process_vm_writev(getppid(), &local, 1, &remote, 1, 0) != 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, status);
	self->want[3 * PAGE + 9] = byte;

	ASSERT_EQ(0, drop_caches());
	/* Kept: resident, or paged out (cold frames are), never dropped. */
	for (int i = 0; i < 4; i++) {
		uint32_t st = upage_slot(self->fd, i).state;

		EXPECT_EQ(0, st & (UPAGE_SLOT_RECLAIMED | UPAGE_SLOT_LAZY));
		EXPECT_NE(0, st & (UPAGE_SLOT_RESIDENT | UPAGE_SLOT_EVICTED));
	}
	EXPECT_EQ(2, upage_slot(self->fd, 1).nr_aliases);
	EXPECT_TRUE(upage_same(self->p, self->want, 4 * PAGE));
	EXPECT_EQ(UPAGE_SLOT_RECLAIMED, upage_slot(self->fd, 4).state);
	EXPECT_TRUE(all_zero(q + 4 * PAGE, (SLOTS - 4) * PAGE));
	munmap((void *)q, SLOTS * PAGE);
}

/* Bad ranges are EINVAL and change nothing. */
TEST_F(lazy, bad_ranges_change_nothing)
{
	uint64_t done = 7;

	EXPECT_EQ(-EINVAL, upage_lazy_free(self->fd, 0, 0, &done));
	EXPECT_EQ(-EINVAL, upage_lazy_free(self->fd, SLOTS, 1, &done));
	EXPECT_EQ(-EINVAL, upage_lazy_free(self->fd, 1, SLOTS, &done));
	EXPECT_EQ(-EINVAL, upage_lazy_free(self->fd, 1, UINT64_MAX, &done));
	EXPECT_EQ(UPAGE_SLOT_RESIDENT, upage_slot(self->fd, 0).state);
	ASSERT_EQ(0, drop_caches());
	EXPECT_TRUE(upage_same(self->p, self->want, SLOTS * PAGE));
}

/* Run the shrinker until @fd's space has paged out @want frames. */
static struct upage_stats shrink_until(int fd, uint64_t want)
{
	struct upage_stats st;
	int tries;

	for (tries = 0; tries < 200; tries++) {
		drop_caches();
		usleep(20000);
		st = stats(fd);
		if (st.out_shrinker_evictions >= want)
			break;
	}
	return st;
}

/*
 * Memory behaves like shmem: the shrinker pages out the cold frames of a
 * space on the module's own store without being asked (only pinned
 * frames stay), and they come back whole. That needs swap, as shmem
 * does.
 */
TEST_F(lazy, shrinker_pages_out_a_space_on_its_own_store)
{
	struct upage_stats st;
	uint64_t done;

	/* Without swap, paging out to shmem would free nothing: not done. */
	if (!upage_zram_swap())
		SKIP(return, "no swap");
	ASSERT_EQ(0, upage_pin(self->fd, 0, 1, &done));
	st = shrink_until(self->fd, SLOTS - 1);
	EXPECT_EQ(SLOTS - 1, st.out_shrinker_evictions);
	EXPECT_EQ(UPAGE_SLOT_EVICTED, upage_slot(self->fd, SLOTS - 1).state);
	EXPECT_EQ(UPAGE_SLOT_RESIDENT | UPAGE_SLOT_PINNED,
		  upage_slot(self->fd, 0).state);
	EXPECT_TRUE(upage_same(self->p, self->want, SLOTS * PAGE));
}

/*
 * A program's store is written by reclaim only if the program asked
 * (UPAGE_STORE_RECLAIM): without it the shrinker pages nothing out; with
 * it, the frames not used since its previous pass go, and come back whole.
 */
TEST_F(lazy, shrinker_writes_a_program_store_only_when_asked)
{
	struct upage_stats st;
	int memfd, tries;

	memfd = memfd_create("upage-store", MFD_CLOEXEC);
	ASSERT_LE(0, memfd);
	ASSERT_EQ(0, upage_set_store(self->fd, memfd, 0, 0));
	for (tries = 0; tries < 4; tries++) {
		ASSERT_EQ(0, drop_caches());
		usleep(20000);
	}
	st = stats(self->fd);
	EXPECT_EQ(0, st.out_evictions);

	/* Setting the policy on the current store is allowed any time. */
	ASSERT_EQ(0, upage_set_store(self->fd, memfd, 0, UPAGE_STORE_RECLAIM));
	st = shrink_until(self->fd, SLOTS);
	EXPECT_EQ(SLOTS, st.out_shrinker_evictions);
	EXPECT_EQ(UPAGE_SLOT_EVICTED, upage_slot(self->fd, SLOTS - 1).state);
	EXPECT_TRUE(upage_same(self->p, self->want, SLOTS * PAGE));
	close(memfd);
}

TEST_HARNESS_MAIN
