/* Discord's zstd-stream transport (adapters/discord/zstream.c): websocket
 * messages of a Zstandard stream, each its own size. */
#include "tests/fuzz/fuzz_zstream_feed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_zstream_feed(DISCORD_COMPRESS_ZSTD, data, size);
    return 0;
}
