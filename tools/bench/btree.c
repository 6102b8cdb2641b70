// SPDX-License-Identifier: GPL-2.0
/*
 * upage-bench-btree: a vmcache-style buffer manager (Leis et al., "Virtual-
 * Memory Assisted Buffer Management", SIGMOD'23) with B+trees on top, run
 * over a block device larger than its memory budget (issue 11, the "buffer
 * manager" row).
 *
 * The buffer manager. One virtual region covers the whole database: page
 * id = offset / 4096, in the region and on the device alike. Each page has
 * a state word (8 bits of state: unlocked, locked, marked, evicted; 56 bits
 * of version) that is its lock: readers go optimistically (read the word,
 * read the page, check the word is unchanged), writers take it exclusively.
 * A miss locks the page and preads it from the device into its own address
 * (O_DIRECT). When the resident pages reach the budget, one thread at a
 * time evicts a batch of 64: a clock over the state words marks unlocked
 * pages and locks marked ones (an access in between unmarks them), dirty
 * victims are written back with pwrite, then the batch is dropped. The two
 * variants of the program differ only there and in the region:
 *
 *   upage     the region is a MAP_SHARED mapping of a /dev/upage space;
 *             a batch is dropped by ONE UPAGE_EDIT of 64 UPAGE_OP_DISCARD
 *             ops (n=1 each)
 *   madvise   the region is private anonymous memory (no THP); a batch is
 *             dropped by one madvise(MADV_DONTNEED) per page (vmcache)
 *
 * The B+tree: 4 KiB nodes, 64-bit keys, a fixed value size per tree;
 * lookups descend optimistically (restarting when a version changed);
 * inserts upgrade the leaf's lock, and when the leaf is full restart with
 * exclusive locks from the root, splitting every full node on the way down.
 * A tree's root page never moves (a root split moves its contents into two
 * new pages). No deletes.
 *
 * Workloads, each over about 4.5x the budget of data:
 *
 *   btree-lookup  one tree of 56-byte rows; uniformly random lookups of
 *                 keys that exist, and 1 in 16 of a key that must not;
 *                 every row found is checked against its key
 *   btree-tpcc    a simplified TPC-C: tables district, customer, stock,
 *                 orders, order_line as trees (2 warehouses, 10 districts;
 *                 customers, items and initial orders scaled to the size;
 *                 uniform choices, no NURand); transactions: new-order 45%
 *                 (take the district's next order id, insert 5-15 order
 *                 lines, update their stock rows, insert the order, set the
 *                 customer's last order), payment 43% (district and
 *                 customer year-to-date, balance, count), order-status 12%
 *                 (the customer's last order and all its lines, each
 *                 checked). Delivery and stock-level are left out. tx/s
 *                 counts all three.
 *
 * Every run starts with an empty pool and its own region: threads (1, 2)
 * work until the pool has evicted a quarter of the budget, then are timed
 * for at least -T seconds and 4 evicted batches; then dirty pages are
 * written back, so the device holds the database for the next run. Under
 * TCG (make bench) the guest's two vCPUs share one host thread: threads=2
 * measures contention, not a parallel speed-up. Runs alternate upage and madvise. Faults
 * per evicted page: the minor faults of the process (getrusage, which
 * counts the faults of O_DIRECT's get_user_pages too) over the timed
 * interval divided by the pages evicted in it, for both; for upage also the
 * space's own count (UPAGE_STATS out_faults, .fault calls). Each run's
 * "# " line also gives the time per page of the drop calls, of the preads
 * (the fault that fills the page included) and of the pwrites.
 *
 * Checks: every lookup finds its row, or none where none must be; every
 * order-status finds the order and its lines; at the end one scan through
 * the buffer manager checks every tree (keys in order, inside their
 * parents' separators, each row's check word) and the TPC-C invariants
 * (order ids dense, lines per order, stock and year-to-date sums). A wrong
 * result exits 1; time never fails a run.
 *
 * The device: a zram device it adds (/sys/class/zram-control/hot_add) and
 * removes, opened O_DIRECT; -d PATH uses PATH instead; without zram a file
 * in /tmp, buffered (said on a "# " line).
 *
 * usage: upage-bench-btree [-b BUDGET_PAGES] [-T SECONDS] [-r RUNS]
 *                          [-d DEVICE] [-t]
 * (default: budget 4096 pages (16 MiB), 2 s, 5 runs; -t is the tiny run of
 * make check: budget 128, 0.2 s, 1 run)
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "upage.h"

#define PAGE 4096UL
#define BATCH 64
#define MAX_RUNS 15
#define MAX_THREADS 2

/* States, the top 8 bits of a page's state word. */
#define ST_UNLOCKED 0ULL
#define ST_LOCKED 253ULL
#define ST_MARKED 254ULL
#define ST_EVICTED 255ULL
#define VER_MASK ((1ULL << 56) - 1)

static inline uint64_t st_of(uint64_t w) { return w >> 56; }
static inline uint64_t ver_of(uint64_t w) { return w & VER_MASK; }
static inline uint64_t word(uint64_t st, uint64_t ver)
{
	return st << 56 | (ver & VER_MASK);
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void fail(const char *fmt, ...)
{
	va_list ap;

	printf("FAIL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t rnd(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ULL;
	return mix(*s);
}

/* ------------------------------------------------------------------ */
/* The device: the database's home, page id = offset / 4096. */

struct device {
	int fd;
	int zram;		/* zram id we added, or -1 */
	uint64_t pages;
	char path[64];
};

static struct device dev = { .fd = -1, .zram = -1 };

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, s, strlen(s));
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -1;
}

static int zram_add(uint64_t bytes)
{
	char buf[32], path[96];
	int fd = open("/sys/class/zram-control/hot_add", O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	dev.zram = atoi(buf);
	snprintf(path, sizeof(path), "/sys/block/zram%d/disksize", dev.zram);
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)bytes);
	if (write_str(path, buf))
		return -1;
	snprintf(dev.path, sizeof(dev.path), "/dev/zram%d", dev.zram);
	for (int i = 0; i < 50 && dev.fd < 0; i++) {
		dev.fd = open(dev.path, O_RDWR | O_DIRECT | O_CLOEXEC);
		if (dev.fd < 0)
			usleep(20000);
	}
	return dev.fd < 0 ? -1 : 0;
}

static void device_open(const char *path, uint64_t pages)
{
	dev.pages = pages;
	if (path) {
		snprintf(dev.path, sizeof(dev.path), "%s", path);
		dev.fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
		if (dev.fd < 0)
			fail("open %s: %s", path, strerror(errno));
	} else if (zram_add(pages * PAGE)) {
		if (dev.zram >= 0) {
			snprintf(dev.path, sizeof(dev.path), "%d", dev.zram);
			write_str("/sys/class/zram-control/hot_remove",
				  dev.path);
			dev.zram = -1;
		}
		snprintf(dev.path, sizeof(dev.path), "/tmp/btree.db");
		dev.fd = open(dev.path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
			      0600);
		if (dev.fd < 0 || ftruncate(dev.fd, pages * PAGE))
			fail("%s: %s", dev.path, strerror(errno));
		unlink(dev.path);
		printf("# no zram device could be added: the database is a "
		       "tmpfs file, buffered I/O\n");
	}
	struct stat sb;

	if (!fstat(dev.fd, &sb) && S_ISREG(sb.st_mode) &&
	    (uint64_t)sb.st_size < pages * PAGE &&
	    ftruncate(dev.fd, pages * PAGE))
		fail("%s: %s", dev.path, strerror(errno));
	printf("# device: %s, %llu MiB\n", dev.path,
	       (unsigned long long)(pages * PAGE >> 20));
}

static void device_close(void)
{
	char path[96], id[16];

	close(dev.fd);
	if (dev.zram < 0)
		return;
	snprintf(path, sizeof(path), "/sys/block/zram%d/reset", dev.zram);
	write_str(path, "1");
	snprintf(id, sizeof(id), "%d", dev.zram);
	write_str("/sys/class/zram-control/hot_remove", id);
}

static void dev_read(void *buf, uint64_t pid)
{
	ssize_t n = pread(dev.fd, buf, PAGE, pid * PAGE);

	if (n != (ssize_t)PAGE)
		fail("pread of page %llu: %s", (unsigned long long)pid,
		     n < 0 ? strerror(errno) : "short");
}

static void dev_write(const void *buf, uint64_t pid)
{
	ssize_t n = pwrite(dev.fd, buf, PAGE, pid * PAGE);

	if (n != (ssize_t)PAGE)
		fail("pwrite of page %llu: %s", (unsigned long long)pid,
		     n < 0 ? strerror(errno) : "short");
}

/* ------------------------------------------------------------------ */
/* The buffer manager. */

enum variant { V_UPAGE, V_MADVISE };
static const char *const variant_name[] = { "upage", "madvise" };

struct bm {
	enum variant variant;
	char *base;
	uint64_t pages;			/* region size: the device's */
	_Atomic uint64_t *state;
	_Atomic unsigned char *dirty;
	atomic_uint_fast64_t resident;
	uint64_t budget;
	pthread_mutex_t evict_lock;
	uint64_t hand;			/* clock hand, under evict_lock */
	int space;			/* upage: the space's fd */
	struct upage_edit_op ops[BATCH];
	atomic_uint_fast64_t evicted, reads, writes;
	/* time in the drop calls, in preads (their faults included), in pwrites */
	atomic_uint_fast64_t drop_ns, read_ns, write_ns;
	/*
	 * Odd while a batch is being dropped; the preads that overlapped a
	 * drop (another thread's) are also counted apart.
	 */
	atomic_uint_fast64_t drop_seq, ovl_reads, ovl_read_ns;
};

static struct bm bm;

/* Pages in use by the database (allocated so far); persists across runs. */
static atomic_uint_fast64_t db_pages;

static inline void *page_addr(uint64_t pid)
{
	return bm.base + pid * PAGE;
}

/*
 * Threads waiting for a page lock: they spin a little, then sleep on a
 * futex over the upper half of the state word (state and high version
 * bits), which every unlock changes. Sleeping matters under TCG: a vCPU
 * that spins keeps the lock holder's vCPU off the host CPU for a whole
 * time slice.
 */
static atomic_int waiters;

static inline uint32_t *word_hi(uint64_t pid)
{
	return (uint32_t *)&bm.state[pid] + 1;	/* x86: little-endian */
}

static void wait_unlocked(uint64_t pid, uint64_t w)
{
	struct timespec ts = { 0, 2000000 };

	for (int i = 0; i < 64; i++) {
		if (atomic_load(&bm.state[pid]) != w)
			return;
		__builtin_ia32_pause();
	}
	atomic_fetch_add(&waiters, 1);
	syscall(SYS_futex, word_hi(pid), FUTEX_WAIT_PRIVATE,
		(uint32_t)(w >> 32), &ts, NULL, 0);
	atomic_fetch_sub(&waiters, 1);
}

/* Set the state word of a locked page, waking its waiters. */
static void set_state(uint64_t pid, uint64_t w)
{
	atomic_store(&bm.state[pid], w);
	if (atomic_load(&waiters))
		syscall(SYS_futex, word_hi(pid), FUTEX_WAKE_PRIVATE, INT32_MAX,
			NULL, NULL, 0);
}

static void bm_open(enum variant v, uint64_t budget)
{
	size_t len = dev.pages * PAGE;

	memset(&bm, 0, sizeof(bm));
	bm.variant = v;
	bm.pages = dev.pages;
	bm.budget = budget;
	bm.space = -1;
	pthread_mutex_init(&bm.evict_lock, NULL);
	bm.state = calloc(bm.pages, sizeof(*bm.state));
	bm.dirty = calloc(bm.pages, 1);
	if (!bm.state || !bm.dirty)
		fail("out of memory");
	for (uint64_t i = 0; i < bm.pages; i++)
		atomic_init(&bm.state[i], word(ST_EVICTED, 0));
	if (v == V_UPAGE) {
		int ret;

		bm.space = upage_open(O_CLOEXEC);
		if (bm.space < 0)
			fail("open /dev/upage: %s", strerror(-bm.space));
		ret = upage_resize(bm.space, bm.pages, NULL);
		if (ret)
			fail("UPAGE_RESIZE to %llu: %s",
			     (unsigned long long)bm.pages, strerror(-ret));
		bm.base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED,
			       bm.space, 0);
	} else {
		bm.base = mmap(NULL, len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			       -1, 0);
		if (bm.base != MAP_FAILED)
			madvise(bm.base, len, MADV_NOHUGEPAGE);
	}
	if (bm.base == MAP_FAILED)
		fail("mmap of %zu bytes: %s", len, strerror(errno));
}

static void bm_close(void)
{
	munmap(bm.base, bm.pages * PAGE);
	if (bm.space >= 0)
		close(bm.space);
	free(bm.state);
	free((void *)bm.dirty);
	pthread_mutex_destroy(&bm.evict_lock);
}

static void drop_batch(const uint64_t *victims, int n)
{
	if (bm.variant == V_UPAGE) {
		uint32_t idx = UINT32_MAX;
		int ret;

		for (int i = 0; i < n; i++)
			bm.ops[i] = (struct upage_edit_op){
				.op = UPAGE_OP_DISCARD, .dst = victims[i],
				.n = 1,
			};
		ret = upage_edit(bm.space, bm.ops, n, &idx);
		if (ret)
			fail("UPAGE_EDIT of %d discards: %s (op %u)", n,
			     strerror(-ret), idx);
		return;
	}
	for (int i = 0; i < n; i++)
		if (madvise(page_addr(victims[i]), PAGE, MADV_DONTNEED))
			fail("madvise(MADV_DONTNEED) of page %llu: %s",
			     (unsigned long long)victims[i], strerror(errno));
}

/*
 * Evict up to BATCH pages: the clock marks unlocked pages and takes marked
 * ones (an access in between unmarked them). Dirty victims are written
 * back before the batch is dropped.
 */
static void evict_batch(void)
{
	uint64_t victims[BATCH], used = atomic_load(&db_pages);
	uint64_t scanned, limit = 3 * used, t, t2;
	int n = 0;

	pthread_mutex_lock(&bm.evict_lock);
	if (atomic_load(&bm.resident) < bm.budget) {
		pthread_mutex_unlock(&bm.evict_lock);
		return;
	}
	for (scanned = 0; n < BATCH && scanned < limit; scanned++) {
		uint64_t pid = bm.hand++, w;

		if (bm.hand >= used)
			bm.hand = 0;
		if (pid >= used)
			continue;
		w = atomic_load(&bm.state[pid]);
		if (st_of(w) == ST_UNLOCKED)
			atomic_compare_exchange_strong(&bm.state[pid], &w,
						       word(ST_MARKED, ver_of(w)));
		else if (st_of(w) == ST_MARKED &&
			 atomic_compare_exchange_strong(&bm.state[pid], &w,
						word(ST_LOCKED, ver_of(w))))
			victims[n++] = pid;
	}
	t = now_ns();
	for (int i = 0; i < n; i++) {
		if (!atomic_load(&bm.dirty[victims[i]]))
			continue;
		dev_write(page_addr(victims[i]), victims[i]);
		atomic_store(&bm.dirty[victims[i]], 0);
		atomic_fetch_add(&bm.writes, 1);
	}
	t2 = now_ns();
	atomic_fetch_add(&bm.write_ns, t2 - t);
	atomic_fetch_add(&bm.drop_seq, 1);
	if (n)
		drop_batch(victims, n);
	atomic_fetch_add(&bm.drop_seq, 1);
	atomic_fetch_add(&bm.drop_ns, now_ns() - t2);
	for (int i = 0; i < n; i++) {
		uint64_t w = atomic_load(&bm.state[victims[i]]);

		set_state(victims[i], word(ST_EVICTED, ver_of(w) + 1));
	}
	atomic_fetch_sub(&bm.resident, n);
	atomic_fetch_add(&bm.evicted, n);
	pthread_mutex_unlock(&bm.evict_lock);
}

static void ensure_room(void)
{
	while (atomic_load(&bm.resident) >= bm.budget)
		evict_batch();
}

/*
 * Make page @pid resident if it is evicted, from the device (@fresh: a new
 * page, zeroed instead). Returns with it locked if @keep_locked and this
 * thread loaded it (1), else unlocked (0).
 */
static int load_page(uint64_t pid, int fresh, int keep_locked)
{
	uint64_t w = atomic_load(&bm.state[pid]);

	if (st_of(w) != ST_EVICTED)
		return 0;
	ensure_room();
	if (!atomic_compare_exchange_strong(&bm.state[pid], &w,
					    word(ST_LOCKED, ver_of(w))))
		return 0;
	atomic_fetch_add(&bm.resident, 1);
	if (fresh) {
		memset(page_addr(pid), 0, PAGE);
		atomic_store(&bm.dirty[pid], 1);
	} else {
		uint64_t seq = atomic_load(&bm.drop_seq), t = now_ns(), dt;

		dev_read(page_addr(pid), pid);
		dt = now_ns() - t;
		atomic_fetch_add(&bm.read_ns, dt);
		atomic_fetch_add(&bm.reads, 1);
		if (seq % 2 || atomic_load(&bm.drop_seq) != seq) {
			atomic_fetch_add(&bm.ovl_read_ns, dt);
			atomic_fetch_add(&bm.ovl_reads, 1);
		}
	}
	if (keep_locked)
		return 1;
	set_state(pid, word(ST_UNLOCKED, ver_of(w) + 1));
	return 0;
}

/* Optimistic read: the state word to validate against later. */
static uint64_t read_lock(uint64_t pid)
{
	for (;;) {
		uint64_t w = atomic_load(&bm.state[pid]);

		switch (st_of(w)) {
		case ST_LOCKED:
			wait_unlocked(pid, w);
			break;
		case ST_EVICTED:
			load_page(pid, 0, 0);
			break;
		case ST_MARKED:
			atomic_compare_exchange_strong(&bm.state[pid], &w,
					word(ST_UNLOCKED, ver_of(w)));
			break;
		default:
			return w;
		}
	}
}

/* Whether nothing changed page @pid since read_lock() returned @w. */
static inline int read_valid(uint64_t pid, uint64_t w)
{
	uint64_t now;

	atomic_thread_fence(memory_order_acquire);
	now = atomic_load(&bm.state[pid]);
	return ver_of(now) == ver_of(w) &&
	       (st_of(now) == ST_UNLOCKED || st_of(now) == ST_MARKED);
}

/* From an optimistic read to the exclusive lock, if nothing changed. */
static int try_upgrade(uint64_t pid, uint64_t w)
{
	uint64_t now = atomic_load(&bm.state[pid]);

	if (ver_of(now) != ver_of(w) ||
	    (st_of(now) != ST_UNLOCKED && st_of(now) != ST_MARKED))
		return 0;
	return atomic_compare_exchange_strong(&bm.state[pid], &now,
					      word(ST_LOCKED, ver_of(w)));
}

static void write_lock(uint64_t pid)
{
	for (;;) {
		uint64_t w = atomic_load(&bm.state[pid]);

		switch (st_of(w)) {
		case ST_LOCKED:
			wait_unlocked(pid, w);
			break;
		case ST_EVICTED:
			if (load_page(pid, 0, 1))
				return;
			break;
		default:
			if (atomic_compare_exchange_strong(&bm.state[pid], &w,
					word(ST_LOCKED, ver_of(w))))
				return;
		}
	}
}

static void write_unlock(uint64_t pid, int modified)
{
	uint64_t w = atomic_load(&bm.state[pid]);

	if (modified)
		atomic_store(&bm.dirty[pid], 1);
	set_state(pid, word(ST_UNLOCKED, ver_of(w) + 1));
}

/* A new page of the database, resident, zeroed, locked. */
static uint64_t alloc_page(void)
{
	uint64_t pid = atomic_fetch_add(&db_pages, 1);

	if (pid >= dev.pages)
		fail("database full: %llu pages", (unsigned long long)pid);
	if (!load_page(pid, 1, 1))
		fail("new page %llu was not evicted", (unsigned long long)pid);
	return pid;
}

/* Write every dirty resident page back (no other thread running). */
static void bm_flush(void)
{
	uint64_t used = atomic_load(&db_pages);

	for (uint64_t pid = 0; pid < used; pid++) {
		uint64_t s = st_of(atomic_load(&bm.state[pid]));

		if (s == ST_EVICTED || !atomic_load(&bm.dirty[pid]))
			continue;
		dev_write(page_addr(pid), pid);
		atomic_store(&bm.dirty[pid], 0);
	}
}

/* ------------------------------------------------------------------ */
/* B+tree nodes. */

struct node {
	uint16_t count;
	uint16_t leaf;
	uint16_t vsize;
	uint16_t pad;
	uint32_t magic;
	uint32_t pad2;
	uint64_t keys[];	/* then values (leaf) or children (inner) */
};

#define NODE_MAGIC 0x62747265u	/* "btre" */
#define HDR sizeof(struct node)
#define INNER_CAP ((PAGE - HDR - 8) / 16)

static inline unsigned leaf_cap(unsigned vsize)
{
	return (PAGE - HDR) / (8 + vsize);
}

static inline unsigned node_cap(const struct node *n, unsigned vsize)
{
	return n->leaf ? leaf_cap(vsize) : INNER_CAP;
}

static inline uint64_t *children(struct node *n)
{
	return n->keys + INNER_CAP;
}

static inline char *leaf_val(struct node *n, unsigned vsize, unsigned i)
{
	return (char *)(n->keys + leaf_cap(vsize)) + (size_t)i * vsize;
}

/* First index with keys[i] > key (inner: the child to take). */
static unsigned upper_bound(const struct node *n, unsigned count, uint64_t key)
{
	unsigned lo = 0, hi = count;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;

		if (n->keys[mid] <= key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* First index with keys[i] >= key. */
static unsigned lower_bound(const struct node *n, unsigned count, uint64_t key)
{
	unsigned lo = 0, hi = count;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;

		if (n->keys[mid] < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct tree {
	const char *name;
	uint64_t root;
	unsigned vsize;		/* bytes, multiple of 8, first word = check */
};

/* The check word of a row: a function of the table and the key. */
static inline uint64_t check_word(const struct tree *t, uint64_t key)
{
	return mix(key ^ ((uint64_t)t->vsize << 48) ^ 0x5a5a);
}

static inline unsigned clamp_count(const struct node *n, unsigned cap)
{
	unsigned c = n->count;

	return c > cap ? cap : c;
}

/*
 * Descend optimistically to the leaf of @key. Returns the leaf, *w its
 * state word (validated against the parent's).
 */
static uint64_t find_leaf(const struct tree *t, uint64_t key, uint64_t *w)
{
restart:;
	uint64_t pid = t->root, pw = read_lock(pid);

	for (;;) {
		struct node *n = page_addr(pid);
		uint64_t child, cw;

		if (n->leaf) {
			*w = pw;
			return pid;
		}
		child = children(n)[upper_bound(n, clamp_count(n, INNER_CAP),
						key)];
		if (!read_valid(pid, pw))
			goto restart;
		if (child == 0 || child >= dev.pages)
			fail("%s: page %llu points at page %llu", t->name,
			     (unsigned long long)pid,
			     (unsigned long long)child);
		cw = read_lock(child);
		if (!read_valid(pid, pw))
			goto restart;
		pid = child;
		pw = cw;
	}
}

/* Copy the row of @key to @val. 1 found, 0 not. */
static int tree_lookup(const struct tree *t, uint64_t key, void *val)
{
	for (;;) {
		uint64_t w, pid = find_leaf(t, key, &w);
		struct node *n = page_addr(pid);
		unsigned c = clamp_count(n, leaf_cap(t->vsize));
		unsigned i = lower_bound(n, c, key);
		int found = i < c && n->keys[i] == key;

		if (found)
			memcpy(val, leaf_val(n, t->vsize, i), t->vsize);
		if (read_valid(pid, w))
			return found;
	}
}

/*
 * Apply @fn to the row of @key in place, under the leaf's exclusive lock.
 * 1 found, 0 not.
 */
static int tree_update(const struct tree *t, uint64_t key,
		       void (*fn)(void *val, void *arg), void *arg)
{
	for (;;) {
		uint64_t w, pid = find_leaf(t, key, &w);
		struct node *n;
		unsigned c, i;

		if (!try_upgrade(pid, w))
			continue;
		n = page_addr(pid);
		c = n->count;
		i = lower_bound(n, c, key);
		if (i < c && n->keys[i] == key) {
			fn(leaf_val(n, t->vsize, i), arg);
			write_unlock(pid, 1);
			return 1;
		}
		write_unlock(pid, 0);
		return 0;
	}
}

/* Insert into a leaf with room, locked. */
static void leaf_insert(const struct tree *t, struct node *n, uint64_t key,
			const void *val)
{
	unsigned i = lower_bound(n, n->count, key);

	if (i < n->count && n->keys[i] == key)
		fail("%s: key %llx inserted twice", t->name,
		     (unsigned long long)key);
	memmove(&n->keys[i + 1], &n->keys[i], (n->count - i) * 8);
	memmove(leaf_val(n, t->vsize, i + 1), leaf_val(n, t->vsize, i),
		(size_t)(n->count - i) * t->vsize);
	n->keys[i] = key;
	memcpy(leaf_val(n, t->vsize, i), val, t->vsize);
	n->count++;
}

/*
 * Split full node @pid (locked) into itself and a new right sibling (also
 * locked, returned); *sep gets the first key of the right one.
 */
static uint64_t split(const struct tree *t, uint64_t pid, uint64_t *sep)
{
	struct node *l = page_addr(pid), *r;
	uint64_t rid = alloc_page();
	unsigned c = l->count, mid = c / 2;

	r = page_addr(rid);
	r->leaf = l->leaf;
	r->vsize = l->vsize;
	r->magic = NODE_MAGIC;
	if (l->leaf) {
		r->count = c - mid;
		memcpy(r->keys, &l->keys[mid], r->count * 8);
		memcpy(leaf_val(r, t->vsize, 0), leaf_val(l, t->vsize, mid),
		       (size_t)r->count * t->vsize);
		l->count = mid;
		*sep = r->keys[0];
	} else {
		*sep = l->keys[mid];
		r->count = c - mid - 1;
		memcpy(r->keys, &l->keys[mid + 1], r->count * 8);
		memcpy(children(r), &children(l)[mid + 1],
		       (r->count + 1) * 8);
		l->count = mid;
	}
	return rid;
}

/* The root (locked, full): its contents move into two new pages. */
static void split_root(const struct tree *t)
{
	uint64_t lid = alloc_page(), rid, sep;
	struct node *root = page_addr(t->root), *l = page_addr(lid);

	memcpy(l, root, PAGE);
	rid = split(t, lid, &sep);
	memset(root, 0, PAGE);
	root->magic = NODE_MAGIC;
	root->vsize = t->vsize;
	root->count = 1;
	root->keys[0] = sep;
	children(root)[0] = lid;
	children(root)[1] = rid;
	write_unlock(lid, 1);
	write_unlock(rid, 1);
}

/* Insert with exclusive locks from the root, splitting full nodes. */
static void insert_pessimistic(const struct tree *t, uint64_t key,
			       const void *val)
{
	uint64_t pid = t->root;
	struct node *n = page_addr(pid);

	write_lock(pid);
	if (n->count >= node_cap(n, t->vsize))
		split_root(t);
	for (;;) {
		unsigned i;
		uint64_t c, sep, r;
		struct node *cn;

		n = page_addr(pid);
		if (n->leaf) {
			leaf_insert(t, n, key, val);
			write_unlock(pid, 1);
			return;
		}
		i = upper_bound(n, n->count, key);
		c = children(n)[i];
		write_lock(c);
		cn = page_addr(c);
		if (cn->count < node_cap(cn, t->vsize)) {
			write_unlock(pid, 0);
			pid = c;
			continue;
		}
		r = split(t, c, &sep);
		memmove(&n->keys[i + 1], &n->keys[i], (n->count - i) * 8);
		memmove(&children(n)[i + 2], &children(n)[i + 1],
			(n->count - i) * 8);
		n->keys[i] = sep;
		children(n)[i + 1] = r;
		n->count++;
		write_unlock(pid, 1);
		if (key >= sep) {
			write_unlock(c, 1);
			pid = r;
		} else {
			write_unlock(r, 1);
			pid = c;
		}
	}
}

static void tree_insert(const struct tree *t, uint64_t key, const void *val)
{
	for (;;) {
		uint64_t w, pid = find_leaf(t, key, &w);
		struct node *n;

		if (!try_upgrade(pid, w))
			continue;
		n = page_addr(pid);
		if (n->count < leaf_cap(t->vsize)) {
			leaf_insert(t, n, key, val);
			write_unlock(pid, 1);
			return;
		}
		write_unlock(pid, 0);
		insert_pessimistic(t, key, val);
		return;
	}
}

/* ------------------------------------------------------------------ */
/* Bulk load: sorted rows straight to the device, bottom up. */

typedef void (*row_fn)(uint64_t i, uint64_t *key, void *val, void *arg);

struct level {
	uint64_t *first;	/* first key of each node */
	uint64_t *pid;
	uint64_t n;
};

static char *load_buf;

static uint64_t new_db_page(void)
{
	uint64_t pid = atomic_fetch_add(&db_pages, 1);

	if (pid >= dev.pages)
		fail("database full while loading");
	return pid;
}

/* Build inner levels over @lv until one node remains, written at @root. */
static void build_inner(struct tree *t, struct level lv, unsigned fill)
{
	while (lv.n > 1) {
		uint64_t per = fill, nodes = (lv.n + per) / (per + 1);
		struct level up = {
			.first = malloc(nodes * 8), .pid = malloc(nodes * 8),
			.n = nodes,
		};
		uint64_t i = 0;

		for (uint64_t k = 0; k < nodes; k++) {
			struct node *n = (struct node *)load_buf;
			uint64_t take = (lv.n - i) / (nodes - k);

			memset(load_buf, 0, PAGE);
			n->magic = NODE_MAGIC;
			n->vsize = t->vsize;
			n->count = take - 1;
			for (uint64_t j = 0; j < take; j++) {
				children(n)[j] = lv.pid[i + j];
				if (j)
					n->keys[j - 1] = lv.first[i + j];
			}
			up.first[k] = lv.first[i];
			up.pid[k] = nodes == 1 ? t->root : new_db_page();
			dev_write(load_buf, up.pid[k]);
			i += take;
		}
		free(lv.first);
		free(lv.pid);
		lv = up;
	}
	free(lv.first);
	free(lv.pid);
}

/* A tree of @rows rows made by @fn (keys ascending), leaves @fill% full. */
static void bulk_load(struct tree *t, uint64_t rows, unsigned fill,
		      row_fn fn, void *arg)
{
	unsigned per = leaf_cap(t->vsize) * fill / 100;
	uint64_t leaves = (rows + per - 1) / per, i = 0;
	struct level lv = {
		.first = malloc(leaves * 8), .pid = malloc(leaves * 8),
		.n = leaves,
	};

	t->root = new_db_page();
	for (uint64_t k = 0; k < leaves; k++) {
		struct node *n = (struct node *)load_buf;
		uint64_t take = (rows - i) / (leaves - k);

		memset(load_buf, 0, PAGE);
		n->magic = NODE_MAGIC;
		n->leaf = 1;
		n->vsize = t->vsize;
		n->count = take;
		for (uint64_t j = 0; j < take; j++) {
			fn(i + j, &n->keys[j], leaf_val(n, t->vsize, j), arg);
			*(uint64_t *)leaf_val(n, t->vsize, j) =
				check_word(t, n->keys[j]);
		}
		lv.first[k] = n->keys[0];
		lv.pid[k] = leaves == 1 ? t->root : new_db_page();
		dev_write(load_buf, lv.pid[k]);
		i += take;
	}
	build_inner(t, lv, INNER_CAP * 90 / 100);
}

/* ------------------------------------------------------------------ */
/* The lookup table: row i has key 3i+1 and 7 words of values. */

#define LK_VSIZE 56
static struct tree lk_tree = { .name = "lookup", .vsize = LK_VSIZE };
static uint64_t lk_rows;

static void lk_row(uint64_t i, uint64_t *key, void *val, void *arg)
{
	uint64_t *v = val;

	(void)arg;
	*key = 3 * i + 1;
	for (unsigned j = 1; j < LK_VSIZE / 8; j++)
		v[j] = mix(*key * 8 + j);
}

static void lk_check(uint64_t key, const uint64_t *v)
{
	if (v[0] != check_word(&lk_tree, key))
		fail("lookup: key %llu: wrong check word",
		     (unsigned long long)key);
	for (unsigned j = 1; j < LK_VSIZE / 8; j++)
		if (v[j] != mix(key * 8 + j))
			fail("lookup: key %llu: word %u wrong",
			     (unsigned long long)key, j);
}

static uint64_t lookup_op(uint64_t *seed)
{
	uint64_t r = rnd(seed), i = (r >> 8) % lk_rows;
	uint64_t v[LK_VSIZE / 8];

	if ((r & 15) == 0) {
		/* 3i+2 is no key: it must not be found. */
		if (tree_lookup(&lk_tree, 3 * i + 2, v))
			fail("lookup: key %llu found, never inserted",
			     (unsigned long long)(3 * i + 2));
		return 1;
	}
	if (!tree_lookup(&lk_tree, 3 * i + 1, v))
		fail("lookup: key %llu not found",
		     (unsigned long long)(3 * i + 1));
	lk_check(3 * i + 1, v);
	return 1;
}

/* ------------------------------------------------------------------ */
/* The TPC-C-like tables. */

#define WH 2
#define DIST 10

struct district_row { uint64_t check, next_o_id, ytd, pad[4]; };
struct customer_row {
	uint64_t check, c_id, last_o_id, payment_cnt, ytd_payment;
	int64_t balance;
	char data[200];
};
struct stock_row { uint64_t check, i_id, quantity, ytd, order_cnt, pad[10]; };
struct order_row { uint64_t check, c_id, ol_cnt; };
struct line_row { uint64_t check, i_id, qty, amount, pad[3]; };

static struct tree t_district = { .name = "district",
				  .vsize = sizeof(struct district_row) };
static struct tree t_customer = { .name = "customer",
				  .vsize = sizeof(struct customer_row) };
static struct tree t_stock = { .name = "stock",
			       .vsize = sizeof(struct stock_row) };
static struct tree t_orders = { .name = "orders",
				.vsize = sizeof(struct order_row) };
static struct tree t_lines = { .name = "order_line",
			       .vsize = sizeof(struct line_row) };

static uint64_t n_cust, n_items, n_orders0;	/* per district / warehouse */
static uint32_t *init_ol_cnt;			/* initial orders' line counts */
static uint32_t *init_cust_last;		/* initial last order per customer */
static atomic_uint_fast64_t tx_payments, tx_new_orders;

static inline uint64_t k_district(uint64_t w, uint64_t d) { return w << 8 | d; }
static inline uint64_t k_customer(uint64_t w, uint64_t d, uint64_t c)
{
	return w << 40 | d << 32 | c;
}
static inline uint64_t k_stock(uint64_t w, uint64_t i) { return w << 32 | i; }
static inline uint64_t k_order(uint64_t w, uint64_t d, uint64_t o)
{
	return w << 48 | d << 40 | o;
}
static inline uint64_t k_line(uint64_t w, uint64_t d, uint64_t o, uint64_t ol)
{
	return k_order(w, d, o) << 4 | ol;
}

/* The initial orders: customer and lines from a hash of the order. */
static inline uint64_t init_c(uint64_t w, uint64_t d, uint64_t o)
{
	return 1 + mix(k_order(w, d, o) ^ 1) % n_cust;
}
static inline uint64_t init_item(uint64_t w, uint64_t d, uint64_t o,
				 uint64_t ol)
{
	return 1 + mix(k_line(w, d, o, ol) ^ 2) % n_items;
}

static void district_row(uint64_t i, uint64_t *key, void *val, void *arg)
{
	struct district_row *r = val;

	(void)arg;
	*key = k_district(i / DIST, i % DIST);
	r->next_o_id = n_orders0 + 1;
}

static void customer_row(uint64_t i, uint64_t *key, void *val, void *arg)
{
	struct customer_row *r = val;
	uint64_t c = 1 + i % n_cust, d = i / n_cust % DIST, w = i / n_cust / DIST;

	(void)arg;
	*key = k_customer(w, d, c);
	r->c_id = c;
	r->last_o_id = init_cust_last[i];
	memset(r->data, 'a' + (int)(i % 26), sizeof(r->data));
}

static uint64_t *stock_cnt, *stock_ytd;	/* initial, per w * n_items + i-1 */

static void stock_row(uint64_t i, uint64_t *key, void *val, void *arg)
{
	struct stock_row *r = val;

	(void)arg;
	*key = k_stock(i / n_items, 1 + i % n_items);
	r->i_id = 1 + i % n_items;
	r->quantity = 50 + i % 50;
	r->order_cnt = stock_cnt[i];
	r->ytd = stock_ytd[i];
}

static void order_row(uint64_t i, uint64_t *key, void *val, void *arg)
{
	struct order_row *r = val;
	uint64_t o = 1 + i % n_orders0, d = i / n_orders0 % DIST;
	uint64_t w = i / n_orders0 / DIST;

	(void)arg;
	*key = k_order(w, d, o);
	r->c_id = init_c(w, d, o);
	r->ol_cnt = init_ol_cnt[i];
}

/* Lines are generated in key order with a cursor over the orders. */
struct line_cursor { uint64_t order, ol; };

static void line_row(uint64_t i, uint64_t *key, void *val, void *arg)
{
	struct line_cursor *cur = arg;
	struct line_row *r = val;
	uint64_t o, d, w;

	(void)i;
	if (++cur->ol > init_ol_cnt[cur->order]) {
		cur->order++;
		cur->ol = 1;
	}
	o = 1 + cur->order % n_orders0;
	d = cur->order / n_orders0 % DIST;
	w = cur->order / n_orders0 / DIST;
	*key = k_line(w, d, o, cur->ol);
	r->i_id = init_item(w, d, o, cur->ol);
	r->qty = 5;
	r->amount = 0;
}

/* Rows of the TPC-C tables at scale 1 and how many pages they take. */
static double tpcc_pages(double s)
{
	double cust = WH * DIST * 3000 * s, items = WH * 50000 * s;
	double orders = WH * DIST * 3000 * s;

	return cust / (leaf_cap(t_customer.vsize) * 0.9) +
	       items / (leaf_cap(t_stock.vsize) * 0.9) +
	       orders / (leaf_cap(t_orders.vsize) * 0.9) +
	       orders * 10 / (leaf_cap(t_lines.vsize) * 0.9);
}

static void tpcc_load(uint64_t target_pages)
{
	double s = target_pages / tpcc_pages(1.0);
	uint64_t n_ord, lines = 0, seq = 0;
	struct line_cursor cur = { 0, 0 };

	n_cust = (uint64_t)(3000 * s) + 1;
	n_items = (uint64_t)(50000 * s) + 1;
	n_orders0 = (uint64_t)(3000 * s) + 1;
	n_ord = WH * DIST * n_orders0;
	init_ol_cnt = malloc(n_ord * sizeof(*init_ol_cnt));
	init_cust_last = calloc(WH * DIST * n_cust, sizeof(*init_cust_last));
	stock_cnt = calloc(WH * n_items, 8);
	stock_ytd = calloc(WH * n_items, 8);
	if (!init_ol_cnt || !init_cust_last || !stock_cnt || !stock_ytd)
		fail("out of memory");
	for (uint64_t w = 0; w < WH; w++)
		for (uint64_t d = 0; d < DIST; d++)
			for (uint64_t o = 1; o <= n_orders0; o++, seq++) {
				uint64_t c = init_c(w, d, o);

				init_ol_cnt[seq] = 5 + mix(seq ^ 3) % 11;
				lines += init_ol_cnt[seq];
				init_cust_last[(w * DIST + d) * n_cust + c - 1] = o;
				for (uint64_t ol = 1; ol <= init_ol_cnt[seq]; ol++) {
					uint64_t i = init_item(w, d, o, ol);

					stock_cnt[w * n_items + i - 1]++;
					stock_ytd[w * n_items + i - 1] += 5;
				}
			}
	bulk_load(&t_district, WH * DIST, 90, district_row, NULL);
	bulk_load(&t_customer, WH * DIST * n_cust, 90, customer_row, NULL);
	bulk_load(&t_stock, WH * n_items, 90, stock_row, NULL);
	bulk_load(&t_orders, n_ord, 90, order_row, NULL);
	bulk_load(&t_lines, lines, 90, line_row, &cur);
	printf("# tpcc: %d warehouses, %d districts each, %llu customers per "
	       "district, %llu items, %llu initial orders per district, "
	       "%llu order lines\n", WH, DIST, (unsigned long long)n_cust,
	       (unsigned long long)n_items, (unsigned long long)n_orders0,
	       (unsigned long long)lines);
	free(init_cust_last);
	free(stock_cnt);
	free(stock_ytd);
}

static void take_o_id(void *val, void *arg)
{
	struct district_row *r = val;

	*(uint64_t *)arg = r->next_o_id++;
}

static void add_district_ytd(void *val, void *arg)
{
	((struct district_row *)val)->ytd += *(uint64_t *)arg;
}

static void stock_take(void *val, void *arg)
{
	struct stock_row *r = val;
	uint64_t qty = *(uint64_t *)arg;

	r->quantity = r->quantity >= qty + 10 ? r->quantity - qty :
		      r->quantity - qty + 91;
	r->ytd += qty;
	r->order_cnt++;
}

static void set_last_order(void *val, void *arg)
{
	struct customer_row *r = val;
	uint64_t o = *(uint64_t *)arg;

	if (o > r->last_o_id)
		r->last_o_id = o;
}

static void customer_pay(void *val, void *arg)
{
	struct customer_row *r = val;
	uint64_t amount = *(uint64_t *)arg;

	r->balance -= (int64_t)amount;
	r->ytd_payment += amount;
	r->payment_cnt++;
}

static void must(int found, const struct tree *t, uint64_t key)
{
	if (!found)
		fail("%s: key %llx not found", t->name, (unsigned long long)key);
}

static void new_order(uint64_t *seed)
{
	uint64_t w = rnd(seed) % WH, d = rnd(seed) % DIST;
	uint64_t c = 1 + rnd(seed) % n_cust, ol_cnt = 5 + rnd(seed) % 11, o;
	struct order_row orow = { 0 };

	must(tree_update(&t_district, k_district(w, d), take_o_id, &o),
	     &t_district, k_district(w, d));
	for (uint64_t ol = 1; ol <= ol_cnt; ol++) {
		uint64_t i = 1 + rnd(seed) % n_items, qty = 1 + rnd(seed) % 10;
		struct line_row l = {
			.check = check_word(&t_lines, k_line(w, d, o, ol)),
			.i_id = i, .qty = qty, .amount = qty * (i % 100 + 1),
		};

		tree_insert(&t_lines, k_line(w, d, o, ol), &l);
		must(tree_update(&t_stock, k_stock(w, i), stock_take, &qty),
		     &t_stock, k_stock(w, i));
	}
	orow.check = check_word(&t_orders, k_order(w, d, o));
	orow.c_id = c;
	orow.ol_cnt = ol_cnt;
	tree_insert(&t_orders, k_order(w, d, o), &orow);
	must(tree_update(&t_customer, k_customer(w, d, c), set_last_order, &o),
	     &t_customer, k_customer(w, d, c));
	atomic_fetch_add_explicit(&tx_new_orders, 1, memory_order_relaxed);
}

static void payment(uint64_t *seed)
{
	uint64_t w = rnd(seed) % WH, d = rnd(seed) % DIST;
	uint64_t c = 1 + rnd(seed) % n_cust, amount = 1 + rnd(seed) % 5000;

	must(tree_update(&t_district, k_district(w, d), add_district_ytd,
			 &amount), &t_district, k_district(w, d));
	must(tree_update(&t_customer, k_customer(w, d, c), customer_pay,
			 &amount), &t_customer, k_customer(w, d, c));
	atomic_fetch_add_explicit(&tx_payments, 1, memory_order_relaxed);
}

static void order_status(uint64_t *seed)
{
	uint64_t w = rnd(seed) % WH, d = rnd(seed) % DIST;
	uint64_t c = 1 + rnd(seed) % n_cust;
	struct customer_row cr;
	struct order_row orow;
	struct line_row l;

	must(tree_lookup(&t_customer, k_customer(w, d, c), &cr), &t_customer,
	     k_customer(w, d, c));
	if (cr.check != check_word(&t_customer, k_customer(w, d, c)) ||
	    cr.c_id != c)
		fail("customer %llx: wrong row",
		     (unsigned long long)k_customer(w, d, c));
	if (!cr.last_o_id)
		return;
	must(tree_lookup(&t_orders, k_order(w, d, cr.last_o_id), &orow),
	     &t_orders, k_order(w, d, cr.last_o_id));
	if (orow.c_id != c || orow.ol_cnt < 5 || orow.ol_cnt > 15 ||
	    orow.check != check_word(&t_orders, k_order(w, d, cr.last_o_id)))
		fail("order %llx: wrong row (customer %llu, %llu lines)",
		     (unsigned long long)k_order(w, d, cr.last_o_id),
		     (unsigned long long)orow.c_id,
		     (unsigned long long)orow.ol_cnt);
	for (uint64_t ol = 1; ol <= orow.ol_cnt; ol++) {
		uint64_t k = k_line(w, d, cr.last_o_id, ol);

		must(tree_lookup(&t_lines, k, &l), &t_lines, k);
		if (l.check != check_word(&t_lines, k) || !l.i_id ||
		    l.i_id > n_items)
			fail("order line %llx: wrong row", (unsigned long long)k);
	}
}

static uint64_t tpcc_op(uint64_t *seed)
{
	uint64_t r = rnd(seed) % 100;

	if (r < 45)
		new_order(seed);
	else if (r < 88)
		payment(seed);
	else
		order_status(seed);
	return 1;
}

/* ------------------------------------------------------------------ */
/* The final scan: every tree, then the TPC-C invariants. */

typedef void (*scan_fn)(uint64_t key, const void *val, void *arg);

/* Check the subtree at @pid holds keys in [lo, hi); visit its rows. */
static uint64_t scan_node(const struct tree *t, uint64_t pid, uint64_t lo,
			  uint64_t hi, int top, scan_fn fn, void *arg)
{
	struct node *n;
	uint64_t rows = 0, *kids, *keys;
	unsigned count;
	int leaf;

	write_lock(pid);
	n = page_addr(pid);
	count = n->count;
	leaf = n->leaf;
	if (n->magic != NODE_MAGIC || n->vsize != t->vsize ||
	    count > node_cap(n, t->vsize) || (!top && !count && !leaf))
		fail("%s: page %llu is no node of the tree", t->name,
		     (unsigned long long)pid);
	keys = malloc((count + 1) * 8);
	memcpy(keys, n->keys, count * 8);
	for (unsigned i = 0; i < count; i++)
		if (keys[i] < lo || keys[i] >= hi ||
		    (i && keys[i] <= keys[i - 1]))
			fail("%s: page %llu: key %u out of order", t->name,
			     (unsigned long long)pid, i);
	if (leaf) {
		for (unsigned i = 0; i < count; i++) {
			const uint64_t *v = (void *)leaf_val(n, t->vsize, i);

			if (v[0] != check_word(t, keys[i]))
				fail("%s: key %llx: wrong check word", t->name,
				     (unsigned long long)keys[i]);
			fn(keys[i], v, arg);
		}
		write_unlock(pid, 0);
		free(keys);
		return count;
	}
	kids = malloc((count + 1) * 8);
	memcpy(kids, children(n), (count + 1) * 8);
	write_unlock(pid, 0);
	for (unsigned i = 0; i <= count; i++)
		rows += scan_node(t, kids[i], i ? keys[i - 1] : lo,
				  i < count ? keys[i] : hi, 0, fn, arg);
	free(kids);
	free(keys);
	return rows;
}

static uint64_t scan_tree(const struct tree *t, scan_fn fn, void *arg)
{
	return scan_node(t, t->root, 0, UINT64_MAX, 1, fn, arg);
}

struct tpcc_sums {
	uint64_t next_o[WH][DIST], ytd_district, ytd_customer, payments;
	uint64_t *orders_seen;		/* per (w,d): orders in the tree */
	uint8_t *ol_cnt;		/* per order slot: its lines */
	uint8_t *ol_seen;		/* per order slot: lines found */
	uint64_t stock_cnt, stock_ytd, lines, line_qty, max_o;
	int bad;
};

static void lk_visit(uint64_t key, const void *val, void *arg)
{
	uint64_t *next = arg;

	if (key != 3 * *next + 1)
		fail("lookup: scan found key %llu, expected %llu",
		     (unsigned long long)key,
		     (unsigned long long)(3 * *next + 1));
	lk_check(key, val);
	++*next;
}

static void district_visit(uint64_t key, const void *val, void *arg)
{
	const struct district_row *r = val;
	struct tpcc_sums *s = arg;

	s->next_o[key >> 8][key & 0xff] = r->next_o_id;
	s->ytd_district += r->ytd;
}

static void customer_visit(uint64_t key, const void *val, void *arg)
{
	const struct customer_row *r = val;
	struct tpcc_sums *s = arg;

	if (r->c_id != (key & 0xffffffff) ||
	    (uint64_t)-r->balance != r->ytd_payment)
		fail("customer %llx: wrong row", (unsigned long long)key);
	s->ytd_customer += r->ytd_payment;
	s->payments += r->payment_cnt;
}

static void stock_visit(uint64_t key, const void *val, void *arg)
{
	const struct stock_row *r = val;
	struct tpcc_sums *s = arg;

	if (r->i_id != (key & 0xffffffff) || r->quantity < 10 ||
	    r->quantity > 100)
		fail("stock %llx: wrong row", (unsigned long long)key);
	s->stock_cnt += r->order_cnt;
	s->stock_ytd += r->ytd;
}

static void order_visit(uint64_t key, const void *val, void *arg)
{
	const struct order_row *r = val;
	struct tpcc_sums *s = arg;
	uint64_t w = key >> 48, d = key >> 40 & 0xff, o = key & 0xffffffffff;

	if (w >= WH || d >= DIST || !o || o >= s->max_o || r->ol_cnt < 5 || r->ol_cnt > 15 || !r->c_id ||
	    r->c_id > n_cust)
		fail("order %llx: wrong row", (unsigned long long)key);
	s->orders_seen[w * DIST + d]++;
	s->ol_cnt[(w * DIST + d) * s->max_o + o - 1] = r->ol_cnt;
}

static void line_visit(uint64_t key, const void *val, void *arg)
{
	const struct line_row *r = val;
	struct tpcc_sums *s = arg;
	uint64_t ok = key >> 4, ol = key & 15;
	uint64_t w = ok >> 48, d = ok >> 40 & 0xff, o = ok & 0xffffffffff;
	uint64_t slot = (w * DIST + d) * s->max_o + o - 1;

	/* Lines come in key order: 1 to the order's ol_cnt, none missing. */
	if (w >= WH || d >= DIST || !o || o >= s->max_o ||
	    ol != s->ol_seen[slot] + 1U || ol > s->ol_cnt[slot])
		fail("order line %llx: no such line in its order",
		     (unsigned long long)key);
	s->ol_seen[slot]++;
	s->lines++;
	s->line_qty += r->qty;
}

static void validate(void)
{
	struct tpcc_sums s = { 0 };
	uint64_t next = 0, rows;

	rows = scan_tree(&lk_tree, lk_visit, &next);
	if (rows != lk_rows)
		fail("lookup: %llu rows, expected %llu",
		     (unsigned long long)rows, (unsigned long long)lk_rows);
	scan_tree(&t_district, district_visit, &s);
	scan_tree(&t_customer, customer_visit, &s);
	scan_tree(&t_stock, stock_visit, &s);
	for (int w = 0; w < WH; w++)
		for (int d = 0; d < DIST; d++)
			if (s.next_o[w][d] > s.max_o)
				s.max_o = s.next_o[w][d];
	s.orders_seen = calloc(WH * DIST, 8);
	s.ol_cnt = calloc(WH * DIST * s.max_o, 1);
	s.ol_seen = calloc(WH * DIST * s.max_o, 1);
	if (!s.orders_seen || !s.ol_cnt || !s.ol_seen)
		fail("out of memory");
	scan_tree(&t_orders, order_visit, &s);
	for (int w = 0; w < WH; w++)
		for (int d = 0; d < DIST; d++)
			if (s.orders_seen[w * DIST + d] != s.next_o[w][d] - 1)
				fail("district %d/%d: next order %llu, %llu "
				     "orders", w, d,
				     (unsigned long long)s.next_o[w][d],
				     (unsigned long long)s.orders_seen[w * DIST + d]);
	scan_tree(&t_lines, line_visit, &s);
	for (uint64_t i = 0; i < WH * DIST * s.max_o; i++)
		if (s.ol_cnt[i] != s.ol_seen[i])
			fail("an order lacks lines (slot %llu)",
			     (unsigned long long)i);
	if (s.ytd_district != s.ytd_customer ||
	    s.payments != atomic_load(&tx_payments))
		fail("payments: districts %llu, customers %llu, %llu rows, "
		     "%llu done", (unsigned long long)s.ytd_district,
		     (unsigned long long)s.ytd_customer,
		     (unsigned long long)s.payments,
		     (unsigned long long)atomic_load(&tx_payments));
	if (s.stock_cnt != s.lines || s.stock_ytd != s.line_qty)
		fail("stock: %llu orders and %llu qty, lines: %llu and %llu",
		     (unsigned long long)s.stock_cnt,
		     (unsigned long long)s.stock_ytd,
		     (unsigned long long)s.lines,
		     (unsigned long long)s.line_qty);
	printf("# final scan: %llu lookup rows, %llu order lines, %llu "
	       "new orders and %llu payments done: every tree in order, "
	       "every invariant holds\n", (unsigned long long)rows,
	       (unsigned long long)s.lines,
	       (unsigned long long)atomic_load(&tx_new_orders),
	       (unsigned long long)s.payments);
	free(s.orders_seen);
	free(s.ol_cnt);
	free(s.ol_seen);
}

/* ------------------------------------------------------------------ */
/* Runs. */

struct worker {
	pthread_t th;
	uint64_t (*op)(uint64_t *seed);
	uint64_t seed;
	atomic_uint_fast64_t ops;
};

static atomic_int stop;

static void *worker_main(void *arg)
{
	struct worker *wk = arg;

	while (!atomic_load_explicit(&stop, memory_order_relaxed))
		atomic_fetch_add_explicit(&wk->ops, wk->op(&wk->seed),
					  memory_order_relaxed);
	return NULL;
}

struct sample {
	uint64_t ops, evicted, minflt, space_faults, ns;
	uint64_t reads, writes, drop_ns, read_ns, write_ns;
	uint64_t ovl_reads, ovl_read_ns;
};

static uint64_t space_faults(void)
{
	struct upage_stats st;

	if (bm.space < 0 || upage_stats(bm.space, &st))
		return 0;
	return st.out_faults;
}

static void take(struct sample *s, struct worker *wk, int threads)
{
	struct rusage ru;

	s->ops = 0;
	for (int i = 0; i < threads; i++)
		s->ops += atomic_load(&wk[i].ops);
	getrusage(RUSAGE_SELF, &ru);
	s->minflt = ru.ru_minflt;
	s->evicted = atomic_load(&bm.evicted);
	s->reads = atomic_load(&bm.reads);
	s->writes = atomic_load(&bm.writes);
	s->drop_ns = atomic_load(&bm.drop_ns);
	s->read_ns = atomic_load(&bm.read_ns);
	s->write_ns = atomic_load(&bm.write_ns);
	s->ovl_reads = atomic_load(&bm.ovl_reads);
	s->ovl_read_ns = atomic_load(&bm.ovl_read_ns);
	s->space_faults = space_faults();
	s->ns = now_ns();
}

struct result {
	double ops_s, flt_evict, sflt_evict;
	double drop_ns, read_ns, write_ns;	/* per page dropped, read, written */
	double writes_evict;
	double ovl_share, ovl_read_ns, alone_read_ns;	/* preads during a drop */
};

static double seconds = 2;
static uint64_t run_seed = 1;

static struct result run_once(enum variant v, uint64_t budget, int threads,
			      uint64_t (*op)(uint64_t *seed))
{
	struct worker wk[MAX_THREADS];
	struct sample a, b;
	struct result res;
	uint64_t t0;

	bm_open(v, budget);
	atomic_store(&stop, 0);
	for (int i = 0; i < threads; i++) {
		wk[i].op = op;
		wk[i].seed = mix(++run_seed * 1000 + i);
		atomic_init(&wk[i].ops, 0);
		if (pthread_create(&wk[i].th, NULL, worker_main, &wk[i]))
			fail("pthread_create");
	}
	/* Warm up: until a quarter of the budget was evicted (the pool full). */
	t0 = now_ns();
	while (atomic_load(&bm.evicted) < budget / 4 &&
	       now_ns() - t0 < 60ULL * 1000000000)
		usleep(2000);
	/* At least -T seconds and 4 batches evicted (a stall fails). */
	take(&a, wk, threads);
	do {
		usleep(10000);
		take(&b, wk, threads);
		if (b.ns - a.ns > 120ULL * 1000000000)
			fail("%s: fewer than %d pages evicted in 120 s: stalled",
			     variant_name[v], 4 * BATCH);
	} while (b.ns - a.ns < seconds * 1e9 ||
		 b.evicted - a.evicted < 4 * BATCH);
	atomic_store(&stop, 1);
	for (int i = 0; i < threads; i++)
		pthread_join(wk[i].th, NULL);
	res.ops_s = (b.ops - a.ops) * 1e9 / (b.ns - a.ns);
	res.flt_evict = (double)(b.minflt - a.minflt) / (b.evicted - a.evicted);
	res.sflt_evict = (double)(b.space_faults - a.space_faults) /
			 (b.evicted - a.evicted);
	res.drop_ns = (double)(b.drop_ns - a.drop_ns) / (b.evicted - a.evicted);
	res.read_ns = (double)(b.read_ns - a.read_ns) /
		      (b.reads - a.reads ? b.reads - a.reads : 1);
	res.write_ns = (double)(b.write_ns - a.write_ns) /
		       (b.writes - a.writes ? b.writes - a.writes : 1);
	res.writes_evict = (double)(b.writes - a.writes) /
			   (b.evicted - a.evicted);
	{
		uint64_t reads = b.reads - a.reads, ovl = b.ovl_reads - a.ovl_reads;
		uint64_t ns = b.read_ns - a.read_ns;
		uint64_t ovl_ns = b.ovl_read_ns - a.ovl_read_ns;

		res.ovl_share = reads ? (double)ovl / reads : 0;
		res.ovl_read_ns = ovl ? (double)ovl_ns / ovl : 0;
		res.alone_read_ns = reads > ovl ?
				    (double)(ns - ovl_ns) / (reads - ovl) : 0;
	}
	bm_flush();
	bm_close();
	return res;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void bench_line(const char *job, const char *cas, const char *method,
		       const char *role, const char *unit, double *v, int n)
{
	double s[MAX_RUNS];
	int prec = strcmp(unit, "faults/evict") ? 1 : 3;

	memcpy(s, v, n * sizeof(*v));
	qsort(s, n, sizeof(*s), cmp_double);
	printf("BENCH\t%s\t%s\t%s\t%s\t%s\t%.*f\t%.*f\t%.*f\t%d\n", job, cas,
	       method, role, unit, prec, n % 2 ? s[n / 2] :
	       (s[n / 2 - 1] + s[n / 2]) / 2, prec, s[0], prec, s[n - 1], n);
}

static const char *const method_name[] = {
	"upage DISCARD batch of 64", "madvise DONTNEED per page",
};
static const char *const role_name[] = { "upage", "peer" };

static void workload(const char *job, const char *unit, uint64_t budget,
		     int threads, int runs, uint64_t data_pages,
		     uint64_t (*op)(uint64_t *seed))
{
	struct result r[2][MAX_RUNS];
	double v[MAX_RUNS];
	char cas[96];

	snprintf(cas, sizeof(cas), "threads=%d budget=%lluMiB data=%lluMiB",
		 threads, (unsigned long long)(budget * PAGE >> 20),
		 (unsigned long long)(data_pages * PAGE >> 20));
	if (budget * PAGE < (1 << 20))
		snprintf(cas, sizeof(cas), "threads=%d budget=%lluKiB "
			 "data=%lluKiB", threads,
			 (unsigned long long)(budget * PAGE >> 10),
			 (unsigned long long)(data_pages * PAGE >> 10));
	for (int i = 0; i < runs; i++) {
		for (int k = 0; k < 2; k++) {
			enum variant var = (i + k) % 2 ? V_MADVISE : V_UPAGE;

			r[var][i] = run_once(var, budget, threads, op);
			printf("# %s %s run %d: %.1f %s, %.3f faults/evict "
			       "(minflt)", job, variant_name[var], i + 1,
			       r[var][i].ops_s, unit, r[var][i].flt_evict);
			if (var == V_UPAGE)
				printf(", %.3f (UPAGE_STATS faults)",
				       r[var][i].sflt_evict);
			printf("; ns per page: drop %.0f, pread+fault %.0f, "
			       "pwrite %.0f (%.2f per evicted page)",
			       r[var][i].drop_ns, r[var][i].read_ns,
			       r[var][i].write_ns, r[var][i].writes_evict);
			if (threads > 1)
				printf("; pread+fault %.0f alone, %.0f during "
				       "the other thread's drop (%.1f%% of "
				       "them)", r[var][i].alone_read_ns,
				       r[var][i].ovl_read_ns,
				       100 * r[var][i].ovl_share);
			printf("\n");
			fflush(stdout);
		}
	}
	for (int var = 0; var < 2; var++) {
		for (int i = 0; i < runs; i++)
			v[i] = r[var][i].ops_s;
		bench_line(job, cas, method_name[var], role_name[var], unit, v,
			   runs);
	}
	for (int var = 0; var < 2; var++) {
		for (int i = 0; i < runs; i++)
			v[i] = r[var][i].flt_evict;
		bench_line(job, cas, var == V_UPAGE ?
			   "upage DISCARD batch of 64 (minflt)" :
			   "madvise DONTNEED per page (minflt)",
			   role_name[var], "faults/evict", v, runs);
	}
	for (int i = 0; i < runs; i++)
		v[i] = r[V_UPAGE][i].sflt_evict;
	bench_line(job, cas, "upage DISCARD batch of 64 (UPAGE_STATS faults)",
		   "upage", "faults/evict", v, runs);
	fflush(stdout);
}

static void usage(void)
{
	fprintf(stderr, "usage: upage-bench-btree [-b BUDGET_PAGES] "
		"[-T SECONDS] [-r RUNS] [-d DEVICE] [-t]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	uint64_t budget = 4096, lk_pages, tp_pages, t0;
	const char *device = NULL;
	int runs = 5, opt, fd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt(argc, argv, "b:T:r:d:t")) != -1) {
		switch (opt) {
		case 'b':
			budget = strtoull(optarg, NULL, 0);
			break;
		case 'T':
			seconds = atof(optarg);
			break;
		case 'r':
			runs = atoi(optarg);
			break;
		case 'd':
			device = optarg;
			break;
		case 't':
			budget = 128;
			seconds = 0.2;
			runs = 1;
			break;
		default:
			usage();
		}
	}
	if (budget < 2 * BATCH || runs < 1 || runs > MAX_RUNS || seconds <= 0)
		usage();
	fd = upage_open(O_CLOEXEC);
	if (fd < 0) {
		printf("# /dev/upage cannot be opened: nothing to compare\n");
		return 4;
	}
	close(fd);
	/* 4.5x the budget per workload; room to grow for the TPC-C inserts. */
	lk_pages = budget * 9 / 2;
	tp_pages = budget * 9 / 2;
	device_open(device, (lk_pages + tp_pages) * 3);
	if (posix_memalign((void **)&load_buf, PAGE, PAGE))
		fail("out of memory");
	t0 = now_ns();
	lk_rows = lk_pages * (leaf_cap(LK_VSIZE) * 9 / 10);
	bulk_load(&lk_tree, lk_rows, 90, lk_row, NULL);
	lk_pages = atomic_load(&db_pages);
	tpcc_load(tp_pages);
	tp_pages = atomic_load(&db_pages) - lk_pages;
	printf("# budget %llu pages (%llu KiB); lookup tree %llu pages (%llu "
	       "rows of 64 bytes), TPC-C tables %llu pages; loaded in %.1f s\n",
	       (unsigned long long)budget,
	       (unsigned long long)(budget * PAGE >> 10),
	       (unsigned long long)lk_pages, (unsigned long long)lk_rows,
	       (unsigned long long)tp_pages, (now_ns() - t0) / 1e9);
	printf("# faults/evict: minflt = the process's minor faults "
	       "(getrusage) per evicted page; UPAGE_STATS = the space's "
	       "out_faults per evicted page\n");
	for (int threads = 1; threads <= MAX_THREADS; threads++) {
		workload("btree-lookup", "ops/s", budget, threads, runs,
			 lk_pages, lookup_op);
		workload("btree-tpcc", "tx/s", budget, threads, runs,
			 tp_pages, tpcc_op);
	}
	t0 = now_ns();
	bm_open(V_UPAGE, budget);
	validate();
	bm_close();
	printf("# final scan (upage variant) took %.1f s\n",
	       (now_ns() - t0) / 1e9);
	device_close();
	printf("btree: all checks passed\n");
	return 0;
}
