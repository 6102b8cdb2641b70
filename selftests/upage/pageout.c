// SPDX-License-Identifier: GPL-2.0
/*
 * Page-out and page-in under the program's control: UPAGE_RES_EVICT writes
 * frames to the space's backing store and frees their memory, a fault or
 * UPAGE_RES_PREFETCH brings them back with their contents, discard drops
 * contents without writing them anywhere. Frames keep their ids and their
 * aliases throughout.
 */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/uio.h>

#include "upage_utils.h"

#define SLOTS 64

FIXTURE(po) {
	int fd;
	volatile unsigned char *p;
	unsigned char *want;	/* the model of SLOTS pages */
};

FIXTURE_SETUP(po)
{
	self->p = NULL;
	self->want = NULL;
	upage_open_or_skip(self->fd);
	upage_require_cmd(self->fd, UPAGE_CMD_RESIDENCY);
	upage_resize_ok(self->fd, SLOTS);
	self->p = upage_map(self->fd, 0, SLOTS, MAP_SHARED);
	ASSERT_NE(NULL, self->p);
	self->want = upage_random_pages(SLOTS, SLOTS);
	ASSERT_NE(NULL, self->want);
	memcpy((void *)self->p, self->want, SLOTS * PAGE);
}

FIXTURE_TEARDOWN(po)
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

	upage_stats(fd, &st);
	return st;
}

/* Evicted frames come back whole on the next access. */
TEST_F(po, evict_then_fault_reads_back)
{
	struct upage_stats before = stats(self->fd), after;
	uint64_t done = 0;

	ASSERT_EQ(0, upage_evict(self->fd, 0, SLOTS, &done));
	EXPECT_EQ(SLOTS, done);
	EXPECT_EQ(UPAGE_SLOT_EVICTED, upage_slot(self->fd, 7).state);
	after = stats(self->fd);
	EXPECT_EQ(SLOTS, after.out_evictions - before.out_evictions);
	EXPECT_EQ(SLOTS * PAGE, after.out_bytes_written - before.out_bytes_written);
	EXPECT_EQ(0, after.out_frames - before.out_frames);

	EXPECT_TRUE(upage_same(self->p, self->want, SLOTS * PAGE));
	after = stats(self->fd);
	EXPECT_EQ(SLOTS, after.out_page_ins - before.out_page_ins);
	EXPECT_EQ(SLOTS * PAGE, after.out_bytes_read - before.out_bytes_read);
	EXPECT_EQ(UPAGE_SLOT_RESIDENT, upage_slot(self->fd, 7).state);
}

/* Prefetch reads evicted frames back without a fault. */
TEST_F(po, evict_then_prefetch_reads_back)
{
	struct upage_stats before, after;
	uint64_t done = 0;

	ASSERT_EQ(0, upage_evict(self->fd, 0, SLOTS, NULL));
	before = stats(self->fd);
	ASSERT_EQ(0, upage_prefetch(self->fd, 0, SLOTS, &done));
	after = stats(self->fd);
	EXPECT_EQ(SLOTS, done);
	EXPECT_EQ(SLOTS, after.out_page_ins - before.out_page_ins);
	EXPECT_EQ(0, after.out_faults - before.out_faults);
	for (int i = 0; i < SLOTS; i++)
		ASSERT_EQ(UPAGE_SLOT_RESIDENT, upage_slot(self->fd, i).state);
	EXPECT_TRUE(upage_same(self->p, self->want, SLOTS * PAGE));
	/* Nothing left to prefetch. */
	ASSERT_EQ(0, upage_prefetch(self->fd, 0, SLOTS, &done));
	EXPECT_EQ(0, done);
}

/* A frame not written since it was written out is not written again. */
TEST_F(po, evict_clean_frame_writes_nothing)
{
	struct upage_stats before, after;

	ASSERT_EQ(0, upage_evict(self->fd, 0, 4, NULL));
	ASSERT_EQ(0, upage_prefetch(self->fd, 0, 4, NULL));
	before = stats(self->fd);
	ASSERT_EQ(0, upage_evict(self->fd, 0, 4, NULL));
	after = stats(self->fd);
	EXPECT_EQ(0, after.out_bytes_written - before.out_bytes_written);
	EXPECT_EQ(4, after.out_evictions - before.out_evictions);

	/* A write (after a read fault) makes it dirty again. */
	EXPECT_EQ(self->want[2 * PAGE], self->p[2 * PAGE]);
	self->p[2 * PAGE + 9] = 0x5a;
	self->want[2 * PAGE + 9] = 0x5a;
	before = stats(self->fd);
	ASSERT_EQ(0, upage_evict(self->fd, 0, 4, NULL));
	after = stats(self->fd);
	EXPECT_EQ(PAGE, after.out_bytes_written - before.out_bytes_written);
	EXPECT_TRUE(upage_same(self->p, self->want, 4 * PAGE));
}

/* A frame aliased by several slots is evicted once and stays aliased. */
TEST_F(po, evicted_alias_stays_aliased)
{
	struct upage_stats before, after;
	struct upage_slot_info a, b;

	upage_alias_ok(self->fd, 40, 3, 1);
	before = stats(self->fd);
	ASSERT_EQ(0, upage_evict(self->fd, 3, 1, NULL));
	after = stats(self->fd);
	EXPECT_EQ(PAGE, after.out_bytes_written - before.out_bytes_written);
	a = upage_slot(self->fd, 3);
	b = upage_slot(self->fd, 40);
	EXPECT_EQ(UPAGE_SLOT_EVICTED, a.state);
	EXPECT_EQ(UPAGE_SLOT_EVICTED, b.state);
	EXPECT_EQ(a.frame_id, b.frame_id);
	EXPECT_EQ(2, b.nr_aliases);

	/* Paging in through one alias serves both. */
	EXPECT_TRUE(upage_same(self->p + 40 * PAGE, self->want + 3 * PAGE, PAGE));
	EXPECT_EQ(UPAGE_SLOT_RESIDENT, upage_slot(self->fd, 3).state);
	self->p[3 * PAGE] = 0x11;
	EXPECT_EQ(0x11, self->p[40 * PAGE]);
}

/* Another process mapping the space sees evicted frames come back. */
TEST_F(po, evict_seen_by_other_process)
{
	int status;
	pid_t pid = fork();

	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* The parent evicts; the child reads, writes, evicts. */
		usleep(100000);
		if (!upage_same(self->p, self->want, SLOTS * PAGE))
			_exit(1);
		self->p[5 * PAGE] = 0x42;
		_exit(upage_evict(self->fd, 0, SLOTS, NULL) ? 2 : 0);
	}
	ASSERT_EQ(0, upage_evict(self->fd, 0, SLOTS, NULL));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	self->want[5 * PAGE] = 0x42;
	EXPECT_TRUE(upage_same(self->p, self->want, SLOTS * PAGE));
}

struct writer {
	volatile uint64_t *word;
	volatile int stop;
	volatile uint64_t progress;
	uint64_t last;
};

static void *write_counter(void *arg)
{
	struct writer *w = arg;
	uint64_t v = 0;

	while (!w->stop) {
		*w->word = ++v;
		w->progress = v;
	}
	w->last = v;
	return NULL;
}

/* Evicting while another thread writes loses no write. */
TEST_F(po, evict_while_another_thread_writes)
{
	struct writer w = { .word = (volatile uint64_t *)(self->p + 9 * PAGE) };
	pthread_t t;
	int i;

	uint64_t before;

	ASSERT_EQ(0, pthread_create(&t, NULL, write_counter, &w));
	while (!w.progress)
		sched_yield();
	/* At least 200 evictions, and the writer must have run during them. */
	before = w.progress;
	for (i = 0; i < 200 || (w.progress - before < 1000 && i < 100000); i++)
		ASSERT_EQ(0, upage_evict(self->fd, 8, 3, NULL));
	ASSERT_LE(1000, w.progress - before);
	w.stop = 1;
	ASSERT_EQ(0, pthread_join(t, NULL));
	ASSERT_EQ(0, upage_evict(self->fd, 8, 3, NULL));
	EXPECT_EQ(w.last, *w.word);
	EXPECT_TRUE(upage_same(self->p + 8 * PAGE, self->want + 8 * PAGE, PAGE));
	EXPECT_TRUE(upage_same(self->p + 10 * PAGE, self->want + 10 * PAGE, PAGE));
}

/* Discard drops contents: zeros next, nothing written, aliases keep it. */
TEST_F(po, discard_reads_zeros_and_writes_nothing)
{
	struct upage_stats before, after;

	upage_alias_ok(self->fd, 50, 1, 1);
	ASSERT_EQ(0, upage_evict(self->fd, 2, 1, NULL));
	before = stats(self->fd);
	ASSERT_EQ(0, upage_discard(self->fd, 0, 3));
	after = stats(self->fd);
	EXPECT_EQ(0, after.out_bytes_written - before.out_bytes_written);
	for (int i = 0; i < 3; i++) {
		EXPECT_EQ(0, upage_slot(self->fd, i).frame_id);
		EXPECT_EQ(0, self->p[i * PAGE + 100]);
	}
	/* The alias of slot 1 still has the contents. */
	EXPECT_TRUE(upage_same(self->p + 50 * PAGE, self->want + PAGE, PAGE));
}

/* Edits move evicted frames like resident ones; contents follow. */
TEST_F(po, edits_move_evicted_frames)
{
	ASSERT_EQ(0, upage_evict(self->fd, 0, 2, NULL));
	upage_swap_ok(self->fd, 0, 1, 1);
	upage_move_ok(self->fd, 20, 0, 1);
	EXPECT_TRUE(upage_same(self->p + 20 * PAGE, self->want + PAGE, PAGE));
	EXPECT_TRUE(upage_same(self->p + PAGE, self->want, PAGE));
	EXPECT_EQ(0, self->p[0]);
}

/* A NONE slot refuses the access without paging the frame in. */
TEST_F(po, protected_evicted_slot_is_not_paged_in)
{
	struct upage_stats before, after;

	ASSERT_EQ(0, upage_evict(self->fd, 4, 1, NULL));
	upage_protect_ok(self->fd, 4, 1, UPAGE_PROT_NONE);
	before = stats(self->fd);
	EXPECT_EQ(SIGSEGV, upage_touch_signal((char *)self->p + 4 * PAGE, 0));
	after = stats(self->fd);
	EXPECT_EQ(0, after.out_page_ins - before.out_page_ins);
	EXPECT_EQ(UPAGE_SLOT_EVICTED, upage_slot(self->fd, 4).state);
}

/* A private mapping reads evicted frames back too. */
TEST_F(po, private_mapping_reads_evicted_frames)
{
	unsigned char *q = upage_map(self->fd, 0, 4, MAP_PRIVATE);

	ASSERT_NE(NULL, q);
	ASSERT_EQ(0, upage_evict(self->fd, 0, 4, NULL));
	EXPECT_TRUE(upage_same(q, self->want, 4 * PAGE));
	munmap(q, 4 * PAGE);
}

/* A frame spliced into a pipe cannot be evicted; nothing is. */
TEST_F(po, evict_of_pinned_frame_is_ebusy)
{
	struct iovec iov = { .iov_base = (void *)(self->p + 6 * PAGE),
			     .iov_len = PAGE };
	uint64_t done = 99;
	char buf[PAGE];
	int pfd[2];

	ASSERT_EQ(0, pipe(pfd));
	ASSERT_EQ(PAGE, vmsplice(pfd[1], &iov, 1, 0));
	EXPECT_EQ(-EBUSY, upage_evict(self->fd, 0, SLOTS, &done));
	EXPECT_EQ(0, done);
	for (int i = 0; i < SLOTS; i++)
		ASSERT_EQ(UPAGE_SLOT_RESIDENT, upage_slot(self->fd, i).state);
	ASSERT_EQ(PAGE, read(pfd[0], buf, PAGE));
	EXPECT_EQ(0, memcmp(buf, self->want + 6 * PAGE, PAGE));
	EXPECT_EQ(0, upage_evict(self->fd, 0, SLOTS, &done));
	EXPECT_EQ(SLOTS, done);
	close(pfd[0]);
	close(pfd[1]);
}

/* Shrinking and closing with evicted frames frees them (kmemleak). */
TEST_F(po, shrink_drops_evicted_frames)
{
	struct upage_stats st;

	ASSERT_EQ(0, upage_evict(self->fd, 0, SLOTS, NULL));
	upage_resize_ok(self->fd, 8);
	st = stats(self->fd);
	EXPECT_EQ(8, st.out_frames);
	upage_resize_ok(self->fd, SLOTS);
	EXPECT_EQ(0, self->p[20 * PAGE]);
	EXPECT_TRUE(upage_same(self->p, self->want, 8 * PAGE));
}

/* Residency errors: each refused with its errno, nothing changed. */
TEST_F(po, residency_errors)
{
	struct upage_residency r = {
		.size = sizeof(r), .op = UPAGE_RES_EVICT, .first = 0, .n = 0,
	};

	EXPECT_EQ(-EINVAL, _upage_ioctl(self->fd, UPAGE_RESIDENCY, &r));
	r.n = SLOTS + 1;
	EXPECT_EQ(-EINVAL, _upage_ioctl(self->fd, UPAGE_RESIDENCY, &r));
	r.first = UINT64_MAX;
	r.n = 2;
	EXPECT_EQ(-EINVAL, _upage_ioctl(self->fd, UPAGE_RESIDENCY, &r));
	r.first = 0;
	r.op = 99;
	EXPECT_EQ(-EOPNOTSUPP, _upage_ioctl(self->fd, UPAGE_RESIDENCY, &r));
	r.op = UPAGE_RES_EVICT;
	r.flags = UPAGE_RES_FLAGS_ALL + 1;
	EXPECT_EQ(-EOPNOTSUPP, _upage_ioctl(self->fd, UPAGE_RESIDENCY, &r));
	/* Populating belongs to PREFETCH. */
	r.flags = UPAGE_RES_POPULATE;
	EXPECT_EQ(-EINVAL, _upage_ioctl(self->fd, UPAGE_RESIDENCY, &r));
	r.flags = 0;
	r.__reserved = 1;
	EXPECT_EQ(-EOPNOTSUPP, _upage_ioctl(self->fd, UPAGE_RESIDENCY, &r));
	for (int i = 0; i < SLOTS; i++)
		ASSERT_EQ(UPAGE_SLOT_RESIDENT, upage_slot(self->fd, i).state);
	/* Discard takes no src and no prot. */
	struct upage_edit_op op = { .op = UPAGE_OP_DISCARD, .dst = 0, .src = 1, .n = 1 };

	upage_edit_err(EINVAL, 0, self->fd, &op, 1);
	EXPECT_EQ(UPAGE_SLOT_RESIDENT, upage_slot(self->fd, 0).state);
}

TEST_HARNESS_MAIN
