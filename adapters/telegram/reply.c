/* Reply handles: what a handler answers through struct reply becomes
 * sendMessage, editMessageText, sendPhoto and answerCallbackQuery calls in
 * the chat's send queue. The queue holds a reference to the handle for each
 * queued send (sendq.c frees it with the last one).
 *
 * A group reads everything posted in it, and Telegram cannot show a message
 * to one member of a group alone. So a personal answer (a balance, a
 * history) asked for in a group goes to the member's private chat, through
 * a second handle for that chat; once Telegram took it (or refused it: the
 * member never pressed Start, or blocked the bot), the group hears only
 * where the answer went, or how to open the private chat. A personal aside
 * (the balance after a generation) is left out in a group.
 *
 * Texts go with parse_mode=HTML. The model's output (the first
 * markdown_len bytes of a message) is Markdown, rendered by markdown.c; the
 * bot's own texts (names, prompts, notes) are escaped, so an underscore or
 * a '<' in them stays what it is. Every text goes as HTML, plain ones too,
 * because the send queue may fold a waiting edit into the next text of the
 * same message, and both must mean the same parse mode. Telegram's 4096
 * limit counts the visible text, so a long text is cut there and each
 * piece rendered on its own: a span cut in two is closed and reopened. Were
 * Telegram still to refuse the markup, calls.c sends the text again plain.
 *
 * While a generation runs (from its first progress message until its final
 * answer) the chat shows "typing": sendChatAction every TG_TYPING_MS. */
#include "adapters/telegram/telegram_internal.h"

#include "adapters/telegram/markdown.h"
#include "core/commands.h"
#include "core/messages.h"
#include "base/error.h"
#include "base/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TG_BUTTONS_PER_ROW 3
#define TG_TYPING_MS 4500       /* Telegram shows the action for 5 s, or until a message arrives */
#define TG_TYPING_FIRST_MS 1000 /* after the progress message that starts it */
#define TG_TYPING_TICKS_MAX 400 /* half an hour: a generation that long has stalled */

/* ---- replies -------------------------------------------------------- */

static void tg__answered(struct tg *tg, void *data, const struct tg_result *res)
{
    (void)tg;
    (void)data;
    if (res->rc != HB_ECANCELED && (res->rc != 0 || !res->ok))
        log_warn("telegram.callback_answer_failed", "status=%d description=%s error=%s",
                 res->status, res->description, hb_strerror(res->rc));
}

void tg_callback_answer(struct tg *tg, const char *id, const char *text)
{
    cJSON *body = cJSON_CreateObject();
    if (body == NULL)
        return;
    cJSON_AddStringToObject(body, "callback_query_id", id);
    if (text != NULL)
        cJSON_AddStringToObject(body, "text", text);
    int rc = tg_call_json(tg, "answerCallbackQuery", body, tg__answered, NULL);
    if (rc < 0 && rc != HB_ECANCELED)
        log_warn("telegram.callback_answer_failed", "error=%s", hb_strerror(rc));
    cJSON_Delete(body);
}

cJSON *tg_markup(const struct reply_button *b, size_t n)
{
    cJSON *m = cJSON_CreateObject();
    cJSON *rows = cJSON_AddArrayToObject(m, "inline_keyboard");
    cJSON *row = NULL;
    for (size_t i = 0; i < n && rows != NULL; i++) {
        if (i % TG_BUTTONS_PER_ROW == 0) {
            row = cJSON_CreateArray();
            cJSON_AddItemToArray(rows, row);
        }
        cJSON *btn = cJSON_CreateObject();
        cJSON_AddStringToObject(btn, "text", b[i].label != NULL ? b[i].label : "?");
        cJSON_AddStringToObject(btn, "callback_data", b[i].ref);
        cJSON_AddItemToArray(row, btn);
    }
    return m;
}

static void tg__reply_to(cJSON *body, int64_t msg)
{
    if (msg == 0)
        return;
    cJSON *rp = cJSON_AddObjectToObject(body, "reply_parameters");
    cJSON_AddNumberToObject(rp, "message_id", (double)msg);
    cJSON_AddBoolToObject(rp, "allow_sending_without_reply", 1);
}

static int tg__send_text(struct tg_reply *r, const struct reply_msg *msg, const char *text,
                         size_t len)
{
    struct tg *tg = r->tg;
    size_t md = msg->markdown_len < len ? msg->markdown_len : len;
    struct tg_md doc;
    tg_md_init(&doc);
    int rc = tg_md_markdown_append(&doc, text, md);
    if (rc == 0)
        rc = tg_md_plain_append(&doc, text + md, len - md);
    size_t off = 0;
    bool first = true;
    while (off < doc.len && rc == 0) {
        size_t cut = telegram_text_cut(doc.vis + off, doc.len - off, TG_TEXT_MAX);
        bool last = off + cut >= doc.len || msg->stage == REPLY_PROGRESS;
        cJSON *body = cJSON_CreateObject();
        char *piece = tg_md_html(&doc, off, off + cut);
        if (body == NULL || piece == NULL) {
            cJSON_Delete(body);
            free(piece);
            rc = HB_ENOMEM;
            break;
        }
        cJSON_AddStringToObject(body, "text", piece);
        cJSON_AddStringToObject(body, "parse_mode", "HTML");
        free(piece);
        if (last && msg->nbuttons > 0)
            cJSON_AddItemToObject(body, "reply_markup", tg_markup(msg->buttons, msg->nbuttons));
        if (first && r->edit_next) {
            rc = tg_sendq_json(tg, r->chat_id, r->group, r, "editMessageText", body, true, false,
                               true);
        } else {
            if (r->group)
                tg__reply_to(body, r->reply_to);
            bool progress = first && msg->stage == REPLY_PROGRESS;
            rc = tg_sendq_json(tg, r->chat_id, r->group, r, "sendMessage", body, false, progress,
                               false);
        }
        if (first) {
            r->edit_next = msg->stage == REPLY_PROGRESS;
            r->progress = msg->stage == REPLY_PROGRESS;
        }
        first = false;
        if (last)
            break; /* progress shows its first piece only: later edits replace it */
        off += cut;
    }
    tg_md_close(&doc);
    return rc;
}

/* ---- typing --------------------------------------------------------- */

static void tg__typing_closed(uv_handle_t *h)
{
    struct tg_reply *r = h->data;
    tg_reply_unref(r); /* the timer's reference */
}

static void tg__typing_stop(struct tg_reply *r)
{
    if (!r->typing_open)
        return;
    r->typing_open = false;
    uv_close((uv_handle_t *)&r->typing, tg__typing_closed);
}

static void tg__typing_tick(uv_timer_t *t)
{
    struct tg_reply *r = t->data;
    struct tg *tg = r->tg;
    if (tg->closing || r->finished || ++r->typing_ticks > TG_TYPING_TICKS_MAX) {
        tg__typing_stop(r);
        return;
    }
    cJSON *body = cJSON_CreateObject();
    if (body == NULL)
        return;
    cJSON_AddNumberToObject(body, "chat_id", (double)r->chat_id);
    cJSON_AddStringToObject(body, "action", "typing");
    int rc = tg_call_json(tg, "sendChatAction", body, NULL, NULL);
    if (rc < 0 && rc != HB_ECANCELED)
        log_debug("telegram.chat_action_failed", "error=%s", hb_strerror(rc));
    cJSON_Delete(body);
}

/* A generation's progress: show "typing" until its final answer. */
static void tg__typing_start(struct tg_reply *r)
{
    if (r->typing_ticks > 0 || r->tg->closing)
        return; /* once per handle: a closing timer is never set up again */
    if (uv_timer_init(r->tg->loop, &r->typing) < 0)
        return;
    r->typing.data = r;
    r->refs++; /* dropped when the timer is closed */
    r->typing_open = true;
    r->typing_ticks = 1;
    uv_timer_start(&r->typing, tg__typing_tick, TG_TYPING_FIRST_MS, TG_TYPING_MS);
}

/* ---- personal answers from a group --------------------------------- */

/* A send to the member's private chat is done: tell the group, once, that
 * the answer went there, or how to open that chat when Telegram refused
 * it. Other failures (the network, given up after retries) are logged by
 * the queue; the group hears nothing then. */
static void tg__dm_sent(struct tg_reply *dm, const struct tg_result *res)
{
    struct tg *tg = dm->tg;
    if (dm->noticed || tg->closing)
        return;
    bool ok = res->rc == 0 && res->status == 200 && res->ok;
    bool closed = res->rc == 0 &&
                  (res->status == 403 || (res->status == 400 && res->description != NULL &&
                                          strstr(res->description, "chat not found") != NULL));
    if (!ok && !closed)
        return;
    dm->noticed = true;
    char text[512];
    if (ok)
        snprintf(text, sizeof(text), MSG_TG_ANSWER_IN_DM);
    else if (tg->bot_username[0] != '\0')
        snprintf(text, sizeof(text), MSG_TG_DM_CLOSED, tg->bot_username);
    else
        snprintf(text, sizeof(text), MSG_TG_DM_CLOSED_NO_LINK);
    if (!ok)
        log_info("telegram.dm_closed", "user=%" PRId64 " status=%d", dm->chat_id, res->status);
    cJSON *body = cJSON_CreateObject();
    if (body == NULL)
        return;
    cJSON_AddStringToObject(body, "text", text);
    tg__reply_to(body, dm->notice_to);
    int rc =
        tg_sendq_json(tg, dm->notice_chat, true, NULL, "sendMessage", body, false, false, false);
    if (rc < 0 && rc != HB_ECANCELED)
        log_warn("telegram.send_failed", "chat=%" PRId64 " error=%s", dm->notice_chat,
                 hb_strerror(rc));
}

/* The handle for the asker's private chat, made on first use; NULL when
 * the asker is unknown or memory is short. */
static struct tg_reply *tg__dm(struct tg_reply *r)
{
    if (r->dm != NULL || r->user_id == 0)
        return r->dm;
    struct tg_reply *dm = tg_reply_new(r->tg, r->user_id, false, 0);
    if (dm == NULL)
        return NULL;
    dm->user_id = r->user_id;
    dm->notice_chat = r->chat_id;
    dm->notice_to = r->reply_to;
    dm->sent = tg__dm_sent;
    r->dm = dm;
    return dm;
}

static int tg__reply_send(struct reply *handle, const struct reply_msg *msg)
{
    struct tg_reply *r = handle->data;
    struct tg *tg = r->tg;
    if (tg->closing)
        return HB_ECANCELED;
    if (msg->secret)
        r->secret = true;
    if (r->group && msg->personal) {
        if (msg->aside)
            return 0; /* only worth showing in place, and a group is not the place */
        struct tg_reply *dm = tg__dm(r);
        if (dm == NULL) {
            log_warn("telegram.personal_dropped", "chat=%" PRId64 " reason=%s", r->chat_id,
                     r->user_id == 0 ? "unknown member" : "out of memory");
            return r->user_id == 0 ? HB_EINVAL : HB_ENOMEM;
        }
        if (r->callback_id != NULL) {
            tg_callback_answer(tg, r->callback_id, NULL);
            free(r->callback_id);
            r->callback_id = NULL;
        }
        return dm->reply.ops->send(&dm->reply, msg);
    }
    const char *text = msg->text != NULL ? msg->text : "";
    size_t len = strlen(text);
    if (msg->stage == REPLY_PROGRESS)
        tg__typing_start(r);
    else
        tg__typing_stop(r);
    if (r->callback_id != NULL) {
        /* A short private note to the member who pressed a button shows as
         * the button's own answer; anything else answers it plainly. */
        bool toast = msg->ephemeral && msg->image == NULL && msg->nbuttons == 0 && len > 0 &&
                     command_utf8_len(text) <= TG_CALLBACK_TEXT_MAX;
        tg_callback_answer(tg, r->callback_id, toast ? text : NULL);
        free(r->callback_id);
        r->callback_id = NULL;
        if (toast)
            return 0;
    }
    if (msg->image != NULL) {
        cJSON *fields = cJSON_CreateObject();
        if (fields == NULL)
            return HB_ENOMEM;
        bool caption = len > 0 && telegram_text_cut(text, len, TG_CAPTION_MAX) == len;
        if (caption)
            cJSON_AddStringToObject(fields, "caption", text);
        if (msg->nbuttons > 0 && (caption || len == 0))
            cJSON_AddItemToObject(fields, "reply_markup", tg_markup(msg->buttons, msg->nbuttons));
        if (r->group)
            tg__reply_to(fields, r->reply_to);
        int rc = tg_sendq_photo(tg, r->chat_id, r->group, r, fields, msg->image);
        if (rc == 0 && r->progress)
            rc = tg_sendq_progress_delete(tg, r); /* the image replaces "Generating..." */
        r->progress = false;
        r->edit_next = false;
        if (rc < 0 || caption || len == 0)
            return rc;
    }
    if (len == 0)
        return 0;
    return tg__send_text(r, msg, text, len);
}

static void tg__reply_finish(struct reply *handle)
{
    struct tg_reply *r = handle->data;
    if (r->callback_id != NULL) {
        if (!r->tg->closing)
            tg_callback_answer(r->tg, r->callback_id, NULL);
        free(r->callback_id);
        r->callback_id = NULL;
    }
    if (r->dm != NULL) {
        r->dm->finished = true;
        tg_reply_unref(r->dm); /* its queued sends keep it until they are done */
        r->dm = NULL;
    }
    tg__typing_stop(r);
    r->finished = true;
    tg_reply_unref(r);
}

static const struct reply_ops tg_reply_ops = {.send = tg__reply_send, .finish = tg__reply_finish};

struct tg_reply *tg_reply_new(struct tg *tg, int64_t chat_id, bool group, int64_t reply_to)
{
    struct tg_reply *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->reply.ops = &tg_reply_ops;
    r->reply.data = r;
    r->tg = tg;
    r->chat_id = chat_id;
    r->group = group;
    r->reply_to = reply_to;
    r->refs = 1;
    tg_ref(tg);
    tg_reply_track(r);
    return r;
}
