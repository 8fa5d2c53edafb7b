/*
 * log: one line per event on stderr, "2026-11-25T02:40:00.123Z LEVEL message".
 *
 * Callers never pass secrets (passwords, API keys, full connection strings): the log is
 * meant to be shared in bug reports. Lines are written with a single write(2) so lines
 * from the sync thread and the proxy loop never interleave mid-line.
 */
#ifndef APIGRES_LOG_H
#define APIGRES_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level level);
int log_enabled(enum log_level level);
/* Parses "debug", "info", "warn", "error"; returns 0 or -1 for an unknown name. */
int log_parse_level(const char *name, enum log_level *out);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) do { if (log_enabled(LOG_DEBUG)) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
