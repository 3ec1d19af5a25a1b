/* What the Telegram adapter's files share: the adapter's state and each
 * file's entry points.
 *
 * The files depend one way. Lowest first; each calls only files listed
 * before it here (besides net/, core/ and base/):
 *
 *   text.c      pure helpers: setting lists, text cuts, JSON fields
 *   calls.c     Bot API calls (net/http_pipe.h or one transfer each), the
 *               adapter's references, jitter
 *   sendq.c     the paced per-chat send queue; it holds reply handles
 *   outbox.c    the durable outbox under the queue: rows for the sends an
 *               update or a notice owes, written with the offset in one
 *               store job; replayed at start (sendq.c and outbox.c call
 *               each other: the queue asks for rows, the outbox releases
 *               sends once their rows are durable)
 *   reply.c     reply handles: neutral replies into queued sends
 *   notify.c    unprompted messages through the queue
 *   stars.c     Stars: invoices, pre-checkout answers, payments, refunds
 *   cmdsync.c   setMyCommands when the command list changed
 *   image.c     images members send with a chat turn: getFile, the
 *               capped download, then the turn to the router
 *   update.c    an update into an invocation; a group's migration detected
 *               (the pool moves in core/pool.h)
 *   poll.c      getMe, the stored offset, setWebhook or the getUpdates loop
 *   telegram.c  the adapter's life: settings, start, stop, close, its ops
 *
 * Two calls go back up, through function pointers that telegram_new()
 * sets: tg->maybe_free (the last tg_unref frees the adapter: telegram.c)
 * and tg->chat_migrated (a send answered "the group is now a supergroup":
 * tg_migrate in update.c). */
#ifndef HB_TELEGRAM_INTERNAL_H
#define HB_TELEGRAM_INTERNAL_H

#include "adapters/telegram/telegram.h"
#include "net/http.h"
#include "net/server.h"
#include "core/command.h"
#include "core/outbox.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#define TG_PACKAGES_MAX 16
#define TG_ADMINS_MAX 64
#define TG_TEXT_MAX 4096    /* message text, UTF-16 code units */
#define TG_CAPTION_MAX 1024 /* photo caption */
#define TG_CALLBACK_TEXT_MAX 200
#define TG_STATE_NS "telegram" /* the state table's namespace: offset, commands_hash */
#define TG_CALL_TIMEOUT_MS 30000

struct tg;
struct tg_ob_write;
struct tg_chat;
enum tg_op_kind { TG_OP_JSON = 0, TG_OP_PHOTO = 1 };
struct tg_call;

/* The outcome of one Bot API call, as the completion sees it. */
struct tg_result {
    int rc;                  /* transport: 0 when a response arrived */
    int status;              /* HTTP status, 0 without a response */
    bool ok;                 /* the body's "ok" */
    const cJSON *result;     /* the body's "result", or NULL */
    const char *description; /* the body's "description", or "" */
    int64_t retry_after;     /* parameters.retry_after (seconds, at most a day), 0 when absent */
    int64_t migrate_to;      /* parameters.migrate_to_chat_id, 0 when absent */
    double elapsed_ms;
};

typedef void (*tg_done_fn)(struct tg *tg, void *data, const struct tg_result *res);

struct tg {
    struct adapter adapter;
    uv_loop_t *loop;
    struct http_client *http;
    struct core *core;
    struct adapter_host host;
    char *base;             /* "<api_base>/bot<token>/" (secret: never logged) */
    struct http_pipe *pipe; /* pipelined JSON calls, or NULL: each its own transfer */
    const char *pipe_path;  /* base from the path on ("/bot<token>/"), inside base */

    /* settings */
    int64_t poll_timeout_s;
    unsigned poll_limit;
    uint64_t chat_interval_ms, group_interval_ms, global_per_s, retry_unit_ms;
    uint64_t backoff_min_ms, backoff_max_ms;
    unsigned max_inflight;
    size_t queue_max; /* polling pauses while sends queued or outbox rows reach this */
    bool pacing_off;
    bool webhook;         /* updates come from a webhook: never poll */
    char *webhook_url;    /* setWebhook at start to this; NULL: the operator does */
    char *webhook_secret; /* secret_token for setWebhook; NULL: none */
    int64_t admins[TG_ADMINS_MAX];
    size_t nadmins;
    struct telegram_package packages[TG_PACKAGES_MAX];
    size_t npackages;

    /* who the bot is (getMe) */
    int64_t bot_id;
    char bot_username[64];

    /* updates in */
    bool running; /* started and not stopped */
    bool closing;
    struct tg_call *poll; /* the getUpdates in flight, or NULL */
    int64_t offset;       /* next update_id wanted; older ones are duplicates */
    int64_t persisted;    /* offset last written to the state table */
    unsigned failures;    /* consecutive failed or empty polls, for back-off */
    uv_timer_t poll_timer;
    uv_timer_t kick_timer; /* the next step, soon (tg_poll_kick) */
    /* The poller's lease on a shared ledger (core/cluster.h): one daemon
     * polls; the others wait and take over when its lease runs out. */
    uv_timer_t lease_timer; /* takes or renews the lease, every third of it */
    bool lease_held;        /* this daemon is the poller */
    bool lease_asking;      /* a take is in flight */
    bool lease_waiting;     /* standing by (logged once) */
    bool owed_busy;         /* a pass over the payment notices owed is running */
    bool owed_asking;       /* webhook mode: the lease of that duty is being taken */
    bool owed_lease;        /* webhook mode: this daemon holds that lease */
    uint64_t lease_asked;   /* uv_now() when the take in flight was asked */
    uint64_t lease_until;   /* uv_now() past which the lease may have run out */
    uint64_t rng;           /* xorshift state for jitter */

    /* sends out */
    uv_timer_t sq_timer;
    bool sq_armed;   /* sq_timer is started */
    uint64_t sq_due; /* when it fires */
    struct tg_chat **buckets;
    size_t nbuckets, nchats;
    struct tg_chat *ready_head, *ready_tail; /* chats with work, not busy */
    struct tg_chat *idle_head, *idle_tail;   /* chats with nothing queued, oldest first */
    unsigned inflight;
    double tokens;         /* global bucket */
    uint64_t tokens_at;    /* ms of the last refill */
    uint64_t global_until; /* a global 429 pause, ms */

    struct tg_call *calls;             /* every call in flight, to cancel on close */
    size_t refs;                       /* open + calls + replies + store operations */
    void (*maybe_free)(struct tg *tg); /* telegram.c: free once closed and unreferenced */
    void (*chat_migrated)(struct tg *tg, int64_t from, int64_t to); /* update.c: tg_migrate */
    size_t handles_open;
    void (*close_cb)(void *data);
    void *close_data;

    uint64_t updates_seen; /* counters for logs and benchmarks */
    uint64_t sends_done;

    /* confirmation: an update is confirmed (the offset stored and sent to
     * Telegram) only once what it caused is safe: sent, or a row in the
     * outbox written in the same store job as the offset */
    int64_t current_update; /* the update being handled (replies take it), 0 none */
    struct tg_reply *unsettled_head, *unsettled_tail; /* replies still deciding, by update */
    size_t unsettled;                                 /* replies in that list */
    int64_t confirm_upto;        /* updates below this are confirmed or being confirmed */
    int64_t safe_upto;           /* ... and below this safe: getUpdates may confirm them */
    size_t inflight_unconfirmed; /* replies in flight whose update is not confirmed */
    size_t queued;               /* sends in the chat queues (held ones included) */
    bool held_back;              /* a poll waits for the queue or the outbox to shrink */
    bool replayed;               /* the outbox was loaded and given to the queue */
    size_t replaying;            /* loaded rows not yet sent: no poll before they are */
    struct tg_hook *hooks_head, *hooks_tail; /* webhook requests waiting for safety (poll.c) */
    void (*drain_cb)(void *data);            /* stopping: called once the queue is empty */
    void *drain_data;

    /* the outbox (outbox.c) */
    bool ob_on;            /* the store has an outbox */
    bool ob_rows_off;      /* benchmarks: the offset alone, no rows */
    bool ob_offset_wait;   /* ... and each poll waits for it (TELEGRAM_OUTBOX_BEFORE) */
    int64_t ob_next;       /* next row id */
    size_t ob_rows;        /* rows written (or being written) and not removed */
    struct tg_op **ob_put; /* sends whose rows go with the next write */
    size_t ob_nput, ob_capput;
    int64_t *ob_del; /* rows to remove with the next write */
    size_t ob_ndel, ob_capdel;
    struct tg_ob_fail *ob_fail; /* rows to mark undeliverable with the next write */
    size_t ob_nfail, ob_capfail;
    int64_t ob_offset;             /* offset to store with the next write, 0 none */
    unsigned ob_writing;           /* writes in the store */
    struct tg_ob_write *ob_failed; /* a write that failed, tried again on ob_timer; NULL none */
    uv_timer_t ob_timer; /* an offset with no rows waits a moment for another write to carry it */
    char ob_channel[OUTBOX_CHANNEL_MAX]; /* the rows' channel; "" until known (tg_outbox_channel) */
    uv_timer_t ob_look; /* webhook mode with other daemons: look for rows of runs gone */
    bool ob_looking;    /* a look is under way */

    struct tg_img *imgs; /* images being fetched for chat turns (image.c) */
};

/* One queued call. */
struct tg_op {
    struct tg_op *next;
    struct tg_reply *reply; /* holds a reference, or NULL */
    const char *method;     /* static string */
    enum tg_op_kind kind;
    cJSON *body; /* JSON body, or the form fields of a photo */
    unsigned char *photo;
    size_t photo_len;
    char *photo_name;
    char *photo_mime;
    bool edit;     /* message_id comes from the reply at send time */
    bool sets_msg; /* the result's message_id goes to the reply */
    unsigned attempts;
    int64_t chat_id; /* the queue it is in (its key) */
    bool group;
    int64_t outbox_id;    /* its outbox row, 0 none */
    bool in_put;          /* its row goes with the next write (in tg->ob_put) */
    bool row_written;     /* a write with its row went to the store */
    bool held;            /* not sent before its row is durable */
    unsigned held_writes; /* outbox writes in flight that carry its row: sent once none is */
    bool replayed;        /* loaded from the outbox at start */
    bool unconfirmed;     /* in flight as a reply to an update not yet confirmed */
};

struct tg_ob_fail {
    int64_t id;
    char reason[96];
};

/* A reply handle for one update. */
struct tg_reply {
    struct reply reply;
    struct tg *tg;
    int64_t chat_id;
    bool group;
    int64_t reply_to;  /* message to answer in groups, 0 none */
    int64_t msg_id;    /* message later sends edit in place, 0 none */
    bool edit_next;    /* the next text replaces msg_id (or the message being sent) */
    bool progress;     /* msg_id shows progress text ("Generating..."): an image replaces it */
    char *callback_id; /* callback query still to answer, or NULL */
    size_t refs;       /* the handle itself + queued sends */
    bool finished;
    /* Personal answers asked for in a group (reply.c) */
    int64_t user_id;     /* who asked: their private chat has this id; 0 unknown */
    struct tg_reply *dm; /* the handle for the asker's private chat (one reference), or NULL */
    int64_t notice_chat; /* a private-chat handle: the group to tell where the answer went */
    int64_t notice_to;   /* ... and the message there to answer, 0 none */
    bool noticed;        /* the group has been told */
    /* The typing indicator while a generation runs (reply.c) */
    uv_timer_t typing;     /* holds a reference to the handle while open */
    bool typing_open;      /* the timer is initialised and not yet closing */
    unsigned typing_ticks; /* chat actions sent, capped */
    /** Each queued send of this handle, when it is done (sent, refused or
     *  given up): sendq.c calls it before dropping the send; NULL: none. */
    void (*sent)(struct tg_reply *r, const struct tg_result *res);
    int64_t update_id; /* the update it answers, 0 none (then its sends are notices) */
    bool secret;       /* it sent a secret (reply_msg.secret): its sends get no outbox row */
    bool unsettled;    /* in tg->unsettled list: neither finished nor has it sent anything */
    struct tg_reply *unext, *uprev;
};

/* ---- text.c ---- */
/* A whole number field within +-2^53 (Telegram's ids fit in 52 bits); def
 * when absent, and when out of range or fractional (logged). */
int64_t tg_json_int(const cJSON *obj, const char *name, int64_t def);
const char *tg_json_str(const cJSON *obj, const char *name);

/* ---- calls.c ---- */
void tg_ref(struct tg *tg);
void tg_unref(struct tg *tg);
uint64_t tg_jitter(struct tg *tg, uint64_t ms);
/** A Bot API request for method, ready for a body (NULL on no memory). */
struct http_request *tg_request_new(struct tg *tg, const char *method);
/** Start req; done runs once with the parsed outcome. Returns 0 or an error
 *  (then done never runs and req is gone). */
int tg_request_start(struct tg *tg, struct http_request *req, tg_done_fn done, void *data,
                     struct tg_call **out);
/** POST body (borrowed) as JSON to method; done may be NULL. */
int tg_call_json(struct tg *tg, const char *method, const cJSON *body, tg_done_fn done, void *data);
/** Cancel one call, or every call in flight (closing). */
void tg_call_cancel(struct tg_call *c);
void tg_calls_cancel(struct tg *tg);

/* ---- sendq.c ---- */
/** Queue a call in a chat's queue: body is taken over. edit: message_id is
 *  filled from the reply at send time; sets_msg: the result's message_id is
 *  stored in the reply. Coalesces with a queued, unstarted edit of the same
 *  reply when coalesce is true. Returns 0 or HB_ENOMEM. */
int tg_sendq_json(struct tg *tg, int64_t chat_id, bool group, struct tg_reply *r,
                  const char *method, cJSON *body, bool edit, bool sets_msg, bool coalesce);
int tg_sendq_photo(struct tg *tg, int64_t chat_id, bool group, struct tg_reply *r, cJSON *fields,
                   const struct reply_image *img);
void tg_sendq_drop(struct tg *tg); /* closing: forget what has not started */
/** The poller's lease went to another daemon: forget the queued sends it
 *  now makes (the outbox's durable rows, which it replays, and replies to
 *  updates not confirmed, which Telegram gives it again). */
void tg_sendq_drop_lost(struct tg *tg);
/** The poller's lease went to another daemon: no offset is written from
 *  here any more, nor the rows of a failed write for replies to updates
 *  it did not confirm (the new poller takes them again). Before
 *  tg_sendq_drop_lost, which goes by what is confirmed. */
void tg_outbox_lost(struct tg *tg);
/** Look at the queue again now (sends held while the lease may have run
 *  out go once it is renewed). */
void tg_sendq_kick(struct tg *tg);
/** On a shared ledger, the poller whose lease may have run out (it was not
 *  renewed in time: a stall, the store out of reach) sends and polls
 *  nothing until it knows: another daemon may have taken over. */
bool tg_lease_lapsed(const struct tg *tg);
/** On a shared ledger in polling mode (where one daemon holds the lease):
 *  this one does not hold it, or it may have run out. It then confirms no
 *  update and writes no offset: the poller does. */
bool tg_lease_standby(const struct tg *tg);
void tg_sendq_free(struct tg *tg); /* free the chats */
void tg_sendq_migrate(struct tg *tg, int64_t from, int64_t to);
/** Delete the progress message r shows (its id is taken at send time;
 *  nothing is sent when it never got one). */
int tg_sendq_progress_delete(struct tg *tg, struct tg_reply *r);
/** Call fn for every queued send (in flight ones included). */
void tg_sendq_each(struct tg *tg, void (*fn)(struct tg *tg, struct tg_op *op, void *data),
                   void *data);
/** A queued op whose row became durable may go (held ops wait for it). */
void tg_sendq_release(struct tg *tg, struct tg_op *op);
/** Queue an op built from an outbox row (outbox.c). Takes it over. */
int tg_sendq_push_op(struct tg *tg, struct tg_op *op);
void tg_sendq_op_free(struct tg_op *op);
/** A new reply for the update being handled waits to settle. */
void tg_reply_track(struct tg_reply *r);
/** A reply is settled: it finished, or queued a send. */
void tg_reply_settle(struct tg_reply *r);
/** Publish the queue's and the outbox's depth in /metrics. */
void tg_sendq_gauges(struct tg *tg);
/** Drop a reference to a reply handle; the last one frees it. */
void tg_reply_unref(struct tg_reply *r);

/* ---- outbox.c ---- */
/** Whether a send made now must have its row durable before it goes. */
bool tg_outbox_wants(struct tg *tg, const struct tg_op *op);
/** Give op a row, written with the next store job. */
void tg_outbox_add(struct tg *tg, struct tg_op *op);
/** op's text changed (a newer edit coalesced into it): write its row again. */
void tg_outbox_rewrite(struct tg *tg, struct tg_op *op);
/** A send with a row is over: sent (or given up: then undeliverable, with
 *  reason, when it was a notice). */
void tg_outbox_done(struct tg *tg, struct tg_op *op, const char *undeliverable);
/** op's send was given up for network errors or 5xx (the Bot API out of
 *  reach, not a refusal): its row, if it has one, is left as it is for
 *  the next start, neither removed nor marked undeliverable. */
void tg_outbox_keep(struct tg *tg, struct tg_op *op);
/** Confirm updates below offset: rows for what they still owe, then the
 *  offset, in one store job; tg->persisted moves when it is durable. */
void tg_outbox_checkpoint(struct tg *tg, int64_t offset);
/** Submit what waits (force: even while another write is in the store). */
void tg_outbox_flush(struct tg *tg, bool force);
/** Load the outbox into the queue (start); then done(tg). In webhook mode
 *  with other daemons, then every third of a lease, take the rows of runs
 *  that are gone into this run's channel and queue them. */
void tg_outbox_replay(struct tg *tg, void (*done)(struct tg *tg));
/** The daemon's cluster (core/cluster.h), or NULL alone on its ledger. */
struct cluster *tg_cluster(const struct tg *tg);
/** The channel of the outbox rows: "telegram", shared by whichever daemon
 *  polls; in webhook mode with other daemons, "telegram/<run id>", each
 *  daemon's own. */
const char *tg_outbox_channel(struct tg *tg);
/** After the start's replay, in webhook mode with other daemons: look for
 *  the rows of runs gone now, then every third of a lease. */
void tg_outbox_look_start(struct tg *tg);
/** Closing: every send still owed goes to the outbox with the offset of
 *  the updates whose replies are settled. */
void tg_outbox_close(struct tg *tg);
void tg_outbox_free(struct tg *tg);

/* ---- reply.c ---- */
/** A reply handle holding one reference (dropped by its finish). */
struct tg_reply *tg_reply_new(struct tg *tg, int64_t chat_id, bool group, int64_t reply_to);
void tg_callback_answer(struct tg *tg, const char *id, const char *text);
cJSON *tg_markup(const struct reply_button *b, size_t n);

/* ---- notify.c ---- */
/** The adapter's notify operation (adapters/adapter.h). */
int tg_notify(struct adapter *a, const struct notify_target *to, const struct reply_msg *msg);

/** Holding the poller's lease on a shared ledger: send the payment notices
 *  to Telegram members that other daemons booked and could not send (only
 *  the poller sends to Telegram), those written at least a lease ago. One
 *  pass at a time; called with every renewal of the lease. */
void tg_notify_owed(struct tg *tg);
/** Webhook mode with other daemons: take the lease of the notices owed
 *  (every look), and pass over them while holding it; give it up when
 *  closing. */
void tg_notify_owed_webhook(struct tg *tg);
void tg_notify_owed_drop(struct tg *tg);

/* ---- stars.c ---- */
void tg_stars_offer(struct tg *tg, struct tg_reply *r, int64_t chat_id, bool group);
void tg_stars_precheckout(struct tg *tg, const cJSON *q);
void tg_stars_paid(struct tg *tg, struct tg_reply *r, int64_t chat_id, int64_t user_id,
                   const cJSON *payment);
void tg_stars_refund(struct tg *tg, struct tg_reply *r, const char *charge_id,
                     const char *admin_id);

/* ---- cmdsync.c ---- */
/** setMyCommands, unless the list is the one last set. */
void tg_commands_sync(struct tg *tg);

/* ---- image.c ---- */
struct tg_img;
/** The image message m carries (a photo: the largest size within max by
 *  its file_size; a document declared image/...): 0 and its file_id;
 *  HB_ENOTFOUND when it carries none; HB_EOVERFLOW when it is larger than
 *  max; HB_EPROTO for a file that is not an image. */
int tg_image_source(const cJSON *m, size_t max, char *file_id, size_t cap);
/** [limits] image_max_bytes of the current catalog. */
size_t tg_image_max(const struct tg *tg);
/** Fetch file_id, then dispatch inv (its options are taken) with args and
 *  the image; or answer why not. The reply handle is made now. */
void tg_image_dispatch(struct tg *tg, struct invocation *inv, const char *args, int64_t chat_id,
                       bool group, int64_t reply_to, const char *file_id);
/** Answer a chat turn whose image cannot be taken (rc as tg_image_source). */
void tg_image_refuse(struct tg *tg, int rc, int64_t chat_id, bool group, int64_t reply_to);
/** Closing: stop the downloads in flight. */
void tg_images_cancel(struct tg *tg);

/* ---- update.c ---- */
int tg_update_handle(struct tg *tg, const cJSON *u);
/** A group became a supergroup: its pool moves to the new chat id. */
void tg_migrate(struct tg *tg, int64_t from, int64_t to);

/* ---- poll.c ---- */
/** getMe, then the stored offset, then the webhook or the long poll. */
void tg_poll_start(struct tg *tg);
/* Stopping: give the poller's lease up, so that another daemon takes over
 * at once rather than when it runs out. */
void tg_poll_lease_drop(struct tg *tg);
/** Store the offset when it moved (the next poll waits for the write). */
void tg_persist_offset(struct tg *tg);
/** Take the next step soon: confirm, poll, or wait (backpressure). */
void tg_poll_kick(struct tg *tg);
/** Webhook mode: answer Telegram's request for the updates just handled
 *  (200) once they are safe, as a poll's confirmation would wait. */
void tg_webhook_hold(struct tg *tg, struct server_request *req);
/** Closing: the requests still waiting are answered 503, so Telegram
 *  delivers their updates again (a repeat, never a loss). */
void tg_webhook_close(struct tg *tg);

#endif
