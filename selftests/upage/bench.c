// SPDX-License-Identifier: GPL-2.0
/*
 * The benchmark programs (`make bench`), each run tiny: every one checks the
 * contents its methods leave and exits non-zero if one is wrong, so a
 * change that breaks a method, or a tool that no longer builds or runs,
 * fails `make check` instead of waiting for the next benchmark run. The
 * figures of these runs mean nothing.
 */
#include <stdio.h>

#include "upage_utils.h"

#define TOOLS "/upage/tools/"

/* Run "@cmd 2>&1"; its output in @out, its exit status (-1: no exit). */
static int run(const char *cmd, char *out, size_t len)
{
	char line[512];
	size_t got;
	FILE *f;
	int status;

	snprintf(line, sizeof(line), "%s 2>&1", cmd);
	f = popen(line, "r");
	if (!f)
		return -1;
	got = fread(out, 1, len - 1, f);
	out[got] = 0;
	status = pclose(f);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

FIXTURE(tool) {
	char out[65536];
};

FIXTURE_VARIANT(tool) {
	const char *cmd;
	const char *says;	/* its line for "contents right", or NULL */
};

/* A pool of 256 pages, batches of 1, 8 and 64 discards, one round. */
FIXTURE_VARIANT_ADD(tool, evict) {
	.cmd = TOOLS "upage-bench-evict -n 256 -r 1",
	.says = "every method: all right",
};

/* The suite of make bench (tools/bench/), each program with -t. */
FIXTURE_VARIANT_ADD(tool, edit) {
	.cmd = TOOLS "bench-edit -t",
	.says = "checked after every run: all right",
};

FIXTURE_VARIANT_ADD(tool, fault) {
	.cmd = TOOLS "bench-fault -t",
	.says = "checked after every run: all right",
};

FIXTURE_VARIANT_ADD(tool, pageout) {
	.cmd = TOOLS "bench-pageout -t",
	.says = "checked after every run: all right",
};

FIXTURE_VARIANT_ADD(tool, track) {
	.cmd = TOOLS "bench-track -t",
	.says = "checked every round: all right",
};

/* The B-tree buffer manager: budget 128 pages, 0.2 s per run, one run. */
FIXTURE_VARIANT_ADD(tool, btree) {
	.cmd = TOOLS "bench-btree -t",
	.says = "btree: all checks passed",
};

/* unmap_gap_frames 0 and 4 on a pool of 64 pages, one round each. */
FIXTURE_VARIANT_ADD(tool, gap) {
	.cmd = TOOLS "bench-gap -t",
	.says = "every page of both pools right after every round",
};

FIXTURE_SETUP(tool)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s", variant->cmd);
	*strchr(path, ' ') = 0;
	if (access(path, X_OK))
		SKIP(return, "%s not installed", path);
	upage_open_or_skip(fd);
	close(fd);
}

FIXTURE_TEARDOWN(tool)
{
}

/* The tool's methods all leave the contents they must, and it says so. */
TEST_F(tool, tiny_run_finds_contents_right)
{
	int status = run(variant->cmd, self->out, sizeof(self->out));

	EXPECT_EQ(0, status) {
		TH_LOG("%s:\n%s", variant->cmd, self->out);
	}
	if (variant->says) {
		EXPECT_NE(NULL, strstr(self->out, variant->says)) {
			TH_LOG("%s:\n%s", variant->cmd, self->out);
		}
	}
}

TEST_HARNESS_MAIN
