/*
 * A small epoll loop with timers, one per process. Level-triggered I/O
 * watchers; timers in a binary heap; deferred calls that run after the
 * current batch of events, so an object can be freed safely while other
 * events for it may still be pending in the same batch.
 */
#ifndef HALOYD_EVLOOP_H
#define HALOYD_EVLOOP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

struct ev_loop;
struct ev_io;
struct ev_timer;

typedef void ev_io_fn(struct ev_loop *l, struct ev_io *io, uint32_t events);
typedef void ev_timer_fn(struct ev_loop *l, struct ev_timer *t);
typedef void ev_defer_fn(void *arg);

struct ev_io {
	int fd;
	uint32_t events;	/* EPOLLIN | EPOLLOUT currently watched */
	ev_io_fn *fn;
	void *arg;
	int active;
};

struct ev_timer {
	uint64_t when_ms;	/* monotonic deadline */
	size_t heap_idx;	/* 0 when not armed */
	ev_timer_fn *fn;
	void *arg;
};

struct ev_loop *ev_loop_new(void);
void ev_loop_free(struct ev_loop *l);

/* Starts watching fd for events; io must stay valid until ev_io_stop. */
int ev_io_start(struct ev_loop *l, struct ev_io *io, int fd, uint32_t events,
    ev_io_fn *fn, void *arg);
int ev_io_modify(struct ev_loop *l, struct ev_io *io, uint32_t events);
/* Stops watching; pending events of this batch for io are dropped. */
void ev_io_stop(struct ev_loop *l, struct ev_io *io);
/*
 * ev_io_stop without the EPOLL_CTL_DEL, for an fd the caller closes next:
 * closing the last descriptor of a file takes it out of the epoll set. Only
 * for a file no other descriptor shares (dup, fork, SCM_RIGHTS), whose
 * events would otherwise keep coming for a freed io.
 */
void ev_io_forget(struct ev_loop *l, struct ev_io *io);

void ev_timer_init(struct ev_timer *t, ev_timer_fn *fn, void *arg);
/* (Re)arms t to fire once after ms milliseconds. */
int ev_timer_start(struct ev_loop *l, struct ev_timer *t, uint64_t ms);
void ev_timer_stop(struct ev_loop *l, struct ev_timer *t);
int ev_timer_armed(const struct ev_timer *t);

/* Runs fn(arg) after the current batch of events (for frees). */
int ev_defer(struct ev_loop *l, ev_defer_fn *fn, void *arg);
/*
 * ev_defer once per batch: nothing when *pending is set, else schedules
 * fn(arg) and sets it (fn clears it). Out of memory is logged; -1.
 */
int ev_defer_once(struct ev_loop *l, ev_defer_fn *fn, void *arg, uint8_t *pending);

/* Cached monotonic time in ms, updated once per loop iteration. */
uint64_t ev_now(const struct ev_loop *l);

/* Waits for and handles one batch of events; max_wait_ms -1 = until a timer. */
int ev_run_once(struct ev_loop *l, int max_wait_ms);
/* Runs until ev_break is called. */
int ev_run(struct ev_loop *l);
void ev_break(struct ev_loop *l);

#endif
