/*
 * form: application/x-www-form-urlencoded bodies the way Stripe reads them.
 *
 * A JSON object becomes key=value pairs; nested objects use brackets
 * (metadata[plan]=pro, address[line1]=...), arrays use indexes (items[0][price]=...),
 * true/false are written as words, null as an empty value (which clears a field).
 */
#ifndef APIGRES_FORM_H
#define APIGRES_FORM_H

#include <cJSON.h>

#include "proxy/pgwire.h"

/* Percent-encodes s (RFC 3986 unreserved characters kept) onto out. */
void form_escape(pgbuf *out, const char *s);
/* Appends the encoding of every member of obj to out; returns 0, or -1 when obj is not
 * an object or out ran out of room. */
int form_encode(pgbuf *out, const cJSON *obj);

#endif
