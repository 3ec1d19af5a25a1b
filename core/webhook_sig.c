#include "core/webhook_sig.h"

#include "base/error.h"
#include "base/hex.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WEBHOOK_SIG_HEX 64   /* hex digits of an HMAC-SHA256 */
#define WEBHOOK_SIG_STAMP 12 /* most digits of a timestamp */

/* Lower-case hex HMAC-SHA256 under secret over "<stamp><sep><body>". */
static int webhook_sig__hmac_hex(char out[WEBHOOK_SIG_HEX + 1], const char *secret,
                                 const char *stamp, char sep, const void *body, size_t len)
{
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
        mlen * 2 != WEBHOOK_SIG_HEX)
        goto out;
    hex_encode(mac, mlen, out);
    rc = 0;
out:
    OPENSSL_cleanse(mac, sizeof(mac));
    free(msg);
    return rc;
}

/* A computed signature against a given one (n bytes, any case), in time
 * independent of where they differ. */
static bool webhook_sig__equal(const char computed[WEBHOOK_SIG_HEX + 1], const char *given,
                               size_t n)
{
    if (n != WEBHOOK_SIG_HEX)
        return false;
    char lower[WEBHOOK_SIG_HEX];
    for (size_t i = 0; i < n; i++) {
        char c = given[i];
        lower[i] = (char)(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
    }
    return CRYPTO_memcmp(computed, lower, WEBHOOK_SIG_HEX) == 0;
}

/* A timestamp of decimal seconds (n bytes). */
static int webhook_sig__stamp_parse(const char *s, size_t n, int64_t *out)
{
    if (n == 0 || n > WEBHOOK_SIG_STAMP)
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

/* The next field of header at *at: its start and length; false at the end. */
static bool webhook_sig__field(const struct webhook_sig_scheme *s, const char **at,
                               const char **field, size_t *n)
{
    const char *p = *at;
    if (*p == '\0')
        return false;
    const char *end = strchr(p, s->field_sep);
    *field = p;
    *n = end != NULL ? (size_t)(end - p) : strlen(p);
    *at = p + *n + (end != NULL ? 1 : 0);
    return true;
}

/* The field's value when it is key=<something>, else NULL. */
static const char *webhook_sig__value(const char *field, size_t n, const char *key, size_t *vlen)
{
    size_t klen = strlen(key);
    if (n <= klen || strncmp(field, key, klen) != 0)
        return NULL;
    *vlen = n - klen;
    return field + klen;
}

int webhook_sig_verify(const struct webhook_sig_scheme *s, const char *header, const char *secret,
                       const void *body, size_t len, int64_t now, int64_t tolerance)
{
    if (s == NULL || header == NULL || secret == NULL || secret[0] == '\0')
        return HB_EINVAL;
    /* First the timestamp, wherever it stands in the list; only one. */
    int64_t t = -1;
    char stamp[WEBHOOK_SIG_STAMP + 1] = "";
    const char *at = header, *field = NULL, *v = NULL;
    size_t n = 0, vlen = 0;
    while (webhook_sig__field(s, &at, &field, &n)) {
        v = webhook_sig__value(field, n, s->stamp_key, &vlen);
        if (v == NULL)
            continue;
        if (stamp[0] != '\0' || webhook_sig__stamp_parse(v, vlen, &t) < 0)
            return HB_EINVAL;
        memcpy(stamp, v, vlen);
        stamp[vlen] = '\0';
    }
    if (stamp[0] == '\0')
        return HB_EINVAL;
    char expected[WEBHOOK_SIG_HEX + 1];
    int rc = webhook_sig__hmac_hex(expected, secret, stamp, s->signed_sep, body, len);
    if (rc < 0)
        return rc;
    /* Every signature is compared, so the time taken does not say which
     * one matched. */
    bool match = false, any = false;
    at = header;
    while (webhook_sig__field(s, &at, &field, &n)) {
        v = webhook_sig__value(field, n, s->sig_key, &vlen);
        if (v == NULL)
            continue;
        any = true;
        if (webhook_sig__equal(expected, v, vlen))
            match = true;
    }
    OPENSSL_cleanse(expected, sizeof(expected));
    if (!any)
        return HB_EINVAL;
    if (!match)
        return HB_EPERM;
    if (t < now - tolerance || t > now + tolerance)
        return HB_ETIMEOUT;
    return 0;
}

int webhook_sig_make(const struct webhook_sig_scheme *s, char *out, size_t cap, const char *secret,
                     const void *body, size_t len, int64_t t)
{
    char stamp[24];
    snprintf(stamp, sizeof(stamp), "%lld", (long long)t);
    char sig[WEBHOOK_SIG_HEX + 1];
    int rc = webhook_sig__hmac_hex(sig, secret, stamp, s->signed_sep, body, len);
    if (rc < 0)
        return rc;
    int n = snprintf(out, cap, "%s%s%c%s%s", s->stamp_key, stamp, s->field_sep, s->sig_key, sig);
    return n > 0 && (size_t)n < cap ? 0 : HB_EINVAL;
}
