/* Cost of counting: a labelled counter increment and a histogram
 * observation (what router.c and storage/sqlite.c pay per command and per
 * commit), and rendering /metrics. */
#include "bench/bench.h"

#include "base/metrics.h"

#include <stdlib.h>

int bench_metrics(void)
{
    const struct metrics_std *m = metrics_std();
    if (m->commands == NULL)
        return -1;
    static const char *const names[] = {"balance", "chat", "imagine", "help", "deposit"};
    const int n = 2000000;
    double t0 = bench_now();
    for (int i = 0; i < n; i++)
        metrics_counter_add(m->commands, (const char *[]){names[i % 5], "answered"}, 1);
    double dt = bench_now() - t0;
    bench_report("metrics_counter_add_ns", dt / n * 1e9, "ns");
    t0 = bench_now();
    for (int i = 0; i < n; i++)
        metrics_observe(m->storage_commit, NULL, (double)(i % 100) / 10000.0);
    dt = bench_now() - t0;
    bench_report("metrics_observe_ns", dt / n * 1e9, "ns");
    const int r = 2000;
    size_t len = 0;
    t0 = bench_now();
    for (int i = 0; i < r; i++)
        free(metrics_render(&len));
    dt = bench_now() - t0;
    bench_report("metrics_render_us", dt / r * 1e6, "us");
    bench_report("metrics_render_bytes", (double)len, "bytes");
    return 0;
}
