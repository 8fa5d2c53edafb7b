/*
 * libFuzzer target for the bytes strangers send first: the startup packet parser and the
 * message scanner the relay runs on every byte. Besides "no crash, no sanitizer report" it
 * checks pgscan's contract: whatever the split of the input into reads, the bytes handed
 * on (runs plus held messages) are exactly a prefix of the input, in order.
 *
 *   make fuzz            (60 s per target; FUZZ_SECONDS=N to change)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/pgwire.h"

typedef struct sink {
    pgbuf out;
} sink;

static enum pgscan_verdict on_header(void *ctx, char type, uint32_t len)
{
    if (type == 0 || len < 4)
        return PGSCAN_STOP;
    return (type == 'R' || type == 'K' || type == 'E') ? PGSCAN_HOLD : PGSCAN_PASS;
}

static int on_pass(void *ctx, const char *data, size_t len)
{
    pgbuf_put(&((sink *)ctx)->out, data, len);
    return 0;
}

static int on_message(void *ctx, const char *msg, size_t len)
{
    if (msg[0] == 'E' && len > 5) {
        (void)pgwire_error_field(msg + 5, len - 5, 'C');
        (void)pgwire_error_field(msg + 5, len - 5, 'M');
    }
    pgbuf_put(&((sink *)ctx)->out, msg, len);
    return 0;
}

static const pgscan_ops ops = {on_header, on_pass, on_message};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* the first byte chooses the read size, the rest is the stream */
    size_t chunk = (size_t)data[0] % 17 + 1;
    const char *in = (const char *)data + 1;
    size_t n = size - 1;

    pgwire_startup st;
    uint32_t plen = pgwire_startup_length(in, n);
    if (plen <= n)
        (void)pgwire_parse_startup(in, plen, &st);

    sink k;
    pgbuf_init(&k.out, 1 << 20);
    pgscan s;
    pgscan_init(&s, 4096);
    for (size_t off = 0; off < n; off += chunk) {
        size_t len = n - off < chunk ? n - off : chunk;
        if (pgscan_feed(&s, &ops, &k, in + off, len) != PGSCAN_OK)
            break;
    }
    if (k.out.len > n || (k.out.len > 0 && memcmp(k.out.data, in, k.out.len) != 0))
        abort(); /* handed on something that is not the input's prefix */
    pgscan_free(&s);
    pgbuf_free(&k.out);
    return 0;
}
