// SPDX-License-Identifier: GPL-2.0
/*
 * Write tracking (UPAGE_TRACK, UPAGE_DIRTY): the dirty bitmap lists
 * exactly the tracked slots written since they were armed, through any
 * mapping or alias, and collect-and-clear loses no write made while it
 * runs.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "upage_utils.h"

#define SLOTS 64

FIXTURE(track) {
	int fd;
	volatile unsigned char *p;
};

FIXTURE_SETUP(track)
{
	self->p = NULL;
	upage_open_or_skip(self->fd);
	upage_require_cmd(self->fd, UPAGE_CMD_DIRTY);
	upage_resize_ok(self->fd, 2 * SLOTS);
	self->p = upage_map(self->fd, 0, 2 * SLOTS, MAP_SHARED);
	ASSERT_NE(NULL, self->p);
}

FIXTURE_TEARDOWN(track)
{
	if (self->p)
		munmap((void *)self->p, 2 * SLOTS * PAGE);
	if (self->fd >= 0)
		close(self->fd);
}

/* The dirty bitmap of slots 0..SLOTS-1 as one word; asserts success. */
#define dirty_word(fd, flags)                                               \
	({                                                                  \
		uint64_t __w = 0xdeadbeef, __nr = 12345;                    \
		ASSERT_EQ(0, upage_dirty((fd), 0, SLOTS, &__w, (flags), &__nr)); \
		ASSERT_EQ((uint64_t)__builtin_popcountll(__w), __nr);       \
		__w;                                                        \
	})

static uint64_t bit(unsigned int i)
{
	return 1ULL << i;
}

/* Tracking starts clean, and reads are not writes. */
TEST_F(track, starts_clean_and_reads_are_not_writes)
{
	unsigned int i;

	upage_fill(self->p, 3, 7);
	ASSERT_EQ(0, upage_track_start(self->fd, 0, SLOTS));
	ASSERT_EQ(0, dirty_word(self->fd, 0));
	for (i = 0; i < SLOTS; i++)
		(void)self->p[i * PAGE];
	ASSERT_EQ(0, dirty_word(self->fd, 0));
	ASSERT_TRUE(upage_page_is(self->p, 3, 7));
}

/* The bitmap lists exactly the slots written, and query agrees. */
TEST_F(track, reports_exactly_the_written_slots)
{
	struct upage_stats st;
	struct upage_slot_info si;

	ASSERT_EQ(0, upage_track_start(self->fd, 0, SLOTS));
	self->p[1 * PAGE] = 1;
	self->p[5 * PAGE + 100] = 2;
	self->p[5 * PAGE + 200] = 3;
	self->p[63 * PAGE + PAGE - 1] = 4;
	ASSERT_EQ(bit(1) | bit(5) | bit(63), dirty_word(self->fd, 0));
	si = upage_slot(self->fd, 5);
	ASSERT_EQ(UPAGE_SLOT_TRACKED | UPAGE_SLOT_DIRTY,
		  si.state & (UPAGE_SLOT_TRACKED | UPAGE_SLOT_DIRTY));
	si = upage_slot(self->fd, 6);
	ASSERT_EQ(UPAGE_SLOT_TRACKED,
		  si.state & (UPAGE_SLOT_TRACKED | UPAGE_SLOT_DIRTY));
	upage_stats_ok(self->fd, &st);
	ASSERT_EQ(3, st.out_tracked_writes);
}

/* Without CLEAR the bits stay; with it they go, and come back on a write. */
TEST_F(track, clear_rearms_the_slots)
{
	ASSERT_EQ(0, upage_track_start(self->fd, 0, SLOTS));
	self->p[2 * PAGE] = 1;
	self->p[9 * PAGE] = 1;
	ASSERT_EQ(bit(2) | bit(9), dirty_word(self->fd, 0));
	ASSERT_EQ(bit(2) | bit(9), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	ASSERT_EQ(0, dirty_word(self->fd, 0));
	/* The page is writable again only after a recorded write fault. */
	self->p[9 * PAGE + 1] = 2;
	ASSERT_EQ(bit(9), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	self->p[9 * PAGE + 2] = 3;
	self->p[2 * PAGE + 2] = 3;
	ASSERT_EQ(bit(2) | bit(9), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	ASSERT_EQ(0, dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	ASSERT_EQ(2, self->p[9 * PAGE + 1]);
	ASSERT_EQ(3, self->p[2 * PAGE + 2]);
}

/* Untracked slots read as clean; stopping forgets what was recorded. */
TEST_F(track, untracked_and_stopped_slots_read_clean)
{
	struct upage_slot_info si;

	ASSERT_EQ(0, upage_track_start(self->fd, 0, 8));
	self->p[4 * PAGE] = 1;
	self->p[20 * PAGE] = 1;
	ASSERT_EQ(bit(4), dirty_word(self->fd, 0));
	ASSERT_EQ(0, upage_track_stop(self->fd, 4, 1));
	ASSERT_EQ(0, dirty_word(self->fd, 0));
	si = upage_slot(self->fd, 4);
	ASSERT_EQ(0, si.state & (UPAGE_SLOT_TRACKED | UPAGE_SLOT_DIRTY));
	/* Starting again starts clean. */
	ASSERT_EQ(0, upage_track_start(self->fd, 4, 1));
	ASSERT_EQ(0, dirty_word(self->fd, 0));
	self->p[4 * PAGE] = 2;
	ASSERT_EQ(bit(4), dirty_word(self->fd, 0));
}

/* A write through an alias dirties every tracked slot of the frame. */
TEST_F(track, write_through_alias_dirties_the_frame)
{
	upage_fill(self->p, 3, 1);
	upage_alias_ok(self->fd, SLOTS + 3, 3, 1);
	ASSERT_EQ(0, upage_track_start(self->fd, 0, SLOTS));
	/* The alias slot is not tracked; the write still reaches slot 3. */
	self->p[(SLOTS + 3) * PAGE] = 2;
	ASSERT_EQ(bit(3), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	/* Re-arming write-protected the alias too. */
	self->p[(SLOTS + 3) * PAGE + 1] = 3;
	ASSERT_EQ(bit(3), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	ASSERT_EQ(3, self->p[3 * PAGE + 1]);
	ASSERT_EQ(0, dirty_word(self->fd, 0));
}

/* Writes from another process, through its own mapping, are recorded. */
TEST_F(track, other_process_writes_are_recorded)
{
	int status;
	pid_t pid;

	ASSERT_EQ(0, upage_track_start(self->fd, 0, SLOTS));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		volatile unsigned char *q = upage_map(self->fd, 0, SLOTS,
						      MAP_SHARED);

		if (!q)
			_exit(1);
		q[7 * PAGE] = 1;	/* its own mapping */
		self->p[11 * PAGE] = 1;	/* the inherited one */
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, status);
	ASSERT_EQ(bit(7) | bit(11), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
}

/* Writes to a private mapping are the process's own: not recorded. */
TEST_F(track, private_mapping_writes_are_not_recorded)
{
	volatile unsigned char *q = upage_map(self->fd, 0, SLOTS, MAP_PRIVATE);

	ASSERT_NE(NULL, q);
	ASSERT_EQ(0, upage_track_start(self->fd, 0, SLOTS));
	q[6 * PAGE] = 1;
	ASSERT_EQ(0, dirty_word(self->fd, 0));
	munmap((void *)q, SLOTS * PAGE);
}

/* An edit that gives a tracked slot another frame dirties it. */
TEST_F(track, edits_that_change_a_frame_dirty_the_slot)
{
	upage_fill(self->p, 1, 1);
	upage_fill(self->p, 2, 2);
	upage_fill(self->p, SLOTS, 9);
	ASSERT_EQ(0, upage_track_start(self->fd, 0, SLOTS));
	upage_swap_ok(self->fd, 1, 2, 1);
	upage_move_ok(self->fd, 4, SLOTS, 1);
	upage_protect_ok(self->fd, 8, 1, UPAGE_PROT_READ);
	ASSERT_EQ(bit(1) | bit(2) | bit(4),
		  dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	ASSERT_EQ(0, upage_discard(self->fd, 4, 1));
	ASSERT_EQ(bit(4), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
}

/* Eviction and page-in are not writes. */
TEST_F(track, eviction_is_not_a_write)
{
	upage_require_cmd(self->fd, UPAGE_CMD_RESIDENCY);
	upage_fill(self->p, 5, 5);
	ASSERT_EQ(0, upage_track_start(self->fd, 0, SLOTS));
	ASSERT_EQ(0, upage_evict(self->fd, 0, SLOTS, NULL));
	ASSERT_TRUE(upage_page_is(self->p, 5, 5));
	ASSERT_EQ(0, dirty_word(self->fd, 0));
	self->p[5 * PAGE] = 6;
	ASSERT_EQ(bit(5), dirty_word(self->fd, 0));
}

/* A report that cannot be copied out clears nothing. */
TEST_F(track, efault_keeps_the_slots_dirty)
{
	struct upage_dirty cmd = {
		.size = sizeof(cmd), .flags = UPAGE_DIRTY_CLEAR,
		.first = 0, .n = SLOTS, .bitmap = 8,
	};

	ASSERT_EQ(0, upage_track_start(self->fd, 0, SLOTS));
	self->p[12 * PAGE] = 1;
	ASSERT_EQ(-EFAULT, _upage_ioctl(self->fd, UPAGE_DIRTY, &cmd));
	ASSERT_EQ(bit(12), dirty_word(self->fd, 0));
}

/* Bad ranges and ops are refused and change nothing. */
TEST_F(track, bad_arguments_are_refused)
{
	struct upage_track t = { .size = sizeof(t), .op = 3, .n = 1 };
	uint64_t words[3];

	ASSERT_EQ(-EINVAL, upage_track_start(self->fd, 0, 0));
	ASSERT_EQ(-EINVAL, upage_track_start(self->fd, 2 * SLOTS, 1));
	ASSERT_EQ(-EINVAL, upage_track_start(self->fd, 1, 2 * SLOTS));
	ASSERT_EQ(-EINVAL, upage_track_start(self->fd, UINT64_MAX, 2));
	ASSERT_EQ(-EOPNOTSUPP, _upage_ioctl(self->fd, UPAGE_TRACK, &t));
	t.op = UPAGE_TRACK_START;
	t.__reserved = 1;
	ASSERT_EQ(-EOPNOTSUPP, _upage_ioctl(self->fd, UPAGE_TRACK, &t));
	ASSERT_EQ(-EINVAL, upage_dirty(self->fd, 0, 0, words, 0, NULL));
	ASSERT_EQ(-EINVAL, upage_dirty(self->fd, 1, 2 * SLOTS, words, 0, NULL));
	ASSERT_EQ(-EINVAL, upage_dirty(self->fd, UINT64_MAX, 2, words, 0, NULL));
	/* Refused before the module sizes a bitmap for it. */
	ASSERT_EQ(-EINVAL, upage_dirty(self->fd, 0, UINT64_MAX, words, 0, NULL));
	ASSERT_EQ(0, upage_slot(self->fd, 0).state & UPAGE_SLOT_TRACKED);
}

/* A bitmap longer than one word: bit i % 64 of word i / 64. */
TEST_F(track, bitmap_layout_spans_words)
{
	uint64_t w[2] = { ~0ULL, ~0ULL }, nr;

	ASSERT_EQ(0, upage_track_start(self->fd, 0, 2 * SLOTS));
	self->p[0] = 1;
	self->p[70 * PAGE] = 1;
	self->p[127 * PAGE] = 1;
	ASSERT_EQ(0, upage_dirty(self->fd, 0, 2 * SLOTS, w, 0, &nr));
	ASSERT_EQ(3, nr);
	ASSERT_EQ(bit(0), w[0]);
	ASSERT_EQ(bit(6) | bit(63), w[1]);
	/* An offset range: slot 70 is bit 0 of word 0. */
	w[0] = ~0ULL;
	ASSERT_EQ(0, upage_dirty(self->fd, 70, 3, w, 0, &nr));
	ASSERT_EQ(1, nr);
	ASSERT_EQ(bit(0), w[0]);
}

/*
 * Collect-and-clear racing writers: a snapshot kept by copying the slots
 * each collection reports must end equal to the space. Writers in this
 * process (threads) and in a child process write the even slots only, so
 * an odd slot reported is a phantom.
 */
#define RACE_SLOTS 64
#define RACE_ROUNDS 300		/* at least, and until */
#define RACE_BUSY 50		/* rounds that reported writes */
#define RACE_SECONDS 60		/* at most */

struct race {
	volatile unsigned char *p;
	atomic_int stop;
	unsigned int seed;
};

static void *race_writer(void *arg)
{
	struct race *r = arg;
	unsigned int seed = __atomic_add_fetch(&r->seed, 7919, __ATOMIC_RELAXED);
	uint32_t v = 0;

	while (!atomic_load(&r->stop)) {
		unsigned int slot = (rand_r(&seed) % (RACE_SLOTS / 2)) * 2;

		/* A whole word per write: torn copies are fixed next round. */
		*(volatile uint32_t *)(r->p + slot * PAGE +
				       (rand_r(&seed) % (PAGE / 4)) * 4) = ++v;
	}
	return NULL;
}

TEST_F_TIMEOUT(track, collect_and_clear_loses_no_write, 120)
{
	static unsigned char shadow[RACE_SLOTS * PAGE];
	struct race r = { .p = self->p, .seed = 1 };
	pthread_t th[2];
	int i, status, rounds, busy = 0, phantom = 0;
	time_t start = time(NULL);
	uint64_t w, nr, reported = 0;
	pid_t pid;

	memcpy(shadow, (void *)self->p, sizeof(shadow));
	ASSERT_EQ(0, upage_track_start(self->fd, 0, RACE_SLOTS));
	/* Dies with the test too, if an assertion ends it early. */
	pid = upage_fork_child();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		r.seed = 4242;
		r.p = upage_map(self->fd, 0, RACE_SLOTS, MAP_SHARED);
		if (!r.p)
			_exit(1);
		/* Runs until the parent kills it. */
		race_writer(&r);
		_exit(0);
	}
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, pthread_create(&th[i], NULL, race_writer, &r));
	/*
	 * Under TCG a writer may run for a whole time slice before the
	 * collector runs again: go on until enough rounds raced with writes.
	 */
	for (i = 0; (i < RACE_ROUNDS || busy < RACE_BUSY) &&
		    time(NULL) < start + RACE_SECONDS; i++) {
		unsigned int s;

		ASSERT_EQ(0, upage_dirty(self->fd, 0, RACE_SLOTS, &w,
					 UPAGE_DIRTY_CLEAR, &nr));
		reported += nr;
		busy += nr > 0;
		for (s = 0; s < RACE_SLOTS; s++) {
			if (!(w & bit(s)))
				continue;
			phantom += s & 1;
			memcpy(shadow + s * PAGE, (void *)(self->p + s * PAGE),
			       PAGE);
		}
	}
	rounds = i;
	atomic_store(&r.stop, 1);
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	kill(pid, SIGKILL);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	/* The writes after the last round. */
	ASSERT_EQ(0, upage_dirty(self->fd, 0, RACE_SLOTS, &w,
				 UPAGE_DIRTY_CLEAR, &nr));
	for (i = 0; i < RACE_SLOTS; i++) {
		if (w & bit(i))
			memcpy(shadow + i * PAGE, (void *)(self->p + i * PAGE),
			       PAGE);
	}
	/* Quiet now: nothing more to report. */
	ASSERT_EQ(0, upage_dirty(self->fd, 0, RACE_SLOTS, &w,
				 UPAGE_DIRTY_CLEAR, &nr));
	ASSERT_EQ(0, nr);
	ASSERT_EQ(0, phantom);
	/* Slots were re-armed and written again, many times over. */
	ASSERT_LE(RACE_BUSY, busy);
	for (i = 0; i < RACE_SLOTS; i++) {
		ASSERT_EQ(0, memcmp(shadow + i * PAGE,
				    (void *)(self->p + i * PAGE), PAGE)) {
			TH_LOG("slot %d: a write was lost", i);
		}
	}
	TH_LOG("%llu slots reported over %d rounds, %d of them busy",
	       (unsigned long long)reported, rounds, busy);
}

TEST_HARNESS_MAIN
