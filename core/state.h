/* Durable state outside the ledger: member preferences, per-scope settings,
 * adapter cursors. Values are short text under a namespace and a key.
 *
 * Operations run on the store's thread, in the same group commits as ledger
 * operations, and call back on the loop after the commit is durable. Never
 * put credits here: every credit movement is a ledger transfer. */
#ifndef HB_STATE_H
#define HB_STATE_H

#include <stddef.h>
#include <stdint.h>

struct store;

#define STATE_KEY_MAX 256     /* namespace and key, in bytes */
#define STATE_VALUE_MAX 65536 /* value, in bytes */

/** Completion: rc is 0, HB_ENOTFOUND (get: no value), or an error. value is
 *  the value read (get) or NULL; borrowed for the callback. */
typedef void (*state_cb)(int rc, const char *value, void *data);

/** Read ns/key. Returns 0 (cb follows) or a negative code (no callback). */
int state_get(struct store *store, const char *ns, const char *key, state_cb cb, void *data);

/** Write ns/key = value, or delete it when value is NULL. cb may be NULL.
 *  Returns 0 (cb follows) or a negative code (no callback). */
int state_put(struct store *store, const char *ns, const char *key, const char *value, state_cb cb,
              void *data);

/** Delete ns/key only if its value is still value (read and deleted in one
 *  store job). cb (may be NULL) gets 0, HB_ECONFLICT (another value, or
 *  none: nothing deleted) or a storage error. Returns 0 (cb follows) or a
 *  negative code. */
int state_remove_if(struct store *store, const char *ns, const char *key, const char *value,
                    state_cb cb, void *data);

/** Add delta to the integer value of ns/key (absent counts as 0), in one
 *  step on the store's thread so concurrent increments never lose each
 *  other. cb (may be NULL) receives the new value as text. Returns 0 (cb
 *  follows) or a negative code. */
int state_incr(struct store *store, const char *ns, const char *key, int64_t delta, state_cb cb,
               void *data);

/** One entry of a listing. */
struct state_entry {
    const char *key;
    const char *value;
};

/** List the keys of ns that start with prefix (at most max, in key order).
 *  cb receives rc, the entries and their count. */
typedef void (*state_list_cb)(int rc, const struct state_entry *entries, size_t n, void *data);
int state_list(struct store *store, const char *ns, const char *prefix, size_t max,
               state_list_cb cb, void *data);

/** List the keys of ns with from <= key < to (to NULL: no upper bound), at
 *  most max of them, in key order: a bounded read that starts where the
 *  caller's interest starts (page on from the last key plus "\x01"). */
int state_list_range(struct store *store, const char *ns, const char *from, const char *to,
                     size_t max, state_list_cb cb, void *data);

/** The page after one of n entries of a whole-namespace listing
 *  (state_list_range with to NULL and this max): the next page is listed
 *  (0, cb follows) when this one was full, else HB_ENOTFOUND (the listing
 *  is over); or another negative code. */
int state_list_after(struct store *store, const char *ns, const struct state_entry *page, size_t n,
                     size_t max, state_list_cb cb, void *data);

/** state_list_after for a listing of a range (state_list_range with this
 *  to and max). */
int state_list_range_after(struct store *store, const char *ns, const struct state_entry *page,
                           size_t n, const char *to, size_t max, state_list_cb cb, void *data);

/** Read every row of ns in key order, a page (one store job) at a time:
 *  row(key, value, data) for each, on the loop; a negative return stops
 *  the read with that code. Then done(rc, data) once: 0, the read's
 *  failure, or row's code. Returns 0 (done follows) or a negative code
 *  (nothing follows). */
int state_read_all(struct store *store, const char *ns,
                   int (*row)(const char *key, const char *value, void *data),
                   void (*done)(int rc, void *data), void *data);

#endif
