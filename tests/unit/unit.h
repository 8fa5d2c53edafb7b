/*
 * unit.h: the smallest test harness that prints what tests/run.sh counts.
 * CHECK(cond, name) prints "ok - name" or "not ok - name (file:line)";
 * unit_done() returns the exit status.
 */
#ifndef APIGRES_UNIT_H
#define APIGRES_UNIT_H

#include <stdio.h>

static int unit_failures;

#define CHECK(cond, ...)                                                                       \
    do {                                                                                       \
        int unit_ok_ = (cond) ? 1 : 0; /* evaluated once: conditions may have effects */      \
        printf(unit_ok_ ? "ok - " : "not ok - ");                                              \
        unit_failures += !unit_ok_;                                                            \
        printf(__VA_ARGS__);                                                                   \
        if (!unit_ok_)                                                                         \
            printf(" (%s:%d)", __FILE__, __LINE__);                                            \
        printf("\n");                                                                          \
    } while (0)

static inline int unit_done(void) { return unit_failures ? 1 : 0; }

#endif
