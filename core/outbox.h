/* The outbox, one row at a time: messages owed to someone that no command
 * waits on (a notice), kept in the store until they are sent or found
 * undeliverable. Each channel (an adapter) numbers its own rows and encodes
 * its own bodies.
 *
 * Every call here is one store job of its own, which joins the store's
 * group commit: right for notices, which are few. The Telegram adapter
 * batches the rows of its replies itself (adapters/telegram/outbox.c). */
#ifndef HB_OUTBOX_H
#define HB_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

struct store;

/** rc: 0 once durable, or a negative code. */
typedef void (*outbox_cb)(int rc, void *data);

/** Write row id of channel (body: the channel's encoding, copied). cb may
 *  be NULL. Returns 0 (cb follows) or a negative code (no callback). */
int outbox_put(struct store *store, const char *channel, int64_t id, int64_t chat, const char *body,
               outbox_cb cb, void *data);

/** outbox_put with bytes kept beside the body (an image to upload; copied,
 *  len may be 0). */
int outbox_put_bytes(struct store *store, const char *channel, int64_t id, int64_t chat,
                     const char *body, const void *bytes, size_t len, outbox_cb cb, void *data);

/** Remove row id (sent). cb may be NULL. */
int outbox_remove(struct store *store, const char *channel, int64_t id, outbox_cb cb, void *data);

/** Keep row id, marked undeliverable with reason (never logged with
 *  secrets: a short cause). cb may be NULL. */
int outbox_fail(struct store *store, const char *channel, int64_t id, const char *reason,
                outbox_cb cb, void *data);

struct outbox_row {
    int64_t id;
    int64_t chat;
    const char *body;
    const unsigned char *bytes; /* kept beside the body, or NULL */
    size_t len;
};

/** The rows of channel still to send (not undeliverable), oldest first, at
 *  most max. cb gets rc (HB_ESCHEMA: a database without an outbox), the
 *  rows (valid during the call) and their count. */
typedef void (*outbox_list_cb)(int rc, const struct outbox_row *rows, size_t n, void *data);
int outbox_list(struct store *store, const char *channel, size_t max, outbox_list_cb cb,
                void *data);

/** A row id no earlier one of this host's runs used: the wall clock in
 *  microseconds, kept increasing within the process. Needs no read of the
 *  store, so notices can be taken before an adapter loaded its rows. */
int64_t outbox_id_new(void);

#endif
