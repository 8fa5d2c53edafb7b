/* cancel: see cancel.h. */
#include "proxy/cancel.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "proxy/backend.h"
#include "proxy/log.h"
#include "proxy/pgwire.h"

void cancel_map_init(cancel_map *m)
{
    memset(m, 0, sizeof *m);
    uint32_t seed = 0;
    if (getrandom(&seed, sizeof seed, 0) != sizeof seed)
        seed = (uint32_t)uv_hrtime();
    m->next_pid = (seed & 0x3fffffff) | 1;
}

static bool pid_in_use(const cancel_map *m, uint32_t pid)
{
    for (cancel_entry *e = m->buckets[pid % CANCEL_BUCKETS]; e; e = e->next)
        if (e->pid == pid)
            return true;
    return false;
}

int cancel_map_add(cancel_map *m, cancel_entry *e, uint32_t pid)
{
    if (getrandom(&e->key, sizeof e->key, 0) != sizeof e->key)
        return -1;
    e->pid = pid;
    while (e->pid == 0 || pid_in_use(m, e->pid))
        e->pid = m->next_pid++ & 0x7fffffff;
    cancel_entry **head = &m->buckets[e->pid % CANCEL_BUCKETS];
    e->next = *head;
    *head = e;
    return 0;
}

void cancel_map_remove(cancel_map *m, cancel_entry *e)
{
    for (cancel_entry **p = &m->buckets[e->pid % CANCEL_BUCKETS]; *p; p = &(*p)->next) {
        if (*p == e) {
            *p = e->next;
            e->next = NULL;
            return;
        }
    }
}

cancel_entry *cancel_map_find(const cancel_map *m, uint32_t pid, uint32_t key)
{
    for (cancel_entry *e = m->buckets[pid % CANCEL_BUCKETS]; e; e = e->next) {
        if (e->pid != pid)
            continue;
        volatile uint32_t diff = e->key ^ key; /* constant time in the secret */
        return diff == 0 ? e : NULL;
    }
    return NULL;
}

/* ---- sending */

typedef struct cancel_conn {
    backend_conn bc;
    uv_write_t write_req;
    char packet[16];
} cancel_conn;

static void cancel_conn_free(uv_handle_t *h)
{
    backend_conn *bc = h->data;
    free(bc->data);
}

static void cancel_conn_close(cancel_conn *cc)
{
    if (!backend_close(&cc->bc, cancel_conn_free))
        free(cc);
}

static void on_cancel_written(uv_write_t *req, int status)
{
    cancel_conn *cc = req->data;
    if (status < 0)
        log_warn("cancel request to the database failed: %s", uv_strerror(status));
    cancel_conn_close(cc);
}

static void on_cancel_connected(backend_conn *bc, int status)
{
    cancel_conn *cc = bc->data;
    if (status == UV_ECANCELED)
        return;
    if (status < 0) {
        log_warn("cancel request: cannot connect to the database: %s", uv_strerror(status));
        cancel_conn_close(cc);
        return;
    }
    uv_buf_t buf = uv_buf_init(cc->packet, sizeof cc->packet);
    cc->write_req.data = cc;
    if (uv_write(&cc->write_req, &bc->h.stream, &buf, 1, on_cancel_written) < 0)
        cancel_conn_close(cc);
}

void cancel_send(uv_loop_t *loop, const backend_addr *addr, uint32_t pid, uint32_t key)
{
    cancel_conn *cc = calloc(1, sizeof *cc);
    if (!cc) {
        log_error("cancel request: out of memory");
        return;
    }
    pgwire_set_int32(cc->packet, 16);
    pgwire_set_int32(cc->packet + 4, PGWIRE_CANCEL_REQUEST);
    pgwire_set_int32(cc->packet + 8, pid);
    pgwire_set_int32(cc->packet + 12, key);
    int rc = backend_connect(loop, &cc->bc, addr, on_cancel_connected, cc);
    if (rc < 0) {
        log_warn("cancel request: cannot connect to the database: %s", uv_strerror(rc));
        cancel_conn_close(cc);
    }
}
