/* pgwire: see pgwire.h. */
#include "proxy/pgwire.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- pgbuf */

void pgbuf_init(pgbuf *b, size_t max)
{
    memset(b, 0, sizeof *b);
    b->max = max;
}

void pgbuf_free(pgbuf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = false;
}

void pgbuf_reset(pgbuf *b) { pgbuf_truncate(b, 0); }

void pgbuf_truncate(pgbuf *b, size_t len)
{
    if (len < b->len)
        b->len = len;
    b->failed = false;
}

static bool pgbuf_reserve(pgbuf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (extra > b->max - b->len) {
        b->failed = true;
        return false;
    }
    size_t need = b->len + extra;
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    if (cap > b->max)
        cap = b->max;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void pgbuf_put(pgbuf *b, const void *data, size_t len)
{
    if (len == 0 || !pgbuf_reserve(b, len))
        return;
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

void pgbuf_put_byte(pgbuf *b, uint8_t v) { pgbuf_put(b, &v, 1); }

void pgbuf_put_int16(pgbuf *b, uint16_t v)
{
    uint8_t p[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    pgbuf_put(b, p, 2);
}

void pgbuf_put_int32(pgbuf *b, uint32_t v)
{
    uint8_t p[4];
    pgwire_set_int32(p, v);
    pgbuf_put(b, p, 4);
}

void pgbuf_put_string(pgbuf *b, const char *s) { pgbuf_put(b, s, strlen(s) + 1); }

size_t pgbuf_begin_message(pgbuf *b, char type)
{
    size_t start = b->len;
    pgbuf_put_byte(b, (uint8_t)type);
    pgbuf_put_int32(b, 0);
    return start;
}

void pgbuf_end_message(pgbuf *b, size_t start)
{
    if (b->failed || b->len < start + PGWIRE_HEADER_LEN)
        return;
    pgwire_set_int32(b->data + start + 1, (uint32_t)(b->len - start - 1));
}

void pgbuf_consume(pgbuf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

/* ---- pgread */

uint32_t pgwire_get_int32(const void *p)
{
    const uint8_t *u = p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

void pgwire_set_int32(void *p, uint32_t v)
{
    uint8_t *u = p;
    u[0] = (uint8_t)(v >> 24);
    u[1] = (uint8_t)(v >> 16);
    u[2] = (uint8_t)(v >> 8);
    u[3] = (uint8_t)v;
}

void pgread_init(pgread *r, const void *data, size_t len)
{
    r->data = data;
    r->len = len;
    r->pos = 0;
    r->failed = false;
}

static const char *pgread_take(pgread *r, size_t n)
{
    if (r->failed || n > r->len - r->pos) {
        r->failed = true;
        return NULL;
    }
    const char *p = r->data + r->pos;
    r->pos += n;
    return p;
}

uint8_t pgread_byte(pgread *r)
{
    const char *p = pgread_take(r, 1);
    return p ? (uint8_t)p[0] : 0;
}

uint16_t pgread_int16(pgread *r)
{
    const uint8_t *p = (const uint8_t *)pgread_take(r, 2);
    return p ? (uint16_t)(p[0] << 8 | p[1]) : 0;
}

uint32_t pgread_int32(pgread *r)
{
    const char *p = pgread_take(r, 4);
    return p ? pgwire_get_int32(p) : 0;
}

const char *pgread_string(pgread *r)
{
    if (r->failed)
        return NULL;
    const char *start = r->data + r->pos;
    const char *nul = memchr(start, '\0', r->len - r->pos);
    if (!nul) {
        r->failed = true;
        return NULL;
    }
    r->pos += (size_t)(nul - start) + 1;
    return start;
}

size_t pgread_remaining(const pgread *r) { return r->failed ? 0 : r->len - r->pos; }

/* ---- messages the proxy writes */

void pgwire_put_error_detail(pgbuf *b, const char *severity, const char *sqlstate,
                             const char *message, const char *detail, const char *hint)
{
    size_t start = pgbuf_begin_message(b, 'E');
    pgbuf_put_byte(b, 'S');
    pgbuf_put_string(b, severity);
    pgbuf_put_byte(b, 'V');
    pgbuf_put_string(b, severity);
    pgbuf_put_byte(b, 'C');
    pgbuf_put_string(b, sqlstate);
    pgbuf_put_byte(b, 'M');
    pgbuf_put_string(b, message);
    if (detail) {
        pgbuf_put_byte(b, 'D');
        pgbuf_put_string(b, detail);
    }
    if (hint) {
        pgbuf_put_byte(b, 'H');
        pgbuf_put_string(b, hint);
    }
    pgbuf_put_byte(b, 0);
    pgbuf_end_message(b, start);
}

void pgwire_put_error(pgbuf *b, const char *severity, const char *sqlstate, const char *fmt, ...)
{
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    pgwire_put_error_detail(b, severity, sqlstate, message, NULL, NULL);
}

const char *pgwire_error_field(const char *body, size_t len, char code)
{
    pgread r;
    pgread_init(&r, body, len);
    for (;;) {
        uint8_t field = pgread_byte(&r);
        if (r.failed || field == 0)
            return NULL;
        const char *value = pgread_string(&r);
        if (!value)
            return NULL;
        if (field == (uint8_t)code)
            return value;
    }
}

/* ---- startup packet */

uint32_t pgwire_startup_length(const char *data, size_t len)
{
    return len < 4 ? 0 : pgwire_get_int32(data);
}

int pgwire_parse_startup(const char *packet, size_t len, pgwire_startup *out)
{
    memset(out, 0, sizeof *out);
    if (len < 8 || len > PGWIRE_STARTUP_MAX || pgwire_get_int32(packet) != len)
        return PGWIRE_STARTUP_BAD_LENGTH;
    pgread r;
    pgread_init(&r, packet + 4, len - 4);
    out->code = pgread_int32(&r);
    if (out->code == PGWIRE_CANCEL_REQUEST) {
        if (len != 16)
            return PGWIRE_STARTUP_BAD_LENGTH;
        out->cancel_pid = pgread_int32(&r);
        out->cancel_key = pgread_int32(&r);
        return PGWIRE_STARTUP_OK;
    }
    if (out->code == PGWIRE_SSL_REQUEST || out->code == PGWIRE_GSSENC_REQUEST)
        return len == 8 ? PGWIRE_STARTUP_OK : PGWIRE_STARTUP_BAD_LENGTH;
    if (out->code >> 16 != 3)
        return PGWIRE_STARTUP_OK; /* the caller refuses the version */
    /* name/value pairs, ended by an empty name */
    for (;;) {
        const char *name = pgread_string(&r);
        if (!name)
            return PGWIRE_STARTUP_MALFORMED;
        if (name[0] == '\0')
            break;
        const char *value = pgread_string(&r);
        if (!value)
            return PGWIRE_STARTUP_MALFORMED;
        if (strcmp(name, "user") == 0)
            out->user = value;
        else if (strcmp(name, "database") == 0)
            out->database = value;
        else if (strcmp(name, "application_name") == 0)
            out->application_name = value;
        out->nparams++;
    }
    return pgread_remaining(&r) == 0 ? PGWIRE_STARTUP_OK : PGWIRE_STARTUP_MALFORMED;
}

/* ---- pgscan */

void pgscan_init(pgscan *s, size_t hold_max)
{
    memset(s, 0, sizeof *s);
    pgbuf_init(&s->hold, hold_max);
}

void pgscan_free(pgscan *s) { pgbuf_free(&s->hold); }

bool pgscan_at_boundary(const pgscan *s)
{
    return s->header_len == 0 && s->body_left == 0 && !s->holding;
}

static int pass_run(const pgscan_ops *ops, void *ctx, const char *data, size_t from, size_t to)
{
    return to > from ? ops->on_pass(ctx, data + from, to - from) : 0;
}

/* PGSCAN_OK, PGSCAN_STOPPED, or PGSCAN_PAUSED with paused_at = at. */
static int deliver_held(pgscan *s, const pgscan_ops *ops, void *ctx, size_t at)
{
    s->holding = false;
    int rc = ops->on_message(ctx, s->hold.data, s->hold.len);
    if (rc > 0) {
        s->paused_at = at;
        return PGSCAN_PAUSED;
    }
    return rc ? PGSCAN_STOPPED : PGSCAN_OK;
}

int pgscan_feed(pgscan *s, const pgscan_ops *ops, void *ctx, const char *data, size_t len)
{
    size_t i = 0;
    size_t run = 0; /* data[run, i) is pass-through not yet handed on */

    while (i < len) {
        if (s->body_left > 0) {
            size_t take = len - i < s->body_left ? len - i : s->body_left;
            if (s->holding)
                pgbuf_put(&s->hold, data + i, take);
            i += take;
            s->body_left -= (uint32_t)take;
            if (s->holding) {
                run = i;
                if (s->hold.failed)
                    return PGSCAN_TOO_LARGE;
                if (s->body_left == 0) {
                    int rc = deliver_held(s, ops, ctx, i);
                    if (rc != PGSCAN_OK)
                        return rc;
                }
            }
            continue;
        }

        /* At a message header: whole in this chunk, or collected across reads. */
        const char *header;
        bool header_in_chunk = s->header_len == 0 && len - i >= PGWIRE_HEADER_LEN;
        if (header_in_chunk) {
            header = data + i;
        } else {
            if (pass_run(ops, ctx, data, run, i))
                return PGSCAN_STOPPED;
            size_t take = PGWIRE_HEADER_LEN - s->header_len;
            if (take > len - i)
                take = len - i;
            memcpy(s->header + s->header_len, data + i, take);
            s->header_len += (uint8_t)take;
            i += take;
            run = i;
            if (s->header_len < PGWIRE_HEADER_LEN)
                return PGSCAN_OK;
            header = s->header;
        }

        char type = header[0];
        uint32_t mlen = pgwire_get_int32(header + 1);
        enum pgscan_verdict verdict = ops->on_header(ctx, type, mlen);
        if (verdict == PGSCAN_STOP) {
            pass_run(ops, ctx, data, run, header_in_chunk ? i : run);
            return PGSCAN_STOPPED;
        }
        if (mlen < 4)
            return PGSCAN_BAD_LENGTH;
        s->header_len = 0;
        s->body_left = mlen - 4;

        if (verdict == PGSCAN_PASS) {
            if (header_in_chunk)
                i += PGWIRE_HEADER_LEN; /* joins the run */
            else if (ops->on_pass(ctx, header, PGWIRE_HEADER_LEN))
                return PGSCAN_STOPPED;
            continue;
        }

        /* PGSCAN_HOLD */
        if (header_in_chunk) {
            if (pass_run(ops, ctx, data, run, i))
                return PGSCAN_STOPPED;
            i += PGWIRE_HEADER_LEN;
        }
        run = i;
        pgbuf_reset(&s->hold);
        if ((size_t)mlen + 1 > s->hold.max)
            return PGSCAN_TOO_LARGE;
        pgbuf_put(&s->hold, header, PGWIRE_HEADER_LEN);
        s->holding = true;
        if (s->body_left == 0) {
            int rc = deliver_held(s, ops, ctx, i);
            if (rc != PGSCAN_OK)
                return rc;
        }
    }
    if (!s->holding && pass_run(ops, ctx, data, run, i))
        return PGSCAN_STOPPED;
    return PGSCAN_OK;
}
