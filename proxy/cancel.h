/*
 * cancel: the proxy's own cancel keys and the CancelRequests it sends to the database.
 *
 * Each client receives a BackendKeyData with its backend's own process id (so that
 * PQbackendPID(), pg_backend_pid() and the sender pid of its own NOTIFYs agree, as they do
 * without a proxy) and a random secret made by the proxy: the backend's secret never
 * leaves the proxy. A CancelRequest from a client is looked up here and, when pid and
 * secret both match, a new connection carries the backend's real key to the database.
 * Lookups are O(1) so a flood of cancel requests costs little.
 */
#ifndef APIGRES_CANCEL_H
#define APIGRES_CANCEL_H

#include <stdint.h>
#include <uv.h>

#include "proxy/config.h"

#define CANCEL_BUCKETS 4096

typedef struct cancel_entry {
    uint32_t pid;
    uint32_t key;
    struct cancel_entry *next;
} cancel_entry;

typedef struct cancel_map {
    cancel_entry *buckets[CANCEL_BUCKETS];
    uint32_t next_pid;
} cancel_map;

void cancel_map_init(cancel_map *m);
/* Registers e under pid with a fresh random key. Should pid be taken already (only
 * possible with several database servers behind one proxy) a synthetic one is used.
 * Returns 0 or -1 (no randomness). */
int cancel_map_add(cancel_map *m, cancel_entry *e, uint32_t pid);
void cancel_map_remove(cancel_map *m, cancel_entry *e);
/* The entry with this pid and key, or NULL. The key comparison does not leak timing. */
cancel_entry *cancel_map_find(const cancel_map *m, uint32_t pid, uint32_t key);

/* Sends a CancelRequest for the backend's pid/key on a new connection; fire and forget. */
void cancel_send(uv_loop_t *loop, const backend_addr *addr, uint32_t pid, uint32_t key);

#endif
