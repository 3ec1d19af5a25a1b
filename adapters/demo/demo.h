/* The demo provider: answers offline, with no network and no key, so the
 * example configuration works anywhere. Text replies say plainly that they
 * come from a demo and stream in a few chunks on a timer, so progress is
 * visible; images are a small picture drawn from the prompt
 * (adapters/demo/png.h). */
#ifndef HB_ADAPTERS_DEMO_H
#define HB_ADAPTERS_DEMO_H

#include "core/provider.h"

#include <stdint.h>
#include <uv.h>

/** A demo provider on loop (borrowed; must outlive it). step_ms: pause
 *  between streamed chunks (0: none). Returns NULL when out of memory. */
struct provider *demo_provider_new(uv_loop_t *loop, uint64_t step_ms);

#endif
