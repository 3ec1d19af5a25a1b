/* See tests/core/router_fixture.h. */
#include "tests/core/router_fixture.h"

#include "tests/test.h"

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

int rfx_teardown(void **state)
{
    struct rfx *f = *state;
    reply_capture_close(&f->cap);
    router_free(f->router);
    lt_done(&f->lt);
    free(f);
    return 0;
}
