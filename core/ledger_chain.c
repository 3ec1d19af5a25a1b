/* The ledger's hash chain: the canonical bytes of a transfer, its SHA-256
 * over the previous entry's hash, and the append that seals each entry. */
#include "core/ledger.h"

#include "base/error.h"
#include "core/ledger_internal.h"
#include "core/chain.h"

#include <string.h>

/* ---- Canonical encoding and the chain hash ------------------------------------ */

/* The canonical bytes: a version tag, then every field in a fixed order,
 * integers big-endian, strings length-prefixed. Independent of the backend. */
static size_t ledger__encode(const struct store_transfer *t, uint8_t *p)
{
    size_t n = 0;
    memcpy(p, "HBL1", 4);
    n += 4;
    n += chain_put_u64(p + n, t->seq);
    n += chain_put_str(p + n, t->id, sizeof(t->id));
    n += chain_put_str(p + n, t->debit, sizeof(t->debit));
    n += chain_put_str(p + n, t->credit, sizeof(t->credit));
    n += chain_put_u64(p + n, (uint64_t)t->amount);
    n += chain_put_u32(p + n, t->kind);
    n += chain_put_u32(p + n, t->flags);
    n += chain_put_str(p + n, t->link, sizeof(t->link));
    n += chain_put_u64(p + n, (uint64_t)t->expires_at);
    n += chain_put_u64(p + n, (uint64_t)t->ts);
    n += chain_put_str(p + n, t->ref, sizeof(t->ref));
    n += chain_put_str(p + n, t->tag, sizeof(t->tag));
    return n;
}

int ledger__hash(const uint8_t prev[STORE_HASH_SIZE], const struct store_transfer *t,
                 uint8_t out[STORE_HASH_SIZE])
{
    uint8_t buf[4 + 8 * 4 + 4 * 2 + 6 * 4 + 4 * STORE_ID_SIZE + STORE_REF_SIZE + STORE_TAG_SIZE];
    size_t n = ledger__encode(t, buf);
    return chain_hash(prev, buf, n, out);
}

void ledger__hex(const uint8_t hash[STORE_HASH_SIZE], char out[2 * STORE_HASH_SIZE + 1])
{
    chain_hex(hash, out);
}

/* Seal a transfer with the next sequence number and its chain hash, and
 * append it. */
int ledger__append(struct store_txn *txn, struct store_transfer *t)
{
    uint64_t seq = 0;
    uint8_t prev[STORE_HASH_SIZE];
    int rc = store_txn_head(txn, &seq, prev);
    if (rc < 0)
        goto out;
    t->seq = seq + 1;
    rc = ledger__hash(prev, t, t->hash);
    if (rc < 0)
        goto out;
    rc = store_txn_transfer_append(txn, t);
out:
    return rc;
}
