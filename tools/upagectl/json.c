// SPDX-License-Identifier: GPL-2.0
/*
 * upagectl -J: each listing prints one JSON object on one line. The field
 * names are an interface (upagectl(8) documents them); add, never rename.
 * Counts are numbers, states arrays of strings, addresses numbers.
 *
 * info:   loaded (bool), module_version (string|null), srcversion
 *         (string|null), api {version, page_size, max_pages, ioctls,
 *         features: [names]} or api_error (string), parameters {name:
 *         number|string}
 * stats:  pages, frames, faults, zero_fills, cow_breaks, edits, batches,
 *         evictions, page_ins, bytes_written, bytes_read, reclaims,
 *         shrinker_evictions, tracked_writes, traps, traps_resolved,
 *         traps_timed_out
 * query:  first, n, slots [{slot, frame_id, pfn, prot, nr_aliases,
 *         state: [names]}]
 * dirty:  first, n, nr_dirty, cleared (bool), written [{first, last}]
 * spaces: source ("debugfs"|"fdinfo"), spaces [{id, owner, slots,
 *         resident, evicted, pinned, lazy, tracked, dirty, trapped,
 *         mappings (each null if the module does not say), holders [{pid,
 *         fd}], mappers [{pid, start, end, pgoff, prot}], mappers_more}],
 *         unattributed [{pid, start, end, pgoff, prot}] (fdinfo only: VMAs
 *         of processes holding several spaces or none). prot is "rws" /
 *         "rwp" from debugfs, "rw-s" as /proc/PID/maps has it otherwise.
 * map:    pid, spaces [{fd, id (null if the module does not say), slots,
 *         vmas [{start, end, pgoff, prot}], picture (one character a
 *         slot, the first picture_slots slots, at most 4096),
 *         picture_slots, counts {hole, resident, aliased, cow, evicted,
 *         pinned, lazy, prot_none, prot_read, tracked, dirty, trapped}
 *         (over all slots), shared_frames [{frame_id, slots [numbers]}]}],
 *         unattributed [{start, end, pgoff, prot}] (VMAs of PID mapping
 *         /dev/upage that cannot be tied to one of its spaces)
 *
 * Slot state names: hole, resident, evicted, reclaimed, cow, pinned, lazy,
 * tracked, dirty, trap_read, trap_write. Protections: none, read, rw.
 * API feature names: alias, alias_cow, move, swap, protect, query_by_addr,
 * discard, evict, store, pin, lazy_free, reclaim, track, trap.
 */
#include <stdio.h>

#include "upagectl.h"

#define JSON_DEPTH 16

static bool first_at[JSON_DEPTH] = { true };
static int depth;

/* Write @s as a JSON string: quotes, backslash and control characters. */
void json_escape(FILE *f, const char *s)
{
	const unsigned char *p;

	fputc('"', f);
	for (p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", f);
		else if (*p == '\t')
			fputs("\\t", f);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static void json_key(const char *key)
{
	if (!first_at[depth])
		putchar(',');
	first_at[depth] = false;
	if (key) {
		json_escape(stdout, key);
		putchar(':');
	}
}

static void json_open(const char *key, char c)
{
	json_key(key);
	putchar(c);
	if (depth + 1 < JSON_DEPTH)
		depth++;
	first_at[depth] = true;
}

void json_begin(const char *key)
{
	json_open(key, '{');
}

void json_end(void)
{
	putchar('}');
	if (depth)
		depth--;
}

void json_begin_array(const char *key)
{
	json_open(key, '[');
}

void json_end_array(void)
{
	putchar(']');
	if (depth)
		depth--;
}

void json_str(const char *key, const char *val)
{
	json_key(key);
	json_escape(stdout, val);
}

void json_u64(const char *key, uint64_t val)
{
	json_key(key);
	printf("%llu", (unsigned long long)val);
}

void json_i64(const char *key, int64_t val)
{
	json_key(key);
	printf("%lld", (long long)val);
}

void json_bool(const char *key, bool val)
{
	json_key(key);
	fputs(val ? "true" : "false", stdout);
}

void json_null(const char *key)
{
	json_key(key);
	fputs("null", stdout);
}

void json_finish(void)
{
	putchar('\n');
}
