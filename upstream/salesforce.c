/* salesforce: see salesforce.h. */
#include "upstream/salesforce.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upstream/form.h"

static const struct {
    const char *code;
    const char *sqlstate;
} sf_codes[] = {
    /* validation of a field */
    {"INVALID_EMAIL_ADDRESS", "23514"},
    {"FIELD_CUSTOM_VALIDATION_EXCEPTION", "23514"},
    {"FIELD_INTEGRITY_EXCEPTION", "23514"},
    {"INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "22023"},
    {"INVALID_TYPE_ON_FIELD_IN_RECORD", "22023"},
    {"NUMBER_OUTSIDE_VALID_RANGE", "22003"},
    {"STRING_TOO_LONG", "22001"},
    {"MALFORMED_ID", "22P02"},
    {"REQUIRED_FIELD_MISSING", "23502"},
    {"DUPLICATE_VALUE", "23505"},
    {"DUPLICATES_DETECTED", "23505"},
    {"INVALID_CROSS_REFERENCE_KEY", "23503"},
    {"INVALID_FIELD_FOR_INSERT_UPDATE", "428C9"},
    {"INVALID_FIELD", "42703"},
    {"MALFORMED_QUERY", "42601"},
    /* who may do what */
    {"INVALID_SESSION_ID", "42501"},
    {"INSUFFICIENT_ACCESS_OR_READONLY", "42501"},
    {"INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY", "42501"},
    {"API_DISABLED_FOR_ORG", "42501"},
    {"invalid_grant", "42501"},
    {"invalid_client", "42501"},
    {"invalid_client_id", "42501"},
    /* try again */
    {"REQUEST_LIMIT_EXCEEDED", "40001"},
    {"UNABLE_TO_LOCK_ROW", "40001"},
    {"SERVER_UNAVAILABLE", "57P03"},
};

const char *salesforce_sqlstate(long status, const char *error_code, bool *not_found)
{
    *not_found = false;
    if (error_code && (strcmp(error_code, "NOT_FOUND") == 0 || strcmp(error_code, "ENTITY_IS_DELETED") == 0)) {
        *not_found = true;
        return "02000";
    }
    for (size_t i = 0; error_code && i < sizeof sf_codes / sizeof *sf_codes; i++)
        if (strcmp(error_code, sf_codes[i].code) == 0)
            return sf_codes[i].sqlstate;
    if (status == 404) {
        *not_found = true;
        return "02000";
    }
    if (status == 401 || status == 403)
        return "42501";
    if (status == 429)
        return "40001";
    if (status >= 500)
        return "57P03";
    return "22023";
}

static const char *json_string(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

void salesforce_error_from_response(const http_response *resp, upstream_error *err)
{
    if (resp->outcome != HTTP_OK) {
        upstream_error_from_transport("salesforce", resp, err);
        return;
    }
    cJSON *root = cJSON_ParseWithLength(resp->body.data ? resp->body.data : "", resp->body.len);
    const cJSON *first = cJSON_IsArray(root) ? cJSON_GetArrayItem(root, 0) : root;
    const char *code = json_string(first, "errorCode");
    const char *message = json_string(first, "message");
    if (!code && (code = json_string(first, "error")) != NULL) /* OAuth */
        message = json_string(first, "error_description");
    if (!code) {
        if (!upstream_error_from_transport("salesforce", resp, err)) {
            char msg[128];
            snprintf(msg, sizeof msg, "unexpected response from salesforce (HTTP %ld)", resp->status);
            upstream_error_set(err, "XX000", msg, "salesforce body is not an error list");
        }
        cJSON_Delete(root);
        return;
    }
    char fields[160] = "";
    const cJSON *f;
    size_t n = 0;
    cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(first, "fields"))
    {
        if (cJSON_IsString(f) && n < sizeof fields - 2)
            n += (size_t)snprintf(fields + n, sizeof fields - n, "%s%s", n ? "," : "", f->valuestring);
    }
    char limit[80] = "";
    http_response_header(resp, "sforce-limit-info", limit, sizeof limit);
    char detail[512];
    snprintf(detail, sizeof detail, "salesforce %s%s%s status=%ld%s%s", code, fields[0] ? " fields=" : "",
             fields, resp->status, limit[0] ? " " : "", limit);
    bool not_found;
    const char *state = salesforce_sqlstate(resp->status, code, &not_found);
    upstream_error_set(err, state, message ? message : code, detail);
    err->not_found = not_found;
    cJSON_Delete(root);
}

/* ---- the client */

struct salesforce_client {
    upstream_target *t;
    char *instance_url, *api_version, *access_token;
    char *login_url, *client_id, *client_secret, *refresh_token;
};

static char *dup_opt(const char *s) { return s ? strdup(s) : NULL; }

salesforce_client *salesforce_client_new(upstream_target *t, const salesforce_options *o)
{
    salesforce_client *sf = calloc(1, sizeof *sf);
    if (!sf)
        return NULL;
    sf->t = t;
    sf->instance_url = dup_opt(o->instance_url);
    sf->api_version = dup_opt(o->api_version ? o->api_version : "59.0");
    sf->access_token = dup_opt(o->access_token);
    sf->login_url = dup_opt(o->login_url);
    sf->client_id = dup_opt(o->client_id);
    sf->client_secret = dup_opt(o->client_secret);
    sf->refresh_token = dup_opt(o->refresh_token);
    return sf;
}

void salesforce_client_free(salesforce_client *sf)
{
    if (!sf)
        return;
    free(sf->instance_url);
    free(sf->api_version);
    free(sf->access_token);
    free(sf->login_url);
    free(sf->client_id);
    free(sf->client_secret);
    free(sf->refresh_token);
    free(sf);
}

const char *salesforce_access_token(const salesforce_client *sf) { return sf->access_token; }

typedef struct sf_request {
    salesforce_client *sf;
    char *method, *path, *body;
    enum ratelimit_priority prio;
    bool refreshed;
    salesforce_done_cb cb;
    void *ctx;
} sf_request;

static void sf_request_free(sf_request *r)
{
    free(r->method);
    free(r->path);
    free(r->body);
    free(r);
}

static void sf_fail(sf_request *r, const char *sqlstate, const char *message)
{
    upstream_error err;
    upstream_error_set(&err, sqlstate, message, "salesforce client");
    r->cb(0, NULL, &err, r->ctx);
    sf_request_free(r);
}

static int sf_send(sf_request *r);

static void on_token(upstream_call *call, http_response *resp, int attempts, void *data)
{
    sf_request *r = data;
    salesforce_client *sf = r->sf;
    if (resp->outcome != HTTP_OK || resp->status != 200) {
        upstream_error err;
        salesforce_error_from_response(resp, &err);
        r->cb(resp->status, NULL, &err, r->ctx);
        sf_request_free(r);
        return;
    }
    cJSON *root = cJSON_ParseWithLength(resp->body.data, resp->body.len);
    const char *token = json_string(root, "access_token");
    const char *instance = json_string(root, "instance_url");
    if (!token) {
        cJSON_Delete(root);
        sf_fail(r, "42501", "salesforce token response without access_token");
        return;
    }
    free(sf->access_token);
    sf->access_token = strdup(token);
    if (instance) {
        free(sf->instance_url);
        sf->instance_url = strdup(instance);
    }
    cJSON_Delete(root);
    if (!sf->access_token || !sf->instance_url || sf_send(r) < 0)
        sf_fail(r, "53200", "out of memory after a salesforce token refresh");
}

/* The refresh-token grant; the request r is sent again once a token arrives. */
static int sf_refresh(sf_request *r)
{
    salesforce_client *sf = r->sf;
    if (!sf->refresh_token || !sf->login_url || !sf->client_id)
        return -1;
    r->refreshed = true;
    pgbuf body;
    pgbuf_init(&body, 8192);
    cJSON *form = cJSON_CreateObject();
    cJSON_AddStringToObject(form, "grant_type", "refresh_token");
    cJSON_AddStringToObject(form, "client_id", sf->client_id);
    if (sf->client_secret)
        cJSON_AddStringToObject(form, "client_secret", sf->client_secret);
    cJSON_AddStringToObject(form, "refresh_token", sf->refresh_token);
    int rc = form_encode(&body, form);
    cJSON_Delete(form);
    char url[1024];
    snprintf(url, sizeof url, "%s/services/oauth2/token", sf->login_url);
    static const char *const headers[] = {"Content-Type: application/x-www-form-urlencoded",
                                          "Accept: application/json", NULL};
    http_options o = {.method = "POST", .url = url, .headers = headers, .body = body.data,
                      .body_len = body.len};
    upstream_call *c = rc == 0 ? upstream_call_start(sf->t, &o, r->prio, false, on_token, r) : NULL;
    pgbuf_free(&body);
    return c ? 0 : -1;
}

static void on_sf_response(upstream_call *call, http_response *resp, int attempts, void *data)
{
    sf_request *r = data;
    upstream_error err;
    if (resp->outcome == HTTP_OK && resp->status == 401 && !r->refreshed && sf_refresh(r) == 0)
        return; /* on_token sends r again */
    if (resp->outcome != HTTP_OK || resp->status >= 300) {
        salesforce_error_from_response(resp, &err);
        r->cb(resp->status, NULL, &err, r->ctx);
        sf_request_free(r);
        return;
    }
    cJSON *body = resp->body.len ? cJSON_ParseWithLength(resp->body.data, resp->body.len) : NULL;
    if (resp->body.len && !body) {
        upstream_error_set(&err, "XX000", "salesforce answered with invalid JSON", NULL);
        r->cb(resp->status, NULL, &err, r->ctx);
    } else {
        r->cb(resp->status, body, NULL, r->ctx);
    }
    cJSON_Delete(body);
    sf_request_free(r);
}

static int sf_send(sf_request *r)
{
    salesforce_client *sf = r->sf;
    if (!sf->access_token || !sf->instance_url)
        return r->refreshed ? -1 : sf_refresh(r);
    char url[8192], auth[2048];
    if (strncmp(r->path, "/services/", 10) == 0)
        snprintf(url, sizeof url, "%s%s", sf->instance_url, r->path);
    else
        snprintf(url, sizeof url, "%s/services/data/v%s%s", sf->instance_url, sf->api_version, r->path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", sf->access_token);
    const char *headers[] = {auth, "Accept: application/json", "Content-Type: application/json",
                             "Sforce-Query-Options: batchSize=2000", NULL};
    http_options o = {.method = r->method, .url = url, .headers = headers, .body = r->body,
                      .body_len = r->body ? strlen(r->body) : 0};
    /* Salesforce has no idempotency keys: a POST that creates must not be repeated after an
     * ambiguous failure */
    bool creates = strcmp(r->method, "POST") == 0;
    return upstream_call_start(sf->t, &o, r->prio, creates, on_sf_response, r) ? 0 : -1;
}

int salesforce_request(salesforce_client *sf, const char *method, const char *path,
                       const char *body, enum ratelimit_priority prio, salesforce_done_cb cb,
                       void *ctx)
{
    sf_request *r = calloc(1, sizeof *r);
    if (!r)
        return -1;
    r->sf = sf;
    r->method = strdup(method);
    r->path = strdup(path);
    r->body = body ? strdup(body) : NULL;
    r->prio = prio;
    r->cb = cb;
    r->ctx = ctx;
    if (!r->method || !r->path || (body && !r->body) || sf_send(r) < 0) {
        sf_request_free(r);
        return -1;
    }
    return 0;
}

/* ---- SOQL paging */

typedef struct sf_query {
    salesforce_client *sf;
    enum ratelimit_priority prio;
    salesforce_records_cb on_records;
    salesforce_query_done_cb on_done;
    void *ctx;
    int pages;
} sf_query;

static void on_query_page(long status, const cJSON *body, const upstream_error *err, void *ctx)
{
    sf_query *q = ctx;
    if (err) {
        q->on_done(err, q->pages, q->ctx);
        free(q);
        return;
    }
    const cJSON *records = cJSON_GetObjectItemCaseSensitive(body, "records");
    const cJSON *total = cJSON_GetObjectItemCaseSensitive(body, "totalSize");
    if (!cJSON_IsArray(records)) {
        upstream_error e;
        upstream_error_set(&e, "XX000", "salesforce query response without records", NULL);
        q->on_done(&e, q->pages, q->ctx);
        free(q);
        return;
    }
    q->pages++;
    int stop = q->on_records(records, cJSON_IsNumber(total) ? (long)total->valuedouble : -1, q->ctx);
    const char *next = json_string(body, "nextRecordsUrl");
    bool done = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "done"));
    if (!stop && !done && next) {
        if (salesforce_request(q->sf, "GET", next, NULL, q->prio, on_query_page, q) == 0)
            return;
        upstream_error e;
        upstream_error_set(&e, "53200", "out of memory paging a salesforce query", NULL);
        q->on_done(&e, q->pages, q->ctx);
        free(q);
        return;
    }
    q->on_done(NULL, q->pages, q->ctx);
    free(q);
}

int salesforce_query(salesforce_client *sf, const char *soql, bool include_deleted,
                     enum ratelimit_priority prio, salesforce_records_cb on_records,
                     salesforce_query_done_cb on_done, void *ctx)
{
    sf_query *q = calloc(1, sizeof *q);
    if (!q)
        return -1;
    q->sf = sf;
    q->prio = prio;
    q->on_records = on_records;
    q->on_done = on_done;
    q->ctx = ctx;
    pgbuf path;
    pgbuf_init(&path, 100000);
    const char *ep = include_deleted ? "/queryAll?q=" : "/query?q=";
    pgbuf_put(&path, ep, strlen(ep));
    form_escape(&path, soql);
    pgbuf_put_byte(&path, 0);
    int rc = path.failed ? -1 : salesforce_request(sf, "GET", path.data, NULL, prio, on_query_page, q);
    pgbuf_free(&path);
    if (rc < 0)
        free(q);
    return rc;
}
