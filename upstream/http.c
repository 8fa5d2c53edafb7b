/* http: see http.h. */
#include "upstream/http.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_CONNECT_TIMEOUT_MS 10000
#define DEFAULT_MAX_BODY (64u << 20)
#define MAX_HEADER_BYTES (256u << 10)

typedef struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    http_client *hc;
    struct sock_ctx *prev, *next;
} sock_ctx;

struct http_request {
    http_client *hc;
    CURL *easy;
    struct curl_slist *headers;
    http_done_cb cb;
    void *data;
    http_response resp;
    uint64_t started_ns;
    char errbuf[CURL_ERROR_SIZE];
    http_request *prev, *next;
};

struct http_client {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    sock_ctx *socks;
    http_request *requests;
    int in_flight;
    int open_handles; /* the timer and every poll not yet closed */
    bool freeing;
};

/* curl_global_init is not thread-safe: once per process, whichever thread (the proxy's
 * loop or a sync worker's) makes the first client. */
static pthread_once_t curl_global_once = PTHREAD_ONCE_INIT;
static CURLcode curl_global_status;

static void curl_global_setup(void) { curl_global_status = curl_global_init(CURL_GLOBAL_DEFAULT); }

/* ---- completion */

static enum http_outcome outcome_of(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return HTTP_OK;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
        return HTTP_CONNECT_FAILED;
    case CURLE_OPERATION_TIMEDOUT:
        return HTTP_TIMED_OUT;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return HTTP_SEND_FAILED;
    case CURLE_WRITE_ERROR:
        return HTTP_TOO_LARGE; /* our write callback refused more body */
    default:
        return HTTP_FAILED;
    }
}

static void request_unlink(http_request *req)
{
    http_client *hc = req->hc;
    if (req->prev)
        req->prev->next = req->next;
    else
        hc->requests = req->next;
    if (req->next)
        req->next->prev = req->prev;
    hc->in_flight--;
}

static void request_finish(http_request *req, enum http_outcome outcome, CURLcode rc)
{
    http_client *hc = req->hc;
    curl_multi_remove_handle(hc->multi, req->easy);
    request_unlink(req);
    req->resp.outcome = outcome;
    req->resp.elapsed_ms = (double)(uv_hrtime() - req->started_ns) / 1e6;
    if (outcome == HTTP_OK) {
        curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &req->resp.status);
        long v = 0;
        curl_easy_getinfo(req->easy, CURLINFO_HTTP_VERSION, &v);
        req->resp.http_version = v == CURL_HTTP_VERSION_2_0 ? 2 : 1;
    } else {
        const char *msg = req->errbuf[0] ? req->errbuf : curl_easy_strerror(rc);
        if (outcome == HTTP_CANCELLED)
            msg = "request cancelled";
        snprintf(req->resp.error, sizeof req->resp.error, "%s", msg);
        size_t n = strlen(req->resp.error);
        if (n && req->resp.error[n - 1] == '\n')
            req->resp.error[n - 1] = '\0';
    }
    req->cb(req, &req->resp, req->data);
    curl_easy_cleanup(req->easy);
    curl_slist_free_all(req->headers);
    pgbuf_free(&req->resp.body);
    pgbuf_free(&req->resp.headers);
    free(req);
}

static void check_done(http_client *hc)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(hc->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        http_request *req = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&req);
        CURLcode rc = msg->data.result;
        request_finish(req, outcome_of(rc), rc);
    }
}

/* ---- libcurl → libuv */

static void on_poll(uv_poll_t *poll, int status, int events)
{
    sock_ctx *ctx = poll->data;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running;
    http_client *hc = ctx->hc;
    curl_multi_socket_action(hc->multi, ctx->fd, flags, &running);
    check_done(hc);
}

static void on_sock_closed(uv_handle_t *h)
{
    sock_ctx *ctx = h->data;
    http_client *hc = ctx->hc;
    free(ctx);
    if (--hc->open_handles == 0 && hc->freeing)
        free(hc);
}

static void sock_ctx_close(sock_ctx *ctx)
{
    http_client *hc = ctx->hc;
    if (ctx->prev)
        ctx->prev->next = ctx->next;
    else
        hc->socks = ctx->next;
    if (ctx->next)
        ctx->next->prev = ctx->prev;
    uv_close((uv_handle_t *)&ctx->poll, on_sock_closed);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    http_client *hc = userp;
    sock_ctx *ctx = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (ctx) {
            curl_multi_assign(hc->multi, fd, NULL);
            sock_ctx_close(ctx);
        }
        return 0;
    }
    if (!ctx) {
        ctx = calloc(1, sizeof *ctx);
        if (!ctx || uv_poll_init_socket(hc->loop, &ctx->poll, fd) < 0) {
            free(ctx);
            return -1;
        }
        hc->open_handles++;
        ctx->fd = fd;
        ctx->hc = hc;
        ctx->poll.data = ctx;
        ctx->next = hc->socks;
        if (ctx->next)
            ctx->next->prev = ctx;
        hc->socks = ctx;
        curl_multi_assign(hc->multi, fd, ctx);
    }
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    uv_poll_start(&ctx->poll, events, on_poll);
    return 0;
}

static void on_timeout(uv_timer_t *t)
{
    http_client *hc = t->data;
    int running;
    curl_multi_socket_action(hc->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(hc);
}

static int on_timer_change(CURLM *multi, long timeout_ms, void *userp)
{
    http_client *hc = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&hc->timer);
    else /* 0 too goes through the loop: libcurl must not be re-entered from here */
        uv_timer_start(&hc->timer, on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- requests */

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    http_request *req = userp;
    size_t n = size * nmemb;
    pgbuf_put(&req->resp.body, data, n);
    return req->resp.body.failed ? 0 : n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
    http_request *req = userp;
    size_t n = size * nmemb;
    /* a new status line starts a new header block (after 100-continue or a redirect) */
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0)
        pgbuf_reset(&req->resp.headers);
    else
        pgbuf_put(&req->resp.headers, data, n);
    return req->resp.headers.failed ? 0 : n;
}

http_request *http_request_start(http_client *hc, const http_options *o, http_done_cb cb,
                                 void *data)
{
    http_request *req = calloc(1, sizeof *req);
    if (!req)
        return NULL;
    req->hc = hc;
    req->cb = cb;
    req->data = data;
    pgbuf_init(&req->resp.body, o->max_body ? o->max_body : DEFAULT_MAX_BODY);
    pgbuf_init(&req->resp.headers, MAX_HEADER_BYTES);
    req->easy = curl_easy_init();
    if (!req->easy)
        goto fail;
    for (const char *const *h = o->headers; h && *h; h++) {
        struct curl_slist *l = curl_slist_append(req->headers, *h);
        if (!l)
            goto fail;
        req->headers = l;
    }
    CURL *e = req->easy;
    curl_easy_setopt(e, CURLOPT_URL, o->url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, o->method);
    if (o->body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, o->body);
    } else if (strcmp(o->method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->headers);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     o->connect_timeout_ms ? o->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    if (o->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_file);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    if (o->fresh_connection)
        curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, req);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, req);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, req);
    req->started_ns = uv_hrtime();
    if (curl_multi_add_handle(hc->multi, e) != CURLM_OK)
        goto fail;
    req->next = hc->requests;
    if (req->next)
        req->next->prev = req;
    hc->requests = req;
    hc->in_flight++;
    return req;
fail:
    if (req->easy)
        curl_easy_cleanup(req->easy);
    curl_slist_free_all(req->headers);
    pgbuf_free(&req->resp.body);
    pgbuf_free(&req->resp.headers);
    free(req);
    return NULL;
}

void http_request_cancel(http_request *req) { request_finish(req, HTTP_CANCELLED, CURLE_OK); }

void http_client_flush(http_client *hc)
{
    int running;
    curl_multi_socket_action(hc->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    /* whatever that finished is reported from the loop, as always */
    uv_timer_start(&hc->timer, on_timeout, 0, 0);
}

int http_response_header(const http_response *resp, const char *name, char *out, size_t outlen)
{
    size_t namelen = strlen(name);
    const char *p = resp->headers.data, *end = p + resp->headers.len;
    while (p && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol : end;
        if ((size_t)(line_end - p) > namelen && p[namelen] == ':' &&
            strncasecmp(p, name, namelen) == 0) {
            const char *v = p + namelen + 1;
            while (v < line_end && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = line_end;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
                ve--;
            size_t n = (size_t)(ve - v);
            if (n >= outlen)
                n = outlen - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return 0;
        }
        p = eol ? eol + 1 : end;
    }
    return -1;
}

int http_client_in_flight(const http_client *hc) { return hc->in_flight; }

/* ---- the client */

http_client *http_client_new(uv_loop_t *loop, long max_host_connections)
{
    pthread_once(&curl_global_once, curl_global_setup);
    if (curl_global_status != CURLE_OK)
        return NULL;
    http_client *hc = calloc(1, sizeof *hc);
    if (!hc)
        return NULL;
    hc->loop = loop;
    hc->multi = curl_multi_init();
    if (!hc->multi) {
        free(hc);
        return NULL;
    }
    uv_timer_init(loop, &hc->timer);
    hc->timer.data = hc;
    hc->open_handles = 1;
    curl_multi_setopt(hc->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(hc->multi, CURLMOPT_SOCKETDATA, hc);
    curl_multi_setopt(hc->multi, CURLMOPT_TIMERFUNCTION, on_timer_change);
    curl_multi_setopt(hc->multi, CURLMOPT_TIMERDATA, hc);
    curl_multi_setopt(hc->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    if (max_host_connections > 0)
        curl_multi_setopt(hc->multi, CURLMOPT_MAX_HOST_CONNECTIONS, max_host_connections);
    return hc;
}

static void on_timer_closed(uv_handle_t *h)
{
    http_client *hc = h->data;
    if (--hc->open_handles == 0 && hc->freeing)
        free(hc);
}

void http_client_free(http_client *hc)
{
    while (hc->requests)
        http_request_cancel(hc->requests);
    hc->freeing = true;
    curl_multi_cleanup(hc->multi); /* may still report sockets to remove */
    while (hc->socks)
        sock_ctx_close(hc->socks);
    uv_close((uv_handle_t *)&hc->timer, on_timer_closed);
}
