/* The pipelined client's response framing (net/http_response.c): the
 * head, then a chunked body after it. */
#include "tests/fuzz/fuzz.h"

#include "net/http_response.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct http_response_head h;
    memset(&h, 0, sizeof(h));
    int rc = http_response_head_parse(buf, size, 8192, &h);
    size_t at = rc == 1 ? h.head_len : 0;
    if (at > size)
        abort(); /* the head cannot be longer than the bytes it was read from */
    char *out = malloc(size - at + 1);
    if (out == NULL)
        return 0;
    size_t out_len = 0;
    long used = http_response_chunked(buf + at, size - at, out, &out_len, 1 << 20);
    if (used > 0 && ((size_t)used > size - at || out_len > (size_t)used))
        abort(); /* consumed past the input, or decoded more than it read */
    /* Decoding in place must agree with decoding aside. */
    char *copy = malloc(size - at + 1);
    if (copy != NULL && used > 0) {
        memcpy(copy, buf + at, size - at);
        size_t in_len = 0;
        long again = http_response_chunked(copy, size - at, copy, &in_len, 1 << 20);
        if (again != used || in_len != out_len || memcmp(copy, out, out_len) != 0)
            abort();
    }
    free(copy);
    free(out);
    return 0;
}
