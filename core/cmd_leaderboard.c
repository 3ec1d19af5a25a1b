/* /leaderboard: the most upvoted generations of this server or group. */
#include "core/core.h"
#include "base/error.h"
#include "core/generate.h"
#include "core/handlers.h"
#include "core/ledger.h"
#include "core/messages.h"
#include "core/state.h"
#include "base/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BOARD_RECORDS_MAX 1000 /* votes read per request */
#define BOARD_SHOWN 10

struct board_ctx {
    struct invocation *inv;
    int64_t from_day; /* votes on this day or later count */
    const char *period;
};

struct board_row {
    char gid[16];
    char creator[COMMAND_ID_MAX];
    char model[64];
    int64_t votes;
};

static int board__row_cmp(const void *a, const void *b)
{
    const struct board_row *x = a, *y = b;
    if (x->votes != y->votes)
        return x->votes > y->votes ? -1 : 1;
    return strcmp(x->gid, y->gid);
}

/* Keys are "<scope>/<day>/<image>/<voter>"; values "<creator>|<model>". */
static void board__listed(int rc, const struct state_entry *e, size_t n, void *data)
{
    struct board_ctx *ctx = data;
    struct invocation *inv = ctx->inv;
    if (rc < 0) {
        reply_text(inv->reply, true, MSG_BOARD_READ_FAILED, hb_strerror(rc));
        goto out;
    }
    struct board_row *rows = calloc(n > 0 ? n : 1, sizeof(*rows));
    size_t nrows = 0;
    if (rows == NULL) {
        reply_text(inv->reply, true, MSG_COMMON_OUT_OF_MEMORY);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const char *p = strchr(e[i].key, '/');
        if (p == NULL)
            continue;
        long long day = strtoll(p + 1, NULL, 10);
        const char *gid = strchr(p + 1, '/');
        if (gid == NULL || day < ctx->from_day)
            continue;
        gid++;
        size_t glen = strcspn(gid, "/");
        struct board_row *row = NULL;
        for (size_t r = 0; r < nrows && row == NULL; r++) {
            if (strlen(rows[r].gid) == glen && strncmp(rows[r].gid, gid, glen) == 0)
                row = &rows[r];
        }
        if (row == NULL) {
            row = &rows[nrows++];
            snprintf(row->gid, sizeof(row->gid), "%.*s", (int)glen, gid);
            size_t clen = strcspn(e[i].value, "|");
            snprintf(row->creator, sizeof(row->creator), "%.*s", (int)clen, e[i].value);
            const char *model = e[i].value[clen] == '|' ? e[i].value + clen + 1 : "";
            snprintf(row->model, sizeof(row->model), "%s", model);
        }
        row->votes++;
    }
    qsort(rows, nrows, sizeof(*rows), board__row_cmp);
    struct text_buf t = {0};
    if (nrows == 0) {
        text_buf_add(&t, MSG_BOARD_EMPTY, ctx->period);
    } else {
        text_buf_add(&t, MSG_BOARD_HEADER, ctx->period);
        for (size_t r = 0; r < nrows && r < BOARD_SHOWN; r++)
            text_buf_add(&t, MSG_BOARD_ROW, r + 1, (long long)rows[r].votes,
                         rows[r].votes == 1 ? "" : "s", rows[r].creator,
                         rows[r].model[0] != '\0' ? rows[r].model : MSG_BOARD_UNKNOWN_MODEL);
        text_buf_trim(&t);
    }
    reply_text(inv->reply, false, "%s", text_buf_str(&t));
    free(t.buf);
    free(rows);
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
    int64_t days = strcmp(period, "day") == 0     ? 1
                   : strcmp(period, "month") == 0 ? 30
                   : strcmp(period, "all") == 0   ? 0
                                                  : 7;
    ctx->period = days == 1    ? MSG_PERIOD_DAY
                  : days == 7  ? MSG_PERIOD_WEEK
                  : days == 30 ? MSG_PERIOD_MONTH
                               : MSG_PERIOD_ALL;
    int64_t today = core_now_ms(core) / 86400000;
    ctx->from_day = days == 0 ? 0 : today - (days - 1);
    char prefix[COMMAND_ID_MAX + 24];
    snprintf(prefix, sizeof(prefix), "%s:%s/", command_platform_name(inv->platform), inv->scope_id);
    int rc = state_list(ledger_store(core->ledger), GENERATE_NS_VOTE, prefix, BOARD_RECORDS_MAX,
                        board__listed, ctx);
    if (rc < 0)
        board__listed(rc, NULL, 0, ctx);
}
