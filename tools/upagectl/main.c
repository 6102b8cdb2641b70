// SPDX-License-Identifier: GPL-2.0
/*
 * upagectl: load the upage module, list its spaces, draw a process's
 * spaces, and look at and edit one space from the command line.
 *
 *   upagectl [-J] load [--module PATH] [param=value...] | unload | info
 *   upagectl [-J] spaces
 *   upagectl [-J] [--color|--no-color] map PID [--svg FILE]
 *   upagectl [-J] [-p PID] -f FD stats | query FIRST [N] | dirty ...
 *   upagectl [-p PID] -f FD resize|alias|...|evict|...|store|trap-timeout
 *
 * A space is reachable only through its fd: -p PID -f FD takes a copy of
 * process PID's fd FD with pidfd_getfd(2) (which needs ptrace permission);
 * -f FD alone uses an fd this process inherited. Exit status: 0 on
 * success, 1 when the kernel or module refused the call, 2 for bad usage.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "upagectl.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

bool opt_json;
int opt_color = -1;
const char *cmd_name = "upagectl";

/*
 * One usage line per command, printed whole by usage() and alone after a
 * wrong number of arguments; @names are the commands the line is for.
 */
static const struct {
	const char *names;
	const char *line;
} usage_lines[] = {
	{ "load", "load [--module PATH] [param=value...]" },
	{ "unload", "unload" },
	{ "info", "[-J] info" },
	{ "spaces", "[-J] spaces" },
	{ "map", "[-J] [--color|--no-color] map PID [--svg FILE]" },
	{ "stats", "[-J] [-p PID] -f FD stats" },
	{ "query", "[-J] [-p PID] -f FD query FIRST [N]" },
	{ "resize", "[-p PID] -f FD resize PAGES" },
	{ "alias alias-cow move swap",
	  "[-p PID] -f FD alias|alias-cow|move|swap DST SRC [N]" },
	{ "protect", "[-p PID] -f FD protect FIRST N none|read|rw" },
	{ "track", "[-p PID] -f FD track FIRST N start|stop" },
	{ "dirty", "[-J] [-p PID] -f FD dirty FIRST N [clear]" },
	{ "trap", "[-p PID] -f FD trap FIRST N read|write|rw|none" },
	{ "evict prefetch discard pin unpin lazy-free",
	  "[-p PID] -f FD evict|prefetch|discard|pin|unpin|lazy-free FIRST N" },
	{ "resolve", "[-p PID] -f FD resolve FIRST N map|zero|sigbus [lift]" },
	{ "store", "[-p PID] -f FD store FILE [OFFSET] [reclaim]" },
	{ "trap-timeout", "[-p PID] -f FD trap-timeout MS" },
};

static void print_usage(FILE *f)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(usage_lines); i++)
		fprintf(f, "%s upagectl %s\n", i ? "      " : "usage:",
			usage_lines[i].line);
	fprintf(f, "       upagectl -h|--help\n");
}

void usage(void)
{
	print_usage(stderr);
	exit(2);
}

/* The usage line of command @name, or -1 if there is no such command. */
static int usage_index(const char *name)
{
	size_t i, len = strlen(name), word;
	const char *p;

	for (i = 0; i < ARRAY_SIZE(usage_lines); i++) {
		for (p = usage_lines[i].names; *p; p += word + (p[word] == ' ')) {
			word = strcspn(p, " ");
			if (word == len && !strncmp(p, name, len))
				return i;
		}
	}
	return -1;
}

/* A wrong number of arguments to @name: its usage line alone, exit 2. */
void command_usage(const char *name)
{
	int i = usage_index(name);

	if (i < 0)
		usage();
	fprintf(stderr, "usage: upagectl %s\n", usage_lines[i].line);
	exit(2);
}

void bad_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "upagectl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(2);
}

/* "upagectl: <what>: <strerror>: <todo>" and exit 1. */
void fail(const char *what, int err, const char *todo)
{
	fprintf(stderr, "upagectl: %s: %s%s%s\n", what, strerror(err),
		todo ? ": " : "", todo ? todo : "");
	exit(1);
}

/*
 * What UPAGE_STORE's errnos mean (module/store.c): the file upagectl
 * opened read-write is checked, then the space for evicted frames and
 * writes in flight. A queued punch of the old store is waited for, never
 * returned.
 */
static const char *explain_store(int err)
{
	switch (err) {
	case EBUSY:
		return "a frame of the space is evicted or being written out: prefetch the evicted slots first";
	case EINVAL:
		return "not a regular file, opened with O_APPEND or O_DIRECT, or OFFSET not page-aligned or too large for the largest space";
	case EBADF:
		return "the file cannot be both read and written";
	default:
		return NULL;
	}
}

/* What each documented errno means for the call that returned it. */
static const char *explain(const char *cmd, int err)
{
	if (!strcmp(cmd, "store") && explain_store(err))
		return explain_store(err);
	switch (err) {
	case EINVAL:
		return "a slot range is empty, overflows, lies beyond the space's size, or overlaps";
	case EOPNOTSUPP:
		return "an unknown op, flag or protection value";
	case EBUSY:
		return "a frame is pinned by get_user_pages (O_DIRECT, vmsplice, io_uring)";
	case ENOSPC:
		return "a module limit (max_space_pages, max_total_pages) would be exceeded";
	case ENOMEM:
		return "out of memory, or the memory cgroup is at its limit";
	case ENOTTY:
		return "not a upage space, or the module lacks this ioctl";
	case EFAULT:
		return "a buffer is not accessible";
	case E2BIG:
		return "the module does not know a non-zero field of the struct";
	case ENOENT:
		return "no such slot or mapping";
	case EIO:
		return "the store could not be read or written";
	default:
		return NULL;
	}
}

/* Report a refused call and exit 1. */
void refused(int ret)
{
	fail(cmd_name, -ret, explain(cmd_name, -ret));
}

uint64_t parse_u64(const char *what, const char *s)
{
	char *end;
	unsigned long long v;

	/* strtoull() skips blanks and takes a sign: " -1" would wrap. */
	if (!isdigit((unsigned char)*s))
		bad_usage(what, s);
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end)
		bad_usage(what, s);
	return v;
}

/* A PID or descriptor: a number that fits an int, else exit 2. */
int parse_int(const char *name, const char *s)
{
	char what[64];
	uint64_t v;

	snprintf(what, sizeof(what), "bad %s '%%s': not a number", name);
	v = parse_u64(what, s);
	if (v > INT_MAX)
		bad_usage("bad %s '%s': at most %d", name, s, INT_MAX);
	return (int)v;
}

/* Hidden overrides of where /proc, debugfs and sysfs are, for the tests. */
static const char *env_or(const char *name, const char *dflt)
{
	const char *v = getenv(name);

	return v && *v ? v : dflt;
}

const char *proc_root(void)
{
	return env_or("UPAGE_PROC", "/proc");
}

const char *debugfs_spaces(void)
{
	return env_or("UPAGE_DEBUGFS", "/sys/kernel/debug/upage/spaces");
}

const char *sysmod_root(void)
{
	return env_or("UPAGE_SYSMOD", "/sys/module/upage");
}

int take_fd(pid_t pid, int fd)
{
	int pidfd, copy, err;

	pidfd = syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return -1;
	copy = syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	err = errno;
	close(pidfd);
	errno = err;
	return copy;
}

static int space_fd(const char *pid_s, const char *fd_s)
{
	int fd = parse_int("fd", fd_s);
	char what[64];
	int copy;
	pid_t pid;

	if (!pid_s)
		return fd;
	pid = parse_int("pid", pid_s);
	copy = take_fd(pid, fd);
	if (copy < 0) {
		snprintf(what, sizeof(what), "fd %d of pid %d", fd, pid);
		fail(what, errno, errno == EPERM ?
		     "ptrace permission is needed (same user, or CAP_SYS_PTRACE)" :
		     errno == ESRCH ? "no such process" : NULL);
	}
	return copy;
}

static const char *prot_name(uint32_t prot)
{
	switch (prot) {
	case UPAGE_PROT_NONE:
		return "none";
	case UPAGE_PROT_READ:
		return "read";
	case UPAGE_PROT_RW:
		return "rw";
	}
	return "?";
}

static int cmd_stats(int fd)
{
	static const char *const names[] = {
		"pages", "frames", "faults", "zero_fills", "cow_breaks",
		"edits", "batches", "evictions", "page_ins", "bytes_written",
		"bytes_read", "reclaims", "shrinker_evictions",
		"tracked_writes", "traps", "traps_resolved", "traps_timed_out",
	};
	struct upage_stats st;
	uint64_t v[ARRAY_SIZE(names)];
	size_t i;
	int ret = upage_stats(fd, &st);

	if (ret)
		refused(ret);
	v[0] = st.out_pages;
	v[1] = st.out_frames;
	v[2] = st.out_faults;
	v[3] = st.out_zero_fills;
	v[4] = st.out_cow_breaks;
	v[5] = st.out_edits;
	v[6] = st.out_batches;
	v[7] = st.out_evictions;
	v[8] = st.out_page_ins;
	v[9] = st.out_bytes_written;
	v[10] = st.out_bytes_read;
	v[11] = st.out_reclaims;
	v[12] = st.out_shrinker_evictions;
	v[13] = st.out_tracked_writes;
	v[14] = st.out_traps;
	v[15] = st.out_traps_resolved;
	v[16] = st.out_traps_timed_out;
	if (opt_json)
		json_begin(NULL);
	for (i = 0; i < ARRAY_SIZE(names); i++) {
		if (opt_json)
			json_u64(names[i], v[i]);
		else
			printf("%s %" PRIu64 "\n", names[i], v[i]);
	}
	if (opt_json) {
		json_end();
		json_finish();
	}
	return 0;
}

static const struct {
	uint32_t bit;
	const char *name;
} state_names[] = {
	{ UPAGE_SLOT_RESIDENT, "resident" },
	{ UPAGE_SLOT_EVICTED, "evicted" },
	{ UPAGE_SLOT_RECLAIMED, "reclaimed" },
	{ UPAGE_SLOT_COW, "cow" },
	{ UPAGE_SLOT_PINNED, "pinned" },
	{ UPAGE_SLOT_LAZY, "lazy" },
	{ UPAGE_SLOT_TRACKED, "tracked" },
	{ UPAGE_SLOT_DIRTY, "dirty" },
	{ UPAGE_SLOT_TRAP_READ, "trap_read" },
	{ UPAGE_SLOT_TRAP_WRITE, "trap_write" },
};

#define SLOT_HAS_DATA (UPAGE_SLOT_RESIDENT | UPAGE_SLOT_EVICTED | UPAGE_SLOT_RECLAIMED)

static void json_slot(uint64_t slot, const struct upage_slot_info *info)
{
	size_t i;

	json_begin(NULL);
	json_u64("slot", slot);
	json_u64("frame_id", info->frame_id);
	json_u64("pfn", info->pfn);
	json_str("prot", prot_name(info->prot));
	json_u64("nr_aliases", info->nr_aliases);
	json_begin_array("state");
	if (!(info->state & SLOT_HAS_DATA))
		json_str(NULL, "hole");
	for (i = 0; i < ARRAY_SIZE(state_names); i++)
		if (info->state & state_names[i].bit)
			json_str(NULL, state_names[i].name);
	json_end_array();
	json_end();
}

static void print_slot(uint64_t slot, const struct upage_slot_info *info)
{
	uint32_t st = info->state;

	printf("%-10" PRIu64 " %-10llu %-6s %-8u 0x%-16llx %s%s%s%s%s%s%s%s%s\n",
	       slot, (unsigned long long)info->frame_id,
	       prot_name(info->prot), info->nr_aliases,
	       (unsigned long long)info->pfn,
	       st & UPAGE_SLOT_RESIDENT ? "resident" :
	       st & UPAGE_SLOT_EVICTED ? "evicted" :
	       st & UPAGE_SLOT_RECLAIMED ? "reclaimed" : "hole",
	       st & UPAGE_SLOT_COW ? ",cow" : "",
	       st & UPAGE_SLOT_PINNED ? ",pinned" : "",
	       st & UPAGE_SLOT_LAZY ? ",lazy" : "",
	       (st & UPAGE_SLOT_RECLAIMED) && (st & UPAGE_SLOT_RESIDENT) ?
	       ",reclaimed" : "",
	       st & UPAGE_SLOT_TRACKED ? ",tracked" : "",
	       st & UPAGE_SLOT_DIRTY ? ",dirty" : "",
	       st & UPAGE_SLOT_TRAP_READ ? ",trap-read" : "",
	       st & UPAGE_SLOT_TRAP_WRITE ? ",trap-write" : "");
}

static int cmd_query(int fd, uint64_t first, uint64_t n)
{
	struct upage_slot_info *info;
	uint64_t i;
	int ret;

	if (n > (1U << 20))
		bad_usage("query of %s slots: at most 1048576 at once", "that many");
	info = calloc(n ? n : 1, sizeof(*info));
	if (!info)
		refused(-ENOMEM);
	ret = upage_query(fd, first, n, info);
	if (ret)
		refused(ret);
	if (opt_json) {
		json_begin(NULL);
		json_u64("first", first);
		json_u64("n", n);
		json_begin_array("slots");
	} else {
		printf("%-10s %-10s %-6s %-8s %-18s %s\n", "slot", "frame",
		       "prot", "aliases", "pfn", "state");
	}
	for (i = 0; i < n; i++) {
		if (opt_json)
			json_slot(first + i, &info[i]);
		else
			print_slot(first + i, &info[i]);
	}
	if (opt_json) {
		json_end_array();
		json_end();
		json_finish();
	}
	free(info);
	return 0;
}

static int cmd_track(int fd, int argc, char **argv)
{
	uint64_t first, n;
	int ret = 0;

	if (argc != 4)
		command_usage(argv[0]);
	first = parse_u64("bad slot '%s': not a number", argv[1]);
	n = parse_u64("bad count '%s': not a number", argv[2]);
	if (!strcmp(argv[3], "start"))
		ret = upage_track_start(fd, first, n);
	else if (!strcmp(argv[3], "stop"))
		ret = upage_track_stop(fd, first, n);
	else
		bad_usage("bad tracking '%s': use start or stop", argv[3]);
	if (ret)
		refused(ret);
	return 0;
}

static bool bit_at(const uint64_t *bits, uint64_t i)
{
	return bits[i / 64] & (1ULL << (i % 64));
}

/* Print the written slots of first..first+n-1 as ranges, one line. */
static int cmd_dirty(int fd, int argc, char **argv)
{
	uint64_t first, n, nr, i, *bits;
	uint32_t flags = 0;
	int ret;

	if (argc != 3 && argc != 4)
		command_usage(argv[0]);
	first = parse_u64("bad slot '%s': not a number", argv[1]);
	n = parse_u64("bad count '%s': not a number", argv[2]);
	if (argc == 4) {
		if (strcmp(argv[3], "clear"))
			bad_usage("bad option '%s': use clear", argv[3]);
		flags = UPAGE_DIRTY_CLEAR;
	}
	if (n > (1U << 20))
		bad_usage("dirty of %s slots: at most 1048576 at once", "that many");
	bits = calloc(n / 64 + 1, sizeof(*bits));
	if (!bits)
		refused(-ENOMEM);
	ret = upage_dirty(fd, first, n, bits, flags, &nr);
	if (ret)
		refused(ret);
	if (opt_json) {
		json_begin(NULL);
		json_u64("first", first);
		json_u64("n", n);
		json_u64("nr_dirty", nr);
		json_bool("cleared", flags & UPAGE_DIRTY_CLEAR);
		json_begin_array("written");
	} else {
		printf("%llu written:", (unsigned long long)nr);
	}
	for (i = 0; i < n; i++) {
		uint64_t end = i;

		if (!bit_at(bits, i))
			continue;
		while (end + 1 < n && bit_at(bits, end + 1))
			end++;
		if (opt_json) {
			json_begin(NULL);
			json_u64("first", first + i);
			json_u64("last", first + end);
			json_end();
		} else if (end == i) {
			printf(" %llu", (unsigned long long)(first + i));
		} else {
			printf(" %llu-%llu", (unsigned long long)(first + i),
			       (unsigned long long)(first + end));
		}
		i = end;
	}
	if (opt_json) {
		json_end_array();
		json_end();
		json_finish();
	} else {
		printf("\n");
	}
	free(bits);
	return 0;
}

static int cmd_trap(int fd, int argc, char **argv)
{
	static const struct {
		const char *name;
		uint32_t access;
	} kinds[] = {
		{ "read", UPAGE_TRAP_READ },
		{ "write", UPAGE_TRAP_WRITE },
		{ "rw", UPAGE_TRAP_READ | UPAGE_TRAP_WRITE },
		{ "none", 0 },
	};
	uint64_t first, n;
	size_t i;
	int ret;

	if (argc != 4)
		command_usage(argv[0]);
	first = parse_u64("bad slot '%s': not a number", argv[1]);
	n = parse_u64("bad count '%s': not a number", argv[2]);
	for (i = 0; i < ARRAY_SIZE(kinds); i++)
		if (!strcmp(argv[3], kinds[i].name))
			break;
	if (i == ARRAY_SIZE(kinds))
		bad_usage("bad trap '%s': use read, write, rw or none", argv[3]);
	ret = upage_trap(fd, first, n, kinds[i].access);
	if (ret)
		refused(ret);
	return 0;
}

/* evict, prefetch, pin, unpin, lazy-free, discard FIRST N. */
static int cmd_residency(int fd, int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int fd, uint64_t first, uint64_t n, uint64_t *done);
	} ops[] = {
		{ "evict", upage_evict },
		{ "prefetch", upage_prefetch },
		{ "pin", upage_pin },
		{ "unpin", upage_unpin },
		{ "lazy-free", upage_lazy_free },
	};
	uint64_t first, n, done = 0;
	size_t i;
	int ret;

	if (argc != 3)
		command_usage(argv[0]);
	first = parse_u64("bad slot '%s': not a number", argv[1]);
	n = parse_u64("bad count '%s': not a number", argv[2]);
	if (!strcmp(argv[0], "discard")) {
		ret = upage_discard(fd, first, n);
		if (ret)
			refused(ret);
		return 0;
	}
	for (i = 0; i < ARRAY_SIZE(ops); i++)
		if (!strcmp(argv[0], ops[i].name))
			break;
	/* The dispatcher names these commands too: keep the two in step. */
	if (i == ARRAY_SIZE(ops))
		bad_usage("unknown command '%s'", argv[0]);
	ret = ops[i].fn(fd, first, n, &done);
	if (ret)
		refused(ret);
	/* done counts frames, not slots: fewer is no partial failure. */
	printf("%s: %llu frames (of %llu slots)\n", argv[0],
	       (unsigned long long)done, (unsigned long long)n);
	return 0;
}

static int cmd_resolve(int fd, int argc, char **argv)
{
	static const struct {
		const char *name;
		uint32_t action;
	} actions[] = {
		{ "map", UPAGE_RESOLVE_MAP },
		{ "zero", UPAGE_RESOLVE_ZERO },
		{ "sigbus", UPAGE_RESOLVE_SIGBUS },
	};
	uint64_t first, n, woken = 0;
	uint32_t flags = 0;
	size_t i;
	int ret;

	if (argc != 4 && argc != 5)
		command_usage(argv[0]);
	first = parse_u64("bad slot '%s': not a number", argv[1]);
	n = parse_u64("bad count '%s': not a number", argv[2]);
	for (i = 0; i < ARRAY_SIZE(actions); i++)
		if (!strcmp(argv[3], actions[i].name))
			break;
	if (i == ARRAY_SIZE(actions))
		bad_usage("bad resolve '%s': use map, zero or sigbus (copy needs a buffer: use the library)",
			  argv[3]);
	if (argc == 5) {
		if (strcmp(argv[4], "lift"))
			bad_usage("bad option '%s': use lift", argv[4]);
		flags = UPAGE_RESOLVE_LIFT;
	}
	ret = upage_resolve(fd, first, n, actions[i].action, flags, NULL, &woken);
	if (ret)
		refused(ret);
	printf("resolve: %llu threads woken\n", (unsigned long long)woken);
	return 0;
}

/* store FILE [OFFSET] [reclaim]: FILE becomes the space's backing store. */
static int cmd_store(int fd, int argc, char **argv)
{
	uint64_t offset = 0;
	uint32_t flags = 0;
	char what[300];
	int i, sfd, ret;

	if (argc < 2 || argc > 4)
		command_usage(argv[0]);
	for (i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "reclaim"))
			flags = UPAGE_STORE_RECLAIM;
		else if (i == 2)
			offset = parse_u64("bad offset '%s': not a number", argv[i]);
		else
			bad_usage("bad option '%s': use reclaim", argv[i]);
	}
	sfd = open(argv[1], O_RDWR | O_CLOEXEC);
	if (sfd < 0) {
		snprintf(what, sizeof(what), "store: open %s", argv[1]);
		fail(what, errno, "give a file this user may read and write");
	}
	ret = upage_set_store(fd, sfd, offset, flags);
	if (ret)
		refused(ret);
	close(sfd);
	return 0;
}

static int cmd_trap_timeout(int fd, int argc, char **argv)
{
	uint64_t ms;
	int ret;

	if (argc != 2)
		command_usage(argv[0]);
	ms = parse_u64("bad timeout '%s': not a number of milliseconds", argv[1]);
	if (ms > UINT32_MAX)
		bad_usage("bad timeout '%s': at most 4294967295 ms", argv[1]);
	ret = upage_trap_timeout(fd, (uint32_t)ms);
	if (ret)
		refused(ret);
	return 0;
}

static uint32_t parse_prot(const char *s)
{
	if (!strcmp(s, "none"))
		return UPAGE_PROT_NONE;
	if (!strcmp(s, "read"))
		return UPAGE_PROT_READ;
	if (!strcmp(s, "rw"))
		return UPAGE_PROT_RW;
	bad_usage("bad protection '%s': use none, read or rw", s);
}

static const struct {
	const char *name;
	uint32_t op;
} edit_ops[] = {
	{ "alias", UPAGE_OP_ALIAS },
	{ "alias-cow", UPAGE_OP_ALIAS_COW },
	{ "move", UPAGE_OP_MOVE },
	{ "swap", UPAGE_OP_SWAP },
};

static int cmd_edit(int fd, int argc, char **argv)
{
	struct upage_edit_op op = { 0 };
	size_t i;
	int ret;

	if (!strcmp(argv[0], "protect")) {
		if (argc != 4)
			command_usage(argv[0]);
		op.op = UPAGE_OP_PROTECT;
		op.dst = parse_u64("bad slot '%s': not a number", argv[1]);
		op.n = parse_u64("bad count '%s': not a number", argv[2]);
		op.prot = parse_prot(argv[3]);
	} else {
		for (i = 0; i < ARRAY_SIZE(edit_ops); i++)
			if (!strcmp(argv[0], edit_ops[i].name))
				op.op = edit_ops[i].op;
		if (!op.op)
			bad_usage("unknown command '%s'", argv[0]);
		if (argc != 3 && argc != 4)
			command_usage(argv[0]);
		op.dst = parse_u64("bad slot '%s': not a number", argv[1]);
		op.src = parse_u64("bad slot '%s': not a number", argv[2]);
		op.n = argc == 4 ?
		       parse_u64("bad count '%s': not a number", argv[3]) : 1;
	}
	ret = upage_edit(fd, &op, 1, NULL);
	if (ret)
		refused(ret);
	return 0;
}

static int cmd_resize(int fd, int argc, char **argv)
{
	int ret;

	if (argc != 2)
		command_usage(argv[0]);
	ret = upage_resize(fd, parse_u64("bad size '%s': not a number", argv[1]), NULL);
	if (ret)
		refused(ret);
	return 0;
}

static int run_space_command(int fd, int argc, char **argv)
{
	const char *c = argv[0];

	if (!strcmp(c, "stats")) {
		if (argc != 1)
			command_usage(c);
		return cmd_stats(fd);
	}
	if (!strcmp(c, "query")) {
		if (argc != 2 && argc != 3)
			command_usage(c);
		return cmd_query(fd, parse_u64("bad slot '%s': not a number", argv[1]),
				 argc == 3 ? parse_u64("bad count '%s': not a number", argv[2]) : 1);
	}
	if (!strcmp(c, "resize"))
		return cmd_resize(fd, argc, argv);
	if (!strcmp(c, "track"))
		return cmd_track(fd, argc, argv);
	if (!strcmp(c, "dirty"))
		return cmd_dirty(fd, argc, argv);
	if (!strcmp(c, "trap"))
		return cmd_trap(fd, argc, argv);
	if (!strcmp(c, "evict") || !strcmp(c, "prefetch") || !strcmp(c, "pin") ||
	    !strcmp(c, "unpin") || !strcmp(c, "lazy-free") || !strcmp(c, "discard"))
		return cmd_residency(fd, argc, argv);
	if (!strcmp(c, "resolve"))
		return cmd_resolve(fd, argc, argv);
	if (!strcmp(c, "store"))
		return cmd_store(fd, argc, argv);
	if (!strcmp(c, "trap-timeout"))
		return cmd_trap_timeout(fd, argc, argv);
	return cmd_edit(fd, argc, argv);
}

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} module_cmds[] = {
	{ "load", cmd_load },
	{ "unload", cmd_unload },
	{ "info", cmd_info },
	{ "spaces", cmd_spaces },
	{ "map", cmd_map },
};

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'J' },
		{ "color", no_argument, NULL, 'C' },
		{ "no-color", no_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *pid_s = NULL, *fd_s = NULL;
	size_t i;
	int opt;

	/* "+": options end at the command; its own options are its own. */
	while ((opt = getopt_long(argc, argv, "+Jp:f:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'J':
			opt_json = true;
			break;
		case 'C':
			opt_color = 1;
			break;
		case 'N':
			opt_color = 0;
			break;
		case 'p':
			pid_s = optarg;
			break;
		case 'f':
			fd_s = optarg;
			break;
		case 'h':
			print_usage(stdout);
			return 0;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	cmd_name = argv[0];
	for (i = 0; i < ARRAY_SIZE(module_cmds); i++)
		if (!strcmp(argv[0], module_cmds[i].name))
			return module_cmds[i].fn(argc, argv);
	if (usage_index(argv[0]) < 0)
		bad_usage("unknown command '%s'", argv[0]);
	if (!fd_s)
		bad_usage("%s needs -f FD (and -p PID for another process)", argv[0]);
	return run_space_command(space_fd(pid_s, fd_s), argc, argv);
}
