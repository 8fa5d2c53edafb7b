/* format: see format.h. */
#include "parser/format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *format_alloc_v(const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s)
        vsnprintf(s, (size_t)n + 1, fmt, again);
    va_end(again);
    return s;
}

int format_refusal(char sqlstate[6], char **message, char **hint, const char *state, const char *hint_text,
                   const char *fmt, va_list ap)
{
    snprintf(sqlstate, 6, "%s", state);
    free(*message);
    free(*hint);
    *message = format_alloc_v(fmt, ap);
    *hint = hint_text ? strdup(hint_text) : NULL;
    return *message && (*hint || !hint_text) ? 0 : -1;
}

char *format_dup(const char *src, bool *failed)
{
    if (!src)
        return NULL;
    char *d = strdup(src);
    *failed |= d == NULL;
    return d;
}

char **format_dup_strings(char *const *v, size_t n, bool *failed)
{
    if (!v || n == 0)
        return NULL;
    char **d = calloc(n, sizeof *d);
    if (!d) {
        *failed = true;
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        d[i] = format_dup(v[i], failed);
    return d;
}
