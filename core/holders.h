/* Holder shares ([revenue] holder_roles, holder_members, holder_payout):
 * the part of a group's revenue that its holders receive.
 *
 * A [revenue] share to the account "holders:<scope>" accrues, at every
 * settlement in a server or group and in the charge's own transaction, in
 * that group's holder account "holders:<platform>:<group>". Periodically
 * (holder_payout: daily, after each UTC day, or weekly, after each ISO
 * week ending Sunday 24:00 UTC) the account's available balance is paid
 * out to the group's holders pro rata to their weights:
 *
 *   - holder_members: "<platform>:<group>/<user>[*weight]" names a member
 *     holding in one group (a Telegram group has no roles: its holders are
 *     listed), weight 1 unless given.
 *   - holder_roles: "discord:<role id>": a Discord member seen holding one
 *     of these roles in a server (at any command there, within the last
 *     HOLDERS_SEEN_DAYS days) holds there with weight 1. Sightings are kept
 *     in the state table (HOLDERS_NS_ROLE), so they survive restarts; a
 *     member seen without the role stops holding.
 *
 * Holder i receives floor(balance * weight_i / total weight); what the
 * rounding leaves (less than one credit per holder) stays in the holder
 * account and is paid with the next payout, so no credit is created or
 * lost. Each payment is a ledger transfer "holders:<scope>:<period>:<user>"
 * (period "d2026-12-05" or "w2026-W49", the one that ended) from the holder
 * account to the wallet the member spends (their own, or the one their
 * identity is linked to, core/link.h). A payout is fixed first (who receives
 * what, one state row per group, HOLDERS_NS_PAYOUT, written in one store
 * transaction that checks it was not fixed before), then paid in one
 * ledger batch and marked paid: a restart, a daemon that was down at the
 * payout time (it pays at its next start, once, what accrued until then)
 * or a second daemon on the same ledger finds the row or the transfers
 * and pays nothing again. At most HOLDERS_PAYEES_MAX holders (the heaviest,
 * then by id) share one group's payout. */
#ifndef HB_HOLDERS_H
#define HB_HOLDERS_H

#include "core/command.h"
#include "storage/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct revenue_split;
struct core;

#define HOLDERS_ACCOUNT_PREFIX "holders:"  /* "holders:<platform>:<group>" */
#define HOLDERS_SHARE "holders:<scope>"    /* the [revenue] share that feeds it */
#define HOLDERS_NS_ROLE "holders.role"     /* "<scope>/<user>" -> "<ms last seen>" */
#define HOLDERS_NS_PAYOUT "holders.payout" /* "<scope>" -> "paid <period>" or a fixed payout */
#define HOLDERS_ROLES_MAX 32
#define HOLDERS_MEMBERS_MAX 200
#define HOLDERS_PAYEES_MAX 256
#define HOLDERS_WEIGHT_MAX 1000000
#define HOLDERS_SEEN_DAYS 30
#define HOLDERS_SCOPE_MAX (COMMAND_ID_MAX + 16) /* "<platform>:<group>" */

enum holders_every {
    HOLDERS_WEEKLY = 0, /* after each ISO week (Monday 00:00 UTC) */
    HOLDERS_DAILY = 1,  /* after each UTC day */
};

/** A listed holder. */
struct holders_member {
    char scope[HOLDERS_SCOPE_MAX]; /* "<platform>:<group>" */
    char user[COMMAND_ID_MAX];     /* platform user id */
    int64_t weight;                /* 1..HOLDERS_WEIGHT_MAX */
};

/** The holder settings of [revenue]. */
struct holders_config {
    uint64_t roles[HOLDERS_ROLES_MAX]; /* Discord role ids */
    size_t nroles;
    struct holders_member members[HOLDERS_MEMBERS_MAX];
    size_t nmembers;
    enum holders_every every;
};

/** Parse roles ("discord:<role id>, ..."; NULL: none) and members
 *  ("<platform>:<group>/<user>[*weight], ..."; NULL: none), paid out
 *  every. Returns 0, or HB_EINVAL with one sentence in err naming the
 *  entry. */
int holders_config_parse(const char *roles, const char *members, enum holders_every every,
                         struct holders_config *out, char *err, size_t errcap);

/** Check cfg against the split: a share to "holders:<scope>" needs holders
 *  named, holders named need that share, and no other account may start
 *  with "holders:". Returns 0 or HB_EINVAL with a sentence in err. */
int holders_config_check(const struct revenue_split *split, const struct holders_config *cfg,
                         char *err, size_t errcap);

/** The period key of the last payout period that ended at or before now_ms
 *  ("d2026-12-04", "w2026-W48"), into buf. Returns 0 or HB_EINVAL. */
int holders_period_ended(enum holders_every every, int64_t now_ms, char *buf, size_t cap);

/** One holder's part of a payout. */
struct holders_payee {
    char user[COMMAND_ID_MAX];
    int64_t weight;
    int64_t amount;
};

/** Split balance among p (n of them, weights > 0) pro rata, rounding down;
 *  returns what is left (0 <= left < n, or balance when n is 0). */
int64_t holders_split(int64_t balance, struct holders_payee *p, size_t n);

/* ---- the running payouts ---------------------------------------------------- */

struct holders;

/** No holders configured. core is borrowed (ledger, clock, bonus). NULL
 *  when out of memory. */
struct holders *holders_new(struct core *core);
void holders_free(struct holders *h);

/** Use cfg from now on (at start and on every reload). */
void holders_configure(struct holders *h, const struct holders_config *cfg);

/** A member invoked a command: on Discord in a server, with holder_roles
 *  set, remember whether they hold a holder role there (a store write
 *  only when it changed, or once a day to refresh the sighting). */
void holders_seen(struct holders *h, const struct invocation *inv);

/** The holding weight of the member invoking inv in its group: their
 *  listed weight, 1 for a holder role, 0 for none. */
int64_t holders_weight(const struct holders *h, const struct invocation *inv);

/** Pay every payout due (at start and every minute): one store pass over
 *  the groups with holders, then one ledger batch per group. Returns true
 *  when a pass began. */
bool holders_tick(struct holders *h);

/** Passes and payments under way (tests wait for 0). */
size_t holders_busy(const struct holders *h);

#endif
