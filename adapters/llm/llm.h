/* What the HTTP model providers share: settings, the request on the shared
 * HTTP client, streaming through the decoders of adapters/llm/stream.h, and the
 * translation of HTTP failures into results the engine acts on (retry
 * after 429 and 5xx honouring Retry-After; fail at once, with a sentence
 * an operator can act on, on a bad key or an unknown model).
 *
 * Private to the provider adapters (adapters/openai, adapters/anthropic). */
#ifndef HB_ADAPTERS_LLM_H
#define HB_ADAPTERS_LLM_H

#include "net/http.h"
#include "core/provider.h"
#include "adapters/llm/stream.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#define LLM_ERROR_MAX 256

/** One HTTP provider: the settings the adapters read. */
struct llm_provider {
    struct provider provider;
    struct http_client *http; /* borrowed; outlives the provider */
    char *name;
    char *base_url;    /* without a trailing slash */
    char *api_key;     /* NULL: none */
    char *api_version; /* anthropic-version */
    char **hdr_names;  /* extra headers */
    char **hdr_values;
    size_t nhdrs;
    size_t max_image_bytes;
};

/** A provider speaking through ops, configured from settings (copied).
 *  Returns NULL when out of memory or a header is not "Name: value". */
struct provider *llm_provider_new(const struct provider_ops *ops, struct http_client *http,
                                  const struct provider_settings *s);
/** Free what llm_provider_new allocated (and the provider itself). */
void llm_provider_free(struct provider *provider);

/** A call's body parser in collecting mode: reads the whole 2xx body and
 *  fills res (image bytes stay owned by the call: see llm_call_image_set).
 *  Return 0 when res is final, 1 when it started a follow-up request with
 *  llm_call_follow (done comes later), or a negative code with call->err set. */
struct provider_call;
typedef int (*llm_body_fn)(struct provider_call *call, const char *body, size_t len,
                           struct provider_result *res);

struct provider_call {
    struct llm_provider *p;
    struct http_request *req;   /* the request under way */
    struct stream_decoder *dec; /* streaming mode */
    llm_body_fn on_body;        /* collecting mode */
    const struct provider_events *ev;
    void *data;
    int dec_rc; /* the decoder's failure, stopping the stream */
    bool cancelled;
    bool follow; /* the current request is a follow-up fetch */
    char err[LLM_ERROR_MAX];
    bool remote_retryable; /* a mid-stream error worth another try (overloaded) */
    char errbody[2048];    /* start of a failed response's body */
    size_t errlen;
    unsigned char *image;
    size_t image_len;
    const char *image_mime;
};

/** Make a POST of json (borrowed) to base_url + path with the provider's
 *  headers plus auth headers the caller adds through hdrs (name, value
 *  pairs, NULL-terminated). Streaming when proto >= 0, else collected and
 *  handed to on_body. Returns 0 and *out, or a negative code. */
int llm_call_start(struct llm_provider *p, const char *path, const char *const *hdrs,
                   const cJSON *json, uint64_t timeout_ms, int proto, llm_body_fn on_body,
                   const struct provider_events *ev, void *data, struct provider_call **out);

/** From inside on_body: GET url (a result's image), collected up to
 *  max_bytes, then handed to on_body again with call->follow set. */
int llm_call_follow(struct provider_call *call, const char *url, size_t max_bytes,
                    uint64_t timeout_ms);

/** Keep image bytes (taken over) and their kind on the call. */
void llm_call_image_set(struct provider_call *call, unsigned char *bytes, size_t len);

/** Merge a request's extra_body (a JSON object's text; NULL: nothing) into
 *  body: each key is added, or replaces the one already there, except the
 *  keys provider_extra_body_key_fixed() names, which are kept as they are.
 *  Returns 0, HB_EINVAL when the text is not a JSON object, or HB_ENOMEM. */
int llm_body_extra_merge(cJSON *body, const char *extra);

/** Add a text request's sampling settings to body as both wire formats
 *  spell them: temperature and top_p when set, the stop sequences under
 *  stop_key ("stop" or "stop_sequences") when any, then merge extra_body.
 *  Returns 0, HB_EINVAL (extra_body not a JSON object) or HB_ENOMEM. */
int llm_body_sampling_add(cJSON *body, const struct provider_request *req, const char *stop_key);

/** Standard base64 of len bytes (OpenSSL's EVP_EncodeBlock), behind
 *  prefix (may be ""): heap text, NULL when out of memory or too large. */
char *llm_base64(const char *prefix, const unsigned char *data, size_t len);

/** Cancel (the provider vtable's cancel). */
void llm_call_cancel(struct provider_call *call);

/** The longest wait a Retry-After may ask for (a day); a longer one, or a
 *  number that does not fit, is no usable hint. */
#define LLM_RETRY_AFTER_MAX_MS (24LL * 3600 * 1000)

/** Milliseconds from a Retry-After value (seconds, or an HTTP date), or -1
 *  when there is none, it does not parse or it exceeds
 *  LLM_RETRY_AFTER_MAX_MS. */
int64_t llm_retry_after_ms(const char *value);

/** What an error a provider reports (in a stream, or in an error body)
 *  asks of the engine, judged by its type and its code together. */
enum llm_error_class {
    LLM_ERROR_OTHER = 0,   /* unknown: fail this attempt, as a final error */
    LLM_ERROR_RETRY = 1,   /* rate limit, overloaded, server error: retry with backoff */
    LLM_ERROR_AUTH = 2,    /* the key is refused: fail at once; the operator must act */
    LLM_ERROR_REQUEST = 3, /* invalid request, unknown model, no quota: fail at once */
};

/** Classify by the provider's error type and code (either may be NULL or
 *  ""), e.g. {"type":"requests","code":"rate_limit_exceeded"} is
 *  LLM_ERROR_RETRY. */
enum llm_error_class llm_error_classify(const char *type, const char *code);

#endif
