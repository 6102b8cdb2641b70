// SPDX-License-Identifier: MIT
/*
 * fault_handler: how do I fill memory on demand, the first time each page
 * is touched, from a thread of my own?
 *
 * Every slot of a 256-page space is trapped (UPAGE_TRAP), then four
 * reader threads walk the space, each in its own random order. The first
 * touch of a page stops the thread and queues an event on the space's fd;
 * a handler thread polls the fd, reads the events, makes each page (here
 * a header naming the page and bytes derived from its number, where a
 * real program would decompress, decrypt or fetch it) and answers with
 * UPAGE_RESOLVE_COPY, lifting the trap so that later touches cost
 * nothing. Threads that touch a page while it is being made share its
 * event. Every byte the readers see is checked.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "upage.h"

#define PAGE 4096UL
#define PAGES 256
#define READERS 4

/* The byte at offset @i of page @page: slot number and offset mixed. */
static unsigned char byte_of(uint64_t page, uint64_t i)
{
	uint32_t x = (uint32_t)(page * 4099 + i) * 2654435761u;

	return (unsigned char)(x >> 24);
}

/* What page @page holds: what the handler makes and the readers expect. */
static void make_page(unsigned char *p, uint64_t page)
{
	for (uint64_t i = 0; i < PAGE; i++)
		p[i] = byte_of(page, i);
	snprintf((char *)p, 64, "page %llu, made on demand",
		 (unsigned long long)page);
}

struct handler {
	int fd;
	sem_t polling;		/* posted once the thread polls the fd */
	int stop;
	unsigned long events;	/* events read */
	unsigned long served;	/* pages made and copied in */
	unsigned long woken;	/* reader threads let go */
	int err;
};

/* Answer one event: make the page and copy it into the slot. */
static int serve(struct handler *h, const struct upage_trap_event *ev,
		 unsigned char *page)
{
	uint64_t woken = 0;
	int ret;

	make_page(page, ev->slot);
	ret = upage_resolve(h->fd, ev->slot, 1, UPAGE_RESOLVE_COPY,
			    UPAGE_RESOLVE_LIFT, page, &woken);
	if (ret == -EEXIST)	/* made already: let the threads see it */
		ret = upage_resolve(h->fd, ev->slot, 1, UPAGE_RESOLVE_MAP,
				    UPAGE_RESOLVE_LIFT, NULL, &woken);
	else if (!ret)
		h->served++;
	h->woken += woken;
	return ret;
}

static void *handler_run(void *arg)
{
	struct handler *h = arg;
	struct pollfd pfd = { .fd = h->fd, .events = POLLIN };
	struct upage_trap_event ev[16];
	unsigned char page[PAGE];
	int first = 1;

	while (!__atomic_load_n(&h->stop, __ATOMIC_ACQUIRE)) {
		ssize_t n;
		size_t i;
		int ret;

		/* Polling makes this process the space's handler. */
		ret = poll(&pfd, 1, first ? 0 : 100);
		if (first) {
			sem_post(&h->polling);
			first = 0;
		}
		if (ret < 0 && errno != EINTR) {
			h->err = -errno;
			break;
		}
		if (ret <= 0)
			continue;
		/* As many whole events as fit; the fd is non-blocking. */
		n = read(h->fd, ev, sizeof(ev));
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			h->err = -errno;
			break;
		}
		for (i = 0; i < n / sizeof(ev[0]); i++) {
			h->events++;
			ret = serve(h, &ev[i], page);
			if (ret) {
				/* Never leave a reader waiting: fail it. */
				upage_resolve(h->fd, ev[i].slot, 1,
					      UPAGE_RESOLVE_SIGBUS, 0, NULL, NULL);
				h->err = ret;
				return NULL;
			}
		}
	}
	return NULL;
}

struct reader {
	const unsigned char *p;
	unsigned int seed;
	unsigned long bad;	/* pages that did not read as made */
};

static void *reader_run(void *arg)
{
	struct reader *r = arg;
	unsigned char want[PAGE];
	unsigned int order[PAGES];
	unsigned int i;

	for (i = 0; i < PAGES; i++)
		order[i] = i;
	for (i = PAGES - 1; i > 0; i--) {
		unsigned int j = rand_r(&r->seed) % (i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (i = 0; i < PAGES; i++) {
		make_page(want, order[i]);
		if (memcmp(r->p + order[i] * PAGE, want, PAGE))
			r->bad++;
	}
	return NULL;
}

static int fail(const char *what, int err)
{
	fprintf(stderr, "fault_handler: %s: %s\n", what, strerror(-err));
	return 1;
}

int main(void)
{
	struct handler h = { .fd = -1 };
	struct reader r[READERS];
	pthread_t hth, rth[READERS];
	struct upage_slot_info *info;
	unsigned long bad = 0, trapped = 0;
	struct upage_stats st;
	unsigned char *p;
	int fd, ret, i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	/* A bug must fail the demo, not hang it. */
	alarm(60);
	fd = upage_open(O_CLOEXEC);
	if (fd < 0)
		return fail("open /dev/upage", fd);
	ret = upage_resize(fd, PAGES, NULL);
	if (ret)
		return fail("resize", ret);
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK))
		return fail("fcntl", -errno);
	p = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return fail("mmap", -errno);
	ret = upage_trap(fd, 0, PAGES, UPAGE_TRAP_READ);
	if (ret)
		return fail("UPAGE_TRAP", ret);
	printf("fault_handler: %d pages trapped, none made yet; %d threads read them in random orders\n",
	       PAGES, READERS);

	h.fd = fd;
	sem_init(&h.polling, 0, 0);
	if (pthread_create(&hth, NULL, handler_run, &h))
		return fail("pthread_create", -EAGAIN);
	sem_wait(&h.polling);
	for (i = 0; i < READERS; i++) {
		r[i] = (struct reader){ .p = p, .seed = 1 + i };
		if (pthread_create(&rth[i], NULL, reader_run, &r[i]))
			return fail("pthread_create", -EAGAIN);
	}
	for (i = 0; i < READERS; i++) {
		pthread_join(rth[i], NULL);
		bad += r[i].bad;
	}
	__atomic_store_n(&h.stop, 1, __ATOMIC_RELEASE);
	pthread_join(hth, NULL);
	if (h.err)
		return fail("handler", h.err);

	upage_stats(fd, &st);
	printf("fault_handler: the handler read %lu events and made %lu pages; %lu reader stops were answered\n",
	       h.events, h.served, h.woken);
	printf("fault_handler: module counters: %llu events queued, %llu threads let go\n",
	       (unsigned long long)st.out_traps,
	       (unsigned long long)st.out_traps_resolved);
	printf("fault_handler: slot 42 reads \"%s\"\n", (char *)p + 42 * PAGE);

	info = calloc(PAGES, sizeof(*info));
	if (!info)
		return fail("calloc", -ENOMEM);
	ret = upage_query(fd, 0, PAGES, info);
	if (ret)
		return fail("UPAGE_QUERY", ret);
	for (i = 0; i < PAGES; i++)
		trapped += !!(info[i].state & UPAGE_SLOT_TRAP_READ);
	free(info);
	munmap(p, PAGES * PAGE);
	close(fd);

	if (bad || h.served != PAGES || h.events != PAGES || trapped) {
		printf("fault_handler: FAILED: %lu pages read wrong, %lu made, %lu events, %lu still trapped\n",
		       bad, h.served, h.events, trapped);
		return 1;
	}
	printf("fault_handler: ok: %d pages made on demand by the handler thread, each once, every byte verified\n",
	       PAGES);
	return 0;
}
