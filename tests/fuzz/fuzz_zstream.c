/* Discord's zlib-stream transport (adapters/discord/zstream.c): websocket
 * messages of a compressed stream, each its own size. A payload is at
 * most 64 KiB here, so an inflation bomb is cut short. */
#include "tests/fuzz/fuzz.h"

#include "adapters/discord/zstream.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct discord_zstream zs;
    if (discord_zstream_init(&zs, DISCORD_COMPRESS_ZLIB, 64 * 1024) != 0)
        return 0;
    size_t piece = fuzz_piece(data, size);
    for (size_t at = size > 0 ? 1 : 0; at < size; at += piece) {
        size_t n = size - at < piece ? size - at : piece;
        const char *payload = NULL;
        size_t plen = 0;
        int rc = discord_zstream_feed_part(&zs, data + at, n, at + n >= size || (data[at] & 1),
                                           &payload, &plen);
        if (rc == 1 && (plen > 64 * 1024 || strlen(payload) > plen))
            abort();
        if (rc < 0 && rc != -1000)
            break;
    }
    discord_zstream_free(&zs);
    return 0;
}
