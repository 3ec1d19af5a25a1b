/* The C library's allocator, tuned for the daemon (base/heap.h).
 *
 * With its defaults, glibc gives memory back to the kernel whenever more
 * than 128 KiB lies free at the top of a heap, and asks for it again with
 * the next allocation that does not fit: the loop's working set (a job of
 * 8 KiB, a ledger operation of 2.6 KiB and libcurl's buffers for each of
 * the requests in flight) rises and falls by more than that with every
 * group commit, so the heap's top went back and forth through brk some
 * 850 times in the generation bench, and each page that came back was a
 * page fault again. The thresholds below keep up to 4 MiB free at a
 * heap's top and grow a heap 1 MiB at a time: the generation bench's loop
 * CPU time per job fell by about an eighth and its rate rose by a tenth
 * (README, "Tests and measurements"), with the resident memory of the
 * Telegram and Discord benches within 0.15 MiB of what it was.
 *
 * Setting either of those turns off glibc's sliding mmap threshold (which
 * otherwise rises to the largest block freed so far), so that one is set
 * too: blocks of 256 KiB and more (a large gateway payload) are mapped on
 * their own and unmapped when freed, as the first ones were before. */
#include "base/heap.h"

#include <malloc.h>

#define HB_HEAP_TRIM_THRESHOLD (4 << 20)
#define HB_HEAP_TOP_PAD (1 << 20)
#define HB_HEAP_MMAP_THRESHOLD (256 << 10)

void hb_heap_tune(void)
{
#ifdef __GLIBC__
    (void)mallopt(M_TRIM_THRESHOLD, HB_HEAP_TRIM_THRESHOLD);
    (void)mallopt(M_TOP_PAD, HB_HEAP_TOP_PAD);
    (void)mallopt(M_MMAP_THRESHOLD, HB_HEAP_MMAP_THRESHOLD);
#endif
}
