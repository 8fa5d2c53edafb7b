/*
 * salesforce_records: one record's create, update or delete through the Salesforce REST API,
 * answered with the record as Salesforce has it afterwards (what the write path mirrors).
 *
 * Salesforce answers a create with the new Id only and an update with 204 No Content, so
 * each is followed by a GET of the record. The callback runs once, with the record
 * (borrowed; for a delete NULL) or with err: the API's refusal mapped per salesforce.h and
 * prefixed as "Error updating contact 003...: ...", err->not_found for a record that is gone.
 * A create whose read-back fails reports that error, though the record exists upstream (the
 * sync brings it into the table).
 */
#ifndef APIGRES_SALESFORCE_RECORDS_H
#define APIGRES_SALESFORCE_RECORDS_H

#include <cJSON.h>

#include "upstream/error.h"
#include "upstream/provider.h"
#include "upstream/ratelimit.h"
#include "upstream/salesforce.h"

typedef void (*salesforce_record_cb)(const cJSON *record, const upstream_error *err, void *ctx);

/* Each returns 0, or -1 after running cb with the error. fields are API field names. */
int salesforce_create(salesforce_client *sf, const provider_collection *c, const cJSON *fields,
                      enum ratelimit_priority prio, salesforce_record_cb cb, void *ctx);
int salesforce_update(salesforce_client *sf, const provider_collection *c, const char *id, const cJSON *fields,
                      enum ratelimit_priority prio, salesforce_record_cb cb, void *ctx);
int salesforce_delete(salesforce_client *sf, const provider_collection *c, const char *id,
                      enum ratelimit_priority prio, salesforce_record_cb cb, void *ctx);

#endif
