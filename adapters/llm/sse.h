/* A streaming parser for text/event-stream (the WHATWG "server-sent
 * events" rules).
 *
 * Bytes are fed in chunks split anywhere: inside a field, inside a CRLF,
 * inside a multi-byte character. Each complete event is handed to a
 * callback with its type, its data and the last event id. Lines end with
 * CR, LF or CRLF; a UTF-8 byte order mark at the very start is skipped;
 * lines starting with ':' are comments; a field without a colon has an
 * empty value; one space after the colon is removed; data lines are joined
 * with "\n"; an event with no data line is not dispatched.
 *
 * Bytes are passed through as they are: invalid UTF-8 is not replaced (the
 * decoders above parse JSON, which rejects it themselves).
 *
 * Memory is bounded: the pending line plus the pending event data may not
 * exceed max_event bytes, else feeding fails with HB_EOVERFLOW instead of
 * growing without end. */
#ifndef HB_SSE_H
#define HB_SSE_H

#include <stdbool.h>
#include <stddef.h>

#define SSE_EVENT_MAX_DEFAULT (1024 * 1024) /* bytes of line + data per event */

/** One dispatched event. Everything is borrowed from the parser and valid
 *  only during the callback. Strings are NUL-terminated. */
struct sse_event {
    const char *type; /* the "event" field, or "message" when none was given */
    const char *data; /* data lines joined with "\n", without a trailing "\n" */
    size_t data_len;  /* bytes in data (data may contain NUL bytes) */
    const char *id;   /* the last event id seen on this stream, "" when none */
};

/** Called once per dispatched event. Return 0 to go on; any other value
 *  stops the parser, and sse_parser_feed() returns that value. */
typedef int (*sse_event_cb)(const struct sse_event *ev, void *data);

struct sse_parser;

/** Create a parser. max_event bounds the pending line plus pending data in
 *  bytes (0 means SSE_EVENT_MAX_DEFAULT). cb is called for every event with
 *  `data` (borrowed, may be NULL). Returns NULL when out of memory. */
struct sse_parser *sse_parser_new(size_t max_event, sse_event_cb cb, void *data);

/** Free the parser (NULL is allowed). */
void sse_parser_free(struct sse_parser *p);

/** Feed len bytes (borrowed). Calls the callback for every event completed
 *  by these bytes. Returns 0; HB_EOVERFLOW when an event grows past
 *  max_event; HB_ENOMEM; or the callback's non-zero return. Any failure is
 *  sticky: later calls return the same code without parsing. */
int sse_parser_feed(struct sse_parser *p, const char *buf, size_t len);

/** Mark the end of the stream. Per the rules, an event without its final
 *  blank line is discarded, not dispatched; *truncated (may be NULL) tells
 *  whether such a partial event or partial line was left, so the caller can
 *  tell a cut stream from a complete one. Returns 0, or the sticky error
 *  of an earlier feed. After finish the parser is reset for a new stream
 *  (the last event id and retry value are kept, as on a reconnection). */
int sse_parser_finish(struct sse_parser *p, bool *truncated);

/** The last "retry" field value in milliseconds, or -1 when none came. */
long sse_parser_retry_ms(const struct sse_parser *p);

#endif
