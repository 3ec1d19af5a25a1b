#include "core/notice.h"

#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"
#include "base/map.h"
#include "base/util.h"
#include "core/format.h"
#include "core/messages.h"
#include "core/state.h"
#include "storage/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An account's last known side of the threshold, cached so a reading on
 * the same side as the last one costs no store write. */
enum notice_side { NOTICE_UNKNOWN = 0, NOTICE_ABOVE = 1, NOTICE_BELOW = 2 };

struct notices {
    struct store *store;
    notify_fn fn;
    void *fn_data;
    struct notice_options opts;
    struct map *sides; /* account -> enum notice_side, as the pointer's value */
    unsigned busy;     /* store reads out that answer into this */
    bool ticking;      /* a tick's look at the untold upvotes is under way */
    bool freed;        /* notices_free ran: free once busy is 0, tell nobody */
};

/* The owed row of a low-balance notice (NOTIFY_NS_PENDING). */
static void notice__owed_key(char *key, size_t cap, const char *account)
{
    snprintf(key, cap, NOTIFY_LOW_PREFIX "%s", account);
}

static void notice__destroy(struct notices *n)
{
    map_free(n->sides);
    free(n);
}

/* A store read that answers into n has gone out (hold) or answered
 * (release: the last answer after notices_free frees it). */
static void notice__hold(struct notices *n)
{
    n->busy++;
}

static void notice__release(struct notices *n)
{
    if (--n->busy == 0 && n->freed)
        notice__destroy(n);
}

struct notices *notices_new(struct store *store, notify_fn fn, void *fn_data,
                            const struct notice_options *opts)
{
    struct notices *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return NULL;
    n->store = store;
    n->fn = fn;
    n->fn_data = fn_data;
    n->sides = map_new(NULL);
    if (n->sides == NULL) {
        notices_free(n);
        return NULL;
    }
    notices_configure(n, opts);
    n->opts.clock = opts != NULL ? opts->clock : (struct clock){0};
    n->opts.shared = opts != NULL && opts->shared;
    return n;
}

void notices_free(struct notices *n)
{
    if (n == NULL)
        return;
    /* Reads still queued in the store answer later: they find n there,
     * freed, and send nothing. */
    n->freed = true;
    if (n->busy == 0)
        notice__destroy(n);
}

void notices_configure(struct notices *n, const struct notice_options *opts)
{
    struct clock c = n->opts.clock;
    bool shared = n->opts.shared;
    if (opts != NULL)
        n->opts = *opts;
    n->opts.clock = c;
    n->opts.shared = shared;
    if (n->opts.upvote_interval_ms <= 0)
        n->opts.upvote_interval_ms = NOTICE_UPVOTE_INTERVAL_MS;
    /* A new threshold may put any account on the other side. */
    map_free(n->sides);
    n->sides = map_new(NULL);
}

/* ---- opting out ----------------------------------------------------------- */

struct notice_optout_op {
    notices_optout_cb cb;
    void *data;
    bool off;
};

static void notice__optout_done(int rc, const char *value, void *data)
{
    struct notice_optout_op *op = data;
    bool off = op->off;
    if (rc == HB_ENOTFOUND) {
        rc = 0;
        off = false;
    } else if (rc == 0 && value != NULL) {
        off = strcmp(value, "off") == 0;
    }
    if (op->cb != NULL)
        op->cb(rc, off, op->data);
    free(op);
}

int notices_optout_set(struct store *store, const char *wallet, bool off, notices_optout_cb cb,
                       void *data)
{
    struct notice_optout_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return HB_ENOMEM;
    *op = (struct notice_optout_op){.cb = cb, .data = data, .off = off};
    int rc = 0;
    if (off) {
        /* A low-balance notice still owed (a standby's) is not sent now. */
        char key[STATE_KEY_MAX + 1];
        notice__owed_key(key, sizeof(key), wallet);
        rc = state_put(store, NOTIFY_NS_PENDING, key, NULL, NULL, NULL);
    }
    if (rc == 0)
        rc = state_put(store, NOTICE_NS_OFF, wallet, off ? "off" : NULL, notice__optout_done, op);
    if (rc < 0)
        free(op);
    return rc;
}

int notices_optout_get(struct store *store, const char *wallet, notices_optout_cb cb, void *data)
{
    struct notice_optout_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return HB_ENOMEM;
    *op = (struct notice_optout_op){.cb = cb, .data = data};
    int rc = state_get(store, NOTICE_NS_OFF, wallet, notice__optout_done, op);
    if (rc < 0)
        free(op);
    return rc;
}

/* ---- sending, unless the member turned notices off ----------------------- */

struct notice_send {
    struct notices *n;
    notify_fn fn;
    void *fn_data;
    char account[160];  /* whose notice it is */
    bool unmark_failed; /* a low-balance notice no adapter took: forget the crossing */
    int64_t upvotes;    /* an upvote notice's count: given back if no adapter took it */
    struct notify_target to;
    char kind[16];
    char text[512];
    void (*done)(void *data); /* once the notice was handed on (or not sent); may be NULL */
    void *done_data;
};

/* Leave a notice this daemon may not send (a standby: only the Telegram
 * poller sends to Telegram) in the notices owed, which the poller sends
 * once the row is a lease old. A newer low-balance notice replaces the
 * account's last one, and going back above the threshold removes it; each
 * upvote notice is a row of its own (its count was taken off the untold
 * ones). Returns 0, or a negative code (then a low balance's crossing is
 * forgotten, as when no adapter takes it). */
static int notice__owe(struct notice_send *s)
{
    char key[STATE_KEY_MAX + 1], value[1024];
    int64_t now = clock_now_ms(&s->n->opts.clock);
    if (s->unmark_failed)
        notice__owed_key(key, sizeof(key), s->account);
    else
        snprintf(key, sizeof(key), NOTIFY_UPVOTES_PREFIX "%s.%lld", s->account, (long long)now);
    int rc =
        notify_pending_text_value(value, sizeof(value), s->account, s->to.channel_id, s->text, now);
    return rc < 0 ? rc : state_put(s->n->store, NOTIFY_NS_PENDING, key, value, NULL, NULL);
}

static void notice__deliver(struct notice_send *s)
{
    struct notices *n = s->n;
    if (n->freed) {
        if (s->done != NULL)
            s->done(s->done_data);
        free(s);
        notice__release(n);
        return;
    }
    int rc = s->fn != NULL ? s->fn(s->fn_data, &s->to, s->text) : HB_ENOTFOUND;
    if (rc == HB_ESTATE && notice__owe(s) == 0) {
        /* A standby on a shared ledger: the poller tells it. */
        log_info("notice.owed", "kind=%s platform=%s", s->kind,
                 command_platform_name(s->to.platform));
    } else if (rc < 0) {
        log_warn("notice.not_sent", "kind=%s platform=%s error=%s", s->kind,
                 command_platform_name(s->to.platform), hb_strerror(rc));
        /* No adapter took it (none runs for the platform, or it refused):
         * forget the crossing, so the next low reading owes it again,
         * rather than drop it for good. */
        if (s->unmark_failed) {
            map_remove(s->n->sides, s->account);
            state_put(s->n->store, NOTICE_NS_LOW, s->account, NULL, NULL, NULL);
        }
        /* Upvotes told to nobody go back to the untold ones: the next
         * notice (an interval on, wherever an adapter takes it) has them. */
        int brc = s->upvotes > 0
                      ? state_incr(n->store, NOTICE_NS_UPVOTES, s->account, s->upvotes, NULL, NULL)
                      : 0;
        if (brc < 0)
            log_warn("notice.upvotes_not_stored", "error=%s", hb_strerror(brc));
    } else
        log_info("notice.sent", "kind=%s platform=%s", s->kind,
                 command_platform_name(s->to.platform));
    if (s->done != NULL)
        s->done(s->done_data);
    free(s);
    notice__release(n);
}

static void notice__optout_read(int rc, bool off, void *data)
{
    struct notice_send *s = data;
    if (rc == 0 && off) {
        struct notices *n = s->n;
        log_debug("notice.silenced", "kind=%s", s->kind);
        if (s->done != NULL)
            s->done(s->done_data);
        free(s);
        notice__release(n);
        return;
    }
    notice__deliver(s);
}

/* Send text to the owner of account unless it is a wallet whose member
 * turned notices off (a pool's notice goes to its group). done(done_data)
 * runs once after, whatever became of it (done may be NULL). */
static void notice__send(struct notices *n, const char *account, const char *channel,
                         const char *kind, const char *text, int64_t upvotes,
                         void (*done)(void *data), void *done_data)
{
    struct notice_send *s = calloc(1, sizeof(*s));
    if (s == NULL || notify_target_from_account(&s->to, account) < 0) {
        free(s);
        if (done != NULL)
            done(done_data);
        return;
    }
    s->n = n;
    s->fn = n->fn;
    s->fn_data = n->fn_data;
    snprintf(s->account, sizeof(s->account), "%s", account);
    s->unmark_failed = strcmp(kind, "low_balance") == 0;
    s->upvotes = upvotes;
    s->done = done;
    s->done_data = done_data;
    snprintf(s->kind, sizeof(s->kind), "%s", kind);
    snprintf(s->text, sizeof(s->text), "%s", text);
    if (s->to.scope == COMMAND_SCOPE_GROUP && channel != NULL && channel[0] != '\0')
        snprintf(s->to.channel_id, sizeof(s->to.channel_id), "%s", channel);
    notice__hold(n);
    if (strncmp(account, "pool:", 5) == 0 ||
        notices_optout_get(n->store, account, notice__optout_read, s) < 0)
        notice__deliver(s);
}

/* ---- low balance ---------------------------------------------------------- */

struct notice_low_op {
    struct notices *n;
    char account[160];
    char channel[COMMAND_ID_MAX];
    int64_t available;
    int64_t threshold;
    void (*done)(void *data);
    void *done_data;
};

/* Back at or above the threshold: the account's mark goes, and a low
 * notice still owed with it (no longer true), in one job that writes
 * nothing when there was no mark. */
struct notice_above_job {
    struct store_job job;
    char account[160];
};

static int notice__above_run(struct store_txn *txn, struct store_job *job)
{
    struct notice_above_job *j = container_of(job, struct notice_above_job, job);
    char *mark = NULL;
    int rc = store_txn_state_get(txn, NOTICE_NS_LOW, j->account, &mark);
    free(mark);
    if (rc == HB_ENOTFOUND)
        return HB_EEXISTS;
    if (rc < 0)
        return rc;
    char key[STATE_KEY_MAX + 1];
    notice__owed_key(key, sizeof(key), j->account);
    int64_t at = clock_real_ms();
    rc = store_txn_state_put(txn, NOTICE_NS_LOW, j->account, NULL, at);
    return rc < 0 ? rc : store_txn_state_put(txn, NOTIFY_NS_PENDING, key, NULL, at);
}

static void notice__above_done(struct store_job *job, int rc)
{
    if (rc < 0 && rc != HB_EEXISTS)
        log_warn("notice.low_not_stored", "error=%s", hb_strerror(rc));
    free(container_of(job, struct notice_above_job, job));
}

static int notice__above(struct notices *n, const char *account)
{
    struct notice_above_job *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return HB_ENOMEM;
    j->job = (struct store_job){.run = notice__above_run, .done = notice__above_done};
    snprintf(j->account, sizeof(j->account), "%s", account);
    int rc = store_submit(n->store, &j->job);
    if (rc < 0)
        free(j);
    return rc < 0 ? rc : 0;
}

static void notice__low_counted(int rc, const char *value, void *data)
{
    struct notice_low_op *op = data;
    struct notices *n = op->n;
    void (*done)(void *) = op->done;
    void *done_data = op->done_data;
    /* The first low reading since the account was last at or above the
     * threshold moves the count to 1: that one reading owes the notice. */
    if (rc == 0 && value != NULL && strcmp(value, "1") == 0 && !n->freed) {
        char credits[32], threshold[32], text[512];
        format_credits(credits, sizeof(credits), op->available);
        format_credits(threshold, sizeof(threshold), op->threshold);
        snprintf(text, sizeof(text),
                 strncmp(op->account, "pool:", 5) == 0 ? MSG_NOTICE_LOW_POOL
                                                       : MSG_NOTICE_LOW_WALLET,
                 credits, threshold);
        notice__send(n, op->account, op->channel, "low_balance", text, 0, done, done_data);
        free(op);
        notice__release(n);
        return;
    }
    if (rc < 0)
        log_warn("notice.low_not_stored", "error=%s", hb_strerror(rc));
    free(op);
    if (done != NULL)
        done(done_data);
    notice__release(n);
}

int notices_balance(struct notices *n, const char *account, int64_t available, const char *channel,
                    void (*done)(void *data), void *data)
{
    if (n == NULL || n->opts.low_balance <= 0 || account == NULL)
        return 0;
    enum notice_side side = available < n->opts.low_balance ? NOTICE_BELOW : NOTICE_ABOVE;
    int rc = 0;
    if (!n->opts.shared) {
        /* Alone on its ledger, this daemon saw every reading: one on the
         * side of the last needs nothing of the store. With others, one of
         * theirs may have moved the account across in between. */
        if ((enum notice_side)(uintptr_t)map_get(n->sides, account) == side)
            return 0;
        rc = map_set(n->sides, account, (void *)(uintptr_t)side);
        if (rc < 0)
            return rc;
    }
    if (side == NOTICE_ABOVE)
        return notice__above(n, account);
    struct notice_low_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return HB_ENOMEM;
    *op = (struct notice_low_op){.n = n,
                                 .available = available,
                                 .threshold = n->opts.low_balance,
                                 .done = done,
                                 .done_data = data};
    snprintf(op->account, sizeof(op->account), "%s", account);
    snprintf(op->channel, sizeof(op->channel), "%s", channel != NULL ? channel : "");
    rc = state_incr(n->store, NOTICE_NS_LOW, account, 1, notice__low_counted, op);
    if (rc < 0) {
        free(op);
        map_remove(n->sides, account);
        return rc;
    }
    notice__hold(n);
    return 1;
}

/* ---- upvotes -------------------------------------------------------------- */

/* The upvotes not told yet are counted in the store (NOTICE_NS_UPVOTES),
 * beside the time of each creator's last notice (NOTICE_NS_UPVOTED), and
 * whether a notice is due is decided there too, in the job that counts the
 * vote (or a tick's look): a restart forgets none and tells none sooner
 * than the interval, and daemons sharing a ledger count one total and tell
 * it once an interval, whichever daemon's vote or tick finds it due. */

struct notice_upvote_job {
    struct store_job job;
    struct notices *n;
    char key[160]; /* "<platform>:<creator>": the creator's wallet */
    int64_t delta; /* 1: a vote; 0: a tick's look */
    int64_t now;   /* by the notices' clock */
    int64_t interval;
    int64_t tell; /* out: the count to tell now; 0: none */
};

static int notice__upvote_run(struct store_txn *txn, struct store_job *job)
{
    struct notice_upvote_job *j = container_of(job, struct notice_upvote_job, job);
    char *value = NULL;
    int rc = store_txn_state_get(txn, NOTICE_NS_UPVOTES, j->key, &value);
    if (rc < 0 && rc != HB_ENOTFOUND)
        return rc;
    int64_t count = (value != NULL ? strtoll(value, NULL, 10) : 0) + j->delta;
    free(value);
    value = NULL;
    rc = store_txn_state_get(txn, NOTICE_NS_UPVOTED, j->key, &value);
    if (rc < 0 && rc != HB_ENOTFOUND)
        return rc;
    int64_t last = value != NULL ? strtoll(value, NULL, 10) : 0;
    free(value);
    int64_t at = clock_real_ms();
    char text[32];
    if (count > 0 && (last == 0 || j->now - last >= j->interval)) {
        /* Due: told now, so counted no more. */
        j->tell = count;
        snprintf(text, sizeof(text), "%lld", (long long)j->now);
        rc = store_txn_state_put(txn, NOTICE_NS_UPVOTED, j->key, text, at);
        return rc < 0 ? rc : store_txn_state_put(txn, NOTICE_NS_UPVOTES, j->key, NULL, at);
    }
    if (count <= 0) /* nothing untold (a row an older build left at 0) */
        return store_txn_state_put(txn, NOTICE_NS_UPVOTES, j->key, NULL, at);
    if (j->delta == 0)
        return HB_EEXISTS; /* not due yet: nothing written */
    snprintf(text, sizeof(text), "%lld", (long long)count);
    return store_txn_state_put(txn, NOTICE_NS_UPVOTES, j->key, text, at);
}

static void notice__upvote_done(struct store_job *job, int rc)
{
    struct notice_upvote_job *j = container_of(job, struct notice_upvote_job, job);
    struct notices *n = j->n;
    if (rc < 0 && rc != HB_EEXISTS)
        log_warn("notice.upvotes_not_stored", "error=%s", hb_strerror(rc));
    else if (j->tell > 0 && !n->freed && n->opts.upvotes) {
        char count[32], text[512];
        format_credits(count, sizeof(count), j->tell);
        snprintf(text, sizeof(text), MSG_NOTICE_UPVOTES, count, j->tell == 1 ? "" : "s");
        /* The key is the wallet. */
        notice__send(n, j->key, NULL, "upvotes", text, j->tell, NULL, NULL);
    }
    free(j);
    notice__release(n);
}

/* Count delta more upvotes of key's images (0: only look) and tell them if
 * a notice is due. */
static int notice__upvote_submit(struct notices *n, const char *key, int64_t delta)
{
    struct notice_upvote_job *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return HB_ENOMEM;
    *j = (struct notice_upvote_job){.job = {.run = notice__upvote_run, .done = notice__upvote_done},
                                    .n = n,
                                    .delta = delta,
                                    .now = clock_now_ms(&n->opts.clock),
                                    .interval = n->opts.upvote_interval_ms};
    snprintf(j->key, sizeof(j->key), "%s", key);
    int rc = store_submit(n->store, &j->job);
    if (rc < 0) {
        free(j);
        return rc;
    }
    notice__hold(n);
    return 0;
}

void notices_upvote(struct notices *n, enum command_platform platform, const char *creator)
{
    if (n == NULL || !n->opts.upvotes || creator == NULL || creator[0] == '\0')
        return;
    char key[160];
    snprintf(key, sizeof(key), "%s:%s", command_platform_name(platform), creator);
    int rc = notice__upvote_submit(n, key, 1);
    if (rc < 0)
        log_warn("notice.upvotes_not_stored", "error=%s", hb_strerror(rc));
}

#define NOTICE_TICK_PAGE 1000 /* creators with untold upvotes looked at per store read */

/* A page of the creators with untold upvotes: each is looked at in its
 * own job, which tells them if their interval passed. */
static void notice__untold_listed(int rc, const struct state_entry *e, size_t count, void *data)
{
    struct notices *n = data;
    for (size_t i = 0; rc == 0 && !n->freed && n->opts.upvotes && i < count; i++)
        if (notice__upvote_submit(n, e[i].key, 0) < 0)
            rc = HB_ENOMEM;
    if (rc == 0 && !n->freed && n->opts.upvotes &&
        state_list_after(n->store, NOTICE_NS_UPVOTES, e, count, NOTICE_TICK_PAGE,
                         notice__untold_listed, n) == 0)
        return; /* a full page: the next one follows */
    if (rc < 0)
        log_warn("notice.upvotes_not_read", "error=%s", hb_strerror(rc));
    n->ticking = false;
    notice__release(n);
}

void notices_tick(struct notices *n)
{
    if (n == NULL || !n->opts.upvotes || n->ticking)
        return;
    n->ticking = true;
    notice__hold(n);
    if (state_list_range(n->store, NOTICE_NS_UPVOTES, "", NULL, NOTICE_TICK_PAGE,
                         notice__untold_listed, n) < 0) {
        n->ticking = false;
        notice__release(n);
    }
}
