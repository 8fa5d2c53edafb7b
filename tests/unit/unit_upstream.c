/* Unit tests for upstream/: the rate limiter's window, the retry policy, header lookup. */
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "tests/unit/unit.h"
#include "upstream/error.h"
#include "upstream/form.h"
#include "upstream/http.h"
#include "upstream/provider.h"
#include "upstream/salesforce.h"
#include "upstream/stripe.h"
#include "upstream/ratelimit.h"
#include "upstream/retry.h"

/* Simulates a client of priority prio that starts a request whenever the limiter allows,
 * for `ms` milliseconds of virtual time; returns how many started. Requests finish at once. */
static int simulate(ratelimit *rl, enum ratelimit_priority prio, uint64_t ms)
{
    int started = 0;
    for (uint64_t now = 0; now < ms;) {
        int64_t wait = ratelimit_wait_ms(rl, prio, now);
        if (wait == 0) {
            ratelimit_take(rl, now);
            ratelimit_release(rl);
            started++;
        } else {
            now += (uint64_t)wait;
        }
    }
    return started;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The case that matters: a backfill that wants every slot, one request at a time (20 ms
 * each), and a write now and then (170 ms after the last one started, ahead of the
 * backfill). The backfill fills the window in a burst at first, and a write that comes then
 * waits for the window to move. From the second interval on, writes must find a slot within
 * interval/allowed mostly and never wait long (without pacing the burst comes back every
 * interval, and writes wait up to 470 ms), and the backfill must keep the rest. */
static void test_writes_among_a_backfill(void)
{
    ratelimit rl;
    CHECK(ratelimit_init(&rl, NULL, 20, 1.0, 0) == 0, "ratelimit init 20/s");
    uint64_t sync_busy_until = 0, write_due = 500, write_arrived = 0, waits[100];
    bool write_waiting = false;
    int writes = 0, syncs = 0, nwaits = 0;
    for (uint64_t now = 0; now < 10000; now++) {
        if (now == write_due) {
            write_waiting = true;
            write_arrived = now;
        }
        if (write_waiting && ratelimit_wait_ms(&rl, RATELIMIT_WRITE, now) == 0) {
            ratelimit_take(&rl, now);
            if (write_arrived >= 2000 && nwaits < 100)
                waits[nwaits++] = now - write_arrived;
            write_waiting = false;
            write_due = now + 170;
            writes++;
        }
        if (!write_waiting && now >= sync_busy_until && ratelimit_wait_ms(&rl, RATELIMIT_SYNC, now) == 0) {
            ratelimit_take(&rl, now);
            sync_busy_until = now + 20;
            syncs++;
        }
    }
    qsort(waits, (size_t)nwaits, sizeof *waits, cmp_u64);
    uint64_t median = nwaits ? waits[nwaits / 2] : 0, worst = nwaits ? waits[nwaits - 1] : 0;
    CHECK(nwaits > 30 && median <= 50 && worst <= 250,
          "after the first interval, writes wait for a slot: median %llu ms (at most interval/allowed, 50), "
          "the longest %llu ms (at most interval/4)",
          (unsigned long long)median, (unsigned long long)worst);
    CHECK(writes + syncs >= 199 && writes + syncs <= 200,
          "the backfill takes every slot the writes leave (%d writes, %d backfill requests in 10 s)", writes,
          syncs);
    ratelimit_close(&rl);
}

static void test_window(void)
{
    ratelimit rl;
    CHECK(ratelimit_init(&rl, NULL, 100, 1.0, 0) == 0, "ratelimit init 100/s");
    int n = simulate(&rl, RATELIMIT_WRITE, 30000);
    CHECK(n == 3000, "100 per 1 s held exactly over 30 s of virtual time (%d)", n);
    ratelimit_close(&rl);
    CHECK(ratelimit_init(&rl, NULL, 100, 1.0, 0) == 0, "ratelimit init 100/s");
    n = simulate(&rl, RATELIMIT_SYNC, 30000);
    CHECK(n == 3000, "sync traffic, paced once the window is full, still gets all of it (%d)", n);
    ratelimit_close(&rl);

    CHECK(ratelimit_init(&rl, NULL, 5, 10.0, 0) == 0, "ratelimit init 5/10s");
    for (int i = 0; i < 5; i++)
        ratelimit_take(&rl, 1000 + (uint64_t)i);
    CHECK(ratelimit_wait_ms(&rl, RATELIMIT_WRITE, 1010) == 9990, "a full window waits until its oldest start leaves");
    CHECK(ratelimit_wait_ms(&rl, RATELIMIT_WRITE, 11000) == 0, "then admits one");
    CHECK(ratelimit_wait_ms(&rl, RATELIMIT_SYNC, 11000) == 0, "... to sync traffic too, the latest starts being long past");
    ratelimit_take(&rl, 11000);
    CHECK(ratelimit_wait_ms(&rl, RATELIMIT_SYNC, 11001) == 0, "one recent start does not hold sync traffic back");
    ratelimit_take(&rl, 11001);
    CHECK(ratelimit_wait_ms(&rl, RATELIMIT_SYNC, 11002) == 3998,
          "two do, in a full window: until the earlier is 2 * interval/allowed old");
    CHECK(ratelimit_wait_ms(&rl, RATELIMIT_WRITE, 11002) == 0, "a write takes the free slot at once");
    ratelimit_close(&rl);

    /* any window of `interval` holds at most `allowed` starts, also for bursts */
    CHECK(ratelimit_init(&rl, NULL, 7, 0.5, 0) == 0, "ratelimit init 7/0.5s");
    uint64_t starts[200];
    int k = 0;
    for (uint64_t now = 0; k < 200;) {
        int64_t wait = ratelimit_wait_ms(&rl, k % 2 ? RATELIMIT_SYNC : RATELIMIT_WRITE, now);
        if (wait == 0) {
            ratelimit_take(&rl, now);
            starts[k++] = now;
        } else {
            now += (uint64_t)wait;
        }
    }
    int worst = 0;
    for (int i = 0; i < 200; i++) {
        int in = 0;
        for (int j = i; j < 200 && starts[j] < starts[i] + 500; j++)
            in++;
        if (in > worst)
            worst = in;
    }
    CHECK(worst == 7, "no 0.5 s window holds more than 7 starts (worst %d)", worst);
    ratelimit_close(&rl);

    CHECK(ratelimit_init(&rl, NULL, 0, 0, 2) == 0, "concurrency-only limiter");
    ratelimit_take(&rl, 0);
    ratelimit_take(&rl, 0);
    CHECK(ratelimit_wait_ms(&rl, RATELIMIT_WRITE, 0) == -1, "max_concurrent reached: only a release unblocks");
    ratelimit_release(&rl);
    CHECK(ratelimit_wait_ms(&rl, RATELIMIT_WRITE, 0) == 0, "a release frees a slot");
    ratelimit_close(&rl);

    /* the proxy's write path and the sync worker of one sync share its budget */
    ratelimit a, b, other;
    CHECK(ratelimit_init_shared(&a, NULL, "sync-x", 2, 1.0, 0) == 0 &&
              ratelimit_init_shared(&b, NULL, "sync-x", 2, 1.0, 0) == 0 &&
              ratelimit_init_shared(&other, NULL, "sync-y", 2, 1.0, 0) == 0,
          "shared limiters by key");
    ratelimit_take(&a, 100);
    ratelimit_take(&a, 100);
    CHECK(ratelimit_wait_ms(&b, RATELIMIT_WRITE, 100) == 1000, "a start on one limiter counts on the other of the same key");
    CHECK(ratelimit_wait_ms(&other, RATELIMIT_WRITE, 100) == 0, "... and not on another key's");
    ratelimit_close(&a);
    CHECK(ratelimit_wait_ms(&b, RATELIMIT_WRITE, 500) == 600, "closing one keeps the budget for the other");
    ratelimit_close(&b);
    ratelimit_close(&other);
    CHECK(ratelimit_init_shared(&a, NULL, "sync-x", 2, 1.0, 0) == 0 && ratelimit_wait_ms(&a, RATELIMIT_WRITE, 0) == 0,
          "after the last close the key starts afresh");
    ratelimit_close(&a);

    CHECK(ratelimit_init(&rl, NULL, 10, 0, 0) < 0, "a rate without an interval is refused");
}

static void test_retry(void)
{
    CHECK(retry_is_retryable(HTTP_CONNECT_FAILED, 0, true), "nothing sent: always retryable");
    CHECK(retry_is_retryable(HTTP_OK, 429, true) && retry_is_retryable(HTTP_OK, 503, true),
          "429 and 503 are retryable even for a create without idempotency key");
    CHECK(retry_is_retryable(HTTP_OK, 500, false) && !retry_is_retryable(HTTP_OK, 500, true),
          "500 only when a repeat cannot duplicate");
    CHECK(retry_is_retryable(HTTP_TIMED_OUT, 0, false) && !retry_is_retryable(HTTP_TIMED_OUT, 0, true),
          "a timeout only when a repeat cannot duplicate");
    CHECK(!retry_is_retryable(HTTP_OK, 400, false) && !retry_is_retryable(HTTP_OK, 404, false) &&
              !retry_is_retryable(HTTP_OK, 401, false),
          "client errors are final");

    retry_policy p;
    retry_policy_default(&p);
    CHECK(retry_delay_ms(&p, 1, -1, 0.999) < 250 && retry_delay_ms(&p, 3, -1, 0.999) > 990 &&
              retry_delay_ms(&p, 3, -1, 0.999) < 1000,
          "backoff ceilings double: 250 ms, 500 ms, 1 s");
    CHECK(retry_delay_ms(&p, 30, -1, 0.999) <= p.max_delay_ms, "backoff is capped");
    CHECK(retry_delay_ms(&p, 1, 5000, 0.1) == 5000, "Retry-After is honoured when longer");
    CHECK(retry_parse_retry_after("7", 0) == 7000, "Retry-After in seconds");
    CHECK(retry_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470) == 10000,
          "Retry-After as an HTTP-date");
    CHECK(retry_parse_retry_after("soon", 0) < 0 && retry_parse_retry_after("", 0) < 0,
          "an invalid Retry-After is ignored");
}

static void test_headers(void)
{
    http_response r;
    memset(&r, 0, sizeof r);
    pgbuf_init(&r.headers, 4096);
    const char *h = "Content-Type: application/json\r\nRequest-Id:  req_123 \r\nretry-after: 2\r\n\r\n";
    pgbuf_put(&r.headers, h, strlen(h));
    char v[64];
    CHECK(http_response_header(&r, "request-id", v, sizeof v) == 0 && strcmp(v, "req_123") == 0,
          "header lookup is case-insensitive and trims");
    CHECK(http_response_header(&r, "Retry-After", v, sizeof v) == 0 && strcmp(v, "2") == 0,
          "Retry-After found");
    CHECK(http_response_header(&r, "Request", v, sizeof v) < 0, "a prefix is not a header name");
    char small[4];
    CHECK(http_response_header(&r, "content-type", small, sizeof small) == 0 && strlen(small) == 3,
          "a long value is truncated to the buffer");
    pgbuf_free(&r.headers);
}

static void test_form(void)
{
    cJSON *o = cJSON_Parse("{\"email\": \"a+b@x.co\", \"name\": \"Ann Lee\", "
                           "\"metadata\": {\"plan\": \"pro/1\", \"n\": 3}, "
                           "\"items\": [{\"price\": \"price_1\"}, {\"price\": \"price_2\"}], "
                           "\"expand\": [\"customer\"], \"livemode\": false, \"description\": null}");
    pgbuf out;
    pgbuf_init(&out, 4096);
    int rc = form_encode(&out, o);
    pgbuf_put_byte(&out, 0);
    CHECK(rc == 0 && strcmp(out.data,
                            "email=a%2Bb%40x.co&name=Ann%20Lee&metadata%5Bplan%5D=pro%2F1&metadata%5Bn%5D=3"
                            "&items%5B0%5D%5Bprice%5D=price_1&items%5B1%5D%5Bprice%5D=price_2"
                            "&expand%5B0%5D=customer&livemode=false&description=") == 0,
          "form encoding: escapes, nested objects, arrays, booleans, null clears (%s)", out.data);
    cJSON_Delete(o);
    pgbuf_reset(&out);
    cJSON *arr = cJSON_Parse("[1]");
    CHECK(form_encode(&out, arr) < 0, "form encoding refuses a non-object");
    cJSON_Delete(arr);
    pgbuf_free(&out);
}

static void test_redact(void)
{
    char s[] = "Invalid API Key provided: sk_test_4eC39HqLyjWDarjtT1zdp7dc; Bearer abc.def "
               "session 00D5e000000ABCD!AQ0AQH0dMHZfz9x rk_live_zzz";
    upstream_redact(s);
    CHECK(strstr(s, "4eC39") == NULL && strstr(s, "abc.def") == NULL && strstr(s, "AQ0AQ") == NULL &&
              strstr(s, "zzz") == NULL && strstr(s, "sk_test_****") != NULL,
          "keys and tokens are masked: %s", s);
    char plain[] = "Invalid email address: not-an-email";
    upstream_redact(plain);
    CHECK(strcmp(plain, "Invalid email address: not-an-email") == 0, "ordinary text is untouched");
}

static http_response fake_response(long status, const char *body, const char *headers)
{
    http_response r;
    memset(&r, 0, sizeof r);
    r.status = status;
    pgbuf_init(&r.body, 1 << 16);
    pgbuf_init(&r.headers, 4096);
    pgbuf_put(&r.body, body, strlen(body));
    pgbuf_put(&r.headers, headers, strlen(headers));
    return r;
}

static void test_stripe_errors(void)
{
    upstream_error e;
    http_response r = fake_response(
        400,
        "{\"error\": {\"type\": \"invalid_request_error\", \"code\": \"email_invalid\", "
        "\"param\": \"email\", \"message\": \"Invalid email address: not-an-email\"}}",
        "Request-Id: req_abc123\r\n");
    stripe_error_from_response(&r, &e);
    CHECK(strcmp(e.sqlstate, "23514") == 0 && strcmp(e.message, "Invalid email address: not-an-email") == 0 &&
              strcmp(e.detail, "stripe invalid_request_error email_invalid param=email status=400 request=req_abc123") == 0,
          "stripe email_invalid → 23514 with the API's message and a DETAIL (%s | %s)", e.sqlstate, e.detail);
    pgbuf_free(&r.body);
    pgbuf_free(&r.headers);

    r = fake_response(401, "{\"error\": {\"type\": \"invalid_request_error\", \"message\": "
                           "\"Invalid API Key provided: sk_test_1234567890abcdef\"}}", "");
    stripe_error_from_response(&r, &e);
    CHECK(strcmp(e.sqlstate, "42501") == 0 && strstr(e.message, "1234567890") == NULL,
          "stripe 401 → 42501 and the key never appears (%s)", e.message);
    pgbuf_free(&r.body);
    pgbuf_free(&r.headers);

    r = fake_response(404, "{\"error\": {\"type\": \"invalid_request_error\", \"code\": "
                           "\"resource_missing\", \"param\": \"id\", \"message\": \"No such customer: 'cus_x'\"}}", "");
    stripe_error_from_response(&r, &e);
    CHECK(e.not_found, "stripe resource_missing on id → not found upstream");
    pgbuf_free(&r.body);
    pgbuf_free(&r.headers);

    r = fake_response(502, "<html>bad gateway</html>", "");
    stripe_error_from_response(&r, &e);
    CHECK(strcmp(e.sqlstate, "57P03") == 0, "a non-JSON 502 → 57P03");
    pgbuf_free(&r.body);
    pgbuf_free(&r.headers);

    bool nf;
    CHECK(strcmp(stripe_sqlstate(400, "invalid_request_error", "parameter_missing", "name", "", &nf), "23502") == 0 &&
              strcmp(stripe_sqlstate(400, "invalid_request_error", "parameter_unknown", "foo", "", &nf), "42703") == 0 &&
              strcmp(stripe_sqlstate(400, "invalid_request_error", "resource_missing", "customer", "", &nf), "23503") == 0 &&
              strcmp(stripe_sqlstate(400, "invalid_request_error", "resource_already_exists", NULL, "", &nf), "23505") == 0 &&
              strcmp(stripe_sqlstate(400, "invalid_request_error", "parameter_invalid_integer", "amount", "", &nf), "22023") == 0 &&
              strcmp(stripe_sqlstate(400, "invalid_request_error", NULL, "name", "Invalid string: aaa...; must be at most 256 characters", &nf), "22001") == 0 &&
              strcmp(stripe_sqlstate(429, "invalid_request_error", "rate_limit", NULL, "", &nf), "40001") == 0 &&
              strcmp(stripe_sqlstate(409, "idempotency_error", NULL, NULL, "", &nf), "40001") == 0 &&
              strcmp(stripe_sqlstate(500, "api_error", NULL, NULL, "", &nf), "57P03") == 0,
          "stripe mapping table: missing, unknown, reference, duplicate, invalid, too long, rate limit, conflict, server");

    http_response t;
    memset(&t, 0, sizeof t);
    t.outcome = HTTP_TIMED_OUT;
    t.elapsed_ms = 30000;
    stripe_error_from_response(&t, &e);
    CHECK(strcmp(e.sqlstate, "57014") == 0 && strstr(e.message, "30000 ms"), "a timeout → 57014 with the elapsed time");
}

static void test_salesforce_errors(void)
{
    upstream_error e;
    http_response r = fake_response(
        400, "[{\"message\": \"Email: invalid email address: x\", \"errorCode\": \"INVALID_EMAIL_ADDRESS\", "
             "\"fields\": [\"Email\"]}]",
        "Sforce-Limit-Info: api-usage=18/15000\r\n");
    salesforce_error_from_response(&r, &e);
    CHECK(strcmp(e.sqlstate, "23514") == 0 && strcmp(e.message, "Email: invalid email address: x") == 0 &&
              strcmp(e.detail, "salesforce INVALID_EMAIL_ADDRESS fields=Email status=400 api-usage=18/15000") == 0,
          "salesforce INVALID_EMAIL_ADDRESS → 23514 (%s | %s)", e.sqlstate, e.detail);
    pgbuf_free(&r.body);
    pgbuf_free(&r.headers);

    r = fake_response(400, "{\"error\": \"invalid_grant\", \"error_description\": \"expired access/refresh token\"}", "");
    salesforce_error_from_response(&r, &e);
    CHECK(strcmp(e.sqlstate, "42501") == 0 && strcmp(e.message, "expired access/refresh token") == 0,
          "salesforce OAuth invalid_grant → 42501");
    pgbuf_free(&r.body);
    pgbuf_free(&r.headers);

    r = fake_response(404, "[{\"message\": \"The requested resource does not exist\", \"errorCode\": \"NOT_FOUND\"}]", "");
    salesforce_error_from_response(&r, &e);
    CHECK(e.not_found, "salesforce NOT_FOUND → not found upstream");
    pgbuf_free(&r.body);
    pgbuf_free(&r.headers);

    r = fake_response(
        400,
        "[{\"message\": \"Use one of these records?\", \"errorCode\": \"DUPLICATES_DETECTED\", \"fields\": [], "
        "\"duplicateResult\": {\"allowSave\": false, \"duplicateRule\": \"Standard_Contact_Duplicate_Rule\", "
        "\"matchResults\": [{\"entityType\": \"Contact\", \"matchRecords\": ["
        "{\"record\": {\"attributes\": {\"type\": \"Contact\"}, \"Id\": \"003000000000001AAA\"}},"
        "{\"record\": {\"Id\": \"003000000000002AAA\"}}, {\"record\": {\"Id\": 7}}]}]}}]",
        "");
    salesforce_error_from_response(&r, &e);
    CHECK(strcmp(e.sqlstate, "23505") == 0 && strcmp(e.message, "Use one of these records?") == 0 &&
              strcmp(e.detail, "salesforce DUPLICATES_DETECTED duplicate_rule=Standard_Contact_Duplicate_Rule "
                               "matches=003000000000001AAA,003000000000002AAA status=400") == 0,
          "salesforce DUPLICATES_DETECTED → 23505, the DETAIL names the rule and the matched records (%s)", e.detail);
    pgbuf_free(&r.body);
    pgbuf_free(&r.headers);

    bool nf;
    /* every row of README's "Error mapping: Salesforce" */
    static const struct {
        long status;
        const char *code, *sqlstate;
        bool gone;
    } rows[] = {
        {400, "INVALID_EMAIL_ADDRESS", "23514", false},
        {400, "FIELD_CUSTOM_VALIDATION_EXCEPTION", "23514", false},
        {400, "FIELD_INTEGRITY_EXCEPTION", "23514", false},
        {400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "22023", false},
        {400, "INVALID_TYPE_ON_FIELD_IN_RECORD", "22023", false},
        {400, "SOME_CODE_NOT_IN_THE_TABLE", "22023", false},
        {400, "NUMBER_OUTSIDE_VALID_RANGE", "22003", false},
        {400, "STRING_TOO_LONG", "22001", false},
        {400, "MALFORMED_ID", "22P02", false},
        {400, "REQUIRED_FIELD_MISSING", "23502", false},
        {400, "DUPLICATE_VALUE", "23505", false},
        {400, "DUPLICATES_DETECTED", "23505", false},
        {400, "INVALID_CROSS_REFERENCE_KEY", "23503", false},
        {400, "ENTITY_IS_DELETED", "23503", false},
        {400, "INVALID_FIELD_FOR_INSERT_UPDATE", "428C9", false},
        {400, "INVALID_FIELD", "42703", false},
        {400, "MALFORMED_QUERY", "42601", false},
        {404, "NOT_FOUND", "02000", true},
        {404, "ENTITY_IS_DELETED", "02000", true},
        {401, "INVALID_SESSION_ID", "42501", false},
        {403, "INSUFFICIENT_ACCESS_OR_READONLY", "42501", false},
        {400, "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY", "42501", false},
        {403, "API_DISABLED_FOR_ORG", "42501", false},
        {400, "invalid_grant", "42501", false},
        {401, "invalid_client", "42501", false},
        {403, "REQUEST_LIMIT_EXCEEDED", "40001", false},
        {400, "UNABLE_TO_LOCK_ROW", "40001", false},
        {503, "SERVER_UNAVAILABLE", "57P03", false},
        {500, NULL, "57P03", false},
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        const char *got = salesforce_sqlstate(rows[i].status, rows[i].code, &nf);
        CHECK(strcmp(got, rows[i].sqlstate) == 0 && nf == rows[i].gone, "salesforce %ld %s → %s%s (got %s)",
              rows[i].status, rows[i].code ? rows[i].code : "(no code)", rows[i].sqlstate,
              rows[i].gone ? ", record gone" : "", got);
    }
}

static void test_provider_checks(void)
{
    static const provider_field fields[] = {
        {"id", FIELD_TEXT, false, false, false, "Unique identifier"},
        {"created", FIELD_TIMESTAMPTZ, false, false, false, "Creation time"},
        {"currency", FIELD_TEXT, true, false, true, "Three-letter ISO code"},
        {"nickname", FIELD_TEXT, true, true, false, "A brief description"},
    };
    static const provider_collection price = {"stripe", "price", "price", "/v1/prices", "/v1/prices/{id}",
                                              "/v1/prices", "/v1/prices/{id}", NULL, "Prices", fields, 4, NULL};
    upstream_error e;
    cJSON *f = cJSON_Parse("{\"currency\": \"usd\", \"nickname\": \"x\"}");
    CHECK(provider_check_fields(&price, f, true, &e) == 0, "assigned fields accepted on create");
    CHECK(provider_check_fields(&price, f, false, &e) < 0 && strcmp(e.sqlstate, "428C9") == 0 &&
              strstr(e.message, "price.currency cannot be updated"),
          "a field the API does not take on update → 428C9 (%s)", e.message);
    cJSON_Delete(f);
    f = cJSON_Parse("{\"nickname\": \"x\"}");
    CHECK(provider_check_fields(&price, f, true, &e) < 0 && strcmp(e.sqlstate, "23502") == 0,
          "a required field missing on create → 23502 (%s)", e.message);
    cJSON_Delete(f);
    f = cJSON_Parse("{\"colour\": \"x\"}");
    CHECK(provider_check_fields(&price, f, false, &e) < 0 && strcmp(e.sqlstate, "42703") == 0,
          "an unknown field → 42703 (%s)", e.message);
    cJSON_Delete(f);
    f = cJSON_Parse("{\"id\": \"price_2\"}");
    CHECK(provider_check_fields(&price, f, false, &e) < 0 && strcmp(e.sqlstate, "428C9") == 0,
          "id cannot be assigned → 428C9");
    cJSON_Delete(f);
    CHECK(strcmp(field_type_sql(FIELD_TIMESTAMPTZ), "timestamptz") == 0 && provider_field_find(&price, "created"),
          "field lookup and SQL type names");

    upstream_error_set(&e, "23514", "Invalid email address: not-an-email", NULL);
    upstream_error_context(&e, "updating", "customer", "cus_123");
    CHECK(strcmp(e.message, "Error updating customer cus_123: Invalid email address: not-an-email") == 0,
          "error context: %s", e.message);
    memset(e.message, 'x', sizeof e.message - 1);
    e.message[sizeof e.message - 1] = 0;
    upstream_error_context(&e, "creating", "customer", NULL);
    CHECK(strncmp(e.message, "Error creating customer: xxx", 28) == 0 && strlen(e.message) == sizeof e.message - 1,
          "error context keeps the prefix and cuts a long message");
}

int main(void)
{
    test_provider_checks();
    test_salesforce_errors();
    test_window();
    test_writes_among_a_backfill();
    test_retry();
    test_headers();
    test_form();
    test_redact();
    test_stripe_errors();
    return unit_done();
}
