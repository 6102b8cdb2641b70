// SPDX-License-Identifier: GPL-2.0
/*
 * UPAGE_EDIT_POPULATE and UPAGE_RES_POPULATE (docs/design.md, "Populate"):
 * the changed slots are mapped into the caller's own mappings before the
 * call returns, so its next read takes no fault, and nothing that must
 * fault is mapped: holes, evicted frames, UPAGE_PROT_NONE, traps. A
 * populated page is read-only in a shared writable mapping, so writes
 * still reach protection, tracking and copy-on-write. Other processes,
 * locked mappings and private copies are left alone, and populated
 * mappings survive fork, mprotect, mremap and races with other threads'
 * edits and faults with the contents the table says.
 */
#include <pthread.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "upage_utils.h"

#define SLOTS 64

FIXTURE(pop) {
	int fd;
	unsigned char *p;
};

FIXTURE_SETUP(pop)
{
	struct upage_api api = { 0 };

	self->p = NULL;
	upage_open_or_skip(self->fd);
	ASSERT_EQ(0, upage_api(self->fd, &api));
	if (!(api.out_features & UPAGE_FEATURE_POPULATE))
		SKIP(return, "the module has no UPAGE_FEATURE_POPULATE");
	upage_resize_ok(self->fd, SLOTS);
	self->p = upage_map(self->fd, 0, SLOTS, MAP_SHARED);
	ASSERT_NE(NULL, self->p);
}

FIXTURE_TEARDOWN(pop)
{
	if (self->p)
		munmap(self->p, SLOTS * PAGE);
	if (self->fd >= 0)
		close(self->fd);
}

/*
 * Whether process @pid (0: this one) has a PTE for @addr (pagemap bit
 * 63); -1 if its pagemap cannot be read.
 */
static int present_in(pid_t pid, const void *addr)
{
	char path[64];
	uint64_t entry = 0;
	int fd;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/pagemap");
	fd = open(path, O_RDONLY);

	if (fd < 0)
		return -1;
	if (pread(fd, &entry, sizeof(entry),
		  (uintptr_t)addr / PAGE * sizeof(entry)) != sizeof(entry))
		entry = 0;
	close(fd);
	return (int)(entry >> 63);
}

static int present(const void *addr)
{
	return present_in(0, addr);
}

static uint64_t faults(int fd)
{
	struct upage_stats st = { 0 };

	upage_stats(fd, &st);
	return st.out_faults;
}

static uint64_t populated(int fd)
{
	struct upage_stats st = { 0 };

	upage_stats(fd, &st);
	return st.out_populated;
}

/* Page @i of every mapping of @fd holds byte 'A' + @i, for i < @n. */
static void fill_tags(unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		upage_fill(p, i, 'A' + i);
}

/* Swap slots i and @half + i for i < @half in one populating batch. */
static int swap_halves(int fd, size_t half, uint32_t flags)
{
	struct upage_edit_op ops[SLOTS];
	size_t i;

	for (i = 0; i < half; i++)
		ops[i] = (struct upage_edit_op){ .op = UPAGE_OP_SWAP, .dst = i,
						 .src = half + i, .n = 1 };
	return upage_edit_flags(fd, ops, half, flags, NULL);
}

/*
 * The point of the flag: after a populating batch of swaps the caller
 * reads every swapped page without a fault, and sees the swap.
 */
TEST_F(pop, swap_batch_is_read_without_a_fault)
{
	uint64_t before, mapped;
	size_t i;

	fill_tags(self->p, 16);
	mapped = populated(self->fd);
	ASSERT_EQ(0, swap_halves(self->fd, 8, UPAGE_EDIT_POPULATE));
	ASSERT_EQ(16, populated(self->fd) - mapped);
	before = faults(self->fd);
	for (i = 0; i < 16; i++) {
		ASSERT_EQ(1, present(self->p + i * PAGE)) TH_LOG("slot %zu", i);
		ASSERT_TRUE(upage_page_is(self->p, i, 'A' + (i + 8) % 16));
	}
	ASSERT_EQ(before, faults(self->fd));
}

/* Without the flag the batch unmaps and each read faults (the baseline). */
TEST_F(pop, swap_batch_without_the_flag_refaults)
{
	uint64_t before;
	size_t i;

	fill_tags(self->p, 16);
	ASSERT_EQ(0, swap_halves(self->fd, 8, 0));
	for (i = 0; i < 16; i++)
		ASSERT_EQ(0, present(self->p + i * PAGE));
	before = faults(self->fd);
	for (i = 0; i < 16; i++)
		ASSERT_TRUE(upage_page_is(self->p, i, 'A' + (i + 8) % 16));
	ASSERT_EQ(before + 16, faults(self->fd));
}

/*
 * What a read must fault on stays unmapped: a hole, UPAGE_PROT_NONE, read
 * and write traps, an evicted frame. Each still behaves as before.
 */
TEST_F(pop, slots_that_must_fault_stay_unmapped)
{
	struct upage_edit_op ops[] = {
		{ .op = UPAGE_OP_DISCARD, .dst = 0, .n = 1 },
		{ .op = UPAGE_OP_PROTECT, .dst = 1, .n = 1,
		  .prot = UPAGE_PROT_NONE },
		{ .op = UPAGE_OP_SWAP, .dst = 2, .src = 12, .n = 1 },
		{ .op = UPAGE_OP_SWAP, .dst = 3, .src = 13, .n = 1 },
		{ .op = UPAGE_OP_SWAP, .dst = 4, .src = 14, .n = 1 },
	};
	uint64_t done;

	fill_tags(self->p, 16);
	ASSERT_EQ(0, upage_trap(self->fd, 2, 1, UPAGE_TRAP_READ));
	ASSERT_EQ(0, upage_trap(self->fd, 3, 1, UPAGE_TRAP_WRITE));
	ASSERT_EQ(0, upage_evict(self->fd, 14, 1, &done));
	ASSERT_EQ(1, done);
	ASSERT_EQ(0, upage_edit_flags(self->fd, ops, 5, UPAGE_EDIT_POPULATE,
				      NULL));
	ASSERT_EQ(0, present(self->p));
	ASSERT_EQ(0, present(self->p + PAGE));
	ASSERT_EQ(0, present(self->p + 2 * PAGE));
	ASSERT_EQ(0, present(self->p + 3 * PAGE));
	ASSERT_EQ(0, present(self->p + 4 * PAGE));
	/*
	 * The swaps' other sides have no trap, and 14 has 4's resident frame
	 * (4 got the evicted one).
	 */
	ASSERT_EQ(1, present(self->p + 12 * PAGE));
	ASSERT_EQ(1, present(self->p + 13 * PAGE));
	ASSERT_EQ(1, present(self->p + 14 * PAGE));
	upage_access_segv(self->p + PAGE, 0);
	ASSERT_TRUE(upage_page_is(self->p, 0, 0));
	ASSERT_TRUE(upage_page_is(self->p, 4, 'A' + 14));
	ASSERT_TRUE(upage_page_is(self->p, 14, 'A' + 4));
}

/* A slot made read-only and populated still refuses a write. */
TEST_F(pop, populated_read_only_slot_refuses_writes)
{
	struct upage_edit_op op = { .op = UPAGE_OP_PROTECT, .dst = 5, .n = 1,
				    .prot = UPAGE_PROT_READ };
	uint64_t before;

	fill_tags(self->p, 8);
	ASSERT_EQ(0, upage_edit_flags(self->fd, &op, 1, UPAGE_EDIT_POPULATE,
				      NULL));
	ASSERT_EQ(1, present(self->p + 5 * PAGE));
	before = faults(self->fd);
	ASSERT_TRUE(upage_page_is(self->p, 5, 'A' + 5));
	ASSERT_EQ(before, faults(self->fd));
	upage_access_segv(self->p + 5 * PAGE, 1);
	ASSERT_TRUE(upage_page_is(self->p, 5, 'A' + 5));
}

/* A populated copy-on-write alias copies on its first write. */
TEST_F(pop, populated_cow_alias_copies_on_first_write)
{
	struct upage_edit_op op = { .op = UPAGE_OP_ALIAS_COW, .dst = 9,
				    .src = 1, .n = 1 };

	fill_tags(self->p, 10);
	ASSERT_EQ(0, upage_edit_flags(self->fd, &op, 1, UPAGE_EDIT_POPULATE,
				      NULL));
	ASSERT_EQ(1, present(self->p + 9 * PAGE));
	ASSERT_TRUE(upage_page_is(self->p, 9, 'A' + 1));
	upage_fill(self->p, 9, 'z');
	ASSERT_TRUE(upage_page_is(self->p, 9, 'z'));
	ASSERT_TRUE(upage_page_is(self->p, 1, 'A' + 1));
}

/*
 * A tracked slot that was populated reports its next write, by the
 * program and by the kernel on its behalf (process_vm_writev).
 */
TEST_F(pop, populated_tracked_slot_reports_writes)
{
	struct iovec local, remote;
	uint64_t bitmap = 0, nr = 0, done;
	char byte = 'w';

	fill_tags(self->p, 16);
	ASSERT_EQ(0, upage_track_start(self->fd, 0, 16));
	ASSERT_EQ(0, upage_evict(self->fd, 0, 16, &done));
	ASSERT_EQ(0, upage_dirty(self->fd, 0, 16, &bitmap, UPAGE_DIRTY_CLEAR,
				 NULL));
	ASSERT_EQ(0, upage_prefetch_flags(self->fd, 0, 16, UPAGE_RES_POPULATE,
					  &done));
	ASSERT_EQ(1, present(self->p + 3 * PAGE));
	ASSERT_EQ(1, present(self->p + 6 * PAGE));
	ASSERT_EQ(0, upage_dirty(self->fd, 0, 16, &bitmap, 0, &nr));
	ASSERT_EQ(0, nr);

	self->p[3 * PAGE] = 'x';
	local = (struct iovec){ .iov_base = &byte, .iov_len = 1 };
	remote = (struct iovec){ .iov_base = self->p + 6 * PAGE, .iov_len = 1 };
	ASSERT_EQ(1, process_vm_writev(getpid(), &local, 1, &remote, 1, 0));
	ASSERT_EQ(0, upage_dirty(self->fd, 0, 16, &bitmap, 0, &nr));
	ASSERT_EQ(2, nr);
	ASSERT_EQ((1ULL << 3) | (1ULL << 6), bitmap);
}

/* Only the caller's mappings: a forked child still faults, and reads right. */
TEST_F(pop, other_processes_still_fault)
{
	int status, pipefd[2];
	char go;
	pid_t pid;

	fill_tags(self->p, 16);
	ASSERT_EQ(0, pipe(pipefd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		size_t i;

		close(pipefd[1]);	/* the parent's end: its death is EOF here */
		if (read(pipefd[0], &go, 1) != 1)
			_exit(10);
		for (i = 0; i < 16; i++)
			if (present(self->p + i * PAGE) != 0)
				_exit(20 + i);
		for (i = 0; i < 16; i++)
			if (!upage_page_is(self->p, i, 'A' + (i + 8) % 16))
				_exit(40 + i);
		_exit(0);
	}
	ASSERT_EQ(0, swap_halves(self->fd, 8, UPAGE_EDIT_POPULATE));
	ASSERT_EQ(1, present(self->p));
	ASSERT_EQ(1, write(pipefd[1], "g", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	close(pipefd[0]);
	close(pipefd[1]);
}

/*
 * After a populate, a forked child reads the populated pages (faulting
 * its own in), and a later edit by the parent reaches the child.
 */
TEST_F(pop, fork_after_populate_follows_later_edits)
{
	int status, to_child[2], to_parent[2];
	char c;
	pid_t pid;

	fill_tags(self->p, 16);
	ASSERT_EQ(0, swap_halves(self->fd, 8, UPAGE_EDIT_POPULATE));
	ASSERT_EQ(0, pipe(to_child));
	ASSERT_EQ(0, pipe(to_parent));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		size_t i;

		/* Only the parent holds these now: its death is EOF here. */
		close(to_child[1]);
		close(to_parent[0]);
		for (i = 0; i < 16; i++)
			if (!upage_page_is(self->p, i, 'A' + (i + 8) % 16))
				_exit(20 + i);
		if (write(to_parent[1], "r", 1) != 1 ||
		    read(to_child[0], &c, 1) != 1)
			_exit(10);
		/* The parent swapped back (without populating). */
		for (i = 0; i < 16; i++)
			if (!upage_page_is(self->p, i, 'A' + i))
				_exit(40 + i);
		_exit(0);
	}
	close(to_parent[1]);	/* the child's end: its death is EOF here */
	ASSERT_EQ(1, read(to_parent[0], &c, 1));
	ASSERT_EQ(0, swap_halves(self->fd, 8, 0));
	ASSERT_EQ(1, write(to_child[1], "g", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
}

/*
 * A private mapping beside the shared one is populated with the frame,
 * read-only: its write makes a private copy, the frame keeps its bytes.
 */
TEST_F(pop, private_mapping_gets_the_frame_and_copies_on_write)
{
	unsigned char *q = upage_map(self->fd, 0, SLOTS, MAP_PRIVATE);

	ASSERT_NE(NULL, q);
	fill_tags(self->p, 16);
	ASSERT_EQ(0, swap_halves(self->fd, 8, UPAGE_EDIT_POPULATE));
	ASSERT_EQ(1, present(q + 2 * PAGE));
	ASSERT_TRUE(upage_page_is(q, 2, 'A' + 10));
	upage_fill(q, 2, 'p');
	ASSERT_TRUE(upage_page_is(q, 2, 'p'));
	ASSERT_TRUE(upage_page_is(self->p, 2, 'A' + 10));
	/* The private copy is not replaced by the next populating edit. */
	ASSERT_EQ(0, swap_halves(self->fd, 8, UPAGE_EDIT_POPULATE));
	ASSERT_TRUE(upage_page_is(q, 2, 'p'));
	ASSERT_TRUE(upage_page_is(self->p, 2, 'A' + 2));
	ASSERT_TRUE(upage_page_is(q, 3, 'A' + 3));
	munmap(q, SLOTS * PAGE);
}

/* An mlocked mapping is populated too, and still unlocks. */
TEST_F(pop, locked_mapping_is_populated)
{
	unsigned char *q = upage_map(self->fd, 0, 16, MAP_SHARED);
	size_t i;

	ASSERT_NE(NULL, q);
	fill_tags(self->p, 16);
	if (mlock(q, 16 * PAGE))
		SKIP(goto out, "mlock: %s", strerror(errno));
	ASSERT_EQ(0, swap_halves(self->fd, 8, UPAGE_EDIT_POPULATE));
	for (i = 0; i < 16; i++) {
		ASSERT_EQ(1, present(q + i * PAGE)) TH_LOG("slot %zu", i);
		ASSERT_TRUE(upage_page_is(q, i, 'A' + (i + 8) % 16));
	}
	ASSERT_EQ(0, munlock(q, 16 * PAGE));
out:
	munmap(q, 16 * PAGE);
}

/*
 * A populated mapping is still an ordinary VMA: mprotect splits it and
 * enforces its protection, the pieces merge again when it is restored,
 * and mremap grows it in place (a VM_MIXEDMAP mapping would fail here on
 * 6.12 with ENOMEM, why populating does not use vm_insert_page()).
 */
TEST_F(pop, populated_mapping_splits_merges_and_grows_in_place)
{
	unsigned char *q, *r, *hole;
	struct upage_fault f;
	int vmas;
	size_t i;

	/* 32 free pages, the space's 16 at their start. */
	hole = mmap(NULL, 32 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		    -1, 0);
	ASSERT_NE(MAP_FAILED, hole);
	q = mmap(hole, 16 * PAGE, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED, self->fd, 0);
	ASSERT_EQ(hole, q);
	ASSERT_EQ(0, munmap(hole + 16 * PAGE, 16 * PAGE));
	fill_tags(self->p, 32);
	ASSERT_EQ(0, swap_halves(self->fd, 8, UPAGE_EDIT_POPULATE));
	vmas = upage_nr_vmas();
	ASSERT_EQ(0, mprotect(q + 4 * PAGE, 4 * PAGE, PROT_READ));
	ASSERT_EQ(0, swap_halves(self->fd, 8, UPAGE_EDIT_POPULATE));
	ASSERT_EQ(1, present(q + 5 * PAGE));
	ASSERT_TRUE(upage_page_is(q, 5, 'A' + 5));
	ASSERT_EQ(SIGSEGV, _upage_access(q + 5 * PAGE, 1, 'w', &f));
	ASSERT_EQ(0, mprotect(q + 4 * PAGE, 4 * PAGE, PROT_READ | PROT_WRITE));
	ASSERT_EQ(vmas, upage_nr_vmas());

	r = mremap(q, 16 * PAGE, 32 * PAGE, 0);
	ASSERT_EQ(q, r) TH_LOG("mremap in place: %s", strerror(errno));
	for (i = 0; i < 32; i++)
		ASSERT_TRUE(upage_page_is(r, i, 'A' + i)) TH_LOG("slot %zu", i);
	ASSERT_EQ(0, munmap(r + 8 * PAGE, 8 * PAGE));
	ASSERT_EQ(0, swap_halves(self->fd, 8, UPAGE_EDIT_POPULATE));
	ASSERT_EQ(1, present(r + 3 * PAGE));
	ASSERT_TRUE(upage_page_is(r, 3, 'A' + 11));
	ASSERT_TRUE(upage_page_is(r, 20, 'A' + 20));
	munmap(r, 8 * PAGE);
	munmap(r + 16 * PAGE, 16 * PAGE);
}

/* A prefetch with UPAGE_RES_POPULATE leaves nothing to fault. */
TEST_F(pop, prefetch_with_populate_reads_without_a_fault)
{
	uint64_t done = 0, before;
	size_t i;

	fill_tags(self->p, 16);
	ASSERT_EQ(0, upage_evict(self->fd, 0, 16, &done));
	ASSERT_EQ(16, done);
	ASSERT_EQ(0, upage_prefetch_flags(self->fd, 0, 16, UPAGE_RES_POPULATE,
					  &done));
	ASSERT_EQ(16, done);
	before = faults(self->fd);
	for (i = 0; i < 16; i++) {
		ASSERT_EQ(1, present(self->p + i * PAGE));
		ASSERT_TRUE(upage_page_is(self->p, i, 'A' + i));
	}
	ASSERT_EQ(before, faults(self->fd));
}

/* The flag belongs to PREFETCH: with another op it is EINVAL, and no-op. */
TEST_F(pop, populate_with_another_residency_op_is_einval)
{
	struct upage_residency cmd = {
		.size = sizeof(cmd), .flags = UPAGE_RES_POPULATE,
		.op = UPAGE_RES_EVICT, .first = 0, .n = 4,
	};
	struct upage_slot_info info;

	fill_tags(self->p, 4);
	ASSERT_EQ(-1, ioctl(self->fd, UPAGE_RESIDENCY, &cmd));
	ASSERT_EQ(EINVAL, errno);
	upage_query_ok(self->fd, 0, 1, &info);
	ASSERT_FALSE(info.state & UPAGE_SLOT_EVICTED);
}

/* A populating batch whose ops lie in the space's own evicted slot. */
TEST_F(pop, ops_in_the_spaces_own_evicted_slot)
{
	struct upage_edit_op *ops = (struct upage_edit_op *)(self->p +
							     40 * PAGE);
	uint64_t done;
	size_t i;

	fill_tags(self->p, 16);
	for (i = 0; i < 8; i++)
		ops[i] = (struct upage_edit_op){ .op = UPAGE_OP_SWAP, .dst = i,
						 .src = 8 + i, .n = 1 };
	ASSERT_EQ(0, upage_evict(self->fd, 40, 1, &done));
	ASSERT_EQ(0, upage_edit_flags(self->fd, ops, 8, UPAGE_EDIT_POPULATE,
				      NULL));
	for (i = 0; i < 16; i++)
		ASSERT_TRUE(upage_page_is(self->p, i, 'A' + (i + 8) % 16));
}

/*
 * Races: one thread swaps pairs with populate, others read every page,
 * flip the mapping's protection and drop its PTEs, and a child reads
 * through its own mapping. Every read sees one of the pair's two tags,
 * and the two pages of a pair never show the same tag at rest.
 */
#define RACE_PAIRS 16

struct race {
	int fd;
	unsigned char *p;
	volatile int stop;
	volatile int bad;
};

static void *race_swapper(void *arg)
{
	struct race *r = arg;
	struct upage_edit_op ops[RACE_PAIRS];
	size_t i;

	for (i = 0; i < RACE_PAIRS; i++)
		ops[i] = (struct upage_edit_op){ .op = UPAGE_OP_SWAP, .dst = i,
						 .src = RACE_PAIRS + i, .n = 1 };
	while (!r->stop)
		if (upage_edit_flags(r->fd, ops, RACE_PAIRS,
				     UPAGE_EDIT_POPULATE, NULL))
			r->bad = 1;
	return NULL;
}

static void *race_reader(void *arg)
{
	struct race *r = arg;
	size_t i;

	while (!r->stop) {
		for (i = 0; i < 2 * RACE_PAIRS; i++) {
			unsigned char v = r->p[i * PAGE + 100];
			unsigned char a = 'A' + i % RACE_PAIRS;

			if (v != a && v != a + RACE_PAIRS)
				r->bad = 2;
		}
	}
	return NULL;
}

static void *race_vma(void *arg)
{
	struct race *r = arg;

	while (!r->stop) {
		mprotect(r->p + 4 * PAGE, 8 * PAGE, PROT_READ);
		madvise(r->p, 2 * RACE_PAIRS * PAGE, MADV_DONTNEED);
		mprotect(r->p + 4 * PAGE, 8 * PAGE, PROT_READ | PROT_WRITE);
	}
	return NULL;
}

TEST_F(pop, races_with_faults_vma_changes_and_another_process)
{
	pthread_t swapper, reader, vma;
	struct race r = { .fd = self->fd, .p = self->p };
	int status;
	pid_t pid;
	size_t i;

	fill_tags(self->p, 2 * RACE_PAIRS);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		time_t end = time(NULL) + 3;

		r.stop = 0;
		while (time(NULL) < end) {
			for (i = 0; i < 2 * RACE_PAIRS; i++) {
				unsigned char v = self->p[i * PAGE];
				unsigned char a = 'A' + i % RACE_PAIRS;

				if (v != a && v != a + RACE_PAIRS)
					_exit(1);
			}
		}
		_exit(0);
	}
	ASSERT_EQ(0, pthread_create(&swapper, NULL, race_swapper, &r));
	ASSERT_EQ(0, pthread_create(&reader, NULL, race_reader, &r));
	ASSERT_EQ(0, pthread_create(&vma, NULL, race_vma, &r));
	sleep(3);
	r.stop = 1;
	pthread_join(swapper, NULL);
	pthread_join(reader, NULL);
	pthread_join(vma, NULL);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, r.bad);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	for (i = 0; i < RACE_PAIRS; i++) {
		unsigned char a = self->p[i * PAGE];
		unsigned char b = self->p[(RACE_PAIRS + i) * PAGE];

		ASSERT_NE(a, b);
		ASSERT_TRUE(upage_page_is(self->p, i, a));
		ASSERT_TRUE(upage_page_is(self->p, RACE_PAIRS + i, b));
	}
}

/*
 * Races with the slot's own narrowing: traps set and lifted, eviction and
 * protection changes by another thread while populating edits run. A
 * trapped, evicted or PROT_NONE slot must never be readable without its
 * fault: the reader's access to a PROT_NONE slot must SIGSEGV.
 */
struct narrow {
	int fd;
	volatile int stop;
	volatile int bad;
};

static void *narrow_editor(void *arg)
{
	struct narrow *n = arg;
	struct upage_edit_op ops[2] = {
		{ .op = UPAGE_OP_SWAP, .dst = 0, .src = 1, .n = 1 },
		{ .op = UPAGE_OP_SWAP, .dst = 2, .src = 3, .n = 1 },
	};

	while (!n->stop)
		if (upage_edit_flags(n->fd, ops, 2, UPAGE_EDIT_POPULATE, NULL))
			n->bad = 1;
	return NULL;
}

TEST_F(pop, narrowing_by_another_thread_is_never_bypassed)
{
	struct narrow n = { .fd = self->fd };
	pthread_t editor;
	uint64_t done;
	int round;

	fill_tags(self->p, 4);
	ASSERT_EQ(0, pthread_create(&editor, NULL, narrow_editor, &n));
	for (round = 0; round < 200; round++) {
		ASSERT_EQ(0, upage_protect(self->fd, 0, 4, UPAGE_PROT_NONE));
		upage_access_segv(self->p, 0);
		upage_access_segv(self->p + 3 * PAGE, 0);
		ASSERT_EQ(0, upage_protect(self->fd, 0, 4, UPAGE_PROT_RW));
		/* A read trap: no populate may map past it. */
		ASSERT_EQ(0, upage_trap(self->fd, 0, 4, UPAGE_TRAP_READ));
		ASSERT_EQ(0, present(self->p));
		ASSERT_EQ(0, present(self->p + 2 * PAGE));
		ASSERT_EQ(0, upage_trap(self->fd, 0, 4, 0));
		ASSERT_EQ(0, upage_evict(self->fd, 0, 4, &done));
		ASSERT_EQ(0, upage_prefetch(self->fd, 0, 4, &done));
	}
	n.stop = 1;
	pthread_join(editor, NULL);
	ASSERT_EQ(0, n.bad);
	ASSERT_NE(self->p[0], self->p[PAGE]);
	ASSERT_NE(self->p[2 * PAGE], self->p[3 * PAGE]);
}

/*
 * UPAGE_RESOLVE_POPULATE: a resolve with COPY and LIFT maps the page into
 * the caller's process before the waiting thread (of the same process)
 * is let go, so its retried access finds the page mapped: no further
 * fault. Without the flag the retry faults once more (the baseline).
 */
struct waiter {
	unsigned char *addr;
	unsigned char seen;
};

static void *trap_reader(void *arg)
{
	struct waiter *w = arg;

	w->seen = *(volatile unsigned char *)w->addr;
	return NULL;
}

static void resolve_once(struct __test_metadata *_metadata, int fd,
			 unsigned char *p, uint32_t flags, uint64_t *nr_faults,
			 uint64_t *nr_populated)
{
	struct upage_trap_event ev;
	struct waiter w = { .addr = p + 20 * PAGE };
	unsigned char *src;
	uint64_t woken = 0, before, mapped;
	pthread_t t;

	src = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, src);
	memset(src, 'c', PAGE);
	ASSERT_EQ(0, upage_discard(fd, 20, 1));
	ASSERT_EQ(0, upage_trap(fd, 20, 1, UPAGE_TRAP_READ));
	ASSERT_EQ(0, pthread_create(&t, NULL, trap_reader, &w));
	ASSERT_EQ(sizeof(ev), read(fd, &ev, sizeof(ev)));
	ASSERT_EQ(20, ev.slot);
	before = faults(fd);
	mapped = populated(fd);
	ASSERT_EQ(0, upage_resolve(fd, 20, 1, UPAGE_RESOLVE_COPY,
				   UPAGE_RESOLVE_LIFT | flags, src, &woken));
	ASSERT_EQ(1, woken);
	if (flags)
		ASSERT_EQ(1, present(p + 20 * PAGE));
	ASSERT_EQ(0, pthread_join(t, NULL));
	ASSERT_EQ('c', w.seen);
	*nr_faults = faults(fd) - before;
	*nr_populated = populated(fd) - mapped;
	munmap(src, PAGE);
}

TEST_F(pop, resolve_with_populate_spares_the_waiter_its_retry_fault)
{
	uint64_t faults = 0, mapped = 0;

	/* Without: the waiter's retried access is the one fault. */
	resolve_once(_metadata, self->fd, self->p, 0, &faults, &mapped);
	ASSERT_EQ(1, faults);
	ASSERT_EQ(0, mapped);
	/* With: the one fault is the populate's, in the call; none after. */
	resolve_once(_metadata, self->fd, self->p, UPAGE_RESOLVE_POPULATE,
		     &faults, &mapped);
	ASSERT_EQ(1, faults);
	ASSERT_EQ(1, mapped);
	ASSERT_EQ(1, present(self->p + 20 * PAGE));
}

/*
 * A resolve with populate maps the page into the mappings of a waiter in
 * another process too. The handler has no mapping of its own here, and
 * the child has no PTE for the page before the resolve (its pagemap), so
 * out_populated counts only what the resolve mapped for the child.
 */

/*
 * A child that reads slot 20 of @p (trapped) and sends what it saw. It
 * waits for this process to answer, so it dies with it.
 */
static pid_t trapped_reader_child(unsigned char *p, int out)
{
	pid_t pid = upage_fork_child();

	if (pid == 0) {
		unsigned char c = *(volatile unsigned char *)(p + 20 * PAGE);

		_exit(write(out, &c, 1) == 1 ? 0 : 1);
	}
	return pid;
}

static unsigned char *page_of(unsigned char c)
{
	unsigned char *src = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (src != MAP_FAILED)
		memset(src, c, PAGE);
	return src == MAP_FAILED ? NULL : src;
}

TEST_F(pop, resolve_with_populate_maps_the_waiting_process_too)
{
	struct upage_trap_event ev;
	uint64_t woken = 0, mapped;
	unsigned char *src = page_of('r');
	int pipefd[2], status;
	unsigned char seen = 0;
	pid_t pid;

	ASSERT_NE(NULL, src);
	ASSERT_EQ(0, pipe(pipefd));
	ASSERT_EQ(0, upage_discard(self->fd, 20, 1));
	ASSERT_EQ(0, upage_trap(self->fd, 20, 1, UPAGE_TRAP_READ));
	pid = trapped_reader_child(self->p, pipefd[1]);
	ASSERT_LE(0, pid);
	ASSERT_EQ(sizeof(ev), read(self->fd, &ev, sizeof(ev)));
	ASSERT_EQ(20, ev.slot);
	/* The handler's own mapping goes: only the child's remains. */
	ASSERT_EQ(0, munmap(self->p, SLOTS * PAGE));
	self->p = NULL;
	ASSERT_EQ(0, present_in(pid, (void *)(uintptr_t)ev.address));
	mapped = populated(self->fd);
	ASSERT_EQ(0, upage_resolve(self->fd, 20, 1, UPAGE_RESOLVE_COPY,
				   UPAGE_RESOLVE_LIFT | UPAGE_RESOLVE_POPULATE,
				   src, &woken));
	ASSERT_EQ(1, woken);
	ASSERT_EQ(1, populated(self->fd) - mapped);
	ASSERT_EQ(1, read(pipefd[0], &seen, 1));
	ASSERT_EQ('r', seen);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(pipefd[0]);
	close(pipefd[1]);
	munmap(src, PAGE);
}

/*
 * Attacks on the populate into a waiter's process: the waiter's process
 * holds its mmap lock for writing in a loop (the resolve must not wait
 * for it), is killed before or during the resolve (its mm dies under the
 * reference), or has more waiting processes than one resolve maps for.
 * Each resolve answers every waiter, and every child sees the page.
 */
struct mmap_churn {
	volatile int stop;
};

static void *churn_mmap(void *arg)
{
	struct mmap_churn *c = arg;

	while (!c->stop) {
		void *q = mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (q != MAP_FAILED)
			munmap(q, 16 * PAGE);
	}
	return NULL;
}

#define WAITING_CHILDREN 10

TEST_F_TIMEOUT(pop, resolve_populate_survives_busy_dying_and_many_waiters, 300)
{
	unsigned char *src = page_of('m');
	int round, i, pipefd[2], status;
	uint64_t woken;

	ASSERT_NE(NULL, src);
	ASSERT_EQ(0, pipe(pipefd));
	for (round = 0; round < 30; round++) {
		struct upage_trap_event ev;
		pid_t pid[WAITING_CHILDREN];
		int nr = round % 3 == 2 ? WAITING_CHILDREN : 1;
		bool kill_first = round % 3 == 1;

		ASSERT_EQ(0, upage_discard(self->fd, 20, 1));
		ASSERT_EQ(0, upage_trap(self->fd, 20, 1, UPAGE_TRAP_READ));
		for (i = 0; i < nr; i++) {
			/* It waits for this process's answer: dies with it. */
			pid[i] = upage_fork_child();
			ASSERT_LE(0, pid[i]);
			if (pid[i] == 0) {
				struct mmap_churn c = { 0 };
				pthread_t t;
				unsigned char v;

				if (pthread_create(&t, NULL, churn_mmap, &c))
					_exit(2);
				v = *(volatile unsigned char *)(self->p + 20 * PAGE);
				c.stop = 1;
				pthread_join(t, NULL);
				_exit(write(pipefd[1], &v, 1) == 1 ? 0 : 1);
			}
		}
		ASSERT_EQ(sizeof(ev), read(self->fd, &ev, sizeof(ev)));
		ASSERT_EQ(20, ev.slot);
		if (nr > 1)
			usleep(300 * 1000);
		if (kill_first)
			kill(pid[0], SIGKILL);
		woken = 0;
		ASSERT_EQ(0, upage_resolve(self->fd, 20, 1, UPAGE_RESOLVE_COPY,
					   UPAGE_RESOLVE_LIFT |
					   UPAGE_RESOLVE_POPULATE, src, &woken));
		ASSERT_GE((uint64_t)nr, woken);
		if (!kill_first)
			ASSERT_LE(1, woken);
		for (i = 0; i < nr; i++) {
			ASSERT_EQ(pid[i], waitpid(pid[i], &status, 0));
			if (kill_first && i == 0)
				continue;
			ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		}
		for (i = kill_first ? 1 : 0; i < nr; i++) {
			unsigned char seen = 0;

			ASSERT_EQ(1, read(pipefd[0], &seen, 1));
			ASSERT_EQ('m', seen);
		}
	}
	close(pipefd[0]);
	close(pipefd[1]);
	munmap(src, PAGE);
}

/*
 * munmap() takes the VMA out of the mm's tree, downgrades the mmap lock
 * to read and only then zaps the range and unlinks the VMA from the
 * space's i_mmap: a populate of another thread in that window must not
 * map into the dying VMA, or the PTE outlives it (the address reads the
 * frame with no mapping there, and no edit can ever unmap it). Found by
 * review 6; before its fix this read succeeded in the first round. The
 * window sits mid-PMD beside another VMA, so the page table stays.
 */
#define RACE_SLOTS 4096
#define PMD_BYTES (2UL << 20)

struct unmapper {
	int fd;
	volatile int stop;
	volatile unsigned long calls;
};

static void *populator(void *arg)
{
	struct unmapper *r = arg;
	uint64_t done;

	while (!r->stop) {
		upage_prefetch_flags(r->fd, 0, 1, UPAGE_RES_POPULATE, &done);
		r->calls++;
	}
	return NULL;
}

TEST(populate_during_munmap_leaves_no_pte_behind)
{
	struct unmapper r = { 0 };
	unsigned char *resv, *base, *p;
	struct upage_api api = { 0 };
	struct upage_fault f;
	int round, stale = 0;
	pthread_t thr;
	uint64_t done;
	time_t end;

	upage_open_or_skip(r.fd);
	ASSERT_EQ(0, upage_api(r.fd, &api));
	if (!(api.out_features & UPAGE_FEATURE_POPULATE))
		SKIP(return, "the module has no UPAGE_FEATURE_POPULATE");
	upage_resize_ok(r.fd, RACE_SLOTS);
	/* The thread first: its stack must not land in the window. */
	ASSERT_EQ(0, pthread_create(&thr, NULL, populator, &r));
	resv = mmap(NULL, 64UL << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		    -1, 0);
	ASSERT_NE(MAP_FAILED, resv);
	base = (unsigned char *)(((uintptr_t)resv + PMD_BYTES - 1) &
				 ~(PMD_BYTES - 1)) + PMD_BYTES / 2;
	p = upage_map(r.fd, 0, RACE_SLOTS, MAP_SHARED);
	ASSERT_NE(NULL, p);
	memset(p, 'S', RACE_SLOTS * PAGE);
	munmap(p, RACE_SLOTS * PAGE);

	end = time(NULL) + 5;
	for (round = 0; time(NULL) < end && !stale; round++) {
		p = mmap(base, RACE_SLOTS * PAGE, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_FIXED, r.fd, 0);
		ASSERT_EQ(base, p);
		/* Every PTE present: the zap takes a while. */
		ASSERT_EQ(0, upage_prefetch_flags(r.fd, 0, RACE_SLOTS,
						  UPAGE_RES_POPULATE, &done));
		ASSERT_EQ(0, munmap(p, RACE_SLOTS * PAGE));
		if (_upage_access(base, 0, 0, &f) == 0) {
			stale = 1;
			TH_LOG("round %d: read %c after munmap", round, f.val);
		}
	}
	r.stop = 1;
	pthread_join(thr, NULL);
	if (stale) {
		/* An anonymous mapping over it zaps the stale PTE on munmap. */
		p = mmap(base, RACE_SLOTS * PAGE, PROT_READ,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		if (p != MAP_FAILED)
			munmap(p, RACE_SLOTS * PAGE);
	}
	munmap(resv, 64UL << 20);
	close(r.fd);
	ASSERT_EQ(0, stale);
}

TEST_HARNESS_MAIN
