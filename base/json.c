/* Writing JSON text from a cJSON tree. See base/json.h. */
#include "base/json.h"

#include "base/error.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool json__reserve(struct json_text *o, size_t n)
{
    if (o->failed)
        return false;
    if (o->len + n + 1 <= o->cap)
        return true;
    size_t cap = o->cap ? o->cap : 256;
    while (cap < o->len + n + 1)
        cap *= 2;
    char *b = realloc(o->buf, cap);
    if (b == NULL) {
        o->failed = true;
        return false;
    }
    o->buf = b;
    o->cap = cap;
    return true;
}

void json_text_put(struct json_text *o, const char *s, size_t n)
{
    if (!json__reserve(o, n))
        return;
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

/* Bytes that JSON strings must escape (and the quote and backslash). */
static const unsigned char json_escape[256] = {
    [0x00] = 1, [0x01] = 1, [0x02] = 1, [0x03] = 1, [0x04] = 1, [0x05] = 1, [0x06] = 1,
    [0x07] = 1, [0x08] = 1, [0x09] = 1, [0x0a] = 1, [0x0b] = 1, [0x0c] = 1, [0x0d] = 1,
    [0x0e] = 1, [0x0f] = 1, [0x10] = 1, [0x11] = 1, [0x12] = 1, [0x13] = 1, [0x14] = 1,
    [0x15] = 1, [0x16] = 1, [0x17] = 1, [0x18] = 1, [0x19] = 1, [0x1a] = 1, [0x1b] = 1,
    [0x1c] = 1, [0x1d] = 1, [0x1e] = 1, [0x1f] = 1, ['"'] = 1,  ['\\'] = 1,
};

void json_text_string(struct json_text *o, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    if (s == NULL) {
        json_text_put(o, "\"\"", 2);
        return;
    }
    /* Measured first, room made once, then written in place: a
     * conversation's turns are most of a request body. */
    size_t n = 0, extra = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++, n++) {
        if (json_escape[*p])
            extra += *p == '"' || *p == '\\' || *p == '\b' || *p == '\f' || *p == '\n' ||
                             *p == '\r' || *p == '\t'
                         ? 1
                         : 5;
    }
    if (!json__reserve(o, n + extra + 2)) {
        o->failed = true;
        return;
    }
    char *out = o->buf + o->len;
    *out++ = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        unsigned char ch = *p;
        if (!json_escape[ch]) {
            *out++ = (char)ch;
            continue;
        }
        *out++ = '\\';
        switch (ch) {
        case '"':
            *out++ = '"';
            break;
        case '\\':
            *out++ = '\\';
            break;
        case '\b':
            *out++ = 'b';
            break;
        case '\f':
            *out++ = 'f';
            break;
        case '\n':
            *out++ = 'n';
            break;
        case '\r':
            *out++ = 'r';
            break;
        case '\t':
            *out++ = 't';
            break;
        default:
            *out++ = 'u';
            *out++ = '0';
            *out++ = '0';
            *out++ = hex[ch >> 4];
            *out++ = hex[ch & 15];
        }
    }
    *out++ = '"';
    o->len = (size_t)(out - o->buf);
}

static void json__number(struct json_text *o, double d)
{
    char tmp[32];
    size_t n;
    if (isnan(d) || isinf(d)) {
        json_text_put(o, "null", 4);
        return;
    }
    /* Whole numbers up to 2^53 are exact in a double: integer digits. */
    if (d == floor(d) && fabs(d) <= 9007199254740992.0) {
        int64_t v = (int64_t)d;
        uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
        char *e = tmp + sizeof(tmp);
        char *p = e;
        do {
            *--p = (char)('0' + u % 10);
            u /= 10;
        } while (u != 0);
        if (v < 0)
            *--p = '-';
        json_text_put(o, p, (size_t)(e - p));
        return;
    }
    int k = snprintf(tmp, sizeof(tmp), "%.15g", d);
    if (k < 0 || strtod(tmp, NULL) != d)
        k = snprintf(tmp, sizeof(tmp), "%.17g", d);
    n = k > 0 ? (size_t)k : 0;
    json_text_put(o, tmp, n);
}

static void json__value(struct json_text *o, const cJSON *item, int depth)
{
    if (depth > CJSON_NESTING_LIMIT) {
        o->failed = true;
        return;
    }
    switch (item->type & 0xFF) {
    case cJSON_NULL:
        json_text_put(o, "null", 4);
        break;
    case cJSON_False:
        json_text_put(o, "false", 5);
        break;
    case cJSON_True:
        json_text_put(o, "true", 4);
        break;
    case cJSON_Number:
        json__number(o, item->valuedouble);
        break;
    case cJSON_String:
        json_text_string(o, item->valuestring);
        break;
    case cJSON_Raw:
        if (item->valuestring == NULL)
            o->failed = true;
        else
            json_text_put(o, item->valuestring, strlen(item->valuestring));
        break;
    case cJSON_Array:
    case cJSON_Object: {
        bool obj = (item->type & 0xFF) == cJSON_Object;
        json_text_put(o, obj ? "{" : "[", 1);
        for (const cJSON *c = item->child; c != NULL && !o->failed; c = c->next) {
            if (c != item->child)
                json_text_put(o, ",", 1);
            if (obj) {
                json_text_string(o, c->string);
                json_text_put(o, ":", 1);
            }
            json__value(o, c, depth + 1);
        }
        json_text_put(o, obj ? "}" : "]", 1);
        break;
    }
    default:
        o->failed = true;
    }
}

void json_text_value(struct json_text *o, const cJSON *item)
{
    if (item == NULL)
        o->failed = true;
    else
        json__value(o, item, 0);
}

char *json_text_finish(struct json_text *o, size_t *len)
{
    if (o->failed || !json__reserve(o, 0)) {
        free(o->buf);
        *o = (struct json_text){0};
        return NULL;
    }
    o->buf[o->len] = '\0';
    if (len != NULL)
        *len = o->len;
    char *out = o->buf;
    *o = (struct json_text){0};
    return out;
}

char *json_print(const cJSON *item, size_t *len)
{
    if (item == NULL)
        return NULL;
    struct json_text o = {0};
    json__value(&o, item, 0);
    return json_text_finish(&o, len);
}

int json_int64_get(const cJSON *item, int64_t lo, int64_t hi, int64_t *out)
{
    if (!cJSON_IsNumber(item))
        return HB_EINVAL;
    double d = item->valuedouble;
    if (isnan(d))
        return HB_EINVAL;
    /* -2^63 and 2^63 are exact doubles; INT64_MAX is not (it rounds up to
     * 2^63), so the upper bound is exclusive. */
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
        return HB_EOVERFLOW;
    if (d != floor(d))
        return HB_EINVAL;
    int64_t v = (int64_t)d;
    if (v < lo || v > hi)
        return HB_EOVERFLOW;
    *out = v;
    return 0;
}
