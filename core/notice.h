/* Member notices no command asked for: a wallet (or a group's pool) whose
 * balance fell below [notices] low_balance, and the upvotes a member's
 * images received.
 *
 * Low balance: one notice per crossing. Whether an account is below is kept
 * in the state table (NOTICE_NS_LOW), moved in one step on the store's
 * thread (state_incr), so two generations settling at once, or a restart,
 * never send a second notice for the same crossing; rising back to the
 * threshold or above removes the mark, and the next fall notifies again.
 * A daemon alone on its ledger remembers which side each account was last
 * read on and asks the store only when that changes; one sharing its
 * ledger (options.shared) asks at every reading, since another daemon may
 * have moved the account across in between.
 *
 * Upvotes: counted per creator and told at most once per
 * upvote_interval_ms (an hour by default): the first upvote after a quiet
 * hour is told at once, the ones after it wait for notices_tick once the
 * hour has passed and go as one notice. The untold counts and the time of
 * each creator's last notice are kept in the state table only, and each
 * vote or tick decides there, in one store job, whether a notice is due:
 * a restart forgets none and tells none sooner, and daemons sharing a
 * ledger count one total and tell it once an interval. A notice a standby
 * may not send (to Telegram) is owed, as a low balance's is.
 *
 * A member who sent /notify off (NOTICE_NS_OFF) gets neither. Notices go
 * through notify_fn (core/notify.h): the adapters' durable outboxes, which
 * retry and keep what they cannot deliver. A low-balance notice no adapter
 * takes (none runs for the platform, or it refused) forgets its crossing,
 * so the next low reading tries again. */
#ifndef HB_NOTICE_H
#define HB_NOTICE_H

#include "base/clock.h"
#include "core/notify.h"

#include <stdbool.h>
#include <stdint.h>

struct store;

/** State namespace of the low-balance marks: key the account, value the
 *  count of low readings since it fell below (absent: not below). */
#define NOTICE_NS_LOW "notice.low"
/** State namespace of the upvotes not told yet: key "<platform>:<creator>"
 *  (the creator's wallet), value their count. */
#define NOTICE_NS_UPVOTES "notice.upvotes"
/** State namespace of when each creator was last told: same key, value ms. */
#define NOTICE_NS_UPVOTED "notice.upvoted"
/** State namespace of the members who turned notices off: key the wallet
 *  account, value "off" (absent: on). */
#define NOTICE_NS_OFF "notice.off"

#define NOTICE_UPVOTE_INTERVAL_MS 3600000 /* default: at most one upvote notice an hour */

struct notice_options {
    struct clock clock;  /* the zero value reads the real clock */
    int64_t low_balance; /* credits; below it a notice is owed; 0: no low-balance notices */
    int64_t
        upvote_interval_ms; /* least time between two upvote notices to one member; 0: default */
    bool upvotes;           /* tell creators about upvotes */
    bool shared;            /* other daemons write the same ledger: no reading is judged by
                               what this one last saw (kept from notices_new on) */
};

struct notices;

/** Notices over store (borrowed) sent through fn(fn_data). NULL on no memory. */
struct notices *notices_new(struct store *store, notify_fn fn, void *fn_data,
                            const struct notice_options *opts);

/** Free it, dropping upvotes not yet told (NULL is fine). */
void notices_free(struct notices *n);

/** Apply new settings (a reload); the clock stays. */
void notices_configure(struct notices *n, const struct notice_options *opts);

/** An account's available balance was read after it was spent from
 *  (account "<platform>:<user>" or "pool:<platform>:<group>"). Sends the
 *  low-balance notice when this reading is the first below the threshold
 *  since the last one at or above it: a wallet's by DM, a pool's in
 *  channel (the chat it was spent from; may be NULL). Returns 1 when it
 *  went to the store: done(data) follows once any notice was handed to an
 *  adapter (so work that waits for it keeps the daemon from stopping
 *  first); 0 when there was nothing to do, or a negative code (then done
 *  does not run). done may be NULL. */
int notices_balance(struct notices *n, const char *account, int64_t available, const char *channel,
                    void (*done)(void *data), void *data);

/** An upvote of one of creator's images was counted on platform. */
void notices_upvote(struct notices *n, enum command_platform platform, const char *creator);

/** Send the batched upvote notices whose interval has passed (read from
 *  the store: those another daemon, or a run before a restart, counted
 *  too). Call from a timer (the daemon ticks it every minute). */
void notices_tick(struct notices *n);

/** Completion of notices_optout_set/get: rc 0 or an error; off is the
 *  member's setting. */
typedef void (*notices_optout_cb)(int rc, bool off, void *data);

/** Turn a member's notices off or on (wallet account), durably. */
int notices_optout_set(struct store *store, const char *wallet, bool off, notices_optout_cb cb,
                       void *data);

/** Read whether a member turned notices off. */
int notices_optout_get(struct store *store, const char *wallet, notices_optout_cb cb, void *data);

#endif
