/*
 * stripe: what is specific to Stripe's API (version 2023-08-16, pinned).
 *
 * Requests carry "Authorization: Bearer <secret key>" and "Stripe-Version"; bodies are
 * form-encoded (upstream/form); lists page with limit/starting_after/has_more. Errors are
 * {"error": {"type", "code", "param", "message"}} plus a Request-Id header and map to
 * SQLSTATEs by the table in stripe.c (shown in README.md).
 */
#ifndef APIGRES_STRIPE_H
#define APIGRES_STRIPE_H

#include "upstream/error.h"
#include "upstream/http.h"

#define STRIPE_API_VERSION "2023-08-16"
#define STRIPE_DEFAULT_BASE "https://api.stripe.com"

/* Fills err from a response that is not a success (status >= 400 or a transport
 * failure). */
void stripe_error_from_response(const http_response *resp, upstream_error *err);
/* The SQLSTATE for a Stripe error; sets *not_found for a missing record. */
const char *stripe_sqlstate(long status, const char *type, const char *code, const char *param,
                            const char *message, bool *not_found);

#endif
