/*
 * stripe_events: following Stripe's /v1/events, the change feed the sync worker polls.
 *
 * A cursor is the id of the last event applied. Polling from it hands over every newer
 * event, oldest first, page by page (ending_before paging, 100 per page), so that after
 * each event the cursor can be stored and a restart resumes exactly there. Stripe keeps
 * events for 30 days: a cursor older than that is reported as expired, and the caller must
 * list the collections again instead (shared/DESIGN.md §5).
 *
 * Two starting points besides an event id:
 *   NULL - "from now": no event is handed over; the cursor becomes the newest event (the
 *          one to store before a backfill starts, so nothing during it is missed);
 *   ""   - "from the beginning" (an account that had no events when the cursor was set):
 *          every retained event, oldest first. The oldest is found by paging back first.
 */
#ifndef APIGRES_STRIPE_EVENTS_H
#define APIGRES_STRIPE_EVENTS_H

#include <cJSON.h>
#include <stdbool.h>

#include "upstream/call.h"
#include "upstream/error.h"

typedef struct stripe_events_options {
    const char *base;       /* e.g. https://api.stripe.com */
    const char *secret_key;
    const char *after;      /* an event id, "" or NULL: see above */
    enum ratelimit_priority priority;
    int limit;              /* page size, 1..100; 0 = 100 */
} stripe_events_options;

/* One event (borrowed, valid during the call). Return nonzero to stop after it: the
 * cursor is then this event. */
typedef int (*stripe_event_cb)(const cJSON *event, void *ctx);
/* The end. cursor (borrowed) is the last event handed over, or the starting point when
 * none was; expired: the starting event is past retention (nothing was handed over);
 * err: any other failure. count: events handed over. */
typedef void (*stripe_events_done_cb)(const upstream_error *err, bool expired, const char *cursor,
                                      int count, void *ctx);

/* Starts a poll; callbacks run on the loop, done exactly once (possibly before this
 * returns, on allocation failure). Returns 0, or -1 when done has already run. */
int stripe_events_poll(upstream_target *t, const stripe_events_options *o, stripe_event_cb on_event,
                       stripe_events_done_cb on_done, void *ctx);

#endif
