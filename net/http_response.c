/* Framing of HTTP/1.1 responses for the pipelined client: the head and a
 * chunked body. See net/http_response.h. */
#include "net/http_response.h"

#include "base/error.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

/* Is token among the comma-separated values of a header? */
static bool http_response__has_token(const char *v, size_t len, const char *token)
{
    size_t tl = strlen(token);
    size_t i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < len && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(v + s, token, tl) == 0)
            return true;
    }
    return false;
}

int http_response_head_parse(const char *buf, size_t len, size_t max_head,
                             struct http_response_head *h)
{
    const char *end = NULL;
    for (size_t i = 3; i < len; i++) {
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r') {
            end = buf + i + 1;
            break;
        }
    }
    if (end == NULL)
        return len > max_head ? HB_EPROTO : 0;
    memset(h, 0, sizeof(*h));
    h->head_len = (size_t)(end - buf);
    if (h->head_len < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ')
        return HB_EPROTO;
    bool http10 = buf[7] == '0';
    int status = 0;
    for (int i = 9; i < 12; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return HB_EPROTO;
        status = status * 10 + (buf[i] - '0');
    }
    /* Three digits after one space, then a space or the line's end; a
     * status outside 100-599 is no HTTP answer ("000" is not a call that
     * completed). */
    if (status < 100 || status > 599 || (buf[12] != ' ' && buf[12] != '\r'))
        return HB_EPROTO;
    h->status = status;
    bool keep_alive = false;
    const char *line = (const char *)memchr(buf, '\n', h->head_len) + 1;
    while (line < end - 2) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        size_t ll = (size_t)(eol - line);
        if (ll > 0 && line[ll - 1] == '\r')
            ll--;
        const char *colon = memchr(line, ':', ll);
        if (colon != NULL) {
            size_t nl = (size_t)(colon - line);
            const char *v = colon + 1;
            size_t vl = ll - nl - 1;
            while (vl > 0 && (*v == ' ' || *v == '\t')) {
                v++;
                vl--;
            }
            if (nl == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
                size_t n = 0;
                size_t i = 0;
                for (; i < vl && v[i] >= '0' && v[i] <= '9'; i++) {
                    if (n > (SIZE_MAX - 9) / 10)
                        return HB_EPROTO;
                    n = n * 10 + (size_t)(v[i] - '0');
                }
                if (i == 0)
                    return HB_EPROTO;
                h->has_length = true;
                h->length = n;
            } else if (nl == 17 && strncasecmp(line, "Transfer-Encoding", 17) == 0) {
                h->chunked = http_response__has_token(v, vl, "chunked");
            } else if (nl == 10 && strncasecmp(line, "Connection", 10) == 0) {
                if (http_response__has_token(v, vl, "close"))
                    h->close = true;
                if (http_response__has_token(v, vl, "keep-alive"))
                    keep_alive = true;
            }
        }
        line = eol + 1;
    }
    if (http10 && !keep_alive)
        h->close = true;
    return 1;
}

long http_response_chunked(const char *buf, size_t len, char *out, size_t *out_len, size_t max)
{
    size_t pos = 0;
    *out_len = 0;
    for (;;) {
        size_t n = 0;
        size_t i = pos;
        int digits = 0;
        for (; i < len; i++) {
            char ch = buf[i];
            int d = ch >= '0' && ch <= '9'   ? ch - '0'
                    : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                    : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                             : -1;
            if (d < 0)
                break;
            if (++digits > 8)
                return HB_EPROTO;
            n = n * 16 + (size_t)d;
        }
        const char *eol = memchr(buf + i, '\n', len - i);
        if (eol == NULL)
            return len - pos > 1024 ? HB_EPROTO : 0;
        if (digits == 0)
            return HB_EPROTO;
        pos = (size_t)(eol - buf) + 1;
        if (n == 0) {
            /* Trailers, up to an empty line. */
            for (;;) {
                const char *e = memchr(buf + pos, '\n', len - pos);
                if (e == NULL)
                    return 0;
                size_t ll = (size_t)(e - (buf + pos));
                pos = (size_t)(e - buf) + 1;
                if (ll == 0 || (ll == 1 && buf[pos - 2] == '\r'))
                    return (long)pos;
            }
        }
        if (n > max || *out_len > max - n)
            return HB_EOVERFLOW;
        if (len - pos < n + 2)
            return 0;
        if (out != NULL)
            memmove(out + *out_len, buf + pos, n);
        *out_len += n;
        pos += n;
        if (buf[pos] == '\r')
            pos++;
        if (buf[pos] != '\n')
            return HB_EPROTO;
        pos++;
    }
}
