// SPDX-License-Identifier: GPL-2.0
/*
 * upagectl map PID: the spaces PID holds, taken with pidfd_getfd(2), each
 * queried slot by slot and drawn one character a slot, 64 to a line; the
 * VMAs of PID that map them; the frames several slots share. A slot shows
 * its most telling state: a trap, then a protection, then pinned, dirty,
 * tracked, lazy, copy-on-write, aliased, evicted, resident, hole.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "upagectl.h"

#ifndef SYS_kcmp
#define SYS_kcmp 312
#endif
#define KCMP_FILE 0

#define QUERY_CHUNK 4096
#define PER_LINE 64
#define MAX_RUNS 64
#define MAX_SHARED_TEXT 32

const struct slot_look slot_looks[] = {
	{ '.', "hole", "hole", "2;37", "#e8e8e8" },
	{ 'r', "resident", "resident", "32", "#3cb44b" },
	{ 'a', "aliased", "aliased", "36", "#42d4f4" },
	{ 'c', "copy-on-write", "cow", "34", "#4363d8" },
	{ 'e', "evicted", "evicted", "33", "#ffe119" },
	{ 'p', "pinned", "pinned", "35", "#911eb4" },
	{ 'l', "lazy", "lazy", "2;33", "#bfef45" },
	{ 'n', "prot none", "prot_none", "31", "#e6194b" },
	{ 'o', "prot read", "prot_read", "91", "#f58231" },
	{ 't', "tracked", "tracked", "96", "#469990" },
	{ 'd', "dirty", "dirty", "1;93", "#9a6324" },
	{ 'T', "trapped", "trapped", "1;97;41", "#000000" },
};
const int nr_slot_looks = sizeof(slot_looks) / sizeof(slot_looks[0]);

const struct slot_look *slot_look(char c)
{
	int i;

	for (i = 0; i < nr_slot_looks; i++)
		if (slot_looks[i].c == c)
			return &slot_looks[i];
	return &slot_looks[0];
}

char slot_char(const struct upage_slot_info *s)
{
	if (s->state & (UPAGE_SLOT_TRAP_READ | UPAGE_SLOT_TRAP_WRITE))
		return 'T';
	if (s->prot == UPAGE_PROT_NONE)
		return 'n';
	if (s->prot == UPAGE_PROT_READ)
		return 'o';
	if (s->state & UPAGE_SLOT_PINNED)
		return 'p';
	if (s->state & UPAGE_SLOT_DIRTY)
		return 'd';
	if (s->state & UPAGE_SLOT_TRACKED)
		return 't';
	if (s->state & (UPAGE_SLOT_LAZY | UPAGE_SLOT_RECLAIMED))
		return 'l';
	if (s->state & UPAGE_SLOT_COW)
		return 'c';
	if (s->nr_aliases > 1)
		return 'a';
	if (s->state & UPAGE_SLOT_EVICTED)
		return 'e';
	if (s->state & UPAGE_SLOT_RESIDENT)
		return 'r';
	return '.';
}

/* Whether two descriptors of this process are one open file, one space. */
static bool same_file(int a, int b)
{
	pid_t me = getpid();

	return syscall(SYS_kcmp, me, me, KCMP_FILE, a, b) == 0;
}

static void query_space(struct map_space *s, int copy)
{
	struct upage_stats st;
	uint64_t i, n;
	int ret;

	ret = upage_stats(copy, &st);
	if (ret)
		refused(ret);
	s->pages = st.out_pages;
	s->info = calloc(s->pages ? s->pages : 1, sizeof(*s->info));
	s->chars = malloc(s->pages + 1);
	if (!s->info || !s->chars)
		fail("map", ENOMEM, "the space is too large to draw");
	for (i = 0; i < s->pages; i += n) {
		n = s->pages - i < QUERY_CHUNK ? s->pages - i : QUERY_CHUNK;
		ret = upage_query(copy, i, n, s->info + i);
		/* The space may shrink while we look: draw what was there. */
		if (ret == -EINVAL) {
			s->pages = i;
			break;
		}
		if (ret)
			refused(ret);
	}
	for (i = 0; i < s->pages; i++)
		s->chars[i] = slot_char(&s->info[i]);
	s->chars[s->pages] = 0;
}

/* The spaces @pid holds, one per open file, queried. */
static int take_spaces(pid_t pid, struct map_space **out, int **copies)
{
	struct map_space *sp;
	int *fds, *cp, n, nr = 0, i, j, copy;
	char what[64];

	n = read_upage_fds(pid, &fds);
	if (n < 0) {
		snprintf(what, sizeof(what), "map: %s/%d/fd", proc_root(), pid);
		fail(what, -n, n == -ENOENT ? "no such process" :
		     "ptrace permission is needed (same user, or CAP_SYS_PTRACE)");
	}
	sp = calloc(n ? n : 1, sizeof(*sp));
	cp = calloc(n ? n : 1, sizeof(*cp));
	if (!sp || !cp)
		fail("map", ENOMEM, NULL);
	for (i = 0; i < n; i++) {
		copy = take_fd(pid, fds[i]);
		if (copy < 0) {
			snprintf(what, sizeof(what), "map: fd %d of pid %d", fds[i], pid);
			fail(what, errno, errno == EPERM ?
			     "ptrace permission is needed (same user, or CAP_SYS_PTRACE)" : NULL);
		}
		sp[nr].fdinfo_seen = read_fdinfo(pid, fds[i], sp[nr].fdinfo);
		if (sp[nr].fdinfo_seen & (1U << F_ID))
			sp[nr].id = sp[nr].fdinfo[F_ID];
		/* Without kcmp (ENOSYS), the module's space id tells. */
		for (j = 0; j < nr; j++)
			if (same_file(cp[j], copy) || (sp[nr].id && sp[j].id == sp[nr].id))
				break;
		if (j < nr) {
			memset(&sp[nr], 0, sizeof(sp[nr]));
			close(copy);
			continue;
		}
		cp[nr] = copy;
		sp[nr].fd = fds[i];
		query_space(&sp[nr], copy);
		nr++;
	}
	free(fds);
	*out = sp;
	*copies = cp;
	return nr;
}

/*
 * Give each space the VMAs that surely map it. With debugfs (root), those
 * it lists with the VMA's pid, start and end under the space's id. Without
 * it, all of them when PID holds one space and maps no more VMAs than
 * that space has (vmas_may_be_held()): a space PID mapped and then closed
 * leaves VMAs that /proc/PID/maps cannot tell from the held one's. The
 * rest go to *@rest.
 */
static int attribute_vmas(pid_t pid, struct map_space *sp, int nr,
			  struct vma **rest)
{
	struct vma *vmas = NULL, *left;
	int n, i, j, nr_left = 0;
	bool debugfs, all;
	uint64_t id;

	n = read_upage_vmas(pid, &vmas);
	if (n < 0)
		n = 0;
	left = calloc(n ? n : 1, sizeof(*left));
	if (!left)
		fail("map", ENOMEM, NULL);
	for (i = 0; i < nr; i++) {
		sp[i].vmas = calloc(n ? n : 1, sizeof(*vmas));
		if (!sp[i].vmas)
			fail("map", ENOMEM, NULL);
	}
	debugfs = read_debugfs();
	all = !debugfs && nr == 1 &&
	      vmas_may_be_held(sp[0].fdinfo, sp[0].fdinfo_seen, n);
	for (i = 0; i < n; i++) {
		id = debugfs ? debugfs_space_of(&vmas[i]) : 0;
		for (j = 0; j < nr; j++)
			if (all || (id && sp[j].id == id))
				break;
		if (j < nr)
			sp[j].vmas[sp[j].nr_vmas++] = vmas[i];
		else
			left[nr_left++] = vmas[i];
	}
	free(vmas);
	*rest = left;
	return nr_left;
}

static bool use_color(void)
{
	return opt_color < 0 ? isatty(STDOUT_FILENO) : opt_color;
}

/* One line of the picture: slots first..first+n-1. */
static void print_line(const struct map_space *s, uint64_t first, uint64_t n)
{
	bool color = use_color();
	char last = 0;
	uint64_t i;

	printf("%10" PRIu64 " ", first);
	for (i = first; i < first + n; i++) {
		char c = s->chars[i];

		if (color && c != last)
			printf("\033[0;%sm", slot_look(c)->ansi);
		putchar(c);
		last = c;
	}
	printf("%s\n", color ? "\033[0m" : "");
}

/* Slots past PICTURE_MAX: runs of one character, at most MAX_RUNS. */
static void print_runs(const struct map_space *s)
{
	uint64_t i, end;
	int runs = 0;

	printf("  slots %d-%" PRIu64 " as runs:\n", PICTURE_MAX, s->pages - 1);
	for (i = PICTURE_MAX; i < s->pages; i = end) {
		for (end = i + 1; end < s->pages && s->chars[end] == s->chars[i]; end++)
			;
		if (runs++ < MAX_RUNS)
			printf("%10" PRIu64 "-%" PRIu64 " %c %s\n", i, end - 1,
			       s->chars[i], slot_look(s->chars[i])->name);
	}
	if (runs > MAX_RUNS)
		printf("  ... %d more runs\n", runs - MAX_RUNS);
}

static void print_legend(void)
{
	bool color = use_color();
	int i;

	printf("legend:");
	for (i = 0; i < nr_slot_looks; i++) {
		if (color)
			printf(" \033[0;%sm%c\033[0m %s", slot_looks[i].ansi,
			       slot_looks[i].c, slot_looks[i].name);
		else
			printf(" %c %s", slot_looks[i].c, slot_looks[i].name);
	}
	printf("\n");
}

static int frame_cmp(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	if (x[0] != y[0])
		return x[0] < y[0] ? -1 : 1;
	return x[1] < y[1] ? -1 : x[1] > y[1];
}

/*
 * The slots of @s sharing a frame, as (frame_id, slot) pairs sorted by
 * frame then slot; returns the number of pairs.
 */
uint64_t shared_pairs(const struct map_space *s, uint64_t **out)
{
	uint64_t i, n = 0, *pairs;

	pairs = malloc((s->pages ? s->pages : 1) * 2 * sizeof(*pairs));
	if (!pairs)
		fail("map", ENOMEM, NULL);
	for (i = 0; i < s->pages; i++) {
		if (s->info[i].nr_aliases < 2 || !s->info[i].frame_id)
			continue;
		pairs[2 * n] = s->info[i].frame_id;
		pairs[2 * n + 1] = i;
		n++;
	}
	qsort(pairs, n, 2 * sizeof(*pairs), frame_cmp);
	*out = pairs;
	return n;
}

static void print_vma(const char *lead, const struct vma *v)
{
	printf("%s0x%llx-0x%llx pgoff %llu %s\n", lead,
	       (unsigned long long)v->start, (unsigned long long)v->end,
	       (unsigned long long)v->pgoff, v->prot);
}

static void print_space(const struct map_space *s)
{
	uint64_t i, j, n, *pairs;
	int groups = 0;

	if (s->id)
		printf("space %" PRIu64 " (fd %d): %" PRIu64 " slots\n", s->id,
		       s->fd, s->pages);
	else
		printf("space ? (fd %d): %" PRIu64 " slots\n", s->fd, s->pages);
	for (i = 0; i < (uint64_t)s->nr_vmas; i++)
		print_vma("  vma ", &s->vmas[i]);
	for (i = 0; i < s->pages && i < PICTURE_MAX; i += PER_LINE)
		print_line(s, i, s->pages - i < PER_LINE ? s->pages - i : PER_LINE);
	if (s->pages > PICTURE_MAX)
		print_runs(s);
	n = shared_pairs(s, &pairs);
	for (i = 0; i < n; i = j) {
		for (j = i; j < n && pairs[2 * j] == pairs[2 * i]; j++)
			;
		if (groups++ >= MAX_SHARED_TEXT)
			continue;
		printf("  frame %" PRIu64 " shared by slots", pairs[2 * i]);
		for (; i < j; i++)
			printf(" %" PRIu64, pairs[2 * i + 1]);
		printf("\n");
	}
	if (groups > MAX_SHARED_TEXT)
		printf("  ... %d more shared frames\n", groups - MAX_SHARED_TEXT);
	free(pairs);
}

static void json_vma(const struct vma *v)
{
	json_begin(NULL);
	json_u64("start", v->start);
	json_u64("end", v->end);
	json_u64("pgoff", v->pgoff);
	json_str("prot", v->prot);
	json_end();
}

static void json_space(struct map_space *s)
{
	uint64_t i, j, n, *pairs, counts[16] = { 0 };
	char save;
	int k;

	json_begin(NULL);
	json_i64("fd", s->fd);
	if (s->id)
		json_u64("id", s->id);
	else
		json_null("id");
	json_u64("slots", s->pages);
	json_begin_array("vmas");
	for (k = 0; k < s->nr_vmas; k++)
		json_vma(&s->vmas[k]);
	json_end_array();
	n = s->pages < PICTURE_MAX ? s->pages : PICTURE_MAX;
	save = s->chars[n];
	s->chars[n] = 0;
	json_str("picture", s->chars);
	s->chars[n] = save;
	json_u64("picture_slots", n);
	for (i = 0; i < s->pages; i++)
		counts[slot_look(s->chars[i]) - slot_looks]++;
	json_begin("counts");
	for (k = 0; k < nr_slot_looks; k++)
		json_u64(slot_looks[k].key, counts[k]);
	json_end();
	json_begin_array("shared_frames");
	n = shared_pairs(s, &pairs);
	for (i = 0; i < n; i = j) {
		json_begin(NULL);
		json_u64("frame_id", pairs[2 * i]);
		json_begin_array("slots");
		for (j = i; j < n && pairs[2 * j] == pairs[2 * i]; j++)
			json_u64(NULL, pairs[2 * j + 1]);
		json_end_array();
		json_end();
	}
	json_end_array();
	free(pairs);
	json_end();
}

int cmd_map(int argc, char **argv)
{
	struct map_space *sp;
	struct vma *rest;
	const char *svg = NULL;
	int nr, nr_rest, i, *copies;
	pid_t pid;

	if (argc == 4 && !strcmp(argv[2], "--svg"))
		svg = argv[3];
	else if (argc != 2)
		command_usage(argv[0]);
	pid = parse_int("pid", argv[1]);
	nr = take_spaces(pid, &sp, &copies);
	nr_rest = attribute_vmas(pid, sp, nr, &rest);
	if (svg && svg_write(svg, pid, sp, nr))
		fail(svg, errno, "give a path this user may write");
	if (opt_json) {
		json_begin(NULL);
		json_i64("pid", pid);
		json_begin_array("spaces");
		for (i = 0; i < nr; i++)
			json_space(&sp[i]);
		json_end_array();
		json_begin_array("unattributed");
		for (i = 0; i < nr_rest; i++)
			json_vma(&rest[i]);
		json_end_array();
		json_end();
		json_finish();
		return 0;
	}
	printf("pid %d holds %d space%s\n", pid, nr, nr == 1 ? "" : "s");
	for (i = 0; i < nr; i++)
		print_space(&sp[i]);
	for (i = 0; i < nr_rest; i++)
		print_vma("  ? vma ", &rest[i]);
	if (nr_rest && read_debugfs())
		printf("  ? these VMAs map spaces pid %d does not hold open (or debugfs does not list them)\n",
		       pid);
	else if (nr_rest)
		printf("  ? these VMAs map /dev/upage, but which space only debugfs tells (run as root)\n");
	if (nr)
		print_legend();
	return 0;
}
