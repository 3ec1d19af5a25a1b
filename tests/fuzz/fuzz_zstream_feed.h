/* What the two transport decompressors' fuzz targets share
 * (adapters/discord/zstream.c): the input after its first byte, fed as
 * websocket messages of parts cut where fuzz_piece() says, each part
 * ending its message when it is the last or its first byte is odd. A
 * payload is at most 64 KiB here, so a decompression bomb is cut short. */
#ifndef HB_FUZZ_ZSTREAM_FEED_H
#define HB_FUZZ_ZSTREAM_FEED_H

#include "tests/fuzz/fuzz.h"

#include "adapters/discord/zstream.h"
#include "base/error.h"

#include <stdlib.h>
#include <string.h>

static inline void fuzz_zstream_feed(enum discord_compress kind, const uint8_t *data, size_t size)
{
    struct discord_zstream zs;
    if (discord_zstream_init(&zs, kind, 64 * 1024) != 0)
        return;
    size_t piece = fuzz_piece(data, size);
    for (size_t at = size > 0 ? 1 : 0; at < size; at += piece) {
        size_t n = size - at < piece ? size - at : piece;
        const char *payload = NULL;
        size_t plen = 0;
        int rc = discord_zstream_feed_part(&zs, data + at, n, at + n >= size || (data[at] & 1),
                                           &payload, &plen);
        /* A payload is NUL-terminated within its limit; a zstd one is never
         * empty (a message that made nothing is no payload). The kind is the
         * stream's own: its first bytes may name the other one. */
        if (rc == 1 && (plen > 64 * 1024 || strlen(payload) > plen ||
                        (zs.kind == DISCORD_COMPRESS_ZSTD && plen == 0)))
            abort();
        if (rc < 0 && rc != HB_EOVERFLOW)
            break; /* broken for good; a payload too large leaves it usable */
    }
    discord_zstream_free(&zs);
}

#endif
