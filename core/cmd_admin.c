/* Admin commands. */
#include "core/core.h"
#include "core/handlers.h"

void cmd_admin_reload(struct core *core, struct invocation *inv)
{
    if (core->host_ops == NULL || core->host_ops->reload == NULL) {
        reply_text(inv->reply, true, "Reloading is not available here.");
        reply_finish(inv->reply);
        return;
    }
    /* The host finishes the reply once the reload has a result. */
    core->host_ops->reload(core->host, inv->reply);
}
