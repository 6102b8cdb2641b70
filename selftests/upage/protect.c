// SPDX-License-Identifier: GPL-2.0
/*
 * UPAGE_OP_PROTECT: per-slot protection on MAP_SHARED mappings. NONE
 * refuses every access, READ refuses writes, both with SIGSEGV at the exact
 * address and SEGV_MAPERR, in every mapping and process, without splitting
 * VMAs. Protection belongs to the slot: it stays across move, swap and
 * alias, and an alias in an RW slot may still write the shared frame.
 */
#include <stdlib.h>

#include "upage_utils.h"

#define SLOTS 8

FIXTURE(prot) {
	int fd;
	volatile unsigned char *p;	/* slots 0..SLOTS-1, MAP_SHARED; volatile: aliases */
};

FIXTURE_SETUP(prot)
{
	self->p = NULL;
	upage_open_or_skip(self->fd);
	upage_require_cmd(self->fd, UPAGE_CMD_EDIT);
	upage_require_cmd(self->fd, UPAGE_CMD_QUERY);
	upage_resize_ok(self->fd, SLOTS);
	self->p = upage_map(self->fd, 0, SLOTS, MAP_SHARED);
	ASSERT_NE(NULL, self->p);
}

FIXTURE_TEARDOWN(prot)
{
	if (self->p)
		munmap((void *)self->p, SLOTS * PAGE);
	if (self->fd >= 0)
		close(self->fd);
}

#define SLOTP(slot, off) ((self)->p + (slot) * PAGE + (off))

/* Every slot starts RW: reads and writes are served. */
TEST_F(prot, new_slots_are_rw)
{
	int i;

	for (i = 0; i < SLOTS; i++)
		EXPECT_EQ(UPAGE_PROT_RW, upage_slot(self->fd, i).prot);
	upage_access_ok(SLOTP(3, 5), 0);
	upage_access_ok(SLOTP(3, 5), 1);
}

/* NONE: a read and a write both raise SIGSEGV at the exact address. */
TEST_F(prot, none_refuses_read_and_write)
{
	upage_fill(self->p, 2, 'n');
	upage_protect_ok(self->fd, 2, 1, UPAGE_PROT_NONE);
	EXPECT_EQ(UPAGE_PROT_NONE, upage_slot(self->fd, 2).prot);
	upage_access_segv(SLOTP(2, 123), 0);
	upage_access_segv(SLOTP(2, PAGE - 1), 1);
	upage_access_segv(SLOTP(2, 0), 1);
	/* Neighbours are untouched. */
	upage_access_ok(SLOTP(1, PAGE - 1), 1);
	upage_access_ok(SLOTP(3, 0), 1);
	upage_protect_ok(self->fd, 2, 1, UPAGE_PROT_RW);
	EXPECT_TRUE(upage_page_is(self->p, 2, 'n'));
}

/* NONE on a hole: the fault refuses it without filling the hole. */
TEST_F(prot, none_on_hole_refuses_and_stays_hole)
{
	upage_protect_ok(self->fd, 4, 1, UPAGE_PROT_NONE);
	upage_access_segv(SLOTP(4, 8), 0);
	upage_access_segv(SLOTP(4, 8), 1);
	EXPECT_EQ(0, upage_slot(self->fd, 4).frame_id);
}

/* READ: reads see the data, a write raises SIGSEGV and changes nothing. */
TEST_F(prot, read_serves_reads_refuses_writes)
{
	struct upage_fault f;

	upage_fill(self->p, 1, 'r');
	upage_protect_ok(self->fd, 1, 1, UPAGE_PROT_READ);
	EXPECT_EQ(UPAGE_PROT_READ, upage_slot(self->fd, 1).prot);
	ASSERT_EQ(0, _upage_access(SLOTP(1, 77), 0, 0, &f));
	EXPECT_EQ('r', f.val);
	upage_access_segv(SLOTP(1, 77), 1);
	upage_access_segv(SLOTP(1, PAGE - 8), 1);
	EXPECT_TRUE(upage_page_is(self->p, 1, 'r'));
}

/* READ: a read fault first, then a write, still raises SIGSEGV. */
TEST_F(prot, read_refuses_write_after_read_fault)
{
	upage_protect_ok(self->fd, 5, 1, UPAGE_PROT_READ);
	upage_access_ok(SLOTP(5, 0), 0);	/* hole: zero-filled, mapped */
	upage_access_segv(SLOTP(5, 1), 1);
	upage_access_ok(SLOTP(5, 2), 0);
	upage_access_segv(SLOTP(5, 3), 1);
	EXPECT_TRUE(upage_page_is(self->p, 5, 0));
}

/* Protecting a slot that is mapped writable takes effect at once. */
TEST_F(prot, protect_applies_to_pages_already_mapped)
{
	upage_fill(self->p, 3, 'w');		/* writable PTE now */
	upage_protect_ok(self->fd, 3, 1, UPAGE_PROT_READ);
	upage_access_segv(SLOTP(3, 9), 1);
	EXPECT_EQ('w', *SLOTP(3, 9));
	upage_protect_ok(self->fd, 3, 1, UPAGE_PROT_NONE);
	upage_access_segv(SLOTP(3, 9), 0);
}

/* Relaxing NONE -> READ -> RW works on the same mapping, no remap. */
TEST_F(prot, relaxing_protection_needs_no_remap)
{
	upage_fill(self->p, 6, 'x');
	upage_protect_ok(self->fd, 6, 1, UPAGE_PROT_NONE);
	upage_access_segv(SLOTP(6, 0), 0);
	upage_protect_ok(self->fd, 6, 1, UPAGE_PROT_READ);
	upage_access_ok(SLOTP(6, 0), 0);
	upage_access_segv(SLOTP(6, 0), 1);
	upage_protect_ok(self->fd, 6, 1, UPAGE_PROT_RW);
	upage_access_ok(SLOTP(6, 0), 1);
	EXPECT_EQ(0x5c, *SLOTP(6, 0));
	upage_protect_ok(self->fd, 6, 1, UPAGE_PROT_NONE);
	upage_protect_ok(self->fd, 6, 1, UPAGE_PROT_RW);
	upage_access_ok(SLOTP(6, 1), 1);
}

/* A range PROTECT covers exactly dst..dst+n-1. */
TEST_F(prot, protect_range_is_exact)
{
	int i;

	upage_protect_ok(self->fd, 2, 4, UPAGE_PROT_READ);
	for (i = 0; i < SLOTS; i++) {
		uint32_t want = i >= 2 && i < 6 ? UPAGE_PROT_READ : UPAGE_PROT_RW;

		EXPECT_EQ(want, upage_slot(self->fd, i).prot);
		if (want == UPAGE_PROT_READ)
			upage_access_segv(SLOTP(i, 0), 1);
		else
			upage_access_ok(SLOTP(i, 0), 1);
	}
}

/* A denied access kills a child with SIGSEGV; an allowed one does not. */
TEST_F(prot, denied_access_kills_child_with_sigsegv)
{
	upage_protect_ok(self->fd, 0, 1, UPAGE_PROT_NONE);
	upage_protect_ok(self->fd, 1, 1, UPAGE_PROT_READ);
	EXPECT_EQ(SIGSEGV, upage_touch_signal((char *)SLOTP(0, 0), 0));
	EXPECT_EQ(SIGSEGV, upage_touch_signal((char *)SLOTP(0, 0), 1));
	EXPECT_EQ(0, upage_touch_signal((char *)SLOTP(1, 0), 0));
	EXPECT_EQ(SIGSEGV, upage_touch_signal((char *)SLOTP(1, 0), 1));
	EXPECT_EQ(0, upage_touch_signal((char *)SLOTP(2, 0), 1));
}

/* Protection reaches a child that mapped the slot writable before it. */
TEST_F(prot, protect_reaches_other_process)
{
	int ready[2], go[2], status;
	pid_t pid;
	char c;

	ASSERT_EQ(0, pipe(ready));
	ASSERT_EQ(0, pipe(go));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct upage_fault f;
		int bad = 0;

		/* Only the parent holds these now: its death is EOF here. */
		close(go[1]);
		close(ready[0]);
		*SLOTP(0, 0) = 'c';		/* writable in the child */
		if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(2);
		bad |= _upage_access(SLOTP(0, 1), 1, 'x', &f) != SIGSEGV;
		bad |= f.addr != SLOTP(0, 1) || f.code != SEGV_MAPERR;
		bad |= _upage_access(SLOTP(0, 0), 0, 0, &f) != 0;
		bad |= f.val != 'c';
		_exit(bad);
	}
	close(ready[1]);	/* the child's end: its death is EOF here */
	ASSERT_EQ(1, read(ready[0], &c, 1));
	upage_protect_ok(self->fd, 0, 1, UPAGE_PROT_READ);
	ASSERT_EQ(1, write(go[1], "g", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(0, *SLOTP(0, 1));
}

/* Protection is the slot's: every mapping of the slot, at any offset, obeys. */
TEST_F(prot, protect_applies_to_every_mapping)
{
	unsigned char *q = upage_map(self->fd, 3, 2, MAP_SHARED);

	ASSERT_NE(NULL, q);
	q[PAGE] = 'q';				/* slot 4, writable in q */
	upage_protect_ok(self->fd, 4, 1, UPAGE_PROT_READ);
	upage_access_segv(q + PAGE + 10, 1);
	upage_access_segv(SLOTP(4, 10), 1);
	upage_access_ok(q + 10, 1);		/* slot 3 */
	EXPECT_EQ('q', *SLOTP(4, 0));
	munmap(q, 2 * PAGE);
}

/* MOVE: the frame leaves, the protection stays with each slot. */
TEST_F(prot, protection_stays_with_slot_across_move)
{
	upage_fill(self->p, 0, 'm');
	upage_protect_ok(self->fd, 1, 1, UPAGE_PROT_READ);
	upage_move_ok(self->fd, 1, 0, 1);
	EXPECT_EQ(UPAGE_PROT_READ, upage_slot(self->fd, 1).prot);
	EXPECT_EQ(UPAGE_PROT_RW, upage_slot(self->fd, 0).prot);
	EXPECT_EQ('m', *SLOTP(1, 0));
	upage_access_segv(SLOTP(1, 0), 1);
	upage_access_ok(SLOTP(0, 0), 1);
	/* Moving out of a READ slot gives an RW slot a writable frame. */
	upage_move_ok(self->fd, 3, 1, 1);
	EXPECT_EQ(UPAGE_PROT_READ, upage_slot(self->fd, 1).prot);
	upage_access_ok(SLOTP(3, 0), 1);
	EXPECT_EQ(0x5c, *SLOTP(3, 0));
}

/* SWAP: frames trade places, protections do not. */
TEST_F(prot, protection_stays_with_slot_across_swap)
{
	upage_fill(self->p, 2, 'a');
	upage_fill(self->p, 5, 'b');
	upage_protect_ok(self->fd, 2, 1, UPAGE_PROT_NONE);
	upage_swap_ok(self->fd, 2, 5, 1);
	EXPECT_EQ(UPAGE_PROT_NONE, upage_slot(self->fd, 2).prot);
	EXPECT_EQ(UPAGE_PROT_RW, upage_slot(self->fd, 5).prot);
	upage_access_segv(SLOTP(2, 0), 0);
	EXPECT_TRUE(upage_page_is(self->p, 5, 'a'));
	upage_access_ok(SLOTP(5, 0), 1);
	upage_protect_ok(self->fd, 2, 1, UPAGE_PROT_RW);
	EXPECT_TRUE(upage_page_is(self->p, 2, 'b'));
}

/* ALIAS: an RW alias may write the frame of a READ slot; the READ slot
 * still refuses writes and reads what the alias wrote. */
TEST_F(prot, rw_alias_writes_frame_of_read_slot)
{
	struct upage_fault f;

	upage_fill(self->p, 1, 'o');
	upage_protect_ok(self->fd, 1, 1, UPAGE_PROT_READ);
	upage_alias_ok(self->fd, 4, 1, 1);
	EXPECT_EQ(UPAGE_PROT_RW, upage_slot(self->fd, 4).prot);
	EXPECT_EQ(UPAGE_PROT_READ, upage_slot(self->fd, 1).prot);
	upage_access_ok(SLOTP(4, 0), 1);		/* writes 0x5c */
	ASSERT_EQ(0, _upage_access(SLOTP(1, 0), 0, 0, &f));
	EXPECT_EQ(0x5c, f.val);
	upage_access_segv(SLOTP(1, 0), 1);
	upage_access_segv(SLOTP(1, 1), 1);
	EXPECT_EQ('o', *SLOTP(4, 1));
}

/* ALIAS onto a protected slot: the slot keeps its protection. */
TEST_F(prot, alias_onto_protected_slot_keeps_protection)
{
	upage_fill(self->p, 0, 's');
	upage_protect_ok(self->fd, 6, 1, UPAGE_PROT_NONE);
	upage_alias_ok(self->fd, 6, 0, 1);
	EXPECT_EQ(UPAGE_PROT_NONE, upage_slot(self->fd, 6).prot);
	upage_access_segv(SLOTP(6, 0), 0);
	upage_access_ok(SLOTP(0, 0), 1);
	upage_protect_ok(self->fd, 6, 1, UPAGE_PROT_READ);
	EXPECT_EQ(0x5c, *SLOTP(6, 0));
	upage_access_segv(SLOTP(6, 0), 1);
}

/* ALIAS_COW onto a READ slot: a write is refused and breaks nothing. */
TEST_F(prot, read_protected_cow_alias_refuses_write_without_break)
{
	struct upage_stats before = { 0 }, after = { 0 };
	struct upage_slot_info d;

	upage_fill(self->p, 0, 'a');
	upage_protect_ok(self->fd, 7, 1, UPAGE_PROT_READ);
	upage_alias_cow_ok(self->fd, 7, 0, 1);
	if (upage_has_cmd(self->fd, UPAGE_CMD_STATS))
		upage_stats_ok(self->fd, &before);
	EXPECT_EQ('a', *SLOTP(7, 0));
	upage_access_segv(SLOTP(7, 0), 1);
	d = upage_slot(self->fd, 7);
	EXPECT_TRUE(d.state & UPAGE_SLOT_COW);
	EXPECT_EQ(upage_slot(self->fd, 0).frame_id, d.frame_id);
	EXPECT_EQ(UPAGE_PROT_READ, d.prot);
	if (upage_has_cmd(self->fd, UPAGE_CMD_STATS)) {
		upage_stats_ok(self->fd, &after);
		EXPECT_EQ(before.out_cow_breaks, after.out_cow_breaks);
	}
}

/* The slot's RW never overrides mprotect: a PROT_READ VMA stays read-only
 * (SEGV_ACCERR, the VMA's own refusal). */
TEST_F(prot, slot_rw_does_not_override_mprotect)
{
	unsigned char *q;
	struct upage_fault f;

	q = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, self->fd, 2 * PAGE);
	ASSERT_NE(MAP_FAILED, q);
	upage_access_ok(q, 0);
	ASSERT_EQ(SIGSEGV, _upage_access(q, 1, 1, &f));
	EXPECT_EQ(q, f.addr);
	EXPECT_EQ(SEGV_ACCERR, f.code);
	munmap(q, PAGE);
}

/* MAP_PRIVATE: a NONE slot refuses reads of the frame. */
TEST_F(prot, private_mapping_of_none_slot_refuses_read)
{
	unsigned char *q = upage_map(self->fd, 0, 2, MAP_PRIVATE);

	ASSERT_NE(NULL, q);
	upage_fill(self->p, 1, 'v');
	upage_protect_ok(self->fd, 1, 1, UPAGE_PROT_NONE);
	upage_access_segv(q + PAGE + 3, 0);
	upage_access_ok(q, 0);
	munmap(q, 2 * PAGE);
}

/* MAP_PRIVATE: a page the process already copied is its own, unprotected. */
TEST_F(prot, private_copy_is_not_protected)
{
	unsigned char *q = upage_map(self->fd, 0, 1, MAP_PRIVATE);

	ASSERT_NE(NULL, q);
	upage_fill(self->p, 0, 'f');
	q[0] = 'p';				/* private copy now */
	upage_protect_ok(self->fd, 0, 1, UPAGE_PROT_NONE);
	upage_access_ok(q, 0);
	upage_access_ok(q + 1, 1);
	EXPECT_EQ('p', q[0]);
	EXPECT_EQ('f', q[2]);
	upage_access_segv(self->p, 0);
	munmap(q, PAGE);
}

/* A PROTECT counts as one op applied in one batch. */
TEST_F(prot, protect_counts_as_edit)
{
	struct upage_stats before, after;

	upage_require_cmd(self->fd, UPAGE_CMD_STATS);
	upage_stats_ok(self->fd, &before);
	upage_protect_ok(self->fd, 0, 4, UPAGE_PROT_READ);
	upage_stats_ok(self->fd, &after);
	EXPECT_EQ(before.out_edits + 1, after.out_edits);
	EXPECT_EQ(before.out_batches + 1, after.out_batches);
}

#define BIG 100000

/* Protecting every other page of a 100000-page mapping splits no VMA. */
TEST_F_TIMEOUT(prot, no_vma_split_for_100000_pages, 240)
{
	struct upage_edit_op *ops;
	struct upage_api api;
	unsigned char *q;
	int vmas, i;

	ASSERT_EQ(0, upage_api(self->fd, &api));
	if (api.out_max_pages < BIG)
		SKIP(return, "max_space_pages %llu < %d",
		     (unsigned long long)api.out_max_pages, BIG);
	upage_resize_ok(self->fd, BIG);
	q = upage_map(self->fd, 0, BIG, MAP_SHARED);
	ASSERT_NE(NULL, q);
	for (i = 0; i < 64; i++) {		/* some pages mapped before */
		q[i * PAGE] = 1;
		q[(BIG - 1 - i) * PAGE] = 1;
	}
	/* The ops vector first: a large calloc() is a mapping of its own. */
	ops = calloc(BIG / 2, sizeof(*ops));
	ASSERT_NE(NULL, ops);
	for (i = 0; i < BIG / 2; i++)
		ops[i] = (struct upage_edit_op){
			.op = UPAGE_OP_PROTECT, .dst = 2 * i + 1, .n = 1,
			.prot = i % 2 ? UPAGE_PROT_READ : UPAGE_PROT_NONE };
	vmas = upage_nr_vmas();
	ASSERT_LT(0, vmas);
	upage_edit_ok(self->fd, ops, BIG / 2);
	EXPECT_EQ(vmas, upage_nr_vmas());

	/* Each page obeys its own slot, still in one VMA. */
	for (i = 0; i < 8; i++) {
		upage_access_ok(q + 2 * i * PAGE, 1);
		upage_access_segv(q + (2 * i + 1) * PAGE, i % 2);
	}
	upage_access_segv(q + 1 * PAGE + 5, 0);			/* NONE */
	upage_access_ok(q + 3 * PAGE + 5, 0);			/* READ */
	upage_access_segv(q + (BIG - 1) * PAGE, 1);		/* READ */
	upage_access_ok(q + (BIG - 2) * PAGE, 1);
	upage_access_segv(q + (BIG / 2 + 1) * PAGE, 0);	/* NONE: 50001 */
	EXPECT_EQ(UPAGE_PROT_NONE, upage_slot(self->fd, BIG / 2 + 1).prot);
	EXPECT_EQ(UPAGE_PROT_RW, upage_slot(self->fd, BIG / 2).prot);
	EXPECT_EQ(vmas, upage_nr_vmas());

	/* And relaxing them all merges nothing back: there was nothing split. */
	upage_protect_ok(self->fd, 0, BIG, UPAGE_PROT_RW);
	upage_access_ok(q + 1 * PAGE, 1);
	EXPECT_EQ(vmas, upage_nr_vmas());
	free(ops);
	munmap(q, (size_t)BIG * PAGE);
}

TEST_HARNESS_MAIN
