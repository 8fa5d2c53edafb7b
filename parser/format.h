/*
 * format: printf into a string of exactly the right size, for the messages of refusals.
 */
#ifndef APIGRES_FORMAT_H
#define APIGRES_FORMAT_H

#include <stdarg.h>

/* A new string (caller frees), or NULL when out of memory. */
char *format_alloc_v(const char *fmt, va_list ap);

/* Fills a refusal: sqlstate (6 bytes), *message formatted from fmt, *hint a copy of hint
 * (NULL stays NULL); earlier strings are freed. Returns 0, or -1 when out of memory. */
int format_refusal(char sqlstate[6], char **message, char **hint, const char *state, const char *hint_text,
                   const char *fmt, va_list ap);

#endif
