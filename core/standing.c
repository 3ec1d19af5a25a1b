#include "core/standing.h"

#include "base/error.h"
#include "core/contest.h"

#include <stdio.h>
#include <string.h>

int standing_board(char *buf, size_t cap, const char *scope, const char *suffix)
{
    int n = snprintf(buf, cap, "%s%s", scope, suffix);
    return n > 0 && (size_t)n < cap && (size_t)n < STORE_ID_SIZE ? 0 : HB_EINVAL;
}

int standing_tally_init(struct standing_tally *t, enum command_platform platform,
                        const char *scope_id, const char *user_id, const char *model,
                        int64_t now_ms)
{
    memset(t, 0, sizeof(*t));
    if (scope_id == NULL || scope_id[0] == '\0' || user_id == NULL || user_id[0] == '\0' ||
        model == NULL || model[0] == '\0')
        return HB_EINVAL;
    char scope[STANDING_SCOPE_MAX];
    int n = snprintf(scope, sizeof(scope), "%s:%s", command_platform_name(platform), scope_id);
    if (n < 0 || (size_t)n >= sizeof(scope) ||
        standing_board(t->models, sizeof(t->models), scope, STANDING_MODELS) < 0 ||
        standing_board(t->made, sizeof(t->made), scope, STANDING_MADE) < 0 ||
        votes_period(VOTES_WEEK, now_ms, t->week, sizeof(t->week)) < 0 ||
        strlen(model) >= sizeof(t->model) || strlen(user_id) >= sizeof(t->user))
        return HB_EINVAL;
    memcpy(t->model, model, strlen(model) + 1);
    memcpy(t->user, user_id, strlen(user_id) + 1);
    return 0;
}

int standing_tally_guard(struct store_txn *txn, void *data)
{
    const struct standing_tally *t = data;
    struct store_vote v;
    memset(&v, 0, sizeof(v));
    v.count = 1;
    memcpy(v.image, t->model, sizeof(v.image));
    memcpy(v.model, t->model, sizeof(v.model));
    int rc = store_txn_vote_add(txn, t->models, t->week, &v);
    memset(&v, 0, sizeof(v));
    v.count = 1;
    memcpy(v.image, t->user, sizeof(v.image));
    snprintf(v.creator, sizeof(v.creator), "%s", t->user);
    if (rc == 0)
        rc = store_txn_vote_add(txn, t->made, t->week, &v);
    if (rc == 0)
        rc = store_txn_vote_add(txn, t->made, "all", &v);
    /* A database older than the votes table counts nothing, but still
     * charges: standing is a statistic, the charge is the ledger's. */
    return rc == HB_ESCHEMA ? 0 : rc;
}

int standing_contest_tally(struct store_txn *txn, const char *scope,
                           const struct contest_payment *pay, size_t n)
{
    char wins[STORE_ID_SIZE], prizes[STORE_ID_SIZE];
    if (standing_board(wins, sizeof(wins), scope, STANDING_WINS) < 0 ||
        standing_board(prizes, sizeof(prizes), scope, STANDING_PRIZES) < 0)
        return 0; /* a group whose name does not fit counts on no board */
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (strlen(pay[i].creator) >= STORE_TAG_SIZE)
            continue;
        struct store_vote v;
        memset(&v, 0, sizeof(v));
        v.count = 1;
        memcpy(v.image, pay[i].creator, strlen(pay[i].creator) + 1);
        memcpy(v.creator, pay[i].creator, strlen(pay[i].creator) + 1);
        rc = store_txn_vote_add(txn, wins, "all", &v);
        if (rc == 0 && pay[i].amount > 0) {
            v.count = pay[i].amount;
            rc = store_txn_vote_add(txn, prizes, "all", &v);
        }
    }
    return rc == HB_ESCHEMA ? 0 : rc;
}
