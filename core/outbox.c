#include "core/outbox.h"

#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"
#include "base/util.h"
#include "core/cluster.h"
#include "storage/store.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* The channels named family or "family/..." that hold rows: cb gets rc,
 * their names (valid during the call) and their count. */
typedef void (*outbox_channels_cb)(int rc, const char *const *names, size_t n, void *data);

enum outbox_verb {
    OUTBOX_PUT,
    OUTBOX_REMOVE,
    OUTBOX_FAIL,
    OUTBOX_LIST,
    OUTBOX_CHANNELS,
    OUTBOX_TAKE
};

struct outbox_op {
    struct store_job job;
    enum outbox_verb verb;
    char channel[OUTBOX_CHANNEL_MAX];
    char to[OUTBOX_CHANNEL_MAX]; /* take: where the rows go */
    int64_t id, chat, now_ms;
    char *text;           /* put: the body; fail: the reason */
    unsigned char *bytes; /* put: kept beside the body, or NULL */
    size_t len;
    size_t max;
    struct outbox_row *rows; /* list, take: what was read (bodies owned here) */
    size_t n;
    char **names; /* channels: what was read (owned here) */
    size_t nnames, names_cap;
    outbox_cb cb;
    outbox_list_cb list_cb;
    outbox_channels_cb channels_cb;
    void *data;
};

static void outbox__free(struct outbox_op *op)
{
    for (size_t i = 0; i < op->n; i++) {
        free((char *)op->rows[i].body);
        free((unsigned char *)op->rows[i].bytes);
    }
    free(op->rows);
    for (size_t i = 0; i < op->nnames; i++)
        free(op->names[i]);
    free(op->names);
    free(op->text);
    free(op->bytes);
    free(op);
}

static int outbox__collect(int64_t id, int64_t chat, const char *body, const void *data,
                           size_t data_len, void *arg)
{
    struct outbox_op *op = arg;
    char *b = strdup(body);
    unsigned char *bytes = data != NULL && data_len > 0 ? malloc(data_len) : NULL;
    if (b == NULL || (bytes == NULL && data != NULL && data_len > 0)) {
        free(b);
        free(bytes);
        return HB_ENOMEM;
    }
    if (bytes != NULL)
        memcpy(bytes, data, data_len);
    op->rows[op->n++] = (struct outbox_row){
        .id = id, .chat = chat, .body = b, .bytes = bytes, .len = bytes != NULL ? data_len : 0};
    return 0;
}

static int outbox__name(const char *channel, void *arg)
{
    struct outbox_op *op = arg;
    if (op->nnames == op->names_cap) {
        char **names = hb_grow(op->names, &op->names_cap, 8, sizeof(*names));
        if (names == NULL)
            return HB_ENOMEM;
        op->names = names;
    }
    if ((op->names[op->nnames] = strdup(channel)) == NULL)
        return HB_ENOMEM;
    op->nnames++;
    return 0;
}

/* Read at most max rows of the channel and move them, with every row
 * numbered below the last one read (undeliverable ones too); all of them
 * when fewer were read. */
static int outbox__take(struct store_txn *txn, struct outbox_op *op)
{
    int rc = store_txn_outbox_each(txn, op->channel, 0, op->max, outbox__collect, op);
    if (rc == 0)
        rc = store_txn_outbox_move(txn, op->channel, op->to,
                                   op->n == op->max ? op->rows[op->n - 1].id : 0, op->now_ms, NULL);
    /* A row of the same number where they go (HB_EEXISTS, which the store
     * takes for "nothing written"): this take fails, and its savepoint
     * goes back. */
    return rc == HB_EEXISTS ? HB_ECONFLICT : rc;
}

static int outbox__run(struct store_txn *txn, struct store_job *job)
{
    struct outbox_op *op = container_of(job, struct outbox_op, job);
    switch (op->verb) {
    case OUTBOX_PUT:
        return store_txn_outbox_put(txn, op->channel, op->id, op->chat, op->text, op->bytes,
                                    op->len, op->now_ms);
    case OUTBOX_REMOVE:
        return store_txn_outbox_remove(txn, op->channel, op->id);
    case OUTBOX_FAIL:
        return store_txn_outbox_fail(txn, op->channel, op->id, op->text, op->now_ms);
    case OUTBOX_LIST: {
        int rc = store_txn_outbox_each(txn, op->channel, 0, op->max, outbox__collect, op);
        return rc < 0 ? rc : HB_EEXISTS; /* nothing written */
    }
    case OUTBOX_CHANNELS: {
        int rc = store_txn_outbox_channels(txn, op->channel, outbox__name, op);
        return rc < 0 ? rc : HB_EEXISTS; /* nothing written */
    }
    case OUTBOX_TAKE:
        return outbox__take(txn, op);
    }
    return HB_EINVAL;
}

static void outbox__done(struct store_job *job, int rc)
{
    struct outbox_op *op = container_of(job, struct outbox_op, job);
    if (rc == HB_EEXISTS)
        rc = 0;
    if (op->list_cb != NULL)
        op->list_cb(rc, op->rows, rc == 0 ? op->n : 0, op->data);
    else if (op->channels_cb != NULL)
        op->channels_cb(rc, (const char *const *)op->names, rc == 0 ? op->nnames : 0, op->data);
    else if (op->cb != NULL)
        op->cb(rc, op->data);
    outbox__free(op);
}

static int outbox__submit(struct store *store, enum outbox_verb verb, const char *channel,
                          int64_t id, const char *text, struct outbox_op **out)
{
    if (store == NULL || channel == NULL || strlen(channel) >= sizeof((*out)->channel))
        return HB_EINVAL;
    struct outbox_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return HB_ENOMEM;
    op->verb = verb;
    memcpy(op->channel, channel, strlen(channel) + 1);
    op->id = id;
    op->now_ms = clock_real_ms();
    if (text != NULL && (op->text = strdup(text)) == NULL) {
        free(op);
        return HB_ENOMEM;
    }
    op->job.run = outbox__run;
    op->job.done = outbox__done;
    *out = op;
    return 0;
}

static int outbox__go(struct store *store, struct outbox_op *op)
{
    int rc = store_submit(store, &op->job);
    if (rc < 0)
        outbox__free(op);
    return rc;
}

int outbox_put(struct store *store, const char *channel, int64_t id, int64_t chat, const char *body,
               outbox_cb cb, void *data)
{
    return outbox_put_bytes(store, channel, id, chat, body, NULL, 0, cb, data);
}

int outbox_put_bytes(struct store *store, const char *channel, int64_t id, int64_t chat,
                     const char *body, const void *bytes, size_t len, outbox_cb cb, void *data)
{
    struct outbox_op *op;
    int rc = body != NULL && (bytes != NULL || len == 0)
                 ? outbox__submit(store, OUTBOX_PUT, channel, id, body, &op)
                 : HB_EINVAL;
    if (rc < 0)
        return rc;
    if (len > 0) {
        if ((op->bytes = malloc(len)) == NULL) {
            outbox__free(op);
            return HB_ENOMEM;
        }
        memcpy(op->bytes, bytes, len);
        op->len = len;
    }
    op->chat = chat;
    op->cb = cb;
    op->data = data;
    return outbox__go(store, op);
}

int outbox_remove(struct store *store, const char *channel, int64_t id, outbox_cb cb, void *data)
{
    struct outbox_op *op;
    int rc = outbox__submit(store, OUTBOX_REMOVE, channel, id, NULL, &op);
    if (rc < 0)
        return rc;
    op->cb = cb;
    op->data = data;
    return outbox__go(store, op);
}

int outbox_fail(struct store *store, const char *channel, int64_t id, const char *reason,
                outbox_cb cb, void *data)
{
    struct outbox_op *op;
    int rc = outbox__submit(store, OUTBOX_FAIL, channel, id, reason != NULL ? reason : "", &op);
    if (rc < 0)
        return rc;
    op->cb = cb;
    op->data = data;
    return outbox__go(store, op);
}

/* A reading of at most max rows of channel (list), moved to `to` (take):
 * submitted, cb to get them. */
static int outbox__rows(struct store *store, enum outbox_verb verb, const char *channel,
                        const char *to, size_t max, outbox_list_cb cb, void *data)
{
    struct outbox_op *op;
    int rc = cb != NULL && max > 0 && (to == NULL || strlen(to) < sizeof(op->to))
                 ? outbox__submit(store, verb, channel, 0, NULL, &op)
                 : HB_EINVAL;
    if (rc < 0)
        return rc;
    op->rows = calloc(max, sizeof(*op->rows));
    if (op->rows == NULL) {
        outbox__free(op);
        return HB_ENOMEM;
    }
    if (to != NULL)
        memcpy(op->to, to, strlen(to) + 1);
    op->max = max;
    op->list_cb = cb;
    op->data = data;
    return outbox__go(store, op);
}

int outbox_list(struct store *store, const char *channel, size_t max, outbox_list_cb cb, void *data)
{
    return outbox__rows(store, OUTBOX_LIST, channel, NULL, max, cb, data);
}

int outbox_take(struct store *store, const char *from, const char *to, size_t max,
                outbox_list_cb cb, void *data)
{
    return to != NULL ? outbox__rows(store, OUTBOX_TAKE, from, to, max, cb, data) : HB_EINVAL;
}

static int outbox__channels(struct store *store, const char *family, outbox_channels_cb cb,
                            void *data)
{
    struct outbox_op *op;
    int rc = cb != NULL ? outbox__submit(store, OUTBOX_CHANNELS, family, 0, NULL, &op) : HB_EINVAL;
    if (rc < 0)
        return rc;
    op->channels_cb = cb;
    op->data = data;
    return outbox__go(store, op);
}

int outbox_channel_name(char *buf, size_t cap, const char *family, const struct cluster *c)
{
    int n = c != NULL ? snprintf(buf, cap, "%s/%s", family, cluster_run(c))
                      : snprintf(buf, cap, "%s", family);
    return n >= 0 && (size_t)n < cap ? 0 : HB_EOVERFLOW;
}

uint64_t outbox_look_ms(const struct cluster *c)
{
    uint64_t every = (uint64_t)cluster_lease_ms(c) / 3;
    return every > 1000 ? every : 1000;
}

struct outbox_takeover {
    struct store *store;
    struct cluster *c;
    char family[OUTBOX_CHANNEL_MAX], mine[OUTBOX_CHANNEL_MAX];
    size_t max;
    outbox_list_cb cb;
    void (*listed)(size_t takes, void *data);
    void *data;
};

static void outbox__gone_listed(int rc, const char *const *names, size_t n, void *data)
{
    struct outbox_takeover *t = data;
    if (rc < 0 && rc != HB_ESCHEMA)
        log_error("outbox.error", "op=channels family=%s error=%s", t->family, hb_strerror(rc));
    size_t family = strlen(t->family), takes = 0;
    for (size_t i = 0; rc == 0 && i < n && cluster_judging(t->c); i++) {
        const char *run = names[i][family] == '/' ? names[i] + family + 1 : "";
        if (strcmp(names[i], t->mine) == 0 || (run[0] != '\0' && cluster_run_alive(t->c, run)))
            continue;
        log_info("outbox.takeover", "from=%s to=%s", names[i], t->mine);
        if (outbox_take(t->store, names[i], t->mine, t->max, t->cb, t->data) == 0)
            takes++;
        else
            log_error("outbox.error", "op=take from=%s error=cannot submit", names[i]);
    }
    t->listed(takes, t->data);
    free(t);
}

int outbox_takeover(struct store *store, struct cluster *c, const char *family, const char *mine,
                    size_t max, outbox_list_cb cb, void (*listed)(size_t takes, void *data),
                    void *data)
{
    if (store == NULL || c == NULL || family == NULL || mine == NULL || cb == NULL ||
        listed == NULL || max == 0 || strlen(family) >= OUTBOX_CHANNEL_MAX ||
        strlen(mine) >= OUTBOX_CHANNEL_MAX)
        return HB_EINVAL;
    struct outbox_takeover *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return HB_ENOMEM;
    *t = (struct outbox_takeover){
        .store = store, .c = c, .max = max, .cb = cb, .listed = listed, .data = data};
    memcpy(t->family, family, strlen(family) + 1);
    memcpy(t->mine, mine, strlen(mine) + 1);
    int rc = outbox__channels(store, family, outbox__gone_listed, t);
    if (rc < 0)
        free(t);
    return rc;
}

/* The wall clock in microseconds, shifted left by OUTBOX_ID_TAG_BITS, and
 * a tag drawn once per process in those bits: two processes numbering a
 * row in the same microsecond still differ, unless their tags are alike
 * too (one chance in 256). Ids of the earlier scheme (milliseconds times
 * 1000) are all lower, so rows left by it go first. */
#define OUTBOX_ID_TAG_BITS 8

int64_t outbox_id_new(void)
{
    static int64_t last, tag = -1;
    if (tag < 0) {
        unsigned char b = 0;
        if (getrandom(&b, 1, GRND_NONBLOCK) != 1) /* never waits on the loop */
            b = (unsigned char)getpid();
        tag = b;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    int64_t id = us << OUTBOX_ID_TAG_BITS | tag;
    if (id <= last)
        id = last + (INT64_C(1) << OUTBOX_ID_TAG_BITS);
    last = id;
    return id;
}
