/* What the HTTP API asks of the engine (struct generate_request's API
 * fields): a conversation given whole, the caller's system text and output
 * cap, one payer, and a sink that hears raw deltas and the outcome rather
 * than reading reply messages. */
#include "core/generate_internal.h"

#include "base/error.h"
#include "base/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Copy what an API request brings: its messages (the prompt the checks
 * read becomes all their text, one per line), system text, output cap and
 * payer. */
int job__api_take(struct job *job, const struct generate_request *req)
{
    job->api_max_tokens = req->max_tokens > 0 ? req->max_tokens : 0;
    if (req->payer != NULL)
        snprintf(job->api_payer, sizeof(job->api_payer), "%s", req->payer);
    if (req->key_id != NULL && (req->key_cap_day > 0 || req->key_cap_total > 0)) {
        snprintf(job->key_id, sizeof(job->key_id), "%s", req->key_id);
        job->key_cap_day = req->key_cap_day;
        job->key_cap_total = req->key_cap_total;
    }
    if (req->system != NULL && req->system[0] != '\0') {
        job->api_system = strdup(req->system);
        if (job->api_system == NULL)
            return HB_ENOMEM;
    }
    if (req->messages == NULL || req->nmessages == 0) {
        job->api = req->sink != NULL && req->payer != NULL;
        return 0;
    }
    job->api = true;
    job->api_msgs = calloc(req->nmessages, sizeof(*job->api_msgs));
    if (job->api_msgs == NULL)
        return HB_ENOMEM;
    struct text_buf all = {0};
    for (size_t i = 0; i < req->nmessages; i++) {
        const char *c = req->messages[i].content != NULL ? req->messages[i].content : "";
        char *copy = strdup(c);
        if (copy == NULL) {
            free(all.buf);
            return HB_ENOMEM;
        }
        job->api_msgs[job->api_nmsgs].role =
            strcmp(req->messages[i].role, "assistant") == 0 ? "assistant" : "user";
        job->api_msgs[job->api_nmsgs++].content = copy;
        text_buf_add(&all, "%s%s", i > 0 ? "\n" : "", c);
    }
    free(job->prompt);
    job->prompt = all.buf != NULL ? all.buf : strdup("");
    return 0;
}

/* The request's own turns as the provider messages. */
int job__api_messages_build(struct job *job)
{
    /* The request's own turns, each through the filter's redactions
     * (the prompt's check already refused what the filter blocks). */
    job->msgs = calloc(job->api_nmsgs, sizeof(*job->msgs));
    if (job->msgs == NULL)
        return HB_ENOMEM;
    const struct filter *f = catalog_filter(job->cat);
    for (size_t i = 0; i < job->api_nmsgs; i++) {
        struct filter_result fr = {0};
        char *t = NULL;
        if (filter_apply(f, job->api_msgs[i].content, &fr) == 0 && fr.text != NULL) {
            t = fr.text;
            fr.text = NULL;
        } else {
            t = strdup(job->api_msgs[i].content);
        }
        filter_result_clear(&fr);
        if (t == NULL)
            return HB_ENOMEM;
        job->msgs[job->nmsgs].role = job->api_msgs[i].role;
        job->msgs[job->nmsgs++].content = t;
        job->input_bytes += strlen(t);
    }
    return 0;
}

/* Pass a delta on as it arrives while the output so far passes the filter
 * untouched; once it does not, the rest comes with the end, filtered. */
void job__sink_text(struct job *job, const char *delta, size_t len)
{
    if (job->sink_quiet)
        return;
    struct filter_result sf = {0};
    const char *srule = NULL;
    if (filter_apply(catalog_filter(job->cat), job->text, &sf) < 0 || sf.blocked ||
        sf.redactions > 0 || job__persona_blocks(job, sf.text, &srule))
        job->sink_quiet = true;
    filter_result_clear(&sf);
    if (!job->sink_quiet) {
        job->sink_sent = true;
        job->sink.text(job->sink.data, delta, len);
    }
}

/* Tell the sink how the job ended (once). */
void job__sink_end(struct job *job, int rc)
{
    const struct catalog_model *m = job->model != NULL ? job->model : job->first;
    bool ok = rc == 0 && job->end_rc == 0;
    struct generate_outcome o = {
        .rc = rc,
        .refused = job->refused,
        .refusal = job->refusal,
        .message = job->refused ? job->message : job->error,
        .model = m != NULL ? m->name : job->want_model,
        .text = ok && job->modality == PROVIDER_TEXT ? (job->text != NULL ? job->text : "") : NULL,
        .text_len = ok && job->text != NULL ? job->text_len : 0,
        .image = ok && job->modality == PROVIDER_IMAGE ? job->image : NULL,
        .image_len = ok ? job->image_len : 0,
        .image_mime = job->mime,
        .input_tokens = job->in_tokens,
        .output_tokens = job->out_tokens,
        .charged = ok ? job->charged : 0,
        .reserved = job->reserved,
        .replayed = job->replayed,
    };
    void (*end)(void *, const struct generate_outcome *) = job->sink.end;
    job->sink.end = NULL;
    end(job->sink.data, &o);
}
