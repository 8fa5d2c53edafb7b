/*
 * tls: TLS on the proxy's two legs, OpenSSL over memory BIOs.
 *
 * libuv keeps the sockets: reads, writes and backpressure stay where they are. A tls_conn
 * is one TLS session. Ciphertext read from the socket goes in through tls_feed, which
 * appends the plaintext it yields (and drives the handshake); plaintext to send goes
 * through tls_encrypt, which appends ciphertext. After every call the engine may have
 * bytes of its own to send (handshake records, alerts, session tickets): tls_take_output
 * appends them, and the caller writes them to the socket in that order, before anything
 * encrypted later.
 *
 * Only TLS 1.2 and 1.3; OpenSSL's default cipher suites for 1.3 and forward-secret AEAD
 * ones for 1.2. Errors are kept as text for the log: they never contain key material.
 */
#ifndef APIGRES_TLS_H
#define APIGRES_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "proxy/pgwire.h"

typedef struct tls_conn tls_conn;

/* How the proxy checks the database's certificate (libpq's sslmode). */
typedef enum tls_verify {
    TLS_VERIFY_NONE, /* require: encrypted, not authenticated */
    TLS_VERIFY_CA,   /* verify-ca: the chain ends at root_file */
    TLS_VERIFY_FULL, /* verify-full: and the certificate names the host */
} tls_verify;

/* The context for clients of the proxy, from PEM files. NULL with a message in err when a
 * file does not load or the key does not match the certificate. */
SSL_CTX *tls_server_context(const char *cert_file, const char *key_file, char *err, size_t errlen);
/* The context for connections to the database. root_file is needed unless TLS_VERIFY_NONE. */
SSL_CTX *tls_client_context(tls_verify verify, const char *root_file, char *err, size_t errlen);

/* A session accepting a client's handshake. NULL when out of memory. */
tls_conn *tls_accept(SSL_CTX *ctx);
/* A session towards host (sent as SNI unless it is an address; checked against the
 * certificate when check_host). Its ClientHello is ready for tls_take_output at once. */
tls_conn *tls_connect(SSL_CTX *ctx, const char *host, bool check_host);
void tls_free(tls_conn *t);

/* Each returns 0, or -1 when the session failed (tls_error says why; it stays failed). */
int tls_feed(tls_conn *t, const char *data, size_t len, pgbuf *plain);
int tls_encrypt(tls_conn *t, const char *data, size_t len, pgbuf *out);
int tls_take_output(tls_conn *t, pgbuf *out);

bool tls_established(const tls_conn *t);
/* Whether the certificate `ours` (a session we accepted) presents is the one the peer of
 * `theirs` (a session we connected) presented: then SCRAM channel binding
 * (tls-server-end-point, a hash of that certificate) means the same on both connections. */
bool tls_same_certificate(const tls_conn *ours, const tls_conn *theirs);
const char *tls_error(const tls_conn *t);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384", for the log. */
const char *tls_describe(const tls_conn *t, char *buf, size_t len);

#endif
