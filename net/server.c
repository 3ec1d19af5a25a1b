#include "net/server.h"

#include "base/error.h"
#include "base/log.h"

#include <errno.h>
#include <libwebsockets.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define SERVER_MAX_BODY_DEFAULT (1u << 20)
#define SERVER_PATH_MAX 512
#define SERVER_QUERY_MAX 1024

struct server_route {
    struct server_route *next;
    char *method;
    char *path;
    char *headers[SERVER_HEADERS_MAX];
    size_t nheaders;
    server_handler_fn fn;
    void *data;
};

struct server {
    uv_loop_t *loop;
    struct lws_context *ctx;
    int port;
    size_t max_body;
    int destroy_calls; /* lws_context_destroy() runs twice: on the loop, then after it */
    struct server_route *routes;
    struct server_request *handling; /* requests handlers own (doubly linked) */
    size_t pending;
};

enum server_req_state {
    SERVER_REQ_READING = 0, /* headers seen, body arriving */
    SERVER_REQ_HANDLING,    /* the handler owns it */
    SERVER_REQ_HEAD,        /* answered: the head is next to write */
    SERVER_REQ_BODY,        /* the head is out: the body is next */
};

struct server_request {
    struct server *srv;   /* NULL once the server closed */
    struct lws *wsi;      /* NULL once the connection closed */
    struct server_request *prev, *next; /* in srv->handling */
    enum server_req_state state;
    const struct server_route *route;
    char method[8];
    char path[SERVER_PATH_MAX];
    char query[SERVER_QUERY_MAX];
    char *header_values[SERVER_HEADERS_MAX]; /* heap or NULL, in route->headers order */
    char *body;
    size_t body_len;
    size_t body_cap;
    bool body_refused;    /* over the limit: answered 413, closing */
    /* the answer */
    int status;
    char content_type[64];
    char *extra_header;
    unsigned char *out;   /* LWS_PRE bytes, then the body */
    size_t out_len;
};

struct server_session {
    struct server_request *req; /* the request on this connection, or NULL */
};

static int server__callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                            void *in, size_t len);

static const struct lws_protocols server_protocols[] = {
    {"http", server__callback, sizeof(struct server_session), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void server__lws_log(int level, const char *line)
{
    log_external(level == LLL_ERR ? LOG_WARN : LOG_DEBUG, "lws", line);
}

/* ---- requests ----------------------------------------------------------- */

static void server__request_free(struct server_request *req)
{
    if (req == NULL)
        return;
    for (size_t i = 0; i < SERVER_HEADERS_MAX; i++)
        free(req->header_values[i]);
    free(req->body);
    free(req->extra_header);
    free(req->out);
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

/* Queue the answer on the connection; the head goes out when writable. */
static void server__answer(struct server_request *req, int status, const char *content_type,
                           const void *body, size_t len, const char *extra_header)
{
    req->status = status;
    snprintf(req->content_type, sizeof(req->content_type), "%s",
             content_type != NULL ? content_type : "text/plain; charset=utf-8");
    free(req->out);
    req->out = malloc(LWS_PRE + len + 1);
    req->out_len = 0;
    if (req->out != NULL) {
        if (len > 0)
            memcpy(req->out + LWS_PRE, body, len);
        req->out_len = len;
    } else if (req->status < 500) {
        req->status = 500; /* no memory for the body: say so without one */
    }
    free(req->extra_header);
    req->extra_header = extra_header != NULL ? strdup(extra_header) : NULL;
    req->state = SERVER_REQ_HEAD;
    lws_callback_on_writable(req->wsi);
}

void server_respond(struct server_request *req, int status, const char *content_type,
                    const void *body, size_t len, const char *extra_header)
{
    if (req == NULL)
        return;
    server__unlink(req);
    if (req->wsi == NULL || req->srv == NULL) {
        /* The client left or the server closed: nobody to answer. */
        server__request_free(req);
        return;
    }
    server__answer(req, status, content_type, body, len, extra_header);
}

static void server__simple(struct server_request *req, int status, const char *text)
{
    server__answer(req, status, NULL, text, strlen(text), NULL);
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
        /* lws keeps header names lower case, with the colon. */
        size_t n = strlen(headers[i]);
        r->headers[i] = malloc(n + 2);
        if (r->headers[i] == NULL) {
            ok = false;
            break;
        }
        for (size_t k = 0; k < n; k++)
            r->headers[i][k] = (char)(headers[i][k] >= 'A' && headers[i][k] <= 'Z'
                                          ? headers[i][k] - 'A' + 'a'
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

/* Copy a header the route wants. Returns 0, or HB_EOVERFLOW when too long. */
static int server__header_copy(struct lws *wsi, const char *name, char **out)
{
    static const struct {
        const char *name;
        enum lws_token_indexes token;
    } known[] = {
        {"authorization", WSI_TOKEN_HTTP_AUTHORIZATION},
        {"content-type", WSI_TOKEN_HTTP_CONTENT_TYPE},
        {"user-agent", WSI_TOKEN_HTTP_USER_AGENT},
        {"host", WSI_TOKEN_HOST},
    };
    *out = NULL;
    char buf[SERVER_HEADER_VALUE_MAX];
    int n = -1;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (strcmp(known[i].name, name) != 0)
            continue;
        if (lws_hdr_total_length(wsi, known[i].token) <= 0)
            return 0;
        if (lws_hdr_total_length(wsi, known[i].token) >= (int)sizeof(buf))
            return HB_EOVERFLOW;
        n = lws_hdr_copy(wsi, buf, (int)sizeof(buf), known[i].token);
        break;
    }
    if (n < 0) {
        char key[128];
        int klen = snprintf(key, sizeof(key), "%s:", name);
        if (klen <= 0 || (size_t)klen >= sizeof(key))
            return 0;
        int total = lws_hdr_custom_length(wsi, key, klen);
        if (total <= 0)
            return 0;
        if (total >= (int)sizeof(buf))
            return HB_EOVERFLOW;
        n = lws_hdr_custom_copy(wsi, buf, (int)sizeof(buf), key, klen);
    }
    if (n < 0)
        return 0;
    buf[n] = '\0';
    *out = strdup(buf);
    return *out == NULL ? HB_ENOMEM : 0;
}

static void server__dispatch(struct server *srv, struct server_request *req)
{
    req->state = SERVER_REQ_HANDLING;
    req->next = srv->handling;
    if (srv->handling != NULL)
        srv->handling->prev = req;
    srv->handling = req;
    srv->pending++;
    if (req->body == NULL) {
        req->body = calloc(1, 1);
        if (req->body == NULL) {
            server_respond(req, 500, NULL, "out of memory\n", 14, NULL);
            return;
        }
    }
    req->route->fn(req, req->route->data);
}

static const char *server__method(struct lws *wsi)
{
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0)
        return "GET";
    if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0)
        return "POST";
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0)
        return "HEAD";
    if (lws_hdr_total_length(wsi, WSI_TOKEN_PUT_URI) > 0)
        return "PUT";
    if (lws_hdr_total_length(wsi, WSI_TOKEN_DELETE_URI) > 0)
        return "DELETE";
    return "OTHER";
}

/* A new request's head is complete. Returns what the lws callback returns. */
static int server__on_request(struct server *srv, struct lws *wsi, struct server_session *pss,
                              const char *uri, size_t uri_len)
{
    struct server_request *req = calloc(1, sizeof(*req));
    if (req == NULL)
        return -1;
    req->srv = srv;
    req->wsi = wsi;
    pss->req = req;
    snprintf(req->method, sizeof(req->method), "%s", server__method(wsi));
    if (uri_len >= sizeof(req->path)) {
        server__simple(req, 414, "URI too long\n");
        return 0;
    }
    memcpy(req->path, uri, uri_len);
    req->path[uri_len] = '\0';
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS) >= (int)sizeof(req->query)) {
        server__simple(req, 414, "query too long\n");
        return 0;
    }
    if (lws_hdr_copy(wsi, req->query, (int)sizeof(req->query), WSI_TOKEN_HTTP_URI_ARGS) < 0)
        req->query[0] = '\0';
    bool path_known = false;
    for (const struct server_route *r = srv->routes; r != NULL; r = r->next) {
        if (strcmp(r->path, req->path) != 0)
            continue;
        path_known = true;
        if (strcmp(r->method, req->method) == 0)
            req->route = r;
    }
    if (req->route == NULL) {
        if (path_known)
            server__simple(req, 405, "method not allowed\n");
        else
            server__simple(req, 404, "not found\n");
        return 0;
    }
    for (size_t i = 0; i < req->route->nheaders; i++) {
        int rc = server__header_copy(wsi, req->route->headers[i], &req->header_values[i]);
        if (rc == HB_EOVERFLOW) {
            server__simple(req, 431, "header too large\n");
            return 0;
        }
        if (rc < 0)
            return -1;
    }
    char clen[32] = "";
    bool has_len = lws_hdr_copy(wsi, clen, (int)sizeof(clen), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0;
    bool chunked = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0;
    unsigned long long declared = has_len ? strtoull(clen, NULL, 10) : 0;
    if (declared > srv->max_body) {
        log_warn("server.body_too_large", "path=%s declared=%llu limit=%zu", req->path, declared,
                 srv->max_body);
        req->body_refused = true;
        server__simple(req, 413, "request body too large\n");
        return 0;
    }
    if (declared > 0 || chunked) {
        req->state = SERVER_REQ_READING;
        return 0; /* the body follows: LWS_CALLBACK_HTTP_BODY */
    }
    server__dispatch(srv, req);
    return 0;
}

static int server__on_body(struct server *srv, struct server_request *req, const void *in,
                           size_t len)
{
    if (req->state != SERVER_REQ_READING || req->body_refused)
        return 0;
    if (req->body_len + len > srv->max_body) {
        log_warn("server.body_too_large", "path=%s limit=%zu", req->path, srv->max_body);
        req->body_refused = true;
        server__simple(req, 413, "request body too large\n");
        return 0;
    }
    if (req->body_len + len + 1 > req->body_cap) {
        size_t cap = req->body_cap == 0 ? 4096 : req->body_cap;
        while (cap < req->body_len + len + 1)
            cap *= 2;
        char *b = realloc(req->body, cap);
        if (b == NULL)
            return -1;
        req->body = b;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, in, len);
    req->body_len += len;
    req->body[req->body_len] = '\0';
    return 0;
}

/* Write the next part of the answer. Returns what the lws callback returns. */
static int server__on_writable(struct lws *wsi, struct server_session *pss)
{
    struct server_request *req = pss->req;
    if (req == NULL || (req->state != SERVER_REQ_HEAD && req->state != SERVER_REQ_BODY))
        return 0;
    if (req->state == SERVER_REQ_HEAD) {
        unsigned char head[LWS_PRE + 2048];
        unsigned char *start = head + LWS_PRE;
        unsigned char *p = start;
        unsigned char *end = head + sizeof(head) - 1;
        if (lws_add_http_common_headers(wsi, (unsigned int)req->status, req->content_type,
                                        (lws_filepos_t)req->out_len, &p, end))
            return -1;
        if (req->extra_header != NULL) {
            const char *colon = strchr(req->extra_header, ':');
            if (colon != NULL) {
                char name[64];
                size_t n = (size_t)(colon - req->extra_header) + 1;
                if (n < sizeof(name)) {
                    for (size_t i = 0; i < n; i++) {
                        char c = req->extra_header[i];
                        name[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
                    }
                    name[n] = '\0';
                    const char *v = colon + 1;
                    while (*v == ' ')
                        v++;
                    if (lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                                    (const unsigned char *)v, (int)strlen(v), &p,
                                                    end))
                        return -1;
                }
            }
        }
        if (req->body_refused &&
            lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close",
                                         5, &p, end))
            return -1;
        if (lws_finalize_write_http_header(wsi, start, &p, end))
            return -1;
        if (req->out_len > 0) {
            req->state = SERVER_REQ_BODY;
            lws_callback_on_writable(wsi);
            return 0;
        }
    } else if (lws_write(wsi, req->out + LWS_PRE, req->out_len, LWS_WRITE_HTTP_FINAL) !=
               (int)req->out_len) {
        return -1;
    }
    bool refused = req->body_refused;
    pss->req = NULL;
    server__request_free(req);
    /* A refused body is still arriving: close rather than read it. */
    if (refused)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int server__callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                            void *in, size_t len)
{
    struct server_session *pss = user;
    struct lws_context *ctx = lws_get_context(wsi);
    struct server *srv = ctx != NULL ? lws_context_user(ctx) : NULL;
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        if (pss == NULL || srv == NULL)
            return -1;
        if (pss->req != NULL)
            return -1; /* pipelined before the previous answer: not supported */
        return server__on_request(srv, wsi, pss, in, len);
    case LWS_CALLBACK_HTTP_BODY:
        if (pss == NULL || pss->req == NULL)
            return 0;
        return server__on_body(srv, pss->req, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (pss == NULL || pss->req == NULL || pss->req->state != SERVER_REQ_READING)
            return 0;
        server__dispatch(srv, pss->req);
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (pss == NULL)
            return 0;
        return server__on_writable(wsi, pss);
    case LWS_CALLBACK_CLOSED_HTTP:
        if (pss != NULL && pss->req != NULL) {
            struct server_request *req = pss->req;
            pss->req = NULL;
            if (req->state == SERVER_REQ_HANDLING)
                req->wsi = NULL; /* the handler still owns it and answers into the void */
            else
                server__request_free(req);
        }
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

/* ---- the server ---------------------------------------------------------- */

/* Can we listen there? libwebsockets 4.1 crashes closing a context whose
 * vhost failed to listen on a foreign loop, so a taken port is found out
 * before any context exists. Returns 0, or a negative errno. */
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

struct server *server_new(uv_loop_t *loop, const struct server_options *opts)
{
    struct server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL)
        return NULL;
    srv->loop = loop;
    srv->max_body = opts != NULL && opts->max_body > 0 ? opts->max_body : SERVER_MAX_BODY_DEFAULT;
    const char *address = opts != NULL && opts->address != NULL ? opts->address : "127.0.0.1";
    bool any = strcmp(address, "0.0.0.0") == 0 || strcmp(address, "*") == 0;
    int probe = server__probe_listen(any ? NULL : address, opts != NULL ? opts->port : 0);
    if (probe < 0) {
        log_error("server.listen", "address=%s port=%d error=%s", address,
                  opts != NULL ? opts->port : 0, strerror(-probe));
        free(srv);
        return NULL;
    }
    lws_set_log_level(LLL_ERR | LLL_WARN, server__lws_log);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    void *loops[1] = {loop};
    info.port = opts != NULL ? opts->port : 0;
    /* lws reads NULL as every interface; it takes an address or a name. */
    info.iface = any ? NULL : address;
    info.vhost_name = "haibot";
    info.protocols = server_protocols;
    info.options = LWS_SERVER_OPTION_LIBUV;
    if (info.iface != NULL && strchr(info.iface, ':') == NULL)
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    info.foreign_loops = loops;
    info.user = srv;
    info.timeout_secs = 30;
    info.max_http_header_data = 8192;
    info.keepalive_timeout = 30;
    srv->ctx = lws_create_context(&info);
    if (srv->ctx == NULL) {
        log_error("server.create", "address=%s port=%d error=%s", address, info.port,
                  "libwebsockets context failed (libwebsockets-evlib-uv installed?)");
        free(srv);
        return NULL;
    }
    struct lws_vhost *vh = lws_get_vhost_by_name(srv->ctx, "haibot");
    srv->port = vh != NULL ? lws_get_vhost_listen_port(vh) : -1;
    if (srv->port <= 0) {
        /* Taken between the probe and now. The context has handles on the
         * loop already: it is closed the usual way by the caller, who sees
         * server_port() <= 0. */
        log_error("server.listen", "address=%s port=%d error=%s", address, info.port,
                  "cannot listen (address in use or not local?)");
        srv->port = -1;
        return srv;
    }
    log_info("server.listening", "address=%s port=%d", address, srv->port);
    return srv;
}

int server_port(const struct server *srv)
{
    return srv->port;
}

void server_close(struct server *srv)
{
    if (srv == NULL || srv->destroy_calls > 0)
        return;
    srv->destroy_calls = 1;
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
    lws_context_destroy(srv->ctx);
}

void server_free(struct server *srv)
{
    if (srv == NULL)
        return;
    server_close(srv);
    lws_context_destroy(srv->ctx);
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
