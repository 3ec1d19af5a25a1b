/* API keys: the directory in memory, its store jobs, and the checks of a
 * presented key. See apikey.h. */
#include "core/apikey.h"

#include "core/core.h"
#include "core/ledger.h"
#include "base/error.h"
#include "base/hex.h"
#include "base/log.h"
#include "base/map.h"
#include "base/util.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define APIKEY_NS "apikey"
#define APIKEY_SECRET_KEY "secret"
#define APIKEY_DAY_MS 86400000LL

struct apikey_waiter {
    struct apikey_waiter *next;
    void (*cb)(int rc, void *data);
    void *data;
};

struct apikey_refreshed {
    struct apikey_refreshed *next;
    void (*cb)(void *data);
    void *data;
};

struct apikeys {
    size_t unsaved; /* keys with spending not yet written */
    bool loaded;
    bool loading;
    bool refreshing; /* an apikeys_refresh read is under way */
    bool again;      /* asked for while one was under way: read once more after it */
    uint8_t secret[32];
    struct apikey **keys; /* every key read or made, oldest first */
    size_t n, cap;
    struct map *by_hash; /* hex of the hash -> struct apikey (borrowed from keys) */
    struct apikey_waiter *waiters;
    struct apikey_refreshed *refreshed; /* apikeys_refresh_wait's, for the read under way */
};

struct apikeys *apikeys_new(void)
{
    struct apikeys *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    d->by_hash = map_new(NULL);
    if (d->by_hash == NULL) {
        free(d);
        return NULL;
    }
    return d;
}

void apikeys_free(struct apikeys *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->n; i++)
        free(d->keys[i]);
    free(d->keys);
    map_free(d->by_hash);
    while (d->waiters != NULL) {
        struct apikey_waiter *w = d->waiters;
        d->waiters = w->next;
        free(w);
    }
    while (d->refreshed != NULL) {
        struct apikey_refreshed *w = d->refreshed;
        d->refreshed = w->next;
        free(w);
    }
    OPENSSL_cleanse(d->secret, sizeof(d->secret));
    free(d);
}

bool apikeys_loaded(const struct core *core)
{
    return core->apikeys != NULL && core->apikeys->loaded;
}

static int apikeys__add(struct apikeys *d, const struct store_apikey *rec)
{
    if (d->n == d->cap) {
        struct apikey **grown = hb_grow(d->keys, &d->cap, 16, sizeof(*grown));
        if (grown == NULL)
            return HB_ENOMEM;
        d->keys = grown;
    }
    struct apikey *k = calloc(1, sizeof(*k));
    if (k == NULL)
        return HB_ENOMEM;
    k->rec = *rec;
    char hex[2 * STORE_HASH_SIZE + 1];
    hex_encode(rec->hash, STORE_HASH_SIZE, hex);
    if (map_set(d->by_hash, hex, k) < 0) {
        free(k);
        return HB_ENOMEM;
    }
    d->keys[d->n++] = k;
    return 0;
}

/* Count amount spent on day (at now_ms) in a key's record. */
static void apikey__spend_add(struct store_apikey *rec, int64_t amount, int64_t day, int64_t now_ms)
{
    rec->spend += amount;
    if (rec->spend_day != day) {
        rec->spend_day = day;
        rec->day_spend = 0;
    }
    rec->day_spend += amount;
    if (now_ms > rec->last_used)
        rec->last_used = now_ms;
}

/* Another daemon's keys and writes, as the store has them now: a key known
 * here takes the stored record (revoked, spent), keeping its request
 * counts and adding what it spent here and has not written yet; a key new
 * here is added. Keys are never removed (requests in flight hold them). */
static void apikeys__merge(struct apikeys *d, const struct store_apikey *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char hex[2 * STORE_HASH_SIZE + 1];
        hex_encode(rows[i].hash, STORE_HASH_SIZE, hex);
        struct apikey *k = map_get(d->by_hash, hex);
        if (k != NULL) {
            k->rec = rows[i];
            if (k->unsaved > 0) /* spent here, not written yet: still counts */
                apikey__spend_add(&k->rec, k->unsaved, k->unsaved_day, k->unsaved_at);
        } else if (apikeys__add(d, &rows[i]) < 0)
            return;
    }
}

static struct apikey *apikeys__by_id(const struct apikeys *d, const char *id)
{
    for (size_t i = 0; i < d->n; i++) {
        if (strcmp(d->keys[i]->rec.id, id) == 0)
            return d->keys[i];
    }
    return NULL;
}

int apikey_hash(const struct core *core, const char *key, uint8_t out[STORE_HASH_SIZE])
{
    const struct apikeys *d = core->apikeys;
    if (d == NULL || !d->loaded)
        return HB_ESTATE;
    unsigned len = STORE_HASH_SIZE;
    if (HMAC(EVP_sha256(), d->secret, (int)sizeof(d->secret), (const unsigned char *)key,
             strlen(key), out, &len) == NULL)
        return HB_EIO;
    return 0;
}

/* ---- the store ---------------------------------------------------------- */

enum apikey_op_kind {
    APIKEY_OP_LOAD,
    APIKEY_OP_INSERT,
    APIKEY_OP_REVOKE,
    APIKEY_OP_SPEND,
    APIKEY_OP_REFRESH,
};

struct apikey_spend {
    char id[STORE_APIKEY_ID_SIZE];
    int64_t amount, day, now;
};

struct apikey_op {
    struct store_job job;
    struct core *core;
    enum apikey_op_kind kind;
    struct apikey_spend *spends; /* SPEND: what each key spent since the last write */
    size_t nspends;
    struct store_apikey rec; /* INSERT: the new row; REVOKE, SPEND: rec.id */
    int64_t amount, day, now;
    char key[APIKEY_LEN + 1];  /* INSERT: the clear key, wiped after the callback */
    uint8_t secret[32];        /* LOAD: the secret read or made */
    struct store_apikey *rows; /* LOAD: what was read */
    size_t nrows, caprows;
    apikey_created_cb created;
    void (*cb)(int rc, void *data);
    void *data;
};

static int apikey__collect(const struct store_apikey *k, void *data)
{
    struct apikey_op *op = data;
    if (op->nrows == op->caprows) {
        struct store_apikey *grown = hb_grow(op->rows, &op->caprows, 16, sizeof(*grown));
        if (grown == NULL)
            return HB_ENOMEM;
        op->rows = grown;
    }
    op->rows[op->nrows++] = *k;
    return 0;
}

/* The secret: read, or made once and kept. */
static int apikey__secret(struct store_txn *txn, struct apikey_op *op)
{
    char *value = NULL;
    int rc = store_txn_state_get(txn, APIKEY_NS, APIKEY_SECRET_KEY, &value);
    if (rc == 0 && value != NULL && strlen(value) == 2 * sizeof(op->secret) &&
        hex_decode(value, op->secret, sizeof(op->secret)) == 0) {
        OPENSSL_cleanse(value, strlen(value));
        free(value);
        return 0;
    }
    free(value);
    if (rc < 0 && rc != HB_ENOTFOUND)
        return rc;
    if (RAND_bytes(op->secret, (int)sizeof(op->secret)) != 1)
        return HB_EIO;
    char hex[2 * sizeof(op->secret) + 1];
    hex_encode(op->secret, sizeof(op->secret), hex);
    rc = store_txn_state_put(txn, APIKEY_NS, APIKEY_SECRET_KEY, hex, clock_real_ms());
    OPENSSL_cleanse(hex, sizeof(hex));
    return rc;
}

static int apikey__run(struct store_txn *txn, struct store_job *job)
{
    struct apikey_op *op = container_of(job, struct apikey_op, job);
    switch (op->kind) {
    case APIKEY_OP_LOAD: {
        int rc = apikey__secret(txn, op);
        if (rc == 0)
            rc = store_txn_apikey_each(txn, apikey__collect, op);
        return rc;
    }
    case APIKEY_OP_REFRESH:
        return store_txn_apikey_each(txn, apikey__collect, op);
    case APIKEY_OP_INSERT:
        return store_txn_apikey_insert(txn, &op->rec);
    case APIKEY_OP_REVOKE:
        return store_txn_apikey_revoke(txn, op->rec.id, op->now);
    case APIKEY_OP_SPEND: {
        int rc = 0;
        for (size_t i = 0; i < op->nspends && rc == 0; i++) {
            const struct apikey_spend *sp = &op->spends[i];
            rc = store_txn_apikey_spend(txn, sp->id, sp->amount, sp->day, sp->now);
        }
        return rc;
    }
    }
    return HB_EINVAL;
}

static void apikey__loaded(struct apikey_op *op, int rc)
{
    struct apikeys *d = op->core->apikeys;
    d->loading = false;
    if (rc == 0) {
        memcpy(d->secret, op->secret, sizeof(d->secret));
        for (size_t i = 0; i < op->nrows && rc == 0; i++)
            rc = apikeys__add(d, &op->rows[i]);
        d->loaded = rc == 0;
    }
    if (rc < 0)
        log_error("apikey.load_failed", "error=%s", hb_strerror(rc));
    struct apikey_waiter *w = d->waiters;
    d->waiters = NULL;
    while (w != NULL) {
        struct apikey_waiter *next = w->next;
        w->cb(rc, w->data);
        free(w);
        w = next;
    }
}

static void apikey__done(struct store_job *job, int rc)
{
    struct apikey_op *op = container_of(job, struct apikey_op, job);
    struct apikeys *d = op->core->apikeys;
    switch (op->kind) {
    case APIKEY_OP_LOAD:
        if (d != NULL)
            apikey__loaded(op, rc);
        break;
    case APIKEY_OP_REFRESH:
        if (d != NULL) {
            d->refreshing = false;
            if (rc == 0)
                apikeys__merge(d, op->rows, op->nrows);
            struct apikey_refreshed *w = d->refreshed;
            d->refreshed = NULL;
            while (w != NULL) {
                struct apikey_refreshed *next = w->next;
                w->cb(w->data);
                free(w);
                w = next;
            }
            if (d->again) {
                d->again = false;
                apikeys_refresh(op->core);
            }
        }
        break;
    case APIKEY_OP_INSERT:
        if (rc == 0 && d != NULL)
            rc = apikeys__add(d, &op->rec);
        if (op->created != NULL)
            op->created(rc, rc == 0 ? op->key : NULL, rc == 0 ? &op->rec : NULL, op->data);
        break;
    case APIKEY_OP_SPEND:
        if (rc < 0)
            log_warn("apikey.write_failed", "op=spend keys=%zu error=%s", op->nspends,
                     hb_strerror(rc));
        break;
    case APIKEY_OP_REVOKE:
        if (rc < 0)
            log_warn("apikey.write_failed", "key=%s error=%s", op->rec.id, hb_strerror(rc));
        if (op->cb != NULL)
            op->cb(rc, op->data);
        break;
    }
    OPENSSL_cleanse(op->key, sizeof(op->key));
    OPENSSL_cleanse(op->secret, sizeof(op->secret));
    free(op->rows);
    free(op->spends);
    free(op);
}

static int apikey__submit(struct core *core, struct apikey_op *op)
{
    op->core = core;
    op->job.run = apikey__run;
    op->job.done = apikey__done;
    int rc =
        core->ledger != NULL ? store_submit(ledger_store(core->ledger), &op->job) : HB_ECANCELED;
    if (rc < 0) {
        OPENSSL_cleanse(op->key, sizeof(op->key));
        free(op);
    }
    return rc;
}

int apikeys_ready(struct core *core, void (*cb)(int rc, void *data), void *data)
{
    struct apikeys *d = core->apikeys;
    if (d == NULL)
        return HB_ESTATE;
    if (d->loaded) {
        cb(0, data);
        return 0;
    }
    struct apikey_waiter *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return HB_ENOMEM;
    w->cb = cb;
    w->data = data;
    if (!d->loading) {
        struct apikey_op *op = calloc(1, sizeof(*op));
        if (op == NULL) {
            free(w);
            return HB_ENOMEM;
        }
        op->kind = APIKEY_OP_LOAD;
        int rc = apikey__submit(core, op);
        if (rc < 0) {
            free(w);
            return rc;
        }
        d->loading = true;
    }
    w->next = d->waiters;
    d->waiters = w;
    return 0;
}

int apikeys_refresh(struct core *core)
{
    struct apikeys *d = core->apikeys;
    if (d == NULL || !d->loaded)
        return 0;
    if (d->refreshing) {
        /* The read under way may have begun before the change that asks
         * for this one was committed. */
        d->again = true;
        return 0;
    }
    struct apikey_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return HB_ENOMEM;
    op->kind = APIKEY_OP_REFRESH;
    int rc = apikey__submit(core, op);
    if (rc == 0)
        d->refreshing = true;
    return rc;
}

int apikeys_refresh_wait(struct core *core, void (*cb)(void *data), void *data)
{
    struct apikeys *d = core->apikeys;
    if (d == NULL || !d->loaded)
        return HB_ESTATE;
    struct apikey_refreshed *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return HB_ENOMEM;
    int rc = d->refreshing ? 0 : apikeys_refresh(core);
    if (rc < 0 || !d->refreshing) {
        free(w);
        return rc < 0 ? rc : HB_ESTATE;
    }
    w->cb = cb;
    w->data = data;
    w->next = d->refreshed;
    d->refreshed = w;
    return 0;
}

void apikeys_refresh_forget(struct core *core, const void *data)
{
    struct apikeys *d = core->apikeys;
    for (struct apikey_refreshed **pw = d != NULL ? &d->refreshed : NULL;
         pw != NULL && *pw != NULL;) {
        struct apikey_refreshed *w = *pw;
        if (w->data == data) {
            *pw = w->next;
            free(w);
        } else {
            pw = &w->next;
        }
    }
}

/* ---- making, listing, revoking ------------------------------------------ */

static bool apikey__name_ok(const char *name)
{
    size_t n = name != NULL ? strlen(name) : 0;
    if (n == 0 || n > 32)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != '-')
            return false;
    }
    return true;
}

static bool apikey__in_force(const struct apikey *k)
{
    return k->rec.revoked_at == 0;
}

int apikey_create(struct core *core, const struct apikey_spec *spec, apikey_created_cb cb,
                  void *data)
{
    struct apikeys *d = core->apikeys;
    if (d == NULL || !d->loaded)
        return HB_ESTATE;
    if (!apikey__name_ok(spec->name) || spec->owner == NULL || spec->owner[0] == '\0' ||
        strlen(spec->owner) >= STORE_ID_SIZE || spec->creator == NULL ||
        strlen(spec->creator) >= STORE_ID_SIZE ||
        (spec->models != NULL && strlen(spec->models) >= STORE_APIKEY_MODELS_SIZE))
        return HB_EINVAL;
    size_t mine = 0;
    for (size_t i = 0; i < d->n; i++) {
        const struct apikey *k = d->keys[i];
        if (!apikey__in_force(k) || strcmp(k->rec.owner, spec->owner) != 0)
            continue;
        if (strcmp(k->rec.name, spec->name) == 0)
            return HB_EEXISTS;
        mine++;
    }
    if (mine >= APIKEYS_PER_OWNER)
        return HB_ELIMIT;
    struct apikey_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return HB_ENOMEM;
    op->kind = APIKEY_OP_INSERT;
    op->created = cb;
    op->data = data;
    uint8_t raw[32], idraw[8];
    if (RAND_bytes(raw, sizeof(raw)) != 1 || RAND_bytes(idraw, sizeof(idraw)) != 1) {
        free(op);
        return HB_EIO;
    }
    memcpy(op->key, APIKEY_PREFIX, strlen(APIKEY_PREFIX));
    hex_encode(raw, sizeof(raw), op->key + strlen(APIKEY_PREFIX));
    OPENSSL_cleanse(raw, sizeof(raw));
    struct store_apikey *r = &op->rec;
    r->id[0] = 'k';
    hex_encode(idraw, sizeof(idraw), r->id + 1);
    snprintf(r->owner, sizeof(r->owner), "%s", spec->owner);
    snprintf(r->creator, sizeof(r->creator), "%s", spec->creator);
    snprintf(r->name, sizeof(r->name), "%s", spec->name);
    snprintf(r->prefix, sizeof(r->prefix), "%.*s", APIKEY_SHOWN_LEN, op->key);
    snprintf(r->models, sizeof(r->models), "%s", spec->models != NULL ? spec->models : "");
    r->created_at = core_now_ms(core);
    r->cap_day = spec->cap_day > 0 ? spec->cap_day : 0;
    r->cap_total = spec->cap_total > 0 ? spec->cap_total : 0;
    r->rpm = spec->rpm > 0 ? spec->rpm : 0;
    r->expires_at = spec->expires_at > 0 ? spec->expires_at : 0;
    int rc = apikey_hash(core, op->key, r->hash);
    if (rc < 0) {
        OPENSSL_cleanse(op->key, sizeof(op->key));
        free(op);
        return rc;
    }
    return apikey__submit(core, op);
}

size_t apikeys_list(const struct core *core, const char *owner, const struct apikey **out,
                    size_t max)
{
    const struct apikeys *d = core->apikeys;
    size_t n = 0;
    for (size_t i = 0; d != NULL && i < d->n; i++) {
        const struct apikey *k = d->keys[i];
        if (!apikey__in_force(k) || (owner != NULL && strcmp(k->rec.owner, owner) != 0))
            continue;
        if (n < max)
            out[n] = k;
        n++;
    }
    return n;
}

const struct apikey *apikey_find(const struct core *core, const char *owner, const char *which)
{
    const struct apikeys *d = core->apikeys;
    const struct apikey *by_prefix = NULL;
    size_t nprefix = 0;
    size_t wl = which != NULL ? strlen(which) : 0;
    if (wl == 0)
        return NULL;
    for (size_t i = 0; d != NULL && i < d->n; i++) {
        const struct apikey *k = d->keys[i];
        if (!apikey__in_force(k) || (owner != NULL && strcmp(k->rec.owner, owner) != 0))
            continue;
        if (strcmp(k->rec.name, which) == 0)
            return k;
        /* A prefix names a key only from past "hai-" on: "hai-" alone
         * would fit them all. */
        if (wl > strlen(APIKEY_PREFIX) && strncmp(k->rec.prefix, which, wl) == 0) {
            by_prefix = k;
            nprefix++;
        }
    }
    return nprefix == 1 ? by_prefix : NULL;
}

int apikey_revoke(struct core *core, const char *id, void (*cb)(int rc, void *data), void *data)
{
    struct apikeys *d = core->apikeys;
    struct apikey *k = d != NULL ? apikeys__by_id(d, id) : NULL;
    if (k == NULL || !apikey__in_force(k))
        return HB_ENOTFOUND;
    struct apikey_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return HB_ENOMEM;
    op->kind = APIKEY_OP_REVOKE;
    snprintf(op->rec.id, sizeof(op->rec.id), "%s", id);
    op->now = core_now_ms(core);
    if (op->now <= 0)
        op->now = 1;
    op->cb = cb;
    op->data = data;
    int rc = apikey__submit(core, op);
    if (rc == 0)
        k->rec.revoked_at = op->now; /* refused from now on, whatever the store says */
    return rc;
}

/* ---- a presented key ---------------------------------------------------- */

enum apikey_verdict apikey_authenticate(struct core *core, const char *presented, int64_t now_ms,
                                        struct apikey **out)
{
    struct apikeys *d = core->apikeys;
    *out = NULL;
    if (d == NULL || !d->loaded)
        return APIKEY_NOTREADY;
    size_t len = presented != NULL ? strlen(presented) : 0;
    if (len != APIKEY_LEN || strncmp(presented, APIKEY_PREFIX, strlen(APIKEY_PREFIX)) != 0)
        return APIKEY_UNKNOWN;
    uint8_t h[STORE_HASH_SIZE];
    if (apikey_hash(core, presented, h) < 0)
        return APIKEY_UNKNOWN;
    char hex[2 * STORE_HASH_SIZE + 1];
    hex_encode(h, sizeof(h), hex);
    /* The lookup is by the hash (which says nothing of the key without the
     * secret); the match itself is compared in constant time. */
    struct apikey *k = map_get(d->by_hash, hex);
    if (k == NULL || CRYPTO_memcmp(k->rec.hash, h, STORE_HASH_SIZE) != 0)
        return APIKEY_UNKNOWN;
    if (k->rec.revoked_at != 0)
        return APIKEY_REVOKED;
    if (k->rec.expires_at != 0 && now_ms >= k->rec.expires_at)
        return APIKEY_EXPIRED;
    k->rec.last_used = now_ms;
    *out = k;
    return APIKEY_OK;
}

bool apikey_rate_take(struct apikey *k, int64_t now_ms, int64_t *retry_after_ms)
{
    int64_t minute = now_ms / 60000;
    if (k->rate_minute != minute) {
        k->rate_minute = minute;
        k->rate_count = 0;
    }
    if (k->rec.rpm > 0 && (int64_t)k->rate_count >= k->rec.rpm) {
        *retry_after_ms = (minute + 1) * 60000 - now_ms;
        return false;
    }
    k->rate_count++;
    return true;
}

struct apikey_rate_job {
    struct store_job job;
    char name[STORE_APIKEY_ID_SIZE + 16]; /* "api.rpm:<key id>" */
    int64_t minute;
    int64_t rpm;
    int64_t retry_after_ms;
    apikey_rate_cb cb;
    void *data;
};

static int apikey__rate_run(struct store_txn *txn, struct store_job *job)
{
    struct apikey_rate_job *r = container_of(job, struct apikey_rate_job, job);
    return store_txn_counter_add(txn, r->name, r->minute, 1, r->rpm, NULL);
}

static void apikey__rate_done(struct store_job *job, int rc)
{
    struct apikey_rate_job *r = container_of(job, struct apikey_rate_job, job);
    r->cb(rc, rc == HB_ELIMIT ? r->retry_after_ms : 0, r->data);
    free(r);
}

int apikey_rate_take_shared(struct core *core, const struct apikey *k, int64_t now_ms,
                            apikey_rate_cb cb, void *data)
{
    if (core->ledger == NULL)
        return HB_ECANCELED;
    struct apikey_rate_job *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return HB_ENOMEM;
    r->job = (struct store_job){.run = apikey__rate_run, .done = apikey__rate_done};
    snprintf(r->name, sizeof(r->name), "api.rpm:%s", k->rec.id);
    r->minute = now_ms / 60000;
    r->rpm = k->rec.rpm;
    r->retry_after_ms = (r->minute + 1) * 60000 - now_ms;
    r->cb = cb;
    r->data = data;
    int rc = store_submit(ledger_store(core->ledger), &r->job);
    if (rc < 0)
        free(r);
    return rc;
}

bool apikey_model_allowed(const struct apikey *k, const char *name)
{
    const char *p = k->rec.models;
    if (p[0] == '\0')
        return true;
    size_t nl = strlen(name);
    while (*p != '\0') {
        while (*p == ',' || *p == ' ')
            p++;
        const char *e = p;
        while (*e != '\0' && *e != ',')
            e++;
        const char *t = e;
        while (t > p && t[-1] == ' ')
            t--;
        if ((size_t)(t - p) == nl && nl > 0 && strncmp(p, name, nl) == 0)
            return true;
        p = e;
    }
    return false;
}

int64_t apikey_room(const struct apikey *k, int64_t now_ms, bool *daily)
{
    int64_t room = INT64_MAX;
    *daily = false;
    if (k->rec.cap_total > 0)
        room = k->rec.cap_total - k->rec.spend;
    if (k->rec.cap_day > 0) {
        int64_t today = k->rec.spend_day == now_ms / APIKEY_DAY_MS ? k->rec.day_spend : 0;
        if (k->rec.cap_day - today < room) {
            room = k->rec.cap_day - today;
            *daily = true;
        }
    }
    return room;
}

void apikey_spend_record(struct core *core, const char *id, int64_t amount, int64_t now_ms)
{
    struct apikeys *d = core->apikeys;
    struct apikey *k = d != NULL ? apikeys__by_id(d, id) : NULL;
    if (k == NULL || amount < 0)
        return;
    int64_t day = now_ms / APIKEY_DAY_MS;
    apikey__spend_add(&k->rec, amount, day, now_ms);
    if (k->unsaved > 0 && k->unsaved_day != day)
        apikey_spend_flush(core); /* a day's spending is written as that day's */
    if (k->unsaved == 0)
        d->unsaved++;
    k->unsaved += amount;
    k->unsaved_day = day;
    if (now_ms > k->unsaved_at)
        k->unsaved_at = now_ms;
}

int apikey_spend_flush(struct core *core)
{
    struct apikeys *d = core->apikeys;
    if (d == NULL || d->unsaved == 0)
        return 0;
    struct apikey_op *op = calloc(1, sizeof(*op));
    struct apikey_spend *sp = calloc(d->unsaved, sizeof(*sp));
    if (op == NULL || sp == NULL) {
        free(op);
        free(sp);
        return HB_ENOMEM;
    }
    size_t n = 0;
    for (size_t i = 0; i < d->n && n < d->unsaved; i++) {
        const struct apikey *k = d->keys[i];
        if (k->unsaved == 0)
            continue;
        snprintf(sp[n].id, sizeof(sp[n].id), "%s", k->rec.id);
        sp[n].amount = k->unsaved;
        sp[n].day = k->unsaved_day;
        sp[n].now = k->unsaved_at;
        n++;
    }
    op->kind = APIKEY_OP_SPEND;
    op->spends = sp;
    op->nspends = n;
    int rc = apikey__submit(core, op);
    if (rc < 0) {
        free(sp);
        log_warn("apikey.write_failed", "op=spend keys=%zu error=%s", n, hb_strerror(rc));
        return rc;
    }
    for (size_t i = 0; i < d->n; i++)
        d->keys[i]->unsaved = 0;
    d->unsaved = 0;
    return (int)n;
}
