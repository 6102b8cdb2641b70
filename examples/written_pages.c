// SPDX-License-Identifier: MIT
/*
 * written_pages: which pages did my program write since I last asked?
 *
 * Writes to a 1024-page space are tracked (UPAGE_TRACK). A workload
 * writes runs of pages chosen at random and reads many more; then
 * UPAGE_DIRTY with UPAGE_DIRTY_CLEAR returns the dirty bitmap and re-arms
 * the pages in the same step. The report, printed as ranges, must list
 * exactly the pages the workload wrote. A second round shows that only
 * the new writes are reported, and a round of reads alone reports
 * nothing: what an incremental snapshot, checkpoint or replica needs to
 * copy.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "upage.h"

#define PAGE 4096UL
#define PAGES 1024
#define WORDS (PAGES / 64)

static uint64_t rng_state;

/* xorshift64*: the workload's choices, the same on every run. */
static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

/*
 * Write one byte in each page of @runs runs of 1 to 6 pages, recording
 * them in @wrote, then read every third page: reads are not writes.
 */
static unsigned long workload(volatile unsigned char *p, uint64_t seed,
			      int runs, bool *wrote)
{
	unsigned long sum = 0;
	int r;

	rng_state = seed;
	memset(wrote, 0, PAGES * sizeof(*wrote));
	for (r = 0; r < runs; r++) {
		uint64_t first = rng() % PAGES, len = 1 + rng() % 6, pg;

		for (pg = first; pg < first + len && pg < PAGES; pg++) {
			p[pg * PAGE + rng() % PAGE] = (unsigned char)rng();
			wrote[pg] = true;
		}
	}
	for (int pg = 0; pg < PAGES; pg += 3)
		sum += p[pg * PAGE + 7];
	return sum;
}

static bool bit(const uint64_t *bitmap, int i)
{
	return bitmap[i / 64] >> (i % 64) & 1;
}

/* Print the pages whose bit is set as ranges, a few to a line. */
static void print_ranges(const uint64_t *bitmap)
{
	char line[80] = "";
	int i = 0, n = 0;

	while (i < PAGES) {
		char range[16];
		int j;

		if (!bit(bitmap, i)) {
			i++;
			continue;
		}
		for (j = i; j + 1 < PAGES && bit(bitmap, j + 1); j++)
			;
		if (j > i)
			snprintf(range, sizeof(range), " %d-%d", i, j);
		else
			snprintf(range, sizeof(range), " %d", i);
		if (strlen(line) + strlen(range) > 60) {
			printf("written_pages:   %s\n", line + 1);
			line[0] = '\0';
		}
		strcat(line, range);
		n++;
		i = j + 1;
	}
	if (n)
		printf("written_pages:   %s\n", line + 1);
}

/*
 * Collect and re-arm, print the report, and compare it with what the
 * workload wrote: the number of pages that differ, or -1 on error.
 */
static int collect(int fd, const char *round, const bool *wrote)
{
	uint64_t bitmap[WORDS], nr = 0;
	int i, ret, written = 0, missed = 0, extra = 0;

	ret = upage_dirty(fd, 0, PAGES, bitmap, UPAGE_DIRTY_CLEAR, &nr);
	if (ret) {
		fprintf(stderr, "written_pages: UPAGE_DIRTY: %s\n",
			strerror(-ret));
		return -1;
	}
	for (i = 0; i < PAGES; i++) {
		written += wrote[i];
		missed += wrote[i] && !bit(bitmap, i);
		extra += !wrote[i] && bit(bitmap, i);
	}
	printf("written_pages: %s: the workload wrote %d pages; the report lists %llu%s\n",
	       round, written, (unsigned long long)nr, nr ? ":" : "");
	print_ranges(bitmap);
	if (missed || extra)
		printf("written_pages: %s: %d written pages missing, %d unwritten pages listed\n",
		       round, missed, extra);
	return missed + extra;
}

int main(void)
{
	static bool wrote[PAGES];
	struct upage_stats st;
	unsigned char *p;
	int fd, ret, bad = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	fd = upage_open(O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "written_pages: open /dev/upage: %s\n",
			strerror(-fd));
		return 1;
	}
	ret = upage_resize(fd, PAGES, NULL);
	if (ret) {
		fprintf(stderr, "written_pages: resize: %s\n", strerror(-ret));
		return 1;
	}
	p = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		perror("written_pages: mmap");
		return 1;
	}
	/* The program's data, before anyone asks. */
	memset(p, 0xa5, PAGES * PAGE);
	ret = upage_track_start(fd, 0, PAGES);
	if (ret) {
		fprintf(stderr, "written_pages: UPAGE_TRACK: %s\n",
			strerror(-ret));
		return 1;
	}
	printf("written_pages: tracking writes to %d pages\n", PAGES);

	workload(p, 1, 24, wrote);
	bad |= collect(fd, "round 1", wrote);
	/* Re-armed: round 1's pages are not listed again unless rewritten. */
	workload(p, 2, 8, wrote);
	bad |= collect(fd, "round 2", wrote);
	/* Reads alone. */
	workload(p, 3, 0, wrote);
	bad |= collect(fd, "round 3 (reads only)", wrote);

	upage_stats(fd, &st);
	printf("written_pages: %llu first writes recorded in all, one fault each\n",
	       (unsigned long long)st.out_tracked_writes);
	munmap(p, PAGES * PAGE);
	close(fd);
	if (bad) {
		printf("written_pages: FAILED: a report was not the set of pages written\n");
		return 1;
	}
	printf("written_pages: ok: each report listed exactly the pages written since the one before\n");
	return 0;
}
