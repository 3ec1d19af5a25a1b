/* A job whose caller left (generate.h, generate_cancel). */
#include "core/generate_internal.h"

#include "base/error.h"
#include "base/log.h"
#include "core/messages.h"

#include <stdio.h>

int generate_cancel(struct generate *g, const void *sink_data)
{
    struct job *job = g->all;
    while (job != NULL && (job->sink.end == NULL || job->sink.data != sink_data))
        job = job->all_next;
    if (job == NULL || sink_data == NULL)
        return HB_ENOTFOUND;
    if (job->gone)
        return 0;
    job->gone = true;
    log_info("generate.caller_gone", "job=%s state=%d", job->id, (int)job->state);
    switch (job->state) {
    case JOB_QUEUED:
    case JOB_BACKOFF:
        snprintf(job->error, sizeof(job->error), MSG_GEN_CALLER_GONE);
        job->end_rc = HB_ECANCELED;
        job__end_waiting(job);
        break;
    case JOB_RUNNING:
        /* Its end (HB_ECANCELED) settles what was made (job__on_done). */
        if (job->modality == PROVIDER_TEXT && job->call != NULL)
            job->model->provider->provider->ops->cancel(job->call);
        break;
    default:
        break; /* admission voids it once reserved; the others go on */
    }
    return 0;
}
