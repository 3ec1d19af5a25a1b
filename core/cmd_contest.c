/* /contest and /admin contest start|stop (core/contest.h): a group's
 * contest, its standings from the votes table, the time left and the prize
 * pool. Counts and ids only, never prompt text. */
#include "core/core.h"
#include "base/error.h"
#include "base/log.h"
#include "base/text.h"
#include "core/audit.h"
#include "core/contest.h"
#include "core/contest_images.h"
#include "core/handlers.h"
#include "core/ledger.h"
#include "core/messages.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CONTEST_SHOWN 5

static bool contest__group(struct invocation *inv)
{
    if (inv->scope == COMMAND_SCOPE_GROUP && inv->scope_id[0] != '\0')
        return true;
    reply_text(inv->reply, true, "%s", MSG_CONTEST_NOT_HERE);
    reply_finish(inv->reply);
    return false;
}

/* "2026-12-07 00:00 UTC" */
static const char *contest__when(int64_t ms, char *buf, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(buf, cap, "%Y-%m-%d %H:%M UTC", &tm) == 0)
        snprintf(buf, cap, "?");
    return buf;
}

/* "1d 6h 0m" */
static const char *contest__left(int64_t ms, char *buf, size_t cap)
{
    int64_t min = ms > 0 ? (ms + 59999) / 60000 : 0;
    snprintf(buf, cap, "%" PRId64 "d %" PRId64 "h %" PRId64 "m", min / 1440, min / 60 % 24,
             min % 60);
    return buf;
}

/* ---- /contest ------------------------------------------------------------------ */

struct contest_ctx {
    struct core *core;
    struct invocation *inv;
    struct contest c;
    struct text_buf t;
    struct store_vote rows[CONTEST_SHOWN]; /* the entries shown, for their thumbnails */
    size_t nrows;
};

static void contest__finish(void *data)
{
    struct contest_ctx *ctx = data;
    reply_finish(ctx->inv->reply);
    free(ctx->t.buf);
    free(ctx);
}

static void contest__end(struct contest_ctx *ctx, int rc)
{
    if (rc < 0) {
        reply_text(ctx->inv->reply, true, MSG_CONTEST_FAILED, hb_strerror(rc));
    } else {
        text_buf_trim(&ctx->t);
        reply_text(ctx->inv->reply, false, "%s", text_buf_str(&ctx->t));
        /* Then the entries' images, as uploads (core/contest_images.h). */
        if (ctx->nrows > 0 && contest_images_show(ctx->core, ctx->inv->reply, ctx->rows, ctx->nrows,
                                                  contest__finish, ctx) == 0)
            return;
    }
    contest__finish(ctx);
}

static void contest__balance(int rc, const struct ledger_result *res, void *data)
{
    struct contest_ctx *ctx = data;
    if (rc < 0 && rc != HB_ENOTFOUND) {
        contest__end(ctx, rc);
        return;
    }
    char account[STORE_ID_SIZE];
    contest_prize_account(&ctx->c, account, sizeof(account));
    int64_t balance = rc == 0 ? res->balance.available : 0;
    text_buf_add(&ctx->t, MSG_CONTEST_POOL, (long long)balance, account);
    if (ctx->c.prize > 0)
        text_buf_add(&ctx->t, MSG_CONTEST_PRIZE, (long long)ctx->c.prize);
    const struct contest_rules *r = contests_rules(ctx->core->contests);
    char parts[CONTEST_WINNERS_MAX * 5] = "";
    size_t used = 0;
    for (int i = 0; i < r->winners; i++) {
        int n = snprintf(parts + used, sizeof(parts) - used, "%s%d", i > 0 ? "/" : "", r->split[i]);
        used += n > 0 && (size_t)n < sizeof(parts) - used ? (size_t)n : 0;
    }
    text_buf_add(&ctx->t, MSG_CONTEST_SPLIT, (size_t)r->winners, parts);
    contest__end(ctx, 0);
}

static void contest__board(int rc, const struct store_vote *rows, size_t n, void *data)
{
    struct contest_ctx *ctx = data;
    if (rc < 0) {
        contest__end(ctx, rc);
        return;
    }
    text_buf_add(&ctx->t, "%s", MSG_CONTEST_STANDINGS);
    if (n == 0)
        text_buf_add(&ctx->t, "%s", MSG_CONTEST_EMPTY);
    ctx->nrows = n < CONTEST_SHOWN ? n : CONTEST_SHOWN;
    memcpy(ctx->rows, rows, ctx->nrows * sizeof(rows[0]));
    for (size_t i = 0; i < n; i++)
        text_buf_add(&ctx->t, MSG_CONTEST_ROW, i + 1,
                     rows[i].creator[0] != '\0' ? rows[i].creator : "-", (long long)rows[i].count,
                     rows[i].count == 1 ? "" : "s", rows[i].image);
    char account[STORE_ID_SIZE];
    rc = contest_prize_account(&ctx->c, account, sizeof(account));
    if (rc == 0)
        rc = ctx->core->ledger != NULL
                 ? ledger_balance_get(ctx->core->ledger, account, contest__balance, ctx)
                 : HB_ECANCELED;
    if (rc < 0)
        contest__end(ctx, rc);
}

void cmd_contest(struct core *core, struct invocation *inv)
{
    if (!contest__group(inv))
        return;
    const struct contest *c = contests_find(core->contests, inv->platform, inv->scope_id);
    if (c == NULL) {
        reply_text(inv->reply, false, "%s", MSG_CONTEST_NONE);
        reply_finish(inv->reply);
        return;
    }
    struct contest_ctx *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        reply_text(inv->reply, true, MSG_CONTEST_FAILED, hb_strerror(HB_ENOMEM));
        reply_finish(inv->reply);
        return;
    }
    ctx->core = core;
    ctx->inv = inv;
    ctx->c = *c;
    char when[48], left[48];
    int64_t now = core_now_ms(core);
    if (c->end_ms > now)
        text_buf_add(&ctx->t, MSG_CONTEST_HEAD, contest__when(c->end_ms, when, sizeof(when)),
                     contest__left(c->end_ms - now, left, sizeof(left)));
    else
        text_buf_add(&ctx->t, MSG_CONTEST_ENDING, contest__when(c->end_ms, when, sizeof(when)));
    int rc = core->ledger != NULL ? contest_board(ledger_store(core->ledger), &ctx->c,
                                                  CONTEST_SHOWN, contest__board, ctx)
                                  : HB_ECANCELED;
    if (rc < 0)
        contest__end(ctx, rc);
}

/* ---- /admin contest start|stop -------------------------------------------------- */

struct contest_admin {
    struct core *core;
    struct invocation *inv;
    struct contest c;
    bool start;
};

static void contest__saved(int rc, void *data)
{
    struct contest_admin *a = data;
    struct invocation *inv = a->inv;
    char scope[STORE_ID_SIZE];
    contest_scope(&a->c, scope, sizeof(scope));
    if (a->start && rc == HB_EEXISTS) {
        reply_text(inv->reply, true, "%s", MSG_CONTEST_RUNNING);
    } else if (!a->start && rc == HB_ENOTFOUND) {
        reply_text(inv->reply, true, "%s", MSG_CONTEST_NO_CONTEST);
    } else if (!a->start && rc == HB_ESTATE) {
        reply_text(inv->reply, true, "%s", MSG_CONTEST_IS_ENDING);
    } else if (rc < 0) {
        reply_text(inv->reply, true, MSG_CONTEST_NOT_SAVED, hb_strerror(rc));
    } else if (a->start) {
        cJSON *detail = cJSON_CreateObject();
        cJSON_AddNumberToObject(detail, "id", (double)a->c.id);
        cJSON_AddNumberToObject(detail, "end_ms", (double)a->c.end_ms);
        cJSON_AddNumberToObject(detail, "prize", (double)a->c.prize);
        audit_note_inv(a->core, inv, "contest.start", scope, detail);
        char when[48], prize[96];
        if (a->c.prize > 0)
            snprintf(prize, sizeof(prize), MSG_CONTEST_PRIZE_SET, (long long)a->c.prize);
        else
            snprintf(prize, sizeof(prize), "%s", MSG_CONTEST_PRIZE_ALL);
        reply_text(inv->reply, false, MSG_CONTEST_STARTED,
                   contest__when(a->c.end_ms, when, sizeof(when)), prize);
        log_info("contest.started", "group=%s contest=%" PRId64 " end_ms=%" PRId64, scope, a->c.id,
                 a->c.end_ms);
    } else {
        audit_note_inv(a->core, inv, "contest.stop", scope, NULL);
        reply_text(inv->reply, false, "%s", MSG_CONTEST_STOPPED);
        log_info("contest.stopped", "group=%s contest=%" PRId64, scope, a->c.id);
    }
    reply_finish(inv->reply);
    free(a);
}

static void contest__admin(struct core *core, struct invocation *inv, bool start)
{
    if (!contest__group(inv))
        return;
    struct contest_admin *a = calloc(1, sizeof(*a));
    int rc = a == NULL ? HB_ENOMEM : core->contests == NULL ? HB_ECANCELED : 0;
    if (rc == 0) {
        a->core = core;
        a->inv = inv;
        a->start = start;
        a->c.platform = inv->platform;
        snprintf(a->c.scope_id, sizeof(a->c.scope_id), "%s", inv->scope_id);
        snprintf(a->c.channel_id, sizeof(a->c.channel_id), "%s", inv->channel_id);
        a->c.id = core_now_ms(core);
        if (start) {
            const char *period = inv->opts[0].set ? inv->opts[0].string : NULL;
            a->c.prize = inv->opts[1].set ? inv->opts[1].integer : 0;
            if (contest_end_for(period, a->c.id, &a->c.end_ms) < 0) {
                reply_text(inv->reply, true, "%s", MSG_CONTEST_BAD_PERIOD);
                reply_finish(inv->reply);
                free(a);
                return;
            }
            rc = contests_start(core->contests, &a->c, contest__saved, a);
        } else {
            const struct contest *c = contests_find(core->contests, inv->platform, inv->scope_id);
            if (c != NULL)
                a->c = *c;
            rc = contests_stop(core->contests, inv->platform, inv->scope_id, contest__saved, a);
        }
    }
    if (rc < 0) {
        if (a != NULL) {
            contest__saved(rc, a);
            return;
        }
        reply_text(inv->reply, true, MSG_CONTEST_NOT_SAVED, hb_strerror(rc));
        reply_finish(inv->reply);
    }
}

void cmd_admin_contest_start(struct core *core, struct invocation *inv)
{
    contest__admin(core, inv, true);
}

void cmd_admin_contest_stop(struct core *core, struct invocation *inv)
{
    contest__admin(core, inv, false);
}
