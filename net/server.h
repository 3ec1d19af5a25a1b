/* The daemon's HTTP server: HTTP/1.1 on uv_tcp handles of the daemon's
 * libuv loop (the same loop as everything else), requests read by
 * http-parser, serving routes registered by method and exact path.
 *
 * Hostile input is bounded: a request's head (request line and headers) is
 * at most 8 KiB (431 beyond), a body at most max_body (413), with a
 * Content-Length or chunked (trailers are dropped). A malformed request
 * line, header or chunk, two different Content-Length values, a length
 * beside chunked, or a version other than HTTP/1.0 and 1.1 is refused
 * (400, 505), as is a method or transfer coding the server does not know
 * (501); the connection closes after the answer. Each connection holds
 * one request at a time: it stops reading while the request is handled,
 * and parses a pipelined next one only after the answer is written. A
 * request must arrive whole within 30 s; at most 512 connections are open
 * and 100 requests served on one. The process should ignore SIGPIPE (the
 * daemon does).
 *
 * A route's handler gets a request: method, path, query, the headers the
 * route asked for, and the whole raw body (up to the server's limit; a
 * larger body is refused with 413 before the handler sees it). The handler
 * answers when it is ready, at once or later from any loop callback, with
 * server_respond(); webhooks answer only after their ledger commit.
 *
 * Ownership: the request belongs to the server until the handler is
 * called, then to the handler until server_respond(), which frees it. If
 * the client goes away first the request stays valid; the answer is then
 * dropped. A request must be answered exactly once, also while the server
 * is closing (the answer is then dropped).
 *
 * Shutting down: server_stop() from inside the loop (it closes the
 * listener and every connection), then server_free() after uv_run() has
 * returned; uv_loop_close() then returns 0. */
#ifndef HB_SERVER_H
#define HB_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define SERVER_HEADERS_MAX 4         /* headers a route may ask for */
#define SERVER_HEADER_VALUE_MAX 1024 /* longer header values are refused (431) */

struct server;
struct server_request;

struct server_options {
    const char *address;       /* listen address; NULL: "127.0.0.1" */
    int port;                  /* 0: an ephemeral port (tests) */
    size_t max_body;           /* largest request body accepted, in bytes; 0: 1 MiB */
    uint64_t write_timeout_ms; /* an answer not taken by the client in this long closes its
                                  connection; 0: 60 s */
};

/** A route's handler; req is the handler's until server_respond(). */
typedef void (*server_handler_fn)(struct server_request *req, void *data);

/** Listen on loop (borrowed; it must outlive the server). Returns NULL
 *  when the address cannot be listened on (in use, not local; logged). If
 *  the port is taken in the instant between the check and the listen, it
 *  returns a server whose server_port() is -1 (logged): close and free it
 *  as any other, since its listener is already a handle on the loop. */
struct server *server_new(uv_loop_t *loop, const struct server_options *opts);

/** The port listened on (useful with port 0), or -1 when listening failed. */
int server_port(const struct server *srv);

/** Serve method ("GET", "POST") on the exact path. headers lists the
 *  request headers the handler reads (names, case-insensitive, under 64
 *  bytes; at most SERVER_HEADERS_MAX, NULL-terminated; NULL: none). Strings are copied.
 *  Returns 0, HB_EINVAL, HB_EEXISTS (path and method taken) or HB_ENOMEM. */
int server_route_add(struct server *srv, const char *method, const char *path,
                     const char *const *headers, server_handler_fn fn, void *data);

/** Begin closing, from inside the loop: stop listening, drop connections. */
void server_stop(struct server *srv);

/** Finish closing after uv_run() returned and free the server. NULL is
 *  fine; calls server_stop() first when needed. */
void server_free(struct server *srv);

/** The request's method, path (without the query), and query ("" if none). */
const char *server_request_method(const struct server_request *req);
const char *server_request_path(const struct server_request *req);
const char *server_request_query(const struct server_request *req);

/** A header the route asked for, or NULL when absent (borrowed from req). */
const char *server_request_header(const struct server_request *req, const char *name);

/** The raw body (NUL-terminated for convenience; *len excludes the NUL). */
const char *server_request_body(const struct server_request *req, size_t *len);

/** Answer and free req: status, content type (NULL: text/plain), body
 *  (copied; may be NULL when len is 0). extra_header may be NULL, or one
 *  "Name: value" line (WWW-Authenticate for a 401). */
void server_respond(struct server_request *req, int status, const char *content_type,
                    const void *body, size_t len, const char *extra_header);

/** Begin a streamed answer instead of server_respond(): the head (status,
 *  content type, optional extra header line) with chunked transfer coding,
 *  written now; the body follows in server_stream_write() calls, each
 *  sent as it comes; server_stream_end() ends and frees req. Returns 0, or
 *  HB_ECANCELED when nobody is there to answer (the client left, the
 *  server closes): the handler still ends with server_stream_end(). */
int server_stream_start(struct server_request *req, int status, const char *content_type,
                        const char *extra_header);

/** Send len bytes of a streamed answer (copied; 0 bytes sends nothing).
 *  Returns 0 or HB_ECANCELED (nobody reads any more). */
int server_stream_write(struct server_request *req, const void *data, size_t len);

/** End a streamed answer (or one whose start failed) and free req. */
void server_stream_end(struct server_request *req);

/** cb(data) runs once if the client goes while the handler still owns
 *  req, that is before server_respond or server_stream_end: its connection
 *  closed, or it sent its end (EOF). The handler must answer or end req
 *  all the same, and may do so from cb; after an EOF the answer is still
 *  written (a client that only half-closed gets it), then the connection
 *  closes. The connection is read while a request is handled (up to 64 KiB
 *  ahead, for a request pipelined behind it), which is how its end is
 *  seen. cb NULL: none. */
void server_request_on_gone(struct server_request *req, void (*cb)(void *data), void *data);

/** Writes the body of a refusal the server makes itself (a body past
 *  max_body, a path or method no route takes, a malformed request) into
 *  buf (cap bytes) as application/json; returns its length, or 0 for the
 *  server's plain text. reason is the server's own text (ASCII, ending in
 *  a newline). */
typedef size_t (*server_refusal_fn)(int status, const char *reason, char *buf, size_t cap,
                                    void *data);

/** Refusals of requests whose path starts with one of prefixes (NULL-
 *  ended, at most 4, copied) are written by fn, for an API whose clients
 *  read only its own error shape. Returns 0, HB_EINVAL or HB_ENOMEM. */
int server_refusals_json(struct server *srv, const char *const *prefixes, server_refusal_fn fn,
                         void *data);

/** Requests handed to handlers and not yet answered (tests, shutdown). */
size_t server_pending(const struct server *srv);

#endif
