#include "adapters/openai/openai.h"

#include "adapters/llm/llm.h"
#include "base/error.h"
#include "base/json.h"

#include <openssl/evp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Decode standard base64 (whitespace tolerated). Returns a heap buffer. */
static unsigned char *openai__b64_decode(const char *in, size_t *out_len)
{
    size_t n = strlen(in);
    char *clean = malloc(n + 4);
    if (clean == NULL)
        return NULL;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i] != '\n' && in[i] != '\r' && in[i] != ' ')
            clean[m++] = in[i];
    }
    while (m % 4 != 0)
        clean[m++] = '=';
    clean[m] = '\0';
    unsigned char *out = malloc(m / 4 * 3 + 1);
    if (out == NULL) {
        free(clean);
        return NULL;
    }
    int len = m > 0 ? EVP_DecodeBlock(out, (const unsigned char *)clean, (int)m) : 0;
    if (len < 0) {
        free(clean);
        free(out);
        return NULL;
    }
    /* EVP_DecodeBlock counts padding as zero bytes. */
    size_t pad = 0;
    if (m >= 1 && clean[m - 1] == '=')
        pad++;
    if (m >= 2 && clean[m - 2] == '=')
        pad++;
    free(clean);
    *out_len = (size_t)len - pad;
    return out;
}

static int openai__image_body(struct provider_call *call, const char *body, size_t len,
                              struct provider_result *res)
{
    (void)res;
    if (call->follow) {
        unsigned char *copy = malloc(len > 0 ? len : 1);
        if (copy == NULL)
            return HB_ENOMEM;
        memcpy(copy, body, len);
        llm_call_image_set(call, copy, len);
        if (len == 0) {
            snprintf(call->err, sizeof(call->err), "%s sent an empty image", call->p->name);
            return HB_EPROTO;
        }
        return 0;
    }
    int rc = HB_EPROTO;
    cJSON *json = cJSON_ParseWithLength(body, len);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(json, "data");
    const cJSON *first = cJSON_IsArray(data) ? cJSON_GetArrayItem(data, 0) : NULL;
    const cJSON *b64 = cJSON_GetObjectItemCaseSensitive(first, "b64_json");
    const cJSON *url = cJSON_GetObjectItemCaseSensitive(first, "url");
    if (cJSON_IsString(b64)) {
        size_t n = 0;
        unsigned char *bytes = openai__b64_decode(b64->valuestring, &n);
        if (bytes != NULL && n > 0) {
            llm_call_image_set(call, bytes, n);
            rc = 0;
        } else {
            free(bytes);
        }
    } else if (cJSON_IsString(url)) {
        rc = llm_call_follow(call, url->valuestring, call->p->max_image_bytes, 60000);
        if (rc == 0)
            rc = 1;
        else
            snprintf(call->err, sizeof(call->err), "%s gave an image URL that cannot be fetched",
                     call->p->name);
    }
    if (rc == HB_EPROTO)
        snprintf(call->err, sizeof(call->err),
                 "%s answered without an image (bad JSON or no "
                 "data[0].b64_json or url)",
                 call->p->name);
    cJSON_Delete(json);
    return rc;
}

const char *openai_max_tokens_key(enum provider_max_tokens_field field, const char *model)
{
    static const char *const newer[] = {"o1", "o3", "o4", "gpt-5"};
    if (field == PROVIDER_MAX_COMPLETION_TOKENS)
        return "max_completion_tokens";
    if (field == PROVIDER_MAX_TOKENS || model == NULL)
        return "max_tokens";
    for (size_t i = 0; i < sizeof(newer) / sizeof(newer[0]); i++) {
        if (strncmp(model, newer[i], strlen(newer[i])) == 0)
            return "max_completion_tokens";
    }
    return "max_tokens";
}

/* One chat message {"role":role,"content":content} as JSON text. */
static void openai__message_put(struct json_text *t, const char *role, const char *content)
{
    json_text_put(t, "{\"role\":", 8);
    json_text_string(t, role);
    json_text_put(t, ",\"content\":", 11);
    json_text_string(t, content);
    json_text_put(t, "}", 1);
}

/* The prompt with its images: {"role":"user","content":[{"type":"text",
 * "text":...},{"type":"image_url","image_url":{"url":"data:<mime>;base64,
 * ..."}}]}, as OpenAI's vision models (and compatible servers) take it. */
static cJSON *openai__message_images(const char *role, const char *content,
                                     const struct provider_request *req)
{
    cJSON *m = cJSON_CreateObject();
    cJSON *parts = m != NULL ? cJSON_CreateArray() : NULL;
    int rc = parts != NULL ? 0 : HB_ENOMEM;
    if (rc == 0 && (cJSON_AddStringToObject(m, "role", role) == NULL ||
                    !cJSON_AddItemToObject(m, "content", parts)))
        rc = HB_ENOMEM;
    if (rc < 0)
        cJSON_Delete(parts);
    cJSON *text = rc == 0 ? cJSON_CreateObject() : NULL;
    if (rc == 0 && (text == NULL || !cJSON_AddItemToArray(parts, text) ||
                    cJSON_AddStringToObject(text, "type", "text") == NULL ||
                    cJSON_AddStringToObject(text, "text", content) == NULL))
        rc = HB_ENOMEM;
    for (size_t i = 0; rc == 0 && i < req->nimages; i++) {
        const struct provider_image *img = &req->images[i];
        char prefix[64];
        snprintf(prefix, sizeof(prefix), "data:%s;base64,", img->mime);
        char *uri = llm_base64(prefix, img->data, img->len);
        cJSON *part = uri != NULL ? cJSON_CreateObject() : NULL;
        cJSON *iu = NULL;
        if (part == NULL || !cJSON_AddItemToArray(parts, part) ||
            cJSON_AddStringToObject(part, "type", "image_url") == NULL ||
            (iu = cJSON_AddObjectToObject(part, "image_url")) == NULL ||
            cJSON_AddStringToObject(iu, "url", uri) == NULL)
            rc = HB_ENOMEM;
        free(uri);
    }
    if (rc < 0) {
        cJSON_Delete(m);
        return NULL;
    }
    return m;
}

/* The messages array as JSON text: the system prompt first, with the
 * "system" role that every OpenAI-compatible server knows (OpenAI maps it
 * to "developer" for its reasoning models itself), then the remembered
 * turns and the prompt. Written as text, a long conversation costs a copy
 * of each turn, not a tree node, two copies and two frees per string. */
static char *openai__messages_text(const struct provider_request *req)
{
    struct json_text t = {0};
    json_text_put(&t, "[", 1);
    bool first = true;
    if (req->system != NULL && req->system[0] != '\0') {
        openai__message_put(&t, "system", req->system);
        first = false;
    }
    for (size_t i = 0; i < req->nmessages; i++) {
        if (!first)
            json_text_put(&t, ",", 1);
        first = false;
        const struct provider_message *msg = &req->messages[i];
        if (i + 1 == req->nmessages && req->nimages > 0) {
            cJSON *m = openai__message_images(msg->role, msg->content, req);
            json_text_value(&t, m);
            cJSON_Delete(m);
        } else {
            openai__message_put(&t, msg->role, msg->content);
        }
    }
    json_text_put(&t, "]", 1);
    return json_text_finish(&t, NULL);
}

cJSON *openai_chat_body(const struct provider_request *req)
{
    cJSON *body = cJSON_CreateObject();
    if (body == NULL)
        return NULL;
    int rc = cJSON_AddStringToObject(body, "model", req->model) != NULL ? 0 : HB_ENOMEM;
    char *msgs = rc == 0 ? openai__messages_text(req) : NULL;
    if (msgs == NULL || cJSON_AddRawToObject(body, "messages", msgs) == NULL)
        rc = HB_ENOMEM;
    free(msgs);
    if (rc == 0) {
        cJSON_AddBoolToObject(body, "stream", 1);
        cJSON *so = cJSON_AddObjectToObject(body, "stream_options");
        if (so == NULL || cJSON_AddBoolToObject(so, "include_usage", 1) == NULL)
            rc = HB_ENOMEM;
    }
    const char *cap = openai_max_tokens_key(req->max_tokens_field, req->model);
    if (rc == 0 && cJSON_AddNumberToObject(body, cap, (double)req->max_output_tokens) == NULL)
        rc = HB_ENOMEM;
    if (rc == 0)
        rc = llm_body_sampling_add(body, req, "stop");
    if (rc < 0) {
        cJSON_Delete(body);
        return NULL;
    }
    return body;
}

static cJSON *openai__image_request_body(const struct provider_request *req)
{
    cJSON *body = cJSON_CreateObject();
    if (body == NULL)
        return NULL;
    char size[32];
    snprintf(size, sizeof(size), "%ux%u", req->width, req->height);
    if (cJSON_AddStringToObject(body, "model", req->model) == NULL ||
        cJSON_AddStringToObject(body, "prompt", req->prompt != NULL ? req->prompt : "") == NULL ||
        cJSON_AddNumberToObject(body, "n", 1) == NULL ||
        cJSON_AddStringToObject(body, "size", size) == NULL ||
        llm_body_extra_merge(body, req->extra_body) < 0) {
        cJSON_Delete(body);
        return NULL;
    }
    return body;
}

static int openai__start(struct provider *provider, const struct provider_request *req,
                         const struct provider_events *ev, void *data, struct provider_call **out)
{
    struct llm_provider *p = provider->impl;
    char *auth = NULL;
    if (p->api_key != NULL && asprintf(&auth, "Bearer %s", p->api_key) < 0)
        return HB_ENOMEM;
    const char *hdrs[] = {"Authorization", auth, NULL};
    if (auth == NULL)
        hdrs[0] = NULL;
    int rc = HB_ENOMEM;
    bool image = req->modality == PROVIDER_IMAGE;
    cJSON *body = image ? openai__image_request_body(req) : openai_chat_body(req);
    if (body == NULL)
        goto out;
    if (image)
        rc = llm_call_start(p, "/images/generations", hdrs, body, req->timeout_ms, -1,
                            openai__image_body, ev, data, out);
    else
        rc = llm_call_start(p, "/chat/completions", hdrs, body, req->timeout_ms,
                            STREAM_PROTOCOL_OPENAI, NULL, ev, data, out);
out:
    cJSON_Delete(body);
    free(auth);
    return rc;
}

static const struct provider_ops openai_ops = {
    .start = openai__start, .cancel = llm_call_cancel, .free = llm_provider_free};

struct provider *openai_provider_new(struct http_client *http, const struct provider_settings *s)
{
    return llm_provider_new(&openai_ops, http, s);
}
