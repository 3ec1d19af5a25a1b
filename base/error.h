/* Error codes shared by every layer.
 *
 * Functions return int: 0 on success, a negative code on failure. libuv's
 * codes (negative errno values, all above -4096... -1) pass through
 * unchanged; HAI Bot's own codes live at HB_ERROR_BASE and below, so the two
 * ranges never collide. Remote errors (an HTTP status, a platform's error
 * code) are not squeezed into this enum: modules report them separately. */
#ifndef HB_ERROR_H
#define HB_ERROR_H

#define HB_ERROR_BASE (-20000)

enum hb_error {
    HB_OK = 0,
    HB_EINVAL = HB_ERROR_BASE - 1,   /* bad argument or bad input */
    HB_ENOMEM = HB_ERROR_BASE - 2,   /* allocation failed */
    HB_ECONFIG = HB_ERROR_BASE - 3,  /* configuration is invalid */
    HB_EIO = HB_ERROR_BASE - 4,      /* file or socket I/O failed */
    HB_ESTORAGE = HB_ERROR_BASE - 5, /* the database reported an error */
    HB_ESCHEMA =
        HB_ERROR_BASE - 6, /* database schema is not this build's (newer, or older read-only) */
    HB_EEXISTS = HB_ERROR_BASE - 7,    /* idempotent replay: already done, same fields */
    HB_ECONFLICT = HB_ERROR_BASE - 8,  /* same id, different fields */
    HB_ENOTFOUND = HB_ERROR_BASE - 9,  /* no such account, transfer, command... */
    HB_EFUNDS = HB_ERROR_BASE - 10,    /* not enough available credits */
    HB_ESTATE = HB_ERROR_BASE - 11,    /* wrong state: already posted, voided, expired */
    HB_ETIMEOUT = HB_ERROR_BASE - 12,  /* a deadline passed */
    HB_ECANCELED = HB_ERROR_BASE - 13, /* stopped by shutdown or by the caller */
    HB_EHTTP = HB_ERROR_BASE - 14,     /* a remote answered with an HTTP error status */
    HB_EPROTO = HB_ERROR_BASE - 15,    /* a remote broke its protocol (bad JSON, bad frame) */
    HB_ETAMPER = HB_ERROR_BASE - 16,   /* ledger hash chain or invariant broken */
    HB_ELIMIT = HB_ERROR_BASE - 17,    /* a rate limit or quota refused the request */
    HB_EBUSY = HB_ERROR_BASE - 18,     /* a bounded queue is full */
    HB_EPERM = HB_ERROR_BASE - 19,     /* not allowed for this user or scope */
    HB_EOVERFLOW = HB_ERROR_BASE - 20, /* an amount or size would overflow */
};

/** Describe an error code: HAI Bot's own, libuv's, or "unknown error".
 *  Returns a static string; never NULL. */
const char *hb_strerror(int code);

#endif
