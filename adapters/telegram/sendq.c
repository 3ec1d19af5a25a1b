/* The send queue: one FIFO per chat, one call in flight per chat, paced.
 *
 * Telegram allows about one message a second in a chat, twenty a minute in
 * a group and thirty a second overall, and answers 429 with retry_after
 * beyond that. Each chat keeps the time its next call may start; a global
 * token bucket spreads calls over the second; one timer wakes the queue
 * when the earliest waiting chat is due. A call that meets 429 stays at the
 * head of its chat's queue and is tried again after retry_after, so order
 * holds and nothing is dropped. Edits of the same message that pile up
 * behind the pace collapse into the newest, which is what streaming needs. */
#include "adapters/telegram/telegram_internal.h"

#include "base/error.h"
#include "base/log.h"
#include "base/metrics.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TG_SEND_ATTEMPTS 6    /* network errors and 5xx before a send is given up */
#define TG_GLOBAL_429_CHATS 3 /* chats limited within one second that pause everything */

struct tg_chat {
    int64_t id;      /* the key: the chat the replies were made for */
    int64_t send_to; /* where calls go (differs after a group migrated) */
    bool group;
    struct tg_op *head, *tail;
    bool busy;  /* the head is in flight */
    bool ready; /* in the ready list */
    struct tg_chat *rnext;
    struct tg_chat *hnext;
    struct tg_chat *inext, *iprev; /* the idle list */
    bool idle;
    uint64_t next_ms;    /* earliest start of the next call (loop time) */
    uint64_t limited_ms; /* last 429, for the global heuristic */
};

/* ---- reply handles ---------------------------------------------------- */

/* The queue holds a reference to a reply handle for each of its sends
 * (reply.c makes the handle and holds one itself until it is finished). */
void tg_reply_unref(struct tg_reply *r)
{
    if (r->finished && r->unsettled)
        tg_reply_settle(r);
    if (--r->refs > 0)
        return;
    /* Let go without a finish (a payment answered nothing): its update
     * caused nothing more. */
    if (r->unsettled)
        tg_reply_settle(r);
    struct tg *tg = r->tg;
    free(r->callback_id);
    free(r);
    tg_unref(tg);
}

/* A reply is settled once it finished or queued a send: what its update
 * caused is then in the queue (and goes to the outbox before the update
 * is confirmed). A generation's later sends are written ahead to the
 * outbox, since their update is confirmed by then. */
void tg_reply_settle(struct tg_reply *r)
{
    struct tg *tg = r->tg;
    if (!r->unsettled)
        return;
    r->unsettled = false;
    if (r->uprev != NULL)
        r->uprev->unext = r->unext;
    else
        tg->unsettled_head = r->unext;
    if (r->unext != NULL)
        r->unext->uprev = r->uprev;
    else
        tg->unsettled_tail = r->uprev;
    r->unext = r->uprev = NULL;
    if (--tg->unsettled == 0)
        tg_poll_kick(tg);
}

void tg_reply_track(struct tg_reply *r)
{
    struct tg *tg = r->tg;
    r->update_id = tg->current_update;
    if (r->update_id == 0)
        return;
    r->unsettled = true;
    r->uprev = tg->unsettled_tail;
    if (tg->unsettled_tail != NULL)
        tg->unsettled_tail->unext = r;
    else
        tg->unsettled_head = r;
    tg->unsettled_tail = r;
    tg->unsettled++;
}

/* ---- the queue -------------------------------------------------------- */

void tg_sendq_op_free(struct tg_op *op)
{
    if (op->reply != NULL)
        tg_reply_unref(op->reply);
    cJSON_Delete(op->body);
    free(op->photo);
    free(op->photo_name);
    free(op->photo_mime);
    free(op);
}

static size_t sq__hash(const struct tg *tg, int64_t id)
{
    uint64_t x = (uint64_t)id * 0x9E3779B97F4A7C15ULL;
    return (size_t)(x >> 32) & (tg->nbuckets - 1);
}

static void sq__grow(struct tg *tg)
{
    size_t n = tg->nbuckets * 2;
    struct tg_chat **b = calloc(n, sizeof(*b));
    if (b == NULL)
        return;
    struct tg_chat **old = tg->buckets;
    size_t oldn = tg->nbuckets;
    tg->buckets = b;
    tg->nbuckets = n;
    for (size_t i = 0; i < oldn; i++) {
        struct tg_chat *c = old[i];
        while (c != NULL) {
            struct tg_chat *next = c->hnext;
            size_t h = sq__hash(tg, c->id);
            c->hnext = b[h];
            b[h] = c;
            c = next;
        }
    }
    free(old);
}

/* ---- chats at rest ---------------------------------------------------
 * A chat whose queue emptied waits in the idle list (oldest first) until
 * its pacing and its last 429 no longer matter, and is then let go: a bot
 * that has answered in a million chats does not keep a million entries. A
 * chat that moved to a new id (a group become a supergroup) stays: its new
 * address is kept only here. */

static void sq__idle_remove(struct tg *tg, struct tg_chat *c)
{
    if (!c->idle)
        return;
    if (c->iprev != NULL)
        c->iprev->inext = c->inext;
    else
        tg->idle_head = c->inext;
    if (c->inext != NULL)
        c->inext->iprev = c->iprev;
    else
        tg->idle_tail = c->iprev;
    c->inext = c->iprev = NULL;
    c->idle = false;
}

static void sq__idle_add(struct tg *tg, struct tg_chat *c)
{
    if (c->idle || c->busy || c->head != NULL || c->send_to != c->id)
        return;
    c->idle = true;
    c->iprev = tg->idle_tail;
    if (tg->idle_tail != NULL)
        tg->idle_tail->inext = c;
    else
        tg->idle_head = c;
    tg->idle_tail = c;
}

static void sq__sweep(struct tg *tg, uint64_t now)
{
    while (tg->idle_head != NULL) {
        struct tg_chat *c = tg->idle_head;
        if (c->next_ms > now || (c->limited_ms != 0 && c->limited_ms + 1000 > now))
            break; /* the others became idle later: they wait too */
        sq__idle_remove(tg, c);
        struct tg_chat **pp = &tg->buckets[sq__hash(tg, c->id)];
        while (*pp != c)
            pp = &(*pp)->hnext;
        *pp = c->hnext;
        tg->nchats--;
        free(c);
    }
}

static struct tg_chat *sq__chat(struct tg *tg, int64_t id, bool group)
{
    size_t h = sq__hash(tg, id);
    for (struct tg_chat *c = tg->buckets[h]; c != NULL; c = c->hnext) {
        if (c->id == id) {
            sq__idle_remove(tg, c);
            return c;
        }
    }
    struct tg_chat *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->id = id;
    c->send_to = id;
    c->group = group;
    c->hnext = tg->buckets[h];
    tg->buckets[h] = c;
    if (++tg->nchats > tg->nbuckets * 2)
        sq__grow(tg);
    return c;
}

static void sq__ready(struct tg *tg, struct tg_chat *c)
{
    if (c->ready || c->busy || c->head == NULL || c->head->held)
        return;
    c->ready = true;
    c->rnext = NULL;
    if (tg->ready_tail != NULL)
        tg->ready_tail->rnext = c;
    else
        tg->ready_head = c;
    tg->ready_tail = c;
}

static void sq__run(uv_timer_t *t);

/* Wake the queue at loop time `due` (or earlier if already set so). */
static void sq__arm(struct tg *tg, uint64_t due)
{
    if (tg->closing)
        return;
    uint64_t now = uv_now(tg->loop);
    if (tg->sq_armed && tg->sq_due <= due)
        return;
    tg->sq_armed = true;
    tg->sq_due = due;
    uv_timer_start(&tg->sq_timer, sq__run, due > now ? due - now : 0, 0);
}

static void sq__op_done(struct tg *tg, void *data, const struct tg_result *res);

/* Put a JSON field value into a multipart form. */
static int sq__form_field(struct http_request *req, const cJSON *item)
{
    if (cJSON_IsString(item))
        return http_request_form_field_add(req, item->string, item->valuestring, NULL);
    char *text = cJSON_PrintUnformatted(item);
    if (text == NULL)
        return HB_ENOMEM;
    int rc = http_request_form_field_add(req, item->string, text, NULL);
    free(text);
    return rc;
}

/* A photo goes as a multipart upload, its own libcurl transfer. */
static int sq__photo_start(struct tg *tg, struct tg_chat *c, struct tg_op *op)
{
    struct http_request *req = tg_request_new(tg, op->method);
    if (req == NULL)
        return HB_ENOMEM;
    int rc = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, op->body)
    {
        if (rc == 0)
            rc = sq__form_field(req, item);
    }
    if (rc == 0)
        rc = http_request_form_file_add(req, "photo", op->photo_name, op->photo_mime, op->photo,
                                        op->photo_len);
    if (rc < 0) {
        http_request_free(req);
        return rc;
    }
    http_request_timeout_set(req, 60000, 0);
    return tg_request_start(tg, req, sq__op_done, c, NULL);
}

static int sq__start(struct tg *tg, struct tg_chat *c)
{
    struct tg_op *op = c->head;
    if (op->edit && strcmp(op->method, "deleteMessage") == 0 &&
        (op->reply == NULL || op->reply->msg_id == 0))
        return HB_ENOTFOUND; /* the message to delete was never sent: nothing to do */
    if (op->edit) {
        if (op->reply == NULL || op->reply->msg_id == 0) {
            /* The message to edit was never sent (its send failed): send
             * this text as a new message instead. */
            op->method = "sendMessage";
            op->edit = false;
            op->sets_msg = op->reply != NULL;
            cJSON_DeleteItemFromObjectCaseSensitive(op->body, "message_id");
        } else {
            cJSON_DeleteItemFromObjectCaseSensitive(op->body, "message_id");
            cJSON_AddNumberToObject(op->body, "message_id", (double)op->reply->msg_id);
        }
    }
    cJSON_DeleteItemFromObjectCaseSensitive(op->body, "chat_id");
    cJSON_AddNumberToObject(op->body, "chat_id", (double)c->send_to);
    int rc = op->kind == TG_OP_PHOTO ? sq__photo_start(tg, c, op)
                                     : tg_call_json(tg, op->method, op->body, sq__op_done, c);
    if (rc < 0)
        return rc;
    c->busy = true;
    tg->inflight++;
    if (op->reply != NULL && op->reply->update_id != 0 && op->outbox_id == 0 && !op->replayed &&
        op->reply->update_id >= tg->confirm_upto) {
        /* The checkpoint that confirms its update waits for its answer. */
        op->unconfirmed = true;
        tg->inflight_unconfirmed++;
    }
    return 0;
}

static void sq__pop(struct tg *tg, struct tg_chat *c)
{
    struct tg_op *op = c->head;
    c->head = op->next;
    if (c->head == NULL)
        c->tail = NULL;
    bool replay_over = false;
    if (op->replayed && tg->replaying > 0)
        replay_over = --tg->replaying == 0;
    tg->queued--;
    tg_sendq_op_free(op);
    /* A poll held back by the queue, a drain or a replay waits for this. */
    if ((tg->held_back && tg->queued < tg->queue_max) ||
        (tg->drain_cb != NULL && tg->queued == 0) || replay_over)
        tg_poll_kick(tg);
}

static void sq__run(uv_timer_t *t)
{
    struct tg *tg = t->data;
    tg->sq_armed = false;
    if (tg->closing || tg_lease_lapsed(tg))
        return; /* the renewal kicks again, or the loss drops what is another's */
    uint64_t now = uv_now(tg->loop);
    uint64_t wake = UINT64_MAX;
    sq__sweep(tg, now);
    if (!tg->pacing_off) {
        double add = (double)(now - tg->tokens_at) * (double)tg->global_per_s / 1000.0;
        tg->tokens += add;
        if (tg->tokens > (double)tg->global_per_s)
            tg->tokens = (double)tg->global_per_s;
        tg->tokens_at = now;
    }
    struct tg_chat *prev = NULL;
    struct tg_chat *c = tg->ready_head;
    while (c != NULL) {
        struct tg_chat *next = c->rnext;
        if (tg->inflight >= tg->max_inflight)
            break; /* a completion kicks the queue again */
        if (!tg->pacing_off && now < tg->global_until) {
            wake = tg->global_until;
            break;
        }
        if (now < c->next_ms) {
            if (c->next_ms < wake)
                wake = c->next_ms;
            prev = c;
            c = next;
            continue;
        }
        if (!tg->pacing_off && tg->tokens < 1.0) {
            uint64_t need = (uint64_t)((1.0 - tg->tokens) * 1000.0 / (double)tg->global_per_s) + 1;
            if (now + need < wake)
                wake = now + need;
            break;
        }
        /* Unlink c from the ready list and start its head. */
        if (prev != NULL)
            prev->rnext = next;
        else
            tg->ready_head = next;
        if (tg->ready_tail == c)
            tg->ready_tail = prev;
        c->ready = false;
        c->rnext = NULL;
        if (!tg->pacing_off)
            tg->tokens -= 1.0;
        int rc = sq__start(tg, c);
        if (rc < 0) {
            if (rc != HB_ENOTFOUND)
                log_warn("telegram.send_failed", "chat=%" PRId64 " error=%s", c->id,
                         hb_strerror(rc));
            /* Nothing to send (HB_ENOTFOUND): done with. A send that could
             * not even start (no memory, the HTTP client refused it) is not
             * sent: its row stays for the next start. */
            if (c->head->outbox_id != 0 && rc == HB_ENOTFOUND)
                tg_outbox_done(tg, c->head, NULL);
            else if (c->head->outbox_id != 0)
                tg_outbox_keep(tg, c->head);
            sq__pop(tg, c);
            sq__ready(tg, c);
            sq__idle_add(tg, c);
            if (wake > now)
                wake = now; /* look at it again on the next turn */
        }
        c = next;
    }
    if (wake != UINT64_MAX)
        sq__arm(tg, wake);
    if (tg->offset > tg->safe_upto)
        tg_poll_kick(tg); /* a checkpoint waits for the queue's turn */
}

static void sq__op_done(struct tg *tg, void *data, const struct tg_result *res)
{
    struct tg_chat *c = data;
    struct tg_op *op = c->head;
    c->busy = false;
    tg->inflight--;
    if (op->unconfirmed) {
        op->unconfirmed = false;
        if (--tg->inflight_unconfirmed == 0)
            tg_poll_kick(tg); /* a checkpoint may wait for this */
    }
    if (tg->closing || res->rc == HB_ECANCELED) {
        /* Its row (if any) stays: it may not have been sent. */
        sq__pop(tg, c);
        return;
    }
    const char *undeliverable = NULL;
    bool keep_row = false;
    uint64_t now = uv_now(tg->loop);
    uint64_t interval = tg->pacing_off ? 0
                        : c->group     ? tg->group_interval_ms
                                       : tg->chat_interval_ms;
    bool done = false;
    if (res->rc == 0 && res->status == 200 && res->ok) {
        if (op->sets_msg && op->reply != NULL)
            op->reply->msg_id = tg_json_int(res->result, "message_id", 0);
        if (op->reply != NULL) {
            /* A reply to this message continues what it answered. */
            int64_t sent = tg_json_int(res->result, "message_id", 0);
            char chat[32], msg[32];
            snprintf(chat, sizeof(chat), "%" PRId64, c->send_to);
            snprintf(msg, sizeof(msg), "%" PRId64, sent);
            if (sent > 0)
                reply_landed(&op->reply->reply, chat, msg);
        }
        tg->sends_done++;
        done = true;
    } else if (res->rc == 0 && res->status == 400 &&
               strstr(res->description, "message is not modified") != NULL) {
        done = true; /* the edit asked for what is already shown */
    } else if (res->rc == 0 && res->migrate_to != 0) {
        log_info("telegram.chat_migrated", "from=%" PRId64 " to=%" PRId64, c->send_to,
                 res->migrate_to);
        tg->chat_migrated(tg, c->send_to, res->migrate_to);
        c->send_to = res->migrate_to;
        interval = 0; /* try the new chat at once */
    } else if (res->rc == 0 && res->status == 429) {
        metrics_counter_add(metrics_std()->http_429, (const char *[]){"telegram"}, 1);
        metrics_counter_add(metrics_std()->ratelimit_waits, (const char *[]){"telegram"}, 1);
        int64_t ra = res->retry_after > 0 ? res->retry_after : 1;
        uint64_t until = now + (uint64_t)ra * tg->retry_unit_ms;
        log_warn("telegram.rate_limited", "chat=%" PRId64 " method=%s retry_after_s=%" PRId64,
                 c->id, op->method, ra);
        /* Several chats limited within a second means the bot as a whole
         * is over the limit: pause everything, not just this chat. */
        size_t limited = 0;
        for (size_t i = 0; i < tg->nbuckets && limited < TG_GLOBAL_429_CHATS; i++) {
            for (struct tg_chat *o = tg->buckets[i]; o != NULL; o = o->hnext) {
                if (o != c && o->limited_ms != 0 && o->limited_ms + 1000 > now)
                    limited++;
            }
        }
        c->limited_ms = now;
        if (limited + 1 >= TG_GLOBAL_429_CHATS && until > tg->global_until)
            tg->global_until = until;
        if (until > c->next_ms)
            c->next_ms = until;
        interval = 0;
    } else if (res->rc == 0 && res->status == 400 && op->edit && op->reply != NULL &&
               strcmp(op->method, "editMessageText") == 0 &&
               (strstr(res->description, "message to edit not found") != NULL ||
                strstr(res->description, "no text in the message to edit") != NULL)) {
        /* Gone, or a photo (a Regenerate pressed under an image): the
         * text goes as a new message on the next try. */
        op->reply->msg_id = 0;
        interval = 0;
    } else if (res->rc != 0 || res->status >= 500) {
        if (++op->attempts >= TG_SEND_ATTEMPTS) {
            log_error("telegram.send_given_up",
                      "chat=%" PRId64 " method=%s attempts=%u error=%s "
                      "status=%d",
                      c->id, op->method, op->attempts, hb_strerror(res->rc), res->status);
            keep_row = true; /* not refused: sent at the next start */
            done = true;
        } else {
            uint64_t d = tg->backoff_min_ms << (op->attempts < 10 ? op->attempts : 10);
            if (d > tg->backoff_max_ms)
                d = tg->backoff_max_ms;
            c->next_ms = now + tg_jitter(tg, d);
            interval = 0;
        }
    } else if (op->reply == NULL && op->outbox_id != 0 && res->status == 403 &&
               ++op->attempts < TG_SEND_ATTEMPTS) {
        /* A notice the member cannot receive now (the bot is blocked):
         * tried again later, then recorded as undeliverable. */
        uint64_t d = tg->backoff_min_ms << (op->attempts < 10 ? op->attempts : 10);
        if (d > tg->backoff_max_ms)
            d = tg->backoff_max_ms;
        log_warn("telegram.notice_refused",
                 "chat=%" PRId64 " status=403 attempts=%u description=%s retry_ms=%llu", c->id,
                 op->attempts, res->description, (unsigned long long)d);
        c->next_ms = now + tg_jitter(tg, d);
        interval = 0;
    } else {
        log_warn("telegram.send_refused", "chat=%" PRId64 " method=%s status=%d description=%s",
                 c->id, op->method, res->status, res->description);
        undeliverable = res->status == 403 ? "refused: 403 (the member blocked the bot)"
                                           : "refused by the Bot API";
        done = true;
    }
    if (done && op->reply != NULL && op->reply->sent != NULL)
        op->reply->sent(op->reply, res);
    if (done && op->outbox_id != 0 && keep_row)
        tg_outbox_keep(tg, op);
    else if (done && op->outbox_id != 0)
        tg_outbox_done(tg, op, res->rc == 0 && res->status == 200 ? NULL : undeliverable);
    if (done)
        sq__pop(tg, c);
    if (now + interval > c->next_ms)
        c->next_ms = now + interval;
    sq__ready(tg, c);
    sq__idle_add(tg, c);
    sq__arm(tg, c->head != NULL ? c->next_ms : now);
}

static int sq__push(struct tg *tg, int64_t chat_id, bool group, struct tg_op *op, bool coalesce)
{
    struct tg_chat *c = sq__chat(tg, chat_id, group);
    if (c == NULL) {
        tg_sendq_op_free(op);
        return HB_ENOMEM;
    }
    op->chat_id = chat_id;
    op->group = group;
    if (op->reply != NULL && op->reply->unsettled)
        tg_reply_settle(op->reply);
    struct tg_op *tail = c->tail;
    if (coalesce && tail != NULL && !(c->busy && tail == c->head) && tail->reply == op->reply &&
        tail->kind == TG_OP_JSON && (tail->edit || tail->sets_msg) && !tail->replayed) {
        /* The newest text replaces what was waiting to be shown. */
        const char *fields[] = {"text", "reply_markup"};
        for (size_t i = 0; i < 2; i++) {
            cJSON_DeleteItemFromObjectCaseSensitive(tail->body, fields[i]);
            cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(op->body, fields[i]);
            if (v != NULL)
                cJSON_AddItemToObject(tail->body, fields[i], v);
        }
        tg_sendq_op_free(op);
        if (tail->outbox_id != 0)
            tg_outbox_rewrite(tg, tail); /* its row holds the newest text */
        return 0;
    }
    if (tail != NULL)
        tail->next = op;
    else
        c->head = op;
    c->tail = op;
    tg->queued++;
    if (op->outbox_id == 0 && tg_outbox_wants(tg, op)) {
        /* A notice, or a later send of a confirmed update (a generation's
         * answer): nothing repeats it if it is lost, so it goes only once
         * its row is durable. A reply to an update not yet confirmed goes
         * at once: a kill before the confirmation makes Telegram give the
         * update again; the checkpoint that confirms it waits for the
         * replies in flight and writes rows for those still queued. */
        op->held = true;
        tg_outbox_add(tg, op);
    }
    sq__ready(tg, c);
    sq__arm(tg, c->next_ms);
    return 0;
}

int tg_sendq_push_op(struct tg *tg, struct tg_op *op)
{
    return sq__push(tg, op->chat_id, op->group, op, false);
}

void tg_sendq_release(struct tg *tg, struct tg_op *op)
{
    op->held = false;
    struct tg_chat *c = sq__chat(tg, op->chat_id, op->group);
    if (c == NULL || c->head != op)
        return; /* an op behind the head goes when its turn comes */
    sq__ready(tg, c);
    sq__arm(tg, c->next_ms);
}

int tg_sendq_progress_delete(struct tg *tg, struct tg_reply *r)
{
    cJSON *body = cJSON_CreateObject();
    if (body == NULL)
        return HB_ENOMEM;
    return tg_sendq_json(tg, r->chat_id, r->group, r, "deleteMessage", body, true, false, false);
}

void tg_sendq_each(struct tg *tg, void (*fn)(struct tg *tg, struct tg_op *op, void *data),
                   void *data)
{
    for (size_t i = 0; i < tg->nbuckets; i++) {
        for (struct tg_chat *c = tg->buckets[i]; c != NULL; c = c->hnext) {
            for (struct tg_op *op = c->head; op != NULL; op = op->next)
                fn(tg, op, data);
        }
    }
}

/* The gauges are looked up each time: a test may reset the registry. */
void tg_sendq_gauges(struct tg *tg)
{
    const char *platform[] = {"telegram"};
    const char *const lab[] = {"platform"};
    metrics_gauge_set(metrics_family_new("haibot_send_queue_depth",
                                         "Sends queued (in flight included).", METRICS_GAUGE, lab,
                                         1, NULL, 0),
                      platform, (double)tg->queued);
    metrics_gauge_set(metrics_family_new("haibot_send_queue_bound",
                                         "Queued sends or outbox rows at which polling pauses.",
                                         METRICS_GAUGE, lab, 1, NULL, 0),
                      platform, (double)tg->queue_max);
    metrics_gauge_set(metrics_family_new("haibot_outbox_depth",
                                         "Rows in the durable outbox not yet sent.", METRICS_GAUGE,
                                         lab, 1, NULL, 0),
                      platform, (double)tg->ob_rows);
    metrics_gauge_set(metrics_family_new("haibot_send_queue_chats",
                                         "Chats whose queue or pacing the send queue keeps.",
                                         METRICS_GAUGE, lab, 1, NULL, 0),
                      platform, (double)tg->nchats);
}

int tg_sendq_json(struct tg *tg, int64_t chat_id, bool group, struct tg_reply *r,
                  const char *method, cJSON *body, bool edit, bool sets_msg, bool coalesce)
{
    struct tg_op *op = calloc(1, sizeof(*op));
    if (op == NULL || tg->closing) {
        free(op);
        cJSON_Delete(body);
        return op == NULL ? HB_ENOMEM : HB_ECANCELED;
    }
    op->kind = TG_OP_JSON;
    op->method = method;
    op->body = body;
    op->edit = edit;
    op->sets_msg = sets_msg;
    op->reply = r;
    if (r != NULL)
        r->refs++;
    return sq__push(tg, chat_id, group, op, coalesce);
}

int tg_sendq_photo(struct tg *tg, int64_t chat_id, bool group, struct tg_reply *r, cJSON *fields,
                   const struct reply_image *img)
{
    struct tg_op *op = calloc(1, sizeof(*op));
    if (op == NULL || tg->closing) {
        free(op);
        cJSON_Delete(fields);
        return op == NULL ? HB_ENOMEM : HB_ECANCELED;
    }
    op->kind = TG_OP_PHOTO;
    op->method = "sendPhoto";
    op->body = fields;
    op->photo = malloc(img->len > 0 ? img->len : 1);
    op->photo_name = strdup(img->filename != NULL ? img->filename : "image.png");
    op->photo_mime = strdup(img->mime != NULL ? img->mime : "image/png");
    if (op->photo == NULL || op->photo_name == NULL || op->photo_mime == NULL) {
        tg_sendq_op_free(op);
        return HB_ENOMEM;
    }
    memcpy(op->photo, img->data, img->len);
    op->photo_len = img->len;
    op->reply = r;
    if (r != NULL)
        r->refs++;
    return sq__push(tg, chat_id, group, op, false);
}

void tg_sendq_migrate(struct tg *tg, int64_t from, int64_t to)
{
    for (size_t i = 0; i < tg->nbuckets; i++) {
        for (struct tg_chat *c = tg->buckets[i]; c != NULL; c = c->hnext) {
            if (c->send_to == from)
                c->send_to = to;
        }
    }
}

/* Forget the queued sends pick chooses (every one, when NULL); a head in
 * flight is freed by its completion. Counts those with a row and those
 * without. */
static void sq__drop(struct tg *tg, bool (*pick)(const struct tg *tg, const struct tg_op *op),
                     size_t *rows, size_t *replies)
{
    *rows = *replies = 0;
    tg->ready_head = tg->ready_tail = NULL;
    for (size_t i = 0; i < tg->nbuckets; i++) {
        for (struct tg_chat *c = tg->buckets[i]; c != NULL; c = c->hnext) {
            struct tg_op **link = c->busy ? &c->head->next : &c->head;
            while (*link != NULL) {
                struct tg_op *op = *link;
                if (pick != NULL && !pick(tg, op)) {
                    link = &op->next;
                    continue;
                }
                *link = op->next;
                if (op->outbox_id != 0) {
                    (*rows)++;
                    tg->ob_rows -= tg->ob_rows > 0 ? 1 : 0;
                } else {
                    (*replies)++;
                }
                if (op->replayed && tg->replaying > 0)
                    tg->replaying--;
                tg->queued--;
                tg_sendq_op_free(op);
            }
            c->tail = NULL;
            for (struct tg_op *op = c->head; op != NULL; op = op->next)
                c->tail = op;
            c->ready = false;
            c->rnext = NULL;
            sq__ready(tg, c);
            sq__idle_add(tg, c);
        }
    }
}

void tg_sendq_drop(struct tg *tg)
{
    /* Sends with a row are in the outbox (tg_outbox_close); the others
     * belong to updates not confirmed, which Telegram gives again. */
    size_t rows, unconfirmed;
    sq__drop(tg, NULL, &rows, &unconfirmed);
    if (unconfirmed > 0)
        log_info("telegram.sends_unconfirmed", "count=%zu reason=closing note=%s", unconfirmed,
                 "their updates were not confirmed and are taken again at start");
}

/* Whether a queued op is now the new poller's to send: a durable row not
 * being written again (it replays the outbox), or a reply to an update not
 * confirmed (Telegram gives the update to it again). Kept here: rows not
 * yet durable or being written (no other daemon may have read them), and
 * a confirmed update's send with no row (a secret: nobody else has it). */
static bool sq__theirs(const struct tg *tg, const struct tg_op *op)
{
    if (op->outbox_id != 0)
        return op->row_written && op->held_writes == 0 && !op->in_put;
    return op->reply != NULL && op->reply->update_id != 0 &&
           op->reply->update_id >= tg->confirm_upto;
}

void tg_sendq_drop_lost(struct tg *tg)
{
    size_t rows, replies;
    sq__drop(tg, sq__theirs, &rows, &replies);
    if (rows > 0 || replies > 0)
        log_warn("telegram.sends_dropped", "rows=%zu replies=%zu reason=lease note=%s", rows,
                 replies, "the daemon polling now sends them");
    tg_sendq_kick(tg);
}

void tg_sendq_kick(struct tg *tg)
{
    sq__arm(tg, uv_now(tg->loop));
}

void tg_sendq_free(struct tg *tg)
{
    for (size_t i = 0; i < tg->nbuckets; i++) {
        struct tg_chat *c = tg->buckets[i];
        while (c != NULL) {
            struct tg_chat *next = c->hnext;
            while (c->head != NULL) {
                struct tg_op *op = c->head;
                c->head = op->next;
                tg_sendq_op_free(op);
            }
            free(c);
            c = next;
        }
        tg->buckets[i] = NULL;
    }
    tg->nchats = 0;
    tg->idle_head = tg->idle_tail = NULL;
}
