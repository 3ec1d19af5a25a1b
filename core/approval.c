/* The approval rules' small helpers: comma-separated lists and outcome
 * names. The queue itself is the engine's (core/generate_approval.c). */
#include "core/approval.h"

#include <stdio.h>
#include <string.h>

bool approval_list_at(const char *list, size_t i, char *buf, size_t cap)
{
    const char *p = list;
    size_t at = 0;
    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        const char *w = p;
        while (len > 0 && (*w == ' ' || *w == '\t')) {
            w++;
            len--;
        }
        while (len > 0 && (w[len - 1] == ' ' || w[len - 1] == '\t'))
            len--;
        if (len > 0) {
            if (at == i) {
                snprintf(buf, cap, "%.*s", (int)len, w);
                return true;
            }
            at++;
        }
        p = end != NULL ? end + 1 : NULL;
    }
    return false;
}

bool approval_list_has(const char *list, const char *name)
{
    char w[256];
    for (size_t i = 0; approval_list_at(list, i, w, sizeof(w)); i++) {
        if (strcmp(w, name) == 0)
            return true;
    }
    return false;
}

const char *approval_outcome_name(enum approval_outcome o)
{
    switch (o) {
    case APPROVAL_APPROVED:
        return "approved";
    case APPROVAL_EDITED:
        return "edited";
    case APPROVAL_REJECTED:
        return "rejected";
    case APPROVAL_TIMED_OUT:
        return "timed_out";
    }
    return "unknown";
}
