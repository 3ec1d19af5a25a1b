/* What bot/api.c (routes, keys, errors, account endpoints) and
 * bot/api_generate.c (completions and images) share. Private to bot/api*.c. */
#ifndef HB_API_INTERNAL_H
#define HB_API_INTERNAL_H

#include "bot/api.h"

#include "core/apikey.h"
#include "core/command.h"
#include "core/provider.h"
#include "net/server.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct server_request;

struct api_park;

struct api {
    struct core *core;
    int64_t max_body;
    uint64_t next_id; /* numbers response ids within this run */
    bool own_keys;    /* made core->apikeys: frees them */
    /* Requests with a key this daemon did not know, waiting for the keys to
     * be read again (another daemon may have made it a moment ago). */
    struct api_park *parks;
    size_t nparks;
    int64_t miss_at;                 /* ms when the last such read began */
    struct server_request *retrying; /* the request being run again after it */
    /* The request being run again once its key's minute was counted in the
     * store (api__rate_park), and whether the store counted it (else this
     * daemon's own count judges it). */
    struct server_request *rate_counted;
    bool rate_shared;
    /* A parked request whose client sent its end (or left) while it
     * waited, being run again: the gone notice was spent on the park, so
     * a job it starts is withdrawn at once (api__withdraw_if_gone). */
    struct server_request *caller_gone;
    int64_t replay_pruned; /* ms of the last removal of old kept answers (api_replay.c) */
};

/** After a job was submitted for req with sink data c: withdraw it at once
 *  when req's client left while req was parked (as a job whose caller
 *  leaves while it waits: voided, nothing charged). c is only compared. */
void api__withdraw_if_gone(struct api *a, struct server_request *req, const void *c);

/** Answer req with OpenAI's error shape: {"error": {"message", "type",
 *  "param", "code"}}. param may be NULL; retry_after_s > 0 adds
 *  Retry-After. Never put a key or prompt text in message. */
void api__error(struct server_request *req, int status, const char *type, const char *code,
                const char *param, int64_t retry_after_s, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/** Answer 200 with a JSON object (consumed). */
void api__json(struct server_request *req, int status, cJSON *body);

/** Check the bearer key, the key's rate limit and its spending caps
 *  (caps only when spending is true). Returns the key, or NULL after
 *  answering req, or NULL with req kept: on a shared ledger a key not
 *  known here is looked for once more in the store, and the route's
 *  handler self runs again with req when that read is over. */
struct apikey *api__authorize(struct api *a, struct server_request *req, bool spending,
                              server_handler_fn self);

/** The invocation a key's requests run as: its owner's wallet (a DM), or
 *  its group's pool (the group, as the key's creator). event_id names the
 *  request (its Idempotency-Key, else a fresh id). Returns 0 or HB_EINVAL. */
/** The wallet account a key spends and reads: its owner's, or the wallet
 *  its owner is linked into (core/link.h), followed at each request. */
const char *api__wallet(const struct api *a, const struct apikey *k);

int api__invocation(struct api *a, const struct apikey *k, struct server_request *req,
                    struct invocation *inv);

/** The JSON body of req, or NULL after answering 400 or 413. */
cJSON *api__body(struct api *a, struct server_request *req);

/* bot/api_generate.c */
void api__chat_completions(struct server_request *req, void *data);
void api__images(struct server_request *req, void *data);

/* ---- request bodies (api_body.c) ----------------------------------------- */

#define API_MESSAGES_MAX 256  /* messages in one chat completion request */
#define API_DAY_MS 86400000LL /* a key's daily cap runs by the UTC day */

/* A chat completion request's body, read. */
struct api_chat_body {
    struct provider_message msgs[API_MESSAGES_MAX]; /* user and assistant turns, in order */
    char *texts[API_MESSAGES_MAX];                  /* their text (heap; msgs point in) */
    size_t n;
    char *system; /* the system and developer messages joined (heap), or NULL */
    size_t system_len;
    bool stream, include_usage;
    int64_t max_tokens; /* 0: the model's */
    int64_t n_choices;
};

void api_chat_body_init(struct api_chat_body *b);
void api_chat_body_clear(struct api_chat_body *b);

/** Read body into b. 0, or HB_EINVAL with the offending field in param and
 *  the reason in why (the 400's param and message); b is to be cleared
 *  either way. */
int api_chat_body_parse(const cJSON *body, struct api_chat_body *b, char *param, size_t pcap,
                        char *why, size_t wcap);

/** An optional whole number from 1 to max: true when absent (out left
 *  alone) or good; false with the reason in why. */
bool api_int_field(const cJSON *body, const char *name, int64_t max, int64_t *out, char *why,
                   size_t wcap);

/* ---- answers kept for idempotent retries (api_replay.c) ------------------ */

#define API_REPLAY_TTL_MS (24 * 60 * 60 * 1000LL) /* how long an answer is kept */

struct generate_outcome;

/** Whether a request's event id (api__invocation) came from an
 *  Idempotency-Key: then its answer is kept, and a retry answered from it. */
bool api_replay_wanted(const char *event_id);

/** A settled chat answer as kept (heap text the caller frees), or NULL
 *  (out of memory, or longer than a state value may be). */
char *api_replay_encode(const struct generate_outcome *o, const char *model, int64_t now);

/** A kept answer read back into *o, its strings pointing into the tree
 *  returned (the caller deletes it after using o); NULL when value is not
 *  one, or older than API_REPLAY_TTL_MS at now. o->replayed is set and
 *  o->charged is 0: the first answer was charged, not this one. */
cJSON *api_replay_decode(const char *value, int64_t now, struct generate_outcome *o);

/** Keep o, the settled answer to the request named event_id (best
 *  effort), and remove old ones now and then. */
void api_replay_keep(struct api *a, const char *event_id, const char *model,
                     const struct generate_outcome *o);

/** Look for the answer kept for event_id: cb as state_get's (HB_ENOTFOUND:
 *  none). Returns 0 (cb follows) or a negative code (no callback). */
int api_replay_find(struct api *a, const char *event_id,
                    void (*cb)(int rc, const char *value, void *data), void *data);

#endif
