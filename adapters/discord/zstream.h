/* Discord's zlib-stream transport compression.
 *
 * With `compress=zlib-stream` the gateway sends one zlib stream per
 * connection, split over binary websocket messages; a gateway payload is
 * complete when a websocket message ends with the flush marker 00 00 ff ff.
 * One inflate context lives as long as the connection (the dictionary
 * carries over between payloads), so a new connection needs a fresh one. */
#ifndef HB_DISCORD_ZSTREAM_H
#define HB_DISCORD_ZSTREAM_H

#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

struct discord_zstream {
    z_stream z;
    char *out; /* inflated bytes of the payload being assembled */
    size_t out_len;
    size_t out_cap;
    size_t max_payload; /* a payload larger than this is refused */
    uint8_t tail[4];    /* the last four bytes fed, to spot the marker across frames */
    size_t tail_len;
    int ready;      /* z was initialised */
    int header;     /* bytes of the stream's two-byte zlib header read so far */
    uint8_t cmf;    /* its first byte, once read */
    int discarding; /* the payload being inflated is too large: dropped at its end */
};

/** Prepare a context for a new connection. max_payload bounds one inflated
 *  payload (Discord's gateway payloads stay well under 16 MiB). Returns 0 or
 *  HB_ENOMEM. */
int discord_zstream_init(struct discord_zstream *zs, size_t max_payload);

/** Release the context. */
void discord_zstream_free(struct discord_zstream *zs);

/** Feed one whole websocket message. Returns 1 when it completed a
 *  payload: *payload and *len point at the inflated JSON (NUL-terminated,
 *  valid until the next call); 0 when more is needed; HB_EOVERFLOW when it
 *  completed a payload larger than max_payload, which was dropped (the
 *  stream stays usable); HB_EPROTO for a corrupt stream (the connection
 *  must be dropped: the stream cannot be resynchronised). */
int discord_zstream_feed(struct discord_zstream *zs, const void *data, size_t len,
                         const char **payload, size_t *plen);

/** Feed part of a websocket message; message_end says whether this part
 *  ends the message. The flush marker only counts at the end of a message:
 *  compressed bytes inside a message may happen to read 00 00 ff ff at a
 *  read boundary. Returns as discord_zstream_feed (never 1 when
 *  message_end is 0). */
int discord_zstream_feed_part(struct discord_zstream *zs, const void *data, size_t len,
                              int message_end, const char **payload, size_t *plen);

#endif
