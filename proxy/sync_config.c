/* sync_config: see sync_config.h. */
#include "proxy/sync_config.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/config.h"
#include "upstream/salesforce.h"
#include "upstream/stripe.h"
#include "upstream/stripe_collections.h"

#define SALESFORCE_LOGIN_URL "https://login.salesforce.com"
#define SALESFORCE_API_VERSION "59.0"

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

const char *sync_provider_name(enum sync_provider p)
{
    return p == SYNC_STRIPE ? "stripe" : "salesforce";
}

/* A lower-case SQL identifier that needs no quoting: [a-z_][a-z0-9_]*, at most 63 bytes. */
static bool plain_identifier(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63 || !((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

/* A string member, ${ENV} expanded into *out (caller frees). secret: never echo it. */
static int get_string(const cJSON *item, const char *what, char **out, char *err, size_t errlen)
{
    if (!cJSON_IsString(item))
        return fail(err, errlen, "%s: expected a string", what);
    char e[200];
    *out = config_expand_env(item->valuestring, e, sizeof e);
    if (!*out)
        return fail(err, errlen, "%s: %s", what, e);
    return 0;
}

static int get_fixed(const cJSON *item, const char *what, char *dst, size_t dstlen, char *err,
                     size_t errlen)
{
    char *s;
    if (get_string(item, what, &s, err, errlen) < 0)
        return -1;
    int rc = 0;
    if (!plain_identifier(s))
        rc = fail(err, errlen, "%s: \"%.64s\" is not a lower-case identifier ([a-z_][a-z0-9_]*, at most 63 bytes)",
                  what, s);
    else
        snprintf(dst, dstlen, "%s", s);
    free(s);
    return rc;
}

static int get_number(const cJSON *item, const char *what, double min, double max, bool integer,
                      double *out, char *err, size_t errlen)
{
    if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble) || item->valuedouble < min ||
        item->valuedouble > max || (integer && item->valuedouble != floor(item->valuedouble)))
        return fail(err, errlen, "%s: expected %s from %g to %g", what, integer ? "an integer" : "a number",
                    min, max);
    *out = item->valuedouble;
    return 0;
}

static int parse_url(const cJSON *item, const char *what, char **out, char *err, size_t errlen)
{
    if (get_string(item, what, out, err, errlen) < 0)
        return -1;
    char *u = *out;
    const char *rest = strncmp(u, "https://", 8) == 0 ? u + 8 : strncmp(u, "http://", 7) == 0 ? u + 7 : NULL;
    if (!rest || !*rest)
        return fail(err, errlen, "%s: expected an http:// or https:// URL", what);
    if (strchr(rest, '@'))
        return fail(err, errlen, "%s: credentials do not belong in the URL; use \"credential\"", what);
    size_t n = strlen(u);
    while (n > 0 && u[n - 1] == '/')
        u[--n] = '\0'; /* paths are appended with their own leading slash */
    return 0;
}

static bool listed(const sync_config *s, const char *name)
{
    for (int i = 0; i < s->ncollections; i++)
        if (strcmp(s->collections[i], name) == 0)
            return true;
    return false;
}

static int parse_collections(sync_config *s, const cJSON *ids, char *err, size_t errlen)
{
    if (!cJSON_IsArray(ids))
        return fail(err, errlen, "syncs[%s].collection_ids: expected a list of \"provider:collection\"", s->name);
    const char *prov = sync_provider_name(s->provider);
    size_t plen = strlen(prov);
    const cJSON *each;
    cJSON_ArrayForEach(each, ids)
    {
        if (s->ncollections == SYNC_MAX_COLLECTIONS)
            return fail(err, errlen, "syncs[%s].collection_ids: at most %d", s->name, SYNC_MAX_COLLECTIONS);
        if (!cJSON_IsString(each))
            return fail(err, errlen, "syncs[%s].collection_ids: expected strings", s->name);
        const char *id = each->valuestring;
        if (strncmp(id, prov, plen) != 0 || id[plen] != ':')
            return fail(err, errlen, "syncs[%s].collection_ids: \"%.80s\" is not a %s collection (%s:NAME)",
                        s->name, id, prov, prov);
        const char *name = id + plen + 1;
        if (!plain_identifier(name))
            return fail(err, errlen, "syncs[%s].collection_ids: \"%.80s\" is not a collection name", s->name, id);
        if (s->provider == SYNC_STRIPE && !provider_find(stripe_collections, name))
            return fail(err, errlen, "syncs[%s].collection_ids: stripe has no collection \"%s\"", s->name, name);
        if (listed(s, name))
            return fail(err, errlen, "syncs[%s].collection_ids: \"%s\" is listed twice", s->name, id);
        if (!(s->collections[s->ncollections] = strdup(name)))
            return fail(err, errlen, "out of memory");
        s->ncollections++;
    }
    return 0;
}

static int parse_credential(sync_config *s, const cJSON *cred, char *err, size_t errlen)
{
    if (!cJSON_IsObject(cred))
        return fail(err, errlen, "syncs[%s].credential: expected an object", s->name);
    const cJSON *item;
    cJSON_ArrayForEach(item, cred)
    {
        const char *k = item->string;
        char **dst = NULL;
        if (s->provider == SYNC_STRIPE && strcmp(k, "secret_key") == 0)
            dst = &s->secret_key;
        else if (s->provider == SYNC_SALESFORCE && strcmp(k, "access_token") == 0)
            dst = &s->access_token;
        else if (s->provider == SYNC_SALESFORCE && strcmp(k, "client_id") == 0)
            dst = &s->client_id;
        else if (s->provider == SYNC_SALESFORCE && strcmp(k, "client_secret") == 0)
            dst = &s->client_secret;
        else if (s->provider == SYNC_SALESFORCE && strcmp(k, "refresh_token") == 0)
            dst = &s->refresh_token;
        if (!dst)
            return fail(err, errlen, "syncs[%s].credential: unknown key \"%.64s\" for %s", s->name, k,
                        sync_provider_name(s->provider));
        char what[128];
        snprintf(what, sizeof what, "syncs[%s].credential.%s", s->name, k);
        free(*dst);
        if (get_string(item, what, dst, err, errlen) < 0)
            return -1;
        if (!**dst)
            return fail(err, errlen, "%s: empty", what);
    }
    if (s->provider == SYNC_STRIPE) {
        if (!s->secret_key)
            return fail(err, errlen, "syncs[%s].credential: secret_key is required for stripe", s->name);
        if (strncmp(s->secret_key, "sk_", 3) != 0 && strncmp(s->secret_key, "rk_", 3) != 0)
            return fail(err, errlen, "syncs[%s].credential.secret_key: not a Stripe secret or restricted key "
                        "(sk_... or rk_...)", s->name);
        return 0;
    }
    bool refresh = s->client_id || s->client_secret || s->refresh_token;
    if (refresh && !(s->client_id && s->client_secret && s->refresh_token))
        return fail(err, errlen, "syncs[%s].credential: the refresh-token flow needs client_id, client_secret "
                    "and refresh_token", s->name);
    if (!refresh && !s->access_token)
        return fail(err, errlen, "syncs[%s].credential: access_token or client_id, client_secret and "
                    "refresh_token are required for salesforce", s->name);
    return 0;
}

static int parse_rate_limit(sync_config *s, const cJSON *rl, char *err, size_t errlen)
{
    if (!cJSON_IsObject(rl))
        return fail(err, errlen, "syncs[%s].rate_limit: expected an object", s->name);
    const cJSON *item;
    cJSON_ArrayForEach(item, rl)
    {
        char what[128];
        snprintf(what, sizeof what, "syncs[%s].rate_limit.%.40s", s->name, item->string);
        double d;
        if (strcmp(item->string, "allowed_requests") == 0) {
            if (get_number(item, what, 0, 1000000, true, &d, err, errlen) < 0)
                return -1;
            s->allowed_requests = (uint32_t)d;
        } else if (strcmp(item->string, "interval") == 0) {
            if (get_number(item, what, 0.001, 86400, false, &s->interval, err, errlen) < 0)
                return -1;
        } else if (strcmp(item->string, "max_concurrent_requests") == 0) {
            if (get_number(item, what, 0, 10000, true, &d, err, errlen) < 0)
                return -1;
            s->max_concurrent = (int)d;
        } else {
            return fail(err, errlen, "syncs[%s].rate_limit: unknown key \"%.40s\"", s->name, item->string);
        }
    }
    return 0;
}

/* The provider's documented limits, unless the config says otherwise: Stripe allows 100
 * requests per second in live mode and 25 in test mode; Salesforce counts requests per 24
 * hours (15,000 for a Developer Edition org, the smallest) and runs at most 25
 * long-running requests at once. */
static void default_rate_limit(sync_config *s)
{
    if (s->provider == SYNC_STRIPE) {
        bool live = s->secret_key && strstr(s->secret_key, "_live_");
        s->allowed_requests = live ? 100 : 25;
        s->interval = 1;
        s->max_concurrent = 0;
    } else {
        s->allowed_requests = 15000;
        s->interval = 86400;
        s->max_concurrent = 25;
    }
}

int sync_config_parse(sync_config *s, const cJSON *obj, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "?");
    s->request_timeout = 30; /* as upstream/http's defaults */
    s->connect_timeout = 10;
    s->poll_interval = 5;
    if (!cJSON_IsObject(obj))
        return fail(err, errlen, "syncs: expected a list of objects");
    const cJSON *provider = cJSON_GetObjectItemCaseSensitive(obj, "provider");
    if (!cJSON_IsString(provider))
        return fail(err, errlen, "syncs: every sync needs a \"provider\" (stripe or salesforce)");
    if (strcmp(provider->valuestring, "stripe") == 0)
        s->provider = SYNC_STRIPE;
    else if (strcmp(provider->valuestring, "salesforce") == 0)
        s->provider = SYNC_SALESFORCE;
    else
        return fail(err, errlen, "syncs: unknown provider \"%.40s\" (stripe or salesforce)", provider->valuestring);
    const char *prov = sync_provider_name(s->provider);
    snprintf(s->name, sizeof s->name, "%s", prov);
    snprintf(s->schema, sizeof s->schema, "%s", prov);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(obj, "name");
    if (name && get_fixed(name, "syncs[].name", s->name, sizeof s->name, err, errlen) < 0)
        return -1;

    bool have_rate_limit = false;
    const cJSON *item;
    cJSON_ArrayForEach(item, obj)
    {
        const char *k = item->string;
        char what[128];
        snprintf(what, sizeof what, "syncs[%s].%.40s", s->name, k);
        int rc = 0;
        if (strcmp(k, "provider") == 0 || strcmp(k, "name") == 0) {
            continue;
        } else if (strcmp(k, "schema") == 0) {
            rc = get_fixed(item, what, s->schema, sizeof s->schema, err, errlen);
        } else if (strcmp(k, "collection_ids") == 0) {
            rc = parse_collections(s, item, err, errlen);
        } else if (strcmp(k, "credential") == 0) {
            rc = parse_credential(s, item, err, errlen);
        } else if (strcmp(k, "rate_limit") == 0) {
            have_rate_limit = true;
            rc = parse_rate_limit(s, item, err, errlen);
        } else if (strcmp(k, "poll_interval") == 0) {
            rc = get_number(item, what, 0.1, 86400, false, &s->poll_interval, err, errlen);
        } else if (strcmp(k, "request_timeout") == 0) {
            rc = get_number(item, what, 0.1, 3600, false, &s->request_timeout, err, errlen);
        } else if (strcmp(k, "connect_timeout") == 0) {
            rc = get_number(item, what, 0.1, 600, false, &s->connect_timeout, err, errlen);
        } else if (strcmp(k, "api_base") == 0) {
            rc = parse_url(item, what, &s->api_base, err, errlen);
        } else if (strcmp(k, "login_url") == 0 && s->provider == SYNC_SALESFORCE) {
            rc = parse_url(item, what, &s->login_url, err, errlen);
        } else if (strcmp(k, "api_version") == 0 && s->provider == SYNC_SALESFORCE) {
            double v;
            if ((rc = get_string(item, what, &s->api_version, err, errlen)) == 0 &&
                (sscanf(s->api_version, "%lf", &v) != 1 || !strchr(s->api_version, '.') ||
                 strspn(s->api_version, "0123456789.") != strlen(s->api_version)))
                rc = fail(err, errlen, "%s: expected a version such as \"59.0\"", what);
        } else {
            rc = fail(err, errlen, "syncs[%s]: unknown key \"%.40s\"", s->name, k);
        }
        if (rc < 0)
            return -1;
    }
    if (!s->secret_key && !s->access_token && !s->refresh_token)
        return fail(err, errlen, "syncs[%s]: a \"credential\" is required", s->name);
    if (!have_rate_limit) {
        default_rate_limit(s);
    } else if (s->interval == 0) {
        if (s->allowed_requests)
            return fail(err, errlen, "syncs[%s].rate_limit: allowed_requests needs an interval", s->name);
        s->interval = 1;
    }
    if (s->provider == SYNC_STRIPE) {
        if (!s->api_base && !(s->api_base = strdup(STRIPE_DEFAULT_BASE)))
            return fail(err, errlen, "out of memory");
    } else {
        if (!s->api_base && !s->refresh_token)
            return fail(err, errlen, "syncs[%s].api_base: the instance URL is required with an access_token",
                        s->name);
        if (!s->login_url && !(s->login_url = strdup(SALESFORCE_LOGIN_URL)))
            return fail(err, errlen, "out of memory");
        if (!s->api_version && !(s->api_version = strdup(SALESFORCE_API_VERSION)))
            return fail(err, errlen, "out of memory");
    }
    return 0;
}

void sync_config_salesforce_options(const sync_config *sc, salesforce_options *o)
{
    *o = (salesforce_options){.instance_url = sc->api_base,
                              .api_version = sc->api_version,
                              .access_token = sc->access_token,
                              .login_url = sc->login_url,
                              .client_id = sc->client_id,
                              .client_secret = sc->client_secret,
                              .refresh_token = sc->refresh_token};
}

int sync_config_has_collection(const sync_config *s, const char *name)
{
    return s->ncollections == 0 || listed(s, name);
}

static void free_secret(char **p)
{
    if (*p) {
        memset(*p, 0, strlen(*p));
        free(*p);
        *p = NULL;
    }
}

void sync_config_free(sync_config *s)
{
    for (int i = 0; i < s->ncollections; i++)
        free(s->collections[i]);
    s->ncollections = 0;
    free_secret(&s->secret_key);
    free_secret(&s->access_token);
    free_secret(&s->client_secret);
    free_secret(&s->refresh_token);
    free(s->client_id);
    free(s->api_base);
    free(s->login_url);
    free(s->api_version);
    s->client_id = s->api_base = s->login_url = s->api_version = NULL;
}

void sync_config_describe(const sync_config *s, char *buf, size_t len)
{
    char cols[512] = "all";
    size_t n = 0;
    for (int i = 0; i < s->ncollections && n < sizeof cols; i++)
        n += (size_t)snprintf(cols + n, sizeof cols - n, "%s%s", i ? "," : "", s->collections[i]);
    const char *cred = s->secret_key ? (strstr(s->secret_key, "_live_") ? "live secret key" : "test secret key")
                       : s->refresh_token ? "OAuth refresh token"
                                          : "access token";
    char conc[48] = "";
    if (s->max_concurrent)
        snprintf(conc, sizeof conc, ", at most %d at once", s->max_concurrent);
    snprintf(buf, len, "sync %s: provider %s, schema %s, collections %s, api %s, rate limit %u per %g s%s, %s",
             s->name, sync_provider_name(s->provider), s->schema, cols,
             s->api_base ? s->api_base : "(instance from the token)", s->allowed_requests, s->interval, conc,
             cred);
}
