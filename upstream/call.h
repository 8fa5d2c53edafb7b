/*
 * call: one upstream API request with everything around it: a place in the sync's rate
 * limit (writes before sync), the HTTP exchange, and retries per upstream/retry, each
 * retry waiting its backoff and queueing for the rate limit again.
 *
 * A request that could act twice if repeated (a POST that creates) must say so with
 * may_duplicate unless it carries an idempotency key (upstream_idempotency_key makes one);
 * such a request is never repeated after an ambiguous failure, not even by libcurl on a
 * reused connection (it gets a fresh one).
 */
#ifndef APIGRES_CALL_H
#define APIGRES_CALL_H

#include <stdbool.h>

#include "upstream/http.h"
#include "upstream/ratelimit.h"
#include "upstream/retry.h"

typedef struct upstream_target {
    uv_loop_t *loop;
    http_client *http;
    ratelimit *limit; /* shared by every call to this sync */
    retry_policy retry;
    /* for every call that does not set its own (0 / NULL = http's defaults) */
    long timeout_ms, connect_timeout_ms;
    const char *ca_file; /* borrowed for the target's life */
} upstream_target;

/* Fills t for loop: a new HTTP client, the default retry policy, limit as given.
 * Returns 0 or -1 (no HTTP client). upstream_target_close frees the HTTP client; the
 * loop must run afterwards for its handles to close. */
int upstream_target_init(upstream_target *t, uv_loop_t *loop, ratelimit *limit);
void upstream_target_close(upstream_target *t);

typedef struct upstream_call upstream_call;
/* The final response (valid during the callback only) and how many attempts it took. */
typedef void (*upstream_done_cb)(upstream_call *call, http_response *resp, int attempts,
                                 void *data);

/* Copies what it needs from opts; the callback runs exactly once, never from inside this
 * call. Returns NULL (no callback) on allocation failure. */
upstream_call *upstream_call_start(upstream_target *t, const http_options *opts,
                                   enum ratelimit_priority prio, bool may_duplicate,
                                   upstream_done_cb cb, void *data);
/* Ends the call; its callback runs with HTTP_CANCELLED before this returns. */
void upstream_call_cancel(upstream_call *call);
/* Sends a call just started now rather than at the loop's next turn, when the rate limit
 * grants it at once: for a caller about to be busy for a while, so that the API works on
 * it meanwhile. Its callback still runs from the loop, never inside this function. */
void upstream_call_send_now(upstream_call *call);
/* A random version-4 UUID, for Idempotency-Key headers. */
void upstream_idempotency_key(char out[37]);

#endif
