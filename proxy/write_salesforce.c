/*
 * write_salesforce: the Salesforce objects as the write path knows them.
 *
 * Stripe's collections are compiled in; Salesforce's come from describe. At start the write
 * path asks for the description of every object the sync mirrors (its collection_ids, or
 * describeGlobal's queryable and replicateable objects when there are none), as the sync
 * worker does; a write to a table whose description has not come yet starts one (again)
 * and is refused with 55000 "try again", never guessed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/log.h"
#include "proxy/write_internal.h"
#include "sync/schema.h"
#include "upstream/json.h"

typedef struct describe_req {
    write_sync *ws;
    char *name;
} describe_req;

static bool describing(const write_sync *ws, const char *name)
{
    for (int i = 0; i < ws->nsf_describing; i++)
        if (strcmp(ws->sf_describing[i], name) == 0)
            return true;
    return false;
}

static void done_describing(write_sync *ws, const char *name)
{
    for (int i = 0; i < ws->nsf_describing; i++)
        if (strcmp(ws->sf_describing[i], name) == 0) {
            free(ws->sf_describing[i]);
            ws->sf_describing[i] = ws->sf_describing[--ws->nsf_describing];
            return;
        }
}

static void on_described(long status, const cJSON *body, const upstream_error *err, void *ctx)
{
    describe_req *r = ctx;
    write_sync *ws = r->ws;
    done_describing(ws, r->name);
    provider_collection *c = err ? NULL : salesforce_collection_from_describe(body);
    if (!c) {
        log_warn("write path: no description of salesforce object %s: %s", r->name,
                 err ? err->message : "unusable describe");
    } else if (ws->nsf_colls >= SYNC_MAX_COLLECTIONS || wsf_known(ws, c->name)) {
        salesforce_collection_free(c);
    } else {
        ws->sf_colls[ws->nsf_colls++] = c;
        log_debug("write path: salesforce %s described (%d fields)", c->name, c->nfields);
    }
    free(r->name);
    free(r);
}

static void describe(write_sync *ws, const char *name)
{
    if (describing(ws, name) || ws->nsf_describing >= SYNC_MAX_COLLECTIONS)
        return;
    describe_req *r = calloc(1, sizeof *r);
    char path[300];
    snprintf(path, sizeof path, "/sobjects/%s/describe", name);
    if (!r || !(r->name = strdup(name)) || !(ws->sf_describing[ws->nsf_describing] = strdup(name))) {
        if (r)
            free(r->name);
        free(r);
        return;
    }
    ws->nsf_describing++;
    r->ws = ws;
    if (salesforce_request(ws->sf, "GET", path, NULL, RATELIMIT_WRITE, on_described, r) < 0) {
        done_describing(ws, name);
        free(r->name);
        free(r);
    }
}

static void on_global(long status, const cJSON *body, const upstream_error *err, void *ctx)
{
    write_sync *ws = ctx;
    if (err) {
        log_warn("write path: salesforce describeGlobal failed: %s (objects are described when written)",
                 err->message);
        return;
    }
    const cJSON *o;
    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(body, "sobjects"))
    {
        const char *name = json_string(o, "name");
        char table[64]; /* the table's name: the object's, lower-cased as the worker names it */
        if (name && json_true(o, "queryable") && json_true(o, "replicateable") &&
            schema_column_name(name, table, sizeof table) == 0)
            describe(ws, table);
    }
}

int wsf_init(write_sync *ws)
{
    const sync_config *sc = ws->sc;
    salesforce_options o;
    sync_config_salesforce_options(sc, &o);
    if (!(ws->sf = salesforce_client_new(&ws->target, &o)))
        return -1;
    if (sc->ncollections == 0)
        return salesforce_request(ws->sf, "GET", "/sobjects", NULL, RATELIMIT_WRITE, on_global, ws) < 0 ? -1 : 0;
    for (int i = 0; i < sc->ncollections; i++)
        describe(ws, sc->collections[i]);
    return 0;
}

void wsf_close(write_sync *ws)
{
    salesforce_client_free(ws->sf); /* its requests end without their callbacks */
    ws->sf = NULL;
    for (int i = 0; i < ws->nsf_colls; i++)
        salesforce_collection_free(ws->sf_colls[i]);
    ws->nsf_colls = 0;
    for (int i = 0; i < ws->nsf_describing; i++)
        free(ws->sf_describing[i]);
    ws->nsf_describing = 0;
}

const provider_collection *wsf_known(const write_sync *ws, const char *table)
{
    for (int i = 0; i < ws->nsf_colls; i++)
        if (strcmp(ws->sf_colls[i]->name, table) == 0)
            return ws->sf_colls[i];
    return NULL;
}

const provider_collection *wsf_collection(write_sync *ws, const char *table, bool *pending)
{
    const provider_collection *c = wsf_known(ws, table);
    *pending = false;
    if (c || !sync_config_has_collection(ws->sc, table))
        return c;
    describe(ws, table);
    *pending = true;
    return NULL;
}
