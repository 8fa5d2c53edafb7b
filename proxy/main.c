/*
 * apigres: command line, configuration, and the proxy loop.
 */
#include <errno.h>
#include <stdbool.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <libpq-fe.h>
#include <uv.h>

#include "proxy/config.h"
#include "proxy/log.h"
#include "proxy/server.h"
#include "proxy/threads.h"
#include "sync/setup.h"
#include "sync/worker.h"
#include "proxy/version.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: apigres [OPTIONS]\n"
            "       apigres setup [--config FILE] [--supabase]\n"
            "A PostgreSQL wire-protocol proxy for data synced from SaaS APIs.\n"
            "`setup` prints the SQL a DBA runs once (roles and grants) and exits.\n\n"
            "  -c, --config FILE          JSON configuration file (see README.md)\n"
            "  -l, --listen HOST:PORT     address to listen on; repeat for several\n"
            "                             (default 127.0.0.1:6432)\n"
            "  -d, --database CONNINFO    the real database, as a libpq URI or conninfo;\n"
            "                             clients log in with their own user and password\n"
            "      --log-level LEVEL      debug, info, warn or error (default info)\n"
            "      --startup-timeout SEC  time a client has to log in (default 60)\n"
            "      --shutdown-timeout SEC time clients get to finish after SIGTERM (default 30)\n"
            "      --client-idle-timeout SEC  disconnect clients idle outside a transaction\n"
            "                             that long (default 0: never)\n"
            "      --max-message-size N   largest client message in bytes (default 1073741823)\n"
            "      --max-client-conn N    most clients at once (default 10000)\n"
            "      --threads N            event loops serving clients (default: one per CPU, at most 4)\n"
            "      --tls-cert-file FILE   certificate chain (PEM) offered to clients\n"
            "      --tls-key-file FILE    its private key (PEM)\n"
            "      --tls-required         refuse clients that do not use TLS\n"
            "      --check                validate the configuration and exit\n"
            "  -h, --help                 show this help\n"
            "  -V, --version              show the version\n\n"
            "Signals: SIGTERM/SIGINT stop gracefully, SIGUSR1 logs counters, SIGHUP reloads\n"
            "the TLS certificate and key.\n");
}

static int parse_number(const char *opt, const char *s, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s || v < min || v > max) {
        fprintf(stderr, "apigres: %s: invalid value \"%s\"\n", opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

/* More clients than the default soft limit of 1024 descriptors allows need the hard one. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

enum { OPT_LOG_LEVEL = 256, OPT_STARTUP_TIMEOUT, OPT_SHUTDOWN_TIMEOUT, OPT_MAX_MESSAGE,
       OPT_MAX_CLIENTS, OPT_THREADS, OPT_CHECK, OPT_SUPABASE, OPT_TLS_CERT, OPT_TLS_KEY, OPT_TLS_REQUIRED, OPT_IDLE_TIMEOUT };

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"database", required_argument, NULL, 'd'},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"startup-timeout", required_argument, NULL, OPT_STARTUP_TIMEOUT},
        {"shutdown-timeout", required_argument, NULL, OPT_SHUTDOWN_TIMEOUT},
        {"max-message-size", required_argument, NULL, OPT_MAX_MESSAGE},
        {"max-client-conn", required_argument, NULL, OPT_MAX_CLIENTS},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"client-idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
        {"tls-cert-file", required_argument, NULL, OPT_TLS_CERT},
        {"tls-key-file", required_argument, NULL, OPT_TLS_KEY},
        {"tls-required", no_argument, NULL, OPT_TLS_REQUIRED},
        {"check", no_argument, NULL, OPT_CHECK},
        {"supabase", no_argument, NULL, OPT_SUPABASE},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    config cfg;
    config_init(&cfg);
    char err[512];
    bool check_only = false, cli_listen = false, supabase = false, setup = false;
    double v;
    int rc = 1;

    /* The file first, so that flags override it whatever their order. */
    for (int i = 1; i < argc - 1; i++) {
        if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) {
            if (config_load_file(&cfg, argv[i + 1], err, sizeof err) < 0) {
                fprintf(stderr, "apigres: %s\n", err);
                goto out;
            }
        }
    }
    int opt;
    while ((opt = getopt_long(argc, argv, "c:l:d:hV", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            break;
        case 'l':
            if (!cli_listen)
                cfg.nlisten = 0;
            cli_listen = true;
            if (config_set_listen(&cfg, optarg, err, sizeof err) < 0)
                goto bad;
            break;
        case 'd':
            if (config_set_database(&cfg, optarg, err, sizeof err) < 0)
                goto bad;
            break;
        case OPT_LOG_LEVEL:
            if (log_parse_level(optarg, &cfg.log_level) < 0) {
                snprintf(err, sizeof err, "--log-level: \"%s\" is not debug, info, warn or error", optarg);
                goto bad;
            }
            break;
        case OPT_STARTUP_TIMEOUT:
            if (parse_number("--startup-timeout", optarg, 0.01, 86400, &cfg.startup_timeout) < 0)
                goto out;
            break;
        case OPT_SHUTDOWN_TIMEOUT:
            if (parse_number("--shutdown-timeout", optarg, 0, 86400, &cfg.shutdown_timeout) < 0)
                goto out;
            break;
        case OPT_MAX_MESSAGE:
            if (parse_number("--max-message-size", optarg, 1024, 0x3fffffff, &v) < 0)
                goto out;
            cfg.max_message_size = (uint32_t)v;
            break;
        case OPT_MAX_CLIENTS:
            if (parse_number("--max-client-conn", optarg, 1, 1000000, &v) < 0)
                goto out;
            cfg.max_client_conn = (int)v;
            break;
        case OPT_THREADS:
            if (parse_number("--threads", optarg, 1, CONFIG_MAX_THREADS, &v) < 0)
                goto out;
            cfg.threads = (int)v;
            break;
        case OPT_TLS_CERT:
        case OPT_TLS_KEY: {
            char **field = opt == OPT_TLS_CERT ? &cfg.tls_cert_file : &cfg.tls_key_file;
            free(*field);
            *field = strdup(optarg);
            break;
        }
        case OPT_IDLE_TIMEOUT:
            if (parse_number("--client-idle-timeout", optarg, 0, 86400 * 365, &cfg.client_idle_timeout) < 0)
                goto out;
            break;
        case OPT_TLS_REQUIRED:
            cfg.tls_required = true;
            break;
        case OPT_CHECK:
            check_only = true;
            break;
        case OPT_SUPABASE:
            supabase = true;
            break;
        case 'h':
            usage(stdout);
            rc = 0;
            goto out;
        case 'V':
            printf("apigres %s (libuv %s, libpq %d)\n", APIGRES_VERSION, uv_version_string(),
                   PQlibVersion());
            rc = 0;
            goto out;
        default:
            usage(stderr);
            goto out;
        }
    }
    if (optind < argc && strcmp(argv[optind], "setup") == 0) {
        setup = true;
        optind++;
    }
    if (optind < argc) {
        snprintf(err, sizeof err, "unexpected argument \"%s\"", argv[optind]);
        goto bad;
    }
    if (config_finish(&cfg, err, sizeof err) < 0)
        goto bad;
    log_set_level(cfg.log_level);
    if (setup) {
        pgbuf sql;
        pgbuf_init(&sql, 1u << 20);
        if (setup_sql(&sql, &cfg, supabase, err, sizeof err) < 0) {
            pgbuf_free(&sql);
            goto bad;
        }
        fputs(sql.data, stdout);
        pgbuf_free(&sql);
        rc = 0;
        goto out;
    }
    if (check_only) {
        printf("configuration ok: %d listen address(es), database at %s, %d sync(s)\n", cfg.nlisten,
               config_database_label(&cfg), cfg.nsyncs);
        for (int i = 0; i < cfg.nsyncs; i++) {
            char line[1024];
            sync_config_describe(&cfg.syncs[i], line, sizeof line);
            printf("%s\n", line);
        }
        rc = 0;
        goto out;
    }

    raise_fd_limit();
    uv_loop_t *loop = uv_default_loop();
    log_info("apigres %s starting", APIGRES_VERSION);
    for (int i = 0; i < cfg.nsyncs; i++) {
        char line[1024];
        sync_config_describe(&cfg.syncs[i], line, sizeof line);
        log_info("%s", line);
    }
    proxy_threads *threads = proxy_threads_start(loop, &cfg);
    if (!threads)
        goto out;
    /* the sync workers run beside the proxy, each on its own thread and loop */
    sync_worker *workers[CONFIG_MAX_SYNCS] = {0};
    for (int i = 0; i < cfg.nsyncs; i++)
        workers[i] = sync_worker_start(&cfg.syncs[i], cfg.service_database ? cfg.service_database : cfg.database,
                                       cfg.read_role);
    uv_run(loop, UV_RUN_DEFAULT);
    for (int i = 0; i < cfg.nsyncs; i++)
        sync_worker_stop(workers[i]);
    proxy_threads_join(threads);
    uv_loop_close(loop);
    log_info("apigres stopped");
    rc = 0;
    goto out;
bad:
    fprintf(stderr, "apigres: %s\n", err);
out:
    config_free(&cfg);
    return rc;
}
