/* The OpenAI-compatible provider: chat completions streamed over SSE and
 * image generation, for OpenAI and every server that speaks its shape
 * (Ollama, llama.cpp server, vLLM, LM Studio).
 *
 * Chat: POST {base_url}/chat/completions with stream, stream_options.
 * include_usage and max_tokens; "Authorization: Bearer <key>" when a key is
 * set. Images: POST {base_url}/images/generations; a b64_json result is
 * decoded, a url result is fetched (at most max_image_bytes). */
#ifndef HB_ADAPTERS_OPENAI_H
#define HB_ADAPTERS_OPENAI_H

#include "net/http.h"
#include "core/provider.h"

/** A provider on the shared client (borrowed; must outlive it). Returns
 *  NULL when out of memory or for a malformed headers setting. */
struct provider *openai_provider_new(struct http_client *http, const struct provider_settings *s);

#endif
