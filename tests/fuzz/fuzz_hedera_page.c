/* A Hedera mirror node's transactions page (adapters/hedera/hedera.c): a
 * hostile or broken mirror must not crash the daemon or invent deposits. */
#include "tests/fuzz/fuzz.h"

#include "adapters/hedera/hedera.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body = malloc(size + 1);
    if (body == NULL)
        return 0;
    memcpy(body, data, size);
    body[size] = '\0';
    struct hedera_page page;
    memset(&page, 0, sizeof(page));
    if (hedera_page_parse(body, size, "0.0.1234", &page) == 0) {
        for (size_t i = 0; i < page.n; i++) {
            if (!hedera_timestamp_ok(page.items[i].timestamp))
                abort(); /* a deposit without a well-formed consensus time */
        }
        hedera_page_free(&page);
    }
    free(body);
    return 0;
}
