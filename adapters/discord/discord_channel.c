/* The Discord adapter's conversations in channels: a mention of the bot,
 * a reply to one of its messages or a direct message is dispatched as
 * "chat <text>" and answered in the channel. */
#include "adapters/discord/discord_internal.h"

#include "adapters/discord/payload.h"
#include "base/json_scan.h"
#include "base/map.h"
#include "core/messages.h"
#include "base/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- conversations in channels -------------------------------------------- */

/* Is id (digits) one of the listed role ids ("<id> <id> ")? */
static bool dc__role_listed(const char *list, const char *id, size_t n)
{
    for (const char *p = list; p != NULL && *p != '\0';) {
        const char *sp = strchr(p, ' ');
        size_t len = sp != NULL ? (size_t)(sp - p) : strlen(p);
        if (len == n && memcmp(p, id, n) == 0)
            return true;
        p = sp != NULL ? sp + 1 : NULL;
    }
    return false;
}

static bool dc__mentions_bot(struct discord *dc, const cJSON *d)
{
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(d, "mentions"))
    {
        const char *id = dc__str(m, "id");
        if (id != NULL && strcmp(id, dc->bot_id) == 0)
            return true;
    }
    /* A mention of a role the bot holds in this guild (its own managed
     * role, or one an admin gave it) calls it too. */
    const char *guild = dc__str(d, "guild_id");
    const char *roles = guild != NULL ? map_get(dc->roles, guild) : NULL;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(d, "mention_roles"))
    {
        if (roles != NULL && cJSON_IsString(m) &&
            dc__role_listed(roles, m->valuestring, strlen(m->valuestring)))
            return true;
    }
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(d, "referenced_message");
    const char *author = dc__str(cJSON_GetObjectItemCaseSensitive(ref, "author"), "id");
    return author != NULL && strcmp(author, dc->bot_id) == 0;
}

bool dc__message_may_concern(const struct discord *dc, const char *json, size_t len)
{
    /* One pass over the top level finds both members. */
    static const char *const names[] = {"guild_id", "mention_roles"};
    struct json_member m[2];
    if (dc->bot_id[0] == '\0' || json_scan_members(json, len, names, 2, m) < 0)
        return true;
    const char *guild = m[0].v;
    size_t glen = m[0].len;
    if (guild == NULL || glen < 3 || guild[0] != '"' || glen - 2 >= 32)
        return true; /* a DM (no guild_id at the top), or not sure */
    /* Every way a guild message concerns the bot writes an id in it: the
     * bot's in a mention (mentions[].id, and <@id> in the content) and in
     * a reply to it (referenced_message.author.id); a role's in a role
     * mention. Ids are digits, never escaped: absent bytes, no concern. */
    if (memmem(json, len, dc->bot_id, strlen(dc->bot_id)) != NULL)
        return true;
    char gid[32];
    memcpy(gid, guild + 1, glen - 2);
    gid[glen - 2] = '\0';
    const char *roles = map_get(dc->roles, gid);
    if (roles == NULL) {
        /* The bot's roles there are not known: only a message that
         * mentions no role at all ("mention_roles":[]) is passed over. */
        const char *mr = m[1].v;
        size_t mrlen = m[1].len;
        return mr == NULL || mrlen < 2 || mr[0] != '[' || mr[mrlen - 1] != ']' ||
               strspn(mr + 1, " \t\r\n") != mrlen - 2;
    }
    for (const char *p = roles; *p != '\0';) {
        const char *sp = strchr(p, ' ');
        size_t n = sp != NULL ? (size_t)(sp - p) : strlen(p);
        if (n > 0 && memmem(json, len, p, n) != NULL)
            return true;
        p = sp != NULL ? sp + 1 : p + n;
    }
    return false;
}

/* The text without mentions of the bot, trimmed. */
static void dc__strip_mentions(const struct discord *dc, const char *in, char *out, size_t cap)
{
    char a[48], b[48];
    snprintf(a, sizeof(a), "<@%s>", dc->bot_id);
    snprintf(b, sizeof(b), "<@!%s>", dc->bot_id);
    size_t o = 0;
    while (*in != '\0' && o + 1 < cap) {
        if (strncmp(in, a, strlen(a)) == 0) {
            in += strlen(a);
            continue;
        }
        if (strncmp(in, b, strlen(b)) == 0) {
            in += strlen(b);
            continue;
        }
        out[o++] = *in++;
    }
    out[o] = '\0';
    char *s = out;
    while (*s == ' ' || *s == '\n' || *s == '\t')
        s++;
    memmove(out, s, strlen(s) + 1);
    size_t n = strlen(out);
    while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '\n' || out[n - 1] == '\t'))
        out[--n] = '\0';
}

void dc__message(struct discord *dc, const char *json, size_t len)
{
    if (dc->bot_id[0] == '\0')
        return;
    cJSON *d = cJSON_ParseWithLength(json, len);
    if (d == NULL)
        return;
    const cJSON *author = cJSON_GetObjectItemCaseSensitive(d, "author");
    const char *content = dc__str(d, "content");
    const char *id = dc__str(d, "id");
    const char *channel = dc__str(d, "channel_id");
    bool dm = dc__str(d, "guild_id") == NULL;
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(author, "bot")) || content == NULL ||
        id == NULL || channel == NULL || strlen(id) >= 32 || strlen(channel) >= 32)
        goto out;
    if (!dm && !dc__mentions_bot(dc, d))
        goto out;
    /* An attached image goes with the turn; without one of its own, the
     * image of the message it replies to. */
    size_t max = dc__image_max(dc);
    const char *url = NULL;
    int img =
        dc__attachment_pick(dc, cJSON_GetObjectItemCaseSensitive(d, "attachments"), max, &url);
    bool own = img != HB_ENOTFOUND;
    if (!own) {
        const cJSON *ref = cJSON_GetObjectItemCaseSensitive(d, "referenced_message");
        img = dc__attachment_pick(dc, cJSON_GetObjectItemCaseSensitive(ref, "attachments"), max,
                                  &url);
        if (img == HB_EPROTO)
            img = HB_ENOTFOUND; /* a reply to a file that is no image: just text */
    }
    /* Without the message content intent the text may be empty: nothing to
     * continue with, unless an image asks something. */
    size_t cap = strlen(content) + sizeof(MSG_ATTACH_DEFAULT_PROMPT) + 8;
    char *text = malloc(cap + 5);
    if (text == NULL)
        goto out;
    memcpy(text, "chat ", 5);
    dc__strip_mentions(dc, content, text + 5, cap);
    if (text[5] == '\0' && own)
        snprintf(text + 5, cap, "%s", MSG_ATTACH_DEFAULT_PROMPT);
    if (text[5] == '\0' || dc__seen(dc, id)) {
        free(text);
        goto out;
    }
    struct dc_reply *r = dc__reply_new(dc, DC_KIND_MESSAGE);
    if (r == NULL) {
        free(text);
        goto out;
    }
    r->acked = true;
    dc__copy(r->channel_id, sizeof(r->channel_id), channel);
    dc__copy(r->message_id, sizeof(r->message_id), id);
    struct invocation inv;
    memset(&inv, 0, sizeof(inv));
    dc__identity(d, &inv);
    dc__place(dc, &inv);
    snprintf(inv.event_id, sizeof(inv.event_id), "discord:message:%s", id);
    /* The message it replies to: a reply to the bot's answer continues
     * that conversation (a thread is a channel of its own already). */
    const char *to =
        dc__str(cJSON_GetObjectItemCaseSensitive(d, "message_reference"), "message_id");
    if (to == NULL)
        to = dc__str(cJSON_GetObjectItemCaseSensitive(d, "referenced_message"), "id");
    if (to != NULL && strlen(to) < 32)
        dc__copy(inv.reply_to_id, sizeof(inv.reply_to_id), to);
    inv.reply = &r->reply;
    dc->stats.messages++;
    if (img == 0) {
        dc__image_dispatch(dc, r, &inv, text, url);
    } else if (img != HB_ENOTFOUND) {
        dc__image_refuse(&r->reply, img, max);
        reply_finish(&r->reply);
    } else {
        dc->host.dispatch(dc->host.data, &inv, text);
    }
    free(text);
    dc__reply_dispatched(r);
out:
    cJSON_Delete(d);
}
