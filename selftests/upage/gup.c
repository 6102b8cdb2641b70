// SPDX-License-Identifier: GPL-2.0
/*
 * get_user_pages interplay: a frame whose page is held by the kernel
 * (vmsplice into a pipe not yet read, O_DIRECT in flight, io_uring fixed
 * buffers) cannot be taken away from its slot: such an edit fails with
 * EBUSY and changes nothing. Data moved by the kernel lands in a frame the
 * space still has, and is correct.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <linux/io_uring.h>

#include "upage_utils.h"

#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#endif
#ifndef __NR_io_uring_register
#define __NR_io_uring_register 427
#endif

/* The 64-bit word @i of a page filled with tag @tag. */
static inline uint64_t pat_word(uint64_t tag, size_t i)
{
	return (tag << 32) ^ (i * 0x9e3779b97f4a7c15ULL) ^ 0xa5a5;
}

static void fill_page(void *page, uint64_t tag)
{
	volatile uint64_t *w = page;
	size_t i;

	for (i = 0; i < PAGE / 8; i++)
		w[i] = pat_word(tag, i);
}

static bool page_is(const void *page, uint64_t tag)
{
	const volatile uint64_t *w = page;
	size_t i;

	for (i = 0; i < PAGE / 8; i++)
		if (w[i] != (tag ? pat_word(tag, i) : 0))
			return false;
	return true;
}

/* The tag of a whole page: 0 for zeros, UINT64_MAX if torn or foreign. */
static uint64_t page_tag(const void *page)
{
	uint64_t tag = (*(const volatile uint64_t *)page ^ 0xa5a5) >> 32;

	if (page_is(page, 0))
		return 0;
	return page_is(page, tag) ? tag : UINT64_MAX;
}

static uint64_t frame_id(int fd, uint64_t slot)
{
	struct upage_slot_info info;

	if (upage_query(fd, slot, 1, &info))
		return UINT64_MAX;
	return info.frame_id;
}

/* ------------------------------------------------------------------ */
/* vmsplice: the pipe holds the page until it is read.                */

FIXTURE(splice) {
	int fd;
	int pipe[2];
	char *p;
};

FIXTURE_SETUP(splice)
{
	int i;

	self->pipe[0] = self->pipe[1] = -1;
	upage_open_or_skip(self->fd);
	upage_resize_ok(self->fd, 4);
	self->p = upage_map(self->fd, 0, 4, MAP_SHARED);
	ASSERT_NE(NULL, self->p);
	for (i = 0; i < 4; i++)
		fill_page(self->p + i * PAGE, 1 + i);
	ASSERT_EQ(0, pipe(self->pipe));
}

FIXTURE_TEARDOWN(splice)
{
	if (self->pipe[0] >= 0) {
		close(self->pipe[0]);
		close(self->pipe[1]);
	}
	if (self->p)
		munmap(self->p, 4 * PAGE);
	if (self->fd >= 0)
		close(self->fd);
}

/* vmsplice slot @slot's page into the pipe, unread. */
static ssize_t splice_slot(char *p, int pipe_w, int slot)
{
	struct iovec iov = { .iov_base = p + slot * PAGE, .iov_len = PAGE };

	return vmsplice(pipe_w, &iov, 1, 0);
}

/* Read one page from the pipe into @buf; true when a whole page came. */
static bool drain_page(int pipe_r, void *buf)
{
	size_t got = 0;

	while (got < PAGE) {
		ssize_t n = read(pipe_r, (char *)buf + got, PAGE - got);

		if (n <= 0)
			return false;
		got += n;
	}
	return true;
}

/*
 * Every edit that takes the spliced frame away from its slot fails with
 * EBUSY and changes nothing, until the pipe is read; then it works. The
 * pipe delivers the page's contents, at vmsplice time or later.
 */
TEST_F(splice, spliced_slot_is_busy_until_pipe_read)
{
	uint64_t ids[4];
	char buf[PAGE];
	int i;

	for (i = 0; i < 4; i++)
		ids[i] = frame_id(self->fd, i);
	ASSERT_EQ(PAGE, splice_slot(self->p, self->pipe[1], 1));

	EXPECT_EQ(-EBUSY, upage_move(self->fd, 2, 1, 1));
	EXPECT_EQ(-EBUSY, upage_swap(self->fd, 1, 2, 1));
	EXPECT_EQ(-EBUSY, upage_swap(self->fd, 3, 1, 1));
	EXPECT_EQ(-EBUSY, upage_move(self->fd, 1, 3, 1));
	EXPECT_EQ(-EBUSY, upage_alias(self->fd, 1, 0, 1));
	EXPECT_EQ(-EBUSY, upage_alias_cow(self->fd, 1, 0, 1));
	for (i = 0; i < 4; i++) {
		EXPECT_EQ(ids[i], frame_id(self->fd, i));
		EXPECT_EQ(1 + i, page_tag(self->p + i * PAGE));
	}

	ASSERT_TRUE(drain_page(self->pipe[0], buf));
	EXPECT_EQ(2, page_tag(buf));
	EXPECT_EQ(0, upage_move(self->fd, 3, 1, 1));
	EXPECT_EQ(ids[1], frame_id(self->fd, 3));
	EXPECT_EQ(0, frame_id(self->fd, 1));
	EXPECT_EQ(2, page_tag(self->p + 3 * PAGE));
	EXPECT_EQ(0, page_tag(self->p + PAGE));
}

/*
 * Writes after vmsplice reach the pipe's page: the reader gets the
 * contents at vmsplice time or later, never anything else.
 */
TEST_F(splice, pipe_reads_contents_at_splice_time_or_later)
{
	char buf[PAGE];
	uint64_t tag;

	ASSERT_EQ(PAGE, splice_slot(self->p, self->pipe[1], 2));
	EXPECT_EQ(-EBUSY, upage_swap(self->fd, 2, 0, 1));
	fill_page(self->p + 2 * PAGE, 33);
	ASSERT_TRUE(drain_page(self->pipe[0], buf));
	tag = page_tag(buf);
	EXPECT_TRUE(tag == 3 || tag == 33) {
		TH_LOG("the pipe delivered tag %#llx", (unsigned long long)tag);
	}
	EXPECT_EQ(0, upage_swap(self->fd, 2, 0, 1));
	EXPECT_EQ(33, page_tag(self->p));
}

/*
 * A batch with one op on a spliced slot fails whole, naming that op, and
 * leaves the other ops' slots as they were.
 */
TEST_F(splice, batch_touching_spliced_slot_changes_nothing)
{
	struct upage_edit_op ops[3] = {
		{ .op = UPAGE_OP_SWAP, .dst = 0, .src = 3, .n = 1 },
		{ .op = UPAGE_OP_MOVE, .dst = 2, .src = 1, .n = 1 },
		{ .op = UPAGE_OP_SWAP, .dst = 0, .src = 2, .n = 1 },
	};
	uint32_t index = 0;
	uint64_t ids[4];
	char buf[PAGE];
	int i;

	for (i = 0; i < 4; i++)
		ids[i] = frame_id(self->fd, i);
	ASSERT_EQ(PAGE, splice_slot(self->p, self->pipe[1], 1));
	EXPECT_EQ(-EBUSY, upage_edit(self->fd, ops, 3, &index));
	EXPECT_EQ(1, index);
	for (i = 0; i < 4; i++) {
		EXPECT_EQ(ids[i], frame_id(self->fd, i));
		EXPECT_EQ(1 + i, page_tag(self->p + i * PAGE));
	}
	ASSERT_TRUE(drain_page(self->pipe[0], buf));
	EXPECT_EQ(2, page_tag(buf));
	ASSERT_EQ(0, upage_edit(self->fd, ops, 3, NULL));
	EXPECT_EQ(2, page_tag(self->p));
	EXPECT_EQ(4, page_tag(self->p + 2 * PAGE));
	EXPECT_EQ(1, page_tag(self->p + 3 * PAGE));
	EXPECT_EQ(0, page_tag(self->p + PAGE));
}

/*
 * Edits that leave the spliced frame in its slot (alias from it, protect
 * it, swap other slots) are not refused.
 */
TEST_F(splice, edits_keeping_spliced_frame_succeed)
{
	char buf[PAGE];

	ASSERT_EQ(PAGE, splice_slot(self->p, self->pipe[1], 1));
	EXPECT_EQ(0, upage_alias(self->fd, 2, 1, 1));
	EXPECT_EQ(frame_id(self->fd, 1), frame_id(self->fd, 2));
	EXPECT_EQ(2, page_tag(self->p + 2 * PAGE));
	EXPECT_EQ(0, upage_protect(self->fd, 1, 1, UPAGE_PROT_READ));
	EXPECT_EQ(0, upage_protect(self->fd, 1, 1, UPAGE_PROT_RW));
	EXPECT_EQ(0, upage_swap(self->fd, 0, 3, 1));
	EXPECT_EQ(4, page_tag(self->p));
	ASSERT_TRUE(drain_page(self->pipe[0], buf));
	EXPECT_EQ(2, page_tag(buf));
}

/* ------------------------------------------------------------------ */
/* O_DIRECT through a loop device.                                    */

#define LOOP_BLOCKS 1600

FIXTURE(odirect) {
	int fd;		/* the space */
	int backing;	/* the file in /tmp */
	int loop;	/* /dev/loopN, buffered, for LOOP_CLR_FD */
	int dio;	/* /dev/loopN, O_DIRECT */
	char path[64];
	char dev[32];
};

FIXTURE_SETUP(odirect)
{
	uint64_t blk;
	char page[PAGE];
	int ret;

	self->backing = self->loop = self->dio = -1;
	self->path[0] = 0;
	upage_open_or_skip(self->fd);
	if (access("/dev/loop-control", F_OK))
		SKIP(return, "/dev/loop-control missing");

	strcpy(self->path, "/tmp/upage-gup-XXXXXX");
	self->backing = mkostemp(self->path, O_CLOEXEC);
	ASSERT_LE(0, self->backing);
	for (blk = 0; blk < LOOP_BLOCKS; blk++) {
		fill_page(page, 1000 + blk);
		ASSERT_EQ(PAGE, pwrite(self->backing, page, PAGE, blk * PAGE));
	}
	ret = upage_loop_attach(self->backing, self->dev, sizeof(self->dev), &self->loop);
	ASSERT_EQ(0, ret) {
		TH_LOG("loop attach: %s", strerror(-ret));
	}
	self->dio = open(self->dev, O_RDWR | O_DIRECT | O_CLOEXEC);
	ASSERT_LE(0, self->dio) {
		TH_LOG("open %s O_DIRECT: %s", self->dev, strerror(errno));
	}
}

FIXTURE_TEARDOWN(odirect)
{
	if (self->dio >= 0)
		close(self->dio);
	if (self->loop >= 0) {
		ioctl(self->loop, LOOP_CLR_FD);
		close(self->loop);
	}
	if (self->backing >= 0)
		close(self->backing);
	if (self->path[0])
		unlink(self->path);
	if (self->fd >= 0)
		close(self->fd);
}

/*
 * O_DIRECT writes from space pages and reads into other space pages: the
 * data goes through the device unchanged.
 */
TEST_F(odirect, write_and_read_back_through_space_pages)
{
	char *p, page[PAGE];
	int i;

	upage_resize_ok(self->fd, 8);
	p = upage_map(self->fd, 0, 8, MAP_SHARED);
	ASSERT_NE(NULL, p);
	for (i = 0; i < 4; i++)
		fill_page(p + i * PAGE, 1 + i);
	ASSERT_EQ(4 * PAGE, pwrite(self->dio, p, 4 * PAGE, 8 * PAGE));
	ASSERT_EQ(4 * PAGE, pread(self->dio, p + 4 * PAGE, 4 * PAGE, 8 * PAGE));
	for (i = 0; i < 8; i++)
		EXPECT_EQ(1 + i % 4, page_tag(p + i * PAGE));
	/* the backing file got it too */
	ASSERT_EQ(0, fsync(self->dio));
	ASSERT_EQ(PAGE, pread(self->backing, page, PAGE, 10 * PAGE));
	EXPECT_EQ(3, page_tag(page));
	/* and a read of untouched blocks brings their contents */
	ASSERT_EQ(2 * PAGE, pread(self->dio, p + PAGE, 2 * PAGE, 100 * PAGE));
	EXPECT_EQ(1100, page_tag(p + PAGE));
	EXPECT_EQ(1101, page_tag(p + 2 * PAGE));
	munmap(p, 8 * PAGE);
}

/*
 * O_DIRECT into a MAP_PRIVATE mapping fills the process's private copy and
 * leaves the space's frame as it was.
 */
TEST_F(odirect, read_into_private_mapping_leaves_the_space)
{
	char *sh, *pv;

	upage_resize_ok(self->fd, 2);
	sh = upage_map(self->fd, 0, 2, MAP_SHARED);
	pv = upage_map(self->fd, 0, 2, MAP_PRIVATE);
	ASSERT_NE(NULL, sh);
	ASSERT_NE(NULL, pv);
	fill_page(sh, 1);
	fill_page(sh + PAGE, 2);
	EXPECT_EQ(1, page_tag(pv));
	ASSERT_EQ(PAGE, pread(self->dio, pv, PAGE, 5 * PAGE));
	EXPECT_EQ(1005, page_tag(pv));
	EXPECT_EQ(1, page_tag(sh));
	/* the page is the process's own now: a swap no longer reaches it */
	ASSERT_EQ(0, upage_swap(self->fd, 0, 1, 1));
	EXPECT_EQ(1005, page_tag(pv));
	EXPECT_EQ(1, page_tag(pv + PAGE));
	munmap(sh, 2 * PAGE);
	munmap(pv, 2 * PAGE);
}

struct dio_editor {
	int fd;
	volatile bool stop;
	pthread_mutex_t lock;
	unsigned long ok, busy, other;
	int last_error;
};

/*
 * Keep exchanging the frames of slots 0 and 1 in three ways: a swap, a
 * three-move rotation through the hole at slot 2, and a batch of three
 * swaps. The set of frames in slots 0 and 1 never changes.
 */
static void *dio_edit_loop(void *arg)
{
	struct dio_editor *ed = arg;
	const struct upage_edit_op rot[3] = {
		{ .op = UPAGE_OP_MOVE, .dst = 2, .src = 0, .n = 1 },
		{ .op = UPAGE_OP_MOVE, .dst = 0, .src = 1, .n = 1 },
		{ .op = UPAGE_OP_MOVE, .dst = 1, .src = 2, .n = 1 },
	};
	const struct upage_edit_op swaps[3] = {
		{ .op = UPAGE_OP_SWAP, .dst = 0, .src = 1, .n = 1 },
		{ .op = UPAGE_OP_SWAP, .dst = 1, .src = 0, .n = 1 },
		{ .op = UPAGE_OP_SWAP, .dst = 0, .src = 1, .n = 1 },
	};
	unsigned long i;
	int ret;

	for (i = 0; !ed->stop; i++) {
		pthread_mutex_lock(&ed->lock);
		switch (i % 3) {
		case 0:
			ret = upage_swap(ed->fd, 0, 1, 1);
			break;
		case 1:
			ret = upage_edit(ed->fd, rot, 3, NULL);
			break;
		default:
			ret = upage_edit(ed->fd, swaps, 3, NULL);
			break;
		}
		pthread_mutex_unlock(&ed->lock);
		if (ret == 0) {
			ed->ok++;
		} else if (ret == -EBUSY) {
			ed->busy++;
		} else {
			ed->other++;
			ed->last_error = ret;
		}
		if (i % 8 == 0)
			sched_yield();
	}
	return NULL;
}

#define DIO_ROUNDS 200

/*
 * O_DIRECT reads into slot 0 while another thread keeps exchanging the
 * frames of slots 0 and 1: every edit returns 0 or EBUSY, and each read's
 * data lands whole in one of the two frames, found by frame id.
 */
TEST_F_TIMEOUT(odirect, read_races_with_swaps_and_moves, 120)
{
	struct dio_editor ed = { .lock = PTHREAD_MUTEX_INITIALIZER };
	uint64_t id0, id1, ids[2];
	unsigned long misses = 0;
	pthread_t th;
	char *p;
	int round, i, found;

	upage_resize_ok(self->fd, 3);
	p = upage_map(self->fd, 0, 3, MAP_SHARED);
	ASSERT_NE(NULL, p);
	fill_page(p, 1);
	fill_page(p + PAGE, 2);
	id0 = frame_id(self->fd, 0);
	id1 = frame_id(self->fd, 1);
	ASSERT_NE(0, id0);
	ASSERT_NE(0, id1);
	ASSERT_NE(UINT64_MAX, id0);

	ed.fd = self->fd;
	ASSERT_EQ(0, pthread_create(&th, NULL, dio_edit_loop, &ed));
	for (round = 0; round < DIO_ROUNDS; round++) {
		uint64_t blk = round % LOOP_BLOCKS;
		ssize_t n = pread(self->dio, p, PAGE, blk * PAGE);

		if (n != PAGE) {
			ed.stop = true;
			pthread_join(th, NULL);
			ASSERT_EQ(PAGE, n) {
				TH_LOG("round %d: pread: %s", round, strerror(errno));
			}
		}
		/* pause the editor and find the frame the data went to */
		pthread_mutex_lock(&ed.lock);
		ids[0] = frame_id(self->fd, 0);
		ids[1] = frame_id(self->fd, 1);
		found = -1;
		for (i = 0; i < 2; i++)
			if (page_tag(p + i * PAGE) == 1000 + blk)
				found = i;
		pthread_mutex_unlock(&ed.lock);
		if (!((ids[0] == id0 && ids[1] == id1) ||
		      (ids[0] == id1 && ids[1] == id0)) || found < 0) {
			ed.stop = true;
			pthread_join(th, NULL);
			ASSERT_TRUE(ids[0] == id0 || ids[0] == id1) {
				TH_LOG("round %d: slot 0 holds frame %llu", round,
				       (unsigned long long)ids[0]);
			}
			ASSERT_TRUE(ids[1] == id0 || ids[1] == id1) {
				TH_LOG("round %d: slot 1 holds frame %llu", round,
				       (unsigned long long)ids[1]);
			}
			ASSERT_LE(0, found) {
				TH_LOG("round %d: block %llu is in neither frame (tags %#llx %#llx)",
				       round, (unsigned long long)blk,
				       (unsigned long long)page_tag(p),
				       (unsigned long long)page_tag(p + PAGE));
			}
		}
		if (found != 0)
			misses++;
	}
	ed.stop = true;
	ASSERT_EQ(0, pthread_join(th, NULL));
	EXPECT_EQ(0, ed.other) {
		TH_LOG("an edit failed with %s", strerror(-ed.last_error));
	}
	EXPECT_LT(0, ed.ok);
	TH_LOG("%d reads, edits: %lu applied, %lu EBUSY; data in slot 1 after %lu reads",
	       DIO_ROUNDS, ed.ok, ed.busy, misses);
	/* both frames still hold whole pages of either the start or a block */
	for (i = 0; i < 2; i++)
		EXPECT_NE(UINT64_MAX, page_tag(p + i * PAGE));
	EXPECT_EQ(0, page_tag(p + 2 * PAGE));
	munmap(p, 3 * PAGE);
}

#define BIG 64
#define BIG_ROUNDS 24

struct big_editor {
	int fd;
	volatile bool stop;
	pthread_mutex_t lock;
	unsigned int seed;
	unsigned long ok, busy, other;
	int last_error;
};

/*
 * Keep exchanging slot k with slot BIG + k, for random k, in batches of
 * up to BIG swaps, and now and then as one range swap of all BIG pairs.
 */
static void *big_edit_loop(void *arg)
{
	struct big_editor *ed = arg;
	struct upage_edit_op ops[BIG];
	unsigned long i;
	uint32_t n, k;
	int ret;

	for (i = 0; !ed->stop; i++) {
		memset(ops, 0, sizeof(ops));
		if (i % 4 == 0) {
			n = 1;
			ops[0].op = UPAGE_OP_SWAP;
			ops[0].dst = 0;
			ops[0].src = BIG;
			ops[0].n = BIG;
		} else {
			n = 1 + rand_r(&ed->seed) % BIG;
			for (k = 0; k < n; k++) {
				uint64_t s = rand_r(&ed->seed) % BIG;

				ops[k].op = UPAGE_OP_SWAP;
				ops[k].dst = s;
				ops[k].src = BIG + s;
				ops[k].n = 1;
			}
		}
		pthread_mutex_lock(&ed->lock);
		ret = upage_edit(ed->fd, ops, n, NULL);
		pthread_mutex_unlock(&ed->lock);
		if (ret == 0) {
			ed->ok++;
		} else if (ret == -EBUSY) {
			ed->busy++;
		} else {
			ed->other++;
			ed->last_error = ret;
		}
		sched_yield();
	}
	return NULL;
}

/*
 * O_DIRECT reads of BIG pages at once, so that the pages stay held while
 * batches of swaps hit them: every batch returns 0 or EBUSY, and each
 * block read lands whole in one of the two frames its slot pair holds.
 */
TEST_F_TIMEOUT(odirect, large_read_races_with_batched_swaps, 120)
{
	struct big_editor ed = { .lock = PTHREAD_MUTEX_INITIALIZER, .seed = 3 };
	struct upage_slot_info *start, *now;
	pthread_t th;
	char *p;
	int round, k, bad = 0;

	start = calloc(2 * BIG, sizeof(*start));
	now = calloc(2 * BIG, sizeof(*now));
	ASSERT_NE(NULL, start);
	ASSERT_NE(NULL, now);
	upage_resize_ok(self->fd, 2 * BIG);
	p = upage_map(self->fd, 0, 2 * BIG, MAP_SHARED);
	ASSERT_NE(NULL, p);
	for (k = 0; k < 2 * BIG; k++)
		fill_page(p + k * PAGE, 1 + k);
	ASSERT_EQ(0, upage_query(self->fd, 0, 2 * BIG, start));

	ed.fd = self->fd;
	ASSERT_EQ(0, pthread_create(&th, NULL, big_edit_loop, &ed));
	for (round = 0; round < BIG_ROUNDS && !bad; round++) {
		uint64_t first = (uint64_t)round * BIG;
		ssize_t n = pread(self->dio, p, BIG * PAGE, first * PAGE);

		if (n != BIG * PAGE) {
			TH_LOG("round %d: pread returned %zd: %s", round, n,
			       strerror(errno));
			bad++;
			break;
		}
		pthread_mutex_lock(&ed.lock);
		if (upage_query(self->fd, 0, 2 * BIG, now))
			bad++;
		for (k = 0; k < BIG && !bad; k++) {
			uint64_t a = now[k].frame_id, b = now[BIG + k].frame_id;
			uint64_t ta = page_tag(p + k * PAGE);
			uint64_t tb = page_tag(p + (BIG + k) * PAGE);

			if (!((a == start[k].frame_id && b == start[BIG + k].frame_id) ||
			      (b == start[k].frame_id && a == start[BIG + k].frame_id))) {
				TH_LOG("round %d: pair %d holds frames %llu/%llu", round, k,
				       (unsigned long long)a, (unsigned long long)b);
				bad++;
			} else if (ta != 1000 + first + k && tb != 1000 + first + k) {
				TH_LOG("round %d: block %llu in neither frame of pair %d (%#llx %#llx)",
				       round, (unsigned long long)(first + k), k,
				       (unsigned long long)ta, (unsigned long long)tb);
				bad++;
			} else if (ta == UINT64_MAX || tb == UINT64_MAX) {
				TH_LOG("round %d: pair %d holds a torn page", round, k);
				bad++;
			}
		}
		pthread_mutex_unlock(&ed.lock);
	}
	ed.stop = true;
	ASSERT_EQ(0, pthread_join(th, NULL));
	EXPECT_EQ(0, bad);
	EXPECT_EQ(0, ed.other) {
		TH_LOG("a batch failed with %s", strerror(-ed.last_error));
	}
	EXPECT_LT(0, ed.ok);
	TH_LOG("%d reads of %d pages; batches: %lu applied, %lu EBUSY",
	       round, BIG, ed.ok, ed.busy);
	munmap(p, 2 * BIG * PAGE);
	free(start);
	free(now);
}

/* Write @text to the cgroup file @path; 0 or -errno. */
static int cg_write(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, text, strlen(text)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

#define SLOW 32

struct slow_read {
	int dio;
	char *p;
	pthread_mutex_t lock;
	bool done;
	ssize_t n;
};

static void *slow_read_thread(void *arg)
{
	struct slow_read *r = arg;
	ssize_t n = pread(r->dio, r->p, SLOW * PAGE, 300 * PAGE);

	pthread_mutex_lock(&r->lock);
	r->n = n;
	r->done = true;
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/*
 * An O_DIRECT read slowed down by blk-throttle keeps its pages held for
 * seconds: swaps of those slots, tried all along, fail with EBUSY, and the
 * data lands whole.
 */
TEST_F_TIMEOUT(odirect, throttled_read_keeps_slots_busy, 120)
{
	struct slow_read r = { .lock = PTHREAD_MUTEX_INITIALIZER };
	char cg[64], file[96], text[64];
	unsigned long ok = 0, ok_since = 0, busy = 0, other = 0;
	struct stat st;
	pthread_t th;
	int k, ret;
	char *p;

	if (access("/sys/fs/cgroup/cgroup.controllers", F_OK))
		SKIP(return, "no cgroup2 at /sys/fs/cgroup");
	cg_write("/sys/fs/cgroup/cgroup.subtree_control", "+io");
	snprintf(cg, sizeof(cg), "/sys/fs/cgroup/upage-gup-%d", getpid());
	ASSERT_EQ(0, mkdir(cg, 0755));
	ASSERT_EQ(0, fstat(self->dio, &st));
	snprintf(file, sizeof(file), "%s/io.max", cg);
	snprintf(text, sizeof(text), "%u:%u rbps=32768", major(st.st_rdev),
		 minor(st.st_rdev));
	ret = cg_write(file, text);
	if (ret) {
		rmdir(cg);
		SKIP(return, "no blk-throttle (io.max: %s)", strerror(-ret));
	}
	snprintf(file, sizeof(file), "%s/cgroup.procs", cg);
	snprintf(text, sizeof(text), "%d", getpid());
	ASSERT_EQ(0, cg_write(file, text));

	upage_resize_ok(self->fd, 2 * SLOW);
	p = upage_map(self->fd, 0, 2 * SLOW, MAP_SHARED);
	ASSERT_NE(NULL, p);
	for (k = 0; k < 2 * SLOW; k++)
		fill_page(p + k * PAGE, 1 + k);
	r.dio = self->dio;
	r.p = p;
	ASSERT_EQ(0, pthread_create(&th, NULL, slow_read_thread, &r));
	/* 128 KiB at 32 KiB/s: about 4 s in flight */
	for (;;) {
		usleep(50000);
		pthread_mutex_lock(&r.lock);
		if (r.done) {
			pthread_mutex_unlock(&r.lock);
			break;
		}
		ret = upage_swap(self->fd, 0, SLOW, SLOW);
		pthread_mutex_unlock(&r.lock);
		if (ret == 0)
			busy ? ok_since++ : ok++;
		else if (ret == -EBUSY)
			busy++;
		else
			other++;
	}
	ASSERT_EQ(0, pthread_join(th, NULL));
	cg_write("/sys/fs/cgroup/cgroup.procs", text);
	rmdir(cg);

	ASSERT_EQ(SLOW * PAGE, r.n);
	TH_LOG("swaps during the read: %lu EBUSY, %lu applied before the first, %lu after",
	       busy, ok, ok_since);
	EXPECT_EQ(0, other);
	/*
	 * Any number may land before the read takes the pages (a slow host
	 * starts it late); from the first EBUSY on, one after they are
	 * released, and one more for slack.
	 */
	EXPECT_LE(ok_since, 2);
	EXPECT_LE(5, busy);
	for (k = 0; k < SLOW; k++) {
		uint64_t want = 1000 + 300 + k;
		uint64_t a = page_tag(p + k * PAGE), b = page_tag(p + (SLOW + k) * PAGE);

		EXPECT_TRUE(a == want || b == want) {
			TH_LOG("block %d in neither slot (%#llx %#llx)", 300 + k,
			       (unsigned long long)a, (unsigned long long)b);
		}
	}
	munmap(p, 2 * SLOW * PAGE);
}

/* ------------------------------------------------------------------ */
/* io_uring fixed buffers: a long-term pin.                           */

FIXTURE(uring) {
	int fd;
	int ring;
	char *p;
};

FIXTURE_SETUP(uring)
{
	struct io_uring_params params = { 0 };

	self->ring = -1;
	self->p = NULL;
	upage_open_or_skip(self->fd);
	upage_resize_ok(self->fd, 4);
	self->p = upage_map(self->fd, 0, 4, MAP_SHARED);
	ASSERT_NE(NULL, self->p);
	self->ring = syscall(__NR_io_uring_setup, 4, &params);
	if (self->ring < 0 && (errno == ENOSYS || errno == EPERM))
		SKIP(return, "io_uring_setup: %s", strerror(errno));
	ASSERT_LE(0, self->ring);
}

FIXTURE_TEARDOWN(uring)
{
	if (self->ring >= 0)
		close(self->ring);
	if (self->p)
		munmap(self->p, 4 * PAGE);
	if (self->fd >= 0)
		close(self->fd);
}

/*
 * A page registered as an io_uring fixed buffer cannot be moved or
 * swapped away (EBUSY, nothing changes) until it is unregistered.
 */
TEST_F(uring, fixed_buffer_is_busy_until_unregistered)
{
	struct iovec iov = { .iov_base = self->p + PAGE, .iov_len = PAGE };
	uint64_t id1;
	int i, ret, tries;

	for (i = 0; i < 4; i++)
		fill_page(self->p + i * PAGE, 1 + i);
	id1 = frame_id(self->fd, 1);
	ret = syscall(__NR_io_uring_register, self->ring,
		      IORING_REGISTER_BUFFERS, &iov, 1);
	if (ret < 0 && (errno == EFAULT || errno == EOPNOTSUPP))
		SKIP(return, "IORING_REGISTER_BUFFERS refuses a long-term pin of this file-backed mapping: %s",
		     strerror(errno));
	ASSERT_EQ(0, ret) {
		TH_LOG("IORING_REGISTER_BUFFERS: %s", strerror(errno));
	}

	EXPECT_EQ(-EBUSY, upage_move(self->fd, 2, 1, 1));
	EXPECT_EQ(-EBUSY, upage_swap(self->fd, 1, 3, 1));
	EXPECT_EQ(-EBUSY, upage_alias(self->fd, 1, 0, 1));
	EXPECT_EQ(id1, frame_id(self->fd, 1));
	EXPECT_EQ(2, page_tag(self->p + PAGE));
	EXPECT_EQ(3, page_tag(self->p + 2 * PAGE));
	/* the registered page stays writable through the mapping */
	fill_page(self->p + PAGE, 22);

	ASSERT_EQ(0, syscall(__NR_io_uring_register, self->ring,
			     IORING_UNREGISTER_BUFFERS, NULL, 0));
	/* io_uring may drop its pins from a worker, shortly after */
	for (tries = 0; tries < 200; tries++) {
		ret = upage_move(self->fd, 2, 1, 1);
		if (ret != -EBUSY)
			break;
		usleep(10000);
	}
	EXPECT_EQ(0, ret);
	EXPECT_EQ(id1, frame_id(self->fd, 2));
	EXPECT_EQ(22, page_tag(self->p + 2 * PAGE));
	EXPECT_EQ(0, page_tag(self->p + PAGE));
}

TEST_HARNESS_MAIN
