// pgjdbc (plain JDBC, Debian's libpostgresql-jdbc-java) through apigres: the client matrix's
// Java row. pgjdbc speaks only the extended protocol and changes how it does so as a
// statement is reused, so the writes to stripe.customer are run in the shapes a Java
// application produces them:
//   - PreparedStatements reused 8 times: from the 5th execution (prepareThreshold) pgjdbc
//     switches from the unnamed statement to a named server-side one (S_1, ...);
//   - a second connection with prepareThreshold=1 and binaryTransfer=true, so statements are
//     named from the start and int8/timestamptz parameters and results go binary;
//   - setAutoCommit(false) transactions ending in commit and in rollback; pgjdbc sends BEGIN
//     in the same batch as a transaction's first statement, so one transaction starts with the
//     synced write and must still be open (and hold the row lock) after it;
//   - INSERT ... RETURNING via executeQuery, and via prepareStatement(sql, {"id"}) +
//     getGeneratedKeys (pgjdbc appends the RETURNING itself);
//   - executeBatch (several Bind/Execute before one Sync);
//   - the API's refusal as org.postgresql.util.PSQLException with SQLSTATE 23514.
// Every result is checked against the table (through the proxy) and upstream (the fake).
// Environment: see tests/integration/78_clients.py. Run by ./run (javac + java).

import java.net.URI;
import java.net.URLDecoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Properties;

import org.postgresql.PGStatement;
import org.postgresql.core.BaseConnection;
import org.postgresql.core.TransactionState;
import org.postgresql.util.DriverInfo;
import org.postgresql.util.PGobject;
import org.postgresql.util.PSQLException;
import org.postgresql.util.ServerErrorMessage;

public class ClientTest {
    static final String ROW = "pgjdbc";
    static final String CID = System.getenv("CUSTOMER_ID");
    static final String EMAIL = System.getenv("CUSTOMER_EMAIL");
    static boolean failed = false;

    public static void main(String[] args) {
        try {
            run();
        } catch (Throwable t) {
            // An unexpected exception ends the run but must still read as a failed check.
            notOk("pgjdbc: ran to its end without an unexpected exception", t.toString());
            for (StackTraceElement e : t.getStackTrace()) System.out.println("#     at " + e);
        }
        System.exit(failed ? 1 : 0);
    }

    static void run() throws Exception {
        matrix();
        Connection c = connect(new Properties());
        check("pgjdbc: connects through the proxy with DATABASE_URL as a jdbc:postgresql URL", c.isValid(5));

        join(c);
        String id = insertReturning(c);
        reusedStatements(c, id);
        binaryConnection(id);
        String id2 = generatedKeys(c);
        batch(c, id, id2);
        transactions(c, id);
        refusal(c);
        delete(c, id);
        delete(c, id2);
        check("pgjdbc: the client's customer keeps its email",
                Objects.equals(EMAIL, one(c, "SELECT email FROM stripe.customer WHERE id = ?", CID)));
        c.close();
    }

    // --- the checks, in the order of the brief's rows

    static void join(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(
                "SELECT c.email, o.note, o.amount FROM public.orders o JOIN stripe.customer c ON c.id = o.customer_id"
                        + " WHERE c.id = ?")) {
            ps.setString(1, CID);
            List<String> got = rows(ps.executeQuery()).get(0);
            List<String> want = List.of(EMAIL, System.getenv("ORDER_NOTE"), System.getenv("ORDER_AMOUNT"));
            checkEq("pgjdbc: a synced table joined with an application table", want, got);
        }
    }

    static String insertReturning(Connection c) throws Exception {
        String id;
        try (PreparedStatement ps = c.prepareStatement(
                "INSERT INTO stripe.customer (email, name) VALUES (?, ?) RETURNING id, email")) {
            ps.setString(1, "pgjdbc@example.com");
            ps.setString(2, "pgjdbc client");
            List<List<String>> r = rows(ps.executeQuery());
            id = r.get(0).get(0);
            check("pgjdbc: INSERT ... RETURNING id via executeQuery (" + id + ")",
                    r.size() == 1 && id.startsWith("cus_") && "pgjdbc@example.com".equals(r.get(0).get(1)), r);
        }
        Map<String, Object> up = upstream(id);
        checkEq("pgjdbc: upstream has the created customer's email and name",
                List.of("pgjdbc@example.com", "pgjdbc client"), Arrays.asList(up.get("email"), up.get("name")));
        return id;
    }

    // Crosses prepareThreshold: executions 1-4 use the unnamed statement, 5-8 a named one.
    static void reusedStatements(Connection c, String id) throws Exception {
        boolean allOk = true, named = false;
        StringBuilder detail = new StringBuilder();
        try (PreparedStatement upd = c.prepareStatement("UPDATE stripe.customer SET name = ? WHERE id = ?");
             PreparedStatement sel = c.prepareStatement("SELECT name FROM stripe.customer WHERE id = ?")) {
            for (int i = 1; i <= 8; i++) {
                String name = "pgjdbc loop " + i;
                upd.setString(1, name);
                upd.setString(2, id);
                int n = upd.executeUpdate();
                sel.setString(1, id);
                String back = single(sel.executeQuery());
                named = upd.unwrap(PGStatement.class).isUseServerPrepare()
                        && sel.unwrap(PGStatement.class).isUseServerPrepare();
                if (n != 1 || !name.equals(back)) {
                    allOk = false;
                    detail.append("execution ").append(i).append(": count ").append(n).append(", read back ")
                            .append(back).append('\n');
                }
            }
        }
        check("pgjdbc: a PreparedStatement UPDATE and SELECT run 8 times each, past prepareThreshold "
                + "(named server-side statements at the end: " + named + "), each count 1 and read back", allOk && named,
                detail);
        checkEq("pgjdbc: upstream has the last of the 8 updates", "pgjdbc loop 8", upstream(id).get("name"));
    }

    // prepareThreshold=1 + binaryTransfer: named from the first execution; setLong goes as a
    // binary int8 parameter, balance and created come back as binary int8/timestamptz.
    static void binaryConnection(String id) throws Exception {
        Properties p = new Properties();
        p.setProperty("prepareThreshold", "1");
        p.setProperty("binaryTransfer", "true");
        try (Connection b = connect(p);
             PreparedStatement upd = b.prepareStatement(
                     "UPDATE stripe.customer SET balance = ?, metadata = ? WHERE id = ?");
             PreparedStatement sel = b.prepareStatement(
                     "SELECT balance, created, metadata->>'run' FROM stripe.customer WHERE id = ?")) {
            boolean allOk = true;
            StringBuilder detail = new StringBuilder();
            long createdSeen = 0;
            for (int i = 1; i <= 7; i++) {
                long balance = 1000L * i + 7;
                PGobject meta = new PGobject();
                meta.setType("jsonb");
                meta.setValue("{\"run\": \"binary " + i + "\"}");
                upd.setLong(1, balance);
                upd.setObject(2, meta);
                upd.setString(3, id);
                int n = upd.executeUpdate();
                sel.setString(1, id);
                try (ResultSet rs = sel.executeQuery()) {
                    rs.next();
                    long gotBalance = rs.getLong(1);
                    createdSeen = rs.getTimestamp(2).getTime() / 1000;
                    String run = rs.getString(3);
                    if (n != 1 || gotBalance != balance || !("binary " + i).equals(run)) {
                        allOk = false;
                        detail.append("execution ").append(i).append(": count ").append(n).append(", balance ")
                                .append(gotBalance).append(", metadata.run ").append(run).append('\n');
                    }
                }
            }
            check("pgjdbc: prepareThreshold=1 + binaryTransfer=true: a binary int8 and a jsonb parameter, "
                    + "7 UPDATEs each count 1 and read back in binary", allOk, detail);
            Map<String, Object> up = upstream(id);
            Object meta = up.get("metadata");
            checkEq("pgjdbc: upstream has the binary balance, the metadata and the created time read in binary",
                    List.of(7007L, "binary 7", createdSeen),
                    Arrays.asList(up.get("balance"), meta instanceof Map ? ((Map<?, ?>) meta).get("run") : meta,
                            up.get("created")));
        }
    }

    static String generatedKeys(Connection c) throws Exception {
        String id = null;
        int n;
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO stripe.customer (email, name) VALUES (?, ?)",
                new String[] {"id"})) {
            ps.setString(1, "pgjdbc-keys@example.com");
            ps.setString(2, "pgjdbc generated keys");
            n = ps.executeUpdate();
            try (ResultSet keys = ps.getGeneratedKeys()) {
                if (keys.next()) id = keys.getString("id");
            }
        }
        check("pgjdbc: INSERT with prepareStatement(sql, {\"id\"}) + getGeneratedKeys (count " + n + ", " + id + ")",
                n == 1 && id != null && id.startsWith("cus_"));
        checkEq("pgjdbc: upstream has the customer created through getGeneratedKeys", "pgjdbc-keys@example.com",
                id == null ? null : upstream(id).get("email"));
        return id;
    }

    static void batch(Connection c, String id, String id2) throws Exception {
        int[] counts;
        try (PreparedStatement ps = c.prepareStatement("UPDATE stripe.customer SET description = ? WHERE id = ?")) {
            String[][] rows = {{"batch 1", id}, {"batch 2", id2}, {"batch 3", id}, {"batch 4", id2}};
            for (String[] r : rows) {
                ps.setString(1, r[0]);
                ps.setString(2, r[1]);
                ps.addBatch();
            }
            counts = ps.executeBatch();
        }
        checkEq("pgjdbc: executeBatch of 4 UPDATEs, each count 1", "[1, 1, 1, 1]", Arrays.toString(counts));
        checkEq("pgjdbc: upstream and the table have the batch's last values",
                List.of("batch 3", "batch 4", "batch 3", "batch 4"),
                Arrays.asList(upstream(id).get("description"), upstream(id2).get("description"),
                        one(c, "SELECT description FROM stripe.customer WHERE id = ?", id),
                        one(c, "SELECT description FROM stripe.customer WHERE id = ?", id2)));
    }

    // pgjdbc sends BEGIN in the same batch as a transaction's first statement and learns the
    // transaction state from ReadyForQuery. The first transaction starts with the synced write
    // (BEGIN + UPDATE in one batch), the second with a SELECT (the write comes alone): in both
    // the write must leave the client's transaction open and holding the row's lock.
    static void transactions(Connection c, String id) throws Exception {
        String sel = "SELECT name FROM stripe.customer WHERE id = ?";
        try (Connection other = connect(new Properties())) {
            c.setAutoCommit(false);
            int n = update(c, "UPDATE stripe.customer SET name = ? WHERE id = ?", "pgjdbc committed", id);
            inTransaction("a transaction whose first statement is the UPDATE (BEGIN + UPDATE in one batch)", c,
                    other, id);
            String inside = one(c, sel, id);
            c.commit();
            c.setAutoCommit(true);
            check("pgjdbc: setAutoCommit(false): UPDATE (count " + n + "), read back inside, commit",
                    n == 1 && "pgjdbc committed".equals(inside), inside);
            checkEq("pgjdbc: after commit, upstream and the table have the new name",
                    List.of("pgjdbc committed", "pgjdbc committed"),
                    Arrays.asList(upstream(id).get("name"), one(c, sel, id)));

            c.setAutoCommit(false);
            String before = one(c, sel, id);
            n = update(c, "UPDATE stripe.customer SET name = ? WHERE id = ?", "pgjdbc rolled back", id);
            inTransaction("a transaction that starts with a SELECT, then the UPDATE", c, other, id);
            inside = one(c, sel, id);
            c.rollback();
            c.setAutoCommit(true);
            check("pgjdbc: setAutoCommit(false): SELECT, UPDATE (count " + n + "), read back inside, rollback",
                    "pgjdbc committed".equals(before) && n == 1 && "pgjdbc rolled back".equals(inside), inside);
        }
        // The API has no transactions: upstream keeps the name, and apigres re-applies it to the
        // mirror after the rollback (asynchronously, hence the wait).
        Object up = upstream(id).get("name");
        String table = null;
        for (int i = 0; i < 50 && !Objects.equals(up, table = one(c, sel, id)); i++) Thread.sleep(100);
        checkEq("pgjdbc: after rollback the table equals upstream (" + up + ")", up, table);
    }

    // After a write in c's open transaction: pgjdbc still sees the transaction open, and another
    // session cannot lock the written row (SQLSTATE 55P03 with NOWAIT).
    static void inTransaction(String how, Connection c, Connection other, String id) throws SQLException {
        TransactionState state = c.unwrap(BaseConnection.class).getTransactionState();
        String lock;
        try (PreparedStatement ps = other.prepareStatement(
                "SELECT id FROM stripe.customer WHERE id = ? FOR UPDATE NOWAIT")) {
            ps.setString(1, id);
            single(ps.executeQuery());
            lock = "not locked";
        } catch (SQLException e) {
            lock = e.getSQLState();
        }
        checkEq("pgjdbc: in " + how + ", the transaction is still open (ReadyForQuery 'T') and holds the row lock",
                "OPEN 55P03", state + " " + lock);
    }

    static void refusal(Connection c) throws Exception {
        String sql = "UPDATE stripe.customer SET email = ? WHERE id = ?";
        String want = "Error updating customer " + CID + ": Invalid email address";
        // autocommit: the failed statement is its own transaction
        refusalCheck("in autocommit", c, sql, want);
        check("pgjdbc: the connection works after the refusal",
                EMAIL.equals(one(c, "SELECT email FROM stripe.customer WHERE id = ?", CID)));
        // in a transaction pgjdbc leaves it aborted: rollback, then the connection goes on
        c.setAutoCommit(false);
        refusalCheck("inside setAutoCommit(false)", c, sql, want);
        c.rollback();
        c.setAutoCommit(true);
        check("pgjdbc: after the refusal in a transaction, rollback and the connection goes on",
                EMAIL.equals(one(c, "SELECT email FROM stripe.customer WHERE id = ?", CID)));
    }

    static void refusalCheck(String how, Connection c, String sql, String want) {
        String desc = "pgjdbc: the API's refusal " + how + " is org.postgresql.util.PSQLException with SQLSTATE 23514";
        try (PreparedStatement ps = c.prepareStatement(sql)) {
            ps.setString(1, "not-an-email");
            ps.setString(2, CID);
            ps.executeUpdate();
            notOk(desc, "executeUpdate returned without an exception");
        } catch (PSQLException e) {
            ServerErrorMessage m = e.getServerErrorMessage();
            boolean good = "23514".equals(e.getSQLState()) && m != null && m.getMessage().startsWith(want)
                    && m.getDetail() != null;
            check(desc + " (" + (m == null ? e.getMessage() : m.getMessage()) + ")", good,
                    e.getSQLState() + " " + e.getMessage());
        } catch (SQLException e) {
            notOk(desc, e.getClass().getName() + " " + e.getSQLState() + " " + e.getMessage());
        }
    }

    static void delete(Connection c, String id) throws Exception {
        int n = update(c, "DELETE FROM stripe.customer WHERE id = ?", id);
        checkEq("pgjdbc: DELETE " + id + " (count " + n + ") and upstream answers deleted: true",
                List.of(1, true), Arrays.asList(n, upstream(id).get("deleted")));
    }

    // --- helpers

    // postgres://user:password@host:port/db -> jdbc:postgresql://host:port/db + user/password
    static Connection connect(Properties p) throws Exception {
        URI u = new URI(System.getenv("DATABASE_URL"));
        String[] userInfo = u.getRawUserInfo().split(":", 2);
        p.setProperty("user", URLDecoder.decode(userInfo[0], StandardCharsets.UTF_8));
        p.setProperty("password", URLDecoder.decode(userInfo[1], StandardCharsets.UTF_8));
        p.setProperty("ApplicationName", "apigres-client-pgjdbc");
        String port = u.getPort() > 0 ? ":" + u.getPort() : "";
        return DriverManager.getConnection("jdbc:postgresql://" + u.getHost() + port + u.getRawPath(), p);
    }

    // Printed before connecting, so the row is there even when the connection fails.
    static void matrix() {
        String runtime = (System.getProperty("java.runtime.name", "").contains("OpenJDK") ? "OpenJDK " : "Java ")
                + System.getProperty("java.version");
        System.out.println("# matrix: " + ROW + " | pgjdbc " + DriverInfo.DRIVER_VERSION + " | " + runtime
                + " | Debian libpostgresql-jdbc-java, default-jdk-headless");
    }

    static int update(Connection c, String sql, String... params) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(sql)) {
            for (int i = 0; i < params.length; i++) ps.setString(i + 1, params[i]);
            return ps.executeUpdate();
        }
    }

    static String one(Connection c, String sql, String... params) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(sql)) {
            for (int i = 0; i < params.length; i++) ps.setString(i + 1, params[i]);
            return single(ps.executeQuery());
        }
    }

    static String single(ResultSet rs) throws SQLException {
        try (rs) {
            return rs.next() ? rs.getString(1) : null;
        }
    }

    static List<List<String>> rows(ResultSet rs) throws SQLException {
        List<List<String>> out = new ArrayList<>();
        try (rs) {
            int n = rs.getMetaData().getColumnCount();
            while (rs.next()) {
                List<String> row = new ArrayList<>();
                for (int i = 1; i <= n; i++) row.add(rs.getString(i));
                out.add(row);
            }
        }
        return out;
    }

    // GET /v1/customers/ID at the fake: the record as upstream has it.
    static Map<String, Object> upstream(String id) throws Exception {
        String auth = Base64.getEncoder().encodeToString((System.getenv("STRIPE_TEST_KEY") + ":").getBytes());
        HttpRequest req = HttpRequest.newBuilder(URI.create(System.getenv("FAKE_URL") + "/v1/customers/" + id))
                .header("Authorization", "Basic " + auth).timeout(Duration.ofSeconds(30)).build();
        String body = HttpClient.newHttpClient().send(req, HttpResponse.BodyHandlers.ofString()).body();
        @SuppressWarnings("unchecked")
        Map<String, Object> m = (Map<String, Object>) new Json(body).value();
        return m;
    }

    static void check(String desc, boolean cond) {
        check(desc, cond, "");
    }

    static void check(String desc, boolean cond, Object detail) {
        if (cond) System.out.println("ok - " + desc);
        else notOk(desc, detail);
    }

    static void checkEq(String desc, Object want, Object got) {
        check(desc, Objects.equals(want, got), "expected: " + want + "\nactual:   " + got);
    }

    static void notOk(String desc, Object detail) {
        failed = true;
        System.out.println("not ok - " + desc);
        for (String line : String.valueOf(detail).split("\n"))
            if (!line.isEmpty()) System.out.println("#   " + line);
    }

    // The JDK has no JSON parser and the row must use only Debian's packages: a minimal one
    // for the fake's answers (objects, arrays, strings, integers as Long, true/false/null).
    static final class Json {
        private final String s;
        private int i;

        Json(String s) {
            this.s = s;
        }

        Object value() {
            ws();
            char ch = s.charAt(i);
            if (ch == '{') {
                Map<String, Object> m = new LinkedHashMap<>();
                i++;
                ws();
                if (s.charAt(i) == '}') { i++; return m; }
                while (true) {
                    ws();
                    String k = string();
                    ws();
                    expect(':');
                    m.put(k, value());
                    ws();
                    if (s.charAt(i++) == '}') return m;
                }
            }
            if (ch == '[') {
                List<Object> l = new ArrayList<>();
                i++;
                ws();
                if (s.charAt(i) == ']') { i++; return l; }
                while (true) {
                    l.add(value());
                    ws();
                    if (s.charAt(i++) == ']') return l;
                }
            }
            if (ch == '"') return string();
            if (s.startsWith("true", i)) { i += 4; return true; }
            if (s.startsWith("false", i)) { i += 5; return false; }
            if (s.startsWith("null", i)) { i += 4; return null; }
            int start = i;
            while (i < s.length() && "+-0123456789.eE".indexOf(s.charAt(i)) >= 0) i++;
            String num = s.substring(start, i);
            if (num.isEmpty()) throw new IllegalArgumentException("bad JSON at " + start + ": " + s);
            return num.matches("-?\\d+") ? (Object) Long.parseLong(num) : (Object) Double.parseDouble(num);
        }

        private String string() {
            expect('"');
            StringBuilder b = new StringBuilder();
            for (char ch; (ch = s.charAt(i++)) != '"'; ) {
                if (ch != '\\') { b.append(ch); continue; }
                char e = s.charAt(i++);
                switch (e) {
                    case 'n': b.append('\n'); break;
                    case 't': b.append('\t'); break;
                    case 'r': b.append('\r'); break;
                    case 'b': b.append('\b'); break;
                    case 'f': b.append('\f'); break;
                    case 'u': b.append((char) Integer.parseInt(s.substring(i, i + 4), 16)); i += 4; break;
                    default: b.append(e);
                }
            }
            return b.toString();
        }

        private void expect(char ch) {
            if (s.charAt(i++) != ch) throw new IllegalArgumentException("bad JSON at " + (i - 1) + ": " + s);
        }

        private void ws() {
            while (i < s.length() && Character.isWhitespace(s.charAt(i))) i++;
        }
    }
}
