/* Telegram updates (adapters/telegram/update.c), as the webhook or a poll
 * hands them over: any JSON is dispatched, skipped or refused, never a
 * crash. The adapter is never started; what it sends goes to a closed
 * port and is given up quickly, so nothing piles up between inputs. */
#include "tests/fuzz/fuzz.h"

#include "adapters/telegram/telegram.h"
#include "base/log.h"
#include "core/command.h"
#include "core/core.h"
#include "net/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uv_loop_t fuzz_loop;
static struct http_client *fuzz_http;
static struct core fuzz_core;
static struct adapter *fuzz_tg;

static void fuzz_dispatch(void *data, struct invocation *inv, const char *args)
{
    (void)data;
    if (args != NULL && args[0] == 'x')
        reply_text(inv->reply, false, "ok");
    reply_finish(inv->reply);
    invocation_clear(inv);
}

static void fuzz_ended(void *data, struct adapter *a)
{
    (void)data;
    (void)a;
}

static int fuzz_setup(void)
{
    if (fuzz_tg != NULL)
        return 0;
    FILE *quiet = fopen("/dev/null", "w");
    log_configure(LOG_ERROR, false, quiet);
    http_global_init();
    if (uv_loop_init(&fuzz_loop) != 0 || http_client_new(&fuzz_loop, NULL, &fuzz_http) != 0)
        abort();
    fuzz_core.bot_name = "HAI Bot";
    struct telegram_options o = {.token = "123456:FUZZ-token-abcdef",
                                 .api_base = "http://127.0.0.1:9",
                                 .admins = "1, 2",
                                 .stars_packages = "50:500",
                                 .pacing_off = 1,
                                 .backoff_min_ms = 1,
                                 .backoff_max_ms = 1,
                                 .webhook = 1,
                                 .webhook_secret = "fuzz-secret_0123456789"};
    struct adapter_host host = {.dispatch = fuzz_dispatch, .ended = fuzz_ended, .data = NULL};
    fuzz_tg = telegram_new(&fuzz_loop, fuzz_http, &fuzz_core, &o, &host);
    if (fuzz_tg == NULL)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fuzz_setup() != 0)
        return 0;
    (void)telegram_update_feed(fuzz_tg, (const char *)data, size);
    for (int i = 0; i < 4; i++)
        uv_run(&fuzz_loop, UV_RUN_NOWAIT);
    return 0;
}
