/* The Discord adapter's notices: messages no interaction asked for (a
 * payment booked, a generation refunded at restart). */
#include "adapters/discord/discord_internal.h"

#include "adapters/discord/rest.h"
#include "base/error.h"
#include "base/log.h"
#include "core/cluster.h"
#include "core/core.h"
#include "core/outbox.h"

#include <inttypes.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- notices: messages no interaction asked for ---------------------- */

/* One notice on its way: a DM channel to open when the member's channel is
 * not known, then the text in pieces of at most DC_TEXT_MAX characters,
 * one after the other so they arrive in order. Requests go through the
 * rest client, which paces them by Discord's buckets like every reply.
 *
 * With a store, the notice is a row of the outbox (channel "discord", or
 * "discord/<run id>" with other daemons: dc__outbox_channel), body
 * {"u":user,"c":channel,"t":text,"b":[{"l":label,"r":ref}],
 * "pn":image name,"pt":image type}, the image's bytes beside it) written
 * before anything is sent and removed once every piece is posted; rows
 * left by a kill are sent at the next start (with other daemons, by one
 * that takes them over). A failure (the network, a 5xx, a member who
 * closed their DMs: 403) is tried again with back-off, then the row is
 * kept marked undeliverable, never dropped silently. A kill between two
 * pieces of a long notice repeats the pieces already posted. */
struct dc_notice {
    struct discord *dc;
    char channel_id[COMMAND_ID_MAX]; /* where it is posted; "" until the DM is open */
    char user_id[COMMAND_ID_MAX];    /* the member, for logs and the DM */
    char *text;                      /* owned copy of the message text */
    size_t off;                      /* bytes of text already posted */
    size_t off_next;                 /* ... once the piece in flight is */
    int64_t row;                     /* its outbox row, 0: none */
    struct reply_button *buttons;    /* shown under the last piece (labels owned) */
    size_t nbuttons;
    unsigned char *image; /* uploaded with the last piece (owned), or NULL */
    size_t image_len;
    char image_name[64]; /* its file name ("winner.png") */
    char image_mime[32]; /* "image/png" */
    unsigned attempts;   /* failed tries so far */
    bool waiting;        /* the retry timer runs */
    uv_timer_t retry;
    struct dc_notice *next, *prev; /* dc->notices */
};

static void dc__notice_closed(uv_handle_t *h)
{
    struct dc_notice *n = h->data;
    struct discord *dc = n->dc;
    for (size_t i = 0; i < n->nbuttons; i++)
        free((char *)n->buttons[i].label);
    free(n->buttons);
    free(n->image);
    free(n->text);
    free(n);
    dc->handles--;
    dc__maybe_closed(dc);
}

static void dc__notice_free(struct dc_notice *n)
{
    struct discord *dc = n->dc;
    if (n->prev != NULL)
        n->prev->next = n->next;
    else
        dc->notices = n->next;
    if (n->next != NULL)
        n->next->prev = n->prev;
    uv_close((uv_handle_t *)&n->retry, dc__notice_closed);
}

static struct dc_notice *dc__notice_new(struct discord *dc, const char *text)
{
    struct dc_notice *n = calloc(1, sizeof(*n));
    if (n == NULL || (n->text = strdup(text)) == NULL) {
        free(n);
        return NULL;
    }
    n->dc = dc;
    uv_timer_init(dc->loop, &n->retry);
    n->retry.data = n;
    /* Its timer keeps the adapter from freeing; it holds no reference, so
     * that closing does not wait for its requests: the rest client cancels
     * them when it closes, and the rows stay for the next start. */
    dc->handles++;
    n->next = dc->notices;
    if (dc->notices != NULL)
        dc->notices->prev = n;
    dc->notices = n;
    return n;
}

static void dc__notice_begin(struct dc_notice *n);
static void dc__notice_next(struct dc_notice *n);

static struct cluster *dc__cluster(const struct discord *dc)
{
    return dc->core != NULL ? dc->core->cluster : NULL;
}

/* The channel of this run's rows (outbox_channel_name): "discord" alone on
 * the ledger, where the next start sends what a kill left. */
static const char *dc__outbox_channel(struct discord *dc)
{
    if (dc->outbox_channel[0] == '\0')
        outbox_channel_name(dc->outbox_channel, sizeof(dc->outbox_channel), DC_OUTBOX_CHANNEL,
                            dc__cluster(dc));
    return dc->outbox_channel;
}

/* Keep a button (a copy of its label and ref). Returns 0 or HB_ENOMEM. */
static int dc__notice_button(struct dc_notice *n, const char *label, const char *ref)
{
    if (label == NULL || ref == NULL || n->nbuttons >= DC_NOTICE_BUTTONS_MAX)
        return 0;
    if (n->buttons == NULL &&
        (n->buttons = calloc(DC_NOTICE_BUTTONS_MAX, sizeof(*n->buttons))) == NULL)
        return HB_ENOMEM;
    struct reply_button *b = &n->buttons[n->nbuttons];
    if ((b->label = strdup(label)) == NULL)
        return HB_ENOMEM;
    snprintf(b->ref, sizeof(b->ref), "%s", ref);
    n->nbuttons++;
    return 0;
}

static void dc__notice_retry(uv_timer_t *t)
{
    struct dc_notice *n = t->data;
    n->waiting = false;
    if (n->dc->closing)
        return;
    dc__notice_begin(n);
}

/* The notice went out whole: its row goes. */
static void dc__notice_sent(struct dc_notice *n)
{
    struct discord *dc = n->dc;
    if (n->row != 0 && dc->store != NULL &&
        outbox_remove(dc->store, dc__outbox_channel(dc), n->row, NULL, NULL) < 0)
        log_warn("discord.outbox_error", "row=%" PRId64 " op=remove", n->row);
    dc__notice_free(n);
}

/* A step failed: try again later, or keep it as undeliverable. */
static void dc__notice_failed(struct dc_notice *n, const struct discord_rest_result *res,
                              const char *step)
{
    struct discord *dc = n->dc;
    if (res->rc == HB_ECANCELED || dc->closing) {
        dc__notice_free(n); /* closing: its row stays for the next start */
        return;
    }
    log_warn("discord.notify_failed", "step=%s user=%s channel=%s status=%d error=%s attempts=%u",
             step, n->user_id, n->channel_id, res->status,
             res->rc == 0 ? "http status" : hb_strerror(res->rc), n->attempts + 1);
    bool again = res->rc != 0 || res->status >= 500 || res->status == 403 || res->status == 429;
    if (again && ++n->attempts < DC_NOTICE_ATTEMPTS) {
        uint64_t d = dc->notice_backoff_ms << (n->attempts < 10 ? n->attempts - 1 : 9);
        n->waiting = true;
        uv_timer_start(&n->retry, dc__notice_retry, d, 0);
        return;
    }
    const char *reason = res->status == 403   ? "refused: 403 (the member cannot be messaged)"
                         : res->rc != 0       ? "given up after network errors"
                         : res->status >= 500 ? "given up after 5xx"
                                              : "refused by Discord";
    log_warn("discord.notice_undeliverable", "user=%s channel=%s row=%" PRId64 " reason=%s",
             n->user_id, n->channel_id, n->row, reason);
    if (n->row != 0 && dc->store != NULL &&
        outbox_fail(dc->store, dc__outbox_channel(dc), n->row, reason, NULL, NULL) < 0)
        log_warn("discord.outbox_error", "row=%" PRId64 " op=fail", n->row);
    dc__notice_free(n);
}

static bool dc__notice_ok(const struct discord_rest_result *res)
{
    return res->rc == 0 && res->status >= 200 && res->status < 300;
}

static void dc__notice_posted(const struct discord_rest_result *res, void *data)
{
    struct dc_notice *n = data;
    if (!dc__notice_ok(res)) {
        dc__notice_failed(n, res, "post");
        return;
    }
    n->off = n->off_next;
    n->attempts = 0;
    dc__notice_next(n);
}

static void dc__notice_dm_opened(const struct discord_rest_result *res, void *data)
{
    struct dc_notice *n = data;
    if (!dc__notice_ok(res)) {
        dc__notice_failed(n, res, "open dm");
        return;
    }
    cJSON *j = cJSON_ParseWithLength(res->body, res->body_len);
    dc__copy(n->channel_id, sizeof(n->channel_id), dc__str(j, "id"));
    cJSON_Delete(j);
    if (n->channel_id[0] == '\0') {
        struct discord_rest_result bad = {.rc = 0, .status = 200};
        dc__notice_failed(n, &bad, "open dm (no channel id)");
        return;
    }
    dc__notice_next(n);
}

/* Post the next piece, or end when all are out. */
static void dc__notice_next(struct dc_notice *n)
{
    struct discord *dc = n->dc;
    const char *text = n->text + n->off;
    if (*text == '\0') {
        dc__notice_sent(n);
        return;
    }
    if (dc->rest == NULL || dc->closing) {
        dc__notice_free(n);
        return;
    }
    size_t cut = discord_text_cut(text, DC_TEXT_MAX);
    n->off_next = n->off + cut;
    /* The buttons and the image go with the last piece. */
    bool last = text[cut] == '\0';
    struct reply_image image = {
        .data = n->image, .len = n->image_len, .mime = n->image_mime, .filename = n->image_name};
    struct reply_msg msg = {.stage = REPLY_FINAL,
                            .buttons = n->buttons,
                            .nbuttons = n->nbuttons,
                            .image = n->image != NULL ? &image : NULL};
    bool extras = last && (n->nbuttons > 0 || n->image != NULL);
    cJSON *m = dc__message_json(text, cut, false, &msg, extras);
    char *json = m != NULL ? cJSON_PrintUnformatted(m) : NULL;
    cJSON_Delete(m);
    char path[COMMAND_ID_MAX + 32];
    snprintf(path, sizeof(path), "/channels/%s/messages", n->channel_id);
    struct discord_rest_file file = {
        .filename = n->image_name, .mime = n->image_mime, .data = n->image, .len = n->image_len};
    bool upload = last && n->image != NULL;
    int rc = json != NULL
                 ? discord_rest_request(dc->rest, "POST", path, json, upload ? &file : NULL,
                                        upload ? 1 : 0, dc__notice_posted, n)
                 : HB_ENOMEM;
    free(json);
    if (rc < 0) {
        struct discord_rest_result res = {.rc = rc};
        dc__notice_failed(n, &res, "post");
    }
}

/* Open the member's DM channel when no channel is known (Discord answers
 * an open DM channel with the same id every time), then post. */
static void dc__notice_begin(struct dc_notice *n)
{
    struct discord *dc = n->dc;
    if (n->channel_id[0] != '\0') {
        dc__notice_next(n);
        return;
    }
    if (dc->rest == NULL || dc->closing) {
        dc__notice_free(n);
        return;
    }
    char json[COMMAND_ID_MAX + 32];
    snprintf(json, sizeof(json), "{\"recipient_id\":\"%s\"}", n->user_id);
    int rc = discord_rest_request(dc->rest, "POST", "/users/@me/channels", json, NULL, 0,
                                  dc__notice_dm_opened, n);
    if (rc < 0) {
        struct discord_rest_result res = {.rc = rc};
        dc__notice_failed(n, &res, "open dm");
    }
}

static void dc__notice_stored(int rc, void *data)
{
    struct dc_notice *n = data;
    if (rc < 0) {
        /* Sent all the same, rather than never; the failure is logged. */
        log_error("discord.outbox_error", "row=%" PRId64 " op=put error=%s", n->row,
                  hb_strerror(rc));
        n->row = 0;
    }
    if (n->dc->closing) {
        dc__notice_free(n);
        return;
    }
    dc__notice_begin(n);
}

/* The rows a kill left: each sent again, as at first. */
static void dc__outbox_loaded(int rc, const struct outbox_row *rows, size_t n, void *data)
{
    struct discord *dc = data;
    dc->refs--;
    if (rc < 0 && rc != HB_ESCHEMA)
        log_error("discord.outbox_error", "op=load error=%s", hb_strerror(rc));
    size_t sent = 0;
    for (size_t i = 0; rc == 0 && i < n && !dc->closing; i++) {
        cJSON *j = cJSON_Parse(rows[i].body);
        const char *text = dc__str(j, "t");
        struct dc_notice *no = text != NULL && text[0] != '\0' ? dc__notice_new(dc, text) : NULL;
        if (no == NULL) {
            log_warn("discord.outbox_row_skipped", "row=%" PRId64 " problem=unreadable",
                     rows[i].id);
            cJSON_Delete(j);
            continue;
        }
        no->row = rows[i].id;
        const cJSON *b;
        cJSON_ArrayForEach(b, cJSON_GetObjectItemCaseSensitive(j, "b"))
        {
            if (dc__notice_button(no, dc__str(b, "l"), dc__str(b, "r")) < 0)
                break;
        }
        dc__copy(no->user_id, sizeof(no->user_id), dc__str(j, "u"));
        dc__copy(no->channel_id, sizeof(no->channel_id), dc__str(j, "c"));
        if (rows[i].bytes != NULL && rows[i].len > 0 && (no->image = malloc(rows[i].len)) != NULL) {
            memcpy(no->image, rows[i].bytes, rows[i].len);
            no->image_len = rows[i].len;
            const char *name = dc__str(j, "pn"), *mime = dc__str(j, "pt");
            dc__copy(no->image_name, sizeof(no->image_name),
                     name != NULL && name[0] != '\0' ? name : "image.png");
            dc__copy(no->image_mime, sizeof(no->image_mime),
                     mime != NULL && mime[0] != '\0' ? mime : "image/png");
        }
        cJSON_Delete(j);
        dc__notice_begin(no);
        sent++;
    }
    if (sent > 0)
        log_info("discord.outbox_replay", "rows=%zu", sent);
    dc__maybe_closed(dc);
}

/* Takes over the rows of runs that are gone (outbox_takeover) submitted:
 * each holds a reference until its rows are loaded (dc__outbox_loaded). */
static void dc__outbox_listed(size_t takes, void *data)
{
    struct discord *dc = data;
    dc->refs += takes;
    dc->refs--;
    dc->outbox_looking = false;
    dc__maybe_closed(dc);
}

static void dc__outbox_look(uv_timer_t *t)
{
    struct discord *dc = t->data;
    struct cluster *c = dc__cluster(dc);
    if (dc->closing || dc->outbox_looking || c == NULL || !cluster_judging(c))
        return;
    dc->outbox_looking = true;
    dc->refs++;
    if (outbox_takeover(dc->store, c, DC_OUTBOX_CHANNEL, dc__outbox_channel(dc),
                        DC_OUTBOX_REPLAY_MAX, dc__outbox_loaded, dc__outbox_listed, dc) < 0) {
        dc->refs--;
        dc->outbox_looking = false;
        log_error("discord.outbox_error", "op=takeover error=cannot submit");
    }
}

void dc__outbox_replay(struct discord *dc)
{
    if (dc->store == NULL)
        return;
    struct cluster *c = dc__cluster(dc);
    if (c != NULL) {
        /* At once (once this daemon may judge other runs gone), then as
         * often as the heartbeat reads the runs. */
        uv_timer_start(&dc->outbox_timer, dc__outbox_look, 0, outbox_look_ms(c));
        return;
    }
    dc->refs++;
    if (outbox_list(dc->store, dc__outbox_channel(dc), DC_OUTBOX_REPLAY_MAX, dc__outbox_loaded,
                    dc) < 0) {
        dc->refs--;
        log_error("discord.outbox_error", "op=load error=cannot submit");
    }
}

void dc__notices_close(struct discord *dc)
{
    /* Those waiting to try again stop here; their rows stay. Those with
     * the rest client end when it cancels them. */
    struct dc_notice *n = dc->notices;
    while (n != NULL) {
        struct dc_notice *next = n->next;
        if (n->waiting) {
            uv_timer_stop(&n->retry);
            dc__notice_free(n);
        }
        n = next;
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
    struct dc_notice *n = dc__notice_new(dc, msg->text);
    if (n == NULL)
        return HB_ENOMEM;
    dc__copy(n->user_id, sizeof(n->user_id), to->user_id);
    if (channel)
        dc__copy(n->channel_id, sizeof(n->channel_id), to->channel_id);
    for (size_t i = 0; i < msg->nbuttons; i++) {
        if (dc__notice_button(n, msg->buttons[i].label, msg->buttons[i].ref) < 0)
            break;
    }
    if (msg->image != NULL && msg->image->data != NULL && msg->image->len > 0) {
        n->image = malloc(msg->image->len);
        if (n->image != NULL) {
            memcpy(n->image, msg->image->data, msg->image->len);
            n->image_len = msg->image->len;
            dc__copy(n->image_name, sizeof(n->image_name),
                     msg->image->filename != NULL ? msg->image->filename : "image.png");
            dc__copy(n->image_mime, sizeof(n->image_mime),
                     msg->image->mime != NULL ? msg->image->mime : "image/png");
        }
    }
    if (dc->store == NULL) {
        dc__notice_begin(n);
        return 0;
    }
    /* Nothing goes before its row is durable. */
    n->row = outbox_id_new();
    cJSON *body = cJSON_CreateObject();
    char *json = NULL;
    if (body != NULL && cJSON_AddStringToObject(body, "u", n->user_id) != NULL &&
        cJSON_AddStringToObject(body, "c", channel ? n->channel_id : "") != NULL &&
        cJSON_AddStringToObject(body, "t", n->text) != NULL &&
        (n->image == NULL || (cJSON_AddStringToObject(body, "pn", n->image_name) != NULL &&
                              cJSON_AddStringToObject(body, "pt", n->image_mime) != NULL))) {
        cJSON *bs = n->nbuttons > 0 ? cJSON_AddArrayToObject(body, "b") : NULL;
        for (size_t i = 0; bs != NULL && i < n->nbuttons; i++) {
            cJSON *b = cJSON_CreateObject();
            if (b == NULL)
                break;
            cJSON_AddStringToObject(b, "l", n->buttons[i].label);
            cJSON_AddStringToObject(b, "r", n->buttons[i].ref);
            cJSON_AddItemToArray(bs, b);
        }
        json = cJSON_PrintUnformatted(body);
    }
    cJSON_Delete(body);
    int64_t chat = channel ? strtoll(n->channel_id, NULL, 10) : 0;
    int rc = json != NULL ? outbox_put_bytes(dc->store, dc__outbox_channel(dc), n->row, chat, json,
                                             n->image, n->image_len, dc__notice_stored, n)
                          : HB_ENOMEM;
    free(json);
    if (rc < 0) {
        n->row = 0;
        log_error("discord.outbox_error", "op=put error=%s", hb_strerror(rc));
        dc__notice_begin(n);
    }
    return 0;
}
