/* Canonical encoding and the chain hash shared by the ledger and the audit
 * trail. */
#include "core/chain.h"

#include "base/error.h"
#include "base/hex.h"

#include <openssl/evp.h>
#include <string.h>

size_t chain_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
    return 8;
}

size_t chain_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
    return 4;
}

size_t chain_put_str(uint8_t *p, const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    size_t off = chain_put_u32(p, (uint32_t)n);
    memcpy(p + off, s, n);
    return off + n;
}

int chain_hash(const uint8_t prev[STORE_HASH_SIZE], const uint8_t *buf, size_t n,
               uint8_t out[STORE_HASH_SIZE])
{
    unsigned int len = 0;
    int rc = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(ctx, prev, STORE_HASH_SIZE) != 1 || EVP_DigestUpdate(ctx, buf, n) != 1 ||
        EVP_DigestFinal_ex(ctx, out, &len) != 1 || len != STORE_HASH_SIZE)
        rc = HB_ENOMEM;
    EVP_MD_CTX_free(ctx);
    return rc;
}

void chain_hex(const uint8_t hash[STORE_HASH_SIZE], char out[2 * STORE_HASH_SIZE + 1])
{
    hex_encode(hash, STORE_HASH_SIZE, out);
}
