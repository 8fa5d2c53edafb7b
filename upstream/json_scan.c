/* json_scan: see json_scan.h. */
#include "upstream/json_scan.h"

#include <string.h>

bool json_scan_string(json_scan *s, const char **a, const char **b)
{
    if (s->p >= s->end || *s->p != '"')
        return false;
    const char *p = s->p + 1;
    while (p < s->end && *p != '"') {
        if ((unsigned char)*p < 0x20)
            return false;
        if (*p++ != '\\')
            continue;
        if (p >= s->end || !*p || !strchr("\"\\/bfnrtu", *p))
            return false;
        if (*p++ == 'u') {
            for (int i = 0; i < 4; i++, p++)
                if (p >= s->end || !*p || !strchr("0123456789abcdefABCDEF", *p))
                    return false;
        }
    }
    if (p >= s->end)
        return false;
    *a = s->p + 1;
    *b = p;
    s->p = p + 1;
    return true;
}

bool json_scan_key(json_scan *s, const char **a, const char **b)
{
    json_scan_ws(s);
    return json_scan_string(s, a, b) && json_scan_take(s, ':');
}

static bool is_digit(const json_scan *s) { return s->p < s->end && *s->p >= '0' && *s->p <= '9'; }

static char number(json_scan *s)
{
    char kind = 'i';
    if (s->p < s->end && *s->p == '-')
        s->p++;
    if (!is_digit(s))
        return 0;
    if (*s->p++ != '0')
        while (is_digit(s))
            s->p++;
    if (s->p < s->end && *s->p == '.') {
        kind = 'n';
        s->p++;
        if (!is_digit(s))
            return 0;
        while (is_digit(s))
            s->p++;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        kind = 'n';
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (!is_digit(s))
            return 0;
        while (is_digit(s))
            s->p++;
    }
    return kind;
}

static bool word(json_scan *s, const char *w, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0)
        return false;
    s->p += n;
    return true;
}

char json_scan_value(json_scan *s, int depth)
{
    json_scan_ws(s);
    if (s->p >= s->end)
        return 0;
    const char *a, *b;
    switch (*s->p) {
    case '"':
        return json_scan_string(s, &a, &b) ? '"' : 0;
    case 't':
        return word(s, "true", 4) ? 't' : 0;
    case 'f':
        return word(s, "false", 5) ? 'f' : 0;
    case 'n':
        return word(s, "null", 4) ? '0' : 0;
    case '{':
    case '[': {
        char close = *s->p == '{' ? '}' : ']';
        if (depth >= JSON_SCAN_MAX_DEPTH)
            return 0;
        s->p++;
        if (json_scan_take(s, close))
            return '{';
        do {
            if (close == '}' && !json_scan_key(s, &a, &b))
                return 0;
            if (!json_scan_value(s, depth + 1))
                return 0;
        } while (json_scan_take(s, ','));
        return json_scan_take(s, close) ? '{' : 0;
    }
    default:
        return number(s);
    }
}
