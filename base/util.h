/* The few macros every layer needs. */
#ifndef HB_UTIL_H
#define HB_UTIL_H

#include <stddef.h>

/** The struct of type `type` whose field `member` is at ptr (libuv, h2o):
 *  how a callback recovers its owner from an embedded handle. */
#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/** Elements in a true array (not a pointer). */
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
