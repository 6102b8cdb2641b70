// SPDX-License-Identifier: GPL-2.0
/*
 * bench-fault: what a first access costs (issue 11's table):
 *
 *   first-touch  upage demand-zero fault on a hole of a MAP_SHARED space |
 *                anonymous first touch (MAP_PRIVATE|MAP_ANONYMOUS);
 *                "threads=T": T threads fault their share of the pages at
 *                once; "read" or "write" is the first access;
 *                "space=S": 256 pages spread over S, the rest holes
 *   cow-break    a write to a copy-on-write alias (UPAGE_OP_ALIAS_COW) |
 *                a write to a MAP_PRIVATE mapping of a file (memfd) page;
 *                "after a read": the page was read (mapped) first, so
 *                the write only breaks the sharing; "first access": the
 *                write is the page's first access
 *
 * Between runs (untimed) the pages go back: UPAGE_OP_DISCARD, a new
 * ALIAS_COW, or MADV_DONTNEED. After every run (untimed) every page is
 * checked: zeros where nothing was written, the written word, the copied
 * contents, the source of a copy unchanged.
 *
 * usage: bench-fault [-t] [-r RUNS] [-n PAGES]
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common.h"

#define MAX_THREADS 4

struct fctx {
	int upage;
	int cow;		/* cow-break, else first touch */
	int write;		/* first touch: write, else read */
	int read_first;		/* cow-break: read before the write */
	size_t n;		/* pages touched */
	size_t stride;
	int threads;
	int fd;			/* the space; the memfd of the peer */
	char *base;		/* the space; the peer's private mapping */
	char *file;		/* the peer's shared view of the memfd */
	size_t len;
	int round;
};

static uint64_t tag(size_t j)
{
	return 0x636f770000000000ULL + j;
}

/* The slot of page @j: spread over its stride, as bench-edit's slot(). */
static size_t slot(struct fctx *c, size_t j)
{
	return j * c->stride + (c->stride > 1 ? j * 97 % c->stride : 0);
}

static uint64_t *page(struct fctx *c, size_t j)
{
	/* cow-break: the alias (upage dst slots n..2n-1) or private page. */
	if (c->cow && c->upage)
		j += c->n;
	return (uint64_t *)(c->base + slot(c, j) * PAGE);
}

/* ---- the threads that fault at once ---- */

static struct {
	pthread_barrier_t start, end;
	pthread_t th[MAX_THREADS];
	struct fctx *c;
	int threads;
	int quit;
} pool;

static void touch_part(struct fctx *c, int k)
{
	size_t from = c->n * k / c->threads, to = c->n * (k + 1) / c->threads;
	uint64_t sum = 0;

	for (size_t j = from; j < to; j++) {
		volatile uint64_t *w = page(c, j);

		if (c->write || c->cow)
			*w = c->round;
		else
			sum += *w;
	}
	bench_sink += sum;
}

static void *worker(void *arg)
{
	int k = (int)(uintptr_t)arg;

	for (;;) {
		pthread_barrier_wait(&pool.start);
		if (pool.quit)
			return NULL;
		touch_part(pool.c, k);
		pthread_barrier_wait(&pool.end);
	}
}

static int pool_start(int threads)
{
	pool.threads = threads;
	pool.quit = 0;
	if (pthread_barrier_init(&pool.start, NULL, threads) ||
	    pthread_barrier_init(&pool.end, NULL, threads))
		return bench_fail("pthread_barrier_init");
	for (int k = 1; k < threads; k++)
		if (pthread_create(&pool.th[k], NULL, worker, (void *)(uintptr_t)k))
			return bench_fail("pthread_create");
	return 0;
}

static void pool_stop(void)
{
	pool.quit = 1;
	pthread_barrier_wait(&pool.start);
	for (int k = 1; k < pool.threads; k++)
		pthread_join(pool.th[k], NULL);
	pthread_barrier_destroy(&pool.start);
	pthread_barrier_destroy(&pool.end);
}

static void touch_all(struct fctx *c)
{
	if (c->threads == 1) {
		touch_part(c, 0);
		return;
	}
	pool.c = c;
	pthread_barrier_wait(&pool.start);
	touch_part(c, 0);
	pthread_barrier_wait(&pool.end);
}

/* ---- resetting and checking ---- */

static int reset(struct fctx *c)
{
	struct upage_edit_op *ops;
	int ret = 0;

	if (!c->upage) {
		if (madvise(c->base, c->len, MADV_DONTNEED))
			return bench_fail("MADV_DONTNEED: %s", strerror(errno));
	} else {
		ops = calloc(c->n, sizeof(*ops));
		if (!ops)
			return bench_fail("out of memory");
		for (size_t j = 0; j < c->n; j++)
			ops[j] = c->cow ?
				(struct upage_edit_op){ .op = UPAGE_OP_ALIAS_COW,
					.dst = c->n + j, .src = j, .n = 1 } :
				(struct upage_edit_op){ .op = UPAGE_OP_DISCARD,
					.dst = slot(c, j), .n = 1 };
		ret = bench_edit(c->fd, ops, c->n, 0);
		free(ops);
		if (ret)
			return bench_fail("UPAGE_EDIT reset: %s", strerror(-ret));
	}
	if (c->read_first)
		for (size_t j = 0; j < c->n; j++)
			bench_sink += *(volatile uint64_t *)page(c, j);
	return 0;
}

static int check(struct fctx *c)
{
	for (size_t j = 0; j < c->n; j++) {
		uint64_t *w = page(c, j);
		uint64_t first = c->write || c->cow ? (uint64_t)c->round : 0;
		uint64_t last = c->cow ? tag(j) : 0;
		uint64_t *src = c->cow ? (uint64_t *)((c->upage ? c->base :
					 c->file) + j * PAGE) : NULL;

		if (w[0] != first || w[WORDS - 1] != last)
			return bench_fail("page %zu holds %#llx/%#llx, not %#llx/%#llx",
					  j, (unsigned long long)w[0],
					  (unsigned long long)w[WORDS - 1],
					  (unsigned long long)first,
					  (unsigned long long)last);
		if (src && (src[0] != tag(j) || src[WORDS - 1] != tag(j)))
			return bench_fail("the write reached the source of page %zu", j);
	}
	return 0;
}

static int once(struct bench_method *m, uint64_t *ns)
{
	struct fctx *c = m->ctx;
	uint64_t t0;

	if (reset(c))
		return -1;
	c->round++;
	t0 = now_ns();
	touch_all(c);
	*ns = now_ns() - t0;
	return check(c);
}

static int setup(struct fctx *c)
{
	size_t pages = (c->cow && c->upage ? 2 : 1) * c->n * c->stride;

	c->len = pages * PAGE;
	c->fd = -1;
	if (c->upage) {
		c->fd = bench_space(pages, &c->base);
		if (c->fd < 0)
			return -1;
		if (c->cow)
			c->file = c->base;
	} else if (c->cow) {
		c->fd = memfd_create("bench-cow", MFD_CLOEXEC);
		if (c->fd < 0 || ftruncate(c->fd, c->len))
			return bench_fail("memfd: %s", strerror(errno));
		c->file = mmap(NULL, c->len, PROT_READ | PROT_WRITE, MAP_SHARED,
			       c->fd, 0);
		c->base = mmap(NULL, c->len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE, c->fd, 0);
		if (c->file == MAP_FAILED || c->base == MAP_FAILED)
			return bench_fail("mmap: %s", strerror(errno));
	} else {
		c->base = bench_map_anon(c->len, 0);
		if (!c->base)
			return bench_fail("mmap: %s", strerror(errno));
	}
	if (c->cow) {
		for (size_t j = 0; j < c->n; j++) {
			uint64_t *w = (uint64_t *)(c->file + j * PAGE);

			w[0] = tag(j);
			w[WORDS - 1] = tag(j);
		}
	}
	return 0;
}

static void teardown(struct fctx *c)
{
	if (c->file && c->file != MAP_FAILED && c->file != c->base)
		munmap(c->file, c->len);
	if (c->base && c->base != MAP_FAILED)
		munmap(c->base, c->len);
	if (c->fd >= 0)
		close(c->fd);
}

static int failed;

/* upage's and the peer's method on one case; upage's median in *@med. */
static void run_case(const char *job, const char *cas, struct fctx proto,
		     const char *up_name, const char *peer_name, double *med)
{
	struct fctx c[2] = { proto, proto };
	struct bench_method m[2] = {
		{ .name = up_name, .role = "upage", .once = once, .ctx = &c[0] },
		{ .name = peer_name, .role = "peer", .once = once, .ctx = &c[1] },
	};
	int ret;

	c[0].upage = 1;
	ret = setup(&c[0]) || setup(&c[1]);
	if (!ret && proto.threads > 1)
		ret = pool_start(proto.threads);
	if (!ret)
		ret = bench_measure(job, cas, m, 2, proto.n);
	if (proto.threads > 1)
		pool_stop();
	if (med)
		*med = m[0].median;
	teardown(&c[0]);
	teardown(&c[1]);
	if (ret)
		failed = 1;
}

int main(int argc, char **argv)
{
	static const size_t spaces_mib[] = { 1, 16, 256, 1024 };
	const char *dz = "upage demand-zero fault", *anon = "anonymous first touch";
	double med, at1 = 0, at_last = 0;
	int ns, cpus = sysconf(_SC_NPROCESSORS_ONLN);
	char cas[96];

	setvbuf(stdout, NULL, _IOLBF, 0);
	bench_args(argc, argv, 4096, 16);
	ns = bench_tiny ? 2 : 4;
	printf("# bench-fault: %zu pages per run, %d runs per row, %d CPUs\n",
	       bench_pages, bench_runs, cpus);
	for (int t = 1; t <= MAX_THREADS; t *= 2) {
		if (t > 1 && t > cpus) {
			printf("# first-touch: threads=%d not run: %d CPUs\n", t, cpus);
			continue;
		}
		for (int w = 1; w >= 0; w--) {
			if (t > 1 && !w)
				continue;
			snprintf(cas, sizeof(cas), "threads=%d %s", t,
				 w ? "write" : "read");
			run_case("first-touch", cas, (struct fctx){ .write = w,
				 .n = bench_pages, .stride = 1, .threads = t },
				 dz, anon, NULL);
		}
	}
	for (int s = 0; s < ns; s++) {
		size_t n = 256, slots = spaces_mib[s] << 8;

		snprintf(cas, sizeof(cas), "space=%zuMiB pages=%zu write",
			 spaces_mib[s], n);
		run_case("first-touch", cas, (struct fctx){ .write = 1, .n = n,
			 .stride = slots / n, .threads = 1 }, dz, anon, &med);
		if (!s)
			at1 = med;
		at_last = med;
	}
	if (at1 > 0)
		printf("# space slope: upage demand-zero fault, cost per op at %zu MiB / at 1 MiB = %.2f (target <= 1.2: %s)\n",
		       spaces_mib[ns - 1], at_last / at1,
		       at_last / at1 <= 1.2 ? "met" : "missed");
	for (int r = 1; r >= 0; r--) {
		snprintf(cas, sizeof(cas), "pages=%zu %s", bench_pages,
			 r ? "after a read" : "first access");
		run_case("cow-break", cas, (struct fctx){ .cow = 1,
			 .read_first = r, .n = bench_pages, .stride = 1,
			 .threads = 1 }, "upage write to a cow alias",
			 "write to a MAP_PRIVATE file page", NULL);
	}
	printf("# bench-fault: contents checked after every run: %s\n",
	       failed ? "WRONG or FAILED" : "all right");
	return failed;
}
