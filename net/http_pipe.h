/* Pipelined HTTP/1.1 calls to one origin.
 *
 * A chat platform's send path is many small POSTs to one host. Made as one
 * libcurl transfer each, every call costs its own write and read system
 * calls, poll changes and transfer setup; a pipe keeps a few connections
 * open and writes the calls made during one turn of the loop back to back
 * on them (HTTP/1.1 pipelining), then reads the answers in order, so one
 * write and one read carry many calls.
 *
 * libcurl still makes every connection (name resolution, proxy tunnel,
 * TLS and certificate checks: http_connection_new in net/http.h); the pipe
 * only frames requests and parses responses (Content-Length, chunked, or
 * until close; 1xx skipped).
 *
 *     struct http_pipe *p = http_pipe_new(loop, client, "https://api.example", NULL);
 *     http_pipe_post(p, "/path", "application/json", body, len, on_done, ctx);
 *     static void on_done(int rc, int status, const char *body, size_t len, void *ctx);
 *
 * rc is 0 when a whole response arrived (read status; body is borrowed for
 * the call and NUL-terminated), else HB_ETIMEOUT, HB_EIO (the connection
 * failed after the call was written: it may or may not have been
 * processed), HB_EPROTO, HB_EOVERFLOW, HB_ECANCELED (closing), or the
 * connection's own error (refused, unresolved, TLS) for calls that never
 * left. The callback fires exactly once per accepted call, always from
 * the loop, never from inside http_pipe_post().
 *
 * A call written on a connection that had been idle and then died before
 * any byte came back is sent once more on a fresh connection (the server
 * had closed the idle connection, as servers do), the same rule libcurl
 * follows for a reused connection. Calls behind a response that says
 * "Connection: close" were never processed (RFC 9112, 9.6) and go out again
 * first. A server that closes a connection with calls pending is taken not
 * to pipeline: from then on each connection carries one call at a time.
 *
 * Threads: the loop's thread only. Paths may hold secrets (a bot token):
 * nothing here logs them. */
#ifndef HB_HTTP_PIPE_H
#define HB_HTTP_PIPE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct http_client;
struct http_pipe;

/** Zero fields take the defaults named on each. */
struct http_pipe_options {
    unsigned connections;   /* connections at most; 0: 4 */
    unsigned depth;         /* calls in flight per connection; 0: 8; 1: no pipelining */
    uint64_t timeout_ms;    /* from written to answered; 0: 30000 */
    size_t max_body;        /* response body limit; 0: 8 MiB */
    const char *user_agent; /* NULL: "haibot/0.1" */
};

typedef void (*http_pipe_done_cb)(int rc, int status, const char *body, size_t len, void *data);

/** A pipe to origin ("https://host[:port]", "http://host:port"; copied)
 *  whose connections come from client (borrowed; it closes only after the
 *  pipe has). NULL on a bad origin or out of memory. */
struct http_pipe *http_pipe_new(uv_loop_t *loop, struct http_client *client, const char *origin,
                                const struct http_pipe_options *opts);

/** Queue a POST of body (copied) to path ("/..."). Returns 0 (cb will
 *  fire), or HB_EINVAL / HB_ENOMEM / HB_ESTATE (closing): cb will not. */
int http_pipe_post(struct http_pipe *p, const char *path, const char *content_type,
                   const char *body, size_t len, http_pipe_done_cb cb, void *data);

/** Close: every queued or pending call completes with HB_ECANCELED, the
 *  connections close, then cb (may be NULL) runs from the loop. */
void http_pipe_close(struct http_pipe *p, void (*cb)(void *data), void *data);

/** Connections opened so far, calls written a second time (behind a
 *  "Connection: close", or on a dead idle connection), and the depth in use
 *  now (tests). */
unsigned http_pipe_opened(const struct http_pipe *p);
unsigned http_pipe_resent(const struct http_pipe *p);
unsigned http_pipe_depth(const struct http_pipe *p);

#endif
