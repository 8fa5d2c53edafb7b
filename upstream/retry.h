/*
 * retry: when an upstream request may be tried again, and how long to wait first.
 *
 * Retried: a connection that could not be made (nothing was sent), 429 and 503 (the server
 * says it did not act), and, only when a repeat cannot duplicate the effect (the request
 * is idempotent or carries an idempotency key), broken connections, timeouts and
 * 500/502/504. Waits grow exponentially with full jitter, never shorter than the
 * server's Retry-After, and the attempts are bounded in number and in total time.
 */
#ifndef APIGRES_RETRY_H
#define APIGRES_RETRY_H

#include <stdbool.h>
#include <time.h>

#include "upstream/http.h"

typedef struct retry_policy {
    int max_attempts;     /* including the first */
    double base_delay_ms; /* first backoff ceiling */
    double max_delay_ms;  /* ceiling of one wait (Retry-After may exceed it up to the total) */
    double max_total_ms;  /* no attempt starts after this much time since the first */
} retry_policy;

void retry_policy_default(retry_policy *p);
/* may_duplicate: a repeat could act twice (a POST create without an idempotency key). */
bool retry_is_retryable(enum http_outcome outcome, long status, bool may_duplicate);
/* The wait before attempt number `attempts + 1`, given a Retry-After in ms (< 0: none)
 * and a uniform random number in [0, 1). */
double retry_delay_ms(const retry_policy *p, int attempts, double retry_after_ms, double rand01);
/* Retry-After as delta-seconds or an HTTP-date, in ms from now; -1 if absent or invalid. */
double retry_parse_retry_after(const char *value, time_t now);

#endif
