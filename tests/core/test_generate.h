/* The fixture shared by the generation engine's test files: a real ledger
 * and state table, the real provider adapters against fake
 * OpenAI-compatible and Anthropic servers on loopback, and a held in-test
 * provider that the test releases step by step. Every wait is for an
 * event, bounded by a guard timer. */
#ifndef HB_TEST_GENERATE_H
#define HB_TEST_GENERATE_H

#include "core/catalog.h"
#include "core/core.h"
#include "core/generate.h"
#include "core/pool.h"
#include "tests/core/ledger_helpers.h"
#include "tests/fake/httpd.h"
#include "tests/fake/reply_capture.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define GT_GUARD_MS 20000
#define GT_MAX_CALLS 160

/* ---- a held provider: the test decides when each call speaks ---------- */

struct provider_call {
    struct held *held;
    const struct provider_events *ev;
    void *data;
    char model[64];
    char last_prompt[256];
    char first_prompt[256]; /* the first message: the oldest remembered turn */
    size_t nmessages;
    size_t nimages;               /* images that went with the prompt */
    char image_mime[32];          /* the first one's kind */
    size_t image_len;             /* ... and size */
    unsigned char image_head[16]; /* ... and its first bytes */
    bool active;
    bool cancelled;
};

struct held {
    struct provider provider;
    struct provider_call calls[GT_MAX_CALLS];
    size_t ncalls;
    bool freed_ok;
};

/* What the fake image endpoint serves as a small PNG. */
static const char png_bytes[] = "\x89PNG\r\n\x1a\nfake-image-bytes";

/* ---- the fixture ---------------------------------------------------------- */

struct gt {
    struct lt lt;
    struct core core;
    struct generate *g;
    struct http_client *http;
    struct httpd *srv;
    struct held held;
    uv_timer_t guard;
    bool guard_fired;
    int closed;
    int64_t wall; /* the engine's wall clock, ms */
    /* What the fake servers saw. */
    unsigned requests;
    uint64_t req_ms[8];
    char seen_auth[128];
    char seen_key[128];
    char seen_version[64];
    char seen_extra[64];
    char seen_body[1024]; /* the last JSON body, printed compactly */
    bool seen_max_tokens;
    bool seen_include_usage;
    bool seen_stream;
    unsigned tries_429;
    unsigned tries_overloaded;
    unsigned tries_rl_mid;  /* requests to "rlmid" */
    unsigned tries_key_mid; /* requests to "keymid" */
};

/** The personas every fixture catalog holds: "pirate" (a prompt with every
 *  variable, temperature 0.9, max_tokens 50, stop ["ARR"], extra_body
 *  {"reasoning_effort":"high","seed":7}), "quiet" (forbids "treasure",
 *  shows its prompt) and "vip" (only console:boss; model h2). */
#define GT_NPERSONAS 4
extern const struct catalog_persona_spec gt_personas[GT_NPERSONAS];

/** Make the engine with limits (NULL: defaults), filter rules and the
 *  OpenAI-compatible provider's image size limit. */
void gt_init(struct gt *gt, const struct catalog_limits *limits, const struct filter_rule *rules,
             size_t nrules, size_t max_image_bytes);
/** Close everything and check the loop closes clean. */
void gt_done(struct gt *gt);
/** Close the engine and the ledger (its store) and open both again on the
 *  same database, the engine on gt_clock: what a restart of the daemon
 *  does to them. */
void gt_restart(struct gt *gt);
/** A close callback that counts into gt->closed. */
void gt_closed(void *data);
/** The engine's wall clock: gt->wall. */
int64_t gt_clock(void *data);
/** Run the loop until *flag reaches want (bounded by the guard). */
void gt_wait(struct gt *gt, const int *flag, int want);
/** A console invocation from user, in group scope (NULL: a DM), answering
 *  into cap, with a fresh event id. */
void gt_inv(struct invocation *inv, struct reply_capture *cap, const char *user, const char *scope);
/** Attach a PNG of len bytes (copied) to inv, as an adapter would. */
void gt_inv_png(struct invocation *inv, const unsigned char *png, size_t len);
void gt_submit(struct gt *gt, struct reply_capture *cap, const char *user,
               enum provider_modality modality, const char *model, const char *prompt);
/** Submit and wait for the final reply. */
void gt_run(struct gt *gt, struct reply_capture *cap, const char *user,
            enum provider_modality modality, const char *model, const char *prompt);
/** The member's posted balance; asserts nothing is left reserved. */
int64_t gt_balance(struct gt *gt, const char *user);
void assert_has(const struct reply_capture *cap, const char *needle);
/** Let the held call speak: text, usage, then done with rc. */
void held_finish(struct provider_call *c, int rc, const char *text, long in, long out);
/** Wait for the held provider's call number index. */
struct provider_call *held_wait_call(struct gt *gt, size_t index);
/** Let the loop settle the ledger operations now queued. */
void gt_settle(struct gt *gt, int n);
/** Run one held job for user in group scope and settle it. */
void gt_run_in_group(struct gt *gt, const char *user, const char *scope, size_t call_index);
int gt_group_setup(void **state);
/** Open a pool account and grant it amount. */
void gt_pool_fund(struct gt *gt, const char *pool, int64_t amount);
/** Set a pool's policy and daily cap (0: none), and wait for it. */
void gt_pool_set(struct gt *gt, const char *pool, enum pool_policy policy, int64_t cap);
/** What a crash leaves of a job "gen:crashed:1" of console:u1 (a wallet of
 *  100): its open reservation of 12 and its record (job__record's text). */
void gt_crashed(struct gt *gt, const char *record);
/** What generate_recover answered (gt_recovered_cb counts into it). */
struct gt_recovered {
    int done;
    size_t voided;
};
void gt_recovered_cb(int rc, size_t voided, void *data);
/** A state_put's callback that asserts success and counts into *(int *)data. */
void gt_state_done(int rc, const char *value, void *data);

#endif
