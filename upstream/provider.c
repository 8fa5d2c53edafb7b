/* provider: see provider.h. */
#include "upstream/provider.h"

#include <cJSON.h>
#include <stdio.h>
#include <string.h>

#include "upstream/error.h"

const char *field_type_sql(enum field_type t)
{
    switch (t) {
    case FIELD_TEXT:
        return "text";
    case FIELD_BIGINT:
        return "bigint";
    case FIELD_NUMERIC:
        return "numeric";
    case FIELD_BOOLEAN:
        return "boolean";
    case FIELD_TIMESTAMPTZ:
        return "timestamptz";
    case FIELD_DATE:
        return "date";
    case FIELD_JSONB:
        return "jsonb";
    }
    return "text";
}

const provider_collection *provider_find(const provider_collection *const *list, const char *name)
{
    for (; list && *list; list++)
        if (strcmp((*list)->name, name) == 0)
            return *list;
    return NULL;
}

const provider_field *provider_field_find(const provider_collection *c, const char *name)
{
    for (int i = 0; i < c->nfields; i++)
        if (strcmp(c->fields[i].name, name) == 0)
            return &c->fields[i];
    return NULL;
}

int provider_check_fields(const provider_collection *c, const void *fields_json, bool create,
                          upstream_error *err)
{
    const cJSON *fields = fields_json;
    char msg[512];
    const cJSON *f;
    cJSON_ArrayForEach(f, fields)
    {
        const provider_field *pf = provider_field_find(c, f->string);
        if (!pf) {
            snprintf(msg, sizeof msg, "%s %s has no field \"%s\"", c->provider, c->name, f->string);
            upstream_error_set(err, "42703", msg, NULL);
            return -1;
        }
        if (create ? !pf->create : !pf->update) {
            snprintf(msg, sizeof msg, "%s.%s cannot be %s: the %s API does not accept it", c->name,
                     pf->name, create ? "set when creating" : "updated", c->provider);
            upstream_error_set(err, "428C9", msg, NULL);
            return -1;
        }
    }
    for (int i = 0; create && i < c->nfields; i++) {
        if (c->fields[i].required && !cJSON_GetObjectItemCaseSensitive(fields, c->fields[i].name)) {
            snprintf(msg, sizeof msg, "%s.%s is required to create a %s", c->name, c->fields[i].name,
                     c->object);
            upstream_error_set(err, "23502", msg, NULL);
            return -1;
        }
    }
    return 0;
}
