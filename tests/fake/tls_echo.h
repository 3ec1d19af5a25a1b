/* A small HTTPS/1.1 server for tests: TLS with a certificate made at start
 * for 127.0.0.1, kept-alive connections, pipelined requests answered in
 * order (each with its own request body echoed back as JSON), on its own
 * thread with blocking OpenSSL calls, one connection at a time. Like most
 * HTTPS servers it picks h2 when a client offers it in ALPN, and then
 * hangs up (it speaks no HTTP/2): a client that offers h2 and writes
 * HTTP/1.1 fails.
 *
 *     struct tls_echo *s = tls_echo_start(dir);   // writes dir/ca.pem
 *     ... "https://127.0.0.1:<tls_echo_port(s)>" with CA file dir/ca.pem
 *     tls_echo_stop(s);
 */
#ifndef HB_TESTS_FAKE_TLS_ECHO_H
#define HB_TESTS_FAKE_TLS_ECHO_H

struct tls_echo;

/** Start: a fresh key and self-signed certificate (its PEM written to
 *  dir/ca.pem, for the client to trust), listening on 127.0.0.1 with an
 *  ephemeral port. NULL on failure. */
struct tls_echo *tls_echo_start(const char *dir);

int tls_echo_port(const struct tls_echo *s);

/** The CA file path (borrowed). */
const char *tls_echo_ca(const struct tls_echo *s);

/** Requests answered and connections accepted so far (any thread). */
unsigned tls_echo_requests(const struct tls_echo *s);
unsigned tls_echo_connections(const struct tls_echo *s);

/** Stop, join and free. */
void tls_echo_stop(struct tls_echo *s);

#endif
