#include "adapters/discord/verify.h"

#include "base/error.h"
#include "base/text.h"

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Timestamps are short decimal text; a longer one is not Discord's. */
#define VERIFY_TIMESTAMP_MAX 64
#define VERIFY_BODY_MAX (1u << 20)

static int verify__hex(const char *hex, uint8_t *out, size_t n)
{
    if (hex == NULL || strlen(hex) != 2 * n)
        return HB_EINVAL;
    for (size_t i = 0; i < 2 * n; i++) {
        char c = hex[i];
        int v;
        if (c >= '0' && c <= '9')
            v = c - '0';
        else if (c >= 'a' && c <= 'f')
            v = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v = c - 'A' + 10;
        else
            return HB_EINVAL;
        if (i % 2 == 0)
            out[i / 2] = (uint8_t)(v << 4);
        else
            out[i / 2] |= (uint8_t)v;
    }
    return 0;
}

int discord_signature_verify(const char *public_key_hex, const char *signature_hex,
                             const char *timestamp, const char *body, size_t body_len)
{
    uint8_t key[32], sig[64];
    int rc = 0;
    EVP_PKEY *pkey = NULL;
    EVP_MD_CTX *md = NULL;
    unsigned char *msg = NULL;
    if (timestamp == NULL || body == NULL || timestamp[0] == '\0' ||
        strlen(timestamp) > VERIFY_TIMESTAMP_MAX || body_len > VERIFY_BODY_MAX)
        return HB_EINVAL;
    if (verify__hex(public_key_hex, key, sizeof(key)) < 0 ||
        verify__hex(signature_hex, sig, sizeof(sig)) < 0)
        return HB_EINVAL;
    size_t tlen = strlen(timestamp);
    msg = malloc(tlen + body_len + 1);
    if (msg == NULL)
        return HB_ENOMEM;
    memcpy(msg, timestamp, tlen);
    memcpy(msg + tlen, body, body_len);
    pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, key, sizeof(key));
    md = EVP_MD_CTX_new();
    if (pkey == NULL || md == NULL) {
        rc = HB_EINVAL;
        goto out;
    }
    /* Ed25519 is a one-shot signature: no digest, the whole message. */
    if (EVP_DigestVerifyInit(md, NULL, NULL, NULL, pkey) != 1) {
        rc = HB_EINVAL;
        goto out;
    }
    rc = EVP_DigestVerify(md, sig, sizeof(sig), msg, tlen + body_len) == 1 ? 0 : HB_EPERM;
out:
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pkey);
    free(msg);
    return rc;
}

int discord_timestamp_check(const char *timestamp, int64_t now_s)
{
    int64_t t = 0;
    if (timestamp == NULL || text_header_decimal(timestamp, 1, INT64_MAX / 4, &t) != 0)
        return HB_EINVAL;
    if (now_s < 0 || now_s > INT64_MAX / 4)
        return HB_EINVAL;
    int64_t skew = t > now_s ? t - now_s : now_s - t;
    return skew <= DISCORD_TIMESTAMP_MAX_SKEW_S ? 0 : HB_EPERM;
}

void discord_endpoint_check(const char *public_key_hex, const char *signature_hex,
                            const char *timestamp, const char *body, size_t body_len,
                            struct discord_endpoint_answer *out)
{
    out->status = 401;
    out->body = "invalid request signature";
    if (discord_signature_verify(public_key_hex, signature_hex, timestamp, body, body_len) != 0)
        return;
    cJSON *j = cJSON_ParseWithLength(body, body_len);
    const cJSON *type = j != NULL ? cJSON_GetObjectItemCaseSensitive(j, "type") : NULL;
    if (cJSON_IsNumber(type) && type->valueint == 1) {
        out->status = 200;
        out->body = "{\"type\":1}";
    } else if (j == NULL) {
        out->status = 400;
        out->body = "malformed interaction";
    } else {
        out->status = 0;
        out->body = NULL;
    }
    cJSON_Delete(j);
}
