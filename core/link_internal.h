/* The link directory's insides, shared by core/link.c (links, checks,
 * joining) and core/link_code.c (the codes, hashed off the loop). */
#ifndef HB_CORE_LINK_INTERNAL_H
#define HB_CORE_LINK_INTERNAL_H

#include "core/link.h"
#include "base/map.h"

#include <stdbool.h>

struct link_code_job;

struct link_dir {
    struct map *links; /* identity -> struct link_entry */
    struct map *busy;  /* identities whose link is being written -> link__busy_mark */
    bool refreshing;   /* a link_dir_refresh read is under way */
    bool again;        /* asked for while one was under way: read once more after it */
    /* Code jobs waiting for their hash, oldest first; the oldest is being
     * hashed when hashing is set. One at a time, so that they reach the
     * store in the order they came: a code voided in a group is gone
     * before anyone who read it there can take it. */
    struct link_code_job *hashq, *hashq_tail;
    bool hashing;
    struct link_waiter *waiters; /* link_when_idle's, newest first */
};

#endif
