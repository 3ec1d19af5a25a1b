/* What the content filter's own files share. Nothing outside core/filter*.c
 * includes this. */
#ifndef HB_FILTER_INTERNAL_H
#define HB_FILTER_INTERNAL_H

#include <stddef.h>

/** Write a formatted message to err (NULL or errcap 0: nothing). */
void filter__err(char *err, size_t errcap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
