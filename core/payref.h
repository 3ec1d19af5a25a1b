/* Payment references and deposit memos: how a payment names the account
 * it pays into.
 *
 * A card payment carries a reference (Stripe's client_reference_id,
 * Paddle's custom_data) and a crypto transfer a memo. Both name a ledger
 * account (a member's wallet "discord:123" or a pool "pool:telegram:-42")
 * and carry a truncated HMAC-SHA256 of it under the operator's secret, so
 * nobody can make one for an account (or read one as another's) without
 * the secret.
 *
 *   reference: base64url(account) followed by 22 base64url characters of
 *              MAC (132 bits); only [A-Za-z0-9_-], which Stripe accepts in
 *              client_reference_id (at most 200 characters).
 *   memo:      "hb:" account "/" 12 base64url characters of MAC (72 bits),
 *              readable by a member who types it into a wallet; at most 100
 *              bytes, Hedera's memo limit. */
#ifndef HB_PAYREF_H
#define HB_PAYREF_H

#include <stddef.h>

#define PAYREF_REFERENCE_MAX 200 /* bytes, without the NUL */
#define PAYREF_MEMO_MAX 100      /* bytes, without the NUL */
#define PAYREF_ACCOUNT_MAX 120   /* the longest account a reference carries */

/** Make the reference for account under key (klen bytes). Returns 0, or
 *  HB_EINVAL (empty key, account empty or too long, cap too small). */
int payref_reference_make(char *out, size_t cap, const void *key, size_t klen, const char *account);

/** Check a reference and copy its account into account (cap bytes).
 *  Returns 0, HB_EPERM (the MAC does not match: forged or another key), or
 *  HB_EINVAL (malformed). */
int payref_reference_check(const char *ref, const void *key, size_t klen, char *account,
                           size_t cap);

/** Make the memo for account, as payref_reference_make. The memo must fit
 *  PAYREF_MEMO_MAX: accounts longer than about 80 bytes get HB_EINVAL. */
int payref_memo_make(char *out, size_t cap, const void *key, size_t klen, const char *account);

/** Check a memo (surrounding spaces are ignored) and copy its account.
 *  Returns 0, HB_EPERM or HB_EINVAL as payref_reference_check. */
int payref_memo_check(const char *memo, const void *key, size_t klen, char *account, size_t cap);

#endif
