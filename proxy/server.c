/* server: see server.h. */
#include "proxy/server.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/log.h"
#include "proxy/session.h"
#include "proxy/threads.h"

static void free_handle(uv_handle_t *h) { free(h); }

/* A connection for another loop leaves this one as a socket: accepted into a handle of
 * this loop, whose descriptor is duplicated before the handle closes. */
static void hand_over(server *srv, uv_stream_t *listener, server *to)
{
    uv_tcp_t *tmp = malloc(sizeof *tmp);
    if (!tmp) {
        log_error("out of memory accepting a client");
        return;
    }
    uv_tcp_init(srv->loop, tmp);
    uv_os_fd_t fd;
    int dup = -1;
    if (uv_accept(listener, (uv_stream_t *)tmp) == 0 && uv_fileno((uv_handle_t *)tmp, &fd) == 0)
        dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    uv_close((uv_handle_t *)tmp, free_handle);
    if (dup < 0) {
        log_warn("accept failed: cannot pass on a connection");
        return;
    }
    if (threads_hand_connection(to, dup) < 0)
        session_adopt(srv, dup); /* that loop is stopping: this one serves it */
}

static void on_connection(uv_stream_t *listener, int status)
{
    server *srv = listener->data;
    if (status < 0) {
        log_warn("accept failed: %s", uv_strerror(status));
        return;
    }
    server *to = threads_pick(srv->threads);
    if (to == srv)
        session_accept(srv, listener);
    else
        hand_over(srv, listener, to);
}

/* One "stats:" line of the counters of servers[0..n), summed, after label. */
static void log_counters(const char *label, server *const *servers, int n)
{
    long long clients_active = 0, servers_active = 0;
    unsigned long long clients_total = 0, queries_total = 0, cancels_total = 0, bytes_client = 0, bytes_server = 0;
    for (int i = 0; i < n; i++) {
        proxy_stats *st = &servers[i]->stats;
        clients_active += STAT_GET(st->clients_active);
        servers_active += STAT_GET(st->servers_active);
        clients_total += STAT_GET(st->clients_total);
        queries_total += STAT_GET(st->queries_total);
        cancels_total += STAT_GET(st->cancels_total);
        bytes_client += STAT_GET(st->bytes_client);
        bytes_server += STAT_GET(st->bytes_server);
    }
    log_msg(LOG_INFO,
            "stats: %sclients_active=%lld clients_total=%llu servers_active=%lld queries_total=%llu "
            "cancels_total=%llu bytes_client=%llu bytes_server=%llu",
            label, clients_active, clients_total, servers_active, queries_total, cancels_total, bytes_client,
            bytes_server);
}

void server_log_stats(server *srv)
{
    if (srv->threads->n == 1) {
        log_counters("", &srv, 1);
        return;
    }
    char thread[32];
    snprintf(thread, sizeof thread, "thread=%d ", srv->index + 1);
    log_counters(thread, &srv, 1);
    if (srv->index == 0) /* each loop logs its own line; the first adds up all of them */
        log_counters("total ", srv->threads->servers, srv->threads->n);
}

/* Closes what server_start opened, so that uv_run returns. */
static void server_release(server *srv)
{
    uv_close((uv_handle_t *)&srv->sig_term, NULL);
    uv_close((uv_handle_t *)&srv->sig_int, NULL);
    uv_close((uv_handle_t *)&srv->sig_usr1, NULL);
    uv_close((uv_handle_t *)&srv->sig_hup, NULL);
    uv_close((uv_handle_t *)&srv->shutdown_timer, NULL);
    threads_inbox_close(srv);
    SSL_CTX_free(srv->tls_clients); /* sessions still holding one keep a reference */
    SSL_CTX_free(srv->tls_database);
    srv->tls_clients = srv->tls_database = NULL;
    pgbuf_free(&srv->tls_plain);
    /* re-applications still queued are dropped; the sync worker's feed brings those
     * records back */
    write_context_close(&srv->writes);
}

static void server_stop(server *srv)
{
    log_info("all clients gone, exiting");
    server_log_stats(srv);
    server_release(srv);
}

static void close_listener(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

void server_discard(server *srv)
{
    server_release(srv);
    uv_walk(srv->loop, close_listener, NULL);
    uv_run(srv->loop, UV_RUN_DEFAULT);
}

void server_session_gone(server *srv)
{
    if (srv->shutting_down && srv->sessions == NULL && !uv_is_closing((uv_handle_t *)&srv->sig_term))
        server_stop(srv);
}

static void terminate_all(server *srv)
{
    session *next;
    for (session *s = srv->sessions; s; s = next) {
        next = s->next; /* frees are deferred to close callbacks */
        session_terminate(s, "57P01", "terminating connection due to administrator command");
    }
}

static void on_shutdown_timeout(uv_timer_t *t)
{
    server *srv = t->data;
    log_warn("shutdown timeout: terminating remaining clients");
    terminate_all(srv);
}

static void on_stop_signal(uv_signal_t *sig, int signum)
{
    server *srv = sig->data;
    if (srv->shutting_down) {
        log_warn("second stop signal: terminating remaining clients now");
        terminate_all(srv);
        return;
    }
    srv->shutting_down = true;
    log_info("%s received: not accepting new clients, waiting up to %.1f s for %d client(s)",
             signum == SIGTERM ? "SIGTERM" : "SIGINT", srv->cfg->shutdown_timeout,
             (int)STAT_GET(srv->stats.clients_active));
    for (int i = 0; i < srv->nlisteners; i++)
        uv_close((uv_handle_t *)&srv->listeners[i], NULL);
    if (srv->sessions == NULL) {
        server_stop(srv);
        return;
    }
    uv_timer_start(&srv->shutdown_timer, on_shutdown_timeout,
                   (uint64_t)(srv->cfg->shutdown_timeout * 1000), 0);
}

static void on_stats_signal(uv_signal_t *sig, int signum)
{
    server_log_stats(sig->data);
}

/* New connections get the files as they are now; live ones keep the context they began
 * with. A file that does not load leaves the current one in place. */
static void on_reload_signal(uv_signal_t *sig, int signum)
{
    server *srv = sig->data;
    if (!srv->cfg->tls_cert_file) {
        log_info("SIGHUP: no TLS certificate configured, nothing to reload");
        return;
    }
    char err[300];
    SSL_CTX *ctx = tls_server_context(srv->cfg->tls_cert_file, srv->cfg->tls_key_file, err, sizeof err);
    if (!ctx) {
        log_error("SIGHUP: TLS certificate not reloaded, keeping the current one: %s", err);
        return;
    }
    SSL_CTX_free(srv->tls_clients);
    srv->tls_clients = ctx;
    log_info("SIGHUP: TLS certificate and key reloaded");
}

/* The TLS contexts of both legs from the configuration. */
static int load_tls(server *srv, const config *cfg)
{
    char err[300];
    if (cfg->tls_cert_file &&
        !(srv->tls_clients = tls_server_context(cfg->tls_cert_file, cfg->tls_key_file, err, sizeof err))) {
        log_error("%s", err);
        return -1;
    }
    const char *mode = cfg->db_sslmode;
    if (strcmp(mode, "prefer") == 0 || strcmp(mode, "require") == 0 || strncmp(mode, "verify-", 7) == 0) {
        tls_verify v = strcmp(mode, "verify-full") == 0 ? TLS_VERIFY_FULL
                       : strcmp(mode, "verify-ca") == 0 ? TLS_VERIFY_CA
                                                        : TLS_VERIFY_NONE;
        if (!(srv->tls_database = tls_client_context(v, cfg->db_sslrootcert, err, sizeof err))) {
            log_error("%s", err);
            return -1;
        }
    }
    if (srv->tls_clients)
        log_info("TLS for clients: %s%s", cfg->tls_cert_file, cfg->tls_required ? " (required)" : "");
    return 0;
}

static int listen_on(server *srv, const listen_addr *la)
{
    struct sockaddr_storage addr;
    int rc = strchr(la->host, ':') ? uv_ip6_addr(la->host, la->port, (struct sockaddr_in6 *)&addr)
                                   : uv_ip4_addr(la->host, la->port, (struct sockaddr_in *)&addr);
    if (rc < 0) {
        log_error("listen %s:%d: not a numeric address: %s", la->host, la->port, uv_strerror(rc));
        return -1;
    }
    uv_tcp_t *tcp = &srv->listeners[srv->nlisteners];
    uv_tcp_init(srv->loop, tcp);
    tcp->data = srv;
    srv->nlisteners++;
    rc = uv_tcp_bind(tcp, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)tcp, 1024, on_connection);
    if (rc < 0) {
        log_error("listen %s:%d: %s", la->host, la->port, uv_strerror(rc));
        return -1;
    }
    log_info("listening on %s:%d", la->host, la->port);
    return 0;
}

int server_start(server *srv, uv_loop_t *loop, const config *cfg, struct proxy_threads *threads, int index)
{
    memset(srv, 0, sizeof *srv);
    srv->loop = loop;
    srv->cfg = cfg;
    srv->threads = threads;
    srv->index = index;
    loop->data = srv;
    cancel_map_init(&srv->cancels);
    uv_timer_init(loop, &srv->shutdown_timer);
    srv->shutdown_timer.data = srv;
    uv_signal_init(loop, &srv->sig_term);
    uv_signal_init(loop, &srv->sig_int);
    uv_signal_init(loop, &srv->sig_usr1);
    uv_signal_init(loop, &srv->sig_hup);
    srv->sig_term.data = srv->sig_int.data = srv->sig_usr1.data = srv->sig_hup.data = srv;
    uv_signal_start(&srv->sig_term, on_stop_signal, SIGTERM);
    uv_signal_start(&srv->sig_int, on_stop_signal, SIGINT);
    uv_signal_start(&srv->sig_usr1, on_stats_signal, SIGUSR1);
    uv_signal_start(&srv->sig_hup, on_reload_signal, SIGHUP);
    signal(SIGPIPE, SIG_IGN);
    pgbuf_init(&srv->tls_plain, 1u << 22);
    if (threads_inbox_open(srv) < 0) {
        log_error("cannot set up the proxy's loop %d", index);
        return -1;
    }

    if (load_tls(srv, cfg) < 0)
        return -1;

    if (write_context_init(&srv->writes, loop, cfg) < 0)
        return -1;
    if (index > 0)
        return 0;
    log_info("database at %s", config_database_label(cfg));
    for (int i = 0; i < cfg->nlisten; i++) {
        if (listen_on(srv, &cfg->listen[i]) < 0)
            return -1;
    }
    return 0;
}
