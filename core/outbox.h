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

/** A row id no earlier run used, and one another daemon numbering rows at
 *  the same time does not use either: the wall clock in microseconds with
 *  a tag of the process's own in its low bits, kept increasing within the
 *  process. Needs no read of the store, so notices can be taken before an
 *  adapter loaded its rows. */
int64_t outbox_id_new(void);

/** Where a channel's name may be (the NUL included): a family's name, "/"
 *  and a run id. */
#define OUTBOX_CHANNEL_MAX 96

/** Move rows of channel from to channel to, in one transaction: at most
 *  max of its deliverable rows, oldest first, with every row numbered
 *  below the last of them (undeliverable ones too), or all its rows when
 *  fewer were deliverable. cb gets those deliverable rows, as outbox_list
 *  gives them, to send. Two daemons taking one channel at once: the second
 *  finds it empty (write transactions run one at a time). */
int outbox_take(struct store *store, const char *from, const char *to, size_t max,
                outbox_list_cb cb, void *data);

struct cluster;

/** The channel of this run's rows in buf (cap bytes): family itself
 *  without a cluster (a daemon alone on its ledger); with one, a channel
 *  of the run's own, "family/<run id>", so that no other daemon sends its
 *  rows while it lives (outbox_takeover). 0, or HB_EOVERFLOW. */
int outbox_channel_name(char *buf, size_t cap, const char *family, const struct cluster *c);

/** How often an adapter looks for the rows of runs that are gone
 *  (outbox_takeover): as often as the heartbeat reads the runs, a third of
 *  c's lease, but no more than once a second. */
uint64_t outbox_look_ms(const struct cluster *c);

/** Take over what runs that are gone left: list the channels of family,
 *  and take (outbox_take, at most max rows each) into the channel mine
 *  each one named family (the one channel of a daemon alone, or of the
 *  earlier scheme) or "family/<run id>" whose run is not alive by c, as
 *  long as c may judge others gone (cluster_judging). A run that lives is
 *  sending its own rows. cb is called once for each take, with its rows;
 *  listed(takes, data) once the listing is done, with how many takes it
 *  submitted (their cb calls come later). 0, or a negative code (no call
 *  follows). */
int outbox_takeover(struct store *store, struct cluster *c, const char *family, const char *mine,
                    size_t max, outbox_list_cb cb, void (*listed)(size_t takes, void *data),
                    void *data);

#endif
