/* A payment provider's event, reduced to what the ledger needs. Filled in
 * by the provider adapters (adapters/stripe, adapters/paddle) from a
 * verified webhook body (core/webhook_sig.h); the daemon books it
 * (bot/payments.c). */
#ifndef HB_PAYMENT_H
#define HB_PAYMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum payment_action {
    PAYMENT_IGNORE = 0,     /* an event the bot does not act on */
    PAYMENT_CREDIT = 1,     /* money arrived: credit the referenced account */
    PAYMENT_REFUND = 2,     /* money returned: reverse (part of) the credit */
    PAYMENT_CHARGEBACK = 3, /* money taken back by a dispute: reverse the credit */
};

struct payment_event {
    enum payment_action action;
    char event_id[128];    /* the provider's event id (logs and the operator's notes) */
    char object_id[160];   /* what the transfer is derived from, once per payment object:
                              CREDIT the payment (Stripe Checkout Session, Paddle
                              transaction); REFUND/CHARGEBACK the return itself (Stripe
                              "<payment intent>:refunded:<cumulative amount>" or the dispute,
                              Paddle adjustment). Never the event id: one payment arrives
                              under several events. */
    char type[96];         /* the provider's event type, for logs */
    char reference[256];   /* CREDIT: the reference the checkout carried (may be "") */
    char payment_id[128];  /* the provider's payment (links refunds to the credit) */
    int64_t amount;        /* minor units: paid, tax included (CREDIT), or reversed (REFUND:
                              cumulative when amount_cumulative) */
    int64_t subtotal;      /* CREDIT: minor units before tax (less discounts); < 0: unknown */
    int amount_cumulative; /* REFUND: amount is the total refunded so far */
    char currency[8];      /* ISO code, lower case */
};

#endif
