/* salesforce: see salesforce.h. */
#include "upstream/salesforce.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "upstream/form.h"
#include "upstream/json.h"

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
    /* ENTITY_IS_DELETED is the record itself only with a 404; with a 400 it is a lookup
     * field naming a deleted record: a reference to a missing row */
    if (error_code && (strcmp(error_code, "NOT_FOUND") == 0 ||
                       (strcmp(error_code, "ENTITY_IS_DELETED") == 0 && status == 404))) {
        *not_found = true;
        return "02000";
    }
    if (error_code && strcmp(error_code, "ENTITY_IS_DELETED") == 0)
        return "23503";
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

/* A duplicate rule's refusal (DUPLICATES_DETECTED) names the rule and the records the save
 * would duplicate: " duplicate_rule=R matches=ID,ID" (as many as fit), so that the client
 * can use one of them. Nothing for other errors. */
static void duplicates_of(const cJSON *error, char *out, size_t len)
{
    const cJSON *dr = cJSON_GetObjectItemCaseSensitive(error, "duplicateResult");
    if (!cJSON_IsObject(dr) || len < 2)
        return;
    const char *rule = json_string(dr, "duplicateRule");
    size_t n = 0;
    if (rule)
        n += (size_t)snprintf(out, len, " duplicate_rule=%.80s", rule);
    const cJSON *mr, *rec;
    bool first = true;
    cJSON_ArrayForEach(mr, cJSON_GetObjectItemCaseSensitive(dr, "matchResults"))
    {
        cJSON_ArrayForEach(rec, cJSON_GetObjectItemCaseSensitive(mr, "matchRecords"))
        {
            const char *id = json_string(cJSON_GetObjectItemCaseSensitive(rec, "record"), "Id");
            if (!id || strlen(id) > 18 || n + strlen(id) + 10 >= len)
                continue;
            n += (size_t)snprintf(out + n, len - n, "%s%s", first ? " matches=" : ",", id);
            first = false;
        }
    }
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
    char dups[200] = "";
    duplicates_of(first, dups, sizeof dups);
    char limit[80] = "";
    http_response_header(resp, "sforce-limit-info", limit, sizeof limit);
    char detail[512];
    snprintf(detail, sizeof detail, "salesforce %s%s%s%s status=%ld%s%s", code, fields[0] ? " fields=" : "",
             fields, dups, resp->status, limit[0] ? " " : "", limit);
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
    bool have_skew;
    double skew; /* the server's clock minus ours, from the last Date header */
};

static double local_time(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* Date: Tue, 01 Dec 2026 12:48:00 GMT (RFC 9110 IMF-fixdate). The header has whole
 * seconds: the server's clock is up to a second past it when it arrives. */
static void note_server_time(salesforce_client *sf, const http_response *resp)
{
    char date[64];
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (http_response_header(resp, "date", date, sizeof date) < 0)
        return;
    const char *end = strptime(date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end)
        return;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return;
    sf->skew = (double)t - local_time();
    sf->have_skew = true;
}

double salesforce_server_time(const salesforce_client *sf)
{
    return sf->have_skew ? local_time() + sf->skew : 0;
}

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
    if (resp->outcome == HTTP_OK)
        note_server_time(r->sf, resp);
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

/* ---- describe */

static enum field_type sf_type(const char *t)
{
    if (!t)
        return FIELD_TEXT;
    if (strcmp(t, "boolean") == 0)
        return FIELD_BOOLEAN;
    if (strcmp(t, "int") == 0 || strcmp(t, "long") == 0)
        return FIELD_BIGINT;
    if (strcmp(t, "double") == 0 || strcmp(t, "currency") == 0 || strcmp(t, "percent") == 0)
        return FIELD_NUMERIC;
    if (strcmp(t, "datetime") == 0)
        return FIELD_TIMESTAMPTZ;
    if (strcmp(t, "date") == 0)
        return FIELD_DATE;
    if (strcmp(t, "address") == 0 || strcmp(t, "location") == 0 || strcmp(t, "anyType") == 0)
        return FIELD_JSONB;
    return FIELD_TEXT; /* id, reference, string, email, phone, url, textarea, picklist, ... */
}

void salesforce_collection_free(provider_collection *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->nfields; i++) {
        free((char *)c->fields[i].name);
        free((char *)c->fields[i].description);
    }
    free((provider_field *)c->fields);
    free((char *)c->name);
    free((char *)c->object);
    free((char *)c->list_path);
    free((char *)c->item_path);
    free((char *)c->create_path);
    free((char *)c->update_path);
    free((char *)c->delete_path);
    free((char *)c->description);
    free(c);
}

static char *fmt_path(const char *fmt, const char *object)
{
    char buf[512];
    snprintf(buf, sizeof buf, fmt, object);
    return strdup(buf);
}

provider_collection *salesforce_collection_from_describe(const cJSON *d)
{
    const char *object = json_string(d, "name");
    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(d, "fields");
    if (!object || !cJSON_IsArray(fields))
        return NULL;
    provider_collection *c = calloc(1, sizeof *c);
    int n = cJSON_GetArraySize(fields);
    provider_field *pf = calloc((size_t)(n ? n : 1), sizeof *pf);
    if (!c || !pf) {
        free(c);
        free(pf);
        return NULL;
    }
    c->provider = "salesforce";
    c->fields = pf;
    char lower[256];
    snprintf(lower, sizeof lower, "%s", object);
    for (char *p = lower; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    c->name = strdup(lower);
    c->object = strdup(object);
    c->list_path = fmt_path("/sobjects/%s", object);
    c->item_path = fmt_path("/sobjects/%s/{id}", object);
    if (json_true(d, "createable"))
        c->create_path = fmt_path("/sobjects/%s/", object);
    if (json_true(d, "updateable"))
        c->update_path = fmt_path("/sobjects/%s/{id}", object);
    if (json_true(d, "deletable"))
        c->delete_path = fmt_path("/sobjects/%s/{id}", object);
    const char *label = json_string(d, "label");
    c->description = strdup(label ? label : object);
    const cJSON *f;
    cJSON_ArrayForEach(f, fields)
    {
        const char *name = json_string(f, "name");
        if (!name)
            continue;
        provider_field *x = &pf[c->nfields++];
        x->name = strdup(name);
        x->type = sf_type(json_string(f, "type"));
        x->create = json_true(f, "createable");
        x->update = json_true(f, "updateable");
        /* required: Salesforce insists on it and will not default it */
        x->required = x->create && !json_true(f, "nillable") && !json_true(f, "defaultedOnCreate") &&
                      strcmp(json_string(f, "type") ? json_string(f, "type") : "", "boolean") != 0;
        const char *flabel = json_string(f, "label");
        x->description = strdup(flabel ? flabel : name);
        if (strcmp(name, "SystemModstamp") == 0)
            c->version_field = x->name;
    }
    return c;
}

/* ---- composite sObject collections */

typedef struct sf_batch {
    salesforce_batch_cb cb;
    void *ctx;
    int n;
} sf_batch;

static void on_batch(long status, const cJSON *body, const upstream_error *err, void *ctx)
{
    sf_batch *b = ctx;
    if (err || !cJSON_IsArray(body)) {
        upstream_error e;
        if (!err)
            upstream_error_set(&e, "XX000", "salesforce composite response is not a list", NULL);
        b->cb(0, NULL, NULL, err ? err : &e, b->ctx);
        free(b);
        return;
    }
    int n = cJSON_GetArraySize(body);
    const char **ids = calloc((size_t)(n ? n : 1), sizeof *ids);
    upstream_error *errs = calloc((size_t)(n ? n : 1), sizeof *errs);
    if (!ids || !errs) {
        upstream_error e;
        upstream_error_set(&e, "53200", "out of memory reading a salesforce composite response", NULL);
        b->cb(0, NULL, NULL, &e, b->ctx);
    } else {
        int i = 0;
        const cJSON *r;
        cJSON_ArrayForEach(r, body)
        {
            ids[i] = json_string(r, "id");
            if (!json_true(r, "success")) {
                const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r, "errors"), 0);
                const char *code = json_string(first, "statusCode");
                bool nf;
                char detail[256];
                snprintf(detail, sizeof detail, "salesforce %s record=%d", code ? code : "error", i);
                upstream_error_set(&errs[i], salesforce_sqlstate(400, code, &nf),
                                   json_string(first, "message"), detail);
                errs[i].not_found = nf;
            }
            i++;
        }
        b->cb(n, ids, errs, NULL, b->ctx);
    }
    free(ids);
    free(errs);
    free(b);
}

int salesforce_batch_write(salesforce_client *sf, const char *method, const char *sobject,
                           const cJSON *records, bool all_or_none, enum ratelimit_priority prio,
                           salesforce_batch_cb cb, void *ctx)
{
    if (!cJSON_IsArray(records) || cJSON_GetArraySize(records) > SALESFORCE_BATCH_MAX)
        return -1;
    cJSON *body = cJSON_CreateObject();
    cJSON_AddBoolToObject(body, "allOrNone", all_or_none);
    cJSON *list = cJSON_AddArrayToObject(body, "records");
    const cJSON *r;
    cJSON_ArrayForEach(r, records)
    {
        cJSON *copy = cJSON_Duplicate(r, 1);
        cJSON *attrs = cJSON_CreateObject();
        cJSON_AddStringToObject(attrs, "type", sobject);
        cJSON_AddItemToObject(copy, "attributes", attrs);
        cJSON_AddItemToArray(list, copy);
    }
    char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    sf_batch *b = calloc(1, sizeof *b);
    int rc = -1;
    if (text && b) {
        b->cb = cb;
        b->ctx = ctx;
        rc = salesforce_request(sf, method, "/composite/sobjects", text, prio, on_batch, b);
    }
    if (rc < 0)
        free(b);
    free(text);
    return rc;
}

int salesforce_batch_delete(salesforce_client *sf, const char *const *ids, int n, bool all_or_none,
                            enum ratelimit_priority prio, salesforce_batch_cb cb, void *ctx)
{
    if (n < 1 || n > SALESFORCE_BATCH_MAX)
        return -1;
    pgbuf path;
    pgbuf_init(&path, 8192);
    const char *p0 = "/composite/sobjects?ids=";
    pgbuf_put(&path, p0, strlen(p0));
    for (int i = 0; i < n; i++) {
        if (i)
            pgbuf_put_byte(&path, ',');
        form_escape(&path, ids[i]);
    }
    const char *aon = all_or_none ? "&allOrNone=true" : "&allOrNone=false";
    pgbuf_put(&path, aon, strlen(aon));
    pgbuf_put_byte(&path, 0);
    sf_batch *b = calloc(1, sizeof *b);
    int rc = -1;
    if (b && !path.failed) {
        b->cb = cb;
        b->ctx = ctx;
        rc = salesforce_request(sf, "DELETE", path.data, NULL, prio, on_batch, b);
    }
    if (rc < 0)
        free(b);
    pgbuf_free(&path);
    return rc;
}

/* ---- changes */

int salesforce_changes(salesforce_client *sf, const char *sobject, bool deleted, const char *start,
                       const char *end, enum ratelimit_priority prio, salesforce_done_cb cb, void *ctx)
{
    pgbuf path;
    pgbuf_init(&path, 2048);
    char head[300];
    snprintf(head, sizeof head, "/sobjects/%s/%s/?start=", sobject, deleted ? "deleted" : "updated");
    pgbuf_put(&path, head, strlen(head));
    form_escape(&path, start);
    pgbuf_put(&path, "&end=", 5);
    form_escape(&path, end);
    pgbuf_put_byte(&path, 0);
    int rc = path.failed ? -1 : salesforce_request(sf, "GET", path.data, NULL, prio, cb, ctx);
    pgbuf_free(&path);
    return rc;
}
