/* Idempotent retries answered from the first answer.
 *
 * A chat completion asked with an Idempotency-Key names the same ledger
 * transfers as any retry of it (the same key, Idempotency-Key and body:
 * api__invocation's event id), so a retry is never charged twice. Its
 * answer is kept too, in the store under that id (state ns "api.reply"),
 * for API_REPLAY_TTL_MS: a retry within that time is answered from it,
 * streamed or not as the retry asks, without running the model again, so
 * the caller gets the same text and the provider is not paid twice. The
 * record is written once the answer is settled (best effort: a record
 * lost in a crash leaves a retry to run the model again, still uncharged).
 * A daemon of a shared ledger answers another's retry alike. Old records
 * are removed as new ones are written, at most once per API_REPLAY_PRUNE_MS
 * per daemon, up to API_REPLAY_PRUNE_MAX at a time, found through an index
 * by time (API_REPLAY_AT_NS) rather than by reading every answer on the
 * store's thread. Images are not kept. */
#include "bot/api_internal.h"

#include "core/core.h"
#include "core/generate.h"
#include "core/ledger.h"
#include "core/state.h"
#include "storage/store.h"
#include "base/error.h"
#include "base/log.h"
#include "base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define API_REPLAY_NS "api.reply"
#define API_REPLAY_PRUNE_MS (60 * 60 * 1000LL) /* an hour */
#define API_REPLAY_PRUNE_MAX 4096

bool api_replay_wanted(const char *event_id)
{
    return strstr(event_id, ":i:") != NULL; /* api__invocation's idempotent form */
}

char *api_replay_encode(const struct generate_outcome *o, const char *model, int64_t now)
{
    cJSON *r = cJSON_CreateObject();
    char *text = o->text != NULL ? strndup(o->text, o->text_len) : NULL;
    if (r == NULL || (o->text != NULL && text == NULL)) {
        cJSON_Delete(r);
        free(text);
        return NULL;
    }
    cJSON_AddNumberToObject(r, "at", (double)now);
    cJSON_AddStringToObject(r, "model", model);
    cJSON_AddStringToObject(r, "text", text != NULL ? text : "");
    cJSON_AddBoolToObject(r, "filtered", o->rc == HB_EPERM);
    cJSON_AddNumberToObject(r, "in", (double)o->input_tokens);
    cJSON_AddNumberToObject(r, "out", (double)o->output_tokens);
    cJSON_AddNumberToObject(r, "reserved", (double)o->reserved);
    free(text);
    char *value = cJSON_PrintUnformatted(r);
    cJSON_Delete(r);
    if (value != NULL && strlen(value) >= STATE_VALUE_MAX) {
        free(value); /* too long to keep: a retry runs again */
        value = NULL;
    }
    return value;
}

/* The record's "at"; -1 when it has none. */
static int64_t api__replay_at(const cJSON *r)
{
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(r, "at");
    return cJSON_IsNumber(at) ? (int64_t)at->valuedouble : -1;
}

cJSON *api_replay_decode(const char *value, int64_t now, struct generate_outcome *o)
{
    cJSON *r = value != NULL ? cJSON_Parse(value) : NULL;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(r, "model");
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(r, "text");
    int64_t at = api__replay_at(r);
    if (!cJSON_IsString(model) || !cJSON_IsString(text) || at < 0 ||
        now - at >= API_REPLAY_TTL_MS) {
        cJSON_Delete(r);
        return NULL;
    }
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(r, "in");
    const cJSON *out = cJSON_GetObjectItemCaseSensitive(r, "out");
    const cJSON *reserved = cJSON_GetObjectItemCaseSensitive(r, "reserved");
    memset(o, 0, sizeof(*o));
    o->rc = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "filtered")) ? HB_EPERM : 0;
    o->model = model->valuestring;
    o->text = text->valuestring;
    o->text_len = strlen(text->valuestring);
    o->input_tokens = cJSON_IsNumber(in) ? (long)in->valuedouble : -1;
    o->output_tokens = cJSON_IsNumber(out) ? (long)out->valuedouble : -1;
    o->reserved = cJSON_IsNumber(reserved) ? (int64_t)reserved->valuedouble : 0;
    o->replayed = true; /* charged by the first answer, not by this one */
    return r;
}

/* ---- keeping, and removing old ones ---------------------------------------- */

/* Beside each kept answer, a row of API_REPLAY_AT_NS keyed "<at> <id>"
 * (at zero-padded, so keys sort by time): old answers are found by a
 * range read of that index, without reading the answers themselves. */
#define API_REPLAY_AT_NS "api.reply.at"
#define API_REPLAY_AT_FMT "%013lld"

struct api_keep {
    struct store_job job;
    int64_t now;
    char id[COMMAND_EVENT_ID_MAX];
    char *value;
};

static int api__keep_run(struct store_txn *txn, struct store_job *job)
{
    struct api_keep *k = container_of(job, struct api_keep, job);
    char at[32 + COMMAND_EVENT_ID_MAX];
    snprintf(at, sizeof(at), API_REPLAY_AT_FMT " %s", (long long)k->now, k->id);
    int rc = store_txn_state_put(txn, API_REPLAY_NS, k->id, k->value, k->now);
    return rc < 0 ? rc : store_txn_state_put(txn, API_REPLAY_AT_NS, at, "1", k->now);
}

static void api__keep_done(struct store_job *job, int rc)
{
    struct api_keep *k = container_of(job, struct api_keep, job);
    if (rc < 0)
        log_warn("api.replay_not_kept", "error=%s", hb_strerror(rc));
    free(k->value);
    free(k);
}

struct api_prune {
    struct store_job job;
    int64_t before;
    size_t n;
    char (*keys)[STATE_KEY_MAX];
};

static int api__prune_seen(const char *key, const char *value, void *data)
{
    (void)value;
    struct api_prune *p = data;
    if (strlen(key) < STATE_KEY_MAX)
        memcpy(p->keys[p->n++], key, strlen(key) + 1);
    return p->n == API_REPLAY_PRUNE_MAX ? 1 : 0;
}

static int api__prune_run(struct store_txn *txn, struct store_job *job)
{
    struct api_prune *p = container_of(job, struct api_prune, job);
    char to[32];
    snprintf(to, sizeof(to), API_REPLAY_AT_FMT, (long long)p->before);
    int rc = store_txn_state_range(txn, API_REPLAY_AT_NS, "", to, api__prune_seen, p);
    if (rc > 0)
        rc = 0; /* stopped at the most taken at once */
    for (size_t i = 0; rc == 0 && i < p->n; i++) {
        const char *id = strchr(p->keys[i], ' ');
        rc = store_txn_state_put(txn, API_REPLAY_AT_NS, p->keys[i], NULL, p->before);
        if (rc == 0 && id != NULL)
            rc = store_txn_state_put(txn, API_REPLAY_NS, id + 1, NULL, p->before);
    }
    return rc;
}

static void api__prune_done(struct store_job *job, int rc)
{
    struct api_prune *p = container_of(job, struct api_prune, job);
    if (rc < 0)
        log_warn("api.replay_prune_failed", "error=%s", hb_strerror(rc));
    free(p->keys);
    free(p);
}

static void api__replay_prune(struct api *a, struct store *store, int64_t now)
{
    if (now - a->replay_pruned < API_REPLAY_PRUNE_MS)
        return;
    a->replay_pruned = now;
    struct api_prune *p = calloc(1, sizeof(*p));
    if (p != NULL)
        p->keys = calloc(API_REPLAY_PRUNE_MAX, sizeof(*p->keys));
    if (p == NULL || p->keys == NULL) {
        free(p);
        return;
    }
    p->before = now - API_REPLAY_TTL_MS;
    p->job = (struct store_job){.run = api__prune_run, .done = api__prune_done};
    if (store_submit(store, &p->job) < 0)
        api__prune_done(&p->job, 0);
}

void api_replay_keep(struct api *a, const char *event_id, const char *model,
                     const struct generate_outcome *o)
{
    struct ledger *ledger = a->core->ledger;
    struct api_keep *k = ledger != NULL ? calloc(1, sizeof(*k)) : NULL;
    if (k == NULL || strlen(event_id) >= sizeof(k->id)) {
        free(k);
        return;
    }
    k->now = core_now_ms(a->core);
    k->value = api_replay_encode(o, model, k->now);
    if (k->value == NULL) {
        free(k);
        return;
    }
    memcpy(k->id, event_id, strlen(event_id) + 1);
    k->job = (struct store_job){.run = api__keep_run, .done = api__keep_done};
    struct store *store = ledger_store(ledger);
    if (store_submit(store, &k->job) < 0)
        api__keep_done(&k->job, HB_ECANCELED);
    api__replay_prune(a, store, k->now);
}

int api_replay_find(struct api *a, const char *event_id,
                    void (*cb)(int rc, const char *value, void *data), void *data)
{
    struct ledger *ledger = a->core->ledger;
    if (ledger == NULL)
        return HB_ECANCELED;
    return state_get(ledger_store(ledger), API_REPLAY_NS, event_id, cb, data);
}
