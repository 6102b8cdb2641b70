// SPDX-License-Identifier: MIT
/*
 * segv_handler: a SIGSEGV handler that tells a upage protection fault from
 * a stray pointer, and serves the first by opening the slot up.
 *
 * A slot's protection raises SIGSEGV with si_addr the exact faulting
 * address and si_code SEGV_MAPERR, as a stray pointer does. The handler
 * asks the module about si_addr (UPAGE_QUERY_BY_ADDR, an ioctl, which is
 * async-signal-safe): 0 and the slot's protection if the address is in a
 * mapping of the space, ENOENT otherwise. Here a upage fault makes the
 * slot read-write and returns, so the access is made again and succeeds
 * (protection as a cheap, VMA-free guard that counts first touches); a
 * stray pointer is reported and the program jumps out.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "upage.h"

#define PAGE 4096UL
#define PAGES 16

static int space_fd;
static volatile sig_atomic_t upage_faults, stray_faults;
static volatile uint64_t last_slot;
static sigjmp_buf stray;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	struct upage_slot_info info;
	uint64_t slot;

	(void)sig;
	(void)uc;
	if (upage_query_addr(space_fd, si->si_addr, &slot, &info) == 0 &&
	    info.prot != UPAGE_PROT_RW) {
		/* Ours: open the slot up and let the access run again. */
		upage_faults++;
		last_slot = slot;
		if (upage_protect(space_fd, slot, 1, UPAGE_PROT_RW) == 0)
			return;
	}
	/* Not a upage slot (or it could not be opened): a real bug. */
	stray_faults++;
	siglongjmp(stray, 1);
}

int main(void)
{
	struct sigaction sa = { .sa_sigaction = on_segv,
				.sa_flags = SA_SIGINFO | SA_NODEFER };
	volatile char *p, *wild;
	int ret, touched = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	space_fd = upage_open(O_CLOEXEC);
	if (space_fd < 0) {
		fprintf(stderr, "segv_handler: open /dev/upage: %s\n",
			strerror(-space_fd));
		return 1;
	}
	ret = upage_resize(space_fd, PAGES, NULL);
	p = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED,
		 space_fd, 0);
	if (ret || p == MAP_FAILED) {
		fprintf(stderr, "segv_handler: resize/mmap failed\n");
		return 1;
	}
	/* Every slot starts closed: the first touch of each is counted. */
	ret = upage_protect(space_fd, 0, PAGES, UPAGE_PROT_NONE);
	if (ret || sigaction(SIGSEGV, &sa, NULL)) {
		fprintf(stderr, "segv_handler: protect/sigaction failed\n");
		return 1;
	}
	printf("segv_handler: %d slots mapped with protection none\n", PAGES);

	for (int i = 0; i < PAGES; i += 3) {
		p[i * PAGE + 7] = (char)i;
		touched++;
	}
	printf("segv_handler: touched %d slots: %d upage faults, each served by opening the slot (last: slot %llu)\n",
	       touched, (int)upage_faults, (unsigned long long)last_slot);
	for (int i = 0; i < PAGES; i += 3) {
		if (p[i * PAGE + 7] != (char)i) {
			fprintf(stderr, "segv_handler: slot %d lost its write\n", i);
			return 1;
		}
	}

	/* A stray pointer: an address no mapping covers. */
	wild = mmap(NULL, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (wild == MAP_FAILED)
		return 1;
	if (!sigsetjmp(stray, 1))
		(void)*wild;
	printf("segv_handler: a stray pointer was told apart: %d stray fault(s), upage faults still %d\n",
	       (int)stray_faults, (int)upage_faults);

	if (upage_faults != touched || stray_faults != 1) {
		fprintf(stderr, "segv_handler: wrong fault counts\n");
		return 1;
	}
	printf("segv_handler: ok\n");
	return 0;
}
