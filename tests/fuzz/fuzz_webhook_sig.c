/* Payment webhook signatures (core/webhook_sig.c) under Stripe's and
 * Paddle's schemes: the first line of the input is the header, the rest
 * the body. A forged header must never verify. */
#include "tests/fuzz/fuzz.h"

#include "adapters/paddle/paddle.h"
#include "adapters/stripe/stripe.h"
#include "base/error.h"
#include "core/webhook_sig.h"

#include <stdlib.h>
#include <string.h>

#define FUZZ_SECRET "whsec_fuzz_secret"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t hlen = nl != NULL ? (size_t)(nl - data) : size;
    char *header = malloc(hlen + 1);
    if (header == NULL)
        return 0;
    memcpy(header, data, hlen);
    header[hlen] = '\0';
    const uint8_t *body = nl != NULL ? nl + 1 : data + size;
    size_t blen = (size_t)(data + size - body);
    const struct webhook_sig_scheme *schemes[] = {&stripe_sig_scheme, &paddle_sig_scheme};
    for (size_t i = 0; i < 2; i++) {
        int rc = webhook_sig_verify(schemes[i], header, FUZZ_SECRET, body, blen, 1700000000, 300);
        /* Matching a signature by chance would take a 2^-256 guess. */
        if (rc == 0)
            abort();
        /* What the scheme makes for this body always verifies. */
        char made[256];
        if (webhook_sig_make(schemes[i], made, sizeof(made), FUZZ_SECRET, body, blen, 1700000000) ==
                0 &&
            webhook_sig_verify(schemes[i], made, FUZZ_SECRET, body, blen, 1700000000, 300) != 0)
            abort();
    }
    free(header);
    return 0;
}
