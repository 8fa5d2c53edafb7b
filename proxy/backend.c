/* backend: see backend.h. */
#include "proxy/backend.h"

#include <stdlib.h>
#include <string.h>

static void connect_next(backend_conn *bc);

static void finish(backend_conn *bc, int status)
{
    if (bc->addrs) {
        uv_freeaddrinfo(bc->addrs);
        bc->addrs = bc->next = NULL;
    }
    bc->connected = status == 0;
    bc->cb(bc, status);
}

static void on_handle_closed_retry(uv_handle_t *h)
{
    backend_conn *bc = h->data;
    bc->handle_open = false;
    if (bc->closing) {
        if (bc->close_cb)
            bc->close_cb(h);
        return;
    }
    connect_next(bc);
}

static void on_connect(uv_connect_t *req, int status)
{
    backend_conn *bc = req->data;
    if (bc->closing) {
        /* backend_close ran meanwhile: the handle is closing, report it as cancelled */
        bc->cb(bc, UV_ECANCELED);
        return;
    }
    if (status < 0 && bc->next) {
        /* try the resolver's next address on a fresh handle */
        uv_close(&bc->h.handle, on_handle_closed_retry);
        return;
    }
    if (status == 0 && !bc->addr->is_unix)
        uv_tcp_nodelay(&bc->h.tcp, 1);
    finish(bc, status);
}

static void connect_next(backend_conn *bc)
{
    uv_loop_t *loop = bc->resolve_req.loop;
    struct addrinfo *ai = bc->next;
    bc->next = ai->ai_next;
    int rc = uv_tcp_init(loop, &bc->h.tcp);
    if (rc < 0) {
        finish(bc, rc);
        return;
    }
    bc->h.handle.data = bc;
    bc->handle_open = true;
    bc->connect_req.data = bc;
    rc = uv_tcp_connect(&bc->connect_req, &bc->h.tcp, ai->ai_addr, on_connect);
    if (rc < 0) {
        /* report through on_connect's path so a next address is still tried */
        if (bc->next) {
            uv_close(&bc->h.handle, on_handle_closed_retry);
            return;
        }
        finish(bc, rc);
    }
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    backend_conn *bc = req->data;
    bc->resolving = false;
    if (bc->closing) {
        uv_freeaddrinfo(res);
        bc->cb(bc, UV_ECANCELED);
        if (bc->close_cb)
            bc->close_cb(&bc->h.handle);
        return;
    }
    if (status < 0) {
        finish(bc, status);
        return;
    }
    bc->addrs = bc->next = res;
    connect_next(bc);
}

int backend_connect(uv_loop_t *loop, backend_conn *bc, const backend_addr *addr,
                    backend_connect_cb cb, void *data)
{
    memset(bc, 0, sizeof *bc);
    bc->addr = addr;
    bc->cb = cb;
    bc->data = data;
    bc->resolve_req.loop = loop;
    bc->h.handle.data = bc; /* close_cb may see the handle before any init */
    if (addr->is_unix) {
        int rc = uv_pipe_init(loop, &bc->h.pipe, 0);
        if (rc < 0)
            return rc;
        bc->h.handle.data = bc;
        bc->handle_open = true;
        bc->connect_req.data = bc;
        uv_pipe_connect(&bc->connect_req, &bc->h.pipe, addr->unix_path, on_connect);
        return 0;
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    bc->resolve_req.data = bc;
    bc->resolving = true;
    int rc = uv_getaddrinfo(loop, &bc->resolve_req, on_resolved, addr->host, addr->port, &hints);
    if (rc < 0)
        bc->resolving = false;
    return rc;
}

bool backend_close(backend_conn *bc, uv_close_cb close_cb)
{
    if (bc->closing)
        return true;
    bc->closing = true;
    bc->close_cb = close_cb;
    if (bc->handle_open) {
        uv_close(&bc->h.handle, on_handle_closed_retry);
        return true;
    }
    if (bc->resolving) {
        uv_cancel((uv_req_t *)&bc->resolve_req); /* on_resolved runs with UV_EAI_CANCELED */
        return true;
    }
    return false;
}
