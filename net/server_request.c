/* The server's requests: HTTP/1.1 parsing with http-parser (the nodejs
 * parser, a packaged library), the request object handlers see, and the
 * answers written back. Connections, listening and the lifecycle are in
 * net/server.c.
 *
 * The parser is fed what a connection received; its callbacks gather the
 * request and pause the parser when a request is complete, so a connection
 * holds one request at a time: the rest of its input waits in conn->in
 * until the answer is written, then the parser resumes on it. */
#include "net/server_internal.h"

#include "base/error.h"
#include "base/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- requests ----------------------------------------------------------- */

void server__request_free(struct server_request *req)
{
    if (req == NULL)
        return;
    for (size_t i = 0; i < SERVER_HEADERS_MAX; i++)
        free(req->header_values[i]);
    free(req->body);
    free(req);
}

void server__unlink(struct server_request *req)
{
    struct server *srv = req->srv;
    if (srv == NULL || req->state != SERVER_REQ_HANDLING)
        return;
    if (req->prev != NULL)
        req->prev->next = req->next;
    else
        srv->handling = req->next;
    if (req->next != NULL)
        req->next->prev = req->prev;
    req->prev = req->next = NULL;
    srv->pending--;
}

const char *server_request_method(const struct server_request *req)
{
    return req->method;
}

const char *server_request_path(const struct server_request *req)
{
    return req->path;
}

const char *server_request_query(const struct server_request *req)
{
    return req->query;
}

const char *server_request_header(const struct server_request *req, const char *name)
{
    if (req->route == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < req->route->nheaders; i++) {
        if (strcasecmp(req->route->headers[i], name) == 0)
            return req->header_values[i];
    }
    return NULL;
}

const char *server_request_body(const struct server_request *req, size_t *len)
{
    if (len != NULL)
        *len = req->body_len;
    return req->body != NULL ? req->body : "";
}

size_t server_pending(const struct server *srv)
{
    return srv->pending;
}

/* ---- answers ------------------------------------------------------------- */

const char *server__reason(int status)
{
    static const struct {
        int status;
        const char *reason;
    } reasons[] = {
        {100, "Continue"},
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {204, "No Content"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {409, "Conflict"},
        {413, "Content Too Large"},
        {414, "URI Too Long"},
        {422, "Unprocessable Content"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {505, "HTTP Version Not Supported"},
    };
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        if (reasons[i].status == status)
            return reasons[i].reason;
    }
    return "Status";
}

/* A header line we write must not carry a line break of its own. */
static bool server__header_safe(const char *s)
{
    return s != NULL && strpbrk(s, "\r\n") == NULL;
}

static void server__written(uv_write_t *w, int status)
{
    struct server_conn *conn = w->data;
    free(conn->out);
    conn->out = NULL;
    server__answer_done(conn, status);
}

void server__answer_done(struct server_conn *conn, int status)
{
    if (conn->state == SERVER_CONN_CLOSING)
        return;
    if (status < 0) {
        server__conn_close(conn);
        return;
    }
    uv_timer_stop(&conn->timer); /* the answer's deadline: it was taken */
    struct server_request *req = conn->req;
    conn->req = NULL;
    if (req != NULL) {
        req->conn = NULL;
        server__request_free(req);
    }
    conn->served++;
    if (conn->srv == NULL) {
        server__conn_close(conn);
        return;
    }
    if (!conn->keep_alive) {
        server__conn_linger(conn);
        return;
    }
    conn->state = SERVER_CONN_HEAD;
    conn->head_len = 0;
    http_parser_pause(&conn->parser, 0);
    server__conn_process(conn); /* pipelined requests wait in conn->in */
}

/* Write the answer; the connection closes after it unless it keeps alive. */
static void server__conn_write(struct server_conn *conn, int status, const char *content_type,
                               const void *body, size_t len, const char *extra_header,
                               bool head_only)
{
    if (conn->served + 1 >= SERVER_REQUESTS_PER_CONN || conn->srv == NULL)
        conn->keep_alive = false;
    if (content_type == NULL || !server__header_safe(content_type))
        content_type = "text/plain; charset=utf-8";
    if (extra_header != NULL &&
        (!server__header_safe(extra_header) || strchr(extra_header, ':') == NULL))
        extra_header = NULL;
    char *head = NULL;
    size_t head_len = 0;
    FILE *m = open_memstream(&head, &head_len);
    if (m == NULL) {
        server__conn_close(conn);
        return;
    }
    fprintf(m, "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\n", status,
            server__reason(status), content_type, len);
    if (extra_header != NULL)
        fprintf(m, "%s\r\n", extra_header);
    if (!conn->keep_alive)
        fputs("connection: close\r\n", m);
    fputs("\r\n", m);
    if (fclose(m) != 0 || head == NULL) {
        free(head);
        server__conn_close(conn);
        return;
    }
    size_t body_len = head_only ? 0 : len;
    conn->out = malloc(head_len + body_len + 1);
    if (conn->out == NULL) {
        free(head);
        server__conn_close(conn);
        return;
    }
    memcpy(conn->out, head, head_len);
    if (body_len > 0)
        memcpy(conn->out + head_len, body, body_len);
    free(head);
    conn->state = SERVER_CONN_BUSY;
    uv_buf_t buf = uv_buf_init(conn->out, (unsigned int)(head_len + body_len));
    conn->write.data = conn;
    if (uv_write(&conn->write, (uv_stream_t *)&conn->tcp, &buf, 1, server__written) < 0) {
        free(conn->out);
        conn->out = NULL;
        server__conn_close(conn);
        return;
    }
    /* A client that never reads its answer does not hold the connection
     * and the answer's memory for ever. */
    server__conn_deadline(conn, conn->srv != NULL ? conn->srv->write_timeout_ms
                                                  : SERVER_WRITE_TIMEOUT_MS);
}

void server_respond(struct server_request *req, int status, const char *content_type,
                    const void *body, size_t len, const char *extra_header)
{
    if (req == NULL)
        return;
    server__unlink(req);
    req->state = SERVER_REQ_ANSWERED;
    struct server_conn *conn = req->conn;
    if (conn == NULL || req->srv == NULL || conn->state == SERVER_CONN_CLOSING) {
        /* The client left or the server closed: nobody to answer. */
        if (conn != NULL)
            conn->req = NULL;
        server__request_free(req);
        return;
    }
    server__conn_write(conn, status, content_type, body, len, extra_header,
                       strcmp(req->method, "HEAD") == 0);
}

/* A refusal's answer: the hook's JSON for a path it asked for, else text. */
static void server__refusal_write(struct server_conn *conn, int status, const char *text, bool head)
{
    struct server *srv = conn->srv;
    const char *path = conn->req != NULL ? conn->req->path : "";
    for (size_t i = 0; srv->refusal_fn != NULL && i < SERVER_REFUSAL_PREFIXES; i++) {
        const char *pre = srv->refusal_prefixes[i];
        if (pre == NULL || strncmp(path, pre, strlen(pre)) != 0)
            continue;
        char body[512];
        size_t n = srv->refusal_fn(status, text, body, sizeof(body), srv->refusal_data);
        if (n > 0 && n < sizeof(body)) {
            server__conn_write(conn, status, "application/json", body, n, NULL, head);
            return;
        }
        break;
    }
    server__conn_write(conn, status, NULL, text, strlen(text), NULL, head);
}

void server__refuse(struct server_conn *conn, int status, const char *text)
{
    conn->keep_alive = false;
    server__refusal_write(conn, status, text, false);
}

/* ---- parsing -------------------------------------------------------------------------------- */

static struct server_conn *server__conn_of(http_parser *p)
{
    return p->data;
}

/* Make a callback fail with status: the parser stops, and the connection
 * answers status and closes. */
static int server__fail(struct server_conn *conn, int status, const char *text)
{
    conn->parse.refusal = status;
    conn->parse.refusal_text = text;
    return -1;
}

static bool server__tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int server__on_message_begin(http_parser *p)
{
    struct server_conn *conn = server__conn_of(p);
    memset(&conn->parse, 0, sizeof(conn->parse));
    conn->parse.slot = -1;
    conn->expect_continue = false;
    struct server_request *req = calloc(1, sizeof(*req));
    if (req == NULL)
        return server__fail(conn, 500, "out of memory\n");
    req->srv = conn->srv;
    req->conn = conn;
    req->state = SERVER_REQ_READING;
    conn->req = req;
    return 0;
}

static int server__on_url(http_parser *p, const char *at, size_t len)
{
    struct server_conn *conn = server__conn_of(p);
    struct server_parse *ps = &conn->parse;
    if (len > sizeof(ps->target) - ps->target_len)
        return server__fail(conn, 414, "URI too long\n");
    memcpy(ps->target + ps->target_len, at, len);
    ps->target_len += len;
    return 0;
}

/* The request line is in: split the target, find the route. Headers are
 * kept only for a route that reads them, so this runs before the first. */
static int server__request_route(struct server_conn *conn)
{
    struct server_parse *ps = &conn->parse;
    struct server_request *req = conn->req;
    if (ps->routed)
        return 0;
    ps->routed = true;
    if (conn->parser.http_major != 1 || conn->parser.http_minor > 1)
        return server__fail(conn, 505, "HTTP version not supported\n");
    const char *method = http_method_str((enum http_method)conn->parser.method);
    if (strlen(method) >= sizeof(req->method))
        return server__fail(conn, 501, "method not implemented\n");
    strcpy(req->method, method);
    const char *target = ps->target;
    size_t tlen = ps->target_len;
    if (tlen == 0 || target[0] != '/')
        return server__fail(conn, 400, "bad request line\n");
    for (size_t i = 0; i < tlen; i++) {
        unsigned char c = (unsigned char)target[i];
        if (c <= 0x20 || c == 0x7f)
            return server__fail(conn, 400, "bad request target\n");
    }
    const char *q = memchr(target, '?', tlen);
    size_t plen = q != NULL ? (size_t)(q - target) : tlen;
    size_t qlen = q != NULL ? tlen - plen - 1 : 0;
    if (plen >= sizeof(req->path))
        return server__fail(conn, 414, "URI too long\n");
    if (qlen >= sizeof(req->query))
        return server__fail(conn, 414, "query too long\n");
    memcpy(req->path, target, plen);
    req->path[plen] = '\0';
    if (q != NULL)
        memcpy(req->query, q + 1, qlen);
    req->query[qlen] = '\0';
    bool path_known = false;
    for (const struct server_route *r = conn->srv->routes; r != NULL; r = r->next) {
        if (strcmp(r->path, req->path) != 0)
            continue;
        path_known = true;
        if (strcmp(r->method, req->method) == 0)
            req->route = r;
    }
    if (req->route == NULL)
        req->early_status = path_known ? 405 : 404;
    return 0;
}

/* The header before this one is in whole: trim what the parser leaves at
 * its end (trailing blanks), and check a repeated Content-Length. */
static int server__header_done(struct server_conn *conn)
{
    struct server_parse *ps = &conn->parse;
    struct server_request *req = conn->req;
    if (ps->slot >= 0 && req->header_values[ps->slot] != NULL) {
        char *v = req->header_values[ps->slot];
        size_t n = strlen(v);
        while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            n--;
        v[n] = '\0';
    }
    if (ps->in_expect) {
        size_t n = ps->expect_len;
        while (n > 0 && (ps->expect[n - 1] == ' ' || ps->expect[n - 1] == '\t'))
            n--;
        ps->expect_continue = n == 12 && strncasecmp(ps->expect, "100-continue", 12) == 0;
    }
    ps->slot = -1;
    ps->in_expect = false;
    ps->in_value = false;
    ps->name_len = 0;
    return 0;
}

/* http-parser refuses a second Content-Length even when it repeats the
 * first; RFC 9112, 6.3 lets a recipient take equal ones as one. So when a
 * repeat's name is read, the first value is kept and the parser's flag for
 * "Content-Length seen" cleared: the parser then reads the repeat as the
 * only one, and the two are compared once it is in. The flag is set again
 * should the name turn out longer ("Content-Lengthy") in a later piece. */
static int server__content_length_repeat(struct server_conn *conn)
{
    struct server_parse *ps = &conn->parse;
    http_parser *p = &conn->parser;
    bool is_cl = ps->name_len == 14 && memcmp(ps->name, "content-length", 14) == 0;
    if (ps->cl_unflagged && !is_cl) {
        p->flags |= F_CONTENTLENGTH;
        ps->cl_unflagged = false;
        return 0;
    }
    if (!is_cl || !(p->flags & F_CONTENTLENGTH))
        return 0;
    if (ps->cl_repeated && p->content_length != ps->cl_first)
        return server__fail(conn, 400, "bad or conflicting Content-Length\n");
    ps->cl_first = p->content_length;
    ps->cl_repeated = true;
    ps->cl_unflagged = true;
    p->flags &= (unsigned)~F_CONTENTLENGTH & 0xffu;
    return 0;
}

static int server__on_header_field(http_parser *p, const char *at, size_t len)
{
    struct server_conn *conn = server__conn_of(p);
    struct server_parse *ps = &conn->parse;
    if (conn->state == SERVER_CONN_BODY)
        return 0; /* a chunked body's trailer: read and dropped */
    if (server__request_route(conn) < 0)
        return -1;
    if (ps->in_value && server__header_done(conn) < 0)
        return -1;
    /* http-parser lets a space into a name ("Content-Length : 5"), which
     * a proxy in front may read differently: refused, as RFC 9112, 5.1. */
    for (size_t i = 0; i < len; i++) {
        if (!server__tchar((unsigned char)at[i]))
            return server__fail(conn, 400, "bad header line\n");
    }
    for (size_t i = 0; i < len && ps->name_len <= SERVER_NAME_MAX; i++, ps->name_len++) {
        if (ps->name_len < SERVER_NAME_MAX) {
            char c = at[i];
            ps->name[ps->name_len] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        }
    }
    return server__content_length_repeat(conn);
}

static bool server__name_is(const struct server_parse *ps, const char *want)
{
    return strlen(want) == ps->name_len && memcmp(ps->name, want, ps->name_len) == 0;
}

/* Append a piece of a header value the route reads; a repeated header is
 * joined with ", ". Returns 0, HB_EOVERFLOW past the limit, or HB_ENOMEM. */
static int server__value_append(char **slot, bool sep, const char *v, size_t n)
{
    size_t old = *slot != NULL ? strlen(*slot) : 0;
    sep = sep && old > 0;
    size_t total = old + (sep ? 2 : 0) + n;
    if (total >= SERVER_HEADER_VALUE_MAX)
        return HB_EOVERFLOW;
    char *s = realloc(*slot, total + 1);
    if (s == NULL)
        return HB_ENOMEM;
    if (sep)
        memcpy(s + old, ", ", 2);
    memcpy(s + total - n, v, n);
    s[total] = '\0';
    *slot = s;
    return 0;
}

static void server__te_append(struct server_parse *ps, const char *v, size_t n)
{
    /* Once too long (te_len past the buffer), it stays too long: the
     * room left must not be computed from a length past the end. */
    if (ps->te_len > sizeof(ps->te) || n > sizeof(ps->te) - ps->te_len) {
        ps->te_len = sizeof(ps->te) + 1;
        return;
    }
    memcpy(ps->te + ps->te_len, v, n);
    ps->te_len += n;
}

/* Is the Transfer-Encoding, all of its values joined, "chunked" alone? */
static bool server__te_chunked(const struct server_parse *ps)
{
    size_t n = ps->te_len;
    if (n > sizeof(ps->te))
        return false;
    while (n > 0 && (ps->te[n - 1] == ' ' || ps->te[n - 1] == '\t'))
        n--;
    return n == 7 && strncasecmp(ps->te, "chunked", 7) == 0;
}

static int server__on_header_value(http_parser *p, const char *at, size_t len)
{
    struct server_conn *conn = server__conn_of(p);
    struct server_parse *ps = &conn->parse;
    struct server_request *req = conn->req;
    if (conn->state == SERVER_CONN_BODY)
        return 0; /* a trailer */
    bool first = !ps->in_value;
    if (first) {
        ps->in_value = true;
        ps->cl_unflagged = false; /* the parser set its flag again on this value */
        ps->in_te = server__name_is(ps, "transfer-encoding");
        if (ps->in_te && ps->transfer_encoding)
            server__te_append(ps, ", ", 2);
        ps->transfer_encoding = ps->transfer_encoding || ps->in_te;
        ps->in_expect = server__name_is(ps, "expect");
        ps->expect_len = 0;
        for (size_t i = 0; req->route != NULL && i < req->route->nheaders; i++) {
            if (server__name_is(ps, req->route->headers[i]))
                ps->slot = (int)i;
        }
    }
    if (ps->in_expect) {
        size_t n =
            len < sizeof(ps->expect) - ps->expect_len ? len : sizeof(ps->expect) - ps->expect_len;
        memcpy(ps->expect + ps->expect_len, at, n);
        ps->expect_len += n;
    }
    if (ps->in_te)
        server__te_append(ps, at, len);
    if (ps->slot < 0)
        return 0;
    int rc = server__value_append(&req->header_values[ps->slot], first, at, len);
    if (rc == HB_EOVERFLOW)
        return server__fail(conn, 431, "header too large\n");
    if (rc < 0)
        return server__fail(conn, 500, "out of memory\n");
    return 0;
}

static int server__on_headers_complete(http_parser *p)
{
    struct server_conn *conn = server__conn_of(p);
    struct server_parse *ps = &conn->parse;
    struct server_request *req = conn->req;
    if (server__request_route(conn) < 0 || server__header_done(conn) < 0)
        return -1;
    if (ps->cl_repeated && (!(p->flags & F_CONTENTLENGTH) || p->content_length != ps->cl_first))
        return server__fail(conn, 400, "bad or conflicting Content-Length\n");
    conn->keep_alive = http_should_keep_alive(p) != 0 && !p->upgrade;
    if (ps->transfer_encoding || (p->flags & F_CHUNKED)) {
        /* Chunked alone is read; any other coding is refused rather than
         * handed on undecoded (RFC 9112, 6.1). HTTP/1.0 has no transfer
         * codings: its framing is then faulty (RFC 9112, 6.1). A length
         * beside them the parser has refused already. */
        if (p->http_minor == 0)
            return server__fail(conn, 400, "transfer coding in HTTP/1.0\n");
        if (!server__te_chunked(ps) || !(p->flags & F_CHUNKED))
            return server__fail(conn, 501, "transfer codings not supported\n");
        ps->chunked = true;
    }
    uint64_t declared = p->content_length != ULLONG_MAX ? p->content_length : 0;
    if (declared > conn->srv->max_body) {
        log_warn("server.body_too_large", "path=%s declared=%llu limit=%zu", req->path,
                 (unsigned long long)declared, conn->srv->max_body);
        return server__fail(conn, 413, "request body too large\n");
    }
    if (declared > 0) {
        req->body = malloc((size_t)declared + 1);
        if (req->body == NULL)
            return server__fail(conn, 500, "out of memory\n");
        req->body_cap = (size_t)declared;
        req->body[0] = '\0';
    }
    conn->expect_continue = ps->expect_continue && (declared > 0 || ps->chunked);
    conn->state = SERVER_CONN_BODY;
    return 0;
}

static int server__on_body(http_parser *p, const char *at, size_t len)
{
    struct server_conn *conn = server__conn_of(p);
    struct server_request *req = conn->req;
    if (len > req->body_cap - req->body_len) {
        /* Only a chunked body grows (a length was checked and allocated
         * whole), up to the server's limit. */
        size_t max = conn->srv->max_body;
        if (!conn->parse.chunked || len > max - req->body_len) {
            log_warn("server.body_too_large", "path=%s chunked=true limit=%zu", req->path, max);
            return server__fail(conn, 413, "request body too large\n");
        }
        size_t cap = req->body_cap > 0 ? req->body_cap * 2 : 4096;
        if (cap < req->body_len + len)
            cap = req->body_len + len;
        if (cap > max)
            cap = max;
        char *body = realloc(req->body, cap + 1);
        if (body == NULL)
            return server__fail(conn, 500, "out of memory\n");
        req->body = body;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, at, len);
    req->body_len += len;
    req->body[req->body_len] = '\0';
    return 0;
}

/* The request is whole: pause the parser on it until it is answered. */
static int server__on_message_complete(http_parser *p)
{
    struct server_conn *conn = server__conn_of(p);
    conn->state = SERVER_CONN_BUSY;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings server__settings = {
    .on_message_begin = server__on_message_begin,
    .on_url = server__on_url,
    .on_header_field = server__on_header_field,
    .on_header_value = server__on_header_value,
    .on_headers_complete = server__on_headers_complete,
    .on_body = server__on_body,
    .on_message_complete = server__on_message_complete,
};

/* The answer to a request the parser refused. */
static void server__parse_refuse(struct server_conn *conn, enum http_errno err)
{
    if (conn->parse.refusal != 0) {
        server__refuse(conn, conn->parse.refusal, conn->parse.refusal_text);
        return;
    }
    switch (err) {
    case HPE_INVALID_VERSION:
        server__refuse(conn, 400, "bad HTTP version\n");
        break;
    case HPE_INVALID_METHOD:
        /* Any method but the ones the parser knows (RFC 9110, 15.6.2). */
        server__refuse(conn, 501, "method not implemented\n");
        break;
    case HPE_HEADER_OVERFLOW:
        server__refuse(conn, 431, "request header fields too large\n");
        break;
    case HPE_INVALID_CONTENT_LENGTH:
    case HPE_UNEXPECTED_CONTENT_LENGTH:
        server__refuse(conn, 400, "bad or conflicting Content-Length\n");
        break;
    case HPE_INVALID_TRANSFER_ENCODING:
        server__refuse(conn, 501, "transfer codings not supported\n");
        break;
    default:
        server__refuse(conn, 400, "bad request\n");
        break;
    }
}

/* The current request is in: hand it to its handler, or answer the
 * refusal that waited for the body to be read (404, 405). */
static void server__request_ready(struct server_conn *conn)
{
    struct server *srv = conn->srv;
    struct server_request *req = conn->req;
    if (conn->parser.upgrade)
        conn->keep_alive = false; /* what follows would be another protocol */
    if (req->early_status != 0) {
        req->state = SERVER_REQ_ANSWERED;
        const char *text = req->early_status == 405 ? "method not allowed\n" : "not found\n";
        server__refusal_write(conn, req->early_status, text, strcmp(req->method, "HEAD") == 0);
        return;
    }
    req->state = SERVER_REQ_HANDLING;
    req->next = srv->handling;
    if (srv->handling != NULL)
        srv->handling->prev = req;
    srv->handling = req;
    srv->pending++;
    req->route->fn(req, req->route->data);
}

static void server__consume(struct server_conn *conn, size_t n)
{
    if (n == 0)
        return;
    memmove(conn->in, conn->in + n, conn->in_len - n);
    conn->in_len -= n;
}

static void server__continue_written(uv_write_t *w, int status)
{
    (void)w;
    (void)status; /* a failed write shows again on the answer's */
}

void server__conn_parse(struct server_conn *conn)
{
    while ((conn->state == SERVER_CONN_HEAD || conn->state == SERVER_CONN_BODY) &&
           conn->in_len > 0) {
        /* A head is fed at most SERVER_HEAD_MAX bytes: one that has not
         * ended by then is refused, whatever else arrived with it. */
        size_t feed = conn->in_len;
        if (conn->state == SERVER_CONN_HEAD && feed > SERVER_HEAD_MAX - conn->head_len)
            feed = SERVER_HEAD_MAX - conn->head_len;
        size_t n = http_parser_execute(&conn->parser, &server__settings, conn->in, feed);
        enum http_errno err = HTTP_PARSER_ERRNO(&conn->parser);
        server__consume(conn, n);
        if (err == HPE_PAUSED && conn->state == SERVER_CONN_BUSY) {
            server__request_ready(conn);
            break;
        }
        if (err != HPE_OK || n != feed) {
            server__parse_refuse(conn, err);
            break;
        }
        if (conn->state == SERVER_CONN_HEAD) {
            conn->head_len += n;
            if (conn->head_len >= SERVER_HEAD_MAX) {
                server__refuse(conn, 431, "request header fields too large\n");
                break;
            }
        }
    }
    if (conn->state == SERVER_CONN_BODY && conn->expect_continue) {
        static char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        uv_buf_t b = uv_buf_init(cont, sizeof(cont) - 1);
        conn->expect_continue = false;
        if (uv_write(&conn->cont_write, (uv_stream_t *)&conn->tcp, &b, 1,
                     server__continue_written) < 0)
            server__conn_close(conn);
    }
}
