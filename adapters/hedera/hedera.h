/* Hedera mirror node REST: reading a page of GET /api/v1/transactions for
 * the deposits it holds. Pure functions; bot/mirror.c polls.
 *
 * A page is {"transactions": [...], "links": {"next": "/api/v1/...?..."}}.
 * Each transaction has consensus_timestamp ("seconds.nanoseconds"),
 * transaction_id, result ("SUCCESS"...), memo_base64, transfers
 * [{account, amount (tinybars, signed)}] and token_transfers [{token_id,
 * account, amount}]. A deposit is a successful transaction whose
 * transfers add up to more than zero for the treasury: one per
 * transaction for HBAR, one per token for tokens. */
#ifndef HB_HEDERA_H
#define HB_HEDERA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HEDERA_MEMO_MAX 100 /* bytes, Hedera's limit */

struct hedera_deposit {
    char tx_id[96];                 /* "0.0.1001-1700000000-000000001" */
    char timestamp[32];             /* consensus timestamp */
    char token[32];                 /* "" for HBAR, else the token id */
    int64_t amount;                 /* tinybars, or the token's smallest unit */
    char memo[HEDERA_MEMO_MAX + 1]; /* decoded; "" when none or not text */
};

struct hedera_page {
    struct hedera_deposit *items; /* heap, n of them, in page order */
    size_t n;
    char next[512];          /* links.next ("" when this is the last page) */
    char last_timestamp[32]; /* of the page's last transaction ("" when empty) */
    size_t transactions;     /* transactions on the page, deposits or not */
};

/** Read a page for deposits to treasury ("0.0.N"). Returns 0 (free the
 *  page with hedera_page_free) or HB_EPROTO for a page that is not the
 *  documented shape (nothing is returned then). */
int hedera_page_parse(const char *body, size_t len, const char *treasury, struct hedera_page *out);

void hedera_page_free(struct hedera_page *page);

/** A consensus timestamp "seconds.nanoseconds" is well formed. */
bool hedera_timestamp_ok(const char *ts);

#endif
