/* The credit ledger's rules and its asynchronous API (core/ledger.h).
 *
 * Every operation becomes a store job. Its run function applies the rules on
 * the store's thread, inside the transaction (and savepoint) that will hold
 * its writes, so a balance check sees exactly what is committed before it,
 * also within one group commit. Its done function runs on the loop thread
 * once that transaction is durable and calls the caller's callback.
 *
 * This file holds the service: requests copied and checked, operations
 * submitted and completed on the loop, the expiry timer, start and close.
 * The rules themselves are in ledger_rules.c, the chain hash in
 * ledger_chain.c, the audit in ledger_verify.c. */
#include "core/ledger.h"

#include "base/error.h"
#include "core/ledger_internal.h"
#include "base/log.h"
#include "base/map.h"
#include "base/metrics.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LEDGER_HISTORY_MAX 100 /* largest history page */
/* Accounts known to exist, kept to answer an open without the store; the
 * set starts over when it reaches this many. */
#define LEDGER_KNOWN_MAX 65536

struct ledger {
    uv_loop_t *loop;
    struct store *store;
    uv_timer_t timer;   /* voids reservations as they expire */
    struct clock clock; /* the wall clock reservations expire by */
    bool timer_enabled;
    int64_t timer_at;    /* expiry the timer is armed for; 0 = idle */
    bool timer_due;      /* a known reservation expires by timer_at: keep the loop alive */
    int64_t poll_ms;     /* look for other daemons' expiries this often; 0 = never */
    bool expire_running; /* an internal expiry run is queued */
    bool expire_again;   /* the timer fired during that run */
    /* Accounts known to exist (account id -> flags + 1). An account is
     * never deleted and its flags never change, so once the store has said
     * it exists, opening it again can only say "exists" (or "conflict" for
     * other flags): a member's wallet is opened before each generation, and
     * that no longer waits for the store's next commit. */
    struct map *known;
    struct ledger_op *ready_head; /* answered from `known`, called back on the next turn */
    struct ledger_op *ready_tail;
    uv_idle_t ready; /* runs while ready_head is not NULL */
    bool closing;
    int close_pending; /* handles still closing */
    void (*close_cb)(void *data);
    void *close_data;
};

/* ---- Small helpers ----------------------------------------------------------- */

static int64_t ledger__now(const struct ledger *l)
{
    return clock_now_ms(&l->clock);
}

/* Copy a caller string; NULL reads as "". Fails when it does not fit in
 * max_len bytes. */
int ledger__copy(char *dst, size_t cap, size_t max_len, const char *src)
{
    if (src == NULL)
        src = "";
    size_t n = strlen(src);
    if (n > max_len || n >= cap)
        return HB_EINVAL;
    memcpy(dst, src, n + 1);
    return 0;
}

int ledger_wallet_name(char *buf, size_t cap, const char *platform, const char *user)
{
    if (platform == NULL || user == NULL || platform[0] == '\0' || user[0] == '\0')
        return HB_EINVAL;
    int n = snprintf(buf, cap, "%s:%s", platform, user);
    return n < 0 || (size_t)n >= cap || n > LEDGER_ID_LEN_MAX ? HB_EINVAL : 0;
}

int ledger_pool_name(char *buf, size_t cap, const char *platform, const char *group)
{
    if (platform == NULL || group == NULL || platform[0] == '\0' || group[0] == '\0')
        return HB_EINVAL;
    int n = snprintf(buf, cap, "pool:%s:%s", platform, group);
    return n < 0 || (size_t)n >= cap || n > LEDGER_ID_LEN_MAX ? HB_EINVAL : 0;
}

/* ---- The loop side -------------------------------------------------------------- */

static void ledger__op_free(struct ledger_op *op)
{
    if (op == NULL)
        return;
    free(op->reqs);
    free(op->rows);
    free(op->usage);
    for (size_t i = 0; i < op->nnotes; i++) {
        free(op->note_ns[i]);
        free(op->note_key[i]);
        free(op->note_value[i]);
    }
    free(op);
}

static void ledger__expire_submit(struct ledger *l);

static void ledger__timer_cb(uv_timer_t *timer)
{
    struct ledger *l = timer->data;
    l->timer_at = 0;
    l->timer_due = false;
    ledger__expire_submit(l);
}

/* Make sure the timer fires by `at` (ms since the epoch; 0: nothing known
 * to expire). On PostgreSQL it also fires every poll_ms: a reservation
 * another daemon made and left (it died) expires on no timer of ours,
 * and each expiry run learns the next one of every daemon. Such a poll
 * alone does not keep the loop alive. */
static void ledger__timer_arm(struct ledger *l, int64_t at)
{
    if (!l->timer_enabled || l->closing)
        return;
    int64_t now = ledger__now(l);
    bool due = at > 0;
    if (l->poll_ms > 0 && (at <= 0 || at > now + l->poll_ms))
        at = now + l->poll_ms;
    if (at <= 0)
        return;
    l->timer_due = l->timer_due || due;
    if (l->timer_due)
        uv_ref((uv_handle_t *)&l->timer);
    else
        uv_unref((uv_handle_t *)&l->timer);
    if (l->timer_at != 0 && l->timer_at <= at)
        return;
    int64_t delay = at - now;
    if (delay < 0)
        delay = 0;
    l->timer_at = at;
    uv_timer_start(&l->timer, ledger__timer_cb, (uint64_t)delay, 0);
}

const char *ledger_kind_name(uint32_t kind)
{
    static const char *const names[] = {"other",      "deposit", "bonus",    "grant",
                                        "generation", "refund",  "reversal", "chargeback",
                                        "transfer",   "share"};
    return kind <= LEDGER_KIND_MAX ? names[kind] : "other";
}

/* Count credits that moved (reservations and releases are not moves). */
static void ledger__count(const struct ledger_op *op, int rc)
{
    if (rc != 0)
        return;
    const struct store_transfer *t = &op->result.transfer;
    switch (op->type) {
    case LEDGER_OP_TRANSFER:
    case LEDGER_OP_REVERSE:
        if ((t->flags & (LEDGER_TRANSFER_PENDING | LEDGER_TRANSFER_VOID)) == 0 && t->amount > 0)
            metrics_counter_add(metrics_std()->credits_moved,
                                (const char *[]){ledger_kind_name(t->kind)}, (double)t->amount);
        break;
    case LEDGER_OP_ACCOUNT_OPEN:
        if (op->one.amount > 0)
            metrics_counter_add(metrics_std()->credits_moved, (const char *[]){"bonus"},
                                (double)op->one.amount);
        break;
    case LEDGER_OP_BATCH:
        for (size_t i = 0; i < op->n; i++) {
            if ((op->reqs[i].flags & (LEDGER_TRANSFER_PENDING | LEDGER_TRANSFER_VOID)) == 0)
                metrics_counter_add(metrics_std()->credits_moved,
                                    (const char *[]){ledger_kind_name(op->reqs[i].kind)},
                                    (double)op->reqs[i].amount);
        }
        break;
    default:
        break;
    }
}

/* The account of an open that the store answered is known to exist. */
static void ledger__known_add(struct ledger *l, const char *id, uint32_t flags)
{
    if (map_count(l->known) >= LEDGER_KNOWN_MAX) {
        struct map *fresh = map_new(NULL);
        if (fresh == NULL)
            return;
        map_free(l->known);
        l->known = fresh;
    }
    (void)map_set(l->known, id, (void *)(uintptr_t)(flags + 1u));
}

static void ledger__done(struct store_job *job, int rc)
{
    struct ledger_op *op = (struct ledger_op *)job;
    struct ledger *l = op->ledger;
    if (op->type == LEDGER_OP_ACCOUNT_OPEN && !op->known && (rc == 0 || rc == HB_EEXISTS))
        ledger__known_add(l, op->one.id, op->one.flags);
    ledger__count(op, rc);
    if (op->type == LEDGER_OP_EXPIRE) {
        if (rc < 0)
            log_error("ledger.expire", "err=%s", hb_strerror(rc));
        else if (op->result.expired > 0)
            log_info("ledger.expired", "count=%zu", op->result.expired);
    }
    if (op->internal) {
        l->expire_running = false;
        /* After a failure, try again in a second rather than never. */
        if (rc < 0)
            ledger__timer_arm(l, ledger__now(l) + 1000);
    }
    if (rc == 0 || (op->type == LEDGER_OP_EXPIRE && rc >= 0))
        ledger__timer_arm(l, op->next_expiry);
    if (op->cb != NULL)
        op->cb(rc, &op->result, op->data);
    if (op->internal && l->expire_again && !l->closing) {
        l->expire_again = false;
        ledger__expire_submit(l);
    }
    ledger__op_free(op);
}

static struct ledger_op *ledger__op_new(struct ledger *l, enum ledger_op_type type, ledger_cb cb,
                                        void *data)
{
    struct ledger_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return NULL;
    op->job.run = ledger__run;
    op->job.done = ledger__done;
    op->ledger = l;
    op->type = type;
    op->now = ledger__now(l);
    op->cb = cb;
    op->data = data;
    return op;
}

static int ledger__op_submit(struct ledger *l, struct ledger_op *op)
{
    /* What a generation's path runs (reservation, post or void, split,
     * welcome, balance) sets each result it gives: it may share a
     * savepoint with its neighbours (store.h, store_job.grouped). */
    op->job.grouped = op->type == LEDGER_OP_TRANSFER || op->type == LEDGER_OP_BATCH ||
                      op->type == LEDGER_OP_ACCOUNT_OPEN || op->type == LEDGER_OP_BALANCE;
    /* A transfer's own id and the one it resolves are read first. A page
     * only shown goes to the store's readers. */
    int rc = l->closing  ? HB_ECANCELED
             : op->shown ? store_submit_read(l->store, &op->job)
                         : store_submit_keyed(l->store, &op->job, op->one.id, op->one.link);
    if (rc < 0)
        ledger__op_free(op);
    return rc;
}

static void ledger__expire_submit(struct ledger *l)
{
    if (l->closing)
        return;
    if (l->expire_running) {
        l->expire_again = true;
        return;
    }
    struct ledger_op *op = ledger__op_new(l, LEDGER_OP_EXPIRE, NULL, NULL);
    if (op == NULL) {
        ledger__timer_arm(l, ledger__now(l) + 1000);
        return;
    }
    op->internal = true;
    if (ledger__op_submit(l, op) == 0)
        l->expire_running = true;
}

/* Copy and check one caller request. */
static int ledger__req_init(struct ledger_req *r, const struct ledger_transfer *t)
{
    int rc = HB_EINVAL;
    memset(r, 0, sizeof(*r));
    if (t == NULL)
        goto out;
    if (ledger__copy(r->id, sizeof(r->id), LEDGER_ID_LEN_MAX, t->id) < 0 || r->id[0] == '\0' ||
        ledger__copy(r->debit, sizeof(r->debit), LEDGER_ID_LEN_MAX, t->debit) < 0 ||
        ledger__copy(r->credit, sizeof(r->credit), LEDGER_ID_LEN_MAX, t->credit) < 0 ||
        ledger__copy(r->link, sizeof(r->link), LEDGER_ID_LEN_MAX, t->pending_id) < 0 ||
        ledger__copy(r->ref, sizeof(r->ref), STORE_REF_SIZE - 1, t->ref) < 0 ||
        ledger__copy(r->tag, sizeof(r->tag), STORE_TAG_SIZE - 1, t->tag) < 0)
        goto out;
    r->amount = t->amount;
    r->kind = t->kind;
    r->flags = t->flags;
    r->timeout_ms = t->timeout_ms;
    r->guard = t->guard;
    r->guard_data = t->guard_data;
    if (r->kind > LEDGER_KIND_MAX || r->timeout_ms < 0 ||
        (r->guard != NULL && (r->flags & ~(LEDGER_TRANSFER_PENDING | LEDGER_TRANSFER_VOID)) != 0))
        goto out;
    switch (r->flags) {
    case 0:
    case LEDGER_TRANSFER_PENDING:
        if (r->debit[0] == '\0' || r->credit[0] == '\0' || strcmp(r->debit, r->credit) == 0 ||
            r->amount <= 0 || r->kind == 0 || r->link[0] != '\0' ||
            (r->flags == 0 && r->timeout_ms != 0))
            goto out;
        break;
    case LEDGER_TRANSFER_POST:
    case LEDGER_TRANSFER_VOID:
        if (r->link[0] == '\0' || r->timeout_ms != 0 || r->amount < 0 ||
            (r->flags == LEDGER_TRANSFER_POST && r->amount == 0))
            goto out;
        break;
    default:
        goto out;
    }
    rc = 0;
out:
    return rc;
}

int ledger_transfer_create(struct ledger *l, const struct ledger_transfer *t, ledger_cb cb,
                           void *data)
{
    return ledger_transfer_create_noted(l, t, NULL, cb, data);
}

int ledger_transfer_create_noted(struct ledger *l, const struct ledger_transfer *t,
                                 const struct ledger_note *note, ledger_cb cb, void *data)
{
    return ledger_transfer_create_notes(l, t, note, note != NULL ? 1 : 0, cb, data);
}

int ledger_transfer_create_notes(struct ledger *l, const struct ledger_transfer *t,
                                 const struct ledger_note *notes, size_t n, ledger_cb cb,
                                 void *data)
{
    if (n > LEDGER_NOTES_MAX || (n > 0 && notes == NULL))
        return HB_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (notes[i].ns == NULL || notes[i].key == NULL)
            return HB_EINVAL;
    }
    struct ledger_op *op = ledger__op_new(l, LEDGER_OP_TRANSFER, cb, data);
    if (op == NULL)
        return HB_ENOMEM;
    int rc = ledger__req_init(&op->one, t);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        op->note_ns[i] = strdup(notes[i].ns);
        op->note_key[i] = strdup(notes[i].key);
        op->note_value[i] = notes[i].value != NULL ? strdup(notes[i].value) : NULL;
        op->nnotes = i + 1;
        if (op->note_ns[i] == NULL || op->note_key[i] == NULL ||
            (notes[i].value != NULL && op->note_value[i] == NULL))
            rc = HB_ENOMEM;
    }
    if (rc < 0) {
        ledger__op_free(op);
        return rc;
    }
    /* A reservation is a hold, not a movement: answered once committed,
     * before the commit's sync (storage/store.h, early). */
    op->job.early = (op->one.flags & LEDGER_TRANSFER_PENDING) != 0;
    return ledger__op_submit(l, op);
}

int ledger_transfer_post(struct ledger *l, const char *id, const char *pending_id, int64_t amount,
                         ledger_cb cb, void *data)
{
    return ledger_transfer_post_noted(l, id, pending_id, amount, NULL, cb, data);
}

int ledger_transfer_post_noted(struct ledger *l, const char *id, const char *pending_id,
                               int64_t amount, const struct ledger_note *note, ledger_cb cb,
                               void *data)
{
    struct ledger_transfer t = {
        .id = id, .pending_id = pending_id, .amount = amount, .flags = LEDGER_TRANSFER_POST};
    return ledger_transfer_create_noted(l, &t, note, cb, data);
}

int ledger_transfer_post_split(struct ledger *l, const struct ledger_transfer *post,
                               const struct ledger_share *shares, size_t n,
                               const struct ledger_note *note, ledger_cb cb, void *data)
{
    if (post == NULL || (n > 0 && shares == NULL) || n > LEDGER_SHARES_MAX ||
        (note != NULL && (note->ns == NULL || note->key == NULL)))
        return HB_EINVAL;
    int64_t amount = post->amount;
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (shares[i].amount <= 0 || __builtin_add_overflow(sum, shares[i].amount, &sum))
            return HB_EINVAL;
    }
    if (n > 0 && sum != amount)
        return HB_EINVAL;
    struct ledger_op *op = ledger__op_new(l, LEDGER_OP_TRANSFER, cb, data);
    if (op == NULL)
        return HB_ENOMEM;
    struct ledger_transfer t = {.id = post->id,
                                .pending_id = post->pending_id,
                                .amount = amount,
                                .flags = LEDGER_TRANSFER_POST};
    int rc = ledger__req_init(&op->one, &t);
    /* Only this call gives a post a guard (ledger_transfer_create refuses
     * one): the settlement's counts move with its charge. */
    op->one.guard = post->guard;
    op->one.guard_data = post->guard_data;
    if (rc == 0 && n > 0)
        op->reqs = calloc(n, sizeof(*op->reqs));
    if (rc == 0 && n > 0 && op->reqs == NULL)
        rc = HB_ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct ledger_req *r = &op->reqs[i];
        int len = snprintf(r->id, sizeof(r->id), "%s:s%zu", op->one.id, i);
        if (len < 0 || len > LEDGER_ID_LEN_MAX ||
            ledger__copy(r->credit, sizeof(r->credit), LEDGER_ID_LEN_MAX, shares[i].account) < 0 ||
            r->credit[0] == '\0')
            rc = HB_EINVAL;
        r->amount = shares[i].amount;
        r->kind = LEDGER_KIND_SHARE;
    }
    op->n = n;
    if (rc == 0 && note != NULL) {
        op->note_ns[0] = strdup(note->ns);
        op->note_key[0] = strdup(note->key);
        op->note_value[0] = note->value != NULL ? strdup(note->value) : NULL;
        op->nnotes = 1;
        if (op->note_ns[0] == NULL || op->note_key[0] == NULL ||
            (note->value != NULL && op->note_value[0] == NULL))
            rc = HB_ENOMEM;
    }
    if (rc < 0) {
        ledger__op_free(op);
        return rc;
    }
    return ledger__op_submit(l, op);
}

int ledger_transfer_void(struct ledger *l, const char *id, const char *pending_id, ledger_cb cb,
                         void *data)
{
    return ledger_transfer_void_noted(l, id, pending_id, NULL, cb, data);
}

int ledger_transfer_void_noted(struct ledger *l, const char *id, const char *pending_id,
                               const struct ledger_note *note, ledger_cb cb, void *data)
{
    struct ledger_transfer t = {.id = id, .pending_id = pending_id, .flags = LEDGER_TRANSFER_VOID};
    return ledger_transfer_create_noted(l, &t, note, cb, data);
}

int ledger_batch_create(struct ledger *l, const struct ledger_transfer *ts, size_t n, ledger_cb cb,
                        void *data)
{
    int rc = 0;
    struct ledger_op *op = NULL;
    if (ts == NULL || n == 0 || n > 10000) {
        rc = HB_EINVAL;
        goto out;
    }
    op = ledger__op_new(l, LEDGER_OP_BATCH, cb, data);
    if (op != NULL)
        op->reqs = calloc(n, sizeof(*op->reqs));
    if (op == NULL || op->reqs == NULL) {
        rc = HB_ENOMEM;
        goto out;
    }
    op->n = n;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = ledger__req_init(&op->reqs[i], &ts[i]);
    if (rc < 0)
        goto out;
    rc = ledger__op_submit(l, op);
    op = NULL;
out:
    ledger__op_free(op);
    return rc;
}

/* An operation whose only argument is one id or account id. */
static int ledger__simple(struct ledger *l, enum ledger_op_type type, const char *id, ledger_cb cb,
                          void *data, struct ledger_op **opp)
{
    struct ledger_op *op = ledger__op_new(l, type, cb, data);
    if (op == NULL)
        return HB_ENOMEM;
    if (ledger__copy(op->one.id, sizeof(op->one.id), LEDGER_ID_LEN_MAX, id) < 0 ||
        op->one.id[0] == '\0') {
        ledger__op_free(op);
        return HB_EINVAL;
    }
    if (opp != NULL) {
        *opp = op;
        return 0;
    }
    return ledger__op_submit(l, op);
}

static void ledger__idle_closed(uv_handle_t *handle);

/* The operations answered without the store, in the order they were
 * asked, each as if the store had answered it. */
static void ledger__ready_run(uv_idle_t *idle)
{
    struct ledger *l = idle->data;
    struct ledger_op *op = l->ready_head;
    l->ready_head = l->ready_tail = NULL;
    while (op != NULL) {
        struct ledger_op *next = (struct ledger_op *)op->job.next;
        op->job.next = NULL;
        ledger__done(&op->job, op->job.rc);
        op = next;
    }
    if (l->ready_head == NULL) {
        uv_idle_stop(&l->ready);
        if (l->closing && !uv_is_closing((uv_handle_t *)&l->ready))
            uv_close((uv_handle_t *)&l->ready, ledger__idle_closed);
    }
}

/* An open of an account known to exist: the store would say "exists" (or
 * "conflict" for other flags), and the bonus is never given twice. */
static bool ledger__known_open(struct ledger *l, struct ledger_op *op)
{
    void *v = !l->closing ? map_get(l->known, op->one.id) : NULL;
    if (v == NULL)
        return false;
    op->known = true;
    if ((uint32_t)((uintptr_t)v - 1u) == op->one.flags) {
        op->job.rc = HB_EEXISTS;
    } else {
        op->job.rc = HB_ECONFLICT;
        op->result.field = "flags";
    }
    op->job.next = NULL;
    if (l->ready_tail != NULL)
        l->ready_tail->job.next = &op->job;
    else
        l->ready_head = op;
    l->ready_tail = op;
    uv_idle_start(&l->ready, ledger__ready_run);
    return true;
}

int ledger_account_open(struct ledger *l, const char *account, uint32_t flags, int64_t bonus,
                        ledger_cb cb, void *data)
{
    struct ledger_op *op = NULL;
    if (bonus < 0 || (flags & ~LEDGER_ACCOUNT_NO_OVERDRAFT) != 0)
        return HB_EINVAL;
    int rc = ledger__simple(l, LEDGER_OP_ACCOUNT_OPEN, account, cb, data, &op);
    if (rc < 0)
        return rc;
    op->one.flags = flags;
    op->one.amount = bonus;
    if (ledger__known_open(l, op))
        return 0;
    return ledger__op_submit(l, op);
}

int ledger_transfer_reverse(struct ledger *l, const char *id, const char *original_id,
                            int64_t amount, uint32_t kind, const char *ref, ledger_cb cb,
                            void *data)
{
    struct ledger_op *op = NULL;
    if (amount <= 0 || (kind != LEDGER_KIND_REFUND && kind != LEDGER_KIND_REVERSAL &&
                        kind != LEDGER_KIND_CHARGEBACK))
        return HB_EINVAL;
    int rc = ledger__simple(l, LEDGER_OP_REVERSE, id, cb, data, &op);
    if (rc < 0)
        return rc;
    if (ledger__copy(op->one.link, sizeof(op->one.link), LEDGER_ID_LEN_MAX, original_id) < 0 ||
        op->one.link[0] == '\0' ||
        ledger__copy(op->one.ref, sizeof(op->one.ref), STORE_REF_SIZE - 1, ref) < 0) {
        ledger__op_free(op);
        return HB_EINVAL;
    }
    op->one.amount = amount;
    op->one.kind = kind;
    op->one.flags = LEDGER_TRANSFER_REVERSAL;
    return ledger__op_submit(l, op);
}

int ledger_transfer_get(struct ledger *l, const char *id, ledger_cb cb, void *data)
{
    return ledger__simple(l, LEDGER_OP_GET, id, cb, data, NULL);
}

int ledger_balance_get(struct ledger *l, const char *account, ledger_cb cb, void *data)
{
    return ledger__simple(l, LEDGER_OP_BALANCE, account, cb, data, NULL);
}

int ledger_history_get(struct ledger *l, const char *account, uint64_t before_seq, size_t limit,
                       ledger_cb cb, void *data)
{
    struct ledger_op *op = NULL;
    if (limit == 0 || limit > LEDGER_HISTORY_MAX)
        return HB_EINVAL;
    int rc = ledger__simple(l, LEDGER_OP_HISTORY, account, cb, data, &op);
    if (rc < 0)
        return rc;
    op->rows = calloc(limit, sizeof(*op->rows));
    if (op->rows == NULL) {
        ledger__op_free(op);
        return HB_ENOMEM;
    }
    op->n = limit;
    op->before_seq = before_seq;
    op->shown = true;
    return ledger__op_submit(l, op);
}

static int ledger__usage(struct ledger *l, const char *account, int64_t from_ms, int64_t to_ms,
                         bool shown, ledger_cb cb, void *data)
{
    struct ledger_op *op = NULL;
    int rc = 0;
    if (from_ms > to_ms)
        return HB_EINVAL;
    if (account != NULL) {
        rc = ledger__simple(l, LEDGER_OP_USAGE, account, cb, data, &op);
    } else {
        op = ledger__op_new(l, LEDGER_OP_USAGE, cb, data);
        rc = op != NULL ? 0 : HB_ENOMEM;
    }
    if (rc < 0)
        return rc;
    op->any_account = account == NULL;
    op->from = from_ms;
    op->to = to_ms;
    op->usage = calloc(LEDGER_USAGE_MAX, sizeof(*op->usage));
    if (op->usage == NULL) {
        ledger__op_free(op);
        return HB_ENOMEM;
    }
    op->shown = shown;
    return ledger__op_submit(l, op);
}

int ledger_usage_get(struct ledger *l, const char *account, int64_t from_ms, int64_t to_ms,
                     ledger_cb cb, void *data)
{
    return ledger__usage(l, account, from_ms, to_ms, true, cb, data);
}

int ledger_usage_exact(struct ledger *l, const char *account, int64_t from_ms, int64_t to_ms,
                       ledger_cb cb, void *data)
{
    return ledger__usage(l, account, from_ms, to_ms, false, cb, data);
}

int ledger_expire_run(struct ledger *l, ledger_cb cb, void *data)
{
    struct ledger_op *op = ledger__op_new(l, LEDGER_OP_EXPIRE, cb, data);
    if (op == NULL)
        return HB_ENOMEM;
    return ledger__op_submit(l, op);
}

int ledger_head_get(struct ledger *l, ledger_cb cb, void *data)
{
    struct ledger_op *op = ledger__op_new(l, LEDGER_OP_HEAD, cb, data);
    if (op == NULL)
        return HB_ENOMEM;
    return ledger__op_submit(l, op);
}

/* ---- Start and close ------------------------------------------------------------- */

/* Before the thread starts: create the system accounts and void what
 * expired while the daemon was down (or crashed). Returns the next expiry. */
static int ledger__startup(struct ledger *l, int64_t *next_expiry)
{
    static const char *const system_accounts[] = {LEDGER_SYSTEM_DEPOSITS, LEDGER_SYSTEM_BONUS,
                                                  LEDGER_SYSTEM_GRANTS, LEDGER_SYSTEM_REVENUE};
    struct store_txn *txn = NULL;
    struct ledger_op *op = ledger__op_new(l, LEDGER_OP_EXPIRE, NULL, NULL);
    int rc = op != NULL ? 0 : HB_ENOMEM;
    if (rc < 0)
        goto out;
    rc = store_txn_begin(l->store, true, &txn);
    if (rc < 0)
        goto out;
    for (size_t i = 0; i < sizeof(system_accounts) / sizeof(system_accounts[0]); i++) {
        struct store_account a;
        rc = store_txn_account_get(txn, system_accounts[i], &a);
        if (rc == HB_ENOTFOUND) {
            memset(&a, 0, sizeof(a));
            snprintf(a.id, sizeof(a.id), "%s", system_accounts[i]);
            a.created_at = op->now;
            rc = store_txn_account_insert(txn, &a);
        }
        if (rc < 0)
            goto out;
    }
    rc = ledger__expire_run(txn, op);
    if (rc < 0)
        goto out;
    rc = store_txn_end(txn, true);
    txn = NULL;
    if (rc < 0)
        goto out;
    if (op->result.expired > 0)
        log_info("ledger.expired", "count=%zu at=start", op->result.expired);
    *next_expiry = op->next_expiry;
out:
    if (txn != NULL)
        store_txn_end(txn, false);
    ledger__op_free(op);
    return rc;
}

/* A ledger that failed to start: freed once both its handles are closed. */
static void ledger__free_on_close(uv_handle_t *handle)
{
    struct ledger *l = handle->data;
    if (--l->close_pending == 0)
        free(l);
}

struct ledger *ledger_new(uv_loop_t *loop, const struct ledger_options *opts, int *rc_out)
{
    int rc = 0;
    int64_t next = 0;
    struct ledger *l = NULL;
    if (loop == NULL || opts == NULL) {
        rc = HB_EINVAL;
        goto out;
    }
    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        rc = HB_ENOMEM;
        goto out;
    }
    l->loop = loop;
    l->clock = opts->clock;
    l->timer_enabled = !opts->no_expire_timer;
    if (opts->backend == STORE_BACKEND_POSTGRES)
        l->poll_ms = opts->expire_poll_ms > 0 ? opts->expire_poll_ms : LEDGER_EXPIRE_POLL_MS;
    struct store_options so = {.backend = opts->backend,
                               .path = opts->path,
                               .url = opts->url,
                               .single_commit = opts->single_commit,
                               .relaxed_sync = opts->relaxed_sync,
                               .batch_max = opts->batch_max,
                               .readers = opts->readers,
                               .spin_us = opts->spin_us};
    l->store = store_new(&so, &rc);
    if (l->store == NULL)
        goto out;
    rc = ledger__startup(l, &next);
    if (rc < 0)
        goto out;
    l->known = map_new(NULL);
    if (l->known == NULL) {
        rc = HB_ENOMEM;
        goto out;
    }
    rc = uv_timer_init(loop, &l->timer);
    if (rc < 0)
        goto out;
    l->timer.data = l;
    uv_idle_init(loop, &l->ready); /* cannot fail */
    l->ready.data = l;
    rc = store_start(l->store, loop);
    if (rc < 0) {
        /* The handles are initialised: they must be closed, not freed. */
        l->closing = true;
        store_free(l->store);
        map_free(l->known);
        l->close_pending = 2;
        uv_close((uv_handle_t *)&l->ready, ledger__free_on_close);
        uv_close((uv_handle_t *)&l->timer, ledger__free_on_close);
        l = NULL;
        goto out;
    }
    ledger__timer_arm(l, next);
out:
    if (rc < 0 && l != NULL) {
        store_free(l->store);
        map_free(l->known);
        free(l);
        l = NULL;
    }
    if (rc_out != NULL)
        *rc_out = rc;
    return l;
}

static void ledger__close_step(struct ledger *l)
{
    if (--l->close_pending > 0)
        return;
    void (*cb)(void *data) = l->close_cb;
    void *data = l->close_data;
    store_free(l->store);
    map_free(l->known);
    free(l);
    if (cb != NULL)
        cb(data);
}

static void ledger__timer_closed(uv_handle_t *handle)
{
    ledger__close_step(handle->data);
}

static void ledger__idle_closed(uv_handle_t *handle)
{
    ledger__close_step(handle->data);
}

static void ledger__store_stopped(struct store *store, void *data)
{
    (void)store;
    ledger__close_step(data);
}

void ledger_close(struct ledger *l, void (*cb)(void *data), void *data)
{
    if (l == NULL || l->closing)
        return;
    l->closing = true;
    l->close_cb = cb;
    l->close_data = data;
    l->close_pending = 3;
    uv_timer_stop(&l->timer);
    uv_close((uv_handle_t *)&l->timer, ledger__timer_closed);
    /* Opens already answered are called back first (ledger__ready_run
     * closes the handle then). */
    if (l->ready_head == NULL)
        uv_close((uv_handle_t *)&l->ready, ledger__idle_closed);
    store_stop(l->store, ledger__store_stopped, l);
}

struct store *ledger_store(struct ledger *ledger)
{
    return ledger->store;
}

uv_loop_t *ledger_loop(struct ledger *ledger)
{
    return ledger->loop;
}

int64_t ledger_now_ms(const struct ledger *ledger)
{
    return ledger__now(ledger);
}
