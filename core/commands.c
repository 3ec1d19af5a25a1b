#include "core/commands.h"

#include "base/error.h"
#include "core/handlers.h"
#include "core/messages.h"
#include "base/text.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct command_option_spec help_options[] = {
    {.name = "command",
     .description = "A command to explain",
     .type = COMMAND_OPT_STRING,
     .max = 32,
     .rest = true},
};

static const struct command_option_spec start_options[] = {
    {.name = "payload",
     .description = "Deep-link payload (Telegram start links)",
     .type = COMMAND_OPT_STRING,
     .max = 64,
     .rest = true},
};

static const struct command_option_spec history_options[] = {
    {.name = "page",
     .description = "Page to show, 1 is the newest",
     .type = COMMAND_OPT_INTEGER,
     .min = 1,
     .max = 12},
};

static const struct command_option_spec link_options[] = {
    {.name = "code",
     .description = "The code /link gave you on your other platform",
     .type = COMMAND_OPT_STRING,
     .max = 32,
     .rest = true},
};

static const char *const usage_periods[] = {"day", "week", "month", "year", NULL};
static const struct command_option_spec usage_options[] = {
    {.name = "period",
     .description = "How far back: day, week, month or year (default week)",
     .type = COMMAND_OPT_STRING,
     .choices = usage_periods},
    {.name = "chart",
     .description = "Answer with a bar chart of spending per day and model",
     .type = COMMAND_OPT_BOOLEAN},
};

#define ADMIN_AMOUNT_MAX 1000000000000LL /* a trillion credits: far above any real grant */

static const struct command_option_spec admin_move_options[] = {
    {.name = "member", .description = "The member", .type = COMMAND_OPT_USER, .required = true},
    {.name = "amount",
     .description = "Credits",
     .type = COMMAND_OPT_INTEGER,
     .required = true,
     .min = 1,
     .max = ADMIN_AMOUNT_MAX},
    {.name = "reason",
     .description = "Why (kept in the ledger)",
     .type = COMMAND_OPT_STRING,
     .max = 200,
     .rest = true},
};

static const struct command_option_spec admin_pool_grant_options[] = {
    {.name = "amount",
     .description = "Credits",
     .type = COMMAND_OPT_INTEGER,
     .required = true,
     .min = 1,
     .max = ADMIN_AMOUNT_MAX},
    {.name = "reason",
     .description = "Why (kept in the ledger)",
     .type = COMMAND_OPT_STRING,
     .max = 200,
     .rest = true},
};

static const struct command_option_spec admin_pool_limit_options[] = {
    {.name = "credits",
     .description = "Most the pool may spend per day; 0 removes the cap",
     .type = COMMAND_OPT_INTEGER,
     .required = true,
     .min = 0,
     .max = ADMIN_AMOUNT_MAX},
};

static const char *const pool_policies[] = {"pool_first", "wallet_first", NULL};
static const struct command_option_spec admin_pool_policy_options[] = {
    {.name = "policy",
     .description = "pool_first or wallet_first",
     .type = COMMAND_OPT_STRING,
     .required = true,
     .choices = pool_policies},
};

static const char *const board_periods[] = {"day", "week", "month", "all", NULL};
static const struct command_option_spec leaderboard_options[] = {
    {.name = "period",
     .description = "day, week (since Monday), month or all; UTC (default week)",
     .type = COMMAND_OPT_STRING,
     .choices = board_periods},
};

static const char *const gallery_orders[] = {"new", "top", NULL};
static const struct command_option_spec gallery_options[] = {
    {.name = "period",
     .description = "day, week (since Monday), month or all; UTC (default week)",
     .type = COMMAND_OPT_STRING,
     .choices = board_periods},
    {.name = "order",
     .description = "new (newest first, the default) or top (most upvoted first)",
     .type = COMMAND_OPT_STRING,
     .choices = gallery_orders},
};

static const struct command_option_spec admin_revenue_options[] = {
    {.name = "shares",
     .description = "Adjustable shares and their parts (pool:<scope> 30% ...), or reset",
     .type = COMMAND_OPT_STRING,
     .max = 400,
     .rest = true},
};

static const struct command_option_spec admin_contest_options[] = {
    {.name = "period",
     .description = "week (until Monday 00:00 UTC, the default) or a number of days",
     .type = COMMAND_OPT_STRING,
     .max = 16},
    {.name = "prize",
     .description = "Credits from the prize pool (default: all of it at the end)",
     .type = COMMAND_OPT_INTEGER,
     .min = 1,
     .max = ADMIN_AMOUNT_MAX},
};

static const struct command_option_spec profile_options[] = {
    {.name = "member", .description = "A member (default: you)", .type = COMMAND_OPT_USER},
};

static const struct command_option_spec admin_model_options[] = {
    {.name = "name",
     .description = "A model from /models",
     .type = COMMAND_OPT_STRING,
     .required = true,
     .min = 1,
     .max = 100},
};

static const char *const stats_periods[] = {"day", "week", "month", NULL};
static const struct command_option_spec admin_stats_options[] = {
    {.name = "period",
     .description = "day, week or month (default week)",
     .type = COMMAND_OPT_STRING,
     .choices = stats_periods},
    {.name = "chart",
     .description = "Answer with a bar chart of spending per day and model",
     .type = COMMAND_OPT_BOOLEAN},
};

static const struct command_option_spec admin_audit_options[] = {
    {.name = "filter",
     .description = "Only entries by or about this member, or of this action",
     .type = COMMAND_OPT_STRING,
     .max = 100},
    {.name = "page",
     .description = "Page to show, 1 is the newest",
     .type = COMMAND_OPT_INTEGER,
     .min = 1,
     .max = 50},
};

static const struct command_option_spec admin_member_options[] = {
    {.name = "member", .description = "The member", .type = COMMAND_OPT_USER, .required = true},
};

static const struct command_option_spec admin_payments_assign_options[] = {
    {.name = "id",
     .description = "The payment's id from /admin payments unmatched",
     .type = COMMAND_OPT_STRING,
     .required = true,
     .min = 1,
     .max = 150},
    {.name = "member", .description = "The member", .type = COMMAND_OPT_USER, .required = true},
    {.name = "credits",
     .description = "Credits it buys, when the payment does not say",
     .type = COMMAND_OPT_INTEGER,
     .min = 1,
     .max = ADMIN_AMOUNT_MAX},
};

/* Options several commands share. */
#define APPROVAL_ID_OPTION                                                                         \
    {                                                                                              \
        .name = "id", .description = "A held request's id from /admin approvals",                  \
        .type = COMMAND_OPT_STRING, .required = true, .min = 1, .max = 16                          \
    }
#define ON_OFF_OPTION                                                                              \
    {                                                                                              \
        .name = "state", .description = "on or off (leave out to see it)",                         \
        .type = COMMAND_OPT_STRING, .choices = on_off                                              \
    }

static const char *const feature_names_opt[] = {"chat", "images", "payments", "approvals", NULL};
static const char *const on_off[] = {"on", "off", NULL};
static const struct command_option_spec admin_feature_options[] = {
    {.name = "name",
     .description = "chat, images, payments or approvals",
     .type = COMMAND_OPT_STRING,
     .required = true,
     .choices = feature_names_opt},
    ON_OFF_OPTION,
};
static const struct command_option_spec notify_options[] = {
    ON_OFF_OPTION,
};

static const struct command_option_spec admin_approve_options[] = {
    APPROVAL_ID_OPTION,
};

static const struct command_option_spec admin_reject_options[] = {
    APPROVAL_ID_OPTION,
    {.name = "reason",
     .description = "Why (the member is told)",
     .type = COMMAND_OPT_STRING,
     .max = 200,
     .rest = true},
};

static const struct command_option_spec admin_edit_options[] = {
    APPROVAL_ID_OPTION,
    {.name = "prompt",
     .description = "The prompt to run instead (the member is told)",
     .type = COMMAND_OPT_STRING,
     .required = true,
     .min = 1,
     .max = 6000,
     .rest = true},
};

#define OPTS(a) .options = a, .noptions = sizeof(a) / sizeof(a[0])

static const char *const generate_modalities[] = {"text", "image", NULL};
static const struct command_option_spec chat_options[] = {
    {.name = "prompt",
     .description = "What to ask",
     .type = COMMAND_OPT_STRING,
     .required = true,
     .min = 1,
     .max = 6000,
     .rest = true},
    {.name = "model",
     .description = "A model from /models (default: yours, see /model)",
     .type = COMMAND_OPT_STRING,
     .max = 100},
};
static const struct command_option_spec imagine_options[] = {
    {.name = "prompt",
     .description = "What to draw",
     .type = COMMAND_OPT_STRING,
     .required = true,
     .min = 1,
     .max = 6000,
     .rest = true},
    {.name = "model",
     .description = "An image model from /models",
     .type = COMMAND_OPT_STRING,
     .max = 100},
    {.name = "size",
     .description = "WIDTHxHEIGHT, one of the model's sizes",
     .type = COMMAND_OPT_STRING,
     .max = 12},
};
static const struct command_option_spec models_options[] = {
    {.name = "modality",
     .description = "Only text or only image models",
     .type = COMMAND_OPT_STRING,
     .choices = generate_modalities},
};
static const struct command_option_spec model_options[] = {
    {.name = "name",
     .description = "A model from /models",
     .type = COMMAND_OPT_STRING,
     .required = true,
     .min = 1,
     .max = 100},
};

static const struct command_option_spec apikey_create_options[] = {
    {.name = "name",
     .description = "A name for the key (letters, digits, . _ -)",
     .type = COMMAND_OPT_STRING,
     .min = 1,
     .max = 32},
    {.name = "pool",
     .description = "Admins: the key spends this server's pool",
     .type = COMMAND_OPT_BOOLEAN},
    {.name = "models",
     .description = "Models it may use, comma-separated (default: any)",
     .type = COMMAND_OPT_STRING,
     .max = 500},
    {.name = "rpm",
     .description = "Requests per minute at most",
     .type = COMMAND_OPT_INTEGER,
     .min = 1,
     .max = 100000},
    {.name = "day_cap",
     .description = "Credits per day at most",
     .type = COMMAND_OPT_INTEGER,
     .min = 1,
     .max = 1000000000000LL},
    {.name = "total_cap",
     .description = "Credits in total at most",
     .type = COMMAND_OPT_INTEGER,
     .min = 1,
     .max = 1000000000000LL},
    {.name = "days",
     .description = "Expires after this many days",
     .type = COMMAND_OPT_INTEGER,
     .min = 1,
     .max = 3650},
};
static const struct command_option_spec apikey_revoke_options[] = {
    {.name = "key",
     .description = "The key's name, or the prefix /apikey list shows",
     .type = COMMAND_OPT_STRING,
     .required = true,
     .min = 1,
     .max = 80},
};

static const struct command_option_spec persona_options[] = {
    {.name = "name",
     .description = "A persona from /persona, or none (default: list them)",
     .type = COMMAND_OPT_STRING,
     .max = 64},
};
static const char *const persona_wheres[] = {"group", "server", "channel", NULL};
static const struct command_option_spec admin_persona_set_options[] = {
    {.name = "name",
     .description = "A persona of bot.conf",
     .type = COMMAND_OPT_STRING,
     .required = true,
     .min = 1,
     .max = 64},
    {.name = "where",
     .description = "channel (this channel, thread or topic) or group (default: the whole group)",
     .type = COMMAND_OPT_STRING,
     .choices = persona_wheres},
};
static const struct command_option_spec admin_persona_clear_options[] = {
    {.name = "where",
     .description = "channel (this channel, thread or topic) or group (default: the whole group)",
     .type = COMMAND_OPT_STRING,
     .choices = persona_wheres},
};
static const char *const plaintalk_states[] = {"on", "off", NULL};
static const struct command_option_spec admin_plaintalk_options[] = {
    {.name = "state",
     .description = "on: every plain message is a chat turn; off: only what is addressed",
     .type = COMMAND_OPT_STRING,
     .required = true,
     .choices = plaintalk_states},
};

static const struct command_spec command_list[] = {
    {.name = "start",
     .description = "Open your wallet and see how credits work",
     .example = "/start",
     OPTS(start_options),
     .handler = cmd_start,
     .personal = true},
    {.name = "balance",
     .description = "Your credits, and this group's pool (only you see it)",
     .example = "/balance",
     .handler = cmd_balance,
     .personal = true},
    {.name = "history",
     .description = "Your recent transfers, page by page",
     .example = "/history 2",
     OPTS(history_options),
     .handler = cmd_history,
     .personal = true,
     .button_prefix = "hist",
     .on_button = cmd_history_button},
    {.name = "usage",
     .description = "What you spent, per day and model",
     .example = "/usage month",
     OPTS(usage_options),
     .handler = cmd_usage,
     .personal = true},
    {.name = "deposit",
     .description = "How to top up your credits",
     .example = "/deposit",
     .handler = cmd_deposit},
    {.name = "pool",
     .description = "This group's pool: balance, who spends it, daily cap",
     .example = "/pool",
     .handler = cmd_pool},
    {.name = "leaderboard",
     .description = "The most upvoted generations here",
     .example = "/leaderboard month",
     OPTS(leaderboard_options),
     .handler = cmd_leaderboard},
    {.name = "gallery",
     .description = "The images made here, page by page, with their upvotes",
     .example = "/gallery week top",
     OPTS(gallery_options),
     .handler = cmd_gallery,
     .button_prefix = "gal",
     .on_button = cmd_gallery_button},
    {.name = "trending",
     .description = "The models most used this week, here and on the whole bot",
     .example = "/trending",
     .handler = cmd_trending},
    {.name = "contest",
     .description = "This group's contest: standings, time left, prize pool",
     .example = "/contest",
     .handler = cmd_contest},
    {.name = "profile",
     .description = "Generations made, upvotes received and rank here",
     .example = "/profile @alice",
     OPTS(profile_options),
     .handler = cmd_profile},
    {.name = "earnings",
     .description = "Revenue shares credited to your wallet (only you see it)",
     .example = "/earnings",
     .handler = cmd_earnings,
     .personal = true},
    {.name = "notify",
     .description = "Turn your low-balance and upvote notices on or off",
     .example = "/notify off",
     OPTS(notify_options),
     .handler = cmd_notify,
     .personal = true},
    {.name = "link",
     .description = "One wallet on every platform: get a code, or use one",
     .example = "/link K7M2QX9P",
     OPTS(link_options),
     .handler = cmd_link,
     .personal = true},
    {.name = "unlink",
     .description = "Give a linked account its own wallet again",
     .example = "/unlink",
     .handler = cmd_unlink,
     .personal = true},
    {.name = "help",
     .description = "List the commands, or explain one",
     .example = "/help balance",
     .access = COMMAND_ACCESS_MEMBER,
     OPTS(help_options),
     .handler = cmd_help},
    {.name = "admin grant",
     .description = "Give a member credits",
     .example = "/admin grant @alice 500 contest prize",
     .access = COMMAND_ACCESS_ADMIN,
     OPTS(admin_move_options),
     .handler = cmd_admin_grant},
    {.name = "admin revoke",
     .description = "Take credits back from a member",
     .example = "/admin revoke @alice 200 granted by mistake",
     .access = COMMAND_ACCESS_ADMIN,
     OPTS(admin_move_options),
     .handler = cmd_admin_revoke},
    {.name = "admin pool grant",
     .description = "Add credits to this group's pool",
     .example = "/admin pool grant 10000",
     .access = COMMAND_ACCESS_ADMIN,
     OPTS(admin_pool_grant_options),
     .handler = cmd_admin_pool_grant},
    {.name = "admin pool limit",
     .description = "Set the most this group's pool may spend per day",
     .example = "/admin pool limit 2000",
     .access = COMMAND_ACCESS_ADMIN,
     OPTS(admin_pool_limit_options),
     .handler = cmd_admin_pool_limit},
    {.name = "admin pool policy",
     .description = "Choose whether members spend the pool or their wallet first",
     .example = "/admin pool policy wallet_first",
     .access = COMMAND_ACCESS_ADMIN,
     OPTS(admin_pool_policy_options),
     .handler = cmd_admin_pool_policy},
    {.name = "admin model enable",
     .description = "Make a model available in this group again",
     .example = "/admin model enable demo-chat",
     .access = COMMAND_ACCESS_ADMIN,
     OPTS(admin_model_options),
     .handler = cmd_admin_model_enable},
    {.name = "admin model disable",
     .description = "Turn a model off in this group",
     .example = "/admin model disable demo-image",
     .access = COMMAND_ACCESS_ADMIN,
     OPTS(admin_model_options),
     .handler = cmd_admin_model_disable},
    {.name = "admin stats",
     .description = "Generations, credits spent, top models, refusals and failures",
     .example = "/admin stats month",
     .access = COMMAND_ACCESS_ADMIN,
     OPTS(admin_stats_options),
     .handler = cmd_admin_stats},
    {.name = "admin persona set",
     .description = "Set the persona of this group, or of this channel",
     .example = "/admin persona set pirate channel",
     .access = COMMAND_ACCESS_ADMIN,
     OPTS(admin_persona_set_options),
     .handler = cmd_admin_persona_set},
    {.name = "admin persona clear",
     .description = "Remove the persona of this group, or of this channel",
     .example = "/admin persona clear channel",
     .access = COMMAND_ACCESS_ADMIN,
     OPTS(admin_persona_clear_options),
     .handler = cmd_admin_persona_clear},
    {.name = "admin plaintalk",
     .description = "Whether plain messages in this Telegram group are chat turns",
     .example = "/admin plaintalk on",
     .access = COMMAND_ACCESS_ADMIN,
     OPTS(admin_plaintalk_options),
     .handler = cmd_admin_plaintalk},
    {.name = "admin feature",
     .description = "Switch chat, images, payments or approvals on or off in this group",
     .example = "/admin feature images off",
     .access = COMMAND_ACCESS_ADMIN,
     OPTS(admin_feature_options),
     .handler = cmd_admin_feature},
    {.name = "admin revenue",
     .description = "Revenue shares here; adjust the ones the operator allows",
     .example = "/admin revenue pool:<scope> 30% system:prizes:<scope> 10%",
     .access = COMMAND_ACCESS_ADMIN,
     OPTS(admin_revenue_options),
     .handler = cmd_admin_revenue},
    {.name = "admin contest start",
     .description = "Start a contest here: the top creators by upvotes win the prize",
     .example = "/admin contest start week 500",
     .access = COMMAND_ACCESS_ADMIN,
     OPTS(admin_contest_options),
     .handler = cmd_admin_contest_start},
    {.name = "admin contest stop",
     .description = "Stop this group's contest without paying a prize",
     .example = "/admin contest stop",
     .access = COMMAND_ACCESS_ADMIN,
     .handler = cmd_admin_contest_stop},
    {.name = "admin reload",
     .description = "Reload bot.conf now and report the result",
     .example = "/admin reload",
     .access = COMMAND_ACCESS_ADMIN,
     .handler = cmd_admin_reload},
    {.name = "admin audit",
     .description = "The audit trail: who did what, newest first",
     .example = "/admin audit grant 2",
     .access = COMMAND_ACCESS_ADMIN,
     OPTS(admin_audit_options),
     .handler = cmd_admin_audit,
     .personal = true,
     .button_prefix = "aud",
     .on_button = cmd_admin_audit_button},
    {.name = "admin member",
     .description = "A member's balance, reservations, transfers and generations",
     .example = "/admin member @alice",
     .access = COMMAND_ACCESS_ADMIN,
     OPTS(admin_member_options),
     .handler = cmd_admin_member,
     .personal = true},
    {.name = "admin payments unmatched",
     .description = "Payments that named no member",
     .example = "/admin payments unmatched",
     .access = COMMAND_ACCESS_ADMIN,
     .handler = cmd_admin_payments_unmatched,
     .personal = true},
    {.name = "admin payments assign",
     .description = "Credit an unmatched payment to a member, once",
     .example = "/admin payments assign stripe:evt_123 @alice",
     .access = COMMAND_ACCESS_ADMIN,
     OPTS(admin_payments_assign_options),
     .handler = cmd_admin_payments_assign},
    /* The approval queue. */
    {.name = "admin approvals",
     .description = "List the generations waiting for approval",
     .example = "/admin approvals",
     .access = COMMAND_ACCESS_ADMIN,
     .handler = cmd_admin_approvals,
     .button_prefix = "appr",
     .on_button = cmd_admin_approval_button},
    {.name = "admin approve",
     .description = "Let a held generation run",
     .example = "/admin approve 1a2b3c4d",
     .access = COMMAND_ACCESS_ADMIN,
     OPTS(admin_approve_options),
     .handler = cmd_admin_approve},
    {.name = "admin reject",
     .description = "Refuse a held generation; nothing is charged",
     .example = "/admin reject 1a2b3c4d not allowed here",
     .access = COMMAND_ACCESS_ADMIN,
     OPTS(admin_reject_options),
     .handler = cmd_admin_reject},
    {.name = "admin edit",
     .description = "Change a held generation's prompt, then let it run",
     .example = "/admin edit 1a2b3c4d a red cat on a windowsill",
     .access = COMMAND_ACCESS_ADMIN,
     OPTS(admin_edit_options),
     .handler = cmd_admin_edit},
    /* Generation. */
    {.name = "chat",
     .description = "Ask a text model; a follow-up continues the conversation",
     .example = "/chat Write a haiku about autumn model:demo-chat",
     .access = COMMAND_ACCESS_MEMBER,
     .options = chat_options,
     .noptions = 2,
     .handler = cmd_chat},
    {.name = "imagine",
     .description = "Generate an image from a prompt",
     .example = "/imagine a red cat on a windowsill size:512x512",
     .access = COMMAND_ACCESS_MEMBER,
     .options = imagine_options,
     .noptions = 3,
     .handler = cmd_imagine,
     .button_prefix = "gen",
     .on_button = cmd_generate_button},
    {.name = "new",
     .description = "Start a new conversation for /chat",
     .example = "/new",
     .access = COMMAND_ACCESS_MEMBER,
     .handler = cmd_new},
    {.name = "forget",
     .description = "Erase every conversation the bot stored for you",
     .example = "/forget",
     .access = COMMAND_ACCESS_MEMBER,
     .handler = cmd_forget},
    {.name = "models",
     .description = "List the models you can use and their prices",
     .example = "/models image",
     .access = COMMAND_ACCESS_MEMBER,
     .options = models_options,
     .noptions = 1,
     .handler = cmd_models,
     .button_prefix = "mdl",
     .on_button = cmd_models_button},
    {.name = "model",
     .description = "Choose your default model",
     .example = "/model demo-chat",
     .access = COMMAND_ACCESS_MEMBER,
     .options = model_options,
     .noptions = 1,
     .handler = cmd_model},
    {.name = "persona",
     .description = "List the personas, or choose the one your /chat uses",
     .example = "/persona pirate",
     .access = COMMAND_ACCESS_MEMBER,
     OPTS(persona_options),
     .handler = cmd_persona,
     .button_prefix = "psn",
     .on_button = cmd_persona_button},
    {.name = "apikey create",
     .description = "Make a key for the API (shown once, only to you)",
     .example = "/apikey create laptop",
     OPTS(apikey_create_options),
     .handler = cmd_apikey_create,
     .personal = true},
    {.name = "apikey list",
     .description = "Your API keys: name, prefix, created, last used, spent",
     .example = "/apikey list",
     .handler = cmd_apikey_list,
     .personal = true},
    {.name = "apikey revoke",
     .description = "End an API key at once",
     .example = "/apikey revoke laptop",
     OPTS(apikey_revoke_options),
     .handler = cmd_apikey_revoke,
     .personal = true},
};

const struct command_spec *commands_table(size_t *count)
{
    *count = sizeof(command_list) / sizeof(command_list[0]);
    return command_list;
}

const struct command_spec *commands_find(const char *name)
{
    for (size_t i = 0; i < sizeof(command_list) / sizeof(command_list[0]); i++) {
        if (strcmp(command_list[i].name, name) == 0)
            return &command_list[i];
    }
    return NULL;
}

const struct command_spec *commands_find_button(const char *ref)
{
    size_t plen = strcspn(ref, ":");
    if (ref[plen] != ':')
        return NULL;
    for (size_t i = 0; i < sizeof(command_list) / sizeof(command_list[0]); i++) {
        const char *p = command_list[i].button_prefix;
        if (p != NULL && strlen(p) == plen && strncmp(p, ref, plen) == 0)
            return &command_list[i];
    }
    return NULL;
}

/* Does `line` start with the words of `name` followed by a space or the end? */
static bool commands__prefix(const char *line, const char *name, const char **after)
{
    const char *l = line;
    const char *n = name;
    while (*n != '\0') {
        if (*n == ' ') {
            if (!isspace((unsigned char)*l))
                return false;
            while (isspace((unsigned char)*l))
                l++;
            n++;
            continue;
        }
        if (tolower((unsigned char)*l) != *n)
            return false;
        l++;
        n++;
    }
    if (*l != '\0' && !isspace((unsigned char)*l))
        return false;
    while (isspace((unsigned char)*l))
        l++;
    *after = l;
    return true;
}

const struct command_spec *commands_match(const char *line, char *name, size_t namecap,
                                          const char **args)
{
    const struct command_spec *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < sizeof(command_list) / sizeof(command_list[0]); i++) {
        const char *after;
        size_t len = strlen(command_list[i].name);
        if (len > best_len && commands__prefix(line, command_list[i].name, &after)) {
            best = &command_list[i];
            best_len = len;
            *args = after;
        }
    }
    if (best != NULL) {
        snprintf(name, namecap, "%s", best->name);
        return best;
    }
    size_t w = strcspn(line, " \t");
    snprintf(name, namecap, "%.*s", (int)w, line);
    *args = line + w;
    return NULL;
}

size_t command_utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++) {
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    }
    return n;
}

int command_option_index(const struct command_spec *spec, const char *name)
{
    for (size_t i = 0; i < spec->noptions; i++) {
        if (strcmp(spec->options[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

/* A member reference as written: a mention ("<@1234>", "<@!1234>") becomes
 * the bare id; an id ("1234"), a "@name" or a bare name is kept as written,
 * for core/member.h to resolve to a member before anything is opened. */
static int commands__parse_user(const char *text, char *out, size_t cap)
{
    const char *s = text;
    size_t len = strlen(s);
    bool mention = false;
    if (len >= 4 && strncmp(s, "<@", 2) == 0 && s[len - 1] == '>') {
        s += 2;
        len -= 3;
        if (*s == '!') {
            s++;
            len--;
        }
        mention = true;
    }
    size_t skip = !mention && *s == '@' ? 1 : 0; /* "@name": the name must follow */
    if (len <= skip || len >= cap)
        return HB_EINVAL;
    for (size_t i = skip; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (mention ? !isdigit(c) : !(isalnum(c) || c == '_' || c == '-' || c == '.'))
            return HB_EINVAL;
    }
    memcpy(out, s, len);
    out[len] = '\0';
    return 0;
}

int command_option_set_text(const struct command_spec *spec, size_t index, const char *text,
                            struct invocation *inv, char *err, size_t errcap)
{
    const struct command_option_spec *o = &spec->options[index];
    struct command_value *v = &inv->opts[index];
    free(v->string);
    memset(v, 0, sizeof(*v));
    v->type = o->type;
    switch (o->type) {
    case COMMAND_OPT_INTEGER: {
        char *end;
        errno = 0;
        long long n = strtoll(text, &end, 10);
        if (errno != 0 || end == text || *end != '\0') {
            snprintf(err, errcap, MSG_OPTION_NOT_INTEGER, o->name, text);
            return HB_EINVAL;
        }
        v->integer = n;
        break;
    }
    case COMMAND_OPT_BOOLEAN: {
        bool yes;
        if (text_bool_parse(text, &yes) != 0) {
            snprintf(err, errcap, MSG_OPTION_NOT_BOOLEAN, o->name, text);
            return HB_EINVAL;
        }
        v->integer = yes;
        break;
    }
    case COMMAND_OPT_USER: {
        char id[COMMAND_ID_MAX];
        if (commands__parse_user(text, id, sizeof(id)) != 0) {
            snprintf(err, errcap, MSG_OPTION_NOT_USER, o->name, text);
            return HB_EINVAL;
        }
        v->string = strdup(id);
        if (v->string == NULL)
            return HB_ENOMEM;
        break;
    }
    case COMMAND_OPT_STRING:
        v->string = strdup(text);
        if (v->string == NULL)
            return HB_ENOMEM;
        break;
    }
    v->set = true;
    return 0;
}

int command_options_validate(const struct command_spec *spec, struct invocation *inv, char *err,
                             size_t errcap)
{
    for (size_t i = 0; i < spec->noptions; i++) {
        const struct command_option_spec *o = &spec->options[i];
        const struct command_value *v = &inv->opts[i];
        if (!v->set) {
            if (o->required) {
                snprintf(err, errcap, MSG_OPTION_MISSING, o->name, o->description, spec->example);
                return HB_EINVAL;
            }
            continue;
        }
        if (v->type != o->type) {
            snprintf(err, errcap, MSG_OPTION_WRONG_TYPE, o->name);
            return HB_EINVAL;
        }
        if (o->type == COMMAND_OPT_INTEGER &&
            (v->integer < o->min || (o->max != 0 && v->integer > o->max))) {
            snprintf(err, errcap, MSG_OPTION_OUT_OF_RANGE, o->name, (long long)o->min,
                     (long long)o->max, (long long)v->integer);
            return HB_EINVAL;
        }
        if (o->type == COMMAND_OPT_STRING) {
            size_t len = command_utf8_len(v->string);
            if ((int64_t)len < o->min) {
                snprintf(err, errcap, MSG_OPTION_TOO_SHORT, o->name, (long long)o->min);
                return HB_EINVAL;
            }
            if (o->max != 0 && (int64_t)len > o->max) {
                snprintf(err, errcap, MSG_OPTION_TOO_LONG, o->name, len, (long long)o->max);
                return HB_EINVAL;
            }
            if (o->choices != NULL) {
                bool found = false;
                for (const char *const *c = o->choices; *c != NULL && !found; c++)
                    found = strcmp(*c, v->string) == 0;
                if (!found) {
                    char list[256] = "";
                    size_t off = 0;
                    for (const char *const *c = o->choices; *c != NULL && off < sizeof(list); c++)
                        off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s",
                                                off > 0 ? ", " : "", *c);
                    snprintf(err, errcap, MSG_OPTION_NOT_A_CHOICE, o->name, list);
                    return HB_EINVAL;
                }
            }
        }
    }
    return 0;
}
