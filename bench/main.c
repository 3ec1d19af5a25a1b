/* The benchmark runner. */
#include "bench/bench.h"

#include "base/heap.h"
#include "base/log.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct bench_entry {
    const char *name;
    int (*run)(void);
};

static const struct bench_entry bench_entries[] = {
#define BENCH(name) {#name, bench_##name},
#include "bench/bench_list.h"
#undef BENCH
};

/* The figures the last landed code measured (bench/landed.txt, or the
 * file HAIBOT_BENCH_LANDED names): "name value unit" a line, '#' a
 * comment. Each figure of this run is printed beside its landed one. Read
 * in main, before the benches fork. */
struct bench_landed {
    char name[96];
    double value;
};
static struct bench_landed *bench_landed;
static size_t bench_nlanded;

static void bench_landed_read(void)
{
    const char *path = getenv("HAIBOT_BENCH_LANDED");
    FILE *f = fopen(path != NULL && path[0] != '\0' ? path : "bench/landed.txt", "r");
    if (f == NULL)
        return;
    char line[256];
    while (fgets(line, sizeof(line), f) != NULL) {
        struct bench_landed l;
        if (line[0] == '#' || sscanf(line, "%95s %lf", l.name, &l.value) != 2)
            continue;
        struct bench_landed *grown =
            realloc(bench_landed, (bench_nlanded + 1) * sizeof(*bench_landed));
        if (grown == NULL)
            break;
        bench_landed = grown;
        bench_landed[bench_nlanded++] = l;
    }
    fclose(f);
}

void bench_report(const char *name, double value, const char *unit)
{
    const struct bench_landed *landed = NULL;
    for (size_t i = 0; i < bench_nlanded && landed == NULL; i++)
        if (strcmp(bench_landed[i].name, name) == 0)
            landed = &bench_landed[i];
    if (landed != NULL)
        printf("%s %.6g %s (landed %.6g)\n", name, value, unit, landed->value);
    else
        printf("%s %.6g %s\n", name, value, unit);
    fflush(stdout);
}

double bench_median3(const double *v)
{
    double a = v[0], b = v[1], c = v[2];
    if (a > b) {
        double t = a;
        a = b;
        b = t;
    }
    return c < a ? a : c > b ? b : c;
}

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double bench_cpu_s(int who)
{
    struct rusage ru;
    if (getrusage(who, &ru) != 0)
        return 0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

double bench_thread_cpu_s(const char *comm)
{
    DIR *d = opendir("/proc/self/task");
    if (d == NULL)
        return -1;
    double total = -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], name[64] = "";
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        bool same = fgets(name, sizeof(name), f) != NULL &&
                    strncmp(name, comm, strlen(comm)) == 0 && name[strlen(comm)] == '\n';
        fclose(f);
        if (!same)
            continue;
        /* schedstat: nanoseconds on a CPU, first field. */
        snprintf(path, sizeof(path), "/proc/self/task/%s/schedstat", e->d_name);
        f = fopen(path, "r");
        unsigned long long ns = 0;
        if (f != NULL && fscanf(f, "%llu", &ns) == 1)
            total = (total < 0 ? 0 : total) + (double)ns / 1e9;
        if (f != NULL)
            fclose(f);
    }
    closedir(d);
    return total;
}

long bench_rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return 0;
    char line[256];
    long kib = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}

char *bench_tmpdir_new(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof(tmpl), "%s/haibot-bench-XXXXXX", base != NULL ? base : "/tmp");
    char *dir = mkdtemp(tmpl);
    return dir != NULL ? strdup(dir) : NULL;
}

static int bench__rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void bench_tmpdir_remove(const char *dir)
{
    if (dir != NULL)
        nftw(dir, bench__rm, 16, FTW_DEPTH | FTW_PHYS);
}

static int bench__cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void bench_report_ms(const char *name, double *ms, size_t n)
{
    if (n == 0)
        return;
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += ms[i];
    qsort(ms, n, sizeof(ms[0]), bench__cmp_double);
    char label[128];
    snprintf(label, sizeof(label), "%s_mean", name);
    bench_report(label, sum / (double)n, "ms");
    snprintf(label, sizeof(label), "%s_p99", name);
    bench_report(label, ms[n * 99 / 100], "ms");
}

void bench_disk_fsync(const char *dir, const char *prefix)
{
    enum { N = 200 };
    char path[600], name[128];
    snprintf(path, sizeof(path), "%s/fsync-probe", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    static const char block[4096];
    double ms[N];
    size_t n = 0;
    for (size_t i = 0; i < N; i++) {
        double t0 = bench_now();
        if (pwrite(fd, block, sizeof(block), (off_t)(i * sizeof(block))) !=
                (ssize_t)sizeof(block) ||
            fdatasync(fd) != 0)
            break;
        ms[n++] = (bench_now() - t0) * 1000.0;
    }
    close(fd);
    unlink(path);
    if (n < N)
        return;
    qsort(ms, n, sizeof(ms[0]), bench__cmp_double);
    snprintf(name, sizeof(name), "%s_disk_fsync_p50", prefix);
    bench_report(name, ms[n / 2], "ms");
    snprintf(name, sizeof(name), "%s_disk_fsync_p99", prefix);
    bench_report(name, ms[n * 99 / 100], "ms");
}

int main(int argc, char **argv)
{
    int rc = 0;
    hb_heap_tune(); /* as the daemon's main does, for the benches that run its code here */
    log_configure(LOG_WARN, false, NULL);
    bench_landed_read();
    for (size_t i = 0; i < sizeof(bench_entries) / sizeof(bench_entries[0]); i++) {
        bool want = argc < 2;
        for (int a = 1; a < argc; a++)
            want = want || strcmp(argv[a], bench_entries[i].name) == 0;
        if (!want)
            continue;
        /* Each bench in a fresh process: its memory and CPU figures are its
         * own, not what the benches before it left behind; and on a disk
         * with nothing left to write back from them, so its fsyncs wait
         * for its own writes only. */
        fflush(stdout);
        sync();
        pid_t pid = fork();
        if (pid == 0) {
            int brc = bench_entries[i].run();
            log_shutdown();
            fflush(stdout);
            _exit(brc != 0 ? 1 : 0);
        }
        int status = 0;
        if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0) {
            fprintf(stderr, "bench %s: could not run\n", bench_entries[i].name);
            rc = 1;
        }
    }
    log_shutdown();
    free(bench_landed);
    return rc;
}
