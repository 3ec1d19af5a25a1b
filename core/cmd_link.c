/* /link and /unlink: one wallet across platforms (core/link.h says what a
 * link is; this file holds the conversation with the member). */
#include "core/core.h"

#include "base/error.h"
#include "base/log.h"
#include "core/audit.h"
#include "core/format.h"
#include "core/handlers.h"
#include "core/link.h"
#include "core/messages.h"
#include "core/wallet.h"

#include <cjson/cJSON.h>
#include <openssl/crypto.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A code taken while another link of the same wallet or member is being
 * written waits for it, then is checked again, this many times at most. */
#define LINK_BUSY_WAITS 3

struct link_ctx {
    struct core *core;
    struct invocation *inv;
    char identity[LINK_IDENTITY_MAX]; /* the member running the command */
    char wallet[LINK_IDENTITY_MAX];   /* the wallet that survives */
    char creator[LINK_IDENTITY_MAX];  /* who made the code taken */
    unsigned waits;                   /* for links being written (LINK_BUSY) */
};

static void link__end(struct link_ctx *ctx)
{
    reply_finish(ctx->inv->reply);
    free(ctx);
}

/* A Telegram group shows what members type and cannot hide the answer. */
static bool link__in_public(const struct invocation *inv)
{
    return inv->platform == COMMAND_PLATFORM_TELEGRAM && inv->scope == COMMAND_SCOPE_GROUP;
}

/* ---- /link: a new code --------------------------------------------------- */

static void link__code_made(int rc, const char *code, void *data)
{
    struct link_ctx *ctx = data;
    if (rc == HB_EBUSY) { /* LINK_CODES_MAX codes are open */
        reply_text(ctx->inv->reply, true, "%s", MSG_LINK_CODES_FULL);
        link__end(ctx);
        return;
    }
    if (rc < 0) {
        log_warn("command.failed", "command=link step=code error=%s", hb_strerror(rc));
        reply_text(ctx->inv->reply, true, MSG_CREDITS_FAILED, hb_strerror(rc));
        link__end(ctx);
        return;
    }
    char text[512];
    snprintf(text, sizeof(text), MSG_LINK_CODE, code, (long long)(LINK_CODE_TTL_MS / 60000), code);
    reply_secret(ctx->inv->reply, text);
    OPENSSL_cleanse(text, sizeof(text));
    link__end(ctx);
}

static void link__code_opened(int rc, bool created, void *data)
{
    struct link_ctx *ctx = data;
    (void)created;
    if (rc == 0)
        rc = link_code_new(ctx->core, ctx->identity, link__code_made, ctx);
    if (rc < 0)
        link__code_made(rc, NULL, ctx);
}

/* ---- /link CODE ------------------------------------------------------------ */

static void link__joined(int rc, int64_t moved, int64_t held, void *data)
{
    struct link_ctx *ctx = data;
    if (rc == HB_ECONFLICT) {
        reply_text(ctx->inv->reply, true, "%s", MSG_LINK_RACED);
        link__end(ctx);
        return;
    }
    if (rc < 0) {
        reply_text(ctx->inv->reply, true, MSG_LINK_FAILED, hb_strerror(rc));
        link__end(ctx);
        return;
    }
    cJSON *detail = cJSON_CreateObject();
    if (detail != NULL) {
        cJSON_AddStringToObject(detail, "wallet", ctx->wallet);
        cJSON_AddNumberToObject(detail, "moved", (double)moved);
        cJSON_AddNumberToObject(detail, "held", (double)held);
    }
    audit_note_inv(ctx->core, ctx->inv, "link", ctx->identity, detail);
    char amount[32], text[512];
    int n = snprintf(text, sizeof(text), MSG_LINK_DONE, ctx->wallet,
                     format_credits(amount, sizeof(amount), moved));
    if (held > 0 && n > 0 && (size_t)n < sizeof(text))
        snprintf(text + n, sizeof(text) - (size_t)n, " %s", MSG_LINK_HELD);
    reply_personal(ctx->inv->reply, text);
    link__end(ctx);
}

static void link__decide(struct link_ctx *ctx);

/* A refusal (why, when not empty) ends the command with it. */
static bool link__refused(struct link_ctx *ctx, const char *why)
{
    if (why[0] == '\0')
        return false;
    reply_text(ctx->inv->reply, true, "%s", why);
    link__end(ctx);
    return true;
}

static void link__idle(void *data)
{
    link__decide(data);
}

/* The code was good: may this member join its creator's wallet? */
static void link__decide(struct link_ctx *ctx)
{
    struct invocation *inv = ctx->inv;
    char why[256] = ""; /* the refusal, when there is one */
    switch (link_check(ctx->core, ctx->identity, ctx->creator, ctx->wallet, sizeof(ctx->wallet))) {
    case LINK_OK:
        break;
    case LINK_SELF:
        snprintf(why, sizeof(why), MSG_LINK_SELF);
        break;
    case LINK_SAME_PLATFORM:
        snprintf(why, sizeof(why), MSG_LINK_SAME_PLATFORM);
        break;
    case LINK_JOINER_LINKED: {
        const char *w = link_wallet(ctx->core, ctx->identity);
        snprintf(why, sizeof(why), MSG_LINK_ALREADY, w != NULL ? w : "");
        break;
    }
    case LINK_JOINER_HOLDS:
        snprintf(why, sizeof(why), MSG_LINK_HOLDS);
        break;
    case LINK_BUSY: {
        /* Another link of this member or wallet is being written, a few
         * milliseconds: the code is used, so this one waits for it and is
         * then checked again, rather than asking for a new code. */
        int rc = ctx->waits < LINK_BUSY_WAITS
                     ? link_when_idle(ctx->core, ctx->identity, ctx->wallet, link__idle, ctx)
                     : HB_EBUSY;
        ctx->waits++;
        if (rc == 0)
            return;
        snprintf(why, sizeof(why), MSG_LINK_BUSY);
        break;
    }
    }
    if (link__refused(ctx, why))
        return;
    int rc = link_join(ctx->core, ctx->identity, ctx->wallet, inv->event_id, link__joined, ctx);
    if (rc < 0)
        link__joined(rc, 0, 0, ctx);
}

static void link__taken(int rc, enum link_code_result r, const char *creator, int64_t retry_ms,
                        void *data)
{
    struct link_ctx *ctx = data;
    struct invocation *inv = ctx->inv;
    if (rc < 0) {
        log_warn("command.failed", "command=link step=take error=%s", hb_strerror(rc));
        reply_text(inv->reply, true, MSG_LINK_FAILED, hb_strerror(rc));
        link__end(ctx);
        return;
    }
    char why[256] = ""; /* the refusal, when there is one */
    switch (r) {
    case LINK_CODE_OK:
        break;
    case LINK_CODE_WRONG:
        snprintf(why, sizeof(why), MSG_LINK_WRONG);
        break;
    case LINK_CODE_EXPIRED:
        snprintf(why, sizeof(why), MSG_LINK_EXPIRED);
        break;
    case LINK_CODE_LIMITED:
        snprintf(why, sizeof(why), MSG_LINK_LIMITED, (long long)((retry_ms + 59999) / 60000));
        break;
    }
    if (link__refused(ctx, why))
        return;
    snprintf(ctx->creator, sizeof(ctx->creator), "%s", creator);
    link__decide(ctx);
}

static void link__redeem(struct link_ctx *ctx, const char *text)
{
    int rc = link_code_take(ctx->core, ctx->identity, text, link__taken, ctx);
    if (rc < 0)
        link__taken(rc, LINK_CODE_WRONG, NULL, 0, ctx);
}

void cmd_link(struct core *core, struct invocation *inv)
{
    const char *code = inv->opts[0].set ? inv->opts[0].string : NULL;
    if (code != NULL && code[0] == '\0')
        code = NULL;
    if (link__in_public(inv)) {
        /* Everyone in the group read the code: it must not work for them. */
        if (code != NULL)
            link_code_void(core, code);
        reply_text(inv->reply, true, code != NULL ? MSG_LINK_CODE_SHOWN : MSG_LINK_DM_ONLY);
        reply_finish(inv->reply);
        return;
    }
    struct link_ctx *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        reply_text(inv->reply, true, MSG_COMMON_OUT_OF_MEMORY);
        reply_finish(inv->reply);
        return;
    }
    ctx->core = core;
    ctx->inv = inv;
    int rc = link_identity(inv, ctx->identity, sizeof(ctx->identity));
    if (rc == 0 && core->links == NULL)
        rc = HB_ECANCELED;
    if (rc == 0 && code != NULL) {
        link__redeem(ctx, code);
        return;
    }
    /* The code's wallet survives a link: open it now (a first command pays
     * its welcome bonus here as anywhere). */
    if (rc == 0)
        rc = wallet_open(core, inv, link__code_opened, ctx);
    if (rc < 0)
        link__code_opened(rc, false, ctx);
}

/* ---- /unlink --------------------------------------------------------------- */

static void unlink__done(int rc, size_t n, const char *const *ids, void *data)
{
    struct link_ctx *ctx = data;
    if (rc < 0) {
        reply_text(ctx->inv->reply, true, MSG_CREDITS_FAILED, hb_strerror(rc));
        link__end(ctx);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        cJSON *detail = cJSON_CreateObject();
        if (detail != NULL)
            cJSON_AddStringToObject(detail, "by", ctx->identity);
        audit_note_inv(ctx->core, ctx->inv, "unlink", ids[i], detail);
    }
    if (n == 0)
        reply_text(ctx->inv->reply, true, MSG_UNLINK_NONE);
    else if (n == 1 && strcmp(ids[0], ctx->identity) == 0)
        reply_text(ctx->inv->reply, true, MSG_UNLINK_SELF);
    else
        reply_text(ctx->inv->reply, true, MSG_UNLINK_OTHERS, n);
    link__end(ctx);
}

void cmd_unlink(struct core *core, struct invocation *inv)
{
    struct link_ctx *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        reply_text(inv->reply, true, MSG_COMMON_OUT_OF_MEMORY);
        reply_finish(inv->reply);
        return;
    }
    ctx->core = core;
    ctx->inv = inv;
    int rc = link_identity(inv, ctx->identity, sizeof(ctx->identity));
    if (rc == 0 && link_wallet(core, ctx->identity) == NULL &&
        link_count_into(core, ctx->identity) == 0) {
        unlink__done(0, 0, NULL, ctx);
        return;
    }
    if (rc == 0)
        rc = link_unlink(core, ctx->identity, unlink__done, ctx);
    if (rc < 0)
        unlink__done(rc, 0, NULL, ctx);
}
