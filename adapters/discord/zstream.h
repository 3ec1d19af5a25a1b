/* Discord's transport compression: zlib-stream and zstd-stream.
 *
 * With `compress=zlib-stream` the gateway sends one zlib stream per
 * connection, split over binary websocket messages; a gateway payload is
 * complete when a websocket message ends with the flush marker 00 00 ff ff.
 * With `compress=zstd-stream` it sends one Zstandard stream per connection
 * (frames one after another), flushed at the end of every websocket
 * message, and each message carries one whole payload.
 *
 * Either way one decompression context lives as long as the connection
 * (the history carries over between payloads), so a new connection needs a
 * fresh one. Zstandard decodes the same gateway traffic about four times
 * as fast as zlib inflates it (README, "Discord"). */
#ifndef HB_DISCORD_ZSTREAM_H
#define HB_DISCORD_ZSTREAM_H

#include <stddef.h>
#include <stdint.h>
#include <zlib.h>
#include <zstd.h>

enum discord_compress {
    DISCORD_COMPRESS_ZLIB = 0, /* compress=zlib-stream */
    DISCORD_COMPRESS_ZSTD = 1, /* compress=zstd-stream */
};

struct discord_zstream {
    enum discord_compress kind;
    z_stream z;        /* zlib */
    ZSTD_DCtx *zd;     /* zstd */
    ZSTD_inBuffer zin; /* zstd: the bytes being fed */
    char *out;         /* decompressed bytes of the payload being assembled */
    size_t out_len;
    size_t out_cap;
    size_t max_payload; /* a payload larger than this is refused */
    uint8_t tail[4];    /* the last four bytes fed, to spot the marker across frames */
    size_t tail_len;
    int ready;      /* z or zd was made */
    int header;     /* bytes of the stream's two-byte zlib header read so far */
    uint8_t cmf;    /* its first byte, once read */
    int discarding; /* the payload being decompressed is too large: dropped at its end */
    int started;    /* a byte of the stream was fed */
    int switched;   /* the stream is of the other kind than asked (see below) */
    int text;       /* a text message came: not compressed at all */
};

/** Prepare a context of kind for a new connection. max_payload bounds one
 *  decompressed payload (Discord's gateway payloads stay well under 16 MiB).
 *  Returns 0 or HB_ENOMEM. */
int discord_zstream_init(struct discord_zstream *zs, enum discord_compress kind,
                         size_t max_payload);

/* The first bytes of a connection's stream say which kind it is: a zstd
 * frame begins with the magic 28 b5 2f fd, Discord's zlib stream with 78.
 * When they name the other kind than the one asked for (a gateway or a
 * proxy in front of it that ignores the URL's compress), the context
 * becomes that kind and sets `switched`, and the stream is read as it is.
 * Websocket text messages are not compressed at all: the caller takes
 * those as they are. */

/** The value of the gateway URL's compress parameter for kind. */
const char *discord_compress_name(enum discord_compress kind);

/** Release the context. */
void discord_zstream_free(struct discord_zstream *zs);

/** Feed one whole websocket message. Returns 1 when it completed a
 *  payload: *payload and *len point at the decompressed JSON (NUL-terminated,
 *  valid until the next call); 0 when more is needed; HB_EOVERFLOW when it
 *  completed a payload larger than max_payload, which was dropped (the
 *  stream stays usable); HB_EPROTO for a corrupt stream (the connection
 *  must be dropped: the stream cannot be resynchronised). */
int discord_zstream_feed(struct discord_zstream *zs, const void *data, size_t len,
                         const char **payload, size_t *plen);

/** Feed part of a websocket message; message_end says whether this part
 *  ends the message. zlib: the flush marker only counts at the end of a
 *  message (compressed bytes inside a message may happen to read
 *  00 00 ff ff at a read boundary). zstd: the end of a message that made
 *  output ends the payload. Returns as discord_zstream_feed (never 1 when
 *  message_end is 0). */
int discord_zstream_feed_part(struct discord_zstream *zs, const void *data, size_t len,
                              int message_end, const char **payload, size_t *plen);

/** Feed part of a websocket text message: JSON as it is, not compressed
 *  (a gateway or proxy that ignores compress). Returns as
 *  discord_zstream_feed_part; the payload's size is bounded the same way. */
int discord_zstream_feed_text(struct discord_zstream *zs, const void *data, size_t len,
                              int message_end, const char **payload, size_t *plen);

#endif
