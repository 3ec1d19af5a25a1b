/* Signed webhooks: the one check of the HMAC-SHA256 signature schemes that
 * card providers (Stripe, Paddle) put in a header.
 *
 * Such a header is a list of key=value fields: one timestamp field and one
 * or more signature fields (several while a secret rolls; any one matching
 * is enough). Each signature is the lower-case hex HMAC-SHA256, under the
 * endpoint's secret, of "<timestamp><sep><raw body>". A scheme row says
 * what differs between providers; each provider adapter owns its row
 * (adapters/stripe, adapters/paddle). Pure functions over bytes. */
#ifndef HB_WEBHOOK_SIG_H
#define HB_WEBHOOK_SIG_H

#include <stddef.h>
#include <stdint.h>

/** How one provider signs. Rows are static constants; nothing is owned. */
struct webhook_sig_scheme {
    const char *name;          /* "stripe": for logs and metrics */
    const char *header;        /* the request header that carries it: "Stripe-Signature" */
    char field_sep;            /* between the header's fields: ',' or ';' */
    const char *stamp_key;     /* the timestamp field's prefix: "t=" */
    const char *sig_key;       /* a signature field's prefix: "v1=" */
    char signed_sep;           /* what is signed: "<timestamp><signed_sep><body>" */
    int64_t tolerance_default; /* seconds either side of now, when none is configured */
};

/** Verify header against the raw body under secret. now and tolerance are
 *  seconds; a timestamp more than tolerance before or after now is
 *  refused, but only once a signature matched. Signatures compare in
 *  constant time, every one of them, in any case of hex. Returns 0,
 *  HB_EPERM (no signature matches), HB_ETIMEOUT (stale or far future),
 *  HB_EINVAL (no header or secret, no or a malformed or repeated
 *  timestamp, no signature field), or HB_ENOMEM / HB_EIO. */
int webhook_sig_verify(const struct webhook_sig_scheme *s, const char *header, const char *secret,
                       const void *body, size_t len, int64_t now, int64_t tolerance);

/** Make the header for body at time t, with one signature (tests, and the
 *  scheme's documentation). Returns 0, HB_EINVAL when cap is too small, or
 *  HB_ENOMEM / HB_EIO. */
int webhook_sig_make(const struct webhook_sig_scheme *s, char *out, size_t cap, const char *secret,
                     const void *body, size_t len, int64_t t);

#endif
