/* The HTTP client on the loop: libcurl multi driven by uv_poll and uv_timer.
 *
 * One struct http_client per loop holds one curl multi handle, so every
 * request made through it shares the connection cache (keep-alive, HTTP/2
 * multiplexing over TLS). Nothing blocks the loop: name resolution runs on
 * curl's resolver threads, sockets are watched with uv_poll.
 *
 * A request's life:
 *
 *     struct http_request *req = http_request_new(client, "POST", url);
 *     http_request_header_add(req, "Authorization", auth);
 *     http_request_json_set(req, body);
 *     http_request_start(req, on_done, ctx);     // the client owns req now
 *     ...
 *     static void on_done(struct http_request *req, int rc, void *ctx)
 *     {
 *         // rc: 0 when a whole HTTP response arrived (any status, also 4xx
 *         // and 5xx: read http_request_status()); else HB_ETIMEOUT,
 *         // HB_ECANCELED, UV_ECONNREFUSED, HB_EOVERFLOW (body too large) ...
 *         // req, its headers and body are valid until this returns.
 *     }
 *
 * The completion callback fires exactly once per started request, always
 * from the loop and never from inside http_request_start() or
 * http_request_cancel(). After it returns the request is freed.
 *
 * Streaming (SSE): http_request_stream_set() gives a headers callback, which
 * fires once when the final response headers are complete (status and
 * headers readable), and a data callback, which receives body bytes as they
 * arrive instead of collecting them. Both run inside libcurl: from there a
 * caller may start, cancel and close (those are deferred to the loop), but
 * must not block.
 *
 * Threads: a client and its requests belong to the loop's thread. Call
 * http_global_init() once from main() before any thread starts. */
#ifndef HB_HTTP_H
#define HB_HTTP_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct http_client;
struct http_request;

/** Client-wide defaults; a request may override the timeouts. A zeroed
 *  struct (or NULL) gives the defaults named on each field. */
struct http_client_options {
    uint64_t timeout_ms;         /* whole request; 0: 30000; UINT64_MAX: none */
    uint64_t connect_timeout_ms; /* TCP + TLS handshake; 0: 10000 */
    size_t max_body;             /* collected response body limit in bytes; 0: 8 MiB */
    long max_host_connections;   /* parallel connections per host; 0: unlimited */
    long max_idle_connections;   /* open connections kept for reuse; 0: 128 */
    const char *user_agent;      /* copied; NULL: "haibot/0.1" */
    const char *ca_file;         /* PEM file of CAs to trust instead of the system's
                                    (a private CA); copied; NULL: the system's */
};

/** Completion: rc is 0 or a negative code (see the top of this file). */
typedef void (*http_done_cb)(struct http_request *req, int rc, void *data);

/** Final response headers are complete. Return 0 to go on, or a negative
 *  code to stop the request; the completion callback then gets that code. */
typedef int (*http_headers_cb)(struct http_request *req, void *data);

/** Body bytes as they arrive (borrowed for the call). Return 0 to go on, or
 *  a negative code to stop the request with that code. */
typedef int (*http_data_cb)(struct http_request *req, const char *bytes, size_t len, void *data);

/** Initialise libcurl once per process (curl_global_init). main() calls it
 *  before starting threads; tests and benchmarks call it too, it is
 *  idempotent. Returns 0 or HB_EIO. */
int http_global_init(void);

/** Release libcurl's global state; call at exit after every client closed. */
void http_global_shutdown(void);

/** Make a client on loop (borrowed; must outlive the client). opts is copied
 *  and may be NULL. Returns 0 and *out, or HB_ENOMEM / HB_EIO. */
int http_client_new(uv_loop_t *loop, const struct http_client_options *opts,
                    struct http_client **out);

/** Close the client: every started request completes with HB_ECANCELED, the
 *  connections and all uv handles close, the client is freed, and then cb
 *  (may be NULL) runs with data. cb always runs from the loop, later. After
 *  this call no new request may be started. */
void http_client_close(struct http_client *client, void (*cb)(void *data), void *data);

/** Requests started and not yet completed. */
size_t http_client_active(const struct http_client *client);

/** Socket watches the client has made (one per connection while libcurl
 *  keeps it: a request on a kept connection makes none). */
unsigned long http_client_watches_made(const struct http_client *client);

/** Make a request (method and url are copied). Returns NULL on bad
 *  arguments or out of memory. The caller owns it until
 *  http_request_start(); one never started is freed with http_request_free(). */
struct http_request *http_request_new(struct http_client *client, const char *method,
                                      const char *url);

/** Free a request that was never started. */
void http_request_free(struct http_request *req);

/** Add a request header (both copied). Returns 0, HB_EINVAL or HB_ENOMEM. */
int http_request_header_add(struct http_request *req, const char *name, const char *value);

/** Set the request body (copied) and its Content-Type (may be NULL).
 *  Returns 0, HB_EINVAL or HB_ENOMEM. */
int http_request_body_set(struct http_request *req, const void *body, size_t len,
                          const char *content_type);

/** Serialise json (borrowed) as the body with Content-Type application/json. */
int http_request_json_set(struct http_request *req, const cJSON *json);

/** Add a multipart/form-data text field (value copied; content_type may be
 *  NULL, e.g. "application/json" for Discord's payload_json). The request
 *  becomes a multipart upload; do not also set a body. */
int http_request_form_field_add(struct http_request *req, const char *name, const char *value,
                                const char *content_type);

/** Add a multipart/form-data file part from memory (all copied; content_type
 *  may be NULL). Discord: name "files[0]"; Telegram sendPhoto: "photo". */
int http_request_form_file_add(struct http_request *req, const char *name, const char *filename,
                               const char *content_type, const void *bytes, size_t len);

/** Override the client's timeouts for this request. timeout_ms: whole
 *  request (UINT64_MAX: none, for long streams); connect_timeout_ms: 0 keeps
 *  the client's. */
void http_request_timeout_set(struct http_request *req, uint64_t timeout_ms,
                              uint64_t connect_timeout_ms);

/** Fail the request with HB_ETIMEOUT when no body byte arrives for idle_ms
 *  (libcurl's low-speed check: whole seconds, rounded up). 0: off. */
void http_request_idle_timeout_set(struct http_request *req, uint64_t idle_ms);

/** Limit of the collected body (HB_EOVERFLOW beyond it). 0: the client's. */
void http_request_max_body_set(struct http_request *req, size_t max_body);

/** Stream the body: headers_cb (may be NULL) and data_cb get the callback
 *  data given to http_request_start(). The body is then not collected. */
void http_request_stream_set(struct http_request *req, http_headers_cb headers_cb,
                             http_data_cb data_cb);

/** Send the request. The client owns req from here, whatever the result:
 *  on success cb will fire once; on failure (HB_EINVAL for a NULL cb,
 *  HB_ESTATE once the client is closing, HB_ENOMEM, HB_EIO) req is already
 *  freed and cb will not fire. A request started before is left alone and
 *  gets HB_EINVAL. */
int http_request_start(struct http_request *req, http_done_cb cb, void *data);

/** Stop a started request. Its completion callback fires later from the
 *  loop with HB_ECANCELED (unless it had already completed). */
void http_request_cancel(struct http_request *req);

/** The callback data given to http_request_start(). */
void *http_request_data(const struct http_request *req);

/** The method and URL as given (the URL may hold secrets: do not log it
 *  unredacted). */
const char *http_request_method(const struct http_request *req);
const char *http_request_url(const struct http_request *req);

/** Response status (200, 429, ...), 0 before any response arrived. */
int http_request_status(const struct http_request *req);

/** A response header value by name, case-insensitive (the first one when
 *  repeated), or NULL. Borrowed until the completion callback returns. */
const char *http_request_header(const struct http_request *req, const char *name);

/** Number of response headers and the i-th one (borrowed, as above). */
size_t http_request_header_count(const struct http_request *req);
int http_request_header_at(const struct http_request *req, size_t i, const char **name,
                           const char **value);

/** The collected response body (NUL-terminated; not counted in *len), or
 *  an empty string when streaming. Borrowed until completion returns. */
const char *http_request_body(const struct http_request *req, size_t *len);

/** A short error text (redacted) when rc != 0, else "". */
const char *http_request_error(const struct http_request *req);

/** Milliseconds from start to completion (or to now while running). */
double http_request_elapsed_ms(const struct http_request *req);

/* Raw connections. libcurl resolves, connects, tunnels through a proxy when
 * one is set and does TLS (CURLOPT_CONNECT_ONLY, offering only http/1.1 in
 * ALPN); the caller then speaks HTTP/1.1 over the connection itself (the
 * pipelined Bot API calls of net/http_pipe.h):
 *
 *     struct http_request *c = http_connection_new(client, "https://host");
 *     http_request_start(c, on_connected, ctx);  // rc 0: connected
 *     // from on_connected on: poll http_connection_fd(c) yourself, move
 *     // bytes with http_connection_send/recv, and http_request_free(c)
 *     // when done (that closes it).
 *
 * Only a failed connection is freed by the client after its callback. A
 * client closes only once every connection handed over has been freed. */

/** A raw connection to url's host and port (its path is ignored). */
struct http_request *http_connection_new(struct http_client *client, const char *url);

/** The connected socket, or -1. Poll it; do not read or close it. */
int http_connection_fd(const struct http_request *req);

/** Send up to len bytes: 0 and *sent, UV_EAGAIN (wait until writable;
 *  with TLS, offer the same bytes again), or HB_EIO. */
int http_connection_send(struct http_request *req, const void *buf, size_t len, size_t *sent);

/** Receive up to cap bytes: 0 and *got (0 bytes: the peer closed),
 *  UV_EAGAIN (nothing now), or HB_EIO. */
int http_connection_recv(struct http_request *req, void *buf, size_t cap, size_t *got);

#endif
