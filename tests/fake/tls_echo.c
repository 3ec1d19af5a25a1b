/* A small HTTPS/1.1 echo server for tests. See tests/fake/tls_echo.h. */
#include "tests/fake/tls_echo.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

struct tls_echo {
    int fd;
    int port;
    char ca[512];
    SSL_CTX *ctx;
    pthread_t thread;
    atomic_bool stop;
    atomic_uint requests;
    atomic_uint connections;
};

/* A P-256 key and a self-signed certificate for 127.0.0.1, valid a day. */
static int tls_echo__cert(struct tls_echo *s)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    int ok = key != NULL && x != NULL;
    if (ok) {
        X509_set_version(x, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
        X509_gmtime_adj(X509_getm_notBefore(x), -60);
        X509_gmtime_adj(X509_getm_notAfter(x), 86400);
        X509_set_pubkey(x, key);
        X509_NAME *name = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"127.0.0.1", -1,
                                   -1, 0);
        X509_set_issuer_name(x, name);
        X509V3_CTX v3;
        X509V3_set_ctx_nodb(&v3);
        X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
        X509_EXTENSION *san = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "IP:127.0.0.1");
        X509_EXTENSION *bc = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "CA:TRUE");
        ok = san != NULL && bc != NULL && X509_add_ext(x, san, -1) && X509_add_ext(x, bc, -1) &&
             X509_sign(x, key, EVP_sha256()) > 0;
        X509_EXTENSION_free(san);
        X509_EXTENSION_free(bc);
    }
    FILE *f = ok ? fopen(s->ca, "w") : NULL;
    ok = f != NULL && PEM_write_X509(f, x) == 1;
    if (f != NULL)
        fclose(f);
    ok = ok && SSL_CTX_use_certificate(s->ctx, x) == 1 && SSL_CTX_use_PrivateKey(s->ctx, key) == 1;
    X509_free(x);
    EVP_PKEY_free(key);
    return ok ? 0 : -1;
}

/* Pick h2 when the client offers it, as most HTTPS servers do: a client
 * that then speaks HTTP/1.1 is not understood (the connection is closed). */
static int tls_echo__alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                          const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    for (unsigned int i = 0; i + 1 <= inlen && i + 1 + in[i] <= inlen; i += 1u + in[i]) {
        if (in[i] == 2 && memcmp(in + i + 1, "h2", 2) == 0) {
            *out = in + i + 1;
            *outlen = 2;
            return SSL_TLSEXT_ERR_OK;
        }
    }
    for (unsigned int i = 0; i + 1 <= inlen && i + 1 + in[i] <= inlen; i += 1u + in[i]) {
        if (in[i] == 8 && memcmp(in + i + 1, "http/1.1", 8) == 0) {
            *out = in + i + 1;
            *outlen = 8;
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_NOACK;
}

/* Answer every whole request in buf; returns the bytes used. */
static size_t tls_echo__answer(struct tls_echo *s, SSL *ssl, const char *buf, size_t len)
{
    size_t used = 0;
    char *out = NULL;
    size_t out_len = 0;
    for (;;) {
        const char *p = buf + used;
        size_t avail = len - used;
        const char *end = NULL;
        for (size_t i = 3; i < avail; i++) {
            if (memcmp(p + i - 3, "\r\n\r\n", 4) == 0) {
                end = p + i + 1;
                break;
            }
        }
        if (end == NULL)
            break;
        size_t head = (size_t)(end - p);
        size_t clen = 0;
        for (const char *l = p; l < end; l = (const char *)memchr(l, '\n', (size_t)(end - l)) + 1) {
            if (strncasecmp(l, "Content-Length:", 15) == 0)
                clen = (size_t)strtoul(l + 15, NULL, 10);
        }
        if (avail - head < clen)
            break;
        char hdr[128];
        int hl = snprintf(hdr, sizeof(hdr),
                          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                          "Content-Length: %zu\r\n\r\n",
                          clen);
        out = realloc(out, out_len + (size_t)hl + clen);
        memcpy(out + out_len, hdr, (size_t)hl);
        memcpy(out + out_len + hl, end, clen);
        out_len += (size_t)hl + clen;
        used += head + clen;
        atomic_fetch_add(&s->requests, 1);
    }
    if (out_len > 0)
        SSL_write(ssl, out, (int)out_len);
    free(out);
    return used;
}

static void tls_echo__serve(struct tls_echo *s, int cfd)
{
    SSL *ssl = SSL_new(s->ctx);
    SSL_set_fd(ssl, cfd);
    if (SSL_accept(ssl) == 1) {
        const unsigned char *proto = NULL;
        unsigned int plen = 0;
        SSL_get0_alpn_selected(ssl, &proto, &plen);
        if (plen == 2 && memcmp(proto, "h2", 2) == 0) {
            SSL_free(ssl); /* this fake speaks no HTTP/2 */
            close(cfd);
            return;
        }
        char buf[65536];
        size_t len = 0;
        while (!atomic_load(&s->stop)) {
            struct pollfd pfd = {.fd = cfd, .events = POLLIN};
            if (SSL_pending(ssl) == 0 && poll(&pfd, 1, 50) <= 0)
                continue;
            int n = SSL_read(ssl, buf + len, (int)(sizeof(buf) - len));
            if (n <= 0)
                break;
            len += (size_t)n;
            size_t used = tls_echo__answer(s, ssl, buf, len);
            memmove(buf, buf + used, len - used);
            len -= used;
        }
    }
    SSL_free(ssl);
    close(cfd);
}

static void *tls_echo__main(void *arg)
{
    struct tls_echo *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        int cfd = accept(s->fd, NULL, NULL);
        if (cfd < 0)
            continue;
        atomic_fetch_add(&s->connections, 1);
        tls_echo__serve(s, cfd);
    }
    return NULL;
}

struct tls_echo *tls_echo_start(const char *dir)
{
    struct tls_echo *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    snprintf(s->ca, sizeof(s->ca), "%s/ca.pem", dir);
    s->ctx = SSL_CTX_new(TLS_server_method());
    if (s->ctx != NULL)
        SSL_CTX_set_alpn_select_cb(s->ctx, tls_echo__alpn, NULL);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    if (s->ctx == NULL || s->fd < 0 || tls_echo__cert(s) < 0 ||
        bind(s->fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s->fd, 16) != 0 ||
        getsockname(s->fd, (struct sockaddr *)&a, &al) != 0 ||
        pthread_create(&s->thread, NULL, tls_echo__main, s) != 0) {
        if (s->fd >= 0)
            close(s->fd);
        SSL_CTX_free(s->ctx);
        free(s);
        return NULL;
    }
    s->port = ntohs(a.sin_port);
    return s;
}

int tls_echo_port(const struct tls_echo *s)
{
    return s->port;
}

const char *tls_echo_ca(const struct tls_echo *s)
{
    return s->ca;
}

unsigned tls_echo_requests(const struct tls_echo *s)
{
    return atomic_load(&((struct tls_echo *)s)->requests);
}

unsigned tls_echo_connections(const struct tls_echo *s)
{
    return atomic_load(&((struct tls_echo *)s)->connections);
}

void tls_echo_stop(struct tls_echo *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    close(s->fd);
    SSL_CTX_free(s->ctx);
    free(s);
}
