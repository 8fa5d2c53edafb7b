/* salesforce_records: see salesforce_records.h. */
#include "upstream/salesforce_records.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upstream/json.h"

typedef struct record_op {
    salesforce_client *sf;
    const provider_collection *c;
    salesforce_record_cb cb;
    void *ctx;
    enum ratelimit_priority prio;
    const char *verb; /* "creating", "updating", "deleting" */
    char id[64];
} record_op;

static void finish(record_op *op, const cJSON *record, const upstream_error *err)
{
    if (err) {
        upstream_error e = *err;
        upstream_error_context(&e, op->verb, op->c->name, op->id[0] ? op->id : NULL);
        op->cb(NULL, &e, op->ctx);
    } else {
        op->cb(record, NULL, op->ctx);
    }
    free(op);
}

static void fail(record_op *op, const char *sqlstate, const char *message)
{
    upstream_error e;
    upstream_error_set(&e, sqlstate, message, NULL);
    finish(op, NULL, &e);
}

/* "/sobjects/Contact/{id}" with the id in place. */
static void item_path(const record_op *op, char *out, size_t len)
{
    const char *tmpl = op->c->item_path;
    const char *at = strstr(tmpl, "{id}");
    if (at)
        snprintf(out, len, "%.*s%s%s", (int)(at - tmpl), tmpl, op->id, at + 4);
    else
        snprintf(out, len, "%s/%s", tmpl, op->id);
}

static void on_fetched(long status, const cJSON *body, const upstream_error *err, void *ctx)
{
    record_op *op = ctx;
    if (err) {
        /* the create or update itself went through: the caller must count it, and must not
         * take it for a refusal (a create retried would exist twice) */
        upstream_error e = *err;
        e.not_found = false;
        e.applied = true;
        snprintf(e.message, sizeof e.message, "the %s went through in Salesforce, but reading the record back failed: %.400s",
                 strcmp(op->verb, "creating") == 0 ? "create" : "update", err->message);
        finish(op, NULL, &e);
        return;
    }
    if (!cJSON_IsObject(body)) {
        fail(op, "XX000", "salesforce answered a record read with no record");
        return;
    }
    finish(op, body, err);
}

static void fetch(record_op *op)
{
    char path[512];
    item_path(op, path, sizeof path);
    if (salesforce_request(op->sf, "GET", path, NULL, op->prio, on_fetched, op) < 0)
        fail(op, "53200", "out of memory reading a salesforce record");
}

static void on_mutated(long status, const cJSON *body, const upstream_error *err, void *ctx)
{
    record_op *op = ctx;
    if (err) {
        finish(op, NULL, err);
        return;
    }
    if (strcmp(op->verb, "deleting") == 0) {
        finish(op, NULL, NULL);
        return;
    }
    if (strcmp(op->verb, "creating") == 0) {
        const char *id = json_string(body, "id");
        if (!id || strlen(id) >= sizeof op->id) {
            fail(op, "XX000", "salesforce answered a create without the new record's id");
            return;
        }
        snprintf(op->id, sizeof op->id, "%s", id);
    }
    fetch(op);
}

static int start(salesforce_client *sf, const provider_collection *c, const char *method, const char *tmpl,
                 const char *id, const cJSON *fields, const char *verb, enum ratelimit_priority prio,
                 salesforce_record_cb cb, void *ctx)
{
    upstream_error err;
    record_op *op = calloc(1, sizeof *op);
    if (!op) {
        upstream_error_set(&err, "53200", "out of memory", NULL);
        cb(NULL, &err, ctx);
        return -1;
    }
    *op = (record_op){.sf = sf, .c = c, .cb = cb, .ctx = ctx, .prio = prio, .verb = verb};
    if (id)
        snprintf(op->id, sizeof op->id, "%s", id);
    if (!tmpl) {
        char msg[256];
        snprintf(msg, sizeof msg, "salesforce %s records cannot be %s", c->name,
                 strcmp(verb, "deleting") == 0 ? "deleted" : strcmp(verb, "creating") == 0 ? "created" : "updated");
        fail(op, "0A000", msg);
        return -1;
    }
    if (fields && provider_check_fields(c, fields, strcmp(verb, "creating") == 0, &err) < 0) {
        finish(op, NULL, &err);
        return -1;
    }
    char path[512];
    if (id)
        item_path(op, path, sizeof path);
    else
        snprintf(path, sizeof path, "%s", tmpl);
    char *body = fields ? cJSON_PrintUnformatted(fields) : NULL;
    int rc = (fields && !body) ? -1 : salesforce_request(sf, method, path, body, prio, on_mutated, op);
    free(body);
    if (rc < 0) {
        fail(op, "53200", "out of memory calling salesforce");
        return -1;
    }
    return 0;
}

int salesforce_create(salesforce_client *sf, const provider_collection *c, const cJSON *fields,
                      enum ratelimit_priority prio, salesforce_record_cb cb, void *ctx)
{
    return start(sf, c, "POST", c->create_path, NULL, fields, "creating", prio, cb, ctx);
}

int salesforce_update(salesforce_client *sf, const provider_collection *c, const char *id, const cJSON *fields,
                      enum ratelimit_priority prio, salesforce_record_cb cb, void *ctx)
{
    return start(sf, c, "PATCH", c->update_path, id, fields, "updating", prio, cb, ctx);
}

int salesforce_delete(salesforce_client *sf, const provider_collection *c, const char *id,
                      enum ratelimit_priority prio, salesforce_record_cb cb, void *ctx)
{
    return start(sf, c, "DELETE", c->delete_path, id, NULL, "deleting", prio, cb, ctx);
}
