/*
 * salesforce: what is specific to the Salesforce REST API.
 *
 * Errors come as an array [{"message", "errorCode", "fields": [...]}] (the first entry
 * decides), OAuth failures as {"error", "error_description"}; responses carry
 * Sforce-Limit-Info. Error codes map to SQLSTATEs by the table in salesforce.c (shown in
 * README.md).
 */
#ifndef APIGRES_SALESFORCE_H
#define APIGRES_SALESFORCE_H

#include <stdbool.h>

#include "upstream/error.h"
#include "upstream/http.h"

void salesforce_error_from_response(const http_response *resp, upstream_error *err);
/* The SQLSTATE for a Salesforce errorCode; sets *not_found for a missing record. */
const char *salesforce_sqlstate(long status, const char *error_code, bool *not_found);

#endif
