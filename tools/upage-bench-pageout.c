// SPDX-License-Identifier: GPL-2.0
/*
 * upage-bench-pageout: page-out and page-in of N pages under the program's
 * control, with upage and the ways a program has without it, measured in
 * the same run (`make bench`). Prints ns per page and each method's ratio
 * to the first; exits non-zero only if a method gave wrong contents or a
 * call failed.
 *
 *   upage evict + fault     UPAGE_RES_EVICT of the range to the space's
 *                           shmem store; page-in by touching every page
 *   upage evict + prefetch  the same, page-in by UPAGE_RES_PREFETCH of the
 *                           range, then the touch (minor faults only)
 *   pwrite + DONTNEED       private anonymous memory: one pwrite() of the
 *                           range to a memfd (tmpfs, as upage's store), then
 *                           MADV_DONTNEED; page-in by one pread() back
 *   MADV_PAGEOUT            private anonymous memory paged out to swap
 *                           (zram in the guest); page-in by the touch. Only
 *                           where swap is on; it reports how much went out.
 *
 * Every page is rewritten before each page-out (not timed), with
 * incompressible contents, so every method writes every page.
 *
 * usage: upage-bench-pageout [-n PAGES] [-r REPEATS]
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

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

#define PAGE 4096UL
#define WORDS (PAGE / sizeof(uint64_t))
#define MAX_REPEATS 51

static size_t pages = 4096;
static int repeats = 5;
static volatile uint64_t sink;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

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
	sink = sum;
}

struct method {
	const char *name;
	int (*out)(struct method *m);
	int (*in)(struct method *m);
	char *base;
	int fd;
	size_t paged_out;	/* pages found gone after out(), last round */
	double out_ns, in_ns;
	int skip;
};

static int upage_evict_all(struct method *m)
{
	return upage_evict(m->fd, 0, pages, NULL);
}

static int upage_touch_in(struct method *m)
{
	touch(m->base);
	return 0;
}

static int upage_prefetch_in(struct method *m)
{
	int ret = upage_prefetch(m->fd, 0, pages, NULL);

	touch(m->base);
	return ret;
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

static int setup(struct method *m, int space)
{
	if (space) {
		m->fd = upage_open(O_CLOEXEC);
		if (m->fd < 0 || upage_resize(m->fd, pages, NULL))
			return -1;
		m->base = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
			       MAP_SHARED, m->fd, 0);
	} else {
		m->fd = memfd_create("bench-pageout", MFD_CLOEXEC);
		if (m->fd < 0 || ftruncate(m->fd, pages * PAGE))
			return -1;
		m->base = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	}
	return m->base == MAP_FAILED ? -1 : 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double median_per_page(uint64_t *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return (double)v[n / 2] / pages;
}

static int run(struct method *m, int space)
{
	uint64_t t_out[MAX_REPEATS], t_in[MAX_REPEATS], t0;
	int r, ret;

	if (setup(m, space)) {
		fprintf(stderr, "%s: setup: %s\n", m->name, strerror(errno));
		return -1;
	}
	for (r = 0; r < repeats; r++) {
		fill(m->base, r);
		t0 = now_ns();
		ret = m->out(m);
		t_out[r] = now_ns() - t0;
		if (ret) {
			fprintf(stderr, "%s: page-out: %s\n", m->name,
				strerror(-ret));
			return -1;
		}
		m->paged_out = space ? pages : gone(m);
		t0 = now_ns();
		ret = m->in(m);
		t_in[r] = now_ns() - t0;
		if (ret) {
			fprintf(stderr, "%s: page-in: %s\n", m->name,
				strerror(-ret));
			return -1;
		}
		if (check(m->name, m->base, r))
			return -1;
	}
	m->out_ns = median_per_page(t_out, repeats);
	m->in_ns = median_per_page(t_in, repeats);
	munmap(m->base, pages * PAGE);
	close(m->fd);
	return 0;
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

int main(int argc, char **argv)
{
	struct method methods[] = {
		{ .name = "upage evict + fault", .out = upage_evict_all,
		  .in = upage_touch_in },
		{ .name = "upage evict + prefetch", .out = upage_evict_all,
		  .in = upage_prefetch_in },
		{ .name = "pwrite + DONTNEED + pread", .out = pwrite_out,
		  .in = pread_in },
		{ .name = "MADV_PAGEOUT + fault", .out = pageout_out,
		  .in = upage_touch_in },
	};
	const size_t nr = sizeof(methods) / sizeof(methods[0]);
	struct method *ref = &methods[0];
	int opt, failed = 0;

	while ((opt = getopt(argc, argv, "n:r:")) != -1) {
		if (opt == 'n')
			pages = strtoul(optarg, NULL, 0);
		else if (opt == 'r')
			repeats = atoi(optarg);
		else
			goto usage;
	}
	if (!pages || repeats < 1 || repeats > MAX_REPEATS)
		goto usage;

	methods[3].skip = !swap_on();
	printf("page-out and page-in of %zu pages (%zu MiB), median of %d, ns per page\n",
	       pages, pages * PAGE >> 20, repeats);
	printf("| method | page-out | page-in | both | pages paged out |\n");
	printf("|---|---|---|---|---|\n");
	for (size_t i = 0; i < nr; i++) {
		struct method *m = &methods[i];

		if (m->skip) {
			printf("| %s | (no swap) | | | |\n", m->name);
			continue;
		}
		if (run(m, i < 2)) {
			failed = 1;
			continue;
		}
		printf("| %s | %.0f (%.2fx) | %.0f (%.2fx) | %.0f (%.2fx) | %zu |\n",
		       m->name, m->out_ns, m->out_ns / ref->out_ns, m->in_ns,
		       m->in_ns / ref->in_ns, m->out_ns + m->in_ns,
		       (m->out_ns + m->in_ns) / (ref->out_ns + ref->in_ns),
		       m->paged_out);
	}
	return failed;

usage:
	fprintf(stderr, "usage: %s [-n PAGES] [-r REPEATS]\n", argv[0]);
	return 2;
}
