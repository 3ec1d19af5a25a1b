/* Contests (core/contest.h): the rules and names every part of them uses,
 * and the board of a contest's entries, read from the store. No cache and
 * no state: those are core/contest.c's. */
#include "core/contest.h"

#include "base/error.h"
#include "base/util.h"
#include "core/core.h"
#include "core/ledger.h"
#include "core/notify.h"
#include "core/votes.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- rules and names --------------------------------------------------------- */

int contest_rules_parse(int64_t winners, const char *split, struct contest_rules *out, char *err,
                        size_t errcap)
{
    memset(out, 0, sizeof(*out));
    if (winners < 1 || winners > CONTEST_WINNERS_MAX) {
        snprintf(err, errcap, "winners must be 1 to %d", CONTEST_WINNERS_MAX);
        return HB_EINVAL;
    }
    out->winners = (int)winners;
    const char *p = split != NULL ? split : "";
    int sum = 0, n = 0;
    while (*p != '\0') {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == '\0')
            break;
        char *end = NULL;
        long v = strtol(p, &end, 10);
        if (end == p || v <= 0 || v > 100 ||
            (*end != '\0' && *end != ',' && *end != ' ' && *end != '%')) {
            snprintf(err, errcap, "split: \"%.*s\" is not a whole percentage above 0",
                     (int)strcspn(p, ", "), p);
            return HB_EINVAL;
        }
        if (n == out->winners) {
            snprintf(err, errcap, "split names more parts than the %d winners", out->winners);
            return HB_EINVAL;
        }
        out->split[n++] = (int)v;
        sum += (int)v;
        p = end;
        if (*p == '%')
            p++;
    }
    if (n != out->winners) {
        snprintf(err, errcap, "split must name one part per winner (%d), it names %d", out->winners,
                 n);
        return HB_EINVAL;
    }
    if (sum > 100) {
        snprintf(err, errcap, "split adds up to %d%%, more than 100%%", sum);
        return HB_EINVAL;
    }
    return 0;
}

int contest_weights_parse(const char *roles, bool holders, struct contest_rules *out, char *err,
                          size_t errcap)
{
    out->nweights = 0;
    out->weight_holders = holders;
    const char *p = roles != NULL ? roles : "";
    for (;;) {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == '\0')
            return 0;
        size_t len = strcspn(p, ", ");
        uint64_t role = 0;
        size_t digits = 0;
        const char *d = strncmp(p, "discord:", 8) == 0 ? p + 8 : NULL;
        for (; d != NULL && d[digits] >= '0' && d[digits] <= '9' && digits < 20; digits++)
            role = role * 10 + (uint64_t)(d[digits] - '0');
        const char *w = d != NULL ? d + digits : p;
        while (*w == ' ')
            w++;
        char *end = NULL;
        long weight = d != NULL && digits > 0 && (d[digits] == ' ') ? strtol(w, &end, 10) : 0;
        if (end == NULL || end == w || (*end != '\0' && *end != ',' && *end != ' ') || weight < 1 ||
            weight > CONTEST_WEIGHT_MAX || role == 0) {
            snprintf(err, errcap,
                     "weight_roles: \"%.*s\" is not a Discord role and a weight "
                     "(discord:<role id> N, N from 1 to %d)",
                     (int)(len < 60 ? len : 60), p, CONTEST_WEIGHT_MAX);
            return HB_EINVAL;
        }
        if (out->nweights == CONTEST_WEIGHTS_MAX) {
            snprintf(err, errcap, "weight_roles: more than %d roles", CONTEST_WEIGHTS_MAX);
            return HB_EINVAL;
        }
        out->weights[out->nweights++] =
            (struct contest_weight){.role = role, .weight = (int)weight};
        p = end;
    }
}

int contest_end_for(const char *period, int64_t now_ms, int64_t *end_ms)
{
    if (period == NULL || period[0] == '\0' || strcmp(period, "week") == 0) {
        /* Monday 00:00 UTC after now (1970-01-01 was a Thursday). */
        int64_t day = now_ms / CONTEST_DAY_MS;
        int64_t monday = day - (day + 3) % 7;
        *end_ms = (monday + 7) * CONTEST_DAY_MS;
        return 0;
    }
    char *end = NULL;
    long days = strtol(period, &end, 10);
    if (end == period ||
        (*end != '\0' && strcmp(end, "d") != 0 && strcmp(end, " days") != 0 &&
         strcmp(end, " day") != 0) ||
        days < 1 || days > CONTEST_DAYS_MAX)
        return HB_EINVAL;
    *end_ms = now_ms + (int64_t)days * CONTEST_DAY_MS;
    return 0;
}

static int contest__fits(int n, size_t cap)
{
    return n > 0 && (size_t)n < cap && (size_t)n < STORE_ID_SIZE ? 0 : HB_EINVAL;
}

int contest_scope(const struct contest *c, char *buf, size_t cap)
{
    return contest__fits(
        snprintf(buf, cap, "%s:%s", command_platform_name(c->platform), c->scope_id), cap);
}

int contest_period(const struct contest *c, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "c%" PRId64, c->id);
    return n > 0 && (size_t)n < cap && n < VOTES_PERIOD_MAX ? 0 : HB_EINVAL;
}

void contest_results_target(const struct contest *c, struct notify_target *to)
{
    memset(to, 0, sizeof(*to));
    to->platform = c->platform;
    to->scope = COMMAND_SCOPE_GROUP;
    snprintf(to->scope_id, sizeof(to->scope_id), "%s", c->scope_id);
    snprintf(to->channel_id, sizeof(to->channel_id), "%s",
             c->channel_id[0] != '\0' ? c->channel_id : c->scope_id);
}

int contest_prize_account(const struct contest *c, char *buf, size_t cap)
{
    return contest__fits(snprintf(buf, cap, CONTEST_PRIZES_PREFIX "%s:%s",
                                  command_platform_name(c->platform), c->scope_id),
                         cap);
}

size_t contest_payout(const struct contest *c, const struct contest_rules *rules,
                      const struct store_vote *rows, size_t n, int64_t pool,
                      struct contest_payment *out)
{
    char scope[STORE_ID_SIZE];
    if (contest_scope(c, scope, sizeof(scope)) < 0)
        return 0;
    if (pool < 0)
        pool = 0;
    size_t k = 0;
    for (size_t i = 0; i < n && k < (size_t)rules->winners; i++) {
        const struct store_vote *v = &rows[i];
        if (v->creator[0] == '\0' || v->count <= 0)
            continue;
        bool placed = false;
        for (size_t j = 0; j < k && !placed; j++)
            placed = strcmp(out[j].creator, v->creator) == 0;
        if (placed)
            continue;
        struct contest_payment *p = &out[k];
        memset(p, 0, sizeof(*p));
        if (ledger_wallet_name(p->account, sizeof(p->account), command_platform_name(c->platform),
                               v->creator) < 0)
            continue;
        int r = snprintf(p->id, sizeof(p->id), "prize:%s:%" PRId64 ":%zu", scope, c->id, k + 1);
        if (r < 0 || (size_t)r >= sizeof(p->id) || r > LEDGER_ID_LEN_MAX)
            return 0;
        snprintf(p->creator, sizeof(p->creator), "%s", v->creator);
        p->upvotes = v->count;
        /* pool <= INT64_MAX / 100 in practice (credits are bounded). */
        p->amount = pool / 100 * rules->split[k] + pool % 100 * rules->split[k] / 100;
        k++;
    }
    return k;
}

struct contest_board_op {
    struct store_job job;
    char scope[STORE_ID_SIZE];
    char period[CONTEST_PERIOD_MAX];
    size_t max, n;
    contest_board_cb cb;
    void *data;
    struct store_vote rows[VOTES_TOP_MAX];
};

static int contest__board_run(struct store_txn *txn, struct store_job *job)
{
    struct contest_board_op *op = container_of(job, struct contest_board_op, job);
    int rc = store_txn_vote_top(txn, op->scope, op->period, op->rows, op->max, &op->n);
    return rc == HB_ESCHEMA ? 0 : rc; /* a database without votes: no entries */
}

static void contest__board_done(struct store_job *job, int rc)
{
    struct contest_board_op *op = container_of(job, struct contest_board_op, job);
    op->cb(rc, op->rows, rc == 0 ? op->n : 0, op->data);
    free(op);
}

int contest_board(struct store *store, const struct contest *c, size_t max, contest_board_cb cb,
                  void *data)
{
    if (max == 0 || max > VOTES_TOP_MAX || cb == NULL)
        return HB_EINVAL;
    struct contest_board_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return HB_ENOMEM;
    int rc = contest_scope(c, op->scope, sizeof(op->scope));
    if (rc == 0)
        rc = contest_period(c, op->period, sizeof(op->period));
    if (rc == 0) {
        op->max = max;
        op->cb = cb;
        op->data = data;
        op->job.run = contest__board_run;
        op->job.done = contest__board_done;
        rc = store_submit_read(store, &op->job);
    }
    if (rc < 0)
        free(op);
    return rc;
}
