/* sendq: see sendq.h. */
#include "proxy/sendq.h"

#include <string.h>

/* Buffers above this size are freed when the queue drains; smaller ones are kept for the
 * next burst. */
#define SENDQ_KEEP_BYTES 16384

void sendq_init(sendq *q, uv_stream_t *stream, size_t max, sendq_drained_cb drained, void *data)
{
    memset(q, 0, sizeof *q);
    q->stream = stream;
    q->drained = drained;
    q->data = data;
    q->req.data = q;
    pgbuf_init(&q->inflight, max);
    pgbuf_init(&q->pending, max);
    pgbuf_init(&q->cipher, max);
}

void sendq_free(sendq *q)
{
    pgbuf_free(&q->inflight);
    pgbuf_free(&q->pending);
    pgbuf_free(&q->cipher);
}

static void on_written(uv_write_t *req, int status);

static int start_write(sendq *q)
{
    uv_buf_t buf = uv_buf_init(q->inflight.data, (unsigned)q->inflight.len);
    int rc = uv_write(&q->req, q->stream, &buf, 1, on_written);
    if (rc < 0) {
        q->error = rc;
        return rc;
    }
    q->busy = true;
    return 0;
}

static void on_written(uv_write_t *req, int status)
{
    sendq *q = req->data;
    q->busy = false;
    pgbuf_reset(&q->inflight);
    if (status < 0 && !q->error)
        q->error = status;
    if (!q->error && q->pending.len > 0) {
        pgbuf tmp = q->inflight;
        q->inflight = q->pending;
        q->pending = tmp;
        if (start_write(q) == 0)
            return;
    }
    if (q->inflight.cap > SENDQ_KEEP_BYTES)
        pgbuf_free(&q->inflight);
    if (q->pending.cap > SENDQ_KEEP_BYTES)
        pgbuf_free(&q->pending);
    q->drained(q, q->error);
}

static int send_bytes(sendq *q, const void *data, size_t len);

/* The bytes the TLS engine has for the peer: sent before anything encrypted later. */
int sendq_flush_tls(sendq *q)
{
    if (q->error || !q->tls)
        return q->error;
    pgbuf_reset(&q->cipher);
    int rc = tls_take_output(q->tls, &q->cipher) < 0 ? UV_EPROTO : send_bytes(q, q->cipher.data, q->cipher.len);
    if (q->cipher.cap > SENDQ_KEEP_BYTES)
        pgbuf_free(&q->cipher);
    if (rc < 0 && !q->error)
        q->error = rc;
    return rc;
}

int sendq_send(sendq *q, const void *data, size_t len)
{
    if (!q->tls || q->error || len == 0)
        return send_bytes(q, data, len);
    pgbuf_reset(&q->cipher);
    int rc = tls_encrypt(q->tls, data, len, &q->cipher) < 0 ? UV_EPROTO : send_bytes(q, q->cipher.data, q->cipher.len);
    if (q->cipher.cap > SENDQ_KEEP_BYTES)
        pgbuf_free(&q->cipher);
    if (rc < 0 && !q->error)
        q->error = rc;
    return rc;
}

static int send_bytes(sendq *q, const void *data, size_t len)
{
    if (q->error)
        return q->error;
    if (len == 0)
        return 0;
    if (q->busy) {
        pgbuf_put(&q->pending, data, len);
        if (q->pending.failed)
            q->error = UV_ENOBUFS;
        return q->error;
    }
    uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);
    int n = uv_try_write(q->stream, &buf, 1);
    if (n == (int)len)
        return 0;
    if (n < 0 && n != UV_EAGAIN) {
        q->error = n;
        return n;
    }
    if (n < 0)
        n = 0;
    pgbuf_put(&q->inflight, (const char *)data + n, len - (size_t)n);
    if (q->inflight.failed) {
        q->error = UV_ENOBUFS;
        return q->error;
    }
    return start_write(q);
}
