/* POST /v1/chat/completions and POST /v1/images/generations: an OpenAI
 * request checked field by field, run through the generation engine as a
 * chat command's is (core/generate.h, with a sink instead of replies), and
 * answered in OpenAI's shapes, streamed as server-sent events when asked.
 *
 * Fields: those below are read; any other field is ignored (documented in
 * docs/openapi.yaml), so clients that send more than this API uses still
 * work. A streamed answer begins with the first delta (or the end, when
 * none came): until then a refusal still gets its own status code. */
#include "bot/api_internal.h"

#include "core/catalog.h"
#include "core/core.h"
#include "core/generate.h"
#include "core/wallet.h"
#include "net/server.h"
#include "base/error.h"
#include "base/log.h"
#include "base/util.h"

#include <openssl/evp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct api_call {
    struct api *a;
    struct server_request *req;
    struct reply reply; /* what the engine finishes; its messages are not read */
    char key_id[STORE_APIKEY_ID_SIZE];
    char model[128];
    char id[48]; /* "chatcmpl-..." */
    int64_t created;
    bool image;
    bool stream;
    bool include_usage;
    bool started;   /* streaming: the head and the first chunk are out */
    bool ended;     /* the sink's end came */
    size_t sent;    /* streaming: output bytes sent as deltas */
    char *streamed; /* streaming: those bytes, to compare with the filtered end */
    size_t streamed_cap;
    char replay_id[COMMAND_EVENT_ID_MAX]; /* an idempotent request's id: its answer is kept */
};

static int api__reply_send(struct reply *r, const struct reply_msg *msg)
{
    (void)r;
    (void)msg;
    return 0; /* the outcome comes through the sink */
}

static void api__reply_finish(struct reply *r)
{
    struct api_call *c = container_of(r, struct api_call, reply);
    if (!c->ended) {
        /* The engine could not take the job (out of memory). */
        if (c->started)
            server_stream_end(c->req);
        else
            api__error(c->req, 500, "server_error", "internal", NULL, 0,
                       "The request could not be run.");
    }
    free(c->streamed);
    free(c);
}

static const struct reply_ops api_reply_ops = {.send = api__reply_send,
                                               .finish = api__reply_finish};

/* The client closed its connection before the answer: its job need not go
 * on (core/generate.h, generate_cancel). The answer still comes, and goes
 * nowhere. */
static void api__gone(void *data)
{
    struct api_call *c = data;
    generate_cancel(c->a->core->generate, c);
}

/* ---- streaming ------------------------------------------------------------ */

static void api__sse(struct api_call *c, cJSON *obj)
{
    char *text = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    if (text == NULL)
        return;
    size_t n = strlen(text);
    char *line = malloc(n + 9);
    if (line != NULL) {
        memcpy(line, "data: ", 6);
        memcpy(line + 6, text, n);
        memcpy(line + 6 + n, "\n\n", 2);
        server_stream_write(c->req, line, n + 8);
        free(line);
    }
    free(text);
}

/* A chat.completion.chunk with one choice: a role, content, and/or a
 * finish reason (NULL: not set). */
static cJSON *api__chunk(const struct api_call *c, const char *role, const char *content,
                         size_t len, const char *finish)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", c->id);
    cJSON_AddStringToObject(o, "object", "chat.completion.chunk");
    cJSON_AddNumberToObject(o, "created", (double)c->created);
    cJSON_AddStringToObject(o, "model", c->model);
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    cJSON *ch = cJSON_CreateObject();
    cJSON_AddNumberToObject(ch, "index", 0);
    cJSON *delta = cJSON_AddObjectToObject(ch, "delta");
    if (role != NULL)
        cJSON_AddStringToObject(delta, "role", role);
    if (content != NULL) {
        char *copy = strndup(content, len);
        cJSON_AddStringToObject(delta, "content", copy != NULL ? copy : "");
        free(copy);
    }
    if (finish != NULL)
        cJSON_AddStringToObject(ch, "finish_reason", finish);
    else
        cJSON_AddNullToObject(ch, "finish_reason");
    cJSON_AddItemToArray(choices, ch);
    return o;
}

static void api__stream_begin(struct api_call *c)
{
    if (c->started)
        return;
    c->started = true;
    server_stream_start(c->req, 200, "text/event-stream", NULL);
    api__sse(c, api__chunk(c, "assistant", "", 0, NULL));
}

static void api__sink_text(void *data, const char *delta, size_t len)
{
    struct api_call *c = data;
    if (!c->stream || len == 0)
        return;
    api__stream_begin(c);
    if (c->sent + len + 1 > c->streamed_cap) {
        size_t cap = (c->sent + len + 1) * 2;
        char *grown = realloc(c->streamed, cap);
        if (grown == NULL)
            return;
        c->streamed = grown;
        c->streamed_cap = cap;
    }
    memcpy(c->streamed + c->sent, delta, len);
    c->sent += len;
    api__sse(c, api__chunk(c, NULL, delta, len, NULL));
}

/* ---- outcomes ------------------------------------------------------------ */

static cJSON *api__usage_obj(const struct generate_outcome *o)
{
    cJSON *u = cJSON_CreateObject();
    long in = o->input_tokens > 0 ? o->input_tokens : 0;
    long out = o->output_tokens > 0 ? o->output_tokens : 0;
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)in);
    cJSON_AddNumberToObject(u, "completion_tokens", (double)out);
    cJSON_AddNumberToObject(u, "total_tokens", (double)(in + out));
    return u;
}

/* What this API adds to OpenAI's answer: what the request cost. */
static void api__credits_add(cJSON *root, const struct generate_outcome *o)
{
    cJSON *h = cJSON_AddObjectToObject(root, "haibot");
    cJSON_AddNumberToObject(h, "credits_charged", (double)(o->replayed ? 0 : o->charged));
    cJSON_AddNumberToObject(h, "credits_reserved", (double)o->reserved);
    cJSON_AddBoolToObject(h, "replayed", o->replayed);
}

/* A refusal or failure before anything was streamed: its own status. */
static void api__refusal(struct api_call *c, const struct generate_outcome *o)
{
    const char *msg = o->message != NULL && o->message[0] != '\0' ? o->message : "";
    if (!o->refused) {
        if (o->rc == HB_ETIMEOUT)
            api__error(c->req, 504, "server_error", "timeout", NULL, 0, "%s", msg);
        else if (o->rc == HB_ECANCELED)
            api__error(c->req, 503, "server_error", "stopping", NULL, 1, "%s", msg);
        else
            api__error(c->req, 502, "server_error", "upstream_error", NULL, 0,
                       "Every model failed; nothing was charged. %s", msg);
        return;
    }
    switch (o->refusal) {
    case GEN_REFUSE_FUNDS:
        api__error(c->req, 402, "insufficient_quota", "insufficient_credits", NULL, 0, "%s", msg);
        break;
    case GEN_REFUSE_FILTER:
        api__error(c->req, 400, "invalid_request_error", "content_filter", "messages", 0, "%s",
                   msg);
        break;
    case GEN_REFUSE_USER_LIMIT:
    case GEN_REFUSE_GROUP_LIMIT:
    case GEN_REFUSE_TOKEN_CAP:
        api__error(c->req, 429, "requests", "rate_limit_exceeded", NULL, 60, "%s", msg);
        break;
    case GEN_REFUSE_BUSY:
        api__error(c->req, 429, "requests", "busy", NULL, 1, "%s", msg);
        break;
    case GEN_REFUSE_INPUT:
        api__error(c->req, 400, "invalid_request_error", "invalid_value",
                   c->image ? "prompt" : "messages", 0, "%s", msg);
        break;
    case GEN_REFUSE_MODEL:
        api__error(c->req, 404, "invalid_request_error", "model_not_found", "model", 0, "%s", msg);
        break;
    case GEN_REFUSE_KEY_DAY: {
        int64_t now = core_now_ms(c->a->core);
        api__error(c->req, 429, "insufficient_quota", "key_daily_cap", NULL,
                   ((now / API_DAY_MS + 1) * API_DAY_MS - now + 999) / 1000, "%s", msg);
        break;
    }
    case GEN_REFUSE_KEY_TOTAL:
        api__error(c->req, 402, "insufficient_quota", "key_spend_cap", NULL, 0, "%s", msg);
        break;
    case GEN_REFUSE_OTHER:
    default:
        api__error(c->req, 503, "server_error", "unavailable", NULL, 1, "%s", msg);
        break;
    }
}

static void api__stream_end(struct api_call *c, const struct generate_outcome *o)
{
    bool filtered = o->rc == HB_EPERM && !o->refused;
    if (o->rc < 0 && !filtered) {
        cJSON *e = cJSON_CreateObject();
        cJSON *err = cJSON_AddObjectToObject(e, "error");
        cJSON_AddStringToObject(err, "message", o->message != NULL ? o->message : "");
        cJSON_AddStringToObject(err, "type", "server_error");
        cJSON_AddStringToObject(err, "code", "upstream_error");
        api__sse(c, e);
    } else {
        const char *finish = filtered ? "content_filter" : "stop";
        /* What the filter let through beyond the deltas already sent. */
        if (!filtered && o->text != NULL) {
            if (o->text_len >= c->sent &&
                (c->sent == 0 || memcmp(o->text, c->streamed, c->sent) == 0)) {
                if (o->text_len > c->sent)
                    api__sse(c,
                             api__chunk(c, NULL, o->text + c->sent, o->text_len - c->sent, NULL));
            } else {
                finish = "content_filter"; /* a redaction reached text already sent */
            }
        }
        cJSON *last = api__chunk(c, NULL, NULL, 0, finish);
        api__credits_add(last, o);
        api__sse(c, last);
        if (c->include_usage) {
            cJSON *u = cJSON_CreateObject();
            cJSON_AddStringToObject(u, "id", c->id);
            cJSON_AddStringToObject(u, "object", "chat.completion.chunk");
            cJSON_AddNumberToObject(u, "created", (double)c->created);
            cJSON_AddStringToObject(u, "model", c->model);
            cJSON_AddArrayToObject(u, "choices");
            cJSON_AddItemToObject(u, "usage", api__usage_obj(o));
            api__sse(c, u);
        }
    }
    server_stream_write(c->req, "data: [DONE]\n\n", 14);
    server_stream_end(c->req);
}

static void api__chat_answer(struct api_call *c, const struct generate_outcome *o)
{
    bool filtered = o->rc == HB_EPERM && !o->refused;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "id", c->id);
    cJSON_AddStringToObject(root, "object", "chat.completion");
    cJSON_AddNumberToObject(root, "created", (double)c->created);
    cJSON_AddStringToObject(root, "model", c->model);
    cJSON *choices = cJSON_AddArrayToObject(root, "choices");
    cJSON *ch = cJSON_CreateObject();
    cJSON_AddNumberToObject(ch, "index", 0);
    cJSON *m = cJSON_AddObjectToObject(ch, "message");
    cJSON_AddStringToObject(m, "role", "assistant");
    char *copy = o->text != NULL ? strndup(o->text, o->text_len) : NULL;
    cJSON_AddStringToObject(m, "content", copy != NULL ? copy : "");
    free(copy);
    cJSON_AddStringToObject(ch, "finish_reason", filtered ? "content_filter" : "stop");
    cJSON_AddItemToArray(choices, ch);
    cJSON_AddItemToObject(root, "usage", api__usage_obj(o));
    api__credits_add(root, o);
    api__json(c->req, 200, root);
}

static void api__image_answer(struct api_call *c, const struct generate_outcome *o)
{
    size_t b64len = 4 * ((o->image_len + 2) / 3) + 1;
    char *b64 = malloc(b64len);
    if (b64 == NULL) {
        api__error(c->req, 500, "server_error", "internal", NULL, 0, "Out of memory.");
        return;
    }
    EVP_EncodeBlock((unsigned char *)b64, o->image, (int)o->image_len);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "created", (double)c->created);
    cJSON *data = cJSON_AddArrayToObject(root, "data");
    cJSON *item = cJSON_CreateObject();
    cJSON_AddStringToObject(item, "b64_json", b64);
    cJSON_AddItemToArray(data, item);
    free(b64);
    cJSON_AddStringToObject(root, "model", c->model);
    api__credits_add(root, o);
    api__json(c->req, 200, root);
}

static void api__sink_end(void *data, const struct generate_outcome *o)
{
    struct api_call *c = data;
    c->ended = true;
    if (o->model != NULL && o->model[0] != '\0')
        snprintf(c->model, sizeof(c->model), "%s", o->model);
    if (o->charged > 0 && !o->replayed)
        apikey_spend_record(c->a->core, c->key_id, o->charged, core_now_ms(c->a->core));
    bool filtered = o->rc == HB_EPERM && !o->refused;
    /* The first answer to an idempotent request is kept for its retries
     * (a retry of one charged before, whose answer was not kept, keeps
     * none: the first may still be running). */
    if (c->replay_id[0] != '\0' && !c->image && !o->replayed && (o->rc == 0 || filtered))
        api_replay_keep(c->a, c->replay_id, c->model, o);
    if (c->started) {
        api__stream_end(c, o);
        return;
    }
    if (o->rc < 0 && !filtered) {
        api__refusal(c, o);
        return;
    }
    if (c->image) {
        api__image_answer(c, o);
    } else if (c->stream) {
        api__stream_begin(c);
        api__stream_end(c, o);
    } else {
        api__chat_answer(c, o);
    }
}

/* ---- requests -------------------------------------------------------------- */

static struct api_call *api__call_new(struct api *a, struct server_request *req,
                                      const struct apikey *k)
{
    struct api_call *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        api__error(req, 500, "server_error", "internal", NULL, 0, "Out of memory.");
        return NULL;
    }
    c->a = a;
    c->req = req;
    c->reply.ops = &api_reply_ops;
    c->reply.data = c;
    c->created = core_now_ms(a->core) / 1000;
    snprintf(c->key_id, sizeof(c->key_id), "%s", k->rec.id);
    return c;
}

/* The model: named, known, and one this key may use. NULL after answering. */
static const struct catalog_model *api__model(struct api *a, struct server_request *req,
                                              const struct apikey *k, const cJSON *body,
                                              bool required, enum provider_modality want)
{
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(body, "model");
    struct catalog *cat = a->core->generate != NULL ? generate_catalog(a->core->generate) : NULL;
    if (cat == NULL) {
        api__error(req, 503, "server_error", "unavailable", NULL, 1, "No models are available.");
        return NULL;
    }
    if (model == NULL && !required) {
        const struct catalog_model *d = catalog_model_default(cat, want);
        if (d == NULL || !apikey_model_allowed(k, d->name))
            api__error(req, 404, "invalid_request_error", "model_not_found", "model", 0,
                       "No model of this kind is offered to this key; name one.");
        return d != NULL && apikey_model_allowed(k, d->name) ? d : NULL;
    }
    if (!cJSON_IsString(model) || model->valuestring[0] == '\0') {
        api__error(req, 400, "invalid_request_error", "invalid_value", "model", 0,
                   "model must be the name of a model (GET /v1/models lists them).");
        return NULL;
    }
    const struct catalog_model *m = catalog_model_find(cat, model->valuestring);
    /* A model the key may not use is answered as one that does not exist
     * (404): a key learns nothing of models beyond its own. */
    if (m == NULL || !m->enabled || !apikey_model_allowed(k, m->name)) {
        api__error(req, 404, "invalid_request_error", "model_not_found", "model", 0,
                   "The model '%.100s' does not exist or this key may not use it.",
                   model->valuestring);
        return NULL;
    }
    if (m->modality != want) {
        api__error(req, 400, "invalid_request_error", "invalid_value", "model", 0,
                   "The model '%s' makes %s; use %s.", m->name,
                   m->modality == PROVIDER_TEXT ? "text" : "images",
                   m->modality == PROVIDER_TEXT ? "/v1/chat/completions"
                                                : "/v1/images/generations");
        return NULL;
    }
    return m;
}

/* Read an optional positive integer field; false after answering 400. */
static bool api__int_field(struct server_request *req, const cJSON *body, const char *name,
                           int64_t max, int64_t *out)
{
    char why[128];
    if (api_int_field(body, name, max, out, why, sizeof(why)))
        return true;
    api__error(req, 400, "invalid_request_error", "invalid_value", name, 0, "%s", why);
    return false;
}

/* A chat completion ready to run: what api__chat_completions read, owned
 * here (for as long as the store looks for a kept answer, when the
 * request is an idempotent one). */
struct api_chat_run {
    struct api *a;
    struct server_request *req;
    struct api_call *c;
    struct api_chat_body cb;
    struct invocation inv;
    char model[128];
    char payer[WALLET_ACCOUNT_MAX];
    char key_id[STORE_APIKEY_ID_SIZE];
    int64_t cap_day, cap_total;
    bool gone; /* the client left while the store looked */
};

static void api__chat_run_clear(struct api_chat_run *run)
{
    invocation_clear(&run->inv);
    api_chat_body_clear(&run->cb);
}

/* Submit the job. */
static void api__chat_run(struct api_chat_run *run)
{
    struct api_call *c = run->c;
    struct generate_sink sink = {.text = api__sink_text, .end = api__sink_end, .data = c};
    struct generate_request gr = {
        .modality = PROVIDER_TEXT,
        .model = run->model,
        .messages = run->cb.msgs,
        .nmessages = run->cb.n,
        .system = run->cb.system,
        .max_tokens = run->cb.max_tokens,
        .payer = run->payer,
        .key_id = run->key_id,
        .key_cap_day = run->cap_day,
        .key_cap_total = run->cap_total,
        .sink = &sink,
    };
    server_request_on_gone(run->req, api__gone, c); /* before: the job may end at once */
    generate_submit(run->a->core->generate, &run->inv, &gr);
    api__withdraw_if_gone(run->a, run->req, c);
    if (run->gone)
        generate_cancel(run->a->core->generate, c);
}

static void api__lookup_gone(void *data)
{
    ((struct api_chat_run *)data)->gone = true;
}

/* What the store kept for an idempotent request: a retry within the time
 * answers are kept is answered from it, without running the model. */
static void api__looked_up(int rc, const char *value, void *data)
{
    struct api_chat_run *run = data;
    struct api *a = run->a;
    server_request_on_gone(run->req, NULL, NULL);
    struct generate_outcome o;
    cJSON *kept = rc == 0 ? api_replay_decode(value, core_now_ms(a->core), &o) : NULL;
    if (rc < 0 && rc != HB_ENOTFOUND)
        log_warn("api.replay_not_read", "error=%s", hb_strerror(rc));
    if (kept != NULL) {
        struct api_call *c = run->c;
        c->replay_id[0] = '\0'; /* kept already */
        log_info("api.replayed", "key=%s model=%s", run->key_id, o.model);
        api__sink_end(c, &o);
        cJSON_Delete(kept);
        api__reply_finish(&c->reply); /* no job: the call ends here */
    } else if (a->core->generate == NULL) {
        /* Stopping while the store looked. */
        api__error(run->req, 503, "server_error", "unavailable", NULL, 1,
                   "No models are available.");
        run->c->ended = true; /* answered: the call only ends */
        api__reply_finish(&run->c->reply);
    } else {
        api__chat_run(run);
    }
    api__chat_run_clear(run);
    free(run);
}

void api__chat_completions(struct server_request *req, void *data)
{
    struct api *a = data;
    struct apikey *k = api__authorize(a, req, true, api__chat_completions);
    if (k == NULL)
        return;
    cJSON *body = api__body(a, req);
    if (body == NULL)
        return;
    struct api_chat_body cb;
    api_chat_body_init(&cb);
    struct api_call *c = NULL;
    const struct catalog_model *m = api__model(a, req, k, body, true, PROVIDER_TEXT);
    if (m == NULL)
        goto out;
    char param[48], why[128];
    if (api_chat_body_parse(body, &cb, param, sizeof(param), why, sizeof(why)) < 0) {
        api__error(req, 400, "invalid_request_error", "invalid_value", param, 0, "%s", why);
        goto out;
    }
    c = api__call_new(a, req, k);
    if (c == NULL)
        goto out;
    c->stream = cb.stream;
    c->include_usage = cb.include_usage;
    snprintf(c->model, sizeof(c->model), "%s", m->name);
    snprintf(c->id, sizeof(c->id), "chatcmpl-%llx%llx", (unsigned long long)c->created,
             (unsigned long long)++a->next_id);
    struct api_chat_run run = {
        .a = a, .req = req, .c = c, .cap_day = k->rec.cap_day, .cap_total = k->rec.cap_total};
    if (api__invocation(a, k, req, &run.inv) < 0) {
        api__error(req, 500, "server_error", "internal", NULL, 0, "The key's owner is unknown.");
        free(c);
        c = NULL;
        goto out;
    }
    run.inv.reply = &c->reply;
    snprintf(run.model, sizeof(run.model), "%s", m->name);
    snprintf(run.payer, sizeof(run.payer), "%s", api__wallet(a, k));
    snprintf(run.key_id, sizeof(run.key_id), "%s", k->rec.id);
    run.cb = cb; /* moved: the messages point into its own heap texts */
    api_chat_body_init(&cb);
    if (api_replay_wanted(run.inv.event_id)) {
        snprintf(c->replay_id, sizeof(c->replay_id), "%s", run.inv.event_id);
        struct api_chat_run *later = malloc(sizeof(*later));
        if (later != NULL) {
            *later = run;
            /* A request parked before whose client left meanwhile (the
             * gone notice was spent on the park) does not run its job. */
            later->gone = a->caller_gone == req;
            server_request_on_gone(req, api__lookup_gone, later);
            if (api_replay_find(a, c->replay_id, api__looked_up, later) == 0)
                goto out;
            server_request_on_gone(req, NULL, NULL);
            free(later);
        }
    }
    api__chat_run(&run);
    api__chat_run_clear(&run);
out:
    api_chat_body_clear(&cb);
    cJSON_Delete(body);
}

void api__images(struct server_request *req, void *data)
{
    struct api *a = data;
    struct apikey *k = api__authorize(a, req, true, api__images);
    if (k == NULL)
        return;
    cJSON *body = api__body(a, req);
    if (body == NULL)
        return;
    const struct catalog_model *m = api__model(a, req, k, body, false, PROVIDER_IMAGE);
    if (m == NULL) {
        cJSON_Delete(body);
        return;
    }
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(body, "prompt");
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(body, "size");
    const cJSON *format = cJSON_GetObjectItemCaseSensitive(body, "response_format");
    int64_t nimages = 1;
    if (!cJSON_IsString(prompt) || prompt->valuestring[0] == '\0') {
        api__error(req, 400, "invalid_request_error", "invalid_value", "prompt", 0,
                   "prompt must be a non-empty string.");
    } else if (size != NULL && !cJSON_IsNull(size) && !cJSON_IsString(size)) {
        api__error(req, 400, "invalid_request_error", "invalid_value", "size", 0,
                   "size is a string WIDTHxHEIGHT.");
    } else if (format != NULL && !cJSON_IsNull(format) &&
               (!cJSON_IsString(format) || strcmp(format->valuestring, "b64_json") != 0)) {
        api__error(req, 400, "invalid_request_error", "invalid_value", "response_format", 0,
                   "Only response_format b64_json is offered: images are not hosted.");
    } else if (api__int_field(req, body, "n", 1, &nimages)) {
        struct api_call *c = api__call_new(a, req, k);
        struct invocation inv;
        if (c != NULL && api__invocation(a, k, req, &inv) < 0) {
            api__error(req, 500, "server_error", "internal", NULL, 0,
                       "The key's owner is unknown.");
            free(c);
            c = NULL;
        }
        if (c != NULL) {
            c->image = true;
            snprintf(c->model, sizeof(c->model), "%s", m->name);
            inv.reply = &c->reply;
            struct generate_sink sink = {.end = api__sink_end, .data = c};
            struct generate_request gr = {
                .modality = PROVIDER_IMAGE,
                .prompt = prompt->valuestring,
                .model = m->name,
                .size = cJSON_IsString(size) ? size->valuestring : NULL,
                .payer = api__wallet(a, k),
                .key_id = k->rec.id,
                .key_cap_day = k->rec.cap_day,
                .key_cap_total = k->rec.cap_total,
                .sink = &sink,
            };
            server_request_on_gone(req, api__gone, c);
            generate_submit(a->core->generate, &inv, &gr);
            api__withdraw_if_gone(a, req, c);
            invocation_clear(&inv);
        }
    }
    cJSON_Delete(body);
}
