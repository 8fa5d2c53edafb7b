/*
 * salesforce: what is specific to the Salesforce REST API.
 *
 * Errors come as an array [{"message", "errorCode", "fields": [...]}] (the first entry
 * decides), OAuth failures as {"error", "error_description"}; responses carry
 * Sforce-Limit-Info. Error codes map to SQLSTATEs by the table in salesforce.c (shown in
 * README.md).
 */
#ifndef APIGRES_SALESFORCE_H
#define APIGRES_SALESFORCE_H

#include <stdbool.h>

#include <cJSON.h>

#include "upstream/call.h"
#include "upstream/error.h"
#include "upstream/http.h"
#include "upstream/provider.h"

void salesforce_error_from_response(const http_response *resp, upstream_error *err);
/* The SQLSTATE for a Salesforce errorCode; sets *not_found for a missing record. */
const char *salesforce_sqlstate(long status, const char *error_code, bool *not_found);

/* ---- the client: OAuth 2 bearer with the refresh-token flow, requests, SOQL paging */

typedef struct salesforce_client salesforce_client;

typedef struct salesforce_options {
    const char *instance_url;  /* e.g. https://example.my.salesforce.com; NULL until refreshed */
    const char *api_version;   /* e.g. "59.0" */
    const char *access_token;  /* a static token, or NULL to start with a refresh */
    const char *login_url;     /* e.g. https://login.salesforce.com (for the refresh flow) */
    const char *client_id;
    const char *client_secret;
    const char *refresh_token; /* NULL: no refresh, a 401 is final */
} salesforce_options;

/* Copies the options; NULL on allocation failure. */
salesforce_client *salesforce_client_new(upstream_target *t, const salesforce_options *o);
void salesforce_client_free(salesforce_client *sf);

/* A finished request: status and parsed JSON body (NULL for 204), or err. Borrowed. */
typedef void (*salesforce_done_cb)(long status, const cJSON *body, const upstream_error *err,
                                   void *ctx);
/* method + path below /services/data/vXX.X (e.g. "/sobjects/Contact/003..."), or a full
 * path starting with /services/; body is JSON or NULL. A 401 INVALID_SESSION_ID refreshes
 * the token once and repeats the request. */
int salesforce_request(salesforce_client *sf, const char *method, const char *path,
                       const char *body, enum ratelimit_priority prio, salesforce_done_cb cb,
                       void *ctx);

/* SOQL: every page's "records" array (borrowed) until done; nonzero from on_records stops. */
typedef int (*salesforce_records_cb)(const cJSON *records, long total_size, void *ctx);
typedef void (*salesforce_query_done_cb)(const upstream_error *err, int pages, void *ctx);
int salesforce_query(salesforce_client *sf, const char *soql, bool include_deleted,
                     enum ratelimit_priority prio, salesforce_records_cb on_records,
                     salesforce_query_done_cb on_done, void *ctx);
/* ---- describe: an sObject's fields as a provider collection (custom objects included) */

/* Builds a collection from a describe result; caller frees with
 * salesforce_collection_free. NULL if the describe is not usable. */
provider_collection *salesforce_collection_from_describe(const cJSON *describe);
void salesforce_collection_free(provider_collection *c);

/* ---- composite sObject collections: up to 200 records per request */

#define SALESFORCE_BATCH_MAX 200
/* One result per record, in order: the id, or err. */
typedef void (*salesforce_batch_cb)(int n, const char *const *ids, const upstream_error *errs,
                                    const upstream_error *request_err, void *ctx);
/* method "POST" (create), "PATCH" (update: records carry "Id") with records a JSON array
 * of field objects for one sObject type; all_or_none as Salesforce defines it. */
int salesforce_batch_write(salesforce_client *sf, const char *method, const char *sobject,
                           const cJSON *records, bool all_or_none, enum ratelimit_priority prio,
                           salesforce_batch_cb cb, void *ctx);
/* DELETE of up to 200 ids. */
int salesforce_batch_delete(salesforce_client *sf, const char *const *ids, int n, bool all_or_none,
                            enum ratelimit_priority prio, salesforce_batch_cb cb, void *ctx);

/* ---- changes: getUpdated / getDeleted between two ISO 8601 instants */
int salesforce_changes(salesforce_client *sf, const char *sobject, bool deleted, const char *start,
                       const char *end, enum ratelimit_priority prio, salesforce_done_cb cb, void *ctx);

/* The server's clock now (unix seconds), estimated from the Date header of the last
 * response (whole seconds) and the local clock since; 0 before any response. Windows of
 * changes (getDeleted, SystemModstamp) are in the server's time, not ours. */
double salesforce_server_time(const salesforce_client *sf);

/* The current access token, for tests that check a refresh happened. Borrowed. */
const char *salesforce_access_token(const salesforce_client *sf);

#endif
