/* A model provider, as the generation engine sees it: a small vtable.
 *
 * Implementations live in adapters/ (openai, anthropic, demo); the daemon
 * builds them from the configuration and hands them to core/ inside a
 * catalog (core/catalog.h). core/ never includes an adapter.
 *
 * One call is one attempt at one model: the engine does retries, fallbacks
 * and accounting. A call reports text deltas and usage as they arrive, then
 * exactly one done event, always from the loop and never from inside
 * start() or cancel(). */
#ifndef HB_PROVIDER_H
#define HB_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum provider_modality {
    PROVIDER_TEXT = 0,
    PROVIDER_IMAGE = 1,
};

/** One turn of a conversation. Borrowed for the duration of start(). */
struct provider_message {
    const char *role;    /* "user" or "assistant" */
    const char *content; /* NUL-terminated text */
};

/** An image sent with the prompt to a model that sees images. Borrowed
 *  for the duration of start(). */
struct provider_image {
    const unsigned char *data; /* the file's bytes */
    size_t len;
    const char *mime; /* "image/png", "image/jpeg", "image/webp" or "image/gif" */
};

/** Which body key carries the output cap on an OpenAI-compatible wire.
 *  Anthropic always sends max_tokens. */
enum provider_max_tokens_field {
    PROVIDER_MAX_TOKENS_AUTO = 0,       /* by model id (adapters/openai/openai.h) */
    PROVIDER_MAX_TOKENS = 1,            /* "max_tokens" */
    PROVIDER_MAX_COMPLETION_TOKENS = 2, /* "max_completion_tokens" (o-series, GPT-5) */
};

/** Most stop sequences a request carries (OpenAI takes 4, Anthropic more). */
#define PROVIDER_STOP_MAX 16

/** What to generate. Everything is borrowed for the duration of start();
 *  a provider copies what it keeps. */
struct provider_request {
    enum provider_modality modality;
    const char *model;                       /* the upstream model id */
    const struct provider_message *messages; /* TEXT: oldest first, last is the prompt */
    size_t nmessages;
    const char *prompt;        /* IMAGE: the prompt */
    unsigned width, height;    /* IMAGE: pixels */
    int64_t max_output_tokens; /* TEXT: cap, always sent */
    uint64_t timeout_ms;       /* the whole attempt */
    /* TEXT sampling and shaping; each is sent only when set. */
    const char *system;      /* system prompt; NULL or "": none. OpenAI-compatible: a first
                                "system" message; Anthropic: the top-level "system" field */
    bool temperature_set;    /* send temperature */
    double temperature;      /* 0 to 2 (Anthropic: 0 to 1) */
    bool top_p_set;          /* send top_p */
    double top_p;            /* 0 to 1 */
    const char *const *stop; /* stop sequences, nstop of them (at most PROVIDER_STOP_MAX) */
    size_t nstop;
    enum provider_max_tokens_field max_tokens_field; /* OpenAI-compatible only */
    const struct provider_image *images; /* TEXT: images that go with the last message (the
                                            prompt), nimages of them; the model sees images */
    size_t nimages;
    const char *extra_body; /* a JSON object's text merged into the body (TEXT and IMAGE);
                               NULL: none. Its keys are added or replace the adapter's, except
                               provider_extra_body_key_fixed(), which it never overrides */
};

/** Whether extra_body may not set a body key: "model", "messages",
 *  "stream", "system" and "prompt" are what the engine decides. */
static inline bool provider_extra_body_key_fixed(const char *key)
{
    static const char *const fixed[] = {"model", "messages", "stream", "system", "prompt"};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        if (strcmp(key, fixed[i]) == 0)
            return true;
    }
    return false;
}

/** How an attempt ended. Borrowed by the done callback for its duration. */
struct provider_result {
    int rc;                     /* 0, or HB_ETIMEOUT, HB_EHTTP, HB_EPROTO, HB_ECANCELED, ... */
    int http_status;            /* the remote's status, 0 when none arrived */
    bool retryable;             /* 429, 5xx, overloaded: the same request may work later */
    int64_t retry_after_ms;     /* the remote asked to wait this long; -1 when it did not say */
    const char *error;          /* for operators and members: never prompt or output text; "" */
    const unsigned char *image; /* IMAGE: the picture's bytes */
    size_t image_len;
    const char *image_mime; /* IMAGE: "image/png", ... */
};

/** Events of one call; `data` is the caller's. */
struct provider_events {
    void (*text)(void *data, const char *delta, size_t len);
    /** Token counts; a later report supersedes an earlier one; -1: not said. */
    void (*usage)(void *data, long input_tokens, long output_tokens);
    /** The end, exactly once. The call is gone when this returns. */
    void (*done)(void *data, const struct provider_result *res);
};

struct provider;
struct provider_call;

struct provider_ops {
    /** Start one attempt. Returns 0 and *out (valid until done fires), or a
     *  negative code and no events follow. */
    int (*start)(struct provider *p, const struct provider_request *req,
                 const struct provider_events *ev, void *data, struct provider_call **out);
    /** Stop a call; done follows (later, from the loop) with HB_ECANCELED
     *  unless it had already ended. */
    void (*cancel)(struct provider_call *call);
    /** Free the provider. No call may be running. */
    void (*free)(struct provider *p);
};

struct provider {
    const struct provider_ops *ops;
    void *impl;
    bool demo; /* answers offline, labelled as a demo wherever it appears */
};

/** What the daemon reads from [provider "NAME"] for an adapter. Borrowed by
 *  the constructors, which copy what they keep. */
struct provider_settings {
    const char *name;
    const char *base_url;    /* without a trailing slash preferred; one is tolerated */
    const char *api_key;     /* NULL: none sent */
    const char *headers;     /* extra headers "Name: value; Name2: value", or NULL */
    const char *api_version; /* anthropic-version; NULL: "2023-06-01" */
    size_t max_image_bytes;  /* largest image fetched from a URL result; 0: 20 MiB */
};

#endif
