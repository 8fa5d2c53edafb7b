/* ratelimit: see ratelimit.h. */
#include "upstream/ratelimit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WINDOW 10000000u /* start times kept at most (80 MB); larger budgets are refused */
#define POLL_MS 5            /* how often a waiter looks at a budget another loop shares */

struct ratelimit_budget {
    pthread_mutex_t lock; /* loops on several threads take from one budget */
    uint32_t allowed;     /* 0 = no rate limit */
    uint64_t interval_ms;
    int max_concurrent;   /* 0 = no limit */
    uint64_t *starts;     /* ring of the last `allowed` start times */
    uint32_t head, count;
    int in_flight;
    int writes_waiting;   /* writes queued in any of the limiters sharing it */
    /* sharing: the process's budgets by key */
    char *key;
    int refs;
    ratelimit_budget *next;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static ratelimit_budget *registry;

static ratelimit_budget *budget_new(uint32_t allowed, double interval_s, int max_concurrent)
{
    if (allowed > MAX_WINDOW || max_concurrent < 0 || (allowed > 0 && !(interval_s > 0)))
        return NULL;
    ratelimit_budget *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->allowed = allowed;
    b->interval_ms = (uint64_t)(interval_s * 1000.0 + 0.5);
    b->max_concurrent = max_concurrent;
    b->refs = 1;
    if (allowed > 0 && !(b->starts = calloc(allowed, sizeof *b->starts))) {
        free(b);
        return NULL;
    }
    pthread_mutex_init(&b->lock, NULL);
    return b;
}

static void budget_free(ratelimit_budget *b)
{
    pthread_mutex_destroy(&b->lock);
    free(b->starts);
    free(b->key);
    free(b);
}

static int init_with(ratelimit *rl, uv_loop_t *loop, ratelimit_budget *b)
{
    memset(rl, 0, sizeof *rl);
    if (!b)
        return -1;
    rl->budget = b;
    rl->loop = loop;
    if (loop) {
        uv_timer_init(loop, &rl->timer);
        rl->timer.data = rl;
    }
    return 0;
}

int ratelimit_init(ratelimit *rl, uv_loop_t *loop, uint32_t allowed, double interval_s,
                   int max_concurrent)
{
    return init_with(rl, loop, budget_new(allowed, interval_s, max_concurrent));
}

int ratelimit_init_shared(ratelimit *rl, uv_loop_t *loop, const char *key, uint32_t allowed, double interval_s,
                          int max_concurrent)
{
    pthread_mutex_lock(&registry_lock);
    ratelimit_budget *b = registry;
    while (b && strcmp(b->key, key) != 0)
        b = b->next;
    if (b) {
        b->refs++;
    } else if ((b = budget_new(allowed, interval_s, max_concurrent))) {
        if ((b->key = strdup(key))) {
            b->next = registry;
            registry = b;
        } else {
            budget_free(b);
            b = NULL;
        }
    }
    pthread_mutex_unlock(&registry_lock);
    return init_with(rl, loop, b);
}

void ratelimit_close(ratelimit *rl)
{
    ratelimit_budget *b = rl->budget;
    if (rl->loop)
        uv_close((uv_handle_t *)&rl->timer, NULL);
    rl->budget = NULL;
    if (!b)
        return;
    pthread_mutex_lock(&b->lock);
    b->writes_waiting -= rl->writes_queued;
    pthread_mutex_unlock(&b->lock);
    pthread_mutex_lock(&registry_lock);
    bool last = --b->refs == 0;
    if (last && b->key) {
        ratelimit_budget **p = &registry;
        while (*p != b)
            p = &(*p)->next;
        *p = b->next;
    }
    pthread_mutex_unlock(&registry_lock);
    if (last)
        budget_free(b);
}

static int64_t wait_locked(const ratelimit_budget *b, uint64_t now_ms)
{
    if (b->max_concurrent > 0 && b->in_flight >= b->max_concurrent)
        return -1;
    if (b->allowed == 0 || b->count < b->allowed)
        return 0;
    uint64_t free_at = b->starts[b->head] + b->interval_ms;
    return free_at <= now_ms ? 0 : (int64_t)(free_at - now_ms);
}

static void take_locked(ratelimit_budget *b, uint64_t now_ms)
{
    b->in_flight++;
    if (b->allowed == 0)
        return;
    if (b->count < b->allowed) {
        b->starts[(b->head + b->count) % b->allowed] = now_ms;
        b->count++;
    } else {
        /* the oldest start left the window: its slot takes the new one */
        b->starts[b->head] = now_ms;
        b->head = (b->head + 1) % b->allowed;
    }
}

void ratelimit_take(ratelimit *rl, uint64_t now_ms)
{
    ratelimit_budget *b = rl->budget;
    pthread_mutex_lock(&b->lock);
    take_locked(b, now_ms);
    pthread_mutex_unlock(&b->lock);
}

/* Sync traffic that finds the window full starts at most PACE_STARTS requests in any
 * PACE_STARTS * interval/allowed. Without this, a window filled in a burst frees its slots
 * in the same burst a window later, the waiting sync takes them back at once, and the burst
 * repeats forever: a write that comes just after one waits for the next, up to a whole
 * interval. Spaced starts free a slot about every interval/allowed, so a write waits about
 * that. Two rather than one: a request that took longer than interval/allowed may be
 * followed at once by the next, which keeps the sync's rate when its requests take about
 * that long (simulated: 90 rather than 88 of 100 requests for requests of 20-80 ms at 20
 * per second, 94 unpaced), and writes among a backfill waited less (70 ms at most rather
 * than 150 in the case of unit_upstream). */
#define PACE_STARTS 2u

static int64_t pace_locked(const ratelimit_budget *b, uint64_t now_ms)
{
    uint32_t n = b->allowed < PACE_STARTS ? b->allowed : PACE_STARTS;
    if (n == 0 || b->count < b->allowed)
        return 0;
    uint64_t nth_latest = b->starts[(b->head + b->count - n) % b->allowed];
    uint64_t next = nth_latest + n * b->interval_ms / b->allowed;
    return next <= now_ms ? 0 : (int64_t)(next - now_ms);
}

static int64_t admit_locked(const ratelimit_budget *b, enum ratelimit_priority prio, uint64_t now_ms)
{
    int64_t wait = wait_locked(b, now_ms);
    return wait == 0 && prio != RATELIMIT_WRITE ? pace_locked(b, now_ms) : wait;
}

int64_t ratelimit_wait_ms(const ratelimit *rl, enum ratelimit_priority prio, uint64_t now_ms)
{
    ratelimit_budget *b = rl->budget;
    pthread_mutex_lock(&b->lock);
    int64_t wait = admit_locked(b, prio, now_ms);
    pthread_mutex_unlock(&b->lock);
    return wait;
}

/* Takes a start for a request of priority prio if the budget admits one now: 0, or what
 * ratelimit_wait_ms would say. Sync traffic also waits while a write waits anywhere. */
static int64_t try_take(ratelimit *rl, enum ratelimit_priority prio, uint64_t now_ms)
{
    ratelimit_budget *b = rl->budget;
    pthread_mutex_lock(&b->lock);
    int64_t wait = admit_locked(b, prio, now_ms);
    if (wait == 0 && prio != RATELIMIT_WRITE && b->writes_waiting > rl->writes_queued)
        wait = POLL_MS; /* another loop's write goes first */
    if (wait == 0)
        take_locked(b, now_ms);
    bool shared = b->key != NULL;
    pthread_mutex_unlock(&b->lock);
    /* a release on another loop does not wake us: look again shortly */
    return wait < 0 && shared ? POLL_MS : wait;
}

static void writes_queued(ratelimit *rl, int delta)
{
    rl->writes_queued += delta;
    pthread_mutex_lock(&rl->budget->lock);
    rl->budget->writes_waiting += delta;
    pthread_mutex_unlock(&rl->budget->lock);
}

static void dispatch(ratelimit *rl);

static void on_timer(uv_timer_t *t) { dispatch(t->data); }

static void dispatch(ratelimit *rl)
{
    for (int p = 0; p < RATELIMIT_PRIORITIES; p++) {
        while (rl->queue_head[p]) {
            int64_t wait = try_take(rl, (enum ratelimit_priority)p, uv_now(rl->loop));
            if (wait != 0) {
                if (wait > 0)
                    uv_timer_start(&rl->timer, on_timer, (uint64_t)wait, 0);
                return; /* lower priorities wait behind this one */
            }
            ratelimit_waiter *w = rl->queue_head[p];
            rl->queue_head[p] = w->next;
            if (!rl->queue_head[p])
                rl->queue_tail[p] = NULL;
            w->next = NULL;
            if (p == RATELIMIT_WRITE)
                writes_queued(rl, -1);
            w->granted(w);
        }
    }
}

void ratelimit_acquire(ratelimit *rl, ratelimit_waiter *w, enum ratelimit_priority prio)
{
    bool ahead = false;
    for (int p = 0; p <= (int)prio; p++)
        ahead |= rl->queue_head[p] != NULL;
    if (!ahead && try_take(rl, prio, uv_now(rl->loop)) == 0) {
        w->granted(w);
        return;
    }
    w->next = NULL;
    if (rl->queue_tail[prio])
        rl->queue_tail[prio]->next = w;
    else
        rl->queue_head[prio] = w;
    rl->queue_tail[prio] = w;
    if (prio == RATELIMIT_WRITE)
        writes_queued(rl, 1);
    dispatch(rl);
}

bool ratelimit_cancel(ratelimit *rl, ratelimit_waiter *w)
{
    for (int p = 0; p < RATELIMIT_PRIORITIES; p++) {
        ratelimit_waiter *prev = NULL;
        for (ratelimit_waiter *q = rl->queue_head[p]; q; prev = q, q = q->next) {
            if (q != w)
                continue;
            if (prev)
                prev->next = q->next;
            else
                rl->queue_head[p] = q->next;
            if (rl->queue_tail[p] == q)
                rl->queue_tail[p] = prev;
            q->next = NULL;
            if (p == RATELIMIT_WRITE)
                writes_queued(rl, -1);
            return true;
        }
    }
    return false;
}

void ratelimit_release(ratelimit *rl)
{
    ratelimit_budget *b = rl->budget;
    pthread_mutex_lock(&b->lock);
    if (b->in_flight > 0)
        b->in_flight--;
    pthread_mutex_unlock(&b->lock);
    dispatch(rl);
}
