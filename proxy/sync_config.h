/*
 * sync_config: one entry of the configuration's "syncs" list (shared/DESIGN.md §7): which
 * API, which of its collections are mirrored into which schema, with which credential, at
 * which rate. The write path and the sync worker both work from it; one rate limit per sync
 * is shared by both.
 *
 *   {"name": "stripe", "provider": "stripe", "schema": "stripe",
 *    "collection_ids": ["stripe:customer", "stripe:product"],
 *    "credential": {"secret_key": "${STRIPE_SECRET_KEY}"},
 *    "rate_limit": {"allowed_requests": 25, "interval": 1, "max_concurrent_requests": 0},
 *    "api_base": "https://api.stripe.com"}
 *
 * Credentials are secrets: they are kept only here, never logged, never echoed in an error.
 */
#ifndef APIGRES_SYNC_CONFIG_H
#define APIGRES_SYNC_CONFIG_H

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

#define SYNC_MAX_COLLECTIONS 64

enum sync_provider { SYNC_STRIPE, SYNC_SALESFORCE };

typedef struct sync_config {
    char name[64];
    enum sync_provider provider;
    char schema[64];
    /* collection names without the "provider:" prefix; none given = every collection the
     * provider has (Stripe's generated list; for Salesforce, every object describe finds) */
    char *collections[SYNC_MAX_COLLECTIONS];
    int ncollections;
    char *api_base;      /* Stripe: the API's base URL; Salesforce: the instance URL */
    /* credential: Stripe secret_key; Salesforce access_token and/or the refresh-token
     * flow (client_id, client_secret, refresh_token at login_url) */
    char *secret_key, *access_token, *client_id, *client_secret, *refresh_token;
    char *login_url;
    char *api_version;   /* Salesforce REST API version, e.g. "59.0" */
    uint32_t allowed_requests; /* per interval; 0 = no rate limit */
    double interval;           /* seconds */
    int max_concurrent;        /* 0 = no limit */
    double request_timeout;    /* seconds for one whole request (each retry gets its own) */
    double connect_timeout;    /* seconds to establish the connection */
    double poll_interval;      /* seconds between two polls for changes */
} sync_config;

/* Fills s from one JSON object of "syncs", with the provider's defaults for what is not
 * given. Returns 0, or -1 with a message in err (never a credential's value). */
int sync_config_parse(sync_config *s, const cJSON *obj, char *err, size_t errlen);
void sync_config_free(sync_config *s);
const char *sync_provider_name(enum sync_provider p);
/* One line for logs and --check: name, provider, schema, collections, API base, rate limit
 * and which kind of credential (never its value). */
void sync_config_describe(const sync_config *s, char *buf, size_t len);
/* The Salesforce client's options from a Salesforce sync (strings borrowed from sc). */
struct salesforce_options;
void sync_config_salesforce_options(const sync_config *sc, struct salesforce_options *o);

/* Whether the sync mirrors collection name (e.g. "customer"). */
int sync_config_has_collection(const sync_config *s, const char *name);

#endif
