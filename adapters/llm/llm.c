#include "adapters/llm/llm.h"

#include "base/error.h"
#include "base/log.h"
#include "base/text.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <limits.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define LLM_IMAGE_MAX_DEFAULT (20u * 1024 * 1024)

/* ---- settings ----------------------------------------------------------- */

static char *llm__trim_dup(const char *s, size_t len)
{
    while (len > 0 && isspace((unsigned char)*s)) {
        s++;
        len--;
    }
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    return strndup(s, len);
}

static int llm__provider_init(struct llm_provider *p, struct http_client *http,
                              const struct provider_settings *s)
{
    p->provider.impl = p;
    p->http = http;
    p->name = strdup(s->name != NULL ? s->name : "provider");
    const char *base = s->base_url != NULL ? s->base_url : "";
    size_t blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    p->base_url = strndup(base, blen);
    p->api_key = s->api_key != NULL && s->api_key[0] != '\0' ? strdup(s->api_key) : NULL;
    p->api_version = strdup(s->api_version != NULL ? s->api_version : "2023-06-01");
    p->max_image_bytes = s->max_image_bytes > 0 ? s->max_image_bytes : LLM_IMAGE_MAX_DEFAULT;
    if (p->name == NULL || p->base_url == NULL || p->api_version == NULL ||
        (s->api_key != NULL && s->api_key[0] != '\0' && p->api_key == NULL))
        return HB_ENOMEM;
    if (s->headers == NULL)
        return 0;
    size_t cap = 1;
    for (const char *c = s->headers; *c != '\0'; c++)
        cap += *c == ';';
    p->hdr_names = calloc(cap, sizeof(char *));
    p->hdr_values = calloc(cap, sizeof(char *));
    if (p->hdr_names == NULL || p->hdr_values == NULL)
        return HB_ENOMEM;
    const char *c = s->headers;
    while (*c != '\0') {
        size_t len = strcspn(c, ";");
        const char *colon = memchr(c, ':', len);
        bool blank = true;
        for (size_t i = 0; i < len; i++)
            blank = blank && isspace((unsigned char)c[i]);
        if (!blank) {
            if (colon == NULL)
                return HB_EINVAL;
            char *n = llm__trim_dup(c, (size_t)(colon - c));
            char *v = llm__trim_dup(colon + 1, len - (size_t)(colon - c) - 1);
            p->hdr_names[p->nhdrs] = n;
            p->hdr_values[p->nhdrs] = v;
            p->nhdrs++;
            if (n == NULL || v == NULL)
                return HB_ENOMEM;
            if (n[0] == '\0')
                return HB_EINVAL;
        }
        c += len;
        if (*c == ';')
            c++;
    }
    return 0;
}

struct provider *llm_provider_new(const struct provider_ops *ops, struct http_client *http,
                                  const struct provider_settings *s)
{
    struct llm_provider *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->provider.ops = ops;
    if (llm__provider_init(p, http, s) < 0) {
        llm_provider_free(&p->provider);
        return NULL;
    }
    return &p->provider;
}

void llm_provider_free(struct provider *provider)
{
    struct llm_provider *p = provider->impl;
    free(p->name);
    free(p->base_url);
    free(p->api_key);
    free(p->api_version);
    for (size_t i = 0; i < p->nhdrs; i++) {
        free(p->hdr_names[i]);
        free(p->hdr_values[i]);
    }
    free(p->hdr_names);
    free(p->hdr_values);
    free(p);
}

int64_t llm_retry_after_ms(const char *value)
{
    if (value == NULL || value[0] == '\0')
        return -1;
    int64_t ms = -1;
    int rc = text_header_decimal(value, 1000, LLM_RETRY_AFTER_MAX_MS, &ms);
    if (rc == 0)
        return ms;
    if (rc == HB_EOVERFLOW) {
        log_warn("llm.retry_after_refused", "problem=longer than a day action=own backoff");
        return -1;
    }
    time_t when = curl_getdate(value, NULL);
    if (when < 0)
        return -1;
    time_t now = time(NULL);
    if (when <= now)
        return 0;
    if (when - now > LLM_RETRY_AFTER_MAX_MS / 1000) {
        log_warn("llm.retry_after_refused", "problem=longer than a day action=own backoff");
        return -1;
    }
    return (int64_t)(when - now) * 1000;
}

/* ---- a call ------------------------------------------------------------- */

static void llm__call_free(struct provider_call *call)
{
    stream_decoder_free(call->dec);
    free(call->image);
    free(call);
}

void llm_call_image_set(struct provider_call *call, unsigned char *bytes, size_t len)
{
    free(call->image);
    call->image = bytes;
    call->image_len = len;
    call->image_mime = "image/png";
    if (len >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF)
        call->image_mime = "image/jpeg";
    else if (len >= 12 && memcmp(bytes, "RIFF", 4) == 0 && memcmp(bytes + 8, "WEBP", 4) == 0)
        call->image_mime = "image/webp";
}

/* The provider's own message from an error body ({"error": {"message":
 * ...}} for both wire formats), cut short; "" when there is none. */
static void llm__error_message(const char *body, size_t len, char *out, size_t cap)
{
    out[0] = '\0';
    cJSON *json = cJSON_ParseWithLength(body, len);
    if (json == NULL)
        return;
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(json, "error");
    const cJSON *msg = cJSON_IsObject(err)   ? cJSON_GetObjectItemCaseSensitive(err, "message")
                       : cJSON_IsString(err) ? err
                                             : NULL;
    if (cJSON_IsString(msg))
        snprintf(out, cap, "%s", msg->valuestring);
    cJSON_Delete(json);
}

/* A non-2xx status as a result the engine acts on. */
static void llm__status_result(struct provider_call *call, struct http_request *req,
                               struct provider_result *res)
{
    int st = http_request_status(req);
    char msg[120];
    llm__error_message(call->errbody, call->errlen, msg, sizeof(msg));
    res->rc = HB_EHTTP;
    res->http_status = st;
    if (st == 429 || st >= 500) {
        res->retryable = true;
        /* retry-after-ms (OpenAI's) is finer; one that does not parse is
         * no hint, so Retry-After, else the engine's own backoff, decides. */
        const char *ms = http_request_header(req, "retry-after-ms");
        int64_t wait = -1;
        if (ms == NULL || text_header_decimal(ms, 1, LLM_RETRY_AFTER_MAX_MS, &wait) != 0)
            wait = llm_retry_after_ms(http_request_header(req, "retry-after"));
        res->retry_after_ms = wait;
        snprintf(call->err, sizeof(call->err), "%s is %s (HTTP %d)%s%s", call->p->name,
                 st == 429 ? "rate limiting requests" : "having trouble", st, msg[0] ? ": " : "",
                 msg);
        return;
    }
    if (st == 401 || st == 403)
        snprintf(call->err, sizeof(call->err),
                 "%s refused the API key (HTTP %d); an operator should check api_key in "
                 "[provider \"%s\"]%s%s",
                 call->p->name, st, call->p->name, msg[0] ? ": " : "", msg);
    else if (st == 404)
        snprintf(call->err, sizeof(call->err),
                 "%s does not know this model or URL (HTTP 404); an operator should check "
                 "upstream and base_url%s%s",
                 call->p->name, msg[0] ? ": " : "", msg);
    else
        snprintf(call->err, sizeof(call->err), "%s refused the request (HTTP %d)%s%s",
                 call->p->name, st, msg[0] ? ": " : "", msg);
}

static void llm__done(struct http_request *req, int rc, void *data)
{
    struct provider_call *call = data;
    call->req = NULL;
    struct provider_result res = {.retry_after_ms = -1, .error = ""};
    res.http_status = http_request_status(req);
    int st = res.http_status;
    if (call->dec_rc != 0 && !call->cancelled) {
        /* The decoder stopped the stream: a remote error or bad data. */
        rc = call->dec_rc;
        res.rc = rc;
        res.retryable = rc == HB_EHTTP && call->remote_retryable;
        if (call->err[0] == '\0')
            snprintf(call->err, sizeof(call->err), "%s sent a broken stream: %s", call->p->name,
                     stream_decoder_error(call->dec));
    } else if (rc == HB_ECANCELED || call->cancelled) {
        res.rc = HB_ECANCELED;
        snprintf(call->err, sizeof(call->err), "cancelled");
    } else if (rc == HB_ETIMEOUT) {
        res.rc = rc;
        snprintf(call->err, sizeof(call->err), "%s did not answer in time", call->p->name);
    } else if (rc == HB_EOVERFLOW) {
        res.rc = rc;
        snprintf(call->err, sizeof(call->err), "%s sent a result larger than allowed",
                 call->p->name);
    } else if (rc < 0 && call->dec != NULL && st >= 200 && st <= 299) {
        res.rc = HB_EPROTO;
        snprintf(call->err, sizeof(call->err), "%s ended the stream early (%s)", call->p->name,
                 http_request_error(req));
    } else if (rc < 0) {
        res.rc = rc;
        snprintf(call->err, sizeof(call->err), "%s could not be reached: %s", call->p->name,
                 http_request_error(req));
    } else if (st < 200 || st > 299) {
        if (call->dec == NULL || call->follow) {
            size_t len;
            const char *body = http_request_body(req, &len);
            call->errlen = len < sizeof(call->errbody) ? len : sizeof(call->errbody);
            memcpy(call->errbody, body, call->errlen);
        }
        llm__status_result(call, req, &res);
    } else if (call->dec != NULL) {
        res.rc = stream_decoder_finish(call->dec);
        if (res.rc != 0)
            snprintf(call->err, sizeof(call->err), "%s ended the stream early: %s", call->p->name,
                     stream_decoder_error(call->dec));
    } else {
        size_t len;
        const char *body = http_request_body(req, &len);
        res.rc = call->on_body(call, body, len, &res);
        if (res.rc == 1)
            return; /* a follow-up request is under way */
    }
    res.error = call->err;
    if (res.rc == 0) {
        res.image = call->image;
        res.image_len = call->image_len;
        res.image_mime = call->image_mime;
    }
    call->ev->done(call->data, &res);
    llm__call_free(call);
}

/* Whether one of the words names the error: a substring of type or code. */
static bool llm__error_names(const char *type, const char *code, const char *const *words)
{
    for (size_t i = 0; words[i] != NULL; i++) {
        if (strstr(type, words[i]) != NULL || strstr(code, words[i]) != NULL)
            return true;
    }
    return false;
}

enum llm_error_class llm_error_classify(const char *type, const char *code)
{
    /* Billing and quota first: "insufficient_quota" must not be retried
     * although OpenAI sends it with HTTP 429. */
    static const char *const billing[] = {"insufficient_quota", "billing", "credit", NULL};
    static const char *const auth[] = {"authentication", "invalid_api_key", "permission",
                                       "unauthorized",   "forbidden",       NULL};
    static const char *const retry[] = {"rate_limit", "overloaded",  "server_error", "api_error",
                                        "timeout",    "unavailable", "internal",     NULL};
    static const char *const request[] = {"invalid_request", "not_found",   "context_length",
                                          "invalid",         "unsupported", NULL};
    if (type == NULL)
        type = "";
    if (code == NULL)
        code = "";
    if (llm__error_names(type, code, billing))
        return LLM_ERROR_REQUEST;
    if (llm__error_names(type, code, auth))
        return LLM_ERROR_AUTH;
    /* OpenAI's rate-limit errors carry the limit's unit as their type. */
    if (llm__error_names(type, code, retry) || strcmp(type, "requests") == 0 ||
        strcmp(type, "tokens") == 0)
        return LLM_ERROR_RETRY;
    if (llm__error_names(type, code, request))
        return LLM_ERROR_REQUEST;
    return LLM_ERROR_OTHER;
}

static int llm__step(const struct stream_step *step, void *data)
{
    struct provider_call *call = data;
    switch (step->kind) {
    case STREAM_STEP_TEXT:
        if (step->text_len > 0)
            call->ev->text(call->data, step->text, step->text_len);
        break;
    case STREAM_STEP_USAGE:
        call->ev->usage(call->data, step->input_tokens, step->output_tokens);
        break;
    case STREAM_STEP_ERROR: {
        const char *type = step->error_type != NULL ? step->error_type : "";
        const char *code = step->error_code != NULL ? step->error_code : "";
        const char *msg = step->error_message != NULL ? step->error_message : "";
        enum llm_error_class cls = llm_error_classify(type, code);
        call->remote_retryable = cls == LLM_ERROR_RETRY;
        const char *what = code[0] != '\0' && strcmp(code, type) != 0 ? code : type;
        if (cls == LLM_ERROR_AUTH)
            snprintf(call->err, sizeof(call->err),
                     "%s refused the API key mid-stream (%s); an operator should check api_key "
                     "in [provider \"%s\"]",
                     call->p->name, what, call->p->name);
        else if (cls == LLM_ERROR_REQUEST)
            snprintf(call->err, sizeof(call->err),
                     "%s refused the request mid-stream (%s); an operator should check the "
                     "model's upstream and limits: %.120s",
                     call->p->name, what, msg);
        else
            snprintf(call->err, sizeof(call->err), "%s reported an error mid-stream: %s%s%.160s",
                     call->p->name, what, what[0] && msg[0] ? ": " : "", msg);
        break;
    }
    default:
        break;
    }
    return 0;
}

static int llm__data(struct http_request *req, const char *bytes, size_t len, void *data)
{
    struct provider_call *call = data;
    int st = http_request_status(req);
    if (st < 200 || st > 299) {
        size_t room = sizeof(call->errbody) - call->errlen;
        size_t n = len < room ? len : room;
        memcpy(call->errbody + call->errlen, bytes, n);
        call->errlen += n;
        return 0;
    }
    int rc = stream_decoder_feed(call->dec, bytes, len);
    if (rc != 0) {
        call->dec_rc = rc;
        return rc < 0 ? rc : HB_EPROTO;
    }
    return 0;
}

static int llm__request_add_headers(struct provider_call *call, struct http_request *req,
                                    const char *const *hdrs)
{
    int rc = 0;
    for (size_t i = 0; hdrs != NULL && hdrs[i] != NULL && rc == 0; i += 2)
        rc = http_request_header_add(req, hdrs[i], hdrs[i + 1]);
    for (size_t i = 0; i < call->p->nhdrs && rc == 0; i++)
        rc = http_request_header_add(req, call->p->hdr_names[i], call->p->hdr_values[i]);
    return rc;
}

int llm_call_start(struct llm_provider *p, const char *path, const char *const *hdrs,
                   const cJSON *json, uint64_t timeout_ms, int proto, llm_body_fn on_body,
                   const struct provider_events *ev, void *data, struct provider_call **out)
{
    struct provider_call *call = calloc(1, sizeof(*call));
    if (call == NULL)
        return HB_ENOMEM;
    call->p = p;
    call->ev = ev;
    call->data = data;
    call->on_body = on_body;
    int rc = 0;
    char *url = NULL;
    if (asprintf(&url, "%s%s", p->base_url, path) < 0) {
        free(call);
        return HB_ENOMEM;
    }
    struct http_request *req = http_request_new(p->http, "POST", url);
    free(url);
    if (req == NULL) {
        free(call);
        return HB_ENOMEM;
    }
    if (proto >= 0) {
        call->dec = stream_decoder_new((enum stream_protocol)proto, 0, llm__step, call);
        if (call->dec == NULL)
            rc = HB_ENOMEM;
        else
            http_request_stream_set(req, NULL, llm__data);
        if (rc == 0)
            rc = http_request_header_add(req, "Accept", "text/event-stream");
    }
    if (rc == 0)
        rc = llm__request_add_headers(call, req, hdrs);
    if (rc == 0)
        rc = http_request_json_set(req, json);
    if (rc < 0) {
        http_request_free(req);
        llm__call_free(call);
        return rc;
    }
    http_request_timeout_set(req, timeout_ms > 0 ? timeout_ms : 120000, 0);
    call->req = req;
    rc = http_request_start(req, llm__done, call);
    if (rc < 0) {
        llm__call_free(call);
        return rc;
    }
    *out = call;
    return 0;
}

int llm_call_follow(struct provider_call *call, const char *url, size_t max_bytes,
                    uint64_t timeout_ms)
{
    struct http_request *req = http_request_new(call->p->http, "GET", url);
    if (req == NULL)
        return HB_EINVAL;
    http_request_max_body_set(req, max_bytes);
    http_request_timeout_set(req, timeout_ms > 0 ? timeout_ms : 60000, 0);
    call->follow = true;
    call->errlen = 0;
    call->req = req;
    int rc = http_request_start(req, llm__done, call);
    if (rc < 0)
        call->req = NULL;
    return rc;
}

int llm_body_extra_merge(cJSON *body, const char *extra)
{
    if (extra == NULL || extra[0] == '\0')
        return 0;
    cJSON *json = cJSON_Parse(extra);
    if (!cJSON_IsObject(json)) {
        cJSON_Delete(json);
        return HB_EINVAL;
    }
    int rc = 0;
    while (json->child != NULL && rc == 0) {
        cJSON *item = cJSON_DetachItemViaPointer(json, json->child);
        if (item->string == NULL || provider_extra_body_key_fixed(item->string)) {
            cJSON_Delete(item);
            continue;
        }
        /* The key's name moves with the item; the old one, if any, goes. */
        cJSON_DeleteItemFromObjectCaseSensitive(body, item->string);
        if (!cJSON_AddItemToObject(body, item->string, item)) {
            cJSON_Delete(item);
            rc = HB_ENOMEM;
        }
    }
    cJSON_Delete(json);
    return rc;
}

void llm_call_cancel(struct provider_call *call)
{
    call->cancelled = true;
    if (call->req != NULL)
        http_request_cancel(call->req);
}

int llm_body_sampling_add(cJSON *body, const struct provider_request *req, const char *stop_key)
{
    if (req->temperature_set &&
        cJSON_AddNumberToObject(body, "temperature", req->temperature) == NULL)
        return HB_ENOMEM;
    if (req->top_p_set && cJSON_AddNumberToObject(body, "top_p", req->top_p) == NULL)
        return HB_ENOMEM;
    if (req->nstop > 0) {
        cJSON *stop = cJSON_CreateStringArray(req->stop, (int)req->nstop);
        if (stop == NULL || !cJSON_AddItemToObject(body, stop_key, stop)) {
            cJSON_Delete(stop);
            return HB_ENOMEM;
        }
    }
    return llm_body_extra_merge(body, req->extra_body);
}

char *llm_base64(const char *prefix, const unsigned char *data, size_t len)
{
    /* EVP_EncodeBlock takes an int length and writes 4 bytes per 3, then a NUL. */
    if (len > (size_t)INT_MAX / 4 * 3 - 3)
        return NULL;
    size_t plen = strlen(prefix);
    size_t enc = (len + 2) / 3 * 4;
    char *out = malloc(plen + enc + 1);
    if (out == NULL)
        return NULL;
    memcpy(out, prefix, plen);
    int n = EVP_EncodeBlock((unsigned char *)out + plen, data, (int)len);
    if (n < 0) {
        free(out);
        return NULL;
    }
    out[plen + (size_t)n] = '\0';
    return out;
}
