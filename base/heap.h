/* The C library's allocator, tuned once for the daemon's pattern of use. */
#ifndef HAIBOT_BASE_HEAP_H
#define HAIBOT_BASE_HEAP_H

/** Set the allocator's thresholds (mallopt) for a long-running daemon:
 *  call once, first thing in main. Harmless to call again. */
void hb_heap_tune(void);

#endif
