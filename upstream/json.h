/*
 * json: the two cJSON lookups every provider needs, without their NULL checks at each
 * call site. Both accept a NULL object.
 */
#ifndef APIGRES_UPSTREAM_JSON_H
#define APIGRES_UPSTREAM_JSON_H

#include <cJSON.h>
#include <stdbool.h>

/* The string member key of obj, borrowed, or NULL when absent or not a string. */
static inline const char *json_string(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Whether member key of obj is true. */
static inline bool json_true(const cJSON *obj, const char *key)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, key));
}

#endif
