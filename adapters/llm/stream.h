/* Streaming replies from text generation providers, decoded into neutral
 * steps.
 *
 * A decoder sits on an SSE parser (adapters/llm/sse.h) and understands one wire
 * protocol:
 *
 * - OpenAI-compatible chat completions (OpenAI, Ollama, llama.cpp server,
 *   vLLM, LM Studio): `data: {chunk}` events, text in
 *   choices[0].delta.content, choices[0].finish_reason, a usage chunk whose
 *   choices may be empty or null, `data: [DONE]`, and an `{"error": {...}}`
 *   object that can arrive mid-stream inside an HTTP 200.
 * - Anthropic Messages: named events message_start (input tokens),
 *   content_block_delta with text_delta, message_delta (stop_reason, output
 *   tokens), message_stop, ping (ignored) and error.
 *
 * Either way the caller sees the same steps: text deltas, a finish reason,
 * usage figures, the end marker, or a remote error. A stream that ends
 * without a finish reason is a failure, whatever came before.
 *
 * Text is always valid UTF-8: an emoji whose UTF-16 surrogate halves arrive
 * as escapes in two chunks is joined, and a truly lone surrogate becomes
 * U+FFFD. */
#ifndef HB_STREAM_H
#define HB_STREAM_H

#include <stdbool.h>
#include <stddef.h>

enum stream_protocol {
    STREAM_PROTOCOL_OPENAI = 0,    /* OpenAI-compatible chat completions */
    STREAM_PROTOCOL_ANTHROPIC = 1, /* Anthropic Messages */
};

enum stream_step_kind {
    STREAM_STEP_TEXT = 0,   /* a piece of the answer */
    STREAM_STEP_FINISH = 1, /* the model stopped; finish_reason says why */
    STREAM_STEP_USAGE = 2,  /* token counts; later steps supersede earlier ones */
    STREAM_STEP_DONE = 3,   /* the end marker: [DONE] or message_stop */
    STREAM_STEP_ERROR = 4,  /* the remote reported an error inside the stream */
};

/** One decoded step. Strings are borrowed and valid only during the
 *  callback; fields not used by the kind are NULL or -1. */
struct stream_step {
    enum stream_step_kind kind;
    const char *text;          /* TEXT: the delta (NUL-terminated) */
    size_t text_len;           /* TEXT: bytes in text */
    const char *finish_reason; /* FINISH: as sent: "stop", "length", "end_turn"... */
    long input_tokens;         /* USAGE: prompt tokens, -1 when this step does not say */
    long output_tokens;        /* USAGE: completion tokens so far, -1 when this step does not say */
    const char
        *error_type; /* ERROR: the provider's type ("overloaded_error"), else its code, or "" */
    const char *error_code;    /* ERROR: the provider's code ("rate_limit_exceeded"), or "" */
    const char *error_message; /* ERROR: the provider's message, or "" */
};

/** Called for every step. Return 0 to go on; any other value stops the
 *  decoder and stream_decoder_feed() returns it. */
typedef int (*stream_step_cb)(const struct stream_step *step, void *data);

struct stream_decoder;

/** Create a decoder for one response stream. max_event bounds one SSE event
 *  in bytes (0: SSE_EVENT_MAX_DEFAULT). cb receives the steps with `data`
 *  (borrowed). Returns NULL for an unknown protocol or out of memory. */
struct stream_decoder *stream_decoder_new(enum stream_protocol proto, size_t max_event,
                                          stream_step_cb cb, void *data);

/** Free the decoder (NULL is allowed). */
void stream_decoder_free(struct stream_decoder *d);

/** On: every event is parsed as a cJSON tree, as the events the decoder
 *  cannot read in place are (tests compare the two ways). */
void stream_decoder_tree_only(struct stream_decoder *d, bool on);

/** How many events were parsed as a cJSON tree. */
size_t stream_decoder_trees(const struct stream_decoder *d);

/** Feed response body bytes (borrowed), split anywhere. Returns 0;
 *  HB_EPROTO for malformed JSON or a chunk of the wrong shape; HB_EHTTP when
 *  the remote reported an error in the stream (already delivered as a
 *  STREAM_STEP_ERROR); HB_EOVERFLOW for an oversized event; HB_ENOMEM; or
 *  the callback's non-zero return. Failures are sticky, and
 *  stream_decoder_error() describes them. */
int stream_decoder_feed(struct stream_decoder *d, const char *buf, size_t len);

/** The response body has ended. Returns 0 when the stream was complete (a
 *  finish reason arrived), HB_EPROTO when it ended without one (a cut
 *  connection), or the sticky failure of an earlier feed. */
int stream_decoder_finish(struct stream_decoder *d);

/** A short description of the last failure for logs ("" when none).
 *  Borrowed from the decoder. It may quote the remote's error message but
 *  never the generated text. */
const char *stream_decoder_error(const struct stream_decoder *d);

#endif
