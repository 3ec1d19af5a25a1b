/* Member commands about credits: /start, /balance, /history, /usage,
 * /deposit, /pool. Every one of them opens the member's wallet first, so a
 * member's first command, whichever it is, pays the welcome bonus once. */
#include "core/core.h"
#include "core/chart.h"
#include "base/error.h"
#include "core/format.h"
#include "core/handlers.h"
#include "core/ledger.h"
#include "core/link.h"
#include "base/log.h"
#include "core/messages.h"
#include "core/pool.h"
#include "base/text.h"
#include "core/wallet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CREDITS_HISTORY_PAGE 8
#define CREDITS_HISTORY_PAGES 12 /* the ledger pages back at most 100 entries at once */

/* One command's state across its asynchronous steps. */
struct credits_ctx {
    struct core *core;
    struct invocation *inv;
    char wallet[WALLET_ACCOUNT_MAX];
    char pool[WALLET_ACCOUNT_MAX];
    bool created; /* this command opened the wallet */
    struct ledger_balance wallet_balance;
    int64_t owed;      /* credits owed on debt:<wallet> (a refund of credits already spent) */
    int64_t pool_owed; /* /balance: credits owed on debt:<pool> */
    struct ledger_balance pool_balance; /* /balance */
    int64_t page;                       /* /history: page shown, from 0 */
    uint64_t anchor;                    /* /history: entries with seq < anchor (0: newest) */
    int64_t from_ms;                    /* /usage */
    int64_t days;                       /* /usage: whole UTC days shown */
    bool chart;                         /* /usage chart: answer with a PNG */
    const char *period;
    void (*next)(struct credits_ctx *ctx); /* what to run once the wallet is open */
};

/* End the command: say what went wrong if rc < 0, and release everything. */
static void credits__finish(struct credits_ctx *ctx, int rc, const char *what)
{
    if (rc < 0) {
        log_warn("command.failed", "command=%s step=%s error=%s", ctx->inv->name, what,
                 hb_strerror(rc));
        reply_text(ctx->inv->reply, true, MSG_CREDITS_FAILED, hb_strerror(rc));
    }
    reply_finish(ctx->inv->reply);
    free(ctx);
}

static void credits__welcome(struct credits_ctx *ctx, struct text_buf *t)
{
    if (!ctx->created)
        return;
    char amount[32];
    if (ctx->core->welcome_bonus > 0)
        text_buf_add(t, MSG_CREDITS_WELCOME_BONUS,
                     format_credits(amount, sizeof(amount), ctx->core->welcome_bonus));
    else
        text_buf_add(t, MSG_CREDITS_WELCOME);
}

/* An answer a group reads (/deposit, /pool: a Telegram group shows even an
 * ephemeral note to everyone) does not say what a member's new wallet
 * holds: in a group the welcome is the member's own, an aside after the
 * answer (shown where the platform can show it to them alone, left out
 * where it cannot; /balance tells it). In a DM it opens the answer. */
static void credits__welcome_here(struct credits_ctx *ctx, struct text_buf *t)
{
    if (ctx->inv->scope != COMMAND_SCOPE_GROUP)
        credits__welcome(ctx, t);
}

static void credits__welcome_aside(struct credits_ctx *ctx)
{
    if (ctx->inv->scope != COMMAND_SCOPE_GROUP || !ctx->created)
        return;
    struct text_buf t = {0};
    credits__welcome(ctx, &t);
    text_buf_trim(&t);
    struct reply_msg msg = {.stage = REPLY_FINAL,
                            .ephemeral = true,
                            .personal = true,
                            .aside = true,
                            .text = text_buf_str(&t)};
    reply_send(ctx->inv->reply, &msg);
    free(t.buf);
}

static void credits__opened(int rc, bool created, void *data)
{
    struct credits_ctx *ctx = data;
    if (rc < 0) {
        credits__finish(ctx, rc, "wallet");
        return;
    }
    ctx->created = created;
    ctx->next(ctx);
}

/* A command's context; NULL (and the reply finished) when out of memory. */
static struct credits_ctx *credits__new(struct core *core, struct invocation *inv,
                                        void (*next)(struct credits_ctx *ctx))
{
    struct credits_ctx *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        reply_text(inv->reply, true, MSG_COMMON_OUT_OF_MEMORY);
        reply_finish(inv->reply);
        return NULL;
    }
    ctx->core = core;
    ctx->inv = inv;
    ctx->next = next;
    return ctx;
}

/* Open the member's wallet, then run ctx->next. */
static void credits__open(struct credits_ctx *ctx)
{
    int rc = wallet_account(ctx->core, ctx->inv, ctx->wallet, sizeof(ctx->wallet));
    if (rc == 0 && wallet_pool_account(ctx->inv, ctx->pool, sizeof(ctx->pool)) != 0)
        ctx->pool[0] = '\0';
    if (rc == 0)
        rc = wallet_open(ctx->core, ctx->inv, credits__opened, ctx);
    if (rc < 0)
        credits__finish(ctx, rc, "wallet");
}

static void credits__begin(struct core *core, struct invocation *inv,
                           void (*next)(struct credits_ctx *ctx))
{
    struct credits_ctx *ctx = credits__new(core, inv, next);
    if (ctx != NULL)
        credits__open(ctx);
}

static void credits__balance_line(struct text_buf *t, const char *who,
                                  const struct ledger_balance *b)
{
    char avail[32], posted[32], held[32];
    text_buf_add(t, MSG_CREDITS_BALANCE_LINE, who,
                 format_credits(avail, sizeof(avail), b->available));
    if (b->pending_debits > 0)
        text_buf_add(t, MSG_CREDITS_BALANCE_HELD, format_credits(posted, sizeof(posted), b->posted),
                     format_credits(held, sizeof(held), b->pending_debits));
    text_buf_add(t, "\n");
}

static void credits__debt_got(int rc, const struct ledger_result *r, void *data)
{
    struct credits_ctx *ctx = data;
    /* No debt account: nothing was ever owed. A read that fails only
     * hides the line; the command still answers. */
    ctx->owed = rc == 0 && r != NULL && r->balance.posted < 0 ? -r->balance.posted : 0;
    ctx->next(ctx);
}

/* Read what the wallet owes into ctx->owed, then run then. */
static void credits__debt_read(struct credits_ctx *ctx, void (*then)(struct credits_ctx *ctx))
{
    char debt[WALLET_ACCOUNT_MAX + sizeof(LEDGER_DEBT_PREFIX)];
    ctx->next = then;
    snprintf(debt, sizeof(debt), "%s%s", LEDGER_DEBT_PREFIX, ctx->wallet);
    if (ledger_balance_get(ctx->core->ledger, debt, credits__debt_got, ctx) < 0)
        then(ctx);
}

static void credits__debt_line(const struct credits_ctx *ctx, struct text_buf *t)
{
    char owed[32];
    if (ctx->owed > 0)
        text_buf_add(t, MSG_CREDITS_DEBT, format_credits(owed, sizeof(owed), ctx->owed));
}

/* ---- /start ------------------------------------------------------------ */

static void start__balance(int rc, const struct ledger_result *r, void *data)
{
    struct credits_ctx *ctx = data;
    if (rc < 0) {
        credits__finish(ctx, rc, "balance");
        return;
    }
    struct text_buf t = {0};
    const char *name = ctx->core->bot_name != NULL ? ctx->core->bot_name : MSG_COMMON_BOT_NAME;
    if (ctx->created)
        credits__welcome(ctx, &t);
    else
        text_buf_add(&t, MSG_START_WELCOME_BACK, name);
    credits__balance_line(&t, MSG_CREDITS_YOUR_WALLET, &r->balance);
    if (ctx->inv->scope == COMMAND_SCOPE_DM && ctx->inv->platform != COMMAND_PLATFORM_CONSOLE) {
        /* In a private chat the member learns the id an operator puts in
         * bot.conf (admins, [access] lists); a group would show it to all. */
        const char *platform = command_platform_name(ctx->inv->platform);
        text_buf_add(&t, MSG_START_YOUR_ID, platform, ctx->inv->user_id, platform,
                     ctx->inv->user_id);
    }
    text_buf_add(&t, MSG_START_HOW_CREDITS_WORK);
    reply_personal(ctx->inv->reply, text_buf_str(&t));
    free(t.buf);
    credits__finish(ctx, 0, NULL);
}

static void start__next(struct credits_ctx *ctx)
{
    int rc = ledger_balance_get(ctx->core->ledger, ctx->wallet, start__balance, ctx);
    if (rc < 0)
        credits__finish(ctx, rc, "balance");
}

void cmd_start(struct core *core, struct invocation *inv)
{
    credits__begin(core, inv, start__next);
}

/* ---- /balance ---------------------------------------------------------- */

static void balance__answer(struct credits_ctx *ctx, bool pool_found)
{
    char owed[32];
    struct text_buf t = {0};
    credits__welcome(ctx, &t);
    credits__balance_line(&t, MSG_CREDITS_YOUR_WALLET, &ctx->wallet_balance);
    credits__debt_line(ctx, &t);
    if (ctx->pool[0] != '\0') {
        if (!pool_found) {
            text_buf_add(&t, MSG_BALANCE_POOL_EMPTY);
        } else {
            credits__balance_line(&t, MSG_CREDITS_GROUP_POOL, &ctx->pool_balance);
        }
        if (ctx->pool_owed > 0)
            text_buf_add(&t, MSG_CREDITS_POOL_DEBT,
                         format_credits(owed, sizeof(owed), ctx->pool_owed));
    }
    text_buf_trim(&t);
    reply_personal(ctx->inv->reply, text_buf_str(&t));
    free(t.buf);
    credits__finish(ctx, 0, NULL);
}

static void balance__pool_debt(int rc, const struct ledger_result *r, void *data)
{
    struct credits_ctx *ctx = data;
    ctx->pool_owed = rc == 0 && r != NULL && r->balance.posted < 0 ? -r->balance.posted : 0;
    balance__answer(ctx, true);
}

static void balance__pool(int rc, const struct ledger_result *r, void *data)
{
    struct credits_ctx *ctx = data;
    if (rc < 0 && rc != HB_ENOTFOUND) {
        credits__finish(ctx, rc, "pool balance");
        return;
    }
    if (rc == HB_ENOTFOUND) {
        balance__answer(ctx, false);
        return;
    }
    ctx->pool_balance = r->balance;
    char debt[WALLET_ACCOUNT_MAX + sizeof(LEDGER_DEBT_PREFIX)];
    snprintf(debt, sizeof(debt), "%s%s", LEDGER_DEBT_PREFIX, ctx->pool);
    if (ledger_balance_get(ctx->core->ledger, debt, balance__pool_debt, ctx) < 0)
        balance__answer(ctx, true);
}

static void balance__wallet(int rc, const struct ledger_result *r, void *data)
{
    struct credits_ctx *ctx = data;
    if (rc < 0) {
        credits__finish(ctx, rc, "balance");
        return;
    }
    ctx->wallet_balance = r->balance;
    if (ctx->pool[0] == '\0') {
        balance__pool(HB_ENOTFOUND, NULL, ctx);
        return;
    }
    rc = ledger_balance_get(ctx->core->ledger, ctx->pool, balance__pool, ctx);
    if (rc < 0)
        credits__finish(ctx, rc, "pool balance");
}

static void balance__read(struct credits_ctx *ctx)
{
    int rc = ledger_balance_get(ctx->core->ledger, ctx->wallet, balance__wallet, ctx);
    if (rc < 0)
        credits__finish(ctx, rc, "balance");
}

static void balance__next(struct credits_ctx *ctx)
{
    credits__debt_read(ctx, balance__read);
}

void cmd_balance(struct core *core, struct invocation *inv)
{
    credits__begin(core, inv, balance__next);
}

/* ---- /history ---------------------------------------------------------- */

static void history__entry(struct text_buf *t, const struct store_transfer *tr, const char *wallet)
{
    char when[32], amount[32];
    bool in = strcmp(tr->credit, wallet) == 0;
    format_time(when, sizeof(when), tr->ts);
    format_credits(amount, sizeof(amount), tr->amount);
    const char *what = strncmp(tr->credit, LEDGER_DEBT_PREFIX, strlen(LEDGER_DEBT_PREFIX)) == 0
                           ? MSG_HISTORY_DEBT_REPAID
                           : format_kind(tr->kind);
    if (tr->flags & LEDGER_TRANSFER_PENDING)
        text_buf_add(t, MSG_HISTORY_RESERVED, when, amount, what);
    else if (tr->flags & LEDGER_TRANSFER_VOID)
        text_buf_add(t, MSG_HISTORY_RELEASED, when, what,
                     tr->flags & LEDGER_TRANSFER_EXPIRED ? MSG_HISTORY_EXPIRED : "");
    else
        text_buf_add(t, MSG_HISTORY_ENTRY, when, in ? "+" : "-", amount, what);
    if (tr->tag[0] != '\0')
        text_buf_add(t, MSG_HISTORY_TAG, tr->tag);
    text_buf_add(t, "\n");
}

/* A linked identity reads the shared wallet's history: say so, and where
 * its own wallet's entries are. */
static void credits__linked_line(const struct credits_ctx *ctx, struct text_buf *t)
{
    char identity[LINK_IDENTITY_MAX];
    const char *w = link_identity(ctx->inv, identity, sizeof(identity)) == 0
                        ? link_wallet(ctx->core, identity)
                        : NULL;
    if (w != NULL)
        text_buf_add(t, MSG_HISTORY_LINKED "\n", w);
}

static void history__got(int rc, const struct ledger_result *r, void *data)
{
    struct credits_ctx *ctx = data;
    if (rc < 0) {
        credits__finish(ctx, rc, "history");
        return;
    }
    size_t first = (size_t)ctx->page * CREDITS_HISTORY_PAGE;
    struct text_buf t = {0};
    credits__welcome(ctx, &t);
    credits__linked_line(ctx, &t);
    credits__debt_line(ctx, &t);
    if (r->history_count <= first) {
        text_buf_add(&t, ctx->page == 0 ? MSG_HISTORY_NONE : MSG_HISTORY_NO_OLDER);
    } else {
        text_buf_add(&t, MSG_HISTORY_HEADER, (long long)ctx->page + 1);
        size_t end = first + CREDITS_HISTORY_PAGE;
        if (end > r->history_count)
            end = r->history_count;
        for (size_t i = first; i < end; i++)
            history__entry(&t, &r->history[i], ctx->wallet);
    }
    /* Pages are anchored at the newest entry of the first view, so new
     * transfers do not shift the pages a member is reading. */
    uint64_t anchor = ctx->anchor;
    if (anchor == 0 && r->history_count > 0)
        anchor = r->history[0].seq + 1;
    struct reply_button buttons[2];
    size_t nb = 0;
    char payload[40];
    if (ctx->page > 0) {
        snprintf(payload, sizeof(payload), "%lld.%llu", (long long)ctx->page - 1,
                 (unsigned long long)anchor);
        if (button_ref_make(buttons[nb].ref, ctx->core->button_key, "hist", payload, ctx->inv) == 0)
            buttons[nb++].label = MSG_HISTORY_BUTTON_NEWER;
    }
    bool more = r->history_count > first + CREDITS_HISTORY_PAGE;
    if (more && ctx->page + 1 < CREDITS_HISTORY_PAGES) {
        snprintf(payload, sizeof(payload), "%lld.%llu", (long long)ctx->page + 1,
                 (unsigned long long)anchor);
        if (button_ref_make(buttons[nb].ref, ctx->core->button_key, "hist", payload, ctx->inv) == 0)
            buttons[nb++].label = MSG_HISTORY_BUTTON_OLDER;
    }
    text_buf_trim(&t);
    struct reply_msg msg = {.stage = REPLY_FINAL,
                            .ephemeral = true,
                            .personal = true,
                            .text = text_buf_str(&t),
                            .buttons = buttons,
                            .nbuttons = nb};
    reply_send(ctx->inv->reply, &msg);
    free(t.buf);
    credits__finish(ctx, 0, NULL);
}

static void history__read(struct credits_ctx *ctx)
{
    /* One more entry than the page holds tells whether an older page exists. */
    size_t limit = (size_t)(ctx->page + 1) * CREDITS_HISTORY_PAGE + 1;
    if (limit > 100)
        limit = 100;
    int rc =
        ledger_history_get(ctx->core->ledger, ctx->wallet, ctx->anchor, limit, history__got, ctx);
    if (rc < 0)
        credits__finish(ctx, rc, "history");
}

static void history__next(struct credits_ctx *ctx)
{
    credits__debt_read(ctx, history__read);
}

static void history__start(struct core *core, struct invocation *inv, int64_t page, uint64_t anchor)
{
    struct credits_ctx *ctx = credits__new(core, inv, history__next);
    if (ctx == NULL)
        return;
    ctx->page = page;
    ctx->anchor = anchor;
    credits__open(ctx);
}

void cmd_history(struct core *core, struct invocation *inv)
{
    int64_t page = inv->opts[0].set ? inv->opts[0].integer - 1 : 0;
    history__start(core, inv, page, 0);
}

void cmd_history_button(struct core *core, struct invocation *inv)
{
    char payload[40];
    long long page = 0;
    unsigned long long anchor = 0;
    int rc = button_ref_check(inv, core->button_key, payload, sizeof(payload));
    if (rc == 0 && (sscanf(payload, "%lld.%llu", &page, &anchor) != 2 || page < 0 ||
                    page >= CREDITS_HISTORY_PAGES))
        rc = HB_EINVAL;
    if (rc < 0) {
        reply_text(inv->reply, true,
                   rc == HB_EPERM ? MSG_HISTORY_BUTTON_NOT_YOURS : MSG_HISTORY_BUTTON_EXPIRED);
        reply_finish(inv->reply);
        return;
    }
    history__start(core, inv, page, anchor);
}

/* ---- /usage ------------------------------------------------------------ */

/* /usage chart: the same figures as a bar chart, the totals as caption. */
static void usage__chart(struct credits_ctx *ctx, const struct ledger_result *r, struct text_buf *t)
{
    int64_t total = 0, count = 0;
    for (size_t i = 0; i < r->usage_count; i++) {
        total += r->usage[i].amount;
        count += r->usage[i].count;
    }
    char title[128], amount[32];
    snprintf(title, sizeof(title), MSG_USAGE_CHART_TITLE, ctx->period);
    text_buf_add(t, MSG_USAGE_CHART_CAPTION, ctx->period);
    text_buf_add(t, MSG_USAGE_TOTAL, (long long)count, count == 1 ? "" : "s",
                 format_credits(amount, sizeof(amount), total));
    unsigned char *png = NULL;
    size_t len = 0;
    int rc = chart_usage_png(r->usage, r->usage_count, ctx->from_ms / 86400000, ctx->days, title,
                             &png, &len);
    if (rc < 0) {
        log_warn("command.failed", "command=usage step=chart error=%s", hb_strerror(rc));
        text_buf_add(t, MSG_CHART_FAILED, hb_strerror(rc));
        reply_personal(ctx->inv->reply, text_buf_str(t));
        return;
    }
    struct reply_image img = {
        .data = png, .len = len, .mime = "image/png", .filename = "usage.png"};
    struct reply_msg msg = {.stage = REPLY_FINAL,
                            .ephemeral = true,
                            .personal = true,
                            .text = text_buf_str(t),
                            .image = &img};
    reply_send(ctx->inv->reply, &msg);
    free(png);
}

static void usage__got(int rc, const struct ledger_result *r, void *data)
{
    struct credits_ctx *ctx = data;
    if (rc < 0) {
        credits__finish(ctx, rc, "usage");
        return;
    }
    struct text_buf t = {0};
    credits__welcome(ctx, &t);
    if (r->usage_count == 0) {
        text_buf_add(&t, MSG_USAGE_NONE, ctx->period);
    } else if (ctx->chart) {
        usage__chart(ctx, r, &t);
        free(t.buf);
        credits__finish(ctx, 0, NULL);
        return;
    } else {
        int64_t total = 0, count = 0;
        text_buf_add(&t, MSG_USAGE_HEADER, ctx->period);
        for (size_t i = 0; i < r->usage_count; i++) {
            const struct store_usage *u = &r->usage[i];
            char day[16], amount[32];
            text_buf_add(&t, MSG_USAGE_LINE, format_day(day, sizeof(day), u->day),
                         u->tag[0] != '\0' ? u->tag : MSG_USAGE_NO_TAG, (long long)u->count,
                         u->count == 1 ? "" : "s",
                         format_credits(amount, sizeof(amount), u->amount));
            total += u->amount;
            count += u->count;
        }
        char amount[32];
        text_buf_add(&t, MSG_USAGE_TOTAL, (long long)count, count == 1 ? "" : "s",
                     format_credits(amount, sizeof(amount), total));
    }
    reply_personal(ctx->inv->reply, text_buf_str(&t));
    free(t.buf);
    credits__finish(ctx, 0, NULL);
}

static void usage__next(struct credits_ctx *ctx)
{
    int rc = ledger_usage_get(ctx->core->ledger, ctx->wallet, ctx->from_ms,
                              core_now_ms(ctx->core) + 1, usage__got, ctx);
    if (rc < 0)
        credits__finish(ctx, rc, "usage");
}

void cmd_usage(struct core *core, struct invocation *inv)
{
    const char *period = inv->opts[0].set ? inv->opts[0].string : "week";
    int64_t days = 7;
    if (strcmp(period, "day") == 0)
        days = 1;
    else if (strcmp(period, "month") == 0)
        days = 30;
    else if (strcmp(period, "year") == 0)
        days = 365;
    struct credits_ctx *ctx = credits__new(core, inv, usage__next);
    if (ctx == NULL)
        return;
    ctx->days = days;
    ctx->chart = inv->opts[1].set && inv->opts[1].integer != 0;
    ctx->period = days == 1    ? MSG_PERIOD_DAY
                  : days == 7  ? MSG_PERIOD_WEEK
                  : days == 30 ? MSG_PERIOD_MONTH
                               : MSG_PERIOD_YEAR;
    /* Whole UTC days, so the first line is not a partial day. */
    int64_t now = core_now_ms(core);
    ctx->from_ms = (now / 86400000 - (days - 1)) * 86400000;
    credits__open(ctx);
}

/* ---- /deposit ---------------------------------------------------------- */

static void deposit__next(struct credits_ctx *ctx)
{
    struct text_buf t = {0};
    credits__welcome_here(ctx, &t);
    /* The member's own links and memos when payments are set up; they are
     * signed for this wallet (and this group's pool), so a payment lands
     * in the right account. */
    char *personal = NULL;
    char pool[WALLET_ACCOUNT_MAX + COMMAND_ID_MAX];
    /* A pool's link also names this chat, so the group hears here when
     * the payment arrives. */
    snprintf(pool, sizeof(pool), "%s%s%s", ctx->pool, ctx->inv->channel_id[0] != '\0' ? "#" : "",
             ctx->inv->channel_id);
    if (ctx->core->host_ops != NULL && ctx->core->host_ops->deposit_text_for != NULL)
        personal = ctx->core->host_ops->deposit_text_for(ctx->core->host, ctx->wallet,
                                                         ctx->pool[0] != '\0' ? pool : NULL);
    if (personal != NULL && personal[0] != '\0')
        text_buf_add(&t, "%s", personal);
    else if (ctx->core->deposit_text != NULL && ctx->core->deposit_text[0] != '\0')
        text_buf_add(&t, "%s", ctx->core->deposit_text);
    else
        text_buf_add(&t, MSG_DEPOSIT_NOT_SET_UP);
    free(personal);
    if (ctx->pool[0] != '\0')
        text_buf_add(&t, MSG_DEPOSIT_POOL_HINT);
    reply_text(ctx->inv->reply, true, "%s", text_buf_str(&t));
    free(t.buf);
    credits__welcome_aside(ctx);
    credits__finish(ctx, 0, NULL);
}

void cmd_deposit(struct core *core, struct invocation *inv)
{
    credits__begin(core, inv, deposit__next);
}

/* ---- /pool ------------------------------------------------------------- */

struct pool_view {
    struct credits_ctx *ctx;
    struct ledger_balance balance;
    bool empty;
};

static void pool__settings(int rc, const struct pool_settings *s, void *data)
{
    struct pool_view *pv = data;
    struct credits_ctx *ctx = pv->ctx;
    if (rc < 0) {
        free(pv);
        credits__finish(ctx, rc, "pool settings");
        return;
    }
    struct text_buf t = {0};
    credits__welcome_here(ctx, &t);
    if (pv->empty)
        text_buf_add(&t, MSG_POOL_EMPTY);
    else
        credits__balance_line(&t, MSG_CREDITS_GROUP_POOL, &pv->balance);
    text_buf_add(&t, MSG_POOL_WHO_SPENDS,
                 s->policy == POOL_POLICY_POOL_FIRST ? MSG_POOL_POLICY_POOL_FIRST
                                                     : MSG_POOL_POLICY_WALLET_FIRST);
    char cap[32];
    if (s->daily_cap > 0)
        text_buf_add(&t, MSG_POOL_DAILY_CAP, format_credits(cap, sizeof(cap), s->daily_cap));
    else
        text_buf_add(&t, MSG_POOL_NO_DAILY_CAP);
    reply_text(ctx->inv->reply, false, "%s", text_buf_str(&t));
    free(t.buf);
    free(pv);
    credits__welcome_aside(ctx);
    credits__finish(ctx, 0, NULL);
}

static void pool__balance(int rc, const struct ledger_result *r, void *data)
{
    struct pool_view *pv = data;
    if (rc < 0 && rc != HB_ENOTFOUND) {
        struct credits_ctx *ctx = pv->ctx;
        free(pv);
        credits__finish(ctx, rc, "pool balance");
        return;
    }
    pv->empty = rc == HB_ENOTFOUND || r->balance.posted == 0;
    if (rc == 0)
        pv->balance = r->balance;
    rc = pool_settings_get(pv->ctx->core, pv->ctx->pool, pool__settings, pv);
    if (rc < 0)
        pool__settings(rc, NULL, pv);
}

static void pool__next(struct credits_ctx *ctx)
{
    if (ctx->pool[0] == '\0') {
        struct text_buf t = {0};
        credits__welcome(ctx, &t);
        text_buf_add(&t, MSG_POOL_NOT_HERE);
        reply_text(ctx->inv->reply, true, "%s", t.buf);
        free(t.buf);
        credits__finish(ctx, 0, NULL);
        return;
    }
    struct pool_view *pv = calloc(1, sizeof(*pv));
    if (pv == NULL) {
        credits__finish(ctx, HB_ENOMEM, "pool");
        return;
    }
    pv->ctx = ctx;
    int rc = ledger_balance_get(ctx->core->ledger, ctx->pool, pool__balance, pv);
    if (rc < 0) {
        free(pv);
        credits__finish(ctx, rc, "pool balance");
    }
}

void cmd_pool(struct core *core, struct invocation *inv)
{
    credits__begin(core, inv, pool__next);
}
