/*
 * backend: opens a stream to the database (TCP or Unix socket) on the loop.
 *
 * Host names are resolved per connection with uv_getaddrinfo and every returned address is
 * tried in turn, as libpq does. The caller owns the backend_conn and must keep it alive
 * until the callback has run; after a successful callback the stream is the caller's to
 * read, write and close (backend_close). Closing while a connect is under way is allowed:
 * the callback then runs with UV_ECANCELED.
 */
#ifndef APIGRES_BACKEND_H
#define APIGRES_BACKEND_H

#include <stdbool.h>
#include <uv.h>

#include "proxy/config.h"

typedef struct backend_conn backend_conn;
typedef void (*backend_connect_cb)(backend_conn *bc, int status);

struct backend_conn {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    uv_connect_t connect_req;
    uv_getaddrinfo_t resolve_req;
    struct addrinfo *addrs; /* resolved list, the one being tried */
    struct addrinfo *next;
    const backend_addr *addr; /* borrowed from the config */
    backend_connect_cb cb;
    uv_close_cb close_cb;
    void *data;
    bool handle_open;
    bool resolving;
    bool connected;
    bool closing;
};

/* Starts connecting; returns 0 (cb will run) or a negative libuv error (it will not). */
int backend_connect(uv_loop_t *loop, backend_conn *bc, const backend_addr *addr,
                    backend_connect_cb cb, void *data);
/* Closes whatever is open; close_cb (may be NULL) runs once nothing of bc is in use.
 * Returns false when nothing was open, in which case close_cb does not run. */
bool backend_close(backend_conn *bc, uv_close_cb close_cb);

#endif
