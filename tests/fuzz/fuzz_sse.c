/* Server-sent events (adapters/llm/sse.c) cut at every place. */
#include "tests/fuzz/fuzz.h"

#include "adapters/llm/sse.h"

#include <stdbool.h>

static int fuzz_sse_event(const struct sse_event *ev, void *data)
{
    size_t *n = data;
    (*n) += ev->data_len + (ev->type[0] != '\0') + (ev->id[0] != '\0');
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t seen = 0;
    struct sse_parser *p = sse_parser_new(4096, fuzz_sse_event, &seen);
    if (p == NULL)
        return 0;
    size_t piece = fuzz_piece(data, size);
    int rc = 0;
    for (size_t at = size > 0 ? 1 : 0; at < size && rc == 0; at += piece) {
        size_t n = size - at < piece ? size - at : piece;
        rc = sse_parser_feed(p, (const char *)data + at, n);
    }
    bool truncated = false;
    if (rc == 0)
        sse_parser_finish(p, &truncated);
    (void)sse_parser_retry_ms(p);
    sse_parser_free(p);
    return 0;
}
