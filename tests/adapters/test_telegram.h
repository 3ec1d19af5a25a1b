/* The Telegram adapter tests' fixture: a loop, the fake Bot API, a ledger,
 * the adapter under test and the waits that drive them. Shared by the
 * test_telegram*.c files. */
#ifndef HB_TEST_TELEGRAM_H
#define HB_TEST_TELEGRAM_H

#include "tests/test.h"
#include "adapters/telegram/telegram.h"
#include "net/http.h"
#include "bot/router.h"
#include "core/core.h"
#include "base/error.h"
#include "core/ledger.h"
#include "core/member.h"
#include "base/log.h"
#include "base/metrics.h"
#include "core/state.h"
#include "tests/core/ledger_helpers.h"
#include "tests/fake/telegram_api.h"
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN "123456:TEST-token-abcdef"
#define GUARD_MS 10000

enum fx_mode { FX_ROUTER, FX_CUSTOM };

struct fx {
    struct lt lt;
    struct http_client *http;
    struct tgapi *api;
    struct core core;
    struct router *router;
    struct adapter *tg;
    struct telegram_options opts;
    enum fx_mode mode;
    int ended;
    int closed;
    /* what the host saw */
    int64_t events[256];
    size_t nevents;
    char last_args[512];
    char last_ref[80];
    bool last_admin;
    /* the streaming handler */
    uv_timer_t stream_timer;
    struct reply *stream_reply;
    int stream_step;
    size_t stream_cut; /* bytes of a streamed answer shown so far */
    /* a test's own handler in place of the router or fx_custom, or NULL */
    void (*handler)(struct fx *fx, struct invocation *inv, const char *args);
};

void fx_init(struct fx *fx, const char *api_token);
void fx_start(struct fx *fx);
/** Another adapter on fx's loop, ledger and Bot API, started (a second
 *  daemon's, say); close it with fx_adapter_close_one. */
struct adapter *fx_adapter_open(struct fx *fx);
void fx_adapter_close_one(struct fx *fx, struct adapter *a);
/** Run the loop until cond(fx, arg) holds (bounded by the guard timer). */
void fx_until(struct fx *fx, bool (*cond)(struct fx *fx, void *arg), void *arg);
void fx_run_for(struct fx *fx, uint64_t ms);
void fx_wait_count(struct fx *fx, const char *method, size_t n);
void fx_adapter_close(struct fx *fx);
void fx_done(struct fx *fx);
const struct tgapi_call *fx_call(struct fx *fx, const char *method, size_t n);
void fx_dm(struct fx *fx, int64_t user, const char *text);
void fx_group(struct fx *fx, int64_t chat, int64_t user, const char *text);

void fx_group_from(struct fx *fx, int64_t chat, int64_t user, const char *username, int64_t msg_id,
                   const char *text, const char *reply_to, const char *extra);
bool fx_handled(struct fx *fx, void *arg);
bool fx_some_call_says(struct fx *fx, void *arg);
int fx_account_rc(struct fx *fx, const char *account);
size_t fx_sends_to(struct fx *fx, int64_t chat, const char **out, size_t n);

#endif
