/* /earnings: the revenue shares (core/revenue.h) and holder payouts
 * (core/holders.h) credited to the member's wallet, this week and in all,
 * read from the wallet's ledger history: transfers of kind "share" into
 * it, and transfers into it whose id starts with "holders:" (only the
 * holder payout makes those). Amounts and counts only, and only the member
 * sees them. */
#include "core/core.h"
#include "base/error.h"
#include "core/handlers.h"
#include "core/holders.h"
#include "core/ledger.h"
#include "core/messages.h"
#include "core/wallet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EARN_PAGE 100 /* transfers per history read (the ledger's most) */
#define EARN_PAGES 50 /* history read at most: the newest 5,000 transfers */
#define EARN_DAY_MS 86400000LL

struct earn_ctx {
    struct core *core;
    struct invocation *inv;
    char wallet[WALLET_ACCOUNT_MAX];
    int64_t week_start;                      /* Monday 00:00 UTC, ms */
    int64_t week, all;                       /* credits */
    int64_t count;                           /* shares */
    int64_t held_week, held_all, held_count; /* holder payouts: credits, and how many */
    int pages;
};

static void earn__end(struct earn_ctx *ctx, int rc, bool truncated)
{
    struct invocation *inv = ctx->inv;
    if (rc < 0)
        reply_text(inv->reply, true, MSG_EARNINGS_FAILED, hb_strerror(rc));
    else if (ctx->count == 0 && ctx->held_count == 0)
        reply_text(inv->reply, true, truncated ? MSG_EARNINGS_NONE_RECENT : MSG_EARNINGS_NONE);
    else {
        char shares[400] = "", held[300] = "";
        if (ctx->count > 0)
            snprintf(shares, sizeof(shares), truncated ? MSG_EARNINGS_RECENT : MSG_EARNINGS,
                     (long long)ctx->week, (long long)ctx->all, (long long)ctx->count,
                     ctx->count == 1 ? "" : "s");
        if (ctx->held_count > 0)
            snprintf(held, sizeof(held), MSG_EARNINGS_HOLDERS, (long long)ctx->held_week,
                     (long long)ctx->held_all, (long long)ctx->held_count,
                     ctx->held_count == 1 ? "" : "s");
        reply_text(inv->reply, true, "%s%s%s", shares,
                   shares[0] != '\0' && held[0] != '\0' ? "\n" : "", held);
    }
    reply_finish(inv->reply);
    free(ctx);
}

static void earn__page(int rc, const struct ledger_result *res, void *data)
{
    struct earn_ctx *ctx = data;
    if (rc == HB_ENOTFOUND)
        rc = 0; /* no wallet yet: nothing earned */
    if (rc < 0) {
        earn__end(ctx, rc, false);
        return;
    }
    uint64_t oldest = 0;
    for (size_t i = 0; i < res->history_count; i++) {
        const struct store_transfer *t = &res->history[i];
        oldest = t->seq;
        if (strcmp(t->credit, ctx->wallet) != 0)
            continue;
        if (t->kind == LEDGER_KIND_TRANSFER &&
            strncmp(t->id, HOLDERS_ACCOUNT_PREFIX, strlen(HOLDERS_ACCOUNT_PREFIX)) == 0) {
            ctx->held_all += t->amount;
            ctx->held_count++;
            if (t->ts >= ctx->week_start)
                ctx->held_week += t->amount;
            continue;
        }
        if (t->kind != LEDGER_KIND_SHARE)
            continue;
        ctx->all += t->amount;
        ctx->count++;
        if (t->ts >= ctx->week_start)
            ctx->week += t->amount;
    }
    bool more = res->history_count == EARN_PAGE && oldest > 1;
    if (more && ++ctx->pages < EARN_PAGES && ctx->core->ledger != NULL &&
        ledger_history_get(ctx->core->ledger, ctx->wallet, oldest, EARN_PAGE, earn__page, ctx) == 0)
        return;
    earn__end(ctx, 0, more);
}

void cmd_earnings(struct core *core, struct invocation *inv)
{
    struct earn_ctx *ctx = calloc(1, sizeof(*ctx));
    int rc = ctx == NULL ? HB_ENOMEM : core->ledger == NULL ? HB_ECANCELED : 0;
    if (rc == 0) {
        ctx->core = core;
        ctx->inv = inv;
        int64_t day = core_now_ms(core) / EARN_DAY_MS;
        ctx->week_start = (day - (day + 3) % 7) * EARN_DAY_MS; /* 1970-01-01 was a Thursday */
        rc = wallet_account(core, inv, ctx->wallet, sizeof(ctx->wallet));
    }
    if (rc == 0)
        rc = ledger_history_get(core->ledger, ctx->wallet, 0, EARN_PAGE, earn__page, ctx);
    if (rc < 0) {
        free(ctx);
        reply_text(inv->reply, true, MSG_EARNINGS_FAILED, hb_strerror(rc));
        reply_finish(inv->reply);
    }
}
