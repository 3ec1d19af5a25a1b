/* What net/server.c (listening, connections, lifecycle) and
 * net/server_request.c (parsing, the request object, answers) share.
 * Private to the server module: nothing outside net/server*.c includes it. */
#ifndef HB_SERVER_INTERNAL_H
#define HB_SERVER_INTERNAL_H

#include "net/server.h"

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define SERVER_MAX_BODY_DEFAULT (1u << 20)
#define SERVER_METHOD_MAX 16 /* longest method name a route may serve, with its NUL */
#define SERVER_PATH_MAX 512
#define SERVER_QUERY_MAX 1024
#define SERVER_NAME_MAX 64            /* header names longer than this are never read */
#define SERVER_HEAD_MAX 8192          /* request line and headers, bytes; 431 beyond */
#define SERVER_READ_CHUNK 16384       /* bytes asked of one read */
#define SERVER_BUSY_READ_MAX 65536    /* read ahead while a request is handled, at most */
#define SERVER_CONNS_MAX 512          /* open connections; more are closed at once */
#define SERVER_REQUESTS_PER_CONN 100  /* then the answer closes the connection */
#define SERVER_TIMEOUT_MS 30000       /* for a whole request to arrive; keep-alive idle */
#define SERVER_LINGER_MS 2000         /* reading and dropping after a closing answer */
#define SERVER_WRITE_TIMEOUT_MS 60000 /* an answer the client does not read in time */
#define SERVER_LINGER_BYTES (256u * 1024u)

struct server_route {
    struct server_route *next;
    char *method;
    char *path;
    char *headers[SERVER_HEADERS_MAX]; /* lower case */
    size_t nheaders;
    server_handler_fn fn;
    void *data;
};

struct server_conn;

#define SERVER_REFUSAL_PREFIXES 4

struct server {
    uv_loop_t *loop;
    uv_tcp_t *listener; /* heap: freed by its close callback */
    int port;
    size_t max_body;
    uint64_t write_timeout_ms;
    /* server_refusals_json: paths whose refusals a hook writes */
    char *refusal_prefixes[SERVER_REFUSAL_PREFIXES];
    server_refusal_fn refusal_fn;
    void *refusal_data;
    bool closed;
    struct server_route *routes;
    struct server_request *handling; /* requests handlers own (doubly linked) */
    size_t pending;
    struct server_conn *conns; /* open connections (doubly linked) */
    size_t nconns;
};

enum server_req_state {
    SERVER_REQ_READING = 0, /* being parsed */
    SERVER_REQ_HANDLING,    /* the handler owns it */
    SERVER_REQ_ANSWERED,    /* the answer is being written */
};

struct server_request {
    struct server *srv;                 /* NULL once the server closed */
    struct server_conn *conn;           /* NULL once the connection closed */
    struct server_request *prev, *next; /* in srv->handling */
    enum server_req_state state;
    const struct server_route *route;
    char method[SERVER_METHOD_MAX];
    char path[SERVER_PATH_MAX];
    char query[SERVER_QUERY_MAX];
    char *header_values[SERVER_HEADERS_MAX]; /* heap or NULL, in route->headers order */
    char *body;                              /* heap or NULL; NUL-terminated */
    size_t body_len, body_cap;
    int early_status;            /* answer this once the body is read (404, 405), or 0 */
    bool streaming;              /* server_stream_start wrote the head; chunks follow */
    void (*gone_cb)(void *data); /* server_request_on_gone */
    void *gone_data;
};

enum server_conn_state {
    SERVER_CONN_HEAD = 0, /* waiting for a request's head */
    SERVER_CONN_BODY,     /* waiting for its body */
    SERVER_CONN_BUSY,     /* handled or answered: not reading, the parser paused */
    SERVER_CONN_LINGER,   /* final answer sent: dropping input until the peer closes */
    SERVER_CONN_CLOSING,
};

/* What the parser callbacks gather of the request being parsed. */
struct server_parse {
    char target[SERVER_PATH_MAX + SERVER_QUERY_MAX]; /* the request target so far */
    size_t target_len;
    bool routed;                /* target split and route looked up */
    char name[SERVER_NAME_MAX]; /* the header name being read, lower case */
    size_t name_len;            /* SERVER_NAME_MAX + 1: too long to be one we read */
    bool in_value;              /* the last callback was a value's */
    int slot;                   /* route header the value goes to, or -1 */
    bool slot_joined;           /* ", " written before this value */
    char expect[16];            /* the Expect value, truncated */
    size_t expect_len;
    bool in_expect;
    bool expect_continue;
    bool transfer_encoding;
    bool in_te;        /* reading a Transfer-Encoding value */
    char te[24];       /* the Transfer-Encoding values, joined with ", " */
    size_t te_len;     /* past sizeof(te): too long to be "chunked" */
    bool chunked;      /* the body comes in chunks */
    bool cl_repeated;  /* Content-Length seen more than once */
    bool cl_unflagged; /* the parser's Content-Length flag cleared for a repeat */
    uint64_t cl_first; /* the first Content-Length */
    int refusal;       /* status to refuse with after a callback failed, or 0 */
    const char *refusal_text;
};

struct server_conn {
    struct server *srv; /* NULL once the server closed */
    struct server_conn *prev, *next;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t write;
    uv_write_t cont_write; /* "100 Continue" */
    uv_shutdown_t shutdown;
    http_parser parser; /* parser.data is the connection */
    struct server_parse parse;
    int handles; /* open libuv handles; freed when 0 */
    enum server_conn_state state;
    bool reading;
    bool peer_done;       /* the client sent its end (EOF) while a request was handled */
    bool keep_alive;      /* the current request allows another after it */
    bool expect_continue; /* the current request waits for "100 Continue" */
    char *in;             /* received, not yet consumed */
    size_t in_len, in_cap;
    size_t head_len; /* bytes of the current head fed to the parser so far */
    size_t served;   /* requests answered on this connection */
    size_t lingered; /* bytes dropped while lingering */
    struct server_request *req;
    char *out; /* the answer being written */
};

/* net/server.c */
void server__conn_close(struct server_conn *conn);
void server__conn_process(struct server_conn *conn);
void server__conn_linger(struct server_conn *conn);
/** Close conn unless what it waits for happens within ms (the timer's). */
void server__conn_deadline(struct server_conn *conn, uint64_t ms);

/* net/server_request.c */
void server__request_free(struct server_request *req);
/** Feed what conn->in holds to the parser, one request at a time. */
void server__conn_parse(struct server_conn *conn);
/** Take a request out of the server's list of those handlers own. */
void server__unlink(struct server_request *req);
/** The reason phrase of a status ("Not Found"). */
const char *server__reason(int status);
/** The answer to conn's request is written (status < 0: it failed): free
 *  the request, then read the next one, linger or close. */
void server__answer_done(struct server_conn *conn, int status);
/** Refuse what cannot be read on: answer and close the connection. */
void server__refuse(struct server_conn *conn, int status, const char *text);

#endif
