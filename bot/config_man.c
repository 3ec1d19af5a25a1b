/* roff for haibot(1) and bot.conf(5); see config_man.h. */
#include "bot/config_man.h"

#include "bot/config_internal.h"

#include <inttypes.h>
#include <string.h>

#define CONFIG_MAN_DATE "2026"
#define CONFIG_MAN_SOURCE "HAI Bot"

/* Text as roff: backslashes escaped, hyphens as minus signs (options and
 * keys must copy as typed), and a line never starting with a control
 * character. */
static void config_man_text(FILE *out, const char *s)
{
    if (*s == '.' || *s == '\'')
        fputs("\\&", out);
    for (; *s != '\0'; s++) {
        if (*s == '\\')
            fputs("\\e", out);
        else if (*s == '-')
            fputs("\\-", out);
        else
            fputc(*s, out);
    }
}

static const char *config_man_type(enum config_type t)
{
    switch (t) {
    case CONFIG_STRING:
        return "text";
    case CONFIG_BOOL:
        return "boolean";
    case CONFIG_INT:
        return "integer";
    case CONFIG_SECONDS:
        return "duration";
    case CONFIG_ENUM:
        return "one of";
    case CONFIG_URL:
        return "URL";
    case CONFIG_SECRET:
        return "secret";
    }
    return "text";
}

static void config_man_key(FILE *out, const struct config_key_schema *k)
{
    fputs(".TP\n\\fB", out);
    config_man_text(out, k->name);
    fputs("\\fR (", out);
    fputs(config_man_type(k->type), out);
    if (k->type == CONFIG_ENUM && k->choices != NULL) {
        for (size_t i = 0; k->choices[i] != NULL; i++) {
            fputs(i == 0 ? " " : ", ", out);
            config_man_text(out, k->choices[i]);
        }
    }
    if (k->type == CONFIG_INT || k->type == CONFIG_SECONDS) {
        if (k->max >= CREDITS_MAX)
            fprintf(out, ", at least %" PRId64, k->min);
        else
            fprintf(out, ", %" PRId64 " to %" PRId64, k->min, k->max);
        if (k->type == CONFIG_SECONDS)
            fputs(" seconds", out);
    }
    fputs(")\n", out);
    config_man_text(out, k->help);
    fputs(".\n", out);
    if (k->flags & CONFIG_KEY_DEFAULT_NAME) {
        fputs("Default: the section's name.\n", out);
    } else if (k->def != NULL) {
        fputs("Default: \\fB", out);
        config_man_text(out, k->def[0] != '\0' ? k->def : "\"\"");
        fputs("\\fR.\n", out);
    }
    if (k->flags & CONFIG_KEY_REQUIRED)
        fputs("Required.\n", out);
    if (k->flags & CONFIG_KEY_REQUIRED_WHEN_ENABLED)
        fputs("Required when the section is enabled.\n", out);
    fputs(k->flags & CONFIG_KEY_LIVE ? "A change applies at once (live).\n"
                                     : "A change applies at the next start (restart).\n",
          out);
}

static void config_man_conf(FILE *out)
{
    fputs(".TH BOT.CONF 5 \"" CONFIG_MAN_DATE "\" \"" CONFIG_MAN_SOURCE "\" \"File Formats\"\n"
          ".SH NAME\nbot.conf \\- HAI Bot configuration file\n"
          ".SH SYNOPSIS\n/etc/haibot/bot.conf, or the file given with \\fBhaibot \\-c\\fR\n"
          ".SH DESCRIPTION\n"
          "The configuration of \\fBhaibot\\fR(1): which platforms it serves, the model "
          "providers and models, prices and limits, payments. "
          "\\fBhaibot check\\-config \\-c\\fR \\fIFILE\\fR checks a file against the same table "
          "this page is written from.\n"
          ".SS Syntax\n"
          "\\fB[section]\\fR and, for repeatable sections, \\fB[section \"NAME\"]\\fR start a "
          "section; \\fIkey\\fR \\fB=\\fR \\fIvalue\\fR lines follow, one per line. Lines "
          "starting with \\fB#\\fR or \\fB;\\fR are comments, and a comment may follow a value "
          "after a space. A value in double quotes keeps leading and trailing spaces. "
          "Booleans are true/false, yes/no, on/off or 1/0. Durations are seconds; 90, 90s, "
          "5m, 2h and 1d are all accepted. Credits are whole numbers.\n"
          ".SS Secrets from the environment\n"
          "Any key can be read from the environment instead: \\fIkey\\fB_env =\\fR \\fINAME\\fR "
          "takes the key's value from the variable \\fINAME\\fR (an unset variable is an "
          "error). Prefer it for tokens and API keys; under systemd they live in "
          "/etc/haibot/env. Keep the file private (mode 600): the daemon warns when other "
          "users can read it.\n"
          ".SS Reloading\n"
          "The daemon watches the file and reloads it on SIGHUP. A valid file is applied: keys "
          "marked live below take effect at once, the others at the next start. An invalid "
          "file is refused as a whole and the running configuration stays.\n"
          ".SH SECTIONS AND KEYS\n",
          out);
    size_t n = 0;
    const struct config_section_schema *s = config_schema_get(&n);
    for (size_t i = 0; i < n; i++) {
        fputs(".SS [", out);
        config_man_text(out, s[i].name);
        fputs(s[i].repeatable ? " \"NAME\"]\n" : "]\n", out);
        config_man_text(out, s[i].help);
        fputs(".\n", out);
        for (size_t k = 0; k < s[i].nkeys; k++)
            config_man_key(out, &s[i].keys[k]);
    }
    fputs(".SH FILES\n.TP\n/etc/haibot/bot.conf\nthe configuration of the installed service\n"
          ".TP\n/etc/haibot/bot.conf.example\nevery section, commented, ready to copy\n"
          ".TP\n/etc/haibot/env\nsecrets for the service, as NAME=value lines\n"
          ".SH SEE ALSO\n\\fBhaibot\\fR(1)\n",
          out);
}

static void config_man_command(FILE *out)
{
    fputs(".TH HAIBOT 1 \"" CONFIG_MAN_DATE "\" \"" CONFIG_MAN_SOURCE "\" \"User Commands\"\n"
          ".SH NAME\nhaibot \\- credits for AI generations on Discord, Telegram and a console\n"
          ".SH SYNOPSIS\n"
          ".B haibot\n[\\fB\\-c\\fR \\fIFILE\\fR]\n.br\n"
          ".B haibot init\n[\\fB\\-c\\fR \\fIFILE\\fR] [\\fB\\-\\-non\\-interactive\\fR ...]\n.br\n"
          ".B haibot check\\-config\n[\\fB\\-c\\fR \\fIFILE\\fR]\n.br\n"
          ".B haibot ledger verify\n[\\fB\\-\\-head\\fR \\fISEQ\\fB:\\fIHASH\\fR] "
          "[\\fB\\-c\\fR \\fIFILE\\fR]\n.br\n"
          ".B haibot ledger head\n[\\fB\\-c\\fR \\fIFILE\\fR]\n.br\n"
          ".B haibot ledger backup\n\\fIOUT\\fR [\\fB\\-c\\fR \\fIFILE\\fR]\n.br\n"
          ".B haibot audit verify\n[\\fB\\-c\\fR \\fIFILE\\fR]\n.br\n"
          ".B haibot version\n"
          ".SH DESCRIPTION\n"
          "\\fBhaibot\\fR is a daemon that lets members of a Discord server or a Telegram chat "
          "spend credits on AI generations (chat, images) across models and providers. Every "
          "credit movement lands in an append\\-only, hash\\-chained, double\\-entry ledger. "
          "Without a command it runs the daemon on the configuration file (default "
          "\\fIbot.conf\\fR in the current folder), described in \\fBbot.conf\\fR(5).\n"
          ".PP\n"
          "On a terminal the console adapter reads commands from standard input. Under a "
          "service manager, or started in the background of a shell, the console turns itself "
          "off and says so in the log.\n"
          ".SH COMMANDS\n"
          ".TP\n\\fBinit\\fR\nask a few questions (or take flags: \\fBhaibot init \\-\\-help\\fR) "
          "and write a first, private bot.conf\n"
          ".TP\n\\fBcheck\\-config\\fR\ncheck the configuration file and print every problem "
          "with its line; exit 0 when it is valid\n"
          ".TP\n\\fBledger verify\\fR\nrecompute the ledger's hash chain and invariants; with "
          "\\fB\\-\\-head\\fR, also fail unless the chain holds that published head\n"
          ".TP\n\\fBledger head\\fR\nprint the ledger's chain head\n"
          ".TP\n\\fBledger backup\\fR \\fIOUT\\fR\ncopy the ledger while the daemon runs, verify "
          "the copy and print its head; never overwrites\n"
          ".TP\n\\fBaudit verify\\fR\nrecompute the audit trail's hash chain\n"
          ".TP\n\\fBversion\\fR\nprint the version\n"
          ".SH OPTIONS\n"
          ".TP\n\\fB\\-c\\fR, \\fB\\-\\-config\\fR \\fIFILE\\fR\nthe configuration file\n"
          ".TP\n\\fB\\-\\-man\\fR \\fISECTION\\fR\nprint this page (1) or \\fBbot.conf\\fR(5) "
          "(5) as roff\n"
          ".SH SIGNALS\n"
          ".TP\nSIGHUP\nreload the configuration file\n"
          ".TP\nSIGTERM, SIGINT\nstop: refuse new commands, let work in flight finish within "
          "[bot] shutdown_grace, then exit; a second signal exits at once\n"
          ".SH ENVIRONMENT\n"
          ".TP\nNOTIFY_SOCKET, WATCHDOG_USEC\nset by systemd for a Type=notify service: the "
          "daemon reports READY=1 once its adapters are up, RELOADING=1 and STOPPING=1, and "
          "pings the watchdog from its event loop\n"
          ".TP\n\\fINAME\\fR\nany variable a \\fIkey\\fB_env\\fR line of the configuration "
          "names\n"
          ".SH EXIT STATUS\n"
          ".TP\n0\na clean stop, or a valid file (check\\-config), an intact chain (verify)\n"
          ".TP\n1\nthe daemon could not start, the file has problems, or the chain is broken\n"
          ".TP\n2\nwrong arguments, or a verify that could not run\n"
          ".TP\n78\na platform refused the bot's token (Telegram 401, Discord 4004): "
          "restarting will not help, so the unit does not restart on it\n"
          ".SH FILES\n"
          ".TP\n/etc/haibot/bot.conf\nthe configuration of the installed service\n"
          ".TP\n/etc/haibot/env\nsecrets for the service (NAME=value lines, mode 600)\n"
          ".TP\n/var/lib/haibot\nthe service's state: the ledger database\n"
          ".TP\nhaibot.service\nthe systemd unit\n"
          ".SH SEE ALSO\n\\fBbot.conf\\fR(5), \\fBsystemctl\\fR(1), \\fBsystemd.service\\fR(5)\n",
          out);
}

int config_man_write(int section, FILE *out)
{
    if (section == 1)
        config_man_command(out);
    else if (section == 5)
        config_man_conf(out);
    else
        return -1;
    return fflush(out) == 0 && !ferror(out) ? 0 : -1;
}
