// SPDX-License-Identifier: GPL-2.0
/*
 * bench-pageout: page-out and page-in of N pages under the program's
 * control, with upage and the ways a program has without it, taking turns
 * run by run (`make bench`), as BENCH lines (common.h): the cost of the
 * page-out, the page-in and one read of every page. Exits non-zero only if
 * a method gave wrong contents or a call failed.
 *
 *   upage evict + fault     UPAGE_RES_EVICT of the range to the space's
 *                           shmem store; page-in by touching every page
 *   upage evict + prefetch  the same, page-in by UPAGE_RES_PREFETCH of the
 *                           range, then the touch (minor faults only);
 *                           "+populate": UPAGE_RES_POPULATE maps them too
 *                           (no row where the module refuses the flag)
 *   pwrite + DONTNEED       private anonymous memory: one pwrite() of the
 *                           range to a memfd (tmpfs, as upage's store), then
 *                           MADV_DONTNEED; page-in by one pread() back,
 *                           then the touch
 *   MADV_PAGEOUT            private anonymous memory paged out to swap
 *                           (zram in the guest); page-in by the touch. Only
 *                           where swap is on; it reports how much went out.
 *
 * Every page is rewritten before each page-out (not timed), with
 * incompressible contents, so every method writes every page.
 *
 * usage: bench-pageout [-t] [-n PAGES] [-r RUNS]
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

#include "common.h"

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

static size_t pages;

/* Round @round's contents: a different xorshift stream per page. */
static void fill(char *base, int round)
{
	for (size_t j = 0; j < pages; j++) {
		uint64_t *w = (uint64_t *)(base + j * PAGE);
		uint64_t x = (j + 1) * 0x9e3779b97f4a7c15ULL + round;

		for (size_t k = 0; k < WORDS; k++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			w[k] = x;
		}
	}
}

static int check(const char *what, char *base, int round)
{
	for (size_t j = 0; j < pages; j++) {
		uint64_t *w = (uint64_t *)(base + j * PAGE);
		uint64_t x = (j + 1) * 0x9e3779b97f4a7c15ULL + round;

		for (size_t k = 0; k < WORDS; k++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			if (w[k] != x) {
				fprintf(stderr, "%s: page %zu word %zu wrong\n",
					what, j, k);
				return -1;
			}
		}
	}
	return 0;
}

static void touch(char *base)
{
	uint64_t sum = 0;

	for (size_t j = 0; j < pages; j++)
		sum += *(volatile uint64_t *)(base + j * PAGE);
	bench_sink = sum;
}

struct method {
	struct bench_method bm;
	int (*out)(struct method *m);
	int (*in)(struct method *m);
	int space;
	char *base;
	int fd;
	int round;
	size_t paged_out;	/* pages found gone after out(), last run */
	struct upage_stats s0;	/* the space's counters before the runs */
};

static int upage_evict_all(struct method *m)
{
	uint64_t done = 0;
	int ret = upage_evict(m->fd, 0, pages, &done);

	if (!ret && done != pages)
		return bench_fail("evict wrote %llu of %zu frames",
				  (unsigned long long)done, pages);
	return ret;
}

static int touch_in(struct method *m)
{
	touch(m->base);
	return 0;
}

static int prefetch_in(struct method *m, uint32_t flags)
{
	uint64_t done = 0;
	int ret = bench_prefetch(m->fd, 0, pages, flags, &done);

	if (!ret && done != pages)
		return bench_fail("prefetch read %llu of %zu frames",
				  (unsigned long long)done, pages);
	touch(m->base);
	return ret;
}

static int upage_prefetch_in(struct method *m)
{
	return prefetch_in(m, 0);
}

static int upage_prefetch_pop_in(struct method *m)
{
	return prefetch_in(m, UPAGE_RES_POPULATE);
}

static int pwrite_out(struct method *m)
{
	if (pwrite(m->fd, m->base, pages * PAGE, 0) != (ssize_t)(pages * PAGE))
		return -EIO;
	return madvise(m->base, pages * PAGE, MADV_DONTNEED) ? -errno : 0;
}

static int pread_in(struct method *m)
{
	if (pread(m->fd, m->base, pages * PAGE, 0) != (ssize_t)(pages * PAGE))
		return -EIO;
	touch(m->base);
	return 0;
}

static int pageout_out(struct method *m)
{
	return madvise(m->base, pages * PAGE, MADV_PAGEOUT) ? -errno : 0;
}

/* Pages of @m not resident now (mincore). */
static size_t gone(struct method *m)
{
	unsigned char *vec = malloc(pages);
	size_t n = 0;

	if (!vec || mincore(m->base, pages * PAGE, vec)) {
		free(vec);
		return 0;
	}
	for (size_t j = 0; j < pages; j++)
		n += !(vec[j] & 1);
	free(vec);
	return n;
}

static int setup(struct method *m)
{
	if (m->space) {
		m->fd = bench_space(pages, &m->base);
		return m->fd < 0 ? -1 : 0;
	}
	m->fd = memfd_create("bench-pageout", MFD_CLOEXEC);
	if (m->fd < 0 || ftruncate(m->fd, pages * PAGE))
		return bench_fail("memfd: %s", strerror(errno));
	m->base = bench_map_anon(pages * PAGE, 0);
	return m->base ? 0 : bench_fail("mmap: %s", strerror(errno));
}

/* One run: new contents (untimed), page out, page in and read, check. */
static int once(struct bench_method *bm, uint64_t *ns)
{
	struct method *m = (struct method *)bm;
	uint64_t t0;
	int ret;

	fill(m->base, ++m->round);
	t0 = now_ns();
	ret = m->out(m);
	if (ret)
		return bench_fail("%s: page-out: %s", bm->name, strerror(-ret));
	*ns = now_ns() - t0;
	m->paged_out = m->space ? pages : gone(m);
	t0 = now_ns();
	ret = m->in(m);
	*ns += now_ns() - t0;
	if (ret)
		return bench_fail("%s: page-in: %s", bm->name, strerror(-ret));
	return check(bm->name, m->base, m->round);
}

static int swap_on(void)
{
	FILE *f = fopen("/proc/swaps", "r");
	char line[256];
	int lines = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		lines++;
	fclose(f);
	return lines > 1;
}

#define M(n, r, o, i, s) { .bm = { .name = n, .role = r, .once = once }, \
			   .out = o, .in = i, .space = s }

int main(int argc, char **argv)
{
	struct method methods[] = {
		M("upage evict + fault", "upage", upage_evict_all, touch_in, 1),
		M("upage evict + prefetch", "upage", upage_evict_all,
		  upage_prefetch_in, 1),
		M("upage evict + prefetch+populate", "upage", upage_evict_all,
		  upage_prefetch_pop_in, 1),
		M("pwrite + MADV_DONTNEED + pread", "peer", pwrite_out,
		  pread_in, 0),
		M("MADV_PAGEOUT + fault", "peer", pageout_out, touch_in, 0),
	};
	const int nr = sizeof(methods) / sizeof(methods[0]);
	struct bench_method bm[sizeof(methods) / sizeof(methods[0])];
	int failed = 0;
	char cas[64];

	setvbuf(stdout, NULL, _IOLBF, 0);
	bench_args(argc, argv, 4096, 16);
	pages = bench_pages;
	printf("# bench-pageout: %zu pages (%zu KiB), %d runs per row; every page read once after the page-in\n",
	       pages, pages * PAGE >> 10, bench_runs);
	methods[2].bm.skip = !bench_prefetch_populate_ok();
	if (!swap_on()) {
		printf("# pageout: MADV_PAGEOUT not run: no swap in this system\n");
		methods[4].bm.skip = 1;
	}
	for (int i = 0; i < nr; i++)
		if (!methods[i].bm.skip && setup(&methods[i]))
			failed = 1;
	for (int i = 0; i < nr; i++)
		if (methods[i].space && !methods[i].bm.skip &&
		    upage_stats(methods[i].fd, &methods[i].s0))
			failed = 1;
	/* In turns, run by run; the lines are printed below. */
	for (int r = 0; r < bench_runs && !failed; r++)
		for (int i = 0; i < nr && !failed; i++)
			if (!methods[i].bm.skip &&
			    once(&methods[i].bm, &methods[i].bm.t[r]))
				failed = 1;
	snprintf(cas, sizeof(cas), "pages=%zu out+in+read", pages);
	for (int i = 0; i < nr && !failed; i++) {
		double v[MAX_RUNS];

		bm[i] = methods[i].bm;
		if (bm[i].skip)
			continue;
		for (int r = 0; r < bench_runs; r++)
			v[r] = (double)bm[i].t[r] / pages;
		bench_line("pageout", cas, bm[i].name, bm[i].role, "ns/page",
			   v, bench_runs);
	}
	for (int i = 0; i < nr && !failed; i++) {
		struct upage_stats s1;

		if (!methods[i].space || methods[i].bm.skip ||
		    upage_stats(methods[i].fd, &s1))
			continue;
		printf("# faults pageout: %s: %.2f faults, %.2f PTEs populated per page\n",
		       methods[i].bm.name,
		       (double)(s1.out_faults - methods[i].s0.out_faults) /
		       ((double)pages * bench_runs),
		       (double)(s1.out_populated - methods[i].s0.out_populated) /
		       ((double)pages * bench_runs));
	}
	if (!methods[4].bm.skip)
		printf("# pageout: MADV_PAGEOUT left %zu of %zu pages out (last run)\n",
		       methods[4].paged_out, pages);
	for (int i = 0; i < nr; i++) {
		if (methods[i].base && methods[i].base != MAP_FAILED)
			munmap(methods[i].base, pages * PAGE);
		if (methods[i].fd > 0)
			close(methods[i].fd);
	}
	printf("# bench-pageout: contents checked after every run: %s\n",
	       failed ? "WRONG or FAILED" : "all right");
	return failed;
}
