/* retry: see retry.h. */
#include "upstream/retry.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void retry_policy_default(retry_policy *p)
{
    p->max_attempts = 5;
    p->base_delay_ms = 250;
    p->max_delay_ms = 20000;
    p->max_total_ms = 60000;
}

bool retry_is_retryable(enum http_outcome outcome, long status, bool may_duplicate)
{
    switch (outcome) {
    case HTTP_CONNECT_FAILED:
        return true;
    case HTTP_SEND_FAILED:
    case HTTP_TIMED_OUT:
        return !may_duplicate;
    case HTTP_OK:
        if (status == 429 || status == 503)
            return true;
        if (status == 500 || status == 502 || status == 504)
            return !may_duplicate;
        return false;
    default:
        return false;
    }
}

double retry_delay_ms(const retry_policy *p, int attempts, double retry_after_ms, double rand01)
{
    double ceiling = p->base_delay_ms;
    for (int i = 1; i < attempts && ceiling < p->max_delay_ms; i++)
        ceiling *= 2;
    if (ceiling > p->max_delay_ms)
        ceiling = p->max_delay_ms;
    double delay = rand01 * ceiling; /* full jitter: spreads clients that failed together */
    if (retry_after_ms > delay)
        delay = retry_after_ms;
    return delay;
}

double retry_parse_retry_after(const char *value, time_t now)
{
    if (!value || !*value)
        return -1;
    char *end;
    errno = 0;
    double secs = strtod(value, &end);
    if (end != value && *end == '\0' && errno == 0)
        return secs >= 0 ? secs * 1000.0 : -1;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *rest = strptime(value, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!rest || *rest)
        return -1;
    time_t at = timegm(&tm);
    return at > now ? (double)(at - now) * 1000.0 : 0;
}
