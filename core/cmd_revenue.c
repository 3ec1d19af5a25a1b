/* /admin revenue: the revenue shares in effect in a group, and the
 * group's own split of the shares the operator made adjustable
 * (core/revenue.h). */
#include "core/core.h"
#include "base/error.h"
#include "core/audit.h"
#include "base/log.h"
#include "core/handlers.h"
#include "core/ledger.h"
#include "core/messages.h"
#include "core/revenue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REVENUE_TEXT_MAX 2048

/* The split in effect in inv's group, appended to buf after prefix. */
static void revenue__describe(struct core *core, const struct invocation *inv, const char *prefix,
                              char *buf, size_t cap)
{
    const struct revenue_split *s = revenue_config(core->revenue);
    int32_t bp[REVENUE_SHARES_MAX];
    bool group = inv->scope == COMMAND_SCOPE_GROUP && inv->scope_id[0] != '\0';
    bool overridden = revenue_parts(core->revenue, inv->platform, group ? inv->scope_id : NULL, bp);
    size_t used = 0;
    int n = snprintf(buf, cap, "%s%s%s", prefix, prefix[0] != '\0' ? " " : "", MSG_REVENUE_HEAD);
    used = n > 0 && (size_t)n < cap ? (size_t)n : cap - 1;
    int32_t adjustable = 0;
    const char *example = NULL;
    for (size_t i = 0; i < s->n && used < cap - 1; i++) {
        const struct revenue_share *sh = &s->shares[i];
        char part[16], lo[16], hi[16], range[64] = "";
        if (sh->adjustable) {
            snprintf(range, sizeof(range), MSG_REVENUE_RANGE,
                     revenue_bp_text(sh->min_bp, lo, sizeof(lo)),
                     revenue_bp_text(sh->max_bp, hi, sizeof(hi)));
            adjustable += sh->bp;
            if (example == NULL)
                example = sh->account;
        }
        n = snprintf(buf + used, cap - used, MSG_REVENUE_LINE, sh->account,
                     revenue_bp_text(bp[i], part, sizeof(part)), range);
        used = n > 0 && (size_t)n < cap - used ? used + (size_t)n : cap - 1;
    }
    char scope[COMMAND_ID_MAX + 16];
    snprintf(scope, sizeof(scope), "%s:%s", command_platform_name(inv->platform), inv->scope_id);
    if (group)
        n = snprintf(buf + used, cap - used, MSG_REVENUE_TAIL, s->remainder, scope);
    else
        n = snprintf(buf + used, cap - used, MSG_REVENUE_TAIL_PRIVATE, s->remainder);
    used = n > 0 && (size_t)n < cap - used ? used + (size_t)n : cap - 1;
    if (overridden) {
        n = snprintf(buf + used, cap - used, "%s", MSG_REVENUE_OVERRIDDEN);
        used = n > 0 && (size_t)n < cap - used ? used + (size_t)n : cap - 1;
    }
    if (example != NULL && group) {
        char sum[16];
        snprintf(buf + used, cap - used, MSG_REVENUE_HOWTO, example,
                 revenue_bp_text(adjustable, sum, sizeof(sum)));
    }
}

static void revenue__reply(struct core *core, struct invocation *inv, const char *prefix)
{
    char *text = malloc(REVENUE_TEXT_MAX);
    if (text == NULL) {
        reply_text(inv->reply, true, MSG_ADMIN_NOT_SAVED, hb_strerror(HB_ENOMEM));
    } else {
        revenue__describe(core, inv, prefix, text, REVENUE_TEXT_MAX);
        reply_text(inv->reply, true, "%s", text);
        free(text);
    }
    reply_finish(inv->reply);
}

struct revenue_ctx {
    struct core *core;
    struct invocation *inv;
    bool reset;
    char text[REVENUE_SHARES_MAX * (REVENUE_ACCOUNT_MAX + 16)]; /* the group's split, stored */
};

static void revenue__saved(int rc, void *data)
{
    struct revenue_ctx *ctx = data;
    struct invocation *inv = ctx->inv;
    if (rc < 0) {
        reply_text(inv->reply, true, MSG_ADMIN_NOT_SAVED, hb_strerror(rc));
        reply_finish(inv->reply);
    } else {
        char scope[COMMAND_ID_MAX + 16];
        snprintf(scope, sizeof(scope), "%s:%s", command_platform_name(inv->platform),
                 inv->scope_id);
        cJSON *detail = NULL;
        if (!ctx->reset) {
            detail = cJSON_CreateObject();
            cJSON_AddStringToObject(detail, "shares", ctx->text);
        }
        audit_note_inv(ctx->core, inv, ctx->reset ? "revenue.reset" : "revenue.set", scope, detail);
        revenue__reply(ctx->core, inv, ctx->reset ? MSG_REVENUE_RESET : MSG_REVENUE_SAVED);
    }
    free(ctx);
}

void cmd_admin_revenue(struct core *core, struct invocation *inv)
{
    const struct revenue_split *s = revenue_config(core->revenue);
    const char *arg = inv->opts[0].set ? inv->opts[0].string : "";
    bool group = inv->scope == COMMAND_SCOPE_GROUP && inv->scope_id[0] != '\0';
    if (s->n == 0) {
        reply_text(inv->reply, true, MSG_REVENUE_NONE);
        reply_finish(inv->reply);
        return;
    }
    if (arg[0] == '\0') {
        revenue__reply(core, inv, "");
        return;
    }
    const char *fail = NULL;
    char err[256];
    int32_t bp[REVENUE_SHARES_MAX];
    bool reset = strcmp(arg, "reset") == 0;
    bool any = false;
    for (size_t i = 0; i < s->n; i++)
        any = any || s->shares[i].adjustable;
    if (!group)
        fail = MSG_REVENUE_NOT_HERE;
    else if (!any)
        fail = MSG_REVENUE_FIXED;
    else if (!reset && revenue_override_parse(s, arg, bp, err, sizeof(err)) < 0)
        fail = err;
    if (fail != NULL) {
        if (fail == err)
            reply_text(inv->reply, true, MSG_REVENUE_BAD, err);
        else
            reply_text(inv->reply, true, "%s", fail);
        reply_finish(inv->reply);
        return;
    }
    struct revenue_ctx *ctx = calloc(1, sizeof(*ctx));
    int rc = ctx == NULL ? HB_ENOMEM : core->ledger == NULL ? HB_ECANCELED : 0;
    if (rc == 0) {
        ctx->core = core;
        ctx->inv = inv;
        ctx->reset = reset;
        if (!reset)
            revenue_override_text(s, bp, ctx->text, sizeof(ctx->text));
        rc = revenue_override_set(core->revenue, ledger_store(core->ledger), inv->platform,
                                  inv->scope_id, reset ? NULL : ctx->text, revenue__saved, ctx);
    }
    if (rc < 0) {
        free(ctx);
        reply_text(inv->reply, true, MSG_ADMIN_NOT_SAVED, hb_strerror(rc));
        reply_finish(inv->reply);
        return;
    }
    log_info("revenue.override", "platform=%s group=%s state=%s",
             command_platform_name(inv->platform), inv->scope_id, reset ? "reset" : "set");
}
