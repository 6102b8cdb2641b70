// SPDX-License-Identifier: GPL-2.0
/*
 * upagectl map PID --svg FILE: the same picture as the text, as an SVG: a
 * square a slot, 64 to a row, coloured by state, slot numbers along the
 * left and columns below, and one curved path per frame shared by several
 * slots, through the squares of those slots, arching into the room above
 * the grid.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "upagectl.h"

#define COLS 64
#define CELL 14
#define STEP 16
#define LEFT 72
#define WIDTH (LEFT + COLS * STEP + 24)
#define TITLE 28
#define ROOM 44		/* above the grid, for the links' arcs */
#define AXIS 16		/* below the grid, the column numbers */
#define BELOW 16
#define LEGEND_ROW 22
#define LEGEND_PER_ROW 6

static uint64_t drawn(const struct map_space *s)
{
	return s->pages < PICTURE_MAX ? s->pages : PICTURE_MAX;
}

static int rows(const struct map_space *s)
{
	return (int)((drawn(s) + COLS - 1) / COLS);
}

static int block_height(const struct map_space *s)
{
	return TITLE + ROOM + rows(s) * STEP + AXIS + BELOW;
}

static void cell_centre(uint64_t slot, int top, int *x, int *y)
{
	*x = LEFT + (int)(slot % COLS) * STEP + CELL / 2;
	*y = top + TITLE + ROOM + (int)(slot / COLS) * STEP + CELL / 2;
}

/* One path through the squares of the slots sharing one frame. */
static void svg_link(FILE *f, const uint64_t *pairs, uint64_t n, int top)
{
	int x0, y0, x1, y1, cx, cy, lift, most;
	uint64_t i;

	cell_centre(pairs[1], top, &x0, &y0);
	fprintf(f, "<path class=\"link\" data-frame=\"%" PRIu64 "\" d=\"M%d %d",
		pairs[0], x0, y0);
	for (i = 1; i < n; i++) {
		cell_centre(pairs[2 * i + 1], top, &x1, &y1);
		cy = y0 < y1 ? y0 : y1;
		/* A quadratic curve peaks halfway to its control point. */
		most = 2 * (cy - (top + TITLE + 4));
		lift = 10 + abs(x1 - x0) / 4 + abs(y1 - y0) / 2;
		if (lift > most)
			lift = most;
		cx = (x0 + x1) / 2;
		cy -= lift;
		fprintf(f, " Q%d %d %d %d", cx, cy, x1, y1);
		x0 = x1;
		y0 = y1;
	}
	fprintf(f, "\"><title>frame %" PRIu64 ": %" PRIu64 " slots</title></path>\n",
		pairs[0], n);
}

static void svg_links(FILE *f, const struct map_space *s, int top)
{
	uint64_t i, j, k, n, *pairs;

	n = shared_pairs(s, &pairs);
	for (i = 0; i < n; i = j) {
		for (j = i; j < n && pairs[2 * j] == pairs[2 * i]; j++)
			;
		/* Only the slots drawn: a frame needs two of them. */
		for (k = i; k < j && pairs[2 * k + 1] < PICTURE_MAX; k++)
			;
		if (k - i >= 2)
			svg_link(f, pairs + 2 * i, k - i, top);
	}
	free(pairs);
}

static void svg_space(FILE *f, const struct map_space *s, int top)
{
	uint64_t i, n = drawn(s);
	int x, y, c;

	fprintf(f, "<text class=\"title\" x=\"%d\" y=\"%d\">space ", LEFT, top + 18);
	if (s->id)
		fprintf(f, "%" PRIu64, s->id);
	else
		fprintf(f, "?");
	fprintf(f, " (fd %d): %" PRIu64 " slots%s</text>\n", s->fd, s->pages,
		s->pages > n ? ", the first 4096 drawn" : "");
	for (c = 0; c < COLS && (uint64_t)c < n; c += 8)
		fprintf(f, "<text class=\"axis\" x=\"%d\" y=\"%d\">%d</text>\n",
			LEFT + c * STEP, top + TITLE + ROOM + rows(s) * STEP + AXIS - 4, c);
	for (i = 0; i < n; i++) {
		cell_centre(i, top, &x, &y);
		if (i % COLS == 0)
			fprintf(f, "<text class=\"axis\" x=\"%d\" y=\"%d\" text-anchor=\"end\">%" PRIu64 "</text>\n",
				LEFT - 6, y + 4, i);
		fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"><title>slot %" PRIu64 ": %s, frame %llu</title></rect>\n",
			x - CELL / 2, y - CELL / 2, CELL, CELL,
			slot_look(s->chars[i])->rgb, i,
			slot_look(s->chars[i])->name,
			(unsigned long long)s->info[i].frame_id);
	}
	svg_links(f, s, top);
}

static void svg_legend(FILE *f, int top)
{
	int i, x, y;

	for (i = 0; i < nr_slot_looks; i++) {
		x = LEFT + (i % LEGEND_PER_ROW) * 160;
		y = top + (i / LEGEND_PER_ROW) * LEGEND_ROW;
		fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"/>"
			"<text class=\"legend\" x=\"%d\" y=\"%d\">%c %s</text>\n",
			x, y, CELL, CELL, slot_looks[i].rgb, x + CELL + 6,
			y + CELL - 2, slot_looks[i].c, slot_looks[i].name);
	}
	y = top + ((nr_slot_looks + LEGEND_PER_ROW - 1) / LEGEND_PER_ROW) * LEGEND_ROW;
	fprintf(f, "<path class=\"link\" d=\"M%d %d Q%d %d %d %d\"/>"
		"<text class=\"legend\" x=\"%d\" y=\"%d\">a frame shared by several slots</text>\n",
		LEFT, y + 10, LEFT + 20, y - 4, LEFT + 40, y + 10, LEFT + 48, y + 12);
}

int svg_write(const char *path, pid_t pid, struct map_space *sp, int nr)
{
	int i, height = 40, top;
	FILE *f;

	for (i = 0; i < nr; i++)
		height += block_height(&sp[i]);
	height += ((nr_slot_looks + LEGEND_PER_ROW - 1) / LEGEND_PER_ROW + 1) * LEGEND_ROW + 16;
	f = fopen(path, "we");
	if (!f)
		return -1;
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n",
		WIDTH, height, WIDTH, height);
	fprintf(f, "<style>text{font-family:monospace;font-size:11px;fill:#222}"
		".title{font-size:14px;font-weight:bold}.axis{fill:#666}"
		"path.link{fill:none;stroke:#d62728;stroke-width:1.5;stroke-opacity:0.8}</style>\n"
		"<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n");
	fprintf(f, "<text class=\"title\" x=\"%d\" y=\"24\">upage spaces of pid %d</text>\n",
		LEFT, pid);
	top = 40;
	for (i = 0; i < nr; i++) {
		svg_space(f, &sp[i], top);
		top += block_height(&sp[i]);
	}
	svg_legend(f, top);
	fprintf(f, "</svg>\n");
	if (fclose(f))
		return -1;
	return 0;
}
