/* Switches set by command: /admin feature (a group's feature switches) and
 * /notify (a member's notices). */
#include "core/core.h"
#include "base/error.h"
#include "base/log.h"
#include "core/feature.h"
#include "core/handlers.h"
#include "core/ledger.h"
#include "core/messages.h"
#include "core/notice.h"
#include "core/wallet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct switch_ctx {
    struct invocation *inv;
    struct core *core;
    enum feature feature;
    bool on;
};

/* "images" -> "Images" for the start of a sentence. */
static void switch__title(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s", name);
    if (buf[0] >= 'a' && buf[0] <= 'z')
        buf[0] = (char)(buf[0] - 'a' + 'A');
}

static void switch__feature_saved(int rc, void *data)
{
    struct switch_ctx *ctx = data;
    char name[32];
    switch__title(name, sizeof(name), feature_name(ctx->feature));
    if (rc < 0)
        reply_text(ctx->inv->reply, true, MSG_ADMIN_NOT_SAVED, hb_strerror(rc));
    else
        reply_text(ctx->inv->reply, false,
                   features_global_on(ctx->core->features, ctx->feature)
                       ? MSG_FEATURE_SET
                       : MSG_FEATURE_SET_GLOBAL_OFF,
                   name, ctx->on ? "on" : "off");
    reply_finish(ctx->inv->reply);
    free(ctx);
}

void cmd_admin_feature(struct core *core, struct invocation *inv)
{
    enum feature f = feature_parse(inv->opts[0].string);
    if (inv->scope != COMMAND_SCOPE_GROUP || inv->scope_id[0] == '\0') {
        reply_text(inv->reply, true, MSG_FEATURE_NOT_HERE);
        reply_finish(inv->reply);
        return;
    }
    char name[32];
    switch__title(name, sizeof(name), feature_name(f));
    if (!inv->opts[1].set) {
        bool here = !features_group_off(core->features, f, inv->platform, inv->scope_id);
        reply_text(inv->reply, true, MSG_FEATURE_STATE, name, here ? "on" : "off",
                   features_global_on(core->features, f) ? "on" : "off");
        reply_finish(inv->reply);
        return;
    }
    struct switch_ctx *ctx = calloc(1, sizeof(*ctx));
    bool on = strcmp(inv->opts[1].string, "on") == 0;
    int rc = ctx == NULL ? HB_ENOMEM : core->ledger == NULL ? HB_ECANCELED : 0;
    if (rc == 0) {
        *ctx = (struct switch_ctx){.inv = inv, .core = core, .feature = f, .on = on};
        rc = features_group_set(core->features, ledger_store(core->ledger), inv->platform,
                                inv->scope_id, f, on, switch__feature_saved, ctx);
    }
    if (rc < 0) {
        free(ctx);
        reply_text(inv->reply, true, MSG_ADMIN_NOT_SAVED, hb_strerror(rc));
        reply_finish(inv->reply);
        return;
    }
    log_info("feature.switched", "platform=%s group=%s feature=%s state=%s",
             command_platform_name(inv->platform), inv->scope_id, feature_name(f),
             on ? "on" : "off");
}

static void switch__notify_done(int rc, bool off, void *data)
{
    struct invocation *inv = data;
    if (rc < 0)
        reply_text(inv->reply, true, MSG_ADMIN_NOT_SAVED, hb_strerror(rc));
    else
        reply_text(inv->reply, true, off ? MSG_NOTIFY_OFF : MSG_NOTIFY_ON);
    reply_finish(inv->reply);
}

void cmd_notify(struct core *core, struct invocation *inv)
{
    char wallet[WALLET_ACCOUNT_MAX];
    wallet_account(core, inv, wallet, sizeof(wallet));
    int rc = core->ledger == NULL ? HB_ECANCELED : 0;
    if (rc == 0 && inv->opts[0].set)
        rc = notices_optout_set(ledger_store(core->ledger), wallet,
                                strcmp(inv->opts[0].string, "off") == 0, switch__notify_done, inv);
    else if (rc == 0)
        rc = notices_optout_get(ledger_store(core->ledger), wallet, switch__notify_done, inv);
    if (rc < 0) {
        reply_text(inv->reply, true, MSG_ADMIN_NOT_SAVED, hb_strerror(rc));
        reply_finish(inv->reply);
    }
}
