// SPDX-License-Identifier: GPL-2.0
/*
 * Sharing a space between processes: the fd passed with SCM_RIGHTS or
 * taken with pidfd_getfd, both sides mapping it, seeing each other's
 * writes and edits; a space outliving its opener; and the module refusing
 * to unload while a space is open or mapped.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "upage_utils.h"

#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif
#ifndef __NR_pidfd_getfd
#define __NR_pidfd_getfd 438
#endif

#define STAMP_MAGIC 0x5348415245000000ULL	/* "SHARE" */

/* Write stamp @v into the first word of slot page @p. */
static void stamp(char *p, uint64_t v)
{
	*(volatile uint64_t *)p = STAMP_MAGIC | v;
}

static uint64_t stamp_of(const char *p)
{
	uint64_t v = *(volatile const uint64_t *)p;

	return v ? v & ~STAMP_MAGIC : 0;
}

static int send_fd(int sock, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	char byte = 'F';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf,
		.msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);

	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	return sendmsg(sock, &msg, 0) == 1 ? 0 : -1;
}

static int recv_fd(int sock)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf,
		.msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cmsg;
	int fd;

	if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != 1)
		return -1;
	cmsg = CMSG_FIRSTHDR(&msg);
	if (!cmsg || cmsg->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
	return fd;
}

/* Lockstep messages: a 32-bit word each way. */
static bool send_u32(int sock, uint32_t v)
{
	return write(sock, &v, sizeof(v)) == sizeof(v);
}

static bool recv_u32(int sock, uint32_t *v)
{
	return read(sock, v, sizeof(*v)) == sizeof(*v);
}

FIXTURE(peer) {
	int sock[2];
	pid_t child;
	int fd;
};

FIXTURE_SETUP(peer)
{
	int fd;

	/* The module must be there; the space the tests use is opened later. */
	upage_open_or_skip(fd);
	close(fd);
	self->fd = -1;
	self->child = -1;
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, self->sock));
}

FIXTURE_TEARDOWN(peer)
{
	int status;

	if (self->child > 0) {
		kill(self->child, SIGKILL);
		waitpid(self->child, &status, 0);
	}
	if (self->fd >= 0)
		close(self->fd);
	close(self->sock[0]);
	close(self->sock[1]);
}

/* Wait for the child and return its exit code (or 128 + signal). */
static int reap(pid_t *child)
{
	int status;

	if (waitpid(*child, &status, 0) != *child)
		return -1;
	*child = -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/*
 * Child side of the two peer tests: map the space @fd, check the parent's
 * stamp 1 in slot 0, write stamp 2 into slot 1, then after each parent
 * step check that the parent's swap of slots 0/1 is seen, move slot 0 to
 * slot 2 itself, and report.
 */
static int peer_child(int sock, int fd)
{
	char *p = upage_map(fd, 0, 4, MAP_SHARED);
	uint32_t step;

	if (!p)
		return 10;
	if (stamp_of(p) != 1)
		return 11;
	stamp(p + PAGE, 2);
	if (!send_u32(sock, 1) || !recv_u32(sock, &step) || step != 2)
		return 12;
	/* the parent swapped 0 and 1 */
	if (stamp_of(p) != 2 || stamp_of(p + PAGE) != 1)
		return 13;
	if (upage_move(fd, 2, 0, 1))
		return 14;
	if (stamp_of(p + 2 * PAGE) != 2 || stamp_of(p) != 0)
		return 15;
	if (!send_u32(sock, 3) || !recv_u32(sock, &step) || step != 4)
		return 16;
	/* the parent wrote stamp 4 into slot 3 */
	if (stamp_of(p + 3 * PAGE) != 4)
		return 17;
	munmap(p, 4 * PAGE);
	return 0;
}

/* Parent side of the two peer tests, with the space @fd mapped at @p. */
#define PEER_PARENT_STEPS(p, fd, sock)                                      \
	do {                                                                \
		uint32_t _step;                                             \
		ASSERT_TRUE(recv_u32(sock, &_step));                        \
		ASSERT_EQ(1, _step);                                        \
		EXPECT_EQ(2, stamp_of((p) + PAGE));                         \
		ASSERT_EQ(0, upage_swap(fd, 0, 1, 1));                      \
		ASSERT_TRUE(send_u32(sock, 2));                             \
		ASSERT_TRUE(recv_u32(sock, &_step));                        \
		ASSERT_EQ(3, _step);                                        \
		EXPECT_EQ(2, stamp_of((p) + 2 * PAGE));                     \
		EXPECT_EQ(0, stamp_of(p));                                  \
		stamp((p) + 3 * PAGE, 4);                                   \
		ASSERT_TRUE(send_u32(sock, 4));                             \
	} while (0)

/*
 * A space opened after fork and passed with SCM_RIGHTS: both processes map
 * it, see each other's writes, and each sees the other's edits.
 */
TEST_F(peer, scm_rights_both_sides_see_writes_and_edits)
{
	char *p;

	self->child = fork();
	ASSERT_LE(0, self->child);
	if (self->child == 0) {
		int fd;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(self->sock[0]);
		fd = recv_fd(self->sock[1]);
		_exit(fd < 0 ? 9 : peer_child(self->sock[1], fd));
	}
	upage_open_or_skip(self->fd);
	upage_resize_ok(self->fd, 4);
	p = upage_map(self->fd, 0, 4, MAP_SHARED);
	ASSERT_NE(NULL, p);
	stamp(p, 1);
	ASSERT_EQ(0, send_fd(self->sock[0], self->fd));
	PEER_PARENT_STEPS(p, self->fd, self->sock[0]);
	EXPECT_EQ(0, reap(&self->child));
	munmap(p, 4 * PAGE);
}

/*
 * A space opened by the child after fork and taken with pidfd_getfd: both
 * see each other's writes and edits.
 */
TEST_F(peer, pidfd_getfd_both_sides_see_writes_and_edits)
{
	uint32_t child_fd;
	int pidfd;
	char *p;

	self->child = fork();
	ASSERT_LE(0, self->child);
	if (self->child == 0) {
		int fd;
		char *c;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(self->sock[0]);
		fd = upage_open(O_CLOEXEC);

		if (fd < 0 || upage_resize(fd, 4, NULL))
			_exit(8);
		c = upage_map(fd, 0, 1, MAP_SHARED);
		if (!c)
			_exit(9);
		stamp(c, 1);
		if (!send_u32(self->sock[1], fd))
			_exit(9);
		_exit(peer_child(self->sock[1], fd));
	}
	ASSERT_TRUE(recv_u32(self->sock[0], &child_fd));
	pidfd = syscall(__NR_pidfd_open, self->child, 0);
	if (pidfd < 0 && errno == ENOSYS)
		SKIP(return, "pidfd_open: ENOSYS");
	ASSERT_LE(0, pidfd);
	self->fd = syscall(__NR_pidfd_getfd, pidfd, child_fd, 0);
	if (self->fd < 0 && errno == ENOSYS)
		SKIP(close(pidfd); return, "pidfd_getfd: ENOSYS");
	ASSERT_LE(0, self->fd);
	close(pidfd);
	p = upage_map(self->fd, 0, 4, MAP_SHARED);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(1, stamp_of(p));
	PEER_PARENT_STEPS(p, self->fd, self->sock[0]);
	EXPECT_EQ(0, reap(&self->child));
	munmap(p, 4 * PAGE);
}

#define LS_SLOTS 8
#define LS_ROUNDS 300

/*
 * Two processes each map the space; one applies swaps (single ones and
 * batches), the other checks after each that it sees the swapped contents.
 */
TEST_F(peer, other_process_sees_every_swap)
{
	uint64_t model[LS_SLOTS];
	unsigned int seed = 1;
	uint32_t round, reply;
	char *p;
	int i;

	upage_open_or_skip(self->fd);
	upage_resize_ok(self->fd, LS_SLOTS);
	p = upage_map(self->fd, 0, LS_SLOTS, MAP_SHARED);
	ASSERT_NE(NULL, p);
	for (i = 0; i < LS_SLOTS; i++) {
		stamp(p + i * PAGE, 1 + i);
		model[i] = 1 + i;
	}
	self->child = fork();
	ASSERT_LE(0, self->child);
	if (self->child == 0) {
		uint64_t m[LS_SLOTS];
		uint32_t a, b;
		char *q;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(self->sock[0]);
		/* its own mapping, made after fork, at an offset */
		q = upage_map(self->fd, 2, LS_SLOTS - 2, MAP_SHARED);

		if (!q)
			_exit(10);
		if (!recv_u32(self->sock[1], &a))
			_exit(11);
		while (recv_u32(self->sock[1], &a) && a != UINT32_MAX) {
			/* the whole model follows each round */
			if (read(self->sock[1], m, sizeof(m)) != sizeof(m))
				_exit(12);
			for (b = 2; b < LS_SLOTS; b++)
				if (stamp_of(q + (b - 2) * PAGE) != m[b])
					_exit(13);
			if (!send_u32(self->sock[1], a))
				_exit(14);
		}
		_exit(0);
	}
	ASSERT_TRUE(send_u32(self->sock[0], 0));
	for (round = 1; round <= LS_ROUNDS; round++) {
		struct upage_edit_op ops[3] = { 0 };
		uint32_t n = 1 + rand_r(&seed) % 3, k;
		uint64_t t;

		for (k = 0; k < n; k++) {
			uint32_t a = rand_r(&seed) % LS_SLOTS;
			uint32_t b = (a + 1 + rand_r(&seed) % (LS_SLOTS - 1)) % LS_SLOTS;

			ops[k].op = UPAGE_OP_SWAP;
			ops[k].dst = a;
			ops[k].src = b;
			ops[k].n = 1;
			t = model[a];
			model[a] = model[b];
			model[b] = t;
		}
		ASSERT_EQ(0, upage_edit(self->fd, ops, n, NULL));
		ASSERT_TRUE(send_u32(self->sock[0], round));
		ASSERT_EQ(sizeof(model), write(self->sock[0], model, sizeof(model)));
		ASSERT_TRUE(recv_u32(self->sock[0], &reply)) {
			TH_LOG("the child died at round %u", round);
		}
		ASSERT_EQ(round, reply);
	}
	ASSERT_TRUE(send_u32(self->sock[0], UINT32_MAX));
	EXPECT_EQ(0, reap(&self->child));
	for (i = 0; i < LS_SLOTS; i++)
		EXPECT_EQ(model[i], stamp_of(p + i * PAGE));
	munmap(p, LS_SLOTS * PAGE);
}

/*
 * A space lives as long as its file: the child that opened and filled it
 * sends it and exits, and the receiver still finds the contents.
 */
TEST_F(peer, space_outlives_its_opener)
{
	char *p;

	self->child = fork();
	ASSERT_LE(0, self->child);
	if (self->child == 0) {
		int fd;
		char *c;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(self->sock[0]);
		fd = upage_open(O_CLOEXEC);

		if (fd < 0 || upage_resize(fd, 2, NULL))
			_exit(8);
		c = upage_map(fd, 0, 2, MAP_SHARED);
		if (!c)
			_exit(9);
		stamp(c, 5);
		stamp(c + PAGE, 6);
		_exit(send_fd(self->sock[1], fd) ? 10 : 0);
	}
	self->fd = recv_fd(self->sock[0]);
	ASSERT_LE(0, self->fd);
	EXPECT_EQ(0, reap(&self->child));
	p = upage_map(self->fd, 0, 2, MAP_SHARED);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(5, stamp_of(p));
	EXPECT_EQ(6, stamp_of(p + PAGE));
	ASSERT_EQ(0, upage_swap(self->fd, 0, 1, 1));
	EXPECT_EQ(6, stamp_of(p));
	munmap(p, 2 * PAGE);
}

FIXTURE(unload) {
	int fd;
};

FIXTURE_SETUP(unload)
{
	upage_open_or_skip(self->fd);
}

FIXTURE_TEARDOWN(unload)
{
	if (self->fd >= 0)
		close(self->fd);
}

/* delete_module of upage: 0 or -errno. Never forced. */
static int try_unload(void)
{
	return syscall(__NR_delete_module, "upage", O_NONBLOCK) ? -errno : 0;
}

/*
 * The module refuses to unload while a space is open, and while a space
 * whose fd is closed is still mapped.
 */
TEST_F(unload, refused_while_space_open_or_mapped)
{
	char *p;
	int ret;

	upage_resize_ok(self->fd, 1);
	p = upage_map(self->fd, 0, 1, MAP_SHARED);
	ASSERT_NE(NULL, p);
	stamp(p, 1);

	ret = try_unload();
	if (ret == -EPERM)
		SKIP(return, "delete_module: EPERM (needs CAP_SYS_MODULE)");
	ASSERT_NE(0, ret) {
		TH_LOG("the module unloaded with a space open");
	}
	EXPECT_TRUE(ret == -EBUSY || ret == -EWOULDBLOCK) {
		TH_LOG("delete_module: %s", strerror(-ret));
	}

	ASSERT_EQ(0, close(self->fd));
	self->fd = -1;
	ret = try_unload();
	ASSERT_NE(0, ret) {
		TH_LOG("the module unloaded with a space mapped");
	}
	EXPECT_TRUE(ret == -EBUSY || ret == -EWOULDBLOCK) {
		TH_LOG("delete_module: %s", strerror(-ret));
	}
	EXPECT_EQ(1, stamp_of(p));
	munmap(p, PAGE);
}

TEST_HARNESS_MAIN
