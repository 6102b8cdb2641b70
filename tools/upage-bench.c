// SPDX-License-Identifier: GPL-2.0
/*
 * upage-bench: what does upage cost next to what a program can do without
 * it? Runs inside the guest (`make bench`) and prints ns per page and the
 * ratio of each peer to upage, all measured in the same run. It never
 * passes or fails on time: it exits non-zero only if a method gave wrong
 * contents or a call failed.
 *
 * Figure 1: swap the pages of P pairs of addresses (page i with page P+i):
 *   upage batch   one UPAGE_EDIT carrying P UPAGE_OP_SWAP ops of n=1
 *   upage range   one UPAGE_EDIT carrying one UPAGE_OP_SWAP op of n=P
 *   upage single  P UPAGE_EDITs of one UPAGE_OP_SWAP op of n=1
 *   mremap        three mremap(MREMAP_MAYMOVE|MREMAP_FIXED) per pair through
 *                 a spare address, on private anonymous memory
 *   memcpy        three memcpy per pair through a temporary page
 * "swap" is the swap alone; "+read" and "+write" also read, or rewrite with
 * its own value, one word of both pages of every pair afterwards. upage
 * unmaps the slots it edits, so with upage the touch refaults every page
 * (a write also goes through .page_mkwrite); the peers leave their pages
 * mapped.
 *
 * usage: upage-bench [-p PAIRS] [-r REPEATS]
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "upage.h"

#define PAGE 4096UL
#define WORDS (PAGE / sizeof(uint64_t))
#define MAX_REPEATS 101

static size_t pairs = 4096;
static int repeats = 7;
static volatile uint64_t sink;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t tag(size_t page)
{
	return 0x7570616765000000ULL + page;
}

static uint64_t *page_at(char *base, size_t page)
{
	return (uint64_t *)(base + page * PAGE);
}

/* Give every page a tag in its first and last word. */
static void fill(char *base)
{
	for (size_t j = 0; j < 2 * pairs; j++) {
		page_at(base, j)[0] = tag(j);
		page_at(base, j)[WORDS - 1] = tag(j);
	}
}

/* After an odd number of swaps page i holds what page P+i held, and back. */
static int verify(const char *what, char *base, int swapped)
{
	for (size_t j = 0; j < 2 * pairs; j++) {
		size_t from = !swapped ? j : j < pairs ? j + pairs : j - pairs;
		uint64_t *w = page_at(base, j);

		if (w[0] != tag(from) || w[WORDS - 1] != tag(from)) {
			printf("FAIL: %s: page %zu holds %#llx/%#llx, expected %#llx\n",
			       what, j, (unsigned long long)w[0],
			       (unsigned long long)w[WORDS - 1],
			       (unsigned long long)tag(from));
			return -1;
		}
	}
	return 0;
}

/* Read, or rewrite with its own value, one word of both pages of every pair. */
static void touch(char *base, int write)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < pairs; i++) {
		volatile uint64_t *a = page_at(base, i);
		volatile uint64_t *b = page_at(base, pairs + i);

		if (write) {
			*a = *a;
			*b = *b;
		} else {
			sum += *a + *b;
		}
	}
	sink = sum;
}

struct method {
	const char *name;
	int (*setup)(struct method *m);
	int (*swap)(struct method *m);	/* swap every pair once */
	void (*teardown)(struct method *m);
	char *base;
	/* per method state */
	int fd;
	int is_upage;
	struct upage_edit_op *ops;
	uint32_t nr_ops;
	char *spare;
	/* results: median ns per page */
	double swap_ns, read_ns, write_ns;
	uint64_t faults_per_run;
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double median_per_page(uint64_t *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return (n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2) /
	       (2.0 * pairs);
}

/*
 * Run @m @repeats times with a read touch, then @repeats times with a write
 * touch, checking the contents after every run (untimed).
 */
static int run(struct method *m)
{
	uint64_t t_swap[2 * MAX_REPEATS], t_touch[2][MAX_REPEATS];
	struct upage_stats s0, s1;
	int swapped = 0;

	if (m->setup(m))
		goto fail;
	fill(m->base);
	if (m->is_upage && upage_stats(m->fd, &s0))
		memset(&s0, 0, sizeof(s0));
	for (int w = 0; w < 2; w++) {
		for (int r = 0; r < repeats; r++) {
			uint64_t t0, t1, t2;

			t0 = now_ns();
			if (m->swap(m))
				goto fail;
			t1 = now_ns();
			touch(m->base, w);
			t2 = now_ns();
			swapped = !swapped;
			t_swap[w * repeats + r] = t1 - t0;
			t_touch[w][r] = t2 - t0;
			if (verify(m->name, m->base, swapped))
				goto fail;
		}
	}
	if (m->is_upage && !upage_stats(m->fd, &s1))
		m->faults_per_run = (s1.out_faults - s0.out_faults) / (2 * repeats);
	m->swap_ns = median_per_page(t_swap, 2 * repeats);
	m->read_ns = median_per_page(t_touch[0], repeats);
	m->write_ns = median_per_page(t_touch[1], repeats);
	m->teardown(m);
	return 0;
fail:
	m->teardown(m);
	return -1;
}

/* upage: a space of 2P slots mapped MAP_SHARED. */
static int upage_setup(struct method *m)
{
	int ret;

	m->is_upage = 1;
	m->fd = upage_open(O_CLOEXEC);
	if (m->fd < 0) {
		printf("FAIL: open /dev/upage: %s\n", strerror(-m->fd));
		return -1;
	}
	ret = upage_resize(m->fd, 2 * pairs, NULL);
	if (ret) {
		printf("FAIL: resize: %s\n", strerror(-ret));
		return -1;
	}
	m->base = mmap(NULL, 2 * pairs * PAGE, PROT_READ | PROT_WRITE,
		       MAP_SHARED, m->fd, 0);
	if (m->base == MAP_FAILED) {
		printf("FAIL: mmap the space: %s\n", strerror(errno));
		return -1;
	}
	m->ops = calloc(pairs, sizeof(*m->ops));
	if (!m->ops)
		return -1;
	for (size_t i = 0; i < pairs; i++)
		m->ops[i] = (struct upage_edit_op){
			.op = UPAGE_OP_SWAP, .dst = i, .src = pairs + i, .n = 1,
		};
	return 0;
}

static void upage_teardown(struct method *m)
{
	if (m->base && m->base != MAP_FAILED)
		munmap(m->base, 2 * pairs * PAGE);
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
	free(m->ops);
	m->ops = NULL;
}

static int upage_swap_batch(struct method *m)
{
	uint32_t idx = UINT32_MAX;
	int ret = upage_edit(m->fd, m->ops, pairs, &idx);

	if (ret)
		printf("FAIL: %s: UPAGE_EDIT of %zu ops: %s (op %u)\n", m->name,
		       pairs, strerror(-ret), idx);
	return ret;
}

static int upage_swap_range(struct method *m)
{
	int ret = upage_swap(m->fd, 0, pairs, pairs);

	if (ret)
		printf("FAIL: %s: swap 0..%zu with %zu..: %s\n", m->name,
		       pairs - 1, pairs, strerror(-ret));
	return ret;
}

static int upage_swap_single(struct method *m)
{
	for (size_t i = 0; i < pairs; i++) {
		int ret = upage_swap(m->fd, i, pairs + i, 1);

		if (ret) {
			printf("FAIL: %s: swap %zu with %zu: %s\n", m->name, i,
			       pairs + i, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

/* The peers: private anonymous memory, without transparent huge pages. */
static int anon_setup(struct method *m)
{
	m->fd = -1;
	m->base = mmap(NULL, 2 * pairs * PAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	m->spare = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m->base == MAP_FAILED || m->spare == MAP_FAILED) {
		printf("FAIL: mmap: %s\n", strerror(errno));
		return -1;
	}
	madvise(m->base, 2 * pairs * PAGE, MADV_NOHUGEPAGE);
	return 0;
}

static void anon_teardown(struct method *m)
{
	if (m->base && m->base != MAP_FAILED)
		munmap(m->base, 2 * pairs * PAGE);
	if (m->spare && m->spare != MAP_FAILED)
		munmap(m->spare, PAGE);
}

static int mremap_swap(struct method *m)
{
	const int fl = MREMAP_MAYMOVE | MREMAP_FIXED;

	for (size_t i = 0; i < pairs; i++) {
		char *a = (char *)page_at(m->base, i);
		char *b = (char *)page_at(m->base, pairs + i);

		if (mremap(a, PAGE, PAGE, fl, m->spare) == MAP_FAILED ||
		    mremap(b, PAGE, PAGE, fl, a) == MAP_FAILED ||
		    mremap(m->spare, PAGE, PAGE, fl, b) == MAP_FAILED) {
			printf("FAIL: mremap: %s\n", strerror(errno));
			return -1;
		}
	}
	return 0;
}

static int memcpy_swap(struct method *m)
{
	char *tmp = m->spare;

	for (size_t i = 0; i < pairs; i++) {
		char *a = (char *)page_at(m->base, i);
		char *b = (char *)page_at(m->base, pairs + i);

		memcpy(tmp, a, PAGE);
		memcpy(a, b, PAGE);
		memcpy(b, tmp, PAGE);
	}
	/* Keep the compiler from dropping the copies into tmp. */
	__asm__ volatile("" : : "r"(tmp) : "memory");
	return 0;
}

static void row(const struct method *m, const struct method *ref)
{
	printf("%-36s %8.0f %8.0f %8.0f", m->name, m->swap_ns, m->read_ns,
	       m->write_ns);
	if (ref->swap_ns > 0 && ref->read_ns > 0 && ref->write_ns > 0)
		printf(" %7.2fx %7.2fx %7.2fx", m->swap_ns / ref->swap_ns,
		       m->read_ns / ref->read_ns, m->write_ns / ref->write_ns);
	else
		printf(" %8s %8s %8s", "-", "-", "-");
	if (m->is_upage)
		printf("   %llu faults/run", (unsigned long long)m->faults_per_run);
	printf("\n");
}

int main(int argc, char **argv)
{
	char batch_name[64], range_name[64], single_name[64];
	struct method methods[] = {
		{ .name = batch_name, .setup = upage_setup,
		  .swap = upage_swap_batch, .teardown = upage_teardown },
		{ .name = range_name, .setup = upage_setup,
		  .swap = upage_swap_range, .teardown = upage_teardown },
		{ .name = single_name, .setup = upage_setup,
		  .swap = upage_swap_single, .teardown = upage_teardown },
		{ .name = "mremap: 3 per pair via a spare page",
		  .setup = anon_setup, .swap = mremap_swap,
		  .teardown = anon_teardown },
		{ .name = "memcpy: 3 per pair via a temp page",
		  .setup = anon_setup, .swap = memcpy_swap,
		  .teardown = anon_teardown },
	};
	const size_t nr = sizeof(methods) / sizeof(methods[0]);
	struct upage_api api;
	struct utsname u;
	uint64_t start = now_ns();
	int opt, fd, ret, bad = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt(argc, argv, "p:r:")) != -1) {
		switch (opt) {
		case 'p':
			pairs = strtoul(optarg, NULL, 0);
			break;
		case 'r':
			repeats = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: %s [-p PAIRS] [-r REPEATS]\n", argv[0]);
			return 2;
		}
	}
	if (pairs < 1 || pairs > UPAGE_EDIT_MAX_OPS || repeats < 1 ||
	    repeats > MAX_REPEATS) {
		fprintf(stderr, "upage-bench: 1 <= PAIRS <= %d, 1 <= REPEATS <= %d\n",
			UPAGE_EDIT_MAX_OPS, MAX_REPEATS);
		return 2;
	}
	snprintf(batch_name, sizeof(batch_name), "upage: 1 EDIT of %zu ops, n=1", pairs);
	snprintf(range_name, sizeof(range_name), "upage: 1 EDIT of 1 op, n=%zu", pairs);
	snprintf(single_name, sizeof(single_name), "upage: %zu EDITs of 1 op, n=1", pairs);

	fd = upage_open(O_CLOEXEC);
	ret = fd < 0 ? fd : upage_api(fd, &api);
	if (ret) {
		printf("FAIL: /dev/upage: %s\n", strerror(-ret));
		return 1;
	}
	close(fd);
	uname(&u);
	printf("upage-bench: kernel %s, upage API %u, %ld CPUs online\n",
	       u.release, api.out_version, sysconf(_SC_NPROCESSORS_ONLN));
	if (!(api.out_ioctls & (1ULL << UPAGE_CMD_EDIT)))
		printf("upage-bench: the module does not report UPAGE_EDIT\n");
	printf("\nswap the pages of %zu pairs of addresses (page i <-> page %zu+i)\n",
	       pairs, pairs);
	printf("ns per page (a pair is 2 pages), median of %d runs (swap: of %d); ratio = row / first row\n",
	       repeats, 2 * repeats);
	printf("+read, +write: the swap, then read, or rewrite, one word of both pages of every pair\n\n");
	printf("%-36s %8s %8s %8s %8s %8s %8s\n", "", "swap", "+read", "+write",
	       "swap", "+read", "+write");
	printf("%-36s %8s %8s %8s %8s %8s %8s\n", "method", "ns/page", "ns/page",
	       "ns/page", "ratio", "ratio", "ratio");

	for (size_t i = 0; i < nr; i++) {
		methods[i].fd = -1;
		if (run(&methods[i])) {
			bad = 1;
			continue;
		}
		row(&methods[i], &methods[0]);
	}
	if (!bad)
		printf("\none swap ioctl (1 op, n=1): %.0f ns, %.0f ns per page\n",
		       methods[2].swap_ns * 2, methods[2].swap_ns);
	printf("contents checked after every run: %s\n", bad ? "WRONG or FAILED" : "all swapped correctly");
	printf("total %.1f s\n", (now_ns() - start) / 1e9);
	return bad;
}
