#include "base/text.h"

#include "base/error.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void text_buf_put(struct text_buf *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        size_t cap = (t->cap + n + 1) * 2;
        cap = cap < 256 ? 256 : cap;
        char *grown = realloc(t->buf, cap);
        if (grown == NULL)
            return;
        t->buf = grown;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

void text_buf_add(struct text_buf *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    /* One pass when it fits in what is left, a second after growing. */
    int n = vsnprintf(t->buf != NULL ? t->buf + t->len : NULL, t->buf != NULL ? t->cap - t->len : 0,
                      fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (t->buf != NULL && t->len + (size_t)n < t->cap) {
        t->len += (size_t)n;
        return;
    }
    if (t->len + (size_t)n + 1 > t->cap) {
        size_t cap = (t->cap + (size_t)n + 1) * 2;
        char *grown = realloc(t->buf, cap < 256 ? 256 : cap);
        if (grown == NULL) {
            if (t->buf != NULL)
                t->buf[t->len] = '\0'; /* undo the part the first pass wrote */
            return;
        }
        cap = cap < 256 ? 256 : cap;
        t->buf = grown;
        t->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

void text_buf_trim(struct text_buf *t)
{
    while (t->len > 0 && t->buf[t->len - 1] == '\n')
        t->buf[--t->len] = '\0';
}

const char *text_buf_str(const struct text_buf *t)
{
    return t->buf != NULL ? t->buf : "";
}

size_t text_distance(const char *a, const char *b)
{
    size_t la = strlen(a);
    size_t lb = strlen(b);
    if (la > TEXT_DISTANCE_MAX_LEN || lb > TEXT_DISTANCE_MAX_LEN)
        return SIZE_MAX;
    size_t d[TEXT_DISTANCE_MAX_LEN + 1][TEXT_DISTANCE_MAX_LEN + 1];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            int ca = tolower((unsigned char)a[i - 1]);
            int cb = tolower((unsigned char)b[j - 1]);
            size_t best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + (ca != cb) < best)
                best = d[i - 1][j - 1] + (ca != cb);
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == cb && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

int text_bool_parse(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

int text_pairs_parse(const char *text, struct text_pair *out, size_t max)
{
    size_t n = 0;
    const char *p = text != NULL ? text : "";
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '\0')
            break;
        const char *colon = strchr(p, ':');
        size_t klen = colon != NULL ? (size_t)(colon - p) : 0;
        if (colon == NULL || klen == 0 || klen >= sizeof(out[0].key) || n == max ||
            memchr(p, ',', klen) != NULL || memchr(p, ' ', klen) != NULL)
            return -1;
        char *end = NULL;
        errno = 0;
        long long v = strtoll(colon + 1, &end, 10);
        if (end == colon + 1 || errno != 0 || v <= 0)
            return -1;
        if (*end != '\0' && *end != ',' && *end != ' ' && *end != '\t')
            return -1;
        memcpy(out[n].key, p, klen);
        out[n].key[klen] = '\0';
        out[n].value = v;
        n++;
        p = end;
    }
    return (int)n;
}

static int text__b64_value(char c, bool url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

long text_base64_decode(const char *in, size_t n, unsigned char *out, size_t cap, bool url)
{
    while (n > 0 && in[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = text__b64_value(in[i], url);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == cap)
                return -1;
            out[o++] = (unsigned char)((acc >> bits) & 0xff);
        }
    }
    if ((acc & ((1u << bits) - 1)) != 0)
        return -1;
    return (long)o;
}

size_t text_words_split(char *copy, const char **words, size_t max)
{
    size_t n = 0;
    for (char *save = NULL, *w = copy != NULL ? strtok_r(copy, ",", &save) : NULL;
         w != NULL && n < max; w = strtok_r(NULL, ",", &save)) {
        while (*w == ' ' || *w == '\t')
            w++;
        size_t len = strlen(w);
        while (len > 0 && (w[len - 1] == ' ' || w[len - 1] == '\t'))
            w[--len] = '\0';
        if (len > 0)
            words[n++] = w;
    }
    return n;
}

int text_header_decimal(const char *value, int64_t unit, int64_t max, int64_t *out)
{
    if (value == NULL || unit < 1 || unit > 1000 || max < 0)
        return HB_EINVAL;
    const char *p = value;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p < '0' || *p > '9')
        return HB_EINVAL;
    /* The whole part saturates just above max / unit: any more digits only
     * make it larger, and the answer is HB_EOVERFLOW either way. */
    int64_t whole = 0;
    bool big = false;
    int64_t most = max / unit;
    for (; *p >= '0' && *p <= '9'; p++) {
        int digit = *p - '0';
        if (!big && (most < digit || whole > (most - digit) / 10))
            big = true;
        if (!big)
            whole = whole * 10 + digit;
    }
    /* The fraction in billionths, rounded up past the ninth digit. */
    int64_t nano = 0;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return HB_EINVAL;
        int64_t scale = 100000000;
        bool rest = false;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (scale > 0)
                nano += (*p - '0') * scale;
            else if (*p != '0')
                rest = true;
            scale /= 10;
        }
        if (rest)
            nano++;
    }
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p != '\0')
        return HB_EINVAL;
    if (big)
        return HB_EOVERFLOW;
    /* whole <= max / unit, so whole * unit <= max; the fraction adds at
     * most unit. */
    int64_t v = whole * unit;
    int64_t frac = (nano * unit + 999999999) / 1000000000;
    if (frac > max - v)
        return HB_EOVERFLOW;
    *out = v + frac;
    return 0;
}

bool text_word_next(const char **p, char *buf, size_t cap, size_t *len)
{
    const char *s = *p;
    while (*s != '\0' && (isspace((unsigned char)*s) || *s == ','))
        s++;
    size_t n = 0;
    while (s[n] != '\0' && !isspace((unsigned char)s[n]) && s[n] != ',')
        n++;
    *p = s + n;
    *len = n;
    if (n == 0)
        return false;
    if (cap > 0)
        buf[0] = '\0';
    if (n < cap) {
        memcpy(buf, s, n);
        buf[n] = '\0';
    }
    return true;
}
