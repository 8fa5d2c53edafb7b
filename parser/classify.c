/*
 * classify: the lexical pre-check and the libpg_query classifier (see classify.h).
 *
 * The lexer follows Postgres's scan.l closely enough to find statement boundaries and
 * first keywords: whitespace, -- and nested block comments, '...' (with '' doubling, and
 * backslash escapes in E'...' strings), "..." identifiers, $tag$...$tag$ bodies, $n
 * parameters, and identifiers that may contain '$' (so "a$b$" never opens a dollar quote).
 * Wherever it could disagree with Postgres the text is a syntax error, and Postgres runs
 * nothing of a Query message it cannot parse.
 *
 * The classifier walks libpg_query's protobuf tree generically through the protobuf-c
 * descriptors, so a data-modifying statement is found wherever the grammar allows one
 * (WITH, EXPLAIN, PREPARE, COPY (...) TO, rule actions) without a case per node type.
 */
#include "parser/classify.h"
#include "parser/tree.h"
#include "parser/format.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

/* ---------------------------------------------------------------- lexer */

enum tok { TOK_EOF, TOK_WORD, TOK_STRING, TOK_QIDENT, TOK_NUMBER, TOK_PARAM, TOK_OPEN,
           TOK_CLOSE, TOK_COMMA, TOK_SEMI, TOK_OP };

typedef struct lexer {
    const char *s;
    size_t len, pos;
    bool backslash;     /* '...' takes backslash escapes (standard_conforming_strings off) */
    bool saw_backslash; /* a plain '...' literal held a backslash */
} lexer;

typedef struct token {
    enum tok type;
    size_t start, len;
} token;

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* scan.l: ident_start [A-Za-z\200-\377_], ident_cont adds [0-9\$] */
static bool ident_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static bool ident_cont(unsigned char c) { return ident_start(c) || is_digit(c) || c == '$'; }

static bool dolq_cont(unsigned char c) { return ident_start(c) || is_digit(c); }

static bool op_char(unsigned char c) { return c && strchr("~!@#^&|`?+-*/%<>=:", c) != NULL; }

static bool comment_at(const lexer *lx, size_t p)
{
    return p + 1 < lx->len && ((lx->s[p] == '-' && lx->s[p + 1] == '-') ||
                               (lx->s[p] == '/' && lx->s[p + 1] == '*'));
}

static void skip_space_and_comments(lexer *lx)
{
    const char *s = lx->s;
    for (;;) {
        while (lx->pos < lx->len && is_space((unsigned char)s[lx->pos]))
            lx->pos++;
        if (!comment_at(lx, lx->pos))
            return;
        if (s[lx->pos] == '-') {
            while (lx->pos < lx->len && s[lx->pos] != '\n' && s[lx->pos] != '\r')
                lx->pos++;
            continue;
        }
        lx->pos += 2;
        size_t depth = 1; /* block comments nest in Postgres */
        while (lx->pos < lx->len && depth > 0) {
            if (lx->pos + 1 < lx->len && s[lx->pos] == '/' && s[lx->pos + 1] == '*') {
                depth++;
                lx->pos += 2;
            } else if (lx->pos + 1 < lx->len && s[lx->pos] == '*' && s[lx->pos + 1] == '/') {
                depth--;
                lx->pos += 2;
            } else {
                lx->pos++;
            }
        }
    }
}

/* pos is at the opening quote q; leaves pos after the closing one (or at the end). */
static void lex_quoted(lexer *lx, char q, bool backslash)
{
    lx->pos++;
    while (lx->pos < lx->len) {
        char c = lx->s[lx->pos];
        if (c == '\\' && q == '\'') {
            if (backslash) {
                lx->pos = lx->pos + 2 < lx->len ? lx->pos + 2 : lx->len;
                continue;
            }
            lx->saw_backslash = true;
        }
        if (c == q) {
            if (lx->pos + 1 < lx->len && lx->s[lx->pos + 1] == q) {
                lx->pos += 2;
                continue;
            }
            lx->pos++;
            return;
        }
        lx->pos++;
    }
}

static token lex_next(lexer *lx)
{
    skip_space_and_comments(lx);
    token t = {TOK_EOF, lx->pos, 0};
    if (lx->pos >= lx->len)
        return t;
    const char *s = lx->s;
    unsigned char c = (unsigned char)s[lx->pos];
    size_t start = lx->pos;
    if (ident_start(c)) {
        while (lx->pos < lx->len && ident_cont((unsigned char)s[lx->pos]))
            lx->pos++;
        if (lx->pos - start == 1 && (c == 'e' || c == 'E') && lx->pos < lx->len &&
            s[lx->pos] == '\'') {
            lex_quoted(lx, '\'', true); /* E'...' always takes backslash escapes */
            t.type = TOK_STRING;
        } else {
            t.type = TOK_WORD;
        }
    } else if (c == '\'') {
        lex_quoted(lx, '\'', lx->backslash);
        t.type = TOK_STRING;
    } else if (c == '"') {
        lex_quoted(lx, '"', false);
        t.type = TOK_QIDENT;
    } else if (c == '$') {
        size_t p = lx->pos + 1;
        if (p < lx->len && is_digit((unsigned char)s[p])) {
            while (p < lx->len && is_digit((unsigned char)s[p]))
                p++;
            lx->pos = p;
            t.type = TOK_PARAM;
        } else {
            while (p < lx->len && dolq_cont((unsigned char)s[p]))
                p++;
            if (p < lx->len && s[p] == '$') {
                /* $tag$ ... $tag$: the body ends at the same delimiter, or at the end */
                size_t dlen = p + 1 - start;
                lx->pos = p + 1;
                while (lx->pos < lx->len) {
                    if (s[lx->pos] == '$' && lx->len - lx->pos >= dlen &&
                        memcmp(s + lx->pos, s + start, dlen) == 0) {
                        lx->pos += dlen;
                        break;
                    }
                    lx->pos++;
                }
                t.type = TOK_STRING;
            } else {
                lx->pos++;
                t.type = TOK_OP;
            }
        }
    } else if (is_digit(c) || (c == '.' && lx->pos + 1 < lx->len &&
                               is_digit((unsigned char)s[lx->pos + 1]))) {
        while (lx->pos < lx->len && (is_digit((unsigned char)s[lx->pos]) ||
                                     ident_start((unsigned char)s[lx->pos]) ||
                                     s[lx->pos] == '.'))
            lx->pos++;
        t.type = TOK_NUMBER;
    } else if (c == '(' || c == '[') {
        lx->pos++;
        t.type = TOK_OPEN;
    } else if (c == ')' || c == ']') {
        lx->pos++;
        t.type = TOK_CLOSE;
    } else if (c == ',') {
        lx->pos++;
        t.type = TOK_COMMA;
    } else if (c == ';') {
        lx->pos++;
        t.type = TOK_SEMI;
    } else if (op_char(c)) {
        lx->pos++; /* an operator stops where a comment starts, as in scan.l */
        while (lx->pos < lx->len && op_char((unsigned char)s[lx->pos]) && !comment_at(lx, lx->pos))
            lx->pos++;
        t.type = TOK_OP;
    } else {
        lx->pos++;
        t.type = TOK_OP;
    }
    t.len = lx->pos - start;
    return t;
}

static bool word_is(const char *w, size_t len, const char *kw)
{
    size_t i = 0;
    for (; i < len && kw[i]; i++) {
        char c = w[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != kw[i])
            return false;
    }
    return i == len && kw[i] == '\0';
}

/* The first keywords of statements that can write a table or otherwise need a look
 * (DESIGN §3). */
static const char *const interesting[] = {
    "insert", "update", "delete", "merge", "with",     "copy",  "prepare", "execute",
    "explain", "create", "call",  "do",    "truncate", "alter", "drop",
};

static bool is_interesting(const char *w, size_t len)
{
    for (size_t i = 0; i < sizeof interesting / sizeof interesting[0]; i++)
        if (word_is(w, len, interesting[i]))
            return true;
    return false;
}

static size_t text_len(const char *sql, size_t len)
{
    const char *nul = sql ? memchr(sql, '\0', len) : NULL;
    return nul ? (size_t)(nul - sql) : (sql ? len : 0);
}

static bool scan_may_write(const char *sql, size_t len, bool backslash, bool *saw_backslash)
{
    lexer lx = {sql, len, 0, backslash, false};
    bool at_start = true;
    for (;;) {
        token t = lex_next(&lx);
        if (t.type == TOK_EOF)
            break;
        if (t.type == TOK_SEMI) {
            at_start = true;
            continue;
        }
        if (!at_start)
            continue;
        if (t.type == TOK_OPEN && sql[t.start] == '(')
            continue; /* (SELECT ...) UNION ..., ((WITH ...)) */
        at_start = false;
        if (t.type == TOK_WORD && is_interesting(sql + t.start, t.len))
            return true;
    }
    *saw_backslash = lx.saw_backslash;
    return false;
}

/* The first keyword of the first statement, after whitespace, comments and parentheses
 * (len 0 when there is none). */
static token first_word(const char *sql, size_t len)
{
    lexer lx = {sql, len, 0, false, false};
    for (;;) {
        token t = lex_next(&lx);
        if (t.type == TOK_OPEN && sql[t.start] == '(')
            continue;
        if (t.type != TOK_WORD)
            t.len = 0;
        return t;
    }
}

classify_tx classify_transaction(const char *sql, size_t len)
{
    static const char *const words[] = {"begin", "start", "commit", "end", "rollback", "abort",
                                        "savepoint", "release", "prepare"};
    len = text_len(sql, len);
    token w = first_word(sql, len);
    bool tx_word = false;
    for (size_t i = 0; i < sizeof words / sizeof *words && w.len; i++)
        tx_word |= word_is(sql + w.start, w.len, words[i]);
    if (!tx_word || len > 1024) /* short, so libpg_query's recursion is no concern */
        return CLASSIFY_TX_NONE;
    char text[1025];
    memcpy(text, sql, len);
    text[len] = '\0';
    PgQueryProtobufParseResult parsed = pg_query_parse_protobuf(text);
    classify_tx verdict = CLASSIFY_TX_NONE;
    arena nodes = ARENA_INIT;
    PgQuery__ParseResult *tree = parsed.error ? NULL : arena_unpack(&nodes, &parsed.parse_tree);
    if (tree && tree->n_stmts == 1 && tree->stmts[0]->stmt &&
        tree->stmts[0]->stmt->node_case == PG_QUERY__NODE__NODE_TRANSACTION_STMT) {
        const PgQuery__TransactionStmt *t = tree->stmts[0]->stmt->transaction_stmt;
        switch (t->kind) {
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_BEGIN:
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_START:
            verdict = CLASSIFY_TX_BEGINS;
            break;
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT:
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK:
            verdict = t->chain ? CLASSIFY_TX_KEEPS : CLASSIFY_TX_ENDS;
            break;
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_PREPARE:
            verdict = CLASSIFY_TX_ENDS;
            break;
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_SAVEPOINT:
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_RELEASE:
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK_TO:
            verdict = CLASSIFY_TX_KEEPS;
            break;
        default: /* COMMIT PREPARED, ROLLBACK PREPARED: outside any block */
            break;
        }
    }
    arena_free(&nodes);
    pg_query_free_protobuf_parse_result(parsed);
    return verdict;
}

bool classify_may_write(const char *sql, size_t len)
{
    len = text_len(sql, len);
    bool saw_backslash = false;
    if (scan_may_write(sql, len, false, &saw_backslash))
        return true;
    /* With standard_conforming_strings off, 'a\'; UPDATE ...' ends elsewhere: look again
     * the way such a session would lex it, so that neither reading hides a statement. */
    return saw_backslash && scan_may_write(sql, len, true, &saw_backslash);
}

/* A byte of a run classify_may_name compares: a letter, '_' or a non-ASCII byte. Digits
 * and '$' continue an identifier in Postgres but also end a dollar quote ("$$stripe"),
 * a parameter or a number right before a name: they split runs, so that a name beside
 * them is still seen (a name merely looking like one more often costs a parse, nothing
 * else). */
static bool name_byte(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' || ch >= 0x80;
}

static bool same_name(const char *run, size_t len, const char *name)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char a = (unsigned char)run[i], b = (unsigned char)name[i];
        if (b == '\0')
            return false;
        if (a >= 'A' && a <= 'Z')
            a = (unsigned char)(a - 'A' + 'a');
        if (b >= 'A' && b <= 'Z')
            b = (unsigned char)(b - 'A' + 'a');
        if (a != b)
            return false;
    }
    return name[len] == '\0';
}

bool classify_may_name(const char *sql, size_t len, const char *const *names, size_t n)
{
    len = text_len(sql, len);
    for (size_t i = 0; i < len;) {
        unsigned char ch = (unsigned char)sql[i];
        if (ch == '\\' || (ch == '&' && i > 0 && (sql[i - 1] == 'u' || sql[i - 1] == 'U')))
            return true;
        if (!name_byte(ch)) {
            i++;
            continue;
        }
        size_t start = i;
        while (i < len && name_byte((unsigned char)sql[i]))
            i++;
        for (size_t k = 0; k < n; k++)
            if (same_name(sql + start, i - start, names[k]))
                return true;
    }
    return false;
}

/*
 * An upper bound on how deep the parse tree can nest, from tokens alone. libpg_query's
 * protobuf output recurses once per tree level with no depth check, and a left-deep chain
 * ("1+1+1...", "SELECT 1 UNION SELECT 1 ...", "a JOIN b ON ... JOIN c ...") grows the tree
 * without growing bison's stack, so some 50 KB of "+1" overflow an 8 MiB stack. Each tree
 * level takes at least one token, so the estimate counts, per parenthesis level, the tokens
 * since the last comma (a comma starts a sibling in a flat list) plus the set operations
 * and joins at that level (which chain across commas), summed over the open levels.
 * Returns as soon as the estimate exceeds limit.
 */
static size_t nesting_estimate(const char *sql, size_t len, size_t limit, size_t *stack)
{
    lexer lx = {sql, len, 0, false, false};
    size_t depth = 0, seg = 0, chain = 0, sum = 0, max = 0;
    for (;;) {
        token t = lex_next(&lx);
        switch (t.type) {
        case TOK_EOF:
            return max;
        case TOK_SEMI:
            sum -= seg + chain;
            seg = chain = 0;
            continue;
        case TOK_COMMA:
            sum -= seg;
            seg = 0;
            continue;
        case TOK_CLOSE:
            if (depth > 0) {
                sum -= seg + chain;
                depth--;
                seg = stack[2 * depth];
                chain = stack[2 * depth + 1];
                continue;
            }
            seg++;
            sum++;
            break;
        case TOK_WORD:
            if (word_is(sql + t.start, t.len, "union") || word_is(sql + t.start, t.len, "except") ||
                word_is(sql + t.start, t.len, "intersect") || word_is(sql + t.start, t.len, "join"))
                chain++;
            else
                seg++;
            sum++;
            break;
        default:
            seg++;
            sum++;
            break;
        }
        if (sum > max)
            max = sum;
        if (max > limit)
            return max;
        if (t.type == TOK_OPEN) {
            /* depth < sum <= limit: the caller's stack holds limit + 1 levels */
            stack[2 * depth] = seg;
            stack[2 * depth + 1] = chain;
            depth++;
            seg = chain = 0;
        }
    }
}

/* ---------------------------------------------------------------- results */

typedef struct nested_write {
    classify_command command;
    const PgQuery__RangeVar *rel;
} nested_write;

enum target { TARGET_LOCAL, TARGET_SYNCED, TARGET_UNRESOLVED };

typedef struct ctx {
    const classify_options *opt;
    size_t max_depth; /* tree walk limit, a safety net behind nesting_estimate */
    bool too_deep;
    bool oom;
    int max_param;
    nested_write *nested; /* data-modifying statements below the top-level one */
    size_t n_nested, cap_nested;
} ctx;

static char *dup_str(ctx *c, const char *s)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        c->oom = true;
    return d;
}

static void add_name(ctx *c, char ***list, size_t *n, const char *name, bool unique)
{
    if (unique)
        for (size_t i = 0; i < *n; i++)
            if (strcmp((*list)[i], name) == 0)
                return;
    char **grown = realloc(*list, (*n + 1) * sizeof **list);
    if (!grown) {
        c->oom = true;
        return;
    }
    *list = grown;
    char *d = dup_str(c, name);
    if (d)
        grown[(*n)++] = d;
}

static void set_refuse(ctx *c, classify_stmt *st, const char *sqlstate, const char *hint,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void set_refuse(ctx *c, classify_stmt *st, const char *sqlstate, const char *hint,
                       const char *fmt, ...)
{
    st->verdict = CLASSIFY_REFUSE;
    va_list ap;
    va_start(ap, fmt);
    if (format_refusal(st->sqlstate, &st->message, &st->hint, sqlstate, hint, fmt, ap) < 0)
        c->oom = true;
    va_end(ap);
}

static bool is_synced_schema(const classify_options *opt, const char *schema)
{
    for (size_t i = 0; i < opt->n_schemas; i++)
        if (opt->schemas[i] && strcmp(opt->schemas[i], schema) == 0)
            return true;
    return false;
}

/* Where a write target lives; *schema is the schema it resolves to (NULL if unknown). */
static enum target target_of(const ctx *c, const PgQuery__RangeVar *rv, const char **schema)
{
    *schema = NULL;
    if (!rv || !rv->relname || !*rv->relname)
        return TARGET_LOCAL;
    if (rv->schemaname && *rv->schemaname) {
        *schema = rv->schemaname;
    } else {
        size_t i = 0;
        for (; i < c->opt->n_resolved; i++)
            if (c->opt->resolved[i].name && strcmp(c->opt->resolved[i].name, rv->relname) == 0)
                break;
        if (i == c->opt->n_resolved)
            return TARGET_UNRESOLVED; /* search_path decides: the caller asks the session */
        *schema = c->opt->resolved[i].schema;
        if (!*schema)
            return TARGET_LOCAL;
    }
    return is_synced_schema(c->opt, *schema) ? TARGET_SYNCED : TARGET_LOCAL;
}

/* "stripe.customer", or "customer" as the client wrote it; into buf. */
static const char *display_name(const PgQuery__RangeVar *rv, char *buf, size_t size)
{
    if (rv->schemaname && *rv->schemaname)
        snprintf(buf, size, "%s.%s", rv->schemaname, rv->relname);
    else
        snprintf(buf, size, "%s", rv->relname);
    return buf;
}

static const char *command_verb(classify_command cmd)
{
    switch (cmd) {
    case CLASSIFY_CMD_INSERT: return "INSERT";
    case CLASSIFY_CMD_UPDATE: return "UPDATE";
    case CLASSIFY_CMD_DELETE: return "DELETE";
    case CLASSIFY_CMD_MERGE: return "MERGE";
    default: return "write";
    }
}

/* ---------------------------------------------------------------- tree walk */

/* The message a Node holds (its oneof), through the descriptor. */
static const ProtobufCMessage *node_msg(const PgQuery__Node *n)
{
    if (!n || n->node_case == PG_QUERY__NODE__NODE__NOT_SET)
        return NULL;
    const ProtobufCMessageDescriptor *d = n->base.descriptor;
    for (unsigned i = 0; i < d->n_fields; i++)
        if (d->fields[i].id == (uint32_t)n->node_case)
            return *(ProtobufCMessage *const *)((const char *)n + d->fields[i].offset);
    return NULL;
}

static void note_nested(ctx *c, classify_command cmd, const PgQuery__RangeVar *rel)
{
    if (c->n_nested == c->cap_nested) {
        size_t cap = c->cap_nested ? 2 * c->cap_nested : 4;
        nested_write *grown = realloc(c->nested, cap * sizeof *grown);
        if (!grown) {
            c->oom = true;
            return;
        }
        c->nested = grown;
        c->cap_nested = cap;
    }
    c->nested[c->n_nested++] = (nested_write){cmd, rel};
}

static void walk(ctx *c, const ProtobufCMessage *m, size_t depth, bool top);

typedef struct walk_below {
    ctx *c;
    size_t depth;
} walk_below;

static void walk_child(const ProtobufCMessage *child, void *data)
{
    const walk_below *b = data;
    if (!b->c->too_deep)
        walk(b->c, child, b->depth, false);
}

/* Visits every message below m: records $n parameters and data-modifying statements
 * (other than m itself when top). Function bodies (CREATE FUNCTION ... BEGIN ATOMIC) are
 * skipped: they run later, as the client's role, under the database's guard. */
static void walk(ctx *c, const ProtobufCMessage *m, size_t depth, bool top)
{
    if (!m)
        return;
    if (depth > c->max_depth) {
        c->too_deep = true;
        return;
    }
    const ProtobufCMessageDescriptor *d = m->descriptor;
    if (d == &pg_query__param_ref__descriptor) {
        int32_t n = ((const PgQuery__ParamRef *)m)->number;
        if (n > c->max_param)
            c->max_param = n;
        return;
    }
    if (d == &pg_query__create_function_stmt__descriptor)
        return;
    if (!top) {
        if (d == &pg_query__insert_stmt__descriptor)
            note_nested(c, CLASSIFY_CMD_INSERT, ((const PgQuery__InsertStmt *)m)->relation);
        else if (d == &pg_query__update_stmt__descriptor)
            note_nested(c, CLASSIFY_CMD_UPDATE, ((const PgQuery__UpdateStmt *)m)->relation);
        else if (d == &pg_query__delete_stmt__descriptor)
            note_nested(c, CLASSIFY_CMD_DELETE, ((const PgQuery__DeleteStmt *)m)->relation);
        else if (d == &pg_query__merge_stmt__descriptor)
            note_nested(c, CLASSIFY_CMD_MERGE, ((const PgQuery__MergeStmt *)m)->relation);
    }
    walk_below below = {c, depth + 1};
    tree_children(m, walk_child, &below);
}

/* The first nested write whose target is synced, else the first whose target is
 * unresolved (listing every unresolved one on st), else NULL. */
static const nested_write *nested_hit(ctx *c, classify_stmt *st)
{
    const nested_write *unresolved = NULL;
    for (size_t i = 0; i < c->n_nested; i++) {
        const char *schema;
        enum target t = target_of(c, c->nested[i].rel, &schema);
        if (t == TARGET_SYNCED)
            return &c->nested[i];
        if (t == TARGET_UNRESOLVED && !unresolved)
            unresolved = &c->nested[i];
    }
    if (unresolved)
        for (size_t i = 0; i < c->n_nested; i++) {
            const char *schema;
            if (target_of(c, c->nested[i].rel, &schema) == TARGET_UNRESOLVED)
                add_name(c, &st->unresolved, &st->n_unresolved, c->nested[i].rel->relname, true);
        }
    return unresolved;
}

/* ---------------------------------------------------------------- statements */

static const char hint_separate[] =
    "Run the write to the synced table as a statement of its own: apigres carries out "
    "INSERT, UPDATE and DELETE on synced tables through the API.";

static void refuse_nested(ctx *c, classify_stmt *st, const nested_write *w, const char *where)
{
    char name[256];
    display_name(w->rel, name, sizeof name);
    if (w->command == CLASSIFY_CMD_MERGE)
        set_refuse(c, st, "0A000", "Use INSERT, UPDATE and DELETE statements instead.",
                   "MERGE into synced table %s is not supported", name);
    else
        set_refuse(c, st, "0A000", hint_separate, "%s on synced table %s %s is not supported",
                   command_verb(w->command), name, where);
}

static bool is_current_of(const PgQuery__Node *where)
{
    return where && where->node_case == PG_QUERY__NODE__NODE_CURRENT_OF_EXPR;
}

/* INSERT, UPDATE or DELETE at the top: a write when the target is synced. */
static void classify_dml(ctx *c, classify_stmt *st, const PgQuery__Node *node)
{
    const PgQuery__InsertStmt *ins = NULL;
    const PgQuery__UpdateStmt *upd = NULL;
    const PgQuery__DeleteStmt *del = NULL;
    const PgQuery__RangeVar *rel;
    const PgQuery__WithClause *with;
    if (node->node_case == PG_QUERY__NODE__NODE_INSERT_STMT) {
        ins = node->insert_stmt;
        st->command = CLASSIFY_CMD_INSERT;
        rel = ins->relation;
        with = ins->with_clause;
    } else if (node->node_case == PG_QUERY__NODE__NODE_UPDATE_STMT) {
        upd = node->update_stmt;
        st->command = CLASSIFY_CMD_UPDATE;
        rel = upd->relation;
        with = upd->with_clause;
    } else {
        del = node->delete_stmt;
        st->command = CLASSIFY_CMD_DELETE;
        rel = del->relation;
        with = del->with_clause;
    }
    const char *schema;
    enum target t = target_of(c, rel, &schema);
    if (t == TARGET_LOCAL) {
        const nested_write *w = nested_hit(c, st);
        if (w)
            refuse_nested(c, st, w, "in a WITH clause");
        return;
    }
    if (t == TARGET_UNRESOLVED)
        add_name(c, &st->unresolved, &st->n_unresolved, rel->relname, true);
    char name[256];
    display_name(rel, name, sizeof name);
    if (c->n_nested > 0) {
        set_refuse(c, st, "0A000", "Run the data-modifying WITH queries and the write to the "
                                   "synced table as separate statements.",
                   "a write to synced table %s cannot be combined with a data-modifying WITH "
                   "clause", name);
        return;
    }
    if (ins && ins->on_conflict_clause) {
        set_refuse(c, st, "0A000", "Check for the existing row with SELECT, then INSERT or "
                                   "UPDATE it.",
                   "INSERT ... ON CONFLICT on synced table %s is not supported", name);
        return;
    }
    if ((upd && is_current_of(upd->where_clause)) || (del && is_current_of(del->where_clause))) {
        set_refuse(c, st, "0A000", "Use WHERE id = ... with the id of the cursor's current row.",
                   "%s ... WHERE CURRENT OF on synced table %s is not supported",
                   command_verb(st->command), name);
        return;
    }
    if (upd)
        for (size_t i = 0; i < upd->n_target_list; i++) {
            const PgQuery__Node *n = upd->target_list[i];
            if (n->node_case == PG_QUERY__NODE__NODE_RES_TARGET && n->res_target->name &&
                strcmp(n->res_target->name, "id") == 0) {
                set_refuse(c, st, "428C9", "The id is assigned by the API. To change it, "
                                           "INSERT a new row and DELETE the old one.",
                           "column \"id\" of synced table %s cannot be updated", name);
                return;
            }
        }

    st->verdict = CLASSIFY_WRITE;
    st->schema = dup_str(c, schema);
    st->table = dup_str(c, rel->relname);
    st->unqualified = !(rel->schemaname && *rel->schemaname);
    st->with = with != NULL;
    if (ins) {
        st->returning = ins->n_returning_list > 0;
        for (size_t i = 0; i < ins->n_cols; i++)
            if (ins->cols[i]->node_case == PG_QUERY__NODE__NODE_RES_TARGET)
                add_name(c, &st->columns, &st->n_columns, ins->cols[i]->res_target->name, false);
        const PgQuery__Node *src = ins->select_stmt;
        if (!src) {
            st->source = CLASSIFY_INSERT_DEFAULTS;
        } else if (src->node_case == PG_QUERY__NODE__NODE_SELECT_STMT &&
                   src->select_stmt->n_values_lists > 0 &&
                   src->select_stmt->op == PG_QUERY__SET_OPERATION__SETOP_NONE) {
            st->source = CLASSIFY_INSERT_VALUES;
            st->n_rows = src->select_stmt->n_values_lists;
        } else {
            st->source = CLASSIFY_INSERT_SELECT;
        }
    } else if (upd) {
        st->returning = upd->n_returning_list > 0;
        st->from = upd->n_from_clause > 0;
        for (size_t i = 0; i < upd->n_target_list; i++)
            if (upd->target_list[i]->node_case == PG_QUERY__NODE__NODE_RES_TARGET)
                add_name(c, &st->columns, &st->n_columns, upd->target_list[i]->res_target->name,
                         false);
    } else {
        st->returning = del->n_returning_list > 0;
        st->from = del->n_using_clause > 0;
    }
}

static bool explain_analyzes(const PgQuery__ExplainStmt *ex)
{
    bool analyze = false;
    for (size_t i = 0; i < ex->n_options; i++) {
        const PgQuery__Node *n = ex->options[i];
        if (n->node_case != PG_QUERY__NODE__NODE_DEF_ELEM || !n->def_elem->defname ||
            strcmp(n->def_elem->defname, "analyze") != 0)
            continue;
        const PgQuery__Node *arg = n->def_elem->arg;
        bool off = false; /* anything but a clear "off" counts as on */
        if (arg && arg->node_case == PG_QUERY__NODE__NODE_STRING && arg->string->sval) {
            const char *v = arg->string->sval;
            off = word_is(v, strlen(v), "false") || word_is(v, strlen(v), "off");
        } else if (arg && arg->node_case == PG_QUERY__NODE__NODE_INTEGER) {
            off = arg->integer->ival == 0;
        } else if (arg && arg->node_case == PG_QUERY__NODE__NODE_BOOLEAN) {
            off = !arg->boolean->boolval;
        }
        analyze = !off; /* the last mention wins, as in Postgres */
    }
    return analyze;
}

static bool ci_match(const char *s, size_t len, size_t at, const char *w, size_t wlen)
{
    if (at + wlen > len)
        return false;
    return word_is(s + at, wlen, w);
}

/* A DO body that mentions a synced schema as a qualifier ("stripe." or "\"stripe\".")
 * and a write keyword. A heuristic by design: see parser/README.md. */
static bool do_body_writes_synced(const classify_options *opt, const char *body)
{
    static const char *const writes[] = {"insert", "update", "delete", "merge", "truncate", "copy"};
    size_t len = strlen(body);
    bool qualifier = false, write = false;
    for (size_t i = 0; i < len && !(qualifier && write); i++) {
        unsigned char prev = i ? (unsigned char)body[i - 1] : ' ';
        if (ident_cont(prev))
            continue; /* only at the start of a word */
        for (size_t k = 0; k < sizeof writes / sizeof writes[0] && !write; k++) {
            size_t wl = strlen(writes[k]);
            if (ci_match(body, len, i, writes[k], wl) &&
                (i + wl == len || !ident_cont((unsigned char)body[i + wl])))
                write = true;
        }
        for (size_t k = 0; k < opt->n_schemas && !qualifier; k++) {
            const char *sch = opt->schemas[k];
            size_t sl = sch ? strlen(sch) : 0;
            if (!sl || !ci_match(body, len, i, sch, sl))
                continue;
            size_t after = i + sl;
            if (prev == '"') {
                if (after >= len || body[after] != '"')
                    continue;
                after++;
            }
            while (after < len && is_space((unsigned char)body[after]))
                after++;
            qualifier = after < len && body[after] == '.';
        }
    }
    return qualifier && write;
}

/* CREATE RULE / CREATE TRIGGER on rel: refused (0A000) when rel is synced or may be (an
 * unqualified name the caller must resolve). Returns whether it refused. */
static bool refuse_on_synced(ctx *c, classify_stmt *st, const PgQuery__RangeVar *rel, const char *what,
                             const char *hint)
{
    const char *schema;
    char name[256];
    enum target t = target_of(c, rel, &schema);
    if (t == TARGET_LOCAL)
        return false;
    if (t == TARGET_UNRESOLVED)
        add_name(c, &st->unresolved, &st->n_unresolved, rel->relname, true);
    set_refuse(c, st, "0A000", hint, "%s on synced table %s are not supported", what,
               display_name(rel, name, sizeof name));
    return true;
}

static void classify_stmt_node(ctx *c, classify_stmt *st, const PgQuery__Node *node)
{
    const char *schema;
    char name[256];
    switch (node->node_case) {
    case PG_QUERY__NODE__NODE_INSERT_STMT:
    case PG_QUERY__NODE__NODE_UPDATE_STMT:
    case PG_QUERY__NODE__NODE_DELETE_STMT:
        classify_dml(c, st, node);
        return;
    case PG_QUERY__NODE__NODE_MERGE_STMT: {
        const PgQuery__RangeVar *rel = node->merge_stmt->relation;
        st->command = CLASSIFY_CMD_MERGE;
        enum target t = target_of(c, rel, &schema);
        if (t != TARGET_LOCAL) {
            if (t == TARGET_UNRESOLVED)
                add_name(c, &st->unresolved, &st->n_unresolved, rel->relname, true);
            set_refuse(c, st, "0A000", "Use INSERT, UPDATE and DELETE statements instead.",
                       "MERGE into synced table %s is not supported",
                       display_name(rel, name, sizeof name));
            return;
        }
        break;
    }
    case PG_QUERY__NODE__NODE_COPY_STMT: {
        const PgQuery__CopyStmt *cp = node->copy_stmt;
        st->command = CLASSIFY_CMD_COPY;
        if (cp->is_from && cp->relation) {
            enum target t = target_of(c, cp->relation, &schema);
            if (t != TARGET_LOCAL) {
                if (t == TARGET_UNRESOLVED)
                    add_name(c, &st->unresolved, &st->n_unresolved, cp->relation->relname, true);
                set_refuse(c, st, "0A000", "Use INSERT (one statement with a VALUES list for "
                                           "many rows): apigres creates each row through the API.",
                           "COPY FROM into synced table %s is not supported",
                           display_name(cp->relation, name, sizeof name));
                return;
            }
        }
        const nested_write *w = nested_hit(c, st);
        if (w)
            refuse_nested(c, st, w, "inside COPY");
        return;
    }
    case PG_QUERY__NODE__NODE_TRUNCATE_STMT: {
        const PgQuery__TruncateStmt *tr = node->truncate_stmt;
        st->command = CLASSIFY_CMD_TRUNCATE;
        const PgQuery__RangeVar *synced = NULL, *unresolved = NULL;
        for (size_t i = 0; i < tr->n_relations; i++) {
            const PgQuery__Node *n = tr->relations[i];
            if (n->node_case != PG_QUERY__NODE__NODE_RANGE_VAR)
                continue;
            enum target t = target_of(c, n->range_var, &schema);
            if (t == TARGET_SYNCED && !synced)
                synced = n->range_var;
            if (t == TARGET_UNRESOLVED) {
                unresolved = unresolved ? unresolved : n->range_var;
                add_name(c, &st->unresolved, &st->n_unresolved, n->range_var->relname, true);
            }
        }
        const PgQuery__RangeVar *hit = synced ? synced : unresolved;
        if (hit)
            set_refuse(c, st, "0A000", "DELETE the rows instead: apigres deletes each one "
                                       "through the API.",
                       "TRUNCATE of synced table %s is not supported",
                       display_name(hit, name, sizeof name));
        return;
    }
    case PG_QUERY__NODE__NODE_EXPLAIN_STMT: {
        st->command = CLASSIFY_CMD_EXPLAIN;
        if (!explain_analyzes(node->explain_stmt))
            return; /* plain EXPLAIN runs nothing */
        const nested_write *w = nested_hit(c, st);
        if (w) {
            display_name(w->rel, name, sizeof name);
            set_refuse(c, st, "0A000", "Use EXPLAIN without ANALYZE: it shows the plan "
                                       "without executing the write.",
                       "EXPLAIN ANALYZE of %s on synced table %s is not supported: it would "
                       "execute the write", command_verb(w->command), name);
        }
        return;
    }
    case PG_QUERY__NODE__NODE_PREPARE_STMT: {
        st->command = CLASSIFY_CMD_PREPARE;
        st->name = dup_str(c, node->prepare_stmt->name);
        const nested_write *w = nested_hit(c, st);
        if (w) {
            display_name(w->rel, name, sizeof name);
            set_refuse(c, st, "0A000", "Use the protocol's Parse message instead (your "
                                       "driver's prepared statements): apigres supports "
                                       "writes to synced tables in the extended protocol.",
                       "PREPARE of %s on synced table %s is not supported",
                       command_verb(w->command), name);
        }
        return;
    }
    case PG_QUERY__NODE__NODE_EXECUTE_STMT:
        st->command = CLASSIFY_CMD_EXECUTE;
        st->verdict = CLASSIFY_EXECUTE;
        st->name = dup_str(c, node->execute_stmt->name);
        return;
    case PG_QUERY__NODE__NODE_RULE_STMT: {
        const PgQuery__RuleStmt *rs = node->rule_stmt;
        st->command = CLASSIFY_CMD_CREATE_RULE;
        if (refuse_on_synced(c, st, rs->relation, "rules",
                             "Synced tables are written by apigres only; put the rule on a table "
                             "or view of your own."))
            return;
        const nested_write *w = nested_hit(c, st);
        if (w) {
            display_name(w->rel, name, sizeof name);
            set_refuse(c, st, "0A000", hint_separate,
                       "a rule cannot %s synced table %s: rule actions bypass apigres",
                       command_verb(w->command), name);
        }
        return;
    }
    case PG_QUERY__NODE__NODE_CREATE_TRIG_STMT: {
        const PgQuery__CreateTrigStmt *tr = node->create_trig_stmt;
        st->command = CLASSIFY_CMD_CREATE_TRIGGER;
        refuse_on_synced(c, st, tr->relation, "triggers",
                         "Synced tables are written by apigres only; put the logic in the "
                         "application or on a table of your own.");
        return;
    }
    case PG_QUERY__NODE__NODE_DO_STMT: {
        const PgQuery__DoStmt *ds = node->do_stmt;
        st->command = CLASSIFY_CMD_DO;
        for (size_t i = 0; i < ds->n_args; i++) {
            const PgQuery__Node *n = ds->args[i];
            if (n->node_case != PG_QUERY__NODE__NODE_DEF_ELEM || !n->def_elem->defname ||
                strcmp(n->def_elem->defname, "as") != 0 || !n->def_elem->arg ||
                n->def_elem->arg->node_case != PG_QUERY__NODE__NODE_STRING)
                continue;
            if (do_body_writes_synced(c->opt, n->def_elem->arg->string->sval))
                set_refuse(c, st, "0A000", "Run the INSERT, UPDATE or DELETE as statements of "
                                           "their own: apigres carries out writes to synced "
                                           "tables through the API.",
                           "DO blocks that write to synced tables are not supported");
        }
        return;
    }
    case PG_QUERY__NODE__NODE_CALL_STMT:
        st->command = CLASSIFY_CMD_CALL;
        return; /* a procedure runs as the client's role under the database's guard */
    case PG_QUERY__NODE__NODE_SELECT_STMT:
        st->command = CLASSIFY_CMD_SELECT;
        break;
    default:
        break;
    }
    /* anything else: only a data-modifying WITH somewhere inside matters */
    const nested_write *w = nested_hit(c, st);
    if (w)
        refuse_nested(c, st, w, "in a WITH clause");
}

/* ---------------------------------------------------------------- entry points */

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void classify_result_free(classify_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_stmts; i++) {
        classify_stmt *st = &r->stmts[i];
        free(st->schema);
        free(st->table);
        free_strings(st->columns, st->n_columns);
        free(st->message);
        free(st->hint);
        free(st->name);
        free_strings(st->unresolved, st->n_unresolved);
    }
    free(r->stmts);
    free(r->error);
    if (r->trees) {
        arena_free(r->trees);
        free(r->trees);
    }
    free(r);
}

classify_result *classify_result_copy(const classify_result *r)
{
    classify_result *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    bool failed = false;
    c->parse_error = r->parse_error;
    c->error = format_dup(r->error, &failed);
    if (r->n_stmts > 0 && !(c->stmts = calloc(r->n_stmts, sizeof *c->stmts)))
        failed = true;
    for (size_t i = 0; c->stmts && i < r->n_stmts; i++) {
        const classify_stmt *from = &r->stmts[i];
        classify_stmt *to = &c->stmts[i];
        *to = *from;
        to->tree = NULL; /* it lives with r */
        to->schema = format_dup(from->schema, &failed);
        to->table = format_dup(from->table, &failed);
        to->columns = format_dup_strings(from->columns, from->n_columns, &failed);
        to->message = format_dup(from->message, &failed);
        to->hint = format_dup(from->hint, &failed);
        to->name = format_dup(from->name, &failed);
        to->unresolved = format_dup_strings(from->unresolved, from->n_unresolved, &failed);
        c->n_stmts = i + 1; /* what is copied so far is freed on failure */
    }
    if (failed) {
        classify_result_free(c);
        return NULL;
    }
    return c;
}

const char *classify_verdict_name(classify_verdict v)
{
    switch (v) {
    case CLASSIFY_PASS: return "pass";
    case CLASSIFY_WRITE: return "write";
    case CLASSIFY_REFUSE: return "refuse";
    case CLASSIFY_EXECUTE: return "execute";
    }
    return "?";
}

/* A result of one statement covering the whole text. */
static classify_stmt *whole_text(classify_result *r, size_t len)
{
    r->stmts = calloc(1, sizeof *r->stmts);
    if (!r->stmts)
        return NULL;
    r->n_stmts = 1;
    r->stmts[0].len = len;
    return &r->stmts[0];
}

int classify_sql(const char *sql, size_t len, const classify_options *options,
                 classify_result **out)
{
    static const classify_options no_options;
    const classify_options *opt = options ? options : &no_options;
    size_t max_len = opt->max_len ? opt->max_len : CLASSIFY_DEFAULT_MAX_LEN;
    size_t max_nesting = opt->max_nesting ? opt->max_nesting : CLASSIFY_DEFAULT_MAX_NESTING;
    ctx c = {.opt = opt, .max_depth = 8 * max_nesting + 64};
    char *text = NULL;
    size_t *stack = NULL;
    PgQueryProtobufParseResult parsed = {{0, NULL}, NULL, NULL};
    bool have_parse = false;
    arena nodes = ARENA_INIT;
    PgQuery__ParseResult *tree = NULL;
    bool kept = false; /* a statement keeps its tree (options->keep_trees) */
    int rc = -1;

    *out = NULL;
    classify_result *r = calloc(1, sizeof *r);
    if (!r)
        return -1;
    len = text_len(sql, len);

    if (len > max_len) {
        classify_stmt *st = whole_text(r, len);
        if (!st)
            goto fail;
        set_refuse(&c, st, "54000", "Split it into smaller statements.",
                   "statement of %zu bytes is longer than the %zu bytes apigres checks for "
                   "writes to synced tables", len, max_len);
        goto done;
    }
    stack = malloc((max_nesting + 1) * 2 * sizeof *stack);
    if (!stack)
        goto fail;
    if (nesting_estimate(sql, len, max_nesting, stack) > max_nesting) {
        classify_stmt *st = whole_text(r, len);
        if (!st)
            goto fail;
        set_refuse(&c, st, "54001", "Simplify it; for many rows use one INSERT ... VALUES "
                                    "list rather than UNION ALL.",
                   "statement is too complex for apigres to check for writes to synced tables");
        goto done;
    }

    text = malloc(len + 1); /* libpg_query reads a NUL-terminated string */
    if (!text)
        goto fail;
    if (len)
        memcpy(text, sql, len);
    text[len] = '\0';
    parsed = pg_query_parse_protobuf(text);
    have_parse = true;
    if (parsed.error) {
        classify_stmt *st = whole_text(r, len);
        if (!st)
            goto fail;
        r->parse_error = true;
        r->error = dup_str(&c, parsed.error->message ? parsed.error->message : "syntax error");
        goto done;
    }
    tree = arena_unpack(&nodes, &parsed.parse_tree);
    if (!tree)
        goto fail;
    if (tree->n_stmts > 0) {
        r->stmts = calloc(tree->n_stmts, sizeof *r->stmts);
        if (!r->stmts)
            goto fail;
    }
    for (size_t i = 0; i < tree->n_stmts && !c.oom; i++) {
        const PgQuery__RawStmt *raw = tree->stmts[i];
        classify_stmt *st = &r->stmts[r->n_stmts++];
        size_t off = raw->stmt_location > 0 ? (size_t)raw->stmt_location : 0;
        if (off > len)
            off = len;
        size_t slen = raw->stmt_len > 0 ? (size_t)raw->stmt_len : len - off;
        st->offset = off;
        st->len = slen <= len - off ? slen : len - off;
        if (!raw->stmt)
            continue;
        c.n_nested = 0;
        c.max_param = 0;
        c.too_deep = false;
        walk(&c, node_msg(raw->stmt), 0, true);
        if (c.too_deep) {
            set_refuse(&c, st, "54001", "Simplify it.",
                       "statement is too complex for apigres to check for writes to synced "
                       "tables");
            continue;
        }
        st->n_params = c.max_param;
        classify_stmt_node(&c, st, raw->stmt);
        if (opt->keep_trees && st->verdict == CLASSIFY_WRITE) {
            st->tree = raw->stmt;
            kept = true;
        }
    }
    if (kept && !c.oom) { /* the trees go with the result: the arena moves there */
        if ((r->trees = malloc(sizeof *r->trees))) {
            *r->trees = nodes;
            nodes = (arena)ARENA_INIT;
        } else {
            c.oom = true;
        }
    }

done:
    if (!c.oom) {
        *out = r; /* handed over: the cleanup below must not free it */
        r = NULL;
        rc = 0;
    }
fail:
    arena_free(&nodes);
    if (have_parse)
        pg_query_free_protobuf_parse_result(parsed);
    free(c.nested);
    free(stack);
    free(text);
    classify_result_free(r);
    return rc;
}
