/* One wallet across platforms (core/link.h): the links in memory in front
 * of the store's wallet_links table, the checks, and the two store
 * operations that change links (the codes: core/link_code.c). */
#include "core/link.h"
#include "core/link_internal.h"

#include "base/error.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/map.h"
#include "base/util.h"
#include "core/core.h"
#include "core/ledger.h"
#include "storage/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

struct link_entry {
    char wallet[LINK_IDENTITY_MAX]; /* the wallet account the identity spends */
    int64_t linked_at;              /* ms since the epoch */
};

struct link_waiter {
    struct link_waiter *next;
    char a[LINK_IDENTITY_MAX], b[LINK_IDENTITY_MAX];
    void (*cb)(void *data);
    void *data;
};

static char link__busy_mark = 1;

struct link_dir *link_dir_new(void)
{
    struct link_dir *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    d->links = map_new(free);
    d->busy = map_new(NULL);
    if (d->links == NULL || d->busy == NULL) {
        link_dir_free(d);
        return NULL;
    }
    return d;
}

void link_dir_free(struct link_dir *d)
{
    if (d == NULL)
        return;
    /* Every link being written ends (the ledger answers or cancels it)
     * before the directory goes, and runs its waiters then: any left have
     * nothing to call back into. */
    while (d->waiters != NULL) {
        struct link_waiter *w = d->waiters;
        d->waiters = w->next;
        free(w);
    }
    map_free(d->links);
    map_free(d->busy);
    free(d);
}

static bool link__busy(const struct link_dir *d, const char *a, const char *b)
{
    return map_get(d->busy, a) != NULL || map_get(d->busy, b) != NULL;
}

int link_when_idle(struct core *core, const char *a, const char *b, void (*cb)(void *data),
                   void *data)
{
    struct link_dir *d = core->links;
    if (d == NULL)
        return HB_ECANCELED;
    if (!link__busy(d, a, b)) {
        cb(data);
        return 0;
    }
    struct link_waiter *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return HB_ENOMEM;
    snprintf(w->a, sizeof(w->a), "%s", a);
    snprintf(w->b, sizeof(w->b), "%s", b);
    w->cb = cb;
    w->data = data;
    w->next = d->waiters;
    d->waiters = w;
    return 0;
}

/* A link was written or failed: the waiters whose identities are no longer
 * busy are called (a call may start another link, and wait again). */
static void link__waiters_run(struct link_dir *d)
{
    struct link_waiter *w = d->waiters;
    d->waiters = NULL;
    while (w != NULL) {
        struct link_waiter *next = w->next;
        if (link__busy(d, w->a, w->b)) {
            w->next = d->waiters;
            d->waiters = w;
        } else {
            void (*cb)(void *data) = w->cb;
            void *data = w->data;
            free(w);
            cb(data);
        }
        w = next;
    }
}

int link_identity(const struct invocation *inv, char *buf, size_t cap)
{
    return ledger_wallet_name(buf, cap, command_platform_name(inv->platform), inv->user_id);
}

const char *link_wallet(const struct core *core, const char *identity)
{
    if (core == NULL || core->links == NULL || identity == NULL)
        return NULL;
    const struct link_entry *e = map_get(core->links->links, identity);
    return e != NULL ? e->wallet : NULL;
}

int link_wallet_name(const struct core *core, const char *platform, const char *user, char *buf,
                     size_t cap)
{
    int rc = ledger_wallet_name(buf, cap, platform, user);
    if (rc < 0)
        return rc;
    const char *w = link_wallet(core, buf);
    if (w != NULL) {
        if (strlen(w) >= cap)
            return HB_EINVAL;
        memmove(buf, w, strlen(w) + 1);
    }
    return 0;
}

size_t link_count_into(const struct core *core, const char *wallet)
{
    if (core == NULL || core->links == NULL)
        return 0;
    size_t n = 0;
    struct map_iter it;
    void *v;
    map_iter_init(&it, core->links->links);
    while (map_iter_next(&it, NULL, &v)) {
        const struct link_entry *e = v;
        if (strcmp(e->wallet, wallet) == 0)
            n++;
    }
    return n;
}

/* The platform part of an identity ("discord" of "discord:7"): its length. */
static size_t link__platform_len(const char *identity)
{
    const char *colon = strchr(identity, ':');
    return colon != NULL ? (size_t)(colon - identity) : strlen(identity);
}

static bool link__same_platform(const char *a, const char *b)
{
    size_t n = link__platform_len(a);
    return n == link__platform_len(b) && strncmp(a, b, n) == 0;
}

/* ---- checks ------------------------------------------------------------- */

enum link_refusal link_check(const struct core *core, const char *joiner, const char *creator,
                             char *wallet, size_t cap)
{
    const struct link_dir *d = core->links;
    const char *w = link_wallet(core, creator);
    snprintf(wallet, cap, "%s", w != NULL ? w : creator);
    if (strcmp(joiner, creator) == 0 || strcmp(joiner, wallet) == 0)
        return LINK_SELF;
    if (link__same_platform(joiner, creator) || link__same_platform(joiner, wallet))
        return LINK_SAME_PLATFORM;
    if (link_wallet(core, joiner) != NULL)
        return LINK_JOINER_LINKED;
    if (link_count_into(core, joiner) > 0)
        return LINK_JOINER_HOLDS;
    struct map_iter it;
    const char *key;
    void *v;
    map_iter_init(&it, d->links);
    while (map_iter_next(&it, &key, &v)) {
        const struct link_entry *e = v;
        if (strcmp(e->wallet, wallet) == 0 && link__same_platform(key, joiner))
            return LINK_SAME_PLATFORM;
    }
    if (link__busy(d, joiner, wallet))
        return LINK_BUSY;
    return LINK_OK;
}

/* ---- the store ---------------------------------------------------------- */

static int link__set(struct link_dir *d, const char *identity, const char *wallet, int64_t at)
{
    struct link_entry *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return HB_ENOMEM;
    snprintf(e->wallet, sizeof(e->wallet), "%s", wallet);
    e->linked_at = at;
    if (map_set(d->links, identity, e) < 0) {
        free(e);
        return HB_ENOMEM;
    }
    return 0;
}

struct link_load_op {
    struct store_job job;
    struct core *core;
    struct link_dir *loaded;
    bool refresh; /* link_dir_refresh: the store's links replace these */
    void (*cb)(int rc, void *data);
    void *data;
};

static int link__collect(const char *identity, const char *wallet, int64_t linked_at, void *data)
{
    struct link_load_op *op = data;
    return link__set(op->loaded, identity, wallet, linked_at);
}

static int link__load_run(struct store_txn *txn, struct store_job *job)
{
    struct link_load_op *op = container_of(job, struct link_load_op, job);
    return store_txn_link_each(txn, link__collect, op);
}

/* Another daemon's links and unlinks, as the store has them now, except
 * for identities whose link this daemon is writing (their answer comes
 * after, and wins). */
static void link__replace(struct link_dir *d, struct link_dir *loaded)
{
    struct map_iter it;
    const char *key;
    void *v;
    map_iter_init(&it, d->links);
    while (map_iter_next(&it, &key, &v)) {
        if (map_get(loaded->links, key) == NULL && map_get(d->busy, key) == NULL)
            map_iter_remove(&it);
    }
    map_iter_init(&it, loaded->links);
    while (map_iter_next(&it, &key, &v)) {
        const struct link_entry *e = v;
        const struct link_entry *have = map_get(d->links, key);
        if (map_get(d->busy, key) == NULL &&
            (have == NULL || strcmp(have->wallet, e->wallet) != 0) &&
            link__set(d, key, e->wallet, e->linked_at) < 0)
            return;
    }
}

static void link__load_done(struct store_job *job, int rc)
{
    struct link_load_op *op = container_of(job, struct link_load_op, job);
    struct link_dir *d = op->core->links;
    if (d != NULL && op->refresh)
        d->refreshing = false;
    if (rc == 0 && d != NULL && op->refresh) {
        link__replace(d, op->loaded);
    } else if (rc == 0 && d != NULL) {
        /* Links written while the rows were read are newer: they stay. */
        struct map_iter it;
        const char *key;
        void *v;
        map_iter_init(&it, op->loaded->links);
        while (rc == 0 && map_iter_next(&it, &key, &v)) {
            const struct link_entry *e = v;
            if (map_get(d->links, key) == NULL)
                rc = link__set(d, key, e->wallet, e->linked_at);
        }
        log_info("link.loaded", "links=%zu", map_count(d->links));
    }
    if (rc < 0)
        log_error("link.not_loaded", "error=%s", hb_strerror(rc));
    if (op->cb != NULL)
        op->cb(rc, op->data);
    struct core *core = op->core;
    bool again = d != NULL && op->refresh && d->again;
    link_dir_free(op->loaded);
    free(op);
    if (again) {
        d->again = false;
        link_dir_refresh(core);
    }
}

static int link__load(struct core *core, bool refresh, void (*cb)(int rc, void *data), void *data);

int link_dir_load(struct core *core, void (*cb)(int rc, void *data), void *data)
{
    return link__load(core, false, cb, data);
}

int link_dir_refresh(struct core *core)
{
    if (core->links == NULL)
        return 0;
    if (core->links->refreshing) {
        /* The read under way may have begun before the change that asks
         * for this one was committed. */
        core->links->again = true;
        return 0;
    }
    int rc = link__load(core, true, NULL, NULL);
    if (rc == 0)
        core->links->refreshing = true;
    return rc;
}

static int link__load(struct core *core, bool refresh, void (*cb)(int rc, void *data), void *data)
{
    if (core->links == NULL)
        core->links = link_dir_new();
    struct link_load_op *op = core->links != NULL ? calloc(1, sizeof(*op)) : NULL;
    if (op != NULL)
        op->loaded = link_dir_new();
    int rc = op == NULL || op->loaded == NULL ? HB_ENOMEM : 0;
    if (rc == 0 && core->ledger == NULL)
        rc = HB_ECANCELED;
    if (rc < 0) {
        log_error("link.not_loaded", "error=%s", hb_strerror(rc));
        if (op != NULL)
            link_dir_free(op->loaded);
        free(op);
        return rc;
    }
    op->refresh = refresh;
    op->core = core;
    op->cb = cb;
    op->data = data;
    op->job.run = link__load_run;
    op->job.done = link__load_done;
    rc = store_submit(ledger_store(core->ledger), &op->job);
    if (rc < 0) {
        log_error("link.not_loaded", "error=%s", hb_strerror(rc));
        link_dir_free(op->loaded);
        free(op);
    }
    return rc;
}

/* ---- linking ------------------------------------------------------------ */

struct link_join_op {
    struct store_job job; /* writes the link when no balance moves */
    struct core *core;
    char joiner[LINK_IDENTITY_MAX];
    char wallet[LINK_IDENTITY_MAX];
    char id[LEDGER_ID_LEN_MAX + 1]; /* the balance's transfer */
    int64_t now;
    int64_t moved;
    int64_t held; /* reserved in the joiner's wallet: stays there */
    link_join_cb cb;
    void *data;
};

static void link__join_finish(struct link_join_op *op, int rc)
{
    struct link_dir *d = op->core->links;
    if (d != NULL) {
        map_remove(d->busy, op->joiner);
        map_remove(d->busy, op->wallet);
        if (rc == 0)
            rc = link__set(d, op->joiner, op->wallet, op->now);
    }
    if (rc < 0)
        log_warn("link.failed", "identity=%s wallet=%s error=%s", op->joiner, op->wallet,
                 hb_strerror(rc));
    else
        log_info("link.made", "identity=%s wallet=%s moved=%lld", op->joiner, op->wallet,
                 (long long)op->moved);
    op->cb(rc, rc == 0 ? op->moved : 0, rc == 0 ? op->held : 0, op->data);
    free(op);
    if (d != NULL)
        link__waiters_run(d);
}

/* One stored link against the one being made: another daemon's link,
 * made since this daemon last read them, that link_check would refuse. */
static int link__recheck_one(const char *identity, const char *wallet, int64_t linked_at,
                             void *data)
{
    const struct link_join_op *op = data;
    (void)linked_at;
    if (strcmp(identity, op->joiner) == 0)
        return strcmp(wallet, op->wallet) == 0 ? 0 : HB_ECONFLICT; /* the same: a replay */
    if (strcmp(wallet, op->joiner) == 0 || strcmp(identity, op->wallet) == 0 ||
        (strcmp(wallet, op->wallet) == 0 && link__same_platform(identity, op->joiner)))
        return HB_ECONFLICT;
    return 0;
}

/* The link, written in txn after the links as the store has them now are
 * checked again: daemons sharing a ledger each check in their own memory
 * first, and one may not have read another's newest link yet. */
static int link__write(struct store_txn *txn, const struct link_join_op *op)
{
    int rc = store_txn_link_each(txn, link__recheck_one, (void *)op);
    return rc < 0 ? rc : store_txn_link_put(txn, op->joiner, op->wallet, op->now);
}

static int link__row_run(struct store_txn *txn, struct store_job *job)
{
    return link__write(txn, container_of(job, struct link_join_op, job));
}

static void link__row_done(struct store_job *job, int rc)
{
    link__join_finish(container_of(job, struct link_join_op, job), rc);
}

/* The link written without a transfer (nothing to move). */
static void link__row_write(struct link_join_op *op)
{
    op->job.run = link__row_run;
    op->job.done = link__row_done;
    int rc = op->core->ledger != NULL ? store_submit(ledger_store(op->core->ledger), &op->job)
                                      : HB_ECANCELED;
    if (rc < 0)
        link__join_finish(op, rc);
}

/* Inside the transfer's own transaction: the link commits with it. */
static int link__guard(struct store_txn *txn, void *data)
{
    return link__write(txn, data);
}

static void link__moved(int rc, const struct ledger_result *r, void *data)
{
    struct link_join_op *op = data;
    (void)r;
    if (rc == HB_EEXISTS) {
        /* The same event again: the balance went already; make sure of the
         * link. */
        link__row_write(op);
        return;
    }
    link__join_finish(op, rc);
}

static void link__balance(int rc, const struct ledger_result *r, void *data)
{
    struct link_join_op *op = data;
    if (rc < 0) {
        link__join_finish(op, rc);
        return;
    }
    op->moved = r->balance.available > 0 ? r->balance.available : 0;
    op->held = r->balance.pending_debits;
    if (op->moved == 0) {
        link__row_write(op);
        return;
    }
    char ref[STORE_REF_SIZE];
    snprintf(ref, sizeof(ref), "link %.120s -> %.120s", op->joiner, op->wallet);
    struct ledger_transfer t = {.id = op->id,
                                .debit = op->joiner,
                                .credit = op->wallet,
                                .amount = op->moved,
                                .kind = LEDGER_KIND_TRANSFER,
                                .ref = ref,
                                .tag = LINK_TRANSFER_TAG,
                                .guard = link__guard,
                                .guard_data = op};
    rc = op->core->ledger != NULL ? ledger_transfer_create(op->core->ledger, &t, link__moved, op)
                                  : HB_ECANCELED;
    if (rc < 0)
        link__join_finish(op, rc);
}

static void link__opened(int rc, const struct ledger_result *r, void *data)
{
    struct link_join_op *op = data;
    (void)r;
    if (rc == HB_EEXISTS || rc == HB_ECONFLICT)
        rc = 0; /* the joiner's own wallet is there: no bonus */
    if (rc == 0)
        rc = op->core->ledger != NULL
                 ? ledger_balance_get(op->core->ledger, op->joiner, link__balance, op)
                 : HB_ECANCELED;
    if (rc < 0)
        link__join_finish(op, rc);
}

int link_join(struct core *core, const char *joiner, const char *wallet, const char *event,
              link_join_cb cb, void *data)
{
    if (core->links == NULL || core->ledger == NULL)
        return HB_ECANCELED;
    struct link_join_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return HB_ENOMEM;
    op->core = core;
    op->cb = cb;
    op->data = data;
    op->now = core_now_ms(core);
    snprintf(op->joiner, sizeof(op->joiner), "%s", joiner);
    snprintf(op->wallet, sizeof(op->wallet), "%s", wallet);
    /* Derived from the link's event, so a replay of it moves nothing twice;
     * an event id too long for the ledger is folded into a hash. */
    int n = snprintf(op->id, sizeof(op->id), "link:%s:%s", joiner, event);
    if (n < 0 || (size_t)n >= sizeof(op->id))
        snprintf(op->id, sizeof(op->id), "link:%s:%016llx", joiner,
                 (unsigned long long)hash_fnv1a64_str(event));
    if (map_set(core->links->busy, joiner, &link__busy_mark) < 0 ||
        map_set(core->links->busy, wallet, &link__busy_mark) < 0) {
        map_remove(core->links->busy, joiner);
        free(op);
        return HB_ENOMEM;
    }
    /* A wallet of its own, opened without a bonus: after an /unlink the
     * identity gets it back, and never a bonus of its own. */
    int rc =
        ledger_account_open(core->ledger, joiner, LEDGER_ACCOUNT_NO_OVERDRAFT, 0, link__opened, op);
    if (rc < 0) {
        map_remove(core->links->busy, joiner);
        map_remove(core->links->busy, wallet);
        free(op);
    }
    return rc;
}

/* ---- unlinking ---------------------------------------------------------- */

struct link_unlink_op {
    struct store_job job;
    struct core *core;
    char (*ids)[LINK_IDENTITY_MAX];
    size_t n;
    link_unlink_cb cb;
    void *data;
};

static int link__unlink_run(struct store_txn *txn, struct store_job *job)
{
    struct link_unlink_op *op = container_of(job, struct link_unlink_op, job);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < op->n; i++)
        rc = store_txn_link_remove(txn, op->ids[i]);
    return rc;
}

static void link__unlink_done(struct store_job *job, int rc)
{
    struct link_unlink_op *op = container_of(job, struct link_unlink_op, job);
    const char **names = calloc(op->n + 1, sizeof(*names));
    for (size_t i = 0; i < op->n; i++) {
        if (rc == 0 && op->core->links != NULL)
            map_remove(op->core->links->links, op->ids[i]);
        if (names != NULL)
            names[i] = op->ids[i];
        if (rc == 0)
            log_info("link.removed", "identity=%s", op->ids[i]);
    }
    if (rc < 0)
        log_warn("link.unlink_failed", "error=%s", hb_strerror(rc));
    op->cb(rc, names != NULL ? op->n : 0, names, op->data);
    free(names);
    free(op->ids);
    free(op);
}

int link_unlink(struct core *core, const char *identity, link_unlink_cb cb, void *data)
{
    if (core->links == NULL || core->ledger == NULL)
        return HB_ECANCELED;
    struct link_unlink_op *op = calloc(1, sizeof(*op));
    size_t cap = 1 + link_count_into(core, identity);
    if (op != NULL)
        op->ids = calloc(cap, sizeof(*op->ids));
    if (op == NULL || op->ids == NULL) {
        free(op);
        return HB_ENOMEM;
    }
    if (link_wallet(core, identity) != NULL) {
        snprintf(op->ids[op->n++], LINK_IDENTITY_MAX, "%s", identity);
    } else {
        struct map_iter it;
        const char *key;
        void *v;
        map_iter_init(&it, core->links->links);
        while (op->n < cap && map_iter_next(&it, &key, &v)) {
            const struct link_entry *e = v;
            if (strcmp(e->wallet, identity) == 0)
                snprintf(op->ids[op->n++], LINK_IDENTITY_MAX, "%s", key);
        }
    }
    op->core = core;
    op->cb = cb;
    op->data = data;
    op->job.run = link__unlink_run;
    op->job.done = link__unlink_done;
    int rc = store_submit(ledger_store(core->ledger), &op->job);
    if (rc < 0) {
        free(op->ids);
        free(op);
    }
    return rc;
}
