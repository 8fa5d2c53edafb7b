/*
 * pgwire: the PostgreSQL v3 message codec shared by the relay, tests and fuzzers.
 *
 *  - pgbuf:  a growable byte buffer with a hard cap. Writes that would pass the cap mark
 *            the buffer failed and become no-ops (sticky failure); callers check once.
 *  - pgread: a bounds-checked reader over borrowed bytes; reading past the end marks it
 *            failed and returns zero values, never reads out of bounds.
 *  - pgscan: an incremental scanner for a stream of typed messages. It reads only the
 *            5-byte headers and hands the caller runs of bytes to pass through unchanged,
 *            or, for the message types the caller asks to hold, each whole message.
 *            A read may end anywhere, even inside a header.
 *  - builders for the messages the proxy writes itself (ErrorResponse, ...) and a parser
 *    for the untyped startup packet.
 */
#ifndef APIGRES_PGWIRE_H
#define APIGRES_PGWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PGWIRE_HEADER_LEN 5
#define PGWIRE_STARTUP_MAX 10000 /* as PostgreSQL's MAX_STARTUP_PACKET_LENGTH */
#define PGWIRE_PROTOCOL_3_0 196608u /* 3 << 16 */
#define PGWIRE_CANCEL_REQUEST 80877102u
#define PGWIRE_SSL_REQUEST 80877103u
#define PGWIRE_GSSENC_REQUEST 80877104u
#define PGWIRE_AUTH_SASL 10u

/* ---- pgbuf */
typedef struct pgbuf {
    char *data;
    size_t len;
    size_t cap;
    size_t max; /* hard cap on len */
    bool failed;
} pgbuf;

void pgbuf_init(pgbuf *b, size_t max);
void pgbuf_free(pgbuf *b);
/* Empties the buffer and clears a failure; keeps the allocation. */
void pgbuf_reset(pgbuf *b);
/* Keeps the first len bytes (len <= b->len) and clears a failure: undoes the puts since. */
void pgbuf_truncate(pgbuf *b, size_t len);
void pgbuf_put(pgbuf *b, const void *data, size_t len);
void pgbuf_put_byte(pgbuf *b, uint8_t v);
void pgbuf_put_int16(pgbuf *b, uint16_t v);
void pgbuf_put_int32(pgbuf *b, uint32_t v);
void pgbuf_put_string(pgbuf *b, const char *s); /* with its NUL */
/* Starts a typed message; returns the offset to pass to pgbuf_end_message. */
size_t pgbuf_begin_message(pgbuf *b, char type);
/* Fills in the length of the message started at offset start. */
void pgbuf_end_message(pgbuf *b, size_t start);
/* Removes the first n bytes. */
void pgbuf_consume(pgbuf *b, size_t n);

/* ---- pgread */
typedef struct pgread {
    const char *data; /* borrowed */
    size_t len;
    size_t pos;
    bool failed;
} pgread;

void pgread_init(pgread *r, const void *data, size_t len);
uint8_t pgread_byte(pgread *r);
uint16_t pgread_int16(pgread *r);
uint32_t pgread_int32(pgread *r);
/* A NUL-terminated string inside the buffer, or NULL (and failed) if unterminated. */
const char *pgread_string(pgread *r);
size_t pgread_remaining(const pgread *r);

uint32_t pgwire_get_int32(const void *p);
void pgwire_set_int32(void *p, uint32_t v);

/* ---- messages the proxy writes itself */
/* ErrorResponse (or NoticeResponse with type 'N') with S, V, C and M fields. */
void pgwire_put_error(pgbuf *b, const char *severity, const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void pgwire_put_error_detail(pgbuf *b, const char *severity, const char *sqlstate,
                             const char *message, const char *detail, const char *hint);
/* The field 'code' of an ErrorResponse/NoticeResponse body, or NULL. Borrowed. */
const char *pgwire_error_field(const char *body, size_t len, char code);

/* ---- the startup packet (length-prefixed, untyped) */
typedef struct pgwire_startup {
    uint32_t code; /* protocol version, or one of the request codes above */
    /* CancelRequest */
    uint32_t cancel_pid;
    uint32_t cancel_key;
    /* StartupMessage: borrowed from the packet; NULL when absent */
    const char *user;
    const char *database;
    const char *application_name;
    int nparams;
} pgwire_startup;

enum pgwire_startup_status {
    PGWIRE_STARTUP_OK = 0,
    PGWIRE_STARTUP_BAD_LENGTH = -1,  /* shorter than 8 or longer than PGWIRE_STARTUP_MAX */
    PGWIRE_STARTUP_MALFORMED = -2,   /* parameters not a list of NUL-terminated pairs */
};
/* Length of the startup packet at the start of data, or 0 if fewer than 4 bytes. */
uint32_t pgwire_startup_length(const char *data, size_t len);
/* Parses one complete startup packet (length prefix included). */
int pgwire_parse_startup(const char *packet, size_t len, pgwire_startup *out);

/* ---- pgscan */
enum pgscan_verdict { PGSCAN_PASS, PGSCAN_HOLD, PGSCAN_STOP };

typedef struct pgscan_ops {
    /* Called once per message header (len is the length field, header not included in the
     * count of 5). Returns PASS to stream the body, HOLD to get the whole message in
     * on_message, STOP to abandon the stream (the callback reported why). */
    enum pgscan_verdict (*on_header)(void *ctx, char type, uint32_t len);
    /* A run of bytes to forward unchanged; nonzero stops the scan. */
    int (*on_pass)(void *ctx, const char *data, size_t len);
    /* A whole held message, header included; negative stops the scan, positive pauses it
     * after this message (pgscan_feed returns PGSCAN_PAUSED; feed the rest later). */
    int (*on_message)(void *ctx, const char *msg, size_t len);
} pgscan_ops;

typedef struct pgscan {
    char header[PGWIRE_HEADER_LEN];
    uint8_t header_len;  /* bytes of an incomplete header collected so far */
    bool holding;        /* the current message goes to hold, not through */
    uint32_t body_left;  /* bytes of the current message's body still to come */
    size_t paused_at;    /* after PGSCAN_PAUSED: the bytes of the chunk consumed */
    pgbuf hold;
} pgscan;

enum pgscan_status {
    PGSCAN_OK = 0,
    PGSCAN_STOPPED = -1,   /* a callback asked to stop */
    PGSCAN_BAD_LENGTH = -2, /* a length field below 4 that on_header let pass */
    PGSCAN_TOO_LARGE = -3, /* a held message larger than the hold buffer's cap */
    PGSCAN_PAUSED = -4,    /* on_message asked to pause: data[paused_at..] not yet read */
};

void pgscan_init(pgscan *s, size_t hold_max);
void pgscan_free(pgscan *s);
int pgscan_feed(pgscan *s, const pgscan_ops *ops, void *ctx, const char *data, size_t len);
/* True between messages: nothing of a message has been seen but not handed on. */
bool pgscan_at_boundary(const pgscan *s);

#endif
