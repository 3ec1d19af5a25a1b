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

static void log__put_json_string(FILE *out, const char *s, size_t len)
{
    fputc('"', out);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", out);
        else if (c < 0x20)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

static void log__put_value(FILE *out, const char *v, size_t len)
{
    bool quote = len == 0;
    for (size_t i = 0; i < len && !quote; i++) {
        if (v[i] == ' ' || v[i] == '"' || v[i] == '=' || (unsigned char)v[i] < 0x20)
            quote = true;
    }
    if (quote)
        log__put_json_string(out, v, len);
    else
        fwrite(v, 1, len, out);
}

/* Emit the fields of `body`: "k=v k2=v two" -> logfmt or JSON members. */
static void log__put_fields(FILE *out, const char *body, bool json)
{
    const char *p = body;
    while (*p == ' ')
        p++;
    while (*p != '\0') {
        const char *eq = strchr(p, '=');
        if (eq == NULL || !log__is_key_at(p)) {
            /* Free text without a key: keep it under "msg". */
            if (json) {
                fputs(",\"msg\":", out);
                log__put_json_string(out, p, strlen(p));
            } else {
                fputs(" msg=", out);
                log__put_value(out, p, strlen(p));
            }
            return;
        }
        const char *val = eq + 1;
        const char *end = val;
        while (*end != '\0' && !(*end == ' ' && log__is_key_at(end + 1)))
            end++;
        if (json) {
            fputc(',', out);
            log__put_json_string(out, p, (size_t)(eq - p));
            fputc(':', out);
            log__put_json_string(out, val, (size_t)(end - val));
        } else {
            fputc(' ', out);
            fwrite(p, 1, (size_t)(eq - p + 1), out);
            log__put_value(out, val, (size_t)(end - val));
        }
        p = end;
        while (*p == ' ')
            p++;
    }
}

void log_write(enum log_level level, const char *event, const char *fmt, ...)
{
    if (level < log_min)
        return;
    char body[LOG_LINE_MAX];
    body[0] = '\0';
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(body, sizeof(body), fmt, ap);
        va_end(ap);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    size_t wlen = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + wlen, sizeof(when) - wlen, ".%03dZ", (int)(ts.tv_nsec / 1000000));

    pthread_mutex_lock(&log_lock);
    log__redact_locked(body, sizeof(body));
    FILE *out = log_out != NULL ? log_out : stderr;
    if (log_json) {
        fprintf(out, "{\"ts\":\"%s\",\"level\":\"%s\",\"event\":", when, log_level_names[level]);
        log__put_json_string(out, event, strlen(event));
        log__put_fields(out, body, true);
        fputs("}\n", out);
    } else {
        fprintf(out, "%s %s %s", when, log_level_names[level], event);
        log__put_fields(out, body, false);
        fputc('\n', out);
    }
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
