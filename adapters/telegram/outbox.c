/* The outbox under the send queue: what an update or a notice owes, kept
 * in the store until it is sent.
 *
 * An update is confirmed (given to getUpdates as the offset, after which
 * Telegram forgets it) only once what it caused is safe. Replies to an
 * update not yet confirmed go at once. A checkpoint waits for every reply
 * of the updates below the new offset to settle (finish, or queue a send)
 * and for those in flight to be answered (a round trip), then owes rows
 * only for the sends still queued (held back by pacing). With none, the
 * updates are safe at once and the offset is stored with a later write
 * (getUpdates itself confirms them to Telegram; the stored offset only
 * spares repeats after a kill). With some, one store job writes their rows
 * and the offset, joining the store's group commit like any other, and
 * polling waits for it. A later send of a confirmed update (a generation's
 * image) or a notice (no update at all) waits in the queue, held, until
 * its row is durable. A sent row's removal is written as soon as it is
 * answered (with the next write, when one is in flight). A write the store
 * refuses is tried again as it was, every TG_OB_RETRY_MS, and no update
 * is confirmed meanwhile. So a kill at any
 * moment loses nothing: an update not confirmed comes again from
 * Telegram; what a confirmed one owes is in the outbox, which is sent at
 * start before any new update is taken. A kill repeats the replies of the
 * last poll if its confirmation had not reached Telegram (at most a poll's
 * updates), and the rows sent but not yet removed: those in flight and
 * those answered within the commit that removes them.
 *
 * Rows are numbered by the adapter (channel "telegram"), from a range of
 * its own: each reading of the outbox at start takes the next epoch (a
 * count kept with it in the state table, in the same transaction), and
 * numbers its rows from epoch << TG_OB_EPOCH_SHIFT on. Two pollers of a
 * shared ledger that read it close together (one that lost its lease and
 * still writes what it owes, and the one that took over) thus never
 * number a row alike, where counting on from the highest row each had
 * read made the second row written take the first one's place. Rows are
 * replayed in the order of their numbers, older epochs first. In webhook
 * mode with other daemons, which all take updates, each run has a channel
 * of its own ("telegram/<run id>"), and takes over the rows of runs that
 * are gone (tg__channels); one that lives is sending its own. Body is
 * {"m":method,"g":group,"e":edit,"b":{...},"pn":name,"pt":mime}, data the
 * photo of a sendPhoto. */
#include "adapters/telegram/telegram_internal.h"

#include "core/cluster.h"
#include "core/core.h"
#include "core/ledger.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"
#include "base/util.h"
#include "storage/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TG_OB_CHANNEL "telegram"
#define TG_OB_REPLAY_MAX 100000 /* rows loaded at start; more wait for the next start */
#define TG_OB_LINGER_MS 20      /* an offset with no rows waits this long for another write */
#define TG_OB_RETRY_MS 500      /* a write that failed is tried again after this */
#define TG_OB_EPOCH_SHIFT 32    /* rows an epoch may number: 2^32 */

struct tg_ob_row {
    int64_t id;
    int64_t chat;
    char *body;
    unsigned char *data;
    size_t data_len;
    bool held; /* a notice's or a confirmed update's later send, not a checkpoint's reply */
};

struct tg_ob_write {
    struct store_job job;
    struct tg *tg;
    struct tg_ob_row *rows;
    size_t nrows;
    struct tg_op **held; /* ops released once this is durable */
    size_t nheld;
    int64_t *del;
    size_t ndel;
    struct tg_ob_fail *fail;
    size_t nfail;
    int64_t offset; /* 0: none */
    int64_t now_ms;
};

static struct store *tg__store(struct tg *tg)
{
    if (tg->core == NULL || tg->core->ledger == NULL)
        return NULL;
    return ledger_store(tg->core->ledger);
}

bool tg_outbox_wants(struct tg *tg, const struct tg_op *op)
{
    if (!tg->ob_on || tg->ob_rows_off || op->replayed || (op->reply != NULL && op->reply->secret))
        return false; /* a secret is never stored: a crash loses it instead */
    /* Replies to an update not yet confirmed get their rows with the
     * checkpoint that confirms it: a kill before it makes Telegram give
     * the update again, and nothing of it was sent. */
    return op->reply == NULL || op->reply->update_id == 0 ||
           op->reply->update_id < tg->confirm_upto;
}

static int tg__grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t nc = *cap != 0 ? *cap * 2 : 64;
    void *p = realloc(*arr, nc * size);
    if (p == NULL)
        return HB_ENOMEM;
    *arr = p;
    *cap = nc;
    return 0;
}

static void tg__put(struct tg *tg, struct tg_op *op)
{
    if (tg__grow((void **)&tg->ob_put, &tg->ob_capput, tg->ob_nput, sizeof(*tg->ob_put)) < 0) {
        log_error("telegram.outbox_error", "error=%s", hb_strerror(HB_ENOMEM));
        op->held = false;
        op->outbox_id = 0;
        return;
    }
    tg->ob_put[tg->ob_nput++] = op;
    op->in_put = true;
}

void tg_outbox_add(struct tg *tg, struct tg_op *op)
{
    op->outbox_id = tg->ob_next++;
    tg__put(tg, op);
    /* It waits for this write: not behind another one (the store's group
     * commit merges writes submitted together). */
    tg_outbox_flush(tg, true);
}

void tg_outbox_rewrite(struct tg *tg, struct tg_op *op)
{
    if (op->in_put)
        return; /* the next write takes the newest text anyway */
    tg__put(tg, op);
    tg_outbox_flush(tg, false);
}

static void tg__linger_done(uv_timer_t *t)
{
    /* Also a failed write's retry: the flush tries it first. */
    tg_outbox_flush(t->data, false);
}

/* op leaves the rows to write (its send ended). */
static void tg__unput(struct tg *tg, struct tg_op *op)
{
    if (!op->in_put)
        return;
    for (size_t i = 0; i < tg->ob_nput; i++) {
        if (tg->ob_put[i] == op) {
            tg->ob_put[i] = tg->ob_put[--tg->ob_nput];
            break;
        }
    }
    op->in_put = false;
}

void tg_outbox_keep(struct tg *tg, struct tg_op *op)
{
    tg__unput(tg, op);
    if (!op->row_written)
        return;
    /* The row stays as it is, unsent and not failed: the next start sends
     * it before any new update is taken. */
    log_warn("telegram.send_kept", "chat=%" PRId64 " row=%" PRId64, op->chat_id, op->outbox_id);
    op->row_written = false;
    tg->ob_rows -= tg->ob_rows > 0 ? 1 : 0;
}

void tg_outbox_done(struct tg *tg, struct tg_op *op, const char *undeliverable)
{
    tg__unput(tg, op);
    if (!op->row_written) {
        /* Sent before its row was written: nothing to write or remove.
         * (Only replies go before their rows are written; notices are
         * held, so a reply that could not be sent is logged, not kept.) */
        return;
    }
    if (undeliverable != NULL && op->reply == NULL) {
        if (tg__grow((void **)&tg->ob_fail, &tg->ob_capfail, tg->ob_nfail, sizeof(*tg->ob_fail)) ==
            0) {
            struct tg_ob_fail *f = &tg->ob_fail[tg->ob_nfail++];
            f->id = op->outbox_id;
            snprintf(f->reason, sizeof(f->reason), "%s", undeliverable);
            log_warn("telegram.notice_undeliverable", "chat=%" PRId64 " row=%" PRId64 " reason=%s",
                     op->chat_id, op->outbox_id, undeliverable);
        }
    } else if (tg__grow((void **)&tg->ob_del, &tg->ob_capdel, tg->ob_ndel, sizeof(*tg->ob_del)) ==
               0) {
        tg->ob_del[tg->ob_ndel++] = op->outbox_id;
    }
    op->row_written = false;
    /* A kill before the removal is durable sends the row again, so it is
     * written at once: one commit is the whole window. Removals answered
     * while a write is in flight go together with the next one. */
    if (!tg->closing)
        tg_outbox_flush(tg, false);
}

/* ---- the write ----------------------------------------------------------- */

/* The i-th op w holds: released once no write in flight carries it. */
static void tg__release_held(struct tg *tg, struct tg_ob_write *w, size_t i)
{
    struct tg_op *op = w->held[i];
    if (op->held_writes > 0 && --op->held_writes > 0)
        return;
    tg_sendq_release(tg, op);
}

static void tg__write_free(struct tg_ob_write *w)
{
    for (size_t i = 0; i < w->nrows; i++) {
        free(w->rows[i].body);
        free(w->rows[i].data);
    }
    free(w->rows);
    free(w->held);
    free(w->del);
    free(w->fail);
    free(w);
}

static int tg__write_run(struct store_txn *txn, struct store_job *job)
{
    struct tg_ob_write *w = container_of(job, struct tg_ob_write, job);
    int rc = 0;
    for (size_t i = 0; i < w->nrows && rc == 0; i++) {
        const struct tg_ob_row *r = &w->rows[i];
        rc = store_txn_outbox_put(txn, w->tg->ob_channel, r->id, r->chat, r->body, r->data,
                                  r->data_len, w->now_ms);
    }
    for (size_t i = 0; i < w->ndel && rc == 0; i++)
        rc = store_txn_outbox_remove(txn, w->tg->ob_channel, w->del[i]);
    for (size_t i = 0; i < w->nfail && rc == 0; i++)
        rc = store_txn_outbox_fail(txn, w->tg->ob_channel, w->fail[i].id, w->fail[i].reason,
                                   w->now_ms);
    if (rc == 0 && w->offset > 0) {
        char text[32];
        snprintf(text, sizeof(text), "%" PRId64, w->offset);
        rc = store_txn_state_put(txn, TG_STATE_NS, "offset", text, w->now_ms);
    }
    return rc;
}

static void tg__write_done(struct store_job *job, int rc)
{
    struct tg_ob_write *w = container_of(job, struct tg_ob_write, job);
    struct tg *tg = w->tg;
    tg->ob_writing--;
    if (rc < 0)
        log_error("telegram.outbox_error", "rows=%zu offset=%" PRId64 " error=%s", w->nrows,
                  w->offset, hb_strerror(rc));
    if (!tg->closing) {
        if (w->offset > 0 && rc == 0 && w->offset > tg->persisted)
            tg->persisted = w->offset;
        if (w->offset > 0 && rc == 0 && w->offset > tg->safe_upto)
            tg->safe_upto = w->offset;
        else if (w->offset > 0 && rc < 0)
            tg->confirm_upto = tg->safe_upto; /* confirmed again by the next checkpoint */
        /* The next poll first, so that it is not queued behind the sends
         * on the pipelined connections; then the held sends go (after a
         * failed write all the same, the failure logged, rather than
         * never). */
        tg_poll_kick(tg);
        for (size_t i = 0; i < w->nheld; i++)
            tg__release_held(tg, w, i);
        w->nheld = 0;
        if (rc < 0 && tg->ob_failed == NULL && (w->nrows > 0 || w->ndel > 0 || w->nfail > 0)) {
            /* Its rows were not written: no checkpoint counts on them (it
             * would confirm updates whose sends are nowhere) until the same
             * write, tried again in a moment, commits. */
            tg->ob_failed = w;
            if (!uv_is_active((uv_handle_t *)&tg->ob_timer))
                uv_timer_start(&tg->ob_timer, tg__linger_done, TG_OB_RETRY_MS, 0);
            tg_unref(tg);
            return;
        }
        if (tg->ob_nput > 0 || tg->ob_nfail > 0 || tg->ob_ndel > 0 || tg->ob_failed != NULL)
            tg_outbox_flush(tg, false); /* a failed write's retry first */
        else if (tg->ob_offset > 0 && !uv_is_active((uv_handle_t *)&tg->ob_timer))
            uv_timer_start(&tg->ob_timer, tg__linger_done, TG_OB_LINGER_MS, 0);
        tg_poll_kick(tg);
    }
    tg__write_free(w);
    tg_unref(tg);
}

/* A failed write's retry: submitted again as it was (its puts, removals and
 * marks are idempotent), or armed again if the store will not take it. */
static void tg__retry_failed(struct tg *tg)
{
    struct tg_ob_write *w = tg->ob_failed;
    struct store *store = tg__store(tg);
    w->job = (struct store_job){.run = tg__write_run, .done = tg__write_done};
    if (store == NULL || store_submit(store, &w->job) < 0) {
        uv_timer_start(&tg->ob_timer, tg__linger_done, TG_OB_RETRY_MS, 0);
        return;
    }
    tg->ob_failed = NULL;
    tg->ob_writing++;
    tg_ref(tg);
    log_info("telegram.outbox_retry", "rows=%zu", w->nrows);
}

/* The row of a queued send: its call as JSON, its photo aside. Built as
 * text around the body's own printing: this runs once per reply. */
static int tg__row(const struct tg_op *op, struct tg_ob_row *row)
{
    if (op->edit && op->reply != NULL && op->reply->msg_id != 0) {
        /* The message it edits is known now; at start it would not be. */
        cJSON_DeleteItemFromObjectCaseSensitive(op->body, "message_id");
        cJSON_AddNumberToObject(op->body, "message_id", (double)op->reply->msg_id);
    }
    char *b = cJSON_PrintUnformatted(op->body);
    if (b == NULL)
        return HB_ENOMEM;
    const char *pn = op->kind == TG_OP_PHOTO ? op->photo_name : NULL;
    const char *pt = op->kind == TG_OP_PHOTO ? op->photo_mime : NULL;
    char *pnj = NULL, *ptj = NULL;
    if (pn != NULL) {
        /* File names and types are ours, but quote them properly anyway. */
        cJSON *s1 = cJSON_CreateString(pn), *s2 = cJSON_CreateString(pt);
        pnj = s1 != NULL ? cJSON_PrintUnformatted(s1) : NULL;
        ptj = s2 != NULL ? cJSON_PrintUnformatted(s2) : NULL;
        cJSON_Delete(s1);
        cJSON_Delete(s2);
        if (pnj == NULL || ptj == NULL) {
            free(b);
            free(pnj);
            free(ptj);
            return HB_ENOMEM;
        }
    }
    size_t n = strlen(b) + strlen(op->method) + (pnj != NULL ? strlen(pnj) + strlen(ptj) : 0) + 64;
    row->body = malloc(n);
    if (row->body != NULL)
        snprintf(row->body, n, "{\"m\":\"%s\",\"g\":%s,\"e\":%s,\"b\":%s%s%s%s%s%s}", op->method,
                 op->group ? "true" : "false", op->edit ? "true" : "false", b,
                 pnj != NULL ? ",\"pn\":" : "", pnj != NULL ? pnj : "",
                 ptj != NULL ? ",\"pt\":" : "", ptj != NULL ? ptj : "", "");
    free(b);
    free(pnj);
    free(ptj);
    if (row->body == NULL)
        return HB_ENOMEM;
    row->id = op->outbox_id;
    row->chat = op->chat_id;
    if (op->kind == TG_OP_PHOTO) {
        row->data = malloc(op->photo_len > 0 ? op->photo_len : 1);
        if (row->data == NULL)
            return HB_ENOMEM;
        memcpy(row->data, op->photo, op->photo_len);
        row->data_len = op->photo_len;
    }
    return 0;
}

void tg_outbox_flush(struct tg *tg, bool force)
{
    if (!tg->ob_on)
        return;
    if (tg->ob_failed != NULL) {
        /* The failed write first, when its retry is due; what waits goes
         * with the write after it, or beside it when forced. */
        if (force || (tg->ob_writing == 0 && !uv_is_active((uv_handle_t *)&tg->ob_timer)))
            tg__retry_failed(tg);
        if (!force)
            return;
    }
    if (tg->ob_writing > 0 && !force) {
        /* What waits goes with the next write, after this one. */
        return;
    }
    if (tg->ob_nput == 0 && tg->ob_ndel == 0 && tg->ob_nfail == 0 && tg->ob_offset == 0)
        return;
    struct store *store = tg__store(tg);
    struct tg_ob_write *w = calloc(1, sizeof(*w));
    if (store == NULL || w == NULL) {
        free(w);
        log_error("telegram.outbox_error", "error=%s", hb_strerror(HB_ENOMEM));
        return;
    }
    w->tg = tg;
    w->job.run = tg__write_run;
    w->job.done = tg__write_done;
    w->now_ms = clock_real_ms();
    int rc = 0;
    if (tg->ob_nput > 0) {
        w->rows = calloc(tg->ob_nput, sizeof(*w->rows));
        w->held = calloc(tg->ob_nput, sizeof(*w->held));
        rc = w->rows == NULL || w->held == NULL ? HB_ENOMEM : 0;
        for (size_t i = 0; i < tg->ob_nput && rc == 0; i++) {
            struct tg_op *op = tg->ob_put[i];
            rc = tg__row(op, &w->rows[w->nrows]);
            w->rows[w->nrows].held = op->held;
            w->nrows++;
            if (!op->row_written)
                tg->ob_rows++;
            op->in_put = false;
            op->row_written = true;
            if (op->held) {
                /* A held op rewritten while an earlier write of its row is
                 * in flight is carried by both: it goes once neither is in
                 * flight (released by the first, it could be sent and
                 * freed before the second ended, which still points at it). */
                op->held_writes++;
                w->held[w->nheld++] = op;
            }
        }
    }
    if (rc < 0) {
        log_error("telegram.outbox_error", "error=%s", hb_strerror(rc));
        tg__write_free(w);
        return;
    }
    tg->ob_rows -= tg->ob_ndel < tg->ob_rows ? tg->ob_ndel : tg->ob_rows;
    tg->ob_nput = 0;
    w->del = tg->ob_del;
    w->ndel = tg->ob_ndel;
    tg->ob_del = NULL;
    tg->ob_ndel = tg->ob_capdel = 0;
    w->fail = tg->ob_fail;
    w->nfail = tg->ob_nfail;
    tg->ob_rows -= tg->ob_nfail < tg->ob_rows ? tg->ob_nfail : tg->ob_rows;
    tg->ob_fail = NULL;
    tg->ob_nfail = tg->ob_capfail = 0;
    w->offset = tg->ob_offset;
    tg->ob_offset = 0;
    rc = store_submit(store, &w->job);
    if (rc < 0) {
        log_error("telegram.outbox_error", "rows=%zu error=%s", w->nrows, hb_strerror(rc));
        for (size_t i = 0; i < w->nheld && !tg->closing; i++)
            tg__release_held(tg, w, i);
        tg__write_free(w);
        return;
    }
    tg->ob_writing++;
    tg_ref(tg);
}

/* ---- confirming updates ---------------------------------------------------- */

struct tg_ob_scan {
    int64_t below; /* updates below this owe their sends to the outbox */
};

static void tg__owed(struct tg *tg, struct tg_op *op, void *data)
{
    const struct tg_ob_scan *scan = data;
    if (tg->ob_rows_off || op->outbox_id != 0 || op->reply == NULL || op->reply->update_id == 0 ||
        op->reply->update_id >= scan->below || op->reply->secret)
        return;
    op->outbox_id = tg->ob_next++;
    tg__put(tg, op);
}

void tg_outbox_checkpoint(struct tg *tg, int64_t offset)
{
    if (tg->ob_failed != NULL)
        return; /* its retry kicks again once it committed */
    if (!tg->ob_on) {
        tg->persisted = offset; /* no store: nothing to persist in */
        tg->confirm_upto = offset;
        tg->safe_upto = offset;
        return;
    }
    struct tg_ob_scan scan = {.below = offset};
    size_t before = tg->ob_nput;
    tg_sendq_each(tg, tg__owed, &scan);
    tg->confirm_upto = offset;
    tg->ob_offset = offset;
    if (tg->ob_nput == before && !tg->ob_offset_wait) {
        /* Every reply of these updates was answered: they are safe now,
         * and getUpdates itself confirms them to Telegram. The stored
         * offset only spares repeats after a kill that falls before that
         * poll reaches Telegram, so it goes with a later write. (As the
         * adapter was before the outbox, the poll waited for it: the
         * figure the bench measures the outbox against.) */
        tg->safe_upto = offset;
        if (tg->ob_writing == 0 && !uv_is_active((uv_handle_t *)&tg->ob_timer))
            uv_timer_start(&tg->ob_timer, tg__linger_done, TG_OB_LINGER_MS, 0);
        return;
    }
    tg_outbox_flush(tg, true);
}

void tg_outbox_lost(struct tg *tg)
{
    /* The new poller goes on from the stored offset: what this daemon
     * polled beyond what it confirmed is the new poller's to confirm. */
    tg->offset = tg->safe_upto;
    tg->confirm_upto = tg->safe_upto;
    tg->ob_offset = 0;
    struct tg_ob_write *w = tg->ob_failed;
    if (w == NULL)
        return;
    /* A write that failed (the store ended a transaction this daemon left
     * open while it stalled) confirmed nothing: the new poller takes its
     * updates again, so their replies' rows are not written after all.
     * Its notices and later sends are written and sent from here: no other
     * daemon knows them. */
    w->offset = 0;
    size_t kept = 0;
    for (size_t i = 0; i < w->nrows; i++) {
        if (w->rows[i].held) {
            w->rows[kept++] = w->rows[i];
            continue;
        }
        free(w->rows[i].body);
        free(w->rows[i].data);
    }
    if (kept < w->nrows)
        log_info("telegram.outbox_rows_dropped", "rows=%zu reason=lease", w->nrows - kept);
    w->nrows = kept;
}

void tg_outbox_close(struct tg *tg)
{
    if (!tg->ob_on)
        return;
    if (tg_lease_standby(tg)) {
        /* Not the poller: the one polling confirms the updates and keeps
         * their replies (tg_outbox_lost). What is written here still goes. */
        tg_outbox_flush(tg, true);
        return;
    }
    /* Updates from the first reply still deciding on are not confirmed:
     * Telegram gives them again, so their sends are not kept. */
    int64_t offset = tg->unsettled_head != NULL ? tg->unsettled_head->update_id : tg->offset;
    if (offset < tg->persisted)
        offset = tg->persisted;
    struct tg_ob_scan scan = {.below = offset};
    tg_sendq_each(tg, tg__owed, &scan);
    if (offset > tg->persisted)
        tg->ob_offset = offset;
    size_t rows = tg->ob_nput;
    tg_outbox_flush(tg, true);
    if (rows > 0 || offset > tg->persisted)
        log_info("telegram.outbox_kept", "rows=%zu offset=%" PRId64, rows, offset);
}

void tg_outbox_free(struct tg *tg)
{
    if (tg->ob_failed != NULL)
        tg__write_free(tg->ob_failed);
    tg->ob_failed = NULL;
    free(tg->ob_put);
    free(tg->ob_del);
    free(tg->ob_fail);
    tg->ob_put = NULL;
    tg->ob_del = NULL;
    tg->ob_fail = NULL;
}

/* ---- start: the outbox before new updates ------------------------------ */

struct tg_ob_load {
    struct store_job job;
    struct tg *tg;
    void (*done)(struct tg *tg);
    struct tg_op *head, *tail;
    size_t n;
    int64_t max_id;
    int64_t first_id; /* the first row number of this reading's epoch */
    int64_t now_ms;
    bool schema_old;
};

static const char *const tg_ob_methods[] = {
    "sendMessage",      "editMessageText",       "sendPhoto", "sendInvoice", "deleteMessage",
    "editMessageMedia", "editMessageReplyMarkup"};

static const char *tg__method(const char *m)
{
    for (size_t i = 0; m != NULL && i < sizeof(tg_ob_methods) / sizeof(tg_ob_methods[0]); i++) {
        if (strcmp(m, tg_ob_methods[i]) == 0)
            return tg_ob_methods[i];
    }
    return NULL;
}

static int tg__load_row(int64_t id, int64_t chat, const char *body, const void *data,
                        size_t data_len, void *arg)
{
    struct tg_ob_load *l = arg;
    cJSON *o = cJSON_Parse(body);
    cJSON *b = cJSON_DetachItemFromObjectCaseSensitive(o, "b");
    const char *method = tg__method(tg_json_str(o, "m"));
    struct tg_op *op = calloc(1, sizeof(*op));
    if (op == NULL || method == NULL || !cJSON_IsObject(b) ||
        (strcmp(method, "sendPhoto") == 0 && data == NULL)) {
        log_warn("telegram.outbox_row_skipped", "row=%" PRId64 " problem=%s", id,
                 op == NULL ? "out of memory" : "unreadable");
        free(op);
        cJSON_Delete(b);
        cJSON_Delete(o);
        return 0;
    }
    op->method = method;
    op->body = b;
    op->chat_id = chat;
    op->group = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "g"));
    op->outbox_id = id;
    op->row_written = true;
    op->replayed = true;
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "e")) &&
        cJSON_GetObjectItemCaseSensitive(b, "message_id") == NULL) {
        /* The message it edits was never known to be sent: say it anew
         * (a deletion of it has nothing to do: the queue drops it). */
        if (strcmp(method, "deleteMessage") == 0)
            op->edit = true;
        else
            op->method = "sendMessage";
    }
    if (strcmp(op->method, "sendPhoto") == 0) {
        op->kind = TG_OP_PHOTO;
        const char *pn = tg_json_str(o, "pn");
        const char *pt = tg_json_str(o, "pt");
        op->photo = malloc(data_len > 0 ? data_len : 1);
        op->photo_name = strdup(pn != NULL ? pn : "image.png");
        op->photo_mime = strdup(pt != NULL ? pt : "image/png");
        if (op->photo != NULL)
            memcpy(op->photo, data, data_len);
        op->photo_len = data_len;
        if (op->photo == NULL || op->photo_name == NULL || op->photo_mime == NULL) {
            tg_sendq_op_free(op);
            cJSON_Delete(o);
            return HB_ENOMEM;
        }
    }
    cJSON_Delete(o);
    if (l->tail != NULL)
        l->tail->next = op;
    else
        l->head = op;
    l->tail = op;
    l->n++;
    return 0;
}

/* This reading's epoch: the one after the last reading's, kept. */
static int tg__epoch_take(struct store_txn *txn, struct tg_ob_load *l)
{
    char *value = NULL;
    int rc = store_txn_state_get(txn, TG_STATE_NS, "outbox_epoch", &value);
    if (rc < 0 && rc != HB_ENOTFOUND)
        return rc;
    int64_t epoch = value != NULL ? strtoll(value, NULL, 10) : 0;
    free(value);
    if (epoch < 0 || epoch >= (INT64_MAX >> TG_OB_EPOCH_SHIFT) - 1)
        epoch = 0; /* unreadable, or at the end of the numbers: rows go on from the highest */
    epoch++;
    char text[32];
    snprintf(text, sizeof(text), "%" PRId64, epoch);
    rc = store_txn_state_put(txn, TG_STATE_NS, "outbox_epoch", text, l->now_ms);
    if (rc == 0)
        l->first_id = epoch << TG_OB_EPOCH_SHIFT;
    return rc;
}

static int tg__load_run(struct store_txn *txn, struct store_job *job)
{
    struct tg_ob_load *l = container_of(job, struct tg_ob_load, job);
    int rc = store_txn_outbox_max(txn, l->tg->ob_channel, &l->max_id);
    if (rc == HB_ESCHEMA) {
        l->schema_old = true;
        return 0;
    }
    if (rc == 0)
        rc = tg__epoch_take(txn, l);
    if (rc == 0)
        rc = store_txn_outbox_each(txn, l->tg->ob_channel, 0, TG_OB_REPLAY_MAX, tg__load_row, l);
    return rc;
}

/* ---- several daemons in webhook mode ----------------------------------- */

struct cluster *tg_cluster(const struct tg *tg)
{
    return tg->core != NULL ? tg->core->cluster : NULL;
}

const char *tg_outbox_channel(struct tg *tg)
{
    /* Polling: one channel, the lease holder's. */
    if (tg->ob_channel[0] == '\0')
        outbox_channel_name(tg->ob_channel, sizeof(tg->ob_channel), TG_OB_CHANNEL,
                            tg->webhook ? tg_cluster(tg) : NULL);
    return tg->ob_channel;
}

/* The rows of this daemon's queue (ids in an array; sorted by the caller). */
struct tg_ob_queued {
    int64_t *ids;
    size_t n, cap;
};

static int tg__id_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Queue the sends loaded from rows (head, a list), each row counted as one
 * the queue replays; those already queued (ids in queued, may be NULL) go,
 * counted in *skipped, and all of them when closing. Returns how many were
 * queued. */
static size_t tg__queue_loaded(struct tg *tg, struct tg_op *head, const struct tg_ob_queued *queued,
                               size_t *skipped)
{
    size_t n = 0;
    for (struct tg_op *op = head, *next; op != NULL; op = next) {
        next = op->next;
        op->next = NULL;
        if (tg->closing) {
            tg_sendq_op_free(op);
        } else if (queued != NULL && queued->n > 0 &&
                   bsearch(&op->outbox_id, queued->ids, queued->n, sizeof(*queued->ids),
                           tg__id_cmp) != NULL) {
            tg_sendq_op_free(op);
            (*skipped)++;
        } else {
            tg->ob_rows++;
            tg->replaying++;
            n++;
            tg_sendq_push_op(tg, op);
        }
    }
    return n;
}

/* The rows of a run that is gone, taken into this one's channel: queued as
 * at start. */
static void tg__taken(int rc, const struct outbox_row *rows, size_t n, void *data)
{
    struct tg *tg = data;
    if (rc < 0)
        log_error("telegram.outbox_error", "op=take error=%s", hb_strerror(rc));
    struct tg_ob_load l = {.tg = tg};
    for (size_t i = 0; rc == 0 && i < n && !tg->closing; i++) {
        if (tg__load_row(rows[i].id, rows[i].chat, rows[i].body, rows[i].bytes, rows[i].len, &l) <
            0)
            break;
    }
    size_t queued = tg__queue_loaded(tg, l.head, NULL, NULL);
    if (queued > 0)
        log_info("telegram.outbox_replay", "rows=%zu taken_over=true", queued);
    tg_unref(tg);
}

/* Takes over the rows of runs that are gone (outbox_takeover) submitted:
 * each holds a reference until its rows are queued (tg__taken). */
static void tg__listed(size_t takes, void *data)
{
    struct tg *tg = data;
    for (size_t i = 0; i < takes; i++)
        tg_ref(tg);
    tg->ob_looking = false;
    tg_unref(tg);
}

static void tg__look(uv_timer_t *t)
{
    struct tg *tg = t->data;
    struct cluster *c = tg_cluster(tg);
    struct store *store = tg__store(tg);
    tg_notify_owed_webhook(tg);
    if (tg->closing || tg->ob_looking || store == NULL || !cluster_judging(c))
        return;
    tg->ob_looking = true;
    tg_ref(tg);
    if (outbox_takeover(store, c, TG_OB_CHANNEL, tg_outbox_channel(tg), TG_OB_REPLAY_MAX, tg__taken,
                        tg__listed, tg) < 0) {
        tg->ob_looking = false;
        log_error("telegram.outbox_error", "op=takeover error=cannot submit");
        tg_unref(tg);
    }
}

void tg_outbox_look_start(struct tg *tg)
{
    struct cluster *c = tg_cluster(tg);
    if (!tg->webhook || c == NULL || !tg->ob_on || tg->closing)
        return;
    uv_timer_start(&tg->ob_look, tg__look, 0, outbox_look_ms(c));
}

static void tg__queued_id(struct tg *tg, struct tg_op *op, void *data)
{
    (void)tg;
    struct tg_ob_queued *q = data;
    if (op->outbox_id != 0 && tg__grow((void **)&q->ids, &q->cap, q->n, sizeof(*q->ids)) == 0)
        q->ids[q->n++] = op->outbox_id;
}

static void tg__load_done(struct store_job *job, int rc)
{
    struct tg_ob_load *l = container_of(job, struct tg_ob_load, job);
    struct tg *tg = l->tg;
    /* Given the lease back, this daemon may still queue sends it kept when
     * it lost it, whose rows it wrote since (sq__theirs): those rows are
     * its own (no other daemon numbers rows alike), and go once. */
    struct tg_ob_queued queued = {0};
    tg_sendq_each(tg, tg__queued_id, &queued);
    if (queued.n > 1)
        qsort(queued.ids, queued.n, sizeof(*queued.ids), tg__id_cmp);
    size_t skipped = 0;
    if (rc < 0 && rc != HB_EEXISTS)
        log_error("telegram.outbox_error", "op=load error=%s", hb_strerror(rc));
    tg->ob_on = !l->schema_old && (rc == 0 || rc == HB_EEXISTS);
    tg->ob_next = l->max_id >= l->first_id ? l->max_id + 1 : l->first_id;
    size_t n = tg__queue_loaded(tg, l->head, &queued, &skipped);
    free(queued.ids);
    if (n > 0 || skipped > 0)
        log_info("telegram.outbox_replay", "rows=%zu queued_already=%zu", n, skipped);
    tg->replayed = true;
    if (!tg->closing)
        l->done(tg);
    free(l);
    tg_outbox_look_start(tg);
    tg_unref(tg);
}

void tg_outbox_replay(struct tg *tg, void (*done)(struct tg *tg))
{
    tg_outbox_channel(tg); /* known before the first job reads it */
    struct store *store = tg__store(tg);
    struct tg_ob_load *l = store != NULL ? calloc(1, sizeof(*l)) : NULL;
    if (l == NULL) {
        tg->replayed = true;
        done(tg);
        return;
    }
    l->tg = tg;
    l->done = done;
    l->now_ms = clock_real_ms();
    l->job.run = tg__load_run;
    l->job.done = tg__load_done;
    tg_ref(tg);
    if (store_submit(store, &l->job) < 0) {
        free(l);
        tg_unref(tg);
        tg->replayed = true;
        done(tg);
    }
}
