// SPDX-License-Identifier: GPL-2.0
/*
 * bench-gap: what the module parameter unmap_gap_frames trades
 * (issue 11: "measure flush vs refault and choose by it"). An edit
 * unmaps its changed slots run by run; with unmap_gap_frames = G it joins
 * two runs across at most G slots that hold frames, which saves an unmap
 * call (a walk of the space's VMAs and a TLB flush per VMA) and costs up
 * to G refaults of pages the edit did not change.
 *
 * A pool of POOL hot pages, every page mapped and stamped, evicts B
 * random pages per round with one UPAGE_EDIT of B UPAGE_OP_DISCARD ops,
 * then reads every page once and loads the evicted ones again (as a
 * buffer manager does). The round is timed whole and divided by B; the
 * space's own fault count (UPAGE_STATS) gives the faults per evicted
 * page. The same round on private anonymous memory with one
 * MADV_DONTNEED per page is the peer, alternated round by round. Every
 * page of both pools is checked after every round (exit 1 if one is
 * wrong). Needs root (it writes /sys/module/upage/parameters/); it puts
 * the parameter back when it is done.
 *
 * Prints BENCH lines (docs/bench/README.md): job unmap-gap, one case per G.
 *
 * usage: bench-gap [-t] [-n POOL] [-b B] [-r ROUNDS] [-g G,G,...]
 * (-t: the tiny run of make check, a pool of 64 pages, batches of 8, one
 * round, gaps 0 and 4)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "upage.h"

#define PAGE 4096UL
#define PARAM "/sys/module/upage/parameters/unmap_gap_frames"
#define MAX_ROUNDS 101
#define MAX_GAPS 16

static size_t pool = 4096, batch = 64;
static int rounds = 15;
static unsigned int gaps[MAX_GAPS] = { 0, 1, 2, 4, 8, 16, 64 };
static int nr_gaps = 7;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t stamp(size_t page, uint32_t gen)
{
	return 0x6761700000000000ULL ^ ((uint64_t)gen << 32) ^ (page + 1);
}

static int param(unsigned int *get, const unsigned int *set)
{
	FILE *f = fopen(PARAM, set ? "w" : "r");
	int ok;

	if (!f)
		return -1;
	ok = set ? fprintf(f, "%u\n", *set) > 0 : fscanf(f, "%u", get) == 1;
	return fclose(f) || !ok ? -1 : 0;
}

static uint64_t faults(int fd)
{
	struct upage_stats st;

	return upage_stats(fd, &st) ? 0 : st.out_faults;
}

/* B distinct random pages of the pool. */
static void pick(size_t *victims, uint32_t *seed)
{
	size_t i, j;

	for (i = 0; i < batch; i++) {
again:
		*seed = *seed * 1103515245 + 12345;
		victims[i] = (*seed >> 8) % pool;
		for (j = 0; j < i; j++)
			if (victims[j] == victims[i])
				goto again;
	}
}

/*
 * Use the pool after an eviction: read every page (an evicted one must
 * read 0) and load the evicted ones again. Returns -1 on a wrong page.
 */
static int use_pool(volatile uint64_t *base, uint32_t *gen, uint32_t round)
{
	size_t i;

	for (i = 0; i < pool; i++) {
		volatile uint64_t *w = base + i * (PAGE / 8);
		uint64_t v = *w;

		if (v == stamp(i, gen[i]))
			continue;
		if (v != 0)
			return -1;
		gen[i] = round;
		*w = stamp(i, round);
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *method, const char *role, const char *unit,
		   unsigned int gap, uint64_t *v, int n, double div)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	printf("BENCH\tunmap-gap\tpool=%zu batch=%zu gap=%u\t%s\t%s\t%s\t%.2f\t%.2f\t%.2f\t%d\n",
	       pool, batch, gap, method, role, unit, v[n / 2] / div,
	       v[0] / div, v[n - 1] / div, n);
}

static int parse_gaps(char *s)
{
	char *tok;

	nr_gaps = 0;
	for (tok = strtok(s, ","); tok && nr_gaps < MAX_GAPS;
	     tok = strtok(NULL, ","))
		gaps[nr_gaps++] = strtoul(tok, NULL, 0);
	return nr_gaps ? 0 : -1;
}

int main(int argc, char **argv)
{
	uint64_t up_ns[MAX_ROUNDS], up_flt[MAX_ROUNDS], an_ns[MAX_ROUNDS];
	struct upage_edit_op *ops;
	uint32_t *gen_u, *gen_a, seed = 1;
	unsigned int saved;
	uint64_t *u, *a;
	size_t *victims, i;
	int opt, fd, g, r;

	while ((opt = getopt(argc, argv, "tn:b:r:g:")) != -1) {
		switch (opt) {
		case 't':
			pool = 64;
			batch = 8;
			rounds = 1;
			gaps[0] = 0;
			gaps[1] = 4;
			nr_gaps = 2;
			break;
		case 'n': pool = strtoul(optarg, NULL, 0); break;
		case 'b': batch = strtoul(optarg, NULL, 0); break;
		case 'r': rounds = atoi(optarg); break;
		case 'g':
			if (parse_gaps(optarg))
				goto usage;
			break;
		default:
			goto usage;
		}
	}
	if (pool < 2 || !batch || batch > pool || rounds < 1 ||
	    rounds > MAX_ROUNDS)
		goto usage;
	if (param(&saved, NULL)) {
		fprintf(stderr, "bench-gap: cannot read %s: %s\n", PARAM,
			strerror(errno));
		return 2;
	}
	fd = upage_open(O_CLOEXEC);
	if (fd < 0 || upage_resize(fd, pool, NULL)) {
		fprintf(stderr, "bench-gap: no space: %s\n",
			strerror(fd < 0 ? -fd : errno));
		return 2;
	}
	u = mmap(NULL, pool * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	a = mmap(NULL, pool * PAGE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ops = calloc(batch, sizeof(*ops));
	victims = calloc(batch, sizeof(*victims));
	gen_u = calloc(pool, sizeof(*gen_u));
	gen_a = calloc(pool, sizeof(*gen_a));
	if (u == MAP_FAILED || a == MAP_FAILED || !ops || !victims || !gen_u ||
	    !gen_a) {
		fprintf(stderr, "bench-gap: out of memory\n");
		return 2;
	}
	for (i = 0; i < pool; i++) {
		u[i * (PAGE / 8)] = stamp(i, 0);
		a[i * (PAGE / 8)] = stamp(i, 0);
	}
	printf("# bench-gap: pool %zu pages, batches of %zu, %d rounds per gap\n",
	       pool, batch, rounds);
	for (g = 0; g < nr_gaps; g++) {
		if (param(NULL, &gaps[g])) {
			fprintf(stderr, "bench-gap: cannot set %s\n", PARAM);
			goto fail;
		}
		for (r = 0; r < rounds; r++) {
			uint32_t round = (uint32_t)(g * MAX_ROUNDS + r + 1);
			uint64_t t, f;

			pick(victims, &seed);
			for (i = 0; i < batch; i++)
				ops[i] = (struct upage_edit_op){
					.op = UPAGE_OP_DISCARD,
					.dst = victims[i], .n = 1 };
			f = faults(fd);
			t = now_ns();
			if (upage_edit(fd, ops, batch, NULL) ||
			    use_pool(u, gen_u, round)) {
				fprintf(stderr, "bench-gap: upage pool wrong (gap %u, round %d)\n",
					gaps[g], r);
				goto fail;
			}
			up_ns[r] = now_ns() - t;
			up_flt[r] = faults(fd) - f;

			t = now_ns();
			for (i = 0; i < batch; i++)
				madvise((char *)a + victims[i] * PAGE, PAGE,
					MADV_DONTNEED);
			if (use_pool(a, gen_a, round)) {
				fprintf(stderr, "bench-gap: madvise pool wrong\n");
				goto fail;
			}
			an_ns[r] = now_ns() - t;
		}
		report("upage discard batch", "upage", "ns/page", gaps[g], up_ns,
		       rounds, (double)batch);
		report("madvise DONTNEED", "peer", "ns/page", gaps[g], an_ns,
		       rounds, (double)batch);
		report("upage discard batch", "upage", "faults/evict", gaps[g],
		       up_flt, rounds, (double)batch);
	}
	param(NULL, &saved);
	printf("# bench-gap: every page of both pools right after every round\n");
	return 0;
fail:
	param(NULL, &saved);
	return 1;
usage:
	fprintf(stderr, "usage: bench-gap [-t] [-n POOL] [-b B] [-r ROUNDS] [-g G,G,...]\n");
	return 2;
}
