/*
 * provider: a provider's collections as data (shared/DESIGN.md §6). The write path reads
 * which fields a statement may assign (create / update) and where to send it; the sync
 * worker reads the columns to create (name, Postgres type, description) and where to
 * list. Adding a provider should mostly be adding such a table.
 */
#ifndef APIGRES_PROVIDER_H
#define APIGRES_PROVIDER_H

#include <stdbool.h>

enum field_type {
    FIELD_TEXT,
    FIELD_BIGINT,
    FIELD_NUMERIC,
    FIELD_BOOLEAN,
    FIELD_TIMESTAMPTZ, /* Stripe unix-time seconds, Salesforce ISO date-times */
    FIELD_DATE,        /* Salesforce date */
    FIELD_JSONB,       /* nested objects, arrays, polymorphic values */
};

typedef struct provider_field {
    const char *name;        /* the API's field name, also the column name */
    enum field_type type;
    bool create;             /* accepted when creating */
    bool update;             /* accepted when updating */
    bool required;           /* must be given when creating */
    const char *description; /* the API's own words, for COMMENT ON COLUMN */
} provider_field;

typedef struct provider_collection {
    const char *provider;     /* "stripe" */
    const char *name;         /* "customer": the table name and the collection id suffix */
    const char *object;       /* the API's object name ("customer") */
    const char *list_path;    /* "/v1/customers" */
    const char *item_path;    /* "/v1/customers/{id}" */
    const char *create_path;  /* NULL: cannot be created */
    const char *update_path;  /* NULL: cannot be updated */
    const char *delete_path;  /* NULL: cannot be deleted (Stripe prices) */
    const char *description;
    const provider_field *fields;
    int nfields;
    /* The record's own field that holds its version (Salesforce's SystemModstamp, an ISO
     * date-time), which the mirror then stores as the row's version; NULL when the API's
     * records carry none (Stripe: the caller says which version a record reflects). */
    const char *version_field;
} provider_collection;

const char *field_type_sql(enum field_type t);
/* The collection called name (e.g. "customer") of a provider's table, or NULL. */
const provider_collection *provider_find(const provider_collection *const *list, const char *name);
const provider_field *provider_field_find(const provider_collection *c, const char *name);

struct upstream_error;
/* Checks that every member of the JSON object `fields` may be sent when creating (or
 * updating): an unknown field → 42703, one the API does not accept → 428C9, a required
 * field missing on create → 23502. Returns 0, or -1 with err filled, before any call. */
int provider_check_fields(const provider_collection *c, const void *fields /* cJSON */, bool create,
                          struct upstream_error *err);

#endif
