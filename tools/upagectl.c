// SPDX-License-Identifier: GPL-2.0
/*
 * upagectl: look at and edit a upage space from the command line.
 *
 *   upagectl info
 *   upagectl [-p PID] -f FD stats
 *   upagectl [-p PID] -f FD query FIRST [N]
 *   upagectl [-p PID] -f FD resize PAGES
 *   upagectl [-p PID] -f FD alias|alias-cow|move|swap DST SRC [N]
 *   upagectl [-p PID] -f FD protect FIRST N none|read|rw
 *   upagectl [-p PID] -f FD track FIRST N start|stop
 *   upagectl [-p PID] -f FD dirty FIRST N [clear]
 *   upagectl [-p PID] -f FD trap FIRST N read|write|rw|none
 *
 * A space is reachable only through its fd: -p PID -f FD takes a copy of
 * process PID's fd FD with pidfd_getfd(2) (which needs ptrace permission);
 * -f FD alone uses an fd this process inherited. Exit status: 0 on
 * success, 1 when the module refused the call, 2 for bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "upage.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

static const char *cmd_name;

static void usage(void)
{
	fprintf(stderr,
		"usage: upagectl info\n"
		"       upagectl [-p PID] -f FD stats\n"
		"       upagectl [-p PID] -f FD query FIRST [N]\n"
		"       upagectl [-p PID] -f FD resize PAGES\n"
		"       upagectl [-p PID] -f FD alias|alias-cow|move|swap DST SRC [N]\n"
		"       upagectl [-p PID] -f FD protect FIRST N none|read|rw\n"
		"       upagectl [-p PID] -f FD track FIRST N start|stop\n"
		"       upagectl [-p PID] -f FD dirty FIRST N [clear]\n"
		"       upagectl [-p PID] -f FD trap FIRST N read|write|rw|none\n");
	exit(2);
}

static void bad_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "upagectl: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	exit(2);
}

/* What each documented errno means for the call that returned it. */
static const char *explain(int err)
{
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
	default:
		return NULL;
	}
}

/* Report a refused call and exit 1. */
static void refused(int ret)
{
	const char *why = explain(-ret);

	fprintf(stderr, "upagectl: %s: %s%s%s\n", cmd_name, strerror(-ret),
		why ? ": " : "", why ? why : "");
	exit(1);
}

static uint64_t parse_u64(const char *what, const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || *s == '-')
		bad_usage(what, s);
	return v;
}

static int space_fd(const char *pid_s, const char *fd_s)
{
	int fd = (int)parse_u64("bad fd '%s': not a number", fd_s);
	int pidfd, copy;
	pid_t pid;

	if (!pid_s)
		return fd;
	pid = (pid_t)parse_u64("bad pid '%s': not a number", pid_s);
	pidfd = syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0) {
		fprintf(stderr, "upagectl: pid %d: %s\n", pid, strerror(errno));
		exit(1);
	}
	copy = syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	if (copy < 0) {
		fprintf(stderr, "upagectl: fd %d of pid %d: %s%s\n", fd, pid,
			strerror(errno),
			errno == EPERM ? ": ptrace permission is needed" : "");
		exit(1);
	}
	close(pidfd);
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

static int cmd_info(void)
{
	struct upage_api api;
	int fd = upage_open(O_CLOEXEC), ret;

	if (fd < 0) {
		fprintf(stderr, "upagectl: /dev/upage: %s\n", strerror(-fd));
		return 1;
	}
	ret = upage_api(fd, &api);
	if (ret)
		refused(ret);
	printf("version %u\npage_size %u\nmax_pages %" PRIu64 "\n"
	       "ioctls 0x%" PRIx64 "\nfeatures 0x%" PRIx64 "\n",
	       api.out_version, api.out_page_size,
	       (uint64_t)api.out_max_pages, (uint64_t)api.out_ioctls,
	       (uint64_t)api.out_features);
	close(fd);
	return 0;
}

static int cmd_stats(int fd)
{
	struct upage_stats st;
	int ret = upage_stats(fd, &st);

	if (ret)
		refused(ret);
	printf("pages %llu\nframes %llu\nfaults %llu\nzero_fills %llu\n"
	       "cow_breaks %llu\nedits %llu\nbatches %llu\nevictions %llu\n"
	       "page_ins %llu\nbytes_written %llu\nbytes_read %llu\n"
	       "reclaims %llu\nshrinker_evictions %llu\ntracked_writes %llu\n"
	       "traps %llu\ntraps_resolved %llu\ntraps_timed_out %llu\n",
	       (unsigned long long)st.out_pages,
	       (unsigned long long)st.out_frames,
	       (unsigned long long)st.out_faults,
	       (unsigned long long)st.out_zero_fills,
	       (unsigned long long)st.out_cow_breaks,
	       (unsigned long long)st.out_edits,
	       (unsigned long long)st.out_batches,
	       (unsigned long long)st.out_evictions,
	       (unsigned long long)st.out_page_ins,
	       (unsigned long long)st.out_bytes_written,
	       (unsigned long long)st.out_bytes_read,
	       (unsigned long long)st.out_reclaims,
	       (unsigned long long)st.out_shrinker_evictions,
	       (unsigned long long)st.out_tracked_writes,
	       (unsigned long long)st.out_traps,
	       (unsigned long long)st.out_traps_resolved,
	       (unsigned long long)st.out_traps_timed_out);
	return 0;
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
	printf("%-10s %-10s %-6s %-8s %-18s %s\n", "slot", "frame", "prot",
	       "aliases", "pfn", "state");
	for (i = 0; i < n; i++) {
		uint32_t st = info[i].state;

		printf("%-10" PRIu64 " %-10llu %-6s %-8u 0x%-16llx %s%s%s%s%s%s%s%s%s\n",
		       first + i, (unsigned long long)info[i].frame_id,
		       prot_name(info[i].prot), info[i].nr_aliases,
		       (unsigned long long)info[i].pfn,
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
	free(info);
	return 0;
}

static int cmd_track(int fd, int argc, char **argv)
{
	uint64_t first, n;
	int ret = 0;

	if (argc != 4)
		usage();
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

/* Print the written slots of first..first+n-1 as ranges, one line. */
static int cmd_dirty(int fd, int argc, char **argv)
{
	uint64_t first, n, nr, i, *bits;
	uint32_t flags = 0;
	int ret;

	if (argc != 3 && argc != 4)
		usage();
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
	printf("%llu written:", (unsigned long long)nr);
	for (i = 0; i < n; i++) {
		uint64_t end = i;

		if (!(bits[i / 64] & (1ULL << (i % 64))))
			continue;
		while (end + 1 < n && (bits[(end + 1) / 64] & (1ULL << ((end + 1) % 64))))
			end++;
		if (end == i)
			printf(" %llu", (unsigned long long)(first + i));
		else
			printf(" %llu-%llu", (unsigned long long)(first + i),
			       (unsigned long long)(first + end));
		i = end;
	}
	printf("\n");
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
		usage();
	first = parse_u64("bad slot '%s': not a number", argv[1]);
	n = parse_u64("bad count '%s': not a number", argv[2]);
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strcmp(argv[3], kinds[i].name))
			break;
	if (i == sizeof(kinds) / sizeof(kinds[0]))
		bad_usage("bad trap '%s': use read, write, rw or none", argv[3]);
	ret = upage_trap(fd, first, n, kinds[i].access);
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
	return 0;
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
			usage();
		op.op = UPAGE_OP_PROTECT;
		op.dst = parse_u64("bad slot '%s': not a number", argv[1]);
		op.n = parse_u64("bad count '%s': not a number", argv[2]);
		op.prot = parse_prot(argv[3]);
	} else {
		for (i = 0; i < sizeof(edit_ops) / sizeof(edit_ops[0]); i++)
			if (!strcmp(argv[0], edit_ops[i].name))
				op.op = edit_ops[i].op;
		if (!op.op)
			bad_usage("unknown command '%s'", argv[0]);
		if (argc != 3 && argc != 4)
			usage();
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

int main(int argc, char **argv)
{
	const char *pid_s = NULL, *fd_s = NULL;
	int opt, fd;

	while ((opt = getopt(argc, argv, "p:f:h")) != -1) {
		switch (opt) {
		case 'p':
			pid_s = optarg;
			break;
		case 'f':
			fd_s = optarg;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	cmd_name = argv[0];
	if (!strcmp(argv[0], "info"))
		return argc == 1 ? cmd_info() : (usage(), 2);
	if (!fd_s)
		bad_usage("%s needs -f FD (and -p PID for another process)", argv[0]);
	fd = space_fd(pid_s, fd_s);

	if (!strcmp(argv[0], "stats") && argc == 1)
		return cmd_stats(fd);
	if (!strcmp(argv[0], "query") && (argc == 2 || argc == 3))
		return cmd_query(fd, parse_u64("bad slot '%s': not a number", argv[1]),
				 argc == 3 ? parse_u64("bad count '%s': not a number", argv[2]) : 1);
	if (!strcmp(argv[0], "resize") && argc == 2) {
		int ret = upage_resize(fd, parse_u64("bad size '%s': not a number", argv[1]), NULL);

		if (ret)
			refused(ret);
		return 0;
	}
	if (!strcmp(argv[0], "track"))
		return cmd_track(fd, argc, argv);
	if (!strcmp(argv[0], "dirty"))
		return cmd_dirty(fd, argc, argv);
	if (!strcmp(argv[0], "trap"))
		return cmd_trap(fd, argc, argv);
	return cmd_edit(fd, argc, argv);
}
