/*
 * session: one client connection and its backend connection (session mode), relayed.
 *
 * State advances STARTUP → CONNECTING → AUTH → READY, then DRAINING → CLOSED:
 *  - STARTUP:    reading the startup packet; SSLRequest answered 'S' and TLS begun when
 *                the proxy has a certificate (else 'N'), GSSENCRequest answered 'N';
 *                a CancelRequest is looked up and forwarded, then the connection closed.
 *  - CONNECTING: client reads paused while the backend connection opens (and, unless the
 *                database's sslmode is disable or allow, negotiates TLS with SSLRequest).
 *  - AUTH:       the startup packet went to the database with the client's parameters;
 *                authentication is relayed message by message, except that
 *                SCRAM-SHA-256-PLUS is removed from AuthenticationSASL and the secret in
 *                BackendKeyData is replaced by the proxy's own (see cancel.h).
 *  - READY:      both directions stream through pgscan: only headers are read, bytes are
 *                forwarded as they came. A side is not read while the queue towards the
 *                other side is busy (backpressure).
 *  - DRAINING:   a final message is being flushed; then every handle is closed and the
 *                session freed.
 * Protocol violations by the client get FATAL 08P01, a lost database connection FATAL
 * 08006; a client that vanishes while its query runs gets that query cancelled.
 */
#ifndef APIGRES_SESSION_H
#define APIGRES_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "proxy/backend.h"
#include "proxy/cancel.h"
#include "proxy/pgwire.h"
#include "proxy/sendq.h"
#include "proxy/server.h"

/* TLS towards the database, while CONNECTING and after. */
enum db_tls {
    DB_TLS_NONE,      /* plain: sslmode disable/allow, a Unix socket, or prefer and refused */
    DB_TLS_ASKED,     /* SSLRequest sent, waiting for 'S' or 'N' */
    DB_TLS_HANDSHAKE, /* 'S': the handshake runs */
    DB_TLS_ON,
};

enum session_state {
    SESSION_STARTUP,
    SESSION_CONNECTING,
    SESSION_AUTH,
    SESSION_READY,
    SESSION_DRAINING,
    SESSION_CLOSED,
};

struct session {
    server *srv;
    session *prev, *next; /* srv->sessions */
    uint64_t id;
    enum session_state state;
    uv_tcp_t client;
    backend_conn backend;
    uv_timer_t timer; /* startup timeout, then drain timeout */
    sendq to_client;
    sendq to_server;
    pgscan from_client;
    pgscan from_server;
    pgbuf startup;       /* the startup packet as it arrives */
    cancel_entry cancel; /* the key the client was given */
    uint32_t backend_pid, backend_key;
    bool have_backend_key;
    int syncs_pending; /* Query/Sync/FunctionCall sent without ReadyForQuery back yet */
    char last_server_type;
    bool reading_client, reading_server;
    bool client_eof, server_eof, terminate_seen;
    int open_handles;
    uint64_t started_ms;
    /* the write path (write.h) */
    struct write_job *job;   /* owns the backend connection while set */
    struct repair *repairs;  /* records to re-apply when the client's transaction ends */
    struct query_run *run;   /* a Query of several statements, run one by one */
    struct write_ext *ext;   /* the extended protocol's write statements and portals */
    struct batch_run *brun;  /* an extended-protocol batch the write path is running */
    pgbuf batch;             /* extended-protocol messages held until Sync or Flush */
    bool batch_overflow;     /* the batch outgrew its cap: relayed as is until Sync */
    char tx_status;          /* of the last ReadyForQuery: 'I', 'T' or 'E' */
    pgbuf client_pending;    /* client bytes read but not scanned while the write path runs */
    pgbuf deferred_query;    /* a Query that may write, waiting for the backend to be idle */
    pgbuf client_held;       /* the write path's answers held for one write (session_hold_client) */
    bool holding_client;
    bool feeding;            /* inside relay_from_client */
    tls_conn *client_tls;  /* after the client's SSLRequest was answered 'S' */
    tls_conn *server_tls;
    enum db_tls db_tls;
    bool sasl_initial_due;  /* AuthenticationSASL went to the client: its answer is next */
    bool admitted;          /* counted in threads->admitted (max_client_conn) */
    bool dead_end;          /* came past the startup cap: refused at its StartupMessage */
    char peer[64];
    char user[64];
    char database[64];
};

/* Accepts a pending connection from listener; logs and drops it on failure. */
void session_accept(server *srv, uv_stream_t *listener);
/* The same for a client socket accepted on another loop (threads.h); fd is the session's. */
void session_adopt(server *srv, int fd);
/* A CancelRequest for pid and key, which client (a session of loop from) received: when a
 * session of srv's has that key, cancels its query and returns true. */
bool session_cancel(server *srv, uint64_t client, int from, uint32_t pid, uint32_t key);
/* Ends a session on behalf of the proxy (shutdown): the client gets FATAL with this
 * SQLSTATE and message where the protocol allows it, a running query is cancelled. */
void session_terminate(session *s, const char *sqlstate, const char *message);

/* For the write path: bytes to the backend / the client at a message boundary. Return 0
 * or -1 (the session is failing). */
int session_send_backend(session *s, const char *data, size_t len);
int session_send_client(session *s, const char *data, size_t len);
/* From session_hold_client on, session_send_client gathers its bytes, and
 * session_flush_client writes them in one go (a write path's ParseComplete, BindComplete and
 * NoData: one wake-up of the client, not three). For a stretch in which the session writes
 * nothing to the client but by session_send_client: one that runs without returning to the
 * loop, or a write job's, which ends by flushing (a job owns the session: the database's
 * messages go to it; what the session itself sends then ends the session). Flushing when
 * nothing is held does nothing. */
void session_hold_client(session *s);
int session_flush_client(session *s);
/* The write path is done with what it took: the client is read again. answered: a Query
 * or Sync of the client's was answered with ReadyForQuery. */
void session_write_done(session *s, bool answered);
/* The client's Query sql[0..len), which the write path held and found writes no synced
 * table, goes to the database as it came; its answers are relayed, and the client is read
 * again. */
void session_relay_query(session *s, const char *sql, size_t len);

#endif
