#include "adapters/llm/stream.h"

#include "base/error.h"
#include "adapters/llm/sse.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct stream_decoder {
    enum stream_protocol proto;
    struct sse_parser *sse;
    stream_step_cb cb;
    void *cb_data;
    int rc;          /* sticky failure of this layer, 0 while healthy */
    bool finished;   /* a finish reason arrived */
    bool done;       /* the end marker arrived; later events are ignored */
    size_t events;   /* SSE events seen, for error messages */
    char error[256]; /* description of the last failure */
};

static void stream_error_set(struct stream_decoder *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void stream_error_set(struct stream_decoder *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->error, sizeof(d->error), fmt, ap);
    va_end(ap);
}

static int stream_step_emit(struct stream_decoder *d, struct stream_step *step)
{
    if (d->cb == NULL)
        return 0;
    return d->cb(step, d->cb_data);
}

static void stream_step_init(struct stream_step *step, enum stream_step_kind kind)
{
    memset(step, 0, sizeof(*step));
    step->kind = kind;
    step->input_tokens = -1;
    step->output_tokens = -1;
}

static int stream_text_emit(struct stream_decoder *d, const cJSON *text)
{
    if (!cJSON_IsString(text) || text->valuestring[0] == '\0')
        return 0;
    struct stream_step step;
    stream_step_init(&step, STREAM_STEP_TEXT);
    step.text = text->valuestring;
    step.text_len = strlen(text->valuestring);
    return stream_step_emit(d, &step);
}

static int stream_finish_emit(struct stream_decoder *d, const char *reason)
{
    struct stream_step step;
    stream_step_init(&step, STREAM_STEP_FINISH);
    step.finish_reason = reason;
    d->finished = true;
    return stream_step_emit(d, &step);
}

static int stream_done_emit(struct stream_decoder *d)
{
    struct stream_step step;
    stream_step_init(&step, STREAM_STEP_DONE);
    d->done = true;
    return stream_step_emit(d, &step);
}

static long stream_token_count(const cJSON *obj, const char *name)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!cJSON_IsNumber(n) || n->valuedouble < 0 || n->valuedouble > 1e15)
        return -1;
    return (long)n->valuedouble;
}

/* Emit a usage step from a usage object under either protocol's names;
 * nothing when neither count is present. */
static int stream_usage_emit(struct stream_decoder *d, const cJSON *usage, const char *in_name,
                             const char *out_name)
{
    if (!cJSON_IsObject(usage))
        return 0;
    struct stream_step step;
    stream_step_init(&step, STREAM_STEP_USAGE);
    step.input_tokens = stream_token_count(usage, in_name);
    step.output_tokens = stream_token_count(usage, out_name);
    if (step.input_tokens < 0 && step.output_tokens < 0)
        return 0;
    return stream_step_emit(d, &step);
}

/* Deliver a remote error and make the decoder fail with HB_EHTTP. `error`
 * is the error object ({"type", "message"} or OpenAI's {"message", "type",
 * "code"}); it may be a bare string from a lax server. */
static int stream_remote_error(struct stream_decoder *d, const cJSON *error)
{
    const char *type = "";
    const char *message = "";
    if (cJSON_IsString(error)) {
        message = error->valuestring;
    } else if (cJSON_IsObject(error)) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(error, "type");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(error, "code");
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(error, "message");
        if (cJSON_IsString(t))
            type = t->valuestring;
        else if (cJSON_IsString(c))
            type = c->valuestring;
        if (cJSON_IsString(m))
            message = m->valuestring;
    }
    struct stream_step step;
    stream_step_init(&step, STREAM_STEP_ERROR);
    step.error_type = type;
    step.error_message = message;
    stream_error_set(d, "remote error in stream: %s %s", type[0] ? type : "(no type)", message);
    int rc = stream_step_emit(d, &step);
    return rc != 0 ? rc : HB_EHTTP;
}

/* ---- OpenAI-compatible chat completions ------------------------------- */

static int stream_openai_chunk(struct stream_decoder *d, const cJSON *root)
{
    int rc = 0;
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(root, "error");
    if (error != NULL && !cJSON_IsNull(error))
        return stream_remote_error(d, error);

    /* Ollama and others put usage next to the last delta, so the order is
     * text, finish, usage within one chunk. */
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
    const cJSON *choice = cJSON_IsArray(choices) ? cJSON_GetArrayItem(choices, 0) : NULL;
    if (choices != NULL && !cJSON_IsArray(choices) && !cJSON_IsNull(choices)) {
        stream_error_set(d, "chunk has a non-array choices");
        return HB_EPROTO;
    }
    if (cJSON_IsObject(choice)) {
        const cJSON *delta = cJSON_GetObjectItemCaseSensitive(choice, "delta");
        if (cJSON_IsObject(delta)) {
            rc = stream_text_emit(d, cJSON_GetObjectItemCaseSensitive(delta, "content"));
            if (rc != 0)
                return rc;
        }
        const cJSON *reason = cJSON_GetObjectItemCaseSensitive(choice, "finish_reason");
        if (cJSON_IsString(reason) && reason->valuestring[0] != '\0') {
            rc = stream_finish_emit(d, reason->valuestring);
            if (rc != 0)
                return rc;
        }
    }
    return stream_usage_emit(d, cJSON_GetObjectItemCaseSensitive(root, "usage"), "prompt_tokens",
                             "completion_tokens");
}

/* ---- Anthropic Messages ----------------------------------------------- */

static int stream_anthropic_event(struct stream_decoder *d, const char *type, const cJSON *root)
{
    int rc = 0;
    if (strcmp(type, "ping") == 0 || strcmp(type, "content_block_stop") == 0)
        return 0;
    if (strcmp(type, "error") == 0)
        return stream_remote_error(d, cJSON_GetObjectItemCaseSensitive(root, "error"));
    if (strcmp(type, "message_start") == 0) {
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(root, "message");
        return stream_usage_emit(d, cJSON_GetObjectItemCaseSensitive(msg, "usage"), "input_tokens",
                                 "output_tokens");
    }
    if (strcmp(type, "content_block_start") == 0) {
        const cJSON *block = cJSON_GetObjectItemCaseSensitive(root, "content_block");
        const cJSON *btype = cJSON_GetObjectItemCaseSensitive(block, "type");
        if (cJSON_IsString(btype) && strcmp(btype->valuestring, "text") == 0)
            return stream_text_emit(d, cJSON_GetObjectItemCaseSensitive(block, "text"));
        return 0;
    }
    if (strcmp(type, "content_block_delta") == 0) {
        /* thinking_delta, input_json_delta and signature_delta are not
         * part of the answer text. */
        const cJSON *delta = cJSON_GetObjectItemCaseSensitive(root, "delta");
        const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(delta, "type");
        if (cJSON_IsString(dtype) && strcmp(dtype->valuestring, "text_delta") == 0)
            return stream_text_emit(d, cJSON_GetObjectItemCaseSensitive(delta, "text"));
        return 0;
    }
    if (strcmp(type, "message_delta") == 0) {
        const cJSON *delta = cJSON_GetObjectItemCaseSensitive(root, "delta");
        const cJSON *reason = cJSON_GetObjectItemCaseSensitive(delta, "stop_reason");
        if (cJSON_IsString(reason) && reason->valuestring[0] != '\0') {
            rc = stream_finish_emit(d, reason->valuestring);
            if (rc != 0)
                return rc;
        }
        return stream_usage_emit(d, cJSON_GetObjectItemCaseSensitive(root, "usage"), "input_tokens",
                                 "output_tokens");
    }
    if (strcmp(type, "message_stop") == 0)
        return stream_done_emit(d);
    return 0; /* new event types may appear; the API asks clients to skip them */
}

/* ---- Shared ------------------------------------------------------------ */

static int stream_sse_event(const struct sse_event *ev, void *data)
{
    struct stream_decoder *d = data;
    int rc = 0;
    cJSON *root = NULL;

    d->events++;
    if (d->done)
        goto out;
    if (d->proto == STREAM_PROTOCOL_OPENAI && strcmp(ev->data, "[DONE]") == 0) {
        rc = stream_done_emit(d);
        goto out;
    }
    root = cJSON_ParseWithLength(ev->data, ev->data_len);
    if (root == NULL && strcmp(ev->type, "error") == 0) {
        /* Some servers send `event: error` with a plain text message. */
        cJSON *msg = cJSON_CreateString(ev->data);
        if (msg == NULL) {
            rc = HB_ENOMEM;
            goto out;
        }
        rc = stream_remote_error(d, msg);
        cJSON_Delete(msg);
        goto out;
    }
    if (root == NULL) {
        stream_error_set(d, "malformed JSON in event %zu (type %s)", d->events, ev->type);
        rc = HB_EPROTO;
        goto out;
    }
    if (!cJSON_IsObject(root)) {
        stream_error_set(d, "event %zu (type %s) is not a JSON object", d->events, ev->type);
        rc = HB_EPROTO;
        goto out;
    }
    if (d->proto == STREAM_PROTOCOL_OPENAI) {
        rc = stream_openai_chunk(d, root);
    } else {
        /* The SSE event name is authoritative; a proxy that drops it still
         * leaves the type inside the JSON. */
        const char *type = ev->type;
        const cJSON *jtype = cJSON_GetObjectItemCaseSensitive(root, "type");
        if (strcmp(type, "message") == 0 && cJSON_IsString(jtype))
            type = jtype->valuestring;
        rc = stream_anthropic_event(d, type, root);
    }
out:
    cJSON_Delete(root);
    return rc;
}

struct stream_decoder *stream_decoder_new(enum stream_protocol proto, size_t max_event,
                                          stream_step_cb cb, void *data)
{
    struct stream_decoder *d = NULL;
    if (proto != STREAM_PROTOCOL_OPENAI && proto != STREAM_PROTOCOL_ANTHROPIC)
        goto fail;
    d = calloc(1, sizeof(*d));
    if (d == NULL)
        goto fail;
    d->proto = proto;
    d->cb = cb;
    d->cb_data = data;
    d->sse = sse_parser_new(max_event, stream_sse_event, d);
    if (d->sse == NULL)
        goto fail;
    return d;
fail:
    free(d);
    return NULL;
}

void stream_decoder_free(struct stream_decoder *d)
{
    if (d == NULL)
        return;
    sse_parser_free(d->sse);
    free(d);
}

int stream_decoder_feed(struct stream_decoder *d, const char *buf, size_t len)
{
    if (d->rc != 0)
        return d->rc;
    int rc = sse_parser_feed(d->sse, buf, len);
    if (rc == HB_EOVERFLOW)
        stream_error_set(d, "an event exceeds the size limit");
    else if (rc == HB_ENOMEM)
        stream_error_set(d, "out of memory");
    else if (rc != 0 && d->error[0] == '\0')
        stream_error_set(d, "stopped by the caller");
    d->rc = rc;
    return rc;
}

int stream_decoder_finish(struct stream_decoder *d)
{
    bool truncated = false;
    int rc = sse_parser_finish(d->sse, &truncated);
    if (d->rc != 0)
        return d->rc;
    if (rc != 0)
        goto out;
    if (!d->finished) {
        stream_error_set(d, "stream ended without a finish reason%s",
                         truncated ? " (cut inside an event)" : "");
        rc = HB_EPROTO;
    }
out:
    d->rc = rc;
    return rc;
}

const char *stream_decoder_error(const struct stream_decoder *d)
{
    return d->error;
}
