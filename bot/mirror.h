/* Crypto deposits by memo: a poller on the loop that reads a Hedera mirror
 * node and credits transfers to the treasury that carry a member's memo.
 *
 * Each poll asks GET {mirror}/api/v1/transactions?account.id=<treasury>
 * &transactiontype=CRYPTOTRANSFER&order=asc&timestamp=gt:<cursor> and
 * follows links.next until the last page. Every deposit with a valid memo
 * (core/payref.h) is credited as the transfer "hedera:<transaction id>"
 * (HBAR) or "hedera:<transaction id>:<token id>" (an HTS token), so a
 * page read twice never credits twice; core/deposit.h books it and tells
 * the member. Deposits with an unknown memo, an
 * unknown token or too little for one credit are recorded in the state
 * table (namespace "hedera.unmatched") for the operator. The cursor (the
 * last consensus timestamp handled) is stored after each page's credits
 * are committed, so a restart resumes where the last one stopped.
 *
 * A mirror that is down, answers an error or sends a malformed page is
 * logged and asked again at the next interval; the cursor stays. */
#ifndef HB_MIRROR_H
#define HB_MIRROR_H

#include "core/deposit.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct http_client;
struct ledger;
struct notify_target;
struct mirror;

#define MIRROR_TOKENS_MAX 8

struct mirror_options {
    struct http_client *http;  /* borrowed */
    struct ledger **ledger;    /* borrowed pointer to the daemon's ledger */
    const char *mirror_url;    /* base URL, no trailing slash needed */
    const char *treasury;      /* "0.0.N" */
    const char *reference_key; /* HMAC key of memos */
    int64_t tinybars_per_credit;
    const char *tokens;    /* "token_id:units_per_credit, ..." or NULL */
    int64_t welcome_bonus; /* paid when a deposit opens a wallet */
    uint64_t interval_ms;  /* between polls */
    /* After every poll (all pages, or the failure that ended it); rc is 0
     * or why it stopped. May be NULL. Tests wait on it. */
    void (*on_poll)(void *data, int rc);
    void *data; /* Tell the member (or group) a credit went in, once it is committed
                 * (core/notify.h); to and text are borrowed for the call. Returns 0
                 * when queued. May be NULL: then the notice is only logged. */
    int (*notify)(void *data, const struct notify_target *to, const char *text);
    void *notify_data;
};

/** Parse "0.0.456:100, 0.0.789:5" into out. Returns the count or HB_EINVAL. */
int mirror_tokens_parse(const char *text, struct deposit_token *out, size_t max);

/** Make a poller (options copied). NULL on bad options (logged) or no memory. */
struct mirror *mirror_new(uv_loop_t *loop, const struct mirror_options *opts);

/** Load the cursor and poll now, then every interval. Returns 0 or a code. */
int mirror_start(struct mirror *m);

/** Poll now (if no poll is under way), rather than at the next interval. */
void mirror_poll_now(struct mirror *m);

/** Stop: cancel the request, let a ledger write in flight finish, close the
 *  timer, free the poller, then cb(data) (may be NULL) from the loop. */
void mirror_stop(struct mirror *m, void (*cb)(void *data), void *data);

/** Polls completed, deposits credited (new transfers) and recorded as
 *  unmatched, since start. */
struct mirror_stats {
    unsigned polls;
    unsigned failures;
    unsigned credited;
    unsigned unmatched;
    char cursor[32];
};
void mirror_stats_get(const struct mirror *m, struct mirror_stats *out);

#endif
