/*
 * json_scan: finds where the values of a JSON text are without building them. For the
 * hot paths that only need a few members of a large response (a Stripe list page: its
 * count, its last id, has_more) or its values' text as sent (sync/copy_rows.h); cJSON
 * would allocate a node per value, which costs more than everything else they do.
 *
 * Each function starts at s->p and, on success, leaves s->p past what it read. They
 * accept what RFC 8259's grammar accepts, except nesting deeper than JSON_SCAN_MAX_DEPTH;
 * escapes are checked for their form, not decoded (the caller decodes what it uses: a lone
 * surrogate is its to refuse). NUL bytes are not JSON and end nothing here.
 * On false (or 0) s->p is unspecified: the text is not what the caller can take.
 */
#ifndef APIGRES_JSON_SCAN_H
#define APIGRES_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>

#define JSON_SCAN_MAX_DEPTH 64

typedef struct json_scan {
    const char *p, *end;
} json_scan;

static inline void json_scan_ws(json_scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

/* The character c, after white space. */
static inline bool json_scan_take(json_scan *s, char c)
{
    json_scan_ws(s);
    if (s->p >= s->end || *s->p != c)
        return false;
    s->p++;
    return true;
}

/* A string (no white space before it): [*a, *b) is its content, escapes undecoded. */
bool json_scan_string(json_scan *s, const char **a, const char **b);

/* An object member's name and its colon, after white space: [*a, *b) as above. */
bool json_scan_key(json_scan *s, const char **a, const char **b);

/* A value, after white space; returns its kind: '"' string, 'i' integer, 'n' other
 * number, 't' true, 'f' false, '0' null, '{' object or array; 0 when it is not JSON (or
 * nests deeper than JSON_SCAN_MAX_DEPTH counting from depth). */
char json_scan_value(json_scan *s, int depth);

#endif
