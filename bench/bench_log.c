/* Cost of one structured log line with redaction, written to /dev/null. */
#include "bench/bench.h"

#include "base/log.h"

#include <stdio.h>

int bench_log(void)
{
    FILE *null = fopen("/dev/null", "w");
    if (null == NULL)
        return -1;
    log_configure(LOG_INFO, false, null);
    log_secret_add("secret-token-value-1234");
    const int n = 200000;
    double t0 = bench_now();
    for (int i = 0; i < n; i++)
        log_info("bench.line", "i=%d user=%s note=%s", i, "discord:1234", "some words here");
    double dt = bench_now() - t0;
    log_configure(LOG_WARN, false, NULL);
    log_secret_clear();
    fclose(null);
    bench_report("log_lines_per_sec", n / dt, "lines/s");
    return 0;
}
