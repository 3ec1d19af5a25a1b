/* The config reader (bot/config_read.c and the schema's checks): any
 * bytes as bot.conf give a config or problems with their lines, never a
 * crash. */
#include "tests/fuzz/fuzz.h"

#include "base/log.h"
#include "bot/config.h"

#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *quiet;
    if (quiet == NULL && (quiet = fopen("/dev/null", "w")) != NULL)
        log_configure(LOG_ERROR, false, quiet);
    int fd = memfd_create("bot.conf", 0);
    if (fd < 0)
        return 0;
    if (size > 0 && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    struct config *cfg = NULL;
    struct config_problems problems;
    config_problems_init(&problems);
    if (config_load(path, &cfg, &problems) == 0)
        config_free(cfg);
    config_problems_free(&problems);
    close(fd);
    return 0;
}
