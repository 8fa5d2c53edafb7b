/*
 * libFuzzer target for sync/copy_rows (and upstream/json_scan under it): the body of a
 * Stripe list page is whatever the API, or anything posing as it, sends. Besides "no
 * crash, no sanitizer report, no leak" it checks what the backfill relies on: when cJSON
 * reads a body taken, its "data" holds as many records as rows came out (cJSON refuses
 * lone surrogates, which the scanner leaves to Postgres to refuse), and the
 * rows are COPY text of the collection's shape (one line per record, one tab between
 * columns, no raw line break or tab inside a value). The first byte picks the collection.
 *
 *   make fuzz            (60 s per target; FUZZ_SECONDS=N to change)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "sync/copy_rows.h"
#include "upstream/stripe_collections.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int ncoll = 0;
    while (stripe_collections[ncoll])
        ncoll++;
    const provider_collection *c = stripe_collections[data[0] % ncoll];
    const char *body = (const char *)data + 1;
    size_t len = size - 1;

    pgbuf out;
    pgbuf_init(&out, 1u << 24);
    int rows = copy_rows_of_list(&out, body, len, c, 1764000000);
    if (rows >= 0) {
        cJSON *root = cJSON_ParseWithLength(body, len);
        const cJSON *items = cJSON_GetObjectItemCaseSensitive(root, "data");
        if (root && (!cJSON_IsArray(items) || cJSON_GetArraySize(items) != rows))
            abort(); /* taken, yet not the list a parser reads */
        cJSON_Delete(root);
        int lines = 0, tabs = 0;
        for (size_t i = 0; i < out.len; i++) {
            if (out.data[i] == '\t')
                tabs++;
            if (out.data[i] != '\n')
                continue;
            if (tabs != c->nfields) /* id, the other fields, the version: nfields + 1 columns */
                abort();
            tabs = 0;
            lines++;
        }
        if (lines != rows || (out.len > 0 && out.data[out.len - 1] != '\n'))
            abort();
    }
    pgbuf_free(&out);
    return 0;
}
