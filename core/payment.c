#include "core/payment.h"

#include "base/error.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

int payment_hmac_hex(char out[PAYMENT_HMAC_HEX + 1], const char *secret, const char *stamp,
                     char sep, const void *body, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    int rc = HB_EIO;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mlen = 0;
    /* One buffer for the one-shot HMAC (the streaming HMAC_CTX calls are
     * deprecated in OpenSSL 3); bodies are bounded by the server's limit. */
    size_t slen = strlen(stamp);
    unsigned char *msg = malloc(slen + 1 + len + 1);
    if (msg == NULL)
        return HB_ENOMEM;
    memcpy(msg, stamp, slen);
    msg[slen] = (unsigned char)sep;
    if (len > 0)
        memcpy(msg + slen + 1, body, len);
    if (HMAC(EVP_sha256(), secret, (int)strlen(secret), msg, slen + 1 + len, mac, &mlen) == NULL ||
        mlen * 2 != PAYMENT_HMAC_HEX)
        goto out;
    for (unsigned int i = 0; i < mlen; i++) {
        out[2 * i] = hex[mac[i] >> 4];
        out[2 * i + 1] = hex[mac[i] & 0xf];
    }
    out[PAYMENT_HMAC_HEX] = '\0';
    rc = 0;
out:
    OPENSSL_cleanse(mac, sizeof(mac));
    free(msg);
    return rc;
}

bool payment_sig_equal(const char computed[PAYMENT_HMAC_HEX + 1], const char *given, size_t n)
{
    if (n != PAYMENT_HMAC_HEX)
        return false;
    char lower[PAYMENT_HMAC_HEX];
    for (size_t i = 0; i < n; i++) {
        char c = given[i];
        lower[i] = (char)(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
    }
    return CRYPTO_memcmp(computed, lower, PAYMENT_HMAC_HEX) == 0;
}

int payment_stamp_parse(const char *s, size_t n, int64_t *out)
{
    if (n == 0 || n > 12)
        return HB_EINVAL;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return HB_EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}
