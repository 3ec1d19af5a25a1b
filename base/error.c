#include "base/error.h"

#include <uv.h>

const char *hb_strerror(int code)
{
    switch ((enum hb_error)code) {
    case HB_OK:
        return "success";
    case HB_EINVAL:
        return "invalid argument";
    case HB_ENOMEM:
        return "out of memory";
    case HB_ECONFIG:
        return "invalid configuration";
    case HB_EIO:
        return "input/output error";
    case HB_ESTORAGE:
        return "storage error";
    case HB_ESCHEMA:
        return "database schema is not the one this program uses";
    case HB_EEXISTS:
        return "already exists";
    case HB_ECONFLICT:
        return "conflicts with an existing entry";
    case HB_ENOTFOUND:
        return "not found";
    case HB_EFUNDS:
        return "insufficient credits";
    case HB_ESTATE:
        return "invalid state";
    case HB_ETIMEOUT:
        return "timed out";
    case HB_ECANCELED:
        return "canceled";
    case HB_EHTTP:
        return "HTTP error";
    case HB_EPROTO:
        return "protocol error";
    case HB_ETAMPER:
        return "ledger integrity check failed";
    case HB_ELIMIT:
        return "limit reached";
    case HB_EBUSY:
        return "busy";
    case HB_EPERM:
        return "not permitted";
    case HB_EOVERFLOW:
        return "value out of range";
    }
    if (code < 0 && code > HB_ERROR_BASE)
        return uv_strerror(code);
    return "unknown error";
}
