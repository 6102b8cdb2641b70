// SPDX-License-Identifier: GPL-2.0
/*
 * bench-edit: the edits of a page table, upage's UPAGE_EDIT against what a
 * program does without it (issue 11's table, first four rows):
 *
 *   swap     upage swap batch (with and without populate) | memcpy through
 *            a bounce page; 3 mremap(MREMAP_FIXED) through a spare page
 *   alias    upage alias batch | memfd + mmap(MAP_FIXED) per page
 *   move     upage move batch | mremap(MREMAP_FIXED) per page
 *   protect  upage protect batch | mprotect per page (and the VMAs it
 *            leaves)
 *
 * A run edits N pages (N pairs for swap) in UPAGE_EDIT calls of "batch"
 * ops, then pays what the program pays before it uses the result: it reads
 * ("read") or rewrites ("write") one word of every page it changed, in
 * every mapping process ("procs=P": P-1 children do the same after it,
 * in turn on one CPU, each reading every page and checking it). "hot": a
 * small buffer (64 pages or pairs, or the batch) edited and used again and
 * again within a run; "cold": a buffer of 4x -n (or the batch), and a
 * 32 MiB buffer read before each run (untimed), so that nothing of theirs
 * is in the caches. "space=S":
 * the pairs lie spread over a space (or anonymous mapping) of S, the rest
 * holes. Every run is checked untimed (every page's tag; the slots'
 * protection by UPAGE_QUERY; the VMAs mprotect left).
 *
 * usage: bench-edit [-t] [-r RUNS] [-n PAGES]
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

enum job { SWAP, ALIAS, MOVE, PROTECT };
enum kind { UP, UP_POP, MEMCPY, MREMAP, MEMFD, MPROTECT };

static const char *const job_name[] = { "swap", "alias", "move", "protect" };

#define MAX_PROCS 4

struct ectx {
	enum job job;
	enum kind kind;
	size_t n;		/* pages (pairs for swap) edited per run */
	size_t batch;		/* ops per UPAGE_EDIT */
	size_t stride;		/* slots between the pages used */
	int touch;		/* 0: none, 1: read, 2: write */
	int cold;
	int procs;
	int reps;		/* edits (and uses) per timed run */
	int fd;			/* the space, or the alias peer's memfd */
	char *base;
	size_t len;
	char *spare;		/* bounce page; alias peer's second range */
	struct upage_edit_op *ops[2];
	int parity;		/* runs done, mod 2 */
	pid_t pid[MAX_PROCS];
	int to[MAX_PROCS], from[MAX_PROCS];
};

static uint64_t tag(size_t j)
{
	return 0x7570616765000000ULL + j;
}

/*
 * The slot of page @j of the layout (see layout_pages()). In a sparse
 * layout each page lies somewhere in its stride, not at its start: pages
 * a power of two apart would all land in one set of a TLB (TCG's is
 * direct-mapped) and measure that instead.
 */
static size_t slot(struct ectx *c, size_t j)
{
	return j * c->stride + (c->stride > 1 ? j * 97 % c->stride : 0);
}

static uint64_t *pg(struct ectx *c, size_t j)
{
	return (uint64_t *)(c->base + slot(c, j) * PAGE);
}

/*
 * Layouts. swap: pairs j and n+j. alias: sources j and n+j, the second
 * address 2n+j. move: j and n+j. protect: 2j protected, 2j+1 not.
 */
static size_t layout_pages(struct ectx *c)
{
	return (c->job == ALIAS ? 3 : 2) * c->n * c->stride;
}

/* The page @c's run left in place of what page @j held, or -1. */
static size_t expected(struct ectx *c, size_t j)
{
	size_t n = c->n;

	switch (c->job) {
	case SWAP:
		return !c->parity ? j : j < n ? j + n : j - n;
	case MOVE:
		if (c->parity)
			return j >= n ? j - n : (size_t)-1;
		return j < n ? j : (size_t)-1;
	default:
		return j;
	}
}

/* The pages a run changes, which the program then uses: [first, first+n). */
static size_t used_first(struct ectx *c, size_t *count)
{
	*count = c->job == SWAP ? 2 * c->n : c->n;
	switch (c->job) {
	case ALIAS:
		return 2 * c->n;
	case MOVE:
		return c->parity ? c->n : 0;
	default:
		return 0;
	}
}

static uint64_t *used_page(struct ectx *c, size_t first, size_t k)
{
	if (c->job == PROTECT)
		return pg(c, 2 * k);
	if (c->job == ALIAS && c->kind == MEMFD)
		return (uint64_t *)(c->spare + k * PAGE);
	return pg(c, first + k);
}

static void touch(struct ectx *c)
{
	size_t count, first = used_first(c, &count);
	uint64_t sum = 0;

	for (size_t k = 0; k < count; k++) {
		volatile uint64_t *w = used_page(c, first, k);

		if (c->touch == 2)
			*w = *w;
		else
			sum += *w;
	}
	bench_sink = sum;
}

/* Check every page the run left; 0 or -1 with a FAIL line. */
static int verify(struct ectx *c)
{
	size_t count, first = used_first(c, &count);

	if (c->job == ALIAS) {
		for (size_t k = 0; k < count; k++) {
			uint64_t want = tag(c->parity ? c->n + k : k);

			if (used_page(c, first, k)[0] != want)
				return bench_fail("alias: page %zu shows %#llx, not %#llx",
						  k, (unsigned long long)used_page(c, first, k)[0],
						  (unsigned long long)want);
		}
		return 0;
	}
	for (size_t k = 0; k < count; k++) {
		size_t j = c->job == PROTECT ? 2 * k : first + k;
		size_t want = expected(c, j);
		uint64_t *w = used_page(c, first, k);

		if (w[0] != tag(want) || w[WORDS - 1] != tag(want))
			return bench_fail("%s: page %zu holds %#llx/%#llx, not %#llx",
					  job_name[c->job], j, (unsigned long long)w[0],
					  (unsigned long long)w[WORDS - 1],
					  (unsigned long long)tag(want));
	}
	return 0;
}

/* The VMAs of /proc/self/maps inside [p, p + len). */
static int count_vmas(char *p, size_t len)
{
	FILE *f = fopen("/proc/self/maps", "r");
	unsigned long lo, hi;
	char line[512];
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 &&
		    lo >= (uintptr_t)p && hi <= (uintptr_t)p + len)
			n++;
	fclose(f);
	return n;
}

static int verify_protect(struct ectx *c)
{
	struct upage_slot_info *info;
	int ret, vmas;

	if (c->kind == MPROTECT) {
		/* Read-only and writable pages alternate: one VMA each. */
		vmas = count_vmas(c->base, c->len);
		if (c->parity && vmas != (int)(2 * c->n))
			return bench_fail("mprotect left %d VMAs, not %zu", vmas,
					  2 * c->n);
		return 0;
	}
	info = calloc(2 * c->n, sizeof(*info));
	if (!info)
		return bench_fail("out of memory");
	ret = upage_query(c->fd, 0, 2 * c->n, info);
	for (size_t j = 0; !ret && j < 2 * c->n; j++) {
		uint32_t want = c->parity && !(j % 2) ? UPAGE_PROT_READ :
			UPAGE_PROT_RW;

		if (info[j].prot != want)
			ret = bench_fail("protect: slot %zu has prot %u, not %u",
					 j, info[j].prot, want);
	}
	free(info);
	return ret < -1 ? bench_fail("UPAGE_QUERY: %s", strerror(-ret)) : ret;
}

/* ---- the edits ---- */

static int edit_up(struct ectx *c)
{
	uint32_t flags = c->kind == UP_POP ? UPAGE_EDIT_POPULATE : 0;
	struct upage_edit_op *ops = c->ops[c->parity];

	for (size_t i = 0; i < c->n; i += c->batch) {
		size_t k = c->n - i < c->batch ? c->n - i : c->batch;
		int ret = bench_edit(c->fd, ops + i, k, flags);

		if (ret)
			return bench_fail("UPAGE_EDIT of %zu %s ops: %s", k,
					  job_name[c->job], strerror(-ret));
	}
	return 0;
}

static int edit_memcpy(struct ectx *c)
{
	for (size_t i = 0; i < c->n; i++) {
		char *a = (char *)pg(c, i), *b = (char *)pg(c, c->n + i);

		memcpy(c->spare, a, PAGE);
		memcpy(a, b, PAGE);
		memcpy(b, c->spare, PAGE);
	}
	/* Keep the compiler from dropping the copies into the bounce page. */
	__asm__ volatile("" : : "r"(c->spare) : "memory");
	return 0;
}

static int remap(void *from, void *to)
{
	return mremap(from, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, to) ==
	       MAP_FAILED ? bench_fail("mremap: %s", strerror(errno)) : 0;
}

static int edit_mremap(struct ectx *c)
{
	for (size_t i = 0; i < c->n; i++) {
		char *a = (char *)pg(c, i), *b = (char *)pg(c, c->n + i);

		if (c->job == MOVE) {
			if (c->parity ? remap(b, a) : remap(a, b))
				return -1;
		} else if (remap(a, c->spare) || remap(b, a) ||
			   remap(c->spare, b)) {
			return -1;
		}
	}
	return 0;
}

static int edit_memfd(struct ectx *c)
{
	size_t src = c->parity ? 0 : c->n;

	for (size_t i = 0; i < c->n; i++)
		if (mmap(c->spare + i * PAGE, PAGE, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_FIXED, c->fd, (src + i) * PAGE) ==
		    MAP_FAILED)
			return bench_fail("mmap(MAP_FIXED): %s", strerror(errno));
	return 0;
}

static int edit_mprotect(struct ectx *c)
{
	int prot = c->parity ? PROT_READ | PROT_WRITE : PROT_READ;

	for (size_t i = 0; i < c->n; i++)
		if (mprotect(pg(c, 2 * i), PAGE, prot))
			return bench_fail("mprotect: %s", strerror(errno));
	return 0;
}

/* ---- mapping processes: children that read every page after each run ---- */

/* The methods of the case being run: a child drops the others' mappings. */
static struct ectx *case_ctx;
static int case_nr;

static void child_loop(struct ectx *c, int to, int from)
{
	char b;

	for (int i = 0; i < case_nr; i++) {
		struct ectx *o = &case_ctx[i];

		if (o == c)
			continue;
		if (o->base && o->base != MAP_FAILED)
			munmap(o->base, o->len);
		if (o->fd >= 0)
			close(o->fd);
	}

	while (read(to, &b, 1) == 1 && b != 'q') {
		int bad = 0;

		/* '0' + parity, + 2 to write each word back after reading it. */
		c->parity = (b - '0') & 1;
		for (size_t j = 0; j < 2 * c->n; j++) {
			volatile uint64_t *w = pg(c, j);

			bad |= *w != tag(expected(c, j));
			if ((b - '0') & 2)
				*w = *w;
		}
		if (write(from, bad ? "x" : "o", 1) != 1)
			break;
	}
	_exit(0);
}

static int procs_start(struct ectx *c)
{
	for (int k = 1; k < c->procs; k++) {
		int to[2], from[2];

		if (pipe(to) || pipe(from))
			return bench_fail("pipe: %s", strerror(errno));
		c->pid[k] = fork();
		if (c->pid[k] < 0)
			return bench_fail("fork: %s", strerror(errno));
		if (!c->pid[k]) {
			close(to[1]);
			close(from[0]);
			child_loop(c, to[0], from[1]);
		}
		close(to[0]);
		close(from[1]);
		c->to[k] = to[1];
		c->from[k] = from[0];
	}
	return 0;
}

/* Let the children read; 0 once all read right. */
static int procs_read(struct ectx *c)
{
	char b = '0' + c->parity + (c->touch == 2 ? 2 : 0);
	int bad = 0;

	for (int k = 1; k < c->procs; k++)
		if (write(c->to[k], &b, 1) != 1)
			bad = 1;
	for (int k = 1; k < c->procs; k++)
		if (read(c->from[k], &b, 1) != 1 || b != 'o')
			bad = 1;
	return bad ? bench_fail("a mapping process read a wrong page") : 0;
}

static void procs_stop(struct ectx *c)
{
	for (int k = 1; k < c->procs; k++) {
		if (c->pid[k] <= 0)
			continue;
		if (write(c->to[k], "q", 1) != 1)
			kill(c->pid[k], SIGKILL);
		close(c->to[k]);
		close(c->from[k]);
		waitpid(c->pid[k], NULL, 0);
	}
}

/* ---- one run ---- */

static int once(struct bench_method *m, uint64_t *ns)
{
	struct ectx *c = m->ctx;
	uint64_t t0;
	int ret;

	if (c->cold)
		bench_flush_caches();
	t0 = now_ns();
	for (int rep = 0; rep < c->reps; rep++) {
		switch (c->kind) {
		case UP:
		case UP_POP:
			ret = edit_up(c);
			break;
		case MEMCPY:
			ret = edit_memcpy(c);
			break;
		case MREMAP:
			ret = edit_mremap(c);
			break;
		case MEMFD:
			ret = edit_memfd(c);
			break;
		default:
			ret = edit_mprotect(c);
			break;
		}
		c->parity = !c->parity;
		if (!ret && c->touch)
			touch(c);
		if (!ret && c->procs > 1)
			ret = procs_read(c);
		if (ret)
			break;
	}
	*ns = now_ns() - t0;
	if (ret)
		return ret;
	return c->job == PROTECT ? verify_protect(c) : verify(c);
}

/* ---- setting a method up ---- */

static struct upage_edit_op *make_ops(struct ectx *c, int parity)
{
	struct upage_edit_op *ops = calloc(c->n, sizeof(*ops));
	size_t n = c->n;

	for (size_t i = 0; ops && i < n; i++) {
		struct upage_edit_op *op = &ops[i];

		op->n = 1;
		switch (c->job) {
		case SWAP:
			*op = (struct upage_edit_op){ .op = UPAGE_OP_SWAP,
				.dst = slot(c, i), .src = slot(c, n + i),
				.n = 1 };
			break;
		case ALIAS:
			*op = (struct upage_edit_op){ .op = UPAGE_OP_ALIAS,
				.dst = 2 * n + i, .src = parity ? i : n + i,
				.n = 1 };
			break;
		case MOVE:
			*op = (struct upage_edit_op){ .op = UPAGE_OP_MOVE,
				.dst = parity ? i : n + i,
				.src = parity ? n + i : i, .n = 1 };
			break;
		case PROTECT:
			*op = (struct upage_edit_op){ .op = UPAGE_OP_PROTECT,
				.dst = 2 * i, .n = 1,
				.prot = parity ? UPAGE_PROT_RW : UPAGE_PROT_READ };
			break;
		}
	}
	return ops;
}

static int setup(struct ectx *c)
{
	size_t pages = layout_pages(c), fill = pages / c->stride;

	c->len = pages * PAGE;
	c->parity = 0;
	c->fd = -1;
	if (c->kind == UP || c->kind == UP_POP) {
		c->fd = bench_space(pages, &c->base);
		if (c->fd < 0)
			return -1;
		c->ops[0] = make_ops(c, 0);
		c->ops[1] = make_ops(c, 1);
		if (!c->ops[0] || !c->ops[1])
			return bench_fail("out of memory");
	} else if (c->kind == MEMFD) {
		c->fd = memfd_create("bench-alias", MFD_CLOEXEC);
		if (c->fd < 0 || ftruncate(c->fd, 2 * c->n * PAGE))
			return bench_fail("memfd: %s", strerror(errno));
		c->base = mmap(NULL, c->len, PROT_READ | PROT_WRITE,
			       MAP_SHARED, c->fd, 0);
		c->spare = bench_map_anon(c->n * PAGE, 0);
		if (c->base == MAP_FAILED || !c->spare)
			return bench_fail("mmap: %s", strerror(errno));
		fill = 2 * c->n;
	} else {
		c->base = bench_map_anon(c->len, c->procs > 1);
		if (!c->base)
			return bench_fail("mmap: %s", strerror(errno));
	}
	if (c->kind == MEMCPY || c->kind == MREMAP) {
		c->spare = bench_map_anon(PAGE, 0);
		if (!c->spare)
			return bench_fail("mmap: %s", strerror(errno));
	}
	if (c->job == ALIAS && c->kind != MEMFD)
		fill = 2 * c->n;
	if (c->job == MOVE)
		fill = c->n;
	for (size_t j = 0; j < fill; j++) {
		pg(c, j)[0] = tag(j);
		pg(c, j)[WORDS - 1] = tag(j);
	}
	return 0;
}

static void teardown(struct ectx *c)
{
	if (c->procs > 1)
		procs_stop(c);
	if (c->base && c->base != MAP_FAILED)
		munmap(c->base, c->len);
	if (c->spare && c->spare != MAP_FAILED)
		munmap(c->spare, c->kind == MEMFD ? c->n * PAGE : PAGE);
	if (c->fd >= 0)
		close(c->fd);
	free(c->ops[0]);
	free(c->ops[1]);
	memset(c, 0, sizeof(*c));
}

/* ---- the cases ---- */

struct spec {
	enum kind kind;
	const char *name;
	const char *role;
};

static const struct spec swap_methods[] = {
	{ UP, "upage swap batch", "upage" },
	{ UP_POP, "upage swap batch+populate", "upage" },
	{ MEMCPY, "memcpy x3 via bounce page", "peer" },
	{ MREMAP, "mremap x3 (MREMAP_FIXED)", "peer" },
};

static const struct spec alias_methods[] = {
	{ UP, "upage alias batch", "upage" },
	{ UP_POP, "upage alias batch+populate", "upage" },
	{ MEMFD, "memfd + mmap(MAP_FIXED) per page", "peer" },
};

static const struct spec move_methods[] = {
	{ UP, "upage move batch", "upage" },
	{ UP_POP, "upage move batch+populate", "upage" },
	{ MREMAP, "mremap per page", "peer" },
};

static const struct spec protect_methods[] = {
	{ UP, "upage protect batch", "upage" },
	{ MPROTECT, "mprotect per page", "peer" },
};

static int failed;

/*
 * One row group: every method of @specs on the same case; the medians
 * (ns/page) of the methods go to @med if not NULL.
 */
static void run_case(enum job job, const struct spec *specs, int nr,
		     size_t n, size_t batch, size_t stride, int touch,
		     int cold, int procs, const char *cas, double *med)
{
	/*
	 * Hot: the pages the batch needs, used again and again within a run;
	 * cold: a buffer of them much larger than the caches, flushed too.
	 */
	int reps = cold || n >= bench_pages ? 1 : bench_pages / n;
	double per = (job == SWAP ? 2.0 * n : n) * reps;
	struct upage_stats s0[8];
	struct bench_method m[8];
	struct ectx c[8];
	int ret = 0;

	memset(m, 0, sizeof(m));
	memset(c, 0, sizeof(c));
	for (int i = 0; i < nr; i++) {
		c[i] = (struct ectx){ .job = job, .kind = specs[i].kind,
			.fd = -1, .n = n, .batch = batch, .stride = stride,
			.touch = touch, .cold = cold, .procs = procs,
			.reps = reps };
		m[i] = (struct bench_method){ .name = specs[i].name,
			.role = specs[i].role, .once = once, .ctx = &c[i] };
		if (specs[i].kind == UP_POP && !bench_edit_populate_ok())
			m[i].skip = 1;
		/* Another process does not see a private remap. */
		if (specs[i].kind == MREMAP && procs > 1)
			m[i].skip = 1;
		if (!m[i].skip && setup(&c[i]))
			ret = -1;
	}
	/* Fork the mapping processes once every method is set up. */
	case_ctx = c;
	case_nr = nr;
	for (int i = 0; i < nr && !ret && procs > 1; i++)
		if (!m[i].skip && procs_start(&c[i]))
			ret = -1;
	for (int i = 0; i < nr; i++)
		if (!m[i].skip && c[i].kind <= UP_POP &&
		    upage_stats(c[i].fd, &s0[i]))
			ret = bench_fail("UPAGE_STATS");
	if (!ret)
		ret = bench_measure(job_name[job], cas, m, nr, per);
	/* What the module did for it: faults and populated PTEs per page. */
	for (int i = 0; i < nr && !ret; i++) {
		struct upage_stats s1;

		if (m[i].skip || c[i].kind > UP_POP || upage_stats(c[i].fd, &s1))
			continue;
		printf("# faults %s %s: %s: %.2f faults, %.2f PTEs populated per page\n",
		       job_name[job], cas, m[i].name,
		       (s1.out_faults - s0[i].out_faults) / (per * bench_runs),
		       (s1.out_populated - s0[i].out_populated) /
		       (per * bench_runs));
	}
	if (!ret && job == PROTECT) {
		/* Leave the pages protected and count what each leaves. */
		for (int i = 0; i < nr; i++) {
			c[i].reps = 1;
			if (!c[i].parity && once(&m[i], &m[i].t[0]))
				ret = -1;
		}
		if (!ret)
			printf("# protect %s: %zu pages protected one in two: mprotect leaves %d VMAs, upage %d\n",
			       cas, n, count_vmas(c[1].base, c[1].len),
			       count_vmas(c[0].base, c[0].len));
	}
	for (int i = 0; i < nr; i++) {
		if (med)
			med[i] = m[i].skip ? 0 : m[i].median;
		teardown(&c[i]);
	}
	if (ret)
		failed = 1;
}

static const char *const touch_name[] = { "no use", "read", "write" };

/*
 * Pages (pairs for swap) of a case: hot, a small buffer (64, or the
 * batch) edited again and again; cold, a buffer 4x -n (or the batch),
 * much larger than the caches.
 */
static size_t hot_pages(void)
{
	return bench_pages < 64 ? bench_pages : 64;
}

static size_t pages_for(size_t batch, int cold)
{
	size_t n = cold ? 4 * bench_pages : hot_pages();

	return batch > n ? batch : n;
}

static void edit_job(enum job job, const struct spec *specs, int nr,
		     const size_t *batches, int nb)
{
	char cas[128];

	for (int b = 0; b < nb; b++) {
		snprintf(cas, sizeof(cas), "batch=%zu hot read", batches[b]);
		run_case(job, specs, nr, pages_for(batches[b], 0), batches[b],
			 1, 1, 0, 1, cas, NULL);
	}
	for (int touch = 0; touch <= 2; touch++) {
		for (int cold = 0; cold <= 1; cold++) {
			size_t batch = bench_tiny ? 8 : 512;

			/* In the sweep above; swap sweeps cold reads too. */
			if (touch == 1 && (!cold || job == SWAP))
				continue;
			if (job == PROTECT && touch == 2)
				continue;	/* half the pages are read-only */
			snprintf(cas, sizeof(cas), "batch=%zu %s %s", batch,
				 cold ? "cold" : "hot", touch_name[touch]);
			run_case(job, specs, nr, pages_for(batch, cold), batch,
				 1, touch, cold, 1, cas, NULL);
		}
	}
}

/* The smallest batch from which upage's method @i costs at most memcpy's. */
static void crossover(const char *temp, double med[][4], const size_t *batches,
		      int nb)
{
	for (int i = 0; i < 2; i++) {
		int b = 0;

		while (b < nb && !(med[b][i] > 0 && med[b][i] <= med[b][2]))
			b++;
		if (med[0][i] <= 0)
			continue;
		if (b < nb)
			printf("# swap crossover, %s read: %s costs at most memcpy's from batch=%zu on\n",
			       temp, swap_methods[i].name, batches[b]);
		else
			printf("# swap crossover, %s read: none up to batch=%zu: %s stays dearer than memcpy\n",
			       temp, batches[nb - 1], swap_methods[i].name);
	}
}

static void swap_sweeps(void)
{
	static const size_t batches[] = { 1, 8, 64, 512, 4096 };
	static const size_t spaces_mib[] = { 1, 16, 256, 1024 };
	int nb = bench_tiny ? 2 : 5, ns = bench_tiny ? 2 : 4;
	double med[5][4], at[4][4];
	char cas[128];

	/* The batch sweep, hot and cold, and the crossovers with memcpy. */
	for (int cold = 0; cold <= 1; cold++) {
		for (int b = 0; b < nb; b++) {
			snprintf(cas, sizeof(cas), "batch=%zu %s read", batches[b],
				 cold ? "cold" : "hot");
			run_case(SWAP, swap_methods, 4, pages_for(batches[b], cold),
				 batches[b], 1, 1, cold, 1, cas, med[b]);
		}
		crossover(cold ? "cold" : "hot", med, batches, nb);
	}
	edit_job(SWAP, swap_methods, 4, batches, 0);

	for (int touch = 1; touch <= 2; touch++) {
		for (int p = 2; p <= (bench_tiny ? 2 : MAX_PROCS); p *= 2) {
			size_t batch = bench_tiny ? 8 : 512;

			snprintf(cas, sizeof(cas), "batch=%zu hot %s procs=%d",
				 batch, touch_name[touch], p);
			run_case(SWAP, swap_methods, 4, pages_for(batch, 0),
				 batch, 1, touch, 0, p, cas, NULL);
		}
	}

	/* 64 pairs spread over spaces of 1 MiB to 1 GiB, the rest holes. */
	for (int s = 0; s < ns; s++) {
		size_t pairs = 64, slots = spaces_mib[s] << 8;

		snprintf(cas, sizeof(cas), "space=%zuMiB pairs=64 batch=64 hot read",
			 spaces_mib[s]);
		run_case(SWAP, swap_methods, 4, pairs, 64, slots / (2 * pairs),
			 1, 0, 1, cas, at[s]);
	}
	for (int i = 0; i < 2; i++) {
		double slope = at[0][i] > 0 ? at[ns - 1][i] / at[0][i] : 0;

		if (slope > 0)
			printf("# space slope: %s + read, cost per op at %zu MiB / at 1 MiB = %.2f (target <= 1.2: %s)\n",
			       swap_methods[i].name, spaces_mib[ns - 1], slope,
			       slope <= 1.2 ? "met" : "missed");
	}
}

int main(int argc, char **argv)
{
	static const size_t batches[] = { 1, 64, 512 };

	setvbuf(stdout, NULL, _IOLBF, 0);
	bench_args(argc, argv, 1024, 8);
	printf("# bench-edit: %d runs per row, batches 1..%d; a run edits %zu pages (pairs for swap) at least: hot, %zu (or the batch) edited again and again; cold, %zu (or the batch), caches flushed before\n",
	       bench_runs, bench_tiny ? 8 : 4096, bench_pages, hot_pages(),
	       4 * bench_pages);
	bench_pin_cpu0("the mapping processes of procs=P read in turn");
	swap_sweeps();
	edit_job(ALIAS, alias_methods, 3, batches, bench_tiny ? 1 : 3);
	edit_job(MOVE, move_methods, 3, batches, bench_tiny ? 1 : 3);
	edit_job(PROTECT, protect_methods, 2, batches, bench_tiny ? 1 : 3);
	printf("# bench-edit: contents and reports checked after every run: %s\n",
	       failed ? "WRONG or FAILED" : "all right");
	return failed;
}
