/* ratelimit: see ratelimit.h. */
#include "upstream/ratelimit.h"

#include <stdlib.h>
#include <string.h>

#define MAX_WINDOW 10000000u /* start times kept at most (80 MB); larger budgets are refused */

int ratelimit_init(ratelimit *rl, uv_loop_t *loop, uint32_t allowed, double interval_s,
                   int max_concurrent)
{
    memset(rl, 0, sizeof *rl);
    if (allowed > MAX_WINDOW || max_concurrent < 0 || (allowed > 0 && !(interval_s > 0)))
        return -1;
    rl->allowed = allowed;
    rl->interval_ms = (uint64_t)(interval_s * 1000.0 + 0.5);
    rl->max_concurrent = max_concurrent;
    if (allowed > 0) {
        rl->starts = calloc(allowed, sizeof *rl->starts);
        if (!rl->starts)
            return -1;
    }
    rl->loop = loop;
    if (loop) {
        uv_timer_init(loop, &rl->timer);
        rl->timer.data = rl;
    }
    return 0;
}

void ratelimit_close(ratelimit *rl)
{
    free(rl->starts);
    rl->starts = NULL;
    if (rl->loop)
        uv_close((uv_handle_t *)&rl->timer, NULL);
}

int64_t ratelimit_wait_ms(const ratelimit *rl, uint64_t now_ms)
{
    if (rl->max_concurrent > 0 && rl->in_flight >= rl->max_concurrent)
        return -1;
    if (rl->allowed == 0 || rl->count < rl->allowed)
        return 0;
    uint64_t oldest = rl->starts[rl->head];
    uint64_t free_at = oldest + rl->interval_ms;
    return free_at <= now_ms ? 0 : (int64_t)(free_at - now_ms);
}

void ratelimit_take(ratelimit *rl, uint64_t now_ms)
{
    rl->in_flight++;
    if (rl->allowed == 0)
        return;
    if (rl->count < rl->allowed) {
        rl->starts[(rl->head + rl->count) % rl->allowed] = now_ms;
        rl->count++;
    } else {
        /* the oldest start left the window: its slot takes the new one */
        rl->starts[rl->head] = now_ms;
        rl->head = (rl->head + 1) % rl->allowed;
    }
}

static void dispatch(ratelimit *rl);

static void on_timer(uv_timer_t *t) { dispatch(t->data); }

static void dispatch(ratelimit *rl)
{
    for (int p = 0; p < RATELIMIT_PRIORITIES; p++) {
        while (rl->queue_head[p]) {
            uint64_t now = uv_now(rl->loop);
            int64_t wait = ratelimit_wait_ms(rl, now);
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
            ratelimit_take(rl, now);
            w->granted(w);
        }
    }
}

void ratelimit_acquire(ratelimit *rl, ratelimit_waiter *w, enum ratelimit_priority prio)
{
    bool ahead = false;
    for (int p = 0; p <= (int)prio; p++)
        ahead |= rl->queue_head[p] != NULL;
    uint64_t now = uv_now(rl->loop);
    if (!ahead && ratelimit_wait_ms(rl, now) == 0) {
        ratelimit_take(rl, now);
        w->granted(w);
        return;
    }
    w->next = NULL;
    if (rl->queue_tail[prio])
        rl->queue_tail[prio]->next = w;
    else
        rl->queue_head[prio] = w;
    rl->queue_tail[prio] = w;
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
            return true;
        }
    }
    return false;
}

void ratelimit_release(ratelimit *rl)
{
    if (rl->in_flight > 0)
        rl->in_flight--;
    dispatch(rl);
}
