/*
 * stripe: what is specific to Stripe's API (version 2023-08-16, pinned).
 *
 * Requests carry "Authorization: Bearer <secret key>" and "Stripe-Version"; bodies are
 * form-encoded (upstream/form); lists page with limit/starting_after/has_more. Errors are
 * {"error": {"type", "code", "param", "message"}} plus a Request-Id header and map to
 * SQLSTATEs by the table in stripe.c (shown in README.md).
 */
#ifndef APIGRES_STRIPE_H
#define APIGRES_STRIPE_H

#include <cJSON.h>

#include "upstream/call.h"
#include "upstream/error.h"
#include "upstream/http.h"
#include "upstream/provider.h"

#define STRIPE_API_VERSION "2023-08-16"
#define STRIPE_DEFAULT_BASE "https://api.stripe.com"

/* Fills err from a response that is not a success (status >= 400 or a transport
 * failure). */
void stripe_error_from_response(const http_response *resp, upstream_error *err);
/* The SQLSTATE for a Stripe error; sets *not_found for a missing record. */
const char *stripe_sqlstate(long status, const char *type, const char *code, const char *param,
                            const char *message, bool *not_found);

/* ---- records */

typedef struct stripe_client stripe_client;
/* base: e.g. https://api.stripe.com (or a fake); the key is kept only in memory. */
stripe_client *stripe_client_new(upstream_target *t, const char *base, const char *secret_key);
void stripe_client_free(stripe_client *sc);

/* The API's record after the call (borrowed, valid during the callback), or err (with
 * err->not_found for a record that does not exist upstream). */
typedef void (*stripe_record_cb)(const cJSON *record, const upstream_error *err, void *ctx);
/* fields: a JSON object of exactly the assigned fields, checked against the collection
 * first (provider_check_fields). A create carries a fresh Idempotency-Key, so its
 * retries never create twice. Each returns 0, or -1 with the callback already run. */
int stripe_create(stripe_client *sc, const struct provider_collection *c, const cJSON *fields,
                  enum ratelimit_priority prio, stripe_record_cb cb, void *ctx);
int stripe_update(stripe_client *sc, const struct provider_collection *c, const char *id,
                  const cJSON *fields, enum ratelimit_priority prio, stripe_record_cb cb, void *ctx);
int stripe_retrieve(stripe_client *sc, const struct provider_collection *c, const char *id,
                    enum ratelimit_priority prio, stripe_record_cb cb, void *ctx);
int stripe_delete(stripe_client *sc, const struct provider_collection *c, const char *id,
                  enum ratelimit_priority prio, stripe_record_cb cb, void *ctx);

/* ---- lists: GET base+path?limit=100&starting_after=<last id>, until has_more is false.
 * With ending_before instead, the listing goes towards newer objects
 * (ending_before=<newest id so far>) and hands each page over oldest first, so that its
 * cursor is always the newest object handed over: how /v1/events is followed. */

typedef struct stripe_list stripe_list;
/* One page's "data" array (borrowed, valid during the call), or NULL for a page handed
 * over unparsed (stripe_list_options.unparsed). Return nonzero to stop. */
typedef int (*stripe_page_cb)(stripe_list *l, const cJSON *data, void *ctx);
/* The end: err is NULL after the last page, else why the listing stopped;
 * err->not_found means the cursor object no longer exists upstream (deleted, or an event
 * past its retention): the listing cannot resume from it. */
typedef void (*stripe_list_done_cb)(stripe_list *l, const upstream_error *err, int pages, void *ctx);

typedef struct stripe_list_options {
    const char *base;          /* e.g. https://api.stripe.com */
    const char *path;          /* e.g. /v1/customers, may carry a query: /v1/events?type=x */
    const char *secret_key;
    const char *starting_after; /* resume after this id (a cursor), or NULL */
    const char *ending_before;  /* or: list the objects newer than this id, oldest first */
    enum ratelimit_priority priority;
    int limit;                 /* page size, 1..100; 0 = 100, the largest Stripe allows */
    /* Hand pages over without building their JSON (data NULL): for a caller that needs
     * only the body (stripe_list_page_body) and its count (stripe_list_page_count). A page
     * whose records cannot be counted that way is parsed and handed over as usual. The
     * next page is then asked for before the current one is handed over, so the API
     * serves it while the caller works; a caller that stops has it cancelled. Not with
     * ending_before. */
    bool unparsed;
} stripe_list_options;

/* Starts listing; callbacks run on the loop. Returns NULL on allocation failure. */
stripe_list *stripe_list_start(upstream_target *t, const stripe_list_options *o,
                               stripe_page_cb on_page, stripe_list_done_cb on_done, void *ctx);
/* The page being handed over as the API sent it (the whole response body, *len bytes, not
 * NUL-terminated); only during the page callback. */
const char *stripe_list_page_body(const stripe_list *l, size_t *len);
/* The number of records in the page being handed over; only during the page callback. */
int stripe_list_page_count(const stripe_list *l);
/* The id of the last object handed over: where a resumed listing starts. Borrowed. */
const char *stripe_list_cursor(const stripe_list *l);

#endif
