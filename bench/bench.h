/* The benchmark harness: `make bench` runs every entry in bench/bench_list.h
 * (or those named on the command line: make bench BENCHES="ledger").
 * Each benchmark prints its figures as lines "name value unit" through
 * bench_report(). Benchmarks are measurements, not tests: they never fail a
 * build on a number, but they exit non-zero when they cannot run. */
#ifndef HB_BENCH_H
#define HB_BENCH_H

#include <stdint.h>

#define BENCH(name) int bench_##name(void);
#include "bench/bench_list.h"
#undef BENCH

/** Print one figure as "name value unit". */
void bench_report(const char *name, double value, const char *unit);

/** Seconds on a monotonic clock. */
double bench_now(void);

/** This process's resident memory in KiB (VmRSS), or 0 when unknown. */
long bench_rss_kib(void);

/** A fresh directory for a benchmark's files; the caller removes it with
 *  bench_tmpdir_remove(). Heap string. */
char *bench_tmpdir_new(void);
void bench_tmpdir_remove(const char *dir);

#endif
