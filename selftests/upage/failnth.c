// SPDX-License-Identifier: GPL-2.0
/*
 * Error injection around the page-out paths, dirty collection and COPY
 * resolves, fail-nth style: for n = 1,
 * 2, ... the n-th allocation of the calling thread fails
 * (/proc/thread-self/fail-nth, with failslab and fail_page_alloc set to
 * fail any allocation), until the operation runs through without reaching
 * an n-th. Every failure must be a clean error (ENOMEM, EIO, or ENOSPC,
 * which shmem returns when it cannot make the store's inode) that loses no
 * data and leaves nothing half done; the harness checks dmesg for splats
 * and, on the debug kernel, kmemleak for leaks. Kernels without
 * CONFIG_FAULT_INJECTION (Debian's) skip.
 */
#include <stdlib.h>

#include "upage_utils.h"

#define SLOTS 8
#define MAX_NTH 400

static const char *const knobs[][2] = {
	{ "/sys/kernel/debug/failslab/ignore-gfp-wait", "N" },
	{ "/sys/kernel/debug/failslab/verbose", "0" },
	{ "/sys/kernel/debug/fail_page_alloc/ignore-gfp-wait", "N" },
	{ "/sys/kernel/debug/fail_page_alloc/ignore-gfp-highmem", "N" },
	{ "/sys/kernel/debug/fail_page_alloc/min-order", "0" },
	{ "/sys/kernel/debug/fail_page_alloc/verbose", "0" },
};

static int write_str(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	ssize_t len = strlen(val), ret;

	if (fd < 0)
		return -errno;
	ret = write(fd, val, len);
	close(fd);
	return ret == len ? 0 : -EIO;
}

FIXTURE(fail) {
	int nth;		/* /proc/thread-self/fail-nth */
	int fd;
	volatile unsigned char *p;
	unsigned char *want;
};

FIXTURE_SETUP(fail)
{
	self->fd = -1;
	self->p = NULL;
	self->want = NULL;
	self->nth = open("/proc/thread-self/fail-nth", O_RDWR);
	if (self->nth < 0)
		SKIP(return, "no fail-nth: kernel without CONFIG_FAULT_INJECTION");
	for (size_t i = 0; i < sizeof(knobs) / sizeof(knobs[0]); i++)
		ASSERT_EQ(0, write_str(knobs[i][0], knobs[i][1]));
	self->want = upage_random_pages(SLOTS, SLOTS + 7);
	ASSERT_NE(NULL, self->want);
}

FIXTURE_TEARDOWN(fail)
{
	if (self->p)
		munmap((void *)self->p, SLOTS * PAGE);
	if (self->fd >= 0)
		close(self->fd);
	free(self->want);
	if (self->nth >= 0)
		close(self->nth);
}

/* A fresh space of SLOTS pages of self->want; @evicted of them paged out. */
static int fresh(struct __test_metadata *_metadata, FIXTURE_DATA(fail) *self,
		 size_t evicted)
{
	if (self->p)
		munmap((void *)self->p, SLOTS * PAGE);
	if (self->fd >= 0)
		close(self->fd);
	self->fd = upage_open(O_CLOEXEC);
	if (self->fd < 0 || upage_resize(self->fd, SLOTS, NULL))
		return -1;
	self->p = upage_map(self->fd, 0, SLOTS, MAP_SHARED);
	if (!self->p)
		return -1;
	memcpy((void *)self->p, self->want, SLOTS * PAGE);
	if (evicted && upage_evict(self->fd, 0, evicted, NULL))
		return -1;
	return 0;
}

static void arm(FIXTURE_DATA(fail) *self, int n)
{
	char buf[16];

	snprintf(buf, sizeof(buf), "%d", n);
	if (pwrite(self->nth, buf, strlen(buf), 0) < 0)
		abort();
}

/* Disarm; true if the n-th allocation was reached (and failed). */
static int disarm(FIXTURE_DATA(fail) *self)
{
	char buf[16] = "";
	int left;

	if (pread(self->nth, buf, sizeof(buf) - 1, 0) <= 0)
		abort();
	left = atoi(buf);
	if (pwrite(self->nth, "0", 1, 0) < 0)
		abort();
	return left == 0;
}

static int clean_error(int ret)
{
	return ret == 0 || ret == -ENOMEM || ret == -EIO || ret == -ENOSPC;
}

static uint32_t states(int fd)
{
	struct upage_slot_info info[SLOTS];
	uint32_t all = 0;

	if (upage_query(fd, 0, SLOTS, info))
		return ~0U;
	for (int i = 0; i < SLOTS; i++)
		all |= info[i].state;
	return all;
}

/*
 * Run @op under fail-nth for n = 1, 2, ... Every failure must be clean and
 * keep the data; the loop ends when @op no longer reaches the n-th.
 */
#define FAIL_NTH_LOOP(evicted, op, after)                                  \
	do {                                                               \
		int n, ret, hit;                                           \
		for (n = 1; n <= MAX_NTH; n++) {                           \
			ASSERT_EQ(0, fresh(_metadata, self, (evicted)));   \
			arm(self, n);                                      \
			ret = (op);                                        \
			hit = disarm(self);                                \
			EXPECT_TRUE(clean_error(ret)) {                    \
				TH_LOG("n=%d: %s", n, strerror(-ret));     \
			}                                                  \
			after;                                             \
			EXPECT_TRUE(upage_same(self->p, self->want,        \
					       SLOTS * PAGE)) {            \
				TH_LOG("n=%d: data lost", n);              \
			}                                                  \
			if (!hit)                                          \
				break;                                     \
		}                                                          \
		TH_LOG("%d allocations failed one by one", n - 1);         \
		EXPECT_GT(MAX_NTH, n);                                     \
		EXPECT_LT(1, n);                                           \
	} while (0)

/* The first eviction also creates the space's shmem store. */
TEST_F(fail, evict)
{
	uint64_t done;

	FAIL_NTH_LOOP(0, upage_evict(self->fd, 0, SLOTS, &done),
		      EXPECT_TRUE(ret || done == SLOTS));
}

/* Eviction to a store the program gave. */
TEST_F(fail, evict_to_memfd_store)
{
	uint64_t done;
	int memfd = memfd_create("upage-failnth", MFD_CLOEXEC);

	ASSERT_LE(0, memfd);
	FAIL_NTH_LOOP(0, upage_set_store(self->fd, memfd, 0, 0) ?:
			 upage_evict(self->fd, 0, SLOTS, &done),
		      (void)0);
	close(memfd);
}

TEST_F(fail, prefetch)
{
	uint64_t done;

	FAIL_NTH_LOOP(SLOTS, upage_prefetch(self->fd, 0, SLOTS, &done),
		      EXPECT_TRUE(ret || !(states(self->fd) & UPAGE_SLOT_EVICTED)));
}

/* A page-in by fault retries after an allocation failure (VM_FAULT_OOM). */
TEST_F(fail, fault_page_in)
{
	FAIL_NTH_LOOP(SLOTS, (upage_same(self->p, self->want, SLOTS * PAGE) ?
			      0 : -EIO), (void)0);
}

/* Pinning is all or nothing. */
TEST_F(fail, pin)
{
	uint64_t done;

	FAIL_NTH_LOOP(SLOTS / 2, upage_pin(self->fd, 0, SLOTS, &done),
		      EXPECT_EQ(!ret, !!(states(self->fd) & UPAGE_SLOT_PINNED)));
}

TEST_F(fail, lazy_free)
{
	uint64_t done;

	/* Resident frames only: a lazily freed evicted one reads zeros. */
	FAIL_NTH_LOOP(0, upage_lazy_free(self->fd, 0, SLOTS, &done),
		      EXPECT_EQ(!ret, !!(states(self->fd) & UPAGE_SLOT_LAZY)));
}

/*
 * A clearing dirty collection that fails clears nothing: the next one
 * reports the same slots.
 */
TEST_F(fail, dirty_collect_and_clear)
{
	uint64_t bits, nr;
	int n, ret, hit;

	ASSERT_EQ(0, fresh(_metadata, self, 0));
	upage_require_cmd(self->fd, UPAGE_CMD_DIRTY);
	for (n = 1; n <= MAX_NTH; n++) {
		ASSERT_EQ(0, fresh(_metadata, self, 0));
		ASSERT_EQ(0, upage_track_start(self->fd, 0, SLOTS));
		self->p[1 * PAGE] = self->want[1 * PAGE];
		self->p[3 * PAGE] = self->want[3 * PAGE];
		bits = 0;
		arm(self, n);
		ret = upage_dirty(self->fd, 0, SLOTS, &bits, UPAGE_DIRTY_CLEAR,
				  &nr);
		hit = disarm(self);
		EXPECT_TRUE(clean_error(ret)) {
			TH_LOG("n=%d: %s", n, strerror(-ret));
		}
		if (!ret)
			EXPECT_EQ(0xaULL, bits);
		/* What failed is reported again; what succeeded is not. */
		ASSERT_EQ(0, upage_dirty(self->fd, 0, SLOTS, &bits, 0, &nr));
		EXPECT_EQ(ret ? 0xaULL : 0, bits) {
			TH_LOG("n=%d: %s", n, ret ? "writes lost" : "not cleared");
		}
		EXPECT_TRUE(upage_same(self->p, self->want, SLOTS * PAGE));
		if (!hit)
			break;
	}
	TH_LOG("%d allocations failed one by one", n - 1);
	EXPECT_GT(MAX_NTH, n);
	EXPECT_LT(1, n);
}

/*
 * A COPY resolve that fails changes nothing: the slot stays a trapped
 * hole, and a resolve without failures fills it.
 */
TEST_F(fail, resolve_copy)
{
	uint32_t trapped = UPAGE_SLOT_TRAP_READ;
	int n, ret, hit;

	ASSERT_EQ(0, fresh(_metadata, self, 0));
	upage_require_cmd(self->fd, UPAGE_CMD_RESOLVE);
	for (n = 1; n <= MAX_NTH; n++) {
		struct upage_slot_info si;

		ASSERT_EQ(0, fresh(_metadata, self, 0));
		ASSERT_EQ(0, upage_discard(self->fd, 2, 2));
		ASSERT_EQ(0, upage_trap(self->fd, 2, 2, UPAGE_TRAP_READ));
		arm(self, n);
		ret = upage_resolve(self->fd, 2, 2, UPAGE_RESOLVE_COPY,
				    UPAGE_RESOLVE_LIFT, self->want + 2 * PAGE,
				    NULL);
		hit = disarm(self);
		EXPECT_TRUE(clean_error(ret)) {
			TH_LOG("n=%d: %s", n, strerror(-ret));
		}
		ASSERT_EQ(0, upage_query(self->fd, 3, 1, &si));
		if (ret) {
			EXPECT_EQ(trapped, si.state & (UPAGE_SLOT_TRAP_READ |
						       UPAGE_SLOT_RESIDENT)) {
				TH_LOG("n=%d: a failed resolve changed slot 3", n);
			}
			ASSERT_EQ(0, upage_resolve(self->fd, 2, 2,
						   UPAGE_RESOLVE_COPY,
						   UPAGE_RESOLVE_LIFT,
						   self->want + 2 * PAGE, NULL));
		} else {
			EXPECT_EQ(UPAGE_SLOT_RESIDENT, si.state &
				  (UPAGE_SLOT_TRAP_READ | UPAGE_SLOT_RESIDENT));
		}
		EXPECT_TRUE(upage_same(self->p, self->want, SLOTS * PAGE));
		if (!hit)
			break;
	}
	TH_LOG("%d allocations failed one by one", n - 1);
	EXPECT_GT(MAX_NTH, n);
	EXPECT_LT(1, n);
}

TEST_HARNESS_MAIN
