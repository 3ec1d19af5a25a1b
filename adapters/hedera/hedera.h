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

/* What one page may cost. A real page (100 transactions of at most a few
 * dozen transfers each, fees included) is a few hundred KiB and a few
 * thousand transfers; a page past either bound is refused whole. */
#define HEDERA_PAGE_MAX_BYTES (2u << 20)   /* 2 MiB of JSON */
#define HEDERA_PAGE_TRANSFERS_MAX 10000    /* transfers plus token transfers, page-wide */
#define HEDERA_AMOUNT_MAX 9000000000000000 /* |amount| of one transfer; more is not a real one */

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

/** Read a page for deposits to treasury ("0.0.N"), in time linear in the
 *  page: each transaction's transfers are summed once per token. Returns 0
 *  (free the page with hedera_page_free); HB_EPROTO for a page that is not
 *  the documented shape; HB_ELIMIT for one over HEDERA_PAGE_MAX_BYTES or
 *  HEDERA_PAGE_TRANSFERS_MAX; HB_EOVERFLOW when a sum for the treasury does
 *  not fit in 64 bits (no real transaction does that). Nothing is returned
 *  on failure. */
int hedera_page_parse(const char *body, size_t len, const char *treasury, struct hedera_page *out);

void hedera_page_free(struct hedera_page *page);

/** A consensus timestamp "seconds.nanoseconds" is well formed. */
bool hedera_timestamp_ok(const char *ts);

#endif
