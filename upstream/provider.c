/* provider: see provider.h. */
#include "upstream/provider.h"

#include <string.h>

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
