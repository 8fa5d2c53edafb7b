/* session: see session.h. */
#include "proxy/session.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/log.h"
#include "proxy/threads.h"
#include "proxy/write.h"

#define STARTUP_BUFFER_MAX (PGWIRE_STARTUP_MAX + SERVER_READ_BUFFER)
/* Held messages: authentication requests and key data during startup. */
#define HOLD_MAX 65536
/* A queue holds at most one read plus one held message (backpressure stops the rest). */
#define SENDQ_MAX (SERVER_READ_BUFFER + HOLD_MAX + 4096)
/* With the write path on, Query messages up to this size are held and classified; larger
 * ones are relayed (the database's guard refuses them if they write a synced table). */
#define QUERY_HOLD_MAX (1024 * 1024 + 8)
/* The largest read from the database gathered into one write to the client (on_server_read;
 * session_flush_client keeps a buffer of this size). */
#define GATHER_MAX 4096
/* How long a closing session waits for its last bytes to reach the client. */
#define DRAIN_TIMEOUT_MS 5000

static void session_close(session *s);
static void session_finish(session *s);
static void update_reading(session *s);
static void on_client_gone(session *s);
static void on_server_gone(session *s);

static atomic_uint_fast64_t next_session_id = 1; /* of every loop */

/* ---- small helpers */

static uint64_t now_ms(const session *s) { return uv_now(s->srv->loop); }

static void copy_name(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

/* Sends a proxy-made ErrorResponse to the client. Only call at a message boundary of the
 * server-to-client stream. */
static void send_client_error(session *s, const char *severity, const char *sqlstate,
                              const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void send_error_message(session *s, const char *severity, const char *sqlstate, const char *message,
                               const char *hint)
{
    pgbuf msg;
    pgbuf_init(&msg, 4096);
    pgwire_put_error_detail(&msg, severity, sqlstate, message, NULL, hint);
    if (!msg.failed)
        sendq_send(&s->to_client, msg.data, msg.len);
    pgbuf_free(&msg);
}

static void send_client_error(session *s, const char *severity, const char *sqlstate,
                              const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    send_error_message(s, severity, sqlstate, message, NULL);
}

/* FATAL to the client (if it can still be told), then close once it is flushed. */
static void arm_idle_timer(session *s);
static void fail_session(session *s, const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail_session(session *s, const char *sqlstate, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    log_warn("client %llu: %s (%s)", (unsigned long long)s->id, message, sqlstate);
    if (!s->client_eof && pgscan_at_boundary(&s->from_server))
        send_client_error(s, "FATAL", sqlstate, "%s", message);
    session_finish(s);
}

/* fail_session with a HINT saying what to do instead. */
static void fail_session_hint(session *s, const char *sqlstate, const char *hint, const char *message)
{
    log_warn("client %llu: %s (%s)", (unsigned long long)s->id, message, sqlstate);
    if (!s->client_eof && pgscan_at_boundary(&s->from_server))
        send_error_message(s, "FATAL", sqlstate, message, hint);
    session_finish(s);
}

/* Asks the database to cancel whatever this session's backend is running. */
static void cancel_backend_query(session *s)
{
    if (!s->have_backend_key || s->syncs_pending <= 0)
        return;
    STAT_ADD(s->srv->stats.cancels_total, 1);
    cancel_send(s->srv->loop, &s->srv->cfg->backend, s->backend_pid, s->backend_key);
}

/* Tells the backend the client is leaving, when the client's stream is at a boundary. */
static void send_server_terminate(session *s)
{
    static const char terminate[5] = {'X', 0, 0, 0, 4};
    if (s->state == SESSION_READY && !s->terminate_seen && pgscan_at_boundary(&s->from_client))
        sendq_send(&s->to_server, terminate, sizeof terminate);
    s->terminate_seen = true;
}

/* ---- closing */

static void session_handle_closed(session *s)
{
    if (--s->open_handles > 0)
        return;
    server *srv = s->srv;
    if (s->cancel.pid)
        cancel_map_remove(&srv->cancels, &s->cancel);
    pgbuf_free(&s->client_pending);
    pgbuf_free(&s->deferred_query);
    pgbuf_free(&s->client_held);
    pgbuf_free(&s->batch);
    if (s->prev)
        s->prev->next = s->next;
    else
        srv->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    STAT_ADD(srv->stats.clients_active, -1);
    atomic_fetch_sub(&srv->threads->connected, 1);
    if (s->admitted)
        atomic_fetch_sub(&srv->threads->admitted, 1);
    sendq_free(&s->to_client);
    sendq_free(&s->to_server);
    tls_free(s->client_tls);
    tls_free(s->server_tls);
    pgscan_free(&s->from_client);
    pgscan_free(&s->from_server);
    pgbuf_free(&s->startup);
    free(s);
    server_session_gone(srv);
}

static void on_handle_closed(uv_handle_t *h) { session_handle_closed(h->data); }

static void on_backend_closed(uv_handle_t *h)
{
    backend_conn *bc = h->data;
    session *s = bc->data;
    if (bc->connected)
        STAT_ADD(s->srv->stats.servers_active, -1);
    session_handle_closed(s);
}

static void session_close(session *s)
{
    if (s->state == SESSION_CLOSED)
        return;
    log_info("client %llu closed after %.3f s", (unsigned long long)s->id,
             (double)(now_ms(s) - s->started_ms) / 1000.0);
    s->state = SESSION_CLOSED;
    write_on_session_close(s);
    s->open_handles = 2;
    uv_close((uv_handle_t *)&s->client, on_handle_closed);
    uv_close((uv_handle_t *)&s->timer, on_handle_closed);
    if (backend_close(&s->backend, on_backend_closed))
        s->open_handles++;
}

static void on_drain_timeout(uv_timer_t *t)
{
    session *s = t->data;
    log_warn("client %llu: could not deliver final messages in time", (unsigned long long)s->id);
    session_close(s);
}

/* Stops reading, lets both queues flush, then closes. */
static void session_finish(session *s)
{
    if (s->state >= SESSION_DRAINING)
        return;
    s->state = SESSION_DRAINING;
    update_reading(s);
    if (!sendq_busy(&s->to_client) && !sendq_busy(&s->to_server)) {
        session_close(s);
        return;
    }
    uv_timer_start(&s->timer, on_drain_timeout, DRAIN_TIMEOUT_MS, 0);
}

void session_terminate(session *s, const char *sqlstate, const char *message)
{
    if (s->state >= SESSION_DRAINING)
        return;
    cancel_backend_query(s);
    send_server_terminate(s);
    fail_session(s, sqlstate, "%s", message);
}

/* ---- reading */

/* For client and backend streams alike: the buffer is the loop's (loop->data is the
 * server), not the handle's, whose data differs between the two kinds of stream. */
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    server *srv = h->loop->data;
    *buf = uv_buf_init(srv->read_buffer, sizeof srv->read_buffer);
}

static void on_client_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void on_server_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void update_reading(session *s)
{
    bool relaying = s->state == SESSION_AUTH || s->state == SESSION_READY;
    bool want_client = (s->state == SESSION_STARTUP || relaying) && !s->client_eof &&
                       !sendq_busy(&s->to_server) && !s->job && s->client_pending.len == 0 &&
                       s->deferred_query.len == 0;
    bool negotiating = s->db_tls == DB_TLS_ASKED || s->db_tls == DB_TLS_HANDSHAKE;
    bool want_server = (relaying || negotiating) && !s->server_eof && !sendq_busy(&s->to_client);

    if (want_client != s->reading_client) {
        if (want_client)
            uv_read_start((uv_stream_t *)&s->client, on_alloc, on_client_read);
        else
            uv_read_stop((uv_stream_t *)&s->client);
        s->reading_client = want_client;
    }
    if (s->backend.connected && want_server != s->reading_server) {
        if (want_server)
            uv_read_start(&s->backend.h.stream, on_alloc, on_server_read);
        else
            uv_read_stop(&s->backend.h.stream);
        s->reading_server = want_server;
    }
}

static void on_queue_drained(sendq *q, int status)
{
    session *s = q->data;
    if (s->state == SESSION_CLOSED)
        return;
    if (status < 0 && s->state < SESSION_DRAINING) {
        if (q == &s->to_client)
            on_client_gone(s);
        else
            on_server_gone(s);
    }
    if (s->state < SESSION_DRAINING) {
        update_reading(s);
        return;
    }
    /* draining: a failed queue counts as flushed, there is nothing more to wait for */
    if (s->state == SESSION_DRAINING && !sendq_busy(&s->to_client) && !sendq_busy(&s->to_server))
        session_close(s);
}

/* ---- client → server */

static bool is_frontend_type(char type)
{
    switch (type) {
    case 'B': case 'C': case 'c': case 'd': case 'D': case 'E': case 'f': case 'F':
    case 'H': case 'P': case 'p': case 'Q': case 'S': case 'X':
        return true;
    default:
        return false;
    }
}

static enum pgscan_verdict client_on_header(void *ctx, char type, uint32_t len)
{
    session *s = ctx;
    if (!is_frontend_type(type)) {
        fail_session(s, "08P01", "invalid frontend message type %d", (unsigned char)type);
        return PGSCAN_STOP;
    }
    if (len < 4) {
        fail_session(s, "08P01", "invalid message length %u", len);
        return PGSCAN_STOP;
    }
    if (len > s->srv->cfg->max_message_size) {
        fail_session(s, "08P01", "message of %u bytes exceeds max_message_size (%u)", len,
                     s->srv->cfg->max_message_size);
        return PGSCAN_STOP;
    }
    bool extended = type == 'P' || type == 'B' || type == 'D' || type == 'E' || type == 'C' ||
                    type == 'H' || type == 'S';
    switch (type) {
    case 'Q':
        STAT_ADD(s->srv->stats.queries_total, 1);
        s->syncs_pending++;
        if (write_enabled(&s->srv->writes) && len <= QUERY_HOLD_MAX - 8)
            return PGSCAN_HOLD;
        break;
    case 'E':
        STAT_ADD(s->srv->stats.queries_total, 1);
        break;
    case 'S':
    case 'F':
        s->syncs_pending++;
        break;
    case 'X':
        s->terminate_seen = true;
        break;
    case 'p':
        if (s->sasl_initial_due && s->db_tls == DB_TLS_ON && len <= HOLD_MAX)
            return PGSCAN_HOLD; /* see sasl_initial_response */
        s->sasl_initial_due = false;
        break;
    }
    if (extended && write_enabled(&s->srv->writes)) {
        /* held until Sync or Flush (write_batch); a batch too large to hold is relayed */
        if (!s->batch_overflow && s->batch.len + 1 + len <= QUERY_HOLD_MAX)
            return PGSCAN_HOLD;
        if (s->batch.len > 0) {
            if (sendq_send(&s->to_server, s->batch.data, s->batch.len) < 0)
                return PGSCAN_STOP;
            pgbuf_reset(&s->batch);
        }
        s->batch_overflow = type != 'S';
    }
    return PGSCAN_PASS;
}

static int client_on_pass(void *ctx, const char *data, size_t len)
{
    session *s = ctx;
    return sendq_send(&s->to_server, data, len);
}

/* How many answers may still be due when a deferred Query or batch can run. */
static int idle_pending(const pgbuf *held)
{
    char last = held->len >= 5 ? held->data[held->len - 5] : 'Q';
    return held->len > 0 && (held->data[0] == 'Q' || last == 'S') ? 1 : 0;
}

/* An extended-protocol message: held until Sync or Flush ends the batch. */
static int batch_message(session *s, const char *msg, size_t len)
{
    pgbuf_put(&s->batch, msg, len);
    if (s->batch.failed) { /* too large to hold: relay it all, and the rest of the batch */
        pgbuf_reset(&s->batch);
        return -1;
    }
    if (msg[0] != 'S' && msg[0] != 'H')
        return 0;
    pgbuf b = s->batch;
    pgbuf_init(&s->batch, QUERY_HOLD_MAX);
    int rc = 0;
    switch (write_batch(s, b.data, b.len, s->syncs_pending <= (msg[0] == 'S' ? 1 : 0))) {
    case WRITE_BATCH_RELAY:
        rc = sendq_send(&s->to_server, b.data, b.len) < 0 ? -1 : 0;
        break;
    case WRITE_BATCH_BUSY:
        pgbuf_reset(&s->deferred_query);
        pgbuf_put(&s->deferred_query, b.data, b.len);
        rc = s->deferred_query.failed ? -1 : 1;
        break;
    case WRITE_BATCH_TAKEN:
        rc = 1;
        break;
    }
    pgbuf_free(&b);
    return rc;
}

/* The client's SASLInitialResponse when the database connection uses TLS. A client on
 * TLS that was offered no SCRAM-SHA-256-PLUS says so with the gs2 flag 'y' ("I could bind,
 * the server cannot"); a database on TLS takes that for a downgrade attack and refuses it
 * with a puzzling message. The flag is covered by the client's proof, so it cannot be
 * changed on the way: say what to do instead. */
static int sasl_initial_response(session *s, const char *msg, size_t len)
{
    s->sasl_initial_due = false;
    pgread r;
    pgread_init(&r, msg + 5, len - 5);
    const char *mech = pgread_string(&r);
    uint32_t n = pgread_int32(&r);
    if (!r.failed && mech && strncmp(mech, "SCRAM-SHA-256", 13) == 0 && n != 0xffffffffu && n >= 1 &&
        pgread_remaining(&r) >= 1 && msg[5 + r.pos] == 'y') {
        fail_session_hint(s, "08P01",
                          "Connect with channel_binding=disable (TLS still protects both connections), or give "
                          "apigres the database's own certificate and key (tls_cert_file, tls_key_file).",
                          "SCRAM channel binding cannot pass through apigres when both of its connections use "
                          "TLS with different certificates");
        return -1;
    }
    return client_on_pass(s, msg, len);
}

/* A held Query: the write path's, or relayed. Positive pauses the client's scan. */
static int client_on_message(void *ctx, const char *msg, size_t len)
{
    session *s = ctx;
    if (msg[0] == 'p')
        return sasl_initial_response(s, msg, len);
    if (msg[0] != 'Q')
        return batch_message(s, msg, len);
    if (s->syncs_pending > 1) {
        /* earlier queries are still answering: the write path needs an idle backend */
        pgbuf_reset(&s->deferred_query);
        pgbuf_put(&s->deferred_query, msg, len);
        return s->deferred_query.failed ? -1 : 1;
    }
    if (write_query(s, msg + 5, strnlen(msg + 5, len - 5)))
        return 1;
    return client_on_pass(ctx, msg, len);
}

static const pgscan_ops client_ops = {client_on_header, client_on_pass, client_on_message};

/* Feeds bytes from the client to the relay and handles the outcome. When the write path
 * takes a Query, the rest of the bytes wait in client_pending until it is done. */
static void relay_from_client(session *s, const char *data, size_t len)
{
    int rc;
    s->feeding = true;
    for (;;) {
        rc = pgscan_feed(&s->from_client, &client_ops, s, data, len);
        if (rc != PGSCAN_PAUSED || s->state >= SESSION_DRAINING)
            break;
        size_t used = s->from_client.paused_at;
        if (s->job || s->deferred_query.len > 0) {
            if (used < len) {
                pgbuf rest;
                pgbuf_init(&rest, SERVER_READ_BUFFER * 2);
                pgbuf_put(&rest, data + used, len - used);
                pgbuf_free(&s->client_pending);
                s->client_pending = rest;
            }
            rc = PGSCAN_OK;
            break;
        }
        data += used; /* the write path answered at once: go on with the rest */
        len -= used;
    }
    s->feeding = false;
    if (s->state >= SESSION_DRAINING)
        return;
    if (s->to_server.error) {
        on_server_gone(s);
        return;
    }
    if (rc == PGSCAN_TOO_LARGE || rc == PGSCAN_BAD_LENGTH) {
        fail_session(s, "08P01", "invalid message from client");
        return;
    }
    update_reading(s);
}

/* ---- server → client */

/* client_idle_timeout: a logged-in client that sends nothing for that long while no query
 * runs and no transaction is open is told so and disconnected, as Postgres's
 * idle_session_timeout does. Any read from the client starts the time again. */
static void on_idle_timeout(uv_timer_t *t)
{
    session *s = t->data;
    if (s->state != SESSION_READY)
        return;
    if (s->syncs_pending > 0 || s->job || s->tx_status != 'I') {
        arm_idle_timer(s); /* busy or in a transaction: not idle in that sense */
        return;
    }
    log_info("client %llu: idle for %.0f s: disconnected", (unsigned long long)s->id,
             s->srv->cfg->client_idle_timeout);
    session_terminate(s, "57P05", "terminating connection due to idle-session timeout");
}

static void arm_idle_timer(session *s)
{
    if (s->srv->cfg->client_idle_timeout > 0 && s->state == SESSION_READY)
        uv_timer_start(&s->timer, on_idle_timeout, (uint64_t)(s->srv->cfg->client_idle_timeout * 1000), 0);
}

/* Whether ReadyForQuery is held to read the transaction status from it: when something
 * depends on it. */
static bool status_needed(const session *s)
{
    return write_enabled(&s->srv->writes) || s->srv->cfg->client_idle_timeout > 0;
}

static enum pgscan_verdict server_on_header(void *ctx, char type, uint32_t len)
{
    session *s = ctx;
    if (len < 4) {
        log_error("client %llu: invalid message from the database (type %d, length %u)",
                  (unsigned long long)s->id, (unsigned char)type, len);
        send_server_terminate(s);
        fail_session(s, "08006", "invalid message from the database server");
        return PGSCAN_STOP;
    }
    if (s->job)
        return PGSCAN_HOLD; /* the write path's own queries */
    s->last_server_type = type;
    if (type == 'Z') {
        if (s->syncs_pending > 0)
            s->syncs_pending--;
        if (s->state == SESSION_AUTH) {
            s->state = SESSION_READY;
            uv_timer_stop(&s->timer);
            arm_idle_timer(s);
            pgbuf_free(&s->from_server.hold);
            log_info("client %llu: session ready (user=%s database=%s)",
                     (unsigned long long)s->id, s->user, s->database);
        }
        return status_needed(s) ? PGSCAN_HOLD : PGSCAN_PASS;
    }
    if (s->state == SESSION_AUTH && (type == 'R' || type == 'K'))
        return PGSCAN_HOLD;
    return PGSCAN_PASS;
}

/* Relayed bytes towards the client: gathered while on_server_read holds them. */
static int relay_to_client(session *s, const char *data, size_t len)
{
    return s->holding_client ? session_send_client(s, data, len) : sendq_send(&s->to_client, data, len);
}

static int server_on_pass(void *ctx, const char *data, size_t len) { return relay_to_client(ctx, data, len); }

/* AuthenticationSASL without SCRAM-SHA-256-PLUS: channel binding cannot work through a
 * proxy that terminates the client's connection, unless apigres offers clients the very
 * certificate the database offered it (tls-server-end-point binds to a hash of it). */
static int send_sasl_without_plus(session *s, const char *msg, size_t len)
{
    if (s->client_tls && s->server_tls && tls_same_certificate(s->client_tls, s->server_tls))
        return sendq_send(&s->to_client, msg, len);
    pgread r;
    pgread_init(&r, msg + 9, len - 9);
    pgbuf out;
    pgbuf_init(&out, HOLD_MAX);
    size_t start = pgbuf_begin_message(&out, 'R');
    pgbuf_put_int32(&out, PGWIRE_AUTH_SASL);
    for (;;) {
        const char *mech = pgread_string(&r);
        if (!mech || mech[0] == '\0')
            break;
        if (strcmp(mech, "SCRAM-SHA-256-PLUS") != 0)
            pgbuf_put_string(&out, mech);
    }
    pgbuf_put_byte(&out, 0);
    pgbuf_end_message(&out, start);
    int rc = r.failed || out.failed ? -1 : sendq_send(&s->to_client, out.data, out.len);
    pgbuf_free(&out);
    return rc;
}

static void run_deferred_query(session *s);

static int server_on_message(void *ctx, const char *msg, size_t len)
{
    session *s = ctx;
    if (s->job)
        return write_on_backend_message(s, msg, len);
    if (msg[0] == 'Z' && len >= 6) {
        s->tx_status = msg[5];
        if (relay_to_client(s, msg, len) < 0)
            return -1;
        write_on_ready(s, s->tx_status);
        if (s->deferred_query.len > 0 && s->syncs_pending == idle_pending(&s->deferred_query))
            run_deferred_query(s);
        return 0;
    }
    if (msg[0] == 'R' && len >= 9 && pgwire_get_int32(msg + 5) == PGWIRE_AUTH_SASL) {
        s->sasl_initial_due = true;
        return send_sasl_without_plus(s, msg, len);
    }
    if (msg[0] == 'K' && len == 13) {
        s->backend_pid = pgwire_get_int32(msg + 5);
        s->backend_key = pgwire_get_int32(msg + 9);
        s->have_backend_key = true;
        if (!s->cancel.pid && cancel_map_add(&s->srv->cancels, &s->cancel, s->backend_pid) < 0) {
            log_error("client %llu: no randomness for a cancel key", (unsigned long long)s->id);
            return -1;
        }
        char key[13] = {'K', 0, 0, 0, 12};
        pgwire_set_int32(key + 5, s->cancel.pid);
        pgwire_set_int32(key + 9, s->cancel.key);
        return sendq_send(&s->to_client, key, sizeof key);
    }
    return sendq_send(&s->to_client, msg, len);
}

static const pgscan_ops server_ops = {server_on_header, server_on_pass, server_on_message};

static void backend_ready(session *s);

/* TLS towards the database: the answer to the SSLRequest, the handshake, then decryption.
 * Returns true with *data and *len replaced by plaintext to relay, false when there is none
 * (or the session failed). */
static bool server_tls_input(session *s, const char **data, size_t *len)
{
    const config *cfg = s->srv->cfg;
    if (s->db_tls == DB_TLS_ASKED) {
        char answer = (*data)[0];
        if (answer == 'S' && *len == 1) {
            bool full = strcmp(cfg->db_sslmode, "verify-full") == 0;
            s->server_tls = tls_connect(s->srv->tls_database, cfg->db_sslhost, full);
            if (!s->server_tls) {
                fail_session(s, "53200", "out of memory");
                return false;
            }
            s->to_server.tls = s->server_tls;
            s->db_tls = DB_TLS_HANDSHAKE;
            if (sendq_flush_tls(&s->to_server) < 0)
                on_server_gone(s);
            return false;
        }
        if (answer == 'N' && *len == 1 && strcmp(cfg->db_sslmode, "prefer") == 0) {
            s->db_tls = DB_TLS_NONE;
            backend_ready(s);
        } else if (answer == 'N' && *len == 1) {
            fail_session(s, "08001", "server does not support SSL, but SSL was required (sslmode %s)",
                         cfg->db_sslmode);
        } else {
            fail_session(s, "08P01", "received invalid response to SSL negotiation from the database");
        }
        return false;
    }
    pgbuf *plain = &s->srv->tls_plain;
    pgbuf_reset(plain);
    int rc = tls_feed(s->server_tls, *data, *len, plain);
    if (rc == 0)
        rc = sendq_flush_tls(&s->to_server);
    if (rc < 0) {
        if (s->db_tls == DB_TLS_HANDSHAKE) {
            fail_session(s, "08001", "SSL connection to the database server at %s failed: %s",
                         config_database_label(cfg), tls_error(s->server_tls));
        } else {
            log_error("client %llu: %s", (unsigned long long)s->id, tls_error(s->server_tls));
            on_server_gone(s);
        }
        return false;
    }
    if (s->db_tls == DB_TLS_HANDSHAKE && tls_established(s->server_tls)) {
        char how[128];
        log_debug("client %llu: database connection uses %s", (unsigned long long)s->id,
                  tls_describe(s->server_tls, how, sizeof how));
        s->db_tls = DB_TLS_ON;
        backend_ready(s);
    }
    *data = plain->data;
    *len = plain->len;
    return *len > 0 && s->state < SESSION_DRAINING;
}

static void on_server_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    backend_conn *bc = stream->data;
    session *s = bc->data;
    if (s->state >= SESSION_DRAINING)
        return;
    if (nread < 0) {
        on_server_gone(s);
        return;
    }
    STAT_ADD(s->srv->stats.bytes_server, (unsigned long long)nread);
    const char *data = buf->base;
    size_t len = (size_t)nread;
    if (s->db_tls != DB_TLS_NONE && !server_tls_input(s, &data, &len))
        return;
    /* A held ReadyForQuery would go to the client in a write of its own after what came
     * before it: a small read is gathered and written once (a large one goes through
     * uncopied, the extra write then a small part of its cost). */
    bool gather = len <= GATHER_MAX && !s->job && !s->holding_client && status_needed(s);
    if (gather)
        session_hold_client(s);
    int rc = pgscan_feed(&s->from_server, &server_ops, s, data, len);
    if (s->state >= SESSION_DRAINING)
        return;
    if (gather && s->holding_client)
        session_flush_client(s); /* a failure is the queue's error, seen below */
    if (s->to_client.error) {
        on_client_gone(s);
        return;
    }
    if (rc != PGSCAN_OK) {
        log_error("client %llu: invalid message from the database", (unsigned long long)s->id);
        send_server_terminate(s);
        session_finish(s); /* mid-message: the client cannot be told more */
        return;
    }
    update_reading(s);
}

/* The database side closed or failed. */
static void on_server_gone(session *s)
{
    if (s->state >= SESSION_DRAINING)
        return;
    s->server_eof = true;
    if (s->terminate_seen || s->client_eof) {
        session_finish(s);
        return;
    }
    /* After its own FATAL ErrorResponse the database closes; the client already knows. */
    if (s->last_server_type == 'E') {
        log_info("client %llu: database closed the connection after an error",
                 (unsigned long long)s->id);
        session_finish(s);
        return;
    }
    fail_session(s, "08006", "connection to the database server was lost");
}

/* The client closed or failed. */
static void on_client_gone(session *s)
{
    if (s->state >= SESSION_DRAINING)
        return;
    s->client_eof = true;
    if (!s->terminate_seen)
        log_info("client %llu: client disconnected%s", (unsigned long long)s->id,
                 s->syncs_pending > 0 ? " during a query: cancelling it" : "");
    if (!s->terminate_seen)
        cancel_backend_query(s);
    send_server_terminate(s);
    session_finish(s);
}

/* ---- startup */

static void on_backend_connected(backend_conn *bc, int status)
{
    session *s = bc->data;
    if (s->state != SESSION_CONNECTING)
        return; /* closing: nothing to do */
    if (status < 0) {
        fail_session(s, "08001", "could not connect to the database server at %s: %s",
                     config_database_label(s->srv->cfg), uv_strerror(status));
        return;
    }
    STAT_ADD(s->srv->stats.servers_active, 1);
    sendq_init(&s->to_server, &bc->h.stream, SENDQ_MAX, on_queue_drained, s);
    if (s->srv->tls_database && !s->srv->cfg->backend.is_unix) {
        static const char ssl_request[8] = {0, 0, 0, 8, 0x04, (char)0xd2, 0x16, 0x2f};
        s->db_tls = DB_TLS_ASKED;
        if (sendq_send(&s->to_server, ssl_request, sizeof ssl_request) < 0)
            on_server_gone(s);
        else
            update_reading(s);
        return;
    }
    backend_ready(s);
}

/* The database connection is open (and encrypted when it is to be): log in. */
static void backend_ready(session *s)
{
    s->state = SESSION_AUTH;
    uint32_t len = pgwire_startup_length(s->startup.data, s->startup.len);
    if (sendq_send(&s->to_server, s->startup.data, len) < 0) {
        on_server_gone(s);
        return;
    }
    pgbuf_consume(&s->startup, len);
    if (s->startup.len > 0)
        relay_from_client(s, s->startup.data, s->startup.len);
    pgbuf_free(&s->startup);
    if (s->state == SESSION_AUTH)
        update_reading(s);
}

bool session_cancel(server *srv, uint64_t client, int from, uint32_t pid, uint32_t key)
{
    cancel_entry *e = cancel_map_find(&srv->cancels, pid, key);
    if (!e)
        return false;
    session *target = (session *)((char *)e - offsetof(session, cancel));
    if (from == srv->index)
        log_info("client %llu: cancel request for client %llu", (unsigned long long)client,
                 (unsigned long long)target->id);
    else
        log_info("client %llu: cancel request for client %llu (passed from thread %d to thread %d)",
                 (unsigned long long)client, (unsigned long long)target->id, from + 1, srv->index + 1);
    STAT_ADD(srv->stats.cancels_total, 1);
    if (!write_cancel(target))
        cancel_send(srv->loop, &srv->cfg->backend, target->backend_pid, target->backend_key);
    return true;
}

static void handle_cancel_request(session *s, const pgwire_startup *st)
{
    if (session_cancel(s->srv, s->id, s->srv->index, st->cancel_pid, st->cancel_key))
        return;
    if (s->srv->threads->n > 1)
        threads_offer_cancel(s->srv, s->id, st->cancel_pid, st->cancel_key);
    else
        log_info("client %llu: cancel request with an unknown key", (unsigned long long)s->id);
}

/* Consumes complete startup packets from s->startup; returns when more bytes are needed
 * or the session has moved on. */
static void process_startup(session *s)
{
    while (s->state == SESSION_STARTUP) {
        if (s->startup.len < 4)
            return;
        uint32_t len = pgwire_startup_length(s->startup.data, s->startup.len);
        if (len < 8 || len > PGWIRE_STARTUP_MAX) {
            fail_session(s, "08P01", "invalid length of startup packet");
            return;
        }
        if (s->startup.len < len)
            return;
        pgwire_startup st;
        int rc = pgwire_parse_startup(s->startup.data, len, &st);
        if (rc == PGWIRE_STARTUP_BAD_LENGTH) {
            fail_session(s, "08P01", "invalid length of startup packet");
            return;
        }
        if (rc == PGWIRE_STARTUP_MALFORMED) {
            fail_session(s, "08P01", "invalid startup packet layout: expected terminator as last byte");
            return;
        }
        if (st.code == PGWIRE_SSL_REQUEST && s->client_tls) {
            fail_session(s, "08P01", "SSL request on a connection that is encrypted already");
            return;
        }
        if (st.code == PGWIRE_SSL_REQUEST && s->srv->tls_clients) {
            pgbuf_consume(&s->startup, len);
            if (s->startup.len > 0) { /* what came with it was not encrypted: refuse it */
                fail_session(s, "08P01", "received unencrypted data after SSL request");
                return;
            }
            sendq_send(&s->to_client, "S", 1);
            if (!(s->client_tls = tls_accept(s->srv->tls_clients))) {
                session_finish(s);
                return;
            }
            s->to_client.tls = s->client_tls;
            return;
        }
        if (st.code == PGWIRE_SSL_REQUEST || st.code == PGWIRE_GSSENC_REQUEST) {
            pgbuf_consume(&s->startup, len);
            sendq_send(&s->to_client, "N", 1);
            continue;
        }
        if (st.code == PGWIRE_CANCEL_REQUEST) {
            handle_cancel_request(s, &st);
            session_finish(s);
            return;
        }
        if (st.code >> 16 != 3) {
            fail_session(s, "0A000", "unsupported frontend protocol %u.%u: server supports 3.0 to 3.0",
                         st.code >> 16, st.code & 0xffff);
            return;
        }
        copy_name(s->user, sizeof s->user, st.user);
        copy_name(s->database, sizeof s->database, st.database ? st.database : st.user);
        if (s->dead_end) {
            fail_session(s, "53300", "sorry, too many clients already");
            return;
        }
        if (atomic_fetch_add(&s->srv->threads->admitted, 1) >= s->srv->cfg->max_client_conn) {
            atomic_fetch_sub(&s->srv->threads->admitted, 1);
            fail_session(s, "53300", "sorry, too many clients already");
            return;
        }
        s->admitted = true;
        if (s->srv->cfg->tls_required && !s->client_tls) {
            /* what Postgres says when only hostssl lines match */
            char host[64];
            snprintf(host, sizeof host, "%s", s->peer);
            char *colon = strrchr(host, ':');
            if (colon)
                *colon = '\0';
            fail_session(s, "28000", "no pg_hba.conf entry for host \"%s\", user \"%s\", database \"%s\", no encryption",
                         host, s->user, s->database);
            return;
        }
        log_info("client %llu: login user=%s database=%s application=%s", (unsigned long long)s->id,
                 s->user, s->database, st.application_name ? st.application_name : "");
        s->state = SESSION_CONNECTING;
        update_reading(s);
        int crc = backend_connect(s->srv->loop, &s->backend, &s->srv->cfg->backend,
                                  on_backend_connected, s);
        if (crc < 0)
            fail_session(s, "08001", "could not connect to the database server at %s: %s",
                         config_database_label(s->srv->cfg), uv_strerror(crc));
        return;
    }
}

static void on_client_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    session *s = stream->data;
    if (s->state >= SESSION_DRAINING)
        return;
    if (nread < 0) {
        on_client_gone(s);
        return;
    }
    STAT_ADD(s->srv->stats.bytes_client, (unsigned long long)nread);
    const char *data = buf->base;
    size_t len = (size_t)nread;
    if (s->client_tls) {
        pgbuf *plain = &s->srv->tls_plain;
        pgbuf_reset(plain);
        bool was_established = tls_established(s->client_tls);
        int rc = tls_feed(s->client_tls, data, len, plain);
        if (rc == 0)
            rc = sendq_flush_tls(&s->to_client);
        if (rc < 0) {
            log_info("client %llu: %s", (unsigned long long)s->id, tls_error(s->client_tls));
            on_client_gone(s);
            return;
        }
        if (!was_established && tls_established(s->client_tls)) {
            char how[128];
            log_debug("client %llu: uses %s", (unsigned long long)s->id,
                      tls_describe(s->client_tls, how, sizeof how));
        }
        data = plain->data;
        len = plain->len;
        if (len == 0)
            return;
    }
    if (s->state == SESSION_READY)
        arm_idle_timer(s);
    if (s->state == SESSION_STARTUP) {
        pgbuf_put(&s->startup, data, len);
        if (s->startup.failed) {
            fail_session(s, "08P01", "invalid length of startup packet");
            return;
        }
        process_startup(s);
        return;
    }
    relay_from_client(s, data, len);
}

static void on_startup_timeout(uv_timer_t *t)
{
    session *s = t->data;
    fail_session(s, "08P01", "canceling authentication due to timeout");
}

/* ---- the write path's side */

int session_send_backend(session *s, const char *data, size_t len)
{
    return sendq_send(&s->to_server, data, len);
}

int session_send_client(session *s, const char *data, size_t len)
{
    if (s->client_eof)
        return 0;
    if (!s->holding_client)
        return sendq_send(&s->to_client, data, len);
    pgbuf_put(&s->client_held, data, len);
    return s->client_held.failed ? -1 : 0;
}

void session_hold_client(session *s) { s->holding_client = true; }

int session_flush_client(session *s)
{
    s->holding_client = false;
    if (s->client_held.len == 0 && !s->client_held.failed)
        return 0;
    int rc = s->client_held.failed ? -1 : session_send_client(s, s->client_held.data, s->client_held.len);
    pgbuf_reset(&s->client_held);
    if (s->client_held.cap > 4096)
        pgbuf_free(&s->client_held); /* a RowDescription or an error, once: not worth keeping */
    return rc;
}

static void resume_client(session *s);

/* The deferred Query, now that the backend is idle: the write path's or relayed. */
static void run_deferred_query(session *s)
{
    pgbuf q = s->deferred_query;
    pgbuf_init(&s->deferred_query, QUERY_HOLD_MAX);
    bool taken = q.data[0] == 'Q' ? write_query(s, q.data + 5, strnlen(q.data + 5, q.len - 5))
                                  : write_batch(s, q.data, q.len, true) == WRITE_BATCH_TAKEN;
    if (!taken)
        sendq_send(&s->to_server, q.data, q.len);
    pgbuf_free(&q);
    if (!taken)
        resume_client(s);
}

void session_relay_query(session *s, const char *sql, size_t len)
{
    pgbuf q;
    pgbuf_init(&q, (size_t)1 << 30);
    size_t at = pgbuf_begin_message(&q, 'Q');
    pgbuf_put(&q, sql, len);
    pgbuf_put_byte(&q, 0);
    pgbuf_end_message(&q, at);
    if (q.failed) {
        pgbuf_free(&q);
        session_terminate(s, "53200", "out of memory");
        return;
    }
    sendq_send(&s->to_server, q.data, q.len);
    pgbuf_free(&q);
    resume_client(s);
}

void session_write_done(session *s, bool answered)
{
    if (answered && s->syncs_pending > 0)
        s->syncs_pending--;
    resume_client(s);
}

/* Reads the client again, starting with the bytes that waited. */
static void resume_client(session *s)
{
    if (s->state >= SESSION_DRAINING)
        return;
    if (s->job || s->feeding) /* relay_from_client goes on by itself */
        return;
    if (s->client_pending.len > 0) {
        pgbuf rest = s->client_pending;
        pgbuf_init(&s->client_pending, SERVER_READ_BUFFER * 2);
        relay_from_client(s, rest.data, rest.len);
        pgbuf_free(&rest);
        return;
    }
    update_reading(s);
}

/* A session for a connection not yet accepted into s->client; NULL when out of memory. */
static session *session_new(server *srv)
{
    session *s = calloc(1, sizeof *s);
    if (!s) {
        log_error("out of memory accepting a client");
        return NULL;
    }
    s->srv = srv;
    s->id = atomic_fetch_add(&next_session_id, 1);
    s->started_ms = uv_now(srv->loop);
    uv_tcp_init(srv->loop, &s->client);
    uv_timer_init(srv->loop, &s->timer);
    s->client.data = s;
    s->timer.data = s;
    sendq_init(&s->to_client, (uv_stream_t *)&s->client, SENDQ_MAX, on_queue_drained, s);
    bool writes = write_enabled(&srv->writes);
    pgscan_init(&s->from_client, writes ? QUERY_HOLD_MAX : HOLD_MAX);
    /* the write path reads its plan's rows whole */
    pgscan_init(&s->from_server, writes ? QUERY_HOLD_MAX : HOLD_MAX);
    pgbuf_init(&s->client_pending, SERVER_READ_BUFFER * 2);
    pgbuf_init(&s->deferred_query, QUERY_HOLD_MAX);
    pgbuf_init(&s->client_held, QUERY_HOLD_MAX);
    pgbuf_init(&s->batch, QUERY_HOLD_MAX);
    pgbuf_init(&s->startup, STARTUP_BUFFER_MAX);
    s->next = srv->sessions;
    if (s->next)
        s->next->prev = s;
    srv->sessions = s;
    STAT_ADD(srv->stats.clients_active, 1);
    STAT_ADD(srv->stats.clients_total, 1);
    atomic_fetch_add(&srv->threads->connected, 1);
    return s;
}

/* The client's socket is s->client's now. */
static void session_begin(session *s)
{
    server *srv = s->srv;
    uv_tcp_nodelay(&s->client, 1);
    struct sockaddr_storage addr;
    int alen = sizeof addr;
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (uv_tcp_getpeername(&s->client, (struct sockaddr *)&addr, &alen) == 0) {
        if (addr.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&addr, host, sizeof host);
            port = ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
        } else {
            uv_ip4_name((struct sockaddr_in *)&addr, host, sizeof host);
            port = ntohs(((struct sockaddr_in *)&addr)->sin_port);
        }
    }
    snprintf(s->peer, sizeof s->peer, "%s:%d", host, port);
    log_info("client %llu: connected from %s", (unsigned long long)s->id, s->peer);

    /* max_client_conn counts logged-in clients (process_startup), as Postgres counts
     * backends: SSL negotiation and CancelRequests must still get through when it is
     * reached. Connections still in their startup may number as many again. Past that a
     * connection is refused at its StartupMessage, as Postgres refuses one past its
     * children's limit (a "dead end"): an SSLRequest is answered first, for libpq takes an
     * error in its place for an attack and shows none of it. Past twice that, a flood, it is
     * refused at once, unread. */
    long long connected = atomic_load(&srv->threads->connected);
    if (connected > 4LL * srv->cfg->max_client_conn) {
        fail_session(s, "53300", "sorry, too many clients already");
        return;
    }
    s->dead_end = connected > 2LL * srv->cfg->max_client_conn;
    uv_timer_start(&s->timer, on_startup_timeout, (uint64_t)(srv->cfg->startup_timeout * 1000), 0);
    update_reading(s);
}

void session_accept(server *srv, uv_stream_t *listener)
{
    session *s = session_new(srv);
    if (!s)
        return;
    if (uv_accept(listener, (uv_stream_t *)&s->client) < 0) {
        session_close(s);
        return;
    }
    session_begin(s);
}

void session_adopt(server *srv, int fd)
{
    session *s = session_new(srv);
    if (!s) {
        close(fd);
        return;
    }
    int rc = uv_tcp_open(&s->client, fd);
    if (rc < 0) {
        log_warn("cannot take over a client connection: %s", uv_strerror(rc));
        close(fd);
        session_close(s);
        return;
    }
    session_begin(s);
}
