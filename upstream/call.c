/* call: see call.h. */
#include "upstream/call.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

enum call_state { CALL_QUEUED, CALL_RUNNING, CALL_BACKOFF, CALL_STARTING };

struct upstream_call {
    upstream_target *t;
    ratelimit_waiter waiter;
    uv_timer_t timer; /* backoff, and the first dispatch */
    http_request *req;
    enum call_state state;
    enum ratelimit_priority prio;
    bool may_duplicate;
    bool sending_now; /* in upstream_call_send_now: a failure must not be reported inside it */
    int attempts;
    uint64_t started_ms;
    upstream_done_cb cb;
    void *data;
    /* owned copies of the options */
    http_options opts;
    char *method, *url, *body;
    char **headers;
};

int upstream_target_init(upstream_target *t, uv_loop_t *loop, ratelimit *limit)
{
    t->loop = loop;
    t->limit = limit;
    t->timeout_ms = t->connect_timeout_ms = 0;
    t->ca_file = NULL;
    retry_policy_default(&t->retry);
    t->http = http_client_new(loop, 0);
    return t->http ? 0 : -1;
}

void upstream_target_close(upstream_target *t)
{
    http_client_free(t->http);
    t->http = NULL;
}

static _Thread_local uint64_t rng_state; /* per loop thread */

static double random01(void)
{
    if (rng_state == 0 && getrandom(&rng_state, sizeof rng_state, 0) != sizeof rng_state)
        rng_state = uv_hrtime() | 1;
    /* xorshift64*: jitter needs spread, not secrecy */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

void upstream_idempotency_key(char out[37])
{
    unsigned char b[16];
    if (getrandom(b, sizeof b, 0) != sizeof b) {
        for (int i = 0; i < 16; i++)
            b[i] = (unsigned char)(random01() * 256);
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
             b[13], b[14], b[15]);
}

static void call_free_timer_closed(uv_handle_t *h)
{
    upstream_call *c = h->data;
    for (char **p = c->headers; p && *p; p++)
        free(*p);
    free(c->headers);
    free(c->method);
    free(c->url);
    free(c->body);
    free(c);
}

static void call_finish(upstream_call *c, http_response *resp)
{
    c->cb(c, resp, c->attempts, c->data);
    uv_close((uv_handle_t *)&c->timer, call_free_timer_closed);
}

static void enqueue(uv_timer_t *t);

static void on_response(http_request *req, http_response *resp, void *data)
{
    upstream_call *c = data;
    c->req = NULL;
    ratelimit_release(c->t->limit);
    if (resp->outcome == HTTP_CANCELLED) {
        call_finish(c, resp);
        return;
    }
    const retry_policy *p = &c->t->retry;
    if (c->attempts < p->max_attempts &&
        retry_is_retryable(resp->outcome, resp->status, c->may_duplicate)) {
        char value[64];
        double retry_after = -1;
        if (resp->outcome == HTTP_OK &&
            http_response_header(resp, "retry-after", value, sizeof value) == 0)
            retry_after = retry_parse_retry_after(value, time(NULL));
        double delay = retry_delay_ms(p, c->attempts, retry_after, random01());
        double spent = (double)(uv_now(c->t->loop) - c->started_ms);
        if (spent + delay <= p->max_total_ms) {
            c->state = CALL_BACKOFF;
            uv_timer_start(&c->timer, enqueue, (uint64_t)delay, 0);
            return;
        }
    }
    call_finish(c, resp);
}

static void start_attempt(upstream_call *c)
{
    c->attempts++;
    c->state = CALL_RUNNING;
    c->req = http_request_start(c->t->http, &c->opts, on_response, c);
    if (!c->req && c->sending_now) {
        /* tried again from the loop, which reports a second failure */
        ratelimit_release(c->t->limit);
        c->attempts--;
        c->state = CALL_STARTING;
        uv_timer_start(&c->timer, enqueue, 0, 0);
        return;
    }
    if (!c->req) {
        ratelimit_release(c->t->limit);
        http_response failed;
        memset(&failed, 0, sizeof failed);
        failed.outcome = HTTP_FAILED;
        snprintf(failed.error, sizeof failed.error, "could not start the request (out of memory)");
        call_finish(c, &failed);
    }
}

static void on_granted(ratelimit_waiter *w) { start_attempt(w->data); }

static void enqueue(uv_timer_t *t)
{
    upstream_call *c = t->data;
    c->state = CALL_QUEUED;
    ratelimit_acquire(c->t->limit, &c->waiter, c->prio);
}

static char *dup_or_null(const char *s, size_t len)
{
    if (!s)
        return NULL;
    char *d = malloc(len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

upstream_call *upstream_call_start(upstream_target *t, const http_options *opts,
                                   enum ratelimit_priority prio, bool may_duplicate,
                                   upstream_done_cb cb, void *data)
{
    upstream_call *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    size_t nheaders = 0;
    while (opts->headers && opts->headers[nheaders])
        nheaders++;
    c->headers = calloc(nheaders + 1, sizeof *c->headers);
    c->method = dup_or_null(opts->method, strlen(opts->method));
    c->url = dup_or_null(opts->url, strlen(opts->url));
    c->body = dup_or_null(opts->body, opts->body_len);
    bool ok = c->headers && c->method && c->url && (!opts->body || c->body);
    for (size_t i = 0; ok && i < nheaders; i++)
        ok = (c->headers[i] = strdup(opts->headers[i])) != NULL;
    if (!ok) {
        for (size_t i = 0; c->headers && i < nheaders; i++)
            free(c->headers[i]);
        free(c->headers);
        free(c->method);
        free(c->url);
        free(c->body);
        free(c);
        return NULL;
    }
    c->opts = *opts;
    c->opts.method = c->method;
    c->opts.url = c->url;
    c->opts.body = c->body;
    c->opts.headers = (const char *const *)c->headers;
    c->opts.fresh_connection = opts->fresh_connection || may_duplicate;
    if (!c->opts.timeout_ms)
        c->opts.timeout_ms = t->timeout_ms;
    if (!c->opts.connect_timeout_ms)
        c->opts.connect_timeout_ms = t->connect_timeout_ms;
    if (!c->opts.ca_file)
        c->opts.ca_file = t->ca_file;
    c->t = t;
    c->prio = prio;
    c->may_duplicate = may_duplicate;
    c->cb = cb;
    c->data = data;
    c->waiter.granted = on_granted;
    c->waiter.data = c;
    c->started_ms = uv_now(t->loop);
    uv_timer_init(t->loop, &c->timer);
    c->timer.data = c;
    /* through the loop, so the callback never runs inside this function */
    c->state = CALL_STARTING;
    uv_timer_start(&c->timer, enqueue, 0, 0);
    return c;
}

void upstream_call_send_now(upstream_call *c)
{
    if (c->state != CALL_STARTING)
        return;
    uv_timer_stop(&c->timer);
    c->sending_now = true;
    enqueue(&c->timer);
    c->sending_now = false;
    if (c->state == CALL_RUNNING)
        http_client_flush(c->t->http);
}

void upstream_call_cancel(upstream_call *c)
{
    if (c->state == CALL_RUNNING && c->req) {
        http_request_cancel(c->req); /* on_response finishes the call */
        return;
    }
    if (c->state == CALL_QUEUED)
        ratelimit_cancel(c->t->limit, &c->waiter);
    uv_timer_stop(&c->timer);
    http_response cancelled;
    memset(&cancelled, 0, sizeof cancelled);
    cancelled.outcome = HTTP_CANCELLED;
    snprintf(cancelled.error, sizeof cancelled.error, "request cancelled");
    call_finish(c, &cancelled);
}
