/* What the HTTP client's own files share: the request, client and socket
 * structs, and the helpers http.c (the multi-on-libuv driver) and
 * http_request.c (the request object) call in each other. Private to
 * net/http*.c; net/http.h is the public API. */
#ifndef HB_HTTP_INTERNAL_H
#define HB_HTTP_INTERNAL_H

#include "net/http.h"
#include "base/util.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_DEFAULT_TIMEOUT_MS 30000u
#define HTTP_DEFAULT_IDLE_CONNS 128L
#define HTTP_SPARE_EASY 16 /* easy handles kept: making one is a large allocation */
#define HTTP_DEFAULT_CONNECT_MS 10000u
#define HTTP_DEFAULT_MAX_BODY (8u * 1024u * 1024u)
#define HTTP_DEFAULT_AGENT "haibot/0.1"
#define HTTP_ERROR_LEN 256

struct http_header {
    char *name;  /* as the server spelled it */
    char *value; /* trimmed */
};

/* One socket curl asked us to watch. Freed in its close callback. A
 * connection's watch outlives the transfers on it: between them (idle)
 * it stays readable-only, so that the next transfer on the connection
 * costs no system call to watch it again. */
struct http_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct http_client *client;
    struct http_sock *prev, *next; /* client->socks, while open */
    int events;                    /* UV_READABLE | UV_WRITABLE being polled for */
    bool idle;                     /* curl is done with it for now; kept for the next */
};

/* A file descriptor curl opened for a connection (through our open
 * callback, so its close comes through ours too), with its watch. */
struct http_fd {
    bool conn;
    struct http_sock *sock; /* or NULL */
};

struct http_request {
    struct http_client *client;
    CURL *easy;
    char *method;
    char *url;
    struct curl_slist *headers; /* request headers */
    curl_mime *mime;            /* multipart body, or NULL */
    char *body;                 /* raw request body (owned), or NULL */
    size_t body_len;
    uint64_t timeout_ms;         /* 0: client default; UINT64_MAX: none */
    uint64_t connect_timeout_ms; /* 0: client default */
    uint64_t idle_ms;            /* 0: off */
    size_t max_body;             /* 0: client default */
    http_headers_cb headers_cb;  /* streaming, may be NULL */
    http_data_cb data_cb;        /* streaming when not NULL */
    http_done_cb done_cb;
    void *data;

    bool connect_only; /* a raw connection (http_connection_new) */
    bool handed_over;  /* connected: the caller speaks over it now */
    bool started;      /* handed to the client */
    bool in_multi;     /* added to the multi handle */
    bool canceled;     /* complete with HB_ECANCELED at the next kick */
    int abort_rc;      /* our reason for stopping a transfer from a callback */
    uint64_t start_ns; /* uv_hrtime() at start */
    uint64_t end_ns;   /* uv_hrtime() at completion, 0 while running */

    int status;        /* response status, 0 before one arrived */
    bool headers_done; /* final header block seen */
    struct http_header *resp_headers;
    size_t nresp_headers, cap_resp_headers;
    char *resp_body; /* collected body, NUL-terminated */
    size_t resp_len, resp_cap;

    char curl_error[CURL_ERROR_SIZE]; /* libcurl's text for the last failure */
    char error[HTTP_ERROR_LEN];       /* what the caller sees */

    struct http_request *prev, *next; /* client->reqs while started */
};

struct http_client {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer; /* libcurl's deadline */
    uv_timer_t kick;  /* deferred starts, cancels and close */
    struct http_client_options opts;
    char *user_agent;
    char *ca_file;             /* or NULL */
    struct http_request *reqs; /* started, not completed (oldest last) */
    size_t nreqs;
    size_t nconns;                /* raw connections handed over, not yet freed */
    CURL *spare[HTTP_SPARE_EASY]; /* finished easy handles, reset and kept for reuse */
    size_t nspare;
    struct http_sock *socks; /* polled sockets */
    struct http_fd *fds;     /* by fd number, the connections' sockets */
    size_t nfds;
    unsigned long watches_made;
    int in_curl;      /* depth of calls into libcurl on this stack */
    int handles_open; /* uv handles not yet closed */
    bool closing;     /* http_client_close() was called */
    bool torn_down;   /* multi cleaned up, handles closing */
    void (*close_cb)(void *data);
    void *close_data;
};

/* Ask the kick timer to run the deferred starts, cancels and close on the
 * next loop turn (http.c). */
void http__kick(struct http_client *client);

/* Set the error text the caller sees, redacted (http.c). */
void http__error_set(struct http_request *req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Configure req's easy handle from the request (http_request.c). Returns 0,
 * HB_ENOMEM or HB_EIO. */
int http__easy_setup(struct http_request *req);

/* libcurl's open and close of a connection's socket (http.c), set on every
 * easy handle with the client as their data. */
curl_socket_t http__curl_open_socket(void *clientp, curlsocktype purpose,
                                     struct curl_sockaddr *address);
int http__curl_close_socket(void *clientp, curl_socket_t fd);

#endif
