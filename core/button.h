/* Button references: what a button carries back to the bot when pressed.
 *
 * A ref is "<prefix>:<payload>:<mac>", at most 64 bytes (Telegram's limit
 * for callback data). The prefix routes the press to the command that made
 * the button; the payload is the command's own (a page number, a job id);
 * the mac is a truncated HMAC-SHA256 under the bot's secret key over the
 * prefix, the payload and the member the button belongs to (platform and
 * user id, and the scope). A press is accepted only when the mac matches the
 * member pressing it, so a forged ref or another member's button is refused
 * without revealing which it was. */
#ifndef HB_BUTTON_H
#define HB_BUTTON_H

#include "core/command.h"

#include <stddef.h>
#include <stdint.h>

#define BUTTON_KEY_SIZE 32
#define BUTTON_MAC_CHARS 11 /* base64url characters of MAC: 66 bits */

/** Make a ref for a button that `owner`'s member may press (the platform,
 *  user and scope of owner are bound into it). prefix: [a-z0-9_], at most
 *  8 bytes; payload: no ':' and short enough for the whole ref to fit 64
 *  bytes. Returns 0, or HB_EINVAL. */
int button_ref_make(char out[COMMAND_BUTTON_REF_MAX + 1], const uint8_t key[BUTTON_KEY_SIZE],
                    const char *prefix, const char *payload, const struct invocation *owner);

/** Check inv->button_ref against the member pressing it. On success copies
 *  the payload into payload (cap bytes) and returns 0; returns HB_EPERM for
 *  a ref that is not this member's (or was forged), HB_EINVAL when it is
 *  malformed. */
int button_ref_check(const struct invocation *inv, const uint8_t key[BUTTON_KEY_SIZE],
                     char *payload, size_t cap);

#endif
