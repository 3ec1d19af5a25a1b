/* /leaderboard: the most upvoted generations of this server or group in a
 * calendar period (today, this week, this month, all time; UTC), read from
 * the vote counts (core/votes.c) as one indexed top-N query. */
#include "core/core.h"
#include "base/error.h"
#include "core/handlers.h"
#include "core/ledger.h"
#include "core/messages.h"
#include "core/votes.h"
#include "base/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BOARD_SHOWN 10

struct board_ctx {
    struct invocation *inv;
    const char *period; /* the period's words, for the reply */
};

static void board__listed(int rc, const struct store_vote *rows, size_t n, void *data)
{
    struct board_ctx *ctx = data;
    struct invocation *inv = ctx->inv;
    if (rc < 0) {
        reply_text(inv->reply, true, MSG_BOARD_READ_FAILED, hb_strerror(rc));
        goto out;
    }
    struct text_buf t = {0};
    if (n == 0) {
        text_buf_add(&t, MSG_BOARD_EMPTY, ctx->period);
    } else {
        text_buf_add(&t, MSG_BOARD_HEADER, ctx->period);
        for (size_t r = 0; r < n; r++)
            text_buf_add(&t, MSG_BOARD_ROW, r + 1, (long long)rows[r].count,
                         rows[r].count == 1 ? "" : "s", rows[r].creator,
                         rows[r].model[0] != '\0' ? rows[r].model : MSG_BOARD_UNKNOWN_MODEL);
        text_buf_trim(&t);
    }
    reply_text(inv->reply, false, "%s", text_buf_str(&t));
    free(t.buf);
out:
    reply_finish(inv->reply);
    free(ctx);
}

void cmd_leaderboard(struct core *core, struct invocation *inv)
{
    if (inv->scope != COMMAND_SCOPE_GROUP || inv->scope_id[0] == '\0') {
        reply_text(inv->reply, true, MSG_BOARD_NOT_HERE);
        reply_finish(inv->reply);
        return;
    }
    if (core->ledger == NULL) {
        reply_text(inv->reply, true, MSG_ROUTER_SHUTTING_DOWN);
        reply_finish(inv->reply);
        return;
    }
    struct board_ctx *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        reply_finish(inv->reply);
        return;
    }
    ctx->inv = inv;
    const char *period = inv->opts[0].set ? inv->opts[0].string : "week";
    enum votes_span span = strcmp(period, "day") == 0     ? VOTES_DAY
                           : strcmp(period, "month") == 0 ? VOTES_MONTH
                           : strcmp(period, "all") == 0   ? VOTES_ALL
                                                          : VOTES_WEEK;
    ctx->period = span == VOTES_DAY     ? MSG_BOARD_PERIOD_DAY
                  : span == VOTES_WEEK  ? MSG_BOARD_PERIOD_WEEK
                  : span == VOTES_MONTH ? MSG_BOARD_PERIOD_MONTH
                                        : MSG_BOARD_PERIOD_ALL;
    char scope[COMMAND_ID_MAX + 24];
    snprintf(scope, sizeof(scope), "%s:%s", command_platform_name(inv->platform), inv->scope_id);
    int rc = votes_top(ledger_store(core->ledger), scope, span, core_now_ms(core), BOARD_SHOWN,
                       board__listed, ctx);
    if (rc < 0)
        board__listed(rc, NULL, 0, ctx);
}
