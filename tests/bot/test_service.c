/* The daemon as a service: the systemd unit verifies, `make install` writes
 * the tree README.md lists, the man page covers every key of the schema,
 * sd_notify readiness reaches the notify socket, the console stays off
 * where reading would stop or starve the process, and a refused token ends
 * the daemon with a status a supervisor sees. */
#include "tests/test.h"

#include "bot/config.h"
#include "bot/daemon.h"
#include "tests/fake/discord_gateway.h"
#include "tests/fake/discord_rest.h"
#include "tests/fake/telegram_api.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define SVC_TG_TOKEN "123456:SERVICE-token-abcdef"

/* ---- helpers ----------------------------------------------------------- */

/* `make install DESTDIR=dest`, with the outer make's job server left out. */
static void svc_install(const char *dest)
{
    char destdir[600];
    snprintf(destdir, sizeof(destdir), "DESTDIR=%s", dest);
    char *argv[] = {"/usr/bin/env", "-u",     "MAKEFLAGS", "-u", "MAKELEVEL",
                    "-u",           "MFLAGS", "make",      "-s", "--no-print-directory",
                    "install",      destdir,  NULL};
    struct test_proc p;
    test_proc_run(argv, NULL, 300000, &p);
    if (p.status != 0)
        fprintf(stderr, "make install failed (%d):\n%s\n%s\n", p.status, p.out, p.err);
    assert_int_equal(p.status, 0);
    test_proc_free(&p);
}

/* The paths README.md's install-tree block lists, one per line, "" ended. */
static size_t svc_readme_tree(char paths[][256], size_t max)
{
    char *readme = test_file_read("README.md", NULL);
    assert_non_null(readme);
    char *at = strstr(readme, "<!-- install-tree");
    assert_non_null(at);
    at = strstr(at, "```\n");
    assert_non_null(at);
    at += 4;
    size_t n = 0;
    while (strncmp(at, "```", 3) != 0) {
        char *nl = strchr(at, '\n');
        assert_non_null(nl);
        size_t len = strcspn(at, " \n");
        assert_true(len > 0 && len < 256 && n < max);
        memcpy(paths[n], at, len);
        paths[n++][len] = '\0';
        at = nl + 1;
    }
    free(readme);
    return n;
}

static char svc_walk_base[512];
static char svc_walk_files[64][256];
static size_t svc_walk_n;

static int svc_walk(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (flag == FTW_F && svc_walk_n < 64)
        snprintf(svc_walk_files[svc_walk_n++], 256, "%s", path + strlen(svc_walk_base));
    return 0;
}

/* A unix datagram socket at dir/notify, as systemd's notify socket. */
static int svc_notify_socket(const char *dir, char *path, size_t cap)
{
    snprintf(path, cap, "%s/notify", dir);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un a;
    memset(&a, 0, sizeof(a));
    a.sun_family = AF_UNIX;
    assert_true(strlen(path) < sizeof(a.sun_path));
    strcpy(a.sun_path, path);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

/* Wait for a datagram holding needle, reading the daemon's output as it
 * goes so it never blocks on a full pipe. Every datagram is appended to
 * seen (cap bytes). */
static bool svc_notify_wait(int fd, struct test_child *c, const char *needle, char *seen,
                            size_t cap, int timeout_ms)
{
    uint64_t end = test_now_ms() + (uint64_t)timeout_ms;
    while (test_now_ms() < end) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 20) == 1) {
            char msg[512];
            ssize_t n = recv(fd, msg, sizeof(msg) - 1, 0);
            if (n > 0) {
                msg[n] = '\0';
                size_t used = strlen(seen);
                snprintf(seen + used, cap - used, "%s|", msg);
                if (strstr(msg, needle) != NULL)
                    return true;
            }
        }
        test_child_wait_for(c, "err", "\x01never\x01", 1);
    }
    return false;
}

/* Run the daemon on conf with stdin from in_fd (or /dev/null when -1) and
 * stdout and stderr into log; wait up to timeout_ms. Returns the exit
 * status, 128 + signal, or 1000 + signal when the daemon was stopped (it is
 * then killed). */
static int svc_run_logged(const char *conf, int in_fd, const char *log, int timeout_ms)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int in = in_fd >= 0 ? in_fd : open("/dev/null", O_RDONLY);
        int out = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (in < 0 || out < 0)
            _exit(126);
        dup2(in, 0);
        dup2(out, 1);
        dup2(out, 2);
        char *argv[] = {(char *)test_haibot_bin(), "-c", (char *)conf, NULL};
        execv(argv[0], argv);
        _exit(127);
    }
    uint64_t end = test_now_ms() + (uint64_t)timeout_ms;
    int status = 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG | WUNTRACED);
        if (r == pid && WIFSTOPPED(status)) {
            kill(pid, SIGKILL);
            kill(pid, SIGCONT);
            waitpid(pid, NULL, 0);
            return 1000 + WSTOPSIG(status);
        }
        if (r == pid)
            break;
        if (test_now_ms() >= end) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            break;
        }
        usleep(10000);
    }
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

/* ---- the unit and the installed tree ---------------------------------- */

static void test_unit_verifies(void **state)
{
    (void)state;
    if (access("/usr/bin/systemd-analyze", X_OK) != 0 &&
        access("/bin/systemd-analyze", X_OK) != 0) {
        fprintf(stderr, "service: SKIPPED test_unit_verifies: systemd-analyze is not installed "
                        "(apt-get install systemd)\n");
        skip();
    }
    char *dir = test_tmpdir_new();
    svc_install(dir);
    char path[600], unit[700];
    snprintf(path, sizeof(path), "%s/usr/local/lib/systemd/system/haibot.service", dir);
    char *text = test_file_read(path, NULL);
    assert_non_null(text);
    const char *must[] = {"\nType=notify\n",
                          "\nExecStart=/usr/local/bin/haibot -c /etc/haibot/bot.conf\n",
                          "\nExecReload=/bin/kill -HUP $MAINPID\n",
                          "\nEnvironmentFile=-/etc/haibot/env\n",
                          "\nStateDirectory=haibot\n",
                          "\nProtectSystem=strict\n",
                          "\nNoNewPrivileges=yes\n",
                          "\nWatchdogSec=",
                          "\nRestartPreventExitStatus=78\n"};
    for (size_t i = 0; i < TEST_ARRAY_SIZE(must); i++) {
        if (strstr(text, must[i]) == NULL)
            fprintf(stderr, "the unit lacks: %s\n", must[i]);
        assert_non_null(strstr(text, must[i]));
    }
    /* systemd-analyze wants the binary where the unit says: point the unit
     * at the staged one. */
    snprintf(unit, sizeof(unit), "%s/haibot.service", dir);
    FILE *out = fopen(unit, "w");
    assert_non_null(out);
    for (const char *p = text; *p != '\0';) {
        const char *hit = strstr(p, "/usr/local/bin/haibot");
        if (hit == NULL) {
            fputs(p, out);
            break;
        }
        fprintf(out, "%.*s%s/usr/local/bin/haibot", (int)(hit - p), p, dir);
        p = hit + strlen("/usr/local/bin/haibot");
    }
    fclose(out);
    free(text);
    char *argv[] = {"/usr/bin/env", "systemd-analyze", "verify", "--man=no", unit, NULL};
    struct test_proc p;
    test_proc_run(argv, NULL, 60000, &p);
    if (p.status != 0 || p.err[0] != '\0')
        fprintf(stderr, "systemd-analyze verify (%d):\n%s%s\n", p.status, p.out, p.err);
    assert_int_equal(p.status, 0);
    assert_string_equal(p.err, "");
    test_proc_free(&p);
    test_tmpdir_remove(dir);
    free(dir);
}

/* What `make install` writes is what README.md says it writes: every path
 * listed is there, and every file there is listed. */
static void test_install_tree_matches_readme(void **state)
{
    (void)state;
    static char listed[32][256];
    size_t nlisted = svc_readme_tree(listed, 32);
    assert_true(nlisted >= 6);
    char *dir = test_tmpdir_new();
    svc_install(dir);
    for (size_t i = 0; i < nlisted; i++) {
        char path[600];
        snprintf(path, sizeof(path), "%s%s", dir, listed[i]);
        struct stat st;
        if (stat(path, &st) != 0)
            fprintf(stderr, "README lists %s; make install did not write it\n", listed[i]);
        assert_int_equal(stat(path, &st), 0);
        size_t len = strlen(listed[i]);
        if (listed[i][len - 1] == '/')
            assert_true(S_ISDIR(st.st_mode));
        else
            assert_true(S_ISREG(st.st_mode));
    }
    snprintf(svc_walk_base, sizeof(svc_walk_base), "%s", dir);
    svc_walk_n = 0;
    assert_int_equal(nftw(dir, svc_walk, 16, FTW_PHYS), 0);
    assert_true(svc_walk_n > 0);
    for (size_t i = 0; i < svc_walk_n; i++) {
        bool found = false;
        for (size_t j = 0; j < nlisted && !found; j++)
            found = strcmp(svc_walk_files[i], listed[j]) == 0;
        if (!found)
            fprintf(stderr, "make install wrote %s; README does not list it\n", svc_walk_files[i]);
        assert_true(found);
    }
    /* The binary runs, and the config it ships passes its own check. */
    char bin[600], example[600];
    snprintf(bin, sizeof(bin), "%s/usr/local/bin/haibot", dir);
    snprintf(example, sizeof(example), "%s/etc/haibot/bot.conf.example", dir);
    struct stat st;
    assert_int_equal(stat(bin, &st), 0);
    assert_true((st.st_mode & 0111) != 0);
    char *argv[] = {bin, "check-config", "-c", example, NULL};
    struct test_proc p;
    test_proc_run(argv, NULL, 30000, &p);
    assert_int_equal(p.status, 0);
    test_proc_free(&p);
    test_tmpdir_remove(dir);
    free(dir);
}

/* ---- the man pages ------------------------------------------------------ */

/* bot.conf(5) names every key of every section the config checks, under
 * that section's heading. */
static void test_man_page_has_every_key(void **state)
{
    (void)state;
    char *argv[] = {(char *)test_haibot_bin(), "--man", "5", NULL};
    struct test_proc p;
    test_proc_run(argv, NULL, 20000, &p);
    assert_int_equal(p.status, 0);
    assert_non_null(strstr(p.out, ".TH BOT.CONF 5"));
    size_t n = 0;
    const struct config_section_schema *s = config_schema_get(&n);
    assert_true(n > 10);
    size_t keys = 0;
    for (size_t i = 0; i < n; i++) {
        char head[96];
        snprintf(head, sizeof(head), ".SS [%s%s", s[i].name, s[i].repeatable ? " \"" : "]");
        const char *at = strstr(p.out, head);
        if (at == NULL)
            fprintf(stderr, "bot.conf(5) lacks section [%s]\n", s[i].name);
        assert_non_null(at);
        const char *next = strstr(at + 1, ".SS ");
        const char *sh = strstr(at + 1, ".SH ");
        if (next == NULL || (sh != NULL && sh < next))
            next = sh;
        for (size_t k = 0; k < s[i].nkeys; k++) {
            char entry[96];
            snprintf(entry, sizeof(entry), ".TP\n\\fB%s\\fR (", s[i].keys[k].name);
            const char *e = strstr(at, entry);
            if (e == NULL || (next != NULL && e > next))
                fprintf(stderr, "bot.conf(5) lacks [%s] %s\n", s[i].name, s[i].keys[k].name);
            assert_true(e != NULL && (next == NULL || e < next));
            keys++;
        }
    }
    assert_true(keys > 100);
    test_proc_free(&p);
    char *one[] = {(char *)test_haibot_bin(), "--man", "1", NULL};
    test_proc_run(one, NULL, 20000, &p);
    assert_int_equal(p.status, 0);
    assert_non_null(strstr(p.out, ".TH HAIBOT 1"));
    assert_non_null(strstr(p.out, "check\\-config"));
    test_proc_free(&p);
    char *bad[] = {(char *)test_haibot_bin(), "--man", "3", NULL};
    test_proc_run(bad, NULL, 20000, &p);
    assert_int_equal(p.status, 2);
    test_proc_free(&p);
}

/* ---- sd_notify ------------------------------------------------------------ */

/* READY=1 once the adapters are up, watchdog pings at half WATCHDOG_USEC,
 * RELOADING=1 then READY=1 around a SIGHUP, STOPPING=1 at the end. */
static void test_notify_ready_watchdog_reload_stop(void **state)
{
    (void)state;
    struct test_daemon_dir f;
    test_daemon_dir_init(&f, "Notify Bot");
    char sock[600];
    int fd = svc_notify_socket(f.dir, sock, sizeof(sock));
    setenv("NOTIFY_SOCKET", sock, 1);
    setenv("WATCHDOG_USEC", "400000", 1);
    struct test_child c;
    char *argv[] = {(char *)test_haibot_bin(), "-c", f.conf, NULL};
    test_child_start(&c, argv);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    char seen[4096] = "";
    assert_true(svc_notify_wait(fd, &c, "READY=1", seen, sizeof(seen), 20000));
    /* Ready means the adapters are up: the console said it started before
     * READY=1 went out, so its line is already in the pipe. */
    assert_true(test_child_wait_for(&c, "err", "console.started", 1000));
    /* Pings every 200 ms (half of WATCHDOG_USEC): in 1.5 s some, and not
     * one per loop turn. */
    seen[0] = '\0';
    assert_false(svc_notify_wait(fd, &c, "\x01none\x01", seen, sizeof(seen), 1500));
    size_t pings = 0;
    for (const char *p = strstr(seen, "WATCHDOG=1"); p != NULL; p = strstr(p + 1, "WATCHDOG=1"))
        pings++;
    if (pings < 2 || pings > 12)
        fprintf(stderr, "watchdog pings in 1.5 s: %zu (%s)\n", pings, seen);
    assert_true(pings >= 2 && pings <= 12);
    kill(c.pid, SIGHUP);
    assert_true(svc_notify_wait(fd, &c, "RELOADING=1", seen, sizeof(seen), 10000));
    assert_true(svc_notify_wait(fd, &c, "READY=1", seen, sizeof(seen), 10000));
    kill(c.pid, SIGTERM);
    assert_true(svc_notify_wait(fd, &c, "STOPPING=1", seen, sizeof(seen), 10000));
    assert_int_equal(test_child_finish(&c, 20000), 0);
    assert_non_null(strstr(c.err, "daemon.stopped"));
    test_child_free(&c);
    close(fd);
    test_daemon_dir_free(&f);
}

/* Without NOTIFY_SOCKET nothing is sent and nothing is logged about it. */
static void test_notify_absent_is_quiet(void **state)
{
    (void)state;
    struct test_daemon_dir f;
    test_daemon_dir_init(&f, "Quiet Bot");
    unsetenv("NOTIFY_SOCKET");
    char *argv[] = {(char *)test_haibot_bin(), "-c", f.conf, NULL};
    struct test_proc p;
    test_proc_run(argv, "/balance\n", 20000, &p);
    assert_int_equal(p.status, 0);
    assert_null(strstr(p.err, "service."));
    test_proc_free(&p);
    test_daemon_dir_free(&f);
}

/* ---- the console where it must not read --------------------------------- */

/* A service's standard input is /dev/null, a character device: the console
 * says it is off, and with nothing else to run the daemon stops cleanly. */
static void test_console_off_on_dev_null(void **state)
{
    (void)state;
    struct test_daemon_dir f;
    test_daemon_dir_init(&f, "Service Bot");
    char log[600];
    snprintf(log, sizeof(log), "%s/daemon.log", f.dir);
    assert_int_equal(svc_run_logged(f.conf, -1, log, 20000), 0);
    char *text = test_file_read(log, NULL);
    assert_non_null(text);
    assert_non_null(strstr(text, "console.off"));
    assert_non_null(strstr(text, "not a terminal, a pipe or a file"));
    assert_null(strstr(text, "console.started"));
    assert_non_null(strstr(text, "daemon.stopped"));
    free(text);
    test_daemon_dir_free(&f);
}

/* Started in the background of its terminal (`haibot &`), a read of the
 * terminal would stop the process (SIGTTIN, "Stopped (tty input)"): the
 * console stays off instead. */
static void test_console_off_in_background(void **state)
{
    (void)state;
    struct test_daemon_dir f;
    test_daemon_dir_init(&f, "Background Bot");
    char log[600];
    snprintf(log, sizeof(log), "%s/daemon.log", f.dir);
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    assert_true(master >= 0);
    assert_int_equal(grantpt(master), 0);
    assert_int_equal(unlockpt(master), 0);
    char pts[128];
    assert_int_equal(ptsname_r(master, pts, sizeof(pts)), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t shell = fork();
    assert_true(shell >= 0);
    if (shell == 0) {
        /* A session whose controlling terminal is the pty, as a shell's;
         * the daemon goes into a process group of its own, not the
         * terminal's foreground one, as `&` does. */
        if (setsid() < 0)
            _exit(120);
        int tty = open(pts, O_RDWR);
        if (tty < 0 || ioctl(tty, TIOCSCTTY, 0) < 0)
            _exit(121);
        /* Someone typed a line: the terminal is readable, so a console
         * that reads it does so at once (and a background one stops). */
        if (write(master, "/help\n", 6) != 6)
            _exit(122);
        pid_t gc = fork();
        if (gc == 0) {
            setpgid(0, 0);
            dup2(tty, 0);
            int out = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
            dup2(out, 1);
            dup2(out, 2);
            char *argv[] = {(char *)test_haibot_bin(), "-c", f.conf, NULL};
            execv(argv[0], argv);
            _exit(127);
        }
        setpgid(gc, gc);
        int st = 0;
        for (int i = 0; i < 2000; i++) {
            pid_t r = waitpid(gc, &st, WNOHANG | WUNTRACED);
            if (r == gc && WIFSTOPPED(st)) {
                kill(gc, SIGKILL);
                kill(gc, SIGCONT);
                waitpid(gc, NULL, 0);
                _exit(100); /* stopped by the terminal */
            }
            if (r == gc)
                _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 101);
            usleep(10000);
        }
        kill(gc, SIGKILL);
        _exit(102);
    }
    int status = 0;
    assert_int_equal(waitpid(shell, &status, 0), shell);
    close(master);
    char *text = test_file_read(log, NULL);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fprintf(stderr, "daemon in the background: status %d, log:\n%s\n",
                WIFEXITED(status) ? WEXITSTATUS(status) : -1, text != NULL ? text : "");
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 100)
        fprintf(stderr, "the daemon was stopped by its terminal (SIGTTIN)\n");
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_non_null(text);
    assert_non_null(strstr(text, "console.off"));
    assert_non_null(strstr(text, "background"));
    free(text);
    test_daemon_dir_free(&f);
}

/* ---- a refused token ----------------------------------------------------- */

static void svc_write_conf(struct test_daemon_dir *f, const char *platform)
{
    char text[2048];
    snprintf(text, sizeof(text),
             "[bot]\nname = Refused Bot\nshutdown_grace = 2\n[storage]\npath = %s\n"
             "[console]\nenabled = false\n%s",
             f->db, platform);
    test_file_write(f->conf, text, (size_t)-1);
    chmod(f->conf, 0600);
}

/* Telegram answers getMe with 401 for a revoked token: the daemon says so
 * and exits with DAEMON_EXIT_CONFIG, not 0, so a supervisor sees it. */
static void test_telegram_token_refused_exits(void **state)
{
    (void)state;
    struct tgapi *api = tgapi_thread_new(SVC_TG_TOKEN);
    assert_non_null(api);
    struct test_daemon_dir f;
    test_daemon_dir_init(&f, "x");
    char tg[512];
    snprintf(tg, sizeof(tg),
             "[telegram]\nenabled = true\ntoken = 999999:REVOKED-token-abcdef\napi_base = %s\n"
             "poll_timeout = 1\n",
             tgapi_base(api));
    svc_write_conf(&f, tg);
    char log[600];
    snprintf(log, sizeof(log), "%s/daemon.log", f.dir);
    int status = svc_run_logged(f.conf, -1, log, 30000);
    char *text = test_file_read(log, NULL);
    assert_non_null(text);
    if (status != DAEMON_EXIT_CONFIG)
        fprintf(stderr, "status %d, log:\n%s\n", status, text);
    assert_int_equal(status, DAEMON_EXIT_CONFIG);
    assert_non_null(strstr(text, "telegram.unauthorized"));
    assert_non_null(strstr(text, "error daemon.credentials_refused adapter=telegram exit_code=78"));
    assert_non_null(strstr(text, "a platform refused the bot's credentials"));
    assert_null(strstr(text, "REVOKED-token"));
    free(text);
    tgapi_close(api, NULL, NULL);
    test_daemon_dir_free(&f);
}

static void svc_kick_on_identify(struct fake_gateway *g, enum fake_gateway_seen what, void *data)
{
    (void)data;
    if (what == FAKE_SEEN_IDENTIFY)
        fake_gateway_kick(g, 4004);
}

/* compress: the [discord] compress line's value, NULL for the default. */
static void svc_discord_refused(bool at_gateway, const char *compress)
{
    struct fake_gateway_options go = {.heartbeat_ms = 20000, .on_seen = svc_kick_on_identify};
    struct fake_gateway *gw = fake_gateway_start_thread(&go);
    assert_non_null(gw);
    struct fake_rest_options ro = {.gateway_url = fake_gateway_url(gw)};
    struct fake_rest *rest = fake_rest_start_thread(&ro);
    assert_non_null(rest);
    if (!at_gateway)
        fake_rest_script_status(rest, "/gateway/bot", 401);
    struct test_daemon_dir f;
    test_daemon_dir_init(&f, "x");
    char dc[512];
    snprintf(dc, sizeof(dc),
             "[discord]\nenabled = true\ntoken = refused-token-abcdef\napplication_id = 42\n"
             "api_base = %s\n%s%s\n",
             fake_rest_api_base(rest), compress != NULL ? "compress = " : "",
             compress != NULL ? compress : "");
    svc_write_conf(&f, dc);
    char log[600];
    snprintf(log, sizeof(log), "%s/daemon.log", f.dir);
    int status = svc_run_logged(f.conf, -1, log, 30000);
    char *text = test_file_read(log, NULL);
    assert_non_null(text);
    if (status != DAEMON_EXIT_CONFIG)
        fprintf(stderr, "status %d, log:\n%s\n", status, text);
    assert_int_equal(status, DAEMON_EXIT_CONFIG);
    assert_non_null(strstr(text, at_gateway ? "code=4004" : "discord.unauthorized"));
    assert_non_null(strstr(text, "error daemon.credentials_refused adapter=discord exit_code=78"));
    /* The operator learns how to add the bot: both scopes, and what it
     * needs (view, send, embed, attach, history, send in threads). */
    assert_non_null(strstr(text, "https://discord.com/oauth2/authorize?"
                                 "client_id=42&scope=bot%20applications.commands"
                                 "&permissions=274878024704"));
    assert_non_null(strstr(text, "a platform refused the bot's credentials"));
    assert_null(strstr(text, "refused-token"));
    free(text);
    if (at_gateway) {
        /* The transport asked for (zstd-stream by default), which carried
         * HELLO to the IDENTIFY. */
        struct fake_gateway_stats st;
        fake_gateway_stats(gw, &st);
        char want[64];
        snprintf(want, sizeof(want), "compress=%s", compress != NULL ? compress : "zstd-stream");
        assert_non_null(strstr(st.query, want));
    }
    fake_rest_free(rest);
    fake_gateway_free(gw);
    test_daemon_dir_free(&f);
}

static void test_discord_close_4004_exits(void **state)
{
    (void)state;
    svc_discord_refused(true, NULL);
}

static void test_discord_zlib_stream_configured(void **state)
{
    (void)state;
    svc_discord_refused(true, "zlib-stream");
}

static void test_discord_rest_401_exits(void **state)
{
    (void)state;
    svc_discord_refused(false, NULL);
}

/* ---- the example's provider presets -------------------------------------- */

/* bot.conf.example ships the presets commented out (it runs as is on the
 * demo provider); with the "# " taken off they are a valid config whose
 * providers are the seven presets. */
static void test_example_presets_valid_when_uncommented(void **state)
{
    (void)state;
    static const char *const names[] = {"openai",   "anthropic", "openrouter", "ollama",
                                        "llamacpp", "vllm",      "lmstudio"};
    struct config_problems problems;
    config_problems_init(&problems);
    struct config *cfg = NULL;
    assert_int_equal(config_load("bot.conf.example", &cfg, &problems), 0);
    for (size_t i = 0; i < TEST_ARRAY_SIZE(names); i++)
        assert_null(config_provider_find(cfg, names[i]));
    config_free(cfg);
    cfg = NULL;

    char *text = test_file_read("bot.conf.example", NULL);
    assert_non_null(text);
    char *dir = test_tmpdir_new();
    char path[600];
    snprintf(path, sizeof(path), "%s/bot.conf", dir);
    FILE *out = fopen(path, "w");
    assert_non_null(out);
    bool on = false;
    size_t uncommented = 0;
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (strncmp(line, "# >>> presets", 13) == 0)
            on = true;
        else if (strncmp(line, "# <<< presets", 13) == 0)
            on = false;
        else if (on && strncmp(line, "# ", 2) == 0) {
            line += 2;
            uncommented++;
        }
        fprintf(out, "%s\n", line);
    }
    fclose(out);
    free(text);
    chmod(path, 0600);
    assert_true(uncommented > 50);
    setenv("OPENAI_API_KEY", "sk-test-openai-key", 1);
    setenv("ANTHROPIC_API_KEY", "sk-ant-test-key", 1);
    setenv("OPENROUTER_API_KEY", "sk-or-test-key", 1);
    config_problems_free(&problems);
    config_problems_init(&problems);
    int rc = config_load(path, &cfg, &problems);
    if (rc != 0)
        config_problems_print(&problems, stderr);
    assert_int_equal(rc, 0);
    for (size_t i = 0; i < TEST_ARRAY_SIZE(names); i++) {
        const struct config_provider *p = config_provider_find(cfg, names[i]);
        if (p == NULL)
            fprintf(stderr, "no preset [provider \"%s\"]\n", names[i]);
        assert_non_null(p);
        bool served = false;
        for (size_t m = 0; m < cfg->nmodels; m++)
            served = served || strcmp(cfg->models[m].provider, names[i]) == 0;
        assert_true(served);
    }
    unsetenv("OPENAI_API_KEY");
    unsetenv("ANTHROPIC_API_KEY");
    unsetenv("OPENROUTER_API_KEY");
    config_free(cfg);
    config_problems_free(&problems);
    test_tmpdir_remove(dir);
    free(dir);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_unit_verifies),
    cmocka_unit_test(test_install_tree_matches_readme),
    cmocka_unit_test(test_man_page_has_every_key),
    cmocka_unit_test(test_notify_ready_watchdog_reload_stop),
    cmocka_unit_test(test_notify_absent_is_quiet),
    cmocka_unit_test(test_console_off_on_dev_null),
    cmocka_unit_test(test_console_off_in_background),
    cmocka_unit_test(test_telegram_token_refused_exits),
    cmocka_unit_test(test_discord_close_4004_exits),
    cmocka_unit_test(test_discord_zlib_stream_configured),
    cmocka_unit_test(test_discord_rest_401_exits),
    cmocka_unit_test(test_example_presets_valid_when_uncommented),
};

TEST_GROUP_DEFINE(service, tests, NULL, NULL)
