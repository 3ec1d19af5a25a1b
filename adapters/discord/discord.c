#include "adapters/discord/discord.h"

#include "adapters/discord/appcmd.h"
#include "adapters/discord/gateway.h"
#include "adapters/discord/rest.h"
#include "core/messages.h"
#include "core/commands.h"
#include "base/error.h"
#include "base/json.h"
#include "base/log.h"
#include "core/state.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DC_TEXT_MAX 2000        /* characters in one Discord message */
#define DC_RECENT 1024          /* event ids remembered against replays */
#define DC_MAX_SHARDS 4096
#define DC_BUTTONS_PER_ROW 5
#define DC_ROWS_MAX 5
#define DC_AUTOCOMPLETE_MAX 25
#define DC_RETRY_MIN_MS 1000
#define DC_RETRY_MAX_MS 60000
#define DC_FLAG_EPHEMERAL 64
#define DC_HTTP_RETRY_MS 500    /* wait before repeating a REST call refused 404 after an HTTP answer */

#define DC_CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

enum dc_kind {
    DC_KIND_COMMAND,   /* a slash command: @original is the deferred or answered reply */
    DC_KIND_COMPONENT, /* a button press: @original is the message the button is on */
    DC_KIND_MESSAGE,   /* a mention or reply in a channel: answered with channel messages */
};

enum dc_op_kind {
    DC_OP_CALLBACK,     /* POST /interactions/{id}/{token}/callback */
    DC_OP_EDIT,         /* PATCH @original, or the bot's channel message */
    DC_OP_FOLLOWUP,     /* POST /webhooks/{app}/{token}, or a channel message */
    DC_OP_DELETE,       /* DELETE @original */
};

struct dc_op {
    struct dc_op *next;
    enum dc_op_kind kind;
    bool progress;      /* an edit a later one may replace */
    char *json;
    unsigned char *image;
    size_t image_len;
    char *image_name;
    char *image_mime;
};

struct discord;

/* Where an interaction's first response goes. Interactions from the
 * gateway have none and answer with a REST callback; one received over
 * HTTP answers in the HTTP reply. Lives on the stack of
 * discord_interaction_feed: a reply holds it only until its dispatch ends,
 * by which time the first response is decided. */
struct dc_first {
    discord_respond_fn fn;
    void *data;
    bool used; /* fn was called */
};

struct dc_reply {
    struct reply reply;
    struct discord *dc;
    enum dc_kind kind;
    char id[32];
    char token[512];
    char channel_id[32];
    char message_id[32];  /* MESSAGE: the member's message we answer */
    char sent_id[32];     /* MESSAGE: our first message, which edits change */
    bool in_dispatch;     /* inside host.dispatch: the callback is not sent yet */
    struct dc_first *first; /* until dispatch ends: the first response's way; NULL: REST */
    bool http_answered;   /* the first response went out as an HTTP answer */
    bool retried;         /* a REST call after it was repeated once already */
    bool acked;           /* the callback is queued (MESSAGE: nothing to ack) */
    bool deferred_public; /* acked with a public type 5 and nothing shown yet */
    bool original_used;   /* @original (or sent_id) shows a message of ours */
    bool original_final;  /* ... and it is a final one */
    bool finished;        /* the handler is done */
    bool busy;            /* an op is with the rest client */
    struct dc_op *head, *tail;
    uint64_t last_edit_ms;
    bool pace_init;
    bool pace_armed;
    uv_timer_t pace;
};

struct discord {
    struct adapter adapter;
    uv_loop_t *loop;
    struct adapter_host host;
    char *token;
    char *app_id;
    char *api_base;
    char *gateway_url;
    char *guild_id;
    uint32_t intents;
    unsigned shards_opt;
    int shard_first, shard_last;
    struct http_client *http;
    struct discord_ws *ws;
    struct store *store;
    discord_models_fn models;
    void *models_data;
    uint64_t edit_interval_ms;
    uint32_t identify_spacing_ms;
    double (*jitter)(void *data);

    struct discord_rest *rest;
    struct discord_identify_gate gate;
    struct discord_gateway **gws;
    size_t ngws;
    size_t gws_alive;      /* created and not yet freed by a stop */
    size_t gws_fatal;      /* stopped for good by a close code */
    char *resolved_url;    /* from /gateway/bot */
    uv_timer_t retry;      /* /gateway/bot again after a failure */
    uint64_t retry_ms;
    char bot_id[32];       /* the bot's user id, from READY */
    char commands_hash[65];
    char *commands_json;

    uint64_t recent[DC_RECENT];
    size_t recent_next;

    bool started;
    bool stopping;
    bool closing;
    bool ended;
    bool rest_closed;
    size_t refs;           /* replies alive, requests of our own in flight, the open ref */
    size_t handles;        /* uv handles open */
    void (*close_cb)(void *data);
    void *close_data;
    struct discord_adapter_stats stats;
};

static void dc__maybe_free(struct discord *dc);
static void dc__reply_pump(struct dc_reply *r);

/* ---- small helpers ------------------------------------------------------- */

static void dc__copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src != NULL ? src : "");
}

static const char *dc__str(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool dc__seen(struct discord *dc, const char *id_text)
{
    uint64_t id = strtoull(id_text != NULL ? id_text : "0", NULL, 10);
    if (id == 0)
        return false;
    for (size_t i = 0; i < DC_RECENT; i++) {
        if (dc->recent[i] == id)
            return true;
    }
    dc->recent[dc->recent_next] = id;
    dc->recent_next = (dc->recent_next + 1) % DC_RECENT;
    return false;
}

size_t discord_text_cut(const char *text, size_t max_chars)
{
    size_t bytes = 0, chars = 0;
    while (text[bytes] != '\0' && chars < max_chars) {
        unsigned char c = (unsigned char)text[bytes];
        size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
        for (size_t k = 1; k < n; k++) {
            if (text[bytes + k] == '\0') {
                n = k;
                break;
            }
        }
        bytes += n;
        chars++;
    }
    if (text[bytes] == '\0')
        return bytes;
    /* Prefer a line break, then a space, in the last fifth. */
    size_t floor = bytes - bytes / 5;
    for (size_t i = bytes; i > floor; i--) {
        if (text[i - 1] == '\n')
            return i;
    }
    for (size_t i = bytes; i > floor; i--) {
        if (text[i - 1] == ' ')
            return i;
    }
    return bytes;
}

/* ---- message rendering ---------------------------------------------------- */

/* The message body Discord takes for callbacks, edits and follow-ups. */
static cJSON *dc__message_json(const char *text, size_t text_len, bool ephemeral,
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
            cJSON_AddStringToObject(a, "filename",
                                    msg->image->filename != NULL ? msg->image->filename : "image.png");
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
    dc__maybe_free(dc);
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
    dc__maybe_free(dc);
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

static void dc__pace_cb(uv_timer_t *t)
{
    struct dc_reply *r = t->data;
    r->pace_armed = false;
    dc__reply_pump(r);
}

static void dc__pace_arm(struct dc_reply *r, uint64_t ms)
{
    struct discord *dc = r->dc;
    if (!r->pace_init) {
        uv_timer_init(dc->loop, &r->pace);
        r->pace_init = true;
        dc->handles++;
    }
    r->pace.data = r;
    r->pace_armed = true;
    uv_timer_start(&r->pace, dc__pace_cb, ms, 0);
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
    if (ok && r->kind == DC_KIND_MESSAGE && op->kind == DC_OP_FOLLOWUP && r->sent_id[0] == '\0') {
        cJSON *j = cJSON_ParseWithLength(res->body, res->body_len);
        dc__copy(r->sent_id, sizeof(r->sent_id), dc__str(j, "id"));
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
static void dc__reply_pump(struct dc_reply *r)
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
    if (op->kind == DC_OP_EDIT && r->last_edit_ms != 0 && now < r->last_edit_ms + dc->edit_interval_ms) {
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
            snprintf(path, sizeof(path), "/webhooks/%s/%s/messages/@original", dc->app_id, r->token);
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
    int rc = discord_rest_request(dc->rest, method, path, op->json, op->image != NULL ? &file : NULL,
                                  op->image != NULL ? 1 : 0, dc__op_done, r);
    if (rc < 0) {
        struct discord_rest_result res = {.rc = rc};
        dc__op_done(&res, r);
    }
}

/* The callback body for the first answer given during dispatch. */
static cJSON *dc__callback(int type, cJSON *data)
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
        cJSON *m = dc__message_json(text, len, msg->ephemeral, msg, extras);
        dc__reply_push(r, dc__op_new(DC_OP_FOLLOWUP, m, img));
        return;
    }
    if (!r->acked) {
        /* Answered during dispatch: the answer is the callback itself. */
        int type = 4;
        if (r->kind == DC_KIND_COMPONENT && !msg->ephemeral)
            type = 7;
        cJSON *m = dc__message_json(text, len, msg->ephemeral && type == 4, msg, extras);
        dc__reply_push(r, dc__op_new(DC_OP_CALLBACK, dc__callback(type, m), img));
        r->acked = true;
        r->original_used = true;
        r->original_final = !progress;
        return;
    }
    bool ephemeral_first = msg->ephemeral && !r->original_used;
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
    const char *text = msg->text != NULL ? msg->text : "";
    size_t len = strlen(text);
    if (msg->stage == REPLY_PROGRESS) {
        /* Progress shows the newest part of a long partial text. */
        size_t chars = command_utf8_len(text);
        for (size_t skip = chars > DC_TEXT_MAX ? chars - DC_TEXT_MAX : 0; skip > 0; skip--) {
            text++;
            while (((unsigned char)*text & 0xC0) == 0x80)
                text++;
        }
        len = strlen(text);
        dc__reply_piece(r, msg, text, len, true);
    } else {
        do {
            size_t cut = discord_text_cut(text, DC_TEXT_MAX);
            bool last = text[cut] == '\0';
            dc__reply_piece(r, msg, text, cut, last);
            text += cut;
        } while (*text != '\0');
    }
    dc__reply_pump(r);
    return 0;
}

static void dc__reply_finish(struct reply *rep)
{
    struct dc_reply *r = rep->data;
    r->finished = true;
    if (r->kind == DC_KIND_COMMAND && r->acked && !r->original_used)
        dc__reply_push(r, dc__op_new(DC_OP_DELETE, NULL, NULL)); /* no "thinking…" forever */
    dc__reply_pump(r);
    dc__reply_maybe_free(r);
}

static const struct reply_ops dc_reply_ops = {.send = dc__reply_send, .finish = dc__reply_finish};

static struct dc_reply *dc__reply_new(struct discord *dc, enum dc_kind kind)
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

/* After dispatch: when the handler did not answer yet, defer. */
static void dc__reply_dispatched(struct dc_reply *r)
{
    r->in_dispatch = false;
    if (r->kind != DC_KIND_MESSAGE && !r->acked) {
        int type = r->kind == DC_KIND_COMPONENT ? 6 : 5;
        struct dc_op *op = dc__op_new(DC_OP_CALLBACK, dc__callback(type, NULL), NULL);
        if (op != NULL) {
            op->next = r->head;
            r->head = op;
            if (r->tail == NULL)
                r->tail = op;
        }
        r->acked = true;
        r->deferred_public = r->kind == DC_KIND_COMMAND;
        if (r->finished && r->kind == DC_KIND_COMMAND)
            dc__reply_push(r, dc__op_new(DC_OP_DELETE, NULL, NULL)); /* finished without a word */
    }
    dc__reply_pump(r);
    r->first = NULL; /* the first response has gone out, or never will */
    dc__reply_maybe_free(r);
}

/* ---- interactions --------------------------------------------------------- */

static void dc__identity(const cJSON *d, struct invocation *inv)
{
    const cJSON *member = cJSON_GetObjectItemCaseSensitive(d, "member");
    const cJSON *user = cJSON_GetObjectItemCaseSensitive(member != NULL ? member : d, "user");
    if (user == NULL)
        user = cJSON_GetObjectItemCaseSensitive(d, "user");
    if (user == NULL)
        user = cJSON_GetObjectItemCaseSensitive(d, "author");
    dc__copy(inv->user_id, sizeof(inv->user_id), dc__str(user, "id"));
    const char *name = dc__str(user, "global_name");
    dc__copy(inv->user_name, sizeof(inv->user_name), name != NULL ? name : dc__str(user, "username"));
    const char *guild = dc__str(d, "guild_id");
    inv->platform = COMMAND_PLATFORM_DISCORD;
    inv->scope = guild != NULL ? COMMAND_SCOPE_GROUP : COMMAND_SCOPE_DM;
    dc__copy(inv->scope_id, sizeof(inv->scope_id), guild);
    const char *channel = dc__str(d, "channel_id");
    if (channel == NULL)
        channel = dc__str(cJSON_GetObjectItemCaseSensitive(d, "channel"), "id");
    dc__copy(inv->channel_id, sizeof(inv->channel_id), channel);
    const char *perms = dc__str(member, "permissions");
    uint64_t bits = perms != NULL ? strtoull(perms, NULL, 10) : 0;
    inv->admin = (bits & (DISCORD_PERM_MANAGE_GUILD | DISCORD_PERM_ADMINISTRATOR)) != 0;
}

/* Typed options from the interaction into inv, in the spec's order. */
static int dc__options(const struct command_spec *spec, const cJSON *opts, struct invocation *inv,
                       char *err, size_t errcap)
{
    const cJSON *o;
    cJSON_ArrayForEach(o, opts)
    {
        const char *name = dc__str(o, "name");
        int idx = name != NULL ? command_option_index(spec, name) : -1;
        if (idx < 0)
            continue;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "value");
        char text[64];
        const char *value = NULL;
        if (cJSON_IsString(v)) {
            value = v->valuestring;
        } else if (cJSON_IsBool(v)) {
            value = cJSON_IsTrue(v) ? "yes" : "no";
        } else if (cJSON_IsNumber(v)) {
            /* Discord's integers lie within +-2^53. Anything else keeps its
             * own spelling, which the option parser refuses by name. */
            int64_t n = 0;
            if (json_int64_get(v, -JSON_INT_EXACT, JSON_INT_EXACT, &n) == 0)
                snprintf(text, sizeof(text), "%" PRId64, n);
            else
                snprintf(text, sizeof(text), "%g", v->valuedouble);
            value = text;
        }
        if (value == NULL)
            continue;
        int rc = command_option_set_text(spec, (size_t)idx, value, inv, err, errcap);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void dc__refuse(struct dc_reply *r, const char *text)
{
    reply_text(&r->reply, true, "%s", text);
    reply_finish(&r->reply);
    dc__reply_dispatched(r);
}

static void dc__command(struct discord *dc, const cJSON *d, struct dc_reply *r)
{
    struct invocation inv;
    memset(&inv, 0, sizeof(inv));
    dc__identity(d, &inv);
    snprintf(inv.event_id, sizeof(inv.event_id), "discord:interaction:%s", r->id);
    inv.reply = &r->reply;
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(d, "data");
    const char *name = dc__str(data, "name");
    const cJSON *opts = cJSON_GetObjectItemCaseSensitive(data, "options");
    char full[64];
    dc__copy(full, sizeof(full), name);
    /* Subcommands (type 1) and groups (type 2) nest their options. */
    for (int depth = 0; depth < 2; depth++) {
        const cJSON *first = cJSON_IsArray(opts) ? opts->child : NULL;
        const cJSON *t = first != NULL ? cJSON_GetObjectItemCaseSensitive(first, "type") : NULL;
        if (!cJSON_IsNumber(t) || (t->valueint != 1 && t->valueint != 2))
            break;
        size_t n = strlen(full);
        snprintf(full + n, sizeof(full) - n, " %s", dc__str(first, "name") != NULL ? dc__str(first, "name") : "");
        opts = cJSON_GetObjectItemCaseSensitive(first, "options");
    }
    dc__copy(inv.name, sizeof(inv.name), full);
    const struct command_spec *spec = commands_find(inv.name);
    if (spec != NULL) {
        char err[256];
        if (dc__options(spec, opts, &inv, err, sizeof(err)) < 0) {
            invocation_clear(&inv);
            dc__refuse(r, err);
            return;
        }
    }
    dc->host.dispatch(dc->host.data, &inv, NULL);
    dc__reply_dispatched(r);
}

static void dc__component(struct discord *dc, const cJSON *d, struct dc_reply *r)
{
    struct invocation inv;
    memset(&inv, 0, sizeof(inv));
    dc__identity(d, &inv);
    snprintf(inv.event_id, sizeof(inv.event_id), "discord:interaction:%s", r->id);
    inv.reply = &r->reply;
    const char *ref = dc__str(cJSON_GetObjectItemCaseSensitive(d, "data"), "custom_id");
    if (ref == NULL || strlen(ref) > COMMAND_BUTTON_REF_MAX) {
        dc__refuse(r, MSG_ROUTER_BUTTON_INACTIVE);
        return;
    }
    dc__copy(inv.button_ref, sizeof(inv.button_ref), ref);
    dc->host.dispatch(dc->host.data, &inv, NULL);
    dc__reply_dispatched(r);
}

static void dc__autocomplete_done(const struct discord_rest_result *res, void *data)
{
    struct discord *dc = data;
    if (res->rc == 0 && res->status >= 200 && res->status < 300)
        dc->stats.acks++;
    else
        dc->stats.ack_failures++;
    dc->refs--;
    dc__maybe_free(dc);
}

static const cJSON *dc__focused(const cJSON *opts)
{
    const cJSON *o;
    cJSON_ArrayForEach(o, opts)
    {
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "focused")))
            return o;
        const cJSON *inner = dc__focused(cJSON_GetObjectItemCaseSensitive(o, "options"));
        if (inner != NULL)
            return inner;
    }
    return NULL;
}

static void dc__autocomplete(struct discord *dc, const cJSON *d, const char *id, const char *token,
                             struct dc_first *first)
{
    const cJSON *focused = dc__focused(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(d, "data"), "options"));
    cJSON *cb = dc__callback(8, cJSON_CreateObject());
    if (cb == NULL)
        return;
    cJSON *choices = cJSON_AddArrayToObject(cJSON_GetObjectItemCaseSensitive(cb, "data"), "choices");
    const char *name = dc__str(focused, "name");
    if (choices != NULL && name != NULL && strcmp(name, "model") == 0 && dc->models != NULL) {
        const char *typed = dc__str(focused, "value");
        size_t tlen = typed != NULL ? strlen(typed) : 0;
        const char *names[DC_AUTOCOMPLETE_MAX * 4];
        size_t n = dc->models(dc->models_data, names, sizeof(names) / sizeof(names[0]));
        size_t added = 0;
        for (size_t i = 0; i < n && added < DC_AUTOCOMPLETE_MAX; i++) {
            if (tlen > 0 && strncasecmp(names[i], typed, tlen) != 0 &&
                strcasestr(names[i], typed) == NULL)
                continue;
            cJSON *c = cJSON_CreateObject();
            if (c == NULL)
                break;
            cJSON_AddStringToObject(c, "name", names[i]);
            cJSON_AddStringToObject(c, "value", names[i]);
            cJSON_AddItemToArray(choices, c);
            added++;
        }
    }
    char *json = cJSON_PrintUnformatted(cb);
    cJSON_Delete(cb);
    if (json == NULL)
        return;
    if (first != NULL) {
        first->used = true;
        first->fn(first->data, json, strlen(json));
        dc->stats.acks++;
        free(json);
        return;
    }
    char path[700];
    snprintf(path, sizeof(path), "/interactions/%s/%s/callback", id, token);
    dc->refs++;
    if (discord_rest_request(dc->rest, "POST", path, json, NULL, 0, dc__autocomplete_done, dc) < 0)
        dc->refs--;
    free(json);
}

/* One interaction, from the gateway (first NULL) or over HTTP. */
static void dc__interaction(struct discord *dc, const char *json, size_t len, struct dc_first *first)
{
    cJSON *d = cJSON_ParseWithLength(json, len);
    if (d == NULL) {
        log_warn("discord.bad_event", "type=INTERACTION_CREATE reason=%s", "malformed JSON");
        return;
    }
    const char *id = dc__str(d, "id");
    const char *token = dc__str(d, "token");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(d, "type");
    if (id == NULL || token == NULL || !cJSON_IsNumber(type) || strlen(id) >= 32 ||
        strlen(token) >= 512) {
        log_warn("discord.bad_event", "type=INTERACTION_CREATE reason=%s", "missing id, token or type");
        goto out;
    }
    if (dc__seen(dc, id)) {
        dc->stats.duplicates++;
        goto out;
    }
    dc->stats.interactions++;
    if (type->valueint == 4) {
        dc__autocomplete(dc, d, id, token, first);
        goto out;
    }
    if (type->valueint != 2 && type->valueint != 3) {
        log_debug("discord.interaction_ignored", "type=%d", type->valueint);
        goto out;
    }
    struct dc_reply *r = dc__reply_new(dc, type->valueint == 2 ? DC_KIND_COMMAND : DC_KIND_COMPONENT);
    if (r == NULL)
        goto out;
    dc__copy(r->id, sizeof(r->id), id);
    dc__copy(r->token, sizeof(r->token), token);
    r->first = first;
    if (type->valueint == 2)
        dc__command(dc, d, r);
    else
        dc__component(dc, d, r);
out:
    cJSON_Delete(d);
}

/* ---- conversations in channels -------------------------------------------- */

static bool dc__mentions_bot(struct discord *dc, const cJSON *d)
{
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(d, "mentions"))
    {
        const char *id = dc__str(m, "id");
        if (id != NULL && strcmp(id, dc->bot_id) == 0)
            return true;
    }
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(d, "referenced_message");
    const char *author = dc__str(cJSON_GetObjectItemCaseSensitive(ref, "author"), "id");
    return author != NULL && strcmp(author, dc->bot_id) == 0;
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

static void dc__message(struct discord *dc, const char *json, size_t len)
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
    /* Without the message content intent the text may be empty: nothing to
     * continue with. */
    size_t cap = strlen(content) + 8;
    char *text = malloc(cap + 5);
    if (text == NULL)
        goto out;
    memcpy(text, "chat ", 5);
    dc__strip_mentions(dc, content, text + 5, cap);
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
    snprintf(inv.event_id, sizeof(inv.event_id), "discord:message:%s", id);
    inv.reply = &r->reply;
    dc->stats.messages++;
    dc->host.dispatch(dc->host.data, &inv, text);
    free(text);
    dc__reply_dispatched(r);
out:
    cJSON_Delete(d);
}

/* ---- gateway events -------------------------------------------------------- */

static void dc__event(struct discord_gateway *gw, const char *type, int64_t seq, const char *d,
                      size_t d_len, void *data)
{
    struct discord *dc = data;
    (void)gw;
    (void)seq;
    if (strcmp(type, "INTERACTION_CREATE") == 0) {
        dc__interaction(dc, d, d_len, NULL);
    } else if (strcmp(type, "MESSAGE_CREATE") == 0) {
        dc__message(dc, d, d_len);
    } else if (strcmp(type, "READY") == 0) {
        cJSON *j = cJSON_ParseWithLength(d, d_len);
        const char *id = dc__str(cJSON_GetObjectItemCaseSensitive(j, "user"), "id");
        if (id != NULL)
            dc__copy(dc->bot_id, sizeof(dc->bot_id), id);
        cJSON_Delete(j);
    }
}

static void dc__end(struct discord *dc)
{
    if (dc->ended || dc->closing)
        return;
    dc->ended = true;
    if (dc->host.ended != NULL)
        dc->host.ended(dc->host.data, &dc->adapter);
}

static void dc__gw_state(struct discord_gateway *gw, enum discord_gateway_state state,
                         int close_code, void *data)
{
    struct discord *dc = data;
    if (state != DISCORD_GW_STOPPED || close_code == 0)
        return;
    log_error("discord.shard_stopped", "shard=%u code=%d reason=%s", discord_gateway_shard(gw),
              close_code, discord_close_reason(close_code));
    if (++dc->gws_fatal == dc->ngws)
        dc__end(dc);
}

static void dc__gw_stopped(struct discord_gateway *gw, void *data)
{
    struct discord *dc = data;
    for (size_t i = 0; i < dc->ngws; i++) {
        if (dc->gws[i] == gw)
            dc->gws[i] = NULL;
    }
    dc->gws_alive--;
    dc->refs--;
    dc__maybe_free(dc);
}

static void dc__gateways_stop(struct discord *dc)
{
    for (size_t i = 0; i < dc->ngws; i++) {
        struct discord_gateway *gw = dc->gws[i];
        if (gw != NULL) {
            dc->gws[i] = NULL;
            discord_gateway_stop(gw, dc__gw_stopped, dc);
        }
    }
    dc->stats.shards_open = 0;
}

static const char *const dc_events[] = {"READY", "INTERACTION_CREATE", "MESSAGE_CREATE", NULL};

static int dc__gateways_start(struct discord *dc, const char *url, unsigned recommended,
                              unsigned concurrency)
{
    unsigned total = dc->shards_opt != 0 ? dc->shards_opt : (recommended != 0 ? recommended : 1);
    if (total > DC_MAX_SHARDS)
        total = DC_MAX_SHARDS;
    unsigned first = dc->shard_first > 0 ? (unsigned)dc->shard_first : 0;
    unsigned last = dc->shard_last < 0 ? total - 1 : (unsigned)dc->shard_last;
    if (first > last || last >= total) {
        log_error("discord.shard_range", "first=%u last=%u total=%u reason=%s", first, last, total,
                  "the range is outside the shard count");
        return HB_ECONFIG;
    }
    discord_identify_gate_init(&dc->gate, concurrency != 0 ? concurrency : 1);
    if (dc->identify_spacing_ms != 0)
        dc->gate.spacing_ms = dc->identify_spacing_ms;
    dc->ngws = last - first + 1;
    dc->gws = calloc(dc->ngws, sizeof(*dc->gws));
    if (dc->gws == NULL)
        return HB_ENOMEM;
    log_info("discord.shards", "first=%u last=%u total=%u max_concurrency=%u", first, last, total,
             concurrency);
    for (unsigned s = first; s <= last; s++) {
        struct discord_gateway_options go = {
            .url = url,
            .token = dc->token,
            .intents = dc->intents,
            .shard_id = s,
            .shard_count = total,
            .events = dc_events,
            .gate = &dc->gate,
            .on_event = dc__event,
            .on_state = dc__gw_state,
            .data = dc,
            .jitter = dc->jitter,
        };
        struct discord_gateway *gw = discord_gateway_new(dc->ws, &go);
        if (gw == NULL)
            return HB_ENOMEM;
        dc->gws[s - first] = gw;
        dc->gws_alive++;
        dc->refs++;
        int rc = discord_gateway_start(gw);
        if (rc < 0)
            return rc;
        dc->stats.shards_open++;
    }
    return 0;
}

static void dc__gateway_bot_get(struct discord *dc);

static void dc__retry_cb(uv_timer_t *t)
{
    struct discord *dc = t->data;
    if (!dc->stopping)
        dc__gateway_bot_get(dc);
}

static void dc__gateway_bot_done(const struct discord_rest_result *res, void *data)
{
    struct discord *dc = data;
    dc->refs--;
    if (dc->stopping || res->rc == HB_ECANCELED) {
        dc__maybe_free(dc);
        return;
    }
    if (res->rc == 0 && (res->status == 401 || res->status == 403)) {
        log_error("discord.unauthorized", "status=%d hint=%s", res->status,
                  "check [discord] token; the adapter stops");
        dc__end(dc);
        return;
    }
    cJSON *j = res->rc == 0 && res->status == 200 ? cJSON_ParseWithLength(res->body, res->body_len)
                                                   : NULL;
    const char *url = dc__str(j, "url");
    if (url == NULL) {
        cJSON_Delete(j);
        log_warn("discord.gateway_bot_failed", "status=%d error=%s retry_ms=%llu", res->status,
                 res->rc != 0 ? hb_strerror(res->rc) : "unexpected answer",
                 (unsigned long long)dc->retry_ms);
        uv_timer_start(&dc->retry, dc__retry_cb, dc->retry_ms, 0);
        dc->retry_ms = dc->retry_ms * 2 > DC_RETRY_MAX_MS ? DC_RETRY_MAX_MS : dc->retry_ms * 2;
        return;
    }
    const cJSON *shards = cJSON_GetObjectItemCaseSensitive(j, "shards");
    const cJSON *conc = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(j, "session_start_limit"), "max_concurrency");
    unsigned recommended = cJSON_IsNumber(shards) && shards->valueint > 0 ? (unsigned)shards->valueint : 1;
    unsigned concurrency = cJSON_IsNumber(conc) && conc->valueint > 0 ? (unsigned)conc->valueint : 1;
    free(dc->resolved_url);
    dc->resolved_url = strdup(url);
    cJSON_Delete(j);
    const char *use = dc->gateway_url != NULL ? dc->gateway_url : dc->resolved_url;
    int rc = use != NULL ? dc__gateways_start(dc, use, recommended, concurrency) : HB_ENOMEM;
    if (rc < 0) {
        log_error("discord.start_failed", "error=%s", hb_strerror(rc));
        dc__end(dc);
    }
}

static void dc__gateway_bot_get(struct discord *dc)
{
    dc->refs++;
    if (discord_rest_request(dc->rest, "GET", "/gateway/bot", NULL, NULL, 0, dc__gateway_bot_done,
                             dc) < 0) {
        dc->refs--;
        uv_timer_start(&dc->retry, dc__retry_cb, dc->retry_ms, 0);
    }
}

/* ---- application commands ------------------------------------------------- */

static void dc__commands_stored(int rc, const char *value, void *data)
{
    struct discord *dc = data;
    (void)value;
    if (rc < 0)
        log_warn("discord.commands_hash", "error=%s note=%s", hb_strerror(rc),
                 "the next start overwrites the commands again");
    dc->refs--;
    dc__maybe_free(dc);
}

static void dc__commands_key(const struct discord *dc, char *key, size_t cap)
{
    snprintf(key, cap, "commands:%s:%s", dc->app_id,
             dc->guild_id != NULL ? dc->guild_id : "global");
}

static void dc__commands_put_done(const struct discord_rest_result *res, void *data)
{
    struct discord *dc = data;
    if (res->rc == 0 && res->status >= 200 && res->status < 300) {
        dc->stats.commands_put++;
        dc->stats.commands_current = true;
        log_info("discord.commands_registered", "scope=%s", dc->guild_id != NULL ? dc->guild_id : "global");
        char key[160];
        dc__commands_key(dc, key, sizeof(key));
        if (dc->store != NULL && !dc->closing &&
            state_put(dc->store, "discord", key, dc->commands_hash, dc__commands_stored, dc) == 0) {
            return; /* the ref passes to the store callback */
        }
    } else if (res->rc != HB_ECANCELED) {
        char body[300];
        snprintf(body, sizeof(body), "%.*s", (int)(res->body_len < 200 ? res->body_len : 200),
                 res->body);
        log_error("discord.commands_failed", "status=%d error=%s body=%s", res->status,
                  res->rc != 0 ? hb_strerror(res->rc) : "http status", body);
    }
    dc->refs--;
    dc__maybe_free(dc);
}

static void dc__commands_put(struct discord *dc)
{
    char path[256];
    if (dc->guild_id != NULL)
        snprintf(path, sizeof(path), "/applications/%s/guilds/%s/commands", dc->app_id, dc->guild_id);
    else
        snprintf(path, sizeof(path), "/applications/%s/commands", dc->app_id);
    if (discord_rest_request(dc->rest, "PUT", path, dc->commands_json, NULL, 0,
                             dc__commands_put_done, dc) < 0) {
        dc->refs--;
        dc__maybe_free(dc);
    }
}

static void dc__commands_loaded(int rc, const char *value, void *data)
{
    struct discord *dc = data;
    if (dc->stopping) {
        dc->refs--;
        dc__maybe_free(dc);
        return;
    }
    if (rc == 0 && value != NULL && strcmp(value, dc->commands_hash) == 0) {
        log_info("discord.commands_unchanged", "action=%s", "skipping the overwrite");
        dc->stats.commands_current = true;
        dc->refs--;
        dc__maybe_free(dc);
        return;
    }
    dc__commands_put(dc); /* keeps the ref */
}

static void dc__commands_sync(struct discord *dc)
{
    size_t n;
    const struct command_spec *table = commands_table(&n);
    dc->commands_json = discord_appcmd_render(table, n);
    if (dc->commands_json == NULL)
        return;
    discord_appcmd_hash(dc->commands_json, dc->guild_id != NULL ? dc->guild_id : "global",
                        dc->commands_hash);
    dc->refs++;
    char key[160];
    dc__commands_key(dc, key, sizeof(key));
    if (dc->store == NULL ||
        state_get(dc->store, "discord", key, dc__commands_loaded, dc) < 0)
        dc__commands_put(dc);
}

/* ---- lifecycle -------------------------------------------------------------- */

static void dc__free(struct discord *dc)
{
    void (*cb)(void *) = dc->close_cb;
    void *data = dc->close_data;
    free(dc->gws);
    free(dc->resolved_url);
    free(dc->commands_json);
    free(dc->app_id);
    free(dc->api_base);
    free(dc->gateway_url);
    free(dc->guild_id);
    if (dc->token != NULL) {
        memset(dc->token, 0, strlen(dc->token));
        free(dc->token);
    }
    free(dc);
    if (cb != NULL)
        cb(data);
}

static void dc__rest_closed(void *data)
{
    struct discord *dc = data;
    dc->rest = NULL;
    dc->rest_closed = true;
    dc->refs--;
    dc__maybe_free(dc);
}

static void dc__handle_closed(uv_handle_t *h)
{
    struct discord *dc = h->data;
    dc->handles--;
    dc__maybe_free(dc);
}

/* Once only the rest client (and its ref) is left, close it; once that
 * and every handle is gone, free. */
static void dc__maybe_free(struct discord *dc)
{
    if (!dc->closing)
        return;
    if (dc->refs == 1 && dc->rest != NULL && !dc->rest_closed) {
        struct discord_rest *rest = dc->rest;
        dc->rest = NULL;
        discord_rest_close(rest, dc__rest_closed, dc);
        return;
    }
    if (dc->refs == 0 && dc->handles == 0)
        dc__free(dc);
}

static int dc__start(struct adapter *a)
{
    struct discord *dc = a->impl;
    if (dc->started)
        return HB_ESTATE;
    dc->started = true;
    log_info("discord.starting", "application=%s commands=%s", dc->app_id,
             dc->guild_id != NULL ? dc->guild_id : "global");
    dc__commands_sync(dc);
    dc__gateway_bot_get(dc);
    return 0;
}

static void dc__stop(struct adapter *a)
{
    struct discord *dc = a->impl;
    if (dc->stopping)
        return;
    dc->stopping = true;
    uv_timer_stop(&dc->retry);
    dc__gateways_stop(dc);
}

static void dc__close(struct adapter *a, void (*cb)(void *data), void *data)
{
    struct discord *dc = a->impl;
    dc__stop(a);
    dc->closing = true;
    dc->close_cb = cb;
    dc->close_data = data;
    if (!uv_is_closing((uv_handle_t *)&dc->retry))
        uv_close((uv_handle_t *)&dc->retry, dc__handle_closed);
    dc->refs--; /* the open reference; the rest client's stays until the end */
    dc__maybe_free(dc);
}

/* ---- notices: messages no interaction asked for ---------------------- */

/* One notice on its way: a DM channel to open when the member's channel is
 * not known, then the text in pieces of at most DC_TEXT_MAX characters,
 * one after the other so they arrive in order. Requests go through the
 * rest client, which paces them by Discord's buckets like every reply. */
struct dc_notice {
    struct discord *dc;
    char channel_id[COMMAND_ID_MAX]; /* where it is posted; "" until the DM is open */
    char user_id[COMMAND_ID_MAX];    /* the member, for logs and the DM */
    char *text;          /* owned copy of the message text */
    size_t off;          /* bytes of text already posted */
};

static void dc__notice_free(struct dc_notice *n)
{
    struct discord *dc = n->dc;
    free(n->text);
    free(n);
    dc->refs--;
    dc__maybe_free(dc);
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
    int rc = json != NULL ? discord_rest_request(dc->rest, "POST", path, json, NULL, 0,
                                                 dc__notice_posted, n)
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
static int dc__notify(struct adapter *a, const struct notify_target *to,
                      const struct reply_msg *msg)
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

static const struct adapter_ops dc_ops = {.name = "discord",
                                          .start = dc__start,
                                          .stop = dc__stop,
                                          .close = dc__close,
                                          .notify = dc__notify};

static char *dc__dup_or_null(const char *s)
{
    return s != NULL && s[0] != '\0' ? strdup(s) : NULL;
}

struct adapter *discord_new(uv_loop_t *loop, const struct discord_options *opt,
                            const struct adapter_host *host)
{
    if (opt->token == NULL || opt->token[0] == '\0' || opt->application_id == NULL ||
        opt->application_id[0] == '\0' || opt->http == NULL || opt->ws == NULL) {
        log_error("discord.options", "reason=%s", "token, application_id, http and ws are needed");
        return NULL;
    }
    struct discord *dc = calloc(1, sizeof(*dc));
    if (dc == NULL)
        return NULL;
    dc->adapter.ops = &dc_ops;
    dc->adapter.impl = dc;
    dc->loop = loop;
    dc->host = *host;
    log_secret_add(opt->token);
    dc->token = strdup(opt->token);
    dc->app_id = strdup(opt->application_id);
    dc->api_base = strdup(opt->api_base != NULL ? opt->api_base : "https://discord.com/api/v10");
    dc->gateway_url = dc__dup_or_null(opt->gateway_url);
    dc->guild_id = dc__dup_or_null(opt->guild_id);
    dc->intents = opt->intents != 0 ? opt->intents : DISCORD_INTENTS_DEFAULT;
    dc->shards_opt = opt->shards;
    dc->shard_first = opt->shard_first;
    dc->shard_last = opt->shard_last;
    dc->http = opt->http;
    dc->ws = opt->ws;
    dc->store = opt->store;
    dc->models = opt->models;
    dc->models_data = opt->models_data;
    dc->edit_interval_ms = opt->edit_interval_ms != 0 ? opt->edit_interval_ms : 1500;
    dc->identify_spacing_ms = opt->identify_spacing_ms;
    dc->jitter = opt->jitter;
    dc->retry_ms = DC_RETRY_MIN_MS;
    if (dc->token == NULL || dc->app_id == NULL || dc->api_base == NULL ||
        (opt->gateway_url != NULL && opt->gateway_url[0] != '\0' && dc->gateway_url == NULL) ||
        (opt->guild_id != NULL && opt->guild_id[0] != '\0' && dc->guild_id == NULL))
        goto fail;
    struct discord_rest_options ro = {
        .api_base = dc->api_base, .token = dc->token, .global_per_s = opt->global_per_s};
    dc->rest = discord_rest_new(loop, dc->http, &ro);
    if (dc->rest == NULL)
        goto fail;
    uv_timer_init(loop, &dc->retry);
    dc->retry.data = dc;
    dc->handles = 1;
    dc->refs = 2; /* the open reference and the rest client */
    return &dc->adapter;
fail:
    dc->close_cb = NULL;
    dc__free(dc);
    return NULL;
}

void discord_interaction_feed(struct adapter *a, const char *json, size_t len,
                              discord_respond_fn respond, void *data)
{
    struct dc_first first = {.fn = respond, .data = data, .used = false};
    if (a->ops == &dc_ops) {
        struct discord *dc = a->impl;
        if (!dc->closing)
            dc__interaction(dc, json, len, &first);
    }
    if (!first.used)
        respond(data, NULL, 0);
}

void discord_adapter_stats(const struct adapter *a, struct discord_adapter_stats *out)
{
    const struct discord *dc = a->impl;
    *out = dc->stats;
}

bool discord_adapter_shard(const struct adapter *a, size_t i, unsigned *shard_id,
                           struct discord_gateway_status *out)
{
    const struct discord *dc = a->impl;
    if (i >= dc->ngws || dc->gws == NULL || dc->gws[i] == NULL)
        return false;
    *shard_id = discord_gateway_shard(dc->gws[i]);
    discord_gateway_status(dc->gws[i], out);
    return true;
}
