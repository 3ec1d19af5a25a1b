#include "core/notice.h"

#include "base/error.h"
#include "base/log.h"
#include "base/map.h"
#include "core/format.h"
#include "core/messages.h"
#include "core/state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An account's last known side of the threshold, cached so a reading on
 * the same side as the last one costs no store write. */
enum notice_side { NOTICE_UNKNOWN = 0, NOTICE_ABOVE = 1, NOTICE_BELOW = 2 };

struct notice_upvotes {
    enum command_platform platform;
    int64_t pending;   /* upvotes not told yet */
    int64_t last_sent; /* ms of the last notice; 0: never */
};

struct notices {
    struct store *store;
    notify_fn fn;
    void *fn_data;
    struct notice_options opts;
    struct map *sides;   /* account -> enum notice_side, as the pointer's value */
    struct map *upvotes; /* "<platform>:<creator>" -> struct notice_upvotes (owned) */
    unsigned busy;       /* store reads out that answer into this */
    bool freed;          /* notices_free ran: free once busy is 0, tell nobody */
};

/* The owed row of a low-balance notice (NOTIFY_NS_PENDING). */
static void notice__owed_key(char *key, size_t cap, const char *account)
{
    snprintf(key, cap, NOTIFY_LOW_PREFIX "%s", account);
}

static void notice__destroy(struct notices *n)
{
    map_free(n->sides);
    map_free(n->upvotes);
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
    n->upvotes = map_new(free);
    if (n->sides == NULL || n->upvotes == NULL) {
        notices_free(n);
        return NULL;
    }
    notices_configure(n, opts);
    n->opts.clock = opts != NULL ? opts->clock : (struct clock){0};
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
    if (opts != NULL)
        n->opts = *opts;
    n->opts.clock = c;
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
    struct notify_target to;
    char kind[16];
    char text[512];
    void (*done)(void *data); /* once the notice was handed on (or not sent); may be NULL */
    void *done_data;
};

/* Leave a low-balance notice this daemon may not send (a standby: only the
 * Telegram poller sends to Telegram) in the notices owed, which the poller
 * sends once the row is a lease old. A newer one replaces it; going back
 * above the threshold removes it. Returns 0, or a negative code (then the
 * crossing is forgotten, as when no adapter takes it). */
static int notice__owe(struct notice_send *s)
{
    char key[STATE_KEY_MAX + 1], value[1024];
    notice__owed_key(key, sizeof(key), s->account);
    int rc = notify_pending_text_value(value, sizeof(value), s->account, s->to.channel_id, s->text,
                                       clock_now_ms(&s->n->opts.clock));
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
    if (rc == HB_ESTATE && s->unmark_failed && notice__owe(s) == 0) {
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
                         const char *kind, const char *text, void (*done)(void *data),
                         void *done_data)
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
        notice__send(n, op->account, op->channel, "low_balance", text, done, done_data);
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
    if ((enum notice_side)(uintptr_t)map_get(n->sides, account) == side)
        return 0;
    int rc = map_set(n->sides, account, (void *)(uintptr_t)side);
    if (rc < 0)
        return rc;
    if (side == NOTICE_ABOVE) {
        /* Back above: a low notice still owed is no longer true. */
        char key[STATE_KEY_MAX + 1];
        notice__owed_key(key, sizeof(key), account);
        rc = state_put(n->store, NOTICE_NS_LOW, account, NULL, NULL, NULL);
        if (rc == 0)
            rc = state_put(n->store, NOTIFY_NS_PENDING, key, NULL, NULL, NULL);
        return rc < 0 ? rc : 0;
    }
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

/* The upvotes not told yet are also counted in the store (NOTICE_NS_UPVOTES,
 * moved by state_incr: +1 per vote, minus what a notice told) with the
 * time of each creator's last notice (NOTICE_NS_UPVOTED), so a restart
 * neither forgets them nor tells them sooner than the interval allows. */

static void notice__upvotes_tell(struct notices *n, const char *key, struct notice_upvotes *u,
                                 int64_t now)
{
    char count[32], text[512], at[32];
    format_credits(count, sizeof(count), u->pending);
    snprintf(text, sizeof(text), MSG_NOTICE_UPVOTES, count, u->pending == 1 ? "" : "s");
    state_incr(n->store, NOTICE_NS_UPVOTES, key, -u->pending, NULL, NULL);
    snprintf(at, sizeof(at), "%lld", (long long)now);
    state_put(n->store, NOTICE_NS_UPVOTED, key, at, NULL, NULL);
    u->pending = 0;
    u->last_sent = now;
    notice__send(n, key, NULL, "upvotes", text, NULL, NULL); /* the key is the wallet */
}

/* The creator's entry, made when missing. NULL on no memory. */
static struct notice_upvotes *notice__upvotes_entry(struct notices *n, const char *key,
                                                    enum command_platform platform)
{
    struct notice_upvotes *u = map_get(n->upvotes, key);
    if (u != NULL)
        return u;
    u = calloc(1, sizeof(*u));
    if (u == NULL || map_set(n->upvotes, key, u) < 0) {
        free(u);
        return NULL;
    }
    u->platform = platform;
    return u;
}

void notices_upvote(struct notices *n, enum command_platform platform, const char *creator)
{
    if (n == NULL || !n->opts.upvotes || creator == NULL || creator[0] == '\0')
        return;
    char key[160];
    snprintf(key, sizeof(key), "%s:%s", command_platform_name(platform), creator);
    struct notice_upvotes *u = notice__upvotes_entry(n, key, platform);
    if (u == NULL)
        return;
    u->pending++;
    state_incr(n->store, NOTICE_NS_UPVOTES, key, 1, NULL, NULL);
    int64_t now = clock_now_ms(&n->opts.clock);
    if (u->last_sent == 0 || now - u->last_sent >= n->opts.upvote_interval_ms)
        notice__upvotes_tell(n, key, u, now);
}

void notices_tick(struct notices *n)
{
    if (n == NULL)
        return;
    int64_t now = clock_now_ms(&n->opts.clock);
    struct map_iter it;
    map_iter_init(&it, n->upvotes);
    const char *key;
    void *value;
    while (map_iter_next(&it, &key, &value)) {
        struct notice_upvotes *u = value;
        if (now - u->last_sent < n->opts.upvote_interval_ms)
            continue;
        if (u->pending > 0 && n->opts.upvotes)
            notice__upvotes_tell(n, key, u, now);
        else if (u->pending == 0)
            map_iter_remove(&it); /* quiet for an interval: the next upvote goes at once */
    }
}

/* ---- reading back what a restart left ------------------------------------ */

#define NOTICE_LOAD_PAGE 1000 /* rows per store job (state_list's most) */

struct notice_load {
    struct notices *n;
    notices_cb cb;
    void *data;
    size_t waiting; /* reads of last-notice times not answered yet */
    bool listed;    /* every page of counts was read */
    int rc;
};

static void notice__load_maybe_done(struct notice_load *ld)
{
    if (!ld->listed || ld->waiting > 0)
        return;
    struct notices *n = ld->n;
    if (!n->freed) {
        log_info("notice.loaded", "creators=%zu", map_count(n->upvotes));
        if (ld->cb != NULL)
            ld->cb(ld->rc, ld->data);
    }
    free(ld);
    notice__release(n);
}

struct notice_sent_read {
    struct notice_load *ld;
    char key[160];
};

static void notice__sent_read(int rc, const char *value, void *data)
{
    struct notice_sent_read *r = data;
    struct notice_upvotes *u = map_get(r->ld->n->upvotes, r->key);
    if (u != NULL && rc == 0 && value != NULL)
        u->last_sent = strtoll(value, NULL, 10);
    r->ld->waiting--;
    notice__load_maybe_done(r->ld);
    free(r);
}

static void notice__counts_listed(int rc, const struct state_entry *entries, size_t n, void *data)
{
    struct notice_load *ld = data;
    struct notices *ns = ld->n;
    for (size_t i = 0; rc == 0 && !ns->freed && i < n; i++) {
        long long pending = strtoll(entries[i].value, NULL, 10);
        const char *colon = strchr(entries[i].key, ':');
        enum command_platform platform;
        if (pending <= 0 || colon == NULL)
            continue;
        if (strncmp(entries[i].key, "discord:", 8) == 0)
            platform = COMMAND_PLATFORM_DISCORD;
        else if (strncmp(entries[i].key, "telegram:", 9) == 0)
            platform = COMMAND_PLATFORM_TELEGRAM;
        else
            platform = COMMAND_PLATFORM_CONSOLE;
        struct notice_upvotes *u = notice__upvotes_entry(ns, entries[i].key, platform);
        struct notice_sent_read *r = u != NULL ? calloc(1, sizeof(*r)) : NULL;
        if (r == NULL) {
            rc = HB_ENOMEM;
            break;
        }
        u->pending = pending;
        /* Until its time is read, count the last notice as just sent:
         * never sooner than the interval. */
        u->last_sent = clock_now_ms(&ns->opts.clock);
        r->ld = ld;
        snprintf(r->key, sizeof(r->key), "%s", entries[i].key);
        ld->waiting++;
        if (state_get(ns->store, NOTICE_NS_UPVOTED, r->key, notice__sent_read, r) < 0) {
            ld->waiting--;
            free(r);
        }
    }
    if (rc == 0 && !ns->freed &&
        state_list_after(ns->store, NOTICE_NS_UPVOTES, entries, n, NOTICE_LOAD_PAGE,
                         notice__counts_listed, ld) == 0)
        return; /* a full page: the next one follows */
    if (rc < 0) {
        log_warn("notice.load_failed", "error=%s", hb_strerror(rc));
        ld->rc = rc;
    }
    ld->listed = true;
    notice__load_maybe_done(ld);
}

int notices_load(struct notices *n, notices_cb cb, void *data)
{
    struct notice_load *ld = calloc(1, sizeof(*ld));
    if (ld == NULL)
        return HB_ENOMEM;
    *ld = (struct notice_load){.n = n, .cb = cb, .data = data};
    int rc = state_list_range(n->store, NOTICE_NS_UPVOTES, "", NULL, NOTICE_LOAD_PAGE,
                              notice__counts_listed, ld);
    if (rc < 0)
        free(ld);
    else
        notice__hold(n);
    return rc;
}
