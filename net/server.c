#include "net/server.h"

#include "base/error.h"
#include "base/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* The server parses HTTP/1.1 itself on uv_tcp handles. libwebsockets 4.1.6
 * served it before, but it re-parses a pipelined request that is still in
 * its read buffer as the body of that same request and then spins raising
 * HTTP_BODY_COMPLETION without consuming a byte, inside one loop turn: two
 * pipelined POSTs wedged the daemon. It also drops oversized headers without
 * an answer. Here every connection holds one request at a time: reading
 * stops while a request is handled and answered, pipelined bytes wait in
 * the connection's buffer, and the next request is parsed only after the
 * answer's write completed (so one connection is worth at most one request
 * per loop turn, whatever it sends). */

#define SERVER_MAX_BODY_DEFAULT (1u << 20)
#define SERVER_PATH_MAX 512
#define SERVER_QUERY_MAX 1024
#define SERVER_HEAD_MAX 8192         /* request line and headers, bytes; 431 beyond */
#define SERVER_READ_CHUNK 16384      /* bytes asked of one read */
#define SERVER_CONNS_MAX 512         /* open connections; more are closed at once */
#define SERVER_REQUESTS_PER_CONN 100 /* then the answer closes the connection */
#define SERVER_TIMEOUT_MS 30000      /* for a whole request to arrive; keep-alive idle */
#define SERVER_LINGER_MS 2000        /* reading and dropping after a closing answer */
#define SERVER_LINGER_BYTES (256u * 1024u)

struct server_route {
    struct server_route *next;
    char *method;
    char *path;
    char *headers[SERVER_HEADERS_MAX];
    size_t nheaders;
    server_handler_fn fn;
    void *data;
};

struct server_conn;

struct server {
    uv_loop_t *loop;
    uv_tcp_t *listener; /* heap: freed by its close callback */
    int port;
    size_t max_body;
    bool closed;
    struct server_route *routes;
    struct server_request *handling; /* requests handlers own (doubly linked) */
    size_t pending;
    struct server_conn *conns; /* open connections (doubly linked) */
    size_t nconns;
};

enum server_req_state {
    SERVER_REQ_READING = 0, /* head parsed, body arriving */
    SERVER_REQ_HANDLING,    /* the handler owns it */
    SERVER_REQ_ANSWERED,    /* the answer is being written */
};

struct server_request {
    struct server *srv;                 /* NULL once the server closed */
    struct server_conn *conn;           /* NULL once the connection closed */
    struct server_request *prev, *next; /* in srv->handling */
    enum server_req_state state;
    const struct server_route *route;
    char method[8];
    char path[SERVER_PATH_MAX];
    char query[SERVER_QUERY_MAX];
    char *header_values[SERVER_HEADERS_MAX]; /* heap or NULL, in route->headers order */
    char *body;
    size_t body_len;
    int early_status; /* answer this once the body is read (404, 405), or 0 */
};

enum server_conn_state {
    SERVER_CONN_HEAD = 0, /* waiting for a request's head */
    SERVER_CONN_BODY,     /* waiting for its body */
    SERVER_CONN_BUSY,     /* handled or answered: not reading */
    SERVER_CONN_LINGER,   /* final answer sent: dropping input until the peer closes */
    SERVER_CONN_CLOSING,
};

struct server_conn {
    struct server *srv; /* NULL once the server closed */
    struct server_conn *prev, *next;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t write;
    uv_write_t cont_write; /* "100 Continue" */
    uv_shutdown_t shutdown;
    int handles; /* open libuv handles; freed when 0 */
    enum server_conn_state state;
    bool reading;
    bool keep_alive;      /* the current request allows another after it */
    bool expect_continue; /* the current request waits for "100 Continue" */
    char *in;             /* received, not yet consumed */
    size_t in_len, in_cap;
    size_t head_scan;     /* where the head's first unfinished line starts in conn->in */
    size_t body_expected; /* the current request's Content-Length */
    size_t served;        /* requests answered on this connection */
    size_t lingered;      /* bytes dropped while lingering */
    struct server_request *req;
    char *out; /* the answer being written */
};

static void server__conn_close(struct server_conn *conn);
static void server__conn_process(struct server_conn *conn);
static void server__conn_linger(struct server_conn *conn);

/* ---- requests ----------------------------------------------------------- */

static void server__request_free(struct server_request *req)
{
    if (req == NULL)
        return;
    for (size_t i = 0; i < SERVER_HEADERS_MAX; i++)
        free(req->header_values[i]);
    free(req->body);
    free(req);
}

static void server__unlink(struct server_request *req)
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

static const char *server__reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Status";
    }
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
    if (conn->state == SERVER_CONN_CLOSING)
        return;
    if (status < 0) {
        server__conn_close(conn);
        return;
    }
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
    }
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

/* Refuse what cannot be read on: answer and close the connection. */
static void server__refuse(struct server_conn *conn, int status, const char *text)
{
    conn->keep_alive = false;
    server__conn_write(conn, status, NULL, text, strlen(text), NULL, false);
}

/* ---- routing -------------------------------------------------------------- */

int server_route_add(struct server *srv, const char *method, const char *path,
                     const char *const *headers, server_handler_fn fn, void *data)
{
    if (srv == NULL || method == NULL || path == NULL || path[0] != '/' || fn == NULL ||
        strlen(method) >= sizeof(((struct server_request *)0)->method) ||
        strlen(path) >= SERVER_PATH_MAX)
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

/* ---- parsing ------------------------------------------------------------------------------ */

static bool server__tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool server__token(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!server__tchar((unsigned char)s[i]))
            return false;
    }
    return true;
}

static bool server__name_is(const char *name, size_t n, const char *want)
{
    return strlen(want) == n && strncasecmp(name, want, n) == 0;
}

/* Does the comma-separated list hold token (case-insensitive)? */
static bool server__list_has(const char *v, size_t n, const char *token)
{
    size_t tlen = strlen(token);
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < n && v[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (end - start == tlen && strncasecmp(v + start, token, tlen) == 0)
            return true;
    }
    return false;
}

/* A Content-Length value: one length, or a list of equal ones (RFC 9112,
 * 6.3). Returns 0 and *len (UINT64_MAX when it overflows), or -1. */
static int server__content_length(const char *v, size_t n, uint64_t *len)
{
    bool have = false;
    uint64_t first = 0;
    size_t i = 0;
    for (;;) {
        while (i < n && (v[i] == ' ' || v[i] == '\t'))
            i++;
        uint64_t x = 0;
        size_t digits = 0;
        while (i < n && v[i] >= '0' && v[i] <= '9') {
            unsigned d = (unsigned)(v[i] - '0');
            x = x > (UINT64_MAX - d) / 10 ? UINT64_MAX : x * 10 + d;
            digits++;
            i++;
        }
        while (i < n && (v[i] == ' ' || v[i] == '\t'))
            i++;
        if (digits == 0 || (have && x != first))
            return -1;
        first = x;
        have = true;
        if (i == n)
            break;
        if (v[i] != ',')
            return -1;
        i++;
    }
    *len = first;
    return 0;
}

/* Where the head ends (just past its empty line), or 0 when it has not
 * ended yet. Lines end in CRLF, or in a bare LF (RFC 9112, 2.2). Resumes
 * at *scan, the start of the first line not yet complete. */
static size_t server__head_end(const char *buf, size_t len, size_t *scan)
{
    size_t line = *scan;
    for (;;) {
        const char *nl = line < len ? memchr(buf + line, '\n', len - line) : NULL;
        if (nl == NULL) {
            *scan = line;
            return 0;
        }
        size_t end = (size_t)(nl - buf);
        size_t content = end - line;
        if (content > 0 && buf[end - 1] == '\r')
            content--;
        if (content == 0)
            return end + 1;
        line = end + 1;
    }
}

/* Copy a header the route reads; repeated ones are joined with ", ".
 * Returns 0, HB_EOVERFLOW when it grows too long, or HB_ENOMEM. */
static int server__header_keep(char **slot, const char *v, size_t n)
{
    size_t old = *slot != NULL ? strlen(*slot) : 0;
    size_t total = old + (old > 0 ? 2 : 0) + n;
    if (total >= SERVER_HEADER_VALUE_MAX)
        return HB_EOVERFLOW;
    char *s = realloc(*slot, total + 1);
    if (s == NULL)
        return HB_ENOMEM;
    if (old > 0)
        memcpy(s + old, ", ", 2);
    memcpy(s + total - n, v, n);
    s[total] = '\0';
    *slot = s;
    return 0;
}

/* A request's head, the first head_len bytes of conn->in: make conn->req,
 * or refuse (the connection then closes after the answer). */
static void server__head_parse(struct server_conn *conn, size_t head_len)
{
    struct server *srv = conn->srv;
    const char *p = conn->in;
    const char *end = conn->in + head_len;
    const char *nl = memchr(p, '\n', head_len);
    size_t line_len = (size_t)(nl - p);
    if (line_len > 0 && p[line_len - 1] == '\r')
        line_len--;
    /* method SP request-target SP HTTP-version */
    const char *sp1 = memchr(p, ' ', line_len);
    const char *sp2 = sp1 != NULL ? memchr(sp1 + 1, ' ', line_len - (size_t)(sp1 + 1 - p)) : NULL;
    if (sp1 == NULL || sp2 == NULL) {
        server__refuse(conn, 400, "bad request line\n");
        return;
    }
    size_t mlen = (size_t)(sp1 - p);
    const char *target = sp1 + 1;
    size_t tlen = (size_t)(sp2 - target);
    const char *version = sp2 + 1;
    size_t vlen = line_len - (size_t)(version - p);
    if (!server__token(p, mlen) || tlen == 0 || target[0] != '/') {
        server__refuse(conn, 400, "bad request line\n");
        return;
    }
    for (size_t i = 0; i < tlen; i++) {
        unsigned char c = (unsigned char)target[i];
        if (c <= 0x20 || c == 0x7f) {
            server__refuse(conn, 400, "bad request target\n");
            return;
        }
    }
    bool keep_alive;
    if (vlen == 8 && memcmp(version, "HTTP/1.1", 8) == 0) {
        keep_alive = true;
    } else if (vlen == 8 && memcmp(version, "HTTP/1.0", 8) == 0) {
        keep_alive = false;
    } else if (vlen == 8 && memcmp(version, "HTTP/", 5) == 0 && version[5] >= '0' &&
               version[5] <= '9' && version[6] == '.' && version[7] >= '0' && version[7] <= '9') {
        server__refuse(conn, 505, "HTTP version not supported\n");
        return;
    } else {
        server__refuse(conn, 400, "bad HTTP version\n");
        return;
    }
    if (mlen >= sizeof(((struct server_request *)0)->method)) {
        server__refuse(conn, 501, "method not implemented\n");
        return;
    }
    struct server_request *req = calloc(1, sizeof(*req));
    if (req == NULL) {
        server__refuse(conn, 500, "out of memory\n");
        return;
    }
    req->srv = srv;
    req->conn = conn;
    req->state = SERVER_REQ_READING;
    conn->req = req;
    memcpy(req->method, p, mlen);
    req->method[mlen] = '\0';
    const char *q = memchr(target, '?', tlen);
    size_t plen = q != NULL ? (size_t)(q - target) : tlen;
    size_t qlen = q != NULL ? tlen - plen - 1 : 0;
    if (plen >= sizeof(req->path)) {
        server__refuse(conn, 414, "URI too long\n");
        return;
    }
    if (qlen >= sizeof(req->query)) {
        server__refuse(conn, 414, "query too long\n");
        return;
    }
    memcpy(req->path, target, plen);
    req->path[plen] = '\0';
    if (q != NULL)
        memcpy(req->query, q + 1, qlen);
    req->query[qlen] = '\0';
    bool path_known = false;
    for (const struct server_route *r = srv->routes; r != NULL; r = r->next) {
        if (strcmp(r->path, req->path) != 0)
            continue;
        path_known = true;
        if (strcmp(r->method, req->method) == 0)
            req->route = r;
    }
    if (req->route == NULL)
        req->early_status = path_known ? 405 : 404;

    bool has_len = false, chunked = false, expect = false;
    uint64_t declared = 0;
    for (p = nl + 1; p < end;) {
        nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)(nl - p);
        const char *next = nl + 1;
        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (n == 0)
            break; /* the empty line */
        const char *colon = memchr(p, ':', n);
        /* No folded lines (obs-fold), no space before the colon. */
        if (colon == NULL || !server__token(p, (size_t)(colon - p))) {
            server__refuse(conn, 400, "bad header line\n");
            return;
        }
        size_t name_len = (size_t)(colon - p);
        const char *v = colon + 1;
        const char *v_end = p + n;
        while (v < v_end && (*v == ' ' || *v == '\t'))
            v++;
        while (v_end > v && (v_end[-1] == ' ' || v_end[-1] == '\t'))
            v_end--;
        size_t vn = (size_t)(v_end - v);
        for (size_t i = 0; i < vn; i++) {
            unsigned char c = (unsigned char)v[i];
            if ((c < 0x20 && c != '\t') || c == 0x7f) {
                server__refuse(conn, 400, "bad header value\n");
                return;
            }
        }
        if (server__name_is(p, name_len, "content-length")) {
            uint64_t x = 0;
            if (server__content_length(v, vn, &x) < 0 || (has_len && x != declared)) {
                server__refuse(conn, 400, "bad or conflicting Content-Length\n");
                return;
            }
            has_len = true;
            declared = x;
        } else if (server__name_is(p, name_len, "transfer-encoding")) {
            chunked = true;
        } else if (server__name_is(p, name_len, "connection")) {
            if (server__list_has(v, vn, "close"))
                keep_alive = false;
            else if (server__list_has(v, vn, "keep-alive"))
                keep_alive = true;
        } else if (server__name_is(p, name_len, "expect")) {
            expect = vn == 12 && strncasecmp(v, "100-continue", 12) == 0;
        }
        for (size_t i = 0; req->route != NULL && i < req->route->nheaders; i++) {
            if (!server__name_is(p, name_len, req->route->headers[i]))
                continue;
            int rc = server__header_keep(&req->header_values[i], v, vn);
            if (rc == HB_EOVERFLOW) {
                server__refuse(conn, 431, "header too large\n");
                return;
            }
            if (rc < 0) {
                server__refuse(conn, 500, "out of memory\n");
                return;
            }
        }
        p = next;
    }
    conn->keep_alive = keep_alive;
    if (chunked) {
        /* Webhook senders give a Content-Length; a coded body is refused
         * rather than guessed at (RFC 9112, 6.1). */
        server__refuse(conn, 501, "transfer codings not supported\n");
        return;
    }
    if (declared > srv->max_body) {
        log_warn("server.body_too_large", "path=%s declared=%llu limit=%zu", req->path,
                 (unsigned long long)declared, srv->max_body);
        server__refuse(conn, 413, "request body too large\n");
        return;
    }
    conn->body_expected = (size_t)declared;
    conn->expect_continue = expect && declared > 0;
    conn->state = SERVER_CONN_BODY;
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

static void server__conn_close(struct server_conn *conn)
{
    if (conn->state == SERVER_CONN_CLOSING)
        return;
    conn->state = SERVER_CONN_CLOSING;
    struct server_request *req = conn->req;
    conn->req = NULL;
    if (req != NULL) {
        req->conn = NULL;
        if (req->state != SERVER_REQ_HANDLING)
            server__request_free(req); /* else the handler answers into the void */
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
}

static void server__conn_timeout(uv_timer_t *t)
{
    /* A request that did not arrive whole in time, an idle keep-alive, or
     * the end of lingering. */
    server__conn_close(t->data);
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
    server__conn_process(conn);
}

static void server__conn_consume(struct server_conn *conn, size_t n)
{
    if (n == 0)
        return;
    memmove(conn->in, conn->in + n, conn->in_len - n);
    conn->in_len -= n;
    conn->head_scan = 0;
}

/* The current request's body is in: hand it to its handler, or answer the
 * refusal that waited for the body to be read (404, 405). */
static void server__request_ready(struct server_conn *conn)
{
    struct server *srv = conn->srv;
    struct server_request *req = conn->req;
    conn->state = SERVER_CONN_BUSY;
    if (req->early_status != 0) {
        req->state = SERVER_REQ_ANSWERED;
        const char *text = req->early_status == 405 ? "method not allowed\n" : "not found\n";
        server__conn_write(conn, req->early_status, NULL, text, strlen(text), NULL,
                           strcmp(req->method, "HEAD") == 0);
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

static void server__continue_written(uv_write_t *w, int status)
{
    (void)w;
    (void)status; /* a failed write shows again on the answer's */
}

/* Parse what conn->in holds, one request at a time; read while a request
 * is incomplete, and not while one is handled or answered. */
static void server__conn_process(struct server_conn *conn)
{
    while (conn->state == SERVER_CONN_HEAD || conn->state == SERVER_CONN_BODY) {
        if (conn->state == SERVER_CONN_HEAD) {
            /* Empty lines before a request line are ignored (RFC 9112, 2.2). */
            size_t skip = 0;
            while (skip < conn->in_len && (conn->in[skip] == '\r' || conn->in[skip] == '\n'))
                skip++;
            if (skip > 0)
                server__conn_consume(conn, skip);
            size_t head_len = server__head_end(conn->in, conn->in_len, &conn->head_scan);
            if ((head_len == 0 && conn->in_len > SERVER_HEAD_MAX) || head_len > SERVER_HEAD_MAX) {
                server__refuse(conn, 431, "request header fields too large\n");
                break;
            }
            if (head_len == 0)
                break; /* more to come */
            server__head_parse(conn, head_len);
            server__conn_consume(conn, head_len);
            continue;
        }
        if (conn->in_len < conn->body_expected) {
            if (conn->expect_continue) {
                static char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                uv_buf_t b = uv_buf_init(cont, sizeof(cont) - 1);
                conn->expect_continue = false;
                if (uv_write(&conn->cont_write, (uv_stream_t *)&conn->tcp, &b, 1,
                             server__continue_written) < 0) {
                    server__conn_close(conn);
                    return;
                }
            }
            break; /* more to come */
        }
        struct server_request *req = conn->req;
        req->body = malloc(conn->body_expected + 1);
        if (req->body == NULL) {
            server__refuse(conn, 500, "out of memory\n");
            break;
        }
        memcpy(req->body, conn->in, conn->body_expected);
        req->body[conn->body_expected] = '\0';
        req->body_len = conn->body_expected;
        server__conn_consume(conn, conn->body_expected);
        server__request_ready(conn);
    }
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
        if (conn->reading)
            uv_read_stop((uv_stream_t *)&conn->tcp);
        conn->reading = false;
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
static void server__conn_linger(struct server_conn *conn)
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
    free(srv);
}
