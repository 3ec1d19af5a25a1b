/* What the generation engine's files share; not for use outside core/generate*.c.
 *
 * The engine is one service split by noun:
 *   generate.c              the job engine: life of a job, the fair queue,
 *                           running on a provider, retries and fallbacks
 *   generate_admit.c        admission: the checks, the payer, the reservation
 *   generate_settle.c       settlement: persisting the job, posting or voiding
 *   generate_quota.c        per-member and per-group rate limits, the token cap
 *   generate_conversation.c what /chat remembers of a conversation
 *   generate_erase.c        /forget, retention and the vacuum after erasures
 *   generate_prefs.c        each member's model of choice
 *   generate_image.c        kept images: Regenerate and upvotes
 *   generate_recover.c      voiding what a crash left behind, and telling members
 *   generate_switch.c       per-group model switches (/admin model)
 *   generate_persona.c      the job's persona: system prompt, settings, words
 *   generate_approval.c     the approval queue: holding jobs for an admin
 *   generate_approval_remote.c  deciding a job another daemon holds
 *
 * Helpers shared between these files take a double underscore
 * (generate__now, job__end); everything else stays static in its file. */
#ifndef HB_GENERATE_INTERNAL_H
#define HB_GENERATE_INTERNAL_H

#include "core/generate.h"

#include "core/approval.h"
#include "core/command.h"
#include "core/ledger.h"
#include "core/pool.h"
#include "core/standing.h"
#include "core/wallet.h"
#include "base/map.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define GEN_NS_JOB "gen.job"
#define GEN_NS_PREF "gen.pref"
#define GEN_NS_NOTICE "gen.notice"
#define GEN_NS_IMAGE "gen.image"
#define GEN_IMAGES_KEPT 128 /* recent images that Regenerate can re-run */
#define GEN_KEY_MAX 400
#define GEN_CONV_ID_MAX 160 /* a conversation's id (STORE_ID_SIZE): the id of its first job */
#define GEN_HOUR_MS 3600000LL
#define GEN_DAY_MS 86400000LL
#define GEN_IDLE_MS GEN_DAY_MS         /* a member idle this long leaves memory */
#define GEN_PRUNE_EVERY_MS GEN_HOUR_MS /* how often activity looks for idle entries */

enum job_state {
    JOB_ADMIT = 0, /* checks and reservation under way */
    JOB_QUEUED,
    JOB_RUNNING,
    JOB_BACKOFF, /* waiting to retry */
    JOB_SETTLE,  /* posting or voiding */
    JOB_HELD,    /* reserved, waiting for an admin's decision (generate_approval.c) */
    JOB_ENDED,
};

/* The maps below are keyed as their comment in struct generate says; each
 * owns its values (base/map.h). Entries of members and groups idle for
 * GEN_IDLE_MS leave memory (generate__prune); what must outlive them is in
 * the state table already (preferences) or never mattered past a day
 * (hourly and daily counters, conversations). */

/* What one daemon holds per member and per group: what is in flight here.
 * The hourly and daily counts and the token cap are durable counters in
 * the store (generate_quota.c), shared by every daemon on the ledger. */
struct gen_user {
    unsigned queued, running;
    unsigned jobs;        /* live jobs pointing here: never pruned while > 0 */
    uint64_t last_served; /* dispatch counter when this member last started a job */
    int64_t last_used;    /* wall-clock ms of the member's last job */
};

struct gen_pool {
    unsigned jobs;     /* live jobs pointing here: never pruned while > 0 */
    int64_t last_used; /* wall-clock ms of the group's last job */
};

/* In flight per provider name, across catalog generations. */
struct gen_provider_use {
    unsigned running;
};

struct gen_turn {
    const char *role; /* static string: "user" or "assistant" */
    char *text;
    size_t len;  /* strlen(text) */
    int64_t seq; /* its number in the conversation (the store's key) */
};

/* A conversation as cached in front of the store (generate_conversation.c). */
struct gen_conv {
    struct gen_turn *turns;
    size_t n, cap;
    size_t bytes;                   /* the turns' text, in bytes (the budget's measure) */
    int64_t next_seq;               /* the number the next turn takes */
    int64_t updated_at;             /* wall-clock ms of its last turn (the idle timeout) */
    int64_t last_used;              /* wall-clock ms it was last read or written (pruning) */
    char owner[WALLET_ACCOUNT_MAX]; /* the member's wallet account */
};

/* A place (plain messages) or a bot message (replies) and the conversation
 * it continues; conv "" when the store has none for it. */
struct gen_conv_ptr {
    char conv[GEN_CONV_ID_MAX];
    char owner[WALLET_ACCOUNT_MAX];
    int64_t last_used; /* wall-clock ms it was last read or written (pruning) */
};

struct gen_pref {
    char model[128];   /* "" when the member has none */
    int64_t last_used; /* wall-clock ms it was last read or set */
};

/* A member to tell that a restart voided their job. */
struct gen_notice {
    int64_t since; /* wall-clock ms it was recorded */
};

struct gen_image {
    char gid[16];
    struct invocation owner; /* identity only */
    char model[128];
    char *prompt;
    char size[24];
};

/* Drop the prompts of owner's (a wallet account) images from memory
 * (/forget; the stored ones go in the same erasure). */
void generate__images_forget(struct generate *g, const char *owner);

struct gen_hits {
    uint64_t hits;
};

#define GEN_DECIDED_KEPT 256 /* decisions remembered to answer a second press */

#define GEN_ACTOR_KEPT                                                                             \
    (COMMAND_ID_MAX + 16) /* what generate__actor writes at most, NUL included                     \
                           */

/* A decision, so a second press can say who made it. */
struct gen_decided {
    char id[APPROVAL_ID_LEN + 1];
    char by[GEN_ACTOR_KEPT];
    enum approval_outcome outcome;
};

struct job;
struct gen_quota_op;

/* What a job's give-back (job->back) was prepared for. */
enum job_back {
    JOB_BACK_NONE,    /* nothing prepared */
    JOB_BACK_SETTLE,  /* a charge: job__quota_settle */
    JOB_BACK_RELEASE, /* a failure's void: job__quota_void_prepare */
};
struct store;

struct generate {
    uv_loop_t *loop;
    struct core *core;
    struct catalog *cat;
    struct generate_options opts;
    struct job *all; /* every live job */
    struct job *queue_head, *queue_tail;
    size_t njobs; /* live jobs, until freed */
    size_t nqueued, nrunning;
    uint64_t dispatches;
    struct map *users;   /* wallet account -> struct gen_user */
    struct map *pools;   /* "<platform>:<group>" -> struct gen_pool */
    struct map *puse;    /* provider name -> struct gen_provider_use */
    struct map *convs;   /* conversation id -> struct gen_conv */
    struct map *prefs;   /* wallet account -> struct gen_pref */
    struct map *notices; /* wallet account -> struct gen_notice */
    struct map *hits;    /* filter rule name -> struct gen_hits */
    int64_t pruned_at;   /* wall-clock ms of the last prune */

    /* Conversations (generate_conversation.c, generate_erase.c). */
    struct map *conv_places; /* place key (generate__conv_key) -> struct gen_conv_ptr */
    struct map *conv_msgs;   /* "<platform>|<chat>|<message>" -> struct gen_conv_ptr */
    uv_timer_t conv_timer;   /* retention and vacuum, every GEN_PRUNE_EVERY_MS */
    bool conv_timer_open;
    struct conv_batch *conv_batch; /* writes of this loop turn, to the store in one job */
    uv_timer_t conv_flush;         /* sends conv_batch on the next turn of the loop */
    bool conv_flush_open;
    bool vacuum_due;       /* a member's conversations were erased since the last vacuum */
    uint64_t *conv_known;  /* hashes of the places the store may hold (open addressing, 0 free) */
    size_t conv_known_n;   /* hashes in it */
    size_t conv_known_cap; /* slots, a power of two, or 0 */
    bool conv_known_ready; /* loaded at start: a place not in it has no stored conversation */

    struct gen_image images[GEN_IMAGES_KEPT];
    size_t image_next;
    int64_t token_day;    /* UTC day of tokens_today */
    int64_t tokens_today; /* the store's token counter as last seen (for stats) */
    struct generate_stats stats;
    bool closing;
    bool asked_listing; /* generate_approvals_asked's read is under way */
    void (*close_cb)(void *data);
    void *close_data;
    char run[64];                   /* this run's id, or "" until generate__run makes it */
    bool orphans_busy;              /* a generate_recover_orphans pass is running */
    unsigned lapses_seen;           /* cluster_lapses as the last orphan pass read it */
    struct approval_rules approval; /* the rules in force */
    struct gen_decided decided[GEN_DECIDED_KEPT]; /* the latest decisions, a ring */
    size_t decided_next;
};

struct job {
    struct generate *g;
    struct job *all_next, *all_prev;
    struct job *q_next, *q_prev;
    unsigned refs;
    enum job_state state;
    struct catalog *cat;
    struct reply *reply;
    struct invocation who; /* identity of the asker; no options, no reply */
    char id[96];           /* "gen:<event id>" (hashed when long) */
    char wallet[WALLET_ACCOUNT_MAX];
    char payer[WALLET_ACCOUNT_MAX];
    char payer_alt[WALLET_ACCOUNT_MAX];    /* tried when payer cannot cover the reservation */
    char pool_account[WALLET_ACCOUNT_MAX]; /* the scope's pool, or "" in a DM */
    struct pool_settings pool_settings;    /* the scope's policy and daily cap */
    char *scope_off; /* "\n<model>\n..." models this group's admins turned off */

    /* Its conversation (generate_conversation.c). */
    char conv_key[GEN_KEY_MAX];         /* the place: member, channel and topic */
    char conv_msg[GEN_KEY_MAX];         /* the bot message the prompt replies to, or "" */
    char conv_id[GEN_CONV_ID_MAX];      /* the conversation the job continues or starts */
    bool conv_place_set;                /* the place is to point at conv_id */
    bool conv_ready;                    /* conv_id holds what the cache or the store said */
    void (*conv_next)(struct job *job); /* admission goes on here once the conversation is known */

    struct gen_user *user;
    struct gen_pool *pool;
    bool counted;             /* the store's counters include this job */
    bool count_user;          /* ... the member's hourly counter (hour q_hour) */
    bool count_group;         /* ... the group's daily counter (day q_day) */
    int64_t q_hour;           /* the hour window the job was counted in */
    int64_t q_day;            /* the UTC day window the job was counted in */
    int64_t tokens_held;      /* tokens reserved against the daily cap (day q_day) */
    char key_id[GEN_KEY_MAX]; /* the API key charged through, or "" */
    int64_t key_cap_day;      /* its caps (credits; 0: none) */
    int64_t key_cap_total;
    int64_t key_held; /* credits counted against its caps (day key_day) */
    int64_t key_day;
    int64_t pool_held; /* credits counted against the pool's daily cap (day pool_day) */
    int64_t pool_day;
    struct gen_quota_op *quota; /* counts to take with the first reservation, or NULL */
    struct gen_quota_op *back;  /* what goes back with the charge or void (job__quota_settle) */
    enum job_back back_kind;    /* ... prepared by which */
    int64_t settle_tokens;      /* the tokens it used (job__quota_settle) */
    bool queued_once;
    enum provider_modality modality;
    char *prompt;
    char want_model[128];
    char want_size[24];
    const struct catalog_persona *persona; /* from cat: the persona in use, or NULL */
    const struct catalog_model *first;     /* the model asked for */
    const struct catalog_model *model;     /* the model being tried */
    size_t fb_next;                        /* next fallback of `first` to try */
    unsigned attempt;                      /* retries on `model` */
    struct catalog_size size;
    struct provider_message *msgs;
    size_t nmsgs;
    char *msgs_text; /* every msgs[i].content in one block, or NULL: each its own */
    struct invocation_image *attached; /* the member's image for a vision model, or NULL */
    size_t input_bytes;
    char res_id[LEDGER_ID_LEN_MAX + 8];
    int64_t reserved;
    unsigned nres;
    unsigned post_reads; /* reads of the charge after its commit failed as a whole */
    bool res_open;
    uint64_t deadline; /* uv_now ms */
    struct provider_call *call;
    struct gen_provider_use *use;
    char *text;
    size_t text_len, text_cap;
    long in_tokens, out_tokens;
    unsigned char *image;
    size_t image_len;
    char mime[32];
    char gid[16];                /* image: the id its buttons carry */
    struct standing_tally tally; /* what its charge adds to the group's boards (settlement) */
    bool tally_on;               /* ... when in a group */
    char error[256];
    uint64_t last_progress;
    uint64_t t_submit_ns;
    uint64_t t_call_ns;
    uint64_t provider_ns;
    int64_t charged;
    int end_rc;
    bool timer_open;
    uv_timer_t timer;
    /* The approval queue (generate_approval.c). */
    bool hold;                         /* the rules want an admin's decision first */
    char hold_why[96];                 /* which rule: "cost", "model", "filter <rule>" */
    char appr_id[APPROVAL_ID_LEN + 1]; /* the short id admins type */
    int64_t held_at;                   /* wall-clock ms it was held */
    int64_t hold_until;                /* wall-clock ms it times out */
    /* The HTTP API's requests (struct generate_request): */
    bool api;                          /* messages given whole: no conversation, no persona */
    struct provider_message *api_msgs; /* owned copies of the given messages */
    size_t api_nmsgs;
    char *api_system;                   /* the caller's system text, or NULL */
    int64_t api_max_tokens;             /* a lower output cap, or 0 */
    char api_payer[WALLET_ACCOUNT_MAX]; /* the one account that pays, or "" */
    struct generate_sink sink;          /* end NULL: none */
    bool gone;                          /* its caller left (generate_cancel) */
    bool sink_quiet;                    /* deltas stopped: the filter blocked or redacted */
    bool sink_sent;                     /* a delta went to the sink: no retry or fallback */
    bool refused;                       /* ended by job__refuse */
    enum generate_refusal refusal;      /* why, when refused */
    char message[512];                  /* the refusal's sentence */
    bool replayed;                      /* the post was a replay: not charged again */
};

/* ---- the engine (generate.c) ---------------------------------------------- */

/** Wall-clock ms for limit windows: the options' clock, else the real one. */
int64_t generate__now(const struct generate *g);
/** Count the filter's rule hits of one application. */
void generate__hit(struct generate *g, const struct filter *f, const struct filter_result *r);
/** Now and then (every GEN_PRUNE_EVERY_MS), forget the members and groups
 *  idle for GEN_IDLE_MS. */
void generate__prune(struct generate *g);
/** Free the engine once it is closing and no job (or recovery) holds it. */
void generate__maybe_free(struct generate *g);
/** A new job for inv, holding its life reference; NULL when out of memory. */
struct job *job__new(struct generate *g, struct invocation *inv);
/** Derive the job id from the causing event. */
void job__id_make(struct job *job);
void job__unref(struct job *job);
/* A job waiting to run (queued, or for a retry) ends now, voided and told
 * (job->error and end_rc set first); false in any other state. */
bool job__end_waiting(struct job *job);
/** The end: counters, the reply finished, the life reference dropped. */
void job__end(struct job *job, int rc);
void job__enqueue(struct job *job);
void job__say(struct job *job, enum reply_stage stage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** Send the model's text (Markdown) followed by the bot's own plain tail. */
void job__say_model(struct job *job, enum reply_stage stage, const char *model, const char *tail);
/** " (demo)" for the demo provider's models, else "". */
const char *job__label(const struct catalog_model *m);
/** The price as shown before the work runs (MSG_GEN_PRICE over the job's
 *  reservation), written to buf; returns buf. */
const char *job__price(const struct job *job, char *buf, size_t cap);

/* ---- admission (generate_admit.c) ----------------------------------------- */

/** Count an outcome per UTC day in the state table, for /admin stats. */
void generate__count(struct generate *g, const char *what, const char *name);
/** Refuse before anything was reserved, and end the job. */
void job__refuse(struct job *job, enum generate_refusal why, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** Check everything and reserve; the job then queues or is refused. */
void job__admit(struct job *job);
/** The limits counted the job: reserve its price and queue it. */
void job__admit_counted(struct job *job);
/** The most the job may cost on model m: catalog_estimate_with over its
 *  input, its system prompt (job__system_bytes) and its output cap
 *  (job__max_tokens), plus the model's price_image for an attached image. */
int64_t job__estimate(const struct job *job, const struct catalog_model *m);
/** Reserve amount from the payer (a fallback's new reservation, too). */
void job__reserve(struct job *job, int64_t amount);

/* ---- settlement (generate_settle.c) --------------------------------------- */

/** Write (keep) or delete the job's record of open reservations. */
void job__persist(struct job *job, bool keep);
/** The job's record (job__persist's value) in buf (GEN_RECORD_MAX); returns buf. */
#define GEN_QUOTA_RECORD_MAX (GEN_KEY_MAX + 224) /* job__quota_record's text */
#define GEN_RECORD_MAX (WALLET_ACCOUNT_MAX + GEN_QUOTA_RECORD_MAX + 96)
const char *job__record(struct job *job, char *buf, size_t cap);
/** The ids of the job's charge ("<job>:post") and of the void of its
 *  reservation number nres ("<job>:void<nres>"), into buf (GEN_TRANSFER_ID_MAX). */
#define GEN_TRANSFER_ID_MAX (LEDGER_ID_LEN_MAX + 16)
void job__post_id(const struct job *job, char *buf, size_t cap);
void job__void_id(const char *job_id, unsigned nres, char *buf, size_t cap);
/** Post the actual cost of a delivered result. */
void job__settle(struct job *job);
/** Every model failed (or the job was stopped): void and say so. */
void job__fail(struct job *job);
/** Void the job's reservation, its record and the counts it took going
 *  with it in one commit (job__quota_void_prepare); cb then calls
 *  job__quota_settled. A negative return (no reservation open, no ledger,
 *  or the ledger refused the call): cb never runs. */
int job__void(struct job *job, ledger_cb cb);

/* ---- quotas (generate_quota.c) -------------------------------------------- */

/** Check the bounds on what is in flight (the member's queue, the bot's
 *  queue) and attach the member's and group's entries to the job. Returns
 *  false after refusing. */
bool job__quota_admit(struct job *job);
/** The upper bound of tokens the job's model may use: every input byte a
 *  token, plus the model's max_output_tokens (0 for images). */
int64_t job__tokens_bound(const struct job *job, const struct catalog_model *m);
/** Prepare the job's counts against the member's hourly limit and the
 *  group's daily limit, and `tokens` against the daily token cap, to be
 *  taken all or none with its first reservation; then job__admit_counted. */
void job__quota_prepare(struct job *job, int64_t tokens);
/** Let the reservation t of `amount` take the prepared counts in its own
 *  transaction (struct ledger_transfer's guard), with what it holds beyond
 *  what the job holds against its API key's caps. Returns 0 or HB_ENOMEM. */
int job__quota_guard(struct job *job, int64_t amount, struct ledger_transfer *t);
/** The first reservation completed with rc: the counts were taken with it
 *  (rc 0), or a limit refused it (HB_ELIMIT: the job is refused; returns
 *  true). Returns false when the caller goes on as usual. */
bool job__quota_reserved(struct job *job, int rc);
/** A job without a reservation (a free model): take the prepared counts on
 *  their own; then queue it, or refuse it. */
void job__quota_take_alone(struct job *job);
/** Reserve more tokens for a fallback whose bound exceeds what is held;
 *  then cb(job, 0) or cb(job, HB_ELIMIT / an error) with job->error set. */
void job__quota_tokens_more(struct job *job, int64_t tokens, void (*cb)(struct job *job, int rc));
/** Nothing was delivered: give the job's counts and tokens back. */
void job__quota_release(struct job *job);
/** The job used `tokens` and is charged `charged` credits: prepare in
 *  job->back what goes back (the tokens held beyond those used, the credits
 *  held against its API key's caps and its pool's daily cap beyond the
 *  charge), to move in the charge's own transaction (job__quota_back_run in
 *  its guard); then job__quota_settled. */
void job__quota_settle(struct job *job, int64_t tokens, int64_t charged);
/** The job failed: prepare in job->back the give-back of everything it
 *  counted (job__quota_release's), to move in its void's transaction;
 *  then job__quota_settled. */
void job__quota_void_prepare(struct job *job);
/** Run job->back's moves (on the store's thread, in a ledger guard). */
int job__quota_back_run(struct store_txn *txn, struct job *job);
/** The charge or void that carried job->back completed with rc: given back
 *  with it (0, or a replay), or else given back on their own (nothing was
 *  charged: every credit held). The job's holds are settled. */
void job__quota_settled(struct job *job, int rc);
/** Whether the reservation's rc is the pool's daily cap refusing it (the
 *  payer may switch to the member's wallet). */
bool job__quota_pool_refused(const struct job *job, int rc);
/** What the job counted, as text for its durable record, so that a restart
 *  can give it back: "<hour> <day> <tokens> <user 0|1> <group key or ->",
 *  then for an API key with caps " <key id> <credits held> <their day>
 *  <daily cap> <cap>". */
void job__quota_record(const struct job *job, char *buf, size_t cap);
/** A restart voided a job of `wallet` whose record held `record`
 *  (job__quota_record): give back its counts and tokens in windows still
 *  open. */
void generate__quota_release_record(struct generate *g, const char *wallet, const char *record);
/** The job no longer points at its member's and group's counters. */
void job__quota_detach(struct job *job);
/** Forget members and groups idle since before `before` (ms) with no job. */
void generate__quota_prune(struct generate *g, int64_t before);

/* ---- conversations (generate_conversation.c) ------------------------------ */

void generate__conv_key(const struct invocation *inv, char *buf, size_t cap);
/** The store conversations live in (the ledger's), or NULL while stopping. */
struct store *generate__conv_store(struct generate *g);
/** Look the job's conversation up: in the cache, else queue a store read
 *  (at submission, so that it is done when admission asks). */
void job__conversation_start(struct job *job);
/** Find the conversation the job continues (the cache, else the store),
 *  or start one; then next(job). */
void job__conversation_then(struct job *job, void (*next)(struct job *job));
/** The provider messages: the remembered turns, then the prompt. */
int job__messages_build(struct job *job);
/* Free the messages built for the provider (none is fine). */
void job__messages_clear(struct job *job);
/** Start the maintenance timer (retention, vacuum); 0 or a libuv code. */
int generate__conv_start(struct generate *g);
/** Close the timer; the engine is held until it is closed. */
void generate__conv_stop(struct generate *g);
/** Remember the delivered question and answer, within the budget. */
void job__remember_turn(struct job *job);
/** Releases a struct gen_conv (the convs map's free function). */
void generate__conv_free(void *conv);
/** Forget cached conversations unused since before `before` (ms); they
 *  stay in the store. */
void generate__conv_prune(struct generate *g, int64_t before);

/* ---- preferences (generate_prefs.c) --------------------------------------- */

/** Take the member's remembered model when none was asked for, then admit. */
void job__preference_then_admit(struct job *job);
/** Forget cached preferences unused since before `before` (ms); they stay
 *  in the state table. */
void generate__prefs_prune(struct generate *g, int64_t before);

/* ---- kept images (generate_image.c) --------------------------------------- */

/** Keep the delivered image for Regenerate and record its owner for upvotes. */
void job__image_remember(struct job *job);
void generate__images_free(struct generate *g);

/* ---- recovery (generate_recover.c) ---------------------------------------- */

/** Tell the member about jobs a restart voided, once. */
void job__notice_deliver(struct job *job);

/** This run's id (made on first use): job records carry it, and recovery
 *  voids only the records of earlier runs. */
const char *generate__run(struct generate *g);

/** Send the conversation writes gathered so far to the store now (before
 *  a job that must come after them: /forget). */
void generate__conv_flush(struct generate *g);

/* ---- the persona (generate_persona.c) --------------------------------------- */

/** Find the persona the job uses (core/persona.h); text jobs only. */
void job__persona_resolve(struct job *job);
/** The system prompt for model m (the persona's, else the model's) with its
 *  variables filled in (heap), or NULL when there is none. */
char *job__system_prompt(const struct job *job, const struct catalog_model *m);
/** Its length in bytes, as every estimate counts it. */
size_t job__system_bytes(const struct job *job, const struct catalog_model *m);
/** The output cap on m: the persona's max_tokens when lower, else m's. */
int64_t job__max_tokens(const struct job *job, const struct catalog_model *m);
/** Put the system prompt, the output cap and the persona's settings over
 *  m's into req; *system and *extra (heap or NULL) are the caller's to free
 *  after the provider's start(). Returns 0 or HB_ENOMEM. */
int job__request_persona(const struct job *job, const struct catalog_model *m,
                         struct provider_request *req, char **system, char **extra);
/** Does the persona's forbidden-words rule block text? *rule names it. */
bool job__persona_blocks(struct job *job, const char *text, const char **rule);
/* ---- the approval queue (generate_approval.c) ----------------------------- */

/** Whether the approval queue holds jobs where this one was asked:
 *  [approval] enabled and [features] approvals on there. */
bool job__approvals_on(const struct job *job);
/** Decide by the rules whether the job waits for an admin (some rules read
 *  the member's wallet), then reserve `amount` (job__reserve). */
void job__approval_check(struct job *job, int64_t amount);
/** The reservation of a job to hold is in place: hold it, tell the member
 *  their place and the admins what waits. */
void job__hold(struct job *job);
/** Extra ms a held job's reservation must stay open. */
int64_t job__hold_extra_ms(const struct job *job);
/** The job's approval id, from its id. */
void job__appr_id(struct job *job);
/** The approval id of the job `job_id` (a digest: the same on every
 *  daemon and after a restart). */
void generate__appr_id(const char *job_id, char out[APPROVAL_ID_LEN + 1]);
#define GEN_ACTOR_MAX (COMMAND_ID_MAX * 2 + 16)
/** Who decided, as the audit trail names them: "<platform>:<user>
 *  (<name>)", without the name when there is none. */
void generate__actor(const struct invocation *by, char *buf, size_t cap);
/** A reply handle that speaks through the host's notices, to who. NULL on
 *  failure. */
struct reply *generate__notice_reply(struct core *core, const struct invocation *who);
/** Arm a held job's timer (its timeout, looked at hourly at the most). */
void job__hold_arm(struct job *job);
/** Void a held job's reservation and tell its member job->error. */
void job__held_void(struct job *job);
/** Apply an admin's decision (or the timeout's) to a held job. */
void job__decided(struct job *job, enum approval_outcome outcome, const char *actor,
                  const char *text);
/** The job held here under approval id `id`, or NULL. */
struct job *generate__held_find(struct generate *g, const char *id);
/** May the admin of `by` decide a job asked by `who`: an admin of its own
 *  server or group, of the approval chat of their platform, Telegram's
 *  admins in their private chat, the console's operator. */
bool generate__may_decide(const struct approval_rules *rules, const struct invocation *by,
                          const struct invocation *who);

#define GEN_NS_DECIDED "approval.decided" /* id -> "<ms> <outcome> <actor>" */
/* A decision made through a daemon that does not hold the job, left for
 * the one that does (generate_approval_remote.c): id -> JSON. */
#define GEN_NS_ASKED "approval.asked"

/* ---- the held job's record (generate_held.c) ------------------------------ */

/** Write the record that brings the job back held after a restart. */
void job__held_persist(struct job *job);
/** A held job's record, "<wallet> <reservations> <run> held <json>" (heap;
 *  NULL on no memory); *json_at is where json starts in it. */
char *generate__held_record(const char *wallet, unsigned nres, const char *run, const char *json,
                            size_t *json_at);
/** The JSON of a held job's record, or NULL when the record is not one of
 *  a held job. */
const char *generate__held_json(const char *record);
/** Recovery found a held job's record: bring it back, held. */
void generate__held_restore(struct generate *g, const char *key, const char *wallet, unsigned nres,
                            const char *json);
/** Recovery found a held job's record no live daemon holds (listed as it
 *  read): write this run into it, unless it changed meanwhile (another
 *  daemon took it, or it was decided), then bring it back here, held, and
 *  call done(done_data) (may be NULL). Returns 0, or a negative code (then
 *  done is not called). */
int generate__held_claim(struct generate *g, const char *key, const char *listed,
                         const char *wallet, unsigned nres, const char *json,
                         void (*done)(void *data), void *done_data);
/** Load the decisions of the last days (a second press after a restart
 *  still hears who decided). */
void generate__decided_load(struct generate *g);
/** Stop: a held job ends here and stays durable for the next start. */
void job__held_close(struct job *job);
/** Every held job ends here (job__held_close), left to whichever daemon
 *  claims its record next (after this run's lease ran out). */
void generate__held_let_go(struct generate *g);
/** On a shared ledger, whether this run's lease may have run out
 *  (cluster_fenced): held jobs are then neither decided nor timed out. */
bool generate__fenced(const struct generate *g);

/** Give the job the counts a record names (job__quota_record), as taken. */
void job__quota_restore(struct job *job, const char *record);

/* ---- the HTTP API (generate_api.c) --------------------------------------- */

/** Copy the API fields of req into the job (its prompt becomes the text of
 *  every message). Returns 0 or HB_ENOMEM. */
int job__api_take(struct job *job, const struct generate_request *req);
/** The provider messages of a job whose request gave them whole. */
int job__api_messages_build(struct job *job);
/** Pass an output delta to the sink (job->text already holds it). */
void job__sink_text(struct job *job, const char *delta, size_t len);
/** Tell the sink how the job ended (once). */
void job__sink_end(struct job *job, int rc);

/* ---- model switches (generate_switch.c) ----------------------------------- */

/** Did this group's admins turn the model off (/admin model disable)? */
bool job__scope_off(const struct job *job, const char *name);

#endif
