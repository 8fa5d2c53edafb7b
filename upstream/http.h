/*
 * http: HTTP requests on the libuv loop through libcurl's multi interface.
 *
 * libcurl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION → uv_poll) and when to
 * wake it (CURLMOPT_TIMERFUNCTION → uv_timer); nothing here blocks the loop, and any
 * number of requests may be in flight. Connections are kept alive and reused, and HTTP/2
 * is negotiated (and multiplexed) where a TLS server offers it.
 *
 * One exchange, no retries: upstream/call layers rate limits and retries on top.
 * Header values are kept only in memory and never logged, since requests carry API keys.
 */
#ifndef APIGRES_HTTP_H
#define APIGRES_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "proxy/pgwire.h"

typedef struct http_client http_client;
typedef struct http_request http_request;

/* How an exchange ended, in terms the retry policy can reason about. */
enum http_outcome {
    HTTP_OK = 0,          /* a response arrived; see status */
    HTTP_CONNECT_FAILED,  /* nothing was sent: safe to retry any request */
    HTTP_SEND_FAILED,     /* the connection broke: the server may have acted on it */
    HTTP_TIMED_OUT,       /* no complete response in time: the server may have acted on it */
    HTTP_TOO_LARGE,       /* response body above max_body */
    HTTP_CANCELLED,
    HTTP_FAILED,          /* anything else libcurl reports (TLS, bad URL, out of memory) */
};

typedef struct http_response {
    enum http_outcome outcome;
    long status;         /* HTTP status, 0 without a response */
    pgbuf body;          /* owned by the request; valid during the callback */
    pgbuf headers;       /* "name: value\r\n" lines of the final response */
    double elapsed_ms;
    long http_version;   /* 1 (HTTP/1.x) or 2 (HTTP/2, negotiated over TLS) */
    char error[256];     /* libcurl's message when outcome != HTTP_OK */
} http_response;

typedef void (*http_done_cb)(http_request *req, http_response *resp, void *data);

typedef struct http_options {
    const char *method;        /* "GET", "POST", "PATCH", "DELETE" */
    const char *url;
    const char *const *headers; /* NULL-terminated "Name: value" strings; copied */
    const char *body;          /* copied; may be NULL */
    size_t body_len;
    long timeout_ms;           /* whole exchange; 0 = 30 s */
    long connect_timeout_ms;   /* 0 = 10 s */
    const char *ca_file;       /* PEM bundle of CAs to trust instead of the system's; NULL = system */
    size_t max_body;           /* 0 = 64 MiB */
    /* Use a new connection: libcurl silently re-sends a request whose reused connection
     * closed before any answer, which must not happen to a create that could act twice. */
    bool fresh_connection;
} http_options;

/* Returns NULL on failure. max_host_connections 0 = libcurl's default (unlimited). */
http_client *http_client_new(uv_loop_t *loop, long max_host_connections);
/* Cancels what is in flight (callbacks run with HTTP_CANCELLED) and frees the client once
 * its handles are closed; the loop must run for that. */
void http_client_free(http_client *hc);
/* Starts a request; the callback runs exactly once, on the loop, never from inside this
 * call. Returns NULL (and no callback) if the request could not be created. */
http_request *http_request_start(http_client *hc, const http_options *opts, http_done_cb cb,
                                 void *data);
/* Ends a request early; its callback runs with HTTP_CANCELLED before this returns. */
void http_request_cancel(http_request *req);
/* Hands the requests started since the loop last ran to the network now instead of at the
 * loop's next turn: for a caller about to be busy for a while. Completions are still
 * reported from the loop. Not from inside a libcurl callback. */
void http_client_flush(http_client *hc);
/* The value of header name (case-insensitive) in the response, copied into out; 0 or -1. */
int http_response_header(const http_response *resp, const char *name, char *out, size_t outlen);
int http_client_in_flight(const http_client *hc);

#endif
