/* Unprompted messages: a notice to a member's private chat or to a group,
 * through the same per-chat send queue as replies, so pacing and 429
 * handling are the queue's. */
#include "adapters/telegram/telegram_internal.h"

#include "core/cluster.h"
#include "core/core.h"
#include "core/ledger.h"
#include "core/notify.h"

#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* A Telegram chat id is a signed 64-bit integer (negative for groups). */
static int tg__chat_parse(const char *s, int64_t *out)
{
    if (s == NULL || s[0] == '\0')
        return HB_EINVAL;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v == 0)
        return HB_EINVAL;
    *out = (int64_t)v;
    return 0;
}

int tg_notify(struct adapter *a, const struct notify_target *to, const struct reply_msg *msg)
{
    struct tg *tg = a->impl;
    if (tg->closing)
        return HB_ECANCELED;
    /* On a shared ledger only the poller sends (its outbox numbers the
     * rows): a standby says it cannot, and the caller's fallback applies. */
    if (tg->core != NULL && tg->core->cluster != NULL && !tg->lease_held && !tg->webhook)
        return HB_ESTATE;
    bool has_text = msg->text != NULL && msg->text[0] != '\0';
    if (to->platform != COMMAND_PLATFORM_TELEGRAM || (!has_text && msg->image == NULL))
        return HB_EINVAL;
    /* Where the member started when known; a private chat's id is the
     * member's user id. */
    int64_t chat_id = 0;
    const char *where = to->channel_id[0] != '\0' ? to->channel_id : to->user_id;
    if (tg__chat_parse(where, &chat_id) < 0)
        return HB_EINVAL;
    bool group = chat_id < 0;
    const char *text = has_text ? msg->text : "";
    size_t len = strlen(text);
    size_t off = 0;
    int rc = 0;
    if (msg->image != NULL) {
        /* An image (a generation approved after a hold), with the text as
         * its caption when it fits, else the text after it. */
        cJSON *fields = cJSON_CreateObject();
        if (fields == NULL)
            return HB_ENOMEM;
        bool caption = len > 0 && telegram_text_cut(text, len, TG_CAPTION_MAX) == len;
        if (caption)
            cJSON_AddStringToObject(fields, "caption", text);
        if (msg->nbuttons > 0 && (caption || len == 0))
            cJSON_AddItemToObject(fields, "reply_markup", tg_markup(msg->buttons, msg->nbuttons));
        rc = tg_sendq_photo(tg, chat_id, group, NULL, fields, msg->image);
        if (rc < 0 || caption)
            return rc;
    }
    while (off < len && rc == 0) {
        size_t cut = telegram_text_cut(text + off, len - off, TG_TEXT_MAX);
        if (cut == 0)
            break;
        cJSON *body = cJSON_CreateObject();
        char *piece = strndup(text + off, cut);
        if (body == NULL || piece == NULL || cJSON_AddStringToObject(body, "text", piece) == NULL) {
            free(piece);
            cJSON_Delete(body);
            return HB_ENOMEM;
        }
        free(piece);
        /* Buttons (an approval notice's) go with the last piece. */
        if (msg->nbuttons > 0 && off + cut >= len)
            cJSON_AddItemToObject(body, "reply_markup", tg_markup(msg->buttons, msg->nbuttons));
        rc = tg_sendq_json(tg, chat_id, group, NULL, "sendMessage", body, false, false, false);
        off += cut;
    }
    if (rc == 0)
        log_info("telegram.notify", "chat=%" PRId64 " bytes=%zu", chat_id, len);
    return rc;
}

/* A text notice of core/notify.h's passes, through tg_notify. */
static int tg__notify_text(void *data, const struct notify_target *to, const char *text)
{
    struct tg *tg = data;
    struct reply_msg msg = {.stage = REPLY_FINAL, .text = text};
    return tg_notify(&tg->adapter, to, &msg);
}

static void tg__owed_done(void *data)
{
    struct tg *tg = data;
    tg->owed_busy = false;
    tg_unref(tg);
}

/* A pass over the notices owed, by the daemon that holds the duty. */
static void tg__owed_pass(struct tg *tg)
{
    struct cluster *c = tg_cluster(tg);
    if (c == NULL || tg->owed_busy || tg->closing || tg->core->ledger == NULL)
        return;
    /* A younger row is its own daemon's to send, right after its commit;
     * one a lease old was left by a daemon that could not. */
    int64_t before = clock_now_ms(&tg->core->clock) - cluster_lease_ms(c);
    tg->owed_busy = true;
    tg_ref(tg);
    if (notify_pending_retry(ledger_store(tg->core->ledger), COMMAND_PLATFORM_TELEGRAM, before,
                             tg__notify_text, tg, tg__owed_done, tg) < 0) {
        tg->owed_busy = false;
        tg_unref(tg);
    }
}

void tg_notify_owed(struct tg *tg)
{
    if (tg->lease_held)
        tg__owed_pass(tg);
}

/* Webhook mode: no daemon polls, so the notices owed go through the one
 * that holds the lease "telegram.owed:<bot id>" (taken at each of its
 * outbox looks, and given up when it closes). */
static void tg__owed_lease_name(const struct tg *tg, char *buf, size_t cap)
{
    snprintf(buf, cap, "telegram.owed:%" PRId64, tg->bot_id);
}

static void tg__owed_lease_done(int rc, const char *holder, int64_t until, void *data)
{
    (void)holder;
    (void)until;
    struct tg *tg = data;
    tg->owed_asking = false;
    tg->owed_lease = rc == 0;
    if (rc == 0 && !tg->closing)
        tg__owed_pass(tg);
    else if (rc < 0 && rc != HB_EBUSY && rc != HB_ECANCELED)
        log_warn("telegram.lease_failed", "bot=%s duty=owed error=%s", tg->bot_username,
                 hb_strerror(rc));
    tg_unref(tg);
}

void tg_notify_owed_webhook(struct tg *tg)
{
    struct cluster *c = tg_cluster(tg);
    if (!tg->webhook || c == NULL || tg->closing || tg->owed_asking || tg->bot_id == 0)
        return;
    char name[48];
    tg__owed_lease_name(tg, name, sizeof(name));
    tg->owed_asking = true;
    tg_ref(tg);
    if (cluster_lease_take(c, name, tg__owed_lease_done, tg) < 0) {
        tg->owed_asking = false;
        tg_unref(tg);
    }
}

void tg_notify_owed_drop(struct tg *tg)
{
    struct cluster *c = tg_cluster(tg);
    if (c == NULL || !tg->owed_lease)
        return;
    tg->owed_lease = false;
    char name[48];
    tg__owed_lease_name(tg, name, sizeof(name));
    cluster_lease_drop(c, name, NULL, NULL);
}
