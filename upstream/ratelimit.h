/*
 * ratelimit: one sync's request budget, shared by proxy writes and the sync worker.
 *
 * At most `allowed` requests start in any window of `interval` seconds (a sliding window:
 * the start times of the last `allowed` requests are kept), and at most `max_concurrent`
 * are in flight (0 = no limit), as the management API we follow expresses it. Waiters are
 * served by priority, writes before sync traffic, first come first served within one, and
 * sync traffic that finds the window full is spaced out (see ratelimit_wait_ms).
 *
 * The budget itself (window, requests in flight, writes waiting) may be shared by the
 * limiters of several loops (threads): ratelimit_init_shared with the same key gives the
 * proxy's write path and the sync worker of one sync one budget, so that together they stay
 * within the API's limit, and sync traffic waits while a write of the other loop waits.
 * A limiter learns of the other loop's releases by polling (a few milliseconds) only while
 * it waits for one.
 *
 * ratelimit_wait_ms/ratelimit_take are the pure core (time passed in); acquire/release
 * drive it from the loop.
 */
#ifndef APIGRES_RATELIMIT_H
#define APIGRES_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

enum ratelimit_priority { RATELIMIT_WRITE = 0, RATELIMIT_SYNC = 1, RATELIMIT_PRIORITIES = 2 };

typedef struct ratelimit_waiter ratelimit_waiter;
struct ratelimit_waiter {
    ratelimit_waiter *next;
    void (*granted)(ratelimit_waiter *w); /* the request may start now */
    void *data;
};

typedef struct ratelimit_budget ratelimit_budget;

typedef struct ratelimit {
    ratelimit_budget *budget; /* this limiter's own, or shared by key (see above) */
    int writes_queued;        /* this limiter's share of budget's writes_waiting */
    ratelimit_waiter *queue_head[RATELIMIT_PRIORITIES];
    ratelimit_waiter *queue_tail[RATELIMIT_PRIORITIES];
    uv_loop_t *loop;
    uv_timer_t timer;
} ratelimit;

/* Returns 0, or -1 for an invalid setting or no memory. loop may be NULL for the pure
 * core alone (tests). */
int ratelimit_init(ratelimit *rl, uv_loop_t *loop, uint32_t allowed, double interval_s,
                   int max_concurrent);
/* The same, with the budget shared by every limiter initialized with key (until the last is
 * closed); the settings of the first one count. */
int ratelimit_init_shared(ratelimit *rl, uv_loop_t *loop, const char *key, uint32_t allowed, double interval_s,
                          int max_concurrent);
/* Frees the window (or drops a reference to the shared one); queued waiters are dropped
 * (the caller cancels its own first). */
void ratelimit_close(ratelimit *rl);
/* 0 if a request of priority prio may start at now_ms, -1 if only a release can unblock it
 * (concurrency), else the milliseconds until the window admits one. Sync traffic that finds
 * the window full also starts at most two requests in any 2 * interval/allowed, so that the
 * window's starts spread out and a write never waits long for a slot. */
int64_t ratelimit_wait_ms(const ratelimit *rl, enum ratelimit_priority prio, uint64_t now_ms);
/* Records a request started at now_ms (counts towards the window and in_flight). */
void ratelimit_take(ratelimit *rl, uint64_t now_ms);
/* Calls w->granted now if allowed and nobody of the same or a higher priority waits,
 * otherwise queues w; each grant must be matched by one ratelimit_release. */
void ratelimit_acquire(ratelimit *rl, ratelimit_waiter *w, enum ratelimit_priority prio);
/* Removes a queued waiter; false if it was not queued. */
bool ratelimit_cancel(ratelimit *rl, ratelimit_waiter *w);
/* A granted request has finished. */
void ratelimit_release(ratelimit *rl);

#endif
