// SPDX-License-Identifier: GPL-2.0
/* The helpers of common.h, shared by every program of tools/bench/. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

int bench_tiny;
int bench_runs = 9;
size_t bench_pages;
volatile uint64_t bench_sink;

void bench_args(int argc, char **argv, size_t default_pages,
		size_t tiny_pages)
{
	int opt;

	bench_pages = default_pages;
	while ((opt = getopt(argc, argv, "tr:n:")) != -1) {
		switch (opt) {
		case 't':
			bench_tiny = 1;
			bench_runs = 1;
			bench_pages = tiny_pages;
			break;
		case 'r':
			bench_runs = atoi(optarg);
			break;
		case 'n':
			bench_pages = strtoul(optarg, NULL, 0);
			break;
		default:
			goto usage;
		}
	}
	if (bench_runs >= 1 && bench_runs <= MAX_RUNS && bench_pages >= 1 &&
	    bench_pages <= (1UL << 18))
		return;
usage:
	fprintf(stderr, "usage: %s [-t] [-r RUNS (1..%d)] [-n PAGES]\n",
		argv[0], MAX_RUNS);
	exit(2);
}

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int bench_fail(const char *fmt, ...)
{
	va_list ap;

	printf("FAIL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	return -1;
}

#define FLUSH_BYTES (32UL << 20)

void bench_flush_caches(void)
{
	static char *buf;
	uint64_t sum = 0;

	if (!buf) {
		buf = bench_map_anon(FLUSH_BYTES, 0);
		if (!buf)
			return;
		memset(buf, 1, FLUSH_BYTES);
	}
	for (size_t i = 0; i < FLUSH_BYTES; i += 64)
		sum += *(volatile char *)(buf + i);
	bench_sink = sum;
}

void bench_pin_cpu0(const char *why)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(0, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		printf("# could not pin to CPU 0: %s\n", strerror(errno));
	else
		printf("# pinned to CPU 0: %s\n", why);
}

char *bench_map_anon(size_t len, int shared)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS |
		       MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	/* Page by page, as upage maps: no transparent huge pages. */
	madvise(p, len, MADV_NOHUGEPAGE);
	return p;
}

int bench_space(size_t pages, char **base)
{
	int fd = upage_open(O_CLOEXEC), ret;

	if (fd < 0)
		return bench_fail("open /dev/upage: %s", strerror(-fd));
	ret = upage_resize(fd, pages, NULL);
	if (ret) {
		close(fd);
		return bench_fail("resize to %zu: %s", pages, strerror(-ret));
	}
	*base = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED,
		     fd, 0);
	if (*base == MAP_FAILED) {
		close(fd);
		return bench_fail("mmap the space: %s", strerror(errno));
	}
	return fd;
}

int bench_edit(int fd, const struct upage_edit_op *ops, uint32_t count,
	       uint32_t flags)
{
	struct upage_edit e = {
		.size = sizeof(e),
		.flags = flags,
		.op_size = sizeof(*ops),
		.count = count,
		.ops = (uintptr_t)ops,
	};

	return ioctl(fd, UPAGE_EDIT, &e) ? -errno : 0;
}

int bench_prefetch(int fd, uint64_t first, uint64_t n, uint32_t flags,
		   uint64_t *done)
{
	struct upage_residency r = {
		.size = sizeof(r),
		.flags = flags,
		.op = UPAGE_RES_PREFETCH,
		.first = first,
		.n = n,
	};
	int ret = ioctl(fd, UPAGE_RESIDENCY, &r) ? -errno : 0;

	if (done)
		*done = r.out_frames;
	return ret;
}

/* -1 unknown, 0 refused, 1 taken */
static int edit_populate = -1, prefetch_populate = -1;

static int refused(int ret)
{
	return ret == -EINVAL || ret == -EOPNOTSUPP;
}

int bench_edit_populate_ok(void)
{
	struct upage_edit_op op = {
		.op = UPAGE_OP_SWAP, .dst = 0, .src = 1, .n = 1,
	};
	char *base;
	int fd, ret;

	if (edit_populate >= 0)
		return edit_populate;
	fd = bench_space(2, &base);
	if (fd < 0)
		return 0;
	ret = bench_edit(fd, &op, 1, UPAGE_EDIT_POPULATE);
	edit_populate = !ret;
	if (refused(ret))
		printf("# populate not supported: UPAGE_EDIT refuses UPAGE_EDIT_POPULATE (%s); no +populate rows\n",
		       strerror(-ret));
	else if (ret)
		bench_fail("UPAGE_EDIT with UPAGE_EDIT_POPULATE: %s",
			   strerror(-ret));
	munmap(base, 2 * PAGE);
	close(fd);
	return edit_populate;
}

int bench_prefetch_populate_ok(void)
{
	char *base;
	int fd, ret;

	if (prefetch_populate >= 0)
		return prefetch_populate;
	fd = bench_space(1, &base);
	if (fd < 0)
		return 0;
	base[0] = 1;
	ret = upage_evict(fd, 0, 1, NULL);
	if (!ret)
		ret = bench_prefetch(fd, 0, 1, UPAGE_RES_POPULATE, NULL);
	prefetch_populate = !ret;
	if (refused(ret))
		printf("# populate not supported: UPAGE_RES_PREFETCH refuses UPAGE_RES_POPULATE (%s); no +populate rows\n",
		       strerror(-ret));
	else if (ret)
		bench_fail("prefetch with UPAGE_RES_POPULATE: %s",
			   strerror(-ret));
	else if (base[0] != 1)
		prefetch_populate = !!bench_fail("populated prefetch lost the page's contents");
	munmap(base, PAGE);
	close(fd);
	return prefetch_populate;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double line_median;

void bench_line(const char *job, const char *cas, const char *method,
		const char *role, const char *unit, double *v, int n)
{
	double med;

	qsort(v, n, sizeof(*v), cmp_double);
	med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	line_median = med;
	printf("BENCH\t%s\t%s\t%s\t%s\t%s\t%.1f\t%.1f\t%.1f\t%d\n", job, cas,
	       method, role, unit, med, v[0], v[n - 1], n);
}

int bench_measure(const char *job, const char *cas, struct bench_method *m,
		  int nr, double per)
{
	double v[MAX_RUNS];

	for (int r = 0; r < bench_runs; r++) {
		for (int i = 0; i < nr; i++) {
			if (m[i].skip)
				continue;
			if (m[i].once(&m[i], &m[i].t[r])) {
				printf("FAIL: %s, %s: %s, run %d\n", job, cas,
				       m[i].name, r);
				return -1;
			}
		}
	}
	for (int i = 0; i < nr; i++) {
		if (m[i].skip)
			continue;
		for (int r = 0; r < bench_runs; r++)
			v[r] = m[i].t[r] / per;
		bench_line(job, cas, m[i].name, m[i].role, "ns/page", v,
			   bench_runs);
		m[i].median = line_median;
	}
	return 0;
}
