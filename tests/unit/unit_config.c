/* Unit tests for proxy/config: listen addresses, connection strings, env references, files,
 * the syncs list. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/config.h"
#include "tests/unit/unit.h"

static void test_listen(void)
{
    listen_addr la;
    CHECK(config_parse_listen("127.0.0.1:6432", &la) == 0 && strcmp(la.host, "127.0.0.1") == 0 &&
              la.port == 6432,
          "listen host:port");
    CHECK(config_parse_listen("[::1]:7000", &la) == 0 && strcmp(la.host, "::1") == 0 &&
              la.port == 7000,
          "listen [v6]:port");
    CHECK(config_parse_listen("6432", &la) < 0, "listen without host is refused");
    CHECK(config_parse_listen("h:99999", &la) < 0, "listen port out of range is refused");
    CHECK(config_parse_listen(":5", &la) < 0, "listen with empty host is refused");
}

static void test_database(void)
{
    config c;
    char err[256];
    config_init(&c);
    CHECK(config_set_database(&c, "postgres://app:secret@db.example.com:6543/app", err, sizeof err) == 0 &&
              strcmp(c.backend.host, "db.example.com") == 0 && strcmp(c.backend.port, "6543") == 0 &&
              !c.backend.is_unix,
          "database URI: host and port");
    CHECK(strstr(config_database_label(&c), "secret") == NULL &&
              strcmp(config_database_label(&c), "db.example.com:6543") == 0,
          "database label never carries the password");
    CHECK(config_set_database(&c, "host=/tmp/pg port=5433", err, sizeof err) == 0 && c.backend.is_unix &&
              strcmp(c.backend.unix_path, "/tmp/pg/.s.PGSQL.5433") == 0,
          "database conninfo with a socket directory");
    CHECK(config_set_database(&c, "host=a,b port=1,2", err, sizeof err) == 0 &&
              strcmp(c.backend.host, "a") == 0 && strcmp(c.backend.port, "1") == 0,
          "database with several hosts uses the first");
    CHECK(config_set_database(&c, "hostaddr=10.1.2.3 host=x port=7", err, sizeof err) == 0 &&
              strcmp(c.backend.host, "10.1.2.3") == 0,
          "database hostaddr wins over host");
    CHECK(config_set_database(&c, "password=hunter2 port=notaport", err, sizeof err) < 0 &&
              strstr(err, "hunter2") == NULL,
          "invalid database port is refused without echoing secrets");
    CHECK(config_set_database(&c, "host='unterminated password=hunter2", err, sizeof err) < 0 &&
              strstr(err, "hunter2") == NULL,
          "unparsable conninfo is refused without echoing it");
    config_free(&c);
}

static void test_env(void)
{
    char err[256];
    setenv("APIGRES_UNIT_X", "value", 1);
    unsetenv("APIGRES_UNIT_UNSET");
    char *s = config_expand_env("a ${APIGRES_UNIT_X} b ${APIGRES_UNIT_X}", err, sizeof err);
    CHECK(s && strcmp(s, "a value b value") == 0, "${VAR} references are expanded");
    free(s);
    s = config_expand_env("${APIGRES_UNIT_UNSET}", err, sizeof err);
    CHECK(!s && strstr(err, "APIGRES_UNIT_UNSET"), "an unset variable is an error naming it");
    s = config_expand_env("${unterminated", err, sizeof err);
    CHECK(!s, "a malformed reference is an error");
    s = config_expand_env("plain $ text", err, sizeof err);
    CHECK(s && strcmp(s, "plain $ text") == 0, "a lone $ is kept");
    free(s);
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

static void test_file(void)
{
    char path[] = "/tmp/apigres-unit-config-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    char err[256];
    config c;

    setenv("APIGRES_UNIT_DB", "host=127.0.0.1 port=5999", 1);
    write_file(path, "{\"listen\": [\"127.0.0.1:7001\", \"[::1]:7002\"], \"database\": "
                     "\"${APIGRES_UNIT_DB}\", \"log_level\": \"warn\", \"shutdown_timeout\": 3, "
                     "\"max_message_size\": 65536}");
    config_init(&c);
    int rc = config_load_file(&c, path, err, sizeof err);
    CHECK(rc == 0 && c.nlisten == 2 && c.listen[1].port == 7002 &&
              strcmp(c.backend.port, "5999") == 0 && c.log_level == LOG_WARN &&
              c.shutdown_timeout == 3 && c.max_message_size == 65536,
          "config file with every key type");
    config_free(&c);

    config_init(&c);
    CHECK(c.threads == config_auto_threads() && c.threads >= 1 && c.threads <= CONFIG_AUTO_THREADS,
          "unless configured, a thread per CPU, at most %d (%d)", CONFIG_AUTO_THREADS, c.threads);
    write_file(path, "{\"threads\": 3}");
    CHECK(config_load_file(&c, path, err, sizeof err) == 0 && c.threads == 3, "threads: 3 loads");
    config_free(&c);
    const char *bad_threads[] = {"0", "65", "2.5", "\"2\""};
    for (size_t i = 0; i < sizeof bad_threads / sizeof *bad_threads; i++) {
        char text[64];
        snprintf(text, sizeof text, "{\"threads\": %s}", bad_threads[i]);
        write_file(path, text);
        config_init(&c);
        CHECK(config_load_file(&c, path, err, sizeof err) < 0 && strstr(err, "threads"), "threads: %s is refused",
              bad_threads[i]);
        config_free(&c);
    }

    write_file(path, "{\"listn\": \"127.0.0.1:1\"}");
    config_init(&c);
    CHECK(config_load_file(&c, path, err, sizeof err) < 0 && strstr(err, "listn"),
          "an unknown key is refused by name");
    config_free(&c);

    write_file(path, "{\"listen\": 5}");
    config_init(&c);
    CHECK(config_load_file(&c, path, err, sizeof err) < 0, "a key of the wrong type is refused");
    config_free(&c);

    write_file(path, "{not json");
    config_init(&c);
    CHECK(config_load_file(&c, path, err, sizeof err) < 0, "invalid JSON is refused");
    config_free(&c);

    config_init(&c);
    CHECK(config_finish(&c, err, sizeof err) == 0 && c.nlisten == 1 && c.listen[0].port == 6432 &&
              strcmp(c.read_role, "apigres_read") == 0 && !c.service_database,
          "defaults: listen 127.0.0.1:6432, read role apigres_read");
    config_free(&c);
    unlink(path);
}

/* Loads text as a config file; returns config_load_file's result (err filled). */
static int load(config *c, const char *text, char *err, size_t errlen)
{
    char path[] = "/tmp/apigres-unit-syncs-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    write_file(path, text);
    config_init(c);
    int rc = config_load_file(c, path, err, errlen);
    unlink(path);
    return rc;
}

static void test_syncs(void)
{
    char err[512];
    config c;
    setenv("APIGRES_UNIT_SK", "sk_test_unitsecret42", 1);
    setenv("APIGRES_UNIT_RT", "5Aep861refreshsecret", 1);
    int rc = load(&c, "{\"syncs\": [{\"name\": \"billing\", \"provider\": \"stripe\", \"schema\": \"stripe\","
                      " \"collection_ids\": [\"stripe:customer\", \"stripe:price\"],"
                      " \"credential\": {\"secret_key\": \"${APIGRES_UNIT_SK}\"},"
                      " \"rate_limit\": {\"allowed_requests\": 10, \"interval\": 2, \"max_concurrent_requests\": 4},"
                      " \"request_timeout\": 5, \"connect_timeout\": 1.5, \"poll_interval\": 0.5,"
                      " \"api_base\": \"http://127.0.0.1:12111/\"},"
                      " {\"provider\": \"salesforce\", \"api_base\": \"https://x.my.salesforce.com\","
                      " \"credential\": {\"client_id\": \"cid\", \"client_secret\": \"cs\", \"refresh_token\": \"${APIGRES_UNIT_RT}\"}}]}",
                 err, sizeof err);
    sync_config *st = &c.syncs[0], *sf = &c.syncs[1];
    CHECK(rc == 0 && c.nsyncs == 2, "two syncs load (%s)", rc ? err : "");
    if (rc == 0) {
        CHECK(strcmp(st->name, "billing") == 0 && st->provider == SYNC_STRIPE && strcmp(st->schema, "stripe") == 0 &&
                  st->ncollections == 2 && strcmp(st->collections[1], "price") == 0 &&
                  strcmp(st->secret_key, "sk_test_unitsecret42") == 0 && st->allowed_requests == 10 &&
                  st->interval == 2 && st->max_concurrent == 4 &&
                  strcmp(st->api_base, "http://127.0.0.1:12111") == 0 && st->request_timeout == 5 &&
                  st->connect_timeout == 1.5 && sf->request_timeout == 30 && sf->connect_timeout == 10 &&
                  st->poll_interval == 0.5 && sf->poll_interval == 5,
              "stripe sync: every key, the key from the environment, the base without its trailing slash");
        CHECK(sync_config_has_collection(st, "customer") && !sync_config_has_collection(st, "coupon"),
              "collection_ids select the collections");
        CHECK(strcmp(sf->name, "salesforce") == 0 && strcmp(sf->schema, "salesforce") == 0 &&
                  sf->ncollections == 0 && sync_config_has_collection(sf, "invoice__c") &&
                  strcmp(sf->login_url, "https://login.salesforce.com") == 0 &&
                  strcmp(sf->api_version, "59.0") == 0 && sf->allowed_requests == 15000 &&
                  sf->interval == 86400 && sf->max_concurrent == 25,
              "salesforce sync: name and schema default to the provider, every collection, "
              "the login URL, API version and daily limit by default");
        char line[1024];
        sync_config_describe(st, line, sizeof line);
        CHECK(strstr(line, "billing") && strstr(line, "customer,price") && !strstr(line, "unitsecret") &&
                  !strstr(line, "sk_test"),
              "the description names the sync but not the key: %s", line);
        sync_config_describe(sf, line, sizeof line);
        CHECK(!strstr(line, "refreshsecret"), "nor the refresh token: %s", line);
    }
    config_free(&c);

    rc = load(&c, "{\"service_database\": \"host=/tmp port=5 user=apigres password=pw\", \"read_role\": \"app_read\"}",
              err, sizeof err);
    CHECK(rc == 0 && strcmp(c.service_database, "host=/tmp port=5 user=apigres password=pw") == 0 &&
              strcmp(c.read_role, "app_read") == 0,
          "service_database and read_role");
    config_free(&c);
    CHECK(load(&c, "{\"service_database\": \"host='oops password=hunter2\"}", err, sizeof err) < 0 &&
              !strstr(err, "hunter2"),
          "a bad service_database is refused without echoing it (%s)", err);
    config_free(&c);
    CHECK(load(&c, "{\"read_role\": \"Bad Role\"}", err, sizeof err) < 0, "a read_role that needs quoting is refused");
    config_free(&c);

    load(&c, "{\"syncs\": [{\"provider\": \"stripe\", \"credential\": {\"secret_key\": \"sk_live_x\"}}]}", err, sizeof err);
    CHECK(c.nsyncs == 1 && c.syncs[0].allowed_requests == 100 && c.syncs[0].interval == 1 &&
              strcmp(c.syncs[0].api_base, "https://api.stripe.com") == 0,
          "a live Stripe key gets Stripe's live limit (100/s) and the real API by default");
    config_free(&c);
    load(&c, "{\"syncs\": [{\"provider\": \"stripe\", \"credential\": {\"secret_key\": \"sk_test_x\"}}]}", err, sizeof err);
    CHECK(c.nsyncs == 1 && c.syncs[0].allowed_requests == 25, "a test key gets the test-mode limit (25/s)");
    config_free(&c);

    static const struct {
        const char *json, *want, *name;
    } bad[] = {
        {"{\"syncs\": {}}", "expected a list", "syncs not a list"},
        {"{\"syncs\": [{\"credential\": {\"secret_key\": \"sk_test_x\"}}]}", "provider", "no provider"},
        {"{\"syncs\": [{\"provider\": \"hubspot\"}]}", "unknown provider", "unknown provider"},
        {"{\"syncs\": [{\"provider\": \"stripe\"}]}", "credential", "no credential"},
        {"{\"syncs\": [{\"provider\": \"stripe\", \"credential\": {\"secret_key\": \"pk_test_publishable\"}}]}",
         "not a Stripe secret", "a publishable key"},
        {"{\"syncs\": [{\"provider\": \"stripe\", \"credential\": {\"secret_key\": \"sk_test_x\"}, "
         "\"collection_ids\": [\"stripe:charge\"]}]}", "no collection \"charge\"", "an unknown Stripe collection"},
        {"{\"syncs\": [{\"provider\": \"stripe\", \"credential\": {\"secret_key\": \"sk_test_x\"}, "
         "\"collection_ids\": [\"salesforce:contact\"]}]}", "not a stripe collection", "another provider's collection"},
        {"{\"syncs\": [{\"provider\": \"stripe\", \"credential\": {\"secret_key\": \"sk_test_x\"}, "
         "\"collection_ids\": [\"stripe:customer\", \"stripe:customer\"]}]}", "twice", "a collection listed twice"},
        {"{\"syncs\": [{\"provider\": \"stripe\", \"credential\": {\"secret_key\": \"sk_test_x\"}, "
         "\"schema\": \"Bad-Name\"}]}", "identifier", "a schema that needs quoting"},
        {"{\"syncs\": [{\"provider\": \"stripe\", \"credential\": {\"secret_key\": \"sk_test_x\"}, "
         "\"rate_limit\": {\"allowed_requests\": -1}}]}", "allowed_requests", "a negative rate"},
        {"{\"syncs\": [{\"provider\": \"stripe\", \"credential\": {\"secret_key\": \"sk_test_x\"}, "
         "\"rate_limit\": {\"per_second\": 5}}]}", "per_second", "an unknown rate_limit key"},
        {"{\"syncs\": [{\"provider\": \"stripe\", \"credential\": {\"secret_key\": \"sk_test_x\"}, "
         "\"api_base\": \"ftp://x\"}]}", "URL", "a base that is not http(s)"},
        {"{\"syncs\": [{\"provider\": \"stripe\", \"credential\": {\"secret_key\": \"sk_test_x\"}, "
         "\"request_timeout\": 0}]}", "request_timeout", "a zero timeout"},
        {"{\"syncs\": [{\"provider\": \"stripe\", \"credential\": {\"secret_key\": \"sk_test_x\"}, "
         "\"api_base\": \"https://sk_test_inurl@api.stripe.com\"}]}", "credential", "credentials in the URL"},
        {"{\"syncs\": [{\"provider\": \"stripe\", \"credential\": {\"secret_key\": \"sk_test_x\"}, "
         "\"colection_ids\": []}]}", "colection_ids", "a misspelt key"},
        {"{\"syncs\": [{\"provider\": \"stripe\", \"credential\": {\"access_token\": \"x\"}}]}", "unknown key",
         "a Salesforce credential on Stripe"},
        {"{\"syncs\": [{\"provider\": \"salesforce\", \"credential\": {\"access_token\": \"00Dx!tok\"}}]}",
         "instance URL", "a static token without the instance URL"},
        {"{\"syncs\": [{\"provider\": \"salesforce\", \"api_base\": \"https://x\", "
         "\"credential\": {\"client_id\": \"a\", \"refresh_token\": \"r\"}}]}", "client_secret", "half a refresh flow"},
        {"{\"syncs\": [{\"provider\": \"salesforce\", \"api_base\": \"https://x\", \"api_version\": \"v59\", "
         "\"credential\": {\"access_token\": \"t\"}}]}", "version", "a malformed API version"},
        {"{\"syncs\": [{\"provider\": \"stripe\", \"credential\": {\"secret_key\": \"sk_test_a\"}}, "
         "{\"provider\": \"stripe\", \"schema\": \"s2\", \"credential\": {\"secret_key\": \"sk_test_b\"}}]}",
         "named \"stripe\"", "two syncs with one name"},
        {"{\"syncs\": [{\"provider\": \"stripe\", \"credential\": {\"secret_key\": \"sk_test_a\"}}, "
         "{\"name\": \"s2\", \"provider\": \"stripe\", \"credential\": {\"secret_key\": \"sk_test_b\"}}]}",
         "schema \"stripe\"", "two syncs in one schema"},
        {"{\"syncs\": [{\"provider\": \"stripe\", \"credential\": {\"secret_key\": \"${APIGRES_UNIT_UNSET}\"}}]}",
         "APIGRES_UNIT_UNSET", "an unset environment variable"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        rc = load(&c, bad[i].json, err, sizeof err);
        CHECK(rc < 0 && strstr(err, bad[i].want) && !strstr(err, "sk_test_") && !strstr(err, "pk_test_"),
              "refused: %s (%s)", bad[i].name, err);
        config_free(&c);
    }
}

int main(void)
{
    test_listen();
    test_database();
    test_env();
    test_file();
    test_syncs();
    return unit_done();
}
