#include "core/format.h"

#include "core/ledger.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

char *format_credits(char *buf, size_t cap, int64_t amount)
{
    char digits[32];
    uint64_t v = amount < 0 ? (uint64_t)0 - (uint64_t)amount : (uint64_t)amount;
    int n = snprintf(digits, sizeof(digits), "%llu", (unsigned long long)v);
    char out[48];
    size_t o = 0;
    if (amount < 0)
        out[o++] = '-';
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = '\0';
    snprintf(buf, cap, "%s", out);
    return buf;
}

char *format_time(char *buf, size_t cap, int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%d %H:%M", &tm);
    return buf;
}

char *format_day(char *buf, size_t cap, int64_t day)
{
    time_t t = (time_t)(day * 86400);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%d", &tm);
    return buf;
}

const char *format_kind(uint32_t kind)
{
    switch (kind) {
    case LEDGER_KIND_DEPOSIT:
        return "deposit";
    case LEDGER_KIND_BONUS:
        return "welcome bonus";
    case LEDGER_KIND_GRANT:
        return "grant";
    case LEDGER_KIND_GENERATION:
        return "generation";
    case LEDGER_KIND_REFUND:
        return "refund";
    case LEDGER_KIND_REVERSAL:
        return "correction";
    case LEDGER_KIND_CHARGEBACK:
        return "chargeback";
    case LEDGER_KIND_TRANSFER:
        return "transfer";
    case LEDGER_KIND_SHARE:
        return "revenue share";
    }
    return "transfer";
}
