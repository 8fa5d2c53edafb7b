/*
 * upstream_client: N GET requests to URL with C in flight, through upstream/call (rate
 * limiter with no limit, retry policy, libcurl multi on libuv): what the write path and
 * the sync worker pay per request. Prints one line: "requests=N seconds=S failed=F".
 *
 *   upstream_client URL N C
 */
#include <stdio.h>
#include <stdlib.h>

#include "upstream/call.h"

static upstream_target target;
static http_options opts;
static const char *const headers[] = {"Authorization: Bearer sk_test_bench", "Stripe-Version: 2023-08-16", NULL};
static int remaining, in_flight, failed;

static void start_one(void);

static void on_done(upstream_call *c, http_response *resp, int attempts, void *data)
{
    in_flight--;
    if (resp->outcome != HTTP_OK || resp->status != 200)
        failed++;
    start_one();
}

static void start_one(void)
{
    if (remaining == 0)
        return;
    remaining--;
    in_flight++;
    if (!upstream_call_start(&target, &opts, RATELIMIT_SYNC, false, on_done, NULL)) {
        in_flight--;
        failed++;
    }
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s URL N CONCURRENCY\n", argv[0]);
        return 2;
    }
    uv_loop_t *loop = uv_default_loop();
    ratelimit rl;
    ratelimit_init(&rl, loop, 0, 0, 0);
    upstream_target_init(&target, loop, &rl);
    opts.method = "GET";
    opts.url = argv[1];
    opts.headers = headers;
    remaining = atoi(argv[2]);
    int total = remaining, concurrency = atoi(argv[3]);
    uint64_t t0 = uv_hrtime();
    for (int i = 0; i < concurrency; i++)
        start_one();
    while (in_flight > 0)
        uv_run(loop, UV_RUN_ONCE);
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    printf("requests=%d seconds=%.3f failed=%d\n", total, secs, failed);
    upstream_target_close(&target);
    ratelimit_close(&rl);
    uv_run(loop, UV_RUN_DEFAULT);
    return failed ? 1 : 0;
}
