/* Framing of HTTP/1.1 responses, as the pipelined client reads them off a
 * connection (net/http_pipe.c): where a response's head ends, what it says
 * about the body, and a chunked body decoded. Pure functions over bytes, so
 * they are tested (and fuzzed) alone. */
#ifndef HB_HTTP_RESPONSE_H
#define HB_HTTP_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>

/** What a response head says. */
struct http_response_head {
    int status;      /* 100-599 */
    size_t head_len; /* bytes of the head, its blank line included */
    bool has_length; /* Content-Length was given */
    size_t length;   /* ... and its value */
    bool chunked;    /* Transfer-Encoding names chunked */
    bool close;      /* the server closes after this response */
};

/** Parse a response head at buf (len bytes available). Returns 1 (parsed
 *  into *h), 0 (incomplete: read more), or HB_EPROTO (malformed, a status
 *  outside 100-599, or no head end within max_head bytes). */
int http_response_head_parse(const char *buf, size_t len, size_t max_head,
                             struct http_response_head *h);

/** Decode a chunked body at buf (len bytes available) into out (NULL:
 *  only measure; out may be buf itself: data only moves to the front).
 *  *out_len gets the decoded size. Returns the bytes consumed, trailers
 *  included; 0 when incomplete; HB_EOVERFLOW past max decoded bytes;
 *  HB_EPROTO when malformed. */
long http_response_chunked(const char *buf, size_t len, char *out, size_t *out_len, size_t max);

#endif
