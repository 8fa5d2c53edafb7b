/* stripe_events: see stripe_events.h. */
#include "upstream/stripe_events.h"

#include <stdlib.h>
#include <string.h>

#include "upstream/json.h"
#include "upstream/stripe.h"

typedef struct events_poll {
    upstream_target *t;
    char *base;
    char key[200];
    enum ratelimit_priority priority;
    int limit;
    stripe_event_cb on_event;
    stripe_events_done_cb on_done;
    void *ctx;
    char cursor[256];
    int count;
    cJSON *oldest; /* while seeking the beginning: the oldest event seen so far */
} events_poll;

static void poll_finish(events_poll *p, const upstream_error *err, bool expired)
{
    p->on_done(err, expired, p->cursor, p->count, p->ctx);
    cJSON_Delete(p->oldest);
    memset(p->key, 0, sizeof p->key);
    free(p->base);
    free(p);
}

/* Hands one event over; returns nonzero when the caller wants to stop. */
static int deliver(events_poll *p, const cJSON *event)
{
    const char *id = json_string(event, "id");
    if (!id)
        return 0; /* not an event: nothing to resume from */
    snprintf(p->cursor, sizeof p->cursor, "%s", id);
    p->count++;
    return p->on_event(event, p->ctx);
}

static int start_list(events_poll *p, const char *starting_after, const char *ending_before, int limit,
                      stripe_page_cb on_page, stripe_list_done_cb on_done)
{
    stripe_list_options o = {.base = p->base, .path = "/v1/events", .secret_key = p->key,
                             .starting_after = starting_after, .ending_before = ending_before,
                             .priority = p->priority, .limit = limit};
    if (stripe_list_start(p->t, &o, on_page, on_done, p))
        return 0;
    upstream_error err;
    upstream_error_set(&err, "53200", "out of memory starting a stripe events request", NULL);
    poll_finish(p, &err, false);
    return -1;
}

/* ---- forward from an event: every newer one, oldest first */

static int on_forward_page(stripe_list *l, const cJSON *data, void *ctx)
{
    events_poll *p = ctx;
    const cJSON *event;
    cJSON_ArrayForEach(event, data)
    {
        if (deliver(p, event))
            return 1;
    }
    return 0;
}

static void on_forward_done(stripe_list *l, const upstream_error *err, int pages, void *ctx)
{
    events_poll *p = ctx;
    if (err && err->not_found)
        poll_finish(p, NULL, true);
    else
        poll_finish(p, err, false);
}

/* ---- from now: the newest event becomes the cursor */

static int on_latest_page(stripe_list *l, const cJSON *data, void *ctx)
{
    events_poll *p = ctx;
    const char *id = json_string(cJSON_GetArrayItem(data, 0), "id");
    if (id)
        snprintf(p->cursor, sizeof p->cursor, "%s", id);
    return 1;
}

static void on_latest_done(stripe_list *l, const upstream_error *err, int pages, void *ctx)
{
    poll_finish(ctx, err, false);
}

/* ---- from the beginning: page back to the oldest retained event, then forward */

static int on_seek_page(stripe_list *l, const cJSON *data, void *ctx)
{
    events_poll *p = ctx;
    const cJSON *last = cJSON_GetArrayItem(data, cJSON_GetArraySize(data) - 1);
    if (last) {
        cJSON_Delete(p->oldest);
        p->oldest = cJSON_Duplicate(last, true);
    }
    return 0;
}

static void on_seek_done(stripe_list *l, const upstream_error *err, int pages, void *ctx)
{
    events_poll *p = ctx;
    if (err) {
        /* the page we stood on expired while we paged: nothing is older than it anyway,
         * but we no longer know where to start, so the caller must re-list */
        poll_finish(p, err->not_found ? NULL : err, err->not_found);
        return;
    }
    if (!p->oldest) {
        poll_finish(p, NULL, false); /* still no events at all */
        return;
    }
    if (deliver(p, p->oldest)) {
        poll_finish(p, NULL, false);
        return;
    }
    start_list(p, NULL, p->cursor, p->limit, on_forward_page, on_forward_done);
}

int stripe_events_poll(upstream_target *t, const stripe_events_options *o, stripe_event_cb on_event,
                       stripe_events_done_cb on_done, void *ctx)
{
    events_poll *p = calloc(1, sizeof *p);
    char *b = strdup(o->base);
    if (!p || !b) {
        free(p);
        free(b);
        upstream_error err;
        upstream_error_set(&err, "53200", "out of memory starting a stripe events poll", NULL);
        on_done(&err, false, o->after ? o->after : "", 0, ctx);
        return -1;
    }
    p->t = t;
    p->base = b;
    snprintf(p->key, sizeof p->key, "%s", o->secret_key);
    p->priority = o->priority;
    p->limit = o->limit > 0 && o->limit <= 100 ? o->limit : 100;
    p->on_event = on_event;
    p->on_done = on_done;
    p->ctx = ctx;
    if (!o->after)
        return start_list(p, NULL, NULL, 1, on_latest_page, on_latest_done);
    if (!o->after[0])
        return start_list(p, NULL, NULL, 100, on_seek_page, on_seek_done);
    snprintf(p->cursor, sizeof p->cursor, "%s", o->after);
    return start_list(p, NULL, p->cursor, p->limit, on_forward_page, on_forward_done);
}
