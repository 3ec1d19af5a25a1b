/* Stripe webhooks: the Stripe-Signature scheme and the events the bot acts
 * on. Pure functions; bot/payments.c serves the route.
 *
 * Stripe-Signature is "t=<unix seconds>,v1=<hex>[,v1=<hex>...][,v0=...]".
 * Each v1 is HMAC-SHA256 under the endpoint's secret over "<t>.<raw body>";
 * any one matching is enough (Stripe sends several while a secret rolls).
 * The check itself is core/webhook_sig.h's, driven by stripe_sig_scheme. */
#ifndef HB_STRIPE_H
#define HB_STRIPE_H

#include "core/payment.h"
#include "core/webhook_sig.h"

#include <stddef.h>
#include <stdint.h>

/** The Stripe-Signature row of the signature schemes. */
extern const struct webhook_sig_scheme stripe_sig_scheme;

/** Verify the header against the raw body (webhook_sig_verify with
 *  stripe_sig_scheme). now and tolerance are seconds;
 *  a timestamp older than tolerance (or as far in the future) is refused.
 *  Returns 0, HB_EPERM (no v1 matches), HB_ETIMEOUT (stale) or HB_EINVAL
 *  (missing or malformed header). Compares in constant time. */
int stripe_signature_verify(const char *header, const char *secret, const void *body, size_t len,
                            int64_t now, int64_t tolerance);

/** Make a header for body at time t (tests, and documentation of the
 *  scheme). Returns 0 or HB_EINVAL when cap is too small. */
int stripe_signature_make(char *out, size_t cap, const char *secret, const void *body, size_t len,
                          int64_t t);

/** Read an event: checkout.session.completed and
 *  checkout.session.async_payment_succeeded credit once paid (object_id:
 *  the session; an unpaid session is PAYMENT_IGNORE until its async event);
 *  charge.refunded refunds (cumulative amount; object_id
 *  "<payment intent>:refunded:<amount>"); charge.dispute.created is a
 *  chargeback (object_id: the dispute); everything else is PAYMENT_IGNORE. Returns 0 or HB_EPROTO
 * (not an event, or a field the action needs is missing). */
int stripe_event_parse(const char *body, size_t len, struct payment_event *out);

#endif
