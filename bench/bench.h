/* The benchmark harness: `make bench` runs every entry in bench/bench_list.h
 * (or those named on the command line: make bench BENCHES="ledger").
 * Each benchmark prints its figures as lines "name value unit" through
 * bench_report(). Benchmarks are measurements, not tests: they never fail a
 * build on a number, but they exit non-zero when they cannot run. */
#ifndef HB_BENCH_H
#define HB_BENCH_H

#include <stddef.h>
#include <stdint.h>

#define BENCH(name) int bench_##name(void);
#include "bench/bench_list.h"
#undef BENCH

/** Print one figure as "name value unit". */
void bench_report(const char *name, double value, const char *unit);

/** n timings in ms (sorted in place) as "<name>_mean" and "<name>_p99". */
void bench_report_ms(const char *name, double *ms, size_t n);

/** Seconds on a monotonic clock. */
double bench_now(void);

/** The median of three values (v is left as it was). */
double bench_median3(const double *v);

/** This process's resident memory in KiB (VmRSS), or 0 when unknown. */
long bench_rss_kib(void);

/** CPU seconds so far, user and system: who is RUSAGE_SELF (the process)
 *  or RUSAGE_THREAD (the calling thread). 0 when unknown. */
double bench_cpu_s(int who);

/** CPU seconds so far of this process's threads named comm (as
 *  pthread_setname_np set it, e.g. "haibot-store"), or -1 when unknown. */
double bench_thread_cpu_s(const char *comm);

/** A fresh directory for a benchmark's files; the caller removes it with
 *  bench_tmpdir_remove(). Heap string. */
char *bench_tmpdir_new(void);
void bench_tmpdir_remove(const char *dir);

/** The disk under dir, as a durable commit meets it: 200 writes of 4 KiB,
 *  each followed by fdatasync, reported as "<prefix>_disk_fsync_p50" and
 *  "_p99" (ms). A figure that waits for commits (a p99 latency) is read
 *  beside it: on a shared virtual disk the sync's tail moves from one
 *  minute to the next. Run after the figure it explains, not before: its
 *  own writes would disturb it. */
void bench_disk_fsync(const char *dir, const char *prefix);

#endif
