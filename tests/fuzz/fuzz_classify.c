/*
 * libFuzzer target for the statement classifier: every Query text a client sends that the
 * pre-check lets through reaches libpg_query and the tree walk. Besides "no crash, no
 * sanitizer report, no leak" it checks the contract a caller relies on: statements lie
 * inside the input, in order, and do not overlap; a refusal carries a SQLSTATE and a
 * message; a write names its table; the pre-check and the classifier agree that a text
 * the pre-check calls harmless holds no write (a WRITE or REFUSE there would mean the fast
 * path forwards what the write path must handle).
 *
 *   make fuzz            (60 s per target; FUZZ_SECONDS=N to change)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parser/classify.h"

static const char *const synced[] = {"stripe", "salesforce"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *sql = (const char *)data;
    bool may = classify_may_write(sql, size);

    classify_resolved resolved[] = {{"customer", "stripe"}, {"mine", "public"}, {"gone", NULL}};
    classify_options o = {.schemas = synced, .n_schemas = 2, .max_len = 8192, .max_nesting = 0,
                          .resolved = resolved, .n_resolved = size % 2 ? 3 : 0};
    classify_result *r = NULL;
    if (classify_sql(sql, size, &o, &r) != 0)
        return 0; /* out of memory */
    size_t end = 0;
    for (size_t i = 0; i < r->n_stmts; i++) {
        const classify_stmt *st = &r->stmts[i];
        if (st->offset < end || st->offset + st->len > size)
            abort(); /* statements out of order or outside the input */
        end = st->offset + st->len;
        if (st->verdict == CLASSIFY_REFUSE && (strlen(st->sqlstate) != 5 || !st->message))
            abort();
        if (st->verdict == CLASSIFY_WRITE && (!st->table || st->command < CLASSIFY_CMD_INSERT ||
                                              st->command > CLASSIFY_CMD_DELETE))
            abort();
        if (st->verdict == CLASSIFY_EXECUTE && !st->name)
            abort();
        /* the fast path must never skip what the classifier would act on (54000/54001 are
         * refusals of the text as a whole, decided before parsing) */
        if (!may && !r->parse_error && (st->verdict == CLASSIFY_WRITE ||
                                        st->verdict == CLASSIFY_EXECUTE ||
                                        (st->verdict == CLASSIFY_REFUSE &&
                                         strncmp(st->sqlstate, "54", 2) != 0)))
            abort();
    }
    classify_result_free(r);
    return 0;
}
