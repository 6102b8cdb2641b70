// SPDX-License-Identifier: GPL-2.0
/*
 * Mapping semantics: MAP_PRIVATE behaves like a private mapping of a file
 * (checked side by side against a memfd), slot protection on private
 * mappings, and the VMA operations (fork, partial munmap, mprotect, mremap,
 * mlock, madvise) keep working and keep receiving edits.
 */
#include <stdbool.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "upage_utils.h"

#ifndef MREMAP_FIXED
#define MREMAP_FIXED 2
#endif
#ifndef FALLOC_FL_KEEP_SIZE
#define FALLOC_FL_KEEP_SIZE 0x01
#endif
#ifndef FALLOC_FL_PUNCH_HOLE
#define FALLOC_FL_PUNCH_HOLE 0x02
#endif

/* The 64-bit word @i of a page filled with tag @tag. */
static inline uint64_t pat_word(uint64_t tag, size_t i)
{
	return (tag << 32) ^ (i * 0x9e3779b97f4a7c15ULL) ^ 0x5a5a;
}

static void fill_page(void *page, uint64_t tag)
{
	uint64_t *w = page;
	size_t i;

	for (i = 0; i < PAGE / 8; i++)
		w[i] = pat_word(tag, i);
}

/* Does @page hold exactly the pattern of @tag (0 means all zeros)? */
static bool page_is(const void *page, uint64_t tag)
{
	const uint64_t *w = page;
	size_t i;

	for (i = 0; i < PAGE / 8; i++)
		if (w[i] != (tag ? pat_word(tag, i) : 0))
			return false;
	return true;
}

/*
 * The tag a page holds, read from its first word: 0 for a zero page,
 * UINT64_MAX if the page holds no tag's whole pattern.
 */
static uint64_t page_tag(const void *page)
{
	uint64_t tag = (*(const uint64_t *)page ^ 0x5a5a) >> 32;

	if (page_is(page, 0))
		return 0;
	return page_is(page, tag) ? tag : UINT64_MAX;
}

/*
 * Access @addr in a child and report how it ended: 0 if the access
 * worked, else the signal, with its si_code in *code. A si_addr other
 * than @addr is reported as signal -2.
 */
static volatile char *probe_addr;

static void probe_handler(int sig, siginfo_t *info, void *uc)
{
	(void)uc;
	if (info->si_addr != (void *)probe_addr)
		_exit(90);
	_exit((sig == SIGSEGV ? 10 : 50) + info->si_code);
}

static int probe(volatile char *addr, bool write, int *code)
{
	int status;
	pid_t pid;

	*code = 0;
	pid = fork();
	if (pid == 0) {
		struct sigaction sa = {
			.sa_sigaction = probe_handler,
			.sa_flags = SA_SIGINFO,
		};

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		probe_addr = addr;
		sigaction(SIGSEGV, &sa, NULL);
		sigaction(SIGBUS, &sa, NULL);
		if (write)
			*addr = 1;
		else
			(void)*addr;
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	status = WEXITSTATUS(status);
	if (status == 0)
		return 0;
	if (status == 90)
		return -2;
	if (status >= 50) {
		*code = status - 50;
		return SIGBUS;
	}
	*code = status - 10;
	return SIGSEGV;
}

/* The signal an access raises, ignoring si_code. */
static int probe_sig(volatile char *addr, bool write)
{
	int code;

	return probe(addr, write, &code);
}

/* ------------------------------------------------------------------ */
/* MAP_PRIVATE side by side with a memfd mapped MAP_PRIVATE.          */

#define PV_PAGES 8

FIXTURE(private_vs_memfd) {
	int ufd, mfd;
	char *ush, *upriv;	/* upage: shared and private views */
	char *msh, *mpriv;	/* memfd: shared and private views */
};

FIXTURE_VARIANT(private_vs_memfd) {
	/* Read every private page first, so that PTEs map the frames. */
	bool prefault;
};

FIXTURE_VARIANT_ADD(private_vs_memfd, cold) {
	.prefault = false,
};

FIXTURE_VARIANT_ADD(private_vs_memfd, prefaulted) {
	.prefault = true,
};

FIXTURE_SETUP(private_vs_memfd)
{
	size_t len = PV_PAGES * PAGE;
	size_t i;

	self->mfd = -1;
	upage_open_or_skip(self->ufd);
	upage_resize_ok(self->ufd, PV_PAGES);
	self->mfd = memfd_create("upage-mapping", MFD_CLOEXEC);
	ASSERT_LE(0, self->mfd);
	ASSERT_EQ(0, ftruncate(self->mfd, len));

	self->ush = upage_map(self->ufd, 0, PV_PAGES, MAP_SHARED);
	self->upriv = upage_map(self->ufd, 0, PV_PAGES, MAP_PRIVATE);
	self->msh = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED,
			 self->mfd, 0);
	self->mpriv = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE,
			   self->mfd, 0);
	ASSERT_NE(NULL, self->ush);
	ASSERT_NE(NULL, self->upriv);
	ASSERT_NE(MAP_FAILED, self->msh);
	ASSERT_NE(MAP_FAILED, self->mpriv);

	for (i = 0; i < PV_PAGES; i++) {
		fill_page(self->ush + i * PAGE, 100 + i);
		fill_page(self->msh + i * PAGE, 100 + i);
	}
	if (variant->prefault) {
		for (i = 0; i < PV_PAGES; i++) {
			ASSERT_EQ(100 + i, page_tag(self->upriv + i * PAGE));
			ASSERT_EQ(100 + i, page_tag(self->mpriv + i * PAGE));
		}
	}
}

FIXTURE_TEARDOWN(private_vs_memfd)
{
	if (self->ush)
		munmap(self->ush, PV_PAGES * PAGE);
	if (self->upriv)
		munmap(self->upriv, PV_PAGES * PAGE);
	if (self->msh && self->msh != MAP_FAILED)
		munmap(self->msh, PV_PAGES * PAGE);
	if (self->mpriv && self->mpriv != MAP_FAILED)
		munmap(self->mpriv, PV_PAGES * PAGE);
	if (self->mfd >= 0)
		close(self->mfd);
	if (self->ufd >= 0)
		close(self->ufd);
}

/*
 * Both private views show the same tags, page by page, and those are the
 * tags in @want (a tag of 0 means zeros, -1 SIGBUS).
 */
#define EXPECT_PRIVATE_VIEWS(want)                                          \
	do {                                                                \
		size_t _i;                                                  \
		for (_i = 0; _i < PV_PAGES; _i++) {                         \
			long long _w = (want)[_i];                          \
			if (_w < 0) {                                       \
				EXPECT_EQ(SIGBUS, probe_sig(self->upriv + _i * PAGE, false)); \
				EXPECT_EQ(SIGBUS, probe_sig(self->mpriv + _i * PAGE, false)); \
				continue;                                   \
			}                                                   \
			EXPECT_EQ(page_tag(self->mpriv + _i * PAGE),        \
				  page_tag(self->upriv + _i * PAGE)) {      \
				TH_LOG("page %zu: upage and memfd differ", _i); \
			}                                                   \
			EXPECT_EQ((uint64_t)_w, page_tag(self->upriv + _i * PAGE)) { \
				TH_LOG("page %zu of the upage private view", _i); \
			}                                                   \
		}                                                           \
	} while (0)

/* A private mapping shows what is written through a shared one. */
TEST_F(private_vs_memfd, reads_show_shared_writes)
{
	long long want[PV_PAGES];
	size_t i;

	for (i = 0; i < PV_PAGES; i++)
		want[i] = 100 + i;
	EXPECT_PRIVATE_VIEWS(want);

	fill_page(self->ush + 2 * PAGE, 7);
	fill_page(self->msh + 2 * PAGE, 7);
	want[2] = 7;
	EXPECT_PRIVATE_VIEWS(want);
}

/*
 * The first private write makes a private copy: the space does not see
 * it, and later shared writes no longer reach that page, only the others.
 */
TEST_F(private_vs_memfd, first_write_makes_private_copy)
{
	long long want[PV_PAGES];
	size_t i;

	fill_page(self->upriv + PAGE, 1);
	fill_page(self->mpriv + PAGE, 1);
	EXPECT_EQ(101, page_tag(self->ush + PAGE));
	EXPECT_EQ(101, page_tag(self->msh + PAGE));

	for (i = 0; i < PV_PAGES; i++) {
		fill_page(self->ush + i * PAGE, 200 + i);
		fill_page(self->msh + i * PAGE, 200 + i);
		want[i] = 200 + i;
	}
	want[1] = 1;
	EXPECT_PRIVATE_VIEWS(want);
}

/* A partial private write copies the page it lands in, whole. */
TEST_F(private_vs_memfd, partial_write_copies_whole_page)
{
	size_t i;

	self->upriv[3 * PAGE + 5] ^= 0xff;
	self->mpriv[3 * PAGE + 5] ^= 0xff;
	fill_page(self->ush + 3 * PAGE, 9);
	fill_page(self->msh + 3 * PAGE, 9);
	self->upriv[3 * PAGE + 5] ^= 0xff;
	self->mpriv[3 * PAGE + 5] ^= 0xff;
	EXPECT_EQ(103, page_tag(self->upriv + 3 * PAGE));
	EXPECT_EQ(0, memcmp(self->upriv + 3 * PAGE, self->mpriv + 3 * PAGE, PAGE));
	for (i = 0; i < PV_PAGES; i++)
		EXPECT_EQ(0, memcmp(self->upriv + i * PAGE, self->mpriv + i * PAGE, PAGE));
}

/* MADV_DONTNEED drops the private copies: the pages show the space again. */
TEST_F(private_vs_memfd, dontneed_drops_private_copies)
{
	long long want[PV_PAGES];
	size_t i;

	fill_page(self->upriv + 4 * PAGE, 4);
	fill_page(self->mpriv + 4 * PAGE, 4);
	fill_page(self->ush + 4 * PAGE, 44);
	fill_page(self->msh + 4 * PAGE, 44);
	for (i = 0; i < PV_PAGES; i++)
		want[i] = 100 + i;
	want[4] = 4;
	EXPECT_PRIVATE_VIEWS(want);

	ASSERT_EQ(0, madvise(self->upriv, PV_PAGES * PAGE, MADV_DONTNEED));
	ASSERT_EQ(0, madvise(self->mpriv, PV_PAGES * PAGE, MADV_DONTNEED));
	want[4] = 44;
	EXPECT_PRIVATE_VIEWS(want);
}

/*
 * Shrinking cuts private pages too, copies included, as truncate does;
 * growing back shows zeros.
 */
TEST_F(private_vs_memfd, shrink_cuts_private_copies)
{
	long long want[PV_PAGES];
	size_t i;

	fill_page(self->upriv + 6 * PAGE, 6);
	fill_page(self->mpriv + 6 * PAGE, 6);
	fill_page(self->upriv + 1 * PAGE, 1);
	fill_page(self->mpriv + 1 * PAGE, 1);
	upage_resize_ok(self->ufd, 5);
	ASSERT_EQ(0, ftruncate(self->mfd, 5 * PAGE));
	for (i = 0; i < PV_PAGES; i++)
		want[i] = i < 5 ? (long long)(100 + i) : -1;
	want[1] = 1;
	EXPECT_PRIVATE_VIEWS(want);

	upage_resize_ok(self->ufd, PV_PAGES);
	ASSERT_EQ(0, ftruncate(self->mfd, PV_PAGES * PAGE));
	for (i = 5; i < PV_PAGES; i++)
		want[i] = 0;
	EXPECT_PRIVATE_VIEWS(want);
}

/*
 * Swap and move reach unwritten private pages as shared writes of the
 * same contents do on a memfd; written pages keep their copies.
 */
TEST_F(private_vs_memfd, swap_and_move_reach_unwritten_pages)
{
	long long want[PV_PAGES];
	size_t i;

	for (i = 0; i < PV_PAGES; i++)
		want[i] = 100 + i;
	fill_page(self->upriv + 3 * PAGE, 3);
	fill_page(self->mpriv + 3 * PAGE, 3);
	want[3] = 3;

	/* swap 1 <-> 2 and 3 <-> 4; on the memfd, write what swap shows */
	ASSERT_EQ(0, upage_swap(self->ufd, 1, 2, 1));
	ASSERT_EQ(0, upage_swap(self->ufd, 3, 4, 1));
	fill_page(self->msh + 1 * PAGE, 102);
	fill_page(self->msh + 2 * PAGE, 101);
	fill_page(self->msh + 3 * PAGE, 104);
	fill_page(self->msh + 4 * PAGE, 103);
	want[1] = 102;
	want[2] = 101;
	want[4] = 103;
	EXPECT_PRIVATE_VIEWS(want);
	EXPECT_EQ(104, page_tag(self->ush + 3 * PAGE));

	/* move 0 -> 7: slot 0 becomes a hole (a punched hole on the memfd) */
	ASSERT_EQ(0, upage_move(self->ufd, 7, 0, 1));
	fill_page(self->msh + 7 * PAGE, 100);
	ASSERT_EQ(0, fallocate(self->mfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			       0, PAGE));
	want[0] = 0;
	want[7] = 100;
	EXPECT_PRIVATE_VIEWS(want);
	EXPECT_EQ(0, page_tag(self->ush));
	EXPECT_EQ(100, page_tag(self->ush + 7 * PAGE));
}

/* ------------------------------------------------------------------ */
/* Slot protection on MAP_PRIVATE and MAP_SHARED mappings.            */

FIXTURE(map) {
	int fd;
};

FIXTURE_SETUP(map)
{
	upage_open_or_skip(self->fd);
	upage_resize_ok(self->fd, 16);
}

FIXTURE_TEARDOWN(map)
{
	if (self->fd >= 0)
		close(self->fd);
}

/* Slot protection on a shared mapping raises SIGSEGV with SEGV_MAPERR. */
TEST_F(map, shared_slot_protection_is_segv_maperr)
{
	char *p = upage_map(self->fd, 0, 2, MAP_SHARED);
	int code;

	ASSERT_NE(NULL, p);
	fill_page(p, 1);
	fill_page(p + PAGE, 2);
	ASSERT_EQ(0, upage_protect(self->fd, 0, 1, UPAGE_PROT_READ));
	ASSERT_EQ(0, upage_protect(self->fd, 1, 1, UPAGE_PROT_NONE));
	EXPECT_EQ(0, probe(p, false, &code));
	EXPECT_EQ(SIGSEGV, probe(p + 8, true, &code));
	EXPECT_EQ(SEGV_MAPERR, code);
	EXPECT_EQ(SIGSEGV, probe(p + PAGE + 16, false, &code));
	EXPECT_EQ(SEGV_MAPERR, code);
	EXPECT_EQ(1, page_tag(p));

	ASSERT_EQ(0, upage_protect(self->fd, 0, 2, UPAGE_PROT_RW));
	EXPECT_EQ(0, probe(p + 8, true, &code));
	EXPECT_EQ(2, page_tag(p + PAGE));
	munmap(p, 2 * PAGE);
}

/*
 * On a private mapping a page the process wrote is its own copy: slot
 * protection no longer applies to it, but still applies to unwritten
 * pages, which show the frame.
 */
TEST_F(map, private_written_page_ignores_slot_protection)
{
	char *sh = upage_map(self->fd, 0, 2, MAP_SHARED);
	char *pv = upage_map(self->fd, 0, 2, MAP_PRIVATE);
	int code;

	ASSERT_NE(NULL, sh);
	ASSERT_NE(NULL, pv);
	fill_page(sh, 1);
	fill_page(sh + PAGE, 2);
	fill_page(pv, 11);		/* own copy of slot 0 */
	ASSERT_EQ(0, upage_protect(self->fd, 0, 2, UPAGE_PROT_NONE));

	EXPECT_EQ(0, probe(pv, false, &code));
	EXPECT_EQ(0, probe(pv + 8, true, &code));
	EXPECT_EQ(11, page_tag(pv));
	EXPECT_EQ(SIGSEGV, probe(pv + PAGE, false, &code));
	EXPECT_EQ(SEGV_MAPERR, code);
	EXPECT_EQ(SIGSEGV, probe(sh, false, &code));

	ASSERT_EQ(0, upage_protect(self->fd, 0, 2, UPAGE_PROT_RW));
	EXPECT_EQ(2, page_tag(pv + PAGE));
	EXPECT_EQ(1, page_tag(sh));
	munmap(sh, 2 * PAGE);
	munmap(pv, 2 * PAGE);
}

/* ------------------------------------------------------------------ */
/* VMA operations.                                                    */

/* Wait for one byte on @fd; false on EOF or error. */
static bool wait_byte(int fd)
{
	char c;

	return read(fd, &c, 1) == 1;
}

static void send_byte(int fd)
{
	char c = 0;

	if (write(fd, &c, 1) != 1)
		_exit(99);
}

/*
 * After fork, parent and child see each other's writes through a shared
 * mapping, and an edit made by the parent reaches the child.
 */
TEST_F(map, fork_shared_sees_writes_both_ways)
{
	char *p = upage_map(self->fd, 0, 4, MAP_SHARED);
	int to_child[2], to_parent[2], status;
	pid_t pid;

	ASSERT_NE(NULL, p);
	fill_page(p + 2 * PAGE, 2);
	fill_page(p + 3 * PAGE, 3);
	ASSERT_EQ(0, pipe(to_child));
	ASSERT_EQ(0, pipe(to_parent));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(to_child[1]);
		close(to_parent[0]);
		fill_page(p, 10);
		send_byte(to_parent[1]);
		if (!wait_byte(to_child[0]))
			_exit(1);
		if (page_tag(p + PAGE) != 20)
			_exit(2);
		if (page_tag(p + 2 * PAGE) != 3 || page_tag(p + 3 * PAGE) != 2)
			_exit(3);
		_exit(0);
	}
	close(to_child[0]);
	close(to_parent[1]);
	ASSERT_TRUE(wait_byte(to_parent[0]));
	EXPECT_EQ(10, page_tag(p));
	fill_page(p + PAGE, 20);
	EXPECT_EQ(0, upage_swap(self->fd, 2, 3, 1));
	send_byte(to_child[1]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	munmap(p, 4 * PAGE);
}

/*
 * After fork, a private mapping is copy-on-write between parent and child;
 * pages neither has written still show the space, edits included.
 */
TEST_F(map, fork_private_is_copy_on_write)
{
	char *sh = upage_map(self->fd, 0, 4, MAP_SHARED);
	char *pv = upage_map(self->fd, 0, 4, MAP_PRIVATE);
	int to_child[2], to_parent[2], status;
	pid_t pid;

	ASSERT_NE(NULL, sh);
	ASSERT_NE(NULL, pv);
	fill_page(sh, 1);
	fill_page(sh + PAGE, 2);
	fill_page(sh + 2 * PAGE, 3);
	fill_page(sh + 3 * PAGE, 4);
	fill_page(pv, 50);		/* parent's copy before fork */
	ASSERT_EQ(0, pipe(to_child));
	ASSERT_EQ(0, pipe(to_parent));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(to_child[1]);
		close(to_parent[0]);
		if (page_tag(pv) != 50)
			_exit(1);
		fill_page(pv, 60);
		fill_page(pv + PAGE, 61);
		send_byte(to_parent[1]);
		if (!wait_byte(to_child[0]))
			_exit(2);
		/* the parent wrote pv+2 (its copy), slot 3 and swapped 2/3 */
		if (page_tag(pv) != 60 || page_tag(pv + PAGE) != 61)
			_exit(3);
		if (page_tag(pv + 2 * PAGE) != 40 || page_tag(pv + 3 * PAGE) != 3)
			_exit(4);
		_exit(0);
	}
	close(to_child[0]);
	close(to_parent[1]);
	ASSERT_TRUE(wait_byte(to_parent[0]));
	EXPECT_EQ(50, page_tag(pv));
	EXPECT_EQ(2, page_tag(pv + PAGE));
	EXPECT_EQ(1, page_tag(sh));
	EXPECT_EQ(2, page_tag(sh + PAGE));
	fill_page(pv + 2 * PAGE, 70);
	fill_page(sh + 3 * PAGE, 40);
	ASSERT_EQ(0, upage_swap(self->fd, 2, 3, 1));
	send_byte(to_child[1]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(70, page_tag(pv + 2 * PAGE));
	EXPECT_EQ(3, page_tag(pv + 3 * PAGE));
	munmap(sh, 4 * PAGE);
	munmap(pv, 4 * PAGE);
}

/*
 * Unmapping the middle of a mapping leaves two parts that keep their
 * contents, write to the right slots, and receive edits.
 */
TEST_F(map, munmap_middle_keeps_both_parts)
{
	char *p = upage_map(self->fd, 0, 8, MAP_SHARED);
	char *all = upage_map(self->fd, 0, 8, MAP_SHARED);
	size_t i;

	ASSERT_NE(NULL, p);
	ASSERT_NE(NULL, all);
	for (i = 0; i < 8; i++)
		fill_page(p + i * PAGE, 1 + i);
	ASSERT_EQ(0, munmap(p + 3 * PAGE, 2 * PAGE));
	for (i = 0; i < 8; i++) {
		if (i == 3 || i == 4) {
			EXPECT_EQ(SIGSEGV, probe_sig(p + i * PAGE, false));
		} else {
			EXPECT_EQ(1 + i, page_tag(p + i * PAGE));
		}
	}
	fill_page(p + 1 * PAGE, 21);
	fill_page(p + 6 * PAGE, 26);
	EXPECT_EQ(21, page_tag(all + 1 * PAGE));
	EXPECT_EQ(26, page_tag(all + 6 * PAGE));

	/* an edit across the gap reaches both parts */
	ASSERT_EQ(0, upage_swap(self->fd, 1, 6, 1));
	EXPECT_EQ(26, page_tag(p + 1 * PAGE));
	EXPECT_EQ(21, page_tag(p + 6 * PAGE));
	ASSERT_EQ(0, upage_move(self->fd, 7, 3, 1));
	EXPECT_EQ(4, page_tag(p + 7 * PAGE));
	EXPECT_EQ(0, page_tag(all + 3 * PAGE));
	munmap(p, 3 * PAGE);
	munmap(p + 5 * PAGE, 3 * PAGE);
	munmap(all, 8 * PAGE);
}

/*
 * mprotect(PROT_READ) of the whole mapping: reads work, writes get
 * SIGSEGV with SEGV_ACCERR; back to read-write, writes reach the space.
 */
TEST_F(map, mprotect_read_only_then_back)
{
	char *p = upage_map(self->fd, 0, 4, MAP_SHARED);
	char *all = upage_map(self->fd, 0, 4, MAP_SHARED);
	int code;

	ASSERT_NE(NULL, p);
	ASSERT_NE(NULL, all);
	fill_page(p + PAGE, 5);
	ASSERT_EQ(0, mprotect(p, 4 * PAGE, PROT_READ));
	EXPECT_EQ(0, probe(p + PAGE, false, &code));
	EXPECT_EQ(SIGSEGV, probe(p + PAGE, true, &code));
	EXPECT_EQ(SEGV_ACCERR, code);
	EXPECT_EQ(SIGSEGV, probe(p + 3 * PAGE, true, &code));
	EXPECT_EQ(SEGV_ACCERR, code);
	EXPECT_EQ(5, page_tag(p + PAGE));

	/* edits still reach the read-only mapping */
	ASSERT_EQ(0, upage_swap(self->fd, 1, 2, 1));
	EXPECT_EQ(0, page_tag(p + PAGE));
	EXPECT_EQ(5, page_tag(p + 2 * PAGE));

	ASSERT_EQ(0, mprotect(p, 4 * PAGE, PROT_READ | PROT_WRITE));
	fill_page(p + 3 * PAGE, 7);
	EXPECT_EQ(7, page_tag(all + 3 * PAGE));
	munmap(p, 4 * PAGE);
	munmap(all, 4 * PAGE);
}

/*
 * mremap to a new address: the contents follow, edits reach the new
 * address, writes there reach the space, and the old address is gone.
 */
TEST_F(map, mremap_move_follows_contents)
{
	char *p = upage_map(self->fd, 4, 4, MAP_SHARED);
	char *all = upage_map(self->fd, 0, 16, MAP_SHARED);
	char *target, *q;
	size_t i;

	ASSERT_NE(NULL, p);
	ASSERT_NE(NULL, all);
	for (i = 0; i < 4; i++)
		fill_page(p + i * PAGE, 10 + i);
	target = mmap(NULL, 4 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, target);
	q = mremap(p, 4 * PAGE, 4 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, target);
	ASSERT_EQ(target, q);
	for (i = 0; i < 4; i++)
		EXPECT_EQ(10 + i, page_tag(q + i * PAGE));
	EXPECT_EQ(SIGSEGV, probe_sig(p, false));

	ASSERT_EQ(0, upage_swap(self->fd, 4, 7, 1));
	EXPECT_EQ(13, page_tag(q));
	EXPECT_EQ(10, page_tag(q + 3 * PAGE));
	fill_page(all + 12 * PAGE, 40);
	ASSERT_EQ(0, upage_move(self->fd, 5, 12, 1));
	EXPECT_EQ(40, page_tag(q + PAGE));
	fill_page(q + 2 * PAGE, 30);
	EXPECT_EQ(30, page_tag(all + 6 * PAGE));
	munmap(q, 4 * PAGE);
	munmap(all, 16 * PAGE);
}

/* mremap to a smaller size keeps the head working and drops the tail. */
TEST_F(map, mremap_shrink_keeps_head)
{
	char *p = upage_map(self->fd, 0, 8, MAP_SHARED);
	char *q;
	size_t i;

	ASSERT_NE(NULL, p);
	for (i = 0; i < 8; i++)
		fill_page(p + i * PAGE, 1 + i);
	q = mremap(p, 8 * PAGE, 3 * PAGE, 0);
	ASSERT_EQ(p, q);
	for (i = 0; i < 3; i++)
		EXPECT_EQ(1 + i, page_tag(q + i * PAGE));
	EXPECT_EQ(SIGSEGV, probe_sig(q + 3 * PAGE, false));
	EXPECT_EQ(SIGSEGV, probe_sig(q + 7 * PAGE, false));
	ASSERT_EQ(0, upage_swap(self->fd, 0, 6, 1));
	EXPECT_EQ(7, page_tag(q));
	munmap(q, 3 * PAGE);
}

/*
 * mremap growing within the space: the grown part shows the next slots,
 * and edits reach it.
 */
TEST_F(map, mremap_grow_shows_next_slots)
{
	char *all = upage_map(self->fd, 0, 16, MAP_SHARED);
	char *p, *q;
	size_t i;

	ASSERT_NE(NULL, all);
	for (i = 0; i < 16; i++)
		fill_page(all + i * PAGE, 1 + i);
	p = upage_map(self->fd, 2, 4, MAP_SHARED);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(3, page_tag(p));
	q = mremap(p, 4 * PAGE, 8 * PAGE, MREMAP_MAYMOVE);
	ASSERT_NE(MAP_FAILED, q);
	for (i = 0; i < 8; i++)
		EXPECT_EQ(3 + i, page_tag(q + i * PAGE));
	ASSERT_EQ(0, upage_swap(self->fd, 8, 0, 1));
	EXPECT_EQ(1, page_tag(q + 6 * PAGE));
	fill_page(q + 7 * PAGE, 99);
	EXPECT_EQ(99, page_tag(all + 9 * PAGE));
	munmap(q, 8 * PAGE);
	munmap(all, 16 * PAGE);
}

/*
 * mremap growing beyond the space's size: the part beyond is SIGBUS until
 * the space grows, then it shows zeros.
 */
TEST_F(map, mremap_grow_beyond_size_is_sigbus)
{
	char *p, *q;

	upage_resize_ok(self->fd, 4);
	p = upage_map(self->fd, 2, 2, MAP_SHARED);
	ASSERT_NE(NULL, p);
	fill_page(p + PAGE, 4);
	q = mremap(p, 2 * PAGE, 5 * PAGE, MREMAP_MAYMOVE);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_EQ(4, page_tag(q + PAGE));
	EXPECT_EQ(SIGBUS, probe_sig(q + 2 * PAGE, false));
	EXPECT_EQ(SIGBUS, probe_sig(q + 4 * PAGE, true));
	upage_resize_ok(self->fd, 6);
	EXPECT_EQ(0, page_tag(q + 2 * PAGE));
	fill_page(q + 3 * PAGE, 5);
	EXPECT_EQ(SIGBUS, probe_sig(q + 4 * PAGE, false));
	munmap(q, 5 * PAGE);
}

/*
 * An mlocked mapping works, takes edits (mlock pins nothing), and can be
 * munlocked, unmapped and closed without a kernel complaint.
 */
TEST_F(map, mlock_edit_munlock_close)
{
	char *p = upage_map(self->fd, 0, 4, MAP_SHARED);
	size_t i;

	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, mlock(p, 4 * PAGE));
	for (i = 0; i < 4; i++)
		fill_page(p + i * PAGE, 1 + i);
	EXPECT_EQ(0, upage_swap(self->fd, 0, 3, 1));
	EXPECT_EQ(4, page_tag(p));
	EXPECT_EQ(1, page_tag(p + 3 * PAGE));
	ASSERT_EQ(0, munlock(p, 4 * PAGE));
	ASSERT_EQ(0, mlock(p, 2 * PAGE));
	ASSERT_EQ(0, close(self->fd));
	self->fd = -1;
	EXPECT_EQ(2, page_tag(p + PAGE));
	ASSERT_EQ(0, munmap(p, 4 * PAGE));
}

/* MADV_DONTNEED on a shared mapping drops PTEs, not contents. */
TEST_F(map, dontneed_shared_keeps_contents)
{
	char *p = upage_map(self->fd, 0, 4, MAP_SHARED);
	size_t i;

	ASSERT_NE(NULL, p);
	for (i = 0; i < 4; i++)
		fill_page(p + i * PAGE, 1 + i);
	ASSERT_EQ(0, madvise(p, 4 * PAGE, MADV_DONTNEED));
	for (i = 0; i < 4; i++)
		EXPECT_EQ(1 + i, page_tag(p + i * PAGE));
	munmap(p, 4 * PAGE);
}

/* A mapping at an offset sees the slots at that offset, edits included. */
TEST_F(map, offset_window_follows_edits)
{
	char *all = upage_map(self->fd, 0, 16, MAP_SHARED);
	char *w = upage_map(self->fd, 10, 3, MAP_PRIVATE);
	size_t i;

	ASSERT_NE(NULL, all);
	ASSERT_NE(NULL, w);
	for (i = 0; i < 16; i++)
		fill_page(all + i * PAGE, 1 + i);
	for (i = 0; i < 3; i++)
		EXPECT_EQ(11 + i, page_tag(w + i * PAGE));
	ASSERT_EQ(0, upage_swap(self->fd, 0, 11, 1));
	EXPECT_EQ(1, page_tag(w + PAGE));
	ASSERT_EQ(0, upage_alias(self->fd, 12, 15, 1));
	EXPECT_EQ(16, page_tag(w + 2 * PAGE));
	fill_page(all + 15 * PAGE, 77);
	EXPECT_EQ(77, page_tag(w + 2 * PAGE));
	munmap(all, 16 * PAGE);
	munmap(w, 3 * PAGE);
}

/*
 * Every madvise advice on a shared mapping either works or is refused, and
 * none loses the space's contents: reclaim advice cannot take frames
 * (they are not on the LRU), WILLNEED must not populate a page cache the
 * space does not use, and the frames stay the same.
 */
TEST_F(map, madvise_advice_keeps_contents)
{
	static const int advice[] = {
		MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_WILLNEED,
		MADV_DONTNEED, MADV_COLD, MADV_PAGEOUT, MADV_DONTFORK,
		MADV_DOFORK, MADV_DONTDUMP, MADV_DODUMP, MADV_HUGEPAGE,
		MADV_NOHUGEPAGE, MADV_MERGEABLE, MADV_UNMERGEABLE, MADV_REMOVE,
		MADV_FREE, MADV_POPULATE_READ, MADV_POPULATE_WRITE,
	};
	struct upage_slot_info before[4], after[4];
	char *p = upage_map(self->fd, 0, 4, MAP_SHARED);
	size_t a, i;

	ASSERT_NE(NULL, p);
	for (i = 0; i < 4; i++)
		fill_page(p + i * PAGE, 40 + i);
	ASSERT_EQ(0, upage_query(self->fd, 0, 4, before));
	for (a = 0; a < sizeof(advice) / sizeof(advice[0]); a++) {
		/* Refusals (EINVAL, EOPNOTSUPP, ...) are fine; losses are not. */
		madvise(p, 4 * PAGE, advice[a]);
		for (i = 0; i < 4; i++)
			ASSERT_TRUE(page_is(p + i * PAGE, 40 + i))
				TH_LOG("advice %d lost page %zu", advice[a], i);
	}
	ASSERT_EQ(0, upage_query(self->fd, 0, 4, after));
	for (i = 0; i < 4; i++)
		EXPECT_EQ(before[i].frame_id, after[i].frame_id);
	munmap(p, 4 * PAGE);
}

TEST_HARNESS_MAIN
