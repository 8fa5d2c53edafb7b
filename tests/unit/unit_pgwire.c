/* Unit tests for proxy/pgwire: buffers, readers, builders, the startup parser and pgscan. */
#include <stdlib.h>
#include <string.h>

#include "proxy/pgwire.h"
#include "tests/unit/unit.h"

static void test_pgbuf(void)
{
    pgbuf b;
    pgbuf_init(&b, 8);
    pgbuf_put_int32(&b, 0x01020304);
    pgbuf_put_int16(&b, 0x0506);
    CHECK(!b.failed && b.len == 6 && (unsigned char)b.data[0] == 1 && b.data[5] == 6,
          "pgbuf writes big-endian integers");
    pgbuf_put_int32(&b, 7);
    CHECK(b.failed && b.len == 6, "pgbuf refuses to grow past its cap and marks itself failed");
    pgbuf_put_byte(&b, 1);
    CHECK(b.failed && b.len == 6, "pgbuf stays failed: later writes are no-ops");
    pgbuf_truncate(&b, 4);
    CHECK(!b.failed && b.len == 4 && b.data[3] == 4, "pgbuf_truncate keeps the bytes before and clears the failure");
    pgbuf_put_int16(&b, 0x0708);
    CHECK(!b.failed && b.len == 6 && b.data[5] == 8, "pgbuf takes writes again after pgbuf_truncate");
    pgbuf_reset(&b);
    CHECK(!b.failed && b.len == 0, "pgbuf_reset clears the failure");
    pgbuf_put(&b, "abcdef", 6);
    pgbuf_consume(&b, 2);
    CHECK(b.len == 4 && memcmp(b.data, "cdef", 4) == 0, "pgbuf_consume drops the front");
    pgbuf_free(&b);

    pgbuf m;
    pgbuf_init(&m, 1024);
    size_t start = pgbuf_begin_message(&m, 'Q');
    pgbuf_put_string(&m, "select 1");
    pgbuf_end_message(&m, start);
    CHECK(m.len == 14 && m.data[0] == 'Q' && pgwire_get_int32(m.data + 1) == 13,
          "a message's length field counts itself but not the type byte");
    pgbuf_free(&m);
}

static void test_pgread(void)
{
    const char data[] = {0, 0, 0, 42, 'h', 'i', 0, 'x'};
    pgread r;
    pgread_init(&r, data, sizeof data);
    CHECK(pgread_int32(&r) == 42, "pgread_int32");
    const char *s = pgread_string(&r);
    CHECK(s && strcmp(s, "hi") == 0, "pgread_string");
    CHECK(pgread_string(&r) == NULL && r.failed, "an unterminated string fails the reader");
    CHECK(pgread_int32(&r) == 0 && pgread_remaining(&r) == 0, "a failed reader returns zeros");
    pgread_init(&r, data, 3);
    CHECK(pgread_int32(&r) == 0 && r.failed, "reading past the end fails, no out-of-bounds read");
}

static void test_error_builder(void)
{
    pgbuf b;
    pgbuf_init(&b, 4096);
    pgwire_put_error(&b, "FATAL", "08P01", "invalid frontend message type %d", 1);
    CHECK(!b.failed && b.data[0] == 'E' && pgwire_get_int32(b.data + 1) == b.len - 1,
          "ErrorResponse framing");
    const char *body = b.data + 5;
    size_t len = b.len - 5;
    const char *code = pgwire_error_field(body, len, 'C');
    const char *msg = pgwire_error_field(body, len, 'M');
    const char *sev = pgwire_error_field(body, len, 'V');
    CHECK(code && strcmp(code, "08P01") == 0, "ErrorResponse carries the SQLSTATE");
    CHECK(msg && strcmp(msg, "invalid frontend message type 1") == 0, "ErrorResponse message");
    CHECK(sev && strcmp(sev, "FATAL") == 0, "ErrorResponse non-localized severity");
    CHECK(pgwire_error_field(body, len, 'D') == NULL, "absent field is NULL");
    CHECK(pgwire_error_field(body, len - 3, 'M') == NULL &&
              pgwire_error_field(body, len - 3, 'C') != NULL,
          "a truncated body: fields before the cut are found, the cut one is not");
    pgbuf_free(&b);
}

static size_t build_startup(char *out, const char *const *kv, int n)
{
    pgbuf b;
    pgbuf_init(&b, 10000);
    pgbuf_put_int32(&b, 0);
    pgbuf_put_int32(&b, PGWIRE_PROTOCOL_3_0);
    for (int i = 0; i < n; i++)
        pgbuf_put_string(&b, kv[i]);
    pgbuf_put_byte(&b, 0);
    pgwire_set_int32(b.data, (uint32_t)b.len);
    memcpy(out, b.data, b.len);
    size_t len = b.len;
    pgbuf_free(&b);
    return len;
}

static void test_startup(void)
{
    char pkt[256];
    const char *kv[] = {"user", "app", "database", "db1", "application_name", "psql"};
    size_t len = build_startup(pkt, kv, 6);
    pgwire_startup st;
    CHECK(pgwire_parse_startup(pkt, len, &st) == PGWIRE_STARTUP_OK && st.code == PGWIRE_PROTOCOL_3_0,
          "StartupMessage parses");
    CHECK(st.user && strcmp(st.user, "app") == 0 && st.database && strcmp(st.database, "db1") == 0 &&
              st.application_name && strcmp(st.application_name, "psql") == 0 && st.nparams == 3,
          "StartupMessage parameters");
    CHECK(pgwire_parse_startup(pkt, len - 1, &st) == PGWIRE_STARTUP_BAD_LENGTH,
          "a length field that disagrees with the packet is refused");
    pkt[len - 1] = 'x';
    CHECK(pgwire_parse_startup(pkt, len, &st) == PGWIRE_STARTUP_MALFORMED,
          "a packet without its terminator is malformed");

    char cancel[16];
    pgwire_set_int32(cancel, 16);
    pgwire_set_int32(cancel + 4, PGWIRE_CANCEL_REQUEST);
    pgwire_set_int32(cancel + 8, 1234);
    pgwire_set_int32(cancel + 12, 0xdeadbeef);
    CHECK(pgwire_parse_startup(cancel, 16, &st) == PGWIRE_STARTUP_OK && st.cancel_pid == 1234 &&
              st.cancel_key == 0xdeadbeef,
          "CancelRequest parses");
    char ssl[8];
    pgwire_set_int32(ssl, 8);
    pgwire_set_int32(ssl + 4, PGWIRE_SSL_REQUEST);
    CHECK(pgwire_parse_startup(ssl, 8, &st) == PGWIRE_STARTUP_OK && st.code == PGWIRE_SSL_REQUEST,
          "SSLRequest parses");
    char tiny[4];
    pgwire_set_int32(tiny, 4);
    CHECK(pgwire_parse_startup(tiny, 4, &st) == PGWIRE_STARTUP_BAD_LENGTH, "length 4 is refused");
    CHECK(pgwire_startup_length(tiny, 3) == 0, "no length before 4 bytes");
}

/* ---- pgscan: a recorder of what the scanner hands on */

typedef struct recorder {
    pgbuf out;        /* pass-through bytes and held messages, in order */
    char held[64];    /* types of held messages, in order */
    int nheld;
    char headers[64]; /* types seen by on_header */
    int nheaders;
    char hold_type;   /* hold messages of this type */
    char stop_type;   /* stop at this type */
    char pause_type;  /* pause after a held message of this type */
} recorder;

static enum pgscan_verdict rec_header(void *ctx, char type, uint32_t len)
{
    recorder *r = ctx;
    if (r->nheaders < 63)
        r->headers[r->nheaders++] = type;
    if (type == r->stop_type)
        return PGSCAN_STOP;
    return type == r->hold_type ? PGSCAN_HOLD : PGSCAN_PASS;
}

static int rec_pass(void *ctx, const char *data, size_t len)
{
    pgbuf_put(&((recorder *)ctx)->out, data, len);
    return 0;
}

static int rec_message(void *ctx, const char *msg, size_t len)
{
    recorder *r = ctx;
    if (r->nheld < 63)
        r->held[r->nheld++] = msg[0];
    pgbuf_put(&r->out, msg, len);
    return msg[0] == r->pause_type ? 1 : 0;
}

static const pgscan_ops rec_ops = {rec_header, rec_pass, rec_message};

static size_t put_message(char *out, char type, const char *body, size_t bodylen)
{
    out[0] = type;
    pgwire_set_int32(out + 1, (uint32_t)(bodylen + 4));
    memcpy(out + 5, body, bodylen);
    return bodylen + 5;
}

static size_t sample_stream(char *buf)
{
    size_t n = 0;
    n += put_message(buf + n, 'Q', "select 1\0", 9);
    n += put_message(buf + n, 'S', "", 0);
    n += put_message(buf + n, 'K', "\0\0\0\1\0\0\0\2", 8);
    n += put_message(buf + n, 'd', "0123456789abcdefghij", 20);
    n += put_message(buf + n, 'K', "\0\0\0\3\0\0\0\4", 8);
    n += put_message(buf + n, 'X', "", 0);
    return n;
}

static void test_pgscan_splits(void)
{
    char stream[256];
    size_t n = sample_stream(stream);
    int bad_two = 0, bad_three = 0, bad_bytes = 0;

    /* every split into two reads, and into three */
    for (size_t a = 0; a <= n; a++) {
        for (size_t b = a; b <= n; b++) {
            recorder r = {.hold_type = 'K'};
            pgbuf_init(&r.out, 4096);
            pgscan s;
            pgscan_init(&s, 1024);
            int rc = pgscan_feed(&s, &rec_ops, &r, stream, a);
            rc |= pgscan_feed(&s, &rec_ops, &r, stream + a, b - a);
            rc |= pgscan_feed(&s, &rec_ops, &r, stream + b, n - b);
            bool good = rc == 0 && r.out.len == n && memcmp(r.out.data, stream, n) == 0 &&
                        r.nheld == 2 && r.nheaders == 6 && pgscan_at_boundary(&s);
            if (!good)
                {
                if (b == a)
                    bad_two++;
                else
                    bad_three++;
            }
            pgscan_free(&s);
            pgbuf_free(&r.out);
        }
    }
    CHECK(bad_two == 0, "pgscan: every split into two reads hands on the same bytes in order");
    CHECK(bad_three == 0, "pgscan: every split into three reads hands on the same bytes in order");

    /* one byte at a time */
    recorder r = {.hold_type = 'K'};
    pgbuf_init(&r.out, 4096);
    pgscan s;
    pgscan_init(&s, 1024);
    for (size_t i = 0; i < n; i++) {
        if (pgscan_feed(&s, &rec_ops, &r, stream + i, 1) != 0)
            bad_bytes++;
        if (i == 0 && pgscan_at_boundary(&s))
            bad_bytes++; /* one byte of a header is not a boundary */
    }
    CHECK(bad_bytes == 0 && r.out.len == n && memcmp(r.out.data, stream, n) == 0 &&
              r.nheld == 2 && r.held[0] == 'K' && r.held[1] == 'K',
          "pgscan: one byte per read, held messages delivered whole");
    pgscan_free(&s);
    pgbuf_free(&r.out);
}

/* A pause after a held message leaves the rest of the chunk unread, to be fed later. */
static void test_pgscan_pause(void)
{
    char stream[256];
    size_t n = sample_stream(stream);
    recorder r = {.hold_type = 'Q', .pause_type = 'Q'};
    pgbuf_init(&r.out, 4096);
    pgscan s;
    pgscan_init(&s, 1024);
    size_t fed = 0;
    int pauses = 0, rc;
    while ((rc = pgscan_feed(&s, &rec_ops, &r, stream + fed, n - fed)) == PGSCAN_PAUSED) {
        pauses++;
        fed += s.paused_at;
        CHECK(pgscan_at_boundary(&s), "pgscan: a pause leaves the scanner at a boundary");
    }
    CHECK(rc == PGSCAN_OK && pauses >= 1 && r.out.len == n && memcmp(r.out.data, stream, n) == 0,
          "pgscan: paused after each held Query (%d), the rest fed again arrives whole", pauses);
    pgscan_free(&s);
    pgbuf_free(&r.out);
}

static void test_pgscan_errors(void)
{
    char stream[256];
    size_t n = sample_stream(stream);

    recorder r = {.stop_type = 'd'};
    pgbuf_init(&r.out, 4096);
    pgscan s;
    pgscan_init(&s, 1024);
    int rc = pgscan_feed(&s, &rec_ops, &r, stream, n);
    CHECK(rc == PGSCAN_STOPPED && r.out.len == 14 + 5 + 13,
          "pgscan: STOP hands on what came before the refused message, nothing after");
    pgscan_free(&s);
    pgbuf_free(&r.out);

    char bad[5] = {'Q', 0, 0, 0, 3};
    pgbuf_init(&r.out, 4096);
    pgscan_init(&s, 1024);
    r.stop_type = 0;
    CHECK(pgscan_feed(&s, &rec_ops, &r, bad, 5) == PGSCAN_BAD_LENGTH,
          "pgscan: a length below 4 is an error even if on_header passes it");
    pgscan_free(&s);

    char big[5] = {'K', 0, 0, 8, 0};
    pgscan_init(&s, 1024);
    r.hold_type = 'K';
    CHECK(pgscan_feed(&s, &rec_ops, &r, big, 5) == PGSCAN_TOO_LARGE,
          "pgscan: a held message larger than the hold cap is refused before buffering");
    pgscan_free(&s);

    char huge[5] = {'d', 0x7f, 0xff, 0xff, 0xff};
    pgscan_init(&s, 1024);
    CHECK(pgscan_feed(&s, &rec_ops, &r, huge, 5) == PGSCAN_OK && s.body_left == 0x7fffffffu - 4,
          "pgscan: a passed message of any size needs no buffer");
    pgscan_free(&s);
    pgbuf_free(&r.out);
}

int main(void)
{
    test_pgbuf();
    test_pgread();
    test_error_builder();
    test_startup();
    test_pgscan_splits();
    test_pgscan_pause();
    test_pgscan_errors();
    return unit_done();
}
