/* error: see error.h. */
#include "upstream/error.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static bool is_token_char(char c) { return isalnum((unsigned char)c) || c == '_' || c == '!' || c == '.'; }

static void mask_from(char *s, size_t keep)
{
    size_t n = 0;
    while (is_token_char(s[keep + n]))
        n++;
    if (n == 0)
        return;
    /* "sk_test_****": the kind stays readable, the secret does not */
    memmove(s + keep + 4, s + keep + n, strlen(s + keep + n) + 1);
    memcpy(s + keep, "****", 4);
}

void upstream_redact(char *s)
{
    static const char *const prefixes[] = {"sk_live_", "sk_test_", "rk_live_", "rk_test_",
                                           "pk_live_", "pk_test_", "whsec_", "Bearer ",
                                           "bearer ", "access_token=", "refresh_token=",
                                           "client_secret="};
    for (char *p = s; *p; p++) {
        for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++) {
            size_t len = strlen(prefixes[i]);
            if (strncmp(p, prefixes[i], len) == 0) {
                mask_from(p, len);
                p += len;
                break;
            }
        }
        /* Salesforce session ids: 15-18 character org id, '!', then the secret */
        if (p[0] == '0' && p[1] == '0' && p[2] == 'D') {
            char *bang = p;
            while (is_token_char(*bang) && *bang != '!')
                bang++;
            if (*bang == '!' && bang - p >= 15 && bang - p <= 18)
                mask_from(p, (size_t)(bang - p) + 1);
        }
        if (!*p)
            break;
    }
}

void upstream_error_set(upstream_error *err, const char *sqlstate, const char *message,
                        const char *detail)
{
    memset(err, 0, sizeof *err);
    snprintf(err->sqlstate, sizeof err->sqlstate, "%s", sqlstate);
    snprintf(err->message, sizeof err->message, "%s", message ? message : "");
    snprintf(err->detail, sizeof err->detail, "%s", detail ? detail : "");
    upstream_redact(err->message);
    upstream_redact(err->detail);
}

bool upstream_error_from_transport(const char *provider, const http_response *resp,
                                   upstream_error *err)
{
    char msg[400], detail[300];
    switch (resp->outcome) {
    case HTTP_OK:
        if (resp->status == 429) {
            snprintf(msg, sizeof msg, "%s API rate limit exceeded; retries exhausted", provider);
            snprintf(detail, sizeof detail, "%s status=429", provider);
            upstream_error_set(err, "40001", msg, detail);
            return true;
        }
        if (resp->status >= 500) {
            snprintf(msg, sizeof msg, "%s API unavailable (HTTP %ld); retries exhausted",
                     provider, resp->status);
            snprintf(detail, sizeof detail, "%s status=%ld", provider, resp->status);
            upstream_error_set(err, "57P03", msg, detail);
            return true;
        }
        return false;
    case HTTP_TIMED_OUT:
        snprintf(msg, sizeof msg, "%s API did not answer within %.0f ms", provider, resp->elapsed_ms);
        snprintf(detail, sizeof detail, "%s timeout: %s", provider, resp->error);
        upstream_error_set(err, "57014", msg, detail);
        return true;
    case HTTP_CANCELLED:
        snprintf(msg, sizeof msg, "%s API request cancelled", provider);
        upstream_error_set(err, "57014", msg, NULL);
        return true;
    default:
        snprintf(msg, sizeof msg, "%s API unreachable: %s", provider, resp->error);
        snprintf(detail, sizeof detail, "%s transport failure after %.0f ms", provider, resp->elapsed_ms);
        upstream_error_set(err, "57P03", msg, detail);
        return true;
    }
}

void upstream_error_context(upstream_error *err, const char *verb, const char *object,
                            const char *id)
{
    char prefix[300];
    int n = snprintf(prefix, sizeof prefix, "Error %s %s%s%s: ", verb, object, id ? " " : "", id ? id : "");
    size_t plen = n < 0 ? 0 : (size_t)n >= sizeof prefix ? sizeof prefix - 1 : (size_t)n;
    size_t mlen = strlen(err->message);
    if (plen + mlen >= sizeof err->message)
        mlen = sizeof err->message - plen - 1; /* keep the prefix, cut the API's message */
    memmove(err->message + plen, err->message, mlen);
    memcpy(err->message, prefix, plen);
    err->message[plen + mlen] = '\0';
}
