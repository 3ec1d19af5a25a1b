#include "adapters/anthropic/anthropic.h"

#include "adapters/llm/llm.h"
#include "base/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int anthropic__start(struct provider *provider, const struct provider_request *req,
                            const struct provider_events *ev, void *data,
                            struct provider_call **out)
{
    struct llm_provider *p = provider->impl;
    if (req->modality != PROVIDER_TEXT)
        return HB_EINVAL;
    const char *hdrs[] = {"anthropic-version", p->api_version, "x-api-key", p->api_key, NULL};
    if (p->api_key == NULL)
        hdrs[2] = NULL;
    cJSON *body = cJSON_CreateObject();
    if (body == NULL)
        return HB_ENOMEM;
    int rc = HB_ENOMEM;
    cJSON_AddStringToObject(body, "model", req->model);
    cJSON_AddNumberToObject(body, "max_tokens", (double)req->max_output_tokens);
    cJSON_AddBoolToObject(body, "stream", 1);
    cJSON *msgs = cJSON_AddArrayToObject(body, "messages");
    for (size_t i = 0; msgs != NULL && i < req->nmessages; i++) {
        cJSON *m = cJSON_CreateObject();
        if (m == NULL)
            goto out;
        cJSON_AddStringToObject(m, "role", req->messages[i].role);
        cJSON_AddStringToObject(m, "content", req->messages[i].content);
        cJSON_AddItemToArray(msgs, m);
    }
    rc = llm_call_start(p, "/messages", hdrs, body, req->timeout_ms, STREAM_PROTOCOL_ANTHROPIC,
                        NULL, ev, data, out);
out:
    cJSON_Delete(body);
    return rc;
}

/* An overloaded_error inside the stream is worth another try, like a 529. */
static const struct provider_ops anthropic_ops = {
    .start = anthropic__start, .cancel = llm_call_cancel, .free = llm_provider_free};

struct provider *anthropic_provider_new(struct http_client *http, const struct provider_settings *s)
{
    return llm_provider_new(&anthropic_ops, http, s);
}
