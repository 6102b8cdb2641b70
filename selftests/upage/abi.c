// SPDX-License-Identifier: GPL-2.0
/*
 * The ioctl ABI rules of uapi/linux/upage.h, for every ioctl, in the style
 * of iommufd's and openat2's selftests: a size sweep (too small is EINVAL,
 * a non-zero tail past the struct is E2BIG, a zero tail is accepted and
 * left alone), bad argument pointers (EFAULT), unknown flags (EOPNOTSUPP),
 * unknown ioctl numbers (ENOTTY), and UPAGE_API's bitmap of ioctls.
 * Everything goes through raw ioctl(), one test per error row.
 */
#include <stddef.h>
#include <stdlib.h>

#include "upage_utils.h"

#define BUF 8192	/* room for any struct plus a large tail */

FIXTURE(abi) {
	int fd;
	unsigned char *buf;	/* BUF bytes, argument of the ioctl */
	struct upage_edit_op op;
	struct upage_slot_info info[2];
};

/*
 * One row per ioctl: its command, struct size, the size of the struct's
 * first version (the least the module accepts) and a valid argument.
 */
FIXTURE_VARIANT(abi) {
	unsigned long cmd;
	unsigned int nr;
	size_t size;
	size_t min;
	uint32_t valid_flags;
};

FIXTURE_VARIANT_ADD(abi, api) {
	.cmd = UPAGE_API, .nr = UPAGE_CMD_API,
	.size = sizeof(struct upage_api),
	.min = sizeof(struct upage_api),
};

FIXTURE_VARIANT_ADD(abi, resize) {
	.cmd = UPAGE_RESIZE, .nr = UPAGE_CMD_RESIZE,
	.size = sizeof(struct upage_resize),
	.min = sizeof(struct upage_resize),
};

FIXTURE_VARIANT_ADD(abi, edit) {
	.cmd = UPAGE_EDIT, .nr = UPAGE_CMD_EDIT,
	.size = sizeof(struct upage_edit),
	.min = sizeof(struct upage_edit),
	.valid_flags = UPAGE_EDIT_FLAGS_ALL,
};

FIXTURE_VARIANT_ADD(abi, query) {
	.cmd = UPAGE_QUERY, .nr = UPAGE_CMD_QUERY,
	.size = sizeof(struct upage_query),
	.min = sizeof(struct upage_query),
	.valid_flags = UPAGE_QUERY_FLAGS_ALL,
};

FIXTURE_VARIANT_ADD(abi, stats) {
	.cmd = UPAGE_STATS, .nr = UPAGE_CMD_STATS,
	.size = sizeof(struct upage_stats),
	/* Version 1 ended at out_batches; the residency counters came later. */
	.min = offsetof(struct upage_stats, out_evictions),
};

FIXTURE_VARIANT_ADD(abi, residency) {
	.cmd = UPAGE_RESIDENCY, .nr = UPAGE_CMD_RESIDENCY,
	.size = sizeof(struct upage_residency),
	.min = sizeof(struct upage_residency),
	.valid_flags = UPAGE_RES_FLAGS_ALL,
};

FIXTURE_VARIANT_ADD(abi, store) {
	.cmd = UPAGE_STORE, .nr = UPAGE_CMD_STORE,
	.size = sizeof(struct upage_store),
	.min = sizeof(struct upage_store),
	.valid_flags = UPAGE_STORE_FLAGS_ALL,
};

FIXTURE_VARIANT_ADD(abi, track) {
	.cmd = UPAGE_TRACK, .nr = UPAGE_CMD_TRACK,
	.size = sizeof(struct upage_track),
	.min = sizeof(struct upage_track),
};

FIXTURE_VARIANT_ADD(abi, dirty) {
	.cmd = UPAGE_DIRTY, .nr = UPAGE_CMD_DIRTY,
	.size = sizeof(struct upage_dirty),
	.min = sizeof(struct upage_dirty),
	.valid_flags = UPAGE_DIRTY_FLAGS_ALL,
};

FIXTURE_VARIANT_ADD(abi, trap) {
	.cmd = UPAGE_TRAP, .nr = UPAGE_CMD_TRAP,
	.size = sizeof(struct upage_trap),
	.min = sizeof(struct upage_trap),
	.valid_flags = UPAGE_TRAP_FLAGS_ALL,
};

FIXTURE_VARIANT_ADD(abi, resolve) {
	.cmd = UPAGE_RESOLVE, .nr = UPAGE_CMD_RESOLVE,
	.size = sizeof(struct upage_resolve),
	.min = sizeof(struct upage_resolve),
	.valid_flags = UPAGE_RESOLVE_FLAGS_ALL,
};

FIXTURE_SETUP(abi)
{
	self->buf = NULL;
	upage_open_or_skip(self->fd);
	upage_require_cmd(self->fd, variant->nr);
	upage_resize_ok(self->fd, 2);
	self->buf = mmap(NULL, BUF, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->buf);
	self->op = (struct upage_edit_op){ .op = UPAGE_OP_PROTECT, .dst = 0,
					   .n = 1, .prot = UPAGE_PROT_RW };
}

FIXTURE_TEARDOWN(abi)
{
	if (self->buf && self->buf != MAP_FAILED)
		munmap(self->buf, BUF);
	if (self->fd >= 0)
		close(self->fd);
}

/*
 * Write a valid argument of the variant's ioctl at @at with .size = @size;
 * @room bytes are available there (the rest is zeroed).
 */
static void valid_arg(FIXTURE_DATA(abi) *self,
		      const FIXTURE_VARIANT(abi) *variant, void *at,
		      size_t room, uint32_t size)
{
	union {
		struct upage_api api;
		struct upage_resize resize;
		struct upage_edit edit;
		struct upage_query query;
		struct upage_stats stats;
		struct upage_residency residency;
		struct upage_store store;
		struct upage_track track;
		struct upage_dirty dirty;
		struct upage_trap trap;
		struct upage_resolve resolve;
	} u;

	memset(&u, 0, sizeof(u));
	switch (variant->nr) {
	case UPAGE_CMD_RESIZE:
		u.resize.pages = 2;
		break;
	case UPAGE_CMD_EDIT:
		u.edit.op_size = sizeof(self->op);
		u.edit.count = 1;
		u.edit.ops = (uintptr_t)&self->op;
		break;
	case UPAGE_CMD_QUERY:
		u.query.first = 0;
		u.query.n = 1;
		u.query.info = (uintptr_t)self->info;
		u.query.info_size = sizeof(self->info[0]);
		break;
	case UPAGE_CMD_RESIDENCY:
		u.residency.op = UPAGE_RES_PREFETCH;
		u.residency.n = 1;
		break;
	case UPAGE_CMD_STORE:
		u.store.fd = -1;	/* the module's own store */
		break;
	case UPAGE_CMD_TRACK:
		u.track.op = UPAGE_TRACK_START;
		u.track.n = 1;
		break;
	case UPAGE_CMD_DIRTY:
		u.dirty.n = 1;
		u.dirty.bitmap = (uintptr_t)self->info;
		break;
	case UPAGE_CMD_TRAP:
		u.trap.n = 1;	/* access 0: lifts the (absent) trap */
		break;
	case UPAGE_CMD_RESOLVE:
		u.resolve.action = UPAGE_RESOLVE_MAP;
		u.resolve.n = 1;
		break;
	}
	u.api.size = size;
	memset(at, 0, room);
	memcpy(at, &u, variant->size < room ? variant->size : room);
}

static int do_ioctl(FIXTURE_DATA(abi) *self,
		    const FIXTURE_VARIANT(abi) *variant, void *arg)
{
	return _upage_ioctl(self->fd, variant->cmd, arg);
}

/* The exact size with a valid argument succeeds. */
TEST_F(abi, exact_size_works)
{
	valid_arg(self, variant, self->buf, BUF, variant->size);
	ASSERT_EQ(0, do_ioctl(self, variant, self->buf));
}

/* size 0 is EINVAL. */
TEST_F(abi, size_zero_is_einval)
{
	valid_arg(self, variant, self->buf, BUF, 0);
	ASSERT_EQ(-EINVAL, do_ioctl(self, variant, self->buf));
}

/* size 8 (only size and flags) is EINVAL. */
TEST_F(abi, size_header_only_is_einval)
{
	valid_arg(self, variant, self->buf, BUF, 8);
	ASSERT_EQ(-EINVAL, do_ioctl(self, variant, self->buf));
}

/* One byte short of the first version is EINVAL. */
TEST_F(abi, size_one_short_is_einval)
{
	valid_arg(self, variant, self->buf, BUF, variant->min - 1);
	ASSERT_EQ(-EINVAL, do_ioctl(self, variant, self->buf));
}

/* One field short of the first version is EINVAL. */
TEST_F(abi, size_one_field_short_is_einval)
{
	valid_arg(self, variant, self->buf, BUF, variant->min - 8);
	ASSERT_EQ(-EINVAL, do_ioctl(self, variant, self->buf));
}

/* size = sizeof + 8 with a non-zero last tail byte is E2BIG. */
TEST_F(abi, size_plus_8_nonzero_tail_end_is_e2big)
{
	valid_arg(self, variant, self->buf, BUF, variant->size + 8);
	self->buf[variant->size + 7] = 1;
	ASSERT_EQ(-E2BIG, do_ioctl(self, variant, self->buf));
}

/* size = sizeof + 8 with a non-zero first tail byte is E2BIG. */
TEST_F(abi, size_plus_8_nonzero_tail_start_is_e2big)
{
	valid_arg(self, variant, self->buf, BUF, variant->size + 8);
	self->buf[variant->size] = 0x80;
	ASSERT_EQ(-E2BIG, do_ioctl(self, variant, self->buf));
}

/* A non-zero byte past a larger size is not looked at. */
TEST_F(abi, byte_past_size_is_ignored)
{
	valid_arg(self, variant, self->buf, BUF, variant->size + 8);
	self->buf[variant->size + 8] = 1;
	ASSERT_EQ(0, do_ioctl(self, variant, self->buf));
}

/* size = sizeof + 8 with a zero tail works, and the tail stays zero. */
TEST_F(abi, size_plus_8_zero_tail_works)
{
	size_t k;

	valid_arg(self, variant, self->buf, BUF, variant->size + 8);
	ASSERT_EQ(0, do_ioctl(self, variant, self->buf));
	for (k = variant->size; k < variant->size + 8; k++)
		ASSERT_EQ(0, self->buf[k]);
}

/* A page-sized struct with a zero tail works. */
TEST_F(abi, size_page_zero_tail_works)
{
	valid_arg(self, variant, self->buf, BUF, PAGE);
	ASSERT_EQ(0, do_ioctl(self, variant, self->buf));
}

/* A struct larger than a page is E2BIG, even with a zero tail (openat2). */
TEST_F(abi, size_past_a_page_is_e2big)
{
	valid_arg(self, variant, self->buf, BUF, PAGE + 1);
	ASSERT_EQ(-E2BIG, do_ioctl(self, variant, self->buf));
}

/* Outputs are never written past size: the bytes after it are intact. */
TEST_F(abi, nothing_written_past_size)
{
	size_t k;

	valid_arg(self, variant, self->buf, BUF, variant->size);
	memset(self->buf + variant->size, 0xa5, 64);
	ASSERT_EQ(0, do_ioctl(self, variant, self->buf));
	for (k = variant->size; k < variant->size + 64; k++)
		ASSERT_EQ(0xa5, self->buf[k]);
	ASSERT_EQ(variant->size, *(uint32_t *)self->buf);
}

/* A NULL argument is EFAULT. */
TEST_F(abi, null_arg_is_efault)
{
	ASSERT_EQ(-EFAULT, do_ioctl(self, variant, NULL));
}

/* An argument in an inaccessible page is EFAULT. */
TEST_F(abi, unmapped_arg_is_efault)
{
	ASSERT_EQ(0, mprotect(self->buf + PAGE, PAGE, PROT_NONE));
	ASSERT_EQ(-EFAULT, do_ioctl(self, variant, self->buf + PAGE));
}

/* An argument whose size is readable but whose rest is not is EFAULT. */
TEST_F(abi, arg_straddling_unmapped_page_is_efault)
{
	unsigned char *at = self->buf + PAGE - 8;

	valid_arg(self, variant, self->buf, BUF, variant->size);
	memcpy(at, self->buf, 8);
	ASSERT_EQ(0, mprotect(self->buf + PAGE, PAGE, PROT_NONE));
	ASSERT_EQ(-EFAULT, do_ioctl(self, variant, at));
}

/* A tail that runs into an inaccessible page is EFAULT, not success. */
TEST_F(abi, tail_in_unmapped_page_is_efault)
{
	unsigned char *at = self->buf + PAGE - variant->size;

	valid_arg(self, variant, at, variant->size, variant->size + 64);
	ASSERT_EQ(0, mprotect(self->buf + PAGE, PAGE, PROT_NONE));
	ASSERT_EQ(-EFAULT, do_ioctl(self, variant, at));
}

/* Each unknown flag bit is EOPNOTSUPP. */
TEST_F(abi, unknown_flags_are_eopnotsupp)
{
	int bit;

	for (bit = 0; bit < 32; bit++) {
		if (variant->valid_flags & (1U << bit))
			continue;
		valid_arg(self, variant, self->buf, BUF, variant->size);
		((uint32_t *)self->buf)[1] = 1U << bit;
		ASSERT_EQ(-EOPNOTSUPP, do_ioctl(self, variant, self->buf)) {
			TH_LOG("flag bit %d", bit);
		}
	}
}

/* An unknown flag is refused in a larger, zero-tailed struct too. */
TEST_F(abi, unknown_flag_with_zero_tail_is_eopnotsupp)
{
	valid_arg(self, variant, self->buf, BUF, variant->size + 8);
	((uint32_t *)self->buf)[1] = 0x80000000;
	ASSERT_EQ(-EOPNOTSUPP, do_ioctl(self, variant, self->buf));
}

/* ---- UPAGE_API's bitmap ---- */

FIXTURE(api) {
	int fd;
};

FIXTURE_SETUP(api)
{
	upage_open_or_skip(self->fd);
}

FIXTURE_TEARDOWN(api)
{
	if (self->fd >= 0)
		close(self->fd);
}

/* A version 1 module implements every version 1 ioctl and says so. */
TEST_F(api, reports_every_version_1_ioctl)
{
	struct upage_api api;

	ASSERT_EQ(0, upage_api(self->fd, &api));
	ASSERT_EQ(1, api.out_version);
	EXPECT_TRUE(api.out_ioctls & (1ULL << UPAGE_CMD_API));
	EXPECT_TRUE(api.out_ioctls & (1ULL << UPAGE_CMD_RESIZE));
	EXPECT_TRUE(api.out_ioctls & (1ULL << UPAGE_CMD_EDIT));
	EXPECT_TRUE(api.out_ioctls & (1ULL << UPAGE_CMD_QUERY));
	EXPECT_TRUE(api.out_ioctls & (1ULL << UPAGE_CMD_STATS));
}

/* The first version of a struct is still accepted, outputs cut to it. */
TEST_F(abi, first_version_size_works)
{
	valid_arg(self, variant, self->buf, BUF, variant->min);
	memset((char *)self->buf + variant->min, 0x77, 16);
	ASSERT_EQ(0, do_ioctl(self, variant, self->buf));
	/* Nothing written past what the caller said it has. */
	for (int i = 0; i < 16; i++)
		ASSERT_EQ(0x77, ((unsigned char *)self->buf)[variant->min + i]);
}

/* Bit n of out_ioctls is set exactly when ioctl n answers (not ENOTTY). */
TEST_F(api, bits_match_the_ioctls_that_answer)
{
	struct upage_api api;
	uint32_t zero[64];
	unsigned int nr;

	ASSERT_EQ(0, upage_api(self->fd, &api));
	for (nr = 0; nr < 64; nr++) {
		int ret, has = !!(api.out_ioctls & (1ULL << nr));

		memset(zero, 0, sizeof(zero));	/* size 0: EINVAL if known */
		ret = _upage_ioctl(self->fd, _IO(UPAGE_TYPE, nr), zero);
		EXPECT_EQ(has, ret != -ENOTTY) {
			TH_LOG("ioctl nr %u: bit %d, returned %d", nr, has, ret);
		}
	}
}

/* ---- Unknown ioctl numbers: one row each ---- */

FIXTURE(unknown_ioctl) {
	int fd;
	unsigned char buf[256];
};

FIXTURE_VARIANT(unknown_ioctl) {
	unsigned long cmd;
};

FIXTURE_VARIANT_ADD(unknown_ioctl, nr_0x7f) {
	.cmd = _IO(UPAGE_TYPE, 0x7f),
};

FIXTURE_VARIANT_ADD(unknown_ioctl, nr_0xff) {
	.cmd = _IO(UPAGE_TYPE, 0xff),
};

FIXTURE_VARIANT_ADD(unknown_ioctl, nr_after_last) {
	.cmd = _IO(UPAGE_TYPE, UPAGE_CMD_RESOLVE + 1),
};

FIXTURE_VARIANT_ADD(unknown_ioctl, foreign_type_0xbb) {
	.cmd = _IO(0xBB, UPAGE_CMD_API),
};

FIXTURE_VARIANT_ADD(unknown_ioctl, foreign_type_u) {
	.cmd = _IO('u', 0x7f),
};

FIXTURE_VARIANT_ADD(unknown_ioctl, api_with_iowr_bits) {
	.cmd = _IOWR(UPAGE_TYPE, UPAGE_CMD_API, struct upage_api),
};

FIXTURE_VARIANT_ADD(unknown_ioctl, edit_with_iow_bits) {
	.cmd = _IOW(UPAGE_TYPE, UPAGE_CMD_EDIT, struct upage_edit),
};

FIXTURE_SETUP(unknown_ioctl)
{
	upage_open_or_skip(self->fd);
	/* A well-formed struct: only the number is wrong. */
	memset(self->buf, 0, sizeof(self->buf));
	*(uint32_t *)self->buf = sizeof(struct upage_api);
}

FIXTURE_TEARDOWN(unknown_ioctl)
{
	if (self->fd >= 0)
		close(self->fd);
}

/* An unknown ioctl number is ENOTTY, whatever the argument. */
TEST_F(unknown_ioctl, is_enotty)
{
	ASSERT_EQ(-ENOTTY, _upage_ioctl(self->fd, variant->cmd, self->buf));
	ASSERT_EQ(-ENOTTY, _upage_ioctl(self->fd, variant->cmd, NULL));
}

TEST_HARNESS_MAIN
