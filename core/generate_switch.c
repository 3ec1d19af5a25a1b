/* Per-group model switches: the models a group's admins turned off with
 * /admin model, kept in the state table (GENERATE_NS_SCOPE_MODEL). */
#include "core/generate_internal.h"

#include "core/core.h"
#include "core/state.h"
#include "base/error.h"
#include "base/text.h"

#include <stdlib.h>
#include <string.h>

/* Did this group's admins turn the model off (/admin model disable)? */
bool job__scope_off(const struct job *job, const char *name)
{
    return generate_scope_off_has(job->scope_off, name);
}

bool generate_scope_off_has(const char *off, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = off != NULL ? strstr(off, name) : NULL; p != NULL;
         p = strstr(p + 1, name)) {
        if (p[-1] == '\n' && p[n] == '\n')
            return true;
    }
    return false;
}

struct scope_off_op {
    void (*cb)(char *off, void *data);
    void *data;
};

static void generate__scope_off_listed(int rc, const struct state_entry *e, size_t n, void *data)
{
    struct scope_off_op *op = data;
    struct text_buf off = {0};
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *name = strchr(e[i].key, '/');
        if (name != NULL && strcmp(e[i].value, "off") == 0)
            text_buf_add(&off, "\n%s", name + 1);
    }
    if (off.len > 0)
        text_buf_add(&off, "\n");
    op->cb(off.buf, op->data);
    free(op);
}

int generate_scope_off_load(struct core *core, const struct invocation *inv,
                            void (*cb)(char *off, void *data), void *data)
{
    if (inv->scope != COMMAND_SCOPE_GROUP || inv->scope_id[0] == '\0')
        return HB_ENOTFOUND;
    if (core->ledger == NULL)
        return HB_ECANCELED;
    struct scope_off_op *op = malloc(sizeof(*op));
    if (op == NULL)
        return HB_ENOMEM;
    op->cb = cb;
    op->data = data;
    char prefix[COMMAND_ID_MAX + 24];
    snprintf(prefix, sizeof(prefix), "%s:%s/", command_platform_name(inv->platform), inv->scope_id);
    int rc = state_list(ledger_store(core->ledger), GENERATE_NS_SCOPE_MODEL, prefix, 200,
                        generate__scope_off_listed, op);
    if (rc < 0)
        free(op);
    return rc;
}
