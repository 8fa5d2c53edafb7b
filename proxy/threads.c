/* threads: see threads.h. */
#include "proxy/threads.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "proxy/log.h"
#include "proxy/session.h"

/* A cancel key offered to the other loops; the last of them to look frees it. */
typedef struct cancel_offer {
    atomic_int left;
    atomic_bool found;
    uint64_t client; /* the session that got the CancelRequest, and its loop: for the log */
    int from;
    uint32_t pid, key;
} cancel_offer;

typedef struct handover {
    struct handover *next;
    int fd;              /* an accepted client socket, or -1 for: */
    cancel_offer *offer;
} handover;

/* Sends happen under the lock, and the owner closes the wakeup under it too: once closed
 * is set, no thread touches the handle again. The inbox itself lives until
 * proxy_threads_join, as another thread may still be about to take the lock. */
struct inbox {
    uv_async_t wakeup;
    pthread_mutex_t lock;
    handover *head, **tail;
    bool closed;
};

static void offer_done(cancel_offer *o, bool found)
{
    if (found)
        atomic_store(&o->found, true);
    if (atomic_fetch_sub(&o->left, 1) != 1)
        return;
    if (!atomic_load(&o->found))
        log_info("client %llu: cancel request with an unknown key", (unsigned long long)o->client);
    free(o);
}

static void handover_drop(handover *h)
{
    if (h->fd >= 0)
        close(h->fd);
    else
        offer_done(h->offer, false);
    free(h);
}

/* The inbox's list, emptied; the caller holds the lock. */
static handover *take_all(struct inbox *ib)
{
    handover *h = ib->head;
    ib->head = NULL;
    ib->tail = &ib->head;
    return h;
}

static void on_inbox(uv_async_t *a)
{
    server *srv = a->data;
    struct inbox *ib = srv->inbox;
    pthread_mutex_lock(&ib->lock);
    handover *h = take_all(ib);
    pthread_mutex_unlock(&ib->lock);
    while (h) {
        handover *next = h->next;
        if (h->fd < 0) {
            cancel_offer *o = h->offer;
            offer_done(o, session_cancel(srv, o->client, o->from, o->pid, o->key));
            free(h);
        } else if (srv->shutting_down) {
            handover_drop(h); /* the stop signal came first: as if it had not been accepted */
        } else {
            session_adopt(srv, h->fd);
            free(h);
        }
        h = next;
    }
}

int threads_inbox_open(server *srv)
{
    struct inbox *ib = calloc(1, sizeof *ib);
    if (!ib || pthread_mutex_init(&ib->lock, NULL) != 0) {
        free(ib);
        return -1;
    }
    ib->tail = &ib->head;
    if (uv_async_init(srv->loop, &ib->wakeup, on_inbox) < 0) {
        pthread_mutex_destroy(&ib->lock);
        free(ib);
        return -1;
    }
    ib->wakeup.data = srv;
    srv->inbox = ib;
    return 0;
}

void threads_inbox_close(server *srv)
{
    struct inbox *ib = srv->inbox;
    if (!ib)
        return;
    pthread_mutex_lock(&ib->lock);
    handover *h = take_all(ib);
    if (!ib->closed)
        uv_close((uv_handle_t *)&ib->wakeup, NULL);
    ib->closed = true;
    pthread_mutex_unlock(&ib->lock);
    while (h) {
        handover *next = h->next;
        handover_drop(h);
        h = next;
    }
}

static void inbox_free(struct inbox *ib)
{
    if (!ib)
        return;
    pthread_mutex_destroy(&ib->lock);
    free(ib);
}

static int inbox_push(server *to, handover *h)
{
    struct inbox *ib = to->inbox;
    pthread_mutex_lock(&ib->lock);
    bool open = !ib->closed;
    if (open) {
        h->next = NULL;
        *ib->tail = h;
        ib->tail = &h->next;
        uv_async_send(&ib->wakeup);
    }
    pthread_mutex_unlock(&ib->lock);
    return open ? 0 : -1;
}

int threads_hand_connection(server *to, int fd)
{
    handover *h = calloc(1, sizeof *h);
    if (!h)
        return -1;
    h->fd = fd;
    if (inbox_push(to, h) == 0)
        return 0;
    free(h);
    return -1;
}

void threads_offer_cancel(server *from, uint64_t client, uint32_t pid, uint32_t key)
{
    proxy_threads *t = from->threads;
    cancel_offer *o = calloc(1, sizeof *o);
    if (!o) {
        log_error("client %llu: out of memory passing on a cancel request", (unsigned long long)client);
        return;
    }
    atomic_init(&o->left, t->n - 1);
    atomic_init(&o->found, false);
    o->client = client;
    o->from = from->index;
    o->pid = pid;
    o->key = key;
    for (int i = 0; i < t->n; i++) {
        if (t->servers[i] == from)
            continue;
        handover *h = calloc(1, sizeof *h);
        if (h) {
            h->fd = -1;
            h->offer = o;
            if (inbox_push(t->servers[i], h) == 0)
                continue;
            free(h);
        }
        offer_done(o, false);
    }
}

server *threads_pick(proxy_threads *t) { return t->servers[t->next++ % (unsigned)t->n]; }

static void run_loop(void *arg)
{
    server *srv = arg;
    uv_run(srv->loop, UV_RUN_DEFAULT);
}

/* Ends loops that never ran a thread: from servers[first] on. */
static void close_unstarted(proxy_threads *t, int first)
{
    for (int i = first; i < t->n; i++) {
        server *srv = t->servers[i];
        server_discard(srv);
        if (i > 0) {
            uv_loop_close(srv->loop);
            free(srv->loop);
        }
        inbox_free(srv->inbox);
        free(srv);
    }
    t->n = first;
}

proxy_threads *proxy_threads_start(uv_loop_t *main_loop, const config *cfg)
{
    int n = cfg->threads > 0 ? cfg->threads : 1;
    proxy_threads *t = calloc(1, sizeof *t);
    if (!t || !(t->servers = calloc((size_t)n, sizeof *t->servers)) || !(t->tids = calloc((size_t)n, sizeof *t->tids))) {
        log_error("out of memory starting the proxy's loops");
        goto fail;
    }
    atomic_init(&t->connected, 0);
    atomic_init(&t->admitted, 0);
    for (int i = 0; i < n; i++) {
        uv_loop_t *loop = main_loop;
        if (i > 0 && (!(loop = malloc(sizeof *loop)) || uv_loop_init(loop) < 0)) {
            free(loop);
            log_error("cannot start the proxy's loop %d", i);
            goto fail;
        }
        if (!(t->servers[i] = calloc(1, sizeof(server)))) {
            if (i > 0) {
                uv_loop_close(loop);
                free(loop);
            }
            log_error("out of memory starting the proxy's loops");
            goto fail;
        }
        t->servers[i]->loop = loop;
        t->n = i + 1;
        if (server_start(t->servers[i], loop, cfg, t, i) < 0)
            goto fail;
    }
    for (int i = 1; i < n; i++) {
        if (uv_thread_create(&t->tids[i], run_loop, t->servers[i]) < 0) {
            /* the loops that run have connections on them already: go on with those */
            log_error("cannot start thread %d of %d: serving clients on %d", i + 1, n, i);
            close_unstarted(t, i);
            break;
        }
    }
    if (t->n > 1)
        log_info("serving clients on %d threads", t->n);
    return t;
fail:
    if (t && t->servers)
        close_unstarted(t, 0);
    if (t) {
        free(t->servers);
        free(t->tids);
        free(t);
    }
    return NULL;
}

void proxy_threads_join(proxy_threads *t)
{
    for (int i = 1; i < t->n; i++) {
        uv_thread_join(&t->tids[i]);
        uv_loop_close(t->servers[i]->loop);
        free(t->servers[i]->loop);
    }
    for (int i = 0; i < t->n; i++) {
        inbox_free(t->servers[i]->inbox);
        free(t->servers[i]);
    }
    free(t->servers);
    free(t->tids);
    free(t);
}
