/* One HTTP request: what is sent (method, headers, body or form), the easy
 * handle set up from it, what comes back (status, headers, body, possibly
 * streamed) and, for raw connections, the socket handed over after
 * connecting. The client that runs requests is in http.c. */
#include "net/http.h"

#include "base/error.h"
#include "base/json.h"
#include "base/log.h"
#include "net/http_internal.h"
#include "base/util.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- response ---------------------------------------------------------- */

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
        struct http_header *h = hb_grow(req->resp_headers, &req->cap_resp_headers, 16, sizeof(*h));
        if (h == NULL)
            return HB_ENOMEM;
        req->resp_headers = h;
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
int http__easy_setup(struct http_request *req)
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
    c |= curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, http__curl_open_socket);
    c |= curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, (void *)client);
    c |= curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, http__curl_close_socket);
    c |= curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, (void *)client);
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
    if (!req->connect_only || curl_easy_getinfo(req->easy, CURLINFO_ACTIVESOCKET, &fd) != CURLE_OK)
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
