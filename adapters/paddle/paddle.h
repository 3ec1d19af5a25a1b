/* Paddle Billing webhooks: the Paddle-Signature scheme and the events the
 * bot acts on. Pure functions; bot/payments.c serves the route.
 *
 * Paddle-Signature is "ts=<unix seconds>;h1=<hex>[;h1=<hex>...]"; each h1
 * is HMAC-SHA256 under the notification destination's secret over
 * "<ts>:<raw body>". The check itself is core/webhook_sig.h's, driven by
 * paddle_sig_scheme. */
#ifndef HB_PADDLE_H
#define HB_PADDLE_H

#include "core/payment.h"
#include "core/webhook_sig.h"

#include <stddef.h>
#include <stdint.h>

/** The Paddle-Signature row of the signature schemes. */
extern const struct webhook_sig_scheme paddle_sig_scheme;

/** As stripe_signature_verify, for Paddle's header (paddle_sig_scheme). */
int paddle_signature_verify(const char *header, const char *secret, const void *body, size_t len,
                            int64_t now, int64_t tolerance);

/** Make a header for body at time ts (tests). */
int paddle_signature_make(char *out, size_t cap, const char *secret, const void *body, size_t len,
                          int64_t ts);

/** Read an event: transaction.completed credits (object_id: the
 *  transaction; the reference comes from custom_data.reference; amount is
 *  details.totals.grand_total, subtotal is its subtotal less discount, or
 *  -1 when absent); adjustment.created or adjustment.updated with
 *  status approved and action refund or chargeback reverse (object_id: the adjustment). Everything
 * else is PAYMENT_IGNORE. Returns 0 or HB_EPROTO. */
int paddle_event_parse(const char *body, size_t len, struct payment_event *out);

#endif
