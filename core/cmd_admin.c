/* Admin commands: reload, credit grants and revocations, pool settings. */
#include "core/core.h"
#include "core/audit.h"
#include "base/json.h"
#include "base/error.h"
#include "core/catalog.h"
#include "core/format.h"
#include "core/generate.h"
#include "core/handlers.h"
#include "core/ledger.h"
#include "core/link.h"
#include "core/member.h"
#include "base/log.h"
#include "core/messages.h"
#include "core/pool.h"
#include "core/state.h"
#include "core/wallet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cmd_admin_reload(struct core *core, struct invocation *inv)
{
    /* Who asked; the daemon records what the reload changed (actor
     * "config"). */
    audit_note_inv(core, inv, "config.reload_requested", "bot.conf", NULL);
    if (core->host_ops == NULL || core->host_ops->reload == NULL) {
        reply_text(inv->reply, true, MSG_ADMIN_RELOAD_UNAVAILABLE);
        reply_finish(inv->reply);
        return;
    }
    /* The host finishes the reply once the reload has a result. */
    core->host_ops->reload(core->host, inv->reply);
}

/* ---- grants and revocations ------------------------------------------- */

enum admin_move { ADMIN_GRANT, ADMIN_REVOKE, ADMIN_POOL_GRANT };

struct admin_ctx {
    struct core *core;
    struct invocation *inv;
    enum admin_move move;
    char target[WALLET_ACCOUNT_MAX]; /* the wallet or pool credited or debited */
    char shown[WALLET_ACCOUNT_MAX];  /* how the reply names it */
    int64_t amount;
    const char *reason; /* borrowed from the invocation; NULL when none */
    bool short_funds;   /* a revocation refused for funds, in a group */
    char id[COMMAND_EVENT_ID_MAX + 16];
    char ref[STORE_REF_SIZE];
    struct store_audit audit; /* the move's audit entry; audited: it is set */
    bool audited;
};

static void admin__done(struct admin_ctx *ctx, int rc, const char *what)
{
    if (rc < 0) {
        log_warn("command.failed", "command=%s step=%s error=%s", ctx->inv->name, what,
                 hb_strerror(rc));
        reply_text(ctx->inv->reply, true, MSG_ADMIN_FAILED, hb_strerror(rc));
    }
    reply_finish(ctx->inv->reply);
    free(ctx);
}

/* A member's balance is theirs. In a group, where a note to the admin is
 * shown to everyone (a Telegram group, a Discord channel message), the
 * confirmation says what moved and to whom, and the member's balance goes
 * to the admin as a personal aside: shown where the platform can show it
 * to the admin alone (a Discord slash command), left out where it cannot.
 * In a DM the whole answer is the admin's. A pool's balance is the
 * group's own. */
static bool admin__in_group(const struct admin_ctx *ctx)
{
    return ctx->inv->scope == COMMAND_SCOPE_GROUP;
}

static void admin__wallet_aside(struct admin_ctx *ctx, const char *avail)
{
    char text[WALLET_ACCOUNT_MAX + 96];
    snprintf(text, sizeof(text), MSG_ADMIN_WALLET_NOW, ctx->shown, avail);
    struct reply_msg msg = {
        .stage = REPLY_FINAL, .ephemeral = true, .personal = true, .aside = true, .text = text};
    reply_send(ctx->inv->reply, &msg);
}

static void admin__balance(int rc, const struct ledger_result *r, void *data)
{
    struct admin_ctx *ctx = data;
    char amount[32], avail[32];
    format_credits(amount, sizeof(amount), ctx->amount);
    if (ctx->short_funds) {
        /* Refused in a group: no figure there; the admin hears what is
         * available when the balance could be read. */
        reply_text(ctx->inv->reply, true, MSG_ADMIN_REVOKE_SHORT_HERE, ctx->shown);
        if (rc == 0)
            admin__wallet_aside(ctx, format_credits(avail, sizeof(avail), r->balance.available));
        admin__done(ctx, 0, NULL);
        return;
    }
    if (rc < 0) {
        admin__done(ctx, rc, "balance");
        return;
    }
    format_credits(avail, sizeof(avail), r->balance.available);
    bool group = admin__in_group(ctx);
    switch (ctx->move) {
    case ADMIN_GRANT:
        if (group)
            reply_text(ctx->inv->reply, true, MSG_ADMIN_GRANTED_HERE, amount, ctx->shown);
        else
            reply_text(ctx->inv->reply, true, MSG_ADMIN_GRANTED, amount, ctx->shown, avail);
        break;
    case ADMIN_REVOKE:
        if (group)
            reply_text(ctx->inv->reply, true, MSG_ADMIN_REVOKED_HERE, amount, ctx->shown);
        else
            reply_text(ctx->inv->reply, true, MSG_ADMIN_REVOKED, amount, ctx->shown, avail);
        break;
    case ADMIN_POOL_GRANT:
        reply_text(ctx->inv->reply, false, MSG_ADMIN_POOL_GRANTED, amount, avail);
        break;
    }
    if (group && ctx->move != ADMIN_POOL_GRANT)
        admin__wallet_aside(ctx, avail);
    admin__done(ctx, 0, NULL);
}

static void admin__moved(int rc, const struct ledger_result *r, void *data)
{
    struct admin_ctx *ctx = data;
    if (rc == HB_EFUNDS && admin__in_group(ctx)) {
        ctx->short_funds = true;
        if (ledger_balance_get(ctx->core->ledger, ctx->target, admin__balance, ctx) < 0)
            admin__balance(HB_ECANCELED, NULL, ctx);
        return;
    }
    if (rc == HB_EFUNDS) {
        char amount[32];
        reply_text(ctx->inv->reply, true, MSG_ADMIN_REVOKE_SHORT, ctx->shown,
                   format_credits(amount, sizeof(amount), ctx->amount));
        admin__done(ctx, 0, NULL);
        return;
    }
    if (rc == HB_ECONFLICT) {
        /* The same event with other fields: never apply it twice. */
        reply_text(ctx->inv->reply, true, MSG_ADMIN_CONFLICT,
                   r != NULL && r->field != NULL ? r->field : "?");
        admin__done(ctx, 0, NULL);
        return;
    }
    if (rc < 0 && rc != HB_EEXISTS) {
        admin__done(ctx, rc, "transfer");
        return;
    }
    log_info("admin.credits", "move=%s account=%s amount=%lld admin=%s:%s replay=%d",
             ctx->move == ADMIN_REVOKE ? "revoke" : "grant", ctx->target, (long long)ctx->amount,
             command_platform_name(ctx->inv->platform), ctx->inv->user_id, rc == HB_EEXISTS);
    rc = ledger_balance_get(ctx->core->ledger, ctx->target, admin__balance, ctx);
    if (rc < 0)
        admin__done(ctx, rc, "balance");
}

/* The move's audit entry, appended by the transfer's guard: in the same
 * transaction as the transfer, so one never commits without the other,
 * and a redelivered command (a replay: no guard runs) records nothing. */
static int admin__audit_guard(struct store_txn *txn, void *data)
{
    struct admin_ctx *ctx = data;
    return audit_append_txn(txn, &ctx->audit);
}

static void admin__audit_prepare(struct admin_ctx *ctx)
{
    char actor[STORE_ID_SIZE];
    cJSON *detail = cJSON_CreateObject();
    cJSON_AddNumberToObject(detail, "amount", (double)ctx->amount);
    cJSON_AddStringToObject(detail, "transfer", ctx->id);
    if (ctx->reason != NULL)
        cJSON_AddStringToObject(detail, "reason", ctx->reason);
    char *text = json_print(detail, NULL);
    cJSON_Delete(detail);
    audit_actor(actor, sizeof(actor), ctx->inv);
    ctx->audited = text != NULL && audit_entry_set(&ctx->audit, actor,
                                                   ctx->move == ADMIN_GRANT    ? "grant"
                                                   : ctx->move == ADMIN_REVOKE ? "revoke"
                                                                               : "pool.grant",
                                                   ctx->target, text) == 0;
    free(text);
    if (!ctx->audited)
        log_error("audit.not_written", "action=grant actor=%s error=%s", actor,
                  hb_strerror(HB_ENOMEM));
}

static void admin__target_open(int rc, const struct ledger_result *r, void *data)
{
    struct admin_ctx *ctx = data;
    (void)r;
    if (rc < 0 && rc != HB_EEXISTS) {
        admin__done(ctx, rc, "open account");
        return;
    }
    bool revoke = ctx->move == ADMIN_REVOKE;
    struct ledger_transfer t = {
        .id = ctx->id,
        .debit = revoke ? ctx->target : LEDGER_SYSTEM_GRANTS,
        .credit = revoke ? LEDGER_SYSTEM_GRANTS : ctx->target,
        .amount = ctx->amount,
        .kind = revoke ? LEDGER_KIND_REVERSAL : LEDGER_KIND_GRANT,
        .ref = ctx->ref,
    };
    admin__audit_prepare(ctx);
    if (ctx->audited) {
        t.guard = admin__audit_guard;
        t.guard_data = ctx;
    }
    rc = ledger_transfer_create(ctx->core->ledger, &t, admin__moved, ctx);
    if (rc < 0)
        admin__done(ctx, rc, "transfer");
}

/* Open the target account (a wallet as the member's own first command would
 * open it, welcome bonus included, so a grant never skips the bonus) and
 * move. The transfer id comes from the event, so a redelivered command
 * moves nothing twice. */
static void admin__open_and_move(struct admin_ctx *ctx)
{
    const char *reason = ctx->reason;
    struct core *core = ctx->core;
    struct invocation *inv = ctx->inv;
    snprintf(ctx->id, sizeof(ctx->id), "%s:%s", ctx->move == ADMIN_REVOKE ? "revoke" : "grant",
             inv->event_id);
    snprintf(ctx->ref, sizeof(ctx->ref), "by %s:%s%s%s", command_platform_name(inv->platform),
             inv->user_id, reason != NULL ? ": " : "", reason != NULL ? reason : "");
    int64_t bonus = ctx->move == ADMIN_POOL_GRANT ? 0 : core->welcome_bonus;
    int rc = ledger_account_open(core->ledger, ctx->target, LEDGER_ACCOUNT_NO_OVERDRAFT, bonus,
                                 admin__target_open, ctx);
    if (rc < 0)
        admin__done(ctx, rc, "open account");
}

/* The member reference resolved (or not): only a real member's wallet is
 * ever opened; a name nobody is known by is refused with how to name one. */
static void admin__member_resolved(int rc, const char *user_id, void *data)
{
    struct admin_ctx *ctx = data;
    struct invocation *inv = ctx->inv;
    if (rc == HB_ENOTFOUND) {
        const char *named = inv->opts[0].string;
        log_info("admin.member_unknown", "command=%s platform=%s", inv->name,
                 command_platform_name(inv->platform));
        switch (inv->platform) {
        case COMMAND_PLATFORM_TELEGRAM: {
            char amount[32];
            snprintf(amount, sizeof(amount), "%lld", (long long)ctx->amount);
            reply_text(inv->reply, true, MSG_ADMIN_MEMBER_UNKNOWN_TELEGRAM, named, inv->name,
                       amount);
            break;
        }
        case COMMAND_PLATFORM_DISCORD:
            reply_text(inv->reply, true, MSG_ADMIN_MEMBER_UNKNOWN_DISCORD, named);
            break;
        case COMMAND_PLATFORM_CONSOLE:
            reply_text(inv->reply, true, MSG_ADMIN_MEMBER_UNKNOWN_CONSOLE, named,
                       inv->user_name[0] != '\0' ? inv->user_name : inv->user_id);
            break;
        }
        admin__done(ctx, 0, NULL);
        return;
    }
    if (rc == 0 && ctx->core->ledger == NULL)
        rc = HB_ECANCELED;
    if (rc == 0)
        rc = link_wallet_name(ctx->core, command_platform_name(inv->platform), user_id, ctx->target,
                              sizeof(ctx->target));
    if (rc < 0) {
        admin__done(ctx, rc, "member");
        return;
    }
    /* A member named by replying to their message is shown by name. */
    bool by_reply = inv->target_name[0] != '\0' && strcmp(inv->opts[0].string, inv->target_id) == 0;
    snprintf(ctx->shown, sizeof(ctx->shown), "%s",
             by_reply ? inv->target_name : inv->opts[0].string);
    admin__open_and_move(ctx);
}

/* Move credits between the grants account and a member's wallet (named by
 * the invocation's first option) or this group's pool. */
static void admin__move(struct core *core, struct invocation *inv, enum admin_move move,
                        int64_t amount, const char *reason)
{
    struct admin_ctx *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        reply_finish(inv->reply);
        return;
    }
    ctx->core = core;
    ctx->inv = inv;
    ctx->move = move;
    ctx->amount = amount;
    ctx->reason = reason;
    if (move != ADMIN_POOL_GRANT) {
        member_resolve(core, inv, inv->opts[0].string, admin__member_resolved, ctx);
        return;
    }
    int rc = wallet_pool_account(inv, ctx->target, sizeof(ctx->target));
    if (rc == HB_ENOTFOUND) {
        reply_text(inv->reply, true, MSG_ADMIN_POOL_NOT_HERE);
        admin__done(ctx, 0, NULL);
        return;
    }
    snprintf(ctx->shown, sizeof(ctx->shown), MSG_ADMIN_POOL_SHOWN);
    if (rc < 0 || core->ledger == NULL) {
        admin__done(ctx, rc < 0 ? rc : HB_ECANCELED, "account");
        return;
    }
    admin__open_and_move(ctx);
}

void cmd_admin_grant(struct core *core, struct invocation *inv)
{
    admin__move(core, inv, ADMIN_GRANT, inv->opts[1].integer,
                inv->opts[2].set ? inv->opts[2].string : NULL);
}

void cmd_admin_revoke(struct core *core, struct invocation *inv)
{
    admin__move(core, inv, ADMIN_REVOKE, inv->opts[1].integer,
                inv->opts[2].set ? inv->opts[2].string : NULL);
}

void cmd_admin_pool_grant(struct core *core, struct invocation *inv)
{
    admin__move(core, inv, ADMIN_POOL_GRANT, inv->opts[0].integer,
                inv->opts[1].set ? inv->opts[1].string : NULL);
}

/* ---- pool settings ------------------------------------------------------ */

struct admin_pool_ctx {
    struct core *core;
    struct invocation *inv;
    char pool[WALLET_ACCOUNT_MAX];
    bool set_policy;
    enum pool_policy policy;
    int64_t cap;
};

static void admin__pool_saved(int rc, const struct pool_settings *s, void *data)
{
    struct admin_pool_ctx *ctx = data;
    if (rc == 0) {
        cJSON *detail = cJSON_CreateObject();
        if (ctx->set_policy)
            cJSON_AddStringToObject(detail, "policy",
                                    s->policy == POOL_POLICY_POOL_FIRST ? "pool_first"
                                                                        : "wallet_first");
        else
            cJSON_AddNumberToObject(detail, "daily_cap", (double)s->daily_cap);
        audit_note_inv(ctx->core, ctx->inv, ctx->set_policy ? "pool.policy" : "pool.limit",
                       ctx->pool, detail);
    }
    if (rc < 0) {
        reply_text(ctx->inv->reply, true, MSG_ADMIN_NOT_SAVED, hb_strerror(rc));
    } else if (ctx->set_policy) {
        reply_text(ctx->inv->reply, false, MSG_ADMIN_POLICY_SET,
                   s->policy == POOL_POLICY_POOL_FIRST ? MSG_ADMIN_POLICY_POOL_FIRST
                                                       : MSG_ADMIN_POLICY_WALLET_FIRST);
    } else if (s->daily_cap > 0) {
        char cap[32];
        reply_text(ctx->inv->reply, false, MSG_ADMIN_CAP_SET,
                   format_credits(cap, sizeof(cap), s->daily_cap));
    } else {
        reply_text(ctx->inv->reply, false, MSG_ADMIN_CAP_REMOVED);
    }
    reply_finish(ctx->inv->reply);
    free(ctx);
}

static void admin__pool_loaded(int rc, const struct pool_settings *s, void *data)
{
    struct admin_pool_ctx *ctx = data;
    if (rc < 0) {
        admin__pool_saved(rc, s, ctx);
        return;
    }
    struct pool_settings next = *s;
    if (ctx->set_policy)
        next.policy = ctx->policy;
    else
        next.daily_cap = ctx->cap;
    rc = pool_settings_put(ctx->core, ctx->pool, &next, admin__pool_saved, ctx);
    if (rc < 0)
        admin__pool_saved(rc, &next, ctx);
}

static void admin__pool_set(struct core *core, struct invocation *inv, bool set_policy)
{
    struct admin_pool_ctx *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        reply_finish(inv->reply);
        return;
    }
    ctx->core = core;
    ctx->inv = inv;
    ctx->set_policy = set_policy;
    if (wallet_pool_account(inv, ctx->pool, sizeof(ctx->pool)) != 0) {
        reply_text(inv->reply, true, MSG_ADMIN_POOL_NOT_HERE);
        reply_finish(inv->reply);
        free(ctx);
        return;
    }
    if (set_policy)
        pool_policy_parse(inv->opts[0].string, &ctx->policy);
    else
        ctx->cap = inv->opts[0].integer;
    int rc = pool_settings_get(core, ctx->pool, admin__pool_loaded, ctx);
    if (rc < 0)
        admin__pool_saved(rc, NULL, ctx);
}

void cmd_admin_pool_limit(struct core *core, struct invocation *inv)
{
    admin__pool_set(core, inv, false);
}

void cmd_admin_pool_policy(struct core *core, struct invocation *inv)
{
    admin__pool_set(core, inv, true);
}

/* ---- per-group model switches ------------------------------------------ */

struct admin_model_ctx {
    struct core *core;
    struct invocation *inv;
    bool enable;
    char model[128];
};

static void admin__model_saved(int rc, const char *value, void *data)
{
    struct admin_model_ctx *ctx = data;
    (void)value;
    if (rc == 0) {
        char scope[COMMAND_ID_MAX + 16];
        snprintf(scope, sizeof(scope), "%s:%s", command_platform_name(ctx->inv->platform),
                 ctx->inv->scope_id);
        cJSON *detail = cJSON_CreateObject();
        cJSON_AddStringToObject(detail, "model", ctx->model);
        audit_note_inv(ctx->core, ctx->inv, ctx->enable ? "model.enable" : "model.disable", scope,
                       detail);
    }
    if (rc < 0)
        reply_text(ctx->inv->reply, true, MSG_ADMIN_NOT_SAVED, hb_strerror(rc));
    else if (ctx->enable)
        reply_text(ctx->inv->reply, false, MSG_ADMIN_MODEL_ENABLED, ctx->model);
    else
        reply_text(ctx->inv->reply, false, MSG_ADMIN_MODEL_DISABLED, ctx->model);
    reply_finish(ctx->inv->reply);
    free(ctx);
}

static void admin__model_set(struct core *core, struct invocation *inv, bool enable)
{
    const char *name = inv->opts[0].string;
    if (inv->scope != COMMAND_SCOPE_GROUP || inv->scope_id[0] == '\0') {
        reply_text(inv->reply, true, MSG_ADMIN_MODEL_NOT_HERE);
        reply_finish(inv->reply);
        return;
    }
    struct catalog *cat = core->generate != NULL ? generate_catalog(core->generate) : NULL;
    if (cat == NULL || catalog_model_find(cat, name) == NULL) {
        reply_text(inv->reply, true, MSG_COMMON_NO_SUCH_MODEL, name);
        reply_finish(inv->reply);
        return;
    }
    struct admin_model_ctx *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL || core->ledger == NULL) {
        free(ctx);
        reply_text(inv->reply, true, MSG_ADMIN_NOT_SAVED_RETRY);
        reply_finish(inv->reply);
        return;
    }
    ctx->core = core;
    ctx->inv = inv;
    ctx->enable = enable;
    snprintf(ctx->model, sizeof(ctx->model), "%s", name);
    char key[STATE_KEY_MAX];
    snprintf(key, sizeof(key), "%s:%s/%s", command_platform_name(inv->platform), inv->scope_id,
             name);
    int rc = state_put(ledger_store(core->ledger), GENERATE_NS_SCOPE_MODEL, key,
                       enable ? NULL : "off", admin__model_saved, ctx);
    if (rc < 0)
        admin__model_saved(rc, NULL, ctx);
}

void cmd_admin_model_enable(struct core *core, struct invocation *inv)
{
    admin__model_set(core, inv, true);
}

void cmd_admin_model_disable(struct core *core, struct invocation *inv)
{
    admin__model_set(core, inv, false);
}
