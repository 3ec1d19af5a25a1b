/* The Anthropic Messages provider: POST {base_url}/messages with stream and
 * max_tokens (always sent), headers x-api-key and anthropic-version; named
 * SSE events decoded by adapters/llm/stream.h. base_url is like
 * https://api.anthropic.com/v1. Text only. */
#ifndef HB_ADAPTERS_ANTHROPIC_H
#define HB_ADAPTERS_ANTHROPIC_H

#include "net/http.h"
#include "core/provider.h"

/** A provider on the shared client (borrowed). NULL when out of memory or
 *  for a malformed headers setting. */
struct provider *anthropic_provider_new(struct http_client *http,
                                        const struct provider_settings *s);

#endif
