/* The /deposit text: how to top up, from the configured payment methods.
 *
 * Without accounts it describes the methods (packages and prices, the
 * crypto rate and treasury); given the member's wallet and the group's
 * pool, it also carries their checkout links with the signed reference
 * and their deposit memos (core/payref.h). */
#ifndef HB_DEPOSIT_H
#define HB_DEPOSIT_H

#include <stddef.h>
#include <stdint.h>

/** A card package: what a price buys. */
struct deposit_package {
    int64_t price;   /* minor units of the currency */
    int64_t credits; /* credits it buys */
};

/** A crypto token taken besides HBAR, and its rate. */
struct deposit_token {
    char id[32];              /* "0.0.456858" */
    int64_t units_per_credit; /* the token's smallest units one credit costs */
};

struct deposit_methods {
    const char *key;                          /* reference key; NULL: no references */
    const struct deposit_package *packages;   /* card packages */
    size_t npackages;
    const char *currency;                     /* of the prices ("usd") */
    const char *stripe_url;                   /* NULL: Stripe off */
    const char *paddle_url;                   /* NULL: Paddle off */
    const char *treasury;                     /* NULL: Hedera off */
    int64_t tinybars_per_credit;
    const struct deposit_token *tokens;
    size_t ntokens;
};

/** The text (heap; the caller frees it), or NULL when no method is on or
 *  memory ran out. wallet and pool may be NULL. */
char *deposit_text_make(const struct deposit_methods *m, const char *wallet, const char *pool);

#endif
