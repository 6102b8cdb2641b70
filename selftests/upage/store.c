// SPDX-License-Identifier: GPL-2.0
/*
 * Backing stores the program chooses (UPAGE_STORE): a memfd or a regular
 * file, at an offset. Evicted frames land in the file's pages from the
 * offset on, the lowest free first, and come back whole; a full store
 * fails the eviction of the frames that did not fit and loses nothing; a
 * store that cannot be read back raises SIGBUS, not a wrong page.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "upage_utils.h"

#define SLOTS 32
#define SMALL_STORE_PAGES 8	/* the tmpfs of the full-store test */

FIXTURE(store) {
	int fd;
	int memfd;
	volatile unsigned char *p;
	unsigned char *want;
	char dir[64];		/* a small tmpfs, mounted by the test */
	int mounted;
};

FIXTURE_SETUP(store)
{
	self->p = NULL;
	self->want = NULL;
	self->mounted = 0;
	self->memfd = -1;
	upage_open_or_skip(self->fd);
	upage_require_cmd(self->fd, UPAGE_CMD_STORE);
	upage_resize_ok(self->fd, SLOTS);
	self->p = upage_map(self->fd, 0, SLOTS, MAP_SHARED);
	ASSERT_NE(NULL, self->p);
	self->want = upage_random_pages(SLOTS, SLOTS + 1);
	ASSERT_NE(NULL, self->want);
	memcpy((void *)self->p, self->want, SLOTS * PAGE);
	self->memfd = memfd_create("upage-test-store", MFD_CLOEXEC);
	ASSERT_LE(0, self->memfd);
}

FIXTURE_TEARDOWN(store)
{
	if (self->p)
		munmap((void *)self->p, SLOTS * PAGE);
	free(self->want);
	if (self->memfd >= 0)
		close(self->memfd);
	if (self->fd >= 0)
		close(self->fd);
	if (self->mounted) {
		umount2(self->dir, MNT_DETACH);
		rmdir(self->dir);
	}
}

/* Page @i of @file at byte @at equals page @i of the model. */
static int file_page_is(int file, off_t at, const unsigned char *want)
{
	unsigned char buf[PAGE];

	return pread(file, buf, PAGE, at) == PAGE && !memcmp(buf, want, PAGE);
}

/* A memfd store gets the frames, the lowest page first, and gives them back. */
TEST_F(store, memfd_store_round_trip)
{
	uint64_t done = 0;
	struct stat st;

	ASSERT_EQ(0, upage_set_store(self->fd, self->memfd, 0, 0));
	ASSERT_EQ(0, upage_evict(self->fd, 0, SLOTS, &done));
	EXPECT_EQ(SLOTS, done);
	ASSERT_EQ(0, fstat(self->memfd, &st));
	EXPECT_LE(SLOTS * PAGE, st.st_size);
	/* Evicted in slot order: slot i's frame went to page i. */
	EXPECT_TRUE(file_page_is(self->memfd, 0, self->want));
	EXPECT_TRUE(file_page_is(self->memfd, 5 * PAGE, self->want + 5 * PAGE));
	EXPECT_TRUE(upage_same(self->p, self->want, SLOTS * PAGE));
}

/* The offset moves every store page; the bytes before it are not touched. */
TEST_F(store, offset_places_pages_after_it)
{
	unsigned char head[PAGE];
	uint64_t done = 0;

	memset(head, 0x5a, sizeof(head));
	ASSERT_EQ(PAGE, pwrite(self->memfd, head, PAGE, 3 * PAGE));
	ASSERT_EQ(0, upage_set_store(self->fd, self->memfd, 4 * PAGE, 0));
	ASSERT_EQ(0, upage_evict(self->fd, 0, 2, &done));
	EXPECT_EQ(2, done);
	EXPECT_TRUE(file_page_is(self->memfd, 4 * PAGE, self->want));
	EXPECT_TRUE(file_page_is(self->memfd, 5 * PAGE, self->want + PAGE));
	EXPECT_TRUE(file_page_is(self->memfd, 3 * PAGE, head));
	ASSERT_EQ(0, upage_prefetch(self->fd, 0, 2, &done));
	EXPECT_EQ(2, done);
	EXPECT_TRUE(upage_same(self->p, self->want, SLOTS * PAGE));
}

/* A regular file, closed after UPAGE_STORE, stays the store. */
TEST_F(store, closed_regular_file_stays_the_store)
{
	char path[] = "/tmp/upage-store-XXXXXX";
	uint64_t done = 0;
	int file = mkstemp(path);

	ASSERT_LE(0, file);
	unlink(path);
	ASSERT_EQ(0, upage_set_store(self->fd, file, 0, 0));
	close(file);
	ASSERT_EQ(0, upage_evict(self->fd, 0, SLOTS, &done));
	EXPECT_EQ(SLOTS, done);
	ASSERT_EQ(0, upage_prefetch(self->fd, 0, SLOTS / 2, &done));
	EXPECT_EQ(SLOTS / 2, done);
	EXPECT_TRUE(upage_same(self->p, self->want, SLOTS * PAGE));
}

/*
 * A store too small for the range: the frames that fit are evicted, the
 * write that failed returns ENOSPC and leaves its frame (and the rest)
 * resident; nothing is lost. Pages given back are reused.
 */
TEST_F(store, full_store_keeps_frames_resident)
{
	char opts[32], path[96];
	uint64_t done = 0, more = 0;
	int file;

	snprintf(self->dir, sizeof(self->dir), "/tmp/upage-full-XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(opts, sizeof(opts), "size=%lu", SMALL_STORE_PAGES * PAGE);
	if (mount("upage-full", self->dir, "tmpfs", 0, opts)) {
		rmdir(self->dir);
		SKIP(return, "cannot mount a tmpfs: %s", strerror(errno));
	}
	self->mounted = 1;
	snprintf(path, sizeof(path), "%s/store", self->dir);
	file = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	ASSERT_LE(0, file);
	ASSERT_EQ(0, upage_set_store(self->fd, file, 0, 0));
	close(file);

	EXPECT_EQ(-ENOSPC, upage_evict(self->fd, 0, SLOTS, &done));
	EXPECT_LT(0, done);
	EXPECT_GE(SMALL_STORE_PAGES, done);
	for (uint64_t i = 0; i < SLOTS; i++) {
		uint32_t want = i < done ? UPAGE_SLOT_EVICTED : UPAGE_SLOT_RESIDENT;

		EXPECT_EQ(want, upage_slot(self->fd, i).state) {
			TH_LOG("slot %llu", (unsigned long long)i);
		}
	}
	EXPECT_TRUE(upage_same(self->p + done * PAGE, self->want + done * PAGE,
			 (SLOTS - done) * PAGE));

	/* Dropping the evicted frames frees their store pages for others. */
	ASSERT_EQ(0, upage_discard(self->fd, 0, done));
	ASSERT_EQ(0, upage_evict(self->fd, done, done, &more));
	EXPECT_EQ(done, more);
	EXPECT_TRUE(upage_same(self->p + done * PAGE, self->want + done * PAGE,
			 (SLOTS - done) * PAGE));
	for (uint64_t i = 0; i < done * PAGE; i++)
		ASSERT_EQ(0, self->p[i]);
}

/* The store cannot change under evicted frames; it can once they are in. */
TEST_F(store, change_while_evicted_is_ebusy)
{
	uint64_t done = 0;

	ASSERT_EQ(0, upage_evict(self->fd, 3, 1, &done));
	EXPECT_EQ(-EBUSY, upage_set_store(self->fd, self->memfd, 0, 0));
	EXPECT_EQ(UPAGE_SLOT_EVICTED, upage_slot(self->fd, 3).state);
	EXPECT_TRUE(upage_same(self->p, self->want, SLOTS * PAGE));
	/* The access above paged it in: now the store may change. */
	EXPECT_EQ(0, upage_set_store(self->fd, self->memfd, 0, 0));
}

/* Frames clean in the old store are written to the new one. */
TEST_F(store, new_store_gets_clean_frames_too)
{
	struct upage_stats a, b;
	uint64_t done = 0;

	ASSERT_EQ(0, upage_evict(self->fd, 0, 4, &done));
	ASSERT_EQ(0, upage_prefetch(self->fd, 0, 4, &done));
	ASSERT_EQ(0, upage_set_store(self->fd, self->memfd, 0, 0));
	upage_stats_ok(self->fd, &a);
	ASSERT_EQ(0, upage_evict(self->fd, 0, 4, &done));
	upage_stats_ok(self->fd, &b);
	EXPECT_EQ(4 * PAGE, b.out_bytes_written - a.out_bytes_written);
	EXPECT_TRUE(file_page_is(self->memfd, 0, self->want));
	EXPECT_TRUE(upage_same(self->p, self->want, SLOTS * PAGE));
}

/* Back to the module's own store with -1. */
TEST_F(store, minus_one_restores_the_module_store)
{
	uint64_t done = 0;
	struct stat st;

	ASSERT_EQ(0, upage_set_store(self->fd, self->memfd, 0, 0));
	ASSERT_EQ(0, upage_set_store(self->fd, -1, 0, 0));
	ASSERT_EQ(0, upage_evict(self->fd, 0, SLOTS, &done));
	EXPECT_EQ(SLOTS, done);
	ASSERT_EQ(0, fstat(self->memfd, &st));
	EXPECT_EQ(0, st.st_size);
	EXPECT_TRUE(upage_same(self->p, self->want, SLOTS * PAGE));
}

/* A store truncated behind the module's back: SIGBUS, and EIO to prefetch. */
TEST_F(store, unreadable_store_is_sigbus)
{
	uint64_t done = 0;

	ASSERT_EQ(0, upage_set_store(self->fd, self->memfd, 0, 0));
	ASSERT_EQ(0, upage_evict(self->fd, 0, 2, &done));
	ASSERT_EQ(0, ftruncate(self->memfd, 0));
	EXPECT_EQ(SIGBUS, upage_touch_signal((volatile char *)self->p, 0));
	EXPECT_EQ(-EIO, upage_prefetch(self->fd, 0, 2, &done));
	EXPECT_EQ(0, done);
	EXPECT_EQ(UPAGE_SLOT_EVICTED, upage_slot(self->fd, 1).state);
	/* The rest of the space is untouched. */
	EXPECT_TRUE(upage_same(self->p + 2 * PAGE, self->want + 2 * PAGE,
			 (SLOTS - 2) * PAGE));
}

/* Files that cannot be a store, and bad arguments: refused, nothing changed. */
TEST_F(store, bad_stores_are_refused)
{
	char path[] = "/tmp/upage-store-XXXXXX";
	int pipefd[2], ro, app, file, devnull;
	uint64_t done = 0;

	file = mkstemp(path);
	ASSERT_LE(0, file);
	ro = open(path, O_RDONLY | O_CLOEXEC);
	app = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
	unlink(path);
	ASSERT_LE(0, ro);
	ASSERT_LE(0, app);
	ASSERT_EQ(0, pipe(pipefd));
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, devnull);

	EXPECT_EQ(-EBADF, upage_set_store(self->fd, 4321, 0, 0));
	EXPECT_EQ(-EBADF, upage_set_store(self->fd, ro, 0, 0));
	EXPECT_EQ(-EBADF, upage_set_store(self->fd, pipefd[0], 0, 0));
	EXPECT_EQ(-EINVAL, upage_set_store(self->fd, app, 0, 0));
	EXPECT_EQ(-EINVAL, upage_set_store(self->fd, devnull, 0, 0));
	EXPECT_EQ(-EINVAL, upage_set_store(self->fd, file, 1, 0));
	EXPECT_EQ(-EINVAL, upage_set_store(self->fd, file, PAGE + 512, 0));
	EXPECT_EQ(-EINVAL, upage_set_store(self->fd, file, (1ULL << 63) - PAGE, 0));
	EXPECT_EQ(-EINVAL, upage_set_store(self->fd, -2, 0, 0));
	EXPECT_EQ(-EINVAL, upage_set_store(self->fd, -1, PAGE, 0));

	/* Still the module's own store: the file stays empty. */
	ASSERT_EQ(0, upage_evict(self->fd, 0, 1, &done));
	EXPECT_EQ(1, done);
	EXPECT_EQ(0, lseek(file, 0, SEEK_END));
	EXPECT_TRUE(upage_same(self->p, self->want, SLOTS * PAGE));
	close(pipefd[0]);
	close(pipefd[1]);
	close(devnull);
	close(app);
	close(ro);
	close(file);
}

/*
 * A fault's page-in reads the store with no lock held, from the store it
 * took a reference to; UPAGE_STORE may replace the space's store
 * meanwhile (after another thread paged the frame in, nothing is evicted
 * and the change is allowed). The page-in must read the store it noted
 * and throw the read away, never read a store that is gone (review 9:
 * a NULL dereference on 6.12 before aa9e13b, found by fuzz_ioctl only).
 * Two readers fault the same slots in while a third thread evicts them
 * and a fourth switches the store between a memfd and the module's own.
 */
#define SWITCH_SLOTS 8
#define SWITCH_SECONDS 4

struct store_race {
	int fd;
	int memfd;
	volatile unsigned char *p;
	const unsigned char *want;
	atomic_int stop;
	atomic_int bad;
	atomic_long switches;
	atomic_long evictions;
};

static void *race_reader(void *arg)
{
	struct store_race *r = arg;

	while (!atomic_load(&r->stop)) {
		int i;

		for (i = 0; i < SWITCH_SLOTS; i++) {
			if (r->p[i * PAGE] != r->want[i * PAGE] ||
			    r->p[i * PAGE + PAGE - 1] != r->want[i * PAGE + PAGE - 1])
				atomic_fetch_add(&r->bad, 1);
		}
	}
	return NULL;
}

static void *race_evictor(void *arg)
{
	struct store_race *r = arg;
	uint64_t done;

	while (!atomic_load(&r->stop)) {
		if (!upage_evict(r->fd, 0, SWITCH_SLOTS, &done))
			atomic_fetch_add(&r->evictions, (long)done);
	}
	return NULL;
}

static void *race_switcher(void *arg)
{
	struct store_race *r = arg;
	int to_memfd = 1;

	while (!atomic_load(&r->stop)) {
		int ret = upage_set_store(r->fd, to_memfd ? r->memfd : -1, 0, 0);

		if (!ret) {
			atomic_fetch_add(&r->switches, 1);
			to_memfd = !to_memfd;
		} else if (ret != -EBUSY && ret != -EAGAIN) {
			atomic_fetch_add(&r->bad, 1000);
		}
	}
	return NULL;
}

TEST_F_TIMEOUT(store, store_switch_racing_page_ins_reads_the_right_contents, 120)
{
	struct store_race r = {
		.fd = self->fd, .memfd = self->memfd, .p = self->p,
		.want = self->want,
	};
	pthread_t th[4];
	void *(*fn[4])(void *) = { race_reader, race_reader, race_evictor,
				   race_switcher };
	time_t start = time(NULL);
	int i;

	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, pthread_create(&th[i], NULL, fn[i], &r));
	/* Under TCG: go on until enough switches raced with page-ins. */
	while (time(NULL) < start + SWITCH_SECONDS * 5 &&
	       (time(NULL) < start + SWITCH_SECONDS ||
		atomic_load(&r.switches) < 20))
		usleep(100 * 1000);
	atomic_store(&r.stop, 1);
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	TH_LOG("%ld store switches, %ld evictions",
	       atomic_load(&r.switches), atomic_load(&r.evictions));
	ASSERT_EQ(0, atomic_load(&r.bad));
	ASSERT_LT(0, atomic_load(&r.switches));
	ASSERT_LT(0, atomic_load(&r.evictions));
	ASSERT_TRUE(upage_same(self->p, self->want, SLOTS * PAGE));
}

/* Unknown flags and reserved fields are refused. */
TEST_F(store, unknown_flags_are_eopnotsupp)
{
	struct upage_store cmd = { .size = sizeof(cmd), .fd = -1,
				   .flags = UPAGE_STORE_RECLAIM << 1 };

	EXPECT_EQ(-EOPNOTSUPP, _upage_ioctl(self->fd, UPAGE_STORE, &cmd));
	cmd.flags = 0;
	cmd.__reserved = 1;
	EXPECT_EQ(-EOPNOTSUPP, _upage_ioctl(self->fd, UPAGE_STORE, &cmd));
}

TEST_HARNESS_MAIN
