// SPDX-License-Identifier: GPL-2.0
/*
 * Reclaim under real memory pressure: a child eats the guest's memory
 * until the kernel's reclaim runs our shrinker, which pages out a space
 * that opted in (UPAGE_STORE_RECLAIM) and drops lazily freed frames. The
 * space must come back without losing a byte. The frames go to the
 * space's shmem store, and from there to swap on zram when the guest has
 * it (the data is made compressible for that).
 */
#include <stdlib.h>
#include <sys/swap.h>

#include <sys/stat.h>

#include "upage_utils.h"

#define SLOTS 8192		/* 32 MiB */
#define CHUNK (4UL << 20)
#define FLOOR_KB (24UL << 10)	/* the hog stops above this MemFree + SwapFree */
/* Below this, the hog pauses after each chunk (see hog()). */
#define SLOW_KB (4 * FLOOR_KB)

/* Free memory and free swap: what the hog may still take. */
static unsigned long mem_left_kb(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	unsigned long kb, left = 0;
	char line[128];

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemFree: %lu kB", &kb) == 1 ||
		    sscanf(line, "SwapFree: %lu kB", &kb) == 1)
			left += kb;
	fclose(f);
	return left;
}

/* Page i: 32 bytes from @seed and i, then zeros (zram compresses it). */
static void fill_page(volatile unsigned char *p, size_t i, unsigned int seed)
{
	for (size_t k = 0; k < 32; k++)
		p[k] = (unsigned char)(seed * 31 + i * 7 + k * 13);
	for (size_t k = 32; k < PAGE; k++)
		p[k] = 0;
}

static int page_ok(const volatile unsigned char *p, size_t i, unsigned int seed)
{
	for (size_t k = 0; k < 32; k++)
		if (p[k] != (unsigned char)(seed * 31 + i * 7 + k * 13))
			return 0;
	for (size_t k = 32; k < PAGE; k++)
		if (p[k])
			return 0;
	return 1;
}

/*
 * Eat memory in chunks until the space has been paged out enough, or
 * memory is nearly gone; the chunks stay until the child exits.
 */
static void hog(int fd, uint64_t enough)
{
	struct upage_stats st;
	size_t total = 0;
	unsigned long left;

	/* If the OOM killer must choose, it chooses the hog. */
	int adj = open("/proc/self/oom_score_adj", O_WRONLY);

	if (adj >= 0) {
		if (write(adj, "1000", 4) != 4)
			_exit(3);
		close(adj);
	}
	for (;;) {
		char *c = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (c == MAP_FAILED)
			_exit(2);
		for (size_t k = 0; k < CHUNK; k += PAGE)
			c[k] = 1;
		total += CHUNK;
		memset(&st, 0, sizeof(st));
		if (upage_stats(fd, &st))
			_exit(2);
		if (st.out_shrinker_evictions + st.out_reclaims >= enough)
			_exit(0);
		left = mem_left_kb();
		if (left < FLOOR_KB)
			_exit(1);
		/*
		 * Near the floor, give reclaim time: the shrinker evicts a
		 * frame on its second pass over it, and on the debug kernel a
		 * hog at full speed reached the OOM killer before that once.
		 */
		if (left < SLOW_KB)
			usleep(50 * 1000);
	}
}

FIXTURE(pressure) {
	int fd;
};

FIXTURE_SETUP(pressure)
{
	upage_open_or_skip(self->fd);
}

FIXTURE_TEARDOWN(pressure)
{
	if (self->fd >= 0)
		close(self->fd);
}

/*
 * A quarter of the space is lazily freed, the rest opted in for page-out:
 * under pressure the lazy quarter reads zeros once reclaimed, the rest
 * keeps every byte. Filling the guest's memory takes minutes on the
 * debug kernel under TCG.
 */
TEST_F_TIMEOUT(pressure, memory_pressure_pages_out_opted_in_space, 280)
{
	struct upage_stats st;
	volatile unsigned char *p;
	uint64_t done = 0;
	int fd = self->fd, status, swap;
	size_t i, zero = 0, bad = 0;
	pid_t pid;

	upage_require_cmd(fd, UPAGE_CMD_STORE);
	swap = upage_zram_swap();
	TH_LOG("swap on zram: %s", swap ? "yes" : "no");
	upage_resize_ok(fd, SLOTS);
	p = upage_map(fd, 0, SLOTS, MAP_SHARED);
	ASSERT_NE(NULL, p);
	for (i = 0; i < SLOTS; i++)
		fill_page(p + i * PAGE, i, 5);
	ASSERT_EQ(0, upage_set_store(fd, -1, 0, UPAGE_STORE_RECLAIM));
	ASSERT_EQ(0, upage_lazy_free(fd, 0, SLOTS / 4, &done));
	ASSERT_EQ(SLOTS / 4, done);

	/*
	 * The shrinker evicts a frame on its second pass over it. On the
	 * debug kernel the OOM killer ended the hog before the kernel had
	 * called it twice in about one run in twenty (evictions 0, the lazy
	 * quarter reclaimed by the first pass): then a second hog goes on
	 * with the pressure, as a second allocation would on a real system.
	 */
	for (int round = 0; round < 2; round++) {
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid)
			hog(fd, SLOTS / 2);
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		memset(&st, 0, sizeof(st));
		ASSERT_EQ(0, upage_stats(fd, &st));
		TH_LOG("hog %d: %s %d; shrinker evictions %llu, reclaims %llu",
		       round, WIFEXITED(status) ? "exit" : "signal",
		       WIFEXITED(status) ? WEXITSTATUS(status) :
					   WTERMSIG(status),
		       (unsigned long long)st.out_shrinker_evictions,
		       (unsigned long long)st.out_reclaims);
		/* Stopped by enough reclaim, by the floor, or by the OOM killer. */
		EXPECT_TRUE((WIFEXITED(status) && WEXITSTATUS(status) <= 1) ||
			    (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL));
		if (st.out_shrinker_evictions || !WIFSIGNALED(status))
			break;
	}
	EXPECT_LT(0, st.out_shrinker_evictions);
	EXPECT_LT(0, st.out_reclaims);

	for (i = 0; i < SLOTS; i++) {
		struct upage_slot_info si = upage_slot(fd, i);

		if (i < SLOTS / 4 && (si.state & UPAGE_SLOT_RECLAIMED)) {
			zero++;
			for (size_t k = 0; k < PAGE; k++)
				bad += p[i * PAGE + k] != 0;
		} else {
			bad += !page_ok(p + i * PAGE, i, 5);
		}
	}
	TH_LOG("%zu lazily freed pages reclaimed", zero);
	EXPECT_EQ(st.out_reclaims, zero);
	EXPECT_EQ(0, bad);
	munmap((void *)p, SLOTS * PAGE);
}

#define CG_ROOT "/sys/fs/cgroup"
#define CG_SPACE CG_ROOT "/upage-pressure"
#define CG_SLOTS 16384		/* 64 MiB through a cgroup of 16 MiB */
#define CG_SLOTS_DEBUG 6144	/* 24 MiB on the emulated KASAN kernel */

static int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	ssize_t len = strlen(val), ret;

	if (fd < 0)
		return -errno;
	ret = write(fd, val, len);
	close(fd);
	return ret == len ? 0 : -EIO;
}

/*
 * Memory behaves like shmem, under a cgroup's limit too: a process in a
 * cgroup with memory.max of 16 MiB writes and reads back a 64 MiB space
 * it opened, with no special call. The cgroup's reclaim calls the
 * module's shrinker, which pages cold frames out to the space's shmem
 * store, charged to the same cgroup, from where the kernel swaps them
 * (zram here). Without the memcg-aware shrinker the child is OOM-killed
 * or its faults get SIGBUS. A reclaim that finds nothing to take, between
 * the open and the fill (drop_caches here), must not switch the shrinker
 * off for the cgroup: it did once (SHRINK_EMPTY clears the cgroup's bit
 * until its list empties and fills again).
 */
TEST_F_TIMEOUT(pressure, cgroup_memory_max_pages_a_space_out, 280)
{
	/* The debug kernel (kmemleak) is many times slower under emulation. */
	size_t slots = access("/sys/kernel/debug/kmemleak", F_OK) ? CG_SLOTS :
								   CG_SLOTS_DEBUG;
	pid_t pid;
	int status;

	if (!upage_zram_swap())
		SKIP(return, "no swap: a cgroup limit needs somewhere to go");
	if (write_file(CG_ROOT "/cgroup.subtree_control", "+memory"))
		SKIP(return, "no memory controller");
	rmdir(CG_SPACE);
	ASSERT_EQ(0, mkdir(CG_SPACE, 0755));
	ASSERT_EQ(0, write_file(CG_SPACE "/memory.max", "16M"));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		char me[32];
		unsigned char *p;
		int fd;

		snprintf(me, sizeof(me), "%d", getpid());
		if (write_file(CG_SPACE "/cgroup.procs", me))
			_exit(10);
		/* Opened inside the cgroup: the space is the cgroup's. */
		fd = upage_open(O_CLOEXEC);
		if (fd < 0 || upage_resize(fd, slots, NULL))
			_exit(11);
		/* Every shrinker, ours finding nothing yet in this cgroup. */
		if (write_file("/proc/sys/vm/drop_caches", "2"))
			_exit(13);
		p = mmap(NULL, slots * PAGE, PROT_READ | PROT_WRITE,
			 MAP_SHARED, fd, 0);
		if (p == MAP_FAILED)
			_exit(12);
		for (size_t i = 0; i < slots; i++)
			fill_page(p + i * PAGE, i, 5);
		for (size_t i = 0; i < slots; i++)
			if (!page_ok(p + i * PAGE, i, 5))
				_exit(1);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status)) {
		TH_LOG("the child died of signal %d", WTERMSIG(status));
	}
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(0, rmdir(CG_SPACE));
}

TEST_HARNESS_MAIN
