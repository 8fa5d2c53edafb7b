/*
 * classify: which statements of a client's SQL are writes to synced tables
 * (shared/DESIGN.md §3 and §4.1). Two steps:
 *
 *   classify_may_write  a lexical scan of the text, no allocation, no parser: false means
 *                       no statement in it can write a table directly, so the relay
 *                       forwards it untouched (the fast path);
 *   classify_may_name   a scan for the names of the synced schemas and tables: false
 *                       means the text names none of them, so it is relayed untouched too
 *                       (writes to the client's own tables);
 *   classify_sql        libpg_query parse; one verdict per statement: PASS, WRITE (with
 *                       what the rewriter needs), REFUSE (SQLSTATE + message + hint),
 *                       EXECUTE (an SQL-level EXECUTE the caller must look up).
 *
 * Only direct writes are seen. A SELECT that calls a function which writes, a trigger or
 * rule on a table of the client's own, a view over a synced table, CALL, or dynamic SQL are
 * out of scope: they run as the client's role and the database's own guard on synced tables
 * (DESIGN §2) refuses them. The classifier catches what it can say something useful about.
 *
 * Lexing follows Postgres with standard_conforming_strings = on (the default since 9.1).
 * classify_may_write stays conservative for a session that turned it off; classify_sql
 * does not (libpg_query knows only "on"), so the caller should not let a session turn it
 * off, or send such a session's interesting statements through the guard only.
 *
 * Pure: no globals. libpg_query keeps a memory context per thread (freed when the thread
 * exits, or by pg_query_exit()). Caching verdicts by statement text is the caller's job;
 * a verdict depends on the text, the synced schemas and options->resolved, nothing else.
 * Stack: classify_sql refuses statements nested deeper than options->max_nesting before
 * parsing (libpg_query's protobuf output recurses without a limit and would overflow the
 * stack); with the default the worst statements need about 2 MiB of stack, so call it on
 * a thread with at least 4 MiB of stack (the main thread has 8 MiB).
 */
#ifndef APIGRES_CLASSIFY_H
#define APIGRES_CLASSIFY_H

#include <stdbool.h>
#include <stddef.h>

/* Defaults used when the option is 0. */
#define CLASSIFY_DEFAULT_MAX_LEN (1024 * 1024)
#define CLASSIFY_DEFAULT_MAX_NESTING 1000

struct PgQuery__Node; /* libpg_query's protobuf tree (pg_query.pb-c.h) */
struct arena;        /* parser/tree.h */

typedef enum classify_verdict {
    CLASSIFY_PASS,    /* not a write to a synced table: relay as is */
    CLASSIFY_WRITE,   /* INSERT/UPDATE/DELETE of a synced table: the write path */
    CLASSIFY_REFUSE,  /* answer sqlstate/message/hint; nothing of the Query may run */
    CLASSIFY_EXECUTE, /* SQL EXECUTE name: the caller looks up what `name` prepared */
} classify_verdict;

/* What the statement is, for every verdict (enough for the caller's bookkeeping:
 * CLASSIFY_CMD_PREPARE with PASS names a statement the caller may later see EXECUTEd). */
typedef enum classify_command {
    CLASSIFY_CMD_OTHER,
    CLASSIFY_CMD_SELECT,
    CLASSIFY_CMD_INSERT,
    CLASSIFY_CMD_UPDATE,
    CLASSIFY_CMD_DELETE,
    CLASSIFY_CMD_MERGE,
    CLASSIFY_CMD_COPY,
    CLASSIFY_CMD_TRUNCATE,
    CLASSIFY_CMD_EXPLAIN,
    CLASSIFY_CMD_PREPARE,
    CLASSIFY_CMD_EXECUTE,
    CLASSIFY_CMD_DO,
    CLASSIFY_CMD_CALL,
    CLASSIFY_CMD_CREATE_RULE,
    CLASSIFY_CMD_CREATE_TRIGGER,
} classify_command;

typedef enum classify_insert_source {
    CLASSIFY_INSERT_NONE,     /* not an INSERT */
    CLASSIFY_INSERT_VALUES,   /* INSERT ... VALUES (...), (...): n_rows rows */
    CLASSIFY_INSERT_SELECT,   /* INSERT ... SELECT (or anything that is not a plain VALUES) */
    CLASSIFY_INSERT_DEFAULTS, /* INSERT ... DEFAULT VALUES */
} classify_insert_source;

/* An unqualified table name the session resolved (to_regclass on the client's session):
 * schema is the schema it lives in, or NULL if it is not a table there. */
typedef struct classify_resolved {
    const char *name;
    const char *schema;
} classify_resolved;

typedef struct classify_options {
    const char *const *schemas; /* synced schemas, as Postgres spells them ("stripe") */
    size_t n_schemas;
    size_t max_len;     /* longer texts are refused (54000); 0 = CLASSIFY_DEFAULT_MAX_LEN */
    size_t max_nesting; /* lexical nesting estimate above which a text is refused (54001);
                           0 = CLASSIFY_DEFAULT_MAX_NESTING */
    const classify_resolved *resolved; /* borrowed; may be NULL */
    size_t n_resolved;
    bool keep_trees;    /* WRITE statements keep their parse tree for rewrite_plan (tree) */
} classify_options;

typedef struct classify_stmt {
    classify_verdict verdict;
    classify_command command;
    size_t offset, len; /* the statement's bytes in the input (without the ';') */

    /* CLASSIFY_WRITE (command INSERT, UPDATE or DELETE). Names are as Postgres folds them
     * (unquoted identifiers lower-cased, quoted ones exact). */
    char *schema;       /* NULL when unqualified and not resolved */
    char *table;
    bool unqualified;   /* the text names the table without a schema */
    bool returning;
    bool with;          /* a WITH clause without data-modifying statements */
    bool from;          /* UPDATE ... FROM / DELETE ... USING */
    char **columns;     /* UPDATE: assigned columns in SET order; INSERT: the column list */
    size_t n_columns;   /* INSERT: 0 = no column list (all columns, in table order) */
    classify_insert_source source;
    size_t n_rows;      /* CLASSIFY_INSERT_VALUES: rows in the VALUES list */
    int n_params;       /* highest $n referenced (0 = none), outside function bodies */
    /* With options->keep_trees: the statement's parse tree, which rewrite_plan takes instead
     * of parsing the text again. It lives as long as the result; a copy has none. */
    const struct PgQuery__Node *tree;

    /* CLASSIFY_REFUSE */
    char sqlstate[6];
    char *message;
    char *hint;         /* what to do instead; may be NULL */

    /* CLASSIFY_EXECUTE, and PASS of CLASSIFY_CMD_PREPARE: the statement name */
    char *name;

    /* Unqualified tables this verdict treated as synced because options->resolved did not
     * name them (write targets only; reading a table never matters). When n_unresolved > 0
     * the verdict is provisional: resolve the names on the session and call classify_sql
     * again with them in options->resolved. */
    char **unresolved;
    size_t n_unresolved;
} classify_stmt;

typedef struct classify_result {
    classify_stmt *stmts;
    size_t n_stmts;
    /* libpg_query could not parse the text: one PASS statement covers it all. Postgres
     * parses a whole Query message before running any of it, so a syntax error means
     * nothing runs and the client gets the database's own error. (A database newer than
     * libpg_query's Postgres 15 grammar may accept what it refused; the database's guard
     * still stops a write that gets through this way.) */
    bool parse_error;
    char *error; /* libpg_query's message when parse_error */
    struct arena *trees; /* where the statements' trees live (keep_trees), or NULL */
} classify_result;

/* The fast path's filter. True when a statement of sql[0..len) (up to the first NUL, as
 * Postgres reads a Query) starts with INSERT, UPDATE, DELETE, MERGE, WITH, COPY, PREPARE,
 * EXECUTE, EXPLAIN, CREATE, CALL, DO, TRUNCATE, ALTER or DROP, after whitespace, comments
 * and opening parentheses. Never false for a statement that writes a table directly. */
bool classify_may_write(const char *sql, size_t len);

/* Whether sql[0..len) may name one of names[0..n) (ASCII; the synced schemas and tables):
 * false when no run of letters, '_' and non-ASCII bytes anywhere in the text, in strings
 * and comments too (a DO block's body is a string), equals one of them without regard to
 * case (digits and '$' split runs: "$$stripe" in a dollar quote names stripe). True also for any backslash or "U&": the escapes of E'' strings and of Unicode
 * identifiers and strings can spell a name. A verdict of classify_sql other than PASS
 * concerns a synced table it names (or a text too long or too deep to check), so on false
 * the caller relays the text without parsing it. Reads up to a NUL, as Postgres does; no
 * allocation. */
bool classify_may_name(const char *sql, size_t len, const char *const *names, size_t n);

/* Classifies every statement of sql[0..len). Returns 0 and sets *out (caller frees with
 * classify_result_free), or -1 when out of memory. */
int classify_sql(const char *sql, size_t len, const classify_options *options,
                 classify_result **out);
void classify_result_free(classify_result *r);
/* A deep copy of r (free it with classify_result_free), or NULL when out of memory. */
classify_result *classify_result_copy(const classify_result *r);

/* What a statement does to the session's transaction block, for a proxy that must know it
 * between two ReadyForQuery messages (statements run one at a time in an extended batch). */
typedef enum classify_tx {
    CLASSIFY_TX_NONE,   /* not a transaction statement (or not one statement, or too long) */
    CLASSIFY_TX_BEGINS, /* BEGIN, START TRANSACTION */
    CLASSIFY_TX_ENDS,   /* COMMIT, END, ROLLBACK, ABORT, PREPARE TRANSACTION */
    CLASSIFY_TX_KEEPS,  /* SAVEPOINT, RELEASE, ROLLBACK TO, and COMMIT/ROLLBACK AND CHAIN
                           (their tags are COMMIT and ROLLBACK, yet the block stays open) */
} classify_tx;

/* The statement sql[0..len) as a transaction statement. A lexical check of the first keyword
 * comes first, so other statements cost no parse; texts over 1 KiB are NONE. */
classify_tx classify_transaction(const char *sql, size_t len);

/* For logs and tests: "pass", "write", "refuse", "execute". */
const char *classify_verdict_name(classify_verdict v);

#endif
