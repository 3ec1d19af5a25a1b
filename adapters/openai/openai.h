/* The OpenAI-compatible provider: chat completions streamed over SSE and
 * image generation, for OpenAI and every server that speaks its shape
 * (Ollama, llama.cpp server, vLLM, LM Studio).
 *
 * Chat: POST {base_url}/chat/completions with stream, stream_options.
 * include_usage and the output cap (max_tokens, or max_completion_tokens:
 * see openai_max_tokens_key); the system prompt as a first message with the
 * "system" role; temperature, top_p and stop when set; then the model's
 * extra_body merged in. "Authorization: Bearer <key>" when a key is set. Images: POST
 * {base_url}/images/generations; a b64_json result is decoded, a url result is fetched (at most
 * max_image_bytes). */
#ifndef HB_ADAPTERS_OPENAI_H
#define HB_ADAPTERS_OPENAI_H

#include "net/http.h"
#include "core/provider.h"

#include <cjson/cJSON.h>

/** A provider on the shared client (borrowed; must outlive it). Returns
 *  NULL when out of memory or for a malformed headers setting. */
struct provider *openai_provider_new(struct http_client *http, const struct provider_settings *s);

/** The body key of the output cap: the field asked for, or with
 *  PROVIDER_MAX_TOKENS_AUTO "max_completion_tokens" for model ids that
 *  begin with "o1", "o3", "o4" or "gpt-5" (OpenAI's reasoning and GPT-5
 *  models refuse max_tokens) and "max_tokens" for every other id. */
const char *openai_max_tokens_key(enum provider_max_tokens_field field, const char *model);

/** The chat completions body of a TEXT request (the caller frees it; its
 *  "messages" is a cJSON_Raw item, the array already written as text), or
 *  NULL when out of memory or extra_body is not a JSON object. */
cJSON *openai_chat_body(const struct provider_request *req);

#endif
