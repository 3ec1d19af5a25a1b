/* The HTTP client on the loop. See net/http.h for the contract.
 *
 * libcurl tells us which sockets to watch (socket callback) and when to call
 * it back (timer callback); we watch sockets with uv_poll and the deadline
 * with one uv_timer, and feed events to curl_multi_socket_action(). Finished
 * transfers are collected with curl_multi_info_read() after each call.
 *
 * libcurl forbids most multi calls from inside its own callbacks (the write
 * and header callbacks, where the caller's stream callbacks run). So
 * cancelling, closing and starting from there are deferred: they mark the
 * request or the client and start the "kick" timer with a zero timeout,
 * whose callback does the work from a clean stack on the next loop turn. */
#include "net/http.h"

#include "base/error.h"
#include "base/json.h"
#include "base/log.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HTTP_DEFAULT_TIMEOUT_MS 30000u
#define HTTP_DEFAULT_IDLE_CONNS 128L
#define HTTP_SPARE_EASY 16 /* easy handles kept: making one is a large allocation */
#define HTTP_DEFAULT_CONNECT_MS 10000u
#define HTTP_DEFAULT_MAX_BODY (8u * 1024u * 1024u)
#define HTTP_DEFAULT_AGENT "haibot/0.1"
#define HTTP_ERROR_LEN 256

/* The struct that embeds member ptr (libuv keeps its own private). */
#define HTTP_CONTAINER_OF(ptr, type, member)                                                       \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

struct http_header {
    char *name;  /* as the server spelled it */
    char *value; /* trimmed */
};

/* One socket curl asked us to watch. Freed in its close callback. */
struct http_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct http_client *client;
    struct http_sock *prev, *next; /* client->socks, while open */
    int events;            /* UV_READABLE | UV_WRITABLE being polled for */
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
    char *ca_file; /* or NULL */
    struct http_request *reqs; /* started, not completed (oldest last) */
    size_t nreqs;
    size_t nconns;           /* raw connections handed over, not yet freed */
    CURL *spare[HTTP_SPARE_EASY]; /* finished easy handles, reset and kept for reuse */
    size_t nspare;
    struct http_sock *socks; /* polled sockets */
    int in_curl;             /* depth of calls into libcurl on this stack */
    int handles_open;        /* uv handles not yet closed */
    bool closing;            /* http_client_close() was called */
    bool torn_down;          /* multi cleaned up, handles closing */
    void (*close_cb)(void *data);
    void *close_data;
};

static pthread_once_t http_global_once = PTHREAD_ONCE_INIT;
static int http_global_rc = 0;

static void http__global_init_once(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        http_global_rc = HB_EIO;
}

int http_global_init(void)
{
    pthread_once(&http_global_once, http__global_init_once);
    return http_global_rc;
}

void http_global_cleanup(void)
{
    curl_global_cleanup();
}

/* ---- small helpers ---------------------------------------------------- */

static void http__kick_fire(uv_timer_t *timer);

static void http__kick(struct http_client *client)
{
    if (!client->torn_down)
        (void)uv_timer_start(&client->kick, http__kick_fire, 0, 0);
}

static void http__error_set(struct http_request *req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void http__error_set(struct http_request *req, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(req->error, sizeof(req->error), fmt, ap);
    va_end(ap);
    log_redact(req->error, sizeof(req->error));
}

static void http__list_remove(struct http_request *req)
{
    struct http_client *client = req->client;
    if (req->prev != NULL)
        req->prev->next = req->next;
    else
        client->reqs = req->next;
    if (req->next != NULL)
        req->next->prev = req->prev;
    req->prev = req->next = NULL;
    client->nreqs--;
}

static void http__maybe_free_client(struct http_client *client)
{
    if (!client->torn_down || client->handles_open > 0)
        return;
    void (*cb)(void *) = client->close_cb;
    void *data = client->close_data;
    free(client->ca_file);
    free(client->user_agent);
    free(client);
    if (cb != NULL)
        cb(data);
}

static void http__handle_closed(uv_handle_t *handle)
{
    struct http_client *client = handle->data;
    client->handles_open--;
    http__maybe_free_client(client);
}

static void http__sock_closed(uv_handle_t *handle)
{
    struct http_sock *sock = HTTP_CONTAINER_OF(handle, struct http_sock, poll);
    struct http_client *client = sock->client;
    free(sock);
    client->handles_open--;
    http__maybe_free_client(client);
}

static void http__sock_close(struct http_sock *sock)
{
    struct http_client *client = sock->client;
    if (sock->prev != NULL)
        sock->prev->next = sock->next;
    else
        client->socks = sock->next;
    if (sock->next != NULL)
        sock->next->prev = sock->prev;
    sock->prev = sock->next = NULL;
    uv_close((uv_handle_t *)&sock->poll, http__sock_closed);
}

/* Map a finished transfer's CURLcode to our codes and a message. */
static int http__result_map(struct http_request *req, CURLcode res)
{
    const char *detail = req->curl_error[0] != '\0' ? req->curl_error : curl_easy_strerror(res);
    long oserr = 0;
    switch (res) {
    case CURLE_OK:
        return 0;
    case CURLE_OPERATION_TIMEDOUT:
        http__error_set(req, "timed out: %s", detail);
        return HB_ETIMEOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        http__error_set(req, "could not resolve host: %s", detail);
        return UV_EAI_NONAME;
    case CURLE_COULDNT_CONNECT:
        curl_easy_getinfo(req->easy, CURLINFO_OS_ERRNO, &oserr);
        http__error_set(req, "could not connect: %s", detail);
        if (oserr == ECONNREFUSED)
            return UV_ECONNREFUSED;
        if (oserr == ENETUNREACH)
            return UV_ENETUNREACH;
        if (oserr == EHOSTUNREACH)
            return UV_EHOSTUNREACH;
        return UV_ECONNREFUSED;
    case CURLE_OUT_OF_MEMORY:
        http__error_set(req, "out of memory");
        return HB_ENOMEM;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
        http__error_set(req, "TLS failed: %s", detail);
        return HB_EPROTO;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_BAD_CONTENT_ENCODING:
        http__error_set(req, "bad response: %s", detail);
        return HB_EPROTO;
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        http__error_set(req, "connection failed: %s", detail);
        return HB_EIO;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        http__error_set(req, "bad URL: %s", detail);
        return HB_EINVAL;
    default:
        http__error_set(req, "transfer failed: %s", detail);
        return HB_EIO;
    }
}

/* Complete a started request: out of the multi handle, log, call back,
 * free. Never called from inside a libcurl callback. */
static void http__request_finish(struct http_request *req, int rc)
{
    struct http_client *client = req->client;
    http__list_remove(req);
    if (req->in_multi) {
        client->in_curl++;
        curl_multi_remove_handle(client->multi, req->easy);
        client->in_curl--;
        req->in_multi = false;
    }
    req->end_ns = uv_hrtime();
    if (rc == 0)
        req->error[0] = '\0';
    else if (req->error[0] == '\0')
        http__error_set(req, "%s", hb_strerror(rc));
    if (log_enabled(LOG_DEBUG)) {
        log_debug("http.request", "method=%s url=%s status=%d ms=%.1f rc=%d error=%s", req->method,
                  req->url, req->status, http_request_elapsed_ms(req), rc, req->error);
    }
    req->done_cb(req, rc, req->data);
    http_request_free(req);
}

/* A raw connection is up: it stays in the multi handle (curl_easy_send and
 * curl_easy_recv need that) and leaves the request list; its socket is no
 * longer curl's to watch, so a poll still open on it is closed first. */
static void http__connection_ready(struct http_request *req)
{
    struct http_client *client = req->client;
    http__list_remove(req);
    req->handed_over = true;
    req->end_ns = uv_hrtime();
    client->nconns++;
    curl_socket_t fd = http_connection_fd(req);
    for (struct http_sock *sock = client->socks; sock != NULL; sock = sock->next) {
        if (sock->fd == fd) {
            curl_multi_assign(client->multi, fd, NULL);
            http__sock_close(sock);
            break;
        }
    }
    req->done_cb(req, 0, req->data);
}

/* Read every finished transfer from the multi handle. The CURLMsg dies with
 * curl_easy_cleanup (in http_request_free), so copy it first. */
static void http__multi_check(struct http_client *client)
{
    CURLMsg *msg;
    int left = 0;
    for (;;) {
        msg = curl_multi_info_read(client->multi, &left);
        if (msg == NULL)
            break;
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode res = msg->data.result;
        char *priv = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
        struct http_request *req = (struct http_request *)(void *)priv;
        if (req == NULL)
            continue;
        long status = 0;
        if (curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status > 0)
            req->status = (int)status;
        int rc;
        if (req->canceled)
            rc = HB_ECANCELED;
        else if (req->abort_rc != 0)
            rc = req->abort_rc;
        else
            rc = http__result_map(req, res);
        if (rc == 0 && req->connect_only)
            http__connection_ready(req);
        else
            http__request_finish(req, rc);
        if (client->multi == NULL)
            break;
    }
}

static void http__socket_action(struct http_client *client, curl_socket_t fd, int flags)
{
    int running = 0;
    client->in_curl++;
    curl_multi_socket_action(client->multi, fd, flags, &running);
    client->in_curl--;
    http__multi_check(client);
}

/* ---- uv side ----------------------------------------------------------- */

static void http__poll_cb(uv_poll_t *poll, int status, int events)
{
    struct http_sock *sock = HTTP_CONTAINER_OF(poll, struct http_sock, poll);
    struct http_client *client = sock->client;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    if (client->multi != NULL)
        http__socket_action(client, sock->fd, flags);
}

static void http__timer_fire(uv_timer_t *timer)
{
    struct http_client *client = HTTP_CONTAINER_OF(timer, struct http_client, timer);
    if (client->multi != NULL)
        http__socket_action(client, CURL_SOCKET_TIMEOUT, 0);
}

static void http__teardown(struct http_client *client)
{
    client->torn_down = true;
    while (client->nspare > 0)
        curl_easy_cleanup(client->spare[--client->nspare]);
    client->in_curl++;
    curl_multi_cleanup(client->multi);
    client->in_curl--;
    client->multi = NULL;
    while (client->socks != NULL)
        http__sock_close(client->socks);
    uv_close((uv_handle_t *)&client->timer, http__handle_closed);
    uv_close((uv_handle_t *)&client->kick, http__handle_closed);
}

static void http__kick_fire(uv_timer_t *timer)
{
    struct http_client *client = HTTP_CONTAINER_OF(timer, struct http_client, kick);
    /* Deferred starts first: a request started from a stream callback. */
    for (struct http_request *req = client->reqs; req != NULL; req = req->next) {
        if (req->in_multi || req->canceled || client->closing)
            continue;
        client->in_curl++;
        CURLMcode mc = curl_multi_add_handle(client->multi, req->easy);
        client->in_curl--;
        if (mc == CURLM_OK) {
            req->in_multi = true;
        } else {
            http__error_set(req, "could not start: %s", curl_multi_strerror(mc));
            req->abort_rc = HB_EIO;
            req->canceled = true;
        }
    }
    /* Then cancellations, one at a time: a callback may change the list. */
    for (;;) {
        struct http_request *req = client->reqs;
        while (req != NULL && !req->canceled && !(client->closing))
            req = req->next;
        if (req == NULL)
            break;
        int rc = req->abort_rc != 0 && !client->closing ? req->abort_rc : HB_ECANCELED;
        http__request_finish(req, rc);
    }
    if (client->closing && client->reqs == NULL && client->nconns == 0 && !client->torn_down)
        http__teardown(client);
}

/* ---- curl side ---------------------------------------------------------- */

static int http__curl_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    struct http_client *client = userp;
    struct http_sock *sock = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (sock != NULL) {
            if (!client->torn_down)
                curl_multi_assign(client->multi, fd, NULL);
            http__sock_close(sock);
        }
        return 0;
    }
    if (sock == NULL) {
        if (client->torn_down)
            return -1;
        sock = calloc(1, sizeof(*sock));
        if (sock == NULL)
            return -1;
        if (uv_poll_init_socket(client->loop, &sock->poll, fd) != 0) {
            free(sock);
            return -1;
        }
        sock->fd = fd;
        sock->client = client;
        sock->poll.data = client;
        sock->next = client->socks;
        if (client->socks != NULL)
            client->socks->prev = sock;
        client->socks = sock;
        client->handles_open++;
        curl_multi_assign(client->multi, fd, sock);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    /* libcurl repeats the same wish often; each restart costs an
     * epoll_ctl, so only a change of events touches the poll. */
    if (events == sock->events && uv_is_active((uv_handle_t *)&sock->poll))
        return 0;
    if (uv_poll_start(&sock->poll, events, http__poll_cb) != 0)
        return -1;
    sock->events = events;
    return 0;
}

static int http__curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct http_client *client = userp;
    if (client->torn_down)
        return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&client->timer);
    else
        uv_timer_start(&client->timer, http__timer_fire, (uint64_t)timeout_ms, 0);
    return 0;
}

static int http__headers_complete(struct http_request *req)
{
    if (req->headers_done)
        return 0;
    req->headers_done = true;
    if (req->headers_cb == NULL || req->canceled)
        return 0;
    return req->headers_cb(req, req->data);
}

static void http__resp_headers_clear(struct http_request *req)
{
    for (size_t i = 0; i < req->nresp_headers; i++) {
        free(req->resp_headers[i].name);
        free(req->resp_headers[i].value);
    }
    req->nresp_headers = 0;
}

static int http__resp_header_add(struct http_request *req, const char *line, size_t len)
{
    const char *colon = memchr(line, ':', len);
    if (colon == NULL || colon == line)
        return 0; /* not a header line; ignore it */
    size_t nlen = (size_t)(colon - line);
    const char *v = colon + 1;
    const char *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (req->nresp_headers == req->cap_resp_headers) {
        size_t cap = req->cap_resp_headers ? req->cap_resp_headers * 2 : 16;
        struct http_header *h = realloc(req->resp_headers, cap * sizeof(*h));
        if (h == NULL)
            return HB_ENOMEM;
        req->resp_headers = h;
        req->cap_resp_headers = cap;
    }
    char *name = strndup(line, nlen);
    char *value = strndup(v, (size_t)(end - v));
    if (name == NULL || value == NULL) {
        free(name);
        free(value);
        return HB_ENOMEM;
    }
    req->resp_headers[req->nresp_headers].name = name;
    req->resp_headers[req->nresp_headers].value = value;
    req->nresp_headers++;
    return 0;
}

/* libcurl hands over each header line, CRLF included, for every header
 * block (1xx interim responses, then the final one, then trailers). */
static size_t http__curl_header_cb(char *buf, size_t size, size_t n, void *userp)
{
    struct http_request *req = userp;
    size_t len = size * n;
    if (req->canceled)
        return 0;
    if (req->headers_done)
        return len; /* trailers */
    size_t l = len;
    while (l > 0 && (buf[l - 1] == '\n' || buf[l - 1] == '\r'))
        l--;
    int rc = 0;
    if (l >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        http__resp_headers_clear(req);
        const char *sp = memchr(buf, ' ', l);
        req->status = sp != NULL ? atoi(sp + 1) : 0;
    } else if (l == 0) {
        if (req->status >= 200)
            rc = http__headers_complete(req);
    } else {
        rc = http__resp_header_add(req, buf, l);
    }
    if (rc < 0) {
        req->abort_rc = rc;
        if (req->error[0] == '\0')
            http__error_set(req, "stopped by the headers callback: %s", hb_strerror(rc));
        return 0;
    }
    return len;
}

static size_t http__curl_write_cb(char *buf, size_t size, size_t n, void *userp)
{
    struct http_request *req = userp;
    size_t len = size * n;
    if (req->canceled)
        return 0;
    int rc = http__headers_complete(req);
    if (rc < 0) {
        req->abort_rc = rc;
        http__error_set(req, "stopped by the headers callback: %s", hb_strerror(rc));
        return 0;
    }
    if (req->data_cb != NULL) {
        rc = req->data_cb(req, buf, len, req->data);
        if (rc < 0) {
            req->abort_rc = rc;
            if (req->error[0] == '\0')
                http__error_set(req, "stopped by the data callback: %s", hb_strerror(rc));
            return 0;
        }
        return len;
    }
    size_t max = req->max_body ? req->max_body : req->client->opts.max_body;
    if (len > max || req->resp_len > max - len) {
        http__error_set(req, "response body exceeds the limit of %zu bytes", max);
        req->abort_rc = HB_EOVERFLOW;
        return 0;
    }
    if (req->resp_len + len + 1 > req->resp_cap) {
        size_t cap = req->resp_cap ? req->resp_cap : 1024;
        while (cap < req->resp_len + len + 1)
            cap *= 2;
        char *p = realloc(req->resp_body, cap);
        if (p == NULL) {
            req->abort_rc = HB_ENOMEM;
            return 0;
        }
        req->resp_body = p;
        req->resp_cap = cap;
    }
    memcpy(req->resp_body + req->resp_len, buf, len);
    req->resp_len += len;
    req->resp_body[req->resp_len] = '\0';
    return len;
}

/* ---- client ------------------------------------------------------------- */

int http_client_new(uv_loop_t *loop, const struct http_client_options *opts,
                    struct http_client **out)
{
    int rc = 0;
    struct http_client *client = NULL;
    *out = NULL;
    if (loop == NULL)
        return HB_EINVAL;
    rc = http_global_init();
    if (rc < 0)
        return rc;
    client = calloc(1, sizeof(*client));
    if (client == NULL)
        return HB_ENOMEM;
    client->loop = loop;
    if (opts != NULL)
        client->opts = *opts;
    if (client->opts.timeout_ms == 0)
        client->opts.timeout_ms = HTTP_DEFAULT_TIMEOUT_MS;
    if (client->opts.connect_timeout_ms == 0)
        client->opts.connect_timeout_ms = HTTP_DEFAULT_CONNECT_MS;
    if (client->opts.max_body == 0)
        client->opts.max_body = HTTP_DEFAULT_MAX_BODY;
    client->user_agent =
        strdup(client->opts.user_agent != NULL ? client->opts.user_agent : HTTP_DEFAULT_AGENT);
    client->opts.user_agent = NULL;
    if (client->opts.ca_file != NULL) {
        client->ca_file = strdup(client->opts.ca_file);
        if (client->ca_file == NULL) {
            rc = HB_ENOMEM;
            goto out;
        }
    }
    client->opts.ca_file = NULL;
    client->multi = curl_multi_init();
    if (client->user_agent == NULL || client->multi == NULL) {
        rc = HB_ENOMEM;
        goto out;
    }
    curl_multi_setopt(client->multi, CURLMOPT_SOCKETFUNCTION, http__curl_socket_cb);
    curl_multi_setopt(client->multi, CURLMOPT_SOCKETDATA, client);
    curl_multi_setopt(client->multi, CURLMOPT_TIMERFUNCTION, http__curl_timer_cb);
    curl_multi_setopt(client->multi, CURLMOPT_TIMERDATA, client);
    /* libcurl's own default keeps four connections per transfer running at
     * the moment one ends: when a burst drains, the connections it opened
     * are closed and the next burst connects again. A fixed cache keeps
     * them for reuse. */
    curl_multi_setopt(client->multi, CURLMOPT_MAXCONNECTS,
                      client->opts.max_idle_connections > 0 ? client->opts.max_idle_connections
                                                            : HTTP_DEFAULT_IDLE_CONNS);
    if (client->opts.max_host_connections > 0)
        curl_multi_setopt(client->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                          client->opts.max_host_connections);
    /* Both timers are initialised last so that nothing above needs closing. */
    uv_timer_init(loop, &client->timer);
    uv_timer_init(loop, &client->kick);
    client->timer.data = client;
    client->kick.data = client;
    client->handles_open = 2;
out:
    if (rc < 0) {
        if (client->multi != NULL)
            curl_multi_cleanup(client->multi);
        free(client->ca_file);
        free(client->user_agent);
        free(client);
        return rc;
    }
    *out = client;
    return 0;
}

void http_client_close(struct http_client *client, void (*cb)(void *data), void *data)
{
    if (client == NULL || client->closing)
        return;
    client->closing = true;
    client->close_cb = cb;
    client->close_data = data;
    for (struct http_request *req = client->reqs; req != NULL; req = req->next)
        req->canceled = true;
    http__kick(client);
}

size_t http_client_active(const struct http_client *client)
{
    return client->nreqs;
}

/* ---- request ------------------------------------------------------------ */

struct http_request *http_request_new(struct http_client *client, const char *method,
                                      const char *url)
{
    if (client == NULL || method == NULL || url == NULL || method[0] == '\0')
        return NULL;
    struct http_request *req = calloc(1, sizeof(*req));
    if (req == NULL)
        return NULL;
    req->client = client;
    req->method = strdup(method);
    req->url = strdup(url);
    if (client->nspare > 0) {
        req->easy = client->spare[--client->nspare];
        curl_easy_reset(req->easy);
    } else {
        req->easy = curl_easy_init();
    }
    if (req->method == NULL || req->url == NULL || req->easy == NULL) {
        http_request_free(req);
        return NULL;
    }
    return req;
}

void http_request_free(struct http_request *req)
{
    if (req == NULL)
        return;
    struct http_client *client = req->client;
    if (req->handed_over) {
        if (req->in_multi && client->multi != NULL) {
            client->in_curl++;
            curl_multi_remove_handle(client->multi, req->easy);
            client->in_curl--;
        }
        client->nconns--;
        if (client->closing)
            http__kick(client);
    }
    if (req->easy != NULL && !req->connect_only && !req->in_multi && !client->torn_down &&
        client->nspare < HTTP_SPARE_EASY)
        client->spare[client->nspare++] = req->easy;
    else if (req->easy != NULL)
        curl_easy_cleanup(req->easy);
    curl_mime_free(req->mime);
    curl_slist_free_all(req->headers);
    http__resp_headers_clear(req);
    free(req->resp_headers);
    free(req->resp_body);
    free(req->body);
    free(req->method);
    free(req->url);
    free(req);
}

int http_request_header_add(struct http_request *req, const char *name, const char *value)
{
    if (req == NULL || name == NULL || value == NULL || req->started ||
        strpbrk(name, ":\r\n") != NULL || strpbrk(value, "\r\n") != NULL)
        return HB_EINVAL;
    size_t len = strlen(name) + strlen(value) + 3;
    char *line = malloc(len);
    if (line == NULL)
        return HB_ENOMEM;
    /* "Name;" is libcurl's spelling of a header with an empty value. */
    if (value[0] == '\0')
        snprintf(line, len, "%s;", name);
    else
        snprintf(line, len, "%s: %s", name, value);
    struct curl_slist *l = curl_slist_append(req->headers, line);
    free(line);
    if (l == NULL)
        return HB_ENOMEM;
    req->headers = l;
    return 0;
}

int http_request_body_set(struct http_request *req, const void *body, size_t len,
                          const char *content_type)
{
    if (req == NULL || (body == NULL && len > 0) || req->mime != NULL || req->started)
        return HB_EINVAL;
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return HB_ENOMEM;
    if (len > 0)
        memcpy(copy, body, len);
    copy[len] = '\0';
    if (content_type != NULL) {
        int rc = http_request_header_add(req, "Content-Type", content_type);
        if (rc < 0) {
            free(copy);
            return rc;
        }
    }
    free(req->body);
    req->body = copy;
    req->body_len = len;
    return 0;
}

int http_request_json_set(struct http_request *req, const cJSON *json)
{
    if (json == NULL)
        return HB_EINVAL;
    size_t len = 0;
    char *text = json_print(json, &len);
    if (text == NULL)
        return HB_ENOMEM;
    int rc = http_request_body_set(req, text, len, "application/json");
    free(text);
    return rc;
}

static curl_mimepart *http__mime_part_add(struct http_request *req, const char *name)
{
    if (req->mime == NULL) {
        req->mime = curl_mime_init(req->easy);
        if (req->mime == NULL)
            return NULL;
    }
    curl_mimepart *part = curl_mime_addpart(req->mime);
    if (part == NULL)
        return NULL;
    if (curl_mime_name(part, name) != CURLE_OK)
        return NULL;
    return part;
}

int http_request_form_field_add(struct http_request *req, const char *name, const char *value,
                                const char *content_type)
{
    if (req == NULL || name == NULL || value == NULL || req->body != NULL || req->started)
        return HB_EINVAL;
    curl_mimepart *part = http__mime_part_add(req, name);
    if (part == NULL || curl_mime_data(part, value, CURL_ZERO_TERMINATED) != CURLE_OK)
        return HB_ENOMEM;
    if (content_type != NULL && curl_mime_type(part, content_type) != CURLE_OK)
        return HB_ENOMEM;
    return 0;
}

int http_request_form_file_add(struct http_request *req, const char *name, const char *filename,
                               const char *content_type, const void *bytes, size_t len)
{
    if (req == NULL || name == NULL || filename == NULL || (bytes == NULL && len > 0) ||
        req->body != NULL || req->started)
        return HB_EINVAL;
    curl_mimepart *part = http__mime_part_add(req, name);
    if (part == NULL)
        return HB_ENOMEM;
    /* curl_mime_data copies; an empty file still needs a non-NULL pointer. */
    if (curl_mime_data(part, len > 0 ? bytes : "", len) != CURLE_OK ||
        curl_mime_filename(part, filename) != CURLE_OK)
        return HB_ENOMEM;
    if (content_type != NULL && curl_mime_type(part, content_type) != CURLE_OK)
        return HB_ENOMEM;
    return 0;
}

void http_request_timeout_set(struct http_request *req, uint64_t timeout_ms,
                              uint64_t connect_timeout_ms)
{
    req->timeout_ms = timeout_ms;
    req->connect_timeout_ms = connect_timeout_ms;
}

void http_request_idle_timeout_set(struct http_request *req, uint64_t idle_ms)
{
    req->idle_ms = idle_ms;
}

void http_request_max_body_set(struct http_request *req, size_t max_body)
{
    req->max_body = max_body;
}

void http_request_stream_set(struct http_request *req, http_headers_cb headers_cb,
                             http_data_cb data_cb)
{
    req->headers_cb = headers_cb;
    req->data_cb = data_cb;
}

static long http__ms_opt(uint64_t ms)
{
    return ms > (uint64_t)LONG_MAX ? LONG_MAX : (long)ms;
}

/* Put everything the caller set on the easy handle. */
static int http__easy_setup(struct http_request *req)
{
    struct http_client *client = req->client;
    CURL *e = req->easy;
    int c = CURLE_OK; /* the setopt results or-ed: any failure shows */
    uint64_t timeout = req->timeout_ms ? req->timeout_ms : client->opts.timeout_ms;
    uint64_t connect =
        req->connect_timeout_ms ? req->connect_timeout_ms : client->opts.connect_timeout_ms;

    /* libcurl would otherwise wait for "100 Continue" before large bodies. */
    struct curl_slist *l = curl_slist_append(req->headers, "Expect:");
    if (l == NULL)
        return HB_ENOMEM;
    req->headers = l;

    c |= curl_easy_setopt(e, CURLOPT_URL, req->url);
    c |= curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)req);
    c |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    c |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->curl_error);
    c |= curl_easy_setopt(e, CURLOPT_USERAGENT, client->user_agent);
    c |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->headers);
    c |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    c |= curl_easy_setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    c |= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    if (client->ca_file != NULL)
        c |= curl_easy_setopt(e, CURLOPT_CAINFO, client->ca_file);
    c |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, http__curl_header_cb);
    c |= curl_easy_setopt(e, CURLOPT_HEADERDATA, req);
    c |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http__curl_write_cb);
    c |= curl_easy_setopt(e, CURLOPT_WRITEDATA, req);
    if (timeout != UINT64_MAX)
        c |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, http__ms_opt(timeout));
    c |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, http__ms_opt(connect));
    if (req->idle_ms > 0) {
        c |= curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
        c |= curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, http__ms_opt((req->idle_ms + 999) / 1000));
    }

    if (req->connect_only) {
        /* Through a proxy the connection is a CONNECT tunnel, also for
         * http://, so that origin-form requests reach the origin. */
        c |= curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
        c |= curl_easy_setopt(e, CURLOPT_HTTPPROXYTUNNEL, 1L);
        /* The caller speaks HTTP/1.1 over it: offer only that in ALPN, or
         * a server would pick h2 and not understand a word. */
        c |= curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
        return c == CURLE_OK ? 0 : HB_EIO;
    }
    bool is_get = strcmp(req->method, "GET") == 0;
    bool is_post = strcmp(req->method, "POST") == 0;
    if (strcmp(req->method, "HEAD") == 0) {
        c |= curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (req->mime != NULL) {
        c |= curl_easy_setopt(e, CURLOPT_MIMEPOST, req->mime);
        if (!is_post)
            c |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
    } else if (req->body != NULL || is_post) {
        c |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        c |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body != NULL ? req->body : "");
        if (!is_post)
            c |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
    } else if (!is_get) {
        c |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
    }
    return c == CURLE_OK ? 0 : HB_EIO;
}

int http_request_start(struct http_request *req, http_done_cb cb, void *data)
{
    int rc = 0;
    if (req == NULL)
        return HB_EINVAL;
    if (req->started)
        return HB_EINVAL; /* already the client's; leave it alone */
    struct http_client *client = req->client;
    if (cb == NULL) {
        rc = HB_EINVAL;
        goto out;
    }
    if (client->closing) {
        rc = HB_ESTATE;
        goto out;
    }
    rc = http__easy_setup(req);
    if (rc < 0)
        goto out;
    req->done_cb = cb;
    req->data = data;
    req->started = true;
    req->start_ns = uv_hrtime();
    if (client->in_curl == 0) {
        client->in_curl++;
        CURLMcode mc = curl_multi_add_handle(client->multi, req->easy);
        client->in_curl--;
        if (mc != CURLM_OK) {
            rc = mc == CURLM_OUT_OF_MEMORY ? HB_ENOMEM : HB_EIO;
            goto out;
        }
        req->in_multi = true;
    } else {
        http__kick(client); /* from inside a curl callback: add it next turn */
    }
    req->next = client->reqs;
    if (client->reqs != NULL)
        client->reqs->prev = req;
    client->reqs = req;
    client->nreqs++;
out:
    if (rc < 0)
        http_request_free(req);
    return rc;
}

void http_request_cancel(struct http_request *req)
{
    if (req == NULL || !req->started || req->canceled)
        return;
    req->canceled = true;
    http__kick(req->client);
}

void *http_request_data(const struct http_request *req)
{
    return req->data;
}

const char *http_request_method(const struct http_request *req)
{
    return req->method;
}

const char *http_request_url(const struct http_request *req)
{
    return req->url;
}

int http_request_status(const struct http_request *req)
{
    return req->status;
}

const char *http_request_header(const struct http_request *req, const char *name)
{
    for (size_t i = 0; i < req->nresp_headers; i++) {
        if (strcasecmp(req->resp_headers[i].name, name) == 0)
            return req->resp_headers[i].value;
    }
    return NULL;
}

size_t http_request_header_count(const struct http_request *req)
{
    return req->nresp_headers;
}

int http_request_header_at(const struct http_request *req, size_t i, const char **name,
                           const char **value)
{
    if (i >= req->nresp_headers)
        return HB_ENOTFOUND;
    *name = req->resp_headers[i].name;
    *value = req->resp_headers[i].value;
    return 0;
}

const char *http_request_body(const struct http_request *req, size_t *len)
{
    if (len != NULL)
        *len = req->resp_len;
    return req->resp_body != NULL ? req->resp_body : "";
}

const char *http_request_error(const struct http_request *req)
{
    return req->error;
}

double http_request_elapsed_ms(const struct http_request *req)
{
    if (req->start_ns == 0)
        return 0;
    uint64_t end = req->end_ns ? req->end_ns : uv_hrtime();
    return (double)(end - req->start_ns) / 1e6;
}

/* ---- raw connections ------------------------------------------------------ */

struct http_request *http_connection_new(struct http_client *client, const char *url)
{
    struct http_request *req = http_request_new(client, "CONNECT", url);
    if (req != NULL)
        req->connect_only = true;
    return req;
}

int http_connection_fd(const struct http_request *req)
{
    curl_socket_t fd = CURL_SOCKET_BAD;
    if (!req->connect_only ||
        curl_easy_getinfo(req->easy, CURLINFO_ACTIVESOCKET, &fd) != CURLE_OK)
        return -1;
    return fd == CURL_SOCKET_BAD ? -1 : (int)fd;
}

int http_connection_send(struct http_request *req, const void *buf, size_t len, size_t *sent)
{
    *sent = 0;
    if (!req->handed_over)
        return HB_ESTATE;
    CURLcode c = curl_easy_send(req->easy, buf, len, sent);
    if (c == CURLE_OK)
        return 0;
    if (c == CURLE_AGAIN)
        return UV_EAGAIN;
    http__error_set(req, "send failed: %s", curl_easy_strerror(c));
    return HB_EIO;
}

int http_connection_recv(struct http_request *req, void *buf, size_t cap, size_t *got)
{
    *got = 0;
    if (!req->handed_over)
        return HB_ESTATE;
    CURLcode c = curl_easy_recv(req->easy, buf, cap, got);
    if (c == CURLE_OK)
        return 0;
    if (c == CURLE_AGAIN)
        return UV_EAGAIN;
    http__error_set(req, "receive failed: %s", curl_easy_strerror(c));
    return HB_EIO;
}
