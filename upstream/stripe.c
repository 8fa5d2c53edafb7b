/* stripe: see stripe.h. */
#include "upstream/stripe.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upstream/form.h"
#include "upstream/json.h"
#include "upstream/json_scan.h"

static bool starts_with(const char *s, const char *prefix)
{
    return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The mapping table (README.md "Error mapping: Stripe"). */
const char *stripe_sqlstate(long status, const char *type, const char *code, const char *param,
                            const char *message, bool *not_found)
{
    *not_found = false;
    if (status == 401 || (type && strcmp(type, "authentication_error") == 0))
        return "42501";
    if (status == 403 || (type && strcmp(type, "permission_error") == 0))
        return "42501";
    if (status == 429 || (code && strcmp(code, "rate_limit") == 0))
        return "40001";
    if (status == 409 || (type && strcmp(type, "idempotency_error") == 0) ||
        (code && (strcmp(code, "lock_timeout") == 0 || strcmp(code, "idempotency_key_in_use") == 0)))
        return "40001";
    if (code && strcmp(code, "resource_missing") == 0) {
        /* the record addressed by the URL is gone; another one it refers to is a
         * foreign-key failure */
        if (!param || strcmp(param, "id") == 0) {
            *not_found = true;
            return "02000";
        }
        return "23503";
    }
    if (status == 404) {
        *not_found = true;
        return "02000";
    }
    if (status >= 500 || (type && strcmp(type, "api_error") == 0))
        return "57P03";
    if (code) {
        if (strcmp(code, "parameter_missing") == 0)
            return "23502";
        if (strcmp(code, "parameter_unknown") == 0)
            return "42703";
        if (strcmp(code, "resource_already_exists") == 0)
            return "23505";
        if (strcmp(code, "email_invalid") == 0)
            return "23514";
        if (starts_with(code, "parameter_invalid") || strcmp(code, "invalid_characters") == 0 ||
            strcmp(code, "url_invalid") == 0 || strcmp(code, "country_code_invalid") == 0 ||
            strcmp(code, "amount_too_large") == 0 || strcmp(code, "amount_too_small") == 0)
            return "22023";
    }
    if (message && strstr(message, "must be at most"))
        return "22001"; /* "Invalid string: ...; must be at most N characters" */
    if (type && strcmp(type, "card_error") == 0)
        return "22023";
    return status >= 400 && status < 500 ? "22023" : "XX000";
}

void stripe_error_from_response(const http_response *resp, upstream_error *err)
{
    if (resp->outcome != HTTP_OK) {
        upstream_error_from_transport("stripe", resp, err);
        return;
    }
    cJSON *root = cJSON_ParseWithLength(resp->body.data ? resp->body.data : "", resp->body.len);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
    if (!cJSON_IsObject(e)) {
        if (!upstream_error_from_transport("stripe", resp, err)) {
            char msg[128];
            snprintf(msg, sizeof msg, "unexpected response from stripe (HTTP %ld)", resp->status);
            upstream_error_set(err, "XX000", msg, "stripe body is not an error object");
        }
        cJSON_Delete(root);
        return;
    }
    const char *type = json_string(e, "type");
    const char *code = json_string(e, "code");
    const char *param = json_string(e, "param");
    const char *message = json_string(e, "message");
    char request_id[80] = "";
    http_response_header(resp, "request-id", request_id, sizeof request_id);
    bool not_found;
    const char *state = stripe_sqlstate(resp->status, type, code, param, message, &not_found);
    char detail[512];
    int n = snprintf(detail, sizeof detail, "stripe %s", type ? type : "error");
    if (code)
        n += snprintf(detail + n, sizeof detail - (size_t)n, " %s", code);
    if (param && n < (int)sizeof detail)
        n += snprintf(detail + n, sizeof detail - (size_t)n, " param=%s", param);
    if (n < (int)sizeof detail)
        n += snprintf(detail + n, sizeof detail - (size_t)n, " status=%ld", resp->status);
    if (request_id[0] && n < (int)sizeof detail)
        snprintf(detail + n, sizeof detail - (size_t)n, " request=%s", request_id);
    upstream_error_set(err, state, message ? message : "stripe error", detail);
    err->not_found = not_found;
    cJSON_Delete(root);
}

/* ---- lists */

struct stripe_list {
    upstream_target *t;
    stripe_page_cb on_page;
    stripe_list_done_cb on_done;
    void *ctx;
    char *base, *path;
    char auth[256];
    char cursor[256];
    bool oldest_first; /* ending_before paging: towards newer objects */
    bool unparsed;
    bool stopped;    /* the caller stopped meanwhile: its arrival (or cancellation) ends the listing */
    enum ratelimit_priority priority;
    int limit;
    int pages;
    const pgbuf *page_body; /* during on_page */
    int page_count;         /* during on_page */
};

static void list_free(stripe_list *l)
{
    free(l->base);
    free(l->path);
    free(l);
}

static void list_fetch(stripe_list *l);
static upstream_call *list_request(stripe_list *l);

/* Whether a failed list request names its own cursor as missing: the object it pointed
 * at was deleted, or (for events) has passed the retention period. */
static bool cursor_missing(const http_response *resp)
{
    if (resp->outcome != HTTP_OK || (resp->status != 400 && resp->status != 404))
        return false;
    cJSON *root = cJSON_ParseWithLength(resp->body.data ? resp->body.data : "", resp->body.len);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
    const char *code = json_string(e, "code"), *param = json_string(e, "param");
    bool missing = code && strcmp(code, "resource_missing") == 0 && param &&
                   (strcmp(param, "starting_after") == 0 || strcmp(param, "ending_before") == 0);
    cJSON_Delete(root);
    return missing;
}

/* Reverses a cJSON array in place (a page is at most 100 items). */
static void reverse_array(cJSON *items)
{
    cJSON *head = NULL, *item = items->child;
    while (item) {
        cJSON *next = item->next;
        item->next = head;
        if (head)
            head->prev = item;
        head = item;
        item = next;
    }
    /* cJSON keeps the tail in the head's prev */
    if (head) {
        cJSON *tail = head;
        while (tail->next)
            tail = tail->next;
        head->prev = tail;
    }
    items->child = head;
}

/* A list page read without building it: its record count, the id of its last record
 * (in id[idlen]) and has_more. false when it holds anything this cannot tell for sure (an
 * id with escapes, a second "data"): the page is parsed then. */
static bool scan_page(const char *body, size_t len, int *count, char *id, size_t idlen, bool *more)
{
    json_scan s = {body, body + len};
    const char *a, *b, *last = NULL;
    int n = -1;
    *more = false;
    if (!json_scan_take(&s, '{') || json_scan_take(&s, '}'))
        return false;
    do {
        if (!json_scan_key(&s, &a, &b))
            return false;
        if (b - a == 8 && memcmp(a, "has_more", 8) == 0) {
            json_scan_ws(&s);
            char kind = json_scan_value(&s, 1);
            if (!kind)
                return false;
            *more = kind == 't';
        } else if (b - a == 4 && memcmp(a, "data", 4) == 0) {
            if (n >= 0 || !json_scan_take(&s, '['))
                return false;
            n = 0;
            if (json_scan_take(&s, ']'))
                continue;
            do {
                json_scan_ws(&s);
                last = s.p;
                if (json_scan_value(&s, 1) != '{')
                    return false;
                n++;
            } while (json_scan_take(&s, ','));
            if (!json_scan_take(&s, ']'))
                return false;
        } else if (!json_scan_value(&s, 1)) {
            return false;
        }
    } while (json_scan_take(&s, ','));
    if (!json_scan_take(&s, '}') || n < 0)
        return false;
    json_scan_ws(&s);
    if (s.p != s.end)
        return false;
    id[0] = '\0';
    *count = n;
    if (!last)
        return true;
    /* the last record's own "id" (the last one, should it repeat, as a parser keeps) */
    s = (json_scan){last + 1, body + len};
    if (json_scan_take(&s, '}'))
        return true;
    do {
        if (!json_scan_key(&s, &a, &b))
            return false;
        json_scan_ws(&s);
        const char *v = s.p;
        char kind = json_scan_value(&s, 1);
        if (b - a == 2 && memcmp(a, "id", 2) == 0) {
            if (kind != '"' || memchr(v, '\\', (size_t)(s.p - v)) || (size_t)(s.p - v - 2) >= idlen)
                return false;
            memcpy(id, v + 1, (size_t)(s.p - v - 2));
            id[s.p - v - 2] = '\0';
        }
    } while (json_scan_take(&s, ','));
    return true;
}

/* After a page: the next one, or the end. */
static void list_next(stripe_list *l, bool more, int stop)
{
    if (more && !stop) {
        list_fetch(l);
        return;
    }
    l->on_done(l, NULL, l->pages, l->ctx);
    list_free(l);
}

/* Hands a page over (items NULL when unparsed) and goes on. With ahead, the next page is
 * asked for first, so that the API serves it while the caller works on this one; a caller
 * that stops then has it cancelled, which ends the listing (and frees l). */
static void hand_over(stripe_list *l, const pgbuf *body, const cJSON *items, int count, bool more, bool ahead)
{
    upstream_call *next = more && ahead ? list_request(l) : NULL;
    if (next)
        upstream_call_send_now(next);
    l->page_body = body;
    l->page_count = count;
    int stop = l->on_page(l, items, l->ctx);
    l->page_body = NULL;
    if (!next) {
        list_next(l, more, stop);
    } else if (stop) {
        l->stopped = true;
        upstream_call_cancel(next);
    }
}

static void on_list_page(upstream_call *call, http_response *resp, int attempts, void *data)
{
    stripe_list *l = data;
    upstream_error err;
    if (l->stopped) {
        l->on_done(l, NULL, l->pages, l->ctx);
        list_free(l);
        return;
    }
    if (resp->outcome != HTTP_OK || resp->status != 200) {
        stripe_error_from_response(resp, &err);
        if (cursor_missing(resp))
            err.not_found = true;
        l->on_done(l, &err, l->pages, l->ctx);
        list_free(l);
        return;
    }
    int count = 0;
    bool more;
    char id[sizeof l->cursor];
    if (l->unparsed && !l->oldest_first && scan_page(resp->body.data, resp->body.len, &count, id, sizeof id, &more)) {
        l->pages++;
        more = more && id[0];
        if (id[0])
            memcpy(l->cursor, id, sizeof l->cursor);
        hand_over(l, &resp->body, NULL, count, more, true);
        return;
    }
    cJSON *root = cJSON_ParseWithLength(resp->body.data, resp->body.len);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(root, "data");
    if (!cJSON_IsArray(items)) {
        upstream_error_set(&err, "XX000", "stripe list response without a data array", NULL);
        cJSON_Delete(root);
        l->on_done(l, &err, l->pages, l->ctx);
        list_free(l);
        return;
    }
    l->pages++;
    /* Stripe answers newest first in both directions; an oldest-first listing goes on
     * from the newest object of the page and hands the page over reversed. */
    if (l->oldest_first)
        reverse_array((cJSON *)items);
    const cJSON *last = cJSON_GetArrayItem(items, cJSON_GetArraySize(items) - 1);
    const char *last_id = cJSON_IsObject(last) ? json_string(last, "id") : NULL;
    more = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "has_more")) && last_id;
    if (last_id)
        snprintf(l->cursor, sizeof l->cursor, "%s", last_id);
    hand_over(l, &resp->body, items, cJSON_GetArraySize(items), more, false);
    cJSON_Delete(root);
}

/* Starts the request for the page after l->cursor; NULL when it could not be. */
static upstream_call *list_request(stripe_list *l)
{
    pgbuf url;
    pgbuf_init(&url, 8192);
    pgbuf_put(&url, l->base, strlen(l->base));
    pgbuf_put(&url, l->path, strlen(l->path));
    char q[64];
    snprintf(q, sizeof q, "%slimit=%d", strchr(l->path, '?') ? "&" : "?", l->limit);
    pgbuf_put(&url, q, strlen(q));
    if (l->cursor[0]) {
        const char *param = l->oldest_first ? "&ending_before=" : "&starting_after=";
        pgbuf_put(&url, param, strlen(param));
        form_escape(&url, l->cursor);
    }
    pgbuf_put_byte(&url, 0);
    const char *headers[] = {l->auth, "Stripe-Version: " STRIPE_API_VERSION, NULL};
    http_options o = {.method = "GET", .url = url.data, .headers = headers};
    upstream_call *c = url.failed ? NULL : upstream_call_start(l->t, &o, l->priority, false, on_list_page, l);
    pgbuf_free(&url);
    return c;
}

static void list_fetch(stripe_list *l)
{
    if (list_request(l))
        return;
    upstream_error err;
    upstream_error_set(&err, "53200", "out of memory starting a stripe list request", NULL);
    l->on_done(l, &err, l->pages, l->ctx);
    list_free(l);
}

stripe_list *stripe_list_start(upstream_target *t, const stripe_list_options *o,
                               stripe_page_cb on_page, stripe_list_done_cb on_done, void *ctx)
{
    stripe_list *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->t = t;
    l->on_page = on_page;
    l->on_done = on_done;
    l->ctx = ctx;
    l->base = strdup(o->base);
    l->path = strdup(o->path);
    l->priority = o->priority;
    l->limit = o->limit > 0 && o->limit <= 100 ? o->limit : 100;
    snprintf(l->auth, sizeof l->auth, "Authorization: Bearer %s", o->secret_key);
    l->oldest_first = o->ending_before != NULL;
    l->unparsed = o->unparsed;
    if (o->starting_after || o->ending_before)
        snprintf(l->cursor, sizeof l->cursor, "%s", l->oldest_first ? o->ending_before : o->starting_after);
    if (!l->base || !l->path) {
        list_free(l);
        return NULL;
    }
    list_fetch(l);
    return l;
}

const char *stripe_list_cursor(const stripe_list *l) { return l->cursor; }

int stripe_list_page_count(const stripe_list *l) { return l->page_count; }

const char *stripe_list_page_body(const stripe_list *l, size_t *len)
{
    *len = l->page_body ? l->page_body->len : 0;
    return l->page_body ? l->page_body->data : NULL;
}

/* ---- records */

struct stripe_client {
    upstream_target *t;
    char *base;
    char auth[256];
};

stripe_client *stripe_client_new(upstream_target *t, const char *base, const char *secret_key)
{
    stripe_client *sc = calloc(1, sizeof *sc);
    if (!sc)
        return NULL;
    sc->t = t;
    sc->base = strdup(base);
    snprintf(sc->auth, sizeof sc->auth, "Authorization: Bearer %s", secret_key);
    if (!sc->base) {
        free(sc);
        return NULL;
    }
    return sc;
}

void stripe_client_free(stripe_client *sc)
{
    if (!sc)
        return;
    memset(sc->auth, 0, sizeof sc->auth); /* the key does not outlive the client */
    free(sc->base);
    free(sc);
}

typedef struct record_op {
    stripe_record_cb cb;
    void *ctx;
    const char *verb; /* "creating", "updating", ... for the error message */
    const char *object;
    char id[128];
} record_op;

static void on_record(upstream_call *call, http_response *resp, int attempts, void *data)
{
    record_op *op = data;
    upstream_error err;
    if (resp->outcome != HTTP_OK || resp->status >= 300) {
        stripe_error_from_response(resp, &err);
        upstream_error_context(&err, op->verb, op->object, op->id[0] ? op->id : NULL);
        op->cb(NULL, &err, op->ctx);
        free(op);
        return;
    }
    cJSON *record = cJSON_ParseWithLength(resp->body.data, resp->body.len);
    if (!cJSON_IsObject(record)) {
        upstream_error_set(&err, "XX000", "stripe answered with something that is not an object", NULL);
        upstream_error_context(&err, op->verb, op->object, op->id[0] ? op->id : NULL);
        op->cb(NULL, &err, op->ctx);
    } else {
        op->cb(record, NULL, op->ctx);
    }
    cJSON_Delete(record);
    free(op);
}

/* Replaces "{id}" in a path template with the escaped id. */
static void put_path(pgbuf *url, const char *base, const char *tmpl, const char *id)
{
    pgbuf_put(url, base, strlen(base));
    const char *at = id ? strstr(tmpl, "{id}") : NULL;
    if (!at) {
        pgbuf_put(url, tmpl, strlen(tmpl));
    } else {
        pgbuf_put(url, tmpl, (size_t)(at - tmpl));
        form_escape(url, id);
        pgbuf_put(url, at + 4, strlen(at + 4));
    }
    pgbuf_put_byte(url, 0);
}

static int record_call(stripe_client *sc, const provider_collection *c, const char *method,
                       const char *tmpl, const char *id, const cJSON *fields, bool create,
                       const char *verb, enum ratelimit_priority prio, stripe_record_cb cb, void *ctx)
{
    upstream_error err;
    if (!tmpl) {
        char msg[256];
        snprintf(msg, sizeof msg, "stripe %s records cannot be %s", c->name,
                 strcmp(verb, "deleting") == 0 ? "deleted" : create ? "created" : "updated");
        upstream_error_set(&err, "0A000", msg, NULL);
        cb(NULL, &err, ctx);
        return -1;
    }
    if (fields && provider_check_fields(c, fields, create, &err) < 0) {
        cb(NULL, &err, ctx);
        return -1;
    }
    record_op *op = calloc(1, sizeof *op);
    pgbuf url, body;
    pgbuf_init(&url, 8192);
    pgbuf_init(&body, 1 << 20);
    put_path(&url, sc->base, tmpl, id);
    int rc = fields ? form_encode(&body, fields) : 0;
    char idem[64] = "";
    if (create) {
        char key[37];
        upstream_idempotency_key(key);
        snprintf(idem, sizeof idem, "Idempotency-Key: %s", key);
    }
    const char *headers[] = {sc->auth, "Stripe-Version: " STRIPE_API_VERSION, idem[0] ? idem : NULL, NULL};
    http_options o = {.method = method, .url = url.data, .headers = headers,
                      .body = fields ? (body.data ? body.data : "") : NULL, .body_len = body.len};
    upstream_call *call = NULL;
    if (op && rc == 0 && !url.failed) {
        op->cb = cb;
        op->ctx = ctx;
        op->verb = verb;
        op->object = c->object;
        if (id)
            snprintf(op->id, sizeof op->id, "%s", id);
        call = upstream_call_start(sc->t, &o, prio, false, on_record, op);
    }
    pgbuf_free(&url);
    pgbuf_free(&body);
    if (!call) {
        free(op);
        upstream_error_set(&err, rc < 0 ? "54000" : "53200",
                           rc < 0 ? "request too large for stripe" : "out of memory starting a stripe call", NULL);
        cb(NULL, &err, ctx);
        return -1;
    }
    return 0;
}

int stripe_create(stripe_client *sc, const provider_collection *c, const cJSON *fields,
                  enum ratelimit_priority prio, stripe_record_cb cb, void *ctx)
{
    return record_call(sc, c, "POST", c->create_path, NULL, fields, true, "creating", prio, cb, ctx);
}

int stripe_update(stripe_client *sc, const provider_collection *c, const char *id,
                  const cJSON *fields, enum ratelimit_priority prio, stripe_record_cb cb, void *ctx)
{
    return record_call(sc, c, "POST", c->update_path, id, fields, false, "updating", prio, cb, ctx);
}

int stripe_retrieve(stripe_client *sc, const provider_collection *c, const char *id,
                    enum ratelimit_priority prio, stripe_record_cb cb, void *ctx)
{
    return record_call(sc, c, "GET", c->item_path, id, NULL, false, "retrieving", prio, cb, ctx);
}

int stripe_delete(stripe_client *sc, const provider_collection *c, const char *id,
                  enum ratelimit_priority prio, stripe_record_cb cb, void *ctx)
{
    return record_call(sc, c, "DELETE", c->delete_path, id, NULL, false, "deleting", prio, cb, ctx);
}
