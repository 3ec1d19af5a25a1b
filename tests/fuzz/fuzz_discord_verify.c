/* The Discord interactions endpoint's checks (adapters/discord/verify.c):
 * the input's lines are the public key, the signature, the timestamp and
 * the body. Nothing made up may verify. */
#include "tests/fuzz/fuzz.h"

#include "adapters/discord/verify.h"

#include <stdlib.h>
#include <string.h>

/* The next line of the input (NUL-terminated copy), or NULL at the end. */
static char *fuzz_line(const uint8_t **at, const uint8_t *end)
{
    if (*at >= end)
        return NULL;
    const uint8_t *nl = memchr(*at, '\n', (size_t)(end - *at));
    size_t n = nl != NULL ? (size_t)(nl - *at) : (size_t)(end - *at);
    char *s = malloc(n + 1);
    if (s != NULL) {
        memcpy(s, *at, n);
        s[n] = '\0';
    }
    *at += n + (nl != NULL);
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *at = data, *end = data + size;
    char *key = fuzz_line(&at, end);
    char *sig = fuzz_line(&at, end);
    char *ts = fuzz_line(&at, end);
    const char *body = (const char *)at;
    size_t blen = (size_t)(end - at);
    if (key != NULL && sig != NULL && ts != NULL) {
        if (discord_signature_verify(key, sig, ts, body, blen) == 0)
            abort(); /* a forged Ed25519 signature verified */
        (void)discord_timestamp_check(ts, 1700000000);
        struct discord_endpoint_answer a;
        discord_endpoint_check(key, sig, ts, body, blen, &a);
        if (a.status != 401)
            abort();
    }
    free(key);
    free(sig);
    free(ts);
    return 0;
}
