/*
 * ratelimit: one sync's request budget, shared by proxy writes and the sync worker.
 *
 * At most `allowed` requests start in any window of `interval` seconds (a sliding window:
 * the start times of the last `allowed` requests are kept), and at most `max_concurrent`
 * are in flight (0 = no limit), as the management API we follow expresses it. Waiters are
 * served by priority, writes before sync traffic, first come first served within one.
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

typedef struct ratelimit {
    uint32_t allowed;     /* 0 = no rate limit */
    uint64_t interval_ms;
    int max_concurrent;   /* 0 = no limit */
    uint64_t *starts;     /* ring of the last `allowed` start times */
    uint32_t head, count;
    int in_flight;
    ratelimit_waiter *queue_head[RATELIMIT_PRIORITIES];
    ratelimit_waiter *queue_tail[RATELIMIT_PRIORITIES];
    uv_loop_t *loop;
    uv_timer_t timer;
} ratelimit;

/* Returns 0, or -1 for an invalid setting or no memory. loop may be NULL for the pure
 * core alone (tests). */
int ratelimit_init(ratelimit *rl, uv_loop_t *loop, uint32_t allowed, double interval_s,
                   int max_concurrent);
/* Frees the window; queued waiters are dropped (the caller cancels its own first). */
void ratelimit_close(ratelimit *rl);
/* 0 if a request may start at now_ms, -1 if only a release can unblock it (concurrency),
 * else the milliseconds until the window admits one. */
int64_t ratelimit_wait_ms(const ratelimit *rl, uint64_t now_ms);
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
