#include "proxy/tls.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

struct tls_conn {
    SSL *ssl;
    BIO *in;  /* ciphertext from the peer, read by the engine */
    BIO *out; /* ciphertext for the peer, written by the engine */
    bool failed;
    char error[256];
};

/* TLS 1.2 suites with forward secrecy and AEAD only (TLS 1.3's defaults are all that). */
static const char TLS12_CIPHERS[] = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL";

/* OpenSSL's queued errors as one line (and the queue emptied). */
static void openssl_error(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    char reason[200] = "unknown error";
    if (e)
        ERR_error_string_n(e, reason, sizeof reason);
    ERR_clear_error();
    snprintf(err, errlen, "%s: %s", what, reason);
}

static SSL_CTX *new_context(const SSL_METHOD *method, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(method);
    if (!ctx) {
        openssl_error(err, errlen, "TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1) {
        openssl_error(err, errlen, "TLS cipher list");
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

SSL_CTX *tls_server_context(const char *cert_file, const char *key_file, char *err, size_t errlen)
{
    SSL_CTX *ctx = new_context(TLS_server_method(), err, errlen);
    if (!ctx)
        return NULL;
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_num_tickets(ctx, 0); /* Postgres clients do not resume sessions */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        openssl_error(err, errlen, "tls_cert_file");
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        openssl_error(err, errlen, "tls_key_file");
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        openssl_error(err, errlen, "tls_key_file does not match tls_cert_file");
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

SSL_CTX *tls_client_context(tls_verify verify, const char *root_file, char *err, size_t errlen)
{
    SSL_CTX *ctx = new_context(TLS_client_method(), err, errlen);
    if (!ctx)
        return NULL;
    if (verify == TLS_VERIFY_NONE) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        return ctx;
    }
    if (!root_file || !*root_file || SSL_CTX_load_verify_locations(ctx, root_file, NULL) != 1) {
        if (!root_file || !*root_file)
            snprintf(err, errlen, "database: sslmode verify-ca and verify-full need sslrootcert");
        else
            openssl_error(err, errlen, "database: sslrootcert");
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
}

static tls_conn *new_conn(SSL_CTX *ctx)
{
    tls_conn *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ssl = SSL_new(ctx);
    t->in = BIO_new(BIO_s_mem());
    t->out = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->in || !t->out) {
        SSL_free(t->ssl);
        BIO_free(t->in);
        BIO_free(t->out);
        free(t);
        return NULL;
    }
    BIO_set_mem_eof_return(t->in, -1); /* empty means "more to come", not end of file */
    SSL_set_bio(t->ssl, t->in, t->out); /* the SSL owns both from here */
    return t;
}

tls_conn *tls_accept(SSL_CTX *ctx)
{
    tls_conn *t = new_conn(ctx);
    if (t)
        SSL_set_accept_state(t->ssl);
    return t;
}

tls_conn *tls_connect(SSL_CTX *ctx, const char *host, bool check_host)
{
    tls_conn *t = new_conn(ctx);
    if (!t)
        return NULL;
    unsigned char addr[16];
    bool is_address = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
    bool ok = true;
    if (!is_address)
        ok = SSL_set_tlsext_host_name(t->ssl, host) == 1;
    if (ok && check_host)
        ok = is_address ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host) == 1
                        : SSL_set1_host(t->ssl, host) == 1;
    if (!ok) {
        tls_free(t);
        return NULL;
    }
    SSL_set_connect_state(t->ssl);
    SSL_do_handshake(t->ssl); /* writes the ClientHello, then wants the server's answer */
    ERR_clear_error();
    return t;
}

void tls_free(tls_conn *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    free(t);
}

static int fail(tls_conn *t, const char *what)
{
    if (!t->failed) {
        openssl_error(t->error, sizeof t->error, what);
        long verify = SSL_get_verify_result(t->ssl);
        size_t used = strlen(t->error);
        if (verify != X509_V_OK)
            snprintf(t->error + used, sizeof t->error - used, " (%s)", X509_verify_cert_error_string(verify));
    }
    t->failed = true;
    return -1;
}

int tls_feed(tls_conn *t, const char *data, size_t len, pgbuf *plain)
{
    if (t->failed)
        return -1;
    if (len > 0 && BIO_write(t->in, data, (int)len) != (int)len)
        return fail(t, "TLS");
    for (;;) {
        char chunk[16384];
        int n = SSL_read(t->ssl, chunk, sizeof chunk);
        if (n > 0) {
            pgbuf_put(plain, chunk, (size_t)n);
            if (plain->failed) {
                snprintf(t->error, sizeof t->error, "TLS: out of memory");
                t->failed = true;
                return -1;
            }
            continue;
        }
        switch (SSL_get_error(t->ssl, n)) {
        case SSL_ERROR_WANT_READ:
        case SSL_ERROR_ZERO_RETURN: /* close_notify: the socket's end of file follows */
            return 0;
        default:
            return fail(t, SSL_is_init_finished(t->ssl) ? "TLS" : "TLS handshake");
        }
    }
}

int tls_encrypt(tls_conn *t, const char *data, size_t len, pgbuf *out)
{
    if (t->failed)
        return -1;
    while (len > 0) {
        int step = len > (1u << 30) ? 1 << 30 : (int)len;
        int n = SSL_write(t->ssl, data, step);
        if (n <= 0)
            return fail(t, "TLS");
        data += n;
        len -= (size_t)n;
    }
    return tls_take_output(t, out);
}

int tls_take_output(tls_conn *t, pgbuf *out)
{
    size_t pending;
    while ((pending = BIO_ctrl_pending(t->out)) > 0) {
        char chunk[16384];
        int n = BIO_read(t->out, chunk, pending < sizeof chunk ? (int)pending : (int)sizeof chunk);
        if (n <= 0)
            return fail(t, "TLS");
        pgbuf_put(out, chunk, (size_t)n);
        if (out->failed) {
            snprintf(t->error, sizeof t->error, "TLS: out of memory");
            t->failed = true;
            return -1;
        }
    }
    return t->failed ? -1 : 0;
}

bool tls_established(const tls_conn *t)
{
    return !t->failed && SSL_is_init_finished(t->ssl);
}

bool tls_same_certificate(const tls_conn *ours, const tls_conn *theirs)
{
    X509 *mine = SSL_get_certificate(ours->ssl); /* not a new reference */
    X509 *peer = SSL_get1_peer_certificate(theirs->ssl);
    bool same = mine && peer && X509_cmp(mine, peer) == 0;
    X509_free(peer);
    return same;
}

const char *tls_error(const tls_conn *t)
{
    return t->error[0] ? t->error : "TLS: unknown error";
}

const char *tls_describe(const tls_conn *t, char *buf, size_t len)
{
    snprintf(buf, len, "%s %s", SSL_get_version(t->ssl), SSL_get_cipher_name(t->ssl));
    return buf;
}
