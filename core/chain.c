/* Canonical encoding and the chain hash shared by the ledger and the audit
 * trail. */
#include "core/chain.h"

#include "base/error.h"
#include "base/hex.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>

/* SHA-256 fetched from OpenSSL's provider once: EVP_sha256() makes every
 * EVP_DigestInit_ex look the algorithm up again (OpenSSL 3), which cost
 * about as much as hashing a transfer. Kept for the process's life. */
static EVP_MD *chain_md;
static pthread_once_t chain_md_once = PTHREAD_ONCE_INIT;

static void chain__md_fetch(void)
{
    chain_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

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
    pthread_once(&chain_md_once, chain__md_fetch);
    const EVP_MD *md = chain_md != NULL ? chain_md : EVP_sha256();
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestInit_ex2(ctx, md, NULL) != 1 ||
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
