#include "net/server_internal.h"

#include "base/error.h"
#include "base/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The server speaks HTTP/1.1 on uv_tcp handles; http-parser reads the
 * requests (net/server_request.c). libwebsockets 4.1.6 served it before,
 * but it re-parses a pipelined request that is still in its read buffer as
 * the body of that same request and then spins raising
 * HTTP_BODY_COMPLETION without consuming a byte, inside one loop turn: two
 * pipelined POSTs wedged the daemon. It also drops oversized headers
 * without an answer. Here every connection holds one request at a time:
 * reading stops and the parser pauses while a request is handled and
 * answered, pipelined bytes wait in the connection's buffer, and the next
 * request is parsed only after the answer's write completed (so one
 * connection is worth at most one request per loop turn, whatever it
 * sends). This file holds listening, connections and the lifecycle. */

/* ---- routing -------------------------------------------------------------- */

int server_route_add(struct server *srv, const char *method, const char *path,
                     const char *const *headers, server_handler_fn fn, void *data)
{
    if (srv == NULL || method == NULL || path == NULL || path[0] != '/' || fn == NULL ||
        strlen(method) >= SERVER_METHOD_MAX || strlen(path) >= SERVER_PATH_MAX)
        return HB_EINVAL;
    for (const struct server_route *r = srv->routes; r != NULL; r = r->next) {
        if (strcmp(r->path, path) == 0 && strcmp(r->method, method) == 0)
            return HB_EEXISTS;
    }
    struct server_route *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return HB_ENOMEM;
    r->method = strdup(method);
    r->path = strdup(path);
    bool ok = r->method != NULL && r->path != NULL;
    for (size_t i = 0; ok && headers != NULL && headers[i] != NULL; i++) {
        if (i == SERVER_HEADERS_MAX) {
            ok = false;
            break;
        }
        /* Kept lower case; requests' header names compare case-insensitively. */
        size_t n = strlen(headers[i]);
        if (n == 0 || n >= SERVER_NAME_MAX) { /* a longer name is never kept when read */
            ok = false;
            break;
        }
        r->headers[i] = malloc(n + 1);
        if (r->headers[i] == NULL) {
            ok = false;
            break;
        }
        for (size_t k = 0; k < n; k++)
            r->headers[i][k] =
                (char)(headers[i][k] >= 'A' && headers[i][k] <= 'Z' ? headers[i][k] - 'A' + 'a'
                                                                    : headers[i][k]);
        r->headers[i][n] = '\0';
        r->nheaders = i + 1;
    }
    if (!ok) {
        for (size_t i = 0; i < SERVER_HEADERS_MAX; i++)
            free(r->headers[i]);
        free(r->method);
        free(r->path);
        free(r);
        return headers != NULL ? HB_EINVAL : HB_ENOMEM;
    }
    r->fn = fn;
    r->data = data;
    r->next = srv->routes;
    srv->routes = r;
    return 0;
}

/* ---- connections -------------------------------------------------------------------------- */

static void server__conn_closed(uv_handle_t *h)
{
    struct server_conn *conn = h->data;
    if (--conn->handles > 0)
        return;
    free(conn->in);
    free(conn->out);
    free(conn);
}

/* The handler's gone callback of a handled request, taken: it runs once. */
struct server_gone {
    void (*cb)(void *data);
    void *data;
};

static struct server_gone server__gone_take(struct server_request *req)
{
    struct server_gone g = {.cb = req->gone_cb, .data = req->gone_data};
    req->gone_cb = NULL;
    return g;
}

void server__conn_close(struct server_conn *conn)
{
    if (conn->state == SERVER_CONN_CLOSING)
        return;
    conn->state = SERVER_CONN_CLOSING;
    struct server_request *req = conn->req;
    conn->req = NULL;
    struct server_gone gone = {0};
    if (req != NULL) {
        req->conn = NULL;
        if (req->state != SERVER_REQ_HANDLING)
            server__request_free(req);
        else
            gone = server__gone_take(req); /* it answers into the void; told below */
    }
    struct server *srv = conn->srv;
    if (srv != NULL) {
        if (conn->prev != NULL)
            conn->prev->next = conn->next;
        else
            srv->conns = conn->next;
        if (conn->next != NULL)
            conn->next->prev = conn->prev;
        srv->nconns--;
        conn->srv = NULL;
    }
    conn->prev = conn->next = NULL;
    uv_close((uv_handle_t *)&conn->tcp, server__conn_closed);
    uv_close((uv_handle_t *)&conn->timer, server__conn_closed);
    if (gone.cb != NULL)
        gone.cb(gone.data); /* may answer req: it is freed then */
}

void server_request_on_gone(struct server_request *req, void (*cb)(void *data), void *data)
{
    if (req == NULL)
        return;
    req->gone_cb = cb;
    req->gone_data = data;
}

static void server__conn_timeout(uv_timer_t *t)
{
    /* A request that did not arrive whole in time, an idle keep-alive, an
     * answer the client did not take in time, or the end of lingering. */
    struct server_conn *conn = t->data;
    if (conn->state == SERVER_CONN_BUSY)
        log_warn("server.answer_not_taken", "timeout_ms=%llu",
                 (unsigned long long)(conn->srv != NULL ? conn->srv->write_timeout_ms : 0));
    server__conn_close(conn);
}

void server__conn_deadline(struct server_conn *conn, uint64_t ms)
{
    uv_timer_start(&conn->timer, server__conn_timeout, ms, 0);
}

static void server__conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct server_conn *conn = h->data;
    if (conn->state == SERVER_CONN_LINGER)
        conn->in_len = 0; /* dropped unread */
    if (conn->in_cap - conn->in_len < SERVER_READ_CHUNK) {
        size_t cap = conn->in_len + SERVER_READ_CHUNK;
        char *in = realloc(conn->in, cap);
        if (in == NULL) {
            *buf = uv_buf_init(NULL, 0); /* the read callback sees UV_ENOBUFS */
            return;
        }
        conn->in = in;
        conn->in_cap = cap;
    }
    *buf = uv_buf_init(conn->in + conn->in_len, (unsigned int)(conn->in_cap - conn->in_len));
}

static void server__conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    struct server_conn *conn = s->data;
    if (conn->state == SERVER_CONN_CLOSING)
        return;
    if (nread < 0) {
        struct server_request *req = conn->req;
        if (nread == UV_EOF && conn->state == SERVER_CONN_BUSY && req != NULL &&
            (req->state == SERVER_REQ_HANDLING || req->state == SERVER_REQ_ANSWERED)) {
            /* The client sent its end while its request is handled (or its
             * answer is being written): gone, or half-closed to wait for
             * the answer. The handler hears of it; the answer is still
             * written whole, and the connection closes after it. */
            uv_read_stop((uv_stream_t *)&conn->tcp);
            conn->reading = false;
            conn->peer_done = true;
            conn->keep_alive = false;
            struct server_gone gone = server__gone_take(req);
            if (gone.cb != NULL)
                gone.cb(gone.data); /* may answer req */
            return;
        }
        server__conn_close(conn); /* the peer closed (or failed) */
        return;
    }
    if (nread == 0)
        return;
    if (conn->state == SERVER_CONN_LINGER) {
        conn->lingered += (size_t)nread;
        conn->in_len = 0;
        if (conn->lingered > SERVER_LINGER_BYTES)
            server__conn_close(conn);
        return;
    }
    conn->in_len += (size_t)nread;
    if (conn->state == SERVER_CONN_BUSY) {
        /* Read ahead while a request is handled, so that a client leaving
         * is seen (above); what it sent is parsed after the answer. */
        if (conn->in_len >= SERVER_BUSY_READ_MAX) {
            uv_read_stop((uv_stream_t *)&conn->tcp);
            conn->reading = false;
        }
        return;
    }
    server__conn_process(conn);
}

/* Parse what conn->in holds, one request at a time; read while a request
 * is incomplete, and not while one is handled or answered. */
void server__conn_process(struct server_conn *conn)
{
    server__conn_parse(conn);
    switch (conn->state) {
    case SERVER_CONN_HEAD:
    case SERVER_CONN_BODY:
        if (!conn->reading &&
            uv_read_start((uv_stream_t *)&conn->tcp, server__conn_alloc, server__conn_read) < 0) {
            server__conn_close(conn);
            return;
        }
        conn->reading = true;
        if (!uv_is_active((uv_handle_t *)&conn->timer))
            uv_timer_start(&conn->timer, server__conn_timeout, SERVER_TIMEOUT_MS, 0);
        break;
    case SERVER_CONN_BUSY:
        /* Still read (server__conn_read keeps it unparsed), up to a bound,
         * to see the client leave. */
        if (conn->in_len >= SERVER_BUSY_READ_MAX && conn->reading) {
            uv_read_stop((uv_stream_t *)&conn->tcp);
            conn->reading = false;
        } else if (conn->in_len < SERVER_BUSY_READ_MAX && !conn->reading && !conn->peer_done) {
            if (uv_read_start((uv_stream_t *)&conn->tcp, server__conn_alloc, server__conn_read) <
                0) {
                server__conn_close(conn);
                return;
            }
            conn->reading = true;
        }
        /* A handler may take long; an answer being written has its own
         * deadline (server__conn_write). */
        if (conn->req == NULL || conn->req->state != SERVER_REQ_ANSWERED)
            uv_timer_stop(&conn->timer);
        break;
    default:
        break;
    }
}

static void server__conn_shut(uv_shutdown_t *sh, int status)
{
    struct server_conn *conn = sh->data;
    if (status < 0 && conn->state != SERVER_CONN_CLOSING)
        server__conn_close(conn);
}

/* After a closing answer: send FIN, then read and drop what the client
 * still sends for a moment, so that closing with unread input does not
 * reset the connection before the client has read the answer. */
void server__conn_linger(struct server_conn *conn)
{
    conn->state = SERVER_CONN_LINGER;
    conn->in_len = 0;
    conn->shutdown.data = conn;
    if (uv_shutdown(&conn->shutdown, (uv_stream_t *)&conn->tcp, server__conn_shut) < 0 ||
        (!conn->reading &&
         uv_read_start((uv_stream_t *)&conn->tcp, server__conn_alloc, server__conn_read) < 0)) {
        server__conn_close(conn);
        return;
    }
    conn->reading = true;
    uv_timer_start(&conn->timer, server__conn_timeout, SERVER_LINGER_MS, 0);
}

static void server__accept(uv_stream_t *listener, int status)
{
    struct server *srv = listener->data;
    if (status < 0 || srv == NULL)
        return;
    struct server_conn *conn = calloc(1, sizeof(*conn));
    if (conn == NULL)
        return;
    uv_tcp_init(srv->loop, &conn->tcp);
    uv_timer_init(srv->loop, &conn->timer);
    conn->tcp.data = conn;
    conn->timer.data = conn;
    conn->handles = 2;
    conn->srv = srv;
    conn->next = srv->conns;
    if (srv->conns != NULL)
        srv->conns->prev = conn;
    srv->conns = conn;
    srv->nconns++;
    if (uv_accept(listener, (uv_stream_t *)&conn->tcp) < 0) {
        server__conn_close(conn);
        return;
    }
    if (srv->nconns > SERVER_CONNS_MAX) {
        log_warn("server.busy", "connections=%zu limit=%d", srv->nconns - 1, SERVER_CONNS_MAX);
        server__conn_close(conn);
        return;
    }
    uv_tcp_nodelay(&conn->tcp, 1);
    http_parser_init(&conn->parser, HTTP_REQUEST);
    conn->parser.data = conn;
    conn->state = SERVER_CONN_HEAD;
    server__conn_process(conn);
}

/* ---- the server ---------------------------------------------------------- */

/* Can we listen there? Found out before any handle exists, so that a taken
 * port or a foreign address returns NULL with nothing left on the loop.
 * Returns 0, or a negative errno. */
static int server__probe_listen(const char *address, int port)
{
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    struct addrinfo *res = NULL;
    if (getaddrinfo(address, service, &hints, &res) != 0 || res == NULL)
        return -EADDRNOTAVAIL;
    int rc = -EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        rc = bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 ? 0 : -errno;
        close(fd);
        if (rc == 0)
            break;
    }
    freeaddrinfo(res);
    return rc;
}

/* Bind and listen; returns the port, or a negative libuv code. */
static int server__listen(uv_tcp_t *tcp, const char *address, int port)
{
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    struct addrinfo *res = NULL;
    if (getaddrinfo(address, service, &hints, &res) != 0 || res == NULL)
        return UV_EADDRNOTAVAIL;
    int rc = uv_tcp_bind(tcp, res->ai_addr, 0);
    freeaddrinfo(res);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)tcp, 128, server__accept);
    if (rc < 0)
        return rc;
    struct sockaddr_storage ss;
    int len = (int)sizeof(ss);
    rc = uv_tcp_getsockname(tcp, (struct sockaddr *)&ss, &len);
    if (rc < 0)
        return rc;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

struct server *server_new(uv_loop_t *loop, const struct server_options *opts)
{
    struct server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL)
        return NULL;
    srv->loop = loop;
    srv->max_body = opts != NULL && opts->max_body > 0 ? opts->max_body : SERVER_MAX_BODY_DEFAULT;
    srv->write_timeout_ms = opts != NULL && opts->write_timeout_ms > 0 ? opts->write_timeout_ms
                                                                       : SERVER_WRITE_TIMEOUT_MS;
    const char *address = opts != NULL && opts->address != NULL ? opts->address : "127.0.0.1";
    bool any = strcmp(address, "0.0.0.0") == 0 || strcmp(address, "*") == 0;
    int port = opts != NULL ? opts->port : 0;
    int probe = server__probe_listen(any ? NULL : address, port);
    if (probe < 0) {
        log_error("server.listen", "address=%s port=%d error=%s", address, port, strerror(-probe));
        free(srv);
        return NULL;
    }
    srv->listener = malloc(sizeof(*srv->listener));
    if (srv->listener == NULL) {
        free(srv);
        return NULL;
    }
    uv_tcp_init(loop, srv->listener);
    srv->listener->data = srv;
    int rc = server__listen(srv->listener, any ? "0.0.0.0" : address, port);
    if (rc < 0) {
        /* Taken between the probe and now. The handle is on the loop
         * already: the caller closes the server the usual way, seeing
         * server_port() <= 0. */
        log_error("server.listen", "address=%s port=%d error=%s", address, port, uv_strerror(rc));
        srv->port = -1;
        return srv;
    }
    srv->port = rc;
    log_info("server.listening", "address=%s port=%d", address, srv->port);
    return srv;
}

int server_port(const struct server *srv)
{
    return srv->port;
}

static void server__listener_closed(uv_handle_t *h)
{
    free(h);
}

void server_stop(struct server *srv)
{
    if (srv == NULL || srv->closed)
        return;
    srv->closed = true;
    /* Handlers keep their requests; their answers are dropped from now on. */
    struct server_request *req = srv->handling;
    while (req != NULL) {
        struct server_request *next = req->next;
        req->srv = NULL;
        req->route = NULL; /* routes die with the server: headers read as absent */
        req->prev = req->next = NULL;
        req = next;
    }
    srv->handling = NULL;
    srv->pending = 0;
    while (srv->conns != NULL)
        server__conn_close(srv->conns); /* unlinks it */
    srv->listener->data = NULL;
    uv_close((uv_handle_t *)srv->listener, server__listener_closed);
    srv->listener = NULL;
}

void server_free(struct server *srv)
{
    if (srv == NULL)
        return;
    server_stop(srv);
    struct server_route *r = srv->routes;
    while (r != NULL) {
        struct server_route *next = r->next;
        for (size_t i = 0; i < r->nheaders; i++)
            free(r->headers[i]);
        free(r->method);
        free(r->path);
        free(r);
        r = next;
    }
    for (size_t i = 0; i < SERVER_REFUSAL_PREFIXES; i++)
        free(srv->refusal_prefixes[i]);
    free(srv);
}

int server_refusals_json(struct server *srv, const char *const *prefixes, server_refusal_fn fn,
                         void *data)
{
    if (srv == NULL || prefixes == NULL || fn == NULL)
        return HB_EINVAL;
    size_t n = 0;
    while (prefixes[n] != NULL)
        n++;
    if (n > SERVER_REFUSAL_PREFIXES)
        return HB_EINVAL;
    for (size_t i = 0; i < SERVER_REFUSAL_PREFIXES; i++) {
        free(srv->refusal_prefixes[i]);
        srv->refusal_prefixes[i] = NULL;
    }
    for (size_t i = 0; i < n; i++) {
        srv->refusal_prefixes[i] = strdup(prefixes[i]);
        if (srv->refusal_prefixes[i] == NULL)
            return HB_ENOMEM;
    }
    srv->refusal_fn = fn;
    srv->refusal_data = data;
    return 0;
}
