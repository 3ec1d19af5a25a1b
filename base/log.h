/* Structured logging: one line per event.
 *
 * A line is a timestamp, a level, an event name and key=value fields:
 *
 *     2026-11-24T08:00:00.123Z info config.reload ok=1 changed=3
 *
 * or, with JSON output, one JSON object per line with the same fields.
 * Callers pass the fields as a printf format of space-separated key=value
 * pairs ("shard=%d url=%s"); a value may contain spaces, the logger finds
 * the next " key=" boundary and quotes the value as needed.
 *
 * Every line passes through redaction before it is written: secret values
 * registered with log_secret_add() are replaced wherever they appear, and
 * Authorization/x-api-key header values and Telegram-style /bot<token>/ URL
 * parts are masked by pattern. The same redaction is available to any text
 * that leaves the process (error replies) through log_redact(). */
#ifndef HB_LOG_H
#define HB_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

/** Set the minimum level, the output format and the stream (borrowed; NULL
 *  means stderr). Safe to call again at any time (config reload). */
void log_configure(enum log_level min, bool json, FILE *out);

/** Parse "debug", "info", "warn" or "error". Returns 0, or HB_EINVAL. */
int log_level_parse(const char *name, enum log_level *out);

/** True when a line at this level would be written. */
bool log_enabled(enum log_level level);

/** Write one event line. fmt describes key=value fields and may be NULL. */
void log_write(enum log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(...) log_write(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_write(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_write(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)

/** Log one line written by a library (libwebsockets, ...) as event
 *  `source` with the text in msg=, trailing newlines removed. */
void log_external(enum log_level level, const char *source, const char *line);

/** Register a secret (token, API key, webhook secret) that must never appear
 *  in a log line. The string is copied. Secrets shorter than 6 bytes are
 *  ignored (they would mask ordinary words). Thread-safe. */
void log_secret_add(const char *secret);

/** Forget every registered secret (config reload re-adds the current ones). */
void log_secret_clear(void);

/** Redact text in place: registered secrets and secret-looking patterns are
 *  replaced by "[redacted]" (the text can only shrink or stay the same size
 *  unless cap allows growth; the result is always NUL-terminated within
 *  cap). Returns the new length. Thread-safe. */
size_t log_redact(char *text, size_t cap);

/** Free the logger's memory (registered secrets). For clean exits. */
void log_shutdown(void);

#endif
