/* Deposits: how to top up, and booking a payment that arrived.
 *
 * The /deposit text describes the configured methods (packages and
 * prices, the crypto rate and treasury); given the member's wallet and the
 * group's pool, it also carries their checkout links with the signed
 * reference and their deposit memos (core/payref.h).
 *
 * Every payment method books through one path: card webhooks
 * (bot/payments.c), the Hedera poller (bot/mirror.c) and Telegram Stars
 * (adapters/telegram/stars.c) each decide which account a payment is for
 * and how many credits it buys, then deposit_credit opens the account
 * (paying a new wallet its welcome bonus), credits it once per payment id,
 * reads the new balance and, when asked, tells the member through the
 * neutral notify function (core/notify.h). A refund or chargeback is
 * deposit_reverse: what was already spent is booked to debt:<account> by
 * the ledger, and the account's next deposits repay that debt first (a
 * transfer from the account to debt:<account>, named by
 * deposit_repay_id_make, once per deposit). Nothing here knows a platform's or provider's type. */
#ifndef HB_DEPOSIT_H
#define HB_DEPOSIT_H

#include "core/notify.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ledger;

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
    const char *key;                        /* reference key; NULL: no references */
    const struct deposit_package *packages; /* card packages */
    size_t npackages;
    const char *currency;   /* of the prices ("usd") */
    const char *stripe_url; /* NULL: Stripe off */
    const char *paddle_url; /* NULL: Paddle off */
    const char *treasury;   /* NULL: Hedera off */
    int64_t tinybars_per_credit;
    const struct deposit_token *tokens;
    size_t ntokens;
};

/** The text (heap; the caller frees it), or NULL when no method is on or
 *  memory ran out. wallet and pool may be NULL. */
char *deposit_text_make(const struct deposit_methods *m, const char *wallet, const char *pool);

/* Payments that could not be booked, kept for the operator in the state
 * table (bot/payments.c, bot/mirror.c), and those an admin credited since
 * (/admin payments assign). */
#define DEPOSIT_NS_UNMATCHED "payments.unmatched"      /* "<provider>:<event id>" */
#define DEPOSIT_NS_UNMATCHED_HEDERA "hedera.unmatched" /* "<transaction>[:<token>]" */
#define DEPOSIT_NS_ASSIGNED "payments.assigned"        /* the listed id */
/* Card payments credited by their webhooks: "<provider>:<payment id>" ->
 * "<transfer id> <account> <credits> <amount> <reversed>". */
#define DEPOSIT_NS_PAYMENT_LINKS "payments"
/* A deposit whose repayment of debt is still to be looked at: written with
 * its credit, removed once the repayment is booked or nothing was owed. A
 * replay of the deposit repays only while it is there (a stop between the
 * credit and its repayment), never debt that came after the credit. Key:
 * the deposit's transfer id. */
#define DEPOSIT_NS_REPAY "deposit.repay"

/* ---- booking ------------------------------------------------------------ */

#define DEPOSIT_ID_MAX 120 /* longest transfer id, bytes (the ledger's LEDGER_ID_LEN_MAX) */

/** The transfer id of a payment, "<method>:<payment>" or
 *  "<method>:<payment>:<part>" (part NULL or "": none), e.g.
 *  "tg:stars:<charge id>", "hedera:<transaction id>:<token id>". One
 *  payment, however often it is reported, must make one id. Returns 0, or
 *  HB_EINVAL when a piece is empty or the id would not fit cap or
 *  DEPOSIT_ID_MAX. */
int deposit_id_make(char *out, size_t cap, const char *method, const char *payment,
                    const char *part);

/** A payment to book. Strings are borrowed for the call (copied). */
struct deposit_credit {
    const char *id;        /* the transfer id (deposit_id_make) */
    const char *account;   /* a wallet "<platform>:<user>" or a pool "pool:<platform>:<group>" */
    const char *channel;   /* pools: the chat the deposit was started in; NULL or "": unknown */
    int64_t credits;       /* what the payment buys, > 0 */
    int64_t welcome_bonus; /* paid once when this opens a wallet (never to a pool) */
    const char *ref;       /* the transfer's ref: what paid (no personal data) */
    const char *method;    /* for logs: "stripe", "hedera", ... */
    const char *via;       /* the notice's word for the method ("card", "Hedera"); NULL: no
                              notice, the caller answers with the result itself */
    notify_fn notify;      /* with via: hands the notice to an adapter; NULL: only logged */
    void *notify_data;
};

/** What booking did. Borrowed by the callback for its duration. */
struct deposit_result {
    bool existed;     /* the id was credited before (a replay): nothing moved now */
    int64_t balance;  /* the account's available credits afterwards; < 0: unknown */
    int64_t debt;     /* deposit_reverse: credits booked to debt:<account> */
    int64_t repaid;   /* deposit_credit: credits of this deposit that repaid debt now */
    const char *step; /* rc < 0: what failed ("open account", "credit", "reverse") */
};

/** rc is 0 (also for a replay: see existed) or why booking failed; then
 *  nothing was credited by this call. */
typedef void (*deposit_cb)(int rc, const struct deposit_result *r, void *data);

/** The id of the repayment a deposit makes: "<deposit id>:repay", or
 *  "repay:<SHA-256 of the deposit id, hex>" when that would not fit
 *  DEPOSIT_ID_MAX. Returns 0 or HB_EINVAL. */
int deposit_repay_id_make(char *out, size_t cap, const char *deposit_id);

/** Book c on ledger: open the account (an existing one is fine), credit
 *  c->credits from the system deposits account as c->id (once: a replay
 *  completes with existed and moves nothing), repay what debt:<account>
 *  owes from it (at most c->credits and what is available, as the transfer
 *  deposit_repay_id_make(c->id), once; repayments of all deposits run one
 *  at a time so two never repay the same debt), read the balance, and for
 *  a new credit with c->via tell the account's owner (a wallet by DM, a pool
 *  in c->channel) with it. Then cb, once, after the credit is durable.
 *  Returns 0, or HB_EINVAL (a missing or too long field), HB_ECANCELED (no
 *  ledger), HB_ENOMEM or the ledger's refusal, and then never calls cb. */
int deposit_credit(struct ledger *ledger, const struct deposit_credit *c, deposit_cb cb,
                   void *data);

/** A payment returned: take back (part of) its credit. */
struct deposit_reversal {
    const char *id;       /* the reversal's transfer id, derived from what returned it */
    const char *original; /* the deposit's transfer id */
    int64_t credits;      /* credits to take back, > 0 */
    bool chargeback;      /* taken by a dispute (kind CHARGEBACK), else a refund */
    const char *ref;      /* the transfer's ref */
};

/** Reverse r->credits of the deposit r->original as r->id, once (a replay
 *  completes with existed). What the account no longer holds is booked to
 *  debt:<account>; the result's debt says how much. Returns and calls back
 *  as deposit_credit; balance is not read (< 0). */
int deposit_reverse(struct ledger *ledger, const struct deposit_reversal *r, deposit_cb cb,
                    void *data);

#endif
