/* Creator standing and trending models, counted per server or group in
 * the same store table as the leaderboard's votes (core/votes.h), as
 * boards of their own beside each group's image board:
 *
 *   "<scope>#models"   models by generations charged here (this week)
 *   "<scope>#made"     members by generations charged here (week, all time)
 *   "<scope>#upvoted"  members by upvotes their images received (week, all)
 *   "<scope>#wins"     members by contest placings among the paid winners (all)
 *   "<scope>#prizes"   members by contest prize credits won (all)
 *
 * where <scope> is "<platform>:<group>" and a member is their platform
 * user id. A board is one indexed top-N read however large the group.
 * Counts only: no prompt text is ever stored.
 *
 * The generation boards move in the settlement's own ledger transaction
 * (a guard on the post: standing_tally_guard), so a charge is counted
 * exactly when it commits and a replayed settlement counts nothing again;
 * the upvote boards move in the vote's own store job (core/votes.c); the
 * contest boards in the job that fixes a contest's winners, once per
 * contest (core/contest.c). */
#ifndef HB_STANDING_H
#define HB_STANDING_H

#include "core/command.h"
#include "core/votes.h"
#include "storage/store.h"

#include <stdbool.h>
#include <stdint.h>

#define STANDING_MODELS "#models"
#define STANDING_MADE "#made"
#define STANDING_UPVOTED "#upvoted"
#define STANDING_WINS "#wins"
#define STANDING_PRIZES "#prizes"
#define STANDING_SCOPE_MAX (COMMAND_ID_MAX + 24) /* "<platform>:<group>" */

/** What one settled generation in a group adds to its boards. */
struct standing_tally {
    char models[STORE_ID_SIZE]; /* "<scope>#models" */
    char made[STORE_ID_SIZE];   /* "<scope>#made" */
    char week[VOTES_PERIOD_MAX];
    char model[STORE_TAG_SIZE];
    char user[STORE_TAG_SIZE];
};

/** Fill t for a generation of model by user_id in a group (platform,
 *  scope_id) at now_ms. Returns 0, or HB_EINVAL when there is no group
 *  (a private chat counts on no board) or a name does not fit. */
int standing_tally_init(struct standing_tally *t, enum command_platform platform,
                        const char *scope_id, const char *user_id, const char *model,
                        int64_t now_ms);

/** A ledger guard (struct ledger_transfer.guard) adding t (guard_data) to
 *  its boards inside the settlement's transaction. */
int standing_tally_guard(struct store_txn *txn, void *data);

struct contest_payment;

/** Count a contest's winners (pay, n of them; creators are platform user
 *  ids) on scope's (<platform>:<group>) "#wins" and "#prizes" boards, all
 *  time, inside txn. A database without the votes table counts nothing.
 *  Returns 0 or a store error. */
int standing_contest_tally(struct store_txn *txn, const char *scope,
                           const struct contest_payment *pay, size_t n);

/** The board name "<scope><suffix>" into buf (cap >= STORE_ID_SIZE).
 *  Returns 0 or HB_EINVAL. */
int standing_board(char *buf, size_t cap, const char *scope, const char *suffix);

#endif
