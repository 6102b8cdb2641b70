// SPDX-License-Identifier: GPL-2.0
/*
 * bench-track: write tracking and fault traps with upage, next to the
 * ways a program has without it, taking turns run by run (`make bench`),
 * as BENCH lines (common.h). Exits non-zero only if a method reported
 * wrong pages or a call failed.
 *
 * Tracking ("track"): every round writes one word to each of N pages,
 * then collects the written pages and re-arms; the cost per written page
 * includes the collect. A run sets its method up, warms up one round and
 * times three; each method runs alone in the process (soft-dirty's
 * clear_refs arms every page of the process).
 *
 *   upage                UPAGE_TRACK; UPAGE_DIRTY with UPAGE_DIRTY_CLEAR
 *   mprotect+SIGSEGV     private anonymous memory made read-only; the
 *                        handler records the page and makes it writable
 *                        (one VMA per written page); re-arm: mprotect
 *   soft-dirty           clear_refs 4 (the whole process) to arm; read
 *                        /proc/self/pagemap bit 55 to collect
 *   userfaultfd WP       UFFDIO_WRITEPROTECT; a handler thread records
 *                        each fault and un-protects the page
 *   PAGEMAP_SCAN         userfaultfd WP_ASYNC (no handler) collected and
 *                        re-armed by one PAGEMAP_SCAN (Linux 6.7+)
 *
 * Traps ("trap"): N reads of N pages that are not there yet, each
 * answered by a handler thread with a page of data.
 *
 *   upage                UPAGE_TRAP; read() the event, UPAGE_RESOLVE_COPY
 *   userfaultfd MISSING  read() the message, UFFDIO_COPY
 *
 * usage: bench-track [-t] [-n PAGES] [-r RUNS]
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif

/*
 * The PAGEMAP_SCAN ioctl of /proc/PID/pagemap (Linux 6.7+; Debian 12's
 * linux-libc-dev predates it): its ABI, as documented in the kernel's
 * Documentation/admin-guide/mm/pagemap.rst.
 */
struct scan_region {
	uint64_t start, end, categories;
};

struct scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask;
	uint64_t return_mask;
};

#define SCAN_IOCTL _IOWR('f', 16, struct scan_arg)
#define SCAN_WP_MATCHING (1 << 0)
#define SCAN_CHECK_WPASYNC (1 << 1)
#define SCAN_PAGE_IS_WRITTEN (1 << 1)

static size_t pages;

static int fail(const char *what, int err)
{
	fprintf(stderr, "bench-track: %s: %s\n", what, strerror(err));
	return -1;
}

/* Write one word to each page of @base, round @round. */
static void write_all(char *base, int round)
{
	for (size_t j = 0; j < pages; j++)
		*(volatile uint64_t *)(base + j * PAGE) = j * 1000 + round;
}

static char *map_anon(void)
{
	char *p = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	/* Page by page, as upage: no transparent huge pages. */
	madvise(p, pages * PAGE, MADV_NOHUGEPAGE);
	memset(p, 1, pages * PAGE);
	return p;
}

/* One tracking method: arm once, then per round write and collect. */
struct tracker {
	const char *name;
	int (*setup)(void);
	char *(*base)(void);
	/* Collect and re-arm; returns the number of pages written. */
	long (*collect)(void);
	void (*teardown)(void);
	const char *skip;	/* why it cannot run here */
};

/* ---- upage ---- */

static int up_fd = -1;
static char *up_p;
static uint64_t *up_bits;

static int up_setup(void)
{
	int ret;

	up_fd = upage_open(O_CLOEXEC);
	if (up_fd < 0)
		return fail("open /dev/upage", -up_fd);
	ret = upage_resize(up_fd, pages, NULL);
	if (ret)
		return fail("resize", -ret);
	up_p = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED,
		    up_fd, 0);
	if (up_p == MAP_FAILED)
		return fail("mmap", errno);
	memset(up_p, 1, pages * PAGE);
	up_bits = calloc((pages + 63) / 64, sizeof(*up_bits));
	ret = upage_track_start(up_fd, 0, pages);
	return ret ? fail("UPAGE_TRACK", -ret) : 0;
}

static char *up_base(void)
{
	return up_p;
}

static long up_collect(void)
{
	uint64_t nr;
	int ret;

	ret = upage_dirty(up_fd, 0, pages, up_bits, UPAGE_DIRTY_CLEAR, &nr);
	return ret ? fail("UPAGE_DIRTY", -ret) : (long)nr;
}

static void up_teardown(void)
{
	munmap(up_p, pages * PAGE);
	close(up_fd);
	free(up_bits);
}

/* ---- mprotect + SIGSEGV ---- */

static char *mp_p;
static uint8_t *mp_written;

static void mp_handler(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr & ~(PAGE - 1);

	(void)sig;
	(void)uc;
	if (a < (uintptr_t)mp_p || a >= (uintptr_t)mp_p + pages * PAGE)
		abort();
	mp_written[(a - (uintptr_t)mp_p) / PAGE] = 1;
	mprotect((void *)a, PAGE, PROT_READ | PROT_WRITE);
}

static int mp_setup(void)
{
	struct sigaction sa = { .sa_sigaction = mp_handler,
				.sa_flags = SA_SIGINFO };

	mp_p = map_anon();
	mp_written = calloc(pages, 1);
	if (!mp_p || !mp_written || sigaction(SIGSEGV, &sa, NULL))
		return fail("mprotect setup", errno);
	return mprotect(mp_p, pages * PAGE, PROT_READ) ?
	       fail("mprotect", errno) : 0;
}

static char *mp_base(void)
{
	return mp_p;
}

static long mp_collect(void)
{
	long nr = 0;

	for (size_t j = 0; j < pages; j++) {
		nr += mp_written[j];
		mp_written[j] = 0;
	}
	return mprotect(mp_p, pages * PAGE, PROT_READ) ?
	       fail("mprotect", errno) : nr;
}

static void mp_teardown(void)
{
	signal(SIGSEGV, SIG_DFL);
	munmap(mp_p, pages * PAGE);
	free(mp_written);
}

/* ---- soft-dirty ---- */

static char *sd_p;
static uint64_t *sd_entries;
static int sd_pagemap = -1, sd_clear = -1;

static int sd_arm(void)
{
	return pwrite(sd_clear, "4", 1, 0) == 1 ? 0 : fail("clear_refs", errno);
}

static int sd_setup(void)
{
	sd_p = map_anon();
	sd_entries = calloc(pages, sizeof(*sd_entries));
	sd_pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	sd_clear = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
	if (!sd_p || !sd_entries || sd_pagemap < 0 || sd_clear < 0)
		return fail("soft-dirty setup", errno);
	return sd_arm();
}

static char *sd_base(void)
{
	return sd_p;
}

static long sd_collect(void)
{
	size_t len = pages * sizeof(*sd_entries);
	off_t off = (uintptr_t)sd_p / PAGE * sizeof(*sd_entries);
	long nr = 0;

	if (pread(sd_pagemap, sd_entries, len, off) != (ssize_t)len)
		return fail("pagemap", errno);
	for (size_t j = 0; j < pages; j++)
		nr += (sd_entries[j] >> 55) & 1;
	return sd_arm() ? -1 : nr;
}

static void sd_teardown(void)
{
	close(sd_pagemap);
	close(sd_clear);
	munmap(sd_p, pages * PAGE);
	free(sd_entries);
}

/* ---- userfaultfd write-protect, with a handler thread ---- */

static char *wp_p;
static int wp_uffd = -1;
static uint8_t *wp_written;
static pthread_t wp_thread;
static int wp_stop;

static int uffd_open(uint64_t features, uint64_t mode, char *p, int nonblock)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)p, .len = pages * PAGE },
		.mode = mode,
	};
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC | nonblock);

	if (fd < 0)
		return -errno;
	if (ioctl(fd, UFFDIO_API, &api) || ioctl(fd, UFFDIO_REGISTER, &reg)) {
		int err = errno;

		close(fd);
		return -err;
	}
	return fd;
}

static int uffd_protect(int fd, char *p, size_t len, int protect)
{
	struct uffdio_writeprotect wp = {
		.range = { .start = (uintptr_t)p, .len = len },
		.mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};

	return ioctl(fd, UFFDIO_WRITEPROTECT, &wp) ? -errno : 0;
}

static void *wp_handler(void *arg)
{
	struct pollfd pfd = { .fd = wp_uffd, .events = POLLIN };
	struct uffd_msg msg;

	(void)arg;
	while (!__atomic_load_n(&wp_stop, __ATOMIC_ACQUIRE)) {
		uintptr_t a;

		/* A blocking userfaultfd polls as EPOLLERR: it is O_NONBLOCK. */
		if (poll(&pfd, 1, 10) != 1 || !(pfd.revents & POLLIN))
			continue;
		if (read(wp_uffd, &msg, sizeof(msg)) != sizeof(msg)) {
			if (errno == EAGAIN)
				continue;
			abort();
		}
		if (msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		a = msg.arg.pagefault.address & ~(PAGE - 1);
		wp_written[(a - (uintptr_t)wp_p) / PAGE] = 1;
		/* Un-protecting wakes the faulting thread. */
		if (uffd_protect(wp_uffd, (char *)a, PAGE, 0))
			abort();
	}
	return NULL;
}

static int wp_setup(void)
{
	wp_stop = 0;
	wp_p = map_anon();
	wp_written = calloc(pages, 1);
	if (!wp_p || !wp_written)
		return fail("uffd-wp setup", ENOMEM);
	wp_uffd = uffd_open(UFFD_FEATURE_PAGEFAULT_FLAG_WP,
			    UFFDIO_REGISTER_MODE_WP, wp_p, O_NONBLOCK);
	if (wp_uffd < 0)
		return fail("userfaultfd WP", -wp_uffd);
	if (pthread_create(&wp_thread, NULL, wp_handler, NULL))
		return fail("pthread_create", EAGAIN);
	return uffd_protect(wp_uffd, wp_p, pages * PAGE, 1) ?
	       fail("UFFDIO_WRITEPROTECT", errno) : 0;
}

static char *wp_base(void)
{
	return wp_p;
}

static long wp_collect(void)
{
	long nr = 0;

	for (size_t j = 0; j < pages; j++) {
		nr += wp_written[j];
		wp_written[j] = 0;
	}
	return uffd_protect(wp_uffd, wp_p, pages * PAGE, 1) ?
	       fail("UFFDIO_WRITEPROTECT", errno) : nr;
}

static void wp_teardown(void)
{
	__atomic_store_n(&wp_stop, 1, __ATOMIC_RELEASE);
	pthread_join(wp_thread, NULL);
	close(wp_uffd);
	munmap(wp_p, pages * PAGE);
	free(wp_written);
}

/* ---- PAGEMAP_SCAN over userfaultfd WP_ASYNC ---- */

static char *ps_p;
static int ps_uffd = -1, ps_pagemap = -1;
static struct scan_region *ps_vec;

static int ps_setup(void)
{
	ps_p = map_anon();
	ps_vec = calloc(pages, sizeof(*ps_vec));
	if (!ps_p || !ps_vec)
		return fail("PAGEMAP_SCAN setup", ENOMEM);
	ps_uffd = uffd_open(UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED,
			    UFFDIO_REGISTER_MODE_WP, ps_p, 0);
	if (ps_uffd < 0)
		return fail("userfaultfd WP_ASYNC", -ps_uffd);
	ps_pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (ps_pagemap < 0)
		return fail("pagemap", errno);
	return uffd_protect(ps_uffd, ps_p, pages * PAGE, 1) ?
	       fail("UFFDIO_WRITEPROTECT", errno) : 0;
}

static char *ps_base(void)
{
	return ps_p;
}

static long ps_collect(void)
{
	struct scan_arg arg = {
		.size = sizeof(arg),
		.flags = SCAN_WP_MATCHING | SCAN_CHECK_WPASYNC,
		.start = (uintptr_t)ps_p,
		.end = (uintptr_t)ps_p + pages * PAGE,
		.vec = (uintptr_t)ps_vec,
		.vec_len = pages,
		.category_mask = SCAN_PAGE_IS_WRITTEN,
		.return_mask = SCAN_PAGE_IS_WRITTEN,
	};
	long regions, nr = 0;

	regions = ioctl(ps_pagemap, SCAN_IOCTL, &arg);
	if (regions < 0)
		return fail("PAGEMAP_SCAN", errno);
	for (long i = 0; i < regions; i++)
		nr += (ps_vec[i].end - ps_vec[i].start) / PAGE;
	return nr;
}

static void ps_teardown(void)
{
	close(ps_pagemap);
	close(ps_uffd);
	munmap(ps_p, pages * PAGE);
	free(ps_vec);
}

/* Whether this kernel has PAGEMAP_SCAN and WP_ASYNC. */
static const char *ps_missing(void)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct scan_arg arg = { .size = sizeof(arg) };
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC), pm, ok;

	if (fd < 0)
		return "no userfaultfd";
	ok = !ioctl(fd, UFFDIO_API, &api) &&
	     (api.features & UFFD_FEATURE_WP_ASYNC);
	close(fd);
	if (!ok)
		return "no UFFD_FEATURE_WP_ASYNC (Linux 6.7+)";
	pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	ok = pm >= 0 && (ioctl(pm, SCAN_IOCTL, &arg) == 0 || errno != ENOTTY);
	if (pm >= 0)
		close(pm);
	return ok ? NULL : "no PAGEMAP_SCAN (Linux 6.7+)";
}

static struct tracker trackers[] = {
	{ "upage track + dirty collect", up_setup, up_base, up_collect, up_teardown, NULL },
	{ "soft-dirty (clear_refs + pagemap)", sd_setup, sd_base, sd_collect, sd_teardown, NULL },
	{ "mprotect + SIGSEGV", mp_setup, mp_base, mp_collect, mp_teardown, NULL },
	{ "uffd-wp (handler thread)", wp_setup, wp_base, wp_collect, wp_teardown, NULL },
	{ "PAGEMAP_SCAN (uffd WP_ASYNC)", ps_setup, ps_base, ps_collect, ps_teardown, NULL },
};

#define ROUNDS 3

/*
 * One run of a tracker: set it up (so that soft-dirty's clear_refs, which
 * arms the whole process, never meets another tracker's pages), one round
 * to warm up, then ROUNDS rounds of writing every page and collecting,
 * each checked; the time of those rounds.
 */
static int track_once(struct bench_method *m, uint64_t *ns)
{
	struct tracker *t = m->ctx;
	uint64_t total = 0;
	char *base;

	if (t->setup())
		return -1;
	base = t->base();
	for (int r = 0; r <= ROUNDS; r++) {
		uint64_t t0 = now_ns();
		long nr;

		write_all(base, r);
		nr = t->collect();
		if (r)
			total += now_ns() - t0;
		if (nr != (long)pages) {
			t->teardown();
			return bench_fail("%s: round %d reported %ld of %zu written pages",
					  t->name, r, nr, pages);
		}
	}
	/* Nothing written since: nothing to report. */
	if (t->collect() != 0) {
		t->teardown();
		return bench_fail("%s: reported pages nobody wrote", t->name);
	}
	t->teardown();
	*ns = total / ROUNDS;
	return 0;
}

static int bench_tracking(void)
{
	const int nr = sizeof(trackers) / sizeof(trackers[0]);
	struct bench_method m[sizeof(trackers) / sizeof(trackers[0])];
	char cas[96];
	struct uffdio_api api = { .api = UFFD_API };
	int fd;

	trackers[4].skip = ps_missing();
	fd = syscall(SYS_userfaultfd, O_CLOEXEC);
	if (fd < 0 || ioctl(fd, UFFDIO_API, &api) ||
	    !(api.features & UFFD_FEATURE_PAGEFAULT_FLAG_WP))
		trackers[3].skip = "no userfaultfd write-protect";
	if (fd >= 0)
		close(fd);
	for (int i = 0; i < nr; i++) {
		m[i] = (struct bench_method){ .name = trackers[i].name,
			.role = i ? "peer" : "upage", .once = track_once,
			.ctx = &trackers[i], .skip = !!trackers[i].skip };
		if (trackers[i].skip)
			printf("# track: %s not run: %s\n", trackers[i].name,
			       trackers[i].skip);
	}
	snprintf(cas, sizeof(cas), "pages=%zu all re-written each round", pages);
	return bench_measure("track", cas, m, nr, pages) ? 1 : 0;
}

/* ---- traps: upage vs userfaultfd MISSING ---- */

/* How upage's handler resolves: LIFT, and POPULATE for the +populate row. */
static uint32_t resolve_flags = UPAGE_RESOLVE_LIFT;

static char page_data[PAGE] __attribute__((aligned(4096)));

struct trap_run {
	int fd;
	char *p;
	size_t served;
	int err;
};

static void *up_trap_handler(void *arg)
{
	struct trap_run *t = arg;
	struct upage_trap_event ev;

	while (t->served < pages) {
		if (read(t->fd, &ev, sizeof(ev)) != sizeof(ev)) {
			t->err = errno;
			break;
		}
		t->err = -upage_resolve(t->fd, ev.slot, 1, UPAGE_RESOLVE_COPY,
					resolve_flags, page_data, NULL);
		if (t->err)
			break;
		t->served++;
	}
	return NULL;
}

static void *uffd_missing_handler(void *arg)
{
	struct trap_run *t = arg;
	struct uffd_msg msg;

	while (t->served < pages) {
		struct uffdio_copy copy = { .src = (uintptr_t)page_data,
					    .len = PAGE };

		if (read(t->fd, &msg, sizeof(msg)) != sizeof(msg)) {
			t->err = errno;
			break;
		}
		if (msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		copy.dst = msg.arg.pagefault.address & ~(PAGE - 1);
		if (ioctl(t->fd, UFFDIO_COPY, &copy)) {
			t->err = errno;
			break;
		}
		t->served++;
	}
	return NULL;
}

/* How many threads fault at once in a trap run (each its share of pages). */
static int trap_threads = 1;

struct toucher {
	pthread_t th;
	char *p;
	int k;
	uint64_t sum;
};

static void *touch_share(void *arg)
{
	struct toucher *w = arg;

	for (size_t j = w->k; j < pages; j += trap_threads)
		w->sum += *(volatile uint8_t *)(w->p + j * PAGE + 7);
	return NULL;
}

/*
 * Touch every page of @t->p from trap_threads threads at once, with a
 * handler thread answering; the ns the touches took, or -1.
 */
static int64_t trap_round(struct trap_run *t, void *(*handler)(void *))
{
	struct toucher w[4] = { { 0 } };
	uint64_t t0, t1, sum = 0;
	pthread_t th;

	t->served = 0;
	t->err = 0;
	if (pthread_create(&th, NULL, handler, t))
		return -1;
	t0 = now_ns();
	for (int k = 0; k < trap_threads; k++) {
		w[k].p = t->p;
		w[k].k = k;
		if (k && pthread_create(&w[k].th, NULL, touch_share, &w[k]))
			return -1;
	}
	touch_share(&w[0]);
	for (int k = 1; k < trap_threads; k++)
		pthread_join(w[k].th, NULL);
	t1 = now_ns();
	pthread_join(th, NULL);
	for (int k = 0; k < trap_threads; k++)
		sum += w[k].sum;
	if (t->err || t->served != pages || sum != pages * 0x5a) {
		fprintf(stderr, "trap round: %s, %zu served, sum %llu\n",
			strerror(t->err), t->served, (unsigned long long)sum);
		return -1;
	}
	return t1 - t0;
}

static int64_t up_trap(void)
{
	struct trap_run t = { 0 };
	int64_t ns;
	int ret;

	t.fd = upage_open(O_CLOEXEC);
	if (t.fd < 0)
		return fail("open /dev/upage", -t.fd);
	ret = upage_resize(t.fd, pages, NULL);
	t.p = mmap(NULL, pages * PAGE, PROT_READ, MAP_SHARED, t.fd, 0);
	if (ret || t.p == MAP_FAILED)
		return fail("resize/mmap", ret ? -ret : errno);
	ret = upage_trap(t.fd, 0, pages, UPAGE_TRAP_READ);
	if (ret)
		return fail("UPAGE_TRAP", -ret);
	ns = trap_round(&t, up_trap_handler);
	munmap(t.p, pages * PAGE);
	close(t.fd);
	return ns;
}

static int64_t uffd_trap(void)
{
	struct trap_run t = { 0 };
	int64_t ns;

	t.p = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (t.p == MAP_FAILED)
		return fail("mmap", errno);
	t.fd = uffd_open(0, UFFDIO_REGISTER_MODE_MISSING, t.p, 0);
	if (t.fd < 0)
		return fail("userfaultfd MISSING", -t.fd);
	ns = trap_round(&t, uffd_missing_handler);
	close(t.fd);
	munmap(t.p, pages * PAGE);
	return ns;
}

static int up_trap_pop_once(struct bench_method *m, uint64_t *ns)
{
	int64_t t;

	(void)m;
	resolve_flags = UPAGE_RESOLVE_LIFT | UPAGE_RESOLVE_POPULATE;
	t = up_trap();
	resolve_flags = UPAGE_RESOLVE_LIFT;
	*ns = t;
	return t < 0 ? -1 : 0;
}

/* Whether the module takes UPAGE_RESOLVE_POPULATE (tried on a hole). */
static int resolve_populate_ok(void)
{
	char *base;
	int fd = bench_space(1, &base), ret;

	if (fd < 0)
		return 0;
	ret = upage_resolve(fd, 0, 1, UPAGE_RESOLVE_MAP, UPAGE_RESOLVE_POPULATE,
			    NULL, NULL);
	munmap(base, PAGE);
	close(fd);
	if (ret == -EOPNOTSUPP || ret == -EINVAL) {
		printf("# populate not supported: UPAGE_RESOLVE refuses UPAGE_RESOLVE_POPULATE (%s); no +populate row\n",
		       strerror(-ret));
		return 0;
	}
	return ret ? bench_fail("UPAGE_RESOLVE with UPAGE_RESOLVE_POPULATE: %s",
				strerror(-ret)) + 1 : 1;
}

static int up_trap_once(struct bench_method *m, uint64_t *ns)
{
	int64_t t = up_trap();

	(void)m;
	*ns = t;
	return t < 0 ? -1 : 0;
}

static int uffd_trap_once(struct bench_method *m, uint64_t *ns)
{
	int64_t t = uffd_trap();

	(void)m;
	*ns = t;
	return t < 0 ? -1 : 0;
}

static int bench_traps(void)
{
	struct bench_method m[] = {
		{ .name = "upage trap + resolve COPY", .role = "upage",
		  .once = up_trap_once },
		{ .name = "upage trap + resolve COPY+populate", .role = "upage",
		  .once = up_trap_pop_once },
		{ .name = "userfaultfd MISSING + UFFDIO_COPY", .role = "peer",
		  .once = uffd_trap_once },
	};
	char cas[64];
	int bad = 0;

	memset(page_data, 0x5a, sizeof(page_data));
	m[1].skip = !resolve_populate_ok();
	for (trap_threads = 1; trap_threads <= (bench_tiny ? 2 : 4) && !bad;
	     trap_threads *= 2) {
		snprintf(cas, sizeof(cas), "pages=%zu threads=%d read, 1 handler",
			 pages, trap_threads);
		bad = bench_measure("trap", cas, m, 3, pages) ? 1 : 0;
	}
	return bad;
}

int main(int argc, char **argv)
{
	int bad;

	setvbuf(stdout, NULL, _IOLBF, 0);
	bench_args(argc, argv, 4096, 16);
	pages = bench_pages;
	printf("# bench-track: %zu pages, %d runs per row (tracking: %d rounds a run)\n",
	       pages, bench_runs, ROUNDS);
	bench_pin_cpu0("handler threads and faulting threads share it");
	/* A method that hangs must fail the benchmark, not stall it. */
	alarm(600);
	bad = bench_tracking();
	bad |= bench_traps();
	printf("# bench-track: reports checked every round: %s\n",
	       bad ? "WRONG or FAILED" : "all right");
	return bad;
}
