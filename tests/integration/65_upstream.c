/*
 * upstream/ against the local Stripe fake: many requests on one loop without blocking it,
 * pagination over 10,000 records, retries that never create twice, Retry-After, the rate
 * limit held over 30 seconds with writes served before sync traffic, connection failures
 * and timeouts, /v1/events followed from a cursor. Usage: 65_upstream BASE_URL (the fake, e.g. http://127.0.0.1:12111).
 */
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "tests/integration/itest.h"
#include "upstream/call.h"
#include "upstream/stripe.h"
#include "upstream/stripe_collections.h"
#include "upstream/stripe_events.h"

static uv_loop_t *loop;
static const char *base;
static http_client *http;
static upstream_target target;
static ratelimit unlimited;
static int pending;

static const char *const auth_headers[] = {
    "Authorization: Bearer sk_test_apigres_integration", "Stripe-Version: " STRIPE_API_VERSION, NULL};

/* ---- a blocking helper for setup steps: one call, run the loop until it is done */

typedef struct reply {
    long status;
    enum http_outcome outcome;
    int attempts;
    double elapsed_ms;
    cJSON *json;
    char request_id[80];
    upstream_error err;
    bool done;
    double done_at;
} reply;

static void on_reply(upstream_call *c, http_response *resp, int attempts, void *data)
{
    reply *r = data;
    r->status = resp->status;
    r->outcome = resp->outcome;
    r->attempts = attempts;
    r->elapsed_ms = resp->elapsed_ms;
    r->json = resp->body.len ? cJSON_ParseWithLength(resp->body.data, resp->body.len) : NULL;
    http_response_header(resp, "request-id", r->request_id, sizeof r->request_id);
    if (resp->outcome != HTTP_OK || resp->status >= 400)
        stripe_error_from_response(resp, &r->err);
    r->done = true;
    r->done_at = now();
    pending--;
}

static upstream_call *start(upstream_target *t, const char *method, const char *path,
                            const char *body, const char *const *headers, bool may_dup,
                            enum ratelimit_priority prio, reply *r, long timeout_ms)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", base, path);
    http_options o = {.method = method, .url = url, .headers = headers ? headers : auth_headers,
                      .body = body, .body_len = body ? strlen(body) : 0, .timeout_ms = timeout_ms};
    memset(r, 0, sizeof *r);
    pending++;
    return upstream_call_start(t, &o, prio, may_dup, on_reply, r);
}

static void run_until_done(void)
{
    while (pending > 0)
        uv_run(loop, UV_RUN_ONCE);
}

static reply call_json(const char *method, const char *path, const char *body)
{
    reply r;
    static const char *const json_headers[] = {"Content-Type: application/json", NULL};
    start(&target, method, path, body, body ? json_headers : auth_headers, false, RATELIMIT_WRITE, &r, 0);
    run_until_done();
    return r;
}

static void fake_config(const char *json)
{
    reply r = call_json("POST", "/_fake/config", json);
    if (r.status != 200)
        printf("# fake config %s: HTTP %ld\n", json, r.status);
    cJSON_Delete(r.json);
}

static double fake_stat(const char *key)
{
    reply r = call_json("GET", "/_fake/stats", NULL);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r.json, key);
    double d = cJSON_IsNumber(v) ? v->valuedouble : -1;
    cJSON_Delete(r.json);
    return d;
}

/* ---- 500 requests in flight on one loop, which keeps turning meanwhile */

static uint64_t last_tick, worst_lag;

static void on_tick(uv_timer_t *t)
{
    uint64_t now = uv_hrtime() / 1000000;
    if (last_tick && now - last_tick > worst_lag)
        worst_lag = now - last_tick;
    last_tick = now;
}

static void test_concurrency(void)
{
    enum { N = 500 };
    static reply r[N];
    fake_config("{\"latency_ms\": 200}");
    uv_timer_t tick;
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, on_tick, 5, 5);
    last_tick = 0;
    worst_lag = 0;
    double t0 = now();
    for (int i = 0; i < N; i++)
        start(&target, "GET", "/v1/customers?limit=1", NULL, NULL, false, RATELIMIT_SYNC, &r[i], 0);
    run_until_done();
    double took = now() - t0;
    uv_timer_stop(&tick);
    uv_close((uv_handle_t *)&tick, NULL);
    int ok = 0;
    for (int i = 0; i < N; i++) {
        ok += r[i].outcome == HTTP_OK && r[i].status == 200;
        cJSON_Delete(r[i].json);
    }
    fake_config("{\"latency_ms\": 0}");
    printf("# %d requests with 200 ms latency each took %.2f s; worst loop lag %llu ms\n", N, took,
           (unsigned long long)worst_lag);
    check(ok == N, "%d concurrent requests on one loop all answered 200 (%d)", N, ok);
    check(took < 0.2 * N / 10, "they ran concurrently: %.2f s, far below %d x 200 ms in series", took, N);
    check(worst_lag < 250, "the loop kept turning while they were in flight (worst lag %llu ms)",
          (unsigned long long)worst_lag);
}

/* ---- pagination */

typedef struct page_state {
    cJSON *seen;
    int rows, dups, pages;
    char error[600];
} page_state;

/* every page's last id, in order: the parsed and the unparsed listing must agree */
static char cursors[2][100][64];

static int on_page(stripe_list *l, const cJSON *data, void *ctx)
{
    page_state *st = ctx;
    if (st->pages < 100)
        snprintf(cursors[0][st->pages++], sizeof cursors[0][0], "%s", stripe_list_cursor(l));
    const cJSON *item;
    cJSON_ArrayForEach(item, data)
    {
        const char *id = cJSON_GetObjectItemCaseSensitive(item, "id")->valuestring;
        if (cJSON_GetObjectItemCaseSensitive(st->seen, id))
            st->dups++;
        else
            cJSON_AddTrueToObject(st->seen, id);
        st->rows++;
    }
    return 0;
}

/* The unparsed listing's pages (data is NULL); st->dups > 0: stop at that page. */
static int on_raw_page(stripe_list *l, const cJSON *data, void *ctx)
{
    page_state *st = ctx;
    size_t len;
    if (data || !stripe_list_page_body(l, &len) || len == 0)
        return 1;
    st->rows += stripe_list_page_count(l);
    if (st->pages < 100)
        snprintf(cursors[1][st->pages], sizeof cursors[1][0], "%s", stripe_list_cursor(l));
    st->pages++;
    return st->dups > 0 && st->pages == st->dups;
}

static void on_list_done(stripe_list *l, const upstream_error *err, int pages, void *ctx)
{
    page_state *st = ctx;
    st->pages = pages;
    if (err)
        snprintf(st->error, sizeof st->error, "%s %s", err->sqlstate, err->message);
    pending--;
}

static void test_pagination(void)
{
    reply r = call_json("POST", "/_fake/reset", "{}");
    cJSON_Delete(r.json);
    r = call_json("POST", "/_fake/seed", "{\"customers\": 10000}");
    check(r.status == 200, "fake seeded with 10,000 customers");
    cJSON_Delete(r.json);

    page_state st = {.seen = cJSON_CreateObject()};
    stripe_list_options o = {.base = base, .path = "/v1/customers",
                             .secret_key = "sk_test_apigres_integration", .priority = RATELIMIT_SYNC};
    pending++;
    stripe_list_start(&target, &o, on_page, on_list_done, &st);
    run_until_done();
    cJSON_Delete(st.seen);
    int rows = st.rows, dups = st.dups, pages = st.pages;
    check(st.error[0] == '\0', "the listing ended without error %s", st.error);
    check(rows == 10000 && dups == 0 && pages == 100,
          "paged through 10,000 customers: %d rows in %d pages, %d duplicates", rows, pages, dups);

    /* unparsed: the counts and the cursors come from the scan, not from cJSON */
    page_state un = {0};
    o.unparsed = true;
    pending++;
    stripe_list_start(&target, &o, on_raw_page, on_list_done, &un);
    run_until_done();
    int same = 0;
    for (int i = 0; i < 100; i++)
        same += strcmp(cursors[0][i], cursors[1][i]) == 0 && cursors[0][i][0];
    check(un.error[0] == '\0' && un.rows == 10000 && un.pages == 100 && same == 100,
          "unparsed, the same listing: %d rows in %d pages, %d of 100 page cursors equal %s", un.rows, un.pages,
          same, un.error);

    /* a caller that stops: the page asked for ahead is cancelled and the listing ends */
    page_state stop = {.dups = 3}; /* dups: the page to stop at */
    pending++;
    stripe_list_start(&target, &o, on_raw_page, on_list_done, &stop);
    run_until_done();
    check(stop.error[0] == '\0' && stop.pages == 3 && stop.rows == 300,
          "unparsed, stopped at the 3rd page: the listing ends there (%d pages, %d rows) %s", stop.pages,
          stop.rows, stop.error);
}

/* ---- errors and retries */

static void test_errors(void)
{
    reply r;
    start(&target, "POST", "/v1/customers", "email=not-an-email", NULL, false, RATELIMIT_WRITE, &r, 0);
    run_until_done();
    check(r.status == 400 && strcmp(r.err.sqlstate, "23514") == 0 &&
              strstr(r.err.message, "not-an-email") && strstr(r.err.detail, "param=email") &&
              strstr(r.err.detail, "request=req_"),
          "invalid email → 400, 23514, \"%s\" / %s", r.err.message, r.err.detail);
    cJSON_Delete(r.json);

    start(&target, "POST", "/v1/customers", "nickname=x", NULL, false, RATELIMIT_WRITE, &r, 0);
    run_until_done();
    check(r.status == 400 && strcmp(r.err.sqlstate, "42703") == 0,
          "unknown parameter → 42703 (%s: %s)", r.err.sqlstate, r.err.message);
    cJSON_Delete(r.json);

    start(&target, "GET", "/v1/customers/cus_doesnotexist", NULL, NULL, false, RATELIMIT_WRITE, &r, 0);
    run_until_done();
    check(r.status == 404 && r.err.not_found, "missing record → 404, not found upstream");
    cJSON_Delete(r.json);

    static const char *const bad_key[] = {"Authorization: Bearer sk_test_revoked", NULL};
    start(&target, "GET", "/v1/customers", NULL, bad_key, false, RATELIMIT_WRITE, &r, 0);
    run_until_done();
    check(r.status == 401 && strcmp(r.err.sqlstate, "42501") == 0 && r.attempts == 1,
          "revoked key → 401, 42501, not retried (%d attempt)", r.attempts);
    cJSON_Delete(r.json);
}

static void test_idempotent_retries(void)
{
    double before = fake_stat("creates");
    /* The first 5 requests fail before anything happens (500); of the rest, 5 are the
     * dangerous case: the fake performs the create, then the answer is lost. */
    fake_config("{\"fail_next\": 5, \"fail_status\": 500, \"drop_after_next\": 5}");
    enum { N = 20 };
    static reply r[N];
    static char keys[N][37], hdr[N][800];
    static const char *headers[N][4];
    for (int i = 0; i < N; i++) {
        upstream_idempotency_key(keys[i]);
        snprintf(hdr[i], sizeof hdr[i], "Idempotency-Key: %s", keys[i]);
        headers[i][0] = auth_headers[0];
        headers[i][1] = auth_headers[1];
        headers[i][2] = hdr[i];
        headers[i][3] = NULL;
        char body[64];
        snprintf(body, sizeof body, "email=retry%d%%40example.com", i);
        start(&target, "POST", "/v1/customers", body, headers[i], false, RATELIMIT_WRITE, &r[i], 0);
    }
    run_until_done();
    int ok = 0, retried = 0;
    for (int i = 0; i < N; i++) {
        ok += r[i].status == 200;
        retried += r[i].attempts > 1;
        cJSON_Delete(r[i].json);
    }
    double creates = fake_stat("creates") - before;
    check(ok == N, "every create succeeded through 5 injected 500s and 5 lost answers (%d of %d)", ok, N);
    double dropped = fake_stat("dropped_after_execution");
    /* libcurl itself re-sends on a reused connection that closed without an answer, so a
     * lost answer is not always one of our attempts: count at least the 500s */
    check(retried >= 5, "the calls hit by a 500 were retried (%d retried)", retried);
    check(dropped >= 5, "answers were lost after the fake had created (%.0f)", dropped);
    check(creates == N, "the fake performed exactly %d creates (%.0f): retries reused the idempotency key", N, creates);

    /* Without an idempotency key a lost answer must surface, not be sent again. Warm a
     * connection first so that libcurl would have one to reuse. */
    reply w;
    start(&target, "GET", "/v1/customers?limit=1", NULL, NULL, false, RATELIMIT_WRITE, &w, 0);
    run_until_done();
    cJSON_Delete(w.json);
    before = fake_stat("creates");
    fake_config("{\"drop_after_next\": 1}");
    start(&target, "POST", "/v1/customers", "email=once%40example.com", NULL, true, RATELIMIT_WRITE, &w, 0);
    run_until_done();
    creates = fake_stat("creates") - before;
    check(w.outcome == HTTP_SEND_FAILED && w.attempts == 1 && creates == 1,
          "a create without idempotency key whose answer is lost is not repeated (outcome %d, %d attempt, %.0f created)",
          (int)w.outcome, w.attempts, creates);
    cJSON_Delete(w.json);
}

static void test_retry_after(void)
{
    fake_config("{\"rate_limit_per_sec\": 1, \"retry_after\": 1}");
    reply a, b;
    start(&target, "GET", "/v1/customers?limit=1", NULL, NULL, false, RATELIMIT_SYNC, &a, 0);
    run_until_done();
    double t0 = now();
    start(&target, "GET", "/v1/customers?limit=1", NULL, NULL, false, RATELIMIT_SYNC, &b, 0);
    run_until_done();
    double took = now() - t0;
    fake_config("{\"rate_limit_per_sec\": 0, \"retry_after\": 0}");
    check(b.status == 200 && b.attempts >= 2 && took >= 0.9,
          "429 with Retry-After: 1 is waited out and retried (%d attempts, %.2f s)", b.attempts, took);
    cJSON_Delete(a.json);
    cJSON_Delete(b.json);
}

static void test_failures(void)
{
    upstream_target t = target;
    t.retry.max_attempts = 3;
    t.retry.base_delay_ms = 20;
    reply r;
    char dead[1024];
    const char *saved = base;
    snprintf(dead, sizeof dead, "http://127.0.0.1:%s", getenv("DEAD_PORT") ? getenv("DEAD_PORT") : "9");
    base = dead;
    start(&t, "GET", "/v1/customers", NULL, NULL, false, RATELIMIT_WRITE, &r, 0);
    run_until_done();
    base = saved;
    check(r.outcome == HTTP_CONNECT_FAILED && r.attempts == 3 && strcmp(r.err.sqlstate, "57P03") == 0,
          "nothing listening → connect failure after 3 attempts, 57P03 (%d, %s)", r.attempts, r.err.sqlstate);

    fake_config("{\"timeout_rate\": 1}");
    start(&t, "GET", "/v1/customers", NULL, NULL, false, RATELIMIT_WRITE, &r, 300);
    run_until_done();
    check(r.outcome == HTTP_TIMED_OUT && r.attempts == 3 && strcmp(r.err.sqlstate, "57014") == 0,
          "no answer → timeout after 3 attempts, 57014 (%d, %s: %s)", r.attempts, r.err.sqlstate, r.err.message);
    start(&t, "POST", "/v1/customers", "email=a%40b.co", NULL, true, RATELIMIT_WRITE, &r, 300);
    run_until_done();
    fake_config("{\"timeout_rate\": 0}");
    check(r.outcome == HTTP_TIMED_OUT && r.attempts == 1,
          "a create without idempotency key is not repeated after a timeout (%d attempt)", r.attempts);
}

/* ---- the rate limit over 30 seconds, writes first */

static void on_rl_reply(upstream_call *c, http_response *resp, int attempts, void *data)
{
    reply *r = data;
    r->status = resp->status;
    r->done = true;
    pending--;
}

static void test_rate_limit(void)
{
    enum { ALLOWED = 50, SECONDS = 30, QUEUED = ALLOWED * SECONDS + 400 };
    ratelimit rl;
    ratelimit_init(&rl, loop, ALLOWED, 1.0, 0);
    upstream_target t = target;
    t.limit = &rl;
    static reply r[QUEUED];
    double before = fake_stat("api_requests");
    double t0 = now();
    char url[256];
    snprintf(url, sizeof url, "%s/v1/customers?limit=1", base);
    http_options o = {.method = "GET", .url = url, .headers = auth_headers};
    upstream_call *calls[QUEUED];
    for (int i = 0; i < QUEUED; i++) {
        pending++;
        calls[i] = upstream_call_start(&t, &o, RATELIMIT_SYNC, false, on_rl_reply, &r[i]);
    }
    /* after 2 s, a write arrives behind ~1,400 queued sync requests */
    reply w;
    bool write_sent = false;
    double write_at = 0;
    while (now() - t0 < SECONDS) {
        uv_run(loop, UV_RUN_ONCE);
        if (!write_sent && now() - t0 > 2) {
            write_sent = true;
            write_at = now();
            start(&t, "GET", "/v1/customers?limit=1", NULL, NULL, false, RATELIMIT_WRITE, &w, 0);
        }
    }
    double elapsed = now() - t0;
    int done = 0;
    for (int i = 0; i < QUEUED; i++)
        done += r[i].done;
    for (int i = 0; i < QUEUED; i++)
        if (!r[i].done)
            upstream_call_cancel(calls[i]);
    run_until_done();
    double seen = fake_stat("api_requests") - before;
    double expected = ALLOWED * elapsed;
    printf("# rate limit %d/s for %.1f s: %d sync requests completed, the fake saw %.0f, the limit allows %.0f\n",
           ALLOWED, elapsed, done, seen, expected);
    check(seen <= expected * 1.05 + 1 && seen >= expected * 0.95,
          "requests held within 5%% of the limit over %d s (%.0f vs %.0f)", SECONDS, seen, expected);
    check(w.done && w.status == 200 && w.done_at - write_at < 1.5,
          "a write queued behind ~1,400 sync requests went first (answered %.2f s after it was queued)",
          w.done ? w.done_at - write_at : -1.0);
    cJSON_Delete(w.json);
    ratelimit_close(&rl);
}

/* ---- records through the generated collection specs */

typedef struct rec {
    char id[64], email[128];
    upstream_error err;
    bool failed, deleted;
} rec;

static void on_rec(const cJSON *record, const upstream_error *err, void *ctx)
{
    rec *r = ctx;
    memset(r, 0, sizeof *r);
    if (err) {
        r->failed = true;
        r->err = *err;
    } else {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(record, "id");
        const cJSON *em = cJSON_GetObjectItemCaseSensitive(record, "email");
        snprintf(r->id, sizeof r->id, "%s", cJSON_IsString(id) ? id->valuestring : "");
        snprintf(r->email, sizeof r->email, "%s", cJSON_IsString(em) ? em->valuestring : "");
        r->deleted = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(record, "deleted"));
    }
    pending--;
}

static void test_records(void)
{
    stripe_client *sc = stripe_client_new(&target, base, "sk_test_apigres_integration");
    static rec r;
    cJSON *f = cJSON_Parse("{\"email\": \"a@b.co\", \"name\": \"Ann\", \"metadata\": {\"plan\": \"pro\"}}");
    double before = fake_stat("creates");
    pending++;
    stripe_create(sc, &stripe_customer, f, RATELIMIT_WRITE, on_rec, &r);
    run_until_done();
    cJSON_Delete(f);
    char id[64];
    snprintf(id, sizeof id, "%s", r.id);
    check(!r.failed && strncmp(id, "cus_", 4) == 0 && strcmp(r.email, "a@b.co") == 0 &&
              fake_stat("creates") - before == 1,
          "stripe_create(customer) with nested metadata → %s", id);

    f = cJSON_Parse("{\"email\": \"new@example.com\"}");
    pending++;
    stripe_update(sc, &stripe_customer, id, f, RATELIMIT_WRITE, on_rec, &r);
    run_until_done();
    check(!r.failed && strcmp(r.email, "new@example.com") == 0, "stripe_update sends only the assigned field");
    cJSON_Delete(f);

    f = cJSON_Parse("{\"email\": \"not-an-email\"}");
    pending++;
    stripe_update(sc, &stripe_customer, id, f, RATELIMIT_WRITE, on_rec, &r);
    run_until_done();
    char want[128];
    snprintf(want, sizeof want, "Error updating customer %s: Invalid email address: not-an-email", id);
    check(r.failed && strcmp(r.err.sqlstate, "23514") == 0 && strcmp(r.err.message, want) == 0,
          "the API's refusal reads as the client will see it: %s", r.err.message);
    cJSON_Delete(f);

    f = cJSON_Parse("{\"created\": 1}");
    double requests = fake_stat("api_requests");
    pending++;
    stripe_update(sc, &stripe_customer, id, f, RATELIMIT_WRITE, on_rec, &r);
    run_until_done();
    check(r.failed && strcmp(r.err.sqlstate, "428C9") == 0 && fake_stat("api_requests") == requests,
          "a read-only field is refused before any call: %s", r.err.message);
    cJSON_Delete(f);

    f = cJSON_Parse("{\"nickname\": \"x\"}");
    pending++;
    stripe_update(sc, &stripe_price, "price_x", f, RATELIMIT_WRITE, on_rec, &r);
    run_until_done();
    cJSON_Delete(f);
    pending++;
    stripe_delete(sc, &stripe_price, "price_x", RATELIMIT_WRITE, on_rec, &r);
    run_until_done();
    check(r.failed && strcmp(r.err.sqlstate, "0A000") == 0, "prices cannot be deleted: %s", r.err.message);

    pending++;
    stripe_delete(sc, &stripe_customer, id, RATELIMIT_WRITE, on_rec, &r);
    run_until_done();
    check(!r.failed, "stripe_delete(customer)");
    pending++;
    stripe_retrieve(sc, &stripe_customer, id, RATELIMIT_WRITE, on_rec, &r);
    run_until_done();
    /* as Stripe documents: a deleted customer is still retrievable, marked deleted */
    check(!r.failed && r.deleted && strcmp(r.id, id) == 0, "the deleted customer reads back as deleted");
    pending++;
    stripe_retrieve(sc, &stripe_customer, "cus_neverexisted", RATELIMIT_WRITE, on_rec, &r);
    run_until_done();
    check(r.failed && r.err.not_found, "an unknown customer is not found upstream: %s", r.err.message);
    stripe_client_free(sc);
}

/* ---- /v1/events: a cursor that resumes exactly, oldest first, and expires */

typedef struct events_state {
    cJSON *seen;       /* event ids handed over */
    char order[64][64]; /* the first 64 customer ids of customer.created events, in order */
    int created, updated, deleted, dups, count, stop_after;
    long long last_created;
    bool out_of_order, done, expired;
    char cursor[256], error[600];
} events_state;

static int on_event(const cJSON *event, void *ctx)
{
    events_state *st = ctx;
    const char *id = cJSON_GetObjectItemCaseSensitive(event, "id")->valuestring;
    if (cJSON_GetObjectItemCaseSensitive(st->seen, id))
        st->dups++;
    else
        cJSON_AddTrueToObject(st->seen, id);
    long long created = (long long)cJSON_GetObjectItemCaseSensitive(event, "created")->valuedouble;
    if (created < st->last_created)
        st->out_of_order = true;
    st->last_created = created;
    const char *type = cJSON_GetObjectItemCaseSensitive(event, "type")->valuestring;
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(event, "data"), "object");
    if (strcmp(type, "customer.created") == 0 && st->created < 64)
        snprintf(st->order[st->created], sizeof st->order[0], "%s",
                 cJSON_GetObjectItemCaseSensitive(obj, "id")->valuestring);
    st->created += strcmp(type, "customer.created") == 0;
    st->updated += strcmp(type, "customer.updated") == 0;
    st->deleted += strcmp(type, "customer.deleted") == 0;
    st->count++;
    return st->stop_after && st->count == st->stop_after;
}

static void on_events_done(const upstream_error *err, bool expired, const char *cursor, int count, void *ctx)
{
    events_state *st = ctx;
    st->done = true;
    st->expired = expired;
    snprintf(st->cursor, sizeof st->cursor, "%s", cursor);
    if (err)
        snprintf(st->error, sizeof st->error, "%s %s", err->sqlstate, err->message);
    pending--;
}

static void poll_events(const char *after, int stop_after, events_state *st)
{
    cJSON_Delete(st->seen);
    memset(st, 0, sizeof *st);
    st->seen = cJSON_CreateObject();
    st->stop_after = stop_after;
    stripe_events_options o = {.base = base, .secret_key = "sk_test_apigres_integration",
                               .after = after, .priority = RATELIMIT_SYNC};
    pending++;
    stripe_events_poll(&target, &o, on_event, on_events_done, st);
    run_until_done();
}

static void test_events(void)
{
    reply r = call_json("POST", "/_fake/reset", "{}");
    cJSON_Delete(r.json);
    static events_state st;
    poll_events(NULL, 0, &st);
    check(st.done && !st.error[0] && st.cursor[0] == '\0' && st.count == 0,
          "events from now on an account without events: empty cursor %s", st.error);

    /* 250 customers created one after another, one updated, one deleted */
    enum { N = 250 };
    static char ids[N][64];
    for (int i = 0; i < N; i++) {
        char body[128];
        snprintf(body, sizeof body, "email=e%d@example.com&name=Event+%d", i, i);
        start(&target, "POST", "/v1/customers", body, NULL, false, RATELIMIT_WRITE, &r, 0);
        run_until_done();
        snprintf(ids[i], sizeof ids[i], "%s", r.json ? cJSON_GetObjectItem(r.json, "id")->valuestring : "");
        cJSON_Delete(r.json);
    }
    char path[128];
    snprintf(path, sizeof path, "/v1/customers/%s", ids[7]);
    start(&target, "POST", path, "name=Renamed", NULL, false, RATELIMIT_WRITE, &r, 0);
    run_until_done();
    cJSON_Delete(r.json);
    snprintf(path, sizeof path, "/v1/customers/%s", ids[8]);
    start(&target, "DELETE", path, NULL, NULL, false, RATELIMIT_WRITE, &r, 0);
    run_until_done();
    cJSON_Delete(r.json);

    poll_events("", 0, &st);
    bool in_order = true;
    for (int i = 0; i < 64; i++)
        in_order &= strcmp(st.order[i], ids[i]) == 0;
    check(!st.error[0] && st.count == N + 2 && st.created == N && st.updated == 1 && st.deleted == 1 &&
              st.dups == 0 && !st.out_of_order && in_order,
          "events from the beginning: %d (%d created, %d updated, %d deleted), oldest first, "
          "in creation order, no duplicates %s", st.count, st.created, st.updated, st.deleted, st.error);
    char end[256];
    snprintf(end, sizeof end, "%s", st.cursor);

    poll_events(end, 0, &st);
    check(!st.error[0] && st.count == 0 && strcmp(st.cursor, end) == 0,
          "a poll from the newest event hands over nothing and keeps the cursor");

    /* stop after 10 events (a crash after storing that cursor), then resume from it */
    poll_events("", 10, &st);
    char mid[256];
    snprintf(mid, sizeof mid, "%s", st.cursor);
    check(st.count == 10 && st.cursor[0], "stopped after 10 events at %s", mid);
    poll_events(mid, 0, &st);
    check(!st.error[0] && st.count == N + 2 - 10 && st.dups == 0 && strcmp(st.cursor, end) == 0 &&
              strcmp(st.order[0], ids[10]) == 0,
          "resumed from that cursor: the other %d events, starting with the 11th customer", st.count);

    poll_events(NULL, 0, &st);
    check(!st.error[0] && st.count == 0 && strcmp(st.cursor, end) == 0,
          "events from now: the cursor is the newest event");

    /* a cursor past retention cannot resume: the caller must re-list */
    fake_config("{\"event_retention_seconds\": 1}");
    uv_sleep(1100);
    poll_events(end, 0, &st);
    check(st.done && st.expired && !st.error[0] && st.count == 0 && strcmp(st.cursor, end) == 0,
          "a cursor older than the events retention is reported expired");
    fake_config("{\"event_retention_seconds\": 2592000}");
    cJSON_Delete(st.seen);
    st.seen = NULL;
}

/* ---- HTTP/2 where the server offers it (over TLS), many requests on one connection */

typedef struct h2reply {
    long status, version;
    enum http_outcome outcome;
    char error[256];
} h2reply;

static void on_h2(upstream_call *c, http_response *resp, int attempts, void *data)
{
    h2reply *r = data;
    r->status = resp->status;
    r->version = resp->http_version;
    r->outcome = resp->outcome;
    snprintf(r->error, sizeof r->error, "%s", resp->error);
    pending--;
}

typedef struct stats_reply {
    cJSON *json;
} stats_reply;

static void on_stats(upstream_call *c, http_response *resp, int attempts, void *data)
{
    stats_reply *r = data;
    r->json = resp->outcome == HTTP_OK ? cJSON_ParseWithLength(resp->body.data, resp->body.len) : NULL;
    pending--;
}

static double h2_stats(const char *h2, const char *key)
{
    char url[512];
    snprintf(url, sizeof url, "%s/stats", h2);
    upstream_target t = target;
    t.ca_file = getenv("H2_CA");
    stats_reply r = {0};
    http_options o = {.method = "GET", .url = url};
    pending++;
    upstream_call_start(&t, &o, RATELIMIT_WRITE, false, on_stats, &r);
    run_until_done();
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r.json, key);
    double d = cJSON_IsNumber(v) ? v->valuedouble : -1;
    cJSON_Delete(r.json);
    return d;
}

static void test_http2(void)
{
    const char *h2 = getenv("H2_URL"), *ca = getenv("H2_CA");
    if (!h2 || !ca) {
        check(0, "an HTTP/2 server over TLS to test against (H2_URL, H2_CA)");
        return;
    }
    char url[512];
    snprintf(url, sizeof url, "%s/v1/customers", h2);
    http_options o = {.method = "GET", .url = url, .headers = auth_headers};

    /* a certificate the system does not trust is refused */
    h2reply bad;
    pending++;
    upstream_call_start(&target, &o, RATELIMIT_WRITE, false, on_h2, &bad);
    run_until_done();
    check(bad.outcome != HTTP_OK, "a server certificate nobody trusts is refused (%s)", bad.error);

    upstream_target t = target;
    t.ca_file = ca;
    double sessions_before = h2_stats(h2, "sessions");
    enum { N = 50 };
    static h2reply r[N];
    for (int i = 0; i < N; i++) {
        pending++;
        upstream_call_start(&t, &o, RATELIMIT_WRITE, false, on_h2, &r[i]);
    }
    run_until_done();
    int ok2 = 0;
    for (int i = 0; i < N; i++)
        ok2 += r[i].outcome == HTTP_OK && r[i].status == 200 && r[i].version == 2;
    double sessions = h2_stats(h2, "sessions") - sessions_before;
    check(ok2 == N, "%d concurrent requests answered over HTTP/2 (%d of %d)", N, ok2, N);
    check(sessions >= 0 && sessions <= 2, "multiplexed over %.0f new connection(s) (keep-alive, HTTP/2 streams)",
          sessions);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s BASE_URL\n", argv[0]);
        return 2;
    }
    base = argv[1];
    itest_label = "65_upstream";
    loop = uv_default_loop();
    ratelimit_init(&unlimited, loop, 0, 0, 0);
    upstream_target_init(&target, loop, &unlimited);
    http = target.http;
    target.retry.base_delay_ms = 50;

    test_concurrency();
    test_pagination();
    test_errors();
    test_records();
    test_events();
    test_http2();
    test_idempotent_retries();
    test_retry_after();
    test_failures();
    if (!getenv("UPSTREAM_SKIP_SLOW"))
        test_rate_limit();

    upstream_target_close(&target);
    ratelimit_close(&unlimited);
    uv_run(loop, UV_RUN_DEFAULT);
    printf("# %d checks, %d failed\n", itest_checks, itest_failures);
    return itest_failures ? 1 : 0;
}
