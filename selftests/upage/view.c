// SPDX-License-Identifier: GPL-2.0
/*
 * The module's read-only views of spaces (docs/design.md, "Views"): the
 * upage lines of /proc/PID/fdinfo/FD, which whoever may read the fdinfo
 * sees, and root's debugfs list of every space with the VMAs mapping it.
 * Their counts agree with what UPAGE_QUERY says of the same table, and
 * reading them while spaces come and go, resize and are mapped is safe.
 */
#include <dirent.h>
#include <grp.h>
#include <pthread.h>
#include <sys/stat.h>

#include "upage_utils.h"

#define SLOTS 32
#define SPACES_FILE "/sys/kernel/debug/upage/spaces"
#define NOBODY 65534

/* The counts a view prints of one space, in the order it prints them. */
struct view {
	unsigned long id, owner, slots, resident, evicted, pinned, lazy,
		      tracked, dirty, trapped, mappings;
};

static const char *const view_names[] = {
	"space", "owner", "slots", "resident", "evicted", "pinned", "lazy",
	"tracked", "dirty", "trapped", "mappings",
};

#define VIEW_FIELDS (sizeof(view_names) / sizeof(view_names[0]))

static unsigned long *view_field(struct view *v, size_t i)
{
	return &v->id + i;
}

/*
 * Parse the upage lines of /proc/@pid/fdinfo/@fd: 0, -errno if it cannot
 * be read, or -EBADMSG if a line is missing, out of order or not exactly
 * "upage_<name>:\t<number>".
 */
static int view_fdinfo(pid_t pid, int fd, struct view *v)
{
	char path[64], line[256], want[32];
	size_t next = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, fd);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	memset(v, 0xff, sizeof(*v));
	while (fgets(line, sizeof(line), f)) {
		char *val, *end;

		if (strncmp(line, "upage_", 6))
			continue;
		if (next == VIEW_FIELDS)
			break;
		snprintf(want, sizeof(want), "upage_%s:\t", view_names[next]);
		if (strncmp(line, want, strlen(want)))
			break;
		val = line + strlen(want);
		*view_field(v, next) = strtoul(val, &end, 10);
		if (end == val || *end != '\n')
			break;
		next++;
	}
	fclose(f);
	return next == VIEW_FIELDS ? 0 : -EBADMSG;
}

/* What UPAGE_QUERY says of the same counts; mappings are not in it. */
static int view_query(int fd, uint64_t slots, struct view *v)
{
	struct upage_slot_info info[SLOTS];
	uint64_t frames[SLOTS];
	size_t nr_frames = 0, i, j;

	if (slots > SLOTS || upage_query(fd, 0, slots, info))
		return -1;
	memset(v, 0, sizeof(*v));
	v->slots = slots;
	for (i = 0; i < slots; i++) {
		uint32_t s = info[i].state;

		if (s & UPAGE_SLOT_RESIDENT) {
			for (j = 0; j < nr_frames && frames[j] != info[i].frame_id; j++)
				;
			if (j == nr_frames)
				frames[nr_frames++] = info[i].frame_id;
		}
		v->evicted += !!(s & UPAGE_SLOT_EVICTED);
		v->pinned += !!(s & UPAGE_SLOT_PINNED);
		v->lazy += !!(s & UPAGE_SLOT_LAZY);
		v->tracked += !!(s & UPAGE_SLOT_TRACKED);
		v->dirty += !!(s & UPAGE_SLOT_DIRTY);
		v->trapped += !!(s & (UPAGE_SLOT_TRAP_READ | UPAGE_SLOT_TRAP_WRITE));
	}
	v->resident = nr_frames;
	return 0;
}

#define view_fdinfo_ok(fd, v) ASSERT_EQ(0, view_fdinfo(getpid(), (fd), (v)))

/* The whole debugfs file, NUL-terminated (free it), or NULL with errno. */
static char *view_spaces_read(void)
{
	size_t len = 0, cap = 1 << 16;
	char *buf = malloc(cap);
	int fd = open(SPACES_FILE, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0 || !buf) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	/* Small reads: the reader stops and starts again between spaces. */
	while ((n = read(fd, buf + len, 4096)) > 0) {
		len += n;
		if (cap - len < 4097) {
			char *more = realloc(buf, cap *= 2);

			if (!more) {
				n = -1;
				break;
			}
			buf = more;
		}
	}
	close(fd);
	if (n < 0) {
		free(buf);
		return NULL;
	}
	buf[len] = '\0';
	return buf;
}

/* Parse a "space ..." line into @v: 0, or -EBADMSG. */
static int view_space_line(const char *line, struct view *v)
{
	const char *p = line;
	size_t i;

	for (i = 0; i < VIEW_FIELDS; i++) {
		size_t len = strlen(view_names[i]);
		char *end;

		if (i && *p++ != ' ')
			return -EBADMSG;
		if (strncmp(p, view_names[i], len) || p[len] != ' ')
			return -EBADMSG;
		p += len + 1;
		*view_field(v, i) = strtoul(p, &end, 10);
		if (end == p)
			return -EBADMSG;
		p = end;
	}
	return *p == '\n' || *p == '\0' ? 0 : -EBADMSG;
}

/*
 * Find space @id in the debugfs text @buf: its counts in @v, and a
 * pointer to its first "  map" line (or the next space) in *@maps.
 * 0, -ENOENT, or -EBADMSG if a line is malformed.
 */
static int view_spaces_find(const char *buf, unsigned long id, struct view *v,
			    const char **maps)
{
	const char *line;

	for (line = buf; *line; line = strchr(line, '\n') + 1) {
		if (!strchr(line, '\n'))
			return -EBADMSG;
		if (!strncmp(line, "  map ", 6))
			continue;
		if (view_space_line(line, v))
			return -EBADMSG;
		if (v->id == id) {
			*maps = strchr(line, '\n') + 1;
			return 0;
		}
	}
	return -ENOENT;
}

struct view_map {
	long pid;
	unsigned long start, end, pgoff;
	char prot[4];
};

/* Parse the map line at @line: 1, 0 at the end of the block, -EBADMSG. */
static int view_map_line(const char *line, struct view_map *m)
{
	int used = 0;

	if (strncmp(line, "  map ", 6))
		return 0;
	if (sscanf(line, "  map pid %ld start 0x%lx end 0x%lx pgoff %lu prot %3[-rwsp]%n",
		   &m->pid, &m->start, &m->end, &m->pgoff, m->prot, &used) != 5 ||
	    line[used] != '\n')
		return -EBADMSG;
	return 1;
}

/* True if debugfs is mounted at /sys/kernel/debug. */
static int view_debugfs_mounted(void)
{
	char line[512];
	int found = 0;
	FILE *f = fopen("/proc/mounts", "r");

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, " /sys/kernel/debug debugfs ") != NULL;
	fclose(f);
	return found;
}

/* SKIP unless root can read the debugfs view. */
#define view_require_debugfs()                                              \
	do {                                                                \
		if (geteuid())                                              \
			SKIP(return, "the debugfs view is root's");         \
		if (access(SPACES_FILE, R_OK))                              \
			SKIP(return, "no %s: %s", SPACES_FILE, strerror(errno)); \
	} while (0)

/* Fork a child that drops to nobody and runs @fn; its exit status. */
static int view_as_nobody(int (*fn)(void *), void *arg)
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		if (setgroups(0, NULL) || setresgid(NOBODY, NOBODY, NOBODY) ||
		    setresuid(NOBODY, NOBODY, NOBODY))
			_exit(100);
		_exit(fn(arg));
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

FIXTURE(view) {
	int fd;
	unsigned char *p;
	unsigned long id;
};

FIXTURE_SETUP(view)
{
	struct view v;

	self->p = NULL;
	upage_open_or_skip(self->fd);
	upage_resize_ok(self->fd, SLOTS);
	self->p = upage_map(self->fd, 0, SLOTS, MAP_SHARED);
	ASSERT_NE(NULL, self->p);
	view_fdinfo_ok(self->fd, &v);
	self->id = v.id;
}

FIXTURE_TEARDOWN(view)
{
	if (self->p)
		munmap(self->p, SLOTS * PAGE);
	if (self->fd >= 0)
		close(self->fd);
}

/*
 * Put the table in a known state: 0..15 written, 16 an alias of 0, 2..3
 * evicted, 4..5 pinned, 6..7 lazily freed, 8..11 tracked of which 9 is
 * written since, 12..13 read-trapped, 14..31 holes or as written.
 */
static int view_known_table(int fd, unsigned char *p)
{
	int i;

	for (i = 0; i < 16; i++)
		p[i * PAGE] = i + 1;
	if (upage_alias(fd, 16, 0, 1) ||
	    upage_evict(fd, 2, 2, NULL) ||
	    upage_pin(fd, 4, 2, NULL) ||
	    upage_lazy_free(fd, 6, 2, NULL) ||
	    upage_track_start(fd, 8, 4))
		return -1;
	p[9 * PAGE] = 0x99;
	return upage_trap(fd, 12, 2, UPAGE_TRAP_READ);
}

/* Every line of the spec is there, in order, with a tab after the colon. */
TEST_F(view, fdinfo_has_every_line)
{
	struct view v;
	int fd;

	view_fdinfo_ok(self->fd, &v);
	EXPECT_EQ(getuid(), v.owner);
	EXPECT_EQ(SLOTS, v.slots);
	EXPECT_EQ(1, v.mappings);

	/* A new space: nothing at all. */
	upage_open_or_skip(fd);
	view_fdinfo_ok(fd, &v);
	EXPECT_EQ(0, v.slots);
	EXPECT_EQ(0, v.resident);
	EXPECT_EQ(0, v.mappings);
	close(fd);
}

/* After a known series of edits the counts are UPAGE_QUERY's. */
TEST_F(view, fdinfo_counts_match_query)
{
	struct view v, q;

	ASSERT_EQ(0, view_known_table(self->fd, self->p));
	view_fdinfo_ok(self->fd, &v);
	ASSERT_EQ(0, view_query(self->fd, SLOTS, &q));
	EXPECT_EQ(q.slots, v.slots);
	EXPECT_EQ(q.resident, v.resident);
	EXPECT_EQ(q.evicted, v.evicted);
	EXPECT_EQ(q.pinned, v.pinned);
	EXPECT_EQ(q.lazy, v.lazy);
	EXPECT_EQ(q.tracked, v.tracked);
	EXPECT_EQ(q.dirty, v.dirty);
	EXPECT_EQ(q.trapped, v.trapped);
	/* And what the edits made: 16 frames, 2 of them out, 17 slots. */
	EXPECT_EQ(14, v.resident);
	EXPECT_EQ(2, v.evicted);
	EXPECT_EQ(2, v.pinned);
	EXPECT_EQ(2, v.lazy);
	EXPECT_EQ(4, v.tracked);
	EXPECT_EQ(1, v.dirty);
	EXPECT_EQ(2, v.trapped);

	/* A shrink drops what was cut off. */
	upage_resize_ok(self->fd, 4);
	view_fdinfo_ok(self->fd, &v);
	ASSERT_EQ(0, view_query(self->fd, 4, &q));
	EXPECT_EQ(4, v.slots);
	EXPECT_EQ(q.resident, v.resident);
	EXPECT_EQ(2, v.evicted);
	EXPECT_EQ(0, v.pinned);
	EXPECT_EQ(0, v.tracked);
	EXPECT_EQ(0, v.trapped);
}

/* upage_mappings counts VMAs: mmap, munmap, mprotect splits, fork. */
TEST_F(view, fdinfo_mappings_follow_vmas)
{
	unsigned char *q;
	int pipefd[2];
	struct view v;
	char c;
	pid_t pid;

	q = upage_map(self->fd, 4, 4, MAP_PRIVATE);
	ASSERT_NE(NULL, q);
	view_fdinfo_ok(self->fd, &v);
	EXPECT_EQ(2, v.mappings);
	/* One VMA cut in three. */
	ASSERT_EQ(0, mprotect(self->p + PAGE, PAGE, PROT_READ));
	view_fdinfo_ok(self->fd, &v);
	EXPECT_EQ(4, v.mappings);
	ASSERT_EQ(0, munmap(q, 4 * PAGE));
	view_fdinfo_ok(self->fd, &v);
	EXPECT_EQ(3, v.mappings);

	/* A child has copies of the parent's VMAs while it lives. */
	ASSERT_EQ(0, pipe(pipefd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		close(pipefd[1]);
		_exit(read(pipefd[0], &c, 1) < 0);
	}
	close(pipefd[0]);
	view_fdinfo_ok(self->fd, &v);
	EXPECT_EQ(6, v.mappings);
	close(pipefd[1]);
	ASSERT_EQ(pid, waitpid(pid, NULL, 0));
	view_fdinfo_ok(self->fd, &v);
	EXPECT_EQ(3, v.mappings);
}

/* Two spaces have two ids, both as long as they live. */
TEST_F(view, two_spaces_have_different_ids)
{
	struct view v, w;
	int fd;

	upage_open_or_skip(fd);
	view_fdinfo_ok(self->fd, &v);
	view_fdinfo_ok(fd, &w);
	EXPECT_NE(v.id, w.id);
	EXPECT_EQ(self->id, v.id);
	close(fd);
}

static int view_read_fdinfo_of(void *arg)
{
	const char *path = arg;
	int fd = open(path, O_RDONLY);

	if (fd >= 0)
		return 1;
	return errno == EACCES ? 0 : 2;
}

/*
 * Another user's fdinfo is proc's to refuse (a ptrace check): as root, a
 * child turned nobody tries ours; as nobody, we try init's (root's).
 */
TEST_F(view, fdinfo_of_another_user_refused)
{
	char path[64];
	struct stat st;

	if (geteuid() == 0) {
		snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", getpid(),
			 self->fd);
		ASSERT_EQ(0, view_as_nobody(view_read_fdinfo_of, path));
		return;
	}
	if (stat("/proc/1", &st) || st.st_uid == geteuid())
		SKIP(return, "no process of another user to try");
	EXPECT_EQ(0, view_read_fdinfo_of("/proc/1/fdinfo/0"));
}

/* The debugfs file lists our space as fdinfo counts it, and our VMA. */
TEST_F(view, debugfs_lists_space_and_maps)
{
	const char *maps;
	struct view v, d;
	struct view_map m;
	int found = 0, ret;
	char *buf;

	view_require_debugfs();
	ASSERT_EQ(0, view_known_table(self->fd, self->p));
	view_fdinfo_ok(self->fd, &v);
	buf = view_spaces_read();
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, view_spaces_find(buf, self->id, &d, &maps));
	for (size_t i = 0; i < VIEW_FIELDS; i++)
		EXPECT_EQ(*view_field(&v, i), *view_field(&d, i));
	while ((ret = view_map_line(maps, &m)) == 1) {
		if (m.start == (unsigned long)self->p) {
			found++;
			EXPECT_EQ(getpid(), m.pid);
			EXPECT_EQ((unsigned long)self->p + SLOTS * PAGE, m.end);
			EXPECT_EQ(0, m.pgoff);
			EXPECT_STREQ("rws", m.prot);
		}
		maps = strchr(maps, '\n') + 1;
	}
	EXPECT_EQ(0, ret);
	EXPECT_EQ(1, found);
	free(buf);
}

/* A private mapping at an offset, read-only: its own line, 'p'. */
TEST_F(view, debugfs_map_line_of_private_mapping)
{
	unsigned char *q = mmap(NULL, 2 * PAGE, PROT_READ, MAP_PRIVATE,
				self->fd, 5 * PAGE);
	const char *maps;
	struct view_map m;
	struct view d;
	int found = 0;
	char *buf;

	view_require_debugfs();
	ASSERT_NE(MAP_FAILED, q);
	buf = view_spaces_read();
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, view_spaces_find(buf, self->id, &d, &maps));
	EXPECT_EQ(2, d.mappings);
	while (view_map_line(maps, &m) == 1) {
		if (m.start == (unsigned long)q) {
			found++;
			EXPECT_EQ((unsigned long)q + 2 * PAGE, m.end);
			EXPECT_EQ(5, m.pgoff);
			EXPECT_STREQ("r-p", m.prot);
		}
		maps = strchr(maps, '\n') + 1;
	}
	EXPECT_EQ(1, found);
	free(buf);
	munmap(q, 2 * PAGE);
}

/* Past 64 VMAs a space's block ends with one line that counts the rest. */
TEST_F(view, debugfs_caps_map_lines)
{
	enum { EXTRA = 70 };
	unsigned char *q[EXTRA];
	const char *maps;
	struct view_map m;
	struct view d;
	unsigned long more = 0;
	int lines = 0, i;
	char *buf;

	view_require_debugfs();
	/* Each maps slot 0 alone: no two can merge, wherever they lie. */
	for (i = 0; i < EXTRA; i++) {
		q[i] = upage_map(self->fd, 0, 1, MAP_SHARED);
		ASSERT_NE(NULL, q[i]);
	}
	buf = view_spaces_read();
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, view_spaces_find(buf, self->id, &d, &maps));
	EXPECT_EQ(EXTRA + 1, d.mappings);
	while (view_map_line(maps, &m) == 1) {
		lines++;
		maps = strchr(maps, '\n') + 1;
	}
	EXPECT_EQ(64, lines);
	ASSERT_EQ(1, sscanf(maps, "  map ... more %lu\n", &more));
	EXPECT_EQ(EXTRA + 1 - 64, more);
	free(buf);
	for (i = 0; i < EXTRA; i++)
		munmap(q[i], PAGE);
}

/* A closed space is gone from the list. */
TEST_F(view, debugfs_closed_space_is_gone)
{
	const char *maps;
	struct view v, d;
	char *buf;
	int fd;

	view_require_debugfs();
	upage_open_or_skip(fd);
	view_fdinfo_ok(fd, &v);
	buf = view_spaces_read();
	ASSERT_NE(NULL, buf);
	EXPECT_EQ(0, view_spaces_find(buf, v.id, &d, &maps));
	free(buf);
	close(fd);
	buf = view_spaces_read();
	ASSERT_NE(NULL, buf);
	EXPECT_EQ(-ENOENT, view_spaces_find(buf, v.id, &d, &maps));
	EXPECT_EQ(0, view_spaces_find(buf, self->id, &d, &maps));
	free(buf);
}

static int view_open_spaces_file(void *arg)
{
	int fd = open(SPACES_FILE, O_RDONLY);

	if (fd >= 0)
		return 1;
	return errno == EACCES || errno == EPERM ? 0 : 2;
}

/* Only root reads the debugfs view. */
TEST_F(view, debugfs_refused_unprivileged)
{
	if (!view_debugfs_mounted())
		SKIP(return, "debugfs not mounted");
	if (geteuid() == 0) {
		if (access(SPACES_FILE, R_OK))
			SKIP(return, "no %s", SPACES_FILE);
		ASSERT_EQ(0, view_as_nobody(view_open_spaces_file, NULL));
		return;
	}
	/* Not root: debugfs itself (0700) or the file (0400) says no. */
	EXPECT_EQ(0, view_open_spaces_file(NULL));
}

/*
 * Churn: spaces open, resize (shrinking the table), map, fork and close
 * while another thread reads both views.
 */
struct view_churn {
	volatile int stop;
	int fd;		/* a space that keeps resizing */
	unsigned long rounds;
};

static void *view_churn_thread(void *arg)
{
	struct view_churn *ch = arg;

	while (!ch->stop) {
		int fd = upage_open(O_CLOEXEC);
		unsigned char *p, *q;
		pid_t pid;

		if (fd < 0)
			break;
		upage_resize(fd, 8, NULL);
		p = upage_map(fd, 0, 8, MAP_SHARED);
		q = upage_map(ch->fd, 0, 64, MAP_SHARED);
		if (p)
			p[0] = 1;
		if (q)
			q[63 * PAGE] = 1;
		upage_resize(ch->fd, 2048, NULL);
		upage_resize(ch->fd, 64, NULL);
		pid = fork();
		if (pid == 0)
			_exit(0);
		if (p)
			munmap(p, 8 * PAGE);
		close(fd);
		if (pid > 0)
			waitpid(pid, NULL, 0);
		if (q)
			munmap(q, 64 * PAGE);
		ch->rounds++;
	}
	return NULL;
}

TEST_F_TIMEOUT(view, views_read_while_spaces_churn, 60)
{
	struct view_churn ch = { .stop = 0 };
	int root = geteuid() == 0 && !access(SPACES_FILE, R_OK);
	unsigned long reads = 0, id;
	pthread_t thread;
	time_t end;
	struct view v;

	upage_open_or_skip(ch.fd);
	upage_resize_ok(ch.fd, 64);
	view_fdinfo_ok(ch.fd, &v);
	id = v.id;
	ASSERT_EQ(0, pthread_create(&thread, NULL, view_churn_thread, &ch));
	/* 3 s, and on a slow host on until 10 rounds of churn (30 s). */
	end = time(NULL) + 3;
	while (time(NULL) < end ||
	       (__atomic_load_n(&ch.rounds, __ATOMIC_RELAXED) < 10 &&
		time(NULL) < end + 27)) {
		if (root) {
			char *buf = view_spaces_read();
			const char *maps;

			EXPECT_NE(NULL, buf);
			/* Well-formed up to the churning space, which is there. */
			if (buf)
				EXPECT_EQ(0, view_spaces_find(buf, id, &v, &maps));
			free(buf);
		}
		EXPECT_EQ(0, view_fdinfo(getpid(), ch.fd, &v));
		EXPECT_EQ(id, v.id);
		reads++;
	}
	ch.stop = 1;
	pthread_join(thread, NULL);
	close(ch.fd);
	EXPECT_LT(0, ch.rounds);
	TH_LOG("%lu reads, %lu rounds of churn%s", reads, ch.rounds,
	       root ? "" : " (fdinfo only: not root)");
}

/*
 * Root's debugfs reader waits, killably, for a busy space's lock; no
 * other space's open() or close() may wait with it (found by review: the
 * reader held the list lock across the wait, and open and release take
 * it uninterruptibly). A long UPAGE_RES_PIN of holes holds space A's lock.
 */
#define BUSY_PIN_SLOTS 40000

struct busy_pin {
	int fd;
	volatile int done;
};

static void *busy_pin_thread(void *arg)
{
	struct busy_pin *pin = arg;

	upage_pin(pin->fd, 0, BUSY_PIN_SLOTS, NULL);
	pin->done = 1;
	return NULL;
}

static void *busy_reader_thread(void *arg)
{
	free(view_spaces_read());
	return NULL;
}

TEST(debugfs_reader_on_a_busy_space_holds_up_no_other_open_or_close)
{
	struct busy_pin pin = { .done = 0 };
	pthread_t pt, rt;
	int fd, done_after;

	if (geteuid() || access(SPACES_FILE, R_OK))
		SKIP(return, "needs root and %s", SPACES_FILE);
	upage_open_or_skip(pin.fd);
	upage_resize_ok(pin.fd, BUSY_PIN_SLOTS);

	ASSERT_EQ(0, pthread_create(&pt, NULL, busy_pin_thread, &pin));
	usleep(50000);
	ASSERT_EQ(0, pthread_create(&rt, NULL, busy_reader_thread, NULL));
	usleep(50000);
	/* An unrelated space: opened and closed while A's pin still runs. */
	fd = upage_open(O_CLOEXEC);
	ASSERT_LE(0, fd);
	close(fd);
	done_after = pin.done;
	pthread_join(pt, NULL);
	pthread_join(rt, NULL);
	close(pin.fd);
	EXPECT_EQ(0, done_after)
		TH_LOG("the open and close waited for another space's pin");
}

TEST_HARNESS_MAIN
