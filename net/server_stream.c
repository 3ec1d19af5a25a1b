/* Streamed answers: a head with chunked transfer coding, then each piece
 * of the body as a chunk as soon as the handler has it (server-sent events
 * of a streamed completion), then the last chunk. Every piece is its own
 * libuv write; writes on a stream complete in order, so the last chunk's
 * completion is the answer's. */
#include "net/server_internal.h"

#include "base/error.h"
#include "base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct server_chunk {
    uv_write_t write;
    struct server_conn *conn;
    size_t len;
    char data[]; /* len bytes */
};

/* Whether req can still be answered on its connection. */
static struct server_conn *server__stream_conn(const struct server_request *req)
{
    struct server_conn *conn = req->conn;
    if (conn == NULL || req->srv == NULL || conn->state == SERVER_CONN_CLOSING)
        return NULL;
    return conn;
}

static void server__chunk_written(uv_write_t *w, int status)
{
    struct server_chunk *c = container_of(w, struct server_chunk, write);
    struct server_conn *conn = c->conn;
    free(c);
    if (status < 0 && conn->state != SERVER_CONN_CLOSING)
        server__conn_close(conn);
}

static void server__last_written(uv_write_t *w, int status)
{
    struct server_chunk *c = container_of(w, struct server_chunk, write);
    struct server_conn *conn = c->conn;
    free(c);
    server__answer_done(conn, status);
}

/* Queue bytes on conn's socket; cb frees the chunk. */
static int server__chunk_send(struct server_conn *conn, const char *head, size_t head_len,
                              const void *data, size_t len, const char *tail, size_t tail_len,
                              uv_write_cb cb)
{
    struct server_chunk *c = malloc(sizeof(*c) + head_len + len + tail_len);
    if (c == NULL)
        return HB_ENOMEM;
    c->conn = conn;
    c->len = head_len + len + tail_len;
    memcpy(c->data, head, head_len);
    if (len > 0)
        memcpy(c->data + head_len, data, len);
    memcpy(c->data + head_len + len, tail, tail_len);
    uv_buf_t buf = uv_buf_init(c->data, (unsigned int)c->len);
    if (uv_write(&c->write, (uv_stream_t *)&conn->tcp, &buf, 1, cb) < 0) {
        free(c);
        return HB_EIO;
    }
    return 0;
}

int server_stream_start(struct server_request *req, int status, const char *content_type,
                        const char *extra_header)
{
    struct server_conn *conn = server__stream_conn(req);
    if (conn == NULL)
        return HB_ECANCELED;
    if (conn->served + 1 >= SERVER_REQUESTS_PER_CONN || conn->srv == NULL)
        conn->keep_alive = false;
    if (content_type == NULL || strpbrk(content_type, "\r\n") != NULL)
        content_type = "text/plain; charset=utf-8";
    if (extra_header != NULL &&
        (strpbrk(extra_header, "\r\n") != NULL || strchr(extra_header, ':') == NULL))
        extra_header = NULL;
    char head[1024];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ntransfer-encoding: chunked\r\n"
                     "cache-control: no-cache\r\n%s%s%s\r\n",
                     status, server__reason(status), content_type,
                     extra_header != NULL ? extra_header : "", extra_header != NULL ? "\r\n" : "",
                     conn->keep_alive ? "" : "connection: close\r\n");
    if (n < 0 || (size_t)n >= sizeof(head))
        return HB_EINVAL;
    int rc = server__chunk_send(conn, head, (size_t)n, NULL, 0, "", 0, server__chunk_written);
    if (rc < 0) {
        server__conn_close(conn);
        return HB_ECANCELED;
    }
    req->streaming = true;
    return 0;
}

int server_stream_write(struct server_request *req, const void *data, size_t len)
{
    struct server_conn *conn = server__stream_conn(req);
    if (conn == NULL || !req->streaming)
        return HB_ECANCELED;
    if (len == 0)
        return 0; /* an empty chunk would end the body */
    char head[24];
    int n = snprintf(head, sizeof(head), "%zx\r\n", len);
    if (server__chunk_send(conn, head, (size_t)n, data, len, "\r\n", 2, server__chunk_written) <
        0) {
        server__conn_close(conn);
        return HB_ECANCELED;
    }
    return 0;
}

void server_stream_end(struct server_request *req)
{
    if (req == NULL)
        return;
    server__unlink(req);
    req->state = SERVER_REQ_ANSWERED;
    struct server_conn *conn = server__stream_conn(req);
    if (conn != NULL && req->streaming &&
        server__chunk_send(conn, "0\r\n\r\n", 5, NULL, 0, "", 0, server__last_written) == 0)
        return; /* server__answer_done frees req once it is written */
    /* No head was written, or the end cannot be: this connection cannot
     * carry a sane answer any more. */
    if (conn != NULL) {
        conn->req = NULL;
        req->conn = NULL;
        server__conn_close(conn);
    }
    server__request_free(req);
}
