#include "core/button.h"

#include "base/error.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

static const char button_b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The mac over prefix, payload and the member's identity, in base64url. */
static int button__mac(char out[BUTTON_MAC_CHARS + 1], const uint8_t key[BUTTON_KEY_SIZE],
                       const char *prefix, size_t plen, const char *payload, size_t len,
                       const struct invocation *who)
{
    char msg[512];
    int n = snprintf(msg, sizeof(msg), "%.*s\n%.*s\n%s\n%s\n%s", (int)plen, prefix, (int)len,
                     payload, command_platform_name(who->platform), who->user_id, who->scope_id);
    if (n < 0 || (size_t)n >= sizeof(msg))
        return HB_EINVAL;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (HMAC(EVP_sha256(), key, BUTTON_KEY_SIZE, (const unsigned char *)msg, (size_t)n, mac,
             &maclen) == NULL)
        return HB_EINVAL;
    /* 11 characters of 6 bits from the first 9 bytes. */
    uint64_t bits = 0;
    int have = 0;
    size_t at = 0;
    for (size_t i = 0; i < 9 && at < BUTTON_MAC_CHARS; i++) {
        bits = (bits << 8) | mac[i];
        have += 8;
        while (have >= 6 && at < BUTTON_MAC_CHARS) {
            out[at++] = button_b64url[(bits >> (have - 6)) & 0x3f];
            have -= 6;
        }
    }
    while (at < BUTTON_MAC_CHARS)
        out[at++] = button_b64url[(bits << (6 - have)) & 0x3f];
    out[at] = '\0';
    return 0;
}

int button_ref_make(char out[COMMAND_BUTTON_REF_MAX + 1], const uint8_t key[BUTTON_KEY_SIZE],
                    const char *prefix, const char *payload, const struct invocation *owner)
{
    size_t plen = strlen(prefix);
    size_t len = strlen(payload);
    if (plen == 0 || plen > 8 || strchr(payload, ':') != NULL ||
        plen + 1 + len + 1 + BUTTON_MAC_CHARS > COMMAND_BUTTON_REF_MAX)
        return HB_EINVAL;
    for (size_t i = 0; i < plen; i++) {
        char c = prefix[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return HB_EINVAL;
    }
    char mac[BUTTON_MAC_CHARS + 1];
    int rc = button__mac(mac, key, prefix, plen, payload, len, owner);
    if (rc < 0)
        return rc;
    snprintf(out, COMMAND_BUTTON_REF_MAX + 1, "%s:%s:%s", prefix, payload, mac);
    return 0;
}

int button_ref_check(const struct invocation *inv, const uint8_t key[BUTTON_KEY_SIZE],
                     char *payload, size_t cap)
{
    const char *ref = inv->button_ref;
    const char *c1 = strchr(ref, ':');
    const char *c2 = c1 != NULL ? strchr(c1 + 1, ':') : NULL;
    if (c1 == NULL || c2 == NULL || strlen(c2 + 1) != BUTTON_MAC_CHARS)
        return HB_EINVAL;
    size_t len = (size_t)(c2 - c1 - 1);
    if (len + 1 > cap)
        return HB_EINVAL;
    char mac[BUTTON_MAC_CHARS + 1];
    int rc = button__mac(mac, key, ref, (size_t)(c1 - ref), c1 + 1, len, inv);
    if (rc < 0)
        return rc;
    if (CRYPTO_memcmp(mac, c2 + 1, BUTTON_MAC_CHARS) != 0)
        return HB_EPERM;
    memcpy(payload, c1 + 1, len);
    payload[len] = '\0';
    return 0;
}
