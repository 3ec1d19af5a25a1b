/* The Anthropic Messages provider: POST {base_url}/messages with stream and
 * max_tokens (always sent), the system prompt as the top-level "system"
 * field, temperature, top_p and stop_sequences when set, then the model's
 * extra_body merged in; headers x-api-key and anthropic-version; named SSE
 * events decoded by adapters/llm/stream.h. base_url is like
 * https://api.anthropic.com/v1. Text only. */
#ifndef HB_ADAPTERS_ANTHROPIC_H
#define HB_ADAPTERS_ANTHROPIC_H

#include "net/http.h"
#include "core/provider.h"

#include <cjson/cJSON.h>

/** A provider on the shared client (borrowed). NULL when out of memory or
 *  for a malformed headers setting. */
struct provider *anthropic_provider_new(struct http_client *http,
                                        const struct provider_settings *s);

/** The Messages body of a request (the caller frees it), or NULL when out
 *  of memory or extra_body is not a JSON object. */
cJSON *anthropic_messages_body(const struct provider_request *req);

#endif
