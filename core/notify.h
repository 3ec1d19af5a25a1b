/* Where an unprompted message goes: a member, or a group chat, on one
 * platform.
 *
 * Replies answer an invocation through its reply handle; a notice has no
 * invocation behind it (a payment booked by a webhook, a generation voided
 * at restart), so the sender names the recipient with a neutral target and
 * the daemon hands it to the adapter of that platform
 * (adapters/adapter.h, the notify operation). Nothing here knows a Discord
 * or Telegram type. */
#ifndef HB_NOTIFY_H
#define HB_NOTIFY_H

#include "core/command.h"

struct store;

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** A recipient, by value. */
struct notify_target {
    enum command_platform platform;
    char user_id[COMMAND_ID_MAX];    /* platform user id, no prefix; "" for a group notice */
    enum command_scope scope;        /* DM: to the member privately; GROUP: where they started */
    char scope_id[COMMAND_ID_MAX];   /* guild id / group chat id; "" in a DM */
    char channel_id[COMMAND_ID_MAX]; /* the channel or chat to post in; "" when not known */
};

/** Fill `to` from a ledger account: a wallet "<platform>:<user>" becomes a
 *  DM to that member; a pool "pool:<platform>:<group>" becomes a group
 *  notice (scope_id and, on Telegram where the group id is the chat id,
 *  channel_id). Returns 0, or HB_EINVAL for an account that names nobody
 *  (a system account, an unknown platform, ids too long). */
int notify_target_from_account(struct notify_target *to, const char *account);

/** Deliver a function to whoever can reach a member: 0 once queued,
 *  HB_ENOTFOUND when no adapter runs for the platform, another negative
 *  code when it refused. */
typedef int (*notify_fn)(void *data, const struct notify_target *to, const char *text);

/** Tell the owner of `account` that a payment of `credits` arrived through
 *  `method` ("card", "Hedera"), with the new balance (< 0: unknown): by DM
 *  for a wallet, in `channel` (may be "" or NULL) for a pool. fn may be
 *  NULL. Returns a short note for the log saying whether it went out. */
const char *notify_payment(notify_fn fn, void *data, const char *account, const char *channel,
                           const char *method, int64_t credits, int64_t balance);

/** Notices owed, kept in the state table (core/state.h) under this
 *  namespace. A payment's is keyed by the deposit's transfer id: the row is
 *  written in the credit's own transaction (ledger_transfer_create_noted)
 *  and removed once an adapter took the notice (its own outbox keeps it
 *  from there), so a kill between the commit and the send leaves it to be
 *  sent at the next start. A low balance a standby could not tell (only
 *  the Telegram poller sends to Telegram) is keyed NOTIFY_LOW_PREFIX and
 *  the account, an upvote notice NOTIFY_UPVOTES_PREFIX, the account, a dot
 *  and the time, for the poller's next pass (core/notice.c). */
#define NOTIFY_NS_PENDING "notice.payment"
#define NOTIFY_LOW_PREFIX "low."
#define NOTIFY_UPVOTES_PREFIX "up."

/** The row's value for a payment notice written at at_ms (ms since the
 *  epoch): JSON text in buf (cap bytes). Returns 0, or HB_EOVERFLOW /
 *  HB_ENOMEM. */
int notify_pending_value(char *buf, size_t cap, const char *account, const char *channel,
                         const char *via, int64_t credits, int64_t at_ms);

/** The row's value for any other notice owed (a low balance a standby
 *  could not send), with its text as it is to be sent. As
 *  notify_pending_value. */
int notify_pending_text_value(char *buf, size_t cap, const char *account, const char *channel,
                              const char *text, int64_t at_ms);

/** Remove the pending row `key` (its notice went out, or can never). */
void notify_pending_clear(struct store *store, const char *key);

/** Send every pending payment notice through fn (at start, once the
 *  adapters run), without the balance, which may have moved since; each
 *  one taken by an adapter, or naming nobody, is removed. Returns 0 or a
 *  negative code (nothing was read). */
int notify_pending_send(struct store *store, notify_fn fn, void *data);

/** notify_pending_send for the notices to members of one platform written
 *  before before_ms (a row from before "at" was kept counts as old): on a
 *  shared ledger, only the Telegram poller can send to Telegram, so it
 *  sends those another daemon took a payment for, while it holds the
 *  poller's lease. A row younger than before_ms is left to the daemon that
 *  wrote it, which sends it right after its commit. done(done_data) follows
 *  once the pass is over (not when this returns an error). */
int notify_pending_retry(struct store *store, enum command_platform platform, int64_t before_ms,
                         notify_fn fn, void *data, void (*done)(void *done_data), void *done_data);

/** Whether notify_payment's note means nothing is left to do: taken by an
 *  adapter, or naming nobody. */
bool notify_note_final(const char *note);

/** A signed payment reference or memo may name the chat a deposit was
 *  started in after the account: "pool:discord:42#<channel>". Cut account
 *  at the '#' and copy what follows into channel (cap bytes; "" when none). */
void notify_account_split(char *account, char *channel, size_t cap);

/** The notice for a credit that went in: "Your payment arrived: 1,000
 *  credits. Your wallet now has 1,100 credits available." (a group's pool
 *  is named as such). via names the method ("card", "Hedera"); balance < 0
 *  leaves the balance out. Writes at most cap bytes; returns buf. */
char *notify_credit_text(char *buf, size_t cap, const struct notify_target *to, const char *via,
                         int64_t credits, int64_t balance);

#endif
