/* The scriptable fake HTTP/1.1 server. See tests/fake/httpd.h.
 *
 * Each connection reads into one growing buffer and parses at most one
 * request at a time: the next request waits in the buffer until the current
 * response has ended, which is what keep-alive without pipelining needs.
 * A response is a queue of steps (write bytes, pause, call, close) run in
 * order; a pause uses the response's own timer, so the response struct is
 * freed in that timer's close callback. */
#include "tests/fake/httpd.h"

#include "tests/fake/httpd_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- small helpers ---------------------------------------------------- */

static const char *httpd__reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 413:
        return "Payload Too Large";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}

void *httpd__xmalloc(size_t n)
{
    /* Test code: running out of memory here is not a case worth handling. */
    void *p = malloc(n != 0 ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "httpd: out of memory\n");
        exit(2);
    }
    return p;
}

void *httpd__xcalloc(size_t n, size_t size)
{
    void *p = calloc(n != 0 ? n : 1, size);
    if (p == NULL) {
        fprintf(stderr, "httpd: out of memory\n");
        exit(2);
    }
    return p;
}

static void *httpd__xrealloc(void *old, size_t n)
{
    void *p = realloc(old, n != 0 ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "httpd: out of memory\n");
        exit(2);
    }
    return p;
}

char *httpd__xstrndup(const char *s, size_t n)
{
    char *p = httpd__xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static void httpd__maybe_free(struct httpd *srv)
{
    if (!srv->closing || srv->handles_open > 0)
        return;
    void (*cb)(void *) = srv->close_cb;
    void *data = srv->close_data;
    free(srv);
    if (cb != NULL)
        cb(data);
}

/* ---- responses ---------------------------------------------------------- */

static void httpd__response_closed(uv_handle_t *handle)
{
    struct httpd_response *res =
        HTTPD_CONTAINER_OF((uv_timer_t *)handle, struct httpd_response, timer);
    struct httpd *srv = handle->data;
    for (size_t i = 0; i < res->req.nparts; i++) {
        free((char *)res->parts[i].name);
        free((char *)res->parts[i].filename);
        free((char *)res->parts[i].content_type);
    }
    free(res->parts);
    free(res->headers);
    free(res->head_buf);
    free(res->body);
    free(res->extra);
    free(res);
    srv->handles_open--;
    httpd__maybe_free(srv);
}

static void httpd__response_free(struct httpd_response *res)
{
    res->dead = true;
    res->conn = NULL;
    while (res->head != NULL) {
        struct httpd_step *s = res->head;
        res->head = s->next;
        free(s->bytes);
        free(s);
    }
    res->tail = NULL;
    uv_close((uv_handle_t *)&res->timer, httpd__response_closed);
}

static void httpd__conn_close(struct httpd_conn *conn);
static void httpd__conn_process(struct httpd_conn *conn);
static void httpd__conn_flush(struct httpd_conn *conn);

static void httpd__write_done(uv_write_t *w, int status)
{
    (void)status;
    struct httpd_write *wr = HTTPD_CONTAINER_OF(w, struct httpd_write, w);
    free(wr->bytes);
    free(wr);
}

/* Write bytes (owned, freed here) to the connection. */
void httpd__conn_write(struct httpd_conn *conn, char *bytes, size_t len)
{
    if (conn->closing || len == 0) {
        free(bytes);
        return;
    }
    if (conn->gather) {
        /* Pipelined requests: their answers leave in one write, as a
         * server that buffers its output sends them. */
        if (conn->out_len + len > conn->out_cap) {
            size_t cap = conn->out_cap ? conn->out_cap : 4096;
            while (cap < conn->out_len + len)
                cap *= 2;
            conn->out = httpd__xrealloc(conn->out, cap);
            conn->out_cap = cap;
        }
        memcpy(conn->out + conn->out_len, bytes, len);
        conn->out_len += len;
        free(bytes);
        return;
    }
    struct httpd_write *wr = httpd__xcalloc(1, sizeof(*wr));
    wr->bytes = bytes;
    uv_buf_t buf = uv_buf_init(bytes, (unsigned)len);
    if (uv_write(&wr->w, (uv_stream_t *)&conn->tcp, &buf, 1, httpd__write_done) != 0) {
        free(bytes);
        free(wr);
        httpd__conn_close(conn);
    }
}

static void httpd__response_run(struct httpd_response *res);

static void httpd__response_timer_fire(uv_timer_t *timer)
{
    struct httpd_response *res = HTTPD_CONTAINER_OF(timer, struct httpd_response, timer);
    res->waiting = false;
    httpd__response_run(res);
}

/* Run queued steps until the queue is empty, a pause starts, the response
 * is complete or the connection is gone. */
static void httpd__response_run(struct httpd_response *res)
{
    if (res->running || res->waiting || res->dead)
        return;
    res->running = true;
    while (res->head != NULL && !res->dead && !res->complete && !res->waiting) {
        struct httpd_step *s = res->head;
        res->head = s->next;
        if (res->head == NULL)
            res->tail = NULL;
        switch (s->kind) {
        case HTTPD_STEP_WRITE:
            httpd__conn_write(res->conn, s->bytes, s->len);
            s->bytes = NULL;
            if (s->ends)
                res->complete = true;
            break;
        case HTTPD_STEP_DELAY:
            res->waiting = true;
            uv_timer_start(&res->timer, httpd__response_timer_fire, s->ms, 0);
            break;
        case HTTPD_STEP_CALL:
            s->fn(res, s->data);
            break;
        case HTTPD_STEP_ABORT:
            httpd__conn_close(res->conn); /* frees res: dead from here */
            break;
        }
        free(s->bytes);
        free(s);
    }
    res->running = false;
    if (res->complete && !res->dead) {
        struct httpd_conn *conn = res->conn;
        bool close = res->want_close;
        conn->res = NULL;
        httpd__response_free(res);
        if (close)
            httpd__conn_close(conn);
        else
            httpd__conn_process(conn);
    }
}

static void httpd__step_add(struct httpd_response *res, struct httpd_step *s)
{
    if (res->dead || res->complete) {
        free(s->bytes);
        free(s);
        return;
    }
    if (res->tail != NULL)
        res->tail->next = s;
    else
        res->head = s;
    res->tail = s;
    httpd__response_run(res);
}

static struct httpd_step *httpd__step_new(enum httpd_step_kind kind)
{
    struct httpd_step *s = httpd__xcalloc(1, sizeof(*s));
    s->kind = kind;
    return s;
}

void httpd_response_header_add(struct httpd_response *res, const char *name, const char *value)
{
    size_t add = strlen(name) + strlen(value) + 4;
    char *p = realloc(res->extra, res->extra_len + add + 1);
    if (p == NULL)
        return;
    res->extra = p;
    res->extra_len += (size_t)snprintf(p + res->extra_len, add + 1, "%s: %s\r\n", name, value);
}

/* The status line and headers; framing is "Content-Length: N" or chunked. */
static char *httpd__head_build(struct httpd_response *res, int status, const char *content_type,
                               const char *framing, size_t extra_room, size_t *len)
{
    size_t cap = 256 + res->extra_len + (content_type ? strlen(content_type) : 0) + extra_room;
    char *p = httpd__xmalloc(cap);
    int n =
        snprintf(p, cap, "HTTP/1.1 %d %s\r\n%s\r\n%s%s%s%.*s%s\r\n", status, httpd__reason(status),
                 framing, content_type ? "Content-Type: " : "", content_type ? content_type : "",
                 content_type ? "\r\n" : "", (int)res->extra_len, res->extra ? res->extra : "",
                 res->want_close ? "Connection: close\r\n" : "");
    *len = (size_t)n;
    return p;
}

void httpd_response_send(struct httpd_response *res, int status, const char *content_type,
                         const void *body, size_t len)
{
    char framing[64];
    snprintf(framing, sizeof(framing), "Content-Length: %zu", len);
    size_t hlen = 0;
    char *p = httpd__head_build(res, status, content_type, framing, len, &hlen);
    if (len > 0)
        memcpy(p + hlen, body, len);
    struct httpd_step *s = httpd__step_new(HTTPD_STEP_WRITE);
    s->bytes = p;
    s->len = hlen + len;
    s->ends = true;
    httpd__step_add(res, s);
}

void httpd_response_start(struct httpd_response *res, int status, const char *content_type)
{
    struct httpd_step *s = httpd__step_new(HTTPD_STEP_WRITE);
    s->bytes =
        httpd__head_build(res, status, content_type, "Transfer-Encoding: chunked", 0, &s->len);
    httpd__step_add(res, s);
}

void httpd_response_chunk(struct httpd_response *res, const void *data, size_t len)
{
    if (len == 0)
        return; /* a zero chunk would end the body */
    struct httpd_step *s = httpd__step_new(HTTPD_STEP_WRITE);
    s->bytes = httpd__xmalloc(len + 32);
    int n = snprintf(s->bytes, 32, "%zx\r\n", len);
    memcpy(s->bytes + n, data, len);
    memcpy(s->bytes + (size_t)n + len, "\r\n", 2);
    s->len = (size_t)n + len + 2;
    httpd__step_add(res, s);
}

void httpd_response_end(struct httpd_response *res)
{
    struct httpd_step *s = httpd__step_new(HTTPD_STEP_WRITE);
    s->bytes = httpd__xstrndup("0\r\n\r\n", 5);
    s->len = 5;
    s->ends = true;
    httpd__step_add(res, s);
}

void httpd_response_delay(struct httpd_response *res, uint64_t ms)
{
    struct httpd_step *s = httpd__step_new(HTTPD_STEP_DELAY);
    s->ms = ms;
    httpd__step_add(res, s);
}

void httpd_response_call(struct httpd_response *res,
                         void (*fn)(struct httpd_response *res, void *data), void *data)
{
    struct httpd_step *s = httpd__step_new(HTTPD_STEP_CALL);
    s->fn = fn;
    s->data = data;
    httpd__step_add(res, s);
}

void httpd_response_abort(struct httpd_response *res)
{
    httpd__step_add(res, httpd__step_new(HTTPD_STEP_ABORT));
}

struct httpd *httpd_response_server(const struct httpd_response *res)
{
    return (struct httpd *)res->timer.data;
}

/* ---- connections -------------------------------------------------------- */

static void httpd__conn_process(struct httpd_conn *conn)
{
    struct httpd *srv = conn->srv;
    while (conn->res == NULL && !conn->closing && conn->in_len > 0) {
        struct httpd_response *res = NULL;
        int rc = httpd__request_parse(conn, &res);
        if (rc == 0)
            return;
        if (rc < 0) {
            const char *bad = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                              "Connection: close\r\n\r\n";
            httpd__conn_write(conn, httpd__xstrndup(bad, strlen(bad)), strlen(bad));
            httpd__conn_close(conn);
            return;
        }
        res->conn = conn;
        uv_timer_init(srv->loop, &res->timer);
        res->timer.data = srv;
        srv->handles_open++;
        conn->res = res;
        atomic_fetch_add(&srv->nreqs, 1);
        /* Steps queued by the handler run once it has returned. */
        res->running = true;
        srv->handler(res, &res->req, srv->data);
        res->running = false;
        httpd__response_run(res);
    }
}

static void httpd__conn_closed(uv_handle_t *handle)
{
    struct httpd_conn *conn = HTTPD_CONTAINER_OF((uv_tcp_t *)handle, struct httpd_conn, tcp);
    struct httpd *srv = conn->srv;
    if (conn->prev != NULL)
        conn->prev->next = conn->next;
    else
        srv->conns = conn->next;
    if (conn->next != NULL)
        conn->next->prev = conn->prev;
    free(conn->in);
    free(conn->out);
    free(conn);
    srv->handles_open--;
    httpd__maybe_free(srv);
}

static void httpd__conn_shutdown_done(uv_shutdown_t *sreq, int status)
{
    (void)status;
    struct httpd_conn *conn = HTTPD_CONTAINER_OF(sreq, struct httpd_conn, shutdown);
    if (!uv_is_closing((uv_handle_t *)&conn->tcp))
        uv_close((uv_handle_t *)&conn->tcp, httpd__conn_closed);
}

/* Close a connection after what was written so far has been sent. */
static void httpd__conn_close(struct httpd_conn *conn)
{
    if (conn == NULL || conn->closing)
        return;
    httpd__conn_flush(conn); /* what was answered before the close goes out */
    conn->closing = true;
    if (conn->res != NULL) {
        httpd__response_free(conn->res);
        conn->res = NULL;
    }
    uv_read_stop((uv_stream_t *)&conn->tcp);
    if (uv_shutdown(&conn->shutdown, (uv_stream_t *)&conn->tcp, httpd__conn_shutdown_done) != 0)
        uv_close((uv_handle_t *)&conn->tcp, httpd__conn_closed);
}

static void httpd__alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct httpd_conn *conn = HTTPD_CONTAINER_OF((uv_tcp_t *)handle, struct httpd_conn, tcp);
    if (conn->in_cap - conn->in_len < suggested) {
        size_t cap = conn->in_cap ? conn->in_cap : 16384;
        while (cap - conn->in_len < suggested)
            cap *= 2;
        char *p = realloc(conn->in, cap);
        if (p == NULL) {
            *buf = uv_buf_init(NULL, 0);
            return;
        }
        conn->in = p;
        conn->in_cap = cap;
    }
    *buf = uv_buf_init(conn->in + conn->in_len, (unsigned)(conn->in_cap - conn->in_len));
}

/* Write what was collected while answering one read. */
static void httpd__conn_flush(struct httpd_conn *conn)
{
    conn->gather = false;
    if (conn->out_len == 0)
        return;
    char *bytes = conn->out;
    size_t len = conn->out_len;
    conn->out = NULL;
    conn->out_len = conn->out_cap = 0;
    httpd__conn_write(conn, bytes, len);
}

static void httpd__read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    struct httpd_conn *conn = HTTPD_CONTAINER_OF((uv_tcp_t *)stream, struct httpd_conn, tcp);
    if (nread < 0) {
        httpd__conn_close(conn);
        return;
    }
    conn->in_len += (size_t)nread;
    if (conn->in_len > HTTPD_MAX_HEAD + HTTPD_MAX_BODY * 2) {
        httpd__conn_close(conn);
        return;
    }
    conn->gather = true;
    httpd__conn_process(conn);
    httpd__conn_flush(conn);
}

static void httpd__accept(uv_stream_t *listener, int status)
{
    struct httpd *srv = HTTPD_CONTAINER_OF((uv_tcp_t *)listener, struct httpd, listener);
    if (status < 0 || srv->closing)
        return;
    struct httpd_conn *conn = httpd__xcalloc(1, sizeof(*conn));
    conn->srv = srv;
    uv_tcp_init(srv->loop, &conn->tcp);
    srv->handles_open++;
    conn->next = srv->conns;
    if (srv->conns != NULL)
        srv->conns->prev = conn;
    srv->conns = conn;
    if (uv_accept(listener, (uv_stream_t *)&conn->tcp) != 0) {
        conn->closing = true;
        uv_close((uv_handle_t *)&conn->tcp, httpd__conn_closed);
        return;
    }
    conn->id = atomic_fetch_add(&srv->nconns, 1) + 1;
    uv_tcp_nodelay(&conn->tcp, 1);
    uv_read_start((uv_stream_t *)&conn->tcp, httpd__alloc, httpd__read);
}

/* ---- server ------------------------------------------------------------- */

static void httpd__listener_closed(uv_handle_t *handle)
{
    struct httpd *srv = HTTPD_CONTAINER_OF((uv_tcp_t *)handle, struct httpd, listener);
    srv->handles_open--;
    httpd__maybe_free(srv);
}

struct httpd *httpd_new(uv_loop_t *loop, httpd_handler_fn handler, void *data)
{
    struct httpd *srv = calloc(1, sizeof(*srv));
    if (srv == NULL)
        return NULL;
    srv->loop = loop;
    srv->handler = handler;
    srv->data = data;
    atomic_init(&srv->nconns, 0);
    atomic_init(&srv->nreqs, 0);
    uv_tcp_init(loop, &srv->listener);
    srv->handles_open = 1;
    struct sockaddr_in addr;
    struct sockaddr_storage bound;
    int blen = (int)sizeof(bound);
    uv_ip4_addr("127.0.0.1", 0, &addr);
    if (uv_tcp_bind(&srv->listener, (const struct sockaddr *)&addr, 0) != 0 ||
        uv_listen((uv_stream_t *)&srv->listener, 511, httpd__accept) != 0 ||
        uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound, &blen) != 0) {
        /* Closing frees srv; the caller sees NULL at once. */
        srv->closing = true;
        uv_close((uv_handle_t *)&srv->listener, httpd__listener_closed);
        return NULL;
    }
    srv->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    snprintf(srv->base_url, sizeof(srv->base_url), "http://127.0.0.1:%d", srv->port);
    return srv;
}

void httpd_close(struct httpd *srv, void (*cb)(void *data), void *data)
{
    if (srv == NULL || srv->closing)
        return;
    srv->closing = true;
    srv->close_cb = cb;
    srv->close_data = data;
    uv_close((uv_handle_t *)&srv->listener, httpd__listener_closed);
    for (struct httpd_conn *c = srv->conns; c != NULL; c = c->next) {
        if (!c->closing) {
            c->closing = true;
            if (c->res != NULL) {
                httpd__response_free(c->res);
                c->res = NULL;
            }
        }
        /* Do not wait for a graceful shutdown: close now. */
        if (!uv_is_closing((uv_handle_t *)&c->tcp))
            uv_close((uv_handle_t *)&c->tcp, httpd__conn_closed);
    }
}

int httpd_port(const struct httpd *srv)
{
    return srv->port;
}

const char *httpd_base_url(const struct httpd *srv)
{
    return srv->base_url;
}

unsigned httpd_connections(const struct httpd *srv)
{
    return atomic_load(&((struct httpd *)srv)->nconns);
}

unsigned httpd_requests(const struct httpd *srv)
{
    return atomic_load(&((struct httpd *)srv)->nreqs);
}

/* ---- on a thread -------------------------------------------------------- */

struct httpd_thread {
    uv_thread_t tid;
    uv_loop_t loop;
    uv_async_t stop;
    uv_sem_t ready;
    struct httpd *srv;
    httpd_handler_fn handler;
    void *data;
};

static void httpd__thread_stop_cb(uv_async_t *async)
{
    struct httpd_thread *t = HTTPD_CONTAINER_OF(async, struct httpd_thread, stop);
    httpd_close(t->srv, NULL, NULL);
    uv_close((uv_handle_t *)&t->stop, NULL);
}

static void httpd__thread_main(void *arg)
{
    struct httpd_thread *t = arg;
    /* Named apart from the daemon's threads, for top -H, perf and the
     * benches' CPU figures. */
    pthread_setname_np(pthread_self(), "fake-httpd");
    t->srv = httpd_new(&t->loop, t->handler, t->data);
    bool failed = t->srv == NULL;
    uv_sem_post(&t->ready); /* t->srv is the starter's to read from here */
    if (failed)
        uv_close((uv_handle_t *)&t->stop, NULL);
    uv_run(&t->loop, UV_RUN_DEFAULT);
}

struct httpd_thread *httpd_thread_start(httpd_handler_fn handler, void *data)
{
    struct httpd_thread *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->handler = handler;
    t->data = data;
    if (uv_loop_init(&t->loop) != 0) {
        free(t);
        return NULL;
    }
    if (uv_async_init(&t->loop, &t->stop, httpd__thread_stop_cb) != 0) {
        uv_loop_close(&t->loop);
        free(t);
        return NULL;
    }
    bool ok = uv_sem_init(&t->ready, 0) == 0;
    if (ok && uv_thread_create(&t->tid, httpd__thread_main, t) != 0) {
        uv_sem_destroy(&t->ready);
        ok = false;
    }
    if (!ok) {
        uv_close((uv_handle_t *)&t->stop, NULL);
        uv_run(&t->loop, UV_RUN_DEFAULT);
        uv_loop_close(&t->loop);
        free(t);
        return NULL;
    }
    uv_sem_wait(&t->ready);
    uv_sem_destroy(&t->ready);
    if (t->srv == NULL) {
        /* The thread closed its handles and returned. */
        uv_thread_join(&t->tid);
        uv_loop_close(&t->loop);
        free(t);
        return NULL;
    }
    return t;
}

struct httpd *httpd_thread_server(const struct httpd_thread *t)
{
    return t->srv;
}

void httpd_thread_stop(struct httpd_thread *t)
{
    if (t == NULL)
        return;
    uv_async_send(&t->stop);
    uv_thread_join(&t->tid);
    uv_loop_close(&t->loop);
    free(t);
}

void httpd_response_close_after(struct httpd_response *res)
{
    res->want_close = true;
}

void httpd_close_idle(struct httpd *srv)
{
    for (struct httpd_conn *c = srv->conns; c != NULL; c = c->next) {
        if (c->res == NULL && !c->closing) {
            c->closing = true;
            uv_read_stop((uv_stream_t *)&c->tcp);
            uv_close((uv_handle_t *)&c->tcp, httpd__conn_closed);
        }
    }
}
