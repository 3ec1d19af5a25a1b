/* Discord's HTTP interactions endpoint: the request signature check.
 *
 * Discord signs every request to an interactions endpoint with the
 * application's Ed25519 key: X-Signature-Ed25519 (hex) over the
 * X-Signature-Timestamp header followed by the raw body. An endpoint must
 * refuse a request whose signature does not verify with 401, and answer a
 * PING (type 1) with a PONG (type 1). Pure functions, no I/O: the HTTP
 * server that will call them is not part of this module. */
#ifndef HB_DISCORD_VERIFY_H
#define HB_DISCORD_VERIFY_H

#include <stddef.h>
#include <stdint.h>

/** Verify an Ed25519 signature. public_key_hex: the application's public
 *  key (64 hex digits); signature_hex: 128 hex digits; timestamp and body
 *  as received. Returns 0 when it verifies, HB_EPERM when it does not,
 *  HB_EINVAL for malformed input (also refused). */
int discord_signature_verify(const char *public_key_hex, const char *signature_hex,
                             const char *timestamp, const char *body, size_t body_len);

/** How far a signed X-Signature-Timestamp may lie from now, either way:
 *  a signature proves who sent a request, not when, so an older (or
 *  future-dated) one is refused as a possible replay. */
#define DISCORD_TIMESTAMP_MAX_SKEW_S 300

/** Is timestamp (Unix seconds, as Discord sends it) within
 *  DISCORD_TIMESTAMP_MAX_SKEW_S of now_s? Returns 0; HB_EPERM when it is
 *  too old or too far ahead; HB_EINVAL when it is not a number. */
int discord_timestamp_check(const char *timestamp, int64_t now_s);

/** What the endpoint answers. */
struct discord_endpoint_answer {
    int status;       /* 401 refused, 200 answered here (PING), 0: verified, not answered */
    const char *body; /* static JSON or text for status 401/200; NULL for 0 */
};

/** Check one request to the interactions endpoint: signature first (any
 *  header missing or wrong is 401), then PING -> PONG. A verified
 *  interaction that is not a PING gets status 0: hand the body to the
 *  adapter, which answers it. */
void discord_endpoint_check(const char *public_key_hex, const char *signature_hex,
                            const char *timestamp, const char *body, size_t body_len,
                            struct discord_endpoint_answer *out);

#endif
