// SPDX-License-Identifier: GPL-2.0
/*
 * upagectl spaces: every space the caller may see. As root the module's
 * debugfs file lists them all with the VMAs mapping each; otherwise the
 * fdinfo of each /dev/upage descriptor the caller may read gives a space's
 * counts, and /proc/PID/maps the VMAs, which can be told apart only in a
 * process that holds one space and maps no more VMAs than that space
 * counts ("?" otherwise: see vmas_may_be_held()).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upagectl.h"

struct holder {
	pid_t pid;
	int fd;
};

struct space_row {
	uint64_t vals[NR_FIELDS];
	unsigned int seen;
	struct holder *holders;
	int nr_holders;
	struct vma *mappers;
	int nr_mappers;
	uint64_t more;
};

static struct space_row *rows;
static int nr_rows;
static struct vma *unattributed;
static int nr_unattributed;

/* Room for one more after @n entries: capacity 4, then doubling. */
static void *grow(void *p, int n, size_t size)
{
	if (!n)
		p = realloc(p, 4 * size);
	else if (n >= 4 && !(n & (n - 1)))
		p = realloc(p, 2 * (size_t)n * size);
	if (!p)
		fail("spaces", ENOMEM, NULL);
	return p;
}

static struct space_row *new_row(uint64_t id)
{
	rows = grow(rows, nr_rows, sizeof(*rows));
	memset(&rows[nr_rows], 0, sizeof(rows[0]));
	rows[nr_rows].vals[F_ID] = id;
	return &rows[nr_rows++];
}

/* The row of space @id; a new one if none (or @id is 0, unknown). */
static struct space_row *row_of(uint64_t id)
{
	int i;

	for (i = 0; id && i < nr_rows; i++)
		if (rows[i].vals[F_ID] == id)
			return &rows[i];
	return new_row(id);
}

static void add_mapper(struct vma **list, int *n, const struct vma *v)
{
	*list = grow(*list, *n, sizeof(**list));
	(*list)[(*n)++] = *v;
}

/* "  map pid P start 0xS end 0xE pgoff N prot rws" or "  map ... more N". */
static void parse_map_line(struct space_row *row, char *line)
{
	struct vma v = { 0 };
	char *key, *val, *save;

	strtok_r(line, " \t\n", &save);		/* "map" */
	while ((key = strtok_r(NULL, " \t\n", &save))) {
		if (!strcmp(key, "..."))
			continue;
		val = strtok_r(NULL, " \t\n", &save);
		if (!val)
			break;
		if (!strcmp(key, "more")) {
			row->more = strtoull(val, NULL, 0);
			return;
		}
		if (!strcmp(key, "pid"))
			v.pid = strtol(val, NULL, 0);
		else if (!strcmp(key, "start"))
			v.start = strtoull(val, NULL, 16);
		else if (!strcmp(key, "end"))
			v.end = strtoull(val, NULL, 16);
		else if (!strcmp(key, "pgoff"))
			v.pgoff = strtoull(val, NULL, 0);
		else if (!strcmp(key, "prot"))
			snprintf(v.prot, sizeof(v.prot), "%s", val);
	}
	add_mapper(&row->mappers, &row->nr_mappers, &v);
}

/* "space ID owner U slots N ...": the pairs after "space". */
static void parse_space_line(char *line)
{
	struct space_row *row;
	char *key, *val, *save;
	int i;

	row = new_row(0);
	key = strtok_r(line, " \t\n", &save);
	while (key && (val = strtok_r(NULL, " \t\n", &save))) {
		for (i = 0; i < NR_FIELDS; i++) {
			if (strcmp(key, space_fields[i]))
				continue;
			row->vals[i] = strtoull(val, NULL, 10);
			row->seen |= 1U << i;
		}
		key = strtok_r(NULL, " \t\n", &save);
	}
}

/* Parse the debugfs file once; false if it cannot be read. */
bool read_debugfs(void)
{
	static int loaded;
	char line[512], *p;
	FILE *f;

	if (loaded)
		return loaded > 0;
	f = fopen(debugfs_spaces(), "re");
	loaded = f ? 1 : -1;
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		for (p = line; isspace((unsigned char)*p); p++)
			;
		if (!strncmp(p, "space ", 6))
			parse_space_line(p);
		else if (!strncmp(p, "map ", 4) && nr_rows)
			parse_map_line(&rows[nr_rows - 1], p);
	}
	fclose(f);
	return true;
}

/*
 * The space debugfs says @v maps: its pid, start and end on a map line;
 * 0 if debugfs cannot be read or lists no such VMA (past 64 of a space).
 */
uint64_t debugfs_space_of(const struct vma *v)
{
	int i, j;

	for (i = 0; read_debugfs() && i < nr_rows; i++)
		for (j = 0; j < rows[i].nr_mappers; j++)
			if (rows[i].mappers[j].pid == v->pid &&
			    rows[i].mappers[j].start == v->start &&
			    rows[i].mappers[j].end == v->end)
				return rows[i].vals[F_ID];
	return 0;
}

/*
 * Without debugfs, whether the @nr_vmas /dev/upage VMAs of a process that
 * holds one space, whose fdinfo said @vals and @seen, may all be that
 * space's. The space's "mappings" counts its VMAs in every process, so it
 * can only rule out: a process with more /dev/upage VMAs than that maps
 * another space too (one it no longer holds), and which VMA is whose only
 * debugfs tells. No count, no evidence: rule out as well.
 */
bool vmas_may_be_held(const uint64_t *vals, unsigned int seen, int nr_vmas)
{
	return (seen & (1U << F_MAPPINGS)) &&
	       (uint64_t)nr_vmas <= vals[F_MAPPINGS];
}

/* One process: its /dev/upage fds become holders; its VMAs, mappers. */
static void scan_pid(pid_t pid, bool debugfs)
{
	uint64_t vals[NR_FIELDS], held = 0;
	struct space_row *row;
	struct vma *vmas = NULL;
	int *fds = NULL, n, i, nr_held = 0;
	unsigned int seen;

	n = read_upage_fds(pid, &fds);
	for (i = 0; i < n; i++) {
		memset(vals, 0, sizeof(vals));
		seen = read_fdinfo(pid, fds[i], vals);
		if (!(seen & (1U << F_ID)) && debugfs)
			continue;
		row = row_of(seen & (1U << F_ID) ? vals[F_ID] : 0);
		if (!debugfs || !row->seen) {
			memcpy(row->vals, vals, sizeof(vals));
			row->seen = seen;
		}
		row->holders = grow(row->holders, row->nr_holders,
				    sizeof(*row->holders));
		row->holders[row->nr_holders++] = (struct holder){ pid, fds[i] };
		if (!nr_held) {
			held = row->vals[F_ID];
			nr_held = 1;
		} else if (!held || held != row->vals[F_ID]) {
			nr_held = 2;
		}
	}
	free(fds);
	if (debugfs)
		return;
	n = read_upage_vmas(pid, &vmas);
	row = NULL;
	if (n > 0 && nr_held == 1 && held) {
		row = row_of(held);
		if (!vmas_may_be_held(row->vals, row->seen, n))
			row = NULL;
	}
	for (i = 0; i < n; i++) {
		if (row)
			add_mapper(&row->mappers, &row->nr_mappers, &vmas[i]);
		else
			add_mapper(&unattributed, &nr_unattributed, &vmas[i]);
	}
	free(vmas);
}

static void scan_proc(bool debugfs)
{
	struct dirent *de;
	DIR *d = opendir(proc_root());

	if (!d)
		fail(proc_root(), errno, "mount proc");
	while ((de = readdir(d)))
		if (de->d_name[0] >= '1' && de->d_name[0] <= '9')
			scan_pid(atoi(de->d_name), debugfs);
	closedir(d);
}

static void json_vma(const struct vma *v)
{
	json_begin(NULL);
	json_i64("pid", v->pid);
	json_u64("start", v->start);
	json_u64("end", v->end);
	json_u64("pgoff", v->pgoff);
	json_str("prot", v->prot);
	json_end();
}

static void json_row(const struct space_row *r)
{
	int i;

	json_begin(NULL);
	for (i = 0; i < NR_FIELDS; i++) {
		const char *name = i == F_ID ? "id" : space_fields[i];

		if (r->seen & (1U << i))
			json_u64(name, r->vals[i]);
		else
			json_null(name);
	}
	json_begin_array("holders");
	for (i = 0; i < r->nr_holders; i++) {
		json_begin(NULL);
		json_i64("pid", r->holders[i].pid);
		json_i64("fd", r->holders[i].fd);
		json_end();
	}
	json_end_array();
	json_begin_array("mappers");
	for (i = 0; i < r->nr_mappers; i++)
		json_vma(&r->mappers[i]);
	json_end_array();
	json_u64("mappers_more", r->more);
	json_end();
}

static void print_vma(const char *lead, const struct vma *v)
{
	printf("%spid %d 0x%llx-0x%llx pgoff %llu %s\n", lead, v->pid,
	       (unsigned long long)v->start, (unsigned long long)v->end,
	       (unsigned long long)v->pgoff, v->prot);
}

static void print_row(const struct space_row *r)
{
	int i;

	for (i = 0; i < NR_FIELDS; i++) {
		if (r->seen & (1U << i))
			printf(i ? " %8llu" : "%10llu", (unsigned long long)r->vals[i]);
		else
			printf(i ? " %8s" : "%10s", "?");
	}
	printf("\n  holders:");
	for (i = 0; i < r->nr_holders; i++)
		printf(" %d (fd %d)", r->holders[i].pid, r->holders[i].fd);
	printf("%s\n", r->nr_holders ? "" : " none visible");
	for (i = 0; i < r->nr_mappers; i++)
		print_vma("  mapped by ", &r->mappers[i]);
	if (r->more)
		printf("  mapped by %llu more VMAs\n", (unsigned long long)r->more);
}

int cmd_spaces(int argc, char **argv)
{
	bool debugfs;
	int i;

	if (argc != 1)
		command_usage(argv[0]);
	debugfs = read_debugfs();
	scan_proc(debugfs);
	if (opt_json) {
		json_begin(NULL);
		json_str("source", debugfs ? "debugfs" : "fdinfo");
		json_begin_array("spaces");
		for (i = 0; i < nr_rows; i++)
			json_row(&rows[i]);
		json_end_array();
		json_begin_array("unattributed");
		for (i = 0; i < nr_unattributed; i++)
			json_vma(&unattributed[i]);
		json_end_array();
		json_end();
		json_finish();
		return 0;
	}
	printf("source: %s\n", debugfs ? "debugfs" :
	       "fdinfo (the processes this user may read; root sees all through debugfs)");
	printf("%10s", "SPACE");
	for (i = 1; i < NR_FIELDS; i++) {
		char head[9];
		int j;

		for (j = 0; j < 8 && space_fields[i][j]; j++)
			head[j] = toupper((unsigned char)space_fields[i][j]);
		head[j] = 0;
		printf(" %8s", head);
	}
	printf("\n");
	for (i = 0; i < nr_rows; i++)
		print_row(&rows[i]);
	for (i = 0; i < nr_unattributed; i++)
		print_vma("? mapped by ", &unattributed[i]);
	if (nr_unattributed)
		printf("? the VMAs above map /dev/upage in processes that hold several\n"
		       "? spaces or none: which space each maps only debugfs tells (root)\n");
	return 0;
}
