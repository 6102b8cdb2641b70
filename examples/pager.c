// SPDX-License-Identifier: MIT
/*
 * pager: how do I page a region out and back in on my own schedule, to a
 * file of my choice, when it is bigger than the memory I may use?
 *
 * The program works through a 64 MiB region in 4 MiB windows while its
 * memory cgroup allows it 16 MiB (when it runs as root on cgroup v2; else
 * it says so and runs without the limit). Each window is written, then
 * evicted to the store file; afterwards every window is brought back,
 * half of them with a prefetch and half by simply touching them, and
 * every byte is checked.
 *
 * The store is a file the program chooses (argv[1], default
 * /tmp/upage-pager.store). Its blocks are allocated up front, before the
 * program enters its cgroup: on a disk that costs no memory, and on the
 * tmpfs of the test VM it keeps the store's pages out of the program's
 * limit, as a disk would.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "upage.h"

#define PAGE 4096UL
#define PAGES 16384UL		/* 64 MiB */
#define WINDOW 1024UL		/* 4 MiB */
#define LIMIT (16UL << 20)
#define CG "/sys/fs/cgroup"
#define CG_PAGER CG "/upage-pager"

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -errno;
}

static long read_long(const char *path)
{
	char buf[32] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? strtol(buf, NULL, 10) : -1;
}

/* Enter a memory cgroup limited to LIMIT; 0 if done, -errno if not. */
static int enter_limit(void)
{
	char pid[24];
	int ret;

	if (access(CG "/cgroup.controllers", R_OK))
		return -ENOENT;
	write_file(CG "/cgroup.subtree_control", "+memory");
	if (mkdir(CG_PAGER, 0755) && errno != EEXIST)
		return -errno;
	snprintf(pid, sizeof(pid), "%lu", LIMIT);
	ret = write_file(CG_PAGER "/memory.max", pid);
	if (!ret)
		write_file(CG_PAGER "/memory.swap.max", "0");
	snprintf(pid, sizeof(pid), "%d", getpid());
	if (!ret)
		ret = write_file(CG_PAGER "/cgroup.procs", pid);
	return ret;
}

static void leave_limit(void)
{
	char pid[24];

	snprintf(pid, sizeof(pid), "%d", getpid());
	write_file(CG "/cgroup.procs", pid);
	rmdir(CG_PAGER);
}

/* The byte at offset @i of page @page: a cheap function of both. */
static unsigned char byte_of(uint64_t page, uint64_t i)
{
	uint64_t x = (page + 1) * 0x9e3779b97f4a7c15ULL ^ (i >> 3);

	x ^= x >> 29;
	return (unsigned char)(x >> (8 * (i & 7)));
}

static void fill(unsigned char *p, uint64_t page)
{
	for (uint64_t i = 0; i < PAGE; i++)
		p[i] = byte_of(page, i);
}

static int check(const unsigned char *p, uint64_t page)
{
	for (uint64_t i = 0; i < PAGE; i++)
		if (p[i] != byte_of(page, i))
			return -1;
	return 0;
}

static int fail(const char *what, int err)
{
	fprintf(stderr, "pager: %s: %s\n", what, strerror(-err));
	return 1;
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "/tmp/upage-pager.store";
	uint64_t w, pg, done, bad = 0;
	struct upage_stats st;
	int fd, store, ret, limited;
	unsigned char *p;
	long peak;

	fd = upage_open(O_CLOEXEC);
	if (fd < 0)
		return fail("open /dev/upage", fd);
	ret = upage_resize(fd, PAGES, NULL);
	if (ret)
		return fail("resize", ret);
	p = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return fail("mmap", -errno);

	store = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (store < 0)
		return fail(path, -errno);
	ret = posix_fallocate(store, 0, PAGES * PAGE);
	if (ret)
		return fail("allocate the store", -ret);
	ret = upage_set_store(fd, store, 0, 0);
	if (ret)
		return fail("UPAGE_STORE", ret);
	close(store);

	limited = enter_limit() == 0;
	if (limited)
		printf("pager: %lu MiB region, memory cgroup limit %lu MiB, store %s\n",
		       PAGES * PAGE >> 20, LIMIT >> 20, path);
	else
		printf("pager: %lu MiB region, no memory cgroup here (not root or no cgroup v2), store %s\n",
		       PAGES * PAGE >> 20, path);

	/* Write each window, then page it out. */
	for (w = 0; w < PAGES; w += WINDOW) {
		for (pg = w; pg < w + WINDOW; pg++)
			fill(p + pg * PAGE, pg);
		ret = upage_evict(fd, w, WINDOW, &done);
		if (ret || done != WINDOW)
			return fail("evict", ret ? ret : -EIO);
	}
	printf("pager: wrote and evicted %lu windows of %lu MiB\n",
	       PAGES / WINDOW, WINDOW * PAGE >> 20);

	/* Bring each back (prefetch or fault), check it, page it out again. */
	for (w = 0; w < PAGES; w += WINDOW) {
		if ((w / WINDOW) % 2) {
			ret = upage_prefetch(fd, w, WINDOW, &done);
			if (ret || done != WINDOW)
				return fail("prefetch", ret ? ret : -EIO);
		}
		for (pg = w; pg < w + WINDOW; pg++)
			bad += check(p + pg * PAGE, pg) != 0;
		ret = upage_evict(fd, w, WINDOW, &done);
		if (ret)
			return fail("evict", ret);
	}

	upage_stats(fd, &st);
	printf("pager: %llu evictions, %llu page-ins, %llu MiB written, %llu MiB read\n",
	       (unsigned long long)st.out_evictions,
	       (unsigned long long)st.out_page_ins,
	       (unsigned long long)st.out_bytes_written >> 20,
	       (unsigned long long)st.out_bytes_read >> 20);
	if (limited) {
		peak = read_long(CG_PAGER "/memory.peak");
		if (peak >= 0)
			printf("pager: peak memory of the cgroup %ld KiB (limit %lu KiB)\n",
			       peak >> 10, LIMIT >> 10);
	}
	munmap(p, PAGES * PAGE);
	close(fd);
	if (limited)
		leave_limit();
	unlink(path);
	if (bad) {
		printf("pager: %llu pages came back wrong\n",
		       (unsigned long long)bad);
		return 1;
	}
	printf("pager: every byte of %lu MiB came back: ok\n",
	       PAGES * PAGE >> 20);
	return 0;
}
