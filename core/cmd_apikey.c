/* /apikey create|list|revoke: the keys of the metered API (core/apikey.h).
 *
 * A new key is shown once, to its owner only: ephemeral on Discord, in the
 * private chat on Telegram (asked in a Telegram group, the answer is to ask
 * in private, and nothing is made). A key spends its owner's wallet, or,
 * made with `pool:true` by an admin of a Discord server, the server's pool.
 * Admins list and revoke the pool keys of their group beside their own;
 * every create and revoke goes to the audit trail. */
#include "core/apikey.h"
#include "core/audit.h"
#include "core/commands.h"
#include "core/core.h"
#include "core/handlers.h"
#include "core/messages.h"
#include "core/wallet.h"
#include "base/error.h"
#include "base/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MSG_APIKEY_DM_ONLY "API keys are shown only in a private chat: send /apikey to me there."
#define MSG_APIKEY_POOL_ADMIN "Only an admin of this server can make a key that spends its pool."
#define MSG_APIKEY_UNAVAILABLE "API keys are not available right now (%s)."
#define MSG_APIKEY_OFF "The API is off here: the operator turns it on with [api] enabled = true."
#define MSG_APIKEY_NAME_TAKEN "You already have a key named %s; revoke it or choose another name."
#define MSG_APIKEY_BAD_NAME "A key's name is 1 to 32 letters, digits, dots, dashes or underscores."
#define MSG_APIKEY_TOO_MANY "That owner has %d keys already; revoke one first."
#define MSG_APIKEY_CREATED                                                                         \
    "New API key %s (spends %s):\n\n%s\n\nThis is the only time it is shown: keep it "             \
    "somewhere safe. Use it as `Authorization: Bearer <key>`; /apikey revoke %s ends it."
#define MSG_APIKEY_NONE "No API keys. Make one with /apikey create NAME."
#define MSG_APIKEY_HEAD "API keys (name, prefix, created, last used, spent):\n"
#define MSG_APIKEY_LINE "%s%s  %s…  %s  %s  %lld credit%s%s\n"
#define MSG_APIKEY_NOT_FOUND "No key in force is named %s (or starts with it) that you can revoke."
#define MSG_APIKEY_REVOKED "Key %s (%s…) is revoked: requests with it are refused from now on."

#define APIKEY_LIST_MAX 60

static const struct command_value *cmd_apikey__opt(const struct invocation *inv, const char *name)
{
    if (inv->spec == NULL)
        return NULL;
    int i = command_option_index(inv->spec, name);
    if (i < 0 || !inv->opts[i].set)
        return NULL;
    return &inv->opts[i];
}

static void cmd_apikey__end(struct invocation *inv, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Answer the asker alone and end the command. */
static void cmd_apikey__end(struct invocation *inv, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    reply_text(inv->reply, true, "%s", text);
    reply_finish(inv->reply);
}

static void cmd_apikey__date(int64_t ms, char *buf, size_t cap)
{
    if (ms <= 0) {
        snprintf(buf, cap, "never");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%d %H:%M", &tm);
}

struct apikey_ctx {
    struct core *core;
    struct invocation *inv;
    struct apikey_spec spec;
    char owner[WALLET_ACCOUNT_MAX];
    char creator[COMMAND_ID_MAX + 16];
    char name[STORE_APIKEY_NAME_SIZE];
    char models[STORE_APIKEY_MODELS_SIZE];
    void (*next)(struct apikey_ctx *ctx);
    char id[STORE_APIKEY_ID_SIZE];
    char prefix[STORE_APIKEY_PREFIX_SIZE];
};

/* The pool account an admin of this group may act for, or "" when none. */
static void cmd_apikey__admin_pool(const struct invocation *inv, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (inv->admin && inv->scope == COMMAND_SCOPE_GROUP)
        wallet_pool_account(inv, buf, cap);
}

static void cmd_apikey__ready(int rc, void *data)
{
    struct apikey_ctx *ctx = data;
    if (rc < 0) {
        cmd_apikey__end(ctx->inv, MSG_APIKEY_UNAVAILABLE, hb_strerror(rc));
        free(ctx);
        return;
    }
    ctx->next(ctx);
}

/* Run next once the keys are in memory. */
static void cmd_apikey__start(struct core *core, struct invocation *inv,
                              void (*next)(struct apikey_ctx *ctx))
{
    struct apikey_ctx *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        reply_text(inv->reply, true, MSG_COMMON_OUT_OF_MEMORY);
        reply_finish(inv->reply);
        return;
    }
    if (core->apikeys == NULL) {
        free(ctx);
        cmd_apikey__end(inv, "%s", MSG_APIKEY_OFF);
        return;
    }
    ctx->core = core;
    ctx->inv = inv;
    ctx->next = next;
    audit_actor(ctx->creator, sizeof(ctx->creator), inv);
    invocation_wallet(inv, ctx->owner, sizeof(ctx->owner));
    int rc = apikeys_ready(core, cmd_apikey__ready, ctx);
    if (rc < 0)
        cmd_apikey__ready(rc, ctx);
}

/* ---- create ------------------------------------------------------------- */

static void cmd_apikey__created(int rc, const char *key, const struct store_apikey *rec, void *data)
{
    struct apikey_ctx *ctx = data;
    struct invocation *inv = ctx->inv;
    if (rc < 0) {
        cmd_apikey__end(inv, MSG_APIKEY_UNAVAILABLE, hb_strerror(rc));
        free(ctx);
        return;
    }
    cJSON *detail = cJSON_CreateObject();
    if (detail != NULL) {
        cJSON_AddStringToObject(detail, "key", rec->id);
        cJSON_AddStringToObject(detail, "name", rec->name);
        cJSON_AddStringToObject(detail, "prefix", rec->prefix);
    }
    audit_note_inv(ctx->core, inv, "apikey.create", rec->owner, detail);
    char *text = NULL;
    if (asprintf(&text, MSG_APIKEY_CREATED, rec->name, rec->owner, key, rec->name) >= 0) {
        /* Ephemeral and personal: never where others read it. */
        reply_secret(inv->reply, text);
        explicit_bzero(text, strlen(text));
        free(text);
    }
    reply_finish(inv->reply);
    free(ctx);
}

static void cmd_apikey__create_go(struct apikey_ctx *ctx)
{
    int rc = apikey_create(ctx->core, &ctx->spec, cmd_apikey__created, ctx);
    if (rc == 0)
        return;
    struct invocation *inv = ctx->inv;
    if (rc == HB_EEXISTS) {
        cmd_apikey__end(inv, MSG_APIKEY_NAME_TAKEN, ctx->name);
    } else if (rc == HB_EINVAL) {
        cmd_apikey__end(inv, "%s", MSG_APIKEY_BAD_NAME);
    } else if (rc == HB_ELIMIT) {
        cmd_apikey__end(inv, MSG_APIKEY_TOO_MANY, APIKEYS_PER_OWNER);
    } else {
        cmd_apikey__end(inv, MSG_APIKEY_UNAVAILABLE, hb_strerror(rc));
    }
    free(ctx);
}

static void cmd_apikey__wallet_opened(int rc, bool created, void *data)
{
    struct apikey_ctx *ctx = data;
    (void)created;
    if (rc < 0) {
        cmd_apikey__end(ctx->inv, MSG_APIKEY_UNAVAILABLE, hb_strerror(rc));
        free(ctx);
        return;
    }
    cmd_apikey__create_go(ctx);
}

static void cmd_apikey__create_loaded(struct apikey_ctx *ctx)
{
    struct invocation *inv = ctx->inv;
    const struct command_value *v = cmd_apikey__opt(inv, "pool");
    if (v != NULL && v->integer != 0) {
        cmd_apikey__admin_pool(inv, ctx->owner, sizeof(ctx->owner));
        if (ctx->owner[0] == '\0') {
            cmd_apikey__end(inv, "%s", MSG_APIKEY_POOL_ADMIN);
            free(ctx);
            return;
        }
    }
    v = cmd_apikey__opt(inv, "name");
    if (v != NULL && v->string != NULL) {
        snprintf(ctx->name, sizeof(ctx->name), "%s", v->string);
    } else {
        const struct apikey *mine[1];
        size_t n = apikeys_list(ctx->core, ctx->owner, mine, 0);
        snprintf(ctx->name, sizeof(ctx->name), "key%zu", n + 1);
        while (apikey_find(ctx->core, ctx->owner, ctx->name) != NULL)
            snprintf(ctx->name, sizeof(ctx->name), "key%zu", ++n + 1);
    }
    v = cmd_apikey__opt(inv, "models");
    snprintf(ctx->models, sizeof(ctx->models), "%s",
             v != NULL && v->string != NULL ? v->string : "");
    ctx->spec.owner = ctx->owner;
    ctx->spec.creator = ctx->creator;
    ctx->spec.name = ctx->name;
    ctx->spec.models = ctx->models;
    v = cmd_apikey__opt(inv, "rpm");
    ctx->spec.rpm = v != NULL ? v->integer : 0;
    v = cmd_apikey__opt(inv, "day_cap");
    ctx->spec.cap_day = v != NULL ? v->integer : 0;
    v = cmd_apikey__opt(inv, "total_cap");
    ctx->spec.cap_total = v != NULL ? v->integer : 0;
    v = cmd_apikey__opt(inv, "days");
    ctx->spec.expires_at = v != NULL ? core_now_ms(ctx->core) + v->integer * 86400000LL : 0;
    if (strncmp(ctx->owner, "pool:", 5) == 0) {
        cmd_apikey__create_go(ctx);
        return;
    }
    /* The key spends the wallet: open it (and pay its welcome bonus) now,
     * so /api/v1/me shows what a first chat command would. */
    int rc = wallet_open(ctx->core, inv, cmd_apikey__wallet_opened, ctx);
    if (rc < 0)
        cmd_apikey__wallet_opened(rc, false, ctx);
}

void cmd_apikey_create(struct core *core, struct invocation *inv)
{
    /* A Telegram group has no private answer in place: nothing is made. */
    if (inv->platform == COMMAND_PLATFORM_TELEGRAM && inv->scope == COMMAND_SCOPE_GROUP) {
        cmd_apikey__end(inv, "%s", MSG_APIKEY_DM_ONLY);
        return;
    }
    cmd_apikey__start(core, inv, cmd_apikey__create_loaded);
}

/* ---- list --------------------------------------------------------------- */

static void cmd_apikey__lines(struct text_buf *t, const struct apikey *const *keys, size_t n,
                              const char *tag, int64_t now)
{
    for (size_t i = 0; i < n; i++) {
        const struct store_apikey *r = &keys[i]->rec;
        char created[32], used[32];
        cmd_apikey__date(r->created_at, created, sizeof(created));
        cmd_apikey__date(r->last_used, used, sizeof(used));
        text_buf_add(t, MSG_APIKEY_LINE, r->name, tag, r->prefix, created, used,
                     (long long)r->spend, r->spend == 1 ? "" : "s",
                     r->expires_at != 0 && r->expires_at <= now ? " (expired)" : "");
    }
}

static void cmd_apikey__list_loaded(struct apikey_ctx *ctx)
{
    const struct apikey *keys[APIKEY_LIST_MAX];
    struct text_buf t = {0};
    size_t n = apikeys_list(ctx->core, ctx->owner, keys, APIKEY_LIST_MAX);
    if (n > APIKEY_LIST_MAX)
        n = APIKEY_LIST_MAX;
    cmd_apikey__lines(&t, keys, n, "", core_now_ms(ctx->core));
    char pool[WALLET_ACCOUNT_MAX];
    cmd_apikey__admin_pool(ctx->inv, pool, sizeof(pool));
    size_t np = 0;
    if (pool[0] != '\0') {
        np = apikeys_list(ctx->core, pool, keys, APIKEY_LIST_MAX);
        if (np > APIKEY_LIST_MAX)
            np = APIKEY_LIST_MAX;
        cmd_apikey__lines(&t, keys, np, " (this server's pool)", core_now_ms(ctx->core));
    }
    struct text_buf out = {0};
    if (n + np == 0)
        text_buf_add(&out, "%s", MSG_APIKEY_NONE);
    else
        text_buf_add(&out, "%s%s", MSG_APIKEY_HEAD, text_buf_str(&t));
    reply_personal(ctx->inv->reply, text_buf_str(&out));
    reply_finish(ctx->inv->reply);
    free(t.buf);
    free(out.buf);
    free(ctx);
}

void cmd_apikey_list(struct core *core, struct invocation *inv)
{
    cmd_apikey__start(core, inv, cmd_apikey__list_loaded);
}

/* ---- revoke ------------------------------------------------------------- */

static void cmd_apikey__revoked(int rc, void *data)
{
    struct apikey_ctx *ctx = data;
    if (rc < 0) {
        cmd_apikey__end(ctx->inv, MSG_APIKEY_UNAVAILABLE, hb_strerror(rc));
    } else {
        cJSON *detail = cJSON_CreateObject();
        if (detail != NULL) {
            cJSON_AddStringToObject(detail, "key", ctx->id);
            cJSON_AddStringToObject(detail, "name", ctx->name);
            cJSON_AddStringToObject(detail, "prefix", ctx->prefix);
        }
        audit_note_inv(ctx->core, ctx->inv, "apikey.revoke", ctx->owner, detail);
        reply_text(ctx->inv->reply, true, MSG_APIKEY_REVOKED, ctx->name, ctx->prefix);
        reply_finish(ctx->inv->reply);
    }
    free(ctx);
}

static void cmd_apikey__revoke_loaded(struct apikey_ctx *ctx)
{
    struct invocation *inv = ctx->inv;
    const struct command_value *v = cmd_apikey__opt(inv, "key");
    const char *which = v != NULL && v->string != NULL ? v->string : "";
    const struct apikey *k = apikey_find(ctx->core, ctx->owner, which);
    if (k == NULL) {
        char pool[WALLET_ACCOUNT_MAX];
        cmd_apikey__admin_pool(inv, pool, sizeof(pool));
        if (pool[0] != '\0')
            k = apikey_find(ctx->core, pool, which);
    }
    if (k == NULL) {
        cmd_apikey__end(inv, MSG_APIKEY_NOT_FOUND, which);
        free(ctx);
        return;
    }
    snprintf(ctx->id, sizeof(ctx->id), "%s", k->rec.id);
    snprintf(ctx->name, sizeof(ctx->name), "%s", k->rec.name);
    snprintf(ctx->prefix, sizeof(ctx->prefix), "%s", k->rec.prefix);
    snprintf(ctx->owner, sizeof(ctx->owner), "%s", k->rec.owner);
    int rc = apikey_revoke(ctx->core, ctx->id, cmd_apikey__revoked, ctx);
    if (rc < 0)
        cmd_apikey__revoked(rc, ctx);
}

void cmd_apikey_revoke(struct core *core, struct invocation *inv)
{
    cmd_apikey__start(core, inv, cmd_apikey__revoke_loaded);
}
