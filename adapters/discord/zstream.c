#include "adapters/discord/zstream.h"

#include "base/error.h"

#include <stdlib.h>
#include <string.h>

/* A buffer grown for one large payload (a big GUILD_CREATE) is given back
 * before the next payload, so a connection does not keep megabytes for the
 * rare big one. */
#define ZSTREAM_KEEP_CAP (256 * 1024)
#define ZSTREAM_START_CAP (16 * 1024)

static const uint8_t zstream_marker[4] = {0x00, 0x00, 0xff, 0xff};

int discord_zstream_init(struct discord_zstream *zs, size_t max_payload)
{
    memset(zs, 0, sizeof(*zs));
    zs->max_payload = max_payload;
    zs->out_cap = ZSTREAM_START_CAP;
    zs->out = malloc(zs->out_cap);
    if (zs->out == NULL)
        return HB_ENOMEM;
    /* Raw deflate, the zlib header read by hand: a zlib-stream never ends,
     * so the Adler-32 that zlib would keep over every inflated byte is
     * never checked, and computing it was a few per cent of taking a
     * message in. */
    if (inflateInit2(&zs->z, -15) != Z_OK) {
        free(zs->out);
        zs->out = NULL;
        return HB_ENOMEM;
    }
    zs->ready = 1;
    return 0;
}

void discord_zstream_free(struct discord_zstream *zs)
{
    if (zs->ready)
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
    if (zs->out_len == 0 && zs->out_cap > ZSTREAM_KEEP_CAP) {
        char *small = realloc(zs->out, ZSTREAM_START_CAP);
        if (small != NULL) {
            zs->out = small;
            zs->out_cap = ZSTREAM_START_CAP;
        }
    }
    const uint8_t *in = data;
    size_t skip = 0;
    while (zs->header < 2 && skip < len) {
        /* RFC 1950: deflate (CM 8) with a window of at most 32 KiB, the
         * check bits right, and no preset dictionary. */
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
    zs->z.next_in = (Bytef *)(uintptr_t)(in + skip);
    zs->z.avail_in = (uInt)(len - skip);
    while (zs->z.avail_in > 0) {
        if (zs->out_cap - zs->out_len < 4096 && zs->out_cap < zs->max_payload + 1) {
            size_t ncap = zs->out_cap * 2;
            if (ncap > zs->max_payload + 1)
                ncap = zs->max_payload + 1;
            char *grown = realloc(zs->out, ncap);
            if (grown == NULL)
                return HB_ENOMEM;
            zs->out = grown;
            zs->out_cap = ncap;
        }
        if (zs->out_cap - zs->out_len <= 1) {
            /* Full at the maximum. What is left of the input may hold no
             * more output (the end of the block and the flush marker):
             * then the payload is exactly the limit and is kept. Inflate
             * on into scratch to learn which; only output that does not
             * fit makes the payload too large, and then it is inflated on
             * into the same buffer so the stream stays in step, and
             * dropped at its end. */
            unsigned char scratch[64];
            zs->z.next_out = scratch;
            zs->z.avail_out = sizeof(scratch);
            int zr = inflate(&zs->z, Z_SYNC_FLUSH);
            if (zr != Z_OK && zr != Z_BUF_ERROR)
                return HB_EPROTO;
            if (zs->z.avail_out < sizeof(scratch)) {
                zs->discarding = 1;
                zs->out_len = 0;
            } else if (zr == Z_BUF_ERROR) {
                break; /* no progress possible: input is exhausted */
            }
            continue;
        }
        zs->z.next_out = (Bytef *)zs->out + zs->out_len;
        zs->z.avail_out = (uInt)(zs->out_cap - zs->out_len - 1);
        int zr = inflate(&zs->z, Z_SYNC_FLUSH);
        zs->out_len = (size_t)((char *)zs->z.next_out - zs->out);
        if (zr == Z_BUF_ERROR && zs->z.avail_out > 0)
            break; /* no progress possible: input is exhausted */
        if (zr != Z_OK && zr != Z_BUF_ERROR)
            return HB_EPROTO;
        if (zs->out_len > zs->max_payload) {
            zs->discarding = 1;
            zs->out_len = 0;
        }
    }
    zstream__tail(zs, data, len);
    if (!message_end)
        return 0;
    if (zs->tail_len < 4 || memcmp(zs->tail, zstream_marker, 4) != 0)
        return 0;
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
