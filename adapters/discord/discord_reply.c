/* The Discord adapter's replies: rendering neutral reply messages into
 * Discord message bodies, the interaction callback or its deferral, and
 * the edits and follow-ups after it, paced so that one message is edited
 * at most once per edit interval. */
#include "adapters/discord/discord_internal.h"

#include "adapters/discord/rest.h"
#include "core/commands.h"
#include "base/error.h"
#include "base/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- message rendering ---------------------------------------------------- */

/* The message body Discord takes for callbacks, edits and follow-ups. */
cJSON *dc__message_json(const char *text, size_t text_len, bool ephemeral,
                        const struct reply_msg *msg, bool with_extras)
{
    cJSON *m = cJSON_CreateObject();
    if (m == NULL)
        return NULL;
    char *content = strndup(text != NULL ? text : "", text != NULL ? text_len : 0);
    if (content == NULL) {
        cJSON_Delete(m);
        return NULL;
    }
    cJSON_AddStringToObject(m, "content", content);
    free(content);
    if (ephemeral)
        cJSON_AddNumberToObject(m, "flags", DC_FLAG_EPHEMERAL);
    /* Replies never ping anyone by accident. */
    cJSON *am = cJSON_AddObjectToObject(m, "allowed_mentions");
    if (am != NULL)
        cJSON_AddArrayToObject(am, "parse");
    cJSON *rows = cJSON_AddArrayToObject(m, "components");
    if (with_extras && rows != NULL && msg->nbuttons > 0) {
        cJSON *row = NULL;
        for (size_t i = 0; i < msg->nbuttons && i < DC_BUTTONS_PER_ROW * DC_ROWS_MAX; i++) {
            if (i % DC_BUTTONS_PER_ROW == 0) {
                row = cJSON_CreateObject();
                if (row == NULL)
                    break;
                cJSON_AddItemToArray(rows, row);
                cJSON_AddNumberToObject(row, "type", 1);
                cJSON_AddArrayToObject(row, "components");
            }
            cJSON *b = cJSON_CreateObject();
            if (b == NULL)
                break;
            cJSON_AddNumberToObject(b, "type", 2);
            cJSON_AddNumberToObject(b, "style", 1);
            char label[81];
            snprintf(label, sizeof(label), "%s", msg->buttons[i].label);
            cJSON_AddStringToObject(b, "label", label);
            cJSON_AddStringToObject(b, "custom_id", msg->buttons[i].ref);
            cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(row, "components"), b);
        }
    }
    cJSON *att = cJSON_AddArrayToObject(m, "attachments");
    if (with_extras && att != NULL && msg->image != NULL) {
        cJSON *a = cJSON_CreateObject();
        if (a != NULL) {
            cJSON_AddNumberToObject(a, "id", 0);
            cJSON_AddStringToObject(
                a, "filename", msg->image->filename != NULL ? msg->image->filename : "image.png");
            cJSON_AddItemToArray(att, a);
        }
    }
    return m;
}

static void dc__op_free(struct dc_op *op)
{
    free(op->json);
    free(op->image);
    free(op->image_name);
    free(op->image_mime);
    free(op);
}

/* A new op (json taken over), with the image copied when given. */
static struct dc_op *dc__op_new(enum dc_op_kind kind, cJSON *json, const struct reply_image *img)
{
    struct dc_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        cJSON_Delete(json);
        return NULL;
    }
    op->kind = kind;
    if (json != NULL) {
        op->json = cJSON_PrintUnformatted(json);
        cJSON_Delete(json);
        if (op->json == NULL)
            goto fail;
    }
    if (img != NULL && img->data != NULL && img->len > 0) {
        op->image = malloc(img->len);
        op->image_name = strdup(img->filename != NULL ? img->filename : "image.png");
        op->image_mime = strdup(img->mime != NULL ? img->mime : "image/png");
        if (op->image == NULL || op->image_name == NULL || op->image_mime == NULL)
            goto fail;
        memcpy(op->image, img->data, img->len);
        op->image_len = img->len;
    }
    return op;
fail:
    dc__op_free(op);
    return NULL;
}

/* ---- replies ------------------------------------------------------------- */

static void dc__reply_pace_closed(uv_handle_t *h)
{
    struct dc_reply *r = h->data;
    struct discord *dc = r->dc;
    free(r);
    dc->handles--;
    dc->refs--;
    dc__maybe_closed(dc);
}

static void dc__reply_free(struct dc_reply *r)
{
    struct discord *dc = r->dc;
    while (r->head != NULL) {
        struct dc_op *op = r->head;
        r->head = op->next;
        dc__op_free(op);
    }
    if (r->pace_init) {
        r->pace.data = r;
        uv_close((uv_handle_t *)&r->pace, dc__reply_pace_closed);
        return;
    }
    free(r);
    dc->refs--;
    dc__maybe_closed(dc);
}

static void dc__reply_maybe_free(struct dc_reply *r)
{
    if (r->finished && !r->busy && r->head == NULL && !r->in_dispatch)
        dc__reply_free(r);
}

static void dc__reply_push(struct dc_reply *r, struct dc_op *op)
{
    if (op == NULL)
        return;
    /* A progress edit still waiting replaces the one before it. */
    bool tail_sending = r->busy && r->tail == r->head;
    if (op->kind == DC_OP_EDIT && op->progress && r->tail != NULL && !tail_sending &&
        r->tail->kind == DC_OP_EDIT && r->tail->progress) {
        struct dc_op *old = r->tail;
        op->next = NULL;
        /* Swap the contents so the queue links stay. */
        struct dc_op *keep_next = old->next;
        free(old->json);
        free(old->image);
        free(old->image_name);
        free(old->image_mime);
        *old = *op;
        old->next = keep_next;
        free(op);
        return;
    }
    op->next = NULL;
    if (r->tail != NULL)
        r->tail->next = op;
    else
        r->head = op;
    r->tail = op;
}

static void dc__op_done(const struct discord_rest_result *res, void *data);

static void dc__pace_cb(uv_timer_t *t)
{
    struct dc_reply *r = t->data;
    r->pace_armed = false;
    if (r->refused_rc != 0) {
        struct discord_rest_result res = {.rc = r->refused_rc};
        r->refused_rc = 0;
        dc__op_done(&res, r);
        return;
    }
    dc__reply_pump(r);
}

static void dc__timer_arm(struct dc_reply *r, uint64_t ms, uv_timer_cb cb)
{
    struct discord *dc = r->dc;
    if (!r->pace_init) {
        uv_timer_init(dc->loop, &r->pace);
        r->pace_init = true;
        dc->handles++;
    }
    r->pace.data = r;
    r->pace_armed = true;
    uv_timer_start(&r->pace, cb, ms, 0);
}

static void dc__pace_arm(struct dc_reply *r, uint64_t ms)
{
    dc__timer_arm(r, ms, dc__pace_cb);
}

static void dc__op_done(const struct discord_rest_result *res, void *data)
{
    struct dc_reply *r = data;
    struct discord *dc = r->dc;
    struct dc_op *op = r->head;
    bool ok = res->rc == 0 && res->status >= 200 && res->status < 300;
    r->busy = false;
    if (res->rc == 0 && res->status == 404 && r->http_answered && !r->retried && !dc->closing) {
        /* The HTTP answer is written after the handler returns, and nothing
         * says when Discord has taken it in; a REST call right behind it
         * can find the interaction unknown. Once, a little later. */
        r->retried = true;
        log_debug("discord.retry_after_http_answer", "op=%d", (int)op->kind);
        dc__pace_arm(r, DC_HTTP_RETRY_MS);
        return;
    }
    r->head = op->next;
    if (r->head == NULL)
        r->tail = NULL;
    if (op->kind == DC_OP_CALLBACK) {
        if (ok)
            dc->stats.acks++;
        else
            dc->stats.ack_failures++;
    }
    if (op->kind == DC_OP_EDIT) {
        r->last_edit_ms = uv_now(dc->loop);
        dc->stats.edits++;
    }
    if (op->kind == DC_OP_FOLLOWUP)
        dc->stats.followups++;
    if (ok && (op->kind == DC_OP_FOLLOWUP || op->kind == DC_OP_EDIT) && res->body != NULL) {
        cJSON *j = cJSON_ParseWithLength(res->body, res->body_len);
        if (r->kind == DC_KIND_MESSAGE && op->kind == DC_OP_FOLLOWUP && r->sent_id[0] == '\0')
            dc__copy(r->sent_id, sizeof(r->sent_id), dc__str(j, "id"));
        /* A reply to this message continues what it answered. */
        const char *channel = dc__str(j, "channel_id");
        reply_landed(&r->reply, channel != NULL ? channel : r->channel_id, dc__str(j, "id"));
        cJSON_Delete(j);
    }
    if (!ok && res->rc != HB_ECANCELED)
        log_warn("discord.reply_failed", "kind=%d op=%d status=%d error=%s", (int)r->kind,
                 (int)op->kind, res->status, res->rc == 0 ? "http status" : hb_strerror(res->rc));
    dc__op_free(op);
    if (res->rc == HB_ECANCELED) {
        /* The rest client is closing: nothing more can go out. */
        while (r->head != NULL) {
            struct dc_op *next = r->head->next;
            dc__op_free(r->head);
            r->head = next;
        }
        r->tail = NULL;
    }
    dc__reply_pump(r);
    dc__reply_maybe_free(r);
}

/* The callback at the head of the queue is answered through r->first, at
 * once. The HTTP answer carries JSON only, so a first answer with an image
 * becomes a deferral there and the message an edit of @original through
 * REST, queued in the callback's place. */
static void dc__first_answer(struct dc_reply *r)
{
    struct dc_first *first = r->first;
    struct dc_op *op = r->head;
    r->first = NULL;
    r->http_answered = true;
    if (op->image != NULL) {
        cJSON *cb = cJSON_Parse(op->json);
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(cb, "type");
        cJSON *data = cJSON_DetachItemFromObjectCaseSensitive(cb, "data");
        const cJSON *flags = cJSON_GetObjectItemCaseSensitive(data, "flags");
        bool ephemeral = cJSON_IsNumber(flags) && (flags->valueint & DC_FLAG_EPHEMERAL) != 0;
        int deferred = cJSON_IsNumber(type) && type->valueint == 7 ? 6 : 5;
        cJSON_Delete(cb);
        char *edit = data != NULL ? cJSON_PrintUnformatted(data) : NULL;
        cJSON_Delete(data);
        char answer[64];
        snprintf(answer, sizeof(answer), "{\"type\":%d%s}", deferred,
                 ephemeral ? ",\"data\":{\"flags\":64}" : "");
        first->used = true;
        first->fn(first->data, answer, strlen(answer));
        r->dc->stats.acks++;
        if (edit != NULL) {
            free(op->json);
            op->json = edit;
            op->kind = DC_OP_EDIT;
            return;
        }
    } else {
        first->used = true;
        first->fn(first->data, op->json, strlen(op->json));
        r->dc->stats.acks++;
    }
    r->head = op->next;
    if (r->head == NULL)
        r->tail = NULL;
    dc__op_free(op);
}

/* Send the next op when its time has come. */
void dc__reply_pump(struct dc_reply *r)
{
    struct discord *dc = r->dc;
    if (r->busy || r->head == NULL || r->in_dispatch || r->pace_armed)
        return;
    if (r->head->kind == DC_OP_CALLBACK && r->first != NULL) {
        dc__first_answer(r);
        if (r->head == NULL)
            return;
    }
    struct dc_op *op = r->head;
    uint64_t now = uv_now(dc->loop);
    if (op->kind == DC_OP_EDIT && r->last_edit_ms != 0 &&
        now < r->last_edit_ms + dc->edit_interval_ms) {
        dc__pace_arm(r, r->last_edit_ms + dc->edit_interval_ms - now);
        return;
    }
    char path[1024];
    const char *method = "POST";
    switch (op->kind) {
    case DC_OP_CALLBACK:
        snprintf(path, sizeof(path), "/interactions/%s/%s/callback", r->id, r->token);
        break;
    case DC_OP_EDIT:
        method = "PATCH";
        if (r->kind == DC_KIND_MESSAGE)
            snprintf(path, sizeof(path), "/channels/%s/messages/%s", r->channel_id, r->sent_id);
        else
            snprintf(path, sizeof(path), "/webhooks/%s/%s/messages/@original", dc->app_id,
                     r->token);
        break;
    case DC_OP_FOLLOWUP:
        if (r->kind == DC_KIND_MESSAGE)
            snprintf(path, sizeof(path), "/channels/%s/messages", r->channel_id);
        else
            snprintf(path, sizeof(path), "/webhooks/%s/%s", dc->app_id, r->token);
        break;
    case DC_OP_DELETE:
        method = "DELETE";
        snprintf(path, sizeof(path), "/webhooks/%s/%s/messages/@original", dc->app_id, r->token);
        break;
    }
    struct discord_rest_file file = {.filename = op->image_name,
                                     .mime = op->image_mime,
                                     .data = op->image,
                                     .len = op->image_len};
    if (op->kind == DC_OP_EDIT)
        r->last_edit_ms = now;
    r->busy = true;
    int rc =
        discord_rest_request(dc->rest, method, path, op->json, op->image != NULL ? &file : NULL,
                             op->image != NULL ? 1 : 0, dc__op_done, r);
    if (rc < 0) {
        /* Never complete an op from inside the pump: its callers still use
         * the reply, which completing may free. The refusal is handed back
         * from the loop, busy until then. */
        r->refused_rc = rc;
        dc__pace_arm(r, 0);
    }
}

/* The callback body for the first answer given during dispatch. */
cJSON *dc__callback(int type, cJSON *data)
{
    cJSON *cb = cJSON_CreateObject();
    if (cb == NULL) {
        cJSON_Delete(data);
        return NULL;
    }
    cJSON_AddNumberToObject(cb, "type", type);
    if (data != NULL)
        cJSON_AddItemToObject(cb, "data", data);
    return cb;
}

/* One piece of a message: to @original (or our channel message) or as a
 * follow-up. */
static void dc__reply_piece(struct dc_reply *r, const struct reply_msg *msg, const char *text,
                            size_t len, bool extras)
{
    const struct reply_image *img = extras ? msg->image : NULL;
    bool progress = msg->stage == REPLY_PROGRESS;
    bool to_original = !r->original_final;
    bool ephemeral = msg->ephemeral || msg->personal;
    if (r->kind == DC_KIND_MESSAGE) {
        cJSON *m = dc__message_json(text, len, false, msg, extras);
        if (m == NULL)
            return;
        if (to_original && r->original_used) {
            struct dc_op *op = dc__op_new(DC_OP_EDIT, m, img);
            if (op != NULL)
                op->progress = progress;
            dc__reply_push(r, op);
        } else {
            if (!r->original_used) {
                cJSON *ref = cJSON_AddObjectToObject(m, "message_reference");
                if (ref != NULL) {
                    cJSON_AddStringToObject(ref, "message_id", r->message_id);
                    cJSON_AddFalseToObject(ref, "fail_if_not_exists");
                }
            }
            dc__reply_push(r, dc__op_new(DC_OP_FOLLOWUP, m, img));
        }
        if (to_original) {
            r->original_used = true;
            r->original_final = !progress;
        }
        return;
    }
    if (!to_original) {
        if (progress)
            return; /* progress after the answer has nowhere to go */
        cJSON *m = dc__message_json(text, len, ephemeral, msg, extras);
        dc__reply_push(r, dc__op_new(DC_OP_FOLLOWUP, m, img));
        return;
    }
    if (!r->acked) {
        /* Answered during dispatch: the answer is the callback itself. */
        int type = 4;
        if (r->kind == DC_KIND_COMPONENT && !ephemeral)
            type = 7;
        cJSON *m = dc__message_json(text, len, ephemeral && type == 4, msg, extras);
        dc__reply_push(r, dc__op_new(DC_OP_CALLBACK, dc__callback(type, m), img));
        r->acked = true;
        r->original_used = true;
        r->original_final = !progress;
        return;
    }
    bool ephemeral_first = ephemeral && !r->original_used;
    if (ephemeral_first && (r->deferred_public || r->kind == DC_KIND_COMPONENT)) {
        /* The placeholder is public (or the button's own message): an
         * ephemeral answer cannot be an edit of it. */
        if (r->kind == DC_KIND_COMMAND)
            dc__reply_push(r, dc__op_new(DC_OP_DELETE, NULL, NULL));
        cJSON *m = dc__message_json(text, len, true, msg, extras);
        dc__reply_push(r, dc__op_new(DC_OP_FOLLOWUP, m, img));
        r->original_used = true;
        r->original_final = true;
        r->deferred_public = false;
        return;
    }
    cJSON *m = dc__message_json(text, len, false, msg, extras);
    struct dc_op *op = dc__op_new(DC_OP_EDIT, m, img);
    if (op != NULL)
        op->progress = progress;
    dc__reply_push(r, op);
    r->original_used = true;
    r->original_final = !progress;
    r->deferred_public = false;
}

static int dc__reply_send(struct reply *rep, const struct reply_msg *msg)
{
    struct dc_reply *r = rep->data;
    if (r->finished)
        return HB_ESTATE;
    if (r->kind == DC_KIND_MESSAGE && msg->personal)
        return 0; /* a channel message cannot be hidden: a member's own figures stay out */
    const char *text = msg->text != NULL ? msg->text : "";
    size_t len = strlen(text);
    if (msg->stage == REPLY_PROGRESS) {
        /* Progress shows the newest part of a long partial text. A code
         * block it starts inside of is reopened, and one still open at
         * its end is closed, so the block shows as a block meanwhile. */
        const char *whole = text;
        size_t chars = command_utf8_len(text);
        size_t keep = DC_TEXT_MAX - DC_FENCE_ROOM;
        for (size_t skip = chars > keep ? chars - keep : 0; skip > 0; skip--) {
            text++;
            while (((unsigned char)*text & 0xC0) == 0x80)
                text++;
        }
        char lang[33];
        bool reopen = text != whole && discord_fence_open(whole, (size_t)(text - whole), lang);
        bool close = discord_fence_open(whole, len, NULL);
        char *shown = NULL;
        if (reopen || close) {
            if (asprintf(&shown, "%s%s%s%s%s", reopen ? "```" : "", reopen ? lang : "",
                         reopen ? "\n" : "", text, close ? "\n```" : "") < 0)
                shown = NULL;
        }
        if (shown != NULL)
            text = shown;
        len = strlen(text);
        dc__reply_piece(r, msg, text, len, true);
        free(shown);
    } else {
        char **pieces = NULL;
        int n = discord_text_split(text, DC_TEXT_MAX, &pieces);
        for (int i = 0; i < n; i++) {
            dc__reply_piece(r, msg, pieces[i], strlen(pieces[i]), i == n - 1);
            free(pieces[i]);
        }
        free(pieces);
        if (n == 0)
            dc__reply_piece(r, msg, text, 0, true); /* an image alone, or nothing */
        if (n < 0) {
            do { /* short of memory: plain cuts */
                size_t cut = discord_text_cut(text, DC_TEXT_MAX);
                bool last = text[cut] == '\0';
                dc__reply_piece(r, msg, text, cut, last);
                text += cut;
            } while (*text != '\0');
        }
    }
    if (r->holding && r->acked) {
        /* The answer came in time: it is the callback itself. */
        uv_timer_stop(&r->pace);
        r->pace_armed = false;
        r->holding = false;
    }
    dc__reply_pump(r);
    return 0;
}

static void dc__reply_defer(struct dc_reply *r);

static void dc__reply_finish(struct reply *rep)
{
    struct dc_reply *r = rep->data;
    r->finished = true;
    if (r->holding) {
        /* Done without a word: acknowledge, then clear the placeholder. */
        uv_timer_stop(&r->pace);
        r->pace_armed = false;
        r->holding = false;
        if (!r->acked)
            dc__reply_defer(r);
    }
    if (r->kind == DC_KIND_COMMAND && r->acked && !r->original_used)
        dc__reply_push(r, dc__op_new(DC_OP_DELETE, NULL, NULL)); /* no "thinking…" forever */
    dc__reply_pump(r);
    dc__reply_maybe_free(r);
}

static const struct reply_ops dc_reply_ops = {.send = dc__reply_send, .finish = dc__reply_finish};

struct dc_reply *dc__reply_new(struct discord *dc, enum dc_kind kind)
{
    struct dc_reply *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->reply.ops = &dc_reply_ops;
    r->reply.data = r;
    r->dc = dc;
    r->kind = kind;
    r->in_dispatch = true;
    dc->refs++;
    return r;
}

/* Acknowledge without the answer: a deferral at the head of the queue.
 * A personal command's deferral is ephemeral, so the channel never sees
 * "thinking…" for it, and its answer is an edit of that ephemeral
 * placeholder: no delete, no follow-up. */
static void dc__reply_defer(struct dc_reply *r)
{
    int type = r->kind == DC_KIND_COMPONENT ? 6 : 5;
    bool ephemeral = r->kind == DC_KIND_COMMAND && r->personal;
    cJSON *data = NULL;
    if (ephemeral) {
        data = cJSON_CreateObject();
        if (data != NULL)
            cJSON_AddNumberToObject(data, "flags", DC_FLAG_EPHEMERAL);
    }
    struct dc_op *op = dc__op_new(DC_OP_CALLBACK, dc__callback(type, data), NULL);
    if (op != NULL) {
        op->next = r->head;
        r->head = op;
        if (r->tail == NULL)
            r->tail = op;
    }
    r->acked = true;
    r->deferred_public = r->kind == DC_KIND_COMMAND && !ephemeral;
}

/* A personal command's answer did not come in time: defer, ephemerally. */
static void dc__hold_cb(uv_timer_t *t)
{
    struct dc_reply *r = t->data;
    r->pace_armed = false;
    r->holding = false;
    if (!r->acked)
        dc__reply_defer(r);
    dc__reply_pump(r);
    dc__reply_maybe_free(r);
}

/* After dispatch: when the handler did not answer yet, defer. A personal
 * command over the gateway waits a little first (its answer is usually a
 * ledger read away), so that the answer can be the one ephemeral callback;
 * over HTTP the first response is this HTTP answer, so it defers now. */
void dc__reply_dispatched(struct dc_reply *r)
{
    r->in_dispatch = false;
    if (r->kind == DC_KIND_COMMAND && !r->acked && r->personal && r->first == NULL &&
        !r->finished) {
        r->holding = true;
        dc__timer_arm(r, DC_PERSONAL_HOLD_MS, dc__hold_cb);
        return;
    }
    if (r->kind != DC_KIND_MESSAGE && !r->acked) {
        dc__reply_defer(r);
        if (r->finished && r->kind == DC_KIND_COMMAND)
            dc__reply_push(r, dc__op_new(DC_OP_DELETE, NULL, NULL)); /* finished without a word */
    }
    dc__reply_pump(r);
    r->first = NULL; /* the first response has gone out, or never will */
    dc__reply_maybe_free(r);
}
