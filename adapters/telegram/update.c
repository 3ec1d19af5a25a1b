/* Updates in: a Telegram update becomes a neutral invocation with a reply
 * handle (reply.c) for the host to dispatch; /deposit, payments and
 * /admin refund go to stars.c; a group that became a supergroup takes its
 * pool along (core/pool.h). */
#include "adapters/telegram/telegram_internal.h"

#include "core/feature.h"
#include "core/access.h"
#include "core/messages.h"
#include "core/commands.h"
#include "core/core.h"
#include "core/member.h"
#include "core/persona.h"
#include "core/pool.h"
#include "base/error.h"
#include "base/json.h"
#include "base/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- a group became a supergroup ---------------------------------- */

static void tg__pool_migrated(const struct pool_migrate_result *res, void *data)
{
    struct tg *tg = data;
    if (res->credits <= 0) {
        /* no pool, or nothing in it: nothing to say */
    } else if (res->rc == 0 || res->rc == HB_EEXISTS) {
        log_info("telegram.pool_migrated", "from=%s to=%s credits=%" PRId64, res->from, res->to,
                 res->credits);
    } else {
        log_error("telegram.pool_not_migrated", "from=%s to=%s error=%s", res->from, res->to,
                  hb_strerror(res->rc));
    }
    tg_unref(tg);
}

/* The group's chat id changed: its pool follows (core/pool.h). */
void tg_migrate(struct tg *tg, int64_t from, int64_t to)
{
    if (tg->core == NULL || tg->core->ledger == NULL || from == to)
        return;
    char a[32], b[32], id[80];
    snprintf(a, sizeof(a), "%" PRId64, from);
    snprintf(b, sizeof(b), "%" PRId64, to);
    snprintf(id, sizeof(id), "tg:migrate:%s:%s", a, b);
    struct pool_migration m = {.platform = "telegram",
                               .from = a,
                               .to = b,
                               .id = id,
                               .ref = "telegram group became a supergroup"};
    tg_ref(tg);
    if (pool_migrate(tg->core, &m, tg__pool_migrated, tg) < 0)
        tg_unref(tg);
}

/* ---- updates -------------------------------------------------------- */

static bool tg_is_admin(const struct tg *tg, int64_t user_id)
{
    for (size_t i = 0; i < tg->nadmins; i++) {
        if (tg->admins[i] == user_id)
            return true;
    }
    return false;
}

static void tg__inv_init(struct tg *tg, struct invocation *inv, int64_t update_id,
                         const cJSON *from, int64_t chat_id, bool group)
{
    memset(inv, 0, sizeof(*inv));
    inv->platform = COMMAND_PLATFORM_TELEGRAM;
    int64_t uid = tg_json_int(from, "id", 0);
    snprintf(inv->user_id, sizeof(inv->user_id), "%" PRId64, uid);
    const char *name = tg_json_str(from, "username");
    if (name == NULL)
        name = tg_json_str(from, "first_name");
    snprintf(inv->user_name, sizeof(inv->user_name), "%s", name != NULL ? name : inv->user_id);
    inv->scope = group ? COMMAND_SCOPE_GROUP : COMMAND_SCOPE_DM;
    if (group)
        snprintf(inv->scope_id, sizeof(inv->scope_id), "%" PRId64, chat_id);
    snprintf(inv->channel_id, sizeof(inv->channel_id), "%" PRId64, chat_id);
    snprintf(inv->event_id, sizeof(inv->event_id), "telegram:%" PRId64, update_id);
    inv->admin = tg_is_admin(tg, uid);
}

/* The group's title, for a persona's {server} (core/persona.h). */
static void tg__inv_place(struct invocation *inv, const cJSON *m)
{
    const cJSON *chat = cJSON_GetObjectItemCaseSensitive(m, "chat");
    const char *title = tg_json_str(chat, "title");
    if (inv->scope == COMMAND_SCOPE_GROUP && title != NULL)
        snprintf(inv->scope_name, sizeof(inv->scope_name), "%s", title);
}

/* Remember who a username belongs to, so that an admin can name the member
 * as @username (core/member.h). */
static void tg__member_seen(struct tg *tg, const cJSON *from)
{
    const char *username = tg_json_str(from, "username");
    int64_t uid = tg_json_int(from, "id", 0);
    if (tg->core == NULL || username == NULL || uid <= 0 ||
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(from, "is_bot")))
        return;
    char id[32];
    snprintf(id, sizeof(id), "%" PRId64, uid);
    member_seen(tg->core, COMMAND_PLATFORM_TELEGRAM, id, username);
}

/* A message sent as a reply to a member's message names that member for a
 * command's member option (/admin grant 50 as a reply). A reply to a bot
 * names nobody, and neither does a forum topic's first message, which
 * every message in the topic "replies" to. */
static void tg__reply_target(struct tg *tg, struct invocation *inv, const cJSON *m)
{
    const cJSON *to = cJSON_GetObjectItemCaseSensitive(m, "reply_to_message");
    const cJSON *who = cJSON_GetObjectItemCaseSensitive(to, "from");
    if (!cJSON_IsObject(who) || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(who, "is_bot")))
        return;
    if (cJSON_GetObjectItemCaseSensitive(to, "forum_topic_created") != NULL ||
        (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, "is_topic_message")) &&
         tg_json_int(to, "message_id", 0) == tg_json_int(m, "message_thread_id", -1)))
        return;
    int64_t uid = tg_json_int(who, "id", 0);
    if (uid <= 0)
        return;
    snprintf(inv->target_id, sizeof(inv->target_id), "%" PRId64, uid);
    const char *username = tg_json_str(who, "username");
    const char *first = tg_json_str(who, "first_name");
    if (username != NULL)
        snprintf(inv->target_name, sizeof(inv->target_name), "@%s", username);
    else if (first != NULL)
        snprintf(inv->target_name, sizeof(inv->target_name), "%s", first);
    tg__member_seen(tg, who);
}

/* Where the message sits, for the conversation it continues: the message
 * it replies to (its own chain), and the forum topic it is in. A topic's
 * messages all "reply" to the topic's first message; that is no chain. */
static void tg__reply_thread(struct invocation *inv, const cJSON *m)
{
    bool topic = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, "is_topic_message"));
    int64_t thread = tg_json_int(m, "message_thread_id", 0);
    if (topic && thread > 0)
        snprintf(inv->thread_id, sizeof(inv->thread_id), "%" PRId64, thread);
    const cJSON *to = cJSON_GetObjectItemCaseSensitive(m, "reply_to_message");
    int64_t to_id = tg_json_int(to, "message_id", 0);
    if (to_id <= 0 || cJSON_GetObjectItemCaseSensitive(to, "forum_topic_created") != NULL ||
        (topic && to_id == thread))
        return;
    snprintf(inv->reply_to_id, sizeof(inv->reply_to_id), "%" PRId64, to_id);
}

static void tg__dispatch(struct tg *tg, struct invocation *inv, const char *args, int64_t chat_id,
                         bool group, int64_t reply_to)
{
    struct tg_reply *r = tg_reply_new(tg, chat_id, group, reply_to);
    if (r == NULL) {
        log_warn("telegram.update_dropped", "event=%s reason=out_of_memory", inv->event_id);
        return;
    }
    r->user_id = strtoll(inv->user_id, NULL, 10); /* where personal answers go from a group */
    inv->reply = &r->reply;
    tg->host.dispatch(tg->host.data, inv, args);
}

/* Where "@botname" appears in text as a whole word, or NULL. */
static const char *tg__mention(const struct tg *tg, const char *text)
{
    size_t n = strlen(tg->bot_username);
    if (n == 0)
        return NULL;
    for (const char *p = strchr(text, '@'); p != NULL; p = strchr(p + 1, '@')) {
        /* Only once the name matched are n bytes known to follow the '@'. */
        if (strncasecmp(p + 1, tg->bot_username, n) != 0)
            continue;
        char after = p[1 + n];
        if (!(after == '_' || (after >= '0' && after <= '9') || (after >= 'a' && after <= 'z') ||
              (after >= 'A' && after <= 'Z')))
            return p;
    }
    return NULL;
}

static char *tg__join(const char *a, const char *b, size_t blen)
{
    size_t alen = strlen(a);
    char *s = malloc(alen + blen + 2);
    if (s == NULL)
        return NULL;
    memcpy(s, a, alen);
    s[alen] = ' ';
    memcpy(s + alen + 1, b, blen);
    s[alen + 1 + blen] = '\0';
    return s;
}

/* An image that goes with a message: its own (a photo, an image file), or
 * the one of the message it replies to. */
struct tg__image {
    int rc; /* 0: file_id is fetched; HB_ENOTFOUND: none; else why it is refused */
    char file_id[256];
};

/* A text message: a command, or a chat turn where one is meant. */
static void tg__text(struct tg *tg, struct invocation *inv, const char *text, int64_t chat_id,
                     bool group, int64_t msg_id, const cJSON *m, const struct tg__image *img)
{
    char *args = NULL;
    if (text[0] == '/') {
        const char *p = text + 1;
        size_t w = strcspn(p, " \t\n");
        const char *at = memchr(p, '@', w);
        size_t nlen = at != NULL ? (size_t)(at - p) : w;
        if (at != NULL) {
            size_t tlen = w - nlen - 1;
            if (tlen != strlen(tg->bot_username) ||
                strncasecmp(at + 1, tg->bot_username, tlen) != 0)
                return; /* addressed to another bot in this group */
        }
        if (nlen == 0 || nlen > 32)
            return;
        char name[33];
        for (size_t i = 0; i < nlen; i++)
            name[i] = (char)((p[i] >= 'A' && p[i] <= 'Z') ? p[i] + 32 : p[i]);
        name[nlen] = '\0';
        const char *rest = p + w;
        while (*rest == ' ' || *rest == '\t' || *rest == '\n')
            rest++;
        /* A Stars invoice skips the router: a member [access] refuses goes
         * through it instead, to be refused there, and gets none. */
        if (strcmp(name, "deposit") == 0 && tg->npackages > 0 &&
            (tg->core == NULL ||
             (access_check(tg->core->access, inv) == ACCESS_ALLOWED &&
              features_on(tg->core->features, FEATURE_PAYMENTS, inv->platform, inv->scope_id)))) {
            struct tg_reply *r = tg_reply_new(tg, chat_id, group, msg_id);
            if (r != NULL) {
                tg_stars_offer(tg, r, chat_id, group);
                tg_reply_unref(r);
            }
            return;
        }
        if (strcmp(name, "admin") == 0 && strncasecmp(rest, "refund", 6) == 0 &&
            (rest[6] == '\0' || rest[6] == ' ')) {
            struct tg_reply *r = tg_reply_new(tg, chat_id, group, msg_id);
            if (r == NULL)
                return;
            const char *charge = rest + 6;
            while (*charge == ' ')
                charge++;
            if (!inv->admin)
                reply_text(&r->reply, true, MSG_TG_REFUND_ADMINS_ONLY);
            else if (*charge == '\0')
                reply_text(&r->reply, true, MSG_TG_REFUND_USAGE);
            else
                tg_stars_refund(tg, r, charge, inv->user_id);
            reply_finish(&r->reply);
            return;
        }
        if (strcmp(name, "start") == 0 && commands_find("start") == NULL) {
            /* A deep link's payload needs a /start command to read it; until
             * the table has one, /start greets with the command list. */
            args = strdup("help");
        } else {
            args = tg__join(name, rest, strlen(rest));
        }
    } else if (!group) {
        args = tg__join("chat", text, strlen(text));
    } else {
        const char *mention = tg__mention(tg, text);
        const cJSON *to = cJSON_GetObjectItemCaseSensitive(m, "reply_to_message");
        int64_t to_user = tg_json_int(cJSON_GetObjectItemCaseSensitive(to, "from"), "id", 0);
        if (mention != NULL) {
            /* The text with the mention taken out. */
            size_t n = strlen(tg->bot_username) + 1;
            size_t before = (size_t)(mention - text);
            char *rest = malloc(strlen(text) + 1);
            if (rest == NULL)
                return;
            memcpy(rest, text, before);
            strcpy(rest + before, mention + n);
            args = tg__join("chat", rest, strlen(rest));
            free(rest);
        } else if (to_user != 0 && to_user == tg->bot_id) {
            args = tg__join("chat", text, strlen(text));
        } else if (tg->core != NULL &&
                   persona_plaintalk(tg->core, COMMAND_PLATFORM_TELEGRAM, inv->scope_id) &&
                   access_check(tg->core->access, inv) == ACCESS_ALLOWED) {
            /* The group's admins made plain talk a chat turn (/admin
             * plaintalk on). A member the access lists refuse is passed
             * over in silence: one refusal per message would flood it. */
            args = tg__join("chat", text, strlen(text));
        } else {
            return; /* group talk not meant for the bot */
        }
    }
    if (args == NULL)
        return;
    /* An image goes with a chat turn (a command's caption runs it alone). */
    bool chat = strncmp(args, "chat", 4) == 0 && (args[4] == ' ' || args[4] == '\0');
    if (chat && img->rc == 0)
        tg_image_dispatch(tg, inv, args, chat_id, group, group ? msg_id : 0, img->file_id);
    else if (chat && img->rc != HB_ENOTFOUND)
        tg_image_refuse(tg, img->rc, chat_id, group, group ? msg_id : 0);
    else
        tg__dispatch(tg, inv, args, chat_id, group, group ? msg_id : 0);
    free(args);
}

static int tg__message(struct tg *tg, int64_t update_id, const cJSON *m)
{
    const cJSON *chat = cJSON_GetObjectItemCaseSensitive(m, "chat");
    int64_t chat_id = tg_json_int(chat, "id", 0);
    const char *type = tg_json_str(chat, "type");
    if (!cJSON_IsObject(m) || chat_id == 0 || type == NULL)
        return HB_EPROTO;
    bool group = strcmp(type, "private") != 0;
    int64_t migrate = tg_json_int(m, "migrate_to_chat_id", 0);
    if (migrate != 0) {
        tg_sendq_migrate(tg, chat_id, migrate);
        tg_migrate(tg, chat_id, migrate);
        return 0;
    }
    const cJSON *from = cJSON_GetObjectItemCaseSensitive(m, "from");
    if (!cJSON_IsObject(from) || tg_json_int(from, "id", 0) == 0)
        return 0; /* a channel post or an anonymous admin: nobody to charge */
    int64_t msg_id = tg_json_int(m, "message_id", 0);
    const cJSON *paid = cJSON_GetObjectItemCaseSensitive(m, "successful_payment");
    if (cJSON_IsObject(paid)) {
        struct tg_reply *r = tg_reply_new(tg, chat_id, group, 0);
        if (r != NULL) {
            tg_stars_paid(tg, r, chat_id, tg_json_int(from, "id", 0), paid);
            tg_reply_unref(r);
        }
        return 0;
    }
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(from, "is_bot")))
        return 0;
    tg__member_seen(tg, from);
    /* A photo or an image file is a chat turn too, its caption the prompt;
     * without one, the image still asks something. A text that replies to
     * an image takes that image along. */
    struct tg__image img;
    size_t max = tg_image_max(tg);
    img.rc = tg_image_source(m, max, img.file_id, sizeof(img.file_id));
    bool own = img.rc != HB_ENOTFOUND;
    const char *text = tg_json_str(m, own ? "caption" : "text");
    if (own && (text == NULL || text[0] == '\0'))
        text = MSG_ATTACH_DEFAULT_PROMPT;
    if (text == NULL || text[0] == '\0')
        return 0; /* stickers, joins: nothing the bot answers */
    if (!own) {
        img.rc = tg_image_source(cJSON_GetObjectItemCaseSensitive(m, "reply_to_message"), max,
                                 img.file_id, sizeof(img.file_id));
        if (img.rc == HB_EPROTO)
            img.rc = HB_ENOTFOUND; /* a reply to a file that is no image: just text */
    }
    struct invocation inv;
    tg__inv_init(tg, &inv, update_id, from, chat_id, group);
    tg__inv_place(&inv, m);
    tg__reply_target(tg, &inv, m);
    tg__reply_thread(&inv, m);
    tg__text(tg, &inv, text, chat_id, group, msg_id, m, &img);
    return 0;
}

static int tg__callback(struct tg *tg, int64_t update_id, const cJSON *q)
{
    const char *id = tg_json_str(q, "id");
    const cJSON *from = cJSON_GetObjectItemCaseSensitive(q, "from");
    if (id == NULL || !cJSON_IsObject(from))
        return HB_EPROTO;
    const char *data = tg_json_str(q, "data");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(q, "message");
    const cJSON *chat = cJSON_GetObjectItemCaseSensitive(m, "chat");
    int64_t chat_id = tg_json_int(chat, "id", 0);
    const char *type = tg_json_str(chat, "type");
    if (data == NULL || strlen(data) > COMMAND_BUTTON_REF_MAX || chat_id == 0 || type == NULL) {
        /* No message (an inline-mode or a very old one) or a ref that is
         * not ours: answer it so the button stops spinning. */
        tg_callback_answer(tg, id, MSG_ROUTER_BUTTON_INACTIVE);
        return 0;
    }
    bool group = strcmp(type, "private") != 0;
    tg__member_seen(tg, from);
    struct invocation inv;
    tg__inv_init(tg, &inv, update_id, from, chat_id, group);
    tg__inv_place(&inv, m);
    snprintf(inv.button_ref, sizeof(inv.button_ref), "%s", data);
    struct tg_reply *r = tg_reply_new(tg, chat_id, group, 0);
    if (r == NULL) {
        tg_callback_answer(tg, id, MSG_TG_BUSY);
        return 0;
    }
    r->user_id = tg_json_int(from, "id", 0);
    r->callback_id = strdup(id);
    r->msg_id = tg_json_int(m, "message_id", 0);
    r->edit_next = r->msg_id != 0; /* the answer replaces the message with the button */
    inv.reply = &r->reply;
    tg->host.dispatch(tg->host.data, &inv, NULL);
    return 0;
}

int tg_update_handle(struct tg *tg, const cJSON *u)
{
    const cJSON *idv = cJSON_GetObjectItemCaseSensitive(u, "update_id");
    if (!cJSON_IsObject(u) || !cJSON_IsNumber(idv)) {
        log_warn("telegram.update_malformed", "problem=no update_id action=skipped");
        return HB_EPROTO;
    }
    /* Range-checked before it becomes the offset: one absurd id must not
     * make every later update look like a repeat. */
    int64_t id = 0;
    if (json_int64_get(idv, 0, JSON_INT_EXACT - 1, &id) != 0) {
        log_warn("telegram.update_malformed", "problem=update_id out of range action=skipped");
        return HB_EPROTO;
    }
    if (id < tg->offset) {
        log_debug("telegram.update_duplicate", "update_id=%" PRId64, id);
        return 0;
    }
    tg->offset = id + 1;
    tg->updates_seen++;
    tg->current_update = id; /* replies made now answer it */
    int rc = 0;
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(u, "message");
    const cJSON *cbq = cJSON_GetObjectItemCaseSensitive(u, "callback_query");
    const cJSON *pcq = cJSON_GetObjectItemCaseSensitive(u, "pre_checkout_query");
    if (msg != NULL)
        rc = tg__message(tg, id, msg);
    else if (cbq != NULL)
        rc = tg__callback(tg, id, cbq);
    else if (pcq != NULL)
        tg_stars_precheckout(tg, pcq);
    tg->current_update = 0;
    if (rc < 0)
        log_warn("telegram.update_malformed", "update_id=%" PRId64 " action=skipped", id);
    return rc;
}
