#include "adapters/discord/payload.h"

#include "base/error.h"

#include <stdbool.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
/* Where the machine has SSE2 (every x86-64), a container is skipped 64
 * bytes at a time: one pass finds every quote and bracket of the block,
 * and only those are looked at. A GUILD_CREATE is tens of kilobytes of
 * short strings, and this skip was most of the time spent taking one in. */
#define PAYLOAD_SIMD 1
#endif

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

/* Where a container skip stands between bytes. */
struct payload_skip {
    size_t depth;
    bool in_string;
    bool escaped; /* in a string, right after a backslash */
};

/* One byte of a container. Returns 1 when it closed the outermost
 * bracket, -1 when it closed one never opened, else 0. */
static int payload__skip_byte(struct payload_skip *st, unsigned char ch)
{
    if (st->in_string) {
        if (st->escaped)
            st->escaped = false;
        else if (ch == '\\')
            st->escaped = true;
        else if (ch == '"')
            st->in_string = false;
        return 0;
    }
    switch (payload_class[ch]) {
    case 1:
        st->depth++;
        return 0;
    case 2:
        if (st->depth == 0)
            return -1;
        return --st->depth == 0 ? 1 : 0;
    case 3:
        st->in_string = true;
        return 0;
    default:
        return 0;
    }
}

#ifdef PAYLOAD_SIMD
/* The bytes of a 16-byte block equal to c, as bits. */
static uint64_t payload__eq16(__m128i v, char c)
{
    return (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(c)));
}
#endif

/* p at an opening bracket: returns the byte after its closing one, or NULL
 * when the container does not end inside [p, end) or closes what it never
 * opened. */
static const char *payload__container(const char *p, const char *end)
{
    struct payload_skip st = {0};
#ifdef PAYLOAD_SIMD
    while (end - p >= 64) {
        uint64_t quote = 0, open = 0, close = 0, backslash = 0;
        for (int k = 0; k < 4; k++) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k));
            /* '[' and ']' are '{' and '}' without the 0x20 bit, and no
             * other byte becomes either with it set. */
            __m128i f = _mm_or_si128(v, _mm_set1_epi8(0x20));
            quote |= payload__eq16(v, '"') << (16 * k);
            open |= payload__eq16(f, '{') << (16 * k);
            close |= payload__eq16(f, '}') << (16 * k);
            backslash |= payload__eq16(v, '\\') << (16 * k);
        }
        if (backslash != 0 || st.escaped) {
            /* Escapes: this block a byte at a time. */
            for (int i = 0; i < 64; i++) {
                int r = payload__skip_byte(&st, (unsigned char)p[i]);
                if (r != 0)
                    return r > 0 ? p + i + 1 : NULL;
            }
            p += 64;
            continue;
        }
        for (uint64_t all = quote | open | close; all != 0; all &= all - 1) {
            int i = __builtin_ctzll(all);
            uint64_t bit = (uint64_t)1 << i;
            if (quote & bit) {
                st.in_string = !st.in_string;
            } else if (!st.in_string) {
                if (open & bit) {
                    st.depth++;
                } else {
                    if (st.depth == 0)
                        return NULL;
                    if (--st.depth == 0)
                        return p + i + 1;
                }
            }
        }
        p += 64;
    }
#endif
    for (; p < end; p++) {
        int r = payload__skip_byte(&st, (unsigned char)*p);
        if (r != 0)
            return r > 0 ? p + 1 : NULL;
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
