#include "core/payref.h"

#include "base/error.h"
#include "base/text.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define PAYREF_REF_MAC_CHARS 22
#define PAYREF_MEMO_MAC_CHARS 12
#define PAYREF_MEMO_PREFIX "hb:"

static const char payref_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url without padding; out must hold 4 * ceil(n / 3) + 1 bytes. */
static size_t payref__b64_encode(char *out, const uint8_t *in, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = payref_b64[(v >> 18) & 63];
        out[o++] = payref_b64[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = payref_b64[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = payref_b64[v & 63];
    }
    out[o] = '\0';
    return o;
}

/* The first `chars` base64url characters of HMAC-SHA256(key, label || account). */
static int payref__mac(char *out, size_t chars, const void *key, size_t klen, const char *label,
                       const char *account)
{
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned int mlen = 0;
    uint8_t msg[16 + PAYREF_ACCOUNT_MAX + 1];
    size_t llen = strlen(label) + 1; /* with its NUL: labels never run into accounts */
    size_t alen = strlen(account);
    if (llen > 16 || alen > PAYREF_ACCOUNT_MAX)
        return HB_EINVAL;
    memcpy(msg, label, llen);
    memcpy(msg + llen, account, alen);
    if (HMAC(EVP_sha256(), key, (int)klen, msg, llen + alen, mac, &mlen) == NULL)
        return HB_EIO;
    char enc[64];
    payref__b64_encode(enc, mac, mlen);
    memcpy(out, enc, chars);
    out[chars] = '\0';
    OPENSSL_cleanse(mac, sizeof(mac));
    return 0;
}

static bool payref__account_ok(const char *account)
{
    size_t n = account != NULL ? strlen(account) : 0;
    if (n == 0 || n > PAYREF_ACCOUNT_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)account[i] < 0x20)
            return false;
    }
    return true;
}

int payref_reference_make(char *out, size_t cap, const void *key, size_t klen, const char *account)
{
    if (out == NULL || key == NULL || klen == 0 || !payref__account_ok(account))
        return HB_EINVAL;
    char enc[4 * ((PAYREF_ACCOUNT_MAX + 2) / 3) + 1];
    size_t n = payref__b64_encode(enc, (const uint8_t *)account, strlen(account));
    if (n + PAYREF_REF_MAC_CHARS + 1 > cap)
        return HB_EINVAL;
    memcpy(out, enc, n);
    return payref__mac(out + n, PAYREF_REF_MAC_CHARS, key, klen, "ref1", account);
}

int payref_reference_check(const char *ref, const void *key, size_t klen, char *account, size_t cap)
{
    size_t n = ref != NULL ? strlen(ref) : 0;
    if (n <= PAYREF_REF_MAC_CHARS || n > PAYREF_REFERENCE_MAX || key == NULL || klen == 0)
        return HB_EINVAL;
    uint8_t raw[PAYREF_ACCOUNT_MAX + 1];
    long alen = text_base64_decode(ref, n - PAYREF_REF_MAC_CHARS, raw, PAYREF_ACCOUNT_MAX, true);
    if (alen <= 0)
        return HB_EINVAL;
    char acc[PAYREF_ACCOUNT_MAX + 1];
    memcpy(acc, raw, (size_t)alen);
    acc[alen] = '\0';
    if (strlen(acc) != (size_t)alen || !payref__account_ok(acc))
        return HB_EINVAL;
    char mac[PAYREF_REF_MAC_CHARS + 1];
    int rc = payref__mac(mac, PAYREF_REF_MAC_CHARS, key, klen, "ref1", acc);
    if (rc < 0)
        return rc;
    if (CRYPTO_memcmp(mac, ref + n - PAYREF_REF_MAC_CHARS, PAYREF_REF_MAC_CHARS) != 0)
        return HB_EPERM;
    if ((size_t)alen + 1 > cap)
        return HB_EINVAL;
    memcpy(account, acc, (size_t)alen + 1);
    return 0;
}

int payref_memo_make(char *out, size_t cap, const void *key, size_t klen, const char *account)
{
    if (out == NULL || key == NULL || klen == 0 || !payref__account_ok(account) ||
        strchr(account, '/') != NULL)
        return HB_EINVAL;
    size_t n = strlen(PAYREF_MEMO_PREFIX) + strlen(account) + 1 + PAYREF_MEMO_MAC_CHARS;
    if (n > PAYREF_MEMO_MAX || n + 1 > cap)
        return HB_EINVAL;
    char mac[PAYREF_MEMO_MAC_CHARS + 1];
    int rc = payref__mac(mac, PAYREF_MEMO_MAC_CHARS, key, klen, "memo1", account);
    if (rc < 0)
        return rc;
    memcpy(out, PAYREF_MEMO_PREFIX, strlen(PAYREF_MEMO_PREFIX));
    memcpy(out + strlen(PAYREF_MEMO_PREFIX), account, strlen(account));
    out[n - PAYREF_MEMO_MAC_CHARS - 1] = '/';
    memcpy(out + n - PAYREF_MEMO_MAC_CHARS, mac, PAYREF_MEMO_MAC_CHARS + 1);
    return 0;
}

int payref_memo_check(const char *memo, const void *key, size_t klen, char *account, size_t cap)
{
    if (memo == NULL || key == NULL || klen == 0)
        return HB_EINVAL;
    while (*memo == ' ')
        memo++;
    size_t n = strlen(memo);
    while (n > 0 && (memo[n - 1] == ' ' || memo[n - 1] == '\n' || memo[n - 1] == '\r'))
        n--;
    size_t plen = strlen(PAYREF_MEMO_PREFIX);
    if (n > PAYREF_MEMO_MAX || n < plen + 2 + PAYREF_MEMO_MAC_CHARS ||
        strncmp(memo, PAYREF_MEMO_PREFIX, plen) != 0 || memo[n - PAYREF_MEMO_MAC_CHARS - 1] != '/')
        return HB_EINVAL;
    char acc[PAYREF_MEMO_MAX + 1];
    size_t alen = n - plen - PAYREF_MEMO_MAC_CHARS - 1;
    memcpy(acc, memo + plen, alen);
    acc[alen] = '\0';
    if (!payref__account_ok(acc) || strchr(acc, '/') != NULL)
        return HB_EINVAL;
    char mac[PAYREF_MEMO_MAC_CHARS + 1];
    int rc = payref__mac(mac, PAYREF_MEMO_MAC_CHARS, key, klen, "memo1", acc);
    if (rc < 0)
        return rc;
    if (CRYPTO_memcmp(mac, memo + n - PAYREF_MEMO_MAC_CHARS, PAYREF_MEMO_MAC_CHARS) != 0)
        return HB_EPERM;
    if (alen + 1 > cap)
        return HB_EINVAL;
    memcpy(account, acc, alen + 1);
    return 0;
}
