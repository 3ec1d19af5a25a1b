/* See tests/core/router_fixture.h. */
#include "tests/core/router_fixture.h"

#include "tests/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rfx_setup(void **state)
{
    struct rfx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    lt_init(&f->lt, true, true);
    f->core.bot_name = "Test Bot";
    f->core.ledger = f->lt.ledger;
    f->core.welcome_bonus = 100;
    memset(f->core.button_key, 7, sizeof(f->core.button_key));
    f->router = router_new(&f->core);
    *state = f;
    return 0;
}

void rfx_inv(struct invocation *inv, enum command_platform platform, const char *user,
             const char *scope)
{
    memset(inv, 0, sizeof(*inv));
    inv->platform = platform;
    snprintf(inv->user_id, sizeof(inv->user_id), "%s", user);
    if (scope != NULL) {
        inv->scope = COMMAND_SCOPE_GROUP;
        snprintf(inv->scope_id, sizeof(inv->scope_id), "%s", scope);
        snprintf(inv->channel_id, sizeof(inv->channel_id), "%s", scope);
    }
}

const char *rfx_run(struct rfx *f, struct invocation *inv, const char *line)
{
    reply_capture_close(&f->cap);
    reply_capture_init(&f->cap);
    snprintf(inv->event_id, sizeof(inv->event_id), "ev%d", ++f->event);
    inv->reply = &f->cap.reply;
    router_dispatch(f->router, inv, line);
    while (f->cap.finished == 0)
        uv_run(&f->lt.loop, UV_RUN_ONCE);
    return f->cap.text != NULL ? f->cap.text : "";
}

int rfx_teardown(void **state)
{
    struct rfx *f = *state;
    reply_capture_close(&f->cap);
    router_free(f->router);
    lt_done(&f->lt);
    free(f);
    return 0;
}
