/* OpenAI chunks read in place (adapters/llm/stream.c) against the same
 * chunk as a cJSON tree: the input is one event's data, and the two ways
 * must give the same steps and the same result. */
#include "tests/fuzz/fuzz.h"

#include "tests/adapters/stream_twice.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len = 0;
    char *sse = stream_twice_event((const char *)data, size, &len);
    if (sse == NULL)
        return 0;
    static struct stream_twice_log fast, tree;
    stream_twice_one(sse, len, false, &fast);
    stream_twice_one(sse, len, true, &tree);
    if (strcmp(fast.text, tree.text) != 0)
        abort();
    free(sse);
    return 0;
}
