// SPDX-License-Identifier: GPL-2.0
/*
 * The upage tracepoints (docs/design.md, "Tracepoints"): a fault, an edit
 * batch, an eviction, a page-in by fault and by prefetch, a trap and its
 * resolve each leave their event in tracefs, naming the right space,
 * slots and outcome. Root only: tracefs is mounted if it is not, the
 * upage events are enabled for the test and disabled after it.
 */
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

#include "upage_utils.h"

#define SLOTS 16
#define TRACEFS "/sys/kernel/tracing"
#define WAIT_MS 5000

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -EIO;
}

static int is_dir(const char *path)
{
	struct stat st;

	return !stat(path, &st) && S_ISDIR(st.st_mode);
}

/* tracefs at TRACEFS, mounted if need be: 0, or -errno if it cannot be. */
static int tracefs_ready(void)
{
	if (!access(TRACEFS "/trace", F_OK))
		return 0;
	if (mount("tracefs", TRACEFS, "tracefs", 0, NULL))
		return -errno;
	return access(TRACEFS "/trace", F_OK) ? -ENOENT : 0;
}

/* Empty the trace buffer (a write that truncates "trace" does). */
static int trace_clear(void)
{
	return write_file(TRACEFS "/trace", "");
}

/* The whole trace buffer as a string (malloc'd), NULL on error. */
static char *trace_read(void)
{
	size_t len = 0, cap = 1 << 16;
	char *buf = malloc(cap);
	ssize_t n;
	int fd;

	fd = open(TRACEFS "/trace", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || !buf) {
		if (fd >= 0)
			close(fd);
		free(buf);
		return NULL;
	}
	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += n;
		if (cap - len < 4096) {
			char *bigger = realloc(buf, cap * 2);

			if (!bigger)
				break;
			buf = bigger;
			cap *= 2;
		}
	}
	close(fd);
	buf[len] = '\0';
	return buf;
}

/* Whether the fields @f (up to @end) hold the word @tok. */
static int has_token(const char *f, const char *end, const char *tok)
{
	size_t len = strlen(tok);
	const char *p = f;

	while ((p = strstr(p, tok)) && p < end) {
		if ((p == f || p[-1] == ' ') &&
		    (p + len == end || p[len] == ' '))
			return 1;
		p += len;
	}
	return 0;
}

/*
 * How many events @event (e.g. "upage_fault") in @trace have every word
 * of the NULL-terminated list (e.g. "slot=3", "result=mapped").
 */
static int count_events(const char *trace, const char *event, ...)
{
	char key[64];
	const char *line = trace;
	int count = 0;

	snprintf(key, sizeof(key), " %s: ", event);
	while (line && *line) {
		const char *end = strchrnul(line, '\n');
		const char *f = strstr(line, key);

		if (f && f < end) {
			const char *tok;
			va_list ap;
			int all = 1;

			f += strlen(key);
			va_start(ap, event);
			while ((tok = va_arg(ap, const char *)))
				all &= has_token(f, end, tok);
			va_end(ap);
			count += all;
		}
		line = *end ? end + 1 : NULL;
	}
	return count;
}

/* The space= of the first @event with word @tok in @trace; 0 if none. */
static unsigned long long event_space(const char *trace, const char *event,
				      const char *tok)
{
	char key[64];
	const char *line = trace;

	snprintf(key, sizeof(key), " %s: ", event);
	while (line && *line) {
		const char *end = strchrnul(line, '\n');
		const char *f = strstr(line, key);
		unsigned long long id;

		if (f && f < end && has_token(f + strlen(key), end, tok) &&
		    sscanf(f + strlen(key), "space=%llu", &id) == 1)
			return id;
		line = *end ? end + 1 : NULL;
	}
	return 0;
}

/* The sum of the numbers @key=N of every @event in @trace. */
static unsigned long long sum_field(const char *trace, const char *event,
				    const char *key)
{
	unsigned long long sum = 0, v;
	const char *line = trace;
	char ev[64], k[32];

	snprintf(ev, sizeof(ev), " %s: ", event);
	snprintf(k, sizeof(k), " %s=", key);
	while (line && *line) {
		const char *end = strchrnul(line, '\n');
		const char *f = strstr(line, ev);
		const char *at;

		if (f && f < end) {
			at = strstr(f + strlen(ev) - 1, k);
			if (at && at < end &&
			    sscanf(at + strlen(k), "%llu", &v) == 1)
				sum += v;
		}
		line = *end ? end + 1 : NULL;
	}
	return sum;
}

/* The "upage_space:" of /proc/self/fdinfo/@fd, 0 if fdinfo has none. */
static unsigned long long fdinfo_space(int fd)
{
	unsigned long long id = 0;
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "upage_space: %llu", &id) == 1)
			break;
	}
	fclose(f);
	return id;
}

/*
 * Read slot @slot of the mapping @p (a hole: it faults) and return the
 * space id its upage_fault event names, 0 if there was none. The trace is
 * cleared before and after.
 */
static unsigned long long space_id_by_fault(volatile unsigned char *p,
					    unsigned int slot)
{
	unsigned long long id;
	char tok[32], *trace;

	if (trace_clear())
		return 0;
	(void)p[slot * PAGE];
	trace = trace_read();
	if (!trace)
		return 0;
	snprintf(tok, sizeof(tok), "slot=%u", slot);
	id = event_space(trace, "upage_fault", tok);
	free(trace);
	trace_clear();
	return id;
}

FIXTURE(tr) {
	int fd;
	volatile unsigned char *p;
	int enabled;
	char *trace;
	char space[48];		/* "space=<id>" */
	unsigned long long id;
};

FIXTURE_SETUP(tr)
{
	self->fd = -1;
	self->p = NULL;
	self->enabled = 0;
	self->trace = NULL;
	if (geteuid())
		SKIP(return, "tracefs needs root");
	if (tracefs_ready())
		SKIP(return, "tracefs cannot be mounted at " TRACEFS);
	if (!is_dir(TRACEFS "/events"))
		SKIP(return, "kernel without trace events");
	upage_open_or_skip(self->fd);
	/* The kernel has events, so the module must have its own. */
	ASSERT_TRUE(is_dir(TRACEFS "/events/upage"));
	ASSERT_EQ(0, write_file(TRACEFS "/events/upage/enable", "1"));
	self->enabled = 1;
	ASSERT_EQ(0, write_file(TRACEFS "/tracing_on", "1"));

	upage_resize_ok(self->fd, SLOTS);
	self->p = upage_map(self->fd, 0, SLOTS, MAP_SHARED);
	ASSERT_NE(NULL, self->p);
	/* Slot 0 is the space's hole to learn its id by. */
	self->id = space_id_by_fault(self->p, 0);
	ASSERT_NE(0, self->id);
	snprintf(self->space, sizeof(self->space), "space=%llu", self->id);
	/* The id of fdinfo, where the module prints one. */
	if (fdinfo_space(self->fd))
		ASSERT_EQ(self->id, fdinfo_space(self->fd));
}

/* The upage events of @trace, as TAP comments (for a failed test). */
static void dump_events(const char *trace)
{
	const char *line = trace;

	while (line && *line) {
		const char *end = strchrnul(line, '\n');

		if (memmem(line, end - line, " upage_", 7))
			printf("# %.*s\n", (int)(end - line), line);
		line = *end ? end + 1 : NULL;
	}
}

FIXTURE_TEARDOWN(tr)
{
	if (self->trace && (_metadata->exit_code == KSFT_FAIL ||
			    getenv("UPAGE_TRACE_DUMP")))
		dump_events(self->trace);
	free(self->trace);
	if (self->enabled) {
		write_file(TRACEFS "/events/upage/filter", "0");
		write_file(TRACEFS "/events/upage/enable", "0");
	}
	if (self->p)
		munmap((void *)self->p, SLOTS * PAGE);
	if (self->fd >= 0)
		close(self->fd);
}

/* The trace buffer now, kept in the fixture (freed by teardown). */
static const char *snap(FIXTURE_DATA(tr) *self)
{
	free(self->trace);
	self->trace = trace_read();
	return self->trace ? self->trace : "";
}

/*
 * A read and a write of holes: each maps, each is one event of the space
 * with the exact address.
 */
TEST_F(tr, fault_on_hole_names_slot_access_and_result)
{
	char a2[48], a3[48];
	const char *t;

	snprintf(a2, sizeof(a2), "address=%p", (void *)(self->p + 2 * PAGE + 9));
	snprintf(a3, sizeof(a3), "address=%p", (void *)(self->p + 3 * PAGE + 5));
	ASSERT_EQ(0, trace_clear());
	(void)self->p[2 * PAGE + 9];
	self->p[3 * PAGE + 5] = 1;
	t = snap(self);
	EXPECT_EQ(1, count_events(t, "upage_fault", self->space, "slot=2", a2,
				  "read", "result=mapped", NULL));
	EXPECT_EQ(1, count_events(t, "upage_fault", self->space, "slot=3", a3,
				  "write", "result=mapped", NULL));
	/* Nothing of another space. */
	EXPECT_EQ(count_events(t, "upage_fault", NULL),
		  count_events(t, "upage_fault", self->space, NULL));
}

/* Two spaces have two ids; each event names its own, and filters by it. */
TEST_F(tr, two_spaces_have_different_ids)
{
	volatile unsigned char *q;
	unsigned long long other;
	char filter[64];
	const char *t;
	int fd2;

	upage_open_or_skip(fd2);
	upage_resize_ok(fd2, 4);
	q = upage_map(fd2, 0, 4, MAP_SHARED);
	ASSERT_NE(NULL, q);
	other = space_id_by_fault(q, 1);
	EXPECT_NE(0, other);
	EXPECT_NE(self->id, other);
	EXPECT_EQ(self->id, space_id_by_fault(self->p, 4));

	/* A filter on the space field keeps one space's events. */
	snprintf(filter, sizeof(filter), "space == %llu", other);
	ASSERT_EQ(0, write_file(TRACEFS "/events/upage/filter", filter));
	ASSERT_EQ(0, trace_clear());
	(void)self->p[5 * PAGE];
	(void)q[2 * PAGE];
	t = snap(self);
	EXPECT_EQ(0, write_file(TRACEFS "/events/upage/filter", "0"));
	snprintf(filter, sizeof(filter), "space=%llu", other);
	EXPECT_EQ(1, count_events(t, "upage_fault", filter, "slot=2", NULL));
	EXPECT_EQ(1, count_events(t, "upage_fault", NULL));
	munmap((void *)q, 4 * PAGE);
	close(fd2);
}

/*
 * A batch that commits reports its ops and the slots it changed; one that
 * fails reports its errno and the op that failed, and changed nothing.
 */
TEST_F(tr, edit_batches_report_changes_and_errno)
{
	struct upage_edit_op good[] = {
		{ .op = UPAGE_OP_ALIAS, .dst = 1, .src = 0, .n = 1 },
		{ .op = UPAGE_OP_PROTECT, .dst = 2, .n = 2,
		  .prot = UPAGE_PROT_READ },
	};
	struct upage_edit_op bad[] = {
		{ .op = UPAGE_OP_ALIAS, .dst = 1, .src = 0, .n = 1 },
		{ .op = UPAGE_OP_PROTECT, .dst = 2, .n = 2, .prot = 99 },
		{ .op = UPAGE_OP_DISCARD, .dst = 0, .n = 1 },
	};
	char eopnotsupp[16];
	const char *t;

	ASSERT_EQ(0, trace_clear());
	upage_edit_ok(self->fd, good, 2);
	upage_edit_err(EOPNOTSUPP, 1, self->fd, bad, 3);
	t = snap(self);
	/* Slot 1 takes slot 0's frame; slots 2 and 3 lose write access. */
	EXPECT_EQ(1, count_events(t, "upage_edit", self->space, "ops=2",
				  "changed=3", "error_index=-1", "ret=0", NULL));
	snprintf(eopnotsupp, sizeof(eopnotsupp), "ret=%d", -EOPNOTSUPP);
	EXPECT_EQ(1, count_events(t, "upage_edit", self->space, "ops=3",
				  "changed=0", "error_index=1", eopnotsupp,
				  NULL));
	EXPECT_EQ(2, count_events(t, "upage_edit", NULL));
}

/*
 * An eviction reports the frames it wrote; a fault on an evicted slot and
 * a prefetch of the rest each report the slots they brought back.
 */
TEST_F(tr, evict_then_fault_and_prefetch_page_in)
{
	uint64_t done = 0;
	const char *t;
	int i;

	upage_require_cmd(self->fd, UPAGE_CMD_RESIDENCY);
	for (i = 4; i < 8; i++)
		upage_fill(self->p, i, 0x40 + i);
	ASSERT_EQ(0, trace_clear());
	ASSERT_EQ(0, upage_evict(self->fd, 4, 4, &done));
	ASSERT_EQ(4, done);
	EXPECT_TRUE(upage_page_is(self->p, 5, 0x45));
	ASSERT_EQ(0, upage_prefetch(self->fd, 4, 4, &done));
	ASSERT_EQ(3, done);
	t = snap(self);
	EXPECT_EQ(1, count_events(t, "upage_evict", self->space, "first=4",
				  "n=4", "done=4", "ret=0", NULL));
	EXPECT_EQ(1, count_events(t, "upage_page_in", self->space, "slot=5",
				  "by=fault", "ret=1", NULL));
	EXPECT_EQ(1, count_events(t, "upage_page_in", self->space, "slot=4",
				  "by=prefetch", "ret=1", NULL));
	EXPECT_EQ(1, count_events(t, "upage_page_in", self->space, "slot=6",
				  "by=prefetch", "ret=1", NULL));
	EXPECT_EQ(1, count_events(t, "upage_page_in", self->space, "slot=7",
				  "by=prefetch", "ret=1", NULL));
	/* Slot 5 was back already: the prefetch had nothing to say of it. */
	EXPECT_EQ(4, count_events(t, "upage_page_in", NULL));
	EXPECT_EQ(1, count_events(t, "upage_fault", self->space, "slot=5",
				  "read", "result=mapped", NULL));
}

/* Run every shrinker, ours included. */
static int drop_caches(void)
{
	return write_file("/proc/sys/vm/drop_caches", "2");
}

/*
 * The shrinker's scans report the lazily freed frames they dropped: as
 * many as the space counts reclaimed.
 */
TEST_F(tr, shrinker_scan_reports_reclaimed_lazy_frames)
{
	struct upage_stats before, after;
	uint64_t done = 0;
	const char *t;
	int i;

	upage_require_cmd(self->fd, UPAGE_CMD_RESIDENCY);
	for (i = 8; i < 12; i++)
		upage_fill(self->p, i, 0x80 + i);
	ASSERT_EQ(0, upage_lazy_free(self->fd, 8, 4, &done));
	ASSERT_EQ(4, done);
	ASSERT_EQ(0, upage_stats(self->fd, &before));
	ASSERT_EQ(0, trace_clear());
	ASSERT_EQ(0, drop_caches());
	ASSERT_EQ(0, upage_stats(self->fd, &after));
	t = snap(self);
	EXPECT_LE(1, count_events(t, "upage_reclaim", NULL));
	EXPECT_EQ(4, after.out_reclaims - before.out_reclaims);
	EXPECT_EQ(after.out_reclaims - before.out_reclaims,
		  sum_field(t, "upage_reclaim", "lazy"));
	EXPECT_LE(1, sum_field(t, "upage_reclaim", "spaces"));
}

struct toucher {
	volatile unsigned char *addr;
	unsigned char val;
	int tid;
	pthread_t th;
};

static void *toucher_run(void *arg)
{
	struct toucher *t = arg;

	__atomic_store_n(&t->tid, (int)syscall(SYS_gettid), __ATOMIC_SEQ_CST);
	t->val = *t->addr;
	return NULL;
}

/*
 * A thread's read of a trapped slot: the trap event names the slot, the
 * access and the thread; the fault that waited ends "trapped", the one
 * after the resolve maps; the resolve reports that it woke one thread.
 */
TEST_F(tr, trap_and_resolve_name_the_thread_and_the_woken)
{
	struct upage_trap_event ev;
	struct pollfd pfd = { .fd = self->fd, .events = POLLIN };
	struct toucher th = { .addr = self->p + 9 * PAGE + 17 };
	uint64_t woken = 99;
	char tid[32];
	const char *t;

	upage_require_cmd(self->fd, UPAGE_CMD_TRAP);
	upage_fill(self->p, 9, 0x99);
	ASSERT_EQ(0, upage_trap(self->fd, 9, 1, UPAGE_TRAP_READ));
	ASSERT_EQ(0, trace_clear());
	ASSERT_EQ(0, pthread_create(&th.th, NULL, toucher_run, &th));
	ASSERT_EQ(1, poll(&pfd, 1, WAIT_MS));
	ASSERT_EQ(sizeof(ev), read(self->fd, &ev, sizeof(ev)));
	ASSERT_EQ(9, ev.slot);
	ASSERT_EQ(0, upage_resolve(self->fd, 9, 1, UPAGE_RESOLVE_MAP,
				   UPAGE_RESOLVE_LIFT, NULL, &woken));
	EXPECT_EQ(1, woken);
	ASSERT_EQ(0, pthread_join(th.th, NULL));
	EXPECT_EQ(0x99, th.val);
	EXPECT_EQ(ev.tid, (uint32_t)th.tid);

	t = snap(self);
	snprintf(tid, sizeof(tid), "tid=%d", th.tid);
	EXPECT_EQ(1, count_events(t, "upage_trap", self->space, "slot=9",
				  "access=read", tid, "queued=1", NULL));
	EXPECT_EQ(1, count_events(t, "upage_fault", self->space, "slot=9",
				  "read", "result=trapped", NULL));
	EXPECT_EQ(1, count_events(t, "upage_fault", self->space, "slot=9",
				  "read", "result=mapped", NULL));
	EXPECT_EQ(1, count_events(t, "upage_resolve", self->space, "first=9",
				  "n=1", "action=map", "lift=1", "woken=1",
				  "ret=0", NULL));
}

TEST_HARNESS_MAIN
