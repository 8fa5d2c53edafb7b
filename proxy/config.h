/*
 * config: apigres settings from a JSON file (shared/DESIGN.md §7) and command-line flags.
 *
 * String values may reference the environment as ${NAME}; a reference to an unset variable
 * is an error. The database connection string is parsed with libpq's own parser; it may
 * carry a password, so it is never logged: log config_database_label() instead.
 */
#ifndef APIGRES_CONFIG_H
#define APIGRES_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/log.h"
#include "proxy/sync_config.h"

#define CONFIG_MAX_LISTEN 16
#define CONFIG_MAX_SYNCS 16
#define CONFIG_MAX_THREADS 64
#define CONFIG_AUTO_THREADS 4 /* the default: one loop per CPU apigres may run on, at most this */

typedef struct listen_addr {
    char host[256];
    int port;
} listen_addr;

/* Where client sessions connect: a TCP host (name or address) or a Unix socket. */
typedef struct backend_addr {
    char host[256];     /* host name, numeric address, or socket directory */
    char port[16];
    bool is_unix;
    char unix_path[108]; /* DIR/.s.PGSQL.PORT when is_unix */
} backend_addr;

typedef struct config {
    listen_addr listen[CONFIG_MAX_LISTEN];
    int nlisten;
    char *database; /* as given; may hold a secret */
    backend_addr backend;
    enum log_level log_level;
    double startup_timeout;  /* seconds from accept to the first ReadyForQuery */
    double shutdown_timeout; /* seconds clients get to finish after SIGTERM/SIGINT */
    double client_idle_timeout; /* seconds a logged-in client may idle outside a transaction; 0 = no limit */
    uint32_t max_message_size;
    int max_client_conn;
    int threads; /* event loops serving clients (threads.h); config_init: config_auto_threads() */
    sync_config syncs[CONFIG_MAX_SYNCS]; /* the APIs mirrored into the database */
    int nsyncs;
    char *service_database; /* the service role's connection (may hold a secret); NULL = database */
    /* TLS towards clients: on when both files are set; tls_required refuses plain ones */
    char *tls_cert_file, *tls_key_file;
    bool tls_required;
    /* TLS towards the database, from the database connection string as libpq reads it */
    char db_sslmode[16];      /* disable, allow, prefer (libpq's default), require, verify-ca, verify-full */
    char db_sslrootcert[512]; /* verify-ca and verify-full */
    char db_sslhost[256];     /* the name verify-full checks: host, even when hostaddr is given */
    char read_role[64];     /* granted SELECT on the synced tables, if it exists */
} config;

void config_init(config *c);
/* The CPUs this process may run on (its affinity mask), from 1 to CONFIG_AUTO_THREADS. */
int config_auto_threads(void);
void config_free(config *c);
/* Each returns 0, or -1 with a message in err. */
int config_load_file(config *c, const char *path, char *err, size_t errlen);
int config_set_listen(config *c, const char *spec, char *err, size_t errlen); /* one address */
int config_set_database(config *c, const char *conninfo, char *err, size_t errlen);
/* Checks the whole config and fills defaults that depend on other settings. */
int config_finish(config *c, char *err, size_t errlen);
/* Parses "host:port" or "[v6addr]:port". */
int config_parse_listen(const char *spec, listen_addr *out);
/* "host:port" or the socket path, for logs and errors: never includes credentials. */
const char *config_database_label(const config *c);
/* Replaces ${NAME} references with the environment's values; caller frees. NULL + err on
 * an unset variable or a malformed reference. */
char *config_expand_env(const char *s, char *err, size_t errlen);

#endif
