/* Card payments: POST /webhooks/stripe and POST /webhooks/paddle on the
 * HTTP server, booked into the ledger exactly once.
 *
 * A webhook is answered 2xx only after what it caused is durably
 * committed (the credit, the record linking the payment to it, or the
 * note for the operator), so a provider's retry never loses a payment.
 * Transfers are named by the payment object, never by the event that
 * reported it: a credit "<provider>:<session or transaction>", a return
 * "<provider>:<refund state, dispute or adjustment>". One payment reported
 * under several events (Stripe's checkout.session.completed, then
 * checkout.session.async_payment_succeeded) credits once, and a refund
 * reverses that one credit. A payment whose link record (namespace
 * "payments", "<provider>:<payment id>") exists was credited, also when an
 * older ledger named its transfer by the event id: it is not credited
 * again. A bad or stale signature is 401 and logged without the
 * body; a signed body that is not an event is 400.
 *
 * Credits: the checkout carries a reference (core/payref.h) naming the
 * wallet or pool; the amount paid picks the package (price -> credits);
 * the credit is booked, and the member told, by core/deposit.h. A
 * payment whose reference or amount matches nothing is recorded in the
 * state table (namespace "payments.unmatched") for the operator, never
 * dropped. Refunds and chargebacks reverse the credit in proportion to the
 * amount returned; what was already spent is booked to debt:<account> by
 * the ledger. */
#ifndef HB_PAYMENTS_H
#define HB_PAYMENTS_H

#include "core/deposit.h"

#include <stddef.h>
#include <stdint.h>

struct server;
struct ledger;
struct notify_target;
struct payments;

#define PAYMENTS_PACKAGES_MAX 16

/** Which amount of a payment picks its package. */
enum payments_match {
    PAYMENTS_MATCH_SUBTOTAL = 0, /* before tax (and less discounts), when the provider says */
    PAYMENTS_MATCH_TOTAL = 1,    /* what the buyer paid, tax included */
};

struct payments_options {
    struct ledger **ledger;    /* borrowed pointer to the daemon's ledger (NULL while stopping) */
    const char *reference_key; /* HMAC key of references (copied) */
    const char *packages;      /* "price:credits, ..." */
    const char *currency;      /* ISO code of the prices; NULL: any */
    int64_t welcome_bonus;     /* paid when a payment opens a wallet */
    const char *stripe_secret; /* NULL: no Stripe route */
    int64_t stripe_tolerance;  /* seconds */
    const char *paddle_secret; /* NULL: no Paddle route */
    int64_t paddle_tolerance;  /* seconds */
    enum payments_match paddle_match_on; /* default subtotal: tax does not change the package */
    /* Tell the member (or group) a credit went in, once it is committed
     * (core/notify.h); to and text are borrowed for the call. Returns 0
     * when queued. May be NULL: then the notice is only logged. */
    int (*notify)(void *data, const struct notify_target *to, const char *text);
    void *notify_data;
};

/** Parse "500:1000, 1000:2200" into out (max entries). Returns the count,
 *  or HB_EINVAL naming nothing (the caller logs the text). */
int payments_packages_parse(const char *text, struct deposit_package *out, size_t max);

/** Register the webhook routes on srv. Secrets are copied. Returns NULL
 *  on bad options (no key, bad packages: logged) or no memory. */
struct payments *payments_new(struct server *srv, const struct payments_options *opts);

/** Webhooks received and not yet answered. */
size_t payments_pending(const struct payments *p);

/** Free after the loop has run out (every webhook answered). */
void payments_free(struct payments *p);

#endif
