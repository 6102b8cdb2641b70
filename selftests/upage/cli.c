// SPDX-License-Identifier: GPL-2.0
/*
 * upagectl, the command line: it reaches a space held by another process
 * (pidfd_getfd), reports and edits it, and answers bad input with a clear
 * message and exit status 2, a refused call with the errno's meaning and
 * exit status 1, changing nothing. Its -J output says what UPAGE_QUERY
 * says, its map draws each slot state as documented, and it loads and
 * unloads the module only for root, never while a space holds it.
 */
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "upage_utils.h"

#define UPAGECTL "/upage/tools/upagectl"
#define UPAGE_KO "/lib/modules/upage.ko"

/* Run "upagectl @args" (printf-style); its output in @out, its exit status. */
static int __attribute__((format(printf, 3, 4)))
run(char *out, size_t len, const char *fmt, ...)
{
	char cmd[1024];
	size_t got;
	va_list ap;
	FILE *f;
	int status, n;

	n = snprintf(cmd, sizeof(cmd), "%s ", UPAGECTL);
	va_start(ap, fmt);
	vsnprintf(cmd + n, sizeof(cmd) - n, fmt, ap);
	va_end(ap);
	strncat(cmd, " 2>&1", sizeof(cmd) - strlen(cmd) - 1);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	got = fread(out, 1, len - 1, f);
	out[got] = 0;
	status = pclose(f);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The number of slots of space @fd; 0 if UPAGE_STATS fails. */
static uint64_t upage_stats_pages(int fd)
{
	struct upage_stats st;

	return upage_stats(fd, &st) ? 0 : st.out_pages;
}

/* Run upagectl on this process's @fd with @args; its output in @out. */
static int ctl(int fd, const char *args, char *out, size_t len)
{
	return run(out, len, "-p %d -f %d %s", getpid(), fd, args);
}

FIXTURE(cli) {
	int fd;
	volatile char *p;
	char out[65536];
};

FIXTURE_SETUP(cli)
{
	self->p = NULL;
	if (access(UPAGECTL, X_OK))
		SKIP(return, "%s not installed", UPAGECTL);
	upage_open_or_skip(self->fd);
	upage_resize_ok(self->fd, 4);
	self->p = upage_map(self->fd, 0, 4, MAP_SHARED);
	ASSERT_NE(NULL, self->p);
	self->p[0] = 'a';
	self->p[PAGE] = 'b';
}

FIXTURE_TEARDOWN(cli)
{
	if (self->p)
		munmap((void *)self->p, 4 * PAGE);
	close(self->fd);
}

/* info reports the module's API version. */
TEST_F(cli, info_reports_version)
{
	FILE *f = popen(UPAGECTL " info", "r");
	size_t got;

	ASSERT_NE(NULL, f);
	got = fread(self->out, 1, sizeof(self->out) - 1, f);
	self->out[got] = 0;
	EXPECT_EQ(0, pclose(f));
	EXPECT_NE(NULL, strstr(self->out, "version 1\n"));
}

/* stats and query show another process's space as it is. */
TEST_F(cli, stats_and_query_show_the_space)
{
	ASSERT_EQ(0, ctl(self->fd, "stats", self->out, sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, "pages 4\n"));
	EXPECT_NE(NULL, strstr(self->out, "frames 2\n"));
	ASSERT_EQ(0, ctl(self->fd, "query 0 3", self->out, sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, "resident"));
	EXPECT_NE(NULL, strstr(self->out, "hole"));
}

/* query names evicted and pinned slots as such. */
TEST_F(cli, query_shows_evicted_and_pinned_slots)
{
	upage_require_cmd(self->fd, UPAGE_CMD_RESIDENCY);
	ASSERT_EQ(0, upage_evict(self->fd, 0, 1, NULL));
	ASSERT_EQ(0, upage_pin(self->fd, 1, 1, NULL));
	ASSERT_EQ(0, ctl(self->fd, "query 0 2", self->out, sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, " evicted\n"));
	EXPECT_NE(NULL, strstr(self->out, " resident,pinned\n"));
}

/* An edit made with the command line shows in this process at once. */
TEST_F(cli, swap_edits_the_other_process)
{
	ASSERT_EQ(0, ctl(self->fd, "swap 0 1", self->out, sizeof(self->out)));
	EXPECT_EQ('b', self->p[0]);
	EXPECT_EQ('a', self->p[PAGE]);
	ASSERT_EQ(0, ctl(self->fd, "protect 2 1 read", self->out,
			 sizeof(self->out)));
	EXPECT_EQ(UPAGE_PROT_READ, upage_slot(self->fd, 2).prot);
}

/* A refused edit: exit 1, the errno and what it means; nothing changes. */
TEST_F(cli, refused_edit_explains_errno)
{
	EXPECT_EQ(1, ctl(self->fd, "swap 0 0", self->out, sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, "Invalid argument"));
	EXPECT_NE(NULL, strstr(self->out, "overlaps"));
	EXPECT_EQ(1, ctl(self->fd, "move 3 9", self->out, sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, "beyond the space's size"));
	EXPECT_EQ('a', self->p[0]);
	EXPECT_EQ('b', self->p[PAGE]);
}

/* Bad input: exit 2 with a message naming what was wrong. */
TEST_F(cli, bad_input_is_usage_error)
{
	EXPECT_EQ(2, ctl(self->fd, "protect 0 1 rwx", self->out,
			 sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, "bad protection 'rwx'"));
	EXPECT_EQ(2, ctl(self->fd, "swap 0 x", self->out, sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, "bad slot 'x'"));
	EXPECT_EQ(2, ctl(self->fd, "frobnicate 1 2", self->out,
			 sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, "unknown command"));
	/* Without -f, an unknown command is still named as one. */
	EXPECT_EQ(2, run(self->out, sizeof(self->out), "frobnicate"));
	EXPECT_STREQ("upagectl: unknown command 'frobnicate'\n", self->out);
	EXPECT_EQ(2, run(self->out, sizeof(self->out), "stats"));
	EXPECT_NE(NULL, strstr(self->out, "stats needs -f FD"));
}

/* A wrong number of arguments: that command's usage line, exit 2. */
TEST_F(cli, wrong_argument_count_prints_the_usage_line)
{
	EXPECT_EQ(2, ctl(self->fd, "stats 1", self->out, sizeof(self->out)));
	EXPECT_STREQ("usage: upagectl [-J] [-p PID] -f FD stats\n", self->out);
	EXPECT_EQ(2, ctl(self->fd, "query", self->out, sizeof(self->out)));
	EXPECT_STREQ("usage: upagectl [-J] [-p PID] -f FD query FIRST [N]\n",
		     self->out);
	EXPECT_EQ(2, ctl(self->fd, "resize 1 2", self->out, sizeof(self->out)));
	EXPECT_STREQ("usage: upagectl [-p PID] -f FD resize PAGES\n", self->out);
	EXPECT_EQ(2, ctl(self->fd, "swap 1", self->out, sizeof(self->out)));
	EXPECT_STREQ("usage: upagectl [-p PID] -f FD alias|alias-cow|move|swap DST SRC [N]\n",
		     self->out);
	EXPECT_EQ(4, upage_stats_pages(self->fd));
}

/* A number with a sign or a blank, or a PID or fd past int: exit 2. */
TEST_F(cli, out_of_range_numbers_are_usage_errors)
{
	EXPECT_EQ(2, ctl(self->fd, "query ' -1'", self->out, sizeof(self->out)));
	EXPECT_STREQ("upagectl: bad slot ' -1': not a number\n", self->out);
	EXPECT_EQ(2, ctl(self->fd, "resize +8", self->out, sizeof(self->out)));
	EXPECT_STREQ("upagectl: bad size '+8': not a number\n", self->out);
	/* 2^32 + fd would be this fd once cast to int. */
	EXPECT_EQ(2, run(self->out, sizeof(self->out), "-p %d -f %llu resize 8",
			 getpid(), (1ULL << 32) + self->fd));
	EXPECT_NE(NULL, strstr(self->out, "': at most 2147483647\n"));
	EXPECT_EQ(2, run(self->out, sizeof(self->out), "-p %llu -f %d resize 8",
			 (1ULL << 32) + getpid(), self->fd));
	EXPECT_NE(NULL, strstr(self->out, "bad pid '"));
	EXPECT_EQ(2, run(self->out, sizeof(self->out), "map 4294967297"));
	EXPECT_EQ(4, upage_stats_pages(self->fd));
}

/* -h prints the usage on standard output and succeeds. */
TEST_F(cli, help_is_not_an_error)
{
	/* run() adds "2>&1": "|| exit $?" keeps it off upagectl's own. */
	EXPECT_EQ(0, run(self->out, sizeof(self->out), "--help 2>&1 >/dev/null || exit $?"));
	EXPECT_STREQ("", self->out);
	EXPECT_EQ(0, run(self->out, sizeof(self->out), "-h 2>/dev/null || exit $?"));
	EXPECT_EQ(0, strncmp(self->out, "usage: upagectl load ", 21));
	EXPECT_NE(NULL, strstr(self->out, "\n       upagectl -h|--help\n"));
	EXPECT_EQ(NULL, strstr(self->out, "[-J] load"));
	/* A bad option: the same on standard error, exit 2. */
	EXPECT_EQ(2, run(self->out, sizeof(self->out), "--bogus 2>&1 >/dev/null || exit $?"));
	EXPECT_NE(NULL, strstr(self->out, "usage: upagectl load "));
}

/* track and dirty list the slots another process wrote, as ranges. */
TEST_F(cli, dirty_lists_the_written_slots)
{
	upage_require_cmd(self->fd, UPAGE_CMD_DIRTY);
	ASSERT_EQ(0, ctl(self->fd, "track 0 4 start", self->out,
			 sizeof(self->out)));
	self->p[0] = 'c';
	self->p[PAGE] = 'd';
	self->p[3 * PAGE] = 'e';
	ASSERT_EQ(0, ctl(self->fd, "query 0 1", self->out, sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, ",tracked,dirty"));
	ASSERT_EQ(0, ctl(self->fd, "dirty 0 4 clear", self->out,
			 sizeof(self->out)));
	EXPECT_STREQ("3 written: 0-1 3\n", self->out);
	ASSERT_EQ(0, ctl(self->fd, "dirty 0 4", self->out, sizeof(self->out)));
	EXPECT_STREQ("0 written:\n", self->out);
	ASSERT_EQ(0, ctl(self->fd, "stats", self->out, sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, "tracked_writes 3\n"));
	EXPECT_EQ(2, ctl(self->fd, "track 0 4 begin", self->out,
			 sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, "bad tracking 'begin'"));
	EXPECT_EQ(1, ctl(self->fd, "dirty 2 4", self->out, sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, "beyond the space's size"));
}

/* trap sets and lifts traps; query shows them. */
TEST_F(cli, trap_shows_in_query)
{
	upage_require_cmd(self->fd, UPAGE_CMD_TRAP);
	ASSERT_EQ(0, ctl(self->fd, "trap 2 2 write", self->out,
			 sizeof(self->out)));
	EXPECT_EQ(UPAGE_SLOT_TRAP_WRITE, upage_slot(self->fd, 3).state &
		  (UPAGE_SLOT_TRAP_READ | UPAGE_SLOT_TRAP_WRITE));
	ASSERT_EQ(0, ctl(self->fd, "query 2 1", self->out, sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, ",trap-write"));
	ASSERT_EQ(0, ctl(self->fd, "trap 2 2 none", self->out,
			 sizeof(self->out)));
	EXPECT_EQ(0, upage_slot(self->fd, 3).state &
		  (UPAGE_SLOT_TRAP_READ | UPAGE_SLOT_TRAP_WRITE));
	EXPECT_EQ(2, ctl(self->fd, "trap 2 2 exec", self->out,
			 sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, "bad trap 'exec'"));
}

/* An fd that is not a space is refused as such. */
TEST_F(cli, fd_not_a_space_is_enotty)
{
	int null = open("/dev/null", O_RDONLY);

	ASSERT_LE(0, null);
	EXPECT_EQ(1, ctl(null, "stats", self->out, sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, "not a upage space"));
	close(null);
}

/* info -J: the module is loaded, its API and its parameters. */
TEST_F(cli, info_json_reports_api_and_parameters)
{
	ASSERT_EQ(0, run(self->out, sizeof(self->out), "-J info"));
	EXPECT_EQ(0, strncmp(self->out, "{\"loaded\":true,", 15));
	EXPECT_NE(NULL, strstr(self->out, "\"api\":{\"version\":1,\"page_size\":4096,"));
	EXPECT_NE(NULL, strstr(self->out, "\"features\":[\"alias\",\"alias_cow\","));
	EXPECT_NE(NULL, strstr(self->out, "\"parameters\":{\"max_space_pages\":"));
	EXPECT_NE(NULL, strstr(self->out, "}\n"));
}

/* evict, prefetch, pin, unpin, lazy-free, discard: as UPAGE_QUERY then says. */
TEST_F(cli, residency_commands_change_the_slots)
{
	upage_require_cmd(self->fd, UPAGE_CMD_RESIDENCY);
	ASSERT_EQ(0, ctl(self->fd, "evict 0 2", self->out, sizeof(self->out)));
	EXPECT_STREQ("evict: 2 frames (of 2 slots)\n", self->out);
	EXPECT_EQ(UPAGE_SLOT_EVICTED, upage_slot(self->fd, 1).state);
	ASSERT_EQ(0, ctl(self->fd, "prefetch 0 1", self->out, sizeof(self->out)));
	EXPECT_EQ(UPAGE_SLOT_RESIDENT, upage_slot(self->fd, 0).state);
	ASSERT_EQ(0, ctl(self->fd, "pin 1 1", self->out, sizeof(self->out)));
	EXPECT_EQ(UPAGE_SLOT_RESIDENT | UPAGE_SLOT_PINNED,
		  upage_slot(self->fd, 1).state);
	ASSERT_EQ(0, ctl(self->fd, "unpin 1 1", self->out, sizeof(self->out)));
	EXPECT_EQ(UPAGE_SLOT_RESIDENT, upage_slot(self->fd, 1).state);
	ASSERT_EQ(0, ctl(self->fd, "lazy-free 0 1", self->out, sizeof(self->out)));
	EXPECT_NE(0, upage_slot(self->fd, 0).state & UPAGE_SLOT_LAZY);
	ASSERT_EQ(0, ctl(self->fd, "discard 1 1", self->out, sizeof(self->out)));
	EXPECT_EQ(0, upage_slot(self->fd, 1).state);
	EXPECT_EQ(0, upage_slot(self->fd, 1).frame_id);
	EXPECT_EQ(1, ctl(self->fd, "pin 3 2", self->out, sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, "upagectl: pin: Invalid argument: "));
	EXPECT_EQ(2, ctl(self->fd, "evict 0", self->out, sizeof(self->out)));
	EXPECT_STREQ("usage: upagectl [-p PID] -f FD evict|prefetch|discard|pin|unpin|lazy-free FIRST N\n",
		     self->out);
}

/* resolve lifts traps with "lift"; trap-timeout takes milliseconds. */
TEST_F(cli, resolve_and_trap_timeout)
{
	upage_require_cmd(self->fd, UPAGE_CMD_RESOLVE);
	ASSERT_EQ(0, ctl(self->fd, "trap 2 2 rw", self->out, sizeof(self->out)));
	ASSERT_EQ(0, ctl(self->fd, "resolve 2 1 map", self->out,
			 sizeof(self->out)));
	EXPECT_STREQ("resolve: 0 threads woken\n", self->out);
	EXPECT_NE(0, upage_slot(self->fd, 2).state & UPAGE_SLOT_TRAP_READ);
	ASSERT_EQ(0, ctl(self->fd, "resolve 2 2 zero lift", self->out,
			 sizeof(self->out)));
	EXPECT_EQ(0, upage_slot(self->fd, 2).state);
	EXPECT_EQ(0, upage_slot(self->fd, 3).state);
	ASSERT_EQ(0, ctl(self->fd, "trap-timeout 250", self->out,
			 sizeof(self->out)));
	EXPECT_EQ(2, ctl(self->fd, "resolve 2 1 copy", self->out,
			 sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, "bad resolve 'copy'"));
	EXPECT_EQ(2, ctl(self->fd, "trap-timeout 1s", self->out,
			 sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, "bad timeout '1s'"));
}

/* store hands a file to the space; evicted slots then live there. */
TEST_F(cli, store_gives_the_space_a_file)
{
	char path[] = "/tmp/upagectl-store-XXXXXX", args[128];
	int sfd;

	upage_require_cmd(self->fd, UPAGE_CMD_STORE);
	sfd = mkstemp(path);
	ASSERT_LE(0, sfd);
	close(sfd);
	snprintf(args, sizeof(args), "store %s 0 reclaim", path);
	ASSERT_EQ(0, ctl(self->fd, args, self->out, sizeof(self->out)));
	ASSERT_EQ(0, ctl(self->fd, "evict 0 1", self->out, sizeof(self->out)));
	EXPECT_EQ(UPAGE_SLOT_EVICTED, upage_slot(self->fd, 0).state);
	/* Another store while a frame is evicted: EBUSY, and why. */
	snprintf(args, sizeof(args), "store %s 4096", path);
	EXPECT_EQ(1, ctl(self->fd, args, self->out, sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, "upagectl: store: Device or resource busy: "
			       "a frame of the space is evicted or being written out")) {
		TH_LOG("%s", self->out);
	}
	EXPECT_EQ(1, ctl(self->fd, "store /dev/null", self->out, sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, "upagectl: store: Invalid argument: not a regular file")) {
		TH_LOG("%s", self->out);
	}
	EXPECT_EQ('a', self->p[0]);
	unlink(path);
	EXPECT_EQ(1, ctl(self->fd, "store /nonexistent/store", self->out,
			 sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out,
			       "upagectl: store: open /nonexistent/store: No such file or directory: "));
}

/* query -J: each slot as UPAGE_QUERY reports it. */
TEST_F(cli, json_query_matches_upage_query)
{
	struct upage_slot_info si[3];
	char want[256];
	int i;

	upage_query_ok(self->fd, 0, 3, si);
	ASSERT_EQ(0, ctl(self->fd, "-J query 0 3", self->out,
			 sizeof(self->out)));
	ASSERT_EQ(0, strncmp(self->out, "{\"first\":0,\"n\":3,\"slots\":[", 26));
	for (i = 0; i < 3; i++) {
		snprintf(want, sizeof(want),
			 "{\"slot\":%d,\"frame_id\":%llu,\"pfn\":%llu,\"prot\":\"rw\",\"nr_aliases\":%u,\"state\":[\"%s\"]}",
			 i, (unsigned long long)si[i].frame_id,
			 (unsigned long long)si[i].pfn, si[i].nr_aliases,
			 i < 2 ? "resident" : "hole");
		EXPECT_NE(NULL, strstr(self->out, want)) {
			TH_LOG("want %s in %s", want, self->out);
		}
	}
	EXPECT_NE(NULL, strstr(self->out, "]}\n"));
}

/* stats -J and dirty -J: numbers under the documented names. */
TEST_F(cli, json_stats_and_dirty)
{
	upage_require_cmd(self->fd, UPAGE_CMD_DIRTY);
	ASSERT_EQ(0, ctl(self->fd, "-J stats", self->out, sizeof(self->out)));
	EXPECT_EQ(0, strncmp(self->out, "{\"pages\":4,\"frames\":2,", 22));
	EXPECT_NE(NULL, strstr(self->out, ",\"traps_timed_out\":0}\n"));
	ASSERT_EQ(0, ctl(self->fd, "track 0 4 start", self->out,
			 sizeof(self->out)));
	self->p[0] = 'c';
	self->p[PAGE] = 'd';
	self->p[3 * PAGE] = 'e';
	ASSERT_EQ(0, ctl(self->fd, "-J dirty 0 4 clear", self->out,
			 sizeof(self->out)));
	EXPECT_STREQ("{\"first\":0,\"n\":4,\"nr_dirty\":3,\"cleared\":true,"
		     "\"written\":[{\"first\":0,\"last\":1},{\"first\":3,\"last\":3}]}\n",
		     self->out);
	ASSERT_EQ(0, ctl(self->fd, "-J query 3 1", self->out,
			 sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, "\"state\":[\"resident\",\"tracked\"]"));
}

/* The space id the module prints in this process's fdinfo; 0 if none. */
static unsigned long long own_space_id(int fd)
{
	unsigned long long id = 0;
	char path[64], line[128];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "upage_space: %llu", &id) == 1)
			break;
	fclose(f);
	return id;
}

/*
 * spaces lists this process as a holder of its space, and, where the
 * module prints its views, the space's counts and (root) this mapping.
 */
TEST_F(cli, spaces_lists_this_process)
{
	unsigned long long id = own_space_id(self->fd);
	char want[256];

	ASSERT_EQ(0, run(self->out, sizeof(self->out), "-J spaces"));
	snprintf(want, sizeof(want), "{\"pid\":%d,\"fd\":%d}", getpid(), self->fd);
	EXPECT_NE(NULL, strstr(self->out, want)) {
		TH_LOG("want %s in %s", want, self->out);
	}
	if (id) {
		snprintf(want, sizeof(want),
			 "{\"id\":%llu,\"owner\":%u,\"slots\":4,\"resident\":2,\"evicted\":0,",
			 id, getuid());
		EXPECT_NE(NULL, strstr(self->out, want)) {
			TH_LOG("want %s in %s", want, self->out);
		}
	}
	if (id && !access("/sys/kernel/debug/upage/spaces", R_OK)) {
		EXPECT_EQ(0, strncmp(self->out, "{\"source\":\"debugfs\",", 20));
		snprintf(want, sizeof(want),
			 "{\"pid\":%d,\"start\":%llu,\"end\":%llu,\"pgoff\":0,\"prot\":\"rws\"}",
			 getpid(), (unsigned long long)(uintptr_t)self->p,
			 (unsigned long long)(uintptr_t)self->p + 4 * PAGE);
		EXPECT_NE(NULL, strstr(self->out, want)) {
			TH_LOG("want %s in %s", want, self->out);
		}
	}
	ASSERT_EQ(0, run(self->out, sizeof(self->out), "spaces"));
	snprintf(want, sizeof(want), " %d (fd %d)", getpid(), self->fd);
	EXPECT_NE(NULL, strstr(self->out, want));
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

/* spaces parses the module's two views as the spec gives them. */
TEST_F(cli, spaces_parses_debugfs_and_fdinfo)
{
	char dir[] = "/tmp/upagectl-views-XXXXXX", path[256];

	ASSERT_NE(NULL, mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/spaces", dir);
	write_file(path,
		   "space 4242 owner 0 slots 16 resident 9 evicted 1 pinned 1 lazy 1 tracked 2 dirty 1 trapped 1 mappings 2\n"
		   "  map pid 77 start 0x7f0000000000 end 0x7f0000010000 pgoff 3 prot rws\n"
		   "  map ... more 5\n");
	setenv("UPAGE_DEBUGFS", path, 1);
	ASSERT_EQ(0, run(self->out, sizeof(self->out), "-J spaces"));
	EXPECT_NE(NULL, strstr(self->out, "{\"source\":\"debugfs\",\"spaces\":[{\"id\":4242,\"owner\":0,\"slots\":16,"
			       "\"resident\":9,\"evicted\":1,\"pinned\":1,\"lazy\":1,\"tracked\":2,\"dirty\":1,"
			       "\"trapped\":1,\"mappings\":2,\"holders\":[],\"mappers\":[{\"pid\":77,"
			       "\"start\":139637976727552,\"end\":139637976793088,\"pgoff\":3,\"prot\":\"rws\"}],"
			       "\"mappers_more\":5}")) {
		TH_LOG("%s", self->out);
	}

	/* A /proc of one process holding space 5151 as fd 3 and mapping it. */
	snprintf(path, sizeof(path), "%s/none", dir);
	setenv("UPAGE_DEBUGFS", path, 1);
	snprintf(path, sizeof(path), "%s/123", dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/123/fd", dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/123/fdinfo", dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/123/fd/3", dir);
	ASSERT_EQ(0, symlink("/dev/upage", path));
	snprintf(path, sizeof(path), "%s/123/fdinfo/3", dir);
	write_file(path, "pos:\t0\nflags:\t02000002\nmnt_id:\t5\nino:\t12\n"
		   "upage_space:\t5151\nupage_owner:\t65534\nupage_slots:\t8\n"
		   "upage_resident:\t2\nupage_evicted:\t0\nupage_pinned:\t0\n"
		   "upage_lazy:\t0\nupage_tracked:\t0\nupage_dirty:\t0\n"
		   "upage_trapped:\t0\nupage_mappings:\t1\n");
	snprintf(path, sizeof(path), "%s/123/maps", dir);
	write_file(path, "7f0000000000-7f0000002000 rw-s 00002000 00:05 12 /dev/upage\n"
		   "7f0000010000-7f0000011000 r--p 00000000 08:01 99 /usr/lib/libc.so.6\n");
	setenv("UPAGE_PROC", dir, 1);
	ASSERT_EQ(0, run(self->out, sizeof(self->out), "-J spaces"));
	EXPECT_STREQ("{\"source\":\"fdinfo\",\"spaces\":[{\"id\":5151,\"owner\":65534,\"slots\":8,"
		     "\"resident\":2,\"evicted\":0,\"pinned\":0,\"lazy\":0,\"tracked\":0,\"dirty\":0,"
		     "\"trapped\":0,\"mappings\":1,\"holders\":[{\"pid\":123,\"fd\":3}],"
		     "\"mappers\":[{\"pid\":123,\"start\":139637976727552,\"end\":139637976735744,"
		     "\"pgoff\":2,\"prot\":\"rw-s\"}],\"mappers_more\":0}],\"unattributed\":[]}\n",
		     self->out);

	/*
	 * Process 124 holds space 6161, which counts one mapping, and maps two
	 * /dev/upage VMAs: one maps a space it closed, and which one /proc
	 * cannot tell. Neither is 6161's.
	 */
	snprintf(path, sizeof(path), "%s/124", dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/124/fd", dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/124/fdinfo", dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/124/fd/3", dir);
	ASSERT_EQ(0, symlink("/dev/upage", path));
	snprintf(path, sizeof(path), "%s/124/fdinfo/3", dir);
	write_file(path, "pos:\t0\nupage_space:\t6161\nupage_mappings:\t1\n");
	snprintf(path, sizeof(path), "%s/124/maps", dir);
	write_file(path, "7f0000020000-7f0000021000 rw-s 00000000 00:05 13 /dev/upage\n"
		   "7f0000030000-7f0000031000 rw-s 00000000 00:05 14 /dev/upage\n");
	ASSERT_EQ(0, run(self->out, sizeof(self->out), "-J spaces"));
	EXPECT_NE(NULL, strstr(self->out, "\"mappings\":1,\"holders\":[{\"pid\":124,\"fd\":3}],"
			       "\"mappers\":[],")) {
		TH_LOG("%s", self->out);
	}
	EXPECT_NE(NULL, strstr(self->out, "\"unattributed\":[{\"pid\":124,\"start\":139637976858624,")) {
		TH_LOG("%s", self->out);
	}
	EXPECT_NE(NULL, strstr(self->out, "\"pid\":123,\"start\":139637976727552,"));
	unsetenv("UPAGE_PROC");
	unsetenv("UPAGE_DEBUGFS");
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	EXPECT_EQ(0, system(path));
}

/*
 * A child holding only @fd (and its mapping), waiting to be killed (by the
 * test, or with it): what map draws is another process's space.
 */
static pid_t holder_child(int fd, int other_fd, volatile char *other, size_t len)
{
	int sync[2];
	pid_t pid;
	char c;

	if (pipe(sync))
		return -1;
	pid = upage_fork_child();
	if (pid == 0) {
		close(other_fd);
		munmap((void *)other, len);
		close(sync[0]);
		if (write(sync[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(sync[1]);
	if (pid > 0 && read(sync[0], &c, 1) != 1)
		pid = -1;
	close(sync[0]);
	(void)fd;
	return pid;
}

/*
 * Slots 0..15: hole, resident, alias pair, alias-cow source and copy,
 * evicted, pinned, lazy, protected none, protected read, tracked, dirty,
 * trapped, holes.
 */
#define MAP_PICTURE ".raaaceplnotdT.."

static void make_every_state(struct __test_metadata *_metadata, int sfd,
			     volatile char *q)
{
	int slots[] = { 1, 2, 4, 6, 7, 8, 9, 11 };
	size_t i;

	for (i = 0; i < sizeof(slots) / sizeof(slots[0]); i++)
		q[slots[i] * PAGE] = 'x';
	upage_alias_ok(sfd, 3, 2, 1);
	upage_alias_cow_ok(sfd, 5, 4, 1);
	ASSERT_EQ(0, upage_evict(sfd, 6, 1, NULL));
	ASSERT_EQ(0, upage_pin(sfd, 7, 1, NULL));
	ASSERT_EQ(0, upage_lazy_free(sfd, 8, 1, NULL));
	upage_protect_ok(sfd, 9, 1, UPAGE_PROT_NONE);
	upage_protect_ok(sfd, 10, 1, UPAGE_PROT_READ);
	ASSERT_EQ(0, upage_track_start(sfd, 11, 2));
	q[12 * PAGE] = 'x';
	ASSERT_EQ(0, upage_trap(sfd, 13, 1, UPAGE_TRAP_WRITE));
}

static int count_of(const char *hay, const char *needle)
{
	int n = 0;

	while ((hay = strstr(hay, needle))) {
		n++;
		hay += strlen(needle);
	}
	return n;
}

/* map draws each slot state of another process's space, as text, JSON, SVG. */
TEST_F(cli, map_draws_every_slot_state)
{
	char want[256], svg[64];
	volatile char *q;
	size_t got;
	pid_t child;
	FILE *f;
	int sfd;

	upage_require_cmd(self->fd, UPAGE_CMD_TRAP);
	upage_require_cmd(self->fd, UPAGE_CMD_RESIDENCY);
	upage_open_or_skip(sfd);
	upage_resize_ok(sfd, 16);
	q = upage_map(sfd, 0, 16, MAP_SHARED);
	ASSERT_NE(NULL, q);
	make_every_state(_metadata, sfd, q);
	child = holder_child(sfd, self->fd, self->p, 4 * PAGE);
	ASSERT_LT(0, child);

	EXPECT_EQ(0, run(self->out, sizeof(self->out), "map %d", child));
	EXPECT_NE(NULL, strstr(self->out, "         0 " MAP_PICTURE "\n")) {
		TH_LOG("%s", self->out);
	}
	EXPECT_NE(NULL, strstr(self->out, "  vma 0x"));
	if (own_space_id(sfd)) {
		snprintf(want, sizeof(want), "space %llu (fd %d): 16 slots\n",
			 own_space_id(sfd), sfd);
		EXPECT_NE(NULL, strstr(self->out, want));
	}
	EXPECT_NE(NULL, strstr(self->out, "legend: . hole r resident a aliased"));
	snprintf(want, sizeof(want), "  frame %llu shared by slots 2 3\n",
		 (unsigned long long)upage_slot(sfd, 2).frame_id);
	EXPECT_NE(NULL, strstr(self->out, want));
	EXPECT_EQ(NULL, strstr(self->out, "\033["));

	EXPECT_EQ(0, run(self->out, sizeof(self->out), "--color map %d", child));
	EXPECT_NE(NULL, strstr(self->out, "\033[0;1;97;41mT"));

	EXPECT_EQ(0, run(self->out, sizeof(self->out), "-J map %d", child));
	EXPECT_NE(NULL, strstr(self->out, "\"picture\":\"" MAP_PICTURE "\",\"picture_slots\":16,"));
	EXPECT_NE(NULL, strstr(self->out, "\"counts\":{\"hole\":3,\"resident\":1,\"aliased\":3,"
			       "\"cow\":1,\"evicted\":1,\"pinned\":1,\"lazy\":1,\"prot_none\":1,"
			       "\"prot_read\":1,\"tracked\":1,\"dirty\":1,\"trapped\":1}"));
	snprintf(want, sizeof(want), "{\"frame_id\":%llu,\"slots\":[4,5]}",
		 (unsigned long long)upage_slot(sfd, 4).frame_id);
	EXPECT_NE(NULL, strstr(self->out, want)) {
		TH_LOG("want %s in %s", want, self->out);
	}

	snprintf(svg, sizeof(svg), "/tmp/upagectl-map-%d.svg", getpid());
	EXPECT_EQ(0, run(self->out, sizeof(self->out), "map %d --svg %s", child, svg));
	f = fopen(svg, "r");
	ASSERT_NE(NULL, f);
	got = fread(self->out, 1, sizeof(self->out) - 1, f);
	self->out[got] = 0;
	fclose(f);
	unlink(svg);
	EXPECT_EQ(0, strncmp(self->out, "<svg ", 5));
	EXPECT_EQ(2, count_of(self->out, "<path class=\"link\" data-frame="));
	EXPECT_EQ(16, count_of(self->out, "<title>slot "));
	EXPECT_NE(NULL, strstr(self->out, "</svg>\n"));

	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	munmap((void *)q, 16 * PAGE);
	close(sfd);
}

/* map draws 4096 slots one by one, then summarises runs. */
TEST_F(cli, map_summarises_runs_past_4096_slots)
{
	upage_resize_ok(self->fd, 5000);
	self->p[2 * PAGE] = 'c';
	upage_alias_ok(self->fd, 4500, 2, 1);
	ASSERT_EQ(0, run(self->out, sizeof(self->out), "map %d", getpid()));
	EXPECT_NE(NULL, strstr(self->out, "      4032 ......."));
	EXPECT_EQ(NULL, strstr(self->out, "      4096 "));
	EXPECT_NE(NULL, strstr(self->out, "  slots 4096-4999 as runs:\n"
				      "      4096-4499 . hole\n"
				      "      4500-4500 a aliased\n"
				      "      4501-4999 . hole\n")) {
		TH_LOG("%s", self->out);
	}
	ASSERT_EQ(0, run(self->out, sizeof(self->out), "-J map %d", getpid()));
	EXPECT_NE(NULL, strstr(self->out, "\"picture_slots\":4096,\"counts\":{\"hole\":4996,"
			       "\"resident\":2,\"aliased\":2,"));
	EXPECT_NE(NULL, strstr(self->out, "\"slots\":[2,4500]}"));
}

/* What closed_space_child() made: space A held and mapped, B only mapped. */
struct closed_space {
	unsigned long long a_id, b_id, a_start, b_start;
};

/*
 * A child that holds space A (4 slots, mapped) and maps space B (2 slots)
 * whose descriptor it closed, waiting to be killed (by the test, or with
 * it); *@cs says which.
 */
static pid_t closed_space_child(int fd, volatile char *p, size_t len,
				struct closed_space *cs)
{
	int sync[2], afd, bfd;
	char *a, *b;
	pid_t pid;

	if (pipe(sync))
		return -1;
	pid = upage_fork_child();
	if (pid == 0) {
		close(fd);
		munmap((void *)p, len);
		close(sync[0]);
		afd = upage_open(O_CLOEXEC);
		bfd = upage_open(O_CLOEXEC);
		if (afd < 0 || bfd < 0 || upage_resize(afd, 4, NULL) ||
		    upage_resize(bfd, 2, NULL))
			_exit(1);
		a = upage_map(afd, 0, 4, MAP_SHARED);
		b = upage_map(bfd, 0, 2, MAP_SHARED);
		if (!a || !b)
			_exit(1);
		*cs = (struct closed_space){
			own_space_id(afd), own_space_id(bfd),
			(uintptr_t)a, (uintptr_t)b,
		};
		close(bfd);
		if (write(sync[1], cs, sizeof(*cs)) != sizeof(*cs))
			_exit(1);
		for (;;)
			pause();
	}
	close(sync[1]);
	if (pid > 0 && read(sync[0], cs, sizeof(*cs)) != sizeof(*cs)) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		pid = -1;
	}
	close(sync[0]);
	return pid;
}

/*
 * A space a process maps but no longer holds is never drawn as the one
 * it holds: with debugfs (root) its VMA is unattributed and the held
 * space's VMA is under it; without, the held space's fdinfo counts one
 * mapping against two VMAs, so neither is attributed.
 */
TEST_F(cli, map_keeps_a_closed_space_apart)
{
	bool debugfs = !access("/sys/kernel/debug/upage/spaces", R_OK);
	struct closed_space cs;
	char want[256];
	const char *row, *end;
	pid_t child;

	child = closed_space_child(self->fd, self->p, 4 * PAGE, &cs);
	ASSERT_LT(0, child);
	EXPECT_EQ(0, run(self->out, sizeof(self->out), "map %d", child));
	EXPECT_NE(NULL, strstr(self->out, "holds 1 space\n"));
	snprintf(want, sizeof(want), "  ? vma 0x%llx-", cs.b_start);
	EXPECT_NE(NULL, strstr(self->out, want)) {
		TH_LOG("want %s in %s", want, self->out);
	}
	snprintf(want, sizeof(want), "  vma 0x%llx-", cs.b_start);
	EXPECT_EQ(NULL, strstr(self->out, want)) {
		TH_LOG("%s", self->out);
	}
	snprintf(want, sizeof(want), "%s vma 0x%llx-", debugfs ? " " : "  ?",
		 cs.a_start);
	EXPECT_NE(NULL, strstr(self->out, want)) {
		TH_LOG("want %s in %s", want, self->out);
	}
	EXPECT_EQ(0, run(self->out, sizeof(self->out), "-J map %d", child));
	snprintf(want, sizeof(want), "\"unattributed\":[");
	row = strstr(self->out, want);
	ASSERT_NE(NULL, row);
	snprintf(want, sizeof(want), "{\"start\":%llu,", cs.b_start);
	EXPECT_NE(NULL, strstr(row, want)) {
		TH_LOG("want %s in %s", want, self->out);
	}

	/* spaces: B's VMA is not in A's row. */
	if (cs.a_id) {
		EXPECT_EQ(0, run(self->out, sizeof(self->out), "-J spaces"));
		snprintf(want, sizeof(want), "{\"id\":%llu,", cs.a_id);
		row = strstr(self->out, want);
		ASSERT_NE(NULL, row);
		end = strstr(row, "\"mappers_more\"");
		ASSERT_NE(NULL, end);
		snprintf(want, sizeof(want), "{\"pid\":%d,\"start\":%llu,", child,
			 cs.b_start);
		EXPECT_NE(NULL, strstr(self->out, want));
		row = strstr(row, want);
		EXPECT_TRUE(!row || row > end) {
			TH_LOG("B's VMA under A: %s", self->out);
		}
	}
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
}

/*
 * Without kcmp (ENOSYS: a kernel without it, or a seccomp filter here),
 * map still draws a space held through two descriptors once: by its
 * space id.
 */
TEST_F(cli, map_draws_a_space_once_without_kcmp)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_kcmp, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {
		.len = sizeof(filter) / sizeof(filter[0]),
		.filter = filter,
	};
	int dup;

	if (!own_space_id(self->fd))
		SKIP(return, "the module prints no space id in fdinfo");
	dup = fcntl(self->fd, F_DUPFD_CLOEXEC, 0);
	ASSERT_LE(0, dup);
	/* A kernel without kcmp (the debug kernel) needs no filter. */
	if (syscall(SYS_kcmp, getpid(), getpid(), 0, self->fd, dup) != -1 ||
	    errno != ENOSYS) {
		ASSERT_EQ(0, prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
		if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
			close(dup);
			SKIP(return, "kcmp, and no seccomp filter to hide it: %s",
			     strerror(errno));
		}
	}
	EXPECT_EQ(-1, syscall(SYS_kcmp, getpid(), getpid(), 0, self->fd, dup));
	EXPECT_EQ(ENOSYS, errno);
	EXPECT_EQ(0, run(self->out, sizeof(self->out), "map %d", getpid()));
	EXPECT_NE(NULL, strstr(self->out, "holds 1 space\n")) {
		TH_LOG("%s", self->out);
	}
	close(dup);
}

/* map of a process the caller may not ptrace says what is needed. */
TEST_F(cli, map_needs_ptrace_permission)
{
	if (geteuid() == 0)
		SKIP(return, "root may ptrace every process");
	EXPECT_EQ(1, run(self->out, sizeof(self->out), "map 1"));
	EXPECT_NE(NULL, strstr(self->out, "ptrace permission is needed")) {
		TH_LOG("%s", self->out);
	}
	EXPECT_EQ(2, run(self->out, sizeof(self->out), "map one"));
}

/* unload while this space holds the module: refused, the module stays. */
TEST_F(cli, unload_refused_while_a_space_is_open)
{
	char *nl;

	EXPECT_EQ(1, run(self->out, sizeof(self->out), "unload"));
	if (geteuid() == 0) {
		EXPECT_NE(NULL, strstr(self->out,
				       "module upage is in use: close the spaces that hold it"));
	} else {
		EXPECT_NE(NULL, strstr(self->out, "Operation not permitted"));
	}
	nl = strchr(self->out, '\n');
	ASSERT_NE(NULL, nl);
	EXPECT_EQ(0, nl[1]) {
		TH_LOG("more than one line: %s", self->out);
	}
	EXPECT_EQ(0, access("/sys/module/upage", F_OK));
}

/* load of the loaded module: "already loaded" (root), EPERM (others). */
TEST_F(cli, load_of_a_loaded_module_is_refused)
{
	EXPECT_EQ(1, run(self->out, sizeof(self->out), "load --module " UPAGE_KO));
	if (geteuid() == 0) {
		EXPECT_NE(NULL, strstr(self->out, "already loaded"));
	} else {
		EXPECT_NE(NULL, strstr(self->out, "Operation not permitted (need root)"));
	}
	/* Without --module, the one modprobe would find: the guest has none. */
	EXPECT_EQ(1, run(self->out, sizeof(self->out), "load"));
	EXPECT_TRUE(strstr(self->out, "module upage not found for kernel ") ||
		    strstr(self->out, "already loaded") ||
		    strstr(self->out, "Operation not permitted (need root)")) {
		TH_LOG("%s", self->out);
	}
	EXPECT_EQ(2, run(self->out, sizeof(self->out), "load --bogus"));
	EXPECT_EQ(1, run(self->out, sizeof(self->out), "load --module /nonexistent.ko"));
}

/*
 * A fixture of its own, declared after cli's, so that its test runs after
 * theirs (the harness runs fixtures in order; plain TESTs come first).
 */
FIXTURE(reload) {
	int unused;
};

FIXTURE_SETUP(reload)
{
}

FIXTURE_TEARDOWN(reload)
{
}

/*
 * Last: unload and load again, as guest-init left it: the module loaded
 * and /dev/upage with the group and mode the udev rule gave it.
 */
TEST_F(reload, module_unload_and_load_again)
{
	char out[4096];
	struct stat st;

	if (geteuid() != 0)
		SKIP(return, "loading modules needs root");
	if (access(UPAGE_KO, R_OK))
		SKIP(return, "no %s", UPAGE_KO);
	ASSERT_EQ(0, stat("/dev/upage", &st));
	ASSERT_EQ(0, run(out, sizeof(out), "unload")) {
		TH_LOG("%s", out);
	}
	EXPECT_NE(0, access("/sys/module/upage", F_OK));
	EXPECT_EQ(1, run(out, sizeof(out), "unload"));
	EXPECT_NE(NULL, strstr(out, "not loaded"));
	ASSERT_EQ(0, run(out, sizeof(out), "load --module " UPAGE_KO " max_space_pages=1048576")) {
		TH_LOG("%s", out);
	}
	ASSERT_EQ(0, chown("/dev/upage", st.st_uid, st.st_gid));
	ASSERT_EQ(0, chmod("/dev/upage", st.st_mode & 07777));
	ASSERT_EQ(0, run(out, sizeof(out), "info"));
	EXPECT_NE(NULL, strstr(out, "module loaded\n"));
	EXPECT_NE(NULL, strstr(out, "version 1\n"));
}

TEST_HARNESS_MAIN
