/*
 * format: the parser modules' strings: printf into a string of exactly the right size, for
 * the messages of refusals, and the copies their results are duplicated with.
 */
#ifndef APIGRES_FORMAT_H
#define APIGRES_FORMAT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/* A new string (caller frees), or NULL when out of memory. */
char *format_alloc_v(const char *fmt, va_list ap);

/* Fills a refusal: sqlstate (6 bytes), *message formatted from fmt, *hint a copy of hint
 * (NULL stays NULL); earlier strings are freed. Returns 0, or -1 when out of memory. */
int format_refusal(char sqlstate[6], char **message, char **hint, const char *state, const char *hint_text,
                   const char *fmt, va_list ap);

/* A copy of src; NULL stays NULL. Out of memory: NULL and *failed set. */
char *format_dup(const char *src, bool *failed);
/* A copy of v[0..n) (each as format_dup); NULL when n is 0, and NULL with *failed set when
 * out of memory. */
char **format_dup_strings(char *const *v, size_t n, bool *failed);

#endif
