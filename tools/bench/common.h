/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the benchmark programs of tools/bench/ share: the clock, the
 * options, the result lines of docs/bench-format (BENCH<TAB>job<TAB>case
 * <TAB>method<TAB>role<TAB>unit<TAB>median<TAB>min<TAB>max<TAB>runs), and a
 * runner that takes turns between a job's methods run by run.
 *
 * A method's run checks what it produced (contents, reports) and fails the
 * program on a wrong result; no program passes or fails on time.
 */
#ifndef UPAGE_BENCH_COMMON_H
#define UPAGE_BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "upage.h"

#define PAGE 4096UL
#define WORDS (PAGE / sizeof(uint64_t))
#define MAX_RUNS 31

/* -t: the tiny run of make check; -r: runs per row; -n: pages (scale). */
extern int bench_tiny;
extern int bench_runs;
extern size_t bench_pages;
extern volatile uint64_t bench_sink;

/* Parse -t, -r RUNS, -n PAGES; exits with a usage line on anything else. */
void bench_args(int argc, char **argv, size_t default_pages,
		size_t tiny_pages);

uint64_t now_ns(void);

/* Print "FAIL: ..." on stdout (where the host sees it); returns -1. */
int bench_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Read through a buffer much larger than the caches, untimed. */
void bench_flush_caches(void);

/*
 * Run this process, and the threads and children it makes from now on, on
 * CPU 0 only, saying why (@why) in a "# " line. Under TCG, waking a thread
 * on another vCPU costs the host a thread wakeup (milliseconds on a busy
 * host), which would drown what a handler round trip costs.
 */
void bench_pin_cpu0(const char *why);

/* Private anonymous memory without huge pages (NULL on failure). */
char *bench_map_anon(size_t len, int shared);

/* A new space of @pages slots, mapped MAP_SHARED at *@base. fd or -1. */
int bench_space(size_t pages, char **base);

/* UPAGE_EDIT with @flags (the library's upage_edit passes none): 0/-errno. */
int bench_edit(int fd, const struct upage_edit_op *ops, uint32_t count,
	       uint32_t flags);

/* UPAGE_RESIDENCY prefetch with @flags: 0/-errno, *done as the library's. */
int bench_prefetch(int fd, uint64_t first, uint64_t n, uint32_t flags,
		   uint64_t *done);

/*
 * Whether this module takes UPAGE_EDIT_POPULATE (resp. UPAGE_RES_POPULATE
 * on a prefetch): tried once on a scratch space. Prints a "# " line the
 * first time it says no.
 */
int bench_edit_populate_ok(void);
int bench_prefetch_populate_ok(void);

/* One method of a job: once() does one timed run and checks its result. */
struct bench_method {
	const char *name;
	const char *role;		/* "upage" or "peer" */
	int (*once)(struct bench_method *m, uint64_t *ns);
	void *ctx;
	int skip;			/* not run, no row */
	uint64_t t[MAX_RUNS];
	double median;			/* per unit, after bench_measure() */
};

/*
 * Run the methods bench_runs times each, taking turns, and print one
 * BENCH line per method: its time divided by @per (pages per run) in
 * ns/page. Returns 0, or -1 if a run failed (its line says why).
 */
int bench_measure(const char *job, const char *cas, struct bench_method *m,
		  int nr, double per);

/* One BENCH line from values already per unit. */
void bench_line(const char *job, const char *cas, const char *method,
		const char *role, const char *unit, double *v, int n);

#endif /* UPAGE_BENCH_COMMON_H */
