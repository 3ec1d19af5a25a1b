#include "base/log.h"

#include "base/error.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define LOG_LINE_MAX 4096
#define LOG_REDACTED "[redacted]"
#define LOG_SECRET_MIN 6

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static enum log_level log_min = LOG_INFO;
static bool log_json;
static FILE *log_out;
static char **log_secrets;
static size_t log_nsecrets;

static const char *const log_level_names[] = {"debug", "info", "warn", "error"};

void log_configure(enum log_level min, bool json, FILE *out)
{
    pthread_mutex_lock(&log_lock);
    log_min = min;
    log_json = json;
    log_out = out;
    pthread_mutex_unlock(&log_lock);
}

int log_level_parse(const char *name, enum log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(name, log_level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    if (strcasecmp(name, "warning") == 0) {
        *out = LOG_WARN;
        return 0;
    }
    return HB_EINVAL;
}

bool log_enabled(enum log_level level)
{
    return level >= log_min;
}

void log_secret_add(const char *secret)
{
    if (secret == NULL || strlen(secret) < LOG_SECRET_MIN)
        return;
    pthread_mutex_lock(&log_lock);
    for (size_t i = 0; i < log_nsecrets; i++) {
        if (strcmp(log_secrets[i], secret) == 0)
            goto out;
    }
    char **grown = realloc(log_secrets, (log_nsecrets + 1) * sizeof(*grown));
    if (grown == NULL)
        goto out;
    log_secrets = grown;
    log_secrets[log_nsecrets] = strdup(secret);
    if (log_secrets[log_nsecrets] != NULL)
        log_nsecrets++;
out:
    pthread_mutex_unlock(&log_lock);
}

static void log__secrets_free(void)
{
    for (size_t i = 0; i < log_nsecrets; i++)
        free(log_secrets[i]);
    free(log_secrets);
    log_secrets = NULL;
    log_nsecrets = 0;
}

void log_secret_clear(void)
{
    pthread_mutex_lock(&log_lock);
    log__secrets_free();
    pthread_mutex_unlock(&log_lock);
}

void log_shutdown(void)
{
    log_secret_clear();
}

/* Replace text[at, at+len) by the redaction marker. Returns the new length. */
static size_t log__splice(char *text, size_t n, size_t cap, size_t at, size_t len)
{
    size_t mlen = strlen(LOG_REDACTED);
    if (n - len + mlen + 1 > cap) {
        /* No room to grow: blank the secret in place instead. */
        memset(text + at, '*', len);
        return n;
    }
    memmove(text + at + mlen, text + at + len, n - at - len + 1);
    memcpy(text + at, LOG_REDACTED, mlen);
    return n - len + mlen;
}

/* Mask the value that follows a case-insensitive marker, up to a delimiter. */
static size_t log__mask_after(char *text, size_t n, size_t cap, const char *marker,
                              const char *stops)
{
    size_t mlen = strlen(marker);
    size_t from = 0;
    while (from + mlen <= n) {
        char *hit = strcasestr(text + from, marker);
        if (hit == NULL)
            break;
        size_t at = (size_t)(hit - text) + mlen;
        size_t len = strcspn(text + at, stops);
        if (len > 0 && strncmp(text + at, LOG_REDACTED, strlen(LOG_REDACTED)) != 0)
            n = log__splice(text, n, cap, at, len);
        from = at + 1;
    }
    return n;
}

/* Telegram puts the token in the URL path: /bot<digits>:<secret>/method.
 * Only that shape is masked, so paths such as /etc/haibot/bot.conf stay
 * readable. */
static size_t log__mask_telegram(char *text, size_t n, size_t cap)
{
    size_t from = 0;
    char *hit;
    while ((hit = strstr(text + from, "/bot")) != NULL) {
        size_t at = (size_t)(hit - text) + 4;
        size_t digits = 0;
        while (isdigit((unsigned char)text[at + digits]))
            digits++;
        if (digits > 0 && text[at + digits] == ':') {
            size_t len = strcspn(text + at, "/ \"?");
            n = log__splice(text, n, cap, at, len);
        }
        from = at;
    }
    return n;
}

/* Discord puts interaction and webhook tokens in the URL path, valid for
 * 15 minutes, enough to post as the bot: /interactions/<id>/<token>/callback
 * and /webhooks/<application id>/<token>[/messages/...]. The segment after a
 * numeric id is masked; routes such as /webhooks/stripe stay readable. */
static size_t log__mask_after_id(char *text, size_t n, size_t cap, const char *marker)
{
    size_t mlen = strlen(marker);
    size_t from = 0;
    char *hit;
    while ((hit = strstr(text + from, marker)) != NULL) {
        size_t at = (size_t)(hit - text) + mlen;
        size_t digits = 0;
        while (isdigit((unsigned char)text[at + digits]))
            digits++;
        if (digits > 0 && text[at + digits] == '/') {
            size_t tok = at + digits + 1;
            size_t len = strcspn(text + tok, "/ \"?\r\n");
            if (len > 0 && strncmp(text + tok, LOG_REDACTED, strlen(LOG_REDACTED)) != 0)
                n = log__splice(text, n, cap, tok, len);
        }
        from = at;
    }
    return n;
}

static size_t log__redact_locked(char *text, size_t cap)
{
    size_t n = strlen(text);
    for (size_t i = 0; i < log_nsecrets; i++) {
        const char *s = log_secrets[i];
        size_t slen = strlen(s);
        char *hit;
        size_t from = 0;
        while ((hit = strstr(text + from, s)) != NULL) {
            size_t at = (size_t)(hit - text);
            n = log__splice(text, n, cap, at, slen);
            from = at + 1;
        }
    }
    /* Patterns catch secrets that were never registered. */
    n = log__mask_after(text, n, cap, "authorization: bearer ", "\r\n\" ,");
    n = log__mask_after(text, n, cap, "authorization: bot ", "\r\n\" ,");
    n = log__mask_after(text, n, cap, "x-api-key: ", "\r\n\" ,");
    n = log__mask_telegram(text, n, cap);
    n = log__mask_after_id(text, n, cap, "/interactions/");
    n = log__mask_after_id(text, n, cap, "/webhooks/");
    return n;
}

size_t log_redact(char *text, size_t cap)
{
    pthread_mutex_lock(&log_lock);
    size_t n = log__redact_locked(text, cap);
    pthread_mutex_unlock(&log_lock);
    return n;
}

/* Is text[i..] the start of a " key=" field boundary? */
static bool log__is_key_at(const char *p)
{
    const char *k = p;
    while (isalnum((unsigned char)*k) || *k == '_' || *k == '.' || *k == '-')
        k++;
    return k > p && *k == '=';
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t log__utf8_len(const unsigned char *s, size_t n)
{
    size_t len = s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 0;
    if (len == 0 || len > n || s[0] >= 0xF5)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    }
    /* No overlong forms, no surrogates, nothing past U+10FFFF. */
    if ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0) ||
        (s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90))
        return 0;
    return len;
}

/* A JSON string: quotes, backslashes and control characters escaped, and
 * bytes that are not UTF-8 replaced by U+FFFD, so every line parses. */
static void log__put_json_string(FILE *out, const char *s, size_t len)
{
    fputc('"', out);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            fprintf(out, "\\%c", c);
        } else if (c == '\n') {
            fputs("\\n", out);
        } else if (c < 0x20 || c == 0x7F) {
            fprintf(out, "\\u%04x", c);
        } else if (c < 0x80) {
            fputc(c, out);
        } else {
            size_t n = log__utf8_len((const unsigned char *)s + i, len - i);
            if (n == 0) {
                fputs("\\ufffd", out);
            } else {
                fwrite(s + i, 1, n, out);
                i += n - 1;
            }
        }
    }
    fputc('"', out);
}

/* A logfmt value: bare when it is plain, else quoted and escaped as a JSON
 * string, so no value can pass for a field boundary or a second line. */
static void log__put_value(FILE *out, const char *v, size_t len)
{
    bool quote = len == 0;
    for (size_t i = 0; i < len && !quote; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == ' ' || c == '"' || c == '=' || c == '\\' || c < 0x20 || c == 0x7F ||
            (c >= 0x80 && log__utf8_len((const unsigned char *)v + i, len - i) == 0))
            quote = true;
    }
    if (quote)
        log__put_json_string(out, v, len);
    else
        fwrite(v, 1, len, out);
}

#define LOG_FIELDS_MAX 32
#define LOG_FMT_MAX 1024

/* Where the fields of a format begin: the key of each " key=" in its
 * literal text (and at its start), never inside a conversion. Fields are
 * found in the format, which the program wrote, not in the formatted line,
 * where a value from outside could hold " key=value" and forge a field. */
static size_t log__fmt_fields(const char *fmt, size_t *starts, size_t max)
{
    size_t n = 0;
    if (log__is_key_at(fmt))
        starts[n++] = 0;
    for (const char *p = fmt; *p != '\0' && n < max;) {
        if (*p == '%') {
            p++;
            if (*p == '%') {
                p++;
                continue;
            }
            while (*p != '\0' && strchr("-+ #0'123456789.*hljztL", *p) != NULL)
                p++;
            if (*p != '\0')
                p++;
            continue;
        }
        if (*p == ' ' && log__is_key_at(p + 1))
            starts[n++] = (size_t)(p + 1 - fmt);
        p++;
    }
    return n;
}

/* Emit one field "key=value" (key and value already split). */
static void log__put_field(FILE *out, const char *key, size_t klen, const char *val, size_t vlen,
                           bool json)
{
    if (json) {
        fputc(',', out);
        log__put_json_string(out, key, klen);
        fputc(':', out);
        log__put_json_string(out, val, vlen);
    } else {
        fputc(' ', out);
        fwrite(key, 1, klen, out);
        fputc('=', out);
        log__put_value(out, val, vlen);
    }
}

/* Emit body[from, to) as a field, redacted. `text` is scratch. */
static void log__put_piece(FILE *out, const char *body, size_t from, size_t to, bool keyed,
                           bool json, char *text, size_t cap)
{
    if (!keyed) {
        while (to > from && body[to - 1] == ' ')
            to--;
        while (from < to && body[from] == ' ')
            from++;
    }
    if (from >= to)
        return;
    size_t n = to - from < cap - 1 ? to - from : cap - 1;
    memcpy(text, body + from, n);
    text[n] = '\0';
    n = log__redact_locked(text, cap);
    const char *eq = keyed ? memchr(text, '=', n) : NULL;
    if (eq == NULL)
        log__put_field(out, "msg", 3, text, n, json); /* free text without a key */
    else
        log__put_field(out, text, (size_t)(eq - text), eq + 1, n - (size_t)(eq - text) - 1, json);
}

void log_write(enum log_level level, const char *event, const char *fmt, ...)
{
    if (level < log_min)
        return;
    char body[LOG_LINE_MAX];
    body[0] = '\0';
    size_t starts[LOG_FIELDS_MAX];
    size_t offs[LOG_FIELDS_MAX]; /* where each field begins in body */
    size_t nf = 0;
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        nf = log__fmt_fields(fmt, starts, LOG_FIELDS_MAX);
        /* A field begins where the format before its key ends: format
         * that prefix alone (extra arguments are ignored) to learn how
         * long it came out. */
        char prefix[LOG_FMT_MAX];
        for (size_t i = 0; i < nf; i++) {
            if (starts[i] >= sizeof(prefix)) {
                nf = i;
                break;
            }
            memcpy(prefix, fmt, starts[i]);
            prefix[starts[i]] = '\0';
            va_list aq;
            va_copy(aq, ap);
#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wformat-nonliteral"
#endif
            int k = vsnprintf(NULL, 0, prefix, aq);
#if defined(__clang__)
#pragma clang diagnostic pop
#endif
            va_end(aq);
            offs[i] = k > 0 ? (size_t)k : 0;
        }
        vsnprintf(body, sizeof(body), fmt, ap);
        va_end(ap);
    }
    size_t blen = strlen(body);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    size_t wlen = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + wlen, sizeof(when) - wlen, ".%03dZ", (int)(ts.tv_nsec / 1000000));

    char text[LOG_LINE_MAX + 64]; /* one field, with room for redaction to grow */
    pthread_mutex_lock(&log_lock);
    FILE *out = log_out != NULL ? log_out : stderr;
    if (log_json) {
        fprintf(out, "{\"ts\":\"%s\",\"level\":\"%s\",\"event\":", when, log_level_names[level]);
        log__put_json_string(out, event, strlen(event));
    } else {
        fprintf(out, "%s %s %s", when, log_level_names[level], event);
    }
    /* Text before the first key, then each field up to the next. */
    size_t first = nf > 0 ? (offs[0] < blen ? offs[0] : blen) : blen;
    log__put_piece(out, body, 0, first, false, log_json, text, sizeof(text));
    for (size_t i = 0; i < nf; i++) {
        size_t from = offs[i] < blen ? offs[i] : blen;
        size_t to = blen;
        if (i + 1 < nf && offs[i + 1] - 1 < blen)
            to = offs[i + 1] - 1; /* the space before the next key is no part of this value */
        if (to < from)
            to = from;
        log__put_piece(out, body, from, to, true, log_json, text, sizeof(text));
    }
    fputs(log_json ? "}\n" : "\n", out);
    fflush(out);
    pthread_mutex_unlock(&log_lock);
}

void log_external(enum log_level level, const char *source, const char *line)
{
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    if (n > LOG_LINE_MAX / 2)
        n = LOG_LINE_MAX / 2;
    log_write(level, source, "msg=%.*s", (int)n, line);
}
