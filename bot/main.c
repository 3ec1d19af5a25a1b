/* haibot: the command line. Parses arguments and calls the piece that does
 * the work; nothing else lives here. */
#include "bot/config.h"
#include "bot/config_man.h"
#include "bot/daemon.h"
#include "bot/init.h"
#include "net/http.h"
#include "core/audit.h"
#include "core/ledger.h"
#include "storage/store.h"
#include "base/error.h"
#include "base/heap.h"
#include "base/log.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HAIBOT_VERSION "0.1.0"
#define HAIBOT_DEFAULT_CONFIG "bot.conf"

static void main__usage(FILE *out)
{
    fprintf(
        out,
        "Usage: haibot [-c FILE]                 run the daemon (default ./" HAIBOT_DEFAULT_CONFIG
        ")\n"
        "       haibot init [-c FILE] [--non-interactive ...]\n"
        "                                        write a first bot.conf (haibot init --help)\n"
        "       haibot check-config [-c FILE]    validate a config file\n"
        "       haibot ledger verify [-c FILE]   recompute the ledger's hash chain and invariants\n"
        "       haibot ledger verify --head SEQ:HASH [-c FILE]\n"
        "                                        also fail unless the chain holds that published "
        "head\n"
        "       haibot ledger head [-c FILE]     print the ledger's chain head\n"
        "       haibot audit verify [-c FILE]    recompute the audit trail's hash chain\n"
        "       haibot ledger backup FILE [-c FILE]\n"
        "                                        copy the ledger while it runs, verify the copy, "
        "print its head\n"
        "       haibot version                   print the version\n"
        "       haibot --man 1|5                 print haibot(1) or bot.conf(5) as roff\n"
        "       haibot --help                    print this help\n");
}

/* Take "-c FILE" / "--config FILE" / "--config=FILE" from argv[from..]. */
static int main__config_arg(int argc, char **argv, int from, const char **path)
{
    for (int i = from; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
            *path = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            *path = argv[i] + 9;
        } else {
            fprintf(stderr, "haibot: unexpected argument '%s'\n", argv[i]);
            main__usage(stderr);
            return -1;
        }
    }
    return 0;
}

static int main__config_missing(const char *path)
{
    if (access(path, F_OK) == 0)
        return 0;
    fprintf(stderr,
            "haibot: no config file at %s.\n"
            "Copy the documented example and edit it:  cp bot.conf.example %s\n",
            path, path);
    return 1;
}

static int main__check_config(const char *path)
{
    if (main__config_missing(path) != 0)
        return 1;
    struct config_problems problems;
    config_problems_init(&problems);
    struct config *cfg = NULL;
    int rc = 0;
    if (config_load(path, &cfg, &problems) < 0) {
        config_problems_print(&problems, stderr);
        rc = 1;
    } else {
        printf("%s: ok\n", path);
    }
    config_free(cfg);
    config_problems_free(&problems);
    return rc;
}

/* Load the config at path for a command-line tool; NULL (with the problems
 * printed) when it does not load. */
/* The database the tools read: the config's backend, file or connection. */
static struct store_options main__store_options(const struct config *cfg)
{
    struct store_options so = {.path = cfg->storage.path, .url = cfg->storage.postgres_url};
    if (cfg->storage.backend == CONFIG_STORAGE_POSTGRES)
        so.backend = STORE_BACKEND_POSTGRES;
    return so;
}

static struct config *main__config_for_tool(const char *path)
{
    if (main__config_missing(path) != 0)
        return NULL;
    struct config_problems problems;
    config_problems_init(&problems);
    struct config *cfg = NULL;
    if (config_load(path, &cfg, &problems) < 0) {
        config_problems_print(&problems, stderr);
        cfg = NULL;
    }
    config_problems_free(&problems);
    return cfg;
}

/* `haibot ledger verify|head|backup ...`: argv[2] is the verb. */
static int main__ledger(int argc, char **argv)
{
    const char *what = argv[2];
    const char *path = HAIBOT_DEFAULT_CONFIG;
    const char *backup_to = NULL;
    struct ledger_head head;
    bool have_head = false;
    int from = 3;
    if (strcmp(what, "backup") == 0) {
        if (argc < 4 || argv[3][0] == '-') {
            fprintf(stderr,
                    "haibot: ledger backup needs the file to write: haibot ledger backup FILE\n");
            return 2;
        }
        backup_to = argv[3];
        from = 4;
    } else if (strcmp(what, "verify") == 0 && argc > 3 && strncmp(argv[3], "--head", 6) == 0) {
        const char *text = argv[3][6] == '=' ? argv[3] + 7 : (argc > 4 ? argv[4] : NULL);
        if ((argv[3][6] != '=' && argv[3][6] != '\0') || ledger_head_parse(text, &head) < 0) {
            fprintf(stderr, "haibot: --head takes SEQ:HASH, the seq and the 64-digit hash that "
                            "`haibot ledger head` prints\n");
            return 2;
        }
        have_head = true;
        from = argv[3][6] == '=' ? 4 : 5;
    }
    if (main__config_arg(argc, argv, from, &path) < 0)
        return 2;
    struct config *cfg = main__config_for_tool(path);
    if (cfg == NULL)
        return 1;
    int rc = 0;
    struct store_options db = main__store_options(cfg);
    if (backup_to != NULL && db.backend == STORE_BACKEND_POSTGRES) {
        fprintf(stderr, "haibot: ledger backup copies a SQLite ledger; back up a PostgreSQL "
                        "ledger with pg_dump, then run ledger verify against it (see the "
                        "README's \"Several daemons\")\n");
        rc = -1;
    } else if (backup_to != NULL) {
        rc = store_backup_file(cfg->storage.path, backup_to);
        if (rc < 0) {
            fprintf(stderr, "haibot: ledger backup to %s failed: %s\n", backup_to,
                    rc == HB_EEXISTS ? "the file exists (a backup never overwrites)"
                                     : hb_strerror(rc));
            config_free(cfg);
            return 1;
        }
        printf("ledger backup: wrote %s\n", backup_to);
        /* A copy is only a backup once it verifies on its own. */
        rc = ledger_verify_file(backup_to, stdout);
        if (rc == 0)
            rc = ledger_head_file(backup_to, stdout);
    } else if (strcmp(what, "verify") == 0) {
        rc = ledger_verify_store(&db, have_head ? &head : NULL, stdout);
    } else {
        rc = ledger_head_store(&db, stdout);
    }
    config_free(cfg);
    if (rc < 0)
        return 2;
    return rc;
}

/* `haibot audit verify [-c FILE]`. */
static int main__audit(int argc, char **argv)
{
    const char *path = HAIBOT_DEFAULT_CONFIG;
    if (main__config_arg(argc, argv, 3, &path) < 0)
        return 2;
    struct config *cfg = main__config_for_tool(path);
    if (cfg == NULL)
        return 1;
    struct store_options db = main__store_options(cfg);
    int rc = audit_verify_store(&db, stdout);
    config_free(cfg);
    return rc < 0 ? 2 : rc;
}

int main(int argc, char **argv)
{
    const char *path = HAIBOT_DEFAULT_CONFIG;
    int rc;
    hb_heap_tune();
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
                     strcmp(argv[1], "help") == 0)) {
        main__usage(stdout);
        return 0;
    }
    if (argc > 1 && (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0)) {
        printf("haibot " HAIBOT_VERSION "\n");
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "--man") == 0)
        return config_man_write(atoi(argv[2]), stdout) == 0 ? 0 : 2;
    if (argc > 1 && strcmp(argv[1], "init") == 0) {
        rc = init_main(argc - 1, argv + 1);
    } else if (argc > 1 && strcmp(argv[1], "check-config") == 0) {
        if (main__config_arg(argc, argv, 2, &path) < 0)
            return 2;
        rc = main__check_config(path);
    } else if (argc > 2 && strcmp(argv[1], "ledger") == 0 &&
               (strcmp(argv[2], "verify") == 0 || strcmp(argv[2], "head") == 0 ||
                strcmp(argv[2], "backup") == 0)) {
        rc = main__ledger(argc, argv);
    } else if (argc > 2 && strcmp(argv[1], "audit") == 0 && strcmp(argv[2], "verify") == 0) {
        rc = main__audit(argc, argv);
    } else if (argc > 1 && argv[1][0] != '-') {
        fprintf(stderr, "haibot: unknown command '%s'\n", argv[1]);
        main__usage(stderr);
        return 2;
    } else {
        if (main__config_arg(argc, argv, 1, &path) < 0)
            return 2;
        rc = main__config_missing(path);
        if (rc == 0 && http_global_init() < 0) {
            fprintf(stderr, "haibot: the HTTP library could not start\n");
            rc = 1;
        }
        if (rc == 0) {
            rc = daemon_run(path);
            http_global_shutdown();
        }
    }
    log_shutdown();
    return rc;
}
