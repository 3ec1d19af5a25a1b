/* Upvotes counted per scope and calendar period (core/votes.h). */
#include "core/votes.h"

#include "base/error.h"
#include "base/util.h"
#include "core/standing.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define VOTES_DAY_MS 86400000LL

static const enum votes_span votes__spans[] = {VOTES_DAY, VOTES_WEEK, VOTES_MONTH, VOTES_ALL};
#define VOTES_SPANS (sizeof(votes__spans) / sizeof(votes__spans[0]))

int votes_period(enum votes_span span, int64_t now_ms, char *buf, size_t cap)
{
    /* Days since the epoch, rounded down also before it. */
    int64_t day = now_ms / VOTES_DAY_MS - (now_ms % VOTES_DAY_MS < 0 ? 1 : 0);
    int64_t shown = day;
    if (span == VOTES_WEEK) {
        /* An ISO week belongs to the year of its Thursday and is numbered
         * from that year's first Thursday. Day 0 was a Thursday. */
        int64_t monday_based = ((day + 3) % 7 + 7) % 7;
        shown = day - monday_based + 3;
    }
    time_t t = (time_t)(shown * 86400);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL)
        return HB_EINVAL;
    int n;
    switch (span) {
    case VOTES_DAY:
        n = snprintf(buf, cap, "d%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
        break;
    case VOTES_WEEK:
        n = snprintf(buf, cap, "w%04d-W%02d", tm.tm_year + 1900, tm.tm_yday / 7 + 1);
        break;
    case VOTES_MONTH:
        n = snprintf(buf, cap, "m%04d-%02d", tm.tm_year + 1900, tm.tm_mon + 1);
        break;
    case VOTES_ALL:
        n = snprintf(buf, cap, "all");
        break;
    default:
        return HB_EINVAL;
    }
    return n > 0 && (size_t)n < cap ? 0 : HB_EINVAL;
}

/* ---- casting ------------------------------------------------------------- */

struct votes_cast_op {
    struct store_job job;
    char mark[STORE_TAG_SIZE + STORE_ID_SIZE + 2]; /* "<image>/<voter>" */
    char scope[STORE_ID_SIZE];                     /* "" when no board counts it */
    char periods[sizeof(votes__spans) / sizeof(votes__spans[0])][VOTES_PERIOD_MAX];
    char contest[VOTES_PERIOD_MAX]; /* a running contest's period; "" none */
    int64_t contest_weight;         /* the vote's count there, >= 1 */
    struct store_vote vote;         /* image, creator, model; count 1 */
    char upvoted[STORE_ID_SIZE];    /* "<scope>#upvoted": the creators' board; "" none */
    int64_t now_ms;
    votes_cast_cb cb;
    void *data;
};

static int votes__cast_run(struct store_txn *txn, struct store_job *job)
{
    struct votes_cast_op *op = container_of(job, struct votes_cast_op, job);
    char *old = NULL;
    int rc = store_txn_state_get(txn, VOTES_NS_VOTER, op->mark, &old);
    free(old);
    if (rc == 0)
        return HB_EEXISTS;
    if (rc != HB_ENOTFOUND)
        return rc;
    rc = store_txn_state_put(txn, VOTES_NS_VOTER, op->mark, "1", op->now_ms);
    for (size_t i = 0;
         rc == 0 && op->scope[0] != '\0' && i < sizeof(op->periods) / sizeof(op->periods[0]); i++)
        rc = store_txn_vote_add(txn, op->scope, op->periods[i], &op->vote);
    if (rc == 0 && op->scope[0] != '\0' && op->contest[0] != '\0') {
        struct store_vote weighted = op->vote;
        weighted.count = op->contest_weight;
        rc = store_txn_vote_add(txn, op->scope, op->contest, &weighted);
    }
    /* The creator's standing (core/standing.h): this week and all time. */
    struct store_vote creator = {.count = 1};
    memcpy(creator.image, op->vote.creator, sizeof(creator.image) - 1);
    memcpy(creator.creator, op->vote.creator, sizeof(creator.creator));
    for (size_t i = 0; rc == 0 && op->upvoted[0] != '\0' && i < VOTES_SPANS; i++) {
        if (votes__spans[i] == VOTES_WEEK || votes__spans[i] == VOTES_ALL)
            rc = store_txn_vote_add(txn, op->upvoted, op->periods[i], &creator);
    }
    return rc;
}

static void votes__cast_done(struct store_job *job, int rc)
{
    struct votes_cast_op *op = container_of(job, struct votes_cast_op, job);
    if (op->cb != NULL)
        op->cb(rc, op->data);
    free(op);
}

/* Copy src into dst of cap bytes; false when it does not fit. */
static bool votes__copy(char *dst, size_t cap, const char *src)
{
    int n = snprintf(dst, cap, "%s", src != NULL ? src : "");
    return n >= 0 && (size_t)n < cap;
}

int votes_cast(struct store *store, const struct votes_cast *v, votes_cast_cb cb, void *data)
{
    if (v == NULL || v->image == NULL || v->image[0] == '\0' || v->voter == NULL ||
        v->voter[0] == '\0')
        return HB_EINVAL;
    struct votes_cast_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return HB_ENOMEM;
    int rc = 0;
    int n = snprintf(op->mark, sizeof(op->mark), "%s/%s", v->image, v->voter);
    if (n < 0 || (size_t)n >= sizeof(op->mark) ||
        !votes__copy(op->scope, sizeof(op->scope), v->scope) ||
        !votes__copy(op->vote.image, sizeof(op->vote.image), v->image) ||
        !votes__copy(op->vote.creator, sizeof(op->vote.creator), v->creator) ||
        !votes__copy(op->vote.model, sizeof(op->vote.model), v->model) ||
        !votes__copy(op->contest, sizeof(op->contest), v->contest)) {
        rc = HB_EINVAL;
        goto out;
    }
    for (size_t i = 0; i < sizeof(votes__spans) / sizeof(votes__spans[0]); i++) {
        rc = votes_period(votes__spans[i], v->now_ms, op->periods[i], sizeof(op->periods[i]));
        if (rc < 0)
            goto out;
    }
    op->vote.count = 1;
    if (op->scope[0] != '\0' && op->vote.creator[0] != '\0' &&
        strlen(op->vote.creator) < STORE_TAG_SIZE &&
        standing_board(op->upvoted, sizeof(op->upvoted), op->scope, STANDING_UPVOTED) < 0)
        op->upvoted[0] = '\0';
    op->contest_weight = v->contest_weight > 0 ? v->contest_weight : 1;
    op->now_ms = v->now_ms;
    op->cb = cb;
    op->data = data;
    op->job.run = votes__cast_run;
    op->job.done = votes__cast_done;
    rc = store_submit(store, &op->job);
out:
    if (rc < 0)
        free(op);
    return rc;
}

/* ---- reading a board --------------------------------------------------- */

struct votes_top_op {
    struct store_job job;
    char scope[STORE_ID_SIZE];
    char period[VOTES_PERIOD_MAX];
    size_t max;
    size_t n;
    votes_top_cb cb;
    void *data;
    struct store_vote rows[]; /* max of them */
};

static int votes__top_run(struct store_txn *txn, struct store_job *job)
{
    struct votes_top_op *op = container_of(job, struct votes_top_op, job);
    return store_txn_vote_top(txn, op->scope, op->period, op->rows, op->max, &op->n);
}

static void votes__top_done(struct store_job *job, int rc)
{
    struct votes_top_op *op = container_of(job, struct votes_top_op, job);
    op->cb(rc, op->rows, rc == 0 ? op->n : 0, op->data);
    free(op);
}

int votes_top(struct store *store, const char *scope, enum votes_span span, int64_t now_ms,
              size_t max, votes_top_cb cb, void *data)
{
    if (scope == NULL || scope[0] == '\0' || max == 0 || max > VOTES_TOP_MAX || cb == NULL)
        return HB_EINVAL;
    struct votes_top_op *op = calloc(1, sizeof(*op) + max * sizeof(op->rows[0]));
    if (op == NULL)
        return HB_ENOMEM;
    int rc = 0;
    if (!votes__copy(op->scope, sizeof(op->scope), scope)) {
        rc = HB_EINVAL;
        goto out;
    }
    rc = votes_period(span, now_ms, op->period, sizeof(op->period));
    if (rc < 0)
        goto out;
    op->max = max;
    op->cb = cb;
    op->data = data;
    op->job.run = votes__top_run;
    op->job.done = votes__top_done;
    rc = store_submit_read(store, &op->job);
out:
    if (rc < 0)
        free(op);
    return rc;
}
