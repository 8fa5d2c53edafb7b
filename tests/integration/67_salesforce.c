/*
 * The Salesforce client (upstream/salesforce) against the local Salesforce fake: sObject
 * create / update / read / delete, validation errors mapped to SQLSTATEs, the OAuth
 * refresh-token flow when a token expires, a refused refresh, and SOQL paging with
 * nextRecordsUrl over 5,000 records. Usage: 67_salesforce BASE_URL
 */
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "tests/integration/itest.h"
#include "upstream/salesforce.h"

static uv_loop_t *loop;
static const char *base;
static upstream_target target;
static int pending;

typedef struct result {
    long status;
    cJSON *body;
    upstream_error err;
    bool failed;
} result;

static void on_done(long status, const cJSON *body, const upstream_error *err, void *ctx)
{
    result *r = ctx;
    r->status = status;
    r->body = body ? cJSON_Duplicate(body, 1) : NULL;
    r->failed = err != NULL;
    if (err)
        r->err = *err;
    pending--;
}

static result sf_call(salesforce_client *sf, const char *method, const char *path, const char *body)
{
    result r;
    memset(&r, 0, sizeof r);
    pending++;
    if (salesforce_request(sf, method, path, body, RATELIMIT_WRITE, on_done, &r) < 0) {
        pending--;
        r.failed = true;
    }
    while (pending > 0)
        uv_run(loop, UV_RUN_ONCE);
    return r;
}

/* the fake's control API needs no token: a plain call through the same machinery */
static void control_done(upstream_call *c, http_response *resp, int attempts, void *data)
{
    *(long *)data = resp->status;
    pending--;
}

static long control(const char *path, const char *json)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", base, path);
    static const char *const headers[] = {"Content-Type: application/json", NULL};
    http_options o = {.method = "POST", .url = url, .headers = headers, .body = json, .body_len = strlen(json)};
    long status = 0;
    pending++;
    upstream_call_start(&target, &o, RATELIMIT_WRITE, false, control_done, &status);
    while (pending > 0)
        uv_run(loop, UV_RUN_ONCE);
    return status;
}

static salesforce_client *client(const char *refresh_token)
{
    salesforce_options o = {.instance_url = base, .api_version = "59.0",
                            .access_token = "00D000000000001!fake", .login_url = base,
                            .client_id = "fake-client-id", .client_secret = "fake-client-secret",
                            .refresh_token = refresh_token};
    return salesforce_client_new(&target, &o);
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static void test_crud(salesforce_client *sf)
{
    result r = sf_call(sf, "POST", "/sobjects/Contact/", "{\"LastName\": \"Okafor\", \"Email\": \"ada@example.com\"}");
    char id[32];
    snprintf(id, sizeof id, "%s", str(r.body, "id"));
    check(r.status == 201 && strncmp(id, "003", 3) == 0, "create Contact → 201 with a 003 id (%ld %s)", r.status, id);
    cJSON_Delete(r.body);

    char path[128];
    snprintf(path, sizeof path, "/sobjects/Contact/%s", id);
    r = sf_call(sf, "PATCH", path, "{\"Email\": \"ada.okafor@example.com\"}");
    check(r.status == 204 && !r.body, "update → 204 without a body");
    r = sf_call(sf, "GET", path, NULL);
    check(r.status == 200 && strcmp(str(r.body, "Email"), "ada.okafor@example.com") == 0,
          "read back → the updated email (%s)", str(r.body, "Email"));
    cJSON_Delete(r.body);

    r = sf_call(sf, "PATCH", path, "{\"Email\": \"not-an-email\"}");
    check(r.failed && r.status == 400 && strcmp(r.err.sqlstate, "23514") == 0 &&
              strstr(r.err.detail, "INVALID_EMAIL_ADDRESS fields=Email status=400"),
          "invalid email → 23514 \"%s\" (%s)", r.err.message, r.err.detail);
    r = sf_call(sf, "POST", "/sobjects/Contact/", "{\"Email\": \"x@example.com\"}");
    check(r.failed && strcmp(r.err.sqlstate, "23502") == 0, "missing LastName → 23502 \"%s\"", r.err.message);
    r = sf_call(sf, "PATCH", path, "{\"Nickname__x\": \"a\"}");
    check(r.failed && strcmp(r.err.sqlstate, "42703") == 0, "unknown field → 42703 \"%s\"", r.err.message);

    r = sf_call(sf, "DELETE", path, NULL);
    check(r.status == 204, "delete → 204");
    r = sf_call(sf, "GET", path, NULL);
    check(r.failed && r.err.not_found, "the deleted record is gone upstream (%ld %s)", r.status, r.err.message);
}

static void test_refresh(salesforce_client *sf)
{
    char before[256];
    snprintf(before, sizeof before, "%s", salesforce_access_token(sf));
    check(control("/_fake/expire_tokens", "{}") == 200, "tokens expired in the fake");
    result r = sf_call(sf, "GET", "/sobjects/Contact/describe", NULL);
    check(r.status == 200 && strcmp(before, salesforce_access_token(sf)) != 0,
          "an expired token is refreshed with the refresh token and the request repeated (%ld)", r.status);
    cJSON_Delete(r.body);

    salesforce_client *bad = client("not-the-refresh-token");
    control("/_fake/expire_tokens", "{}");
    r = sf_call(bad, "GET", "/sobjects/Contact/describe", NULL);
    check(r.failed && strcmp(r.err.sqlstate, "42501") == 0 && strstr(r.err.message, "expired access/refresh token") &&
              !strstr(r.err.message, "not-the-refresh-token") && !strstr(r.err.detail, "not-the-refresh-token"),
          "a refused refresh → 42501 \"%s\", no secret in the error", r.err.message);
    salesforce_client_free(bad);
}

typedef struct paging {
    cJSON *seen;
    int rows, dups;
    long total;
    int pages;
    char error[600];
} paging;

static int on_records(const cJSON *records, long total, void *ctx)
{
    paging *p = ctx;
    p->total = total;
    const cJSON *rec;
    cJSON_ArrayForEach(rec, records)
    {
        const char *id = str(rec, "Id");
        if (cJSON_GetObjectItemCaseSensitive(p->seen, id))
            p->dups++;
        else
            cJSON_AddTrueToObject(p->seen, id);
        p->rows++;
    }
    return 0;
}

static void on_query_done(const upstream_error *err, int pages, void *ctx)
{
    paging *p = ctx;
    p->pages = pages;
    if (err)
        snprintf(p->error, sizeof p->error, "%s %s", err->sqlstate, err->message);
    pending--;
}

static void test_query(salesforce_client *sf)
{
    check(control("/_fake/reset", "{\"empty\": true}") == 200 &&
              control("/_fake/seed", "{\"contacts\": 5000}") == 200,
          "fake reset and seeded with 5,000 contacts");
    paging p = {.seen = cJSON_CreateObject()};
    pending++;
    salesforce_query(sf, "SELECT Id, LastName, SystemModstamp FROM Contact ORDER BY SystemModstamp", false,
                     RATELIMIT_SYNC, on_records, on_query_done, &p);
    while (pending > 0)
        uv_run(loop, UV_RUN_ONCE);
    cJSON_Delete(p.seen);
    check(!p.error[0] && p.rows == 5000 && p.dups == 0 && p.total == 5000 && p.pages == 3,
          "SOQL paged with nextRecordsUrl: %d rows of %ld in %d pages, %d duplicates %s", p.rows, p.total,
          p.pages, p.dups, p.error);

    paging bad = {.seen = cJSON_CreateObject()};
    pending++;
    salesforce_query(sf, "SELEC Id FROM Contact", false, RATELIMIT_SYNC, on_records, on_query_done, &bad);
    while (pending > 0)
        uv_run(loop, UV_RUN_ONCE);
    cJSON_Delete(bad.seen);
    check(strncmp(bad.error, "42601", 5) == 0, "malformed SOQL → 42601 (%s)", bad.error);
}

/* ---- describe, composite collections, getUpdated / getDeleted */

typedef struct batch {
    int n, ok, failed_at;
    char ids[SALESFORCE_BATCH_MAX][32];
    upstream_error first_err, request_err;
    bool request_failed;
} batch;

static void on_batch_done(int n, const char *const *ids, const upstream_error *errs,
                          const upstream_error *request_err, void *ctx)
{
    batch *b = ctx;
    b->n = n;
    b->failed_at = -1;
    if (request_err) {
        b->request_failed = true;
        b->request_err = *request_err;
    }
    for (int i = 0; i < n; i++) {
        if (ids[i]) {
            snprintf(b->ids[i], sizeof b->ids[i], "%s", ids[i]);
            b->ok++;
        } else if (b->failed_at < 0) {
            b->failed_at = i;
            b->first_err = errs[i];
        }
    }
    pending--;
}

static void iso_now(char *out, size_t len, int offset_s)
{
    time_t t = time(NULL) + offset_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%dT%H:%M:%S+00:00", &tm);
}

static void test_describe_batches_changes(salesforce_client *sf)
{
    result r = sf_call(sf, "GET", "/sobjects/Invoice__c/describe", NULL);
    provider_collection *inv = r.body ? salesforce_collection_from_describe(r.body) : NULL;
    cJSON_Delete(r.body);
    const provider_field *amount = inv ? provider_field_find(inv, "Amount__c") : NULL;
    const provider_field *id = inv ? provider_field_find(inv, "Id") : NULL;
    check(inv && strcmp(inv->name, "invoice__c") == 0 && amount && amount->type == FIELD_NUMERIC &&
              amount->create && amount->update && id && !id->create && !id->update,
          "describe of a custom object → a collection: Amount__c numeric and writable, Id read-only");
    salesforce_collection_free(inv);

    r = sf_call(sf, "GET", "/sobjects/Contact/describe", NULL);
    provider_collection *contact = r.body ? salesforce_collection_from_describe(r.body) : NULL;
    cJSON_Delete(r.body);
    const provider_field *last = contact ? provider_field_find(contact, "LastName") : NULL;
    const provider_field *modstamp = contact ? provider_field_find(contact, "SystemModstamp") : NULL;
    check(last && last->required && modstamp && modstamp->type == FIELD_TIMESTAMPTZ && !modstamp->update,
          "Contact: LastName required on create, SystemModstamp a read-only timestamptz");
    salesforce_collection_free(contact);

    char start[40], end[40];
    iso_now(start, sizeof start, -60);
    cJSON *records = cJSON_CreateArray();
    for (int i = 0; i < SALESFORCE_BATCH_MAX; i++) {
        cJSON *rec = cJSON_CreateObject();
        char name[32], email[64];
        snprintf(name, sizeof name, "Batch%03d", i);
        snprintf(email, sizeof email, i == 57 ? "bad-email-%d" : "batch%d@example.com", i);
        cJSON_AddStringToObject(rec, "LastName", name);
        cJSON_AddStringToObject(rec, "Email", email);
        cJSON_AddItemToArray(records, rec);
    }
    static batch b;
    memset(&b, 0, sizeof b);
    pending++;
    salesforce_batch_write(sf, "POST", "Contact", records, false, RATELIMIT_WRITE, on_batch_done, &b);
    while (pending > 0)
        uv_run(loop, UV_RUN_ONCE);
    cJSON_Delete(records);
    check(!b.request_failed && b.n == 200 && b.ok == 199 && b.failed_at == 57 &&
              strcmp(b.first_err.sqlstate, "23514") == 0,
          "composite create of 200 with one bad email: 199 created, record 57 → 23514 (%s)", b.first_err.message);

    const char *del[3] = {b.ids[0], b.ids[1], b.ids[2]};
    static batch d;
    memset(&d, 0, sizeof d);
    pending++;
    salesforce_batch_delete(sf, del, 3, false, RATELIMIT_WRITE, on_batch_done, &d);
    while (pending > 0)
        uv_run(loop, UV_RUN_ONCE);
    check(d.n == 3 && d.ok == 3, "composite delete of 3 records");

    iso_now(end, sizeof end, 60);
    pending++;
    result upd;
    memset(&upd, 0, sizeof upd);
    salesforce_changes(sf, "Contact", false, start, end, RATELIMIT_SYNC, on_done, &upd);
    while (pending > 0)
        uv_run(loop, UV_RUN_ONCE);
    int found = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(upd.body, "ids"))
        found += cJSON_IsString(x) && strcmp(x->valuestring, b.ids[10]) == 0;
    check(!upd.failed && found == 1, "getUpdated lists a record created in the window");
    cJSON_Delete(upd.body);

    result gone;
    memset(&gone, 0, sizeof gone);
    pending++;
    salesforce_changes(sf, "Contact", true, start, end, RATELIMIT_SYNC, on_done, &gone);
    while (pending > 0)
        uv_run(loop, UV_RUN_ONCE);
    found = 0;
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(gone.body, "deletedRecords"))
    {
        const char *gid = str(x, "id");
        found += strcmp(gid, b.ids[0]) == 0 || strcmp(gid, b.ids[1]) == 0 || strcmp(gid, b.ids[2]) == 0;
    }
    check(!gone.failed && found == 3, "getDeleted lists the 3 deleted records (%d)", found);
    cJSON_Delete(gone.body);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s BASE_URL\n", argv[0]);
        return 2;
    }
    base = argv[1];
    itest_label = "67_salesforce";
    loop = uv_default_loop();
    ratelimit rl;
    ratelimit_init(&rl, loop, 0, 0, 0);
    upstream_target_init(&target, loop, &rl);
    target.retry.base_delay_ms = 50;

    salesforce_client *sf = client("fake-refresh-token");
    test_crud(sf);
    test_refresh(sf);
    test_query(sf);
    test_describe_batches_changes(sf);
    salesforce_client_free(sf);

    upstream_target_close(&target);
    ratelimit_close(&rl);
    uv_run(loop, UV_RUN_DEFAULT);
    printf("# %d checks, %d failed\n", itest_checks, itest_failures);
    return itest_failures ? 1 : 0;
}
