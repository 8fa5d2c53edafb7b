/*
 * error: an upstream failure as the client will see it: a SQLSTATE chosen so that an
 * application's ordinary Postgres error handling works (shared/DESIGN.md §4.4), the
 * API's own message, and a DETAIL with the provider's code, field, HTTP status and
 * request id. Anything that looks like a credential is masked before it is stored.
 *
 * Transport failures map the same way for every provider:
 *   timeout → 57014; upstream unreachable or 5xx after retries → 57P03 (retry later);
 *   rate limited after retries (429) or a conflicting concurrent change → 40001, the class
 *   drivers and ORMs already retry.
 */
#ifndef APIGRES_UPSTREAM_ERROR_H
#define APIGRES_UPSTREAM_ERROR_H

#include <stdbool.h>

#include "upstream/http.h"

typedef struct upstream_error {
    char sqlstate[6];
    char message[512];
    char detail[512];
    bool not_found; /* the record does not exist upstream (not an error for the write path) */
    bool applied;   /* the mutation went through; only reading its result back failed */
} upstream_error;

/* Masks API keys and tokens in s in place (sk_/rk_/pk_ keys, Salesforce session ids,
 * Bearer values): the mask keeps the kind and drops every secret character. */
void upstream_redact(char *s);
void upstream_error_set(upstream_error *err, const char *sqlstate, const char *message,
                        const char *detail);
/* Prefixes the message with what was being done, as the client will read it:
 * "Error updating customer cus_123: <the API's message>". id may be NULL (a create). */
void upstream_error_context(upstream_error *err, const char *verb, const char *object,
                            const char *id);
/* For responses that never reached the provider's error format (no response, timeouts,
 * bodies that are not the provider's JSON). Returns true when it filled err. */
bool upstream_error_from_transport(const char *provider, const http_response *resp,
                                   upstream_error *err);

#endif
