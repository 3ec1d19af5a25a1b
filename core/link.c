/* One wallet across platforms (core/link.h): the links in memory in front
 * of the store's wallet_links table, the open codes in the store, and the
 * two store operations that change links. */
#include "core/link.h"

#include "base/clock.h"
#include "base/error.h"
#include "base/hash.h"
#include "base/hex.h"
#include "base/log.h"
#include "base/map.h"
#include "base/util.h"
#include "core/core.h"
#include "core/ledger.h"
#include "storage/store.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>

struct link_entry {
    char wallet[LINK_IDENTITY_MAX]; /* the wallet account the identity spends */
    int64_t linked_at;              /* ms since the epoch */
};

struct link_code_job;

struct link_dir {
    struct map *links; /* identity -> struct link_entry */
    struct map *busy;  /* identities whose link is being written -> link__busy_mark */
    bool refreshing;   /* a link_dir_refresh read is under way */
    bool again;        /* asked for while one was under way: read once more after it */
    /* Code jobs waiting for their hash, oldest first; the oldest is being
     * hashed when hashing is set. One at a time, so that they reach the
     * store in the order they came: a code voided in a group is gone
     * before anyone who read it there can take it. */
    struct link_code_job *hashq, *hashq_tail;
    bool hashing;
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
    map_free(d->links);
    map_free(d->busy);
    free(d);
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

/* ---- codes -------------------------------------------------------------- */

/* Open codes live in the store, so a code made through one daemon is taken
 * through any other of a shared ledger, and a restart keeps it: the row
 * LINK_NS_CODE / <hash of the code> holds "<expires_at> <creator>", and
 * LINK_NS_CODE_OF / <creator> the hash of the creator's open code (a new
 * one replaces it). The code itself is never stored: its hash is
 * PBKDF2-HMAC-SHA256, so a stolen database must be searched over the
 * whole code space. The salt is one for all codes (a code is found by its
 * hash), so one search covers every code open at the time. */
#define LINK_NS_CODE "link.code"
#define LINK_NS_CODE_OF "link.code.of"
#define LINK_NS_TRIES "link.tries" /* taker -> "<window start> <tries>" */
#define LINK_CODE_HASH_ROUNDS 4000 /* about 1 ms here; days of a GPU for the code space */
#define LINK_CODE_HASH_HEX 65      /* 64 hex digits and the NUL */
#define LINK_CODE_SWEEP_MAX 64     /* expired codes removed per new code */

static int link__code_hash(const char *code, char hex[LINK_CODE_HASH_HEX])
{
    static const char salt[] = "haibot link code";
    unsigned char out[32];
    if (PKCS5_PBKDF2_HMAC(code, (int)strlen(code), (const unsigned char *)salt,
                          (int)sizeof(salt) - 1, LINK_CODE_HASH_ROUNDS, EVP_sha256(),
                          (int)sizeof(out), out) != 1)
        return HB_EIO;
    hex_encode(out, sizeof(out), hex);
    OPENSSL_cleanse(out, sizeof(out));
    return 0;
}

enum link_code_verb { LINK_CODE_PUT, LINK_CODE_TAKE, LINK_CODE_VOID };

struct link_code_job {
    struct store_job job;
    uv_work_t work;             /* the hash, on libuv's thread pool */
    struct link_code_job *next; /* in link_dir.hashq */
    struct core *core;
    int hash_rc;
    enum link_code_verb verb;
    char hash[LINK_CODE_HASH_HEX];
    char creator[LINK_IDENTITY_MAX]; /* PUT: the code's creator; TAKE: read back */
    char code[LINK_CODE_LEN + 1];    /* the clear code until hashed; PUT: kept for the callback */
    int64_t now;
    int64_t expires_at;            /* TAKE: read back */
    bool found;                    /* TAKE: the code was open */
    bool malformed;                /* TAKE: the text cannot be a code (a try all the same) */
    bool limited;                  /* TAKE: the taker has no tries left */
    int64_t retry_ms;              /* TAKE, limited: until the taker's window ends */
    char taker[LINK_IDENTITY_MAX]; /* TAKE: who tries the code */
    size_t open;                   /* PUT: live codes seen */
    size_t nexpired;
    char expired[LINK_CODE_SWEEP_MAX][LINK_CODE_HASH_HEX];
    link_code_new_cb new_cb;
    link_code_take_cb take_cb;
    void *data;
};

/* "<expires_at> <creator>" into its parts; false when it is not one. */
static bool link__code_parse(const char *value, int64_t *expires_at, char *creator, size_t cap)
{
    char *end = NULL;
    long long at = strtoll(value, &end, 10);
    if (end == value || *end != ' ' || strlen(end + 1) >= cap || end[1] == '\0')
        return false;
    *expires_at = at;
    memcpy(creator, end + 1, strlen(end + 1) + 1);
    return true;
}

static int link__code_seen(const char *key, const char *value, void *data)
{
    struct link_code_job *j = data;
    int64_t at = 0;
    char creator[LINK_IDENTITY_MAX];
    bool ok = link__code_parse(value, &at, creator, sizeof(creator));
    if (!ok || at <= j->now) {
        if (j->nexpired < LINK_CODE_SWEEP_MAX && strlen(key) < LINK_CODE_HASH_HEX)
            memcpy(j->expired[j->nexpired++], key, strlen(key) + 1);
    } else {
        j->open++;
    }
    return 0;
}

/* Remove the open code hash, and its creator's pointer to it. */
static int link__code_remove(struct store_txn *txn, const char *hash, const char *creator,
                             int64_t at)
{
    int rc = store_txn_state_put(txn, LINK_NS_CODE, hash, NULL, at);
    if (rc < 0 || creator == NULL)
        return rc;
    char *mine = NULL;
    rc = store_txn_state_get(txn, LINK_NS_CODE_OF, creator, &mine);
    bool same = rc == 0 && mine != NULL && strcmp(mine, hash) == 0;
    free(mine);
    if (rc < 0 && rc != HB_ENOTFOUND)
        return rc;
    return same ? store_txn_state_put(txn, LINK_NS_CODE_OF, creator, NULL, at) : 0;
}

static int link__code_put(struct store_txn *txn, struct link_code_job *j, int64_t at)
{
    int rc = store_txn_state_each(txn, LINK_NS_CODE, "", link__code_seen, j);
    for (size_t i = 0; rc == 0 && i < j->nexpired; i++)
        rc = store_txn_state_put(txn, LINK_NS_CODE, j->expired[i], NULL, at);
    if (rc < 0)
        return rc;
    /* The creator's open code, if any, is replaced: it leaves the count
     * only if it was in it (an expired one was not). */
    char *old = NULL;
    rc = store_txn_state_get(txn, LINK_NS_CODE_OF, j->creator, &old);
    if (rc == 0 && old != NULL) {
        char *row = NULL;
        rc = store_txn_state_get(txn, LINK_NS_CODE, old, &row);
        int64_t until = 0;
        char creator[LINK_IDENTITY_MAX];
        if (rc == 0 && row != NULL && link__code_parse(row, &until, creator, sizeof(creator)) &&
            until > j->now && j->open > 0)
            j->open--;
        free(row);
        if (rc == 0 || rc == HB_ENOTFOUND)
            rc = store_txn_state_put(txn, LINK_NS_CODE, old, NULL, at);
    } else if (rc == HB_ENOTFOUND) {
        rc = 0;
    }
    free(old);
    if (rc < 0)
        return rc;
    if (j->open >= LINK_CODES_MAX)
        return HB_EBUSY;
    char *taken = NULL;
    rc = store_txn_state_get(txn, LINK_NS_CODE, j->hash, &taken);
    free(taken);
    if (rc == 0)
        return HB_ECONFLICT; /* drawn twice while open (vanishingly rare): the member asks again */
    if (rc != HB_ENOTFOUND)
        return rc;
    char value[32 + LINK_IDENTITY_MAX];
    snprintf(value, sizeof(value), "%lld %s", (long long)(j->now + LINK_CODE_TTL_MS), j->creator);
    rc = store_txn_state_put(txn, LINK_NS_CODE, j->hash, value, at);
    return rc < 0 ? rc : store_txn_state_put(txn, LINK_NS_CODE_OF, j->creator, j->hash, at);
}

/* Count a try of j->taker in the store (LINK_NS_TRIES: "<window start>
 * <tries>"), shared by every daemon: j->limited (with j->retry_ms) when the
 * taker has no tries left in the window that began with its first try. */
static int link__try(struct store_txn *txn, struct link_code_job *j, int64_t at)
{
    char *value = NULL;
    int rc = store_txn_state_get(txn, LINK_NS_TRIES, j->taker, &value);
    if (rc < 0 && rc != HB_ENOTFOUND)
        return rc;
    long long since = 0;
    int count = 0;
    if (value == NULL || sscanf(value, "%lld %d", &since, &count) != 2 ||
        j->now - since >= LINK_TRIES_WINDOW_MS) {
        since = j->now;
        count = 0;
    }
    free(value);
    if (count >= LINK_TRIES_MAX) {
        j->limited = true;
        j->retry_ms = since + LINK_TRIES_WINDOW_MS - j->now;
        return 0;
    }
    char text[48];
    snprintf(text, sizeof(text), "%lld %d", since, count + 1);
    return store_txn_state_put(txn, LINK_NS_TRIES, j->taker, text, at);
}

static int link__code_run(struct store_txn *txn, struct store_job *job)
{
    struct link_code_job *j = container_of(job, struct link_code_job, job);
    int64_t at = clock_real_ms();
    if (j->verb == LINK_CODE_PUT)
        return link__code_put(txn, j, at);
    if (j->verb == LINK_CODE_TAKE) {
        int rc = link__try(txn, j, at);
        if (rc < 0 || j->limited || j->malformed)
            return rc; /* the code, if any, stays open */
    }
    /* Taken or voided: used once, whatever the outcome. */
    char *value = NULL;
    int rc = store_txn_state_get(txn, LINK_NS_CODE, j->hash, &value);
    if (rc == HB_ENOTFOUND)
        return HB_EEXISTS; /* no such code: nothing written */
    if (rc == 0 && value != NULL)
        j->found = link__code_parse(value, &j->expires_at, j->creator, sizeof(j->creator));
    free(value);
    if (rc < 0)
        return rc;
    return link__code_remove(txn, j->hash, j->found ? j->creator : NULL, at);
}

static void link__code_done(struct store_job *job, int rc)
{
    struct link_code_job *j = container_of(job, struct link_code_job, job);
    if (rc == HB_EEXISTS)
        rc = 0;
    if (j->verb == LINK_CODE_PUT && j->new_cb != NULL)
        j->new_cb(rc, rc == 0 ? j->code : NULL, j->data);
    else if (j->verb == LINK_CODE_TAKE && j->take_cb != NULL) {
        enum link_code_result r = j->limited                ? LINK_CODE_LIMITED
                                  : !j->found               ? LINK_CODE_WRONG
                                  : j->expires_at <= j->now ? LINK_CODE_EXPIRED
                                                            : LINK_CODE_OK;
        j->take_cb(rc < 0 ? rc : 0, r, r == LINK_CODE_OK ? j->creator : NULL, j->retry_ms, j->data);
    } else if (rc < 0)
        log_warn("link.code_not_voided", "error=%s", hb_strerror(rc));
    OPENSSL_cleanse(j->code, sizeof(j->code));
    free(j);
}

/* A job for code (NULL: a text that cannot be one, so no hash). */
static struct link_code_job *link__code_job(struct core *core, enum link_code_verb verb,
                                            const char *code)
{
    if (core->links == NULL || core->ledger == NULL)
        return NULL;
    struct link_code_job *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return NULL;
    j->job = (struct store_job){.run = link__code_run, .done = link__code_done};
    j->core = core;
    j->verb = verb;
    j->now = core_now_ms(core);
    if (code != NULL)
        memcpy(j->code, code, LINK_CODE_LEN + 1);
    return j;
}

static void link__hash_work(uv_work_t *w)
{
    struct link_code_job *j = container_of(w, struct link_code_job, work);
    j->hash_rc = link__code_hash(j->code, j->hash);
    if (j->verb != LINK_CODE_PUT)
        OPENSSL_cleanse(j->code, sizeof(j->code));
}

static void link__hashed(uv_work_t *w, int status);

/* Take the oldest code job off the queue. */
static void link__hashq_pop(struct link_dir *d)
{
    d->hashq = d->hashq->next;
    if (d->hashq == NULL)
        d->hashq_tail = NULL;
}

/* Hash the oldest code job waiting, if none is being hashed; while
 * stopping (no ledger), the waiting ones fail. */
static void link__hash_next(struct link_dir *d)
{
    while (!d->hashing && d->hashq != NULL) {
        struct link_code_job *j = d->hashq;
        struct ledger *ledger = j->core->ledger;
        if (ledger != NULL &&
            uv_queue_work(ledger_loop(ledger), &j->work, link__hash_work, link__hashed) == 0) {
            d->hashing = true;
            return;
        }
        link__hashq_pop(d);
        link__code_done(&j->job, ledger != NULL ? HB_EIO : HB_ECANCELED);
    }
}

static void link__hashed(uv_work_t *w, int status)
{
    struct link_code_job *j = container_of(w, struct link_code_job, work);
    struct core *core = j->core;
    struct link_dir *d = core->links;
    d->hashing = false;
    link__hashq_pop(d); /* j */
    int rc = status < 0 ? HB_ECANCELED : j->hash_rc;
    if (rc == 0 && core->ledger == NULL)
        rc = HB_ECANCELED; /* stopping */
    if (rc == 0)
        rc = store_submit(ledger_store(core->ledger), &j->job);
    if (rc < 0)
        link__code_done(&j->job, rc);
    link__hash_next(d);
}

/* Start j: its code is hashed first (PBKDF2, about a millisecond) on
 * libuv's thread pool, so that no member typing codes holds up the loop;
 * the store job follows. A failure from here on reaches j's callback. */
static void link__code_start(struct link_code_job *j, bool hashed)
{
    struct link_dir *d = j->core->links;
    if (!hashed) {
        int rc = store_submit(ledger_store(j->core->ledger), &j->job);
        if (rc < 0)
            link__code_done(&j->job, rc);
        return;
    }
    if (d->hashq_tail != NULL)
        d->hashq_tail->next = j;
    else
        d->hashq = j;
    d->hashq_tail = j;
    link__hash_next(d);
}

int link_code_new(struct core *core, const char *identity, link_code_new_cb cb, void *data)
{
    if (core->links == NULL || core->ledger == NULL)
        return HB_ECANCELED;
    char code[LINK_CODE_LEN + 1];
    const size_t na = sizeof(LINK_CODE_ALPHABET) - 1;
    size_t len = 0;
    while (len < LINK_CODE_LEN) {
        unsigned char bytes[16];
        if (getrandom(bytes, sizeof(bytes), 0) != (ssize_t)sizeof(bytes))
            return HB_EIO;
        /* Bytes past the last whole multiple of the alphabet's size are
         * dropped, so every character is equally likely. */
        for (size_t i = 0; i < sizeof(bytes) && len < LINK_CODE_LEN; i++) {
            if (bytes[i] < 256 - 256 % na)
                code[len++] = LINK_CODE_ALPHABET[bytes[i] % na];
        }
    }
    code[LINK_CODE_LEN] = '\0';
    struct link_code_job *j = link__code_job(core, LINK_CODE_PUT, code);
    OPENSSL_cleanse(code, sizeof(code));
    if (j == NULL)
        return HB_ENOMEM;
    snprintf(j->creator, sizeof(j->creator), "%s", identity);
    j->new_cb = cb;
    j->data = data;
    link__code_start(j, true);
    return 0;
}

/* text as a code: letters upper-cased, spaces and dashes dropped. False
 * when it cannot be one. */
static bool link__normalize(const char *text, char *code)
{
    size_t len = 0;
    for (const char *p = text; *p != '\0'; p++) {
        if (*p == ' ' || *p == '-')
            continue;
        char c = (char)toupper((unsigned char)*p);
        if (len == LINK_CODE_LEN || strchr(LINK_CODE_ALPHABET, c) == NULL)
            return false;
        code[len++] = c;
    }
    code[len] = '\0';
    return len == LINK_CODE_LEN;
}

int link_code_take(struct core *core, const char *identity, const char *text, link_code_take_cb cb,
                   void *data)
{
    if (core->links == NULL || core->ledger == NULL)
        return HB_ECANCELED;
    /* A text that cannot be a code still counts as a try (not hashed:
     * nothing is looked up for it). */
    char code[LINK_CODE_LEN + 1];
    bool fits = text != NULL && link__normalize(text, code);
    struct link_code_job *j = link__code_job(core, LINK_CODE_TAKE, fits ? code : NULL);
    OPENSSL_cleanse(code, sizeof(code));
    if (j == NULL)
        return HB_ENOMEM;
    j->malformed = !fits;
    snprintf(j->taker, sizeof(j->taker), "%s", identity);
    j->take_cb = cb;
    j->data = data;
    link__code_start(j, fits);
    return 0;
}

void link_code_void(struct core *core, const char *text)
{
    char code[LINK_CODE_LEN + 1];
    if (text == NULL || !link__normalize(text, code))
        return;
    struct link_code_job *j = link__code_job(core, LINK_CODE_VOID, code);
    OPENSSL_cleanse(code, sizeof(code));
    if (j != NULL)
        link__code_start(j, true);
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
    if (map_get(d->busy, joiner) != NULL || map_get(d->busy, wallet) != NULL)
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
