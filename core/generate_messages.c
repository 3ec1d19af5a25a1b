/* The messages a text job sends its provider: the conversation so far,
 * then the member's prompt (generate_internal.h). */
#include "core/generate_internal.h"

#include "base/error.h"

#include <stdlib.h>
#include <string.h>

int job__messages_build(struct job *job)
{
    if (job->api_nmsgs > 0)
        return job__api_messages_build(job);
    struct gen_conv *c = job->modality == PROVIDER_TEXT && job->conv_id[0] != '\0'
                             ? map_get(job->g->convs, job->conv_id)
                             : NULL;
    size_t n = (c != NULL ? c->n : 0) + 1;
    size_t plen = strlen(job->prompt);
    size_t total = plen + 1 + (c != NULL ? c->bytes + c->n : 0);
    /* Copies, since a turn may leave the conversation while the job runs;
     * in one block, since a long conversation is many short turns. */
    job->msgs = calloc(n, sizeof(*job->msgs));
    job->msgs_text = malloc(total);
    if (job->msgs == NULL || job->msgs_text == NULL)
        return HB_ENOMEM;
    char *at = job->msgs_text;
    for (size_t i = 0; c != NULL && i < c->n; i++) {
        const struct gen_turn *turn = &c->turns[i];
        memcpy(at, turn->text, turn->len + 1);
        job->msgs[job->nmsgs].role = turn->role;
        job->msgs[job->nmsgs++].content = at;
        job->input_bytes += turn->len;
        at += turn->len + 1;
    }
    memcpy(at, job->prompt, plen + 1);
    job->msgs[job->nmsgs].role = "user";
    job->msgs[job->nmsgs++].content = at;
    job->input_bytes += plen;
    return 0;
}

void job__messages_clear(struct job *job)
{
    if (job->msgs_text == NULL) {
        for (size_t i = 0; i < job->nmsgs; i++)
            free((char *)job->msgs[i].content);
    }
    free(job->msgs_text);
    free(job->msgs);
    job->msgs_text = NULL;
    job->msgs = NULL;
    job->nmsgs = 0;
}
