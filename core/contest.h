/* Contests: one at a time per server or group, started by its admins
 * (/admin contest start), shown by /contest, and ended exactly once.
 *
 * A contest has an id (its start time in ms), a start and an end time, a
 * prize (credits; 0: the whole prize account) and the channel where it was
 * started, where its results are posted. It is kept in the state table
 * (namespace CONTEST_NS, key "<platform>:<group>"), so it survives a
 * restart, and cached in memory, so a vote never waits to learn whether a
 * contest runs.
 *
 * Entries and votes: every upvote cast while the contest runs, on an image
 * made in its group, also counts on the group's board under the contest's
 * own period "c<id>" (core/votes.h), so the standings are one indexed
 * top-N read of the votes table. A creator places once, with their best
 * entry.
 *
 * The prize comes from the group's prize account "system:prizes:<scope>"
 * ([revenue] can feed it with a share; an operator can grant to it). At the
 * end the pool is the prize (or, with no prize, the account's balance),
 * never more than the balance; rank i receives pool * split[i] / 100
 * rounded down ([contest] winners and split). What rounding and missing
 * ranks leave stays in the account for the next contest. Each payment is a
 * ledger transfer "prize:<scope>:<id>:<rank>", all of them in one batch:
 * a second end (a restart, another daemon on the same ledger) finds them
 * and pays nothing. The end is checked at start and every minute
 * (contests_load, by the daemon's timer). */
#ifndef HB_CONTEST_H
#define HB_CONTEST_H

#include "core/command.h"
#include "storage/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONTEST_NS "contest"
#define CONTEST_WINNERS_MAX 10
#define CONTEST_PRIZES_PREFIX "system:prizes:"
#define CONTEST_SCOPE_MAX (COMMAND_ID_MAX + 24) /* "<platform>:<group>" */
#define CONTEST_PERIOD_MAX 16                   /* "c<id>", as a votes period */
#define CONTEST_DAY_MS 86400000LL
#define CONTEST_DAYS_MAX 366

#define CONTEST_WEIGHTS_MAX 16  /* weight_roles entries */
#define CONTEST_WEIGHT_MAX 1000 /* most one vote can count */

/** A role whose holders' contest votes count more. */
struct contest_weight {
    uint64_t role; /* Discord role id */
    int weight;    /* 1..CONTEST_WEIGHT_MAX */
};

/** [contest]: how many creators win and their parts, in percent; how much
 *  a vote counts in a contest (weight_roles, weight_holders). */
struct contest_rules {
    int winners;
    int split[CONTEST_WINNERS_MAX];
    struct contest_weight weights[CONTEST_WEIGHTS_MAX];
    size_t nweights;
    bool weight_holders; /* a holder's vote counts their holding (core/holders.h) */
};

/** Parse split ("50,30,20": winners whole percentages, each > 0, adding up
 *  to 100 or less) for winners (1..CONTEST_WINNERS_MAX). Returns 0 or
 *  HB_EINVAL with one sentence in err. */
int contest_rules_parse(int64_t winners, const char *split, struct contest_rules *out, char *err,
                        size_t errcap);

/** Parse weight_roles ("discord:<role id> N, ...", N 1..CONTEST_WEIGHT_MAX;
 *  NULL: none) and weight_holders into out (after contest_rules_parse).
 *  Returns 0 or HB_EINVAL with one sentence in err. */
int contest_weights_parse(const char *roles, bool holders, struct contest_rules *out, char *err,
                          size_t errcap);

/** One contest. */
struct contest {
    enum command_platform platform;
    char scope_id[COMMAND_ID_MAX];   /* the group */
    char channel_id[COMMAND_ID_MAX]; /* where results are posted */
    int64_t id;                      /* its start, ms since the epoch */
    int64_t end_ms;
    int64_t prize; /* credits; 0: the prize account's balance */
};

/** The end of a contest started at now_ms: "week" (or NULL/""): Monday
 *  00:00 UTC after now; "N" days (1..CONTEST_DAYS_MAX): now + N days.
 *  Returns 0 or HB_EINVAL. */
int contest_end_for(const char *period, int64_t now_ms, int64_t *end_ms);

/** "<platform>:<group>", "c<id>", "system:prizes:<scope>" of c. */
int contest_scope(const struct contest *c, char *buf, size_t cap);
int contest_period(const struct contest *c, char *buf, size_t cap);
int contest_prize_account(const struct contest *c, char *buf, size_t cap);

struct notify_target;

/** Where a contest's results (and their images) are posted: the channel
 *  it was started in, or the group itself. */
void contest_results_target(const struct contest *c, struct notify_target *to);

/** The ledger payments of an ended contest, as contest_payout computes. */
struct contest_payment {
    char id[STORE_ID_SIZE];      /* "prize:<scope>:<id>:<rank>" */
    char account[STORE_ID_SIZE]; /* the winner's wallet */
    char creator[STORE_ID_SIZE]; /* the winner's platform user id */
    int64_t upvotes;             /* their best entry's */
    int64_t amount;
};

/** The winners of c from its board (rows highest first, as
 *  store_txn_vote_top gives them), each creator once, and their prizes
 *  from pool by rules. Returns how many (at most rules->winners); a winner
 *  whose part rounds to 0 is listed with amount 0. */
size_t contest_payout(const struct contest *c, const struct contest_rules *rules,
                      const struct store_vote *rows, size_t n, int64_t pool,
                      struct contest_payment *out);

/** Read c's standings: its entries highest first, at most max (<=
 *  VOTES_TOP_MAX). cb as votes_top's. Returns 0 (cb follows) or a negative
 *  code. */
typedef void (*contest_board_cb)(int rc, const struct store_vote *rows, size_t n, void *data);
int contest_board(struct store *store, const struct contest *c, size_t max, contest_board_cb cb,
                  void *data);

/* ---- the running contests ------------------------------------------------- */

struct core;
struct contests;

/** No contest known; rules: 3 winners, 50/30/20. NULL when out of memory.
 *  core is borrowed (its ledger, clock and host notify). */
struct contests *contests_new(struct core *core);
void contests_free(struct contests *cs);

struct contest_schedule;

/** Run contests by themselves per s (core/contest_schedule.h; copied; NULL
 *  or no groups: none) from the next tick on. Returns 0 or HB_ENOMEM. */
int contests_schedule(struct contests *cs, const struct contest_schedule *s);

/** Use rules from now on (at start and on every reload). */
void contests_configure(struct contests *cs, const struct contest_rules *rules);
const struct contest_rules *contests_rules(const struct contests *cs);

typedef void (*contests_cb)(int rc, void *data);

/** Read every stored contest into the cache (at start, and every minute:
 *  contests started or stopped by another daemon on the same store are
 *  learnt so), then end those past their end (contests_tick). cb (may be
 *  NULL) after the read. Returns 0 (cb follows) or a negative code. */
int contests_load(struct contests *cs, contests_cb cb, void *data);

/** contests_load without a callback, for a change heard from another
 *  daemon (core/cluster.h): when a read is under way (it may have begun
 *  before that change), another follows it. 0 or a negative code. */
int contests_load_after(struct contests *cs);

/** The contest running in a group, or NULL. Borrowed until the next call
 *  that changes the cache. */
const struct contest *contests_find(const struct contests *cs, enum command_platform platform,
                                    const char *scope_id);

/** The period key ("c<id>") an upvote cast at now_ms in scope ("<platform>:
 *  <group>") also counts under, into buf; false when no contest runs
 *  there at that time. */
bool contests_vote_period(const struct contests *cs, const char *scope, int64_t now_ms, char *buf,
                          size_t cap);

/** How much an upvote by the member invoking inv counts in a contest:
 *  the largest of 1, the weight of a weight_roles role they hold and, with
 *  weight_holders, their holding in the group (core/holders.h). One vote
 *  per member per entry still: only its count grows. */
int64_t contests_vote_weight(const struct contests *cs, const struct invocation *inv);

/** Start c (HB_EEXISTS when one runs in its group): stored, then cached;
 *  cb after the commit. Returns 0 (cb follows) or a negative code. */
int contests_start(struct contests *cs, const struct contest *c, contests_cb cb, void *data);

/** Stop the group's contest without paying anything (HB_ENOTFOUND when
 *  none runs, HB_ESTATE once its end has passed: it pays then). cb after
 *  the commit. */
int contests_stop(struct contests *cs, enum command_platform platform, const char *scope_id,
                  contests_cb cb, void *data);

/** End every contest whose end has passed and that is not ending yet:
 *  pay, forget, post the results; then start the scheduled groups'
 *  contests (contests_schedule). Returns how many endings began. */
size_t contests_tick(struct contests *cs);

/** Endings still under way (tests wait for 0). */
size_t contests_busy(const struct contests *cs);

#endif
