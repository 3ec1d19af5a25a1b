#include "adapters/llm/sse.h"

#include "base/error.h"

#include <stdlib.h>
#include <string.h>

/* A growable byte buffer, always NUL-terminated once it holds anything. */
struct sse_buf {
    char *bytes;
    size_t len;
    size_t cap;
};

struct sse_parser {
    size_t max_event; /* bound on line + data + type bytes */
    sse_event_cb cb;
    void *cb_data;
    int rc;               /* sticky failure, 0 while healthy */
    struct sse_buf line;  /* the line being assembled across chunks */
    struct sse_buf data;  /* data lines of the pending event, each ending "\n" */
    struct sse_buf type;  /* event type of the pending event; empty: "message" */
    struct sse_buf id;    /* last event id; survives dispatch */
    unsigned char bom[3]; /* leading bytes held back while checking for a BOM */
    size_t bom_len;
    bool bom_done; /* the start of the stream has been checked */
    bool after_cr; /* the last byte was CR: an LF right after it is skipped */
    bool pending;  /* a field arrived since the last blank line */
    long retry_ms; /* last retry field, -1 when none */
};

static const unsigned char sse_bom[3] = {0xef, 0xbb, 0xbf};

static int sse_buf_set(struct sse_buf *b, const char *s, size_t n, size_t at)
{
    size_t need = at + n + 1;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < need)
            cap *= 2;
        char *grown = realloc(b->bytes, cap);
        if (grown == NULL)
            return HB_ENOMEM;
        b->bytes = grown;
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->bytes + at, s, n);
    b->len = at + n;
    b->bytes[b->len] = '\0';
    return 0;
}

static int sse_buf_append(struct sse_buf *b, const char *s, size_t n)
{
    return sse_buf_set(b, s, n, b->len);
}

struct sse_parser *sse_parser_new(size_t max_event, sse_event_cb cb, void *data)
{
    struct sse_parser *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->max_event = max_event ? max_event : SSE_EVENT_MAX_DEFAULT;
    p->cb = cb;
    p->cb_data = data;
    p->retry_ms = -1;
    return p;
}

void sse_parser_free(struct sse_parser *p)
{
    if (p == NULL)
        return;
    free(p->line.bytes);
    free(p->data.bytes);
    free(p->type.bytes);
    free(p->id.bytes);
    free(p);
}

long sse_parser_retry_ms(const struct sse_parser *p)
{
    return p->retry_ms;
}

static bool sse_field_is(const char *field, size_t n, const char *name)
{
    return strlen(name) == n && memcmp(field, name, n) == 0;
}

/* A blank line ends the event: dispatch it when it has data, and in any
 * case forget its type. */
static int sse_event_dispatch(struct sse_parser *p)
{
    int rc = 0;
    p->pending = false;
    if (p->data.len > 0) {
        p->data.len--; /* the "\n" after the last data line */
        p->data.bytes[p->data.len] = '\0';
        struct sse_event ev = {
            .type = p->type.len > 0 ? p->type.bytes : "message",
            .data = p->data.bytes,
            .data_len = p->data.len,
            .id = p->id.len > 0 ? p->id.bytes : "",
        };
        if (p->cb != NULL)
            rc = p->cb(&ev, p->cb_data);
    }
    p->data.len = 0;
    p->type.len = 0;
    return rc;
}

static void sse_retry_parse(struct sse_parser *p, const char *v, size_t n)
{
    long ms = 0;
    if (n == 0)
        return;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return;
        if (ms > 100000000L) /* over a day: clamp rather than overflow */
            ms = 100000000L;
        else
            ms = ms * 10 + (v[i] - '0');
    }
    p->retry_ms = ms;
}

static int sse_line_process(struct sse_parser *p, const char *line, size_t n)
{
    if (n == 0)
        return sse_event_dispatch(p);
    if (line[0] == ':')
        return 0;

    const char *colon = memchr(line, ':', n);
    size_t field_len = colon ? (size_t)(colon - line) : n;
    const char *value = colon ? colon + 1 : line + n;
    size_t value_len = (size_t)(line + n - value);
    if (value_len > 0 && value[0] == ' ') {
        value++;
        value_len--;
    }

    p->pending = true;
    if (sse_field_is(line, field_len, "data")) {
        if (p->data.len + value_len + 1 + p->type.len > p->max_event)
            return HB_EOVERFLOW;
        int rc = sse_buf_append(&p->data, value, value_len);
        if (rc == 0)
            rc = sse_buf_append(&p->data, "\n", 1);
        return rc;
    }
    if (sse_field_is(line, field_len, "event"))
        return sse_buf_set(&p->type, value, value_len, 0);
    if (sse_field_is(line, field_len, "id")) {
        if (memchr(value, '\0', value_len) != NULL)
            return 0; /* the rules say to ignore an id with a NUL */
        return sse_buf_set(&p->id, value, value_len, 0);
    }
    if (sse_field_is(line, field_len, "retry"))
        sse_retry_parse(p, value, value_len);
    return 0; /* unknown fields are ignored */
}

/* Split bytes into lines. A line that lies wholly inside this chunk is
 * processed in place; only a line cut by the chunk's end is copied. */
static int sse_bytes_process(struct sse_parser *p, const char *buf, size_t len)
{
    int rc = 0;
    size_t i = 0;
    if (p->after_cr && len > 0) {
        p->after_cr = false;
        if (buf[0] == '\n')
            i = 1;
    }
    while (i < len) {
        size_t j = i;
        while (j < len && buf[j] != '\n' && buf[j] != '\r')
            j++;
        size_t seg = j - i;
        if (p->line.len + seg + p->data.len + p->type.len > p->max_event) {
            rc = HB_EOVERFLOW;
            goto out;
        }
        if (j == len) {
            rc = sse_buf_append(&p->line, buf + i, seg);
            goto out;
        }
        if (p->line.len == 0) {
            rc = sse_line_process(p, buf + i, seg);
        } else {
            rc = sse_buf_append(&p->line, buf + i, seg);
            if (rc == 0)
                rc = sse_line_process(p, p->line.bytes, p->line.len);
            p->line.len = 0;
        }
        if (rc != 0)
            goto out;
        i = j + 1;
        if (buf[j] == '\r') {
            if (i < len && buf[i] == '\n')
                i++;
            else if (i == len)
                p->after_cr = true;
        }
    }
out:
    return rc;
}

int sse_parser_feed(struct sse_parser *p, const char *buf, size_t len)
{
    if (p->rc != 0)
        return p->rc;
    int rc = 0;
    const unsigned char *u = (const unsigned char *)buf;

    /* Hold back the first bytes until it is clear whether they are a BOM;
     * a BOM can be split across chunks like anything else. */
    while (!p->bom_done && len > 0) {
        if (u[0] != sse_bom[p->bom_len]) {
            p->bom_done = true;
            size_t held = p->bom_len;
            p->bom_len = 0;
            rc = sse_bytes_process(p, (const char *)p->bom, held);
            if (rc != 0)
                goto out;
            break;
        }
        p->bom[p->bom_len++] = u[0];
        u++;
        buf++;
        len--;
        if (p->bom_len == sizeof(sse_bom)) {
            p->bom_done = true;
            p->bom_len = 0;
        }
    }
    if (len > 0)
        rc = sse_bytes_process(p, buf, len);
out:
    p->rc = rc;
    return rc;
}

int sse_parser_finish(struct sse_parser *p, bool *truncated)
{
    int rc = p->rc;
    /* Bytes still held back as a possible BOM are a partial line too. */
    bool cut = p->line.len > 0 || p->pending || p->bom_len > 0;
    if (truncated != NULL)
        *truncated = cut;
    p->rc = 0;
    p->line.len = 0;
    p->data.len = 0;
    p->type.len = 0;
    p->bom_len = 0;
    p->bom_done = false;
    p->after_cr = false;
    p->pending = false;
    return rc;
}
