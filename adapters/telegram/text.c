/* Small pure helpers of the Telegram adapter: setting lists, text splitting
 * by Telegram's measure, and tolerant JSON field access. */
#include "adapters/telegram/telegram_internal.h"

#include "base/error.h"
#include "base/json.h"
#include "base/log.h"
#include "base/text.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *text__skip(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == ',')
        p++;
    return p;
}

static int text__int(const char **p, int64_t *out)
{
    errno = 0;
    char *end = NULL;
    long long v = strtoll(*p, &end, 10);
    if (end == *p || errno != 0)
        return HB_EINVAL;
    *out = v;
    *p = end;
    return 0;
}

int telegram_ids_parse(const char *text, int64_t *ids, size_t cap)
{
    size_t n = 0;
    const char *p = text != NULL ? text : "";
    for (p = text__skip(p); *p != '\0'; p = text__skip(p)) {
        int64_t v;
        if (text__int(&p, &v) < 0 || v <= 0 || n >= cap)
            return HB_EINVAL;
        if (*p != '\0' && *p != ',' && *p != ' ' && *p != '\t')
            return HB_EINVAL;
        ids[n++] = v;
    }
    return (int)n;
}

int telegram_packages_parse(const char *text, struct telegram_package *out, size_t cap)
{
    struct text_pair pairs[64];
    int n = text_pairs_parse(text, pairs, cap < 64 ? cap : 64);
    for (int i = 0; i < n; i++) {
        char *end = NULL;
        long long stars = strtoll(pairs[i].key, &end, 10);
        if (*end != '\0' || stars < 1 || stars > 100000 || pairs[i].value > 1000000000000LL)
            return HB_EINVAL;
        out[i].stars = stars;
        out[i].credits = pairs[i].value;
    }
    return n < 0 ? HB_EINVAL : n;
}

/* Length in bytes of the UTF-8 sequence starting with byte c (1 for a
 * stray continuation byte, so a broken text still advances). */
static size_t text__seq_len(unsigned char c)
{
    if (c >= 0xF0)
        return 4;
    if (c >= 0xE0)
        return 3;
    if (c >= 0xC0)
        return 2;
    return 1;
}

size_t telegram_text_cut(const char *text, size_t len, size_t max)
{
    size_t units = 0, off = 0;
    size_t last_nl = 0, last_space = 0;
    while (off < len) {
        size_t n = text__seq_len((unsigned char)text[off]);
        if (off + n > len)
            n = len - off;
        size_t u = n == 4 ? 2 : 1; /* outside the BMP: a surrogate pair */
        if (units + u > max)
            break;
        units += u;
        if (text[off] == '\n')
            last_nl = off + 1;
        else if (text[off] == ' ')
            last_space = off + 1;
        off += n;
    }
    if (off >= len)
        return len;
    /* Prefer a line break in the last quarter, then a space. */
    if (last_nl > 0 && last_nl >= off / 2)
        return last_nl;
    if (last_space > 0 && last_space >= off - off / 4)
        return last_space;
    return off;
}

int64_t tg_json_int(const cJSON *obj, const char *name, int64_t def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!cJSON_IsNumber(v))
        return def;
    /* Telegram's ids fit in 52 bits; anything past 2^53 is not one. */
    int64_t n = def;
    if (json_int64_get(v, -JSON_INT_EXACT, JSON_INT_EXACT, &n) != 0) {
        log_warn("telegram.number_refused", "field=%s problem=not a whole number in range", name);
        return def;
    }
    return n;
}

const char *tg_json_str(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}
