/* /trending and /profile: counts only, never prompt text.
 *
 * /trending: the models most used this week (ISO week from Monday, UTC)
 * in this server or group, from its "#models" board (core/standing.h),
 * and on the whole bot, from the ledger's usage (the generation charges
 * posted since Monday).
 *
 * /profile [member]: a member's generations made and upvotes received in
 * this group, this week and all time, their rank by upvotes, and their
 * contest wins and prizes, read from the group's "#made", "#upvoted",
 * "#wins" and "#prizes" boards. */
#include "core/core.h"
#include "base/error.h"
#include "base/text.h"
#include "core/handlers.h"
#include "core/ledger.h"
#include "core/member.h"
#include "core/messages.h"
#include "core/standing.h"
#include "core/votes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TREND_SHOWN 5
#define STANDING_DAY_MS 86400000LL

/* Monday 00:00 UTC of the week holding now_ms (1970-01-01 was a Thursday). */
static int64_t standing__week_start(int64_t now_ms)
{
    int64_t day = now_ms / STANDING_DAY_MS;
    return (day - (day + 3) % 7) * STANDING_DAY_MS;
}

static bool standing__group(const struct invocation *inv, char *scope, size_t cap)
{
    if (inv->scope != COMMAND_SCOPE_GROUP || inv->scope_id[0] == '\0')
        return false;
    int n = snprintf(scope, cap, "%s:%s", command_platform_name(inv->platform), inv->scope_id);
    return n > 0 && (size_t)n < cap;
}

/* ---- /trending --------------------------------------------------------------- */

struct trend_model {
    char name[STORE_TAG_SIZE];
    int64_t count;
};

struct trend_ctx {
    struct core *core;
    struct invocation *inv;
    struct text_buf t;
};

static void trend__row(struct text_buf *t, size_t rank, const char *model, int64_t count)
{
    text_buf_add(t, MSG_TREND_ROW, rank, model, (long long)count, count == 1 ? "" : "s");
}

static int trend__cmp(const void *a, const void *b)
{
    const struct trend_model *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return strcmp(x->name, y->name);
}

static void trend__end(struct trend_ctx *ctx, int rc)
{
    if (rc < 0) {
        reply_text(ctx->inv->reply, true, MSG_TREND_FAILED, hb_strerror(rc));
    } else {
        text_buf_trim(&ctx->t);
        reply_text(ctx->inv->reply, false, "%s", text_buf_str(&ctx->t));
    }
    reply_finish(ctx->inv->reply);
    free(ctx->t.buf);
    free(ctx);
}

/* The whole bot's week, from the ledger: usage rows per day and model. */
static void trend__overall(int rc, const struct ledger_result *res, void *data)
{
    struct trend_ctx *ctx = data;
    if (rc < 0) {
        trend__end(ctx, rc);
        return;
    }
    struct trend_model *m = calloc(res->usage_count + 1, sizeof(*m));
    if (m == NULL) {
        trend__end(ctx, HB_ENOMEM);
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < res->usage_count; i++) {
        size_t k = 0;
        while (k < n && strcmp(m[k].name, res->usage[i].tag) != 0)
            k++;
        if (k == n)
            snprintf(m[n++].name, sizeof(m[0].name), "%s", res->usage[i].tag);
        m[k].count += res->usage[i].count;
    }
    qsort(m, n, sizeof(*m), trend__cmp);
    text_buf_add(&ctx->t, "%s", MSG_TREND_OVERALL);
    if (n == 0)
        text_buf_add(&ctx->t, "%s", MSG_TREND_NOTHING);
    for (size_t i = 0; i < n && i < TREND_SHOWN; i++)
        trend__row(&ctx->t, i + 1, m[i].name[0] != '\0' ? m[i].name : "-", m[i].count);
    free(m);
    trend__end(ctx, 0);
}

static void trend__read_overall(struct trend_ctx *ctx)
{
    int64_t now = core_now_ms(ctx->core);
    int rc = ctx->core->ledger != NULL
                 ? ledger_usage_get(ctx->core->ledger, NULL, standing__week_start(now), now + 1,
                                    trend__overall, ctx)
                 : HB_ECANCELED;
    if (rc < 0)
        trend__end(ctx, rc);
}

static void trend__here(int rc, const struct store_vote *rows, size_t n, void *data)
{
    struct trend_ctx *ctx = data;
    if (rc < 0) {
        trend__end(ctx, rc);
        return;
    }
    text_buf_add(&ctx->t, "%s", MSG_TREND_HERE);
    if (n == 0)
        text_buf_add(&ctx->t, "%s", MSG_TREND_NOTHING);
    for (size_t i = 0; i < n; i++)
        trend__row(&ctx->t, i + 1, rows[i].image, rows[i].count);
    trend__read_overall(ctx);
}

void cmd_trending(struct core *core, struct invocation *inv)
{
    struct trend_ctx *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        reply_text(inv->reply, true, MSG_COMMON_OUT_OF_MEMORY);
        reply_finish(inv->reply);
        return;
    }
    ctx->core = core;
    ctx->inv = inv;
    text_buf_add(&ctx->t, "%s", MSG_TREND_HEAD);
    char scope[STANDING_SCOPE_MAX], board[STORE_ID_SIZE];
    if (!standing__group(inv, scope, sizeof(scope)) ||
        standing_board(board, sizeof(board), scope, STANDING_MODELS) < 0) {
        trend__read_overall(ctx);
        return;
    }
    int rc = core->ledger != NULL ? votes_top(ledger_store(core->ledger), board, VOTES_WEEK,
                                              core_now_ms(core), TREND_SHOWN, trend__here, ctx)
                                  : HB_ECANCELED;
    if (rc < 0)
        trend__end(ctx, rc);
}

/* ---- /profile ------------------------------------------------------------------ */

/* The boards /profile reads, in order. */
enum {
    PROF_MADE_WEEK,
    PROF_MADE_ALL,
    PROF_UP_WEEK,
    PROF_UP_ALL,
    PROF_WINS,   /* contest placings among the paid winners, all time */
    PROF_PRIZES, /* contest prize credits, all time */
    PROF_READS
};

struct prof_ctx {
    struct core *core;
    struct invocation *inv;
    char scope[STANDING_SCOPE_MAX];
    char user[STORE_TAG_SIZE]; /* the member's platform user id */
    char shown[COMMAND_ID_MAX + 8];
    int step;
    int64_t count[PROF_READS]; /* -1: outside the board's top rows, unknown */
    size_t rank[PROF_READS];   /* 1-based among the board's rows; 0: none */
    size_t of[PROF_READS];     /* rows on the board */
};

static void prof__end(struct prof_ctx *ctx, int rc)
{
    struct invocation *inv = ctx->inv;
    if (rc < 0) {
        reply_text(inv->reply, true, MSG_PROFILE_FAILED, hb_strerror(rc));
    } else {
        char v[PROF_READS][32], rank[2][64];
        for (int i = 0; i < PROF_READS; i++) {
            if (ctx->count[i] < 0)
                snprintf(v[i], sizeof(v[i]), "%s", MSG_PROFILE_UNKNOWN);
            else
                snprintf(v[i], sizeof(v[i]), "%lld", (long long)ctx->count[i]);
        }
        for (int i = 0; i < 2; i++) {
            int k = i == 0 ? PROF_UP_WEEK : PROF_UP_ALL;
            if (ctx->count[k] < 0)
                snprintf(rank[i], sizeof(rank[i]), "%s", MSG_PROFILE_RANK_OUTSIDE);
            else if (ctx->count[k] == 0)
                snprintf(rank[i], sizeof(rank[i]), "%s", MSG_PROFILE_RANK_NONE);
            else
                snprintf(rank[i], sizeof(rank[i]), MSG_PROFILE_RANK, ctx->rank[k], ctx->of[k]);
        }
        reply_text(inv->reply, false, MSG_PROFILE_HEAD MSG_PROFILE MSG_PROFILE_CONTESTS, ctx->shown,
                   v[PROF_MADE_WEEK], v[PROF_MADE_ALL], v[PROF_UP_WEEK], v[PROF_UP_ALL], rank[0],
                   rank[1], v[PROF_WINS], v[PROF_PRIZES]);
    }
    reply_finish(inv->reply);
    free(ctx);
}

static void prof__read(struct prof_ctx *ctx);

/* One board read: the member's count, and their rank (ties share one: one
 * more than the members with more). A full page without them leaves the
 * count unknown. */
static void prof__board(int rc, const struct store_vote *rows, size_t n, void *data)
{
    struct prof_ctx *ctx = data;
    if (rc < 0) {
        prof__end(ctx, rc);
        return;
    }
    int s = ctx->step;
    ctx->count[s] = n == VOTES_TOP_MAX ? -1 : 0;
    ctx->of[s] = n;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(rows[i].image, ctx->user) == 0) {
            ctx->count[s] = rows[i].count;
            size_t above = 0;
            while (above < i && rows[above].count > rows[i].count)
                above++;
            ctx->rank[s] = above + 1;
        }
    }
    ctx->step++;
    prof__read(ctx);
}

static void prof__read(struct prof_ctx *ctx)
{
    if (ctx->step == PROF_READS) {
        prof__end(ctx, 0);
        return;
    }
    static const char *const boards[PROF_READS] = {STANDING_MADE,    STANDING_MADE,
                                                   STANDING_UPVOTED, STANDING_UPVOTED,
                                                   STANDING_WINS,    STANDING_PRIZES};
    bool week = ctx->step == PROF_MADE_WEEK || ctx->step == PROF_UP_WEEK;
    char board[STORE_ID_SIZE];
    int rc = standing_board(board, sizeof(board), ctx->scope, boards[ctx->step]);
    if (rc == 0)
        rc = ctx->core->ledger != NULL
                 ? votes_top(ledger_store(ctx->core->ledger), board, week ? VOTES_WEEK : VOTES_ALL,
                             core_now_ms(ctx->core), VOTES_TOP_MAX, prof__board, ctx)
                 : HB_ECANCELED;
    if (rc < 0)
        prof__end(ctx, rc);
}

static void prof__resolved(int rc, const char *user_id, void *data)
{
    struct prof_ctx *ctx = data;
    if (rc == HB_ENOTFOUND || (rc == 0 && strlen(user_id) >= sizeof(ctx->user))) {
        reply_text(ctx->inv->reply, true, MSG_MEMBER_UNKNOWN, ctx->shown);
        reply_finish(ctx->inv->reply);
        free(ctx);
        return;
    }
    if (rc < 0) {
        prof__end(ctx, rc);
        return;
    }
    snprintf(ctx->user, sizeof(ctx->user), "%s", user_id);
    prof__read(ctx);
}

void cmd_profile(struct core *core, struct invocation *inv)
{
    struct prof_ctx *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        reply_text(inv->reply, true, MSG_COMMON_OUT_OF_MEMORY);
        reply_finish(inv->reply);
        return;
    }
    ctx->core = core;
    ctx->inv = inv;
    if (!standing__group(inv, ctx->scope, sizeof(ctx->scope))) {
        free(ctx);
        reply_text(inv->reply, true, MSG_PROFILE_NOT_HERE);
        reply_finish(inv->reply);
        return;
    }
    if (!inv->opts[0].set) {
        snprintf(ctx->shown, sizeof(ctx->shown), "%s",
                 inv->user_name[0] != '\0' ? inv->user_name : inv->user_id);
        prof__resolved(0, inv->user_id, ctx);
        return;
    }
    bool by_reply = inv->target_name[0] != '\0' && strcmp(inv->opts[0].string, inv->target_id) == 0;
    snprintf(ctx->shown, sizeof(ctx->shown), "%s",
             by_reply ? inv->target_name : inv->opts[0].string);
    member_resolve(core, inv, inv->opts[0].string, prof__resolved, ctx);
}
