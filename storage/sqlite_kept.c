/* The accounts and limit counters the writer reads and writes, kept in
 * memory for as long as they are surely the database's.
 *
 * Every charge moves system:revenue, and a split's post moves each
 * share's account: within one batch the same few rows were read back and
 * written again by a statement per transfer. An account read is kept; a
 * change to a kept account is made here and written once, when the
 * transaction commits (or before anything reads the table another way:
 * sqlite_txn_account_each). A new account is inserted at once, so a
 * duplicate fails where it is made.
 *
 * A job that fails is rolled back to its savepoint: the first value each
 * account had in the job (and whether it was still to be written) is
 * noted as the job first changes it, and put back; an account the job
 * began keeping (read or inserted) is forgotten, since the database holds
 * the truth after the rollback. A write that happened inside the job (a
 * flush) is noted the same way, so the database's rollback and the kept
 * values stay one. An account that cannot be kept (SQLITE_KEPT_MAX in one
 * transaction) is read and written in SQL, which the savepoint covers.
 * A store without a job running (store_txn_begin's callers) has no
 * savepoint: the whole transaction commits or not, and nothing is noted.
 *
 * Limit counters are kept the same way once a transaction has added to
 * one: the day's token count, which every job moves twice, is written
 * once a commit. A kept counter's bound is decided on its kept value,
 * which is the stored one (one writer: the transaction's own changes are
 * all here). A window's first add runs in SQL (it makes the row and
 * drops the earlier windows), and so does an add to a counter not kept.
 *
 * Across transactions: a commit writes what changed and keeps the rest,
 * now equal to the rows; a rollback, or a commit or flush that fails,
 * drops everything. The next write transaction keeps them only if no
 * other connection has committed since (PRAGMA data_version, which this
 * connection's own commits do not move: an administrator's tool writing
 * the file, say) and there are at most SQLITE_KEPT_ACROSS of them. A
 * member's accounts and counters were each read back in SQL by every
 * batch their job ran in, two reads and two bounded adds per generation;
 * kept, they are read once. Readers keep nothing between transactions. */
#include "storage/store.h"

#include "base/error.h"
#include "base/map.h"
#include "storage/sqlite_internal.h"
#include "base/util.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#define SQLITE_KEPT_MAX 4096
#define SQLITE_KEPT_ACROSS 1024 /* accounts and counters kept from one transaction to the next */

#define SQLITE_COUNTER_KEY_MAX 224 /* "<win> <name>"; a longer one is not kept */

struct sqlite_kept {
    struct store_account a;
    bool dirty;   /* changed since it was read or last written */
    uint64_t gen; /* the job that last noted its first value */
};

struct sqlite_kept_counter {
    char key[SQLITE_COUNTER_KEY_MAX]; /* its map key */
    const char *name;                 /* in key, after the window */
    int64_t win, used;
    bool dirty;
    uint64_t gen;
};

struct sqlite_undo {
    bool counter;                     /* else an account */
    struct store_account a;           /* an account's value before the job (a.id names it) */
    char key[SQLITE_COUNTER_KEY_MAX]; /* a counter's map key */
    int64_t used;                     /* ... and its value before the job */
    bool dirty;
    bool existed; /* false: the job made it */
};

void sqlite__kept_drop(struct sqlite_store *s)
{
    map_free(s->accounts);
    s->accounts = NULL;
    map_free(s->counters);
    s->counters = NULL;
    s->nundo = 0;
}

int sqlite__kept_txn_begin(struct sqlite_store *s)
{
    sqlite3_stmt *st = store__stmt(s, ST_DATA_VERSION);
    int r = sqlite3_step(st);
    int64_t version = r == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_reset(st);
    size_t kept = (s->accounts != NULL ? map_count(s->accounts) : 0) +
                  (s->counters != NULL ? map_count(s->counters) : 0);
    if (version < 0 || version != s->data_version || kept > SQLITE_KEPT_ACROSS)
        sqlite__kept_drop(s);
    s->data_version = version;
    s->nundo = 0;
    s->in_job = false;
    return r == SQLITE_ROW ? 0 : store__fail(s, "data_version");
}

void sqlite__kept_job_begin(struct sqlite_store *s)
{
    s->job_gen++;
    s->nundo = 0;
    s->in_job = true;
}

void sqlite__kept_job_end(struct sqlite_store *s, bool undo)
{
    for (size_t i = s->nundo; undo && i > 0; i--) {
        const struct sqlite_undo *u = &s->undo[i - 1];
        if (u->counter) {
            struct sqlite_kept_counter *c = map_get(s->counters, u->key);
            if (c != NULL && !u->existed) {
                map_remove(s->counters, u->key);
            } else if (c != NULL) {
                c->used = u->used;
                c->dirty = u->dirty;
            }
            continue;
        }
        struct sqlite_kept *k = s->accounts != NULL ? map_get(s->accounts, u->a.id) : NULL;
        if (k == NULL)
            continue;
        if (!u->existed) {
            map_remove(s->accounts, u->a.id);
            continue;
        }
        k->a = u->a;
        k->dirty = u->dirty;
    }
    s->nundo = 0;
    s->in_job = false;
}

/* A new note of the running job, or NULL when none is needed (no job, or
 * the job noted this row already: *gen) or out of memory (*failed). */
static struct sqlite_undo *sqlite__undo_new(struct sqlite_store *s, uint64_t *gen, bool *failed)
{
    *failed = false;
    if (!s->in_job || *gen == s->job_gen)
        return NULL;
    if (s->nundo == s->undo_cap) {
        struct sqlite_undo *grown = hb_grow(s->undo, &s->undo_cap, 16, sizeof(*grown));
        if (grown == NULL) {
            *failed = true;
            return NULL;
        }
        s->undo = grown;
    }
    *gen = s->job_gen;
    struct sqlite_undo *u = &s->undo[s->nundo++];
    memset(u, 0, sizeof(*u));
    return u;
}

/* Note k's value before the running job first changes (or keeps) it.
 * Returns 0, or HB_ENOMEM. */
static int sqlite__accounts_note(struct sqlite_store *s, struct sqlite_kept *k, bool existed)
{
    bool failed;
    struct sqlite_undo *u = sqlite__undo_new(s, &k->gen, &failed);
    if (u != NULL) {
        u->a = k->a;
        u->dirty = k->dirty;
        u->existed = existed;
    }
    return failed ? HB_ENOMEM : 0;
}

static int sqlite__counter_note(struct sqlite_store *s, struct sqlite_kept_counter *c, bool existed)
{
    bool failed;
    struct sqlite_undo *u = sqlite__undo_new(s, &c->gen, &failed);
    if (u != NULL) {
        u->counter = true;
        memcpy(u->key, c->key, sizeof(u->key));
        u->used = c->used;
        u->dirty = c->dirty;
        u->existed = existed;
    }
    return failed ? HB_ENOMEM : 0;
}

static int sqlite__account_write(struct sqlite_store *s, const struct store_account *a)
{
    sqlite3_stmt *st = store__stmt(s, ST_ACCOUNT_UPDATE);
    sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, a->debits_posted);
    sqlite3_bind_int64(st, 3, a->credits_posted);
    sqlite3_bind_int64(st, 4, a->debits_pending);
    sqlite3_bind_int64(st, 5, a->credits_pending);
    return store__step_done(s, st, "account_update");
}

static int sqlite__counters_flush(struct sqlite_store *s)
{
    if (s->counters == NULL)
        return 0;
    struct map_iter it;
    map_iter_init(&it, s->counters);
    const char *key;
    void *v;
    while (map_iter_next(&it, &key, &v)) {
        struct sqlite_kept_counter *c = v;
        if (!c->dirty)
            continue;
        if (sqlite__counter_note(s, c, true) < 0)
            return HB_ESTORAGE; /* cannot be undone: the job fails */
        sqlite3_stmt *st = store__stmt(s, ST_COUNTER_SET);
        sqlite3_bind_text(st, 1, c->name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, c->win);
        sqlite3_bind_int64(st, 3, c->used);
        int set = store__step_done(s, st, "counter_set");
        if (set < 0)
            return set;
        c->dirty = false;
    }
    return 0;
}

int sqlite__kept_flush(struct sqlite_store *s)
{
    int rc = sqlite__counters_flush(s);
    if (rc < 0 || s->accounts == NULL)
        return rc;
    struct map_iter it;
    map_iter_init(&it, s->accounts);
    const char *id;
    void *v;
    while (map_iter_next(&it, &id, &v)) {
        struct sqlite_kept *k = v;
        if (!k->dirty)
            continue;
        if (sqlite__accounts_note(s, k, true) < 0)
            return HB_ESTORAGE; /* cannot be undone: the job fails */
        rc = sqlite__account_write(s, &k->a);
        if (rc < 0)
            return rc;
        k->dirty = false;
    }
    return 0;
}

/* Keep a as the database has it; the kept one, or NULL (full, or no
 * memory: then the account is read and written as before). */
static struct sqlite_kept *sqlite__account_keep(struct sqlite_store *s,
                                                const struct store_account *a)
{
    if (s->accounts == NULL && (s->accounts = map_new(free)) == NULL)
        return NULL;
    if (map_count(s->accounts) >= SQLITE_KEPT_MAX)
        return NULL;
    struct sqlite_kept *k = calloc(1, sizeof(*k));
    if (k == NULL)
        return NULL;
    k->a = *a;
    if (map_set(s->accounts, a->id, k) < 0) {
        free(k);
        return NULL;
    }
    /* Kept from now, with a note that the running job began keeping it: a
     * rollback forgets it (what the database then holds is the truth). */
    if (sqlite__accounts_note(s, k, false) < 0) {
        map_remove(s->accounts, a->id);
        return NULL;
    }
    return k;
}

int sqlite_txn_account_get(struct store_txn *txn, const char *id, struct store_account *out)
{
    struct sqlite_store *s = sqlite__of(txn);
    const struct sqlite_kept *k = s->accounts != NULL ? map_get(s->accounts, id) : NULL;
    if (k != NULL) {
        *out = k->a;
        return 0;
    }
    sqlite3_stmt *st = store__stmt(s, ST_ACCOUNT_GET);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    int rc = 0;
    if (r == SQLITE_ROW)
        store__row_account(st, out);
    else if (r == SQLITE_DONE)
        rc = HB_ENOTFOUND;
    else
        rc = store__fail(s, "account_get");
    sqlite3_reset(st);
    if (rc == 0)
        sqlite__account_keep(s, out);
    return rc;
}

int sqlite_txn_account_insert(struct store_txn *txn, const struct store_account *a)
{
    struct sqlite_store *s = sqlite__of(txn);
    sqlite3_stmt *st = store__stmt(s, ST_ACCOUNT_INSERT);
    sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, a->flags);
    sqlite3_bind_int64(st, 3, a->debits_posted);
    sqlite3_bind_int64(st, 4, a->credits_posted);
    sqlite3_bind_int64(st, 5, a->debits_pending);
    sqlite3_bind_int64(st, 6, a->credits_pending);
    sqlite3_bind_int64(st, 7, a->created_at);
    int rc = store__step_done(s, st, "account_insert");
    if (rc < 0)
        return rc;
    sqlite__account_keep(s, a); /* a rollback forgets it with its row */
    return 0;
}

int sqlite_txn_account_update(struct store_txn *txn, const struct store_account *a)
{
    struct sqlite_store *s = sqlite__of(txn);
    struct sqlite_kept *k = s->accounts != NULL ? map_get(s->accounts, a->id) : NULL;
    if (k == NULL) /* not kept (the store keeps so many): the database has it */
        return sqlite__account_write(s, a);
    if (sqlite__accounts_note(s, k, true) < 0)
        return HB_ENOMEM; /* nothing changed: the job fails */
    /* Flags and creation time never change; the sums do. */
    k->a.debits_posted = a->debits_posted;
    k->a.credits_posted = a->credits_posted;
    k->a.debits_pending = a->debits_pending;
    k->a.credits_pending = a->credits_pending;
    k->dirty = true;
    return 0;
}

/* ---- Limit counters ------------------------------------------------------- */

static bool sqlite__counter_key(char *key, const char *name, int64_t win)
{
    int n = snprintf(key, SQLITE_COUNTER_KEY_MAX, "%lld %s", (long long)win, name);
    return n > 0 && n < SQLITE_COUNTER_KEY_MAX;
}

/* Keep name/win at `used`, as the database now has it after the running
 * job's own statement (a rollback forgets it with that statement). */
static void sqlite__counter_keep(struct sqlite_store *s, const char *key, const char *name,
                                 int64_t win, int64_t used)
{
    if (s->counters == NULL && (s->counters = map_new(free)) == NULL)
        return;
    if (map_count(s->counters) >= SQLITE_KEPT_MAX)
        return;
    struct sqlite_kept_counter *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    memcpy(c->key, key, sizeof(c->key));
    c->name = c->key + (strlen(key) - strlen(name)); /* "<win> <name>" ends with name */
    c->win = win;
    c->used = used;
    if (map_set(s->counters, c->key, c) < 0) {
        free(c);
        return;
    }
    if (sqlite__counter_note(s, c, false) < 0)
        map_remove(s->counters, key);
}

/* A window's first add dropped the name's rows of earlier windows: what
 * is kept of them goes too (they can no longer matter, so a rollback that
 * brings the rows back may bring them back as the database had them). */
static void sqlite__counters_forget_before(struct sqlite_store *s, const char *name, int64_t win)
{
    if (s->counters == NULL)
        return;
    struct map_iter it;
    map_iter_init(&it, s->counters);
    const char *key;
    void *v;
    while (map_iter_next(&it, &key, &v)) {
        const struct sqlite_kept_counter *c = v;
        if (c->win < win && strcmp(c->name, name) == 0)
            map_iter_remove(&it);
    }
}

int sqlite_txn_counter_add(struct store_txn *txn, const char *name, int64_t win, int64_t delta,
                           int64_t limit, int64_t *after)
{
    struct sqlite_store *s = sqlite__of(txn);
    if (s->stmt[ST_COUNTER_ADD] == NULL)
        return HB_ESCHEMA;
    char key[SQLITE_COUNTER_KEY_MAX];
    bool keyed = sqlite__counter_key(key, name, win);
    struct sqlite_kept_counter *c = keyed && s->counters != NULL ? map_get(s->counters, key) : NULL;
    if (c != NULL) {
        int64_t sum;
        if (__builtin_add_overflow(c->used, delta, &sum) || (delta > 0 && limit > 0 && sum > limit))
            return 0;
        if (sqlite__counter_note(s, c, true) < 0)
            return HB_ENOMEM; /* nothing changed: the job fails */
        c->used = sum < 0 ? 0 : sum;
        c->dirty = true;
        *after = c->used;
        return 1;
    }
    int rc = store__counter_add_sql(s, name, win, delta, limit, after);
    if (rc == 2)
        sqlite__counters_forget_before(s, name, win);
    if (rc > 0 && keyed)
        sqlite__counter_keep(s, key, name, win, *after);
    return rc > 0 ? 1 : rc;
}

int sqlite_txn_counter_get(struct store_txn *txn, const char *name, int64_t win, int64_t *used)
{
    struct sqlite_store *s = sqlite__of(txn);
    *used = 0;
    if (s->stmt[ST_COUNTER_GET] == NULL)
        return HB_ESCHEMA;
    char key[SQLITE_COUNTER_KEY_MAX];
    const struct sqlite_kept_counter *c = s->counters != NULL && sqlite__counter_key(key, name, win)
                                              ? map_get(s->counters, key)
                                              : NULL;
    if (c != NULL) {
        *used = c->used;
        return 0;
    }
    sqlite3_stmt *st = store__stmt(s, ST_COUNTER_GET);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, win);
    int r = sqlite3_step(st);
    int rc = 0;
    if (r == SQLITE_ROW)
        *used = sqlite3_column_int64(st, 0);
    else if (r != SQLITE_DONE)
        rc = store__fail(s, "counter_get");
    sqlite3_reset(st);
    return rc;
}
