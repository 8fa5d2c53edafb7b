/*
 * setup: the SQL a DBA runs once before apigres syncs into a database (`apigres setup`):
 * the service role apigres logs in as (the user of service_database), which creates, owns
 * and alone writes the synced tables; the read role (read_role) that application roles
 * are granted to read them; and, for Supabase, the grants its API roles need and the
 * row-level-security notes that keep synced data from being exposed by accident.
 * Idempotent; never contains a password (the DBA sets it, see the output's comments).
 */
#ifndef APIGRES_SETUP_H
#define APIGRES_SETUP_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/config.h"
#include "proxy/pgwire.h"

/* Appends the SQL (NUL-terminated). Returns 0, or -1 with err (e.g. no service user). */
int setup_sql(pgbuf *out, const config *cfg, bool supabase, char *err, size_t errlen);

#endif
