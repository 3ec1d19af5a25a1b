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

/* One member of an object: p is at its key (or at the closing brace of an
 * empty object, with *first set). Returns 1 with the key and raw value and
 * *pp past the member and its comma, 0 at the closing brace (*pp past it),
 * HB_EPROTO when malformed. */
static int payload__member(const char **pp, const char *end, const char **key, size_t *klen,
                           const char **v, const char **vend)
{
    const char *p = *pp;
    if (p < end && *p == '}') {
        *pp = p + 1;
        return 0;
    }
    if (p >= end || *p != '"')
        return HB_EPROTO;
    *key = p + 1;
    p = payload__string(p, end);
    if (p == NULL)
        return HB_EPROTO;
    *klen = (size_t)(p - 1 - *key);
    p = payload__ws(p, end);
    if (p >= end || *p != ':')
        return HB_EPROTO;
    *v = payload__ws(p + 1, end);
    p = payload__value(*v, end);
    if (p == NULL)
        return HB_EPROTO;
    *vend = p;
    p = payload__ws(p, end);
    if (p < end && *p == ',') {
        p = payload__ws(p + 1, end);
        if (p < end && *p == '}')
            return HB_EPROTO; /* a trailing comma */
    } else if (p >= end || *p != '}') {
        return HB_EPROTO;
    }
    *pp = p;
    return 1;
}

/* p at an object's opening brace: past it and any space. NULL if not one. */
static const char *payload__open(const char *p, const char *end)
{
    p = payload__ws(p, end);
    if (p >= end || *p != '{')
        return NULL;
    return payload__ws(p + 1, end);
}

int discord_payload_members(const char *obj, size_t len, const char *const *names, size_t n,
                            struct discord_member *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (struct discord_member){0};
    const char *end = obj + len;
    const char *p = payload__open(obj, end);
    if (p == NULL)
        return HB_EPROTO;
    size_t found = 0;
    while (found < n) {
        const char *key, *val, *vend;
        size_t klen;
        int rc = payload__member(&p, end, &key, &klen, &val, &vend);
        if (rc < 0)
            return rc;
        if (rc == 0)
            break;
        for (size_t i = 0; i < n; i++) {
            if (out[i].v == NULL && payload__key(key, klen, names[i])) {
                out[i].v = val;
                out[i].len = (size_t)(vend - val);
                found++;
                break;
            }
        }
    }
    return (int)found;
}

int discord_payload_member(const char *obj, size_t len, const char *name, const char **v,
                           size_t *vlen)
{
    struct discord_member m;
    int rc = discord_payload_members(obj, len, &name, 1, &m);
    if (rc < 0)
        return rc;
    if (m.v == NULL)
        return HB_ENOTFOUND;
    *v = m.v;
    *vlen = m.len;
    return 0;
}

int discord_payload_scan(const char *json, size_t len, discord_payload_want_fn want, void *data,
                         struct discord_payload *out)
{
    const char *end = json + len;
    bool have_t = false;
    bool have_s = false;
    memset(out, 0, sizeof(*out));
    out->op = -1;
    out->seq = -1;
    const char *p = payload__open(json, end);
    if (p == NULL)
        return HB_EPROTO;
    for (;;) {
        const char *key, *v, *vend;
        size_t klen;
        int rc = payload__member(&p, end, &key, &klen, &v, &vend);
        if (rc < 0)
            return rc;
        if (rc == 0)
            break;
        if (payload__key(key, klen, "op")) {
            int64_t op = payload__int(v, vend);
            if (op < 0 || op > 255)
                return HB_EPROTO;
            out->op = (int)op;
        } else if (payload__key(key, klen, "s")) {
            out->seq = payload__int(v, vend);
            have_s = true;
        } else if (payload__key(key, klen, "t")) {
            if (*v == '"') {
                out->type = v + 1;
                out->type_len = (size_t)(vend - v - 2);
            }
            have_t = true;
        } else if (payload__key(key, klen, "d")) {
            out->d = v;
            out->d_len = (size_t)(vend - v);
        }
        if (want != NULL && out->op == 0 && have_t && have_s && out->type != NULL &&
            !want(out->type, out->type_len, data)) {
            out->d = NULL;
            out->d_len = 0;
            out->skipped = true;
            return 0;
        }
    }
    if (payload__ws(p, end) != end || out->op < 0)
        return HB_EPROTO;
    return 0;
}
