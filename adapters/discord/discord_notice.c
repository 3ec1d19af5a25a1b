/* The Discord adapter's notices: messages no interaction asked for (a
 * payment booked, a generation refunded at restart). */
#include "adapters/discord/discord_internal.h"

#include "adapters/discord/rest.h"
#include "base/error.h"
#include "base/log.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- notices: messages no interaction asked for ---------------------- */

/* One notice on its way: a DM channel to open when the member's channel is
 * not known, then the text in pieces of at most DC_TEXT_MAX characters,
 * one after the other so they arrive in order. Requests go through the
 * rest client, which paces them by Discord's buckets like every reply. */
struct dc_notice {
    struct discord *dc;
    char channel_id[COMMAND_ID_MAX]; /* where it is posted; "" until the DM is open */
    char user_id[COMMAND_ID_MAX];    /* the member, for logs and the DM */
    char *text;                      /* owned copy of the message text */
    size_t off;                      /* bytes of text already posted */
};

static void dc__notice_free(struct dc_notice *n)
{
    struct discord *dc = n->dc;
    free(n->text);
    free(n);
    dc->refs--;
    dc__maybe_closed(dc);
}

static void dc__notice_next(struct dc_notice *n);

static bool dc__notice_ok(const struct dc_notice *n, const struct discord_rest_result *res,
                          const char *step)
{
    if (res->rc == 0 && res->status >= 200 && res->status < 300)
        return true;
    if (res->rc != HB_ECANCELED)
        log_warn("discord.notify_failed", "step=%s user=%s channel=%s status=%d error=%s", step,
                 n->user_id, n->channel_id, res->status,
                 res->rc == 0 ? "http status" : hb_strerror(res->rc));
    return false;
}

static void dc__notice_posted(const struct discord_rest_result *res, void *data)
{
    struct dc_notice *n = data;
    if (!dc__notice_ok(n, res, "post")) {
        dc__notice_free(n);
        return;
    }
    dc__notice_next(n);
}

static void dc__notice_dm_opened(const struct discord_rest_result *res, void *data)
{
    struct dc_notice *n = data;
    if (!dc__notice_ok(n, res, "open dm")) {
        dc__notice_free(n);
        return;
    }
    cJSON *j = cJSON_ParseWithLength(res->body, res->body_len);
    dc__copy(n->channel_id, sizeof(n->channel_id), dc__str(j, "id"));
    cJSON_Delete(j);
    if (n->channel_id[0] == '\0') {
        log_warn("discord.notify_failed", "step=open dm user=%s error=no channel id", n->user_id);
        dc__notice_free(n);
        return;
    }
    dc__notice_next(n);
}

/* Post the next piece, or end when all are out. */
static void dc__notice_next(struct dc_notice *n)
{
    struct discord *dc = n->dc;
    const char *text = n->text + n->off;
    if (*text == '\0' || dc->rest == NULL) {
        dc__notice_free(n);
        return;
    }
    size_t cut = discord_text_cut(text, DC_TEXT_MAX);
    n->off += cut;
    static const struct reply_msg plain = {.stage = REPLY_FINAL};
    cJSON *m = dc__message_json(text, cut, false, &plain, false);
    char *json = m != NULL ? cJSON_PrintUnformatted(m) : NULL;
    cJSON_Delete(m);
    char path[COMMAND_ID_MAX + 32];
    snprintf(path, sizeof(path), "/channels/%s/messages", n->channel_id);
    int rc = json != NULL
                 ? discord_rest_request(dc->rest, "POST", path, json, NULL, 0, dc__notice_posted, n)
                 : HB_ENOMEM;
    free(json);
    if (rc < 0) {
        log_warn("discord.notify_failed", "step=post user=%s error=%s", n->user_id,
                 hb_strerror(rc));
        dc__notice_free(n);
    }
}

static bool dc__snowflake(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len >= 32)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}

/* The notify operation: to the channel where the member started when it
 * is known, else to their DM channel (opened first; Discord answers an
 * open DM channel with the same id every time). */
int dc__notify(struct adapter *a, const struct notify_target *to, const struct reply_msg *msg)
{
    struct discord *dc = a->impl;
    if (dc->closing || dc->stopping || dc->rest == NULL)
        return HB_ECANCELED;
    if (to->platform != COMMAND_PLATFORM_DISCORD || msg->text == NULL || msg->text[0] == '\0')
        return HB_EINVAL;
    bool channel = dc__snowflake(to->channel_id);
    if (!channel && !dc__snowflake(to->user_id))
        return HB_EINVAL; /* a guild without a channel: nowhere to post */
    struct dc_notice *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return HB_ENOMEM;
    n->text = strdup(msg->text);
    if (n->text == NULL) {
        free(n);
        return HB_ENOMEM;
    }
    n->dc = dc;
    dc__copy(n->user_id, sizeof(n->user_id), to->user_id);
    dc->refs++;
    if (channel) {
        dc__copy(n->channel_id, sizeof(n->channel_id), to->channel_id);
        dc__notice_next(n);
        return 0;
    }
    char json[COMMAND_ID_MAX + 32];
    snprintf(json, sizeof(json), "{\"recipient_id\":\"%s\"}", to->user_id);
    int rc = discord_rest_request(dc->rest, "POST", "/users/@me/channels", json, NULL, 0,
                                  dc__notice_dm_opened, n);
    if (rc < 0) {
        /* No callback will come: undo here, and let the caller fall back. */
        free(n->text);
        free(n);
        dc->refs--;
        return rc;
    }
    return 0;
}
