/* Discord gateway payloads (adapters/discord/payload.c): the envelope
 * scan that reads op, s and t before anything parses "d". The scan's
 * pointers must stay inside the payload. */
#include "tests/fuzz/fuzz.h"

#include "adapters/discord/payload.h"
#include "base/json_scan.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static bool fuzz_want(const char *type, size_t len, void *data)
{
    (void)data;
    return len > 0 && type[0] != 'P'; /* skip some: the early stop is code too */
}

static void fuzz_inside(const uint8_t *base, size_t size, const char *p, size_t len)
{
    if (p != NULL && ((const uint8_t *)p < base || (const uint8_t *)p + len > base + size))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *json = malloc(size + 1);
    if (json == NULL)
        return 0;
    memcpy(json, data, size);
    json[size] = '\0';
    struct discord_payload out;
    for (int pass = 0; pass < 2; pass++) {
        memset(&out, 0, sizeof(out));
        if (discord_payload_scan(json, size, pass ? fuzz_want : NULL, NULL, &out) == 0) {
            fuzz_inside((const uint8_t *)json, size, out.type, out.type_len);
            fuzz_inside((const uint8_t *)json, size, out.d, out.d_len);
        }
    }
    /* The member finder the message prefilter uses, on the same bytes. */
    const char *v = NULL;
    size_t vlen = 0;
    if (json_scan_member(json, size, "guild_id", &v, &vlen) == 0)
        fuzz_inside((const uint8_t *)json, size, v, vlen);
    free(json);
    return 0;
}
