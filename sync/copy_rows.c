/* copy_rows: see copy_rows.h. */
#include "sync/copy_rows.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sync/schema.h"
#include "upstream/json_scan.h"

#define MAX_FIELDS 256 /* the most fields a collection may have to be loaded this way */

static void put(pgbuf *out, const char *s) { pgbuf_put(out, s, strlen(s)); }

/* ---- values as COPY's text format has them */

/* Appends [a, b) with COPY's specials (backslash, newline, carriage return, tab) escaped. */
static void put_copy_text(pgbuf *out, const char *a, const char *b)
{
    const char *run = a;
    for (const char *p = a; p < b; p++) {
        const char *esc = *p == '\\' ? "\\\\" : *p == '\n' ? "\\n" : *p == '\r' ? "\\r" : *p == '\t' ? "\\t" : NULL;
        if (!esc)
            continue;
        pgbuf_put(out, run, (size_t)(p - run));
        pgbuf_put(out, esc, 2);
        run = p + 1;
    }
    pgbuf_put(out, run, (size_t)(b - run));
}

static int hex4(const char *p, const char *end)
{
    if (end - p < 4)
        return -1;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* The content [a, b) of a JSON string, decoded, as COPY text. false for what Postgres's
 * jsonb refuses (\u0000, a lone surrogate) or any escape JSON does not have. */
static bool put_json_string(pgbuf *out, const char *a, const char *b)
{
    while (a < b) {
        const char *bs = memchr(a, '\\', (size_t)(b - a));
        if (!bs) {
            put_copy_text(out, a, b);
            return true;
        }
        put_copy_text(out, a, bs);
        a = bs + 2;
        char one;
        switch (bs[1]) {
        case '"':
        case '\\':
        case '/':
            one = bs[1];
            break;
        case 'b':
            one = '\b';
            break;
        case 'f':
            one = '\f';
            break;
        case 'n':
            one = '\n';
            break;
        case 'r':
            one = '\r';
            break;
        case 't':
            one = '\t';
            break;
        case 'u': {
            long cp = hex4(a, b);
            if (cp <= 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
                return false;
            a += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                int lo = b - a >= 2 && a[0] == '\\' && a[1] == 'u' ? hex4(a + 2, b) : -1;
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return false;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                a += 6;
            }
            char u[4];
            size_t n;
            if (cp < 0x80) {
                u[0] = (char)cp;
                n = 1;
            } else if (cp < 0x800) {
                u[0] = (char)(0xC0 | (cp >> 6));
                u[1] = (char)(0x80 | (cp & 0x3F));
                n = 2;
            } else if (cp < 0x10000) {
                u[0] = (char)(0xE0 | (cp >> 12));
                u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
                u[2] = (char)(0x80 | (cp & 0x3F));
                n = 3;
            } else {
                u[0] = (char)(0xF0 | (cp >> 18));
                u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
                u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
                u[3] = (char)(0x80 | (cp & 0x3F));
                n = 4;
            }
            put_copy_text(out, u, u + n);
            continue;
        }
        default:
            return false;
        }
        put_copy_text(out, &one, &one + 1);
    }
    return true;
}

/* to_timestamp(secs) as text that reads back the same whatever DateStyle and TimeZone
 * are: its length in buf, or 0 outside the years 1 to 9999. */
static size_t unix_time_text(long long secs, char buf[48])
{
    time_t t = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 1 || tm.tm_year + 1900 > 9999)
        return 0;
    return (size_t)snprintf(buf, 48, "%04d-%02d-%02d %02d:%02d:%02d+00", tm.tm_year + 1900, tm.tm_mon + 1,
                            tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

typedef struct value {
    const char *a, *b; /* the value's text, as in the body */
    char kind;         /* skip_value's; 0: the record has no such field */
} value;

/* One column of a row: false when the value is not one copy_rows takes for the type. */
static bool put_column(pgbuf *out, const provider_field *f, const value *v)
{
    if (v->kind == 0 || v->kind == '0') {
        put(out, "\\N");
        return true;
    }
    switch (f->type) {
    case FIELD_TEXT:
        return v->kind == '"' && put_json_string(out, v->a + 1, v->b - 1);
    case FIELD_BIGINT:
        if (v->kind != 'i')
            return false;
        pgbuf_put(out, v->a, (size_t)(v->b - v->a));
        return true;
    case FIELD_NUMERIC:
        if (v->kind != 'i' && v->kind != 'n')
            return false;
        pgbuf_put(out, v->a, (size_t)(v->b - v->a));
        return true;
    case FIELD_BOOLEAN:
        if (v->kind != 't' && v->kind != 'f')
            return false;
        pgbuf_put_byte(out, (uint8_t)v->kind);
        return true;
    case FIELD_TIMESTAMPTZ: { /* Stripe's unix seconds */
        if (v->kind != 'i' || v->b - v->a > 13)
            return false;
        char digits[16], text[48];
        memcpy(digits, v->a, (size_t)(v->b - v->a));
        digits[v->b - v->a] = '\0';
        size_t n = unix_time_text(strtoll(digits, NULL, 10), text);
        pgbuf_put(out, text, n);
        return n > 0;
    }
    case FIELD_JSONB:
        put_copy_text(out, v->a, v->b);
        return true;
    case FIELD_DATE:
        return false;
    }
    return false;
}

/* The field named [a, b), looked for from hint on (records list their fields in the same
 * order); -1 when the collection has none. */
static int field_of(const provider_collection *c, const char *a, const char *b, int hint)
{
    size_t n = (size_t)(b - a);
    for (int k = 0; k < c->nfields; k++) {
        int i = (hint + k) % c->nfields;
        const char *name = c->fields[i].name;
        if (strncmp(name, a, n) == 0 && name[n] == '\0')
            return i;
    }
    return -1;
}

/* One record (an object at s->p) as a row; false when it cannot be one. */
static bool put_record(pgbuf *out, json_scan *s, const provider_collection *c, int id, const char *version, size_t vlen)
{
    value v[MAX_FIELDS];
    memset(v, 0, sizeof v[0] * (size_t)c->nfields);
    if (!json_scan_take(s, '{'))
        return false;
    int hint = 0;
    if (!json_scan_take(s, '}')) {
        do {
            const char *ka, *kb;
            if (!json_scan_key(s, &ka, &kb) || memchr(ka, '\\', (size_t)(kb - ka)))
                return false;
            int i = field_of(c, ka, kb, hint);
            json_scan_ws(s);
            const char *start = s->p;
            char kind = json_scan_value(s, 1);
            if (!kind)
                return false;
            if (i >= 0) {
                /* a repeated key: jsonb keeps the last, and so does this */
                v[i] = (value){start, s->p, kind};
                hint = i + 1;
            }
        } while (json_scan_take(s, ','));
        if (!json_scan_take(s, '}'))
            return false;
    }
    if (v[id].kind != '"' || !put_json_string(out, v[id].a + 1, v[id].b - 1))
        return false;
    for (int i = 0; i < c->nfields; i++) {
        if (i == id)
            continue;
        pgbuf_put_byte(out, '\t');
        if (!put_column(out, &c->fields[i], &v[i]))
            return false;
    }
    pgbuf_put_byte(out, '\t');
    pgbuf_put(out, version, vlen);
    pgbuf_put_byte(out, '\n');
    return true;
}

int copy_rows_of_list(pgbuf *out, const char *body, size_t len, const provider_collection *c, long long version)
{
    int id = schema_id_field(c);
    if (id < 0 || c->nfields > MAX_FIELDS || c->version_field)
        return -1;
    char vtext[48];
    size_t vlen = unix_time_text(version, vtext);
    if (!vlen)
        return -1;

    json_scan s = {body, body + len};
    int rows = -1; /* no "data" yet */
    if (!json_scan_take(&s, '{'))
        return -1;
    if (json_scan_take(&s, '}'))
        return -1;
    do {
        const char *ka, *kb;
        if (!json_scan_key(&s, &ka, &kb))
            return -1;
        if (kb - ka != 4 || memcmp(ka, "data", 4) != 0) {
            if (!json_scan_value(&s, 1))
                return -1;
            continue;
        }
        if (rows >= 0 || !json_scan_take(&s, '['))
            return -1; /* a second "data" */
        rows = 0;
        if (json_scan_take(&s, ']'))
            continue;
        do {
            if (!put_record(out, &s, c, id, vtext, vlen))
                return -1;
            rows++;
        } while (json_scan_take(&s, ','));
        if (!json_scan_take(&s, ']'))
            return -1;
    } while (json_scan_take(&s, ','));
    if (!json_scan_take(&s, '}'))
        return -1;
    json_scan_ws(&s);
    return s.p == s.end && !out->failed ? rows : -1;
}

int copy_rows_statement(pgbuf *out, const char *schema, const provider_collection *c)
{
    int id = schema_id_field(c);
    if (id < 0 || c->version_field || c->nfields > MAX_FIELDS)
        return -1;
    char col[64];
    put(out, "COPY ");
    schema_quote_table(out, schema, c->name);
    put(out, " (id");
    for (int i = 0; i < c->nfields; i++) {
        if (i == id || schema_column_name(c->fields[i].name, col, sizeof col) < 0)
            continue;
        put(out, ", ");
        schema_quote_ident(out, col);
    }
    put(out, ", " SCHEMA_COL_UPDATED_AT ") FROM STDIN");
    pgbuf_put_byte(out, 0);
    return out->failed ? -1 : 0;
}
