/* /link codes (core/link.h): made, taken and voided in the store, each
 * hashed first on libuv's thread pool, one at a time. */
#include "core/link.h"
#include "core/link_internal.h"

#include "base/clock.h"
#include "base/error.h"
#include "base/hex.h"
#include "base/log.h"
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
