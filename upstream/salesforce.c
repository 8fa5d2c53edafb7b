/* salesforce: see salesforce.h. */
#include "upstream/salesforce.h"

#include <cJSON.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *code;
    const char *sqlstate;
} sf_codes[] = {
    /* validation of a field */
    {"INVALID_EMAIL_ADDRESS", "23514"},
    {"FIELD_CUSTOM_VALIDATION_EXCEPTION", "23514"},
    {"FIELD_INTEGRITY_EXCEPTION", "23514"},
    {"INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "22023"},
    {"INVALID_TYPE_ON_FIELD_IN_RECORD", "22023"},
    {"NUMBER_OUTSIDE_VALID_RANGE", "22003"},
    {"STRING_TOO_LONG", "22001"},
    {"MALFORMED_ID", "22P02"},
    {"REQUIRED_FIELD_MISSING", "23502"},
    {"DUPLICATE_VALUE", "23505"},
    {"DUPLICATES_DETECTED", "23505"},
    {"INVALID_CROSS_REFERENCE_KEY", "23503"},
    {"INVALID_FIELD_FOR_INSERT_UPDATE", "428C9"},
    {"INVALID_FIELD", "42703"},
    {"MALFORMED_QUERY", "42601"},
    /* who may do what */
    {"INVALID_SESSION_ID", "42501"},
    {"INSUFFICIENT_ACCESS_OR_READONLY", "42501"},
    {"INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY", "42501"},
    {"API_DISABLED_FOR_ORG", "42501"},
    {"invalid_grant", "42501"},
    {"invalid_client", "42501"},
    {"invalid_client_id", "42501"},
    /* try again */
    {"REQUEST_LIMIT_EXCEEDED", "40001"},
    {"UNABLE_TO_LOCK_ROW", "40001"},
    {"SERVER_UNAVAILABLE", "57P03"},
};

const char *salesforce_sqlstate(long status, const char *error_code, bool *not_found)
{
    *not_found = false;
    if (error_code && (strcmp(error_code, "NOT_FOUND") == 0 || strcmp(error_code, "ENTITY_IS_DELETED") == 0)) {
        *not_found = true;
        return "02000";
    }
    for (size_t i = 0; error_code && i < sizeof sf_codes / sizeof *sf_codes; i++)
        if (strcmp(error_code, sf_codes[i].code) == 0)
            return sf_codes[i].sqlstate;
    if (status == 404) {
        *not_found = true;
        return "02000";
    }
    if (status == 401 || status == 403)
        return "42501";
    if (status == 429)
        return "40001";
    if (status >= 500)
        return "57P03";
    return "22023";
}

static const char *json_string(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

void salesforce_error_from_response(const http_response *resp, upstream_error *err)
{
    if (resp->outcome != HTTP_OK) {
        upstream_error_from_transport("salesforce", resp, err);
        return;
    }
    cJSON *root = cJSON_ParseWithLength(resp->body.data ? resp->body.data : "", resp->body.len);
    const cJSON *first = cJSON_IsArray(root) ? cJSON_GetArrayItem(root, 0) : root;
    const char *code = json_string(first, "errorCode");
    const char *message = json_string(first, "message");
    if (!code && (code = json_string(first, "error")) != NULL) /* OAuth */
        message = json_string(first, "error_description");
    if (!code) {
        if (!upstream_error_from_transport("salesforce", resp, err)) {
            char msg[128];
            snprintf(msg, sizeof msg, "unexpected response from salesforce (HTTP %ld)", resp->status);
            upstream_error_set(err, "XX000", msg, "salesforce body is not an error list");
        }
        cJSON_Delete(root);
        return;
    }
    char fields[160] = "";
    const cJSON *f;
    size_t n = 0;
    cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(first, "fields"))
    {
        if (cJSON_IsString(f) && n < sizeof fields - 2)
            n += (size_t)snprintf(fields + n, sizeof fields - n, "%s%s", n ? "," : "", f->valuestring);
    }
    char limit[80] = "";
    http_response_header(resp, "sforce-limit-info", limit, sizeof limit);
    char detail[512];
    snprintf(detail, sizeof detail, "salesforce %s%s%s status=%ld%s%s", code, fields[0] ? " fields=" : "",
             fields, resp->status, limit[0] ? " " : "", limit);
    bool not_found;
    const char *state = salesforce_sqlstate(resp->status, code, &not_found);
    upstream_error_set(err, state, message ? message : code, detail);
    err->not_found = not_found;
    cJSON_Delete(root);
}
