// SPDX-License-Identifier: MIT
/*
 * v2p: which frame is behind an address, and, as root, which physical
 * page?
 *
 * Ask the module about an address: its slot, the frame id, and the page
 * frame number (reported to CAP_SYS_ADMIN only). As root, cross-check the
 * pfn with /proc/self/pagemap; then show that an unprivileged process
 * querying the same address is told pfn 0.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "upage.h"

#define PAGE 4096

/* The pfn of @addr from /proc/self/pagemap, 0 if not present or hidden. */
static uint64_t pagemap_pfn(const void *addr)
{
	uint64_t entry = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);

	if (fd < 0)
		return 0;
	if (pread(fd, &entry, sizeof(entry),
		  (uintptr_t)addr / PAGE * sizeof(entry)) != sizeof(entry))
		entry = 0;
	close(fd);
	if (!(entry & (1ULL << 63)))
		return 0;
	return entry & ((1ULL << 55) - 1);
}

/* Query @addr and print what the module says; returns -errno or 0. */
static int show(const char *who, int fd, const char *addr,
		struct upage_slot_info *info)
{
	uint64_t slot;
	int ret = upage_query_addr(fd, addr, &slot, info);

	if (ret) {
		fprintf(stderr, "v2p: %s: query: %s\n", who, strerror(-ret));
		return ret;
	}
	printf("v2p: %s: address %p is slot %llu, frame_id %llu, pfn 0x%llx\n",
	       who, (void *)addr, (unsigned long long)slot,
	       (unsigned long long)info->frame_id,
	       (unsigned long long)info->pfn);
	return slot == 3 ? 0 : -1;
}

int main(void)
{
	struct upage_slot_info info;
	uint64_t pm;
	int fd, ret, status;
	char *p, *addr;
	pid_t pid;

	setvbuf(stdout, NULL, _IOLBF, 0);
	fd = upage_open(O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "v2p: open /dev/upage: %s\n", strerror(-fd));
		return 1;
	}
	ret = upage_resize(fd, 4, NULL);
	if (ret) {
		fprintf(stderr, "v2p: resize: %s\n", strerror(-ret));
		return 1;
	}
	/* Map slots 2 and 3 only, so that the slot is not just addr - base. */
	p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 2 * PAGE);
	if (p == MAP_FAILED) {
		perror("v2p: mmap");
		return 1;
	}
	addr = p + PAGE + 123;
	*addr = 1;	/* fault the slot in */
	printf("v2p: mapped slots 2..3 at %p, touched %p\n", (void *)p, (void *)addr);

	if (show(geteuid() == 0 ? "root" : "user", fd, addr, &info))
		return 1;
	if (info.frame_id == 0)
		return 1;

	if (geteuid() != 0) {
		if (info.pfn != 0) {
			printf("v2p: an unprivileged caller was shown a pfn\n");
			return 1;
		}
		printf("v2p: ok: not root, so pfn 0\n");
		return 0;
	}

	pm = pagemap_pfn(addr);
	printf("v2p: root: /proc/self/pagemap says pfn 0x%llx\n", (unsigned long long)pm);
	if (info.pfn == 0 || info.pfn != pm) {
		printf("v2p: the module's pfn does not match pagemap\n");
		return 1;
	}

	/* The same question from a process without privileges. */
	pid = fork();
	if (pid < 0) {
		perror("v2p: fork");
		return 1;
	}
	if (pid == 0) {
		if (setgid(65534) || setuid(65534)) {
			perror("v2p: setuid");
			_exit(1);
		}
		if (show("uid 65534", fd, addr, &info))
			_exit(1);
		printf("v2p: uid 65534: pagemap says pfn 0x%llx\n",
		       (unsigned long long)pagemap_pfn(addr));
		_exit(info.pfn == 0 && info.frame_id != 0 ? 0 : 2);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status)) {
		printf("v2p: the unprivileged query did not report pfn 0\n");
		return 1;
	}
	printf("v2p: ok: frame id for everyone, the pfn for root only, and it matches pagemap\n");
	return 0;
}
