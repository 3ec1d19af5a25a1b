/* Stream events read in place (adapters/llm/stream.c) against the same
 * event as a cJSON tree: the input is one event's data, an OpenAI chunk,
 * or after a first byte 'A' Anthropic's content_block_delta; the two ways
 * must give the same steps and the same result. */
#include "tests/fuzz/fuzz.h"

#include "tests/adapters/stream_twice.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool anthropic = size > 0 && data[0] == 'A';
    enum stream_protocol proto = anthropic ? STREAM_PROTOCOL_ANTHROPIC : STREAM_PROTOCOL_OPENAI;
    size_t len = 0;
    char *sse = stream_twice_event(anthropic ? "content_block_delta" : NULL,
                                   (const char *)data + anthropic, size - anthropic, &len);
    if (sse == NULL)
        return 0;
    static struct stream_twice_log fast, tree;
    stream_twice_one(proto, sse, len, false, &fast);
    stream_twice_one(proto, sse, len, true, &tree);
    if (strcmp(fast.text, tree.text) != 0)
        abort();
    free(sse);
    return 0;
}
