#include "adapters/discord/zstream.h"

#include "base/error.h"

#include <stdlib.h>
#include <string.h>

/* A buffer grown for one large payload (a big GUILD_CREATE) is given back
 * before the next payload, so a connection does not keep megabytes for the
 * rare big one. */
#define ZSTREAM_KEEP_CAP (256 * 1024)
#define ZSTREAM_START_CAP (16 * 1024)
#define ZSTREAM_ZSTD_WINDOW_LOG 23 /* 8 MiB */

static const uint8_t zstream_marker[4] = {0x00, 0x00, 0xff, 0xff};
static const uint8_t zstream_zstd_magic[4] = {0x28, 0xb5, 0x2f, 0xfd};

const char *discord_compress_name(enum discord_compress kind)
{
    return kind == DISCORD_COMPRESS_ZSTD ? "zstd-stream" : "zlib-stream";
}

int discord_zstream_init(struct discord_zstream *zs, enum discord_compress kind, size_t max_payload)
{
    memset(zs, 0, sizeof(*zs));
    zs->kind = kind;
    zs->max_payload = max_payload;
    zs->out_cap = ZSTREAM_START_CAP;
    zs->out = malloc(zs->out_cap);
    if (zs->out == NULL)
        return HB_ENOMEM;
    if (kind == DISCORD_COMPRESS_ZSTD) {
        /* The window a frame asks for is allocated as it says, up to
         * 8 MiB: what RFC 8878 (3.1.1.1.2) asks every decoder to support
         * and no encoder to exceed. A frame that asks for more is refused
         * (HB_EPROTO) instead of costing up to libzstd's 128 MiB. */
        zs->zd = ZSTD_createDCtx();
        if (zs->zd == NULL || ZSTD_isError(ZSTD_DCtx_setParameter(zs->zd, ZSTD_d_windowLogMax,
                                                                  ZSTREAM_ZSTD_WINDOW_LOG))) {
            ZSTD_freeDCtx(zs->zd);
            free(zs->out);
            zs->out = NULL;
            return HB_ENOMEM;
        }
    } else if (inflateInit2(&zs->z, -15) != Z_OK) {
        /* Raw deflate, the zlib header read by hand: a zlib-stream never
         * ends, so the Adler-32 that zlib would keep over every inflated
         * byte is never checked, and computing it was a few per cent of
         * taking a message in. */
        free(zs->out);
        zs->out = NULL;
        return HB_ENOMEM;
    }
    zs->ready = 1;
    return 0;
}

void discord_zstream_free(struct discord_zstream *zs)
{
    if (zs->ready && zs->kind == DISCORD_COMPRESS_ZSTD)
        ZSTD_freeDCtx(zs->zd);
    else if (zs->ready)
        inflateEnd(&zs->z);
    free(zs->out);
    memset(zs, 0, sizeof(*zs));
}

/* Remember the last four bytes seen, across message boundaries. */
static void zstream__tail(struct discord_zstream *zs, const uint8_t *data, size_t len)
{
    if (len >= 4) {
        memcpy(zs->tail, data + len - 4, 4);
        zs->tail_len = 4;
        return;
    }
    size_t keep = zs->tail_len + len > 4 ? 4 - len : zs->tail_len;
    memmove(zs->tail, zs->tail + zs->tail_len - keep, keep);
    memcpy(zs->tail + keep, data, len);
    zs->tail_len = keep + len;
}

/* Read the two-byte zlib header by hand (RFC 1950: deflate, CM 8, with a
 * window of at most 32 KiB, the check bits right, and no preset
 * dictionary). Returns the bytes it took, or HB_EPROTO. */
static int zstream__zlib_header(struct discord_zstream *zs, const uint8_t *in, size_t len)
{
    size_t skip = 0;
    while (zs->header < 2 && skip < len) {
        uint8_t b = in[skip++];
        if (zs->header == 0) {
            if ((b & 0x0f) != 8 || (b >> 4) > 7)
                return HB_EPROTO;
            zs->cmf = b;
        } else if (((unsigned)zs->cmf * 256u + b) % 31u != 0 || (b & 0x20) != 0) {
            return HB_EPROTO;
        }
        zs->header++;
    }
    return (int)skip;
}

/* One decompression step into dst (cap bytes), *made of them written.
 * Returns 1 once the input is used up and nothing more is pending (the
 * output was not what stopped it), 0 to go on, or HB_EPROTO. */
static int zstream__step(struct discord_zstream *zs, void *dst, size_t cap, size_t *made)
{
    *made = 0;
    if (zs->kind == DISCORD_COMPRESS_ZSTD) {
        ZSTD_outBuffer out = {dst, cap, 0};
        size_t r = ZSTD_decompressStream(zs->zd, &out, &zs->zin);
        if (ZSTD_isError(r))
            return HB_EPROTO;
        *made = out.pos;
        return zs->zin.pos == zs->zin.size && out.pos < out.size ? 1 : 0;
    }
    /* avail_out is what the last call left: an output buffer it filled may
     * have left output pending inside zlib, even with no input left. */
    if (zs->z.avail_in == 0 && zs->z.avail_out > 0)
        return 1;
    zs->z.next_out = dst;
    zs->z.avail_out = (uInt)cap;
    int zr = inflate(&zs->z, Z_SYNC_FLUSH);
    *made = cap - zs->z.avail_out;
    if (zr == Z_BUF_ERROR && zs->z.avail_out > 0)
        return 1; /* no progress possible: input is exhausted */
    if (zr != Z_OK && zr != Z_BUF_ERROR)
        return HB_EPROTO;
    return zs->z.avail_in == 0 && zs->z.avail_out > 0 ? 1 : 0;
}

/* Grow the payload buffer to hold at least need bytes (doubling, never
 * past max_payload + 1). Returns 0 or HB_ENOMEM. */
static int zstream__grow(struct discord_zstream *zs, size_t need)
{
    size_t ncap = zs->out_cap;
    while (ncap < need)
        ncap *= 2;
    if (ncap > zs->max_payload + 1)
        ncap = zs->max_payload + 1;
    char *grown = realloc(zs->out, ncap);
    if (grown == NULL)
        return HB_ENOMEM;
    zs->out = grown;
    zs->out_cap = ncap;
    return 0;
}

/* Decompress everything fed into the payload buffer, growing it up to
 * max_payload + 1; past that the payload is marked to be dropped and
 * decompressed on into the same buffer, so the stream stays in step. */
static int zstream__run(struct discord_zstream *zs)
{
    for (;;) {
        if (zs->out_cap - zs->out_len < 4096 && zs->out_cap < zs->max_payload + 1 &&
            zstream__grow(zs, zs->out_cap * 2) < 0)
            return HB_ENOMEM;
        size_t made;
        if (zs->out_cap - zs->out_len <= 1) {
            /* Full at the maximum. What is left of the input may hold no
             * more output (the end of the block and the flush marker):
             * then the payload is exactly the limit and is kept. Decode on
             * into scratch to learn which; only output that does not fit
             * makes the payload too large. */
            unsigned char scratch[64];
            int rc = zstream__step(zs, scratch, sizeof(scratch), &made);
            if (rc < 0)
                return rc;
            if (made > 0) {
                zs->discarding = 1;
                zs->out_len = 0;
            } else if (rc == 1) {
                return 0;
            }
            continue;
        }
        int rc = zstream__step(zs, zs->out + zs->out_len, zs->out_cap - zs->out_len - 1, &made);
        if (rc < 0)
            return rc;
        zs->out_len += made;
        if (zs->out_len > zs->max_payload) {
            zs->discarding = 1;
            zs->out_len = 0;
        }
        if (rc == 1)
            return 0;
    }
}

/* A buffer grown for a large payload is given back before the next. */
static void zstream__shrink(struct discord_zstream *zs)
{
    if (zs->out_len == 0 && zs->out_cap > ZSTREAM_KEEP_CAP) {
        char *small = realloc(zs->out, ZSTREAM_START_CAP);
        if (small != NULL) {
            zs->out = small;
            zs->out_cap = ZSTREAM_START_CAP;
        }
    }
}

/* A message ended a payload: it, or HB_EOVERFLOW when it was too large. */
static int zstream__payload_end(struct discord_zstream *zs, const char **payload, size_t *plen)
{
    if (zs->discarding) {
        zs->discarding = 0;
        zs->out_len = 0;
        zs->tail_len = 0;
        return HB_EOVERFLOW;
    }
    zs->out[zs->out_len] = '\0';
    *payload = zs->out;
    *plen = zs->out_len;
    zs->out_len = 0;
    zs->tail_len = 0;
    return 1;
}

/* The stream's first bytes (see zstream.h): the context of the kind they
 * name. Returns 0 or HB_ENOMEM. */
static int zstream__sniff(struct discord_zstream *zs, const uint8_t *in, size_t len)
{
    zs->started = 1;
    enum discord_compress seen = zs->kind;
    if (zs->kind == DISCORD_COMPRESS_ZSTD && in[0] == 0x78)
        seen = DISCORD_COMPRESS_ZLIB;
    else if (zs->kind == DISCORD_COMPRESS_ZLIB && len >= 4 &&
             memcmp(in, zstream_zstd_magic, 4) == 0)
        seen = DISCORD_COMPRESS_ZSTD;
    if (seen == zs->kind)
        return 0;
    size_t max = zs->max_payload;
    discord_zstream_free(zs);
    int rc = discord_zstream_init(zs, seen, max);
    zs->started = 1;
    zs->switched = 1;
    return rc;
}

int discord_zstream_feed(struct discord_zstream *zs, const void *data, size_t len,
                         const char **payload, size_t *plen)
{
    return discord_zstream_feed_part(zs, data, len, 1, payload, plen);
}

int discord_zstream_feed_part(struct discord_zstream *zs, const void *data, size_t len,
                              int message_end, const char **payload, size_t *plen)
{
    if (!zs->ready)
        return HB_EPROTO;
    zstream__shrink(zs);
    const uint8_t *in = data;
    if (!zs->started && len > 0) {
        int rc = zstream__sniff(zs, in, len);
        if (rc < 0)
            return rc;
    }
    if (zs->kind == DISCORD_COMPRESS_ZSTD) {
        zs->zin = (ZSTD_inBuffer){in, len, 0};
    } else {
        int skip = zstream__zlib_header(zs, in, len);
        if (skip < 0)
            return skip;
        zs->z.next_in = (Bytef *)(uintptr_t)(in + skip);
        zs->z.avail_in = (uInt)(len - (size_t)skip);
    }
    int rc = zstream__run(zs);
    if (rc < 0)
        return rc;
    if (zs->kind == DISCORD_COMPRESS_ZLIB)
        zstream__tail(zs, data, len);
    if (!message_end)
        return 0;
    if (zs->kind == DISCORD_COMPRESS_ZLIB &&
        (zs->tail_len < 4 || memcmp(zs->tail, zstream_marker, 4) != 0))
        return 0;
    if (zs->kind == DISCORD_COMPRESS_ZSTD && zs->out_len == 0 && !zs->discarding)
        return 0; /* a message that only ended a frame */
    return zstream__payload_end(zs, payload, plen);
}

int discord_zstream_feed_text(struct discord_zstream *zs, const void *data, size_t len,
                              int message_end, const char **payload, size_t *plen)
{
    if (!zs->ready)
        return HB_EPROTO;
    zs->text = 1;
    zstream__shrink(zs);
    if (!zs->discarding && zs->out_len + len > zs->max_payload) {
        zs->discarding = 1;
        zs->out_len = 0;
    }
    if (!zs->discarding && len > 0) {
        if (zs->out_len + len + 1 > zs->out_cap && zstream__grow(zs, zs->out_len + len + 1) < 0)
            return HB_ENOMEM;
        memcpy(zs->out + zs->out_len, data, len);
        zs->out_len += len;
    }
    if (!message_end)
        return 0;
    return zstream__payload_end(zs, payload, plen);
}
