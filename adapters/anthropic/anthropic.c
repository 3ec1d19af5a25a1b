#include "adapters/anthropic/anthropic.h"

#include "adapters/llm/llm.h"
#include "base/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The prompt's content with its images: [{"type":"image","source":{"type":
 * "base64","media_type":...,"data":...}}, ..., {"type":"text","text":...}],
 * the images first, as Anthropic advises. */
static cJSON *anthropic__content_images(const char *content, const struct provider_request *req)
{
    cJSON *parts = cJSON_CreateArray();
    int rc = parts != NULL ? 0 : HB_ENOMEM;
    for (size_t i = 0; rc == 0 && i < req->nimages; i++) {
        const struct provider_image *img = &req->images[i];
        char *b64 = llm_base64("", img->data, img->len);
        cJSON *part = b64 != NULL ? cJSON_CreateObject() : NULL;
        cJSON *src = NULL;
        if (part == NULL || !cJSON_AddItemToArray(parts, part) ||
            cJSON_AddStringToObject(part, "type", "image") == NULL ||
            (src = cJSON_AddObjectToObject(part, "source")) == NULL ||
            cJSON_AddStringToObject(src, "type", "base64") == NULL ||
            cJSON_AddStringToObject(src, "media_type", img->mime) == NULL ||
            cJSON_AddStringToObject(src, "data", b64) == NULL)
            rc = HB_ENOMEM;
        free(b64);
    }
    cJSON *text = rc == 0 ? cJSON_CreateObject() : NULL;
    if (rc == 0 && (text == NULL || !cJSON_AddItemToArray(parts, text) ||
                    cJSON_AddStringToObject(text, "type", "text") == NULL ||
                    cJSON_AddStringToObject(text, "text", content) == NULL))
        rc = HB_ENOMEM;
    if (rc < 0) {
        cJSON_Delete(parts);
        return NULL;
    }
    return parts;
}

cJSON *anthropic_messages_body(const struct provider_request *req)
{
    cJSON *body = cJSON_CreateObject();
    if (body == NULL)
        return NULL;
    int rc = 0;
    if (cJSON_AddStringToObject(body, "model", req->model) == NULL ||
        cJSON_AddNumberToObject(body, "max_tokens", (double)req->max_output_tokens) == NULL ||
        cJSON_AddBoolToObject(body, "stream", 1) == NULL)
        rc = HB_ENOMEM;
    /* Anthropic takes the system prompt beside the messages, never as one. */
    if (rc == 0 && req->system != NULL && req->system[0] != '\0' &&
        cJSON_AddStringToObject(body, "system", req->system) == NULL)
        rc = HB_ENOMEM;
    cJSON *msgs = rc == 0 ? cJSON_AddArrayToObject(body, "messages") : NULL;
    if (msgs == NULL)
        rc = HB_ENOMEM;
    for (size_t i = 0; rc == 0 && i < req->nmessages; i++) {
        cJSON *m = cJSON_CreateObject();
        bool images = i + 1 == req->nmessages && req->nimages > 0;
        cJSON *parts =
            images && m != NULL ? anthropic__content_images(req->messages[i].content, req) : NULL;
        if (m == NULL || cJSON_AddStringToObject(m, "role", req->messages[i].role) == NULL ||
            (images ? parts == NULL || !cJSON_AddItemToObject(m, "content", parts)
                    : cJSON_AddStringToObject(m, "content", req->messages[i].content) == NULL) ||
            !cJSON_AddItemToArray(msgs, m)) {
            if (images && parts != NULL && cJSON_GetObjectItemCaseSensitive(m, "content") != parts)
                cJSON_Delete(parts);
            cJSON_Delete(m);
            rc = HB_ENOMEM;
        }
    }
    if (rc == 0)
        rc = llm_body_sampling_add(body, req, "stop_sequences");
    if (rc < 0) {
        cJSON_Delete(body);
        return NULL;
    }
    return body;
}

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
    cJSON *body = anthropic_messages_body(req);
    if (body == NULL)
        return HB_ENOMEM;
    int rc = llm_call_start(p, "/messages", hdrs, body, req->timeout_ms, STREAM_PROTOCOL_ANTHROPIC,
                            NULL, ev, data, out);
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
