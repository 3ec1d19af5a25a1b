/* The fake HTTP server's request parsing: the request line and headers,
 * chunked and fixed-length bodies, multipart form parts. See
 * tests/fake/httpd.h. */
#include "tests/fake/httpd.h"

#include "tests/fake/httpd_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- request parsing ---------------------------------------------------- */

const char *httpd_request_header(const struct httpd_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++) {
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    }
    return NULL;
}

const struct httpd_part *httpd_request_part(const struct httpd_request *req, const char *name)
{
    for (size_t i = 0; i < req->nparts; i++) {
        if (strcmp(req->parts[i].name, name) == 0)
            return &req->parts[i];
    }
    return NULL;
}

/* Find needle in [hay, hay+len). */
static const char *httpd__find(const char *hay, size_t len, const char *needle, size_t nlen)
{
    return memmem(hay, len, needle, nlen);
}

/* Decode a chunked body starting at p. Returns bytes consumed (> 0), 0 when
 * more input is needed, -1 when malformed. The decoded body is appended to
 * *out when out is not NULL. */
static long httpd__chunked_decode(const char *p, size_t len, char **out, size_t *out_len)
{
    size_t pos = 0;
    for (;;) {
        const char *eol = httpd__find(p + pos, len - pos, "\r\n", 2);
        if (eol == NULL)
            return 0;
        char *end = NULL;
        unsigned long size = strtoul(p + pos, &end, 16);
        if (end == p + pos || size > HTTPD_MAX_BODY)
            return -1;
        pos = (size_t)(eol - p) + 2;
        if (size == 0) {
            /* Trailers, then an empty line. */
            for (;;) {
                const char *t = httpd__find(p + pos, len - pos, "\r\n", 2);
                if (t == NULL)
                    return 0;
                size_t tl = (size_t)(t - (p + pos));
                pos += tl + 2;
                if (tl == 0)
                    return (long)pos;
            }
        }
        if (len - pos < size + 2)
            return 0;
        if (out != NULL) {
            memcpy(*out + *out_len, p + pos, size);
            *out_len += size;
        }
        pos += size;
        if (memcmp(p + pos, "\r\n", 2) != 0)
            return -1;
        pos += 2;
    }
}

static void httpd__multipart_parse(struct httpd_response *res)
{
    struct httpd_request *req = &res->req;
    const char *ct = httpd_request_header(req, "Content-Type");
    if (ct == NULL || strncasecmp(ct, "multipart/form-data", 19) != 0)
        return;
    const char *b = strstr(ct, "boundary=");
    if (b == NULL)
        return;
    b += 9;
    size_t blen = strcspn(b, "\";, ");
    if (*b == '"') {
        b++;
        blen = strcspn(b, "\"");
    }
    char delim[256];
    if (blen == 0 || blen + 5 > sizeof(delim))
        return;
    int dlen = snprintf(delim, sizeof(delim), "\r\n--%.*s", (int)blen, b);
    const char *body = req->body;
    size_t len = req->body_len;
    /* The first delimiter has no leading CRLF. */
    if (len < (size_t)dlen - 2 || memcmp(body, delim + 2, (size_t)dlen - 2) != 0)
        return;
    size_t pos = (size_t)dlen - 2;
    size_t cap = 4;
    res->parts = httpd__xcalloc(cap, sizeof(*res->parts));
    for (;;) {
        if (len - pos >= 2 && memcmp(body + pos, "--", 2) == 0)
            break; /* closing delimiter */
        if (len - pos < 2 || memcmp(body + pos, "\r\n", 2) != 0)
            break;
        pos += 2;
        const char *hend = httpd__find(body + pos, len - pos, "\r\n\r\n", 4);
        if (hend == NULL)
            break;
        const char *data = hend + 4;
        const char *next = httpd__find(data, len - (size_t)(data - body), delim, (size_t)dlen);
        if (next == NULL)
            break;
        struct httpd_part part = {0};
        part.data = data;
        part.len = (size_t)(next - data);
        /* Part headers: Content-Disposition and Content-Type. */
        const char *h = body + pos;
        while (h < hend) {
            const char *eol = httpd__find(h, (size_t)(hend + 2 - h), "\r\n", 2);
            size_t hl = (size_t)(eol - h);
            if (hl > 20 && strncasecmp(h, "Content-Disposition:", 20) == 0) {
                const char *n = httpd__find(h, hl, "name=\"", 6);
                /* "filename=" also contains "name=": find the plain one. */
                while (n != NULL && n > h && n[-1] != ' ' && n[-1] != ';')
                    n = httpd__find(n + 1, hl - (size_t)(n + 1 - h), "name=\"", 6);
                if (n != NULL) {
                    n += 6;
                    part.name = httpd__xstrndup(n, strcspn(n, "\""));
                }
                const char *f = httpd__find(h, hl, "filename=\"", 10);
                if (f != NULL) {
                    f += 10;
                    part.filename = httpd__xstrndup(f, strcspn(f, "\""));
                }
            } else if (hl > 13 && strncasecmp(h, "Content-Type:", 13) == 0) {
                const char *v = h + 13;
                while (*v == ' ')
                    v++;
                part.content_type = httpd__xstrndup(v, (size_t)(eol - v));
            }
            h = eol + 2;
        }
        if (part.name == NULL)
            part.name = httpd__xstrndup("", 0);
        if (req->nparts == cap) {
            cap *= 2;
            struct httpd_part *np = realloc(res->parts, cap * sizeof(*np));
            if (np == NULL)
                break;
            res->parts = np;
        }
        res->parts[req->nparts++] = part;
        pos = (size_t)(next - body) + (size_t)dlen;
    }
    req->parts = res->parts;
}

/* Try to parse one request from the connection's buffer. Returns 1 and a
 * new response, 0 when more input is needed, -1 when malformed. */
int httpd__request_parse(struct httpd_conn *conn, struct httpd_response **out)
{
    const char *in = conn->in;
    const char *hend = httpd__find(in, conn->in_len, "\r\n\r\n", 4);
    if (hend == NULL)
        return conn->in_len > HTTPD_MAX_HEAD ? -1 : 0;
    size_t head_len = (size_t)(hend - in) + 4;

    /* Body framing, read from the raw head. */
    size_t content_length = 0;
    bool chunked = false;
    bool expect = false;
    bool close = false;
    size_t nheaders = 0;
    const char *line = httpd__find(in, head_len, "\r\n", 2) + 2;
    while (line < hend + 2) {
        const char *eol = httpd__find(line, (size_t)(hend + 2 - line), "\r\n", 2);
        size_t l = (size_t)(eol - line);
        if (l == 0)
            break;
        nheaders++;
        if (l > 15 && strncasecmp(line, "Content-Length:", 15) == 0)
            content_length = strtoul(line + 15, NULL, 10);
        else if (l > 18 && strncasecmp(line, "Transfer-Encoding:", 18) == 0 &&
                 httpd__find(line, l, "chunked", 7) != NULL)
            chunked = true;
        else if (l > 7 && strncasecmp(line, "Expect:", 7) == 0 &&
                 httpd__find(line, l, "100", 3) != NULL)
            expect = true;
        else if (l > 11 && strncasecmp(line, "Connection:", 11) == 0 &&
                 httpd__find(line, l, "close", 5) != NULL)
            close = true;
        line = eol + 2;
    }
    if (content_length > HTTPD_MAX_BODY)
        return -1;

    size_t body_len = 0;
    long body_raw = 0;
    if (chunked) {
        body_raw = httpd__chunked_decode(in + head_len, conn->in_len - head_len, NULL, NULL);
        if (body_raw < 0)
            return -1;
    } else if (conn->in_len - head_len >= content_length) {
        body_raw = (long)content_length;
        body_len = content_length;
    }
    if (body_raw == 0 && (chunked || content_length > 0)) {
        if (expect && !conn->continue_sent) {
            conn->continue_sent = true;
            httpd__conn_write(conn, httpd__xstrndup("HTTP/1.1 100 Continue\r\n\r\n", 25), 25);
        }
        return 0;
    }

    struct httpd_response *res = httpd__xcalloc(1, sizeof(*res));
    res->head_buf = httpd__xstrndup(in, head_len);
    res->headers = httpd__xcalloc(nheaders, sizeof(*res->headers));
    res->body = httpd__xmalloc((chunked ? (size_t)body_raw : body_len) + 1);
    if (chunked)
        httpd__chunked_decode(in + head_len, conn->in_len - head_len, &res->body, &body_len);
    else
        memcpy(res->body, in + head_len, body_len);
    res->body[body_len] = '\0';
    res->want_close = close;

    struct httpd_request *req = &res->req;
    char *p = res->head_buf;
    char *eol = strstr(p, "\r\n");
    *eol = '\0';
    char *sp1 = strchr(p, ' ');
    char *sp2 = sp1 != NULL ? strchr(sp1 + 1, ' ') : NULL;
    if (sp1 == NULL || sp2 == NULL) {
        free(res->head_buf);
        free(res->headers);
        free(res->body);
        free(res);
        return -1;
    }
    *sp1 = '\0';
    *sp2 = '\0';
    req->method = p;
    req->target = sp1 + 1;
    p = eol + 2;
    while (req->nheaders < nheaders) {
        eol = strstr(p, "\r\n");
        *eol = '\0';
        char *colon = strchr(p, ':');
        if (colon != NULL) {
            *colon = '\0';
            char *v = colon + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            res->headers[req->nheaders].name = p;
            res->headers[req->nheaders].value = v;
            req->nheaders++;
        } else {
            nheaders--;
        }
        p = eol + 2;
    }
    req->headers = res->headers;
    req->body = res->body;
    req->body_len = body_len;
    req->chunked = chunked;
    req->conn_id = conn->id;
    req->seq = ++conn->seq;
    httpd__multipart_parse(res);

    size_t used = head_len + (size_t)body_raw;
    memmove(conn->in, conn->in + used, conn->in_len - used);
    conn->in_len -= used;
    conn->continue_sent = false;
    *out = res;
    return 1;
}
