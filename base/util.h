/* The few macros and helpers every layer needs. */
#ifndef HB_UTIL_H
#define HB_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/** The struct of type `type` whose field `member` is at ptr (libuv, h2o):
 *  how a callback recovers its owner from an embedded handle. */
#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/** Elements in a true array (not a pointer). */
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/** items, an array of *cap elements of size bytes, grown to hold more:
 *  twice as many, or `first` when it has none. Returns the array (perhaps
 *  moved) with *cap updated, or NULL when out of memory or past what a
 *  size_t counts (items and *cap then unchanged). */
static inline void *hb_grow(void *items, size_t *cap, size_t first, size_t size)
{
    size_t n = *cap != 0 ? *cap * 2 : first;
    if (n <= *cap || size == 0 || n > SIZE_MAX / size)
        return NULL;
    void *grown = realloc(items, n * size);
    if (grown != NULL)
        *cap = n;
    return grown;
}

#endif
