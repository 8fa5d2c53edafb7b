/* Unit tests for proxy/config: listen addresses, connection strings, env references, files. */
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
    CHECK(config_finish(&c, err, sizeof err) == 0 && c.nlisten == 1 && c.listen[0].port == 6432,
          "defaults: listen 127.0.0.1:6432");
    config_free(&c);
    unlink(path);
}

int main(void)
{
    test_listen();
    test_database();
    test_env();
    test_file();
    return unit_done();
}
