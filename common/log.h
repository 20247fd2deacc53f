/* log.h - levelled logging with a subsystem tag, to stderr or a file.
 *
 * One process-wide level; messages below it cost one comparison. Logs say what happened and
 * to which object, once, at the place that decides. */
#ifndef CAIRN_LOG_H
#define CAIRN_LOG_H

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

extern int log_level_current;

/* Parse "error", "warn", "info", "debug"; returns the level or -1. */
int log_level_parse(const char *s);
/* Send logs to PATH (append) instead of stderr; returns 0 or -errno. */
int log_open_file(const char *path);
void log_msg(int level, const char *subsys, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define LOG_ERR(sub, ...) log_msg(LOG_LVL_ERROR, sub, __VA_ARGS__)
#define LOG_WARN(sub, ...) log_msg(LOG_LVL_WARN, sub, __VA_ARGS__)
#define LOG_INFO(sub, ...)                                                                         \
    do {                                                                                           \
        if (log_level_current >= LOG_LVL_INFO) log_msg(LOG_LVL_INFO, sub, __VA_ARGS__);            \
    } while (0)
#define LOG_DEBUG(sub, ...)                                                                        \
    do {                                                                                           \
        if (log_level_current >= LOG_LVL_DEBUG) log_msg(LOG_LVL_DEBUG, sub, __VA_ARGS__);          \
    } while (0)

#endif
