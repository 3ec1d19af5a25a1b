/* Members' wallets and scopes' pools: the accounts commands charge.
 *
 * A member's wallet is "<platform>:<user id>", or the wallet that identity
 * is linked to (core/link.h: one wallet across platforms); it is opened on the member's
 * first command with the configured welcome bonus, once (the ledger makes
 * the bonus idempotent). A Discord guild's or Telegram group's pool is
 * "pool:<platform>:<scope id>". Both refuse to go below zero. */
#ifndef HB_WALLET_H
#define HB_WALLET_H

#include "core/command.h"

#include <stdbool.h>
#include <stddef.h>

struct core;

#define WALLET_ACCOUNT_MAX 160

/** Completion of wallet_open: rc 0 when the wallet exists now; created is
 *  true when this call opened it (and paid the welcome bonus). */
typedef void (*wallet_open_cb)(int rc, bool created, void *data);

/** Open the invoking member's wallet (and pay the welcome bonus once) if it
 *  does not exist yet. Returns 0 (cb follows) or a negative code. */
int wallet_open(struct core *core, const struct invocation *inv, wallet_open_cb cb, void *data);

/** The invoking member's wallet account id: their own, or the one their
 *  identity is linked to (core/link.h; core NULL: their own). Returns 0 or
 *  HB_EINVAL. */
int wallet_account(const struct core *core, const struct invocation *inv, char *buf, size_t cap);

/** The pool account of the invocation's scope; HB_ENOTFOUND in a DM. */
int wallet_pool_account(const struct invocation *inv, char *buf, size_t cap);

#endif
