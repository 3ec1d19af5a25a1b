/* The store's record calls (storage/store.h): each one indirect call into
 * the backend chosen at open (store_backend.h), made on the store's thread
 * inside a job's transaction. */
#include "storage/store.h"

#include "base/error.h"
#include "storage/store_backend.h"

#include <stdlib.h>
#include <string.h>

/* ---- Records: one indirect call each ------------------------------------ */

int store_txn_account_get(struct store_txn *txn, const char *id, struct store_account *out)
{
    return txn->store->ops->account_get(txn, id, out);
}

int store_txn_account_insert(struct store_txn *txn, const struct store_account *account)
{
    return txn->store->ops->account_insert(txn, account);
}

int store_txn_account_update(struct store_txn *txn, const struct store_account *account)
{
    return txn->store->ops->account_update(txn, account);
}

int store_txn_transfer_get(struct store_txn *txn, const char *id, struct store_transfer *out)
{
    return txn->store->ops->transfer_get(txn, id, out);
}

int store_txn_head(struct store_txn *txn, uint64_t *seq, uint8_t hash[STORE_HASH_SIZE])
{
    return txn->store->ops->head(txn, seq, hash);
}

int store_txn_clock_ms(struct store_txn *txn, int64_t *now_ms)
{
    if (txn->store->ops->clock_ms == NULL)
        return UV_ENOTSUP;
    return txn->store->ops->clock_ms(txn, now_ms);
}

int store_txn_head_recorded(struct store_txn *txn, uint64_t *seq, uint8_t hash[STORE_HASH_SIZE])
{
    return txn->store->ops->head_recorded(txn, seq, hash);
}

int store_txn_transfer_append(struct store_txn *txn, const struct store_transfer *t)
{
    return txn->store->ops->transfer_append(txn, t);
}

int store_txn_transfer_find_link(struct store_txn *txn, const char *link, uint32_t flags_any,
                                 struct store_transfer *out)
{
    return txn->store->ops->transfer_find_link(txn, link, flags_any, out);
}

int store_txn_link_sum(struct store_txn *txn, const char *link, uint32_t flags_any, int64_t *sum)
{
    return txn->store->ops->link_sum(txn, link, flags_any, sum);
}

int store_txn_pending_add(struct store_txn *txn, const char *id, int64_t expires_at)
{
    return txn->store->ops->pending_add(txn, id, expires_at);
}

int store_txn_pending_remove(struct store_txn *txn, const char *id)
{
    return txn->store->ops->pending_remove(txn, id);
}

int store_txn_pending_expired(struct store_txn *txn, int64_t now, char (*ids)[STORE_ID_SIZE],
                              size_t max, size_t *n)
{
    return txn->store->ops->pending_expired(txn, now, ids, max, n);
}

int store_txn_pending_next(struct store_txn *txn, int64_t *expires_at)
{
    return txn->store->ops->pending_next(txn, expires_at);
}

int store_txn_transfer_each(struct store_txn *txn, uint64_t from_seq,
                            int (*fn)(const struct store_transfer *t, void *data), void *data)
{
    return txn->store->ops->transfer_each(txn, from_seq, fn, data);
}

int store_txn_account_each(struct store_txn *txn,
                           int (*fn)(const struct store_account *a, void *data), void *data)
{
    return txn->store->ops->account_each(txn, fn, data);
}

int store_txn_pending_each(struct store_txn *txn,
                           int (*fn)(const char *id, int64_t expires_at, void *data), void *data)
{
    return txn->store->ops->pending_each(txn, fn, data);
}

int store_txn_history(struct store_txn *txn, const char *account, uint64_t before_seq,
                      struct store_transfer *out, size_t max, size_t *n)
{
    return txn->store->ops->history(txn, account, before_seq, out, max, n);
}

int store_txn_usage(struct store_txn *txn, uint32_t kind, uint32_t flags_none, const char *account,
                    int64_t from, int64_t to, struct store_usage *out, size_t max, size_t *n)
{
    return txn->store->ops->usage(txn, kind, flags_none, account, from, to, out, max, n);
}

int store_txn_state_get(struct store_txn *txn, const char *ns, const char *key, char **value)
{
    return txn->store->ops->state_get(txn, ns, key, value);
}

int store_txn_state_put(struct store_txn *txn, const char *ns, const char *key, const char *value,
                        int64_t now_ms)
{
    return txn->store->ops->state_put(txn, ns, key, value, now_ms);
}

int store_txn_state_each(struct store_txn *txn, const char *ns, const char *prefix,
                         int (*fn)(const char *key, const char *value, void *data), void *data)
{
    return txn->store->ops->state_each(txn, ns, prefix, fn, data);
}

int store_txn_state_range(struct store_txn *txn, const char *ns, const char *from, const char *to,
                          int (*fn)(const char *key, const char *value, void *data), void *data)
{
    return txn->store->ops->state_range(txn, ns, from, to, fn, data);
}

int store_txn_chat_put(struct store_txn *txn, const char *key, unsigned fields, const char *persona,
                       int plaintalk, int64_t now_ms)
{
    return txn->store->ops->chat_put(txn, key, fields, persona, plaintalk, now_ms);
}

int store_txn_chat_each(struct store_txn *txn,
                        int (*fn)(const char *key, const char *persona, int plaintalk, void *data),
                        void *data)
{
    return txn->store->ops->chat_each(txn, fn, data);
}

int store_txn_link_put(struct store_txn *txn, const char *identity, const char *wallet,
                       int64_t now_ms)
{
    return txn->store->ops->link_put(txn, identity, wallet, now_ms);
}

int store_txn_link_remove(struct store_txn *txn, const char *identity)
{
    return txn->store->ops->link_remove(txn, identity);
}

int store_txn_link_each(struct store_txn *txn,
                        int (*fn)(const char *identity, const char *wallet, int64_t linked_at,
                                  void *data),
                        void *data)
{
    return txn->store->ops->link_each(txn, fn, data);
}

int store_txn_vote_add(struct store_txn *txn, const char *scope, const char *period,
                       const struct store_vote *v)
{
    return txn->store->ops->vote_add(txn, scope, period, v);
}

int store_txn_vote_top(struct store_txn *txn, const char *scope, const char *period,
                       struct store_vote *out, size_t max, size_t *n)
{
    return txn->store->ops->vote_top(txn, scope, period, out, max, n);
}

int store_txn_counter_add(struct store_txn *txn, const char *name, int64_t win, int64_t delta,
                          int64_t limit, int64_t *used)
{
    int64_t after = 0;
    int rc = txn->store->ops->counter_add(txn, name, win, delta, limit, &after);
    if (rc == 0) /* the bound refused it: say what the counter holds */
        rc = store_txn_counter_get(txn, name, win, &after) < 0 ? HB_ESTORAGE : HB_ELIMIT;
    else if (rc > 0)
        rc = 0;
    if (used != NULL)
        *used = after;
    return rc;
}

int store_txn_counter_get(struct store_txn *txn, const char *name, int64_t win, int64_t *used)
{
    return txn->store->ops->counter_get(txn, name, win, used);
}

int store_txn_conv_get(struct store_txn *txn, const char *id, struct store_conv *out)
{
    return txn->store->ops->conv_get(txn, id, out);
}

int store_txn_conv_put(struct store_txn *txn, const struct store_conv *c)
{
    return txn->store->ops->conv_put(txn, c);
}

int store_txn_conv_turns(struct store_txn *txn, const char *conv,
                         int (*fn)(int64_t seq, const char *role, const char *text, int64_t at,
                                   void *data),
                         void *data)
{
    return txn->store->ops->conv_turns(txn, conv, fn, data);
}

int store_txn_conv_turn_put(struct store_txn *txn, const char *conv, int64_t seq, const char *role,
                            const char *text, int64_t at)
{
    return txn->store->ops->conv_turn_put(txn, conv, seq, role, text, at);
}

int store_txn_conv_trim(struct store_txn *txn, const char *conv, int64_t first)
{
    return txn->store->ops->conv_trim(txn, conv, first);
}

int store_txn_conv_place_get(struct store_txn *txn, const char *place, char *conv, size_t cap)
{
    return txn->store->ops->conv_place_get(txn, place, conv, cap);
}

int store_txn_conv_message_get(struct store_txn *txn, const char *message, char *conv, size_t cap)
{
    return txn->store->ops->conv_message_get(txn, message, conv, cap);
}

int store_txn_conv_places_each(struct store_txn *txn, int (*fn)(const char *place, void *data),
                               void *data)
{
    return txn->store->ops->conv_places_each(txn, fn, data);
}

int store_txn_conv_place_put(struct store_txn *txn, const char *place, const char *conv,
                             const char *owner, int64_t now_ms)
{
    return txn->store->ops->conv_place_put(txn, place, conv, owner, now_ms);
}

int store_txn_conv_message_put(struct store_txn *txn, const char *message, const char *conv,
                               const char *owner, int64_t now_ms)
{
    return txn->store->ops->conv_message_put(txn, message, conv, owner, now_ms);
}

int store_txn_conv_forget(struct store_txn *txn, const char *owner, int64_t *turns)
{
    return txn->store->ops->conv_forget(txn, owner, turns);
}

int store_txn_conv_expire(struct store_txn *txn, int64_t before, int64_t *rows)
{
    return txn->store->ops->conv_expire(txn, before, rows);
}

void store_txn_vacuum_after(struct store_txn *txn)
{
    txn->store->ops->vacuum_after(txn);
}

int store_txn_outbox_put(struct store_txn *txn, const char *channel, int64_t id, int64_t chat,
                         const char *body, const void *data, size_t data_len, int64_t now_ms)
{
    return txn->store->ops->outbox_put(txn, channel, id, chat, body, data, data_len, now_ms);
}

int store_txn_outbox_remove(struct store_txn *txn, const char *channel, int64_t id)
{
    return txn->store->ops->outbox_remove(txn, channel, id);
}

int store_txn_outbox_fail(struct store_txn *txn, const char *channel, int64_t id, const char *error,
                          int64_t now_ms)
{
    return txn->store->ops->outbox_fail(txn, channel, id, error, now_ms);
}

int store_txn_outbox_each(struct store_txn *txn, const char *channel, int64_t after_id, size_t max,
                          int (*fn)(int64_t id, int64_t chat, const char *body, const void *data,
                                    size_t data_len, void *arg),
                          void *arg)
{
    return txn->store->ops->outbox_each(txn, channel, after_id, max, fn, arg);
}

int store_txn_outbox_max(struct store_txn *txn, const char *channel, int64_t *id)
{
    return txn->store->ops->outbox_max(txn, channel, id);
}

int store_txn_outbox_count(struct store_txn *txn, const char *channel, bool undeliverable,
                           int64_t *n)
{
    return txn->store->ops->outbox_count(txn, channel, undeliverable, n);
}

int store_txn_outbox_channels(struct store_txn *txn, const char *family,
                              int (*fn)(const char *channel, void *arg), void *arg)
{
    return txn->store->ops->outbox_channels(txn, family, fn, arg);
}

int store_txn_outbox_move(struct store_txn *txn, const char *from, const char *to, int64_t upto_id,
                          int64_t now_ms, int64_t *moved)
{
    int64_t n = 0;
    int rc = txn->store->ops->outbox_move(txn, from, to, upto_id, now_ms, &n);
    if (moved != NULL)
        *moved = rc == 0 ? n : 0;
    return rc;
}

int store_txn_audit_head(struct store_txn *txn, uint64_t *seq, uint8_t hash[STORE_HASH_SIZE])
{
    return txn->store->ops->audit_head(txn, seq, hash);
}

int store_txn_audit_head_recorded(struct store_txn *txn, uint64_t *seq,
                                  uint8_t hash[STORE_HASH_SIZE])
{
    return txn->store->ops->audit_head_recorded(txn, seq, hash);
}

int store_txn_audit_append(struct store_txn *txn, const struct store_audit *a)
{
    return txn->store->ops->audit_append(txn, a);
}

int store_txn_audit_each(struct store_txn *txn, uint64_t from_seq,
                         int (*fn)(const struct store_audit *a, void *data), void *data)
{
    return txn->store->ops->audit_each(txn, from_seq, fn, data);
}

int store_txn_audit_page(struct store_txn *txn, const char *match, uint64_t before_seq, size_t skip,
                         struct store_audit *out, size_t max, size_t *n)
{
    return txn->store->ops->audit_page(txn, match, before_seq, skip, out, max, n);
}

int store_txn_apikey_insert(struct store_txn *txn, const struct store_apikey *k)
{
    return txn->store->ops->apikey_insert(txn, k);
}

int store_txn_apikey_each(struct store_txn *txn,
                          int (*fn)(const struct store_apikey *k, void *data), void *data)
{
    return txn->store->ops->apikey_each(txn, fn, data);
}

int store_txn_apikey_revoke(struct store_txn *txn, const char *id, int64_t at)
{
    return txn->store->ops->apikey_revoke(txn, id, at);
}

int store_txn_apikey_spend(struct store_txn *txn, const char *id, int64_t amount, int64_t day,
                           int64_t now_ms)
{
    return txn->store->ops->apikey_spend(txn, id, amount, day, now_ms);
}

void store_image_clear(struct store_image *img)
{
    if (img == NULL)
        return;
    free(img->prompt);
    free(img->data);
    img->prompt = NULL;
    img->data = NULL;
    img->len = 0;
}

int store_txn_image_put(struct store_txn *txn, const struct store_image *img)
{
    return txn->store->ops->image_put(txn, img);
}

int store_txn_image_get(struct store_txn *txn, const char *id, enum store_image_bytes bytes,
                        struct store_image *out)
{
    return txn->store->ops->image_get(txn, id, bytes, out);
}

int store_txn_image_page(struct store_txn *txn, const char *scope, const char *period, bool top,
                         int64_t since_ms, size_t skip, size_t max, enum store_image_bytes bytes,
                         struct store_image *out, size_t *n)
{
    *n = 0;
    if (max > STORE_IMAGE_PAGE_MAX)
        max = STORE_IMAGE_PAGE_MAX;
    return txn->store->ops->image_page(txn, scope, period, top, since_ms, skip, max, bytes, out, n);
}

int store_txn_image_prune(struct store_txn *txn, int64_t before_ms, int64_t keep_max,
                          const char *with_ns, int64_t *removed)
{
    int64_t none = 0;
    return txn->store->ops->image_prune(txn, before_ms, keep_max, with_ns,
                                        removed != NULL ? removed : &none);
}

int store_txn_image_forget(struct store_txn *txn, const char *owner, int64_t *erased)
{
    int64_t none = 0;
    return txn->store->ops->image_forget(txn, owner, erased != NULL ? erased : &none);
}
