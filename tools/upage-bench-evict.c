// SPDX-License-Identifier: GPL-2.0
/*
 * upage-bench-evict: a buffer pool that evicts batches of scattered pages
 * (issue 11). Every page of a pool of POOL pages is hot: mapped and
 * holding a stamp. Each round evicts B distinct random pages, then uses
 * the pool: reads every page once; an evicted page must read zeros and is
 * written again with a new stamp, as a buffer manager loads it back. What
 * an eviction costs is its own call plus every fault it causes later, so
 * a round is timed whole and divided by B (the call alone is shown too).
 *
 *   upage     one UPAGE_EDIT of B UPAGE_OP_DISCARD ops (n=1), on a
 *             MAP_SHARED mapping of a space
 *   madvise   private anonymous memory, one MADV_DONTNEED per evicted page
 *             (what vmcache-style buffer managers do)
 *   punch     a memfd mapped MAP_SHARED, one fallocate(PUNCH_HOLE) per
 *             evicted page
 *
 * The methods take turns round by round, each on its own pool, evicting
 * the same pages. Faults per evicted page: the minor faults of the round
 * (getrusage), and for upage also the space's own count (UPAGE_STATS
 * out_faults, which counts .fault only: an evicted page read and then
 * written faults twice in upage, the second time for .page_mkwrite).
 * After every round, untimed, every page of every pool is checked against
 * its stamp; a wrong page fails the run (exit 1). It never passes or fails
 * on time.
 *
 * usage: upage-bench-evict [-n POOL] [-r ROUNDS]
 * (default: pools of 4096 and 16384 pages, 41 rounds; `-n 256 -r 1` is the
 * smoke run of `make check`)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "upage.h"

#define PAGE 4096UL
#define WORDS (PAGE / sizeof(uint64_t))
#define MAX_ROUNDS 101

static const size_t batches[] = { 1, 8, 64, 512 };
#define NR_BATCHES (sizeof(batches) / sizeof(batches[0]))

static int rounds = 41;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t minflt(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

/* The stamp of @page after its @gen-th load; never 0. */
static uint64_t stamp(size_t page, uint32_t gen)
{
	return 0x7570616765000000ULL ^ ((uint64_t)gen << 32) ^ (page + 1);
}

static uint64_t *page_at(char *base, size_t page)
{
	return (uint64_t *)(base + page * PAGE);
}

static void load(char *base, size_t page, uint32_t gen)
{
	page_at(base, page)[0] = stamp(page, gen);
	page_at(base, page)[WORDS - 1] = stamp(page, gen);
}

struct method {
	const char *name;
	int (*setup)(struct method *m, size_t pool);
	int (*evict)(struct method *m, const size_t *victims, size_t b);
	char *base;
	int fd;
	struct upage_edit_op *ops;
	uint32_t *gen;		/* per page: how often it was loaded */
	unsigned char *evicted;	/* per page: evicted this round */
	size_t pool;
	/* per round of the current batch size */
	uint64_t ns[MAX_ROUNDS];
	uint64_t call_ns[MAX_ROUNDS];	/* the eviction call(s) alone */
	uint64_t faults, space_faults;
};

static int upage_setup(struct method *m, size_t pool)
{
	int ret;

	m->fd = upage_open(O_CLOEXEC);
	if (m->fd < 0) {
		printf("FAIL: open /dev/upage: %s\n", strerror(-m->fd));
		return -1;
	}
	ret = upage_resize(m->fd, pool, NULL);
	if (ret) {
		printf("FAIL: resize to %zu: %s\n", pool, strerror(-ret));
		return -1;
	}
	m->base = mmap(NULL, pool * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED,
		       m->fd, 0);
	m->ops = calloc(pool, sizeof(*m->ops));
	return m->base == MAP_FAILED || !m->ops ? -1 : 0;
}

static int upage_discard_batch(struct method *m, const size_t *victims,
			       size_t b)
{
	uint32_t idx = UINT32_MAX;
	int ret;

	for (size_t i = 0; i < b; i++)
		m->ops[i] = (struct upage_edit_op){
			.op = UPAGE_OP_DISCARD, .dst = victims[i], .n = 1,
		};
	ret = upage_edit(m->fd, m->ops, b, &idx);
	if (ret)
		printf("FAIL: %s: UPAGE_EDIT of %zu discards: %s (op %u)\n",
		       m->name, b, strerror(-ret), idx);
	return ret;
}

/* Private anonymous memory, without transparent huge pages. */
static int anon_setup(struct method *m, size_t pool)
{
	m->base = mmap(NULL, pool * PAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m->base == MAP_FAILED)
		return -1;
	madvise(m->base, pool * PAGE, MADV_NOHUGEPAGE);
	return 0;
}

static int dontneed_each(struct method *m, const size_t *victims, size_t b)
{
	for (size_t i = 0; i < b; i++) {
		if (madvise(page_at(m->base, victims[i]), PAGE,
			    MADV_DONTNEED)) {
			printf("FAIL: %s: page %zu: %s\n", m->name, victims[i],
			       strerror(errno));
			return -1;
		}
	}
	return 0;
}

static int memfd_setup(struct method *m, size_t pool)
{
	m->fd = memfd_create("bench-evict", MFD_CLOEXEC);
	if (m->fd < 0 || ftruncate(m->fd, pool * PAGE))
		return -1;
	m->base = mmap(NULL, pool * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED,
		       m->fd, 0);
	return m->base == MAP_FAILED ? -1 : 0;
}

static int punch_each(struct method *m, const size_t *victims, size_t b)
{
	const int mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;

	for (size_t i = 0; i < b; i++) {
		if (fallocate(m->fd, mode, victims[i] * PAGE, PAGE)) {
			printf("FAIL: %s: page %zu: %s\n", m->name, victims[i],
			       strerror(errno));
			return -1;
		}
	}
	return 0;
}

static void teardown(struct method *m)
{
	if (m->base && m->base != MAP_FAILED)
		munmap(m->base, m->pool * PAGE);
	if (m->fd >= 0)
		close(m->fd);
	free(m->ops);
	free(m->gen);
	free(m->evicted);
	m->base = NULL;
	m->fd = -1;
	m->ops = NULL;
	m->gen = NULL;
	m->evicted = NULL;
}

/* A pool of @pool pages, every one loaded (generation 0), so mapped. */
static int setup(struct method *m, size_t pool)
{
	m->fd = -1;
	m->pool = pool;
	m->gen = calloc(pool, sizeof(*m->gen));
	m->evicted = calloc(pool, 1);
	if (!m->gen || !m->evicted || m->setup(m, pool)) {
		printf("FAIL: %s: a pool of %zu pages: %s\n", m->name, pool,
		       strerror(errno));
		teardown(m);
		return -1;
	}
	for (size_t j = 0; j < pool; j++)
		load(m->base, j, 0);
	return 0;
}

/*
 * Use the pool: read every page once. An evicted page must read zeros
 * (its first and last word: they are on the same page) and is loaded
 * again; any other page must hold its stamp. Returns the number of wrong
 * pages; which ones, verify() tells.
 */
static size_t use(struct method *m)
{
	size_t wrong = 0;

	for (size_t j = 0; j < m->pool; j++) {
		volatile uint64_t *w = page_at(m->base, j);

		if (m->evicted[j]) {
			wrong += w[0] != 0 || w[WORDS - 1] != 0;
			m->gen[j]++;
			load(m->base, j, m->gen[j]);
		} else {
			wrong += w[0] != stamp(j, m->gen[j]);
		}
	}
	return wrong;
}

/* Untimed, after a round: every page holds its latest stamp. */
static int verify(struct method *m, size_t b)
{
	for (size_t j = 0; j < m->pool; j++) {
		uint64_t *w = page_at(m->base, j);
		uint64_t want = stamp(j, m->gen[j]);

		if (w[0] != want || w[WORDS - 1] != want) {
			printf("FAIL: %s: pool %zu, B=%zu: page %zu holds %#llx/%#llx, expected %#llx\n",
			       m->name, m->pool, b, j, (unsigned long long)w[0],
			       (unsigned long long)w[WORDS - 1],
			       (unsigned long long)want);
			return -1;
		}
	}
	return 0;
}

/* One round of @m: evict @victims, use the pool, check it. */
static int round_of(struct method *m, int r, const size_t *victims, size_t b)
{
	struct upage_stats s0 = { 0 }, s1 = { 0 };
	uint64_t t0, f0;
	size_t wrong;
	int is_upage = m->ops != NULL;

	for (size_t i = 0; i < b; i++)
		m->evicted[victims[i]] = 1;
	if (is_upage && upage_stats(m->fd, &s0))
		return -1;
	f0 = minflt();
	t0 = now_ns();
	if (m->evict(m, victims, b))
		return -1;
	m->call_ns[r] = now_ns() - t0;
	wrong = use(m);
	m->ns[r] = now_ns() - t0;
	m->faults += minflt() - f0;
	if (is_upage) {
		if (upage_stats(m->fd, &s1))
			return -1;
		m->space_faults += s1.out_faults - s0.out_faults;
	}
	for (size_t i = 0; i < b; i++)
		m->evicted[victims[i]] = 0;
	if (wrong) {
		printf("FAIL: %s: pool %zu, B=%zu, round %d: %zu pages read wrong (an evicted page not zero, or a kept page not its stamp)\n",
		       m->name, m->pool, b, r, wrong);
		return -1;
	}
	return verify(m, b);
}

/* B distinct pages of the pool, in random order. */
static void pick(size_t *victims, size_t b, size_t pool, uint64_t *rng,
		 unsigned char *taken)
{
	for (size_t i = 0; i < b; i++) {
		size_t p;

		do {
			*rng ^= *rng << 13;
			*rng ^= *rng >> 7;
			*rng ^= *rng << 17;
			p = *rng % pool;
		} while (taken[p]);
		taken[p] = 1;
		victims[i] = p;
	}
	for (size_t i = 0; i < b; i++)
		taken[victims[i]] = 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double median(uint64_t *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

static void row(struct method *m, size_t b, double ref_ns)
{
	double med = median(m->ns, rounds) / b;

	printf("| %s | %zu | %zu | %.0f | %.0f | %.0f | %.2f",
	       m->name, m->pool, b, med, (double)m->ns[0] / b,
	       (double)m->ns[rounds - 1] / b, (double)m->faults / rounds / b);
	if (m->ops)
		printf(" (space: %.2f)",
		       (double)m->space_faults / rounds / b);
	printf(" | %.2fx | %.0f |\n", med / ref_ns,
	       median(m->call_ns, rounds) / b);
}

/* Every batch size on pools of @pool pages; 0 if every page was right. */
static int bench_pool(struct method *methods, size_t nr, size_t pool)
{
	size_t *victims = calloc(pool, sizeof(*victims));
	unsigned char *taken = calloc(pool, 1);
	uint64_t rng = 0x9e3779b97f4a7c15ULL ^ pool;
	int bad = 0;

	if (!victims || !taken)
		goto fail;
	for (size_t i = 0; i < nr; i++)
		if (setup(&methods[i], pool))
			goto fail;
	for (size_t k = 0; k < NR_BATCHES; k++) {
		size_t b = batches[k];

		/* A batch of more than a quarter of the pool is no eviction. */
		if (b > pool / 4)
			continue;
		for (size_t i = 0; i < nr; i++)
			methods[i].faults = methods[i].space_faults = 0;
		for (int r = 0; r < rounds; r++) {
			pick(victims, b, pool, &rng, taken);
			for (size_t i = 0; i < nr; i++)
				if (round_of(&methods[i], r, victims, b))
					goto fail;
		}
		/* methods[1] is madvise, the reference. */
		{
			double ref = median(methods[1].ns, rounds) / b;

			for (size_t i = 0; i < nr; i++)
				row(&methods[i], b, ref);
		}
	}
	goto out;
fail:
	bad = 1;
out:
	for (size_t i = 0; i < nr; i++)
		teardown(&methods[i]);
	free(victims);
	free(taken);
	return bad;
}

int main(int argc, char **argv)
{
	struct method methods[] = {
		{ .name = "upage: 1 EDIT of B DISCARDs", .setup = upage_setup,
		  .evict = upage_discard_batch },
		{ .name = "madvise: B MADV_DONTNEED", .setup = anon_setup,
		  .evict = dontneed_each },
		{ .name = "memfd: B PUNCH_HOLE", .setup = memfd_setup,
		  .evict = punch_each },
	};
	const size_t nr = sizeof(methods) / sizeof(methods[0]);
	size_t pools[2] = { 4096, 16384 }, nr_pools = 2;
	uint64_t start = now_ns();
	struct utsname u;
	int opt, bad = 0;
	FILE *f;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt(argc, argv, "n:r:")) != -1) {
		switch (opt) {
		case 'n':
			pools[0] = strtoul(optarg, NULL, 0);
			nr_pools = 1;
			break;
		case 'r':
			rounds = atoi(optarg);
			break;
		default:
			goto usage;
		}
	}
	if (pools[0] < 4 || rounds < 1 || rounds > MAX_ROUNDS)
		goto usage;

	uname(&u);
	printf("upage-bench-evict: kernel %s", u.release);
	f = fopen("/sys/module/upage/parameters/unmap_gap_frames", "r");
	if (f) {
		unsigned int gap;

		if (fscanf(f, "%u", &gap) == 1)
			printf(", unmap_gap_frames %u", gap);
		fclose(f);
	}
	printf("\nevict B random pages of a hot pool, then read every page (evicted ones read 0 and are loaded again)\n");
	printf("ns per evicted page = (eviction + the pass over the pool) / B; %d rounds, methods alternating\n",
	       rounds);
	printf("faults = minor faults per evicted page (getrusage); space = UPAGE_STATS out_faults\n");
	printf("ratio = median / madvise's median (for upage, lower is better); call = the eviction call(s) alone, ns per evicted page\n\n");
	printf("| method | pool | B | ns/evicted median | min | max | faults/evicted | ratio | call |\n");
	printf("|---|---|---|---|---|---|---|---|---|\n");
	for (size_t p = 0; p < nr_pools; p++)
		bad |= bench_pool(methods, nr, pools[p]);
	printf("\ncontents checked after every round of every method: %s\n",
	       bad ? "WRONG or FAILED" : "all right");
	printf("total %.1f s\n", (now_ns() - start) / 1e9);
	return bad;

usage:
	fprintf(stderr, "usage: %s [-n POOL] [-r ROUNDS] (POOL >= 4, 1 <= ROUNDS <= %d)\n",
		argv[0], MAX_ROUNDS);
	return 2;
}
