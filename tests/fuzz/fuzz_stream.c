/* Provider response streams (adapters/llm/stream.c): OpenAI's and
 * Anthropic's chunk shapes, cut at every place. The first byte's low bit
 * picks the protocol, the rest of it the cut. */
#include "tests/fuzz/fuzz.h"

#include "adapters/llm/stream.h"

#include <string.h>

static int fuzz_stream_step(const struct stream_step *s, void *data)
{
    size_t *n = data;
    if (s->kind == STREAM_STEP_TEXT)
        *n += strlen(s->text);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t seen = 0;
    enum stream_protocol proto = (data[0] & 1) ? STREAM_PROTOCOL_ANTHROPIC : STREAM_PROTOCOL_OPENAI;
    struct stream_decoder *d = stream_decoder_new(proto, 8192, fuzz_stream_step, &seen);
    if (d == NULL)
        return 0;
    size_t piece = (size_t)(data[0] >> 1) + 1;
    int rc = 0;
    for (size_t at = 1; at < size && rc == 0; at += piece) {
        size_t n = size - at < piece ? size - at : piece;
        rc = stream_decoder_feed(d, (const char *)data + at, n);
    }
    if (rc == 0)
        stream_decoder_finish(d);
    (void)stream_decoder_error(d);
    stream_decoder_free(d);
    return 0;
}
