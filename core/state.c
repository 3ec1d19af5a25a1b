#include "core/state.h"

#include "base/error.h"
#include "storage/store.h"
#include "base/util.h"
#include "base/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum state_verb { STATE_GET, STATE_PUT, STATE_LIST, STATE_RANGE, STATE_INCR, STATE_REMOVE_IF };

struct state_op {
    struct store_job job;
    enum state_verb verb;
    char *ns;
    char *key;                   /* key, or prefix for a listing, or a range's start */
    char *value;                 /* put: the value (NULL deletes); get: what was read */
    char *to;                    /* range: the end (excluded), or NULL */
    size_t max;                  /* list: most entries */
    int64_t delta;               /* incr: what to add */
    struct state_entry *entries; /* list: results (strings owned here) */
    size_t n;
    state_cb cb;
    state_list_cb list_cb;
    void *data;
};

static int state__collect(const char *key, const char *value, void *data)
{
    struct state_op *op = data;
    if (op->n >= op->max)
        return 1;
    char *k = strdup(key);
    char *v = strdup(value);
    if (k == NULL || v == NULL) {
        free(k);
        free(v);
        return HB_ENOMEM;
    }
    op->entries[op->n].key = k;
    op->entries[op->n].value = v;
    op->n++;
    return 0;
}

static int state__run(struct store_txn *txn, struct store_job *job)
{
    struct state_op *op = container_of(job, struct state_op, job);
    switch (op->verb) {
    case STATE_GET:
        return store_txn_state_get(txn, op->ns, op->key, &op->value);
    case STATE_PUT:
        return store_txn_state_put(txn, op->ns, op->key, op->value, clock_real_ms());
    case STATE_LIST: {
        int rc = store_txn_state_each(txn, op->ns, op->key, state__collect, op);
        return rc == 1 ? 0 : rc;
    }
    case STATE_RANGE: {
        int rc = store_txn_state_range(txn, op->ns, op->key, op->to, state__collect, op);
        return rc == 1 ? 0 : rc;
    }
    case STATE_INCR: {
        /* Read and write in one job: increments never lose each other. */
        char *old = NULL;
        int rc = store_txn_state_get(txn, op->ns, op->key, &old);
        if (rc < 0 && rc != HB_ENOTFOUND)
            return rc;
        long long v = old != NULL ? strtoll(old, NULL, 10) : 0;
        free(old);
        char buf[32];
        snprintf(buf, sizeof(buf), "%lld", v + (long long)op->delta);
        rc = store_txn_state_put(txn, op->ns, op->key, buf, clock_real_ms());
        if (rc == 0) {
            free(op->value);
            op->value = strdup(buf); /* the new value, for the callback; NULL if no memory */
        }
        return rc;
    }
    case STATE_REMOVE_IF: {
        /* Read and compare in the delete's own job: a value written since
         * the caller read it stays. */
        char *now = NULL;
        int rc = store_txn_state_get(txn, op->ns, op->key, &now);
        bool same = rc == 0 && now != NULL && strcmp(now, op->value) == 0;
        free(now);
        if (rc < 0 && rc != HB_ENOTFOUND)
            return rc;
        return same ? store_txn_state_put(txn, op->ns, op->key, NULL, clock_real_ms())
                    : HB_ECONFLICT;
    }
    }
    return HB_EINVAL;
}

static void state__op_free(struct state_op *op)
{
    for (size_t i = 0; i < op->n; i++) {
        free((char *)op->entries[i].key);
        free((char *)op->entries[i].value);
    }
    free(op->entries);
    free(op->ns);
    free(op->key);
    free(op->value);
    free(op->to);
    free(op);
}

static void state__done(struct store_job *job, int rc)
{
    struct state_op *op = container_of(job, struct state_op, job);
    if (op->verb == STATE_LIST || op->verb == STATE_RANGE) {
        if (op->list_cb != NULL)
            op->list_cb(rc, op->entries, rc == 0 ? op->n : 0, op->data);
    } else if (op->cb != NULL) {
        op->cb(rc, (op->verb == STATE_GET || op->verb == STATE_INCR) && rc == 0 ? op->value : NULL,
               op->data);
    }
    state__op_free(op);
}

static struct state_op *state__op_new(enum state_verb verb, const char *ns, const char *key)
{
    if (ns == NULL || key == NULL || strlen(ns) + strlen(key) > STATE_KEY_MAX || ns[0] == '\0')
        return NULL;
    struct state_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return NULL;
    op->verb = verb;
    op->ns = strdup(ns);
    op->key = strdup(key);
    op->job.run = state__run;
    op->job.done = state__done;
    if (op->ns == NULL || op->key == NULL) {
        state__op_free(op);
        return NULL;
    }
    return op;
}

static int state__submit(struct store *store, struct state_op *op)
{
    int rc = store_submit(store, &op->job);
    if (rc < 0)
        state__op_free(op);
    return rc;
}

int state_get(struct store *store, const char *ns, const char *key, state_cb cb, void *data)
{
    struct state_op *op = state__op_new(STATE_GET, ns, key);
    if (op == NULL)
        return HB_EINVAL;
    op->cb = cb;
    op->data = data;
    return state__submit(store, op);
}

/* A put or a remove_if of value (a copy), submitted. */
static int state__value_op(struct store *store, enum state_verb verb, const char *ns,
                           const char *key, const char *value, state_cb cb, void *data)
{
    struct state_op *op = state__op_new(verb, ns, key);
    if (op == NULL)
        return HB_EINVAL;
    if (value != NULL) {
        op->value = strdup(value);
        if (op->value == NULL) {
            state__op_free(op);
            return HB_ENOMEM;
        }
    }
    op->cb = cb;
    op->data = data;
    return state__submit(store, op);
}

int state_put(struct store *store, const char *ns, const char *key, const char *value, state_cb cb,
              void *data)
{
    if (value != NULL && strlen(value) > STATE_VALUE_MAX)
        return HB_EOVERFLOW;
    return state__value_op(store, STATE_PUT, ns, key, value, cb, data);
}

int state_remove_if(struct store *store, const char *ns, const char *key, const char *value,
                    state_cb cb, void *data)
{
    if (value == NULL)
        return HB_EINVAL;
    return state__value_op(store, STATE_REMOVE_IF, ns, key, value, cb, data);
}

int state_list(struct store *store, const char *ns, const char *prefix, size_t max,
               state_list_cb cb, void *data)
{
    if (max == 0 || max > 1000)
        return HB_EINVAL;
    struct state_op *op = state__op_new(STATE_LIST, ns, prefix);
    if (op == NULL)
        return HB_EINVAL;
    op->entries = calloc(max, sizeof(*op->entries));
    if (op->entries == NULL) {
        state__op_free(op);
        return HB_ENOMEM;
    }
    op->max = max;
    op->list_cb = cb;
    op->data = data;
    return state__submit(store, op);
}

int state_list_range(struct store *store, const char *ns, const char *from, const char *to,
                     size_t max, state_list_cb cb, void *data)
{
    if (max == 0 || max > 1000 || (to != NULL && strlen(to) > STATE_KEY_MAX))
        return HB_EINVAL;
    struct state_op *op = state__op_new(STATE_RANGE, ns, from);
    if (op == NULL)
        return HB_EINVAL;
    op->entries = calloc(max, sizeof(*op->entries));
    op->to = to != NULL ? strdup(to) : NULL;
    if (op->entries == NULL || (to != NULL && op->to == NULL)) {
        state__op_free(op);
        return HB_ENOMEM;
    }
    op->max = max;
    op->list_cb = cb;
    op->data = data;
    return state__submit(store, op);
}

int state_list_range_after(struct store *store, const char *ns, const struct state_entry *page,
                           size_t n, const char *to, size_t max, state_list_cb cb, void *data)
{
    if (n == 0 || n < max)
        return HB_ENOTFOUND;
    char from[STATE_KEY_MAX + 2];
    snprintf(from, sizeof(from), "%s\x01", page[n - 1].key);
    return state_list_range(store, ns, from, to, max, cb, data);
}

int state_list_after(struct store *store, const char *ns, const struct state_entry *page, size_t n,
                     size_t max, state_list_cb cb, void *data)
{
    return state_list_range_after(store, ns, page, n, NULL, max, cb, data);
}

#define STATE_READ_PAGE 1000 /* rows per store job of state_read_all */

struct state_read {
    struct store *store;
    char ns[STATE_KEY_MAX + 1];
    int (*row)(const char *key, const char *value, void *data);
    void (*done)(int rc, void *data);
    void *data;
};

static void state__read_page(int rc, const struct state_entry *e, size_t n, void *data)
{
    struct state_read *r = data;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = r->row(e[i].key, e[i].value, r->data);
    if (rc == 0) {
        rc = state_list_after(r->store, r->ns, e, n, STATE_READ_PAGE, state__read_page, r);
        if (rc == 0)
            return; /* a full page: the next one follows */
        if (rc == HB_ENOTFOUND)
            rc = 0;
    }
    r->done(rc, r->data);
    free(r);
}

int state_read_all(struct store *store, const char *ns,
                   int (*row)(const char *key, const char *value, void *data),
                   void (*done)(int rc, void *data), void *data)
{
    if (store == NULL || ns == NULL || strlen(ns) > STATE_KEY_MAX || row == NULL || done == NULL)
        return HB_EINVAL;
    struct state_read *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return HB_ENOMEM;
    *r = (struct state_read){.store = store, .row = row, .done = done, .data = data};
    memcpy(r->ns, ns, strlen(ns) + 1);
    int rc = state_list_range(store, ns, "", NULL, STATE_READ_PAGE, state__read_page, r);
    if (rc < 0)
        free(r);
    return rc;
}

int state_incr(struct store *store, const char *ns, const char *key, int64_t delta, state_cb cb,
               void *data)
{
    struct state_op *op = state__op_new(STATE_INCR, ns, key);
    if (op == NULL)
        return HB_EINVAL;
    op->delta = delta;
    op->cb = cb;
    op->data = data;
    return state__submit(store, op);
}
