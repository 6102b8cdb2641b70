// SPDX-License-Identifier: MIT
/*
 * share: can two processes share one page by passing the space's file
 * descriptor over a Unix socket (SCM_RIGHTS)?
 *
 * The parent opens the space after fork(), so the child cannot inherit it:
 * it gets the descriptor over a socketpair, maps the space, reads what the
 * parent wrote and writes a reply, which the parent then reads.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "upage.h"

#define PAGE 4096

static int send_fd(int sock, int fd)
{
	char byte = 'F';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} u = { 0 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
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
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *c;
	int fd;

	if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != 1)
		return -1;
	c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

static int child(int sock)
{
	char *p, done = 'D';
	int fd;

	fd = recv_fd(sock);
	if (fd < 0) {
		perror("share: child: recvmsg");
		return 1;
	}
	printf("share: child: received the space as fd %d over the socket\n", fd);
	p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		perror("share: child: mmap");
		return 1;
	}
	printf("share: child: reads \"%s\"\n", p);
	if (strcmp(p, "hello from the parent"))
		return 1;
	strcpy(p + 2048, "reply from the child");
	printf("share: child: wrote \"%s\"\n", p + 2048);
	if (write(sock, &done, 1) != 1)
		return 1;
	return 0;
}

int main(void)
{
	int sv[2], fd, ret, status;
	char *p, byte;
	pid_t pid;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		perror("share: socketpair");
		return 1;
	}
	pid = fork();
	if (pid < 0) {
		perror("share: fork");
		return 1;
	}
	if (pid == 0) {
		close(sv[0]);
		_exit(child(sv[1]));
	}
	close(sv[1]);

	/* Opened after fork(): the child has no copy of this descriptor. */
	fd = upage_open(O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "share: open /dev/upage: %s\n", strerror(-fd));
		return 1;
	}
	ret = upage_resize(fd, 1, NULL);
	if (ret) {
		fprintf(stderr, "share: resize: %s\n", strerror(-ret));
		return 1;
	}
	p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		perror("share: mmap");
		return 1;
	}
	strcpy(p, "hello from the parent");
	printf("share: parent: opened a space after fork(), wrote \"%s\"\n", p);
	if (send_fd(sv[0], fd)) {
		perror("share: sendmsg");
		return 1;
	}
	printf("share: parent: sent fd %d to child %d\n", fd, (int)pid);

	if (read(sv[0], &byte, 1) != 1)
		printf("share: parent: the child did not answer\n");
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status)) {
		printf("share: parent: the child failed\n");
		return 1;
	}
	printf("share: parent: reads \"%s\" in the same page\n", p + 2048);
	if (strcmp(p + 2048, "reply from the child"))
		return 1;
	printf("share: ok: two processes, one page, one descriptor passed over a socket\n");
	return 0;
}
