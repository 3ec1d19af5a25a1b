/* Raw JSON scanning without a tree. See base/json_scan.h. */
#include "base/json_scan.h"

#include "base/error.h"

#include <stdbool.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
/* Where the machine has SSE2 (every x86-64), a container is skipped 64
 * bytes at a time: one pass finds every quote and bracket of the block,
 * and only those are looked at. A GUILD_CREATE is tens of kilobytes of
 * short strings, and this skip was most of the time spent taking one in. */
#define JSON_SCAN_SIMD 1
#endif

const char *json_scan_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* p is at an opening quote; returns the byte after the closing one. A quote
 * ends the string when an even number of backslashes precede it. */
static const char *json_scan__string(const char *p, const char *end)
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
static const unsigned char json_scan_class[256] = {
    ['{'] = 1, ['['] = 1, ['}'] = 2, [']'] = 2, ['"'] = 3,
};

/* Where a container skip stands between bytes. */
struct json_scan_skip {
    size_t depth;
    bool in_string;
    bool escaped; /* in a string, right after a backslash */
};

/* One byte of a container. Returns 1 when it closed the outermost
 * bracket, -1 when it closed one never opened, else 0. */
static int json_scan__skip_byte(struct json_scan_skip *st, unsigned char ch)
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
    switch (json_scan_class[ch]) {
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

#ifdef JSON_SCAN_SIMD
/* The bytes of a 16-byte block equal to c, as bits. */
static uint64_t json_scan__eq16(__m128i v, char c)
{
    return (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(c)));
}
#endif

/* p at an opening bracket: returns the byte after its closing one, or NULL
 * when the container does not end inside [p, end) or closes what it never
 * opened. */
static const char *json_scan__container(const char *p, const char *end)
{
    struct json_scan_skip st = {0};
#ifdef JSON_SCAN_SIMD
    while (end - p >= 64) {
        uint64_t quote = 0, open = 0, close = 0, backslash = 0;
        for (int k = 0; k < 4; k++) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k));
            /* '[' and ']' are '{' and '}' without the 0x20 bit, and no
             * other byte becomes either with it set. */
            __m128i f = _mm_or_si128(v, _mm_set1_epi8(0x20));
            quote |= json_scan__eq16(v, '"') << (16 * k);
            open |= json_scan__eq16(f, '{') << (16 * k);
            close |= json_scan__eq16(f, '}') << (16 * k);
            backslash |= json_scan__eq16(v, '\\') << (16 * k);
        }
        if (backslash != 0 || st.escaped) {
            /* Escapes: this block a byte at a time. */
            for (int i = 0; i < 64; i++) {
                int r = json_scan__skip_byte(&st, (unsigned char)p[i]);
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
        int r = json_scan__skip_byte(&st, (unsigned char)*p);
        if (r != 0)
            return r > 0 ? p + 1 : NULL;
    }
    return NULL;
}

static const char *json_scan__scalar(const char *p, const char *end)
{
    const char *start = p;
    while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t' &&
           *p != '\n' && *p != '\r')
        p++;
    return p > start ? p : NULL;
}

static const char *json_scan__value(const char *p, const char *end)
{
    if (p >= end)
        return NULL;
    if (*p == '"')
        return json_scan__string(p, end);
    if (*p == '{' || *p == '[')
        return json_scan__container(p, end);
    return json_scan__scalar(p, end);
}

int64_t json_scan_int(const char *p, const char *end)
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

bool json_scan_key(const char *k, size_t klen, const char *name)
{
    return klen == strlen(name) && memcmp(k, name, klen) == 0;
}

int json_scan_next(const char **pp, const char *end, const char **key, size_t *klen, const char **v,
                   const char **vend)
{
    const char *p = *pp;
    if (p < end && *p == '}') {
        *pp = p + 1;
        return 0;
    }
    if (p >= end || *p != '"')
        return HB_EPROTO;
    *key = p + 1;
    p = json_scan__string(p, end);
    if (p == NULL)
        return HB_EPROTO;
    *klen = (size_t)(p - 1 - *key);
    p = json_scan_ws(p, end);
    if (p >= end || *p != ':')
        return HB_EPROTO;
    *v = json_scan_ws(p + 1, end);
    p = json_scan__value(*v, end);
    if (p == NULL)
        return HB_EPROTO;
    *vend = p;
    p = json_scan_ws(p, end);
    if (p < end && *p == ',') {
        p = json_scan_ws(p + 1, end);
        if (p < end && *p == '}')
            return HB_EPROTO; /* a trailing comma */
    } else if (p >= end || *p != '}') {
        return HB_EPROTO;
    }
    *pp = p;
    return 1;
}

const char *json_scan_open(const char *p, const char *end)
{
    p = json_scan_ws(p, end);
    if (p >= end || *p != '{')
        return NULL;
    return json_scan_ws(p + 1, end);
}

int json_scan_members(const char *obj, size_t len, const char *const *names, size_t n,
                      struct json_member *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (struct json_member){0};
    const char *end = obj + len;
    const char *p = json_scan_open(obj, end);
    if (p == NULL)
        return HB_EPROTO;
    size_t found = 0;
    while (found < n) {
        const char *key, *val, *vend;
        size_t klen;
        int rc = json_scan_next(&p, end, &key, &klen, &val, &vend);
        if (rc < 0)
            return rc;
        if (rc == 0)
            break;
        for (size_t i = 0; i < n; i++) {
            if (out[i].v == NULL && json_scan_key(key, klen, names[i])) {
                out[i].v = val;
                out[i].len = (size_t)(vend - val);
                found++;
                break;
            }
        }
    }
    return (int)found;
}

int json_scan_member(const char *obj, size_t len, const char *name, const char **v, size_t *vlen)
{
    struct json_member m;
    int rc = json_scan_members(obj, len, &name, 1, &m);
    if (rc < 0)
        return rc;
    if (m.v == NULL)
        return HB_ENOTFOUND;
    *v = m.v;
    *vlen = m.len;
    return 0;
}

int json_scan_only(const char *arr, size_t len, const char **v, size_t *vlen)
{
    const char *end = arr + len;
    const char *p = json_scan_ws(arr, end);
    if (p >= end || *p != '[')
        return HB_EPROTO;
    p = json_scan_ws(p + 1, end);
    if (p < end && *p == ']')
        return json_scan_ws(p + 1, end) == end ? HB_ENOTFOUND : HB_EPROTO;
    const char *vend = json_scan__value(p, end);
    if (vend == NULL)
        return HB_EPROTO;
    const char *q = json_scan_ws(vend, end);
    if (q >= end || *q != ']' || json_scan_ws(q + 1, end) != end)
        return HB_EPROTO; /* malformed, or more than one element */
    *v = p;
    *vlen = (size_t)(vend - p);
    return 0;
}

int json_scan_hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v << 4 | d;
    }
    return v;
}

/* The code point of the \u escape at p (p[0] is the backslash, p[1] 'u'),
 * a surrogate pair joined: its length in *n. -1 for anything else. */
static long json_scan__unicode(const char *p, const char *end, size_t *n)
{
    if (end - p < 6)
        return -1;
    int hi = json_scan_hex4(p + 2);
    if (hi < 0 || (hi >= 0xDC00 && hi <= 0xDFFF))
        return -1;
    *n = 6;
    if (hi < 0xD800 || hi > 0xDBFF)
        return hi;
    if (end - p < 12 || p[6] != '\\' || p[7] != 'u')
        return -1;
    int lo = json_scan_hex4(p + 8);
    if (lo < 0xDC00 || lo > 0xDFFF)
        return -1;
    *n = 12;
    return 0x10000L + ((long)(hi - 0xD800) << 10) + (lo - 0xDC00);
}

static size_t json_scan__utf8(long cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

int json_scan_string(const char *v, size_t len, char *out, size_t *outlen)
{
    if (len < 2 || v[0] != '"' || v[len - 1] != '"')
        return HB_EPROTO;
    const char *p = v + 1, *end = v + len - 1;
    size_t n = 0;
    while (p < end) {
        /* A run of plain bytes, copied at once. */
        const char *run = p;
        while (p < end && (unsigned char)*p >= 0x20 && *p != '"' && *p != '\\')
            p++;
        if (p > run) {
            if (out != NULL)
                memcpy(out + n, run, (size_t)(p - run));
            n += (size_t)(p - run);
            continue;
        }
        if (*p != '\\')
            return HB_EPROTO; /* a control character, or a quote */
        if (end - p < 2)
            return HB_EPROTO;
        static const char plain[] = "\"\\/bfnrt";
        static const char meant[] = "\"\\/\b\f\n\r\t";
        const char *k = p[1] != '\0' ? strchr(plain, p[1]) : NULL;
        if (k != NULL) {
            if (out != NULL)
                out[n] = meant[k - plain];
            n++;
            p += 2;
            continue;
        }
        size_t used = 0;
        long cp = p[1] == 'u' ? json_scan__unicode(p, end, &used) : -1;
        if (cp <= 0)
            return HB_EPROTO; /* a bad escape, a lone surrogate, or U+0000 */
        char utf8[4];
        size_t m = json_scan__utf8(cp, utf8);
        if (out != NULL)
            memcpy(out + n, utf8, m);
        n += m;
        p += used;
    }
    if (out != NULL)
        out[n] = '\0';
    if (outlen != NULL)
        *outlen = n;
    return 0;
}

bool json_scan_literal(const char *v, size_t len)
{
    const char *p = v, *end = v + len;
    if ((len == 4 && (memcmp(v, "true", 4) == 0 || memcmp(v, "null", 4) == 0)) ||
        (len == 5 && memcmp(v, "false", 5) == 0))
        return true;
    /* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
    if (p < end && *p == '-')
        p++;
    if (p >= end || *p < '0' || *p > '9')
        return false;
    if (*p == '0')
        p++;
    else
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    if (p < end && *p == '.') {
        const char *d = ++p;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        if (p == d)
            return false;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        const char *d = p;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        if (p == d)
            return false;
    }
    return p == end;
}

#define JSON_SCAN_DEPTH_MAX 64

static bool json_scan__valid(const char *v, const char *end, int depth)
{
    if (v >= end)
        return false;
    if (*v == '"')
        return json_scan_string(v, (size_t)(end - v), NULL, NULL) == 0;
    if (*v != '{' && *v != '[')
        return json_scan_literal(v, (size_t)(end - v));
    if (depth >= JSON_SCAN_DEPTH_MAX)
        return false;
    if (*v == '{') {
        const char *p = json_scan_open(v, end), *key, *x, *xend;
        size_t klen;
        int rc = HB_EPROTO;
        while (p != NULL && (rc = json_scan_next(&p, end, &key, &klen, &x, &xend)) == 1) {
            if (json_scan_string(key - 1, klen + 2, NULL, NULL) != 0 ||
                !json_scan__valid(x, xend, depth + 1))
                return false;
        }
        return p != NULL && rc == 0 && p == end;
    }
    const char *p = json_scan_ws(v + 1, end);
    if (p < end && *p == ']')
        return p + 1 == end;
    for (;;) {
        const char *xend = json_scan__value(p, end);
        if (xend == NULL || !json_scan__valid(p, xend, depth + 1))
            return false;
        p = json_scan_ws(xend, end);
        if (p < end && *p == ']')
            return p + 1 == end;
        if (p >= end || *p != ',')
            return false;
        p = json_scan_ws(p + 1, end);
    }
}

bool json_scan_valid(const char *v, size_t len)
{
    return json_scan__valid(v, v + len, 0);
}
