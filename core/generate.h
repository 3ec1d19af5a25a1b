/* The generation engine: jobs, the fair queue, limits, and settlement.
 *
 * A job's life: check (model, access, content filter, rate limits and the
 * daily token cap) -> estimate the cost and reserve it from the payer ->
 * queue (fair across members, bounded, per-member and per-provider limits)
 * -> run on the model's provider with progress flowing back through the
 * reply handle -> filter the output -> settle: post the actual cost (never
 * more than reserved) or, when the model and its fallbacks all fail, void
 * the reservation and say that nothing was charged.
 *
 * Jobs are persisted in the state table ("gen.job") while they hold a
 * reservation; generate_recover() voids what a crash left behind and tells
 * the member at once through the host's notify, or on their next
 * generation command when no adapter of their platform runs. Prompt text is never in the
 * ledger, nor in a job's record except that of a job held for approval until it is decided
 * (core/approval.h), and appears in logs only at debug level; /chat conversations (prompts
 * and answers) are stored apart, bounded and erasable (generate_conversation.c). */
#ifndef HB_GENERATE_H
#define HB_GENERATE_H

#include "core/approval.h"
#include "core/catalog.h"
#include "core/command.h"
#include "base/clock.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct core;
struct invocation;
struct pool_settings;

/** State namespace of per-group model switches (/admin model): keys
 *  "<platform>:<group>/<model>", value "off" (no key: as bot.conf says). */
#define GENERATE_NS_SCOPE_MODEL "scope.model"

/** State namespace of daily outcome counters: keys
 *  "<day>/refused/<reason>" and "<day>/failed/<provider>", integer values. */
#define GENERATE_NS_STATS "stats.gen"

/** Why a generation was refused, for statistics. */
enum generate_refusal {
    GEN_REFUSE_FUNDS,       /* not enough credits */
    GEN_REFUSE_FILTER,      /* the content filter blocked the prompt */
    GEN_REFUSE_USER_LIMIT,  /* the member's hourly limit */
    GEN_REFUSE_GROUP_LIMIT, /* the group's daily limit */
    GEN_REFUSE_TOKEN_CAP,   /* the global daily token cap */
    GEN_REFUSE_BUSY,        /* queue full, or the member's jobs in flight */
    GEN_REFUSE_INPUT,       /* prompt too long, size not offered */
    GEN_REFUSE_MODEL,       /* unknown, off, or not allowed here */
    GEN_REFUSE_OTHER,       /* shutting down, out of memory, storage trouble */
    GEN_REFUSE_KEY_DAY,     /* the API key's daily spending cap */
    GEN_REFUSE_KEY_TOTAL,   /* the API key's spending cap in total */
};

/** "credits", "filter", "member_limit", ... */
const char *generate_refusal_name(enum generate_refusal why);

/** Load the models a group's admins turned off, as "\n<name>\n<name>\n"
 *  (heap, the callback owns it; NULL when none). Returns 0 (cb follows), or
 *  a negative code (HB_ENOTFOUND outside a group) and no callback. */
int generate_scope_off_load(struct core *core, const struct invocation *inv,
                            void (*cb)(char *off, void *data), void *data);

/** Is name in such a list? off may be NULL. */
bool generate_scope_off_has(const char *off, const char *name);
struct generate;

/** What one finished job cost in time, for measurements. */
struct generate_job_report {
    int rc;             /* 0: delivered and settled; else why not */
    int64_t charged;    /* credits posted */
    double total_ms;    /* submit to final reply */
    double provider_ms; /* time spent inside provider calls and back-off waits */
};

struct generate_options {
    struct clock clock; /* wall clock in ms for limit windows; the zero value: the real one */
    /** Called once per job that reached the queue, when it ends (may be NULL). */
    void (*on_job_end)(void *data, const struct generate_job_report *report);
    void *hook_data;
};

/** Counters since start. */
struct generate_stats {
    uint64_t submitted;        /* commands that asked for a generation */
    uint64_t refused;          /* refused before anything was reserved */
    uint64_t completed;        /* delivered and charged */
    uint64_t failed;           /* ended with the reservation voided */
    uint64_t retries;          /* attempts repeated on the same model */
    uint64_t fallbacks;        /* switches to a fallback model */
    uint64_t filtered_prompts; /* prompts blocked by the filter */
    uint64_t filtered_outputs; /* outputs withheld by the filter */
    uint64_t redactions;       /* prompts or outputs with redactions */
    int64_t credits;           /* posted in total */
    int64_t tokens_today;      /* counted against the daily cap */
    size_t members;            /* member and group entries held in memory (limits, conversations,
                                  preferences); those idle for a day are forgotten */
    size_t queued, running;

    uint64_t conversation_loads; /* conversations looked up in the store (cache misses) */
};

/** Make the engine on loop, charging through core->ledger. Takes a
 *  reference to cat. opts may be NULL. Returns NULL when out of memory. */
struct generate *generate_new(uv_loop_t *loop, struct core *core, struct catalog *cat,
                              const struct generate_options *opts);

/** Swap in a new catalog (a reference is taken; the old one is dropped
 *  once the jobs admitted under it end). */
void generate_catalog_set(struct generate *g, struct catalog *cat);

/** The current catalog (borrowed). */
struct catalog *generate_catalog(const struct generate *g);

/** Void the reservations of jobs a crash or restart left behind and
 *  remember to tell their members. cb (may be NULL) gets how many were
 *  voided. Returns 0 or a negative code (no callback). */
int generate_recover(struct generate *g, void (*cb)(int rc, size_t voided, void *data), void *data);

/** generate_recover for a shared ledger, run with every heartbeat: void
 *  the jobs of runs whose heartbeat ran out (core/cluster.h), never a live
 *  daemon's, and bring no held job back. Does nothing without a cluster or
 *  while a pass is still running. */
int generate_recover_orphans(struct generate *g, void (*cb)(int rc, size_t voided, void *data),
                             void *data);

/** This run's id ("run-..."), written into every job record. */
const char *generate_run(struct generate *g);

/** Tell members whose jobs a restart voided, now, through the host's
 *  notify (core/core.h); a member told is forgotten, the others are told
 *  with their next generation command. generate_recover() calls it when
 *  it is done; call it again once the adapters run. Returns how many were
 *  told. */
int generate_notices_send(struct generate *g);

/** The caller of the job whose sink's data is sink_data is gone (an API
 *  client that closed its connection): a job still waiting (queued, before
 *  a retry) is voided, charged nothing; a running text job's call is
 *  stopped and the job charged for what the provider had made, as at its
 *  end (so that leaving before the end is never a way not to pay); a job
 *  being admitted is voided once reserved. An image being made, one held
 *  for an admin and one settling go on. The sink still hears the end.
 *  Returns 0, or HB_ENOTFOUND when no live job has that sink. */
int generate_cancel(struct generate *g, const void *sink_data);

/** Stop: queued and waiting jobs are voided and told at once; running calls
 *  are cancelled and their reservations voided (the void is queued on the
 *  ledger now, so close the ledger after this call, not before). cb runs once
 *  every job is gone; the engine is then freed. */
void generate_close(struct generate *g, void (*cb)(void *data), void *data);

/** How a job ended, for a caller that reads outcomes rather than replies
 *  (the HTTP API). Everything is borrowed for the duration of the call. */
struct generate_outcome {
    int rc;                        /* 0: delivered and settled; else why not */
    bool refused;                  /* refused before anything ran (refusal says why) */
    enum generate_refusal refusal; /* when refused */
    const char *message;           /* the sentence a member would read (refusal, failure) */
    const char *model;             /* the model that answered, or was asked for; "" */
    const char *text;              /* TEXT: the output after the filter; NULL when none */
    size_t text_len;
    const unsigned char *image; /* IMAGE: the picture's bytes; NULL when none */
    size_t image_len;
    const char *image_mime;
    long input_tokens, output_tokens; /* as settled; -1 when not known */
    int64_t charged;                  /* credits posted for this request */
    int64_t reserved;                 /* credits it reserved (the upper bound) */
    bool replayed;                    /* the ledger had this job's charge already: not charged
                                         again (an idempotent retry) */
};

/** Raw events of a job, besides (or instead of reading) its reply messages.
 *  text gets each output delta as it arrives (before the final filter; a
 *  delta is passed only while the output so far is neither blocked nor
 *  redacted by the filter); end is called exactly once, as the job ends,
 *  before its reply handle is finished. */
struct generate_sink {
    void (*text)(void *data, const char *delta, size_t len); /* may be NULL */
    void (*end)(void *data, const struct generate_outcome *outcome);
    void *data;
};

/** One request for a generation. Borrowed for the call. */
struct generate_request {
    enum provider_modality modality;
    const char *prompt;
    const char *model; /* NULL or "": the member's choice (/model), else the first enabled */
    const char *size;  /* images: "512x512"; NULL: the model's first size */
    /* The HTTP API (all zero for a chat command): */
    const struct provider_message *messages; /* TEXT: the whole conversation, oldest first
                                                ("user"/"assistant"); no stored conversation,
                                                no persona; prompt is ignored */
    size_t nmessages;
    const char *system; /* the caller's system text, after the model's own */
    int64_t max_tokens; /* TEXT: a lower output cap than the model's; 0: its own */
    const char *payer;  /* the one account that pays (no fallback); NULL: by scope */
    /* The API key it is charged through, whose spending caps (credits per
     * UTC day and in total; 0: none) hold in the store: each reservation
     * counts against them in its own commit, the charge settles them. */
    const char *key_id;
    int64_t key_cap_day;
    int64_t key_cap_total;
    const struct generate_sink *sink; /* outcome and raw deltas; NULL: replies only */
};

/** Submit a generation for the invocation. Takes over inv->reply: every
 *  answer goes there and it is finished when the job ends. */
void generate_submit(struct generate *g, struct invocation *inv,
                     const struct generate_request *req);

/** Regenerate the image `gid` for its owner (a new, charged job); takes
 *  over inv->reply. */
void generate_regenerate(struct generate *g, struct invocation *inv, const char *gid);

/** Delete the stored images past [gallery] retention, then all but the
 *  max_images newest (core/gallery.h); runs every hour by itself. cb (may
 *  be NULL) gets 0 and the images deleted, or an error. Returns 0 (cb
 *  follows) or a negative code. */
int generate_images_maintain(struct generate *g, void (*cb)(int rc, int64_t removed, void *data),
                             void *data);

/** Record inv's member's upvote of image `gid` (once per member, never of
 *  their own); ref_owner_check verifies the button was made for the owner.
 *  Takes over inv->reply. */
void generate_upvote(struct generate *g, struct invocation *inv, const char *gid,
                     const char *button_ref);

/** Start over: the next plain message of the invocation's member in its
 *  channel (or topic) begins a new conversation (/new). */
void generate_conversation_reset(struct generate *g, const struct invocation *inv);

/** Erase every stored conversation of the invocation's member (/forget):
 *  cached and stored turns, places and message links are deleted now, the
 *  space vacuumed by the next maintenance. cb gets 0 and how many turns
 *  went, or an error. Returns 0 (cb follows) or a negative code. */
int generate_conversation_forget(struct generate *g, const struct invocation *inv,
                                 void (*cb)(int rc, int64_t turns, void *data), void *data);

/** Delete stored conversations past the retention period and vacuum when
 *  something was erased since the last time; runs every hour by itself.
 *  cb (may be NULL) gets 0 and the rows deleted, or an error. Returns 0
 *  (cb follows) or a negative code. */
int generate_conversation_maintain(struct generate *g, void (*cb)(int rc, int64_t rows, void *data),
                                   void *data);

/** Remember the member's model of choice (durably, in the state table).
 *  Returns 0 (cb follows) or a negative code. */
int generate_preference_set(struct generate *g, const struct invocation *inv, const char *model,
                            void (*cb)(int rc, void *data), void *data);

/** The member's remembered model, if it is cached ("" when none). */
const char *generate_preference_cached(struct generate *g, const struct invocation *inv);

/** Who pays for a generation: in a DM the member's wallet; in a group the
 *  pool or the wallet by the pool's policy (settings s), with the other one
 *  in alt as the fallback when the first cannot cover the reservation. A
 *  pool that is not usable (capped for today) is left out. Returns 0 or
 *  HB_EINVAL. */
int generate_payer_choose(const struct core *core, const struct invocation *inv,
                          const struct pool_settings *s, bool pool_usable, char *buf, size_t cap,
                          char *alt, size_t altcap);

void generate_stats_get(const struct generate *g, struct generate_stats *out);

/* ---- the approval queue (core/approval.h) ------------------------------ */

/** Take the approval rules (copied); jobs already held keep their timeout. */
void generate_approval_configure(struct generate *g, const struct approval_rules *rules);

/** The rules in force, copied to out. */
void generate_approval_rules(const struct generate *g, struct approval_rules *out);

/** The held jobs, oldest first, as text for /admin approvals, into buf
 *  (cap bytes): those the admin of `by` may decide (generate_approval_decide;
 *  by NULL: all). Returns how many are listed. */
size_t generate_approvals_list(struct generate *g, const struct invocation *by, char *buf,
                               size_t cap);

/** Decide the held job `id` as the admin of `by` (identity borrowed):
 *  approve (it runs), edit (text: the new prompt, then it runs), reject
 *  (text: the reason, may be NULL; the reservation is voided). Writes the
 *  answer for the admin to msg. Returns 0; HB_ENOTFOUND (no such job);
 *  HB_ESTATE (already decided: msg says how and by whom); HB_EPERM (not an
 *  admin of the job's scope or of the approval chat). */
int generate_approval_decide(struct generate *g, const struct invocation *by, const char *id,
                             enum approval_outcome outcome, const char *text, char *msg,
                             size_t cap);

/** Completion of generate_approval_forward: rc as generate_approval_decide's,
 *  or a storage error; msg (borrowed) the answer for the admin. */
typedef void (*generate_approval_cb)(int rc, const char *msg, void *data);

/** generate_approval_decide for a job this daemon does not hold, on a
 *  ledger other daemons share: finds the held job's record in the store,
 *  checks the admin may decide it, and leaves the decision there for the
 *  daemon holding it, which applies it at its next heartbeat
 *  (generate_approvals_asked). Returns 0 (cb follows), HB_ENOTFOUND (alone
 *  on its ledger, or id cannot be one: nothing to look for), HB_ENOMEM or
 *  the store's error. */
int generate_approval_forward(struct generate *g, const struct invocation *by, const char *id,
                              enum approval_outcome outcome, const char *text,
                              generate_approval_cb cb, void *data);

/** The held jobs of every daemon of a shared ledger, read from their
 *  records in the store, oldest first (the first 200), those the admin of
 *  `by` may decide (by NULL: all): cb(rc, text, data) with the text for
 *  /admin approvals. Returns 0 (cb follows), HB_ENOTFOUND (alone on its
 *  ledger: generate_approvals_list says it all), HB_ENOMEM or the store's
 *  error. */
int generate_approvals_list_shared(struct generate *g, const struct invocation *by,
                                   generate_approval_cb cb, void *data);

/** Apply the decisions left in the store (by other daemons) for the jobs
 *  held here; drop those nobody took for ten minutes. The daemon calls it
 *  at every heartbeat of a shared ledger. */
void generate_approvals_asked(struct generate *g);

/** Void the held jobs whose time is up (a timer runs it too). Returns how
 *  many timed out. */
size_t generate_approvals_expire(struct generate *g);

/** Hits of the content filter rule `name` since start (prompts and outputs). */
uint64_t generate_filter_hits(const struct generate *g, const char *name);

#endif
