/*
 * sendq: writes bytes to a libuv stream without owning the caller's buffer.
 *
 * sendq_send first tries a direct non-blocking write (the common case: the whole buffer is
 * gone when it returns and nothing was copied). Whatever the socket did not take is copied
 * into the queue and written asynchronously; while that is under way the queue is "busy"
 * and the caller applies backpressure by not reading the peer that feeds it. Memory per
 * queue is therefore bounded by what one read can produce plus a held message; the
 * buffers are released when the queue drains so idle sessions hold none. With TLS the
 * queue holds ciphertext: the bound applies to what goes on the wire.
 */
#ifndef APIGRES_SENDQ_H
#define APIGRES_SENDQ_H

#include <stdbool.h>
#include <uv.h>

#include "proxy/pgwire.h"
#include "proxy/tls.h"

typedef struct sendq sendq;
/* Runs when a busy queue has written everything (status 0) or failed (status < 0). */
typedef void (*sendq_drained_cb)(sendq *q, int status);

struct sendq {
    uv_stream_t *stream;
    uv_write_t req;
    pgbuf inflight; /* bytes being written by req */
    pgbuf pending;  /* bytes queued behind them */
    bool busy;
    int error; /* first write error, sticky */
    sendq_drained_cb drained;
    void *data;
    tls_conn *tls;  /* when set (borrowed), sendq_send encrypts before queueing */
    pgbuf cipher;   /* scratch for the ciphertext of one send */
};

/* max bounds the bytes a queue may hold; a send past it fails with UV_ENOBUFS. */
void sendq_init(sendq *q, uv_stream_t *stream, size_t max, sendq_drained_cb drained, void *data);
void sendq_free(sendq *q);
/* Returns 0 or a negative libuv error (sticky: later sends return it too); a TLS failure
 * is UV_EPROTO (tls_error says more). */
int sendq_send(sendq *q, const void *data, size_t len);
/* Queues what q->tls has to send by itself (handshake, alerts); 0 or an error as above. */
int sendq_flush_tls(sendq *q);
static inline bool sendq_busy(const sendq *q) { return q->busy; }

#endif
