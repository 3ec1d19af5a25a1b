/* Discord's zlib-stream transport (adapters/discord/zstream.c): websocket
 * messages of a compressed stream, each its own size. */
#include "tests/fuzz/fuzz_zstream_feed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_zstream_feed(DISCORD_COMPRESS_ZLIB, data, size);
    return 0;
}
