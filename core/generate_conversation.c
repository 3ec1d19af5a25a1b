/* Conversation memory: the turns /chat remembers, kept in the store and
 * cached here in front of it.
 *
 * Which conversation a prompt continues:
 *  - a reply to one of the bot's answers continues the conversation that
 *    answer belongs to (the adapters report the ids of the messages they
 *    send: struct reply.landed), if it is the member's own; a reply to
 *    another member's answer, or to a message the bot does not know,
 *    starts a new conversation of the member's;
 *  - any other message continues the member's current conversation in the
 *    place (channel, Telegram forum topic or DM; a Discord thread is a
 *    channel), or starts one;
 *  - a conversation silent for the idle timeout, or older than the
 *    retention period, starts over; /new starts the place over.
 *
 * Reads never wait for the disk on the hot path: a place the store holds
 * nothing for (the set of places read at start says so) needs no lookup,
 * and the lookup a cache miss needs is queued when the job is submitted,
 * beside the wallet's, and is done by the time admission asks. Writes (the turns, the place, the
 * bot's message ids) are store jobs that go with the next group commit; nothing waits for them. */
#include "core/generate_internal.h"

#include "core/core.h"
#include "core/ledger.h"
#include "storage/store.h"
#include "base/error.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GEN_CONV_FIRST_MAINTAIN_MS 60000 /* the first retention pass after start */

struct store *generate__conv_store(struct generate *g)
{
    return g->core != NULL && g->core->ledger != NULL ? ledger_store(g->core->ledger) : NULL;
}

void generate__conv_key(const struct invocation *inv, char *buf, size_t cap)
{
    const char *scope = inv->scope == COMMAND_SCOPE_DM ? "dm" : inv->scope_id;
    if (inv->thread_id[0] != '\0')
        snprintf(buf, cap, "%s|%s|%s/%s|%s", command_platform_name(inv->platform), scope,
                 inv->channel_id, inv->thread_id, inv->user_id);
    else
        snprintf(buf, cap, "%s|%s|%s|%s", command_platform_name(inv->platform), scope,
                 inv->channel_id, inv->user_id);
}

static void conv__msg_key(const char *platform, const char *chat, const char *msg, char *buf,
                          size_t cap)
{
    snprintf(buf, cap, "%s|%s|%s", platform, chat, msg);
}

/* ---- the places the store holds --------------------------------------------
 * A set of the hashes of every place with a stored conversation, loaded
 * once at start and kept as places are written: a message in a place not
 * in it (every first message in a new channel) needs no store lookup. A
 * hash collision only costs a lookup that finds nothing. */

static uint64_t conv__hash(const char *key)
{
    uint64_t h = hash_fnv1a64_str(key);
    return h != 0 ? h : 1;
}

static bool conv__known_has(const struct generate *g, uint64_t h)
{
    if (g->conv_known_cap == 0)
        return false;
    size_t mask = g->conv_known_cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        if (g->conv_known[i] == h)
            return true;
        if (g->conv_known[i] == 0)
            return false;
    }
}

static void conv__known_put(uint64_t *slots, size_t cap, uint64_t h)
{
    size_t mask = cap - 1;
    size_t i = (size_t)h & mask;
    while (slots[i] != 0 && slots[i] != h)
        i = (i + 1) & mask;
    slots[i] = h;
}

/* Add h; on no memory the set stops being trusted (lookups go on). */
static void conv__known_add(struct generate *g, uint64_t h)
{
    if (conv__known_has(g, h))
        return;
    if ((g->conv_known_n + 1) * 2 > g->conv_known_cap) {
        size_t cap = g->conv_known_cap == 0 ? 1024 : g->conv_known_cap * 2;
        uint64_t *slots = calloc(cap, sizeof(*slots));
        if (slots == NULL) {
            g->conv_known_ready = false;
            return;
        }
        for (size_t i = 0; i < g->conv_known_cap; i++) {
            if (g->conv_known[i] != 0)
                conv__known_put(slots, cap, g->conv_known[i]);
        }
        free(g->conv_known);
        g->conv_known = slots;
        g->conv_known_cap = cap;
    }
    conv__known_put(g->conv_known, g->conv_known_cap, h);
    g->conv_known_n++;
}

struct conv_known_load {
    struct store_job job;
    struct generate *g; /* held through g->njobs */
    uint64_t *hashes;   /* read on the store's thread */
    size_t n, cap;
};

static int conv__known_read(const char *place, void *data)
{
    struct conv_known_load *op = data;
    if (op->n == op->cap) {
        size_t cap = op->cap == 0 ? 1024 : op->cap * 2;
        uint64_t *grown = realloc(op->hashes, cap * sizeof(*grown));
        if (grown == NULL)
            return HB_ENOMEM;
        op->hashes = grown;
        op->cap = cap;
    }
    op->hashes[op->n++] = conv__hash(place);
    return 0;
}

static int conv__known_run(struct store_txn *txn, struct store_job *sj)
{
    struct conv_known_load *op = container_of(sj, struct conv_known_load, job);
    return store_txn_conv_places_each(txn, conv__known_read, op);
}

static void conv__known_done(struct store_job *sj, int rc)
{
    struct conv_known_load *op = container_of(sj, struct conv_known_load, job);
    struct generate *g = op->g;
    if (rc == 0 && !g->closing) {
        /* Places written since start are in already. */
        g->conv_known_ready = true;
        for (size_t i = 0; i < op->n && g->conv_known_ready; i++)
            conv__known_add(g, op->hashes[i]);
    } else if (rc < 0) {
        log_warn("generate.conversation_places_not_read", "error=%s", hb_strerror(rc));
    }
    free(op->hashes);
    free(op);
    g->njobs--;
    generate__maybe_free(g);
}

/* Read the places the store holds, once. */
static void conv__known_load(struct generate *g)
{
    struct store *store = generate__conv_store(g);
    struct conv_known_load *op = store != NULL ? calloc(1, sizeof(*op)) : NULL;
    if (op == NULL)
        return; /* every place is looked up, then */
    op->g = g;
    op->job.run = conv__known_run;
    op->job.done = conv__known_done;
    g->njobs++;
    if (store_submit(store, &op->job) < 0) {
        g->njobs--;
        free(op);
    }
}

/* ---- the cache ----------------------------------------------------------- */

/* Point key at conv in a cache map; NULL when out of memory. */
static struct gen_conv_ptr *conv__ptr_set(struct map *m, const char *key, const char *conv,
                                          const char *owner, int64_t now)
{
    struct gen_conv_ptr *p = map_get(m, key);
    if (p == NULL) {
        p = calloc(1, sizeof(*p));
        if (p == NULL || map_set(m, key, p) < 0) {
            free(p);
            return NULL;
        }
    }
    snprintf(p->conv, sizeof(p->conv), "%s", conv);
    snprintf(p->owner, sizeof(p->owner), "%s", owner);
    p->last_used = now;
    return p;
}

static void conv__clear(struct gen_conv *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->turns[i].text);
    c->n = 0;
    c->bytes = 0;
}

void generate__conv_free(void *conv)
{
    struct gen_conv *c = conv;
    if (c == NULL)
        return;
    conv__clear(c);
    free(c->turns);
    free(c);
}

static int conv__append(struct gen_conv *c, const char *role, const char *text, int64_t seq)
{
    if (c->n + 1 > c->cap) {
        size_t cap = c->cap == 0 ? 8 : c->cap * 2;
        struct gen_turn *grown = realloc(c->turns, cap * sizeof(*grown));
        if (grown == NULL)
            return HB_ENOMEM;
        c->turns = grown;
        c->cap = cap;
    }
    size_t len = strlen(text);
    char *t = malloc(len + 1);
    if (t == NULL)
        return HB_ENOMEM;
    memcpy(t, text, len + 1);
    c->turns[c->n++] = (struct gen_turn){.role = role, .text = t, .len = len, .seq = seq};
    c->bytes += len;
    if (seq >= c->next_seq)
        c->next_seq = seq + 1;
    return 0;
}

/* Keep within the budget (about four bytes a token), oldest turns first
 * out; returns how many went. */
static size_t conv__trim(struct gen_conv *c, int64_t tokens)
{
    size_t drop = 0;
    while (drop < c->n && c->bytes / 4 > (size_t)tokens) {
        c->bytes -= c->turns[drop].len;
        free(c->turns[drop].text);
        drop++;
    }
    /* A conversation never starts with the model's answer. */
    while (drop < c->n && strcmp(c->turns[drop].role, "assistant") == 0) {
        c->bytes -= c->turns[drop].len;
        free(c->turns[drop].text);
        drop++;
    }
    if (drop > 0) {
        memmove(c->turns, c->turns + drop, (c->n - drop) * sizeof(*c->turns));
        c->n -= drop;
    }
    return drop;
}

/* ---- writes ------------------------------------------------------------- */

enum conv_write_kind {
    CONV_WRITE_TURN,    /* a question and its answer (and the place, when set) */
    CONV_WRITE_MESSAGE, /* a bot message continues conv */
    CONV_WRITE_PLACE,   /* the place starts over (/new) */
};

struct conv_write {
    struct conv_write *next; /* in its batch */
    enum conv_write_kind kind;
    struct store_conv conv;
    char key[GEN_KEY_MAX]; /* the place (TURN: "" when unchanged) or the message */
    int64_t seq;           /* TURN: the question's number; the answer's is seq + 1 */
    int64_t trim_first;    /* TURN: turns below this number went out of the budget; 0 none */
    char *q, *a;
};

/* The writes of one turn of the loop: one store job, so that a busy
 * pipeline pays the store's per-job cost once per turn, not per answer. */
struct conv_batch {
    struct store_job job;
    struct generate *g; /* held through g->njobs */
    struct conv_write *head, *tail;
    size_t n;
};

static int conv__write_one(struct store_txn *txn, struct conv_write *w)
{
    int rc = 0;
    switch (w->kind) {
    case CONV_WRITE_TURN:
        rc = store_txn_conv_put(txn, &w->conv);
        if (rc == 0)
            rc = store_txn_conv_turn_put(txn, w->conv.id, w->seq, "user", w->q, w->conv.updated_at);
        if (rc == 0)
            rc = store_txn_conv_turn_put(txn, w->conv.id, w->seq + 1, "assistant", w->a,
                                         w->conv.updated_at);
        if (rc == 0 && w->trim_first > 0)
            rc = store_txn_conv_trim(txn, w->conv.id, w->trim_first);
        if (rc == 0 && w->key[0] != '\0')
            rc = store_txn_conv_place_put(txn, w->key, w->conv.id, w->conv.owner,
                                          w->conv.updated_at);
        break;
    case CONV_WRITE_MESSAGE:
        rc = store_txn_conv_message_put(txn, w->key, w->conv.id, w->conv.owner, w->conv.updated_at);
        break;
    case CONV_WRITE_PLACE:
        rc = store_txn_conv_place_put(txn, w->key, NULL, NULL, 0);
        break;
    }
    return rc;
}

static int conv__batch_run(struct store_txn *txn, struct store_job *sj)
{
    struct conv_batch *b = container_of(sj, struct conv_batch, job);
    int rc = 0;
    for (struct conv_write *w = b->head; w != NULL && rc == 0; w = w->next)
        rc = conv__write_one(txn, w);
    return rc;
}

static void conv__batch_done(struct store_job *sj, int rc)
{
    struct conv_batch *b = container_of(sj, struct conv_batch, job);
    struct generate *g = b->g;
    if (rc < 0)
        log_warn("generate.conversation_not_stored", "writes=%zu error=%s", b->n, hb_strerror(rc));
    struct conv_write *w = b->head;
    while (w != NULL) {
        struct conv_write *next = w->next;
        free(w->q);
        free(w->a);
        free(w);
        w = next;
    }
    free(b);
    g->njobs--;
    generate__maybe_free(g);
}

void generate__conv_flush(struct generate *g)
{
    struct conv_batch *b = g->conv_batch;
    if (b == NULL)
        return;
    g->conv_batch = NULL;
    if (g->conv_flush_open)
        uv_timer_stop(&g->conv_flush);
    struct store *store = generate__conv_store(g);
    if (store == NULL || store_submit(store, &b->job) < 0)
        conv__batch_done(&b->job, HB_ECANCELED);
}

static void conv__flush_timer(uv_timer_t *t)
{
    generate__conv_flush(container_of(t, struct generate, conv_flush));
}

/* Queue w for the store (taken over: freed on failure too): with the other
 * writes of this turn of the loop, sent on the next. */
static void conv__write_submit(struct generate *g, struct conv_write *w)
{
    struct conv_batch *b = g->conv_batch;
    if (b == NULL) {
        b = calloc(1, sizeof(*b));
        if (b == NULL) {
            free(w->q);
            free(w->a);
            free(w);
            return;
        }
        b->g = g;
        b->job.run = conv__batch_run;
        b->job.done = conv__batch_done;
        b->job.grouped = true; /* writes only: the same again on the same data */
        g->njobs++;
        g->conv_batch = b;
        if (g->conv_flush_open)
            uv_timer_start(&g->conv_flush, conv__flush_timer, 0, 0);
    }
    if (b->tail != NULL)
        b->tail->next = w;
    else
        b->head = w;
    b->tail = w;
    b->n++;
    if (!g->conv_flush_open)
        generate__conv_flush(g); /* no loop turn to wait for: at once */
}

/* ---- finding the conversation --------------------------------------------- */

struct conv_load {
    struct store_job job;
    struct job *gj;        /* holds a reference */
    char key[GEN_KEY_MAX]; /* the message or the place looked up; "" when cid is known */
    bool by_msg;
    char cid[GEN_CONV_ID_MAX]; /* the conversation found, or "" */
    struct gen_conv *loaded;   /* its turns (heap), or NULL */
};

static int conv__turn_read(int64_t seq, const char *role, const char *text, int64_t at, void *data)
{
    struct gen_conv *c = data;
    (void)at;
    return conv__append(c, strcmp(role, "assistant") == 0 ? "assistant" : "user", text, seq);
}

static int conv__load_run(struct store_txn *txn, struct store_job *sj)
{
    struct conv_load *op = container_of(sj, struct conv_load, job);
    int rc = 0;
    if (op->key[0] != '\0') {
        rc = op->by_msg ? store_txn_conv_message_get(txn, op->key, op->cid, sizeof(op->cid))
                        : store_txn_conv_place_get(txn, op->key, op->cid, sizeof(op->cid));
        if (rc == HB_ENOTFOUND) {
            op->cid[0] = '\0';
            return 0;
        }
        if (rc < 0)
            return rc;
    }
    struct store_conv sc;
    rc = store_txn_conv_get(txn, op->cid, &sc);
    if (rc == HB_ENOTFOUND)
        return 0; /* gone (retention, /forget): the job starts a new one */
    if (rc < 0)
        return rc;
    op->loaded = calloc(1, sizeof(*op->loaded));
    if (op->loaded == NULL)
        return HB_ENOMEM;
    snprintf(op->loaded->owner, sizeof(op->loaded->owner), "%s", sc.owner);
    op->loaded->updated_at = sc.updated_at;
    return store_txn_conv_turns(txn, op->cid, conv__turn_read, op->loaded);
}

/* Pick the conversation: cid's when it is the member's and still fresh,
 * else a new one named after the job; then admission goes on. */
static void conv__decide(struct job *job, const char *cid_in)
{
    struct generate *g = job->g;
    char cid[GEN_CONV_ID_MAX];
    snprintf(cid, sizeof(cid), "%s", cid_in); /* it may be job->conv_id itself */
    const struct catalog_limits *l = catalog_limits_get(job->cat);
    int64_t now = generate__now(g);
    struct gen_conv *c = cid[0] != '\0' ? map_get(g->convs, cid) : NULL;
    if (c != NULL && strcmp(c->owner, job->wallet) != 0)
        c = NULL; /* another member's chain: the member's own starts */
    if (c != NULL && (now - c->updated_at >= l->conversation_idle_ms ||
                      now - c->updated_at >= l->conversation_retention_ms))
        c = NULL; /* silent too long: it starts over */
    if (c != NULL) {
        snprintf(job->conv_id, sizeof(job->conv_id), "%s", cid);
        c->last_used = now;
    } else {
        snprintf(job->conv_id, sizeof(job->conv_id), "%s", job->id);
    }
    if (job->conv_msg[0] == '\0') {
        const struct gen_conv_ptr *p = map_get(g->conv_places, job->conv_key);
        job->conv_place_set = p == NULL || strcmp(p->conv, job->conv_id) != 0;
    }
    void (*next)(struct job *) = job->conv_next;
    job->conv_next = NULL;
    next(job);
}

static void conv__load_done(struct store_job *sj, int rc)
{
    struct conv_load *op = container_of(sj, struct conv_load, job);
    struct job *job = op->gj;
    struct generate *g = job->g;
    int64_t now = generate__now(g);
    if (rc < 0) {
        log_warn("generate.conversation_load_failed", "error=%s", hb_strerror(rc));
        op->cid[0] = '\0';
    } else {
        /* What the store said, unless a write of this daemon got there
         * first (it is newer). On a shared ledger the store is newer than
         * this daemon's cache (it flushed its writes before asking), so
         * the store's answer replaces what the cache held. */
        bool shared = g->core->cluster != NULL;
        struct map *m = op->by_msg ? g->conv_msgs : g->conv_places;
        if (op->key[0] != '\0' && (shared || map_get(m, op->key) == NULL))
            conv__ptr_set(m, op->key, op->cid, op->loaded != NULL ? op->loaded->owner : job->wallet,
                          now);
        if (shared && op->loaded == NULL && op->cid[0] != '\0')
            map_remove(g->convs, op->cid); /* gone from the store */
        if (op->loaded != NULL && (shared || map_get(g->convs, op->cid) == NULL)) {
            /* Within today's budget (it may have been lowered since). */
            conv__trim(op->loaded, catalog_limits_get(job->cat)->memory_tokens);
            op->loaded->last_used = now;
            if (map_set(g->convs, op->cid, op->loaded) == 0)
                op->loaded = NULL;
        }
    }
    generate__conv_free(op->loaded);
    snprintf(job->conv_id, sizeof(job->conv_id), "%s", op->cid);
    job->conv_ready = true;
    free(op);
    if (job->conv_next != NULL)
        conv__decide(job, job->conv_id);
    job__unref(job);
}

void job__conversation_start(struct job *job)
{
    struct generate *g = job->g;
    const struct invocation *inv = &job->who;
    job->conv_ready = true;
    job->conv_id[0] = '\0';
    if (job->api)
        return; /* the request carries its whole conversation */
    generate__conv_key(inv, job->conv_key, sizeof(job->conv_key));
    job->conv_msg[0] = '\0';
    if (job->modality != PROVIDER_TEXT)
        return;
    if (inv->reply_to_id[0] != '\0')
        conv__msg_key(command_platform_name(inv->platform), inv->channel_id, inv->reply_to_id,
                      job->conv_msg, sizeof(job->conv_msg));
    bool by_msg = job->conv_msg[0] != '\0';
    const char *key = by_msg ? job->conv_msg : job->conv_key;
    /* On a shared ledger another daemon may have moved the conversation
     * (the Telegram poller before a failover, a Discord interaction served
     * elsewhere): the store is asked every time, after this daemon's own
     * writes. Alone, the cache is the truth. */
    bool shared = g->core->cluster != NULL;
    struct gen_conv_ptr *p = shared ? NULL : map_get(by_msg ? g->conv_msgs : g->conv_places, key);
    if (p != NULL) {
        p->last_used = generate__now(g);
        snprintf(job->conv_id, sizeof(job->conv_id), "%s", p->conv);
        if (p->conv[0] == '\0' || map_get(g->convs, p->conv) != NULL)
            return; /* all in the cache */
    } else if (!shared && !by_msg && g->conv_known_ready && !conv__known_has(g, conv__hash(key))) {
        return; /* a place the store has nothing for */
    }
    if (shared)
        generate__conv_flush(g);
    struct store *store = generate__conv_store(g);
    struct conv_load *op = store != NULL ? calloc(1, sizeof(*op)) : NULL;
    if (op == NULL) {
        job->conv_id[0] = '\0';
        return; /* a new conversation, then */
    }
    op->gj = job;
    op->by_msg = by_msg;
    if (p != NULL)
        snprintf(op->cid, sizeof(op->cid), "%s", p->conv);
    else
        snprintf(op->key, sizeof(op->key), "%s", key);
    op->job.run = conv__load_run;
    op->job.done = conv__load_done;
    g->stats.conversation_loads++;
    job->refs++;
    job->conv_ready = false;
    if (store_submit(store, &op->job) < 0) {
        job->refs--;
        job->conv_ready = true;
        job->conv_id[0] = '\0';
        free(op);
    }
}

void job__conversation_then(struct job *job, void (*next)(struct job *job))
{
    job->conv_next = next;
    if (job->modality != PROVIDER_TEXT || job->api) {
        job->conv_next = NULL;
        next(job);
        return;
    }
    if (job->conv_ready || job->conv_key[0] == '\0') /* never looked up: a new one */
        conv__decide(job, job->conv_id);
    /* else the lookup's completion decides */
}

/* ---- remembering ---------------------------------------------------------- */

/* An adapter sent a message of an answer: replies to it continue the
 * conversation. ref is "<platform>\t<owner>\t<conversation>". */
static void conv__landed(void *data, const char *ref, const char *chat_id, const char *message_id)
{
    struct core *core = data;
    struct generate *g = core->generate;
    if (g == NULL || g->closing)
        return;
    char platform[32], owner[WALLET_ACCOUNT_MAX];
    const char *t1 = strchr(ref, '\t');
    const char *t2 = t1 != NULL ? strchr(t1 + 1, '\t') : NULL;
    if (t2 == NULL || (size_t)(t1 - ref) >= sizeof(platform) ||
        (size_t)(t2 - t1 - 1) >= sizeof(owner))
        return;
    snprintf(platform, sizeof(platform), "%.*s", (int)(t1 - ref), ref);
    snprintf(owner, sizeof(owner), "%.*s", (int)(t2 - t1 - 1), t1 + 1);
    const char *conv = t2 + 1;
    char key[GEN_KEY_MAX];
    conv__msg_key(platform, chat_id, message_id, key, sizeof(key));
    int64_t now = generate__now(g);
    const struct gen_conv_ptr *p = map_get(g->conv_msgs, key);
    if (p != NULL && strcmp(p->conv, conv) == 0)
        return; /* an edit of a message already known */
    conv__ptr_set(g->conv_msgs, key, conv, owner, now);
    struct conv_write *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return;
    w->kind = CONV_WRITE_MESSAGE;
    snprintf(w->conv.id, sizeof(w->conv.id), "%s", conv);
    snprintf(w->conv.owner, sizeof(w->conv.owner), "%s", owner);
    w->conv.updated_at = now;
    snprintf(w->key, sizeof(w->key), "%s", key);
    conv__write_submit(g, w);
}

void job__remember_turn(struct job *job)
{
    if (job->api)
        return; /* an API request's conversation is the caller's to keep */
    struct generate *g = job->g;
    const struct catalog_limits *l = catalog_limits_get(job->cat);
    int64_t now = generate__now(g);
    if (job->conv_id[0] == '\0')
        snprintf(job->conv_id, sizeof(job->conv_id), "%s", job->id);
    struct gen_conv *c = map_get(g->convs, job->conv_id);
    if (c == NULL) {
        c = calloc(1, sizeof(*c));
        if (c == NULL)
            return;
        snprintf(c->owner, sizeof(c->owner), "%s", job->wallet);
        if (map_set(g->convs, job->conv_id, c) < 0) {
            free(c);
            return;
        }
    }
    const char *answer = job->text != NULL ? job->text : "";
    /* A conversation left the cache while the job ran starts numbering
     * again from the clock, past anything stored before. */
    int64_t seq = c->next_seq > now * 2 ? c->next_seq : now * 2;
    if (conv__append(c, "user", job->prompt, seq) < 0)
        return;
    if (conv__append(c, "assistant", answer, seq + 1) < 0) {
        c->n--;
        c->bytes -= c->turns[c->n].len;
        free(c->turns[c->n].text);
        return;
    }
    c->updated_at = now;
    c->last_used = now;
    size_t dropped = conv__trim(c, l->memory_tokens);
    if (job->conv_place_set) {
        conv__ptr_set(g->conv_places, job->conv_key, job->conv_id, job->wallet, now);
        conv__known_add(g, conv__hash(job->conv_key));
    }

    struct conv_write *w = calloc(1, sizeof(*w));
    if (w != NULL) {
        w->kind = CONV_WRITE_TURN;
        snprintf(w->conv.id, sizeof(w->conv.id), "%s", job->conv_id);
        snprintf(w->conv.owner, sizeof(w->conv.owner), "%s", job->wallet);
        w->conv.updated_at = now;
        if (job->conv_place_set)
            snprintf(w->key, sizeof(w->key), "%s", job->conv_key);
        w->seq = seq;
        w->trim_first = dropped > 0 ? (c->n > 0 ? c->turns[0].seq : c->next_seq) : 0;
        w->q = strdup(job->prompt);
        w->a = strdup(answer);
        if (w->q == NULL || w->a == NULL) {
            free(w->q);
            free(w->a);
            free(w);
        } else {
            conv__write_submit(g, w);
        }
    }
    job->conv_place_set = false;

    /* The answer about to be sent: replies to it continue this conversation. */
    struct reply *r = job->reply;
    if (r != NULL) {
        int n = snprintf(r->landed_ref, sizeof(r->landed_ref), "%s\t%s\t%s",
                         command_platform_name(job->who.platform), job->wallet, job->conv_id);
        if (n > 0 && (size_t)n < sizeof(r->landed_ref)) {
            r->landed = conv__landed;
            r->landed_data = g->core;
        }
    }
}

/* ---- starting over (erasing and retention: generate_erase.c) ------------- */

void generate_conversation_reset(struct generate *g, const struct invocation *inv)
{
    char key[GEN_KEY_MAX], wallet[WALLET_ACCOUNT_MAX];
    generate__conv_key(inv, key, sizeof(key));
    if (wallet_account(g->core, inv, wallet, sizeof(wallet)) < 0)
        return;
    conv__ptr_set(g->conv_places, key, "", wallet, generate__now(g));
    struct conv_write *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return;
    w->kind = CONV_WRITE_PLACE;
    snprintf(w->key, sizeof(w->key), "%s", key);
    conv__write_submit(g, w);
}

static void conv__tick(uv_timer_t *t)
{
    struct generate *g = container_of(t, struct generate, conv_timer);
    if (!g->closing) {
        generate_conversation_maintain(g, NULL, NULL);
        generate_images_maintain(g, NULL, NULL);
    }
}

int generate__conv_start(struct generate *g)
{
    int rc = uv_timer_init(g->loop, &g->conv_timer);
    if (rc < 0)
        return rc;
    g->conv_timer_open = true;
    if (uv_timer_init(g->loop, &g->conv_flush) == 0) {
        g->conv_flush_open = true;
        uv_unref((uv_handle_t *)&g->conv_flush);
    }
    conv__known_load(g);
    uv_timer_start(&g->conv_timer, conv__tick, GEN_CONV_FIRST_MAINTAIN_MS, GEN_PRUNE_EVERY_MS);
    /* Retention runs while the daemon does; it never keeps a loop alive. */
    uv_unref((uv_handle_t *)&g->conv_timer);
    return 0;
}

static void conv__timer_closed(uv_handle_t *h)
{
    struct generate *g = container_of((uv_timer_t *)h, struct generate, conv_timer);
    g->njobs--;
    generate__maybe_free(g);
}

static void conv__flush_closed(uv_handle_t *h)
{
    struct generate *g = container_of((uv_timer_t *)h, struct generate, conv_flush);
    g->njobs--;
    generate__maybe_free(g);
}

void generate__conv_stop(struct generate *g)
{
    generate__conv_flush(g);
    if (g->conv_flush_open) {
        g->conv_flush_open = false;
        g->njobs++;
        uv_close((uv_handle_t *)&g->conv_flush, conv__flush_closed);
    }
    if (!g->conv_timer_open)
        return;
    g->conv_timer_open = false;
    g->njobs++;
    uv_close((uv_handle_t *)&g->conv_timer, conv__timer_closed);
}

/* ---- the cache ------------------------------------------------------------ */

static void conv__ptrs_prune(struct map *m, int64_t before)
{
    struct map_iter it;
    void *v;
    map_iter_init(&it, m);
    while (map_iter_next(&it, NULL, &v)) {
        if (((const struct gen_conv_ptr *)v)->last_used < before)
            map_iter_remove(&it);
    }
}

void generate__conv_prune(struct generate *g, int64_t before)
{
    struct map_iter it;
    void *v;
    map_iter_init(&it, g->convs);
    while (map_iter_next(&it, NULL, &v)) {
        if (((const struct gen_conv *)v)->last_used < before)
            map_iter_remove(&it);
    }
    conv__ptrs_prune(g->conv_places, before);
    conv__ptrs_prune(g->conv_msgs, before);
}
