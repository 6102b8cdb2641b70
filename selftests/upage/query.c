// SPDX-License-Identifier: GPL-2.0
/*
 * UPAGE_QUERY reports each slot's frame id, pfn (CAP_SYS_ADMIN only, for
 * both the caller and the opener), state, aliases and protection, by slot
 * or by address, and refuses malformed requests. UPAGE_STATS counts pages,
 * frames, faults, zero fills, COW breaks, edits and batches.
 */
#include <linux/capability.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "upage_utils.h"

#define SLOTS 8

FIXTURE(query) {
	int fd;
	volatile unsigned char *p;	/* slots 0..SLOTS-1, MAP_SHARED; volatile: aliases */
};

FIXTURE_SETUP(query)
{
	self->p = NULL;
	upage_open_or_skip(self->fd);
	upage_require_cmd(self->fd, UPAGE_CMD_QUERY);
	upage_resize_ok(self->fd, SLOTS);
	self->p = upage_map(self->fd, 0, SLOTS, MAP_SHARED);
	ASSERT_NE(NULL, self->p);
}

FIXTURE_TEARDOWN(query)
{
	if (self->p)
		munmap((void *)self->p, SLOTS * PAGE);
	if (self->fd >= 0)
		close(self->fd);
}

static int raw_query(int fd, struct upage_query *q)
{
	return _upage_ioctl(fd, UPAGE_QUERY, q);
}

static struct upage_query query_cmd(uint64_t first, uint64_t n, void *info)
{
	return (struct upage_query){
		.size = sizeof(struct upage_query),
		.first = first,
		.n = n,
		.info = (uintptr_t)info,
		.info_size = sizeof(struct upage_slot_info),
	};
}

/* Slots of a new space are RW holes: id 0, pfn 0, no state, no aliases. */
TEST_F(query, new_slots_are_rw_holes)
{
	struct upage_slot_info info[SLOTS];
	int i;

	memset(info, 0xee, sizeof(info));
	upage_query_ok(self->fd, 0, SLOTS, info);
	for (i = 0; i < SLOTS; i++) {
		EXPECT_EQ(0, info[i].frame_id);
		EXPECT_EQ(0, info[i].pfn);
		EXPECT_EQ(0, info[i].state);
		EXPECT_EQ(0, info[i].nr_aliases);
		EXPECT_EQ(UPAGE_PROT_RW, info[i].prot);
		EXPECT_EQ(0, info[i].__reserved);
	}
}

/* A space with no slots has nothing to query. */
TEST_F(query, empty_space_is_einval)
{
	struct upage_slot_info info;

	upage_resize_ok(self->fd, 0);
	upage_query_err(EINVAL, self->fd, 0, 1, &info);
}

/* A touched slot is resident, with a non-zero id that does not change. */
TEST_F(query, touched_slot_is_resident_with_stable_id)
{
	struct upage_slot_info a[SLOTS], b[SLOTS];
	int i, j;

	for (i = 0; i < 4; i++)
		(void)*(volatile unsigned char *)(self->p + i * PAGE);
	upage_query_ok(self->fd, 0, SLOTS, a);
	for (i = 0; i < 4; i++) {
		EXPECT_NE(0, a[i].frame_id);
		EXPECT_EQ(UPAGE_SLOT_RESIDENT, a[i].state);
		EXPECT_EQ(1, a[i].nr_aliases);
		for (j = 0; j < i; j++)
			EXPECT_NE(a[j].frame_id, a[i].frame_id);
	}
	for (i = 4; i < SLOTS; i++)
		EXPECT_EQ(0, a[i].frame_id);
	/* Writes, remaps and other slots' faults keep the ids. */
	for (i = 0; i < 4; i++)
		upage_fill(self->p, i, 1);
	munmap((void *)self->p, SLOTS * PAGE);
	self->p = upage_map(self->fd, 0, SLOTS, MAP_SHARED);
	ASSERT_NE(NULL, self->p);
	for (i = 0; i < SLOTS; i++)
		upage_fill(self->p, i, 2);
	upage_query_ok(self->fd, 0, SLOTS, b);
	for (i = 0; i < 4; i++)
		EXPECT_EQ(a[i].frame_id, b[i].frame_id);
}

/* A query of n slots from first reports exactly those slots. */
TEST_F(query, subrange_matches_single_queries)
{
	struct upage_slot_info info[3];
	int i;

	self->p[3 * PAGE] = 1;
	self->p[5 * PAGE] = 1;
	upage_query_ok(self->fd, 3, 3, info);
	for (i = 0; i < 3; i++)
		EXPECT_EQ(upage_slot(self->fd, 3 + i).frame_id, info[i].frame_id);
	EXPECT_NE(0, info[0].frame_id);
	EXPECT_EQ(0, info[1].frame_id);
	EXPECT_NE(0, info[2].frame_id);
}

/* As root (caller and opener have CAP_SYS_ADMIN) resident slots show a pfn. */
TEST_F(query, pfn_for_cap_sys_admin)
{
	struct upage_slot_info info[SLOTS];

	if (geteuid() != 0)
		SKIP(return, "needs root");
	self->p[0] = 1;
	self->p[PAGE] = 1;
	upage_query_ok(self->fd, 0, SLOTS, info);
	EXPECT_NE(0, info[0].pfn);
	EXPECT_NE(0, info[1].pfn);
	EXPECT_NE(info[0].pfn, info[1].pfn);
	EXPECT_EQ(0, info[2].pfn);
}

/* Drop CAP_SYS_ADMIN from this process (stays uid 0). */
static int drop_sys_admin(void)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[2];

	if (syscall(SYS_capget, &hdr, data))
		return -1;
	data[CAP_SYS_ADMIN / 32].effective &= ~(1U << (CAP_SYS_ADMIN % 32));
	data[CAP_SYS_ADMIN / 32].permitted &= ~(1U << (CAP_SYS_ADMIN % 32));
	data[CAP_SYS_ADMIN / 32].inheritable &= ~(1U << (CAP_SYS_ADMIN % 32));
	return syscall(SYS_capset, &hdr, data) ? -1 : 0;
}

/* Exit code of a child that checks slots 0..1 of @fd: 0 resident with
 * pfn 0, 10+ on errors. */
static int child_expects_no_pfn(int fd)
{
	struct upage_slot_info info[2];

	memset(info, 0xee, sizeof(info));
	if (upage_query(fd, 0, 2, info))
		return 10;
	if (!(info[0].state & UPAGE_SLOT_RESIDENT) || !info[0].frame_id)
		return 11;
	if (info[0].pfn || info[1].pfn)
		return 12;
	if (info[0].nr_aliases != 1 || info[0].prot != UPAGE_PROT_RW)
		return 13;
	return 0;
}

static int wait_child(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	if (!WIFEXITED(status))
		return 100 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	return WEXITSTATUS(status);
}

/* A caller without CAP_SYS_ADMIN (capset) on root's space sees pfn 0. */
TEST_F(query, no_pfn_for_caller_without_cap_sys_admin)
{
	pid_t pid;

	if (geteuid() != 0)
		SKIP(return, "needs root");
	self->p[0] = 1;
	self->p[PAGE] = 1;
	ASSERT_NE(0, upage_slot(self->fd, 0).pfn);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (drop_sys_admin())
			_exit(20);
		_exit(child_expects_no_pfn(self->fd));
	}
	EXPECT_EQ(0, wait_child(pid));
}

/* A caller that setuid()s to nobody on root's space sees pfn 0. */
TEST_F(query, no_pfn_for_caller_after_setuid_nobody)
{
	pid_t pid;

	if (geteuid() != 0)
		SKIP(return, "needs root");
	self->p[0] = 1;
	self->p[PAGE] = 1;
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (setgid(65534) || setuid(65534))
			_exit(20);
		_exit(child_expects_no_pfn(self->fd));
	}
	EXPECT_EQ(0, wait_child(pid));
}

static int send_fd(int sock, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = "f", .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &msg, 0) == 1 ? 0 : -1;
}

static int recv_fd(int sock)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	char b;
	struct iovec iov = { .iov_base = &b, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *c;
	int fd;

	if (recvmsg(sock, &msg, 0) != 1)
		return -1;
	c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/* A space opened without CAP_SYS_ADMIN shows no pfn, to its opener nor to
 * root querying it through a passed fd. */
TEST_F(query, no_pfn_when_opener_lacks_cap_sys_admin)
{
	int sv[2], fd;
	pid_t pid;

	if (geteuid() != 0)
		SKIP(return, "needs root");
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		unsigned char *q;
		int ret;

		if (drop_sys_admin())
			_exit(20);
		fd = upage_open(O_CLOEXEC);
		if (fd < 0)
			_exit(21);
		if (upage_resize(fd, 2, NULL))
			_exit(22);
		q = upage_map(fd, 0, 2, MAP_SHARED);
		if (!q)
			_exit(23);
		q[0] = 1;
		ret = child_expects_no_pfn(fd);
		if (send_fd(sv[1], fd))
			_exit(24);
		_exit(ret);
	}
	fd = recv_fd(sv[0]);
	EXPECT_EQ(0, wait_child(pid));
	ASSERT_LE(0, fd);
	/* Root, with CAP_SYS_ADMIN, on an unprivileged opener's space. */
	EXPECT_EQ(0, child_expects_no_pfn(fd));
	close(fd);
	close(sv[0]);
	close(sv[1]);
}

/* Aliases report one frame id, one pfn and the number of sharing slots. */
TEST_F(query, aliases_report_same_frame)
{
	struct upage_slot_info info[3];

	upage_require_cmd(self->fd, UPAGE_CMD_EDIT);
	self->p[0] = 1;
	upage_alias_ok(self->fd, 1, 0, 1);
	upage_alias_cow_ok(self->fd, 2, 0, 1);
	upage_query_ok(self->fd, 0, 3, info);
	EXPECT_EQ(info[0].frame_id, info[1].frame_id);
	EXPECT_EQ(info[0].frame_id, info[2].frame_id);
	EXPECT_EQ(info[0].pfn, info[1].pfn);
	EXPECT_EQ(info[0].pfn, info[2].pfn);
	EXPECT_EQ(3, info[0].nr_aliases);
	EXPECT_EQ(3, info[2].nr_aliases);
	EXPECT_EQ(UPAGE_SLOT_RESIDENT, info[0].state);
	EXPECT_EQ(UPAGE_SLOT_RESIDENT, info[1].state);
	EXPECT_EQ(UPAGE_SLOT_RESIDENT | UPAGE_SLOT_COW, info[2].state);
}

/* A protected slot reports its protection. */
TEST_F(query, reports_protection)
{
	struct upage_slot_info info[3];

	upage_require_cmd(self->fd, UPAGE_CMD_EDIT);
	upage_protect_ok(self->fd, 0, 1, UPAGE_PROT_NONE);
	upage_protect_ok(self->fd, 1, 1, UPAGE_PROT_READ);
	upage_query_ok(self->fd, 0, 3, info);
	EXPECT_EQ(UPAGE_PROT_NONE, info[0].prot);
	EXPECT_EQ(UPAGE_PROT_READ, info[1].prot);
	EXPECT_EQ(UPAGE_PROT_RW, info[2].prot);
	EXPECT_EQ(0, info[0].frame_id);		/* protecting fills nothing */
}

/* A larger info_size: entries at that stride, extra bytes zeroed, nothing
 * written past n entries. */
TEST_F(query, larger_info_size_strides_and_zeroes_tail)
{
	const size_t stride = sizeof(struct upage_slot_info) + 16;
	unsigned char buf[4 * (sizeof(struct upage_slot_info) + 16)];
	struct upage_slot_info e;
	struct upage_query q;
	size_t i, k;

	self->p[0] = 1;
	self->p[2 * PAGE] = 1;
	memset(buf, 0xa5, sizeof(buf));
	q = query_cmd(0, 3, buf);
	q.info_size = stride;
	ASSERT_EQ(0, raw_query(self->fd, &q));
	for (i = 0; i < 3; i++) {
		memcpy(&e, buf + i * stride, sizeof(e));
		EXPECT_EQ(upage_slot(self->fd, i).frame_id, e.frame_id);
		EXPECT_EQ(i == 1 ? 0 : UPAGE_SLOT_RESIDENT, e.state);
		EXPECT_EQ(UPAGE_PROT_RW, e.prot);
		for (k = sizeof(e); k < stride; k++)
			ASSERT_EQ(0, buf[i * stride + k]);
	}
	for (k = 3 * stride; k < sizeof(buf); k++)
		ASSERT_EQ(0xa5, buf[k]);
}

/* Nothing is written past n entries of the normal size either. */
TEST_F(query, writes_exactly_n_entries)
{
	struct upage_slot_info info[4];
	unsigned char *c = (unsigned char *)&info[2];
	size_t k;

	memset(info, 0xa5, sizeof(info));
	upage_query_ok(self->fd, 1, 2, info);
	for (k = 0; k < 2 * sizeof(info[0]); k++)
		ASSERT_EQ(0xa5, c[k]);
}

/* info_size smaller than struct upage_slot_info is EINVAL. */
TEST_F(query, small_info_size_is_einval)
{
	uint32_t sizes[] = { 0, 8, sizeof(struct upage_slot_info) - 4,
			     sizeof(struct upage_slot_info) - 1 };
	struct upage_slot_info info[2];
	struct upage_query q;
	size_t i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		q = query_cmd(0, 1, info);
		q.info_size = sizes[i];
		ASSERT_EQ(-EINVAL, raw_query(self->fd, &q)) {
			TH_LOG("info_size %u", sizes[i]);
		}
	}
}

/* n == 0 is EINVAL. */
TEST_F(query, n_zero_is_einval)
{
	struct upage_slot_info info;

	upage_query_err(EINVAL, self->fd, 0, 0, &info);
}

/* A range past the size, or overflowing, is EINVAL. */
TEST_F(query, range_beyond_size_is_einval)
{
	struct upage_slot_info info[SLOTS + 1];

	upage_query_err(EINVAL, self->fd, SLOTS - 1, 2, info);
	upage_query_err(EINVAL, self->fd, SLOTS, 1, info);
	upage_query_err(EINVAL, self->fd, 0, SLOTS + 1, info);
	upage_query_err(EINVAL, self->fd, UINT64_MAX, 2, info);
	upage_query_err(EINVAL, self->fd, 1, UINT64_MAX, info);
	upage_query_ok(self->fd, SLOTS - 1, 1, info);
}

/* Unknown flags are EOPNOTSUPP. */
TEST_F(query, unknown_flags_are_eopnotsupp)
{
	struct upage_slot_info info;
	struct upage_query q;
	int bit;

	for (bit = 1; bit < 32; bit++) {
		q = query_cmd(0, 1, &info);
		q.flags = 1U << bit;
		ASSERT_EQ(-EOPNOTSUPP, raw_query(self->fd, &q)) {
			TH_LOG("flag bit %d", bit);
		}
	}
}

/* A non-zero __reserved is EOPNOTSUPP. */
TEST_F(query, reserved_nonzero_is_eopnotsupp)
{
	struct upage_slot_info info;
	struct upage_query q = query_cmd(0, 1, &info);

	q.__reserved = 1;
	ASSERT_EQ(-EOPNOTSUPP, raw_query(self->fd, &q));
}

/* An info buffer that is not writable is EFAULT. */
TEST_F(query, bad_info_pointer_is_efault)
{
	struct upage_query q = query_cmd(0, 1, NULL);
	void *ro;

	ASSERT_EQ(-EFAULT, raw_query(self->fd, &q));
	ro = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ro);
	q = query_cmd(0, 1, ro);
	ASSERT_EQ(-EFAULT, raw_query(self->fd, &q));
	munmap(ro, PAGE);
}

/* The info buffer may be a hole in the space's own mapping (no deadlock). */
TEST_F(query, info_in_own_mapping_hole)
{
	struct upage_slot_info *info = (void *)(self->p + 7 * PAGE);

	self->p[0] = 1;
	upage_query_ok(self->fd, 0, 2, info);
	EXPECT_EQ(UPAGE_SLOT_RESIDENT, info[0].state);
	EXPECT_NE(0, info[0].frame_id);
	EXPECT_NE(0, upage_slot(self->fd, 7).frame_id);
}

/* BY_ADDR: the slot behind an address, counting the mapping's offset. */
TEST_F(query, by_addr_reports_slot_with_mmap_offset)
{
	struct upage_slot_info info;
	unsigned char *q = upage_map(self->fd, 5, 3, MAP_SHARED);
	uint64_t slot = 99;

	ASSERT_NE(NULL, q);
	q[PAGE] = 1;
	upage_query_addr_ok(self->fd, q + PAGE + 17, &slot, &info);
	EXPECT_EQ(6, slot);
	EXPECT_EQ(upage_slot(self->fd, 6).frame_id, info.frame_id);
	EXPECT_NE(0, info.frame_id);
	upage_query_addr_ok(self->fd, q, &slot, &info);
	EXPECT_EQ(5, slot);
	EXPECT_EQ(0, info.frame_id);
	upage_query_addr_ok(self->fd, (void *)(self->p + 4 * PAGE - 1), &slot,
			    &info);
	EXPECT_EQ(3, slot);
	munmap(q, 3 * PAGE);
}

/* BY_ADDR with n > 1 reports the following slots too. */
TEST_F(query, by_addr_reports_n_slots)
{
	struct upage_slot_info info[2];
	struct upage_query q = query_cmd((uintptr_t)(self->p + 2 * PAGE), 2,
					 info);

	self->p[3 * PAGE] = 1;
	q.flags = UPAGE_QUERY_BY_ADDR;
	ASSERT_EQ(0, raw_query(self->fd, &q));
	EXPECT_EQ(2, q.out_slot);
	EXPECT_EQ(0, info[0].frame_id);
	EXPECT_EQ(upage_slot(self->fd, 3).frame_id, info[1].frame_id);
	EXPECT_NE(0, info[1].frame_id);
}

/* BY_ADDR of an address outside every mapping of this space is ENOENT. */
TEST_F(query, by_addr_outside_space_is_enoent)
{
	unsigned char *other, *anon, *gone;
	int stack_var = 0, fd2;

	upage_query_addr_err(ENOENT, self->fd, &stack_var);
	anon = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, anon);
	upage_query_addr_err(ENOENT, self->fd, anon);
	fd2 = upage_open(O_CLOEXEC);
	ASSERT_LE(0, fd2);
	upage_resize_ok(fd2, SLOTS);
	other = upage_map(fd2, 0, 1, MAP_SHARED);
	ASSERT_NE(NULL, other);
	upage_query_addr_err(ENOENT, self->fd, other);
	gone = upage_map(self->fd, 0, 1, MAP_SHARED);
	ASSERT_NE(NULL, gone);
	munmap(gone, PAGE);
	upage_query_addr_err(ENOENT, self->fd, gone);
	upage_query_addr_err(ENOENT, self->fd, NULL);
	munmap(other, PAGE);
	munmap(anon, PAGE);
	close(fd2);
}

/* ---- UPAGE_STATS ---- */

FIXTURE(stats) {
	int fd;
};

FIXTURE_SETUP(stats)
{
	upage_open_or_skip(self->fd);
	upage_require_cmd(self->fd, UPAGE_CMD_STATS);
}

FIXTURE_TEARDOWN(stats)
{
	if (self->fd >= 0)
		close(self->fd);
}

/* A new space has every counter at 0. */
TEST_F(stats, new_space_is_all_zero)
{
	struct upage_stats st;

	memset(&st, 0xee, sizeof(st));
	upage_stats_ok(self->fd, &st);
	EXPECT_EQ(sizeof(st), st.size);
	EXPECT_EQ(0, st.out_pages);
	EXPECT_EQ(0, st.out_frames);
	EXPECT_EQ(0, st.out_faults);
	EXPECT_EQ(0, st.out_zero_fills);
	EXPECT_EQ(0, st.out_cow_breaks);
	EXPECT_EQ(0, st.out_edits);
	EXPECT_EQ(0, st.out_batches);
}

/* out_pages follows resize; shrinking frees the cut frames. */
TEST_F(stats, pages_and_frames_follow_resize)
{
	struct upage_stats st;
	unsigned char *p;

	upage_resize_ok(self->fd, 6);
	upage_stats_ok(self->fd, &st);
	EXPECT_EQ(6, st.out_pages);
	p = upage_map(self->fd, 0, 6, MAP_SHARED);
	ASSERT_NE(NULL, p);
	memset(p, 1, 6 * PAGE);
	upage_stats_ok(self->fd, &st);
	EXPECT_EQ(6, st.out_frames);
	upage_resize_ok(self->fd, 2);
	upage_stats_ok(self->fd, &st);
	EXPECT_EQ(2, st.out_pages);
	EXPECT_EQ(2, st.out_frames);
	munmap(p, 6 * PAGE);
}

/* Touching holes counts faults and zero fills; re-faulting a resident
 * slot counts a fault but no zero fill. */
TEST_F(stats, faults_and_zero_fills)
{
	struct upage_stats a, b;
	unsigned char *p;

	upage_resize_ok(self->fd, 4);
	p = upage_map(self->fd, 0, 4, MAP_SHARED);
	ASSERT_NE(NULL, p);
	upage_stats_ok(self->fd, &a);
	p[0] = 1;
	(void)*(volatile unsigned char *)(p + PAGE);
	p[2 * PAGE] = 1;
	upage_stats_ok(self->fd, &b);
	EXPECT_EQ(a.out_zero_fills + 3, b.out_zero_fills);
	EXPECT_LE(a.out_faults + 3, b.out_faults);
	EXPECT_EQ(3, b.out_frames);
	munmap(p, 4 * PAGE);

	p = upage_map(self->fd, 0, 4, MAP_SHARED);
	ASSERT_NE(NULL, p);
	a = b;
	EXPECT_EQ(1, p[0]);
	upage_stats_ok(self->fd, &b);
	EXPECT_LE(a.out_faults + 1, b.out_faults);
	EXPECT_EQ(a.out_zero_fills, b.out_zero_fills);
	EXPECT_EQ(3, b.out_frames);
	munmap(p, 4 * PAGE);
}

/* out_frames counts frames, not slots: aliases share, moves keep, an
 * alias over an own frame frees it. */
TEST_F(stats, frames_follow_edits)
{
	struct upage_stats st;
	unsigned char *p;

	upage_require_cmd(self->fd, UPAGE_CMD_EDIT);
	upage_resize_ok(self->fd, 8);
	upage_alias_ok(self->fd, 1, 0, 1);		/* hole: one new frame */
	upage_stats_ok(self->fd, &st);
	EXPECT_EQ(1, st.out_frames);
	upage_move_ok(self->fd, 2, 1, 1);
	upage_stats_ok(self->fd, &st);
	EXPECT_EQ(1, st.out_frames);
	p = upage_map(self->fd, 0, 8, MAP_SHARED);
	ASSERT_NE(NULL, p);
	p[3 * PAGE] = 1;
	upage_stats_ok(self->fd, &st);
	EXPECT_EQ(2, st.out_frames);
	upage_alias_ok(self->fd, 3, 0, 1);		/* slot 3's frame freed */
	upage_stats_ok(self->fd, &st);
	EXPECT_EQ(1, st.out_frames);
	upage_move_ok(self->fd, 5, 0, 1);
	upage_move_ok(self->fd, 6, 2, 1);
	upage_move_ok(self->fd, 7, 3, 1);		/* one frame, 3 slots */
	upage_stats_ok(self->fd, &st);
	EXPECT_EQ(1, st.out_frames);
	upage_move_ok(self->fd, 5, 0, 1);		/* hole onto 5 */
	upage_move_ok(self->fd, 6, 1, 1);
	upage_move_ok(self->fd, 7, 2, 1);
	upage_stats_ok(self->fd, &st);
	EXPECT_EQ(0, st.out_frames);
	munmap(p, 8 * PAGE);
}

/* ALIAS and ALIAS_COW of a hole fill it with a zeroed frame: a zero fill. */
TEST_F(stats, alias_of_hole_counts_zero_fill)
{
	struct upage_stats a, b;

	upage_require_cmd(self->fd, UPAGE_CMD_EDIT);
	upage_resize_ok(self->fd, 4);
	upage_stats_ok(self->fd, &a);
	upage_alias_ok(self->fd, 1, 0, 1);
	upage_alias_cow_ok(self->fd, 3, 2, 1);
	upage_stats_ok(self->fd, &b);
	EXPECT_EQ(a.out_zero_fills + 2, b.out_zero_fills);
	EXPECT_EQ(a.out_frames + 2, b.out_frames);
	EXPECT_EQ(a.out_faults, b.out_faults);
}

/* One COW break adds exactly 1 to out_cow_breaks, and a new frame. */
TEST_F(stats, cow_break_counts_once)
{
	struct upage_stats a, b;
	unsigned char *p;

	upage_require_cmd(self->fd, UPAGE_CMD_EDIT);
	upage_resize_ok(self->fd, 2);
	p = upage_map(self->fd, 0, 2, MAP_SHARED);
	ASSERT_NE(NULL, p);
	p[0] = 'a';
	upage_alias_cow_ok(self->fd, 1, 0, 1);
	EXPECT_EQ('a', p[PAGE]);
	upage_stats_ok(self->fd, &a);
	EXPECT_EQ(1, a.out_frames);
	p[PAGE] = 'b';
	p[PAGE + 1] = 'c';
	upage_stats_ok(self->fd, &b);
	EXPECT_EQ(a.out_cow_breaks + 1, b.out_cow_breaks);
	EXPECT_EQ(2, b.out_frames);
	EXPECT_EQ(a.out_zero_fills, b.out_zero_fills);
	munmap(p, 2 * PAGE);
}

/* A batch of 3 ops adds 3 edits and 1 batch; a failed one adds nothing. */
TEST_F(stats, edits_and_batches)
{
	struct upage_edit_op ops[] = {
		{ .op = UPAGE_OP_PROTECT, .dst = 0, .n = 2,
		  .prot = UPAGE_PROT_READ },
		{ .op = UPAGE_OP_SWAP, .dst = 0, .src = 1, .n = 1 },
		{ .op = UPAGE_OP_ALIAS, .dst = 2, .src = 3, .n = 1 },
		{ .op = UPAGE_OP_MOVE, .dst = 2, .src = 3, .n = 9 },
	};
	struct upage_stats a, b;

	upage_require_cmd(self->fd, UPAGE_CMD_EDIT);
	upage_resize_ok(self->fd, 4);
	upage_stats_ok(self->fd, &a);
	upage_edit_ok(self->fd, ops, 3);
	upage_stats_ok(self->fd, &b);
	EXPECT_EQ(a.out_edits + 3, b.out_edits);
	EXPECT_EQ(a.out_batches + 1, b.out_batches);
	a = b;
	upage_edit_err(EINVAL, 3, self->fd, ops, 4);
	upage_stats_ok(self->fd, &b);
	EXPECT_EQ(a.out_edits, b.out_edits);
	EXPECT_EQ(a.out_batches, b.out_batches);
	EXPECT_EQ(a.out_frames, b.out_frames);
}

/* Counters are per space: another space's activity does not move them. */
TEST_F(stats, counters_are_per_space)
{
	struct upage_stats a, b;
	unsigned char *p;
	int fd2;

	upage_resize_ok(self->fd, 1);
	upage_stats_ok(self->fd, &a);
	fd2 = upage_open(O_CLOEXEC);
	ASSERT_LE(0, fd2);
	upage_resize_ok(fd2, 2);
	p = upage_map(fd2, 0, 2, MAP_SHARED);
	ASSERT_NE(NULL, p);
	memset(p, 1, 2 * PAGE);
	upage_stats_ok(self->fd, &b);
	EXPECT_EQ(0, memcmp(&a, &b, sizeof(a)));
	munmap(p, 2 * PAGE);
	close(fd2);
}

TEST_HARNESS_MAIN
