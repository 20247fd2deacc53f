/* cli_util.c - the small helpers every cairn command uses: error messages, sizes, the names of
 * copy, server and meta replica states (see cli.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

void cli_err(const char *fmt, ...)
{
    va_list ap;
    fputs("cairn: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

const char *cli_size(uint64_t bytes, char *buf, size_t len)
{
    static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < 1024) {
        snprintf(buf, len, "%u B", (unsigned)bytes);
        return buf;
    }
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024 && u < 6) {
        v /= 1024;
        u++;
    }
    snprintf(buf, len, "%.1f %s", v, unit[u]);
    return buf;
}

const char *cli_strerror(int rc)
{
    switch (rc) {
    case -EOPNOTSUPP:
        return "the meta service does not support this request (it is older than this cairn)";
    case -EBADMSG:
        return "malformed reply from the meta service";
    case -CAIRN_ENOTLEADER:
        return "this meta service replica is not the leader";
    default:
        return strerror(rc < 0 ? -rc : rc);
    }
}

const char *cli_copy_state_name(uint8_t state)
{
    switch (state) {
    case COPY_VALID:
        return "valid";
    case COPY_STALE:
        return "stale";
    case COPY_BAD:
        return "bad";
    case COPY_DOWN:
        return "down";
    case COPY_PENDING:
        return "pending";
    case COPY_DRAINING:
        return "draining";
    default:
        return "?";
    }
}

const char *cli_meta_state_name(uint8_t state)
{
    switch (state) {
    case META_ST_UNAVAILABLE:
        return "unavailable";
    case META_ST_FOLLOWER:
        return "follower";
    case META_ST_CANDIDATE:
        return "candidate";
    case META_ST_LEADER:
        return "leader";
    default:
        return "?";
    }
}

const char *cli_meta_role_name(uint8_t role)
{
    switch (role) {
    case META_ROLE_STANDBY:
        return "standby";
    case META_ROLE_VOTER:
        return "voter";
    case META_ROLE_SPARE:
        return "spare";
    default:
        return "?";
    }
}

const char *cli_cs_state_name(uint8_t state)
{
    switch (state) {
    case CS_STATE_UP:
        return "up";
    case CS_STATE_DOWN:
        return "down";
    case CS_STATE_DRAINING:
        return "draining";
    default:
        return "?";
    }
}
