/* A small scriptable HTTP/1.1 server for tests, on libuv.
 *
 * It listens on 127.0.0.1 with an ephemeral port, on a loop the caller
 * passes in (the test's own loop), or on its own thread and loop
 * (httpd_thread_start, for benchmarks). Every parsed request goes to one
 * handler callback with a response object, on which the handler queues
 * steps that run in order:
 *
 *     httpd_response_header_add(res, "X-RateLimit-Bucket", "abc");
 *     httpd_response_send(res, 200, "application/json", "{}", 2);   // at once
 *
 *     httpd_response_start(res, 200, "text/event-stream");  // chunked
 *     httpd_response_chunk(res, "data: 1\n\n", 9);
 *     httpd_response_delay(res, 50);                        // then wait 50 ms
 *     httpd_response_chunk(res, "data: 2\n\n", 9);
 *     httpd_response_end(res);
 *
 * Doing nothing never answers; httpd_response_abort() closes the
 * connection at that point of the script (mid-body). httpd_response_call()
 * runs a function at that point, which may queue more steps, so a fake can
 * wait for an event (poll a flag, re-queue itself) before sending on.
 *
 * Connections are kept alive across requests unless the client asks for
 * "Connection: close"; httpd_connections() counts accepted connections so
 * tests can assert reuse. Request bodies with Content-Length and chunked
 * request bodies are read; multipart/form-data bodies are split into parts.
 *
 * Ownership: the request and the response belong to the server; both are
 * valid in the handler, the response also in the functions queued on it,
 * and both die when the response ends or the connection closes. */
#ifndef HB_TESTS_FAKE_HTTPD_H
#define HB_TESTS_FAKE_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct httpd;
struct httpd_response;

struct httpd_header {
    const char *name;
    const char *value;
};

/** One part of a multipart/form-data body; strings NUL-terminated, data not
 *  necessarily (binary), len bytes. */
struct httpd_part {
    const char *name;
    const char *filename;     /* NULL for a plain field */
    const char *content_type; /* NULL when the part had none */
    const char *data;
    size_t len;
};

/** A parsed request. All borrowed from the server (see above). */
struct httpd_request {
    const char *method;
    const char *target; /* path and query as sent: "/api/v10/x?y=1" */
    const struct httpd_header *headers;
    size_t nheaders;
    const char *body; /* NUL-terminated for convenience; len excludes it */
    size_t body_len;
    bool chunked;                   /* the body came with chunked encoding */
    const struct httpd_part *parts; /* multipart/form-data parts, or NULL */
    size_t nparts;
    unsigned conn_id; /* 1, 2, ... in accept order */
    unsigned seq;     /* 1, 2, ... requests on this connection */
};

/** Called for every request, on the server's loop. */
typedef void (*httpd_handler_fn)(struct httpd_response *res, const struct httpd_request *req,
                                 void *data);

/** Start listening on 127.0.0.1:0 on loop. Returns NULL on failure. */
struct httpd *httpd_new(uv_loop_t *loop, httpd_handler_fn handler, void *data);

/** Stop: close the listener, every connection and timer; free the server;
 *  then call cb (may be NULL) from the loop. */
void httpd_close(struct httpd *srv, void (*cb)(void *data), void *data);

/** The port, and "http://127.0.0.1:PORT" (borrowed). */
int httpd_port(const struct httpd *srv);
const char *httpd_base_url(const struct httpd *srv);

/** Connections accepted and requests parsed so far (any thread). */
unsigned httpd_connections(const struct httpd *srv);
unsigned httpd_requests(const struct httpd *srv);

/** A request header by name, case-insensitive, or NULL. */
const char *httpd_request_header(const struct httpd_request *req, const char *name);

/** A multipart part by field name, or NULL. */
const struct httpd_part *httpd_request_part(const struct httpd_request *req, const char *name);

/** Add a response header for the head that send or start will write. */
void httpd_response_header_add(struct httpd_response *res, const char *name, const char *value);

/** Queue a whole response with Content-Length (content_type may be NULL). */
void httpd_response_send(struct httpd_response *res, int status, const char *content_type,
                         const void *body, size_t len);

/** Queue the head of a chunked response (content_type may be NULL). */
void httpd_response_start(struct httpd_response *res, int status, const char *content_type);

/** Queue one chunk of a chunked response (len > 0). */
void httpd_response_chunk(struct httpd_response *res, const void *data, size_t len);

/** Queue the last chunk; the response is then complete. */
void httpd_response_end(struct httpd_response *res);

/** Queue a pause of ms milliseconds before the next step. */
void httpd_response_delay(struct httpd_response *res, uint64_t ms);

/** Queue a function call (it may queue further steps). */
void httpd_response_call(struct httpd_response *res,
                         void (*fn)(struct httpd_response *res, void *data), void *data);

/** Queue closing the connection (mid-response, or instead of one). */
void httpd_response_abort(struct httpd_response *res);

/** Answer with "Connection: close" and close once this response is out
 *  (what is pipelined behind it is not read). */
void httpd_response_close_after(struct httpd_response *res);

/** Close every connection that has no response in progress, at once and
 *  without a word, as a server does when a keep-alive connection idles
 *  out (unread requests are dropped). */
void httpd_close_idle(struct httpd *srv);

/** The server a response belongs to. */
struct httpd *httpd_response_server(const struct httpd_response *res);

/** A server on its own thread and loop. */
struct httpd_thread;

/** Start a server on a new thread; returns once it listens, or NULL. The
 *  handler runs on that thread. */
struct httpd_thread *httpd_thread_start(httpd_handler_fn handler, void *data);

/** The server (for httpd_port, httpd_base_url and the counters). */
struct httpd *httpd_thread_server(const struct httpd_thread *t);

/** Close the server, join the thread, close its loop and free. */
void httpd_thread_stop(struct httpd_thread *t);

#endif
