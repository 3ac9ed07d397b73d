/*
 * The epoll loop. Watchers that are stopped during a batch are marked so
 * their remaining events in that batch are skipped; owners free memory via
 * ev_defer, which runs after the batch.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "share/evloop.h"
#include "share/log.h"
#include "share/util.h"

#define EV_BATCH 256

struct ev_defer_item {
	ev_defer_fn *fn;
	void *arg;
};

struct ev_loop {
	int epfd;
	int stop;
	uint64_t now;
	struct ev_timer **heap;	/* 1-based binary min-heap */
	size_t nheap, capheap;
	struct ev_defer_item *defer;
	size_t ndefer, capdefer;
	struct epoll_event ev[EV_BATCH];
	int nev, cur;		/* the batch being dispatched */
};

struct ev_loop *
ev_loop_new(void)
{
	struct ev_loop *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	if ((l->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		free(l);
		return NULL;
	}
	l->now = util_now_ms();
	return l;
}

void
ev_loop_free(struct ev_loop *l)
{
	if (l == NULL)
		return;
	close(l->epfd);
	free(l->heap);
	free(l->defer);
	free(l);
}

int
ev_io_start(struct ev_loop *l, struct ev_io *io, int fd, uint32_t events,
    ev_io_fn *fn, void *arg)
{
	struct epoll_event e = { .events = events, .data.ptr = io };

	io->fd = fd;
	io->events = events;
	io->fn = fn;
	io->arg = arg;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &e) == -1)
		return -1;
	io->active = 1;
	return 0;
}

int
ev_io_modify(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	struct epoll_event e = { .events = events, .data.ptr = io };

	if (!io->active)
		return -1;
	if (io->events == events)
		return 0;
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &e) == -1)
		return -1;
	io->events = events;
	return 0;
}

void
ev_io_forget(struct ev_loop *l, struct ev_io *io)
{
	int i;

	if (!io->active)
		return;
	io->active = 0;
	/* Drop events still queued for io in this batch. */
	for (i = l->cur + 1; i < l->nev; i++)
		if (l->ev[i].data.ptr == io)
			l->ev[i].data.ptr = NULL;
}

void
ev_io_stop(struct ev_loop *l, struct ev_io *io)
{
	if (io->active)
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	ev_io_forget(l, io);
}

/* --- timers: binary min-heap on when_ms, 1-based, heap_idx 0 = unarmed */

static void
heap_swap(struct ev_loop *l, size_t a, size_t b)
{
	struct ev_timer *t = l->heap[a];

	l->heap[a] = l->heap[b];
	l->heap[b] = t;
	l->heap[a]->heap_idx = a;
	l->heap[b]->heap_idx = b;
}

static void
heap_up(struct ev_loop *l, size_t i)
{
	while (i > 1 && l->heap[i / 2]->when_ms > l->heap[i]->when_ms) {
		heap_swap(l, i, i / 2);
		i /= 2;
	}
}

static void
heap_down(struct ev_loop *l, size_t i)
{
	for (;;) {
		size_t m = i, c = 2 * i;

		if (c <= l->nheap && l->heap[c]->when_ms < l->heap[m]->when_ms)
			m = c;
		if (c + 1 <= l->nheap && l->heap[c + 1]->when_ms < l->heap[m]->when_ms)
			m = c + 1;
		if (m == i)
			return;
		heap_swap(l, i, m);
		i = m;
	}
}

void
ev_timer_init(struct ev_timer *t, ev_timer_fn *fn, void *arg)
{
	memset(t, 0, sizeof(*t));
	t->fn = fn;
	t->arg = arg;
}

int
ev_timer_armed(const struct ev_timer *t)
{
	return t->heap_idx != 0;
}

void
ev_timer_stop(struct ev_loop *l, struct ev_timer *t)
{
	size_t i = t->heap_idx;

	if (i == 0)
		return;
	t->heap_idx = 0;
	if (i != l->nheap) {
		struct ev_timer *moved = l->heap[l->nheap];

		l->heap[i] = moved;
		moved->heap_idx = i;
		l->nheap--;
		heap_up(l, i);
		heap_down(l, moved->heap_idx);
	} else {
		l->nheap--;
	}
}

int
ev_timer_start(struct ev_loop *l, struct ev_timer *t, uint64_t ms)
{
	ev_timer_stop(l, t);
	if (l->nheap + 1 >= l->capheap) {
		size_t cap = l->capheap ? l->capheap * 2 : 64;
		struct ev_timer **h = realloc(l->heap, cap * sizeof(*h));

		if (h == NULL)
			return -1;
		l->heap = h;
		l->capheap = cap;
	}
	t->when_ms = l->now + ms;
	l->heap[++l->nheap] = t;
	t->heap_idx = l->nheap;
	heap_up(l, l->nheap);
	return 0;
}

static void
run_timers(struct ev_loop *l)
{
	/*
	 * At most as many as were armed when the pass began: a timer that
	 * re-arms itself for 0 ms fires again next iteration, after I/O,
	 * instead of keeping this pass going for ever.
	 */
	size_t budget = l->nheap;

	while (budget-- > 0 && l->nheap > 0 && l->heap[1]->when_ms <= l->now) {
		struct ev_timer *t = l->heap[1];

		ev_timer_stop(l, t);
		t->fn(l, t);
	}
}

int
ev_defer(struct ev_loop *l, ev_defer_fn *fn, void *arg)
{
	if (l->ndefer == l->capdefer) {
		size_t cap = l->capdefer ? l->capdefer * 2 : 64;
		struct ev_defer_item *d = realloc(l->defer, cap * sizeof(*d));

		if (d == NULL)
			return -1;
		l->defer = d;
		l->capdefer = cap;
	}
	l->defer[l->ndefer++] = (struct ev_defer_item){ fn, arg };
	return 0;
}

int
ev_defer_once(struct ev_loop *l, ev_defer_fn *fn, void *arg, uint8_t *pending)
{
	if (*pending)
		return 0;
	if (ev_defer(l, fn, arg) == -1) {
		log_warnx("out of memory deferring a call");
		return -1;
	}
	*pending = 1;
	return 0;
}

static void
run_deferred(struct ev_loop *l)
{
	size_t i;

	/* A deferred call may defer more; those run in this pass too. */
	for (i = 0; i < l->ndefer; i++)
		l->defer[i].fn(l->defer[i].arg);
	l->ndefer = 0;
}

uint64_t
ev_now(const struct ev_loop *l)
{
	return l->now;
}

int
ev_run_once(struct ev_loop *l, int max_wait_ms)
{
	int wait = max_wait_ms;

	if (l->nheap > 0) {
		uint64_t now = util_now_ms(), when = l->heap[1]->when_ms;
		int until = when <= now ? 0 : (int)(when - now > 60000 ? 60000 : when - now);

		if (wait < 0 || until < wait)
			wait = until;
	}
	/* Calls deferred outside any callback run now, not after the next event. */
	if (l->ndefer > 0)
		wait = 0;
	l->nev = epoll_wait(l->epfd, l->ev, EV_BATCH, wait);
	l->now = util_now_ms();
	if (l->nev == -1) {
		l->nev = 0;
		if (errno != EINTR)
			return -1;
	}
	for (l->cur = 0; l->cur < l->nev; l->cur++) {
		struct ev_io *io = l->ev[l->cur].data.ptr;

		if (io != NULL && io->active)
			io->fn(l, io, l->ev[l->cur].events);
	}
	l->nev = 0;
	l->cur = 0;
	run_deferred(l);
	run_timers(l);
	run_deferred(l);
	return 0;
}

int
ev_run(struct ev_loop *l)
{
	l->stop = 0;
	while (!l->stop)
		if (ev_run_once(l, -1) == -1)
			return -1;
	return 0;
}

void
ev_break(struct ev_loop *l)
{
	l->stop = 1;
}
