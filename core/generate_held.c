/* The record of a job held for approval: what lets a restart bring it
 * back held (generate_approval.c holds and decides).
 *
 * Its state row ("gen.job", the job's id) reads "<wallet> <reservations>
 * <run> held <json>" (run: the daemon that holds it; records of older
 * builds have none): the member's identity and where they asked, the model,
 * the size, the prompt, the reservation and the limits' counts, and an
 * image the member attached to the turn (base64, with its kind), so that
 * a vision model still sees it after a restart. This is the one place a
 * prompt (and such an image) is stored durably outside the conversation
 * memory; the record is removed once the job is decided. */
#include "core/generate_internal.h"

#include "core/attach.h"
#include "core/core.h"
#include "core/ledger.h"
#include "core/messages.h"
#include "core/state.h"
#include "base/error.h"
#include "base/log.h"
#include "base/text.h"
#include "base/util.h"
#include "storage/store.h"

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void job__held_written(int rc, const char *value, void *data)
{
    struct job *job = data;
    (void)value;
    if (rc < 0)
        log_warn("approval.persist_failed", "id=%s error=%s", job->appr_id, hb_strerror(rc));
    job__unref(job);
}

/* The member's attached image as the record's "image" (base64) and
 * "image_mime". Returns 0 or HB_ENOMEM. */
static int job__held_image_put(const struct job *job, cJSON *o)
{
    const struct invocation_image *img = job->attached;
    if (img == NULL || img->data == NULL || img->len == 0)
        return 0;
    if (img->len > (size_t)INT_MAX / 4 * 3)
        return HB_ENOMEM;
    char *b64 = malloc((img->len + 2) / 3 * 4 + 1);
    if (b64 == NULL)
        return HB_ENOMEM;
    EVP_EncodeBlock((unsigned char *)b64, img->data, (int)img->len);
    cJSON *s = cJSON_CreateString(b64);
    free(b64);
    if (s == NULL || !cJSON_AddItemToObject(o, "image", s)) {
        cJSON_Delete(s);
        return HB_ENOMEM;
    }
    return cJSON_AddStringToObject(o, "image_mime", img->mime) != NULL ? 0 : HB_ENOMEM;
}

/* The attached image a record keeps, or NULL with *bad set when it has
 * one that does not read back as an image. */
static struct invocation_image *job__held_image_get(const cJSON *o, bool *bad)
{
    *bad = false;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "image");
    if (!cJSON_IsString(v))
        return NULL;
    size_t n = strlen(v->valuestring);
    struct invocation_image *img = calloc(1, sizeof(*img));
    if (img != NULL)
        img->data = malloc(n / 4 * 3 + 3);
    long len = img != NULL && img->data != NULL
                   ? text_base64_decode(v->valuestring, n, img->data, n / 4 * 3 + 3, false)
                   : -1;
    const char *kind = len > 0 ? attach_sniff(img->data, (size_t)len) : NULL;
    if (kind == NULL) {
        invocation_image_free(img);
        *bad = true;
        return NULL;
    }
    img->len = (size_t)len;
    snprintf(img->mime, sizeof(img->mime), "%s", kind);
    return img;
}

/* The record that lets a restart bring the job back held:
 * "<wallet> <reservations> <run> held <json>", run the daemon holding it. */
void job__held_persist(struct job *job)
{
    struct ledger *ledger = job->g->core->ledger;
    if (ledger == NULL)
        return;
    char quota[GEN_QUOTA_RECORD_MAX];
    job__quota_record(job, quota, sizeof(quota));
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return;
    cJSON_AddNumberToObject(o, "platform", job->who.platform);
    cJSON_AddStringToObject(o, "user", job->who.user_id);
    cJSON_AddStringToObject(o, "name", job->who.user_name);
    cJSON_AddNumberToObject(o, "scope", job->who.scope);
    cJSON_AddStringToObject(o, "scope_id", job->who.scope_id);
    cJSON_AddStringToObject(o, "channel", job->who.channel_id);
    cJSON_AddStringToObject(o, "event", job->who.event_id);
    cJSON_AddNumberToObject(o, "modality", job->modality);
    cJSON_AddStringToObject(o, "model", job->first->name);
    cJSON_AddStringToObject(o, "size", job->want_size);
    cJSON_AddStringToObject(o, "prompt", job->prompt);
    cJSON_AddStringToObject(o, "payer", job->payer);
    cJSON_AddNumberToObject(o, "reserved", (double)job->reserved);
    cJSON_AddNumberToObject(o, "held_at", (double)job->held_at);
    cJSON_AddNumberToObject(o, "until", (double)job->hold_until);
    cJSON_AddStringToObject(o, "why", job->hold_why);
    cJSON_AddStringToObject(o, "quota", quota);
    if (job__held_image_put(job, o) < 0) {
        cJSON_Delete(o);
        log_warn("approval.persist_failed", "id=%s error=%s", job->appr_id, hb_strerror(HB_ENOMEM));
        return;
    }
    char *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    size_t json_at = 0;
    char *value = json != NULL ? generate__held_record(job->wallet, job->nres,
                                                       generate__run(job->g), json, &json_at)
                               : NULL;
    if (value == NULL) {
        free(json);
        log_warn("approval.persist_failed", "id=%s error=%s", job->appr_id, hb_strerror(HB_ENOMEM));
        return;
    }
    free(json);
    job->refs++;
    if (state_put(ledger_store(ledger), GEN_NS_JOB, job->id, value, job__held_written, job) < 0)
        job->refs--;
    free(value);
}

/* Place in the review queue: the held jobs held before this one, plus one. */
static const char *json_str(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static double json_num(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

void generate__held_restore(struct generate *g, const char *key, const char *wallet, unsigned nres,
                            const char *json)
{
    for (const struct job *j = g->all; j != NULL; j = j->all_next) {
        if (strcmp(j->id, key) == 0)
            return; /* held here already: recovery ran again */
    }
    cJSON *o = cJSON_Parse(json);
    if (o == NULL) {
        log_warn("approval.restore_failed", "job=%s reason=unreadable record", key);
        cJSON_Delete(o);
        return;
    }
    struct invocation inv;
    memset(&inv, 0, sizeof(inv));
    inv.platform = (enum command_platform)(int)json_num(o, "platform");
    inv.scope = (enum command_scope)(int)json_num(o, "scope");
    snprintf(inv.user_id, sizeof(inv.user_id), "%s", json_str(o, "user"));
    snprintf(inv.user_name, sizeof(inv.user_name), "%s", json_str(o, "name"));
    snprintf(inv.scope_id, sizeof(inv.scope_id), "%s", json_str(o, "scope_id"));
    snprintf(inv.channel_id, sizeof(inv.channel_id), "%s", json_str(o, "channel"));
    snprintf(inv.event_id, sizeof(inv.event_id), "%s", json_str(o, "event"));
    inv.reply = generate__notice_reply(g->core, &inv);
    struct job *job = inv.reply != NULL ? job__new(g, &inv) : NULL;
    if (job == NULL) {
        if (inv.reply != NULL)
            reply_finish(inv.reply);
        cJSON_Delete(o);
        log_warn("approval.restore_failed", "job=%s reason=out of memory", key);
        return;
    }
    snprintf(job->id, sizeof(job->id), "%s", key);
    snprintf(job->wallet, sizeof(job->wallet), "%s", wallet);
    snprintf(job->payer, sizeof(job->payer), "%s", json_str(o, "payer"));
    job->modality = (enum provider_modality)(int)json_num(o, "modality");
    job->prompt = strdup(json_str(o, "prompt"));
    snprintf(job->want_model, sizeof(job->want_model), "%s", json_str(o, "model"));
    snprintf(job->want_size, sizeof(job->want_size), "%s", json_str(o, "size"));
    snprintf(job->hold_why, sizeof(job->hold_why), "%s", json_str(o, "why"));
    job->nres = nres;
    if (nres > 0)
        snprintf(job->res_id, sizeof(job->res_id), "%s:r%u", job->id, job->nres);
    job->reserved = (int64_t)json_num(o, "reserved");
    job->res_open = nres > 0; /* a free job held has none */
    job->held_at = (int64_t)json_num(o, "held_at");
    job->hold_until = (int64_t)json_num(o, "until");
    generate__conv_key(&job->who, job->conv_key, sizeof(job->conv_key));
    const struct catalog_model *m = catalog_model_find(job->cat, job->want_model);
    if (m != NULL && m->enabled) {
        job->first = job->model = m;
        if (job->modality == PROVIDER_IMAGE)
            catalog_model_size(m, job->want_size, &job->size);
    }
    job__quota_restore(job, json_str(o, "quota"));
    bool image_bad;
    job->attached = job__held_image_get(o, &image_bad);
    cJSON_Delete(o);
    job__appr_id(job);
    job->state = JOB_HELD;
    log_info("approval.restored", "id=%s job=%s", job->appr_id, job->id);
    if (job->prompt == NULL || image_bad) {
        /* A turn about an image is nothing without it: not run blind. */
        if (image_bad)
            log_warn("approval.restore_failed", "id=%s job=%s reason=unreadable image",
                     job->appr_id, job->id);
        if (image_bad)
            snprintf(job->error, sizeof(job->error), MSG_APPR_IMAGE_LOST);
        else
            snprintf(job->error, sizeof(job->error), MSG_APPR_REJECTED, MSG_COMMON_OUT_OF_MEMORY);
        job__held_void(job);
        return;
    }
    job__hold_arm(job);
}

/* ---- the record's text ---------------------------------------------------- */

char *generate__held_record(const char *wallet, unsigned nres, const char *run, const char *json,
                            size_t *json_at)
{
    char *value = NULL;
    int n = asprintf(&value, "%s %u %s held %s", wallet, nres, run, json);
    if (n < 0)
        return NULL;
    *json_at = (size_t)n - strlen(json);
    return value;
}

const char *generate__held_json(const char *record)
{
    const char *held = strstr(record, " held ");
    return held != NULL ? held + strlen(" held ") : NULL;
}

/* ---- taking a record over ------------------------------------------------- */

/* A held record found by recovery becomes this daemon's in one store job,
 * which writes this run into it only if it still reads as listed: of two
 * daemons adopting a dead one's held job at once, one brings it back. */
struct held_claim {
    struct store_job job;
    struct generate *g;
    char key[96];   /* the job id (struct job's id) */
    char *listed;   /* the record as recovery listed it */
    char *claimed;  /* the record with this run in it */
    size_t json_at; /* where the JSON starts in claimed */
    char wallet[WALLET_ACCOUNT_MAX];
    unsigned nres;
    void (*done)(void *data); /* once it was brought back, or not; may be NULL */
    void *done_data;
};

static int held__claim_run(struct store_txn *txn, struct store_job *job)
{
    struct held_claim *c = container_of(job, struct held_claim, job);
    char *now = NULL;
    int rc = store_txn_state_get(txn, GEN_NS_JOB, c->key, &now);
    bool same = rc == 0 && now != NULL && strcmp(now, c->listed) == 0;
    free(now);
    if (rc < 0 && rc != HB_ENOTFOUND)
        return rc;
    if (!same)
        return HB_ECONFLICT; /* decided, or taken by another daemon, meanwhile */
    return store_txn_state_put(txn, GEN_NS_JOB, c->key, c->claimed, clock_real_ms());
}

static void held__claim_done(struct store_job *job, int rc)
{
    struct held_claim *c = container_of(job, struct held_claim, job);
    struct generate *g = c->g;
    if (rc == 0 && !g->closing)
        generate__held_restore(g, c->key, c->wallet, c->nres, c->claimed + c->json_at);
    else if (rc == HB_ECONFLICT)
        log_debug("approval.claim_lost", "job=%s", c->key);
    else if (rc < 0)
        log_warn("approval.restore_failed", "job=%s error=%s", c->key, hb_strerror(rc));
    if (c->done != NULL)
        c->done(c->done_data);
    free(c->listed);
    free(c->claimed);
    free(c);
    g->njobs--;
    generate__maybe_free(g);
}

int generate__held_claim(struct generate *g, const char *key, const char *listed,
                         const char *wallet, unsigned nres, const char *json,
                         void (*done)(void *data), void *done_data)
{
    struct ledger *ledger = g->core->ledger;
    struct held_claim *c = calloc(1, sizeof(*c));
    if (ledger == NULL || c == NULL || strlen(key) >= sizeof(c->key)) {
        free(c);
        log_warn("approval.restore_failed", "job=%s error=%s", key, hb_strerror(HB_ENOMEM));
        return HB_ENOMEM;
    }
    c->done = done;
    c->done_data = done_data;
    c->job = (struct store_job){.run = held__claim_run, .done = held__claim_done};
    c->g = g;
    snprintf(c->key, sizeof(c->key), "%s", key);
    snprintf(c->wallet, sizeof(c->wallet), "%s", wallet);
    c->nres = nres;
    c->listed = strdup(listed);
    c->claimed = generate__held_record(wallet, nres, generate__run(g), json, &c->json_at);
    if (c->listed == NULL || c->claimed == NULL) {
        free(c->listed);
        free(c->claimed);
        free(c);
        log_warn("approval.restore_failed", "job=%s error=%s", key, hb_strerror(HB_ENOMEM));
        return HB_ENOMEM;
    }
    int rc = store_submit(ledger_store(ledger), &c->job);
    if (rc < 0) {
        free(c->listed);
        free(c->claimed);
        free(c);
        return rc;
    }
    g->njobs++;
    return 0;
}
