/* Pipelined HTTP/1.1 calls to one origin. See net/http_pipe.h.
 *
 * Calls wait in the pipe's queue until the check phase of the loop's turn
 * in which they were made; then each open connection whose last write has
 * gone out takes up to `depth` minus what it has pending, and writes them
 * in one send. Answers come back in order and complete the calls at the
 * head of the connection's pending list. A connection is polled for
 * reading all the time (so a close by the server is seen while idle) and
 * for writing only while a send is held back. */
#include "net/http_pipe.h"
#include "net/http_response.h"

#include "net/http.h"
#include "base/error.h"
#include "base/log.h"
#include "base/util.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PIPE_DEFAULT_CONNS 4u
#define PIPE_DEFAULT_DEPTH 8u
#define PIPE_DEFAULT_TIMEOUT_MS 30000u
#define PIPE_DEFAULT_MAX_BODY (8u * 1024u * 1024u)
#define PIPE_MAX_HEAD (64u * 1024u)
#define PIPE_READ_CHUNK 16384u
#define PIPE_TICK_MS 1000u

struct pipe_call {
    struct pipe_call *next;
    char *bytes; /* the whole request */
    size_t len;
    http_pipe_done_cb cb;
    void *data;
    uint64_t sent_ms; /* loop time it was written */
    bool resent;      /* already sent again once after a dead idle connection */
};

enum pipe_conn_state { PIPE_CONNECTING, PIPE_OPEN, PIPE_CLOSING };

struct pipe_conn {
    struct http_pipe *pipe;
    struct pipe_conn *prev, *next;
    struct http_request *c; /* the raw connection */
    enum pipe_conn_state state;
    uv_poll_t poll;
    bool poll_init;
    int events;
    struct pipe_call *head, *tail; /* written or being written, in order */
    unsigned npending;
    char *out; /* bytes being written */
    size_t out_len, out_off, out_cap;
    char *in; /* bytes read, not yet parsed past in_off */
    size_t in_len, in_off, in_cap;
    size_t got_since_idle; /* bytes read since the pending list was last empty */
    bool reused;           /* the current batch went out on a connection that had been idle */
    unsigned answered;     /* responses read on this connection */
    bool until_close;      /* the head's body runs to the end of the connection */
};

struct http_pipe {
    uv_loop_t *loop;
    struct http_client *http;
    char *origin;
    char *host; /* the Host header */
    char *agent;
    unsigned max_conns;
    unsigned depth;
    uint64_t timeout_ms;
    uint64_t tick_ms; /* how often pending calls are checked against timeout_ms */
    size_t max_body;
    struct pipe_call *qhead, *qtail;
    size_t nqueued;
    struct pipe_conn *conns;
    unsigned nconns, nconnecting, opened;
    unsigned nfreeing; /* connections unlinked, not yet freed */
    unsigned resent;   /* calls written a second time */
    uv_check_t check;  /* flushes after the poll phase of this turn */
    uv_idle_t idle;    /* active with check: the poll phase must not block */
    uv_timer_t tick;
    int handles_open;
    bool closing;
    bool torn_down;
    void (*close_cb)(void *data);
    void *close_data;
};

static void pipe__conn_close(struct pipe_conn *conn);
static void pipe__conn_lost(struct pipe_conn *conn);
static void pipe__flush(struct http_pipe *p);
static void pipe__maybe_free(struct http_pipe *p);
static void pipe__tick_cb(uv_timer_t *t);

/* ---- calls and the queue ------------------------------------------------- */

static void pipe__call_complete(struct pipe_call *call, int rc, int status, const char *body,
                                size_t len)
{
    call->cb(rc, status, body != NULL ? body : "", body != NULL ? len : 0, call->data);
    free(call->bytes);
    free(call);
}

static void pipe__queue_push(struct http_pipe *p, struct pipe_call *call)
{
    call->next = NULL;
    if (p->qtail != NULL)
        p->qtail->next = call;
    else
        p->qhead = call;
    p->qtail = call;
    p->nqueued++;
}

/* Put a list of calls (in order) back at the front of the queue. */
static void pipe__queue_front(struct http_pipe *p, struct pipe_call *first, struct pipe_call *last,
                              size_t n)
{
    if (first == NULL)
        return;
    last->next = p->qhead;
    p->qhead = first;
    if (p->qtail == NULL)
        p->qtail = last;
    p->nqueued += n;
}

static struct pipe_call *pipe__queue_pop(struct http_pipe *p)
{
    struct pipe_call *call = p->qhead;
    if (call == NULL)
        return NULL;
    p->qhead = call->next;
    if (p->qhead == NULL)
        p->qtail = NULL;
    p->nqueued--;
    call->next = NULL;
    return call;
}

static void pipe__queue_fail(struct http_pipe *p, int rc)
{
    struct pipe_call *call;
    while ((call = pipe__queue_pop(p)) != NULL)
        pipe__call_complete(call, rc, 0, NULL, 0);
}

static void pipe__idle_cb(uv_idle_t *idle)
{
    (void)idle; /* only there to keep the poll phase from sleeping */
}

static void pipe__check_cb(uv_check_t *check)
{
    struct http_pipe *p = check->data;
    uv_check_stop(check);
    uv_idle_stop(&p->idle);
    pipe__flush(p);
}

/* Flush at the end of this turn of the loop: calls made during it go out
 * together. A check handle runs after the poll phase, and an idle handle
 * keeps that phase from waiting when the call came from a timer. */
static void pipe__wake(struct http_pipe *p)
{
    if (p->torn_down || uv_is_active((uv_handle_t *)&p->check))
        return;
    uv_check_start(&p->check, pipe__check_cb);
    uv_idle_start(&p->idle, pipe__idle_cb);
}

/* ---- connections ------------------------------------------------------------ */

static void pipe__conn_unlink(struct pipe_conn *conn)
{
    struct http_pipe *p = conn->pipe;
    if (conn->prev != NULL)
        conn->prev->next = conn->next;
    else
        p->conns = conn->next;
    if (conn->next != NULL)
        conn->next->prev = conn->prev;
    conn->prev = conn->next = NULL;
    p->nconns--;
}

static void pipe__conn_free(struct pipe_conn *conn)
{
    struct http_pipe *p = conn->pipe;
    http_request_free(conn->c);
    free(conn->out);
    free(conn->in);
    free(conn);
    p->nfreeing--;
    pipe__maybe_free(p);
}

static void pipe__poll_closed(uv_handle_t *h)
{
    struct pipe_conn *conn = container_of((uv_poll_t *)h, struct pipe_conn, poll);
    pipe__conn_free(conn);
}

/* Take the pending calls off a connection (in order), for completing or
 * sending again. */
static struct pipe_call *pipe__conn_take(struct pipe_conn *conn, struct pipe_call **last, size_t *n)
{
    struct pipe_call *first = conn->head;
    *last = conn->tail;
    *n = conn->npending;
    conn->head = conn->tail = NULL;
    conn->npending = 0;
    return first;
}

/* The connection is done for: stop polling, complete or requeue what is
 * pending, free it once the poll handle has closed. */
static void pipe__conn_fail(struct pipe_conn *conn, int rc, bool resend)
{
    struct http_pipe *p = conn->pipe;
    if (conn->state == PIPE_CLOSING)
        return;
    struct pipe_call *last = NULL;
    size_t n = 0;
    struct pipe_call *first = pipe__conn_take(conn, &last, &n);
    pipe__conn_close(conn);
    if (resend) {
        p->resent += (unsigned)n;
        pipe__queue_front(p, first, last, n);
        pipe__wake(p);
        return;
    }
    while (first != NULL) {
        struct pipe_call *next = first->next;
        pipe__call_complete(first, rc, 0, NULL, 0);
        first = next;
    }
}

static void pipe__conn_close(struct pipe_conn *conn)
{
    if (conn->state == PIPE_CLOSING)
        return;
    conn->state = PIPE_CLOSING;
    pipe__conn_unlink(conn);
    conn->pipe->nfreeing++;
    if (conn->poll_init)
        uv_close((uv_handle_t *)&conn->poll, pipe__poll_closed);
    else
        pipe__conn_free(conn);
}

static void pipe__poll_cb(uv_poll_t *poll, int status, int events);

static void pipe__poll_set(struct pipe_conn *conn, int events)
{
    if (events == conn->events)
        return;
    if (uv_poll_start(&conn->poll, events, pipe__poll_cb) != 0) {
        pipe__conn_fail(conn, HB_EIO, false);
        return;
    }
    conn->events = events;
}

/* Write what is in conn->out. A send held back is offered again with the
 * same bytes (TLS needs that), so nothing is added to out until it is
 * empty. */
static void pipe__conn_write(struct pipe_conn *conn)
{
    while (conn->out_off < conn->out_len) {
        size_t sent = 0;
        int rc = http_connection_send(conn->c, conn->out + conn->out_off,
                                      conn->out_len - conn->out_off, &sent);
        if (rc == UV_EAGAIN) {
            pipe__poll_set(conn, UV_READABLE | UV_WRITABLE);
            return;
        }
        if (rc < 0) {
            pipe__conn_lost(conn);
            return;
        }
        conn->out_off += sent;
    }
    conn->out_off = conn->out_len = 0;
    pipe__poll_set(conn, UV_READABLE);
}

/* Give a connection calls from the queue and write them. */
static void pipe__conn_fill(struct pipe_conn *conn)
{
    struct http_pipe *p = conn->pipe;
    uint64_t now = uv_now(p->loop);
    if (conn->npending == 0) {
        conn->reused = conn->answered > 0;
        conn->got_since_idle = 0;
    }
    while (conn->npending < p->depth && p->qhead != NULL) {
        struct pipe_call *call = p->qhead;
        if (conn->out_len + call->len > conn->out_cap) {
            size_t cap = conn->out_cap ? conn->out_cap : 4096;
            while (cap < conn->out_len + call->len)
                cap *= 2;
            char *o = realloc(conn->out, cap);
            if (o == NULL)
                break;
            conn->out = o;
            conn->out_cap = cap;
        }
        pipe__queue_pop(p);
        memcpy(conn->out + conn->out_len, call->bytes, call->len);
        conn->out_len += call->len;
        call->sent_ms = now;
        if (conn->tail != NULL)
            conn->tail->next = call;
        else
            conn->head = call;
        conn->tail = call;
        conn->npending++;
    }
    if (!uv_is_active((uv_handle_t *)&p->tick))
        uv_timer_start(&p->tick, pipe__tick_cb, p->tick_ms, p->tick_ms);
    pipe__conn_write(conn);
}

/* ---- responses ------------------------------------------------------------- */

/* Complete the head call with a body (NUL-terminated for the call by
 * borrowing the byte after it). */
static void pipe__conn_answer(struct pipe_conn *conn, int status, char *body, size_t len)
{
    struct pipe_call *call = conn->head;
    conn->head = call->next;
    if (conn->head == NULL)
        conn->tail = NULL;
    conn->npending--;
    conn->answered++;
    char saved = body[len];
    body[len] = '\0';
    pipe__call_complete(call, 0, status, body, len);
    body[len] = saved;
}

/* Parse every whole response in the input. Returns false when the
 * connection is gone. */
static bool pipe__conn_parse(struct pipe_conn *conn, bool eof)
{
    struct http_pipe *p = conn->pipe;
    while (conn->state == PIPE_OPEN && !p->closing) {
        char *buf = conn->in + conn->in_off;
        size_t avail = conn->in_len - conn->in_off;
        if (avail == 0) /* an answer waiting for its end keeps its head here */
            break;
        if (conn->head == NULL) {
            /* Bytes nobody asked for. */
            log_warn("http.pipe", "origin=%s error=\"unexpected bytes from the server\"",
                     p->origin);
            pipe__conn_fail(conn, HB_EPROTO, false);
            return false;
        }
        struct http_response_head h;
        int rc = http_response_head_parse(buf, avail, PIPE_MAX_HEAD, &h);
        if (rc == 0)
            break;
        if (rc < 0) {
            log_warn("http.pipe", "origin=%s error=\"malformed response\"", p->origin);
            pipe__conn_fail(conn, rc, false);
            return false;
        }
        if (h.status >= 100 && h.status < 200) {
            conn->in_off += h.head_len; /* an interim answer: the final one follows */
            continue;
        }
        char *body = buf + h.head_len;
        size_t have = avail - h.head_len;
        size_t used = 0;
        size_t body_len = 0;
        if (h.chunked) {
            size_t dlen = 0;
            long r = http_response_chunked(body, have, NULL, &dlen, p->max_body);
            if (r == 0)
                break;
            if (r < 0) {
                pipe__conn_fail(conn, (int)r, false);
                return false;
            }
            /* Decode in place: the data only ever moves towards the front. */
            (void)http_response_chunked(body, have, body, &dlen, p->max_body);
            used = h.head_len + (size_t)r;
            body_len = dlen;
        } else if (h.has_length) {
            if (h.length > p->max_body) {
                pipe__conn_fail(conn, HB_EOVERFLOW, false);
                return false;
            }
            if (have < h.length)
                break;
            used = h.head_len + h.length;
            body_len = h.length;
        } else if (h.status == 204 || h.status == 304) {
            used = h.head_len;
        } else {
            /* No length: the body ends with the connection. */
            conn->until_close = true;
            if (have > p->max_body) {
                pipe__conn_fail(conn, HB_EOVERFLOW, false);
                return false;
            }
            if (!eof)
                break;
            used = avail;
            body_len = have;
            h.close = true;
        }
        conn->in_off += used;
        /* The answer's bytes stay put until this returns: the buffer only
         * grows or moves in the read that comes after. */
        pipe__conn_answer(conn, h.status, body, body_len);
        if (h.close) {
            /* What was written after this call was never processed. */
            pipe__conn_fail(conn, 0, true);
            return false;
        }
    }
    if (conn->state != PIPE_OPEN)
        return false;
    if (conn->in_off == conn->in_len) {
        conn->in_off = conn->in_len = 0;
    } else if (conn->in_off > 0 && conn->in_off >= conn->in_cap / 2) {
        memmove(conn->in, conn->in + conn->in_off, conn->in_len - conn->in_off);
        conn->in_len -= conn->in_off;
        conn->in_off = 0;
    }
    return true;
}

/* The connection ended (closed by the server, reset, or failed). */
static void pipe__conn_lost(struct pipe_conn *conn)
{
    struct http_pipe *p = conn->pipe;
    if (conn->npending == 0) {
        pipe__conn_close(conn); /* an idle connection timed out: nothing lost */
        return;
    }
    bool resend = conn->reused && conn->got_since_idle == 0;
    if (!resend && conn->answered > 0 && p->depth > 1) {
        /* It answered some and dropped the rest: it does not pipeline. */
        log_info("http.pipe",
                 "origin=%s pipelining=off reason=\"the server closed a connection "
                 "with calls pending\"",
                 p->origin);
        p->depth = 1;
    }
    if (resend) {
        /* A dead idle connection: once more on a fresh one. */
        for (struct pipe_call *c = conn->head; c != NULL; c = c->next) {
            if (c->resent)
                resend = false;
            c->resent = true;
        }
    }
    pipe__conn_fail(conn, HB_EIO, resend);
}

static void pipe__conn_eof(struct pipe_conn *conn)
{
    if (pipe__conn_parse(conn, true))
        pipe__conn_lost(conn);
}

static void pipe__conn_read(struct pipe_conn *conn)
{
    for (;;) {
        if (conn->in_cap - conn->in_len < PIPE_READ_CHUNK) {
            size_t cap = conn->in_cap ? conn->in_cap * 2 : PIPE_READ_CHUNK * 2;
            char *b = realloc(conn->in, cap);
            if (b == NULL) {
                pipe__conn_fail(conn, HB_ENOMEM, false);
                return;
            }
            conn->in = b;
            conn->in_cap = cap;
        }
        size_t got = 0;
        int rc = http_connection_recv(conn->c, conn->in + conn->in_len,
                                      conn->in_cap - conn->in_len - 1, &got);
        if (rc == UV_EAGAIN)
            return;
        if (rc < 0) {
            pipe__conn_lost(conn);
            return;
        }
        if (got == 0) {
            pipe__conn_eof(conn);
            return;
        }
        conn->in_len += got;
        conn->got_since_idle += got;
        if (!pipe__conn_parse(conn, false))
            return;
        if (conn->in_len - conn->in_off > PIPE_MAX_HEAD + conn->pipe->max_body + 64) {
            pipe__conn_fail(conn, HB_EOVERFLOW, false);
            return;
        }
    }
}

static void pipe__poll_cb(uv_poll_t *poll, int status, int events)
{
    struct pipe_conn *conn = container_of(poll, struct pipe_conn, poll);
    struct http_pipe *p = conn->pipe;
    if (conn->state != PIPE_OPEN)
        return;
    if (status < 0) {
        pipe__conn_lost(conn);
    } else {
        if (events & UV_WRITABLE)
            pipe__conn_write(conn);
        if (conn->state == PIPE_OPEN && (events & UV_READABLE))
            pipe__conn_read(conn);
    }
    if (p->qhead != NULL)
        pipe__wake(p);
}

static void pipe__connected(struct http_request *req, int rc, void *data)
{
    struct pipe_conn *conn = data;
    struct http_pipe *p = conn->pipe;
    p->nconnecting--;
    if (rc < 0) {
        log_warn("http.pipe", "origin=%s error=\"%s\"", p->origin, http_request_error(req));
        conn->c = NULL; /* the client frees a failed connection */
        /* Nothing else can carry the queue: its calls fail with the reason. */
        if (p->nconns == 1 && !p->torn_down)
            pipe__queue_fail(p, rc);
        pipe__conn_close(conn); /* may free the pipe when it is closing */
        return;
    }
    if (p->closing) {
        pipe__conn_close(conn);
        return;
    }
    int fd = http_connection_fd(req);
    if (fd < 0 || uv_poll_init_socket(p->loop, &conn->poll, fd) != 0) {
        if (p->nconns == 1)
            pipe__queue_fail(p, HB_EIO);
        pipe__conn_close(conn);
        return;
    }
    conn->poll_init = true;
    conn->state = PIPE_OPEN;
    pipe__poll_set(conn, UV_READABLE);
    pipe__flush(p);
}

static int pipe__conn_open(struct http_pipe *p)
{
    struct pipe_conn *conn = calloc(1, sizeof(*conn));
    if (conn == NULL)
        return HB_ENOMEM;
    conn->pipe = p;
    conn->poll.data = conn;
    conn->c = http_connection_new(p->http, p->origin);
    if (conn->c == NULL) {
        free(conn);
        return HB_ENOMEM;
    }
    conn->next = p->conns;
    if (p->conns != NULL)
        p->conns->prev = conn;
    p->conns = conn;
    p->nconns++;
    p->nconnecting++;
    p->opened++;
    int rc = http_request_start(conn->c, pipe__connected, conn);
    if (rc < 0) {
        conn->c = NULL; /* freed by the failed start */
        p->nconnecting--;
        pipe__conn_close(conn);
    }
    return rc;
}

/* Hand queued calls to connections that can take them; open more
 * connections while the queue needs them. */
static void pipe__flush(struct http_pipe *p)
{
    if (p->closing)
        return;
    while (p->qhead != NULL) {
        struct pipe_conn *best = NULL;
        for (struct pipe_conn *c = p->conns; c != NULL; c = c->next) {
            if (c->state != PIPE_OPEN || c->out_len > 0 || c->npending >= p->depth)
                continue;
            if (best == NULL || c->npending < best->npending)
                best = c;
        }
        if (best == NULL)
            break;
        size_t before = p->nqueued;
        pipe__conn_fill(best);
        if (p->nqueued == before)
            break; /* out of memory for its buffer: try again next turn */
    }
    if (p->qhead == NULL)
        return;
    /* Enough connections on the way for what waits, within the limit. */
    size_t want = (p->nqueued + p->depth - 1) / p->depth;
    int rc = 0;
    while (rc == 0 && p->nconns < p->max_conns && p->nconnecting < want)
        rc = pipe__conn_open(p);
    if (p->nconns == 0)
        pipe__queue_fail(p, rc < 0 ? rc : HB_EIO);
}

/* Every tick (a second, or a quarter of a short timeout) while calls are
 * pending: a call unanswered past the
 * timeout fails its connection. */
static void pipe__tick_cb(uv_timer_t *t)
{
    struct http_pipe *p = t->data;
    uint64_t now = uv_now(p->loop);
    struct pipe_conn *next = NULL;
    bool pending = false;
    for (struct pipe_conn *c = p->conns; c != NULL; c = next) {
        next = c->next;
        pending = pending || c->head != NULL;
        if (c->state == PIPE_OPEN && c->head != NULL && now - c->head->sent_ms >= p->timeout_ms) {
            log_warn("http.pipe", "origin=%s error=\"no answer in %llu ms\"", p->origin,
                     (unsigned long long)p->timeout_ms);
            pipe__conn_fail(c, HB_ETIMEOUT, false);
        }
    }
    if (!pending)
        uv_timer_stop(t);
}

/* ---- the pipe --------------------------------------------------------------- */

static void pipe__handle_closed(uv_handle_t *h)
{
    struct http_pipe *p = h->data;
    p->handles_open--;
    pipe__maybe_free(p);
}

static void pipe__maybe_free(struct http_pipe *p)
{
    if (!p->torn_down || p->handles_open > 0 || p->nconns > 0 || p->nfreeing > 0)
        return;
    void (*cb)(void *) = p->close_cb;
    void *data = p->close_data;
    free(p->origin);
    free(p->host);
    free(p->agent);
    free(p);
    if (cb != NULL)
        cb(data);
}

struct http_pipe *http_pipe_new(uv_loop_t *loop, struct http_client *client, const char *origin,
                                const struct http_pipe_options *opts)
{
    if (loop == NULL || client == NULL || origin == NULL)
        return NULL;
    const char *hs = NULL;
    if (strncmp(origin, "https://", 8) == 0)
        hs = origin + 8;
    else if (strncmp(origin, "http://", 7) == 0)
        hs = origin + 7;
    if (hs == NULL)
        return NULL;
    size_t hl = strcspn(hs, "/?#");
    if (hl == 0 || memchr(hs, '@', hl) != NULL)
        return NULL;
    struct http_pipe *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->loop = loop;
    p->http = client;
    p->origin = strndup(origin, (size_t)(hs - origin) + hl);
    p->host = strndup(hs, hl);
    p->agent = strdup(opts != NULL && opts->user_agent != NULL ? opts->user_agent : "haibot/0.1");
    if (p->origin == NULL || p->host == NULL || p->agent == NULL) {
        free(p->origin);
        free(p->host);
        free(p->agent);
        free(p);
        return NULL;
    }
    p->max_conns = opts != NULL && opts->connections > 0 ? opts->connections : PIPE_DEFAULT_CONNS;
    p->depth = opts != NULL && opts->depth > 0 ? opts->depth : PIPE_DEFAULT_DEPTH;
    p->timeout_ms =
        opts != NULL && opts->timeout_ms > 0 ? opts->timeout_ms : PIPE_DEFAULT_TIMEOUT_MS;
    p->max_body = opts != NULL && opts->max_body > 0 ? opts->max_body : PIPE_DEFAULT_MAX_BODY;
    p->tick_ms = p->timeout_ms / 4 < PIPE_TICK_MS ? p->timeout_ms / 4 + 1 : PIPE_TICK_MS;
    uv_check_init(loop, &p->check);
    uv_idle_init(loop, &p->idle);
    uv_timer_init(loop, &p->tick);
    p->check.data = p;
    p->idle.data = p;
    p->tick.data = p;
    p->handles_open = 3;
    uv_unref((uv_handle_t *)&p->tick); /* the tick alone keeps no loop alive */
    return p;
}

int http_pipe_post(struct http_pipe *p, const char *path, const char *content_type,
                   const char *body, size_t len, http_pipe_done_cb cb, void *data)
{
    if (p == NULL || path == NULL || path[0] != '/' || cb == NULL || (body == NULL && len > 0) ||
        strpbrk(path, " \r\n") != NULL ||
        (content_type != NULL && strpbrk(content_type, "\r\n") != NULL))
        return HB_EINVAL;
    if (p->closing)
        return HB_ESTATE;
    struct pipe_call *call = calloc(1, sizeof(*call));
    if (call == NULL)
        return HB_ENOMEM;
    const char *ct = content_type != NULL ? content_type : "application/octet-stream";
    char clen[24];
    int cl = snprintf(clen, sizeof(clen), "%zu", len);
    const char *parts[] = {"POST ",
                           path,
                           " HTTP/1.1\r\nHost: ",
                           p->host,
                           "\r\nUser-Agent: ",
                           p->agent,
                           "\r\nContent-Type: ",
                           ct,
                           "\r\nContent-Length: ",
                           clen,
                           "\r\n\r\n"};
    size_t lens[sizeof(parts) / sizeof(parts[0])];
    size_t hl = 0;
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        lens[i] = i == 9 ? (size_t)cl : strlen(parts[i]);
        hl += lens[i];
    }
    call->bytes = malloc(hl + len + 1);
    if (call->bytes == NULL) {
        free(call);
        return HB_ENOMEM;
    }
    char *w = call->bytes;
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        memcpy(w, parts[i], lens[i]);
        w += lens[i];
    }
    if (len > 0)
        memcpy(w, body, len);
    call->len = hl + len;
    call->cb = cb;
    call->data = data;
    pipe__queue_push(p, call);
    pipe__wake(p);
    return 0;
}

static void pipe__teardown(struct http_pipe *p)
{
    p->torn_down = true;
    pipe__queue_fail(p, HB_ECANCELED);
    struct pipe_conn *next = NULL;
    for (struct pipe_conn *c = p->conns; c != NULL; c = next) {
        next = c->next;
        if (c->state == PIPE_CONNECTING)
            http_request_cancel(c->c); /* pipe__connected closes it */
        else
            pipe__conn_fail(c, HB_ECANCELED, false);
    }
    uv_close((uv_handle_t *)&p->check, pipe__handle_closed);
    uv_close((uv_handle_t *)&p->idle, pipe__handle_closed);
    uv_close((uv_handle_t *)&p->tick, pipe__handle_closed);
}

static void pipe__close_check_cb(uv_check_t *check)
{
    struct http_pipe *p = check->data;
    uv_check_stop(check);
    uv_idle_stop(&p->idle);
    pipe__teardown(p);
}

void http_pipe_close(struct http_pipe *p, void (*cb)(void *data), void *data)
{
    if (p == NULL || p->closing)
        return;
    p->closing = true;
    p->close_cb = cb;
    p->close_data = data;
    /* Not from here: a completion callback may be running further up. */
    uv_check_stop(&p->check);
    uv_check_start(&p->check, pipe__close_check_cb);
    uv_idle_start(&p->idle, pipe__idle_cb);
}

unsigned http_pipe_opened(const struct http_pipe *p)
{
    return p->opened;
}

unsigned http_pipe_resent(const struct http_pipe *p)
{
    return p->resent;
}

unsigned http_pipe_depth(const struct http_pipe *p)
{
    return p->depth;
}
