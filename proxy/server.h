/*
 * server: the proxy's listeners, signals, sessions and counters on one libuv loop.
 *
 * SIGTERM/SIGINT start a graceful stop: listeners close, connected clients may finish for
 * shutdown_timeout seconds, then the remaining ones get FATAL 57P01 and the loop ends.
 * SIGUSR1 logs the counters as one "stats:" line. With several threads (threads.h) each
 * loop has a server of its own; only server 0 listens, and each one does the above for its
 * own clients ("stats: thread=K ..."); server 0 adds a "stats: total ..." line of them all.
 */
#ifndef APIGRES_SERVER_H
#define APIGRES_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "proxy/cancel.h"
#include "proxy/config.h"
#include "proxy/tls.h"
#include "proxy/write.h"

#define SERVER_READ_BUFFER 65536

typedef struct session session;
struct proxy_threads;

/* A loop's counters. Only its own loop changes them (STAT_ADD: a plain load and store, no
 * locked instruction on the hot path); SIGUSR1's total line reads every loop's. */
typedef struct proxy_stats {
    atomic_llong clients_active;
    atomic_llong servers_active;
    atomic_ullong clients_total;
    atomic_ullong queries_total; /* Query and Execute messages */
    atomic_ullong cancels_total; /* CancelRequests sent to the database */
    atomic_ullong bytes_client;  /* received from clients */
    atomic_ullong bytes_server;  /* received from the database */
} proxy_stats;

#define STAT_ADD(counter, n)                                                                          \
    atomic_store_explicit(&(counter), atomic_load_explicit(&(counter), memory_order_relaxed) + (n), \
                          memory_order_relaxed)
#define STAT_GET(counter) atomic_load_explicit(&(counter), memory_order_relaxed)

typedef struct server {
    uv_loop_t *loop;
    const config *cfg;
    uv_tcp_t listeners[CONFIG_MAX_LISTEN];
    int nlisteners;
    uv_signal_t sig_term;
    uv_signal_t sig_int;
    uv_signal_t sig_usr1;
    uv_signal_t sig_hup;
    uv_timer_t shutdown_timer;
    bool shutting_down;
    session *sessions; /* every live session, for shutdown */
    struct proxy_threads *threads; /* every loop's server; their shared counters */
    int index;                     /* in threads->servers; 0 listens */
    struct inbox *inbox;           /* connections and cancel keys from other loops (threads.c) */
    cancel_map cancels;
    proxy_stats stats;
    write_context writes; /* API clients and the service connection of the write path */
    SSL_CTX *tls_clients;  /* TLS offered to clients (NULL: answered 'N'); SIGHUP reloads it */
    SSL_CTX *tls_database; /* TLS towards the database (NULL: sslmode disable or allow) */
    pgbuf tls_plain;       /* scratch: the plaintext of one read of a TLS stream */
    /* One read buffer for every stream on the loop: a read is fully handed on (written,
     * or copied into a send queue) before the next one starts. */
    char read_buffer[SERVER_READ_BUFFER];
} server;

/* Loads TLS, installs signal handlers and, for index 0, binds every listen address.
 * Returns 0 or -1 (logged). */
int server_start(server *srv, uv_loop_t *loop, const config *cfg, struct proxy_threads *threads, int index);
/* Undoes server_start, whether it succeeded or failed, for a server whose loop served no
 * client: closes everything and runs the loop until it has. */
void server_discard(server *srv);
/* Called by a session when it has been freed. */
void server_session_gone(server *srv);
void server_log_stats(server *srv);

#endif
