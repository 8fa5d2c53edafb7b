/* config: see config.h. */
#include "proxy/config.h"

#include <cJSON.h>
#include <errno.h>
#include <libpq-fe.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_LISTEN "127.0.0.1:6432"

int config_auto_threads(void)
{
    cpu_set_t set;
    int n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
    return n < 1 ? 1 : n > CONFIG_AUTO_THREADS ? CONFIG_AUTO_THREADS : n;
}

void config_init(config *c)
{
    memset(c, 0, sizeof *c);
    c->log_level = LOG_INFO;
    c->startup_timeout = 60;   /* PostgreSQL's authentication_timeout */
    c->shutdown_timeout = 30;
    c->max_message_size = 0x3fffffff; /* PostgreSQL's own limit (MaxAllocSize - 1) */
    c->max_client_conn = 10000;
    /* a loop per core: the write path's parsing, JSON and HTTP work of one loop does not
     * hold up the clients of another (bench/writes, README "Threads") */
    c->threads = config_auto_threads();
    snprintf(c->read_role, sizeof c->read_role, "apigres_read");
}

void config_free(config *c)
{
    free(c->database);
    c->database = NULL;
    free(c->service_database);
    c->service_database = NULL;
    free(c->tls_cert_file);
    free(c->tls_key_file);
    c->tls_cert_file = c->tls_key_file = NULL;
    for (int i = 0; i < c->nsyncs; i++)
        sync_config_free(&c->syncs[i]);
    c->nsyncs = 0;
}

static int fail(char *err, size_t errlen, const char *fmt, const char *arg);

/* "syncs": a list; names and schemas are unique across it. */
static int apply_syncs(config *c, const cJSON *list, char *err, size_t errlen)
{
    if (!cJSON_IsArray(list))
        return fail(err, errlen, "syncs: expected a list of objects%s", NULL);
    for (int i = 0; i < c->nsyncs; i++)
        sync_config_free(&c->syncs[i]);
    c->nsyncs = 0;
    const cJSON *each;
    cJSON_ArrayForEach(each, list)
    {
        if (c->nsyncs == CONFIG_MAX_SYNCS)
            return fail(err, errlen, "syncs: at most 16%s", NULL);
        sync_config *s = &c->syncs[c->nsyncs];
        int rc = sync_config_parse(s, each, err, errlen);
        c->nsyncs++; /* parsed or not, it holds memory config_free releases */
        if (rc < 0)
            return -1;
        for (int i = 0; i < c->nsyncs - 1; i++) {
            if (strcmp(c->syncs[i].name, s->name) == 0)
                return fail(err, errlen, "syncs: two syncs are named \"%s\"", s->name);
            if (strcmp(c->syncs[i].schema, s->schema) == 0)
                return fail(err, errlen, "syncs: two syncs use the schema \"%s\"", s->schema);
        }
    }
    return 0;
}

static int fail(char *err, size_t errlen, const char *fmt, const char *arg)
{
    snprintf(err, errlen, fmt, arg ? arg : "");
    return -1;
}

int config_parse_listen(const char *spec, listen_addr *out)
{
    const char *colon;
    size_t hostlen;
    const char *host = spec;
    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (!close || close[1] != ':')
            return -1;
        host = spec + 1;
        hostlen = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(spec, ':');
        if (!colon)
            return -1;
        hostlen = (size_t)(colon - spec);
    }
    if (hostlen == 0 || hostlen >= sizeof out->host)
        return -1;
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || port < 0 || port > 65535)
        return -1;
    memcpy(out->host, host, hostlen);
    out->host[hostlen] = '\0';
    out->port = (int)port;
    return 0;
}

int config_set_listen(config *c, const char *spec, char *err, size_t errlen)
{
    if (c->nlisten == CONFIG_MAX_LISTEN)
        return fail(err, errlen, "too many listen addresses (at most 16)%s", NULL);
    if (config_parse_listen(spec, &c->listen[c->nlisten]) < 0)
        return fail(err, errlen, "listen: \"%s\" is not host:port", spec);
    c->nlisten++;
    return 0;
}

/* The value libpq would use for keyword: the conninfo's own, else its default (which
 * honours PGHOST, PGPORT, ... and the compiled-in socket directory). */
static const char *conninfo_value(PQconninfoOption *opts, PQconninfoOption *defs,
                                  const char *keyword)
{
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (strcmp(o->keyword, keyword) == 0 && o->val && o->val[0])
            return o->val;
    for (PQconninfoOption *o = defs; o && o->keyword; o++)
        if (strcmp(o->keyword, keyword) == 0 && o->val && o->val[0])
            return o->val;
    return NULL;
}

int config_set_database(config *c, const char *conninfo, char *err, size_t errlen)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
    if (!opts) {
        /* libpq's message quotes the offending fragment, which may be a password: keep
         * only its first line and never the input itself. */
        snprintf(err, errlen, "database: invalid connection string: %s",
                 perr ? perr : "out of memory");
        char *nl = strchr(err, '\n');
        if (nl)
            *nl = '\0';
        PQfreemem(perr);
        return -1;
    }
    PQconninfoOption *defs = PQconndefaults();
    const char *hostaddr = conninfo_value(opts, NULL, "hostaddr");
    const char *host = hostaddr ? hostaddr : conninfo_value(opts, defs, "host");
    const char *port = conninfo_value(opts, defs, "port");
    int rc = 0;
    backend_addr *b = &c->backend;
    memset(b, 0, sizeof *b);
    if (!host)
        host = "/var/run/postgresql";
    if (!port)
        port = "5432";
    /* Several hosts ("h1,h2") are libpq's failover list; the proxy uses the first. */
    size_t hostlen = strcspn(host, ",");
    size_t portlen = strcspn(port, ",");
    if (hostlen == 0 || hostlen >= sizeof b->host || portlen == 0 || portlen >= sizeof b->port) {
        rc = fail(err, errlen, "database: host or port is empty or too long%s", NULL);
        goto out;
    }
    memcpy(b->host, host, hostlen);
    memcpy(b->port, port, portlen);
    char *end;
    long portnum = strtol(b->port, &end, 10);
    if (*end || portnum < 1 || portnum > 65535) {
        rc = fail(err, errlen, "database: invalid port \"%s\"", b->port);
        goto out;
    }
    if (b->host[0] == '/' || b->host[0] == '@') {
        b->is_unix = true;
        int n = snprintf(b->unix_path, sizeof b->unix_path, "%s/.s.PGSQL.%s", b->host, b->port);
        if (n < 0 || (size_t)n >= sizeof b->unix_path) {
            rc = fail(err, errlen, "database: socket path too long: %s", b->host);
            goto out;
        }
    }
    const char *sslmode = conninfo_value(opts, defs, "sslmode");
    const char *rootcert = conninfo_value(opts, NULL, "sslrootcert");
    static const char *const modes[] = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"};
    bool known = false;
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++)
        known |= sslmode && strcmp(sslmode, modes[i]) == 0;
    if (sslmode && !known) {
        rc = fail(err, errlen, "database: invalid sslmode \"%s\"", sslmode);
        goto out;
    }
    snprintf(c->db_sslmode, sizeof c->db_sslmode, "%s", sslmode ? sslmode : "prefer");
    snprintf(c->db_sslrootcert, sizeof c->db_sslrootcert, "%s", rootcert ? rootcert : "");
    const char *name = conninfo_value(opts, defs, "host");
    if (!name || name[0] == '/')
        name = b->host;
    snprintf(c->db_sslhost, sizeof c->db_sslhost, "%.*s", (int)strcspn(name, ","), name);
    free(c->database);
    c->database = strdup(conninfo);
out:
    PQconninfoFree(opts);
    PQconninfoFree(defs);
    return rc;
}

const char *config_database_label(const config *c)
{
    static __thread char label[300];
    if (c->backend.is_unix)
        snprintf(label, sizeof label, "%s", c->backend.unix_path);
    else if (strchr(c->backend.host, ':'))
        snprintf(label, sizeof label, "[%s]:%s", c->backend.host, c->backend.port);
    else
        snprintf(label, sizeof label, "%s:%s", c->backend.host, c->backend.port);
    return label;
}

char *config_expand_env(const char *s, char *err, size_t errlen)
{
    size_t cap = strlen(s) + 1, len = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    for (const char *p = s; *p;) {
        const char *piece = p;
        size_t piecelen = 1;
        if (p[0] == '$' && p[1] == '{') {
            const char *close = strchr(p + 2, '}');
            char name[128];
            size_t namelen = close ? (size_t)(close - (p + 2)) : 0;
            if (!close || namelen == 0 || namelen >= sizeof name) {
                fail(err, errlen, "malformed ${...} reference in \"%.40s\"", p);
                free(out);
                return NULL;
            }
            memcpy(name, p + 2, namelen);
            name[namelen] = '\0';
            piece = getenv(name);
            if (!piece) {
                fail(err, errlen, "environment variable %s is not set", name);
                free(out);
                return NULL;
            }
            piecelen = strlen(piece);
            p = close + 1;
        } else {
            p++;
        }
        if (len + piecelen + 1 > cap) {
            cap = (len + piecelen + 1) * 2;
            char *grown = realloc(out, cap);
            if (!grown) {
                free(out);
                return NULL;
            }
            out = grown;
        }
        memcpy(out + len, piece, piecelen);
        len += piecelen;
    }
    out[len] = '\0';
    return out;
}

/* ---- the JSON file */

static int json_string(const cJSON *item, const char *key, char **out, char *err, size_t errlen)
{
    if (!cJSON_IsString(item))
        return fail(err, errlen, "%s: expected a string", key);
    *out = config_expand_env(item->valuestring, err, errlen);
    return *out ? 0 : -1;
}

static int json_number(const cJSON *item, const char *key, double min, double max, double *out,
                       char *err, size_t errlen)
{
    if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble) || item->valuedouble < min ||
        item->valuedouble > max)
        return fail(err, errlen, "%s: expected a number in range", key);
    *out = item->valuedouble;
    return 0;
}

static int apply_key(config *c, const cJSON *item, char *err, size_t errlen)
{
    const char *key = item->string;
    char *s = NULL;
    double d;
    int rc = 0;
    if (strcmp(key, "listen") == 0) {
        c->nlisten = 0;
        if (cJSON_IsArray(item)) {
            const cJSON *each;
            cJSON_ArrayForEach(each, item)
            {
                if ((rc = json_string(each, key, &s, err, errlen)) == 0)
                    rc = config_set_listen(c, s, err, errlen);
                free(s);
                s = NULL;
                if (rc)
                    return rc;
            }
            return c->nlisten ? 0 : fail(err, errlen, "listen: empty list%s", NULL);
        }
        if ((rc = json_string(item, key, &s, err, errlen)) == 0)
            rc = config_set_listen(c, s, err, errlen);
    } else if (strcmp(key, "database") == 0) {
        if ((rc = json_string(item, key, &s, err, errlen)) == 0)
            rc = config_set_database(c, s, err, errlen);
    } else if (strcmp(key, "log_level") == 0) {
        if ((rc = json_string(item, key, &s, err, errlen)) == 0 &&
            log_parse_level(s, &c->log_level) < 0)
            rc = fail(err, errlen, "log_level: \"%s\" is not debug, info, warn or error", s);
    } else if (strcmp(key, "startup_timeout") == 0) {
        rc = json_number(item, key, 0.01, 86400, &c->startup_timeout, err, errlen);
    } else if (strcmp(key, "client_idle_timeout") == 0) {
        rc = json_number(item, key, 0, 86400 * 365, &c->client_idle_timeout, err, errlen);
    } else if (strcmp(key, "shutdown_timeout") == 0) {
        rc = json_number(item, key, 0, 86400, &c->shutdown_timeout, err, errlen);
    } else if (strcmp(key, "max_message_size") == 0) {
        if ((rc = json_number(item, key, 1024, 0x3fffffff, &d, err, errlen)) == 0)
            c->max_message_size = (uint32_t)d;
    } else if (strcmp(key, "service_database") == 0) {
        free(c->service_database);
        c->service_database = NULL;
        if ((rc = json_string(item, key, &s, err, errlen)) == 0) {
            char *perr = NULL;
            PQconninfoOption *o = PQconninfoParse(s, &perr);
            if (!o)
                rc = fail(err, errlen, "service_database: invalid connection string%s", NULL);
            PQconninfoFree(o);
            PQfreemem(perr);
            if (rc == 0) {
                c->service_database = s;
                s = NULL;
            }
        }
    } else if (strcmp(key, "read_role") == 0) {
        if ((rc = json_string(item, key, &s, err, errlen)) == 0) {
            size_t n = strlen(s);
            if (n == 0 || n > 63 || strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") != n)
                rc = fail(err, errlen, "read_role: \"%s\" is not a lower-case role name", s);
            else
                snprintf(c->read_role, sizeof c->read_role, "%s", s);
        }
    } else if (strcmp(key, "syncs") == 0) {
        rc = apply_syncs(c, item, err, errlen);
    } else if (strcmp(key, "tls_cert_file") == 0 || strcmp(key, "tls_key_file") == 0) {
        char **field = key[4] == 'c' ? &c->tls_cert_file : &c->tls_key_file;
        if ((rc = json_string(item, key, &s, err, errlen)) == 0) {
            free(*field);
            *field = s;
            s = NULL;
        }
    } else if (strcmp(key, "tls_required") == 0) {
        if (!cJSON_IsBool(item))
            rc = fail(err, errlen, "tls_required: expected true or false%s", NULL);
        else
            c->tls_required = cJSON_IsTrue(item);
    } else if (strcmp(key, "max_client_conn") == 0) {
        if ((rc = json_number(item, key, 1, 1000000, &d, err, errlen)) == 0)
            c->max_client_conn = (int)d;
    } else if (strcmp(key, "threads") == 0) {
        if ((rc = json_number(item, key, 1, CONFIG_MAX_THREADS, &d, err, errlen)) == 0 && d != (int)d)
            rc = fail(err, errlen, "threads: expected a whole number%s", NULL);
        else if (rc == 0)
            c->threads = (int)d;
    } else {
        rc = fail(err, errlen, "unknown configuration key \"%s\"", key);
    }
    free(s);
    return rc;
}

int config_load_file(config *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *grown = realloc(text, cap + 1);
            if (!grown || cap > (16u << 20)) {
                free(grown ? grown : text);
                fclose(f);
                return fail(err, errlen, "%s: too large or out of memory", path);
            }
            text = grown;
        }
        size_t n = fread(text + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    fclose(f);
    text[len] = '\0';
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return fail(err, errlen, "%s: not a JSON object", path);
    }
    int rc = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, root)
    {
        if ((rc = apply_key(c, item, err, errlen)) != 0)
            break;
    }
    cJSON_Delete(root);
    return rc;
}

int config_finish(config *c, char *err, size_t errlen)
{
    if (c->nlisten == 0 && config_set_listen(c, DEFAULT_LISTEN, err, errlen) < 0)
        return -1;
    if (!c->database && config_set_database(c, "", err, errlen) < 0)
        return -1;
    if (!c->tls_cert_file != !c->tls_key_file)
        return fail(err, errlen, "tls_cert_file and tls_key_file go together: set both or neither%s", NULL);
    if (c->tls_required && !c->tls_cert_file)
        return fail(err, errlen, "tls_required needs tls_cert_file and tls_key_file%s", NULL);
    return 0;
}
