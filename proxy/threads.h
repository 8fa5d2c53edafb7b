/*
 * threads: the proxy's event loops. With `threads` = N (default 1), N servers (server.h)
 * serve clients, each on a libuv loop of its own: server 0 on the main thread, the others
 * on threads started here. A session never leaves the loop it began on, so all it touches
 * stays on one thread. What the loops share is this, and nothing else:
 *
 * - Connections: only server 0 listens. It gives the connections it accepts to the servers
 *   in turn (round robin); one for another loop is handed over as its socket, through that
 *   server's inbox (a list under a mutex, and a uv_async_t to wake the loop).
 * - Cancel requests come on connections of their own, which may land on any loop. A key
 *   the loop does not know is offered to every other loop; the one that holds the session
 *   acts on it, and when none does, the last one to look logs the unknown key.
 * - max_client_conn counts the clients of all loops (atomics below).
 * - Each loop has its own write path (API clients, service connections, plan cache); a
 *   sync's rate limit is one budget for all of them and the sync worker (ratelimit.h).
 * - Signals reach every loop (libuv tells each loop that watches one): each stops, logs
 *   its stats line or reloads its TLS certificate by itself.
 */
#ifndef APIGRES_THREADS_H
#define APIGRES_THREADS_H

#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "proxy/config.h"
#include "proxy/server.h"

typedef struct proxy_threads {
    server **servers; /* servers[0] runs on the caller's loop */
    int n;
    uv_thread_t *tids; /* of servers[1..n) */
    atomic_int connected; /* client connections of all loops, in their startup or after */
    atomic_int admitted;  /* of those, past their StartupMessage (max_client_conn) */
    unsigned next;        /* round robin; server 0's thread only */
} proxy_threads;

/* Starts cfg->threads servers: servers[0] on main_loop, which the caller then runs, the
 * others on threads and loops of their own, running already. NULL on failure (logged;
 * what had started is closed). */
proxy_threads *proxy_threads_start(uv_loop_t *main_loop, const config *cfg);
/* After the main loop returned: waits for the other loops to end (each ends as its server
 * stops, see server.h), then frees them. */
void proxy_threads_join(proxy_threads *t);

/* The server that takes the next new connection. */
server *threads_pick(proxy_threads *t);
/* Gives to's loop an accepted client socket, from any thread. 0, or -1 when to's server
 * has stopped taking them (fd stays the caller's). */
int threads_hand_connection(server *to, int fd);
/* from did not know this cancel key: the other loops look it up (see above). */
void threads_offer_cancel(server *from, uint64_t client, uint32_t pid, uint32_t key);

/* The inbox of srv: opened by server_start, closed by its stop (connections still in it
 * are closed). */
int threads_inbox_open(server *srv);
void threads_inbox_close(server *srv);

#endif
