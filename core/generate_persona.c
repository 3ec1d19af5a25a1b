/* The persona of a job: which one (core/persona.h), and what it changes in
 * the request: the system prompt with its variables filled in, the
 * sampling settings over the model's, the output cap, and its forbidden
 * words. The system prompt is counted in every estimate, so a member is
 * never charged for more than was reserved. */
#include "core/generate_internal.h"

#include "core/core.h"
#include "core/persona.h"
#include "base/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void job__persona_resolve(struct job *job)
{
    if (job->api) {
        job->persona = NULL; /* an API caller brings its own system text */
        return;
    }
    job->persona = job->modality == PROVIDER_TEXT
                       ? persona_resolve(job->g->core, job->cat, &job->who, NULL)
                       : NULL;
}

char *job__system_prompt(const struct job *job, const struct catalog_model *m)
{
    const char *prompt = m->system_prompt;
    if (job->persona != NULL && job->persona->system_prompt != NULL)
        prompt = job->persona->system_prompt;
    if (prompt == NULL || m->modality != PROVIDER_TEXT)
        return NULL;
    const char *bot = job->g->core->bot_name;
    return persona_prompt_expand(prompt, &job->who, m->name, bot, generate__now(job->g));
}

int64_t job__max_tokens(const struct job *job, const struct catalog_model *m)
{
    /* A persona may lower the model's cap, never raise it: the model's is
     * the operator's price bound. */
    if (job->api_max_tokens > 0 && job->api_max_tokens < m->max_output_tokens)
        return job->api_max_tokens;
    if (job->persona != NULL && job->persona->max_tokens > 0 &&
        job->persona->max_tokens < m->max_output_tokens)
        return job->persona->max_tokens;
    return m->max_output_tokens;
}

size_t job__system_bytes(const struct job *job, const struct catalog_model *m)
{
    char *system = job__system_prompt(job, m);
    size_t n = system != NULL ? strlen(system) : 0;
    free(system);
    if (job->api_system != NULL && m->modality == PROVIDER_TEXT)
        n += strlen(job->api_system) + 2;
    return n;
}

/* The model's extra_body with the persona's keys after it: the adapter
 * merges keys in order and a later one replaces an earlier one, so the
 * persona's win. Both were checked at load as JSON objects. */
static char *job__extra_merge(const char *model, const char *persona)
{
    if (persona == NULL)
        return model != NULL ? strdup(model) : NULL;
    if (model == NULL)
        return strdup(persona);
    const char *a = strchr(model, '{');
    const char *a_end = strrchr(model, '}');
    const char *b = strchr(persona, '{');
    const char *b_end = strrchr(persona, '}');
    if (a == NULL || a_end == NULL || b == NULL || b_end == NULL)
        return strdup(persona);
    a++;
    b++;
    while (a < a_end && (*a == ' ' || *a == '\t'))
        a++;
    while (b < b_end && (*b == ' ' || *b == '\t'))
        b++;
    bool both = a < a_end && b < b_end;
    char *out = NULL;
    if (asprintf(&out, "{%.*s%s%.*s}", (int)(a_end - a), a, both ? "," : "", (int)(b_end - b), b) <
        0)
        return NULL;
    return out;
}

int job__request_persona(const struct job *job, const struct catalog_model *m,
                         struct provider_request *req, char **system, char **extra)
{
    *system = job__system_prompt(job, m);
    *extra = NULL;
    req->system = *system;
    req->max_output_tokens = job__max_tokens(job, m);
    const struct catalog_persona *p = job->persona;
    if (p == NULL || m->modality != PROVIDER_TEXT)
        return 0;
    if (p->temperature_set) {
        req->temperature_set = true;
        req->temperature = p->temperature;
    }
    if (p->top_p_set) {
        req->top_p_set = true;
        req->top_p = p->top_p;
    }
    if (p->nstop > 0) {
        req->stop = (const char *const *)p->stop;
        req->nstop = p->nstop;
    }
    if (p->extra_body != NULL) {
        *extra = job__extra_merge(m->extra_body, p->extra_body);
        if (*extra == NULL)
            return HB_ENOMEM;
        req->extra_body = *extra;
    }
    return 0;
}

bool job__persona_blocks(struct job *job, const char *text, const char **rule)
{
    const struct catalog_persona *p = job->persona;
    if (p == NULL || p->filter == NULL)
        return false;
    struct filter_result fr = {0};
    if (filter_apply(p->filter, text != NULL ? text : "", &fr) < 0)
        return false;
    bool blocked = fr.blocked;
    if (blocked) {
        generate__hit(job->g, p->filter, &fr);
        *rule = p->name;
    }
    filter_result_clear(&fr);
    return blocked;
}
