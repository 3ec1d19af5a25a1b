/* What the fake HTTP server's files share: the server, connection and
 * response structs, and the helpers httpd.c and httpd_parse.c call in each
 * other. Private to tests/fake/httpd*.c; tests/fake/httpd.h is the API. */
#ifndef HB_TESTS_FAKE_HTTPD_INTERNAL_H
#define HB_TESTS_FAKE_HTTPD_INTERNAL_H

#include "tests/fake/httpd.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define HTTPD_CONTAINER_OF(ptr, type, member)                                                      \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#define HTTPD_MAX_HEAD (64u * 1024u)
#define HTTPD_MAX_BODY (64u * 1024u * 1024u)

struct httpd {
    uv_loop_t *loop;
    uv_tcp_t listener;
    httpd_handler_fn handler;
    void *data;
    int port;
    char base_url[64];
    atomic_uint nconns;       /* connections accepted */
    atomic_uint nreqs;        /* requests parsed */
    struct httpd_conn *conns; /* open or closing connections */
    int handles_open;         /* uv handles not yet closed */
    bool closing;
    void (*close_cb)(void *data);
    void *close_data;
};

struct httpd_conn {
    uv_tcp_t tcp;
    uv_shutdown_t shutdown;
    struct httpd *srv;
    unsigned id;
    unsigned seq; /* requests parsed on this connection */
    char *in;     /* unparsed input */
    size_t in_len, in_cap;
    struct httpd_response *res; /* the response in progress, or NULL */
    bool continue_sent;         /* "100 Continue" sent for the pending request */
    bool closing;
    bool gather; /* answering what one read brought: collect, write once */
    char *out;   /* collected response bytes */
    size_t out_len, out_cap;
    struct httpd_conn *prev, *next;
};

enum httpd_step_kind { HTTPD_STEP_WRITE, HTTPD_STEP_DELAY, HTTPD_STEP_CALL, HTTPD_STEP_ABORT };

struct httpd_step {
    enum httpd_step_kind kind;
    char *bytes; /* WRITE: owned */
    size_t len;
    bool ends;   /* WRITE: the response is complete after it */
    uint64_t ms; /* DELAY */
    void (*fn)(struct httpd_response *res, void *data);
    void *data;
    struct httpd_step *next;
};

struct httpd_response {
    struct httpd_conn *conn; /* NULL once the connection is gone */
    uv_timer_t timer;        /* for DELAY steps; the struct dies in its close */
    struct httpd_step *head, *tail;
    char *extra; /* added header lines, "Name: value\r\n"... */
    size_t extra_len;
    bool running;    /* the step loop is on the stack */
    bool waiting;    /* a DELAY is pending */
    bool complete;   /* the last byte of the response is queued */
    bool dead;       /* freed: run nothing more */
    bool want_close; /* the client asked for Connection: close */

    struct httpd_request req;
    char *head_buf; /* request head copy, split by NULs */
    struct httpd_header *headers;
    char *body;
    struct httpd_part *parts;
};

struct httpd_write {
    uv_write_t w;
    char *bytes;
};

/* Allocators that end the test process when memory runs out (httpd.c). */
void *httpd__xmalloc(size_t n);
void *httpd__xcalloc(size_t n, size_t size);
char *httpd__xstrndup(const char *s, size_t n);

/* Write bytes (owned, freed here) to the connection (httpd.c). */
void httpd__conn_write(struct httpd_conn *conn, char *bytes, size_t len);

/* Try to parse one request from the connection's buffer. Returns 1 and a
 * new response, 0 when more input is needed, -1 when malformed
 * (httpd_parse.c). */
int httpd__request_parse(struct httpd_conn *conn, struct httpd_response **out);

#endif
