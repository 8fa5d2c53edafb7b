/*
 * format: printf into a string of exactly the right size, for the messages of refusals.
 */
#ifndef APIGRES_FORMAT_H
#define APIGRES_FORMAT_H

#include <stdarg.h>

/* A new string (caller frees), or NULL when out of memory. */
char *format_alloc_v(const char *fmt, va_list ap);

#endif
