// SPDX-License-Identifier: GPL-2.0
/*
 * Write tracking re-armed by cleaning the PTE dirty bits: a plain tracked
 * slot (resident, its frame its own, RW, no trap, not lazily freed, in a
 * space only ever mapped MAP_SHARED) re-written every round takes no fault
 * after its first round, and the report stays exact whatever happens to
 * the dirty bit meanwhile: a zap (munmap, MADV_DONTNEED, exit), mprotect,
 * a write by the kernel (read(2), process_vm_writev, O_DIRECT), eviction,
 * lazy free, an alias, a private mapping that stops the kernel's walk.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <time.h>

#include "upage_utils.h"

#define N 16			/* tracked slots: 0..N-1 */
#define SPACE (2 * N + 4)	/* slots, the rest for aliases */
#define ALL ((1ULL << N) - 1)

FIXTURE(bits) {
	int fd;
	volatile unsigned char *p;	/* slots 0..SPACE-1, shared */
};

FIXTURE_SETUP(bits)
{
	self->p = NULL;
	upage_open_or_skip(self->fd);
	upage_require_cmd(self->fd, UPAGE_CMD_DIRTY);
	upage_resize_ok(self->fd, SPACE);
	self->p = upage_map(self->fd, 0, SPACE, MAP_SHARED);
	ASSERT_NE(NULL, self->p);
}

FIXTURE_TEARDOWN(bits)
{
	if (self->p)
		munmap((void *)self->p, SPACE * PAGE);
	if (self->fd >= 0)
		close(self->fd);
}

static uint64_t bit(unsigned int i)
{
	return 1ULL << i;
}

/* The dirty bitmap of slots first..first+n-1 (n <= 64); asserts success. */
#define dirty_range(fd, first, n, flags)                                    \
	({                                                                  \
		uint64_t __w = 0xdeadbeef, __nr = 12345;                    \
		ASSERT_EQ(0, upage_dirty((fd), (first), (n), &__w, (flags), \
					 &__nr));                           \
		ASSERT_EQ((uint64_t)__builtin_popcountll(__w), __nr);       \
		__w;                                                        \
	})
#define dirty_word(fd, flags) dirty_range((fd), 0, N, (flags))

/* The space's out_faults (.fault calls). */
static uint64_t space_faults(struct __test_metadata *_metadata, int fd)
{
	struct upage_stats st;

	upage_stats_ok(fd, &st);
	return st.out_faults;
}

/* This thread's minor faults: .page_mkwrite-only faults count here too. */
static long thread_minflt(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_THREAD, &ru))
		return -1;
	return ru.ru_minflt;
}

/* Write @v to the word at offset @off of each page of slots 0..n-1 of @q. */
static void write_slots(volatile unsigned char *q, unsigned int n,
			size_t off, uint32_t v)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		*(volatile uint32_t *)(q + i * PAGE + off) = v + i;
}

/* Each slot 0..n-1 of @q has write_slots()'s @v at @off. */
static int slots_hold(volatile unsigned char *q, unsigned int n, size_t off,
		      uint32_t v)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (*(volatile uint32_t *)(q + i * PAGE + off) != v + i)
			return 0;
	return 1;
}

/*
 * Track slots 0..n-1 of @q (slots @first..) and bring them where a
 * re-write takes no fault: the first written round fills the holes, the
 * collect re-arms the now resident slots (still by unmapping them), the
 * second round faults once more, and its collect re-arms by cleaning.
 */
static void settle(struct __test_metadata *_metadata, int fd,
		   volatile unsigned char *q, uint64_t first, unsigned int n)
{
	int round;

	ASSERT_EQ(0, upage_track_start(fd, first, n));
	for (round = 0; round < 2; round++) {
		write_slots(q, n, 64, 0x1000 * (round + 1));
		ASSERT_EQ((n == 64 ? ~0ULL : (1ULL << n) - 1),
			  dirty_range(fd, first, n, UPAGE_DIRTY_CLEAR));
	}
}

/* Fill page @slot of @q with a pattern of @tag; check it with page_has(). */
static void page_put(volatile unsigned char *q, unsigned int slot,
		     uint32_t tag)
{
	volatile uint32_t *w = (volatile uint32_t *)(q + slot * PAGE);
	unsigned int k;

	for (k = 0; k < PAGE / 4; k++)
		w[k] = tag * 2654435761u + k;
}

static int page_has(volatile unsigned char *q, unsigned int slot,
		    uint32_t tag)
{
	volatile uint32_t *w = (volatile uint32_t *)(q + slot * PAGE);
	unsigned int k;

	for (k = 0; k < PAGE / 4; k++)
		if (w[k] != tag * 2654435761u + k)
			return 0;
	return 1;
}

/*
 * The point of cleaning dirty bits: a page re-written every round takes
 * no fault once it is armed that way, and every round still reports it.
 */
TEST_F(bits, rewritten_page_costs_no_fault_after_the_first_round)
{
	uint64_t f0, f1;
	long m0, m1;
	int round;

	ASSERT_EQ(0, upage_track_start(self->fd, 0, N));
	for (round = 1; round <= 8; round++) {
		f0 = space_faults(_metadata, self->fd);
		m0 = thread_minflt();
		write_slots(self->p, N, 8 * round, round);
		m1 = thread_minflt();
		f1 = space_faults(_metadata, self->fd);
		ASSERT_EQ(ALL, dirty_word(self->fd, UPAGE_DIRTY_CLEAR)) {
			TH_LOG("round %d", round);
		}
		if (round < 3)
			continue;
		EXPECT_EQ(0, f1 - f0) {
			TH_LOG("round %d: %llu faults for %d re-written pages",
			       round, (unsigned long long)(f1 - f0), N);
		}
		EXPECT_EQ(0, m1 - m0) {
			TH_LOG("round %d: %ld minor faults", round, m1 - m0);
		}
	}
	for (round = 1; round <= 8; round++)
		ASSERT_TRUE(slots_hold(self->p, N, 8 * round, round));
	{
		struct upage_stats st;

		upage_stats_ok(self->fd, &st);
		/* Not asserted: whether writes seen by dirty bits count. */
		TH_LOG("out_tracked_writes %llu after 8 rounds of %d",
		       (unsigned long long)st.out_tracked_writes, N);
	}
	/* Quiet: nothing more. */
	ASSERT_EQ(0, dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
}

/*
 * Resident pages whose tracking starts: the start arms them by cleaning
 * from the next round on, so only the first round of writes faults.
 */
TEST_F(bits, track_start_of_resident_pages_costs_one_round_of_faults)
{
	uint64_t f0, f1;
	int round;

	write_slots(self->p, N, 0, 1);
	ASSERT_EQ(0, upage_track_start(self->fd, 0, N));
	for (round = 1; round <= 4; round++) {
		f0 = space_faults(_metadata, self->fd);
		write_slots(self->p, N, 8 * round, round);
		f1 = space_faults(_metadata, self->fd);
		ASSERT_EQ(ALL, dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
		if (round == 1) {
			EXPECT_LE(N, f1 - f0);
		} else {
			EXPECT_EQ(0, f1 - f0) {
				TH_LOG("round %d: %llu faults", round,
				       (unsigned long long)(f1 - f0));
			}
		}
	}
}

/*
 * While the tracked slot has an alias, its writes fault again each round
 * (the alias must be armed too); once the alias is gone, the second
 * round after takes none.
 */
TEST_F(bits, alias_falls_back_to_faults_and_recovers_once_gone)
{
	unsigned int a = N + 1;
	uint64_t f0, f1;
	int round;

	settle(_metadata, self->fd, self->p, 0, N);
	upage_alias_ok(self->fd, a, 4, 1);
	ASSERT_EQ(0, dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	self->p[4 * PAGE] = 1;
	ASSERT_EQ(bit(4), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	for (round = 0; round < 3; round++) {
		f0 = space_faults(_metadata, self->fd);
		self->p[4 * PAGE + 1 + round] = 2;
		f1 = space_faults(_metadata, self->fd);
		ASSERT_EQ(bit(4), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
		EXPECT_LE(1, f1 - f0);
	}
	ASSERT_EQ(0, upage_discard(self->fd, a, 1));
	for (round = 0; round < 4; round++) {
		f0 = space_faults(_metadata, self->fd);
		self->p[4 * PAGE + 8 + round] = 3;
		f1 = space_faults(_metadata, self->fd);
		ASSERT_EQ(bit(4), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
		if (round < 2)
			continue;
		EXPECT_EQ(0, f1 - f0) {
			TH_LOG("round %d after the alias went: %llu faults",
			       round, (unsigned long long)(f1 - f0));
		}
	}
	ASSERT_EQ(2, self->p[4 * PAGE + 3]);
}

/* Reads between the rounds change nothing: no write, no report. */
TEST_F(bits, reads_of_cleaned_pages_are_not_writes)
{
	int i;

	settle(_metadata, self->fd, self->p, 0, N);
	for (i = 0; i < N; i++)
		(void)self->p[i * PAGE + 100];
	ASSERT_EQ(0, dirty_word(self->fd, 0));
	self->p[7 * PAGE + 5] = 1;
	ASSERT_EQ(bit(7), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	ASSERT_EQ(0, dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
}

/*
 * UPAGE_QUERY's UPAGE_SLOT_DIRTY ("written since armed") agrees with
 * UPAGE_DIRTY also for a write that took no fault.
 */
TEST_F(bits, query_state_sees_a_write_that_took_no_fault)
{
	const uint32_t td = UPAGE_SLOT_TRACKED | UPAGE_SLOT_DIRTY;

	settle(_metadata, self->fd, self->p, 0, N);
	ASSERT_EQ(UPAGE_SLOT_TRACKED, upage_slot(self->fd, 6).state & td);
	self->p[6 * PAGE + 3] = 1;
	ASSERT_EQ(td, upage_slot(self->fd, 6).state & td);
	ASSERT_EQ(UPAGE_SLOT_TRACKED, upage_slot(self->fd, 7).state & td);
	ASSERT_EQ(bit(6), dirty_word(self->fd, 0));
	ASSERT_EQ(td, upage_slot(self->fd, 6).state & td);
	ASSERT_EQ(bit(6), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	ASSERT_EQ(UPAGE_SLOT_TRACKED, upage_slot(self->fd, 6).state & td);
}

/* The upage_dirty count of /proc/self/fdinfo/@fd; -1 if not found. */
static long fdinfo_dirty(int fd)
{
	char path[64], line[256];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "upage_dirty: %ld", &v) == 1)
			break;
	fclose(f);
	return v;
}

/*
 * The fdinfo view counts the dirty slots UPAGE_QUERY would report, a
 * write that took no fault included (read before any query or collect
 * could move it off the dirty bit).
 */
TEST_F(bits, fdinfo_dirty_count_sees_a_write_that_took_no_fault)
{
	settle(_metadata, self->fd, self->p, 0, N);
	ASSERT_EQ(0, fdinfo_dirty(self->fd));
	self->p[6 * PAGE + 3] = 1;
	self->p[9 * PAGE + 3] = 1;
	ASSERT_EQ(2, fdinfo_dirty(self->fd));
	ASSERT_EQ(bit(6) | bit(9), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	ASSERT_EQ(0, fdinfo_dirty(self->fd));
}

/*
 * A MAP_PRIVATE mapping made after the slots were armed by cleaning: the
 * write made before it is reported, later rounds fault again (the
 * fallback) and stay exact, and writes to the private copy are not the
 * space's.
 */
TEST_F(bits, private_mapping_after_arm_falls_back_exactly)
{
	volatile unsigned char *q;
	uint64_t f0, f1;
	int round;

	settle(_metadata, self->fd, self->p, 0, N);
	write_slots(self->p, N, 200, 0x500);
	q = upage_map(self->fd, 0, SPACE, MAP_PRIVATE);
	ASSERT_NE(NULL, q);
	ASSERT_TRUE(slots_hold(q, N, 200, 0x500));
	ASSERT_EQ(ALL, dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	for (round = 0; round < 3; round++) {
		f0 = space_faults(_metadata, self->fd);
		write_slots(self->p, N, 300 + 4 * round, round);
		f1 = space_faults(_metadata, self->fd);
		ASSERT_EQ(ALL, dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
		EXPECT_LE(N, f1 - f0) {
			TH_LOG("round %d: %llu faults, want one a page", round,
			       (unsigned long long)(f1 - f0));
		}
	}
	/* The process's own copy: not a write to the space. */
	q[3 * PAGE + 9] = 1;
	self->p[5 * PAGE + 9] = 1;
	ASSERT_EQ(bit(5), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	munmap((void *)q, SPACE * PAGE);
	/* Gone, but the space stays exact. */
	self->p[6 * PAGE + 9] = 1;
	ASSERT_EQ(bit(6), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	write_slots(self->p, N, 400, 7);
	ASSERT_EQ(ALL, dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	ASSERT_EQ(0, dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
}

/*
 * A private mapping that sorts before the shared one in the space's
 * mapping tree (a lower offset) would stop the kernel's dirty-bit walk
 * before it reaches the shared mapping: the writes made through it,
 * before and after, are still all reported.
 */
TEST_F(bits, private_mapping_sorting_first_hides_no_write)
{
	volatile unsigned char *q, *priv;
	int round;

	munmap((void *)self->p, SPACE * PAGE);
	self->p = NULL;
	/* Slots 1..N, through a mapping that starts at slot 1. */
	q = upage_map(self->fd, 1, N, MAP_SHARED);
	ASSERT_NE(NULL, q);
	settle(_metadata, self->fd, q, 1, N);
	write_slots(q, N, 200, 0x600);
	priv = upage_map(self->fd, 0, N + 1, MAP_PRIVATE);
	ASSERT_NE(NULL, priv);
	ASSERT_EQ(ALL, dirty_range(self->fd, 1, N, UPAGE_DIRTY_CLEAR));
	for (round = 0; round < 3; round++) {
		write_slots(q, N, 300 + 4 * round, round);
		ASSERT_EQ(ALL, dirty_range(self->fd, 1, N, UPAGE_DIRTY_CLEAR));
	}
	q[4 * PAGE] = 1;
	ASSERT_EQ(bit(4), dirty_range(self->fd, 1, N, UPAGE_DIRTY_CLEAR));
	ASSERT_EQ(0, dirty_range(self->fd, 1, N, UPAGE_DIRTY_CLEAR));
	ASSERT_TRUE(slots_hold(priv + PAGE, N, 200, 0x600));
	munmap((void *)priv, (N + 1) * PAGE);
	munmap((void *)q, N * PAGE);
}

/*
 * A private mapping made before tracking starts, sorting first: the
 * slots never leave the unmapping mode, and every round is exact, also
 * after the private mapping is gone.
 */
TEST_F(bits, private_mapping_before_tracking_keeps_reports_exact)
{
	volatile unsigned char *q, *priv;
	uint64_t f0, f1;
	int round;

	munmap((void *)self->p, SPACE * PAGE);
	self->p = NULL;
	priv = upage_map(self->fd, 0, SPACE, MAP_PRIVATE);
	ASSERT_NE(NULL, priv);
	q = upage_map(self->fd, 0, SPACE, MAP_SHARED);
	ASSERT_NE(NULL, q);
	ASSERT_EQ(0, upage_track_start(self->fd, 0, N));
	for (round = 0; round < 5; round++) {
		f0 = space_faults(_metadata, self->fd);
		write_slots(q, N, 8 * round, round);
		f1 = space_faults(_metadata, self->fd);
		ASSERT_EQ(ALL, dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
		EXPECT_LE(N, f1 - f0) {
			TH_LOG("round %d: %llu faults", round,
			       (unsigned long long)(f1 - f0));
		}
	}
	munmap((void *)priv, SPACE * PAGE);
	for (round = 0; round < 3; round++) {
		write_slots(q, N, 100 + 8 * round, round);
		ASSERT_EQ(ALL, dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	}
	ASSERT_EQ(0, dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	munmap((void *)q, SPACE * PAGE);
}

/*
 * A write whose only trace is a dirty PTE, then the PTE goes (munmap of
 * the only mapping): still reported. A slot nobody wrote is not.
 */
TEST_F(bits, write_then_munmap_is_reported)
{
	settle(_metadata, self->fd, self->p, 0, N);
	page_put(self->p, 3, 33);
	munmap((void *)self->p, SPACE * PAGE);
	self->p = NULL;
	ASSERT_EQ(bit(3), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	ASSERT_EQ(0, dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	self->p = upage_map(self->fd, 0, SPACE, MAP_SHARED);
	ASSERT_NE(NULL, self->p);
	ASSERT_TRUE(page_has(self->p, 3, 33));
	/* Again, now that the slot was re-armed with no mapping at all. */
	page_put(self->p, 3, 34);
	ASSERT_EQ(bit(3), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	page_put(self->p, 3, 35);
	munmap((void *)self->p, SPACE * PAGE);
	self->p = NULL;
	ASSERT_EQ(bit(3), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
}

/* mremap() moves a dirty PTE to another address: still reported. */
TEST_F(bits, write_then_mremap_is_reported)
{
	void *to, *hole;

	settle(_metadata, self->fd, self->p, 0, N);
	page_put(self->p, 4, 40);
	/* Same size: only MREMAP_FIXED makes it move. */
	hole = mmap(NULL, SPACE * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		    -1, 0);
	ASSERT_NE(MAP_FAILED, hole);
	to = mremap((void *)self->p, SPACE * PAGE, SPACE * PAGE,
		    MREMAP_MAYMOVE | MREMAP_FIXED, hole);
	ASSERT_EQ(hole, to);
	self->p = to;
	ASSERT_EQ(bit(4), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	page_put(self->p, 4, 41);
	ASSERT_EQ(bit(4), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	page_put(self->p, 4, 42);
	ASSERT_EQ(bit(4), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	ASSERT_TRUE(page_has(self->p, 4, 42));
	ASSERT_EQ(0, dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
}

/* The same through MADV_DONTNEED on the shared mapping. */
TEST_F(bits, write_then_madv_dontneed_is_reported)
{
	int round;

	settle(_metadata, self->fd, self->p, 0, N);
	for (round = 0; round < 3; round++) {
		page_put(self->p, 5, 50 + round);
		ASSERT_EQ(0, madvise((void *)self->p, SPACE * PAGE,
				     MADV_DONTNEED));
		ASSERT_EQ(bit(5), dirty_word(self->fd, UPAGE_DIRTY_CLEAR)) {
			TH_LOG("round %d", round);
		}
		ASSERT_TRUE(page_has(self->p, 5, 50 + round));
		/* And one more round that keeps the mapping. */
		page_put(self->p, 5, 60 + round);
		ASSERT_EQ(bit(5), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	}
	ASSERT_EQ(0, madvise((void *)self->p, SPACE * PAGE, MADV_DONTNEED));
	ASSERT_EQ(0, dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
}

/* A byte over a pipe: 0 or -1. */
static int pipe_put(int fd)
{
	char c = 1;

	return write(fd, &c, 1) == 1 ? 0 : -1;
}

static int pipe_get(int fd)
{
	char c;

	return read(fd, &c, 1) == 1 ? 0 : -1;
}

/*
 * The writer is a child that writes round after round, the last one just
 * before it exits (its PTEs go with its mm); the parent, which collects,
 * never touches the pages.
 */
TEST_F(bits, writes_of_an_exiting_child_are_reported)
{
	int go[2], done[2], status, round;
	pid_t pid;

	ASSERT_EQ(0, pipe(go));
	ASSERT_EQ(0, pipe(done));
	ASSERT_EQ(0, upage_track_start(self->fd, 0, N));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* Only the parent's end: its exit is EOF here. */
		close(go[1]);
		close(done[0]);
		for (round = 0; round < 6; round++) {
			if (pipe_get(go[0]))
				_exit(1);
			write_slots(self->p, N, 4 * round, round + 1);
			if (round < 5 && pipe_put(done[1]))
				_exit(1);
		}
		_exit(0);
	}
	close(go[0]);
	close(done[1]);
	for (round = 0; round < 5; round++) {
		ASSERT_EQ(0, pipe_put(go[1]));
		ASSERT_EQ(0, pipe_get(done[0]));
		ASSERT_EQ(ALL, dirty_word(self->fd, UPAGE_DIRTY_CLEAR)) {
			TH_LOG("round %d", round);
		}
	}
	ASSERT_EQ(0, pipe_put(go[1]));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, status);
	ASSERT_EQ(ALL, dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	ASSERT_EQ(0, dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	for (round = 0; round < 6; round++)
		ASSERT_TRUE(slots_hold(self->p, N, 4 * round, round + 1));
	close(go[1]);
	close(done[0]);
}

/*
 * mprotect(PROT_READ) and back keeps what the PTE knew: a write before is
 * reported, a write after is, and a page not written is not.
 */
TEST_F(bits, mprotect_round_trip_then_write_is_reported)
{
	void *a = (void *)self->p;
	int round;

	settle(_metadata, self->fd, self->p, 0, N);
	for (round = 0; round < 3; round++) {
		ASSERT_EQ(0, mprotect(a, SPACE * PAGE, PROT_READ));
		ASSERT_EQ(0, mprotect(a, SPACE * PAGE, PROT_READ | PROT_WRITE));
		self->p[2 * PAGE + round] = 1;
		ASSERT_EQ(bit(2), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
		/* Written, then protected before the collect. */
		self->p[4 * PAGE + round] = 1;
		ASSERT_EQ(0, mprotect(a, SPACE * PAGE, PROT_READ));
		ASSERT_EQ(bit(4), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
		ASSERT_EQ(0, mprotect(a, SPACE * PAGE, PROT_READ | PROT_WRITE));
		self->p[4 * PAGE + round] = 2;
		self->p[2 * PAGE + round] = 2;
		ASSERT_EQ(bit(2) | bit(4),
			  dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
		ASSERT_EQ(0, dirty_word(self->fd, 0));
		/* PROT_NONE keeps a present PTE (and its dirty bit) too. */
		self->p[5 * PAGE + round] = 1;
		ASSERT_EQ(0, mprotect(a, SPACE * PAGE, PROT_NONE));
		ASSERT_EQ(bit(5), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
		ASSERT_EQ(0, mprotect(a, SPACE * PAGE, PROT_READ | PROT_WRITE));
		self->p[5 * PAGE + round] = 2;
		ASSERT_EQ(bit(5), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	}
}

/* read(2) from a pipe into a tracked page: the kernel's write counts. */
TEST_F(bits, pipe_read_into_page_is_reported)
{
	char buf[512];
	int pfd[2], round;

	ASSERT_EQ(0, pipe(pfd));
	settle(_metadata, self->fd, self->p, 0, N);
	for (round = 0; round < 2; round++) {
		memset(buf, 0x70 + round, sizeof(buf));
		ASSERT_EQ(sizeof(buf), write(pfd[1], buf, sizeof(buf)));
		ASSERT_EQ(sizeof(buf), read(pfd[0], (void *)(self->p + 9 * PAGE + 256),
					    sizeof(buf)));
		ASSERT_EQ(bit(9), dirty_word(self->fd, UPAGE_DIRTY_CLEAR)) {
			TH_LOG("round %d", round);
		}
		ASSERT_EQ(0, memcmp((void *)(self->p + 9 * PAGE + 256), buf,
				    sizeof(buf)));
		ASSERT_EQ(0, dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	}
	close(pfd[0]);
	close(pfd[1]);
}

/*
 * process_vm_writev() from another process: get_user_pages writes the
 * page and dirties it, not the PTE.
 */
TEST_F(bits, process_vm_writev_into_page_is_reported)
{
	int round, status;
	pid_t pid;

	/* Yama's scope 1: let the child at us. EINVAL without Yama. */
	prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
	settle(_metadata, self->fd, self->p, 0, N);
	for (round = 0; round < 2; round++) {
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			uint64_t v = 0x1122334455667700ULL + round;
			struct iovec local = { &v, sizeof(v) };
			struct iovec remote = {
				(void *)(self->p + 11 * PAGE + 64), sizeof(v)
			};

			_exit(process_vm_writev(getppid(), &local, 1, &remote,
						1, 0) != sizeof(v));
		}
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		if (round == 0 && status)
			SKIP(return, "process_vm_writev into the parent refused");
		ASSERT_EQ(0, status);
		ASSERT_EQ(bit(11), dirty_word(self->fd, UPAGE_DIRTY_CLEAR)) {
			TH_LOG("round %d", round);
		}
		ASSERT_EQ(0x1122334455667700ULL + round,
			  *(volatile uint64_t *)(self->p + 11 * PAGE + 64));
		ASSERT_EQ(0, dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	}
}

/*
 * An O_DIRECT read into a tracked page (a loop device over a file in
 * /tmp: the guest's tmpfs has no direct I/O of its own that pins pages).
 */
TEST_F(bits, odirect_read_into_page_is_reported)
{
	char path[] = "/tmp/upage-bits-XXXXXX", dev[32];
	int backing, loop = -1, dio, round, ret;
	unsigned char blk[PAGE];

	backing = mkostemp(path, O_CLOEXEC);
	ASSERT_LE(0, backing);
	unlink(path);
	for (round = 0; round < 2; round++) {
		memset(blk, 0xd0 + round, sizeof(blk));
		ASSERT_EQ(PAGE, pwrite(backing, blk, PAGE, round * PAGE));
	}
	ret = upage_loop_attach(backing, dev, sizeof(dev), &loop);
	if (ret) {
		close(backing);
		SKIP(return, "no loop device for O_DIRECT: %s", strerror(-ret));
	}
	dio = open(dev, O_RDWR | O_DIRECT | O_CLOEXEC);
	ASSERT_LE(0, dio);
	settle(_metadata, self->fd, self->p, 0, N);
	for (round = 0; round < 2; round++) {
		ASSERT_EQ(PAGE, pread(dio, (void *)(self->p + 12 * PAGE), PAGE,
				      round * PAGE));
		ASSERT_EQ(bit(12), dirty_word(self->fd, UPAGE_DIRTY_CLEAR)) {
			TH_LOG("round %d", round);
		}
		ASSERT_TRUE(upage_page_is(self->p, 12, 0xd0 + round));
		ASSERT_EQ(0, dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	}
	close(dio);
	ioctl(loop, LOOP_CLR_FD);
	close(loop);
	close(backing);
}

/*
 * Evicting a page written since it was armed by cleaning: the write is
 * reported, and the page comes back with it (the eviction saw the page
 * dirty).
 */
TEST_F(bits, evicting_a_written_page_keeps_write_and_data)
{
	upage_require_cmd(self->fd, UPAGE_CMD_RESIDENCY);
	settle(_metadata, self->fd, self->p, 0, N);
	page_put(self->p, 6, 61);
	ASSERT_EQ(0, upage_evict(self->fd, 0, N, NULL));
	ASSERT_EQ(bit(6), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	ASSERT_TRUE(page_has(self->p, 6, 61));
	/* The others as settle() left them. */
	ASSERT_TRUE(slots_hold(self->p, 6, 64, 0x2000));
	ASSERT_EQ(0, dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
}

/*
 * Written, collected (the dirty bit cleaned), written again, evicted:
 * the page comes back with the second write; an eviction that trusted
 * the cleaned PTE would write the first, or nothing.
 */
TEST_F(bits, eviction_after_clean_keeps_the_second_write)
{
	upage_require_cmd(self->fd, UPAGE_CMD_RESIDENCY);
	settle(_metadata, self->fd, self->p, 0, N);
	page_put(self->p, 7, 71);
	ASSERT_EQ(bit(7), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	page_put(self->p, 7, 72);
	ASSERT_EQ(0, upage_evict(self->fd, 0, N, NULL));
	ASSERT_TRUE(page_has(self->p, 7, 72));
	ASSERT_EQ(bit(7), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
}

/*
 * The same with a frame the store already has a copy of (paged in
 * again): written, collected, evicted, the store's old copy must not
 * come back; then once more with the last write seen only by a PTE
 * that a collect cleaned.
 */
TEST_F(bits, eviction_of_a_stored_frame_after_clean_keeps_the_last_write)
{
	upage_require_cmd(self->fd, UPAGE_CMD_RESIDENCY);
	page_put(self->p, 8, 80);
	ASSERT_EQ(0, upage_evict(self->fd, 8, 1, NULL));
	ASSERT_TRUE(page_has(self->p, 8, 80));
	settle(_metadata, self->fd, self->p, 0, N);
	/* Paged in from the store, re-armed by cleaning, written. */
	page_put(self->p, 8, 81);
	ASSERT_EQ(bit(8), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	ASSERT_EQ(0, upage_evict(self->fd, 8, 1, NULL));
	ASSERT_TRUE(page_has(self->p, 8, 81));
	/* Stored again; two rounds so that the last write takes no fault. */
	page_put(self->p, 8, 82);
	ASSERT_EQ(bit(8), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	page_put(self->p, 8, 83);
	ASSERT_EQ(bit(8), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	page_put(self->p, 8, 84);
	ASSERT_EQ(bit(8), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	ASSERT_EQ(0, upage_evict(self->fd, 8, 1, NULL));
	ASSERT_TRUE(page_has(self->p, 8, 84));
	ASSERT_EQ(0, dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
}

/* Collected with no write, evicted, paged in: intact and not reported. */
TEST_F(bits, eviction_of_a_clean_page_keeps_its_data)
{
	upage_require_cmd(self->fd, UPAGE_CMD_RESIDENCY);
	page_put(self->p, 9, 90);
	settle(_metadata, self->fd, self->p, 0, N);
	ASSERT_EQ(0, dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	ASSERT_EQ(0, upage_evict(self->fd, 0, N, NULL));
	ASSERT_EQ(0, dirty_word(self->fd, 0));
	ASSERT_TRUE(slots_hold(self->p, N, 64, 0x2000));
	/* page_put() wrote the whole page; settle() then the word at 64. */
	ASSERT_EQ(0x2000 + 9, *(volatile uint32_t *)(self->p + 9 * PAGE + 64));
	ASSERT_EQ(90 * 2654435761u + 1,
		  *(volatile uint32_t *)(self->p + 9 * PAGE + 4));
	ASSERT_EQ(0, dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
}

/*
 * An alias made after the arm: writes through it, round after round, are
 * reported for the tracked slot, and so are writes through the slot.
 */
TEST_F(bits, writes_through_a_later_alias_are_reported)
{
	unsigned int a = N + 2;
	int round;

	settle(_metadata, self->fd, self->p, 0, N);
	upage_alias_ok(self->fd, a, 10, 1);
	/* Through the slot's own PTE, armed by cleaning before the alias. */
	self->p[10 * PAGE + 1] = 1;
	ASSERT_EQ(bit(10), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	for (round = 0; round < 4; round++) {
		self->p[a * PAGE + 2 + round] = 2 + round;
		ASSERT_EQ(bit(10), dirty_word(self->fd, UPAGE_DIRTY_CLEAR)) {
			TH_LOG("round %d", round);
		}
		ASSERT_EQ(2 + round, self->p[10 * PAGE + 2 + round]);
		self->p[10 * PAGE + 8 + round] = 3;
		ASSERT_EQ(bit(10), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
		ASSERT_EQ(3, self->p[a * PAGE + 8 + round]);
	}
	ASSERT_EQ(0, dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
}

/*
 * A copy-on-write alias made after the arm: writes through the tracked
 * slot are its own and reported; a write through the alias breaks it
 * away and is not the slot's.
 */
TEST_F(bits, writes_beside_a_later_cow_alias_are_reported)
{
	unsigned int a = N + 3;
	int round;

	settle(_metadata, self->fd, self->p, 0, N);
	upage_alias_cow_ok(self->fd, a, 11, 1);
	for (round = 0; round < 3; round++) {
		self->p[11 * PAGE + round] = 5;
		ASSERT_EQ(bit(11), dirty_word(self->fd, UPAGE_DIRTY_CLEAR)) {
			TH_LOG("round %d", round);
		}
	}
	self->p[a * PAGE] = 9;
	ASSERT_EQ(0, dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	for (round = 0; round < 3; round++) {
		self->p[11 * PAGE + round] = 6;
		ASSERT_EQ(bit(11), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	}
	ASSERT_EQ(9, self->p[a * PAGE]);
	ASSERT_EQ(6, self->p[11 * PAGE]);
}

/*
 * Narrowing the protection of a slot armed by cleaning and widening it
 * again: a write before the edit and one after it are each reported.
 */
TEST_F(bits, protect_edit_round_trip_then_write_is_reported)
{
	settle(_metadata, self->fd, self->p, 0, N);
	self->p[1 * PAGE] = 1;
	upage_protect_ok(self->fd, 1, 1, UPAGE_PROT_READ);
	ASSERT_EQ(bit(1), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	ASSERT_EQ(SIGSEGV, upage_touch_signal((volatile char *)self->p + PAGE, 1));
	upage_protect_ok(self->fd, 1, 1, UPAGE_PROT_RW);
	ASSERT_EQ(0, dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	self->p[1 * PAGE] = 2;
	ASSERT_EQ(bit(1), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	self->p[1 * PAGE] = 3;
	ASSERT_EQ(bit(1), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	ASSERT_EQ(0, dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
}

/*
 * Stopping and starting again starts clean, even though the write before
 * the stop may still sit in a dirty PTE; a write after the start is
 * reported.
 */
TEST_F(bits, restart_forgets_earlier_writes_and_sees_later_ones)
{
	settle(_metadata, self->fd, self->p, 0, N);
	self->p[2 * PAGE] = 1;
	self->p[3 * PAGE] = 1;
	ASSERT_EQ(0, upage_track_stop(self->fd, 0, N));
	ASSERT_EQ(0, upage_track_start(self->fd, 0, N));
	ASSERT_EQ(0, dirty_word(self->fd, 0));
	self->p[3 * PAGE] = 2;
	ASSERT_EQ(bit(3), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	/* Started again over slots armed by cleaning, written before. */
	self->p[3 * PAGE] = 3;
	ASSERT_EQ(0, upage_track_start(self->fd, 0, N));
	ASSERT_EQ(0, dirty_word(self->fd, 0));
	self->p[3 * PAGE] = 4;
	ASSERT_EQ(bit(3), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	ASSERT_EQ(0, dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
}

/*
 * Collecting one range leaves the writes of the slots around it to
 * their own collect, also when they share a page table and a mapping.
 */
TEST_F(bits, collecting_one_range_keeps_the_writes_of_another)
{
	int round;

	settle(_metadata, self->fd, self->p, 0, N);
	for (round = 0; round < 3; round++) {
		self->p[3 * PAGE + round] = 1;
		self->p[8 * PAGE + round] = 1;
		self->p[12 * PAGE + round] = 1;
		ASSERT_EQ(bit(0), dirty_range(self->fd, 8, 1, UPAGE_DIRTY_CLEAR));
		ASSERT_EQ(bit(3), dirty_range(self->fd, 0, 8, UPAGE_DIRTY_CLEAR));
		ASSERT_EQ(bit(12), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
		ASSERT_EQ(0, dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	}
}

/*
 * Lazy free of a written page armed by cleaning, then a write: reported,
 * and the page keeps the new contents (through an eviction too).
 */
TEST_F(bits, lazy_free_then_write_is_reported_and_kept)
{
	upage_require_cmd(self->fd, UPAGE_CMD_RESIDENCY);
	settle(_metadata, self->fd, self->p, 0, N);
	page_put(self->p, 13, 130);
	ASSERT_EQ(0, upage_lazy_free(self->fd, 13, 1, NULL));
	page_put(self->p, 13, 131);
	ASSERT_EQ(bit(13), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	ASSERT_EQ(0, upage_slot(self->fd, 13).state &
		     (UPAGE_SLOT_LAZY | UPAGE_SLOT_RECLAIMED));
	ASSERT_EQ(0, upage_evict(self->fd, 13, 1, NULL));
	ASSERT_TRUE(page_has(self->p, 13, 131));
	/* Again once re-armed, the last write seen only by its PTE. */
	page_put(self->p, 13, 132);
	ASSERT_EQ(bit(13), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	page_put(self->p, 13, 133);
	ASSERT_EQ(0, upage_lazy_free(self->fd, 13, 1, NULL));
	ASSERT_EQ(bit(13), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	page_put(self->p, 13, 134);
	ASSERT_EQ(bit(13), dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
	ASSERT_EQ(0, upage_evict(self->fd, 13, 1, NULL));
	ASSERT_TRUE(page_has(self->p, 13, 134));
	ASSERT_EQ(0, dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
}

/*
 * A query without CLEAR consumes nothing: the clearing one after it
 * reports the write again, and only then is the slot clean.
 */
TEST_F(bits, query_without_clear_consumes_no_write)
{
	int round;

	settle(_metadata, self->fd, self->p, 0, N);
	for (round = 0; round < 3; round++) {
		self->p[14 * PAGE + round] = 1;
		ASSERT_EQ(bit(14), dirty_word(self->fd, 0));
		ASSERT_EQ(bit(14), dirty_word(self->fd, 0));
		self->p[15 * PAGE + round] = 1;
		ASSERT_EQ(bit(14) | bit(15), dirty_word(self->fd, 0));
		ASSERT_EQ(bit(14) | bit(15),
			  dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
		ASSERT_EQ(0, dirty_word(self->fd, UPAGE_DIRTY_CLEAR));
		ASSERT_EQ(0, dirty_word(self->fd, 0));
	}
}

/*
 * Collect-and-clear racing writers, as track.collect_and_clear_loses_no_write,
 * with one more thing going on: the collector evicts random slots between
 * rounds, or another process maps and unmaps the space while it writes.
 * The shadow kept by copying what each round reports must end equal to
 * the space; writers write the even slots only, so an odd slot reported
 * is a phantom.
 */
#define RACE_SLOTS 32
#define RACE_ROUNDS 1000	/* at least, and until */
#define RACE_BUSY 150		/* rounds that reported writes */
#define RACE_MIN_BUSY 30	/* fewer: the race did not happen */
#define RACE_SECONDS 10		/* at most, once RACE_MIN_BUSY is reached */
#define RACE_MAX_SECONDS 60	/* at most */

struct race {
	int fd;
	volatile unsigned char *p;
	atomic_int stop;
	unsigned int seed;
};

static void race_write_one(volatile unsigned char *p, unsigned int *seed,
			   uint32_t v)
{
	unsigned int slot = (rand_r(seed) % (RACE_SLOTS / 2)) * 2;

	*(volatile uint32_t *)(p + slot * PAGE +
			       (rand_r(seed) % (PAGE / 4)) * 4) = v;
}

static void *race_writer(void *arg)
{
	struct race *r = arg;
	unsigned int seed = __atomic_add_fetch(&r->seed, 7919, __ATOMIC_RELAXED);
	uint32_t v = 0;

	while (!atomic_load(&r->stop))
		race_write_one(r->p, &seed, ++v);
	return NULL;
}

/* A child's loop: map the space, write a few times, unmap, again. */
static void race_remapper(struct race *r)
{
	unsigned int seed = 4243;
	uint32_t v = 0;
	int k;

	for (;;) {
		volatile unsigned char *q = upage_map(r->fd, 0, RACE_SLOTS,
						      MAP_SHARED);

		if (!q)
			_exit(1);
		for (k = 0; k < 8; k++)
			race_write_one(q, &seed, ++v);
		munmap((void *)q, RACE_SLOTS * PAGE);
	}
}

static void race_collect(struct __test_metadata *_metadata, int fd,
			 volatile unsigned char *p, unsigned char *shadow,
			 uint64_t *nr, int *phantom)
{
	uint64_t w;
	int s;

	ASSERT_EQ(0, upage_dirty(fd, 0, RACE_SLOTS, &w, UPAGE_DIRTY_CLEAR, nr));
	for (s = 0; s < RACE_SLOTS; s++) {
		if (!(w & bit(s)))
			continue;
		*phantom += s & 1;
		memcpy(shadow + s * PAGE, (void *)(p + s * PAGE), PAGE);
	}
}

static void race_run(struct __test_metadata *_metadata, int fd,
		     volatile unsigned char *p, bool evict, bool remap)
{
	static unsigned char shadow[RACE_SLOTS * PAGE];
	struct race r = { .fd = fd, .p = p, .seed = 1 };
	unsigned int seed = 99;
	pthread_t th[2];
	int i, status, rounds, busy = 0, phantom = 0;
	time_t start = time(NULL);
	uint64_t nr, reported = 0;
	pid_t pid;

	/* Every slot resident and armed by cleaning before the race. */
	settle(_metadata, fd, p, 0, RACE_SLOTS);
	memcpy(shadow, (void *)p, sizeof(shadow));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* It runs until killed: with the test, if that ends early. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		r.seed = 4242;
		if (remap)
			race_remapper(&r);
		race_writer(&r);
		_exit(0);
	}
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, pthread_create(&th[i], NULL, race_writer, &r));
	/* Past RACE_SECONDS only until the race has happened (slow host). */
	for (i = 0; ((i < RACE_ROUNDS || busy < RACE_BUSY) &&
		     time(NULL) < start + RACE_SECONDS) ||
		    (busy < RACE_MIN_BUSY && time(NULL) < start + RACE_MAX_SECONDS);
	     i++) {
		race_collect(_metadata, fd, p, shadow, &nr, &phantom);
		reported += nr;
		busy += nr > 0;
		if (evict)
			ASSERT_EQ(0, upage_evict(fd, rand_r(&seed) % RACE_SLOTS,
						 1 + rand_r(&seed) % 2, NULL));
	}
	rounds = i;
	atomic_store(&r.stop, 1);
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	kill(pid, SIGKILL);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	/* The writes after the last round, then quiet. */
	race_collect(_metadata, fd, p, shadow, &nr, &phantom);
	race_collect(_metadata, fd, p, shadow, &nr, &phantom);
	ASSERT_EQ(0, nr);
	ASSERT_EQ(0, phantom);
	ASSERT_LE(RACE_MIN_BUSY, busy);
	for (i = 0; i < RACE_SLOTS; i++) {
		ASSERT_EQ(0, memcmp(shadow + i * PAGE, (void *)(p + i * PAGE),
				    PAGE)) {
			TH_LOG("slot %d: a write was lost", i);
		}
	}
	TH_LOG("%llu slots reported over %d rounds, %d of them busy, %lds",
	       (unsigned long long)reported, rounds, busy,
	       (long)(time(NULL) - start));
}

TEST_F_TIMEOUT(bits, collect_and_clear_with_evictions_loses_no_write, 90)
{
	upage_require_cmd(self->fd, UPAGE_CMD_RESIDENCY);
	race_run(_metadata, self->fd, self->p, true, false);
}

TEST_F_TIMEOUT(bits, collect_and_clear_with_remapping_writer_loses_no_write, 90)
{
	race_run(_metadata, self->fd, self->p, false, true);
}

/*
 * An alias made of a page re-armed by dirty bits (review 10): the source
 * slot's PTE was writable and clean, so a write through it set only a
 * dirty bit that no harvest of the alias looks at. The edit must unmap
 * the source too and record what its PTE held; then arming the alias,
 * reporting it, stopping it, or a private mapping that ends dirty-bit
 * tracking loses no write through the source.
 */
/* Bit 0 of a report of slot @slot alone; -1 on error. */
static int dirty_one(int fd, uint64_t slot, uint32_t flags)
{
	uint64_t w = 0, nr = 0;

	if (upage_dirty(fd, slot, 1, &w, flags, &nr))
		return -1;
	return (int)(w & 1);
}

/* Slot 0 written, reported and re-armed: its PTE writable and clean. */
static int rearmed_by_dirty_bits(int fd, volatile unsigned char *p)
{
	p[0] = 1;
	p[5 * PAGE] = 1;
	if (upage_track_start(fd, 0, 1))
		return -1;
	p[0] = 2;
	return dirty_one(fd, 0, UPAGE_DIRTY_CLEAR);
}

TEST_F(bits, alias_of_a_rearmed_page_keeps_the_source_write_on_track_start)
{
	ASSERT_EQ(1, rearmed_by_dirty_bits(self->fd, self->p));
	self->p[1] = 3;
	upage_alias_ok(self->fd, 5, 0, 1);
	ASSERT_EQ(0, upage_track_start(self->fd, 5, 1));
	EXPECT_EQ(1, dirty_one(self->fd, 0, 0));
}

TEST_F(bits, alias_of_a_rearmed_page_keeps_the_source_write_on_its_report)
{
	ASSERT_EQ(0, upage_track_start(self->fd, 5, 1));
	ASSERT_EQ(1, rearmed_by_dirty_bits(self->fd, self->p));
	self->p[1] = 3;
	upage_alias_ok(self->fd, 5, 0, 1);
	ASSERT_EQ(1, dirty_one(self->fd, 5, UPAGE_DIRTY_CLEAR));
	EXPECT_EQ(1, dirty_one(self->fd, 0, 0));
}

TEST_F(bits, stopping_an_alias_leaves_the_source_tracked)
{
	ASSERT_EQ(1, rearmed_by_dirty_bits(self->fd, self->p));
	upage_alias_ok(self->fd, 5, 0, 1);
	ASSERT_EQ(0, upage_track_stop(self->fd, 5, 1));
	self->p[1] = 3;
	EXPECT_EQ(1, dirty_one(self->fd, 0, UPAGE_DIRTY_CLEAR));
	self->p[2] = 4;
	EXPECT_EQ(1, dirty_one(self->fd, 0, UPAGE_DIRTY_CLEAR));
	EXPECT_EQ(0, dirty_one(self->fd, 0, UPAGE_DIRTY_CLEAR));
}

TEST_F(bits, stopping_a_cow_alias_leaves_the_source_tracked)
{
	ASSERT_EQ(1, rearmed_by_dirty_bits(self->fd, self->p));
	upage_alias_cow_ok(self->fd, 5, 0, 1);
	ASSERT_EQ(0, upage_track_stop(self->fd, 5, 1));
	self->p[1] = 3;
	EXPECT_EQ(1, dirty_one(self->fd, 0, UPAGE_DIRTY_CLEAR));
}

TEST_F(bits, private_mapping_after_an_alias_leaves_the_source_tracked)
{
	volatile unsigned char *q;

	ASSERT_EQ(1, rearmed_by_dirty_bits(self->fd, self->p));
	upage_alias_ok(self->fd, 5, 0, 1);
	q = upage_map(self->fd, 0, SPACE, MAP_PRIVATE);
	ASSERT_NE(NULL, q);
	/* A query of slot 5 alone harvests (and, now, unmaps) only it. */
	(void)upage_slot(self->fd, 5);
	self->p[1] = 3;
	EXPECT_EQ(1, dirty_one(self->fd, 0, UPAGE_DIRTY_CLEAR));
	self->p[2] = 4;
	EXPECT_EQ(1, dirty_one(self->fd, 0, UPAGE_DIRTY_CLEAR));
	munmap((void *)q, SPACE * PAGE);
}

/*
 * The largest space: max_space_pages slots (4 GiB of address space by
 * default), tracked over all of it, a few hundred pages written scattered
 * across the whole range. A collection walks the table in chunks and
 * yields between them; these check that the reports stay exact over the
 * whole range, at the chunk edges and the last slot, while a writer
 * races, and that a collection there can be killed.
 */
#define BIG_PAGES 300		/* pages written per round */
#define BIG_MAX (1ULL << 24)	/* larger spaces: too much memory here */

FIXTURE(big) {
	int fd;
	uint64_t max;			/* max_space_pages: the space's size */
	volatile unsigned char *p;	/* all of it, shared */
	uint64_t *bitmap;		/* (max + 63) / 64 words and a guard */
	unsigned char *mark;		/* one byte per slot */
};

/* /sys/module/upage/parameters/max_space_pages; 0 if unreadable. */
static uint64_t max_space_pages(void)
{
	unsigned long long v = 0;
	FILE *f = fopen("/sys/module/upage/parameters/max_space_pages", "r");

	if (!f)
		return 0;
	if (fscanf(f, "%llu", &v) != 1)
		v = 0;
	fclose(f);
	return v;
}

static size_t big_words(uint64_t n)
{
	return (n + 63) / 64;
}

FIXTURE_SETUP(big)
{
	struct upage_api api;

	self->p = NULL;
	self->bitmap = NULL;
	self->mark = NULL;
	upage_open_or_skip(self->fd);
	upage_require_cmd(self->fd, UPAGE_CMD_DIRTY);
	self->max = max_space_pages();
	ASSERT_NE(0, self->max);
	ASSERT_EQ(0, upage_api(self->fd, &api));
	ASSERT_EQ(self->max, api.out_max_pages);
	if (self->max > BIG_MAX || self->max < 4 * BIG_PAGES)
		SKIP(return, "max_space_pages %llu: out of this test's range",
		     (unsigned long long)self->max);
	upage_resize_ok(self->fd, self->max);
	self->p = upage_map(self->fd, 0, self->max, MAP_SHARED);
	ASSERT_NE(NULL, self->p);
	self->bitmap = malloc((big_words(self->max) + 1) * 8);
	self->mark = calloc(self->max, 1);
	ASSERT_NE(NULL, self->bitmap);
	ASSERT_NE(NULL, self->mark);
	ASSERT_EQ(0, upage_track_start(self->fd, 0, self->max));
}

FIXTURE_TEARDOWN(big)
{
	if (self->p)
		munmap((void *)self->p, self->max * PAGE);
	free(self->bitmap);
	free(self->mark);
	if (self->fd >= 0)
		close(self->fd);
}

/*
 * Fill @set with @nr distinct slots of 0..max-1: the first and last
 * slots and those at the edges of the collection's 4096-slot chunks
 * first, then random ones (@seed).
 */
static unsigned int big_pick(uint64_t max, unsigned int seed, uint64_t *set,
			     unsigned int nr)
{
	const uint64_t edges[] = { 0, max - 1, 4095, 4096, 8191, max - 4096,
				   max - 4097, max / 2 };
	unsigned char *taken = calloc(max, 1);
	unsigned int i, k = 0;
	uint64_t s;

	if (!taken)
		return 0;
	for (i = 0; i < sizeof(edges) / sizeof(edges[0]) && k < nr; i++) {
		s = edges[i];
		if (s < max && !taken[s]) {
			taken[s] = 1;
			set[k++] = s;
		}
	}
	while (k < nr) {
		s = (((uint64_t)rand_r(&seed) << 16) ^ rand_r(&seed)) % max;
		if (taken[s])
			continue;
		taken[s] = 1;
		set[k++] = s;
	}
	free(taken);
	return k;
}

/* CLOCK_MONOTONIC in ms. */
static long big_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Write a word of page @slot, with a value that names the slot. */
static void big_write(volatile unsigned char *p, uint64_t slot, uint32_t v)
{
	*(volatile uint64_t *)(p + slot * PAGE + (v % 64) * 8) = slot ^ v;
}

/*
 * Collect slots 0..max-1 into self->bitmap, its guard word checked; the
 * number of bits set must be out_dirty.
 */
#define big_dirty(flags)                                                    \
	({                                                                  \
		size_t __w = big_words(self->max);                          \
		uint64_t __nr = 0xdead, __set = 0, __i;                     \
		memset(self->bitmap, 0xa5, (__w + 1) * 8);                  \
		ASSERT_EQ(0, upage_dirty(self->fd, 0, self->max,            \
					 self->bitmap, (flags), &__nr));    \
		ASSERT_EQ(0xa5a5a5a5a5a5a5a5ULL, self->bitmap[__w]);        \
		for (__i = 0; __i < __w; __i++)                             \
			__set += __builtin_popcountll(self->bitmap[__i]);   \
		ASSERT_EQ(__set, __nr);                                     \
		__nr;                                                       \
	})

static int big_bit(const uint64_t *bitmap, uint64_t slot)
{
	return !!(bitmap[slot / 64] & (1ULL << (slot % 64)));
}

/*
 * The slots whose bits differ from self->mark (mark[s] & @want set:
 * expected dirty); logs the first few, returns how many.
 */
static uint64_t big_diff(struct __test_metadata *_metadata,
			 const uint64_t *bitmap, const unsigned char *mark,
			 uint64_t max, unsigned char want)
{
	uint64_t s, bad = 0;

	for (s = 0; s < max; s++) {
		int exp = !!(mark[s] & want);

		if (big_bit(bitmap, s) == exp)
			continue;
		if (bad++ < 8)
			TH_LOG("slot %llu: reported %d, written %d",
			       (unsigned long long)s, !exp, exp);
	}
	return bad;
}

/* UPAGE_QUERY of the whole space agrees with self->mark & @want. */
static uint64_t big_query_diff(struct __test_metadata *_metadata, int fd,
			       const unsigned char *mark, uint64_t max,
			       unsigned char want)
{
	struct upage_slot_info *info = calloc(max, sizeof(*info));
	uint64_t s, bad = 0;

	if (!info)
		return max;
	if (upage_query(fd, 0, max, info)) {
		free(info);
		return max;
	}
	for (s = 0; s < max; s++) {
		int exp = !!(mark[s] & want);
		int dirty = !!(info[s].state & UPAGE_SLOT_DIRTY);

		if (!(info[s].state & UPAGE_SLOT_TRACKED) || dirty != exp) {
			if (bad++ < 8)
				TH_LOG("slot %llu: state %#x, written %d",
				       (unsigned long long)s, info[s].state,
				       exp);
		}
	}
	free(info);
	return bad;
}

/*
 * The point of tracking a large space: a report over all of it names
 * exactly the pages written, the first and last slot and the chunk edges
 * included, and so do UPAGE_QUERY and the fdinfo count; with
 * UPAGE_DIRTY_CLEAR the next report names exactly the next round's.
 */
TEST_F_TIMEOUT(big, largest_space_reports_exactly_the_scattered_writes, 120)
{
	uint64_t set[BIG_PAGES], nr, s;
	long t0;
	unsigned int i, round;

	ASSERT_EQ(0, big_dirty(0));
	for (round = 0; round < 3; round++) {
		unsigned char now = 1 << round;

		/* The edges again (re-armed by now), random slots anew. */
		ASSERT_EQ(BIG_PAGES, big_pick(self->max, 7 + round, set,
					      BIG_PAGES));
		for (i = 0; i < BIG_PAGES; i++) {
			big_write(self->p, set[i], round + 1);
			self->mark[set[i]] |= now;
		}
		for (nr = 0, s = 0; s < self->max; s++)
			nr += !!(self->mark[s] & now);
		ASSERT_EQ(nr, big_dirty(0));
		ASSERT_EQ(0, big_diff(_metadata, self->bitmap, self->mark,
				      self->max, now));
		ASSERT_EQ(0, big_query_diff(_metadata, self->fd, self->mark,
					    self->max, now));
		ASSERT_EQ((long)nr, fdinfo_dirty(self->fd));
		/* Neither of those consumed a write. */
		t0 = big_ms();
		ASSERT_EQ(nr, big_dirty(UPAGE_DIRTY_CLEAR));
		TH_LOG("round %u: a report with CLEAR of %llu slots over %llu took %ld ms",
		       round, (unsigned long long)nr,
		       (unsigned long long)self->max, big_ms() - t0);
		ASSERT_EQ(0, big_diff(_metadata, self->bitmap, self->mark,
				      self->max, now));
		ASSERT_EQ(0, big_dirty(0));
		ASSERT_EQ(0, fdinfo_dirty(self->fd));
		ASSERT_EQ(0, big_query_diff(_metadata, self->fd, self->mark,
					    self->max, 0));
	}
}

/*
 * The largest n a report takes is the largest space; one slot more, or
 * a range that runs one slot past the end, is EINVAL and changes
 * nothing: a CLEAR that failed re-armed no slot.
 */
TEST_F_TIMEOUT(big, largest_n_is_accepted_and_one_more_changes_nothing, 120)
{
	uint64_t set[BIG_PAGES], nr = 0xdead;
	uint64_t *wide = calloc(big_words(self->max + 64) + 1, 8);
	unsigned int i;

	ASSERT_NE(NULL, wide);
	ASSERT_EQ(BIG_PAGES, big_pick(self->max, 3, set, BIG_PAGES));
	for (i = 0; i < BIG_PAGES; i++) {
		big_write(self->p, set[i], 1);
		self->mark[set[i]] = 1;
	}
	ASSERT_EQ(-EINVAL, upage_dirty(self->fd, 0, self->max + 1, wide,
				       UPAGE_DIRTY_CLEAR, &nr));
	ASSERT_EQ(-EINVAL, upage_dirty(self->fd, 1, self->max, wide,
				       UPAGE_DIRTY_CLEAR, &nr));
	ASSERT_EQ(-EINVAL, upage_dirty(self->fd, self->max, 1, wide,
				       UPAGE_DIRTY_CLEAR, &nr));
	ASSERT_EQ(-EINVAL, upage_dirty(self->fd, UINT64_MAX, 2, wide,
				       UPAGE_DIRTY_CLEAR, &nr));
	ASSERT_EQ(-EINVAL, upage_dirty(self->fd, 0, UINT64_MAX, wide,
				       UPAGE_DIRTY_CLEAR, &nr));
	free(wide);
	/* Nothing was consumed; the largest n reports all of it. */
	ASSERT_EQ(BIG_PAGES, big_dirty(UPAGE_DIRTY_CLEAR));
	ASSERT_EQ(0, big_diff(_metadata, self->bitmap, self->mark, self->max,
			      1));
	ASSERT_EQ(0, big_dirty(0));
	/* The largest n that ends at the last slot, from slot 1. */
	big_write(self->p, self->max - 1, 2);
	big_write(self->p, 1, 2);
	memset(self->bitmap, 0x5a, (big_words(self->max) + 1) * 8);
	ASSERT_EQ(0, upage_dirty(self->fd, 1, self->max - 1, self->bitmap, 0,
				 &nr));
	ASSERT_EQ(2, nr);
	ASSERT_EQ(1, self->bitmap[0] & 1);
	ASSERT_EQ(1ULL << ((self->max - 2) % 64),
		  self->bitmap[(self->max - 2) / 64]);
	/* Words past (n + 63) / 64 are the caller's. */
	ASSERT_EQ(0x5a5a5a5a5a5a5a5aULL,
		  self->bitmap[big_words(self->max - 1)]);
}

/*
 * A writer thread cycles through a scattered set of pages while reports
 * over the whole space run. Its writes are numbered: write i goes to
 * set[i % BIG_PAGES] and then publishes done = i + 1, so when a report
 * starts with done == B, writes 0..B-1 have completed, and when the
 * previous report ended with done == A, writes from A + 1 on started
 * after it. A report must name every page of a write that completed
 * before it started and, with CLEAR, after the previous one ended; it
 * must never name a page outside the set.
 */
struct big_race {
	volatile unsigned char *p;
	uint64_t *set;
	atomic_ulong done;
	atomic_int stop;
};

static void *big_writer(void *arg)
{
	struct big_race *r = arg;
	unsigned long i = 0;

	while (!atomic_load(&r->stop)) {
		big_write(r->p, r->set[i % BIG_PAGES], (uint32_t)i);
		atomic_store(&r->done, ++i);
	}
	return NULL;
}

/* The pages of writes from..to-1 (at most one cycle's worth) in @need. */
static void big_need(unsigned char *need, const uint64_t *set,
		     unsigned long from, unsigned long to)
{
	unsigned long i;

	if (to > from + BIG_PAGES)
		from = to - BIG_PAGES;
	for (i = from; i < to; i++)
		need[set[i % BIG_PAGES]] = 1;
}

/* Slots set in @need but not reported, and reported but not in @mark. */
static uint64_t big_race_check(struct __test_metadata *_metadata,
			       const uint64_t *bitmap,
			       const unsigned char *need,
			       const unsigned char *mark, uint64_t max)
{
	uint64_t s, bad = 0;

	for (s = 0; s < max; s++) {
		int got = big_bit(bitmap, s);

		if ((need[s] && !got) || (got && !mark[s])) {
			if (bad++ < 8)
				TH_LOG("slot %llu: reported %d, %s",
				       (unsigned long long)s, got,
				       mark[s] ? "written" : "never written");
		}
	}
	return bad;
}

static void big_race_run(struct __test_metadata *_metadata,
			 FIXTURE_DATA(big) *self, uint32_t flags)
{
	unsigned char *need = calloc(self->max, 1);
	struct big_race r = { .p = self->p };
	uint64_t set[BIG_PAGES], nr = 0;
	unsigned long from = 0, b, end, reports = 0, busy = 0;
	long t0, in_calls = 0, slowest = 0;
	uint64_t f0;
	time_t start = time(NULL);
	pthread_t th;
	unsigned int i;

	ASSERT_NE(NULL, need);
	ASSERT_EQ(BIG_PAGES, big_pick(self->max, 11, set, BIG_PAGES));
	for (i = 0; i < BIG_PAGES; i++)
		self->mark[set[i]] = 1;
	r.set = set;
	f0 = space_faults(_metadata, self->fd);
	ASSERT_EQ(0, pthread_create(&th, NULL, big_writer, &r));
	/*
	 * 15 s for 40 reports and 10 with writes in them; past that, up to
	 * 75 s while fewer than 5 had (a slow host: reports of seconds).
	 */
	while ((time(NULL) < start + 15 && (reports < 40 || busy < 10)) ||
	       (busy < 5 && time(NULL) < start + 75)) {
		b = atomic_load(&r.done);
		t0 = big_ms();
		big_dirty(flags);
		t0 = big_ms() - t0;
		in_calls += t0;
		slowest = t0 > slowest ? t0 : slowest;
		end = atomic_load(&r.done);
		memset(need, 0, self->max);
		big_need(need, set, from, b);
		ASSERT_EQ(0, big_race_check(_metadata, self->bitmap, need,
					    self->mark, self->max)) {
			TH_LOG("report %lu: writes %lu..%lu before it",
			       reports, from, b);
		}
		if (flags)
			from = end + 1;
		reports++;
		busy += end > b;
	}
	atomic_store(&r.stop, 1);
	pthread_join(th, NULL);
	b = atomic_load(&r.done);
	/* Quiet now: the writes since the last report, then nothing. */
	nr = big_dirty(flags);
	memset(need, 0, self->max);
	big_need(need, set, from, b);
	ASSERT_EQ(0, big_race_check(_metadata, self->bitmap, need, self->mark,
				    self->max));
	/* Quiet: a CLEAR leaves nothing, a report alone is repeated. */
	ASSERT_EQ(flags ? 0 : nr, big_dirty(flags));
	TH_LOG("%lu reports, %lu with writes during them, %lu writes, %lds",
	       reports, busy, b, (long)(time(NULL) - start));
	TH_LOG("%ld ms in the reports, the slowest %ld ms, %llu faults",
	       in_calls, slowest,
	       (unsigned long long)(space_faults(_metadata, self->fd) - f0));
	ASSERT_LE(5, busy);
	free(need);
}

TEST_F_TIMEOUT(big, largest_space_report_misses_no_write_of_a_racing_writer,
	       120)
{
	big_race_run(_metadata, self, 0);
}

TEST_F_TIMEOUT(big, largest_space_clear_misses_no_write_of_a_racing_writer,
	       120)
{
	big_race_run(_metadata, self, UPAGE_DIRTY_CLEAR);
}

/*
 * The walks of the whole table let table_lock go every 4,096 slots. A
 * CLEAR whose bitmap cannot be copied out (its last page faults) marks
 * every slot it cleared dirty again, across those drops; and STOP and
 * START over the whole space, again and again beside a writer thread,
 * leave each slot tracked once: what is written after the last START is
 * reported, and nothing that was never written.
 */
TEST_F_TIMEOUT(big, largest_space_failed_clear_and_restarts_keep_every_write,
	       120)
{
	size_t len = big_words(self->max) * 8;
	size_t span = (len + PAGE - 1) / PAGE * PAGE;
	struct upage_dirty cmd = {
		.size = sizeof(cmd), .flags = UPAGE_DIRTY_CLEAR,
		.first = 0, .n = self->max,
	};
	struct big_race r = { .p = self->p };
	unsigned char *buf, *none = calloc(self->max, 1);
	uint64_t set[BIG_PAGES];
	unsigned int i, round;
	pthread_t th;

	ASSERT_NE(NULL, none);
	ASSERT_EQ(BIG_PAGES, big_pick(self->max, 19, set, BIG_PAGES));
	for (i = 0; i < BIG_PAGES; i++) {
		self->mark[set[i]] = 1;
		big_write(self->p, set[i], 1);
	}
	buf = mmap(NULL, span + PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	ASSERT_EQ(0, mprotect(buf + span, PAGE, PROT_NONE));
	/* It ends in the PROT_NONE page: the copy fails part way. */
	cmd.bitmap = (uintptr_t)(buf + span + PAGE - len);
	ASSERT_EQ(-EFAULT, _upage_ioctl(self->fd, UPAGE_DIRTY, &cmd));
	ASSERT_EQ(BIG_PAGES, big_dirty(0));
	ASSERT_EQ(0, big_diff(_metadata, self->bitmap, self->mark, self->max,
			      1));
	munmap(buf, span + PAGE);

	r.set = set;
	ASSERT_EQ(0, pthread_create(&th, NULL, big_writer, &r));
	for (round = 0; round < 4; round++) {
		ASSERT_EQ(0, upage_track_stop(self->fd, 0, self->max));
		ASSERT_EQ(0, upage_track_start(self->fd, 0, self->max));
	}
	atomic_store(&r.stop, 1);
	pthread_join(th, NULL);
	TH_LOG("%lu writes beside 4 restarts", atomic_load(&r.done));
	ASSERT_LT(0, atomic_load(&r.done));
	/* Only written pages, whichever the writer reached after START. */
	big_dirty(UPAGE_DIRTY_CLEAR);
	ASSERT_EQ(0, big_race_check(_metadata, self->bitmap, none, self->mark,
				    self->max));
	ASSERT_EQ(0, big_dirty(0));
	for (i = 0; i < BIG_PAGES; i++)
		big_write(self->p, set[i], 2);
	ASSERT_EQ(BIG_PAGES, big_dirty(UPAGE_DIRTY_CLEAR));
	ASSERT_EQ(0, big_diff(_metadata, self->bitmap, self->mark, self->max,
			      1));
	ASSERT_EQ(0, big_dirty(UPAGE_DIRTY_CLEAR));
	free(none);
}

/* @all |= @bitmap, both bitmaps of @max slots. */
static void big_union(uint64_t *all, const uint64_t *bitmap, uint64_t max)
{
	size_t k;

	for (k = 0; k < big_words(max); k++)
		all[k] |= bitmap[k];
}

/*
 * Each page written exactly once while CLEAR reports run back to back:
 * the union of the reports names every page and nothing else, so a
 * write made during a report is reported by it or by a later one, never
 * by none (docs/design.md, "No write is lost"); written once, a page
 * lost by one report cannot be found again by the next. The pages are
 * dbit armed first (written and collected twice), so the racing writes
 * set only PTE dirty bits, which the reports' harvests clean meanwhile.
 * The writer waits for a report to start before each batch of writes,
 * so that the writes land during reports on any host, fast or slow.
 */
#define BIG_ONCE 8192		/* pages, each written once in the race */
#define BIG_ONCE_BATCH 512	/* writes per report started */

struct big_once {
	volatile unsigned char *p;
	const uint64_t *set;
	atomic_ulong started;	/* reports the collector has begun */
	atomic_int done;
};

static void *big_once_writer(void *arg)
{
	struct big_once *w = arg;
	unsigned long seen = 0, i;

	for (i = 0; i < BIG_ONCE; i++) {
		if (!(i % BIG_ONCE_BATCH)) {
			while (atomic_load(&w->started) == seen)
				sched_yield();
			seen = atomic_load(&w->started);
		}
		big_write(w->p, w->set[i], 9);
	}
	atomic_store(&w->done, 1);
	return NULL;
}

TEST_F_TIMEOUT(big, largest_space_clear_reports_every_write_made_during_it,
	       120)
{
	uint64_t *set = calloc(BIG_ONCE, sizeof(*set));
	uint64_t *all = calloc(big_words(self->max), 8);
	struct big_once w = { .p = self->p };
	unsigned long reports = 0;
	uint64_t f0, faults, bad;
	unsigned int i, round;
	pthread_t th;

	ASSERT_NE(NULL, set);
	ASSERT_NE(NULL, all);
	ASSERT_EQ(BIG_ONCE, big_pick(self->max, 13, set, BIG_ONCE));
	for (i = 0; i < BIG_ONCE; i++)
		self->mark[set[i]] = 1;
	/* Fill the holes, then a write fault after the first arm. */
	for (round = 0; round < 2; round++) {
		for (i = 0; i < BIG_ONCE; i++)
			big_write(self->p, set[i], round);
		ASSERT_EQ(BIG_ONCE, big_dirty(UPAGE_DIRTY_CLEAR));
		ASSERT_EQ(0, big_diff(_metadata, self->bitmap, self->mark,
				      self->max, 1));
	}
	w.set = set;
	f0 = space_faults(_metadata, self->fd);
	ASSERT_EQ(0, pthread_create(&th, NULL, big_once_writer, &w));
	while (!atomic_load(&w.done)) {
		atomic_fetch_add(&w.started, 1);
		big_dirty(UPAGE_DIRTY_CLEAR);
		big_union(all, self->bitmap, self->max);
		reports++;
	}
	pthread_join(th, NULL);
	big_dirty(UPAGE_DIRTY_CLEAR);
	big_union(all, self->bitmap, self->max);
	faults = space_faults(_metadata, self->fd) - f0;
	bad = big_diff(_metadata, all, self->mark, self->max, 1);
	TH_LOG("%lu reports, %llu faults for %u writes", reports,
	       (unsigned long long)faults, BIG_ONCE);
	ASSERT_EQ(0, bad);
	/* Dirty bits, not faults, carried the writes. */
	ASSERT_GT(BIG_ONCE / 4, faults);
	ASSERT_EQ(0, big_dirty(0));
	free(all);
	free(set);
}

/*
 * The same, with the writes made by another process through its own
 * mapping, while a thread of that process splits and joins its VMA
 * (mprotect of a page no write touches) and forks children that exit at
 * once (their copies of the VMA join the space's mappings and leave):
 * a harvest walks every mapping of the space, whatever happens to the
 * list of them during the walk.
 */
struct big_proc {
	atomic_ulong started;	/* reports the collector has begun */
	atomic_int armed;	/* arming rounds the writer has written */
	atomic_int acked;	/* arming rounds collected; 3: the last report */
	atomic_int done;	/* the writer wrote every page once */
	atomic_int stop;	/* the churn thread ends */
	atomic_ulong churns;	/* its rounds */
};

struct big_churn {
	volatile unsigned char *page;	/* a page no write touches */
	struct big_proc *c;
};

static void *big_churn(void *arg)
{
	struct big_churn *ch = arg;
	void *page = (void *)ch->page;
	pid_t pid;

	while (!atomic_load(&ch->c->stop)) {
		if (mprotect(page, PAGE, PROT_READ) ||
		    mprotect(page, PAGE, PROT_READ | PROT_WRITE))
			_exit(3);
		pid = fork();
		if (pid == 0)
			_exit(0);
		if (pid < 0 || waitpid(pid, NULL, 0) != pid)
			_exit(4);
		atomic_fetch_add(&ch->c->churns, 1);
	}
	return NULL;
}

/* The writer process: arm every page, then write each once in the race. */
static void big_proc_writer(volatile unsigned char *p, const uint64_t *set,
			    struct big_proc *c, uint64_t quiet_slot)
{
	struct big_churn ch = { .page = p + quiet_slot * PAGE, .c = c };
	unsigned long seen = 0;
	unsigned int i;
	int round;
	pthread_t th;

	for (round = 0; round < 2; round++) {
		for (i = 0; i < BIG_ONCE; i++)
			big_write(p, set[i], round);
		atomic_store(&c->armed, round + 1);
		while (atomic_load(&c->acked) != round + 1)
			sched_yield();
	}
	if (pthread_create(&th, NULL, big_churn, &ch))
		_exit(2);
	for (i = 0; i < BIG_ONCE; i++) {
		if (!(i % BIG_ONCE_BATCH)) {
			while (atomic_load(&c->started) == seen)
				sched_yield();
			seen = atomic_load(&c->started);
		}
		big_write(p, set[i], 9);
	}
	/*
	 * Its PTEs live on until the last report: an exit would zap them
	 * and so move any dirty bit a harvest lost into PG_dirty.
	 */
	atomic_store(&c->done, 1);
	while (atomic_load(&c->acked) != 3)
		sched_yield();
	atomic_store(&c->stop, 1);
	pthread_join(th, NULL);
	_exit(0);
}

/* The writer is gone (status in *status) or has set @flag to @want. */
static bool big_proc_wait(pid_t pid, int *status, atomic_int *flag, int want)
{
	while (atomic_load(flag) != want) {
		if (waitpid(pid, status, WNOHANG) == pid)
			return false;
		sched_yield();
	}
	return true;
}

TEST_F_TIMEOUT(big, largest_space_clear_reports_every_write_of_another_process,
	       120)
{
	uint64_t *set = calloc(BIG_ONCE, sizeof(*set));
	uint64_t *all = calloc(big_words(self->max), 8);
	struct big_proc *c = mmap(NULL, sizeof(*c), PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	unsigned long reports = 0;
	uint64_t f0, faults, bad, quiet;
	unsigned int i;
	int round, status = -1;
	bool reaped = false;
	pid_t pid;

	ASSERT_NE(NULL, set);
	ASSERT_NE(NULL, all);
	ASSERT_NE(MAP_FAILED, c);
	memset(c, 0, sizeof(*c));
	ASSERT_EQ(BIG_ONCE, big_pick(self->max, 17, set, BIG_ONCE));
	for (i = 0; i < BIG_ONCE; i++)
		self->mark[set[i]] = 1;
	for (quiet = self->max / 2 + 1; self->mark[quiet]; quiet++)
		;
	/* It waits for this process between its steps: dies with it. */
	pid = upage_fork_child();
	ASSERT_LE(0, pid);
	if (pid == 0)
		big_proc_writer(self->p, set, c, quiet);
	for (round = 0; round < 2; round++) {
		ASSERT_TRUE(big_proc_wait(pid, &status, &c->armed, round + 1));
		ASSERT_EQ(BIG_ONCE, big_dirty(UPAGE_DIRTY_CLEAR));
		ASSERT_EQ(0, big_diff(_metadata, self->bitmap, self->mark,
				      self->max, 1));
		atomic_store(&c->acked, round + 1);
	}
	f0 = space_faults(_metadata, self->fd);
	while (!atomic_load(&c->done)) {
		reaped = waitpid(pid, &status, WNOHANG) == pid;
		if (reaped)
			break;
		atomic_fetch_add(&c->started, 1);
		big_dirty(UPAGE_DIRTY_CLEAR);
		big_union(all, self->bitmap, self->max);
		reports++;
	}
	ASSERT_FALSE(reaped) {
		TH_LOG("the writer ended early: status %#x", status);
	}
	big_dirty(UPAGE_DIRTY_CLEAR);
	big_union(all, self->bitmap, self->max);
	faults = space_faults(_metadata, self->fd) - f0;
	atomic_store(&c->acked, 3);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, status);
	bad = big_diff(_metadata, all, self->mark, self->max, 1);
	TH_LOG("%lu reports, %llu faults for %u writes, %lu VMA churns",
	       reports, (unsigned long long)faults, BIG_ONCE,
	       atomic_load(&c->churns));
	ASSERT_EQ(0, bad);
	ASSERT_GT(BIG_ONCE / 4, faults);
	ASSERT_LT(0, atomic_load(&c->churns));
	ASSERT_EQ(0, big_dirty(0));
	munmap(c, sizeof(*c));
	free(all);
	free(set);
}

/*
 * A child runs collections over the largest space back to back (reports
 * with and without CLEAR, UPAGE_QUERY, the fdinfo count), writing its
 * pages between them; SIGKILL at a random point ends it promptly, and
 * the space stays consistent: a later report names no page outside the
 * set and then exactly what is written next.
 */
#define BIG_KILLS 6
#define BIG_KILL_WAIT_MS 10000	/* TCG, debug kernel */

static void big_collector(int fd, volatile unsigned char *p, uint64_t max,
			  const uint64_t *set, int ready)
{
	struct upage_slot_info *info = calloc(max, sizeof(*info));
	uint64_t *bitmap = calloc(big_words(max), 8), nr;
	unsigned int i, round;

	if (!info || !bitmap)
		_exit(1);
	for (round = 0;; round++) {
		for (i = 0; i < BIG_PAGES; i += 1 + round % 7)
			big_write(p, set[i], round);
		if (upage_dirty(fd, 0, max, bitmap, 0, &nr) ||
		    upage_dirty(fd, 0, max, bitmap, UPAGE_DIRTY_CLEAR, &nr) ||
		    upage_query(fd, 0, max, info) || fdinfo_dirty(fd) < 0)
			_exit(2);
		if (!round && pipe_put(ready))
			_exit(3);
	}
}

/* Wait up to @ms for @pid; its status, or -1 if it is still there. */
static int big_reap(pid_t pid, int ms)
{
	int status, waited;

	for (waited = 0; waited <= ms; waited += 10) {
		pid_t got = waitpid(pid, &status, WNOHANG);

		if (got == pid)
			return status;
		if (got < 0)
			return -2;
		usleep(10000);
	}
	return -1;
}

TEST_F_TIMEOUT(big, largest_space_collection_is_killable, 120)
{
	uint64_t set[BIG_PAGES], s;
	unsigned int seed = 5, i, kill_no;
	long t0, ms, worst = 0;
	int pfd[2], status;

	ASSERT_EQ(BIG_PAGES, big_pick(self->max, 13, set, BIG_PAGES));
	for (i = 0; i < BIG_PAGES; i++)
		self->mark[set[i]] = 1;
	for (kill_no = 0; kill_no < BIG_KILLS; kill_no++) {
		pid_t pid;

		ASSERT_EQ(0, pipe(pfd));
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);	/* as above */
			close(pfd[0]);
			big_collector(self->fd, self->p, self->max, set,
				      pfd[1]);
		}
		close(pfd[1]);
		ASSERT_EQ(0, pipe_get(pfd[0])) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
		close(pfd[0]);
		usleep(rand_r(&seed) % 200000);
		t0 = big_ms();
		ASSERT_EQ(0, kill(pid, SIGKILL));
		status = big_reap(pid, BIG_KILL_WAIT_MS);
		ms = big_ms() - t0;
		worst = ms > worst ? ms : worst;
		ASSERT_NE(-1, status) {
			TH_LOG("kill %u: the child is still there after %d ms",
			       kill_no, BIG_KILL_WAIT_MS);
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
		ASSERT_TRUE(WIFSIGNALED(status)) {
			TH_LOG("kill %u: status %#x", kill_no, status);
		}
		ASSERT_EQ(SIGKILL, WTERMSIG(status));
	}
	TH_LOG("%u kills, the slowest exit took %ld ms", BIG_KILLS, worst);
	/* What the children left: only pages of the set, then exactness. */
	big_dirty(UPAGE_DIRTY_CLEAR);
	for (s = 0; s < self->max; s++)
		ASSERT_FALSE(big_bit(self->bitmap, s) && !self->mark[s]) {
			TH_LOG("slot %llu: reported, never written",
			       (unsigned long long)s);
		}
	memset(self->mark, 0, self->max);
	for (i = 0; i < BIG_PAGES; i += 3) {
		big_write(self->p, set[i], 77);
		self->mark[set[i]] = 1;
	}
	ASSERT_EQ((BIG_PAGES + 2) / 3, big_dirty(UPAGE_DIRTY_CLEAR));
	ASSERT_EQ(0, big_diff(_metadata, self->bitmap, self->mark, self->max,
			      1));
	ASSERT_EQ(0, big_dirty(0));
}

TEST_HARNESS_MAIN
