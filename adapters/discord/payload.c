#include "adapters/discord/payload.h"

#include "base/error.h"

#include <string.h>

static const char *payload__ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* p is at an opening quote; returns the byte after the closing one. A quote
 * ends the string when an even number of backslashes precede it. */
static const char *payload__string(const char *p, const char *end)
{
    const char *from = p + 1;
    for (;;) {
        const char *q = memchr(from, '"', (size_t)(end - from));
        if (q == NULL)
            return NULL;
        const char *b = q;
        while (b > from && b[-1] == '\\')
            b--;
        if (((q - b) & 1) == 0)
            return q + 1;
        from = q + 1;
    }
}

/* Byte classes for the container skip: 1 opens, 2 closes, 3 is a quote. */
static const unsigned char payload_class[256] = {
    ['{'] = 1, ['['] = 1, ['}'] = 2, [']'] = 2, ['"'] = 3,
};

static const char *payload__container(const char *p, const char *end)
{
    size_t depth = 0;
    while (p < end) {
        unsigned char c = payload_class[(unsigned char)*p];
        if (c == 0) {
            p++;
            continue;
        }
        if (c == 3) {
            p = payload__string(p, end);
            if (p == NULL)
                return NULL;
            continue;
        }
        if (c == 1) {
            depth++;
        } else {
            if (depth == 0)
                return NULL;
            depth--;
            if (depth == 0)
                return p + 1;
        }
        p++;
    }
    return NULL;
}

static const char *payload__scalar(const char *p, const char *end)
{
    const char *start = p;
    while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t' &&
           *p != '\n' && *p != '\r')
        p++;
    return p > start ? p : NULL;
}

static const char *payload__value(const char *p, const char *end)
{
    if (p >= end)
        return NULL;
    if (*p == '"')
        return payload__string(p, end);
    if (*p == '{' || *p == '[')
        return payload__container(p, end);
    return payload__scalar(p, end);
}

/* An integer value, or -1 for null or anything else. */
static int64_t payload__int(const char *p, const char *end)
{
    if (p >= end || *p < '0' || *p > '9')
        return -1;
    int64_t v = 0;
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        if (v > (INT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (*p - '0');
    }
    return p == end ? v : -1;
}

static bool payload__key(const char *k, size_t klen, const char *name)
{
    return klen == strlen(name) && memcmp(k, name, klen) == 0;
}

int discord_payload_scan(const char *json, size_t len, discord_payload_want_fn want, void *data,
                         struct discord_payload *out)
{
    const char *p = json;
    const char *end = json + len;
    bool have_t = false;
    bool have_s = false;
    memset(out, 0, sizeof(*out));
    out->op = -1;
    out->seq = -1;
    p = payload__ws(p, end);
    if (p >= end || *p != '{')
        return HB_EPROTO;
    p = payload__ws(p + 1, end);
    if (p < end && *p == '}')
        return payload__ws(p + 1, end) == end ? 0 : HB_EPROTO;
    for (;;) {
        if (p >= end || *p != '"')
            return HB_EPROTO;
        const char *key = p + 1;
        p = payload__string(p, end);
        if (p == NULL)
            return HB_EPROTO;
        size_t klen = (size_t)(p - 1 - key);
        p = payload__ws(p, end);
        if (p >= end || *p != ':')
            return HB_EPROTO;
        const char *v = payload__ws(p + 1, end);
        p = payload__value(v, end);
        if (p == NULL)
            return HB_EPROTO;
        if (payload__key(key, klen, "op")) {
            int64_t op = payload__int(v, p);
            if (op < 0 || op > 255)
                return HB_EPROTO;
            out->op = (int)op;
        } else if (payload__key(key, klen, "s")) {
            out->seq = payload__int(v, p);
            have_s = true;
        } else if (payload__key(key, klen, "t")) {
            if (*v == '"') {
                out->type = v + 1;
                out->type_len = (size_t)(p - v - 2);
            }
            have_t = true;
        } else if (payload__key(key, klen, "d")) {
            out->d = v;
            out->d_len = (size_t)(p - v);
        }
        if (want != NULL && out->op == 0 && have_t && have_s && out->type != NULL &&
            !want(out->type, out->type_len, data)) {
            out->d = NULL;
            out->d_len = 0;
            out->skipped = true;
            return 0;
        }
        p = payload__ws(p, end);
        if (p < end && *p == ',') {
            p = payload__ws(p + 1, end);
            continue;
        }
        if (p < end && *p == '}')
            break;
        return HB_EPROTO;
    }
    if (payload__ws(p + 1, end) != end || out->op < 0)
        return HB_EPROTO;
    return 0;
}
