/* /admin stats: generations, credits spent, top models, refusals by reason
 * and failures by provider over a period. Counts and amounts only. In a
 * group it covers what the group's pool paid; elsewhere (the operator's
 * console or a DM) the whole bot, with refusals and failures. */
#include "core/core.h"
#include "core/chart.h"
#include "base/log.h"
#include "base/error.h"
#include "core/format.h"
#include "core/generate.h"
#include "core/handlers.h"
#include "core/ledger.h"
#include "core/messages.h"
#include "core/state.h"
#include "base/text.h"
#include "core/wallet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATS_TOP 5
#define STATS_PAGE 500 /* counters read per store round trip */
#define STATS_SUMS 64  /* distinct refusal reasons and failing providers shown */

struct stats_model {
    char name[STORE_TAG_SIZE];
    int64_t count;
    int64_t amount;
};

struct stats_sum {
    char kind[16]; /* "refused" or "failed" */
    char name[96]; /* the reason or the provider */
    int64_t count;
};

struct stats_ctx {
    struct core *core;
    struct invocation *inv;
    bool group;
    int64_t from_day;
    int64_t days;
    bool chart; /* /admin stats chart: a PNG of spending per day and model */
    const char *period;
    struct text_buf t;
    struct stats_sum sums[STATS_SUMS];
    size_t nsums;
};

static int stats__model_cmp(const void *a, const void *b)
{
    const struct stats_model *x = a, *y = b;
    if (x->amount != y->amount)
        return x->amount > y->amount ? -1 : 1;
    return strcmp(x->name, y->name);
}

static void stats__end(struct stats_ctx *ctx)
{
    text_buf_trim(&ctx->t);
    reply_text(ctx->inv->reply, true, "%s", text_buf_str(&ctx->t));
    reply_finish(ctx->inv->reply);
    free(ctx->t.buf);
    free(ctx);
}

static void stats__counters_end(struct stats_ctx *ctx)
{
    struct text_buf refused = {0}, failed = {0};
    for (size_t k = 0; k < ctx->nsums; k++) {
        struct text_buf *t = strcmp(ctx->sums[k].kind, "refused") == 0 ? &refused : &failed;
        text_buf_add(t, "%s%s %lld", t->len > 0 ? ", " : "", ctx->sums[k].name,
                     (long long)ctx->sums[k].count);
    }
    text_buf_add(&ctx->t, MSG_STATS_REFUSED, refused.len > 0 ? refused.buf : MSG_STATS_NONE);
    text_buf_add(&ctx->t, MSG_STATS_FAILED, failed.len > 0 ? failed.buf : MSG_STATS_NONE);
    free(refused.buf);
    free(failed.buf);
    stats__end(ctx);
}

/* Keys "<day>/<refused|failed>/<name>", integer values. The day is a
 * decimal number of days since the epoch (five digits from 1973 to 2243),
 * so keys sort by day and the period is one range of keys: older days are
 * never read, however many there are. */
static void stats__counters(int rc, const struct state_entry *e, size_t n, void *data)
{
    struct stats_ctx *ctx = data;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char kind[16], name[96];
        long long day;
        if (sscanf(e[i].key, "%lld/%15[^/]/%95s", &day, kind, name) != 3 || day < ctx->from_day)
            continue;
        size_t k = 0;
        while (k < ctx->nsums &&
               !(strcmp(ctx->sums[k].kind, kind) == 0 && strcmp(ctx->sums[k].name, name) == 0))
            k++;
        if (k == ctx->nsums) {
            if (ctx->nsums == STATS_SUMS)
                continue;
            snprintf(ctx->sums[k].kind, sizeof(ctx->sums[k].kind), "%s", kind);
            snprintf(ctx->sums[k].name, sizeof(ctx->sums[k].name), "%s", name);
            ctx->sums[k].count = 0;
            ctx->nsums++;
        }
        ctx->sums[k].count += strtoll(e[i].value, NULL, 10);
    }
    if (rc == 0 && state_list_after(ledger_store(ctx->core->ledger), GENERATE_NS_STATS, e, n,
                                    STATS_PAGE, stats__counters, ctx) == 0)
        return; /* a full page: the next one follows */
    stats__counters_end(ctx);
}

/* Read the counters from key `from` on, one page at a time. */
static int stats__counters_read(struct stats_ctx *ctx, const char *from)
{
    return state_list_range(ledger_store(ctx->core->ledger), GENERATE_NS_STATS, from, NULL,
                            STATS_PAGE, stats__counters, ctx);
}

/* The chart in place of the model list and the counters; the header and
 * totals are its caption. */
static void stats__chart(struct stats_ctx *ctx, const struct store_usage *rows, size_t n)
{
    char title[160];
    snprintf(title, sizeof(title), MSG_STATS_CHART_TITLE,
             ctx->group ? MSG_STATS_SCOPE_POOL : MSG_STATS_SCOPE_BOT, ctx->period);
    unsigned char *png = NULL;
    size_t len = 0;
    int rc = chart_usage_png(rows, n, ctx->from_day, ctx->days, title, &png, &len);
    if (rc < 0) {
        log_warn("command.failed", "command=admin_stats step=chart error=%s", hb_strerror(rc));
        text_buf_add(&ctx->t, MSG_CHART_FAILED, hb_strerror(rc));
        stats__end(ctx);
        return;
    }
    text_buf_trim(&ctx->t);
    struct reply_image img = {
        .data = png, .len = len, .mime = "image/png", .filename = "stats.png"};
    struct reply_msg msg = {
        .stage = REPLY_FINAL, .ephemeral = true, .text = text_buf_str(&ctx->t), .image = &img};
    reply_send(ctx->inv->reply, &msg);
    free(png);
    reply_finish(ctx->inv->reply);
    free(ctx->t.buf);
    free(ctx);
}

static void stats__usage(int rc, const struct ledger_result *r, void *data)
{
    struct stats_ctx *ctx = data;
    if (rc < 0 && rc != HB_ENOTFOUND) {
        text_buf_add(&ctx->t, MSG_STATS_READ_FAILED, hb_strerror(rc));
        stats__end(ctx);
        return;
    }
    size_t n = rc == 0 ? r->usage_count : 0;
    struct stats_model *models = calloc(n > 0 ? n : 1, sizeof(*models));
    size_t nm = 0;
    int64_t count = 0, amount = 0;
    for (size_t i = 0; models != NULL && i < n; i++) {
        const struct store_usage *u = &r->usage[i];
        size_t k = 0;
        while (k < nm && strcmp(models[k].name, u->tag) != 0)
            k++;
        if (k == nm)
            snprintf(models[nm++].name, sizeof(models[0].name), "%s", u->tag);
        models[k].count += u->count;
        models[k].amount += u->amount;
        count += u->count;
        amount += u->amount;
    }
    char credits[32];
    text_buf_add(&ctx->t, MSG_STATS_HEADER, ctx->group ? MSG_STATS_SCOPE_POOL : MSG_STATS_SCOPE_BOT,
                 ctx->period);
    text_buf_add(&ctx->t, MSG_STATS_TOTALS, (long long)count,
                 format_credits(credits, sizeof(credits), amount));
    if (ctx->chart) {
        free(models);
        stats__chart(ctx, rc == 0 ? r->usage : NULL, n);
        return;
    }
    if (models != NULL && nm > 0) {
        qsort(models, nm, sizeof(*models), stats__model_cmp);
        text_buf_add(&ctx->t, MSG_STATS_TOP_MODELS);
        for (size_t k = 0; k < nm && k < STATS_TOP; k++)
            text_buf_add(&ctx->t, MSG_STATS_MODEL, k > 0 ? "," : "",
                         models[k].name[0] != '\0' ? models[k].name : "?",
                         (long long)models[k].count,
                         format_credits(credits, sizeof(credits), models[k].amount));
        text_buf_add(&ctx->t, "\n");
    }
    free(models);
    char from[32];
    snprintf(from, sizeof(from), "%lld/", (long long)ctx->from_day);
    if (ctx->group || ctx->core->ledger == NULL || stats__counters_read(ctx, from) < 0)
        stats__end(ctx);
}

void cmd_admin_stats(struct core *core, struct invocation *inv)
{
    struct stats_ctx *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL || core->ledger == NULL) {
        free(ctx);
        reply_text(inv->reply, true, MSG_STATS_UNAVAILABLE);
        reply_finish(inv->reply);
        return;
    }
    ctx->core = core;
    ctx->inv = inv;
    const char *period = inv->opts[0].set ? inv->opts[0].string : "week";
    int64_t days = strcmp(period, "day") == 0 ? 1 : strcmp(period, "month") == 0 ? 30 : 7;
    ctx->days = days;
    ctx->chart = inv->opts[1].set && inv->opts[1].integer != 0;
    ctx->period = days == 1 ? MSG_PERIOD_DAY : days == 7 ? MSG_PERIOD_WEEK : MSG_PERIOD_MONTH;
    int64_t now_ms = core_now_ms(core);
    ctx->from_day = now_ms / 86400000 - (days - 1);
    char pool[WALLET_ACCOUNT_MAX];
    ctx->group = wallet_pool_account(inv, pool, sizeof(pool)) == 0;
    int rc = ledger_usage_get(core->ledger, ctx->group ? pool : NULL, ctx->from_day * 86400000,
                              now_ms + 1, stats__usage, ctx);
    if (rc < 0)
        stats__usage(rc, NULL, ctx);
}
