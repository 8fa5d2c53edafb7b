// pgx v4 (Go) through apigres, as a Go service would use it: pgxpool for the join read and
// the API's refusal, and a pgx.Conn for the writes, once in each of pgx's three ways of
// talking to the server, since each puts different messages on the wire:
//
//	prepare   the default: an automatic cache of *named* prepared statements (binary
//	          formats), a pgx.Batch pipelined as Bind/Describe/Execute... then one Sync;
//	describe  statement_cache_mode=describe: unnamed statements, described once and cached;
//	simple    prefer_simple_protocol (PreferSimpleProtocol): pgx interpolates parameters
//	          into simple Queries and sends a Batch as one multi-statement Query.
//
// Each mode creates a customer (INSERT ... RETURNING id in a committed conn.Begin transaction),
// updates it (Exec, CommandTag.RowsAffected), updates it again with a pgx.Batch, renames it in
// a transaction that rolls back, deletes it, and gets the API's refusal as *pgconn.PgError
// 23514 (errors.As). Upstream is checked at the Stripe fake after each write.
// Environment: see tests/integration/78_clients.py. Output: tests/lib/testlib.sh's format.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgconn"
	"github.com/jackc/pgx/v4"
	"github.com/jackc/pgx/v4/pgxpool"
)

var (
	failed     bool
	customerID = os.Getenv("CUSTOMER_ID")
)

func ok(pass bool, desc string, details ...string) bool {
	if pass {
		fmt.Println("ok - pgx: " + desc)
	} else {
		failed = true
		fmt.Println("not ok - pgx: " + desc)
		for _, d := range details {
			for _, line := range strings.Split(d, "\n") {
				fmt.Println("#   " + line)
			}
		}
	}
	return pass
}

// bounded gives each group of checks a deadline, so a hang shows up as failed checks instead
// of the harness's 900 s timeout (pgx then cancels the query and closes the connection).
func bounded() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 60*time.Second)
}

// upstream is the Stripe fake's view of a customer.
func upstream(id string) map[string]any {
	req, _ := http.NewRequest("GET", os.Getenv("FAKE_URL")+"/v1/customers/"+id, nil)
	req.SetBasicAuth(os.Getenv("STRIPE_TEST_KEY"), "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return map[string]any{"fetch_error": err.Error()}
	}
	defer resp.Body.Close()
	var v map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return map[string]any{"decode_error": err.Error()}
	}
	return v
}

func str(v any) string {
	if v == nil {
		return "<nil>"
	}
	return fmt.Sprint(v)
}

// withParam adds a pgx connection-string parameter to DATABASE_URL without printing it.
func withParam(url, param string) string {
	if strings.Contains(url, "?") {
		return url + "&" + param
	}
	return url + "?" + param
}

// refusal checks that err is the API's refusal of "email = not-an-email" on CUSTOMER_ID.
func refusal(label string, err error) {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		ok(false, label+": the API's refusal is a *pgconn.PgError", fmt.Sprintf("got %T: %v", err, err))
		return
	}
	want := "Error updating customer " + customerID + ": Invalid email address"
	ok(pgErr.Code == "23514" && strings.HasPrefix(pgErr.Message, want),
		label+": the API's refusal is a *pgconn.PgError with Code 23514 and the API's message",
		"code "+pgErr.Code, "message "+pgErr.Message, "detail "+pgErr.Detail)
}

// poolChecks: connect, the join of synced and application tables, and the refusal through
// a pool, which must hand out a working connection afterwards.
func poolChecks() {
	ctx, cancel := bounded()
	defer cancel()
	pool, err := pgxpool.Connect(ctx, os.Getenv("DATABASE_URL"))
	if !ok(err == nil, "pgxpool.Connect(DATABASE_URL) through the proxy", fmt.Sprint(err)) {
		return
	}
	defer pool.Close()

	var email, note string
	var amount int
	err = pool.QueryRow(ctx, `SELECT c.email, o.note, o.amount FROM public.orders o
		JOIN stripe.customer c ON c.id = o.customer_id WHERE c.id = $1`, customerID).Scan(&email, &note, &amount)
	got := fmt.Sprintf("%s|%s|%d", email, note, amount)
	want := os.Getenv("CUSTOMER_EMAIL") + "|" + os.Getenv("ORDER_NOTE") + "|" + os.Getenv("ORDER_AMOUNT")
	ok(err == nil && got == want, "pool.QueryRow: stripe.customer joined with public.orders",
		fmt.Sprint(err), "expected "+want, "actual   "+got)

	_, err = pool.Exec(ctx, "UPDATE stripe.customer SET email = $1 WHERE id = $2", "not-an-email", customerID)
	refusal("pool.Exec", err)
	err = pool.QueryRow(ctx, "SELECT email FROM stripe.customer WHERE id = $1", customerID).Scan(&email)
	ok(err == nil && email == os.Getenv("CUSTOMER_EMAIL"),
		"pool: the next query after the refusal works and the email is unchanged", fmt.Sprint(err), email)
}

// connChecks runs the write scenario on one pgx.Conn configured for one mode.
func connChecks(mode string, config *pgx.ConnConfig) {
	ctx, cancel := bounded()
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, config)
	if !ok(err == nil, mode+": pgx.Connect through the proxy", fmt.Sprint(err)) {
		return
	}
	defer conn.Close(context.Background())

	email, name := "pgx-"+mode+"@example.com", "pgx "+mode
	id := create(mode, conn, email, name)
	if id == "" {
		return
	}
	update(mode, conn, id)
	batch(mode, conn, id)
	rollback(mode, conn, id)
	remove(mode, conn, id)
	refuse(mode, conn)
}

func remove(mode string, conn *pgx.Conn, id string) {
	ctx, cancel := bounded()
	defer cancel()
	tag, err := conn.Exec(ctx, "DELETE FROM stripe.customer WHERE id = $1", id)
	ok(err == nil && tag.RowsAffected() == 1, mode+": Exec DELETE, RowsAffected() = 1", fmt.Sprint(err), tag.String())
	ok(str(upstream(id)["deleted"]) == "true", mode+": the customer is deleted upstream", fmt.Sprint(upstream(id)))
}

// refuse: the API's refusal on this connection, outside a transaction, then a query on it.
func refuse(mode string, conn *pgx.Conn) {
	ctx, cancel := bounded()
	defer cancel()
	_, err := conn.Exec(ctx, "UPDATE stripe.customer SET email = $1 WHERE id = $2", "not-an-email", customerID)
	refusal(mode+": conn.Exec", err)
	var one int
	err = conn.QueryRow(ctx, "SELECT 1").Scan(&one)
	ok(err == nil && one == 1, mode+": the connection works after the refusal", fmt.Sprint(err))
}

// create: INSERT ... RETURNING id inside conn.Begin, the row read back inside, then Commit.
func create(mode string, conn *pgx.Conn, email, name string) string {
	ctx, cancel := bounded()
	defer cancel()
	tx, err := conn.Begin(ctx)
	if !ok(err == nil, mode+": conn.Begin", fmt.Sprint(err)) {
		return ""
	}
	defer tx.Rollback(context.Background()) // no-op after Commit
	var id, readEmail string
	err = tx.QueryRow(ctx, "INSERT INTO stripe.customer (email, name) VALUES ($1, $2) RETURNING id",
		email, name).Scan(&id)
	if !ok(err == nil && strings.HasPrefix(id, "cus_"),
		mode+": tx.QueryRow INSERT ... RETURNING id gives the API's id ("+id+")", fmt.Sprint(err)) {
		return ""
	}
	err = tx.QueryRow(ctx, "SELECT email FROM stripe.customer WHERE id = $1", id).Scan(&readEmail)
	ok(err == nil && readEmail == email, mode+": the transaction reads the created row", fmt.Sprint(err), readEmail)
	err = tx.Commit(ctx)
	ok(err == nil, mode+": tx.Commit", fmt.Sprint(err))
	up := upstream(id)
	ok(str(up["email"]) == email && str(up["name"]) == name, mode+": upstream has the created customer's email and name",
		fmt.Sprint(up))
	return id
}

func update(mode string, conn *pgx.Conn, id string) {
	ctx, cancel := bounded()
	defer cancel()
	name := "pgx " + mode + ", renamed"
	tag, err := conn.Exec(ctx, "UPDATE stripe.customer SET name = $1 WHERE id = $2", name, id)
	ok(err == nil && tag.RowsAffected() == 1, mode+": Exec UPDATE, RowsAffected() = 1", fmt.Sprint(err), tag.String())
	ok(str(upstream(id)["name"]) == name, mode+": upstream has the new name", str(upstream(id)["name"]))
}

// batch: three updates of different columns (text, text, jsonb) and a read of all three,
// queued as one pgx.Batch (pipelined in the extended protocol, one Query in the simple one).
func batch(mode string, conn *pgx.Conn, id string) {
	ctx, cancel := bounded()
	defer cancel()
	desc, phone := "described by pgx "+mode, "+15550100"
	b := &pgx.Batch{}
	b.Queue("UPDATE stripe.customer SET description = $1 WHERE id = $2", desc, id)
	b.Queue("UPDATE stripe.customer SET phone = $1 WHERE id = $2", phone, id)
	b.Queue("UPDATE stripe.customer SET metadata = $1::jsonb WHERE id = $2", `{"via":"pgx `+mode+`"}`, id)
	b.Queue("SELECT description, phone, metadata->>'via' FROM stripe.customer WHERE id = $1", id)
	br := conn.SendBatch(ctx, b)
	var tags []string
	allOne := true
	for i := 0; i < 3; i++ {
		tag, err := br.Exec()
		tags = append(tags, fmt.Sprint(tag.String(), " ", err))
		allOne = allOne && err == nil && tag.RowsAffected() == 1
	}
	ok(allOne, mode+": a pgx.Batch of 3 UPDATEs, RowsAffected() = 1 each", tags...)
	var gotDesc, gotPhone, gotVia string
	err := br.QueryRow().Scan(&gotDesc, &gotPhone, &gotVia)
	want := desc + "|" + phone + "|pgx " + mode
	got := gotDesc + "|" + gotPhone + "|" + gotVia
	ok(err == nil && got == want, mode+": the batch's SELECT reads the 3 updates", fmt.Sprint(err), got)
	ok(br.Close() == nil, mode+": BatchResults.Close")
	up := upstream(id)
	meta, _ := up["metadata"].(map[string]any)
	got = str(up["description"]) + "|" + str(up["phone"]) + "|" + str(meta["via"])
	ok(got == want, mode+": upstream has the batch's 3 updates", "expected "+want, "actual   "+got)
}

// rollback: a rename read back inside the transaction, then rolled back. The API has no
// transactions, so upstream keeps the rename and apigres re-applies it to the mirror: the
// table must equal upstream again (shortly after the ROLLBACK).
func rollback(mode string, conn *pgx.Conn, id string) {
	ctx, cancel := bounded()
	defer cancel()
	name := "pgx " + mode + ", rolled back"
	tx, err := conn.Begin(ctx)
	if !ok(err == nil, mode+": conn.Begin for a rollback", fmt.Sprint(err)) {
		return
	}
	tag, err := tx.Exec(ctx, "UPDATE stripe.customer SET name = $1 WHERE id = $2", name, id)
	ok(err == nil && tag.RowsAffected() == 1, mode+": tx.Exec UPDATE in the transaction", fmt.Sprint(err), tag.String())
	var inside string
	err = tx.QueryRow(ctx, "SELECT name FROM stripe.customer WHERE id = $1", id).Scan(&inside)
	ok(err == nil && inside == name, mode+": the transaction reads its own write", fmt.Sprint(err), inside)
	ok(tx.Rollback(ctx) == nil, mode+": tx.Rollback")

	var table, up string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		err = conn.QueryRow(ctx, "SELECT name FROM stripe.customer WHERE id = $1", id).Scan(&table)
		up = str(upstream(id)["name"])
		if err != nil || table == up || time.Now().After(deadline) {
			break
		}
	}
	ok(err == nil && table == up, mode+": after the rollback the table equals upstream ("+up+")",
		fmt.Sprint(err), "table    "+table, "upstream "+up)
}

// pgxVersion is the installed Debian package's upstream version (4.15.0 of 4.15.0-4):
// GOPATH builds carry no module version, so the package is where it is recorded.
func pgxVersion() string {
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", "golang-github-jackc-pgx-v4-dev").Output()
	if err != nil {
		return "unknown"
	}
	v := strings.TrimSpace(string(out))
	if i := strings.LastIndex(v, "-"); i > 0 {
		v = v[:i]
	}
	if i := strings.Index(v, ":"); i >= 0 {
		v = v[i+1:]
	}
	return v
}

func main() {
	poolChecks()

	url := os.Getenv("DATABASE_URL")
	modes := []struct{ name, param string }{
		{"prepare", ""},
		{"describe", "statement_cache_mode=describe"},
		{"simple", "prefer_simple_protocol=true"},
	}
	for _, m := range modes {
		u := url
		if m.param != "" {
			u = withParam(url, m.param)
		}
		config, err := pgx.ParseConfig(u)
		if !ok(err == nil, m.name+": pgx.ParseConfig", fmt.Sprint(err)) {
			continue
		}
		connChecks(m.name, config)
	}

	fmt.Printf("# matrix: pgx v4 | pgx %s | Go %s | Debian golang-github-jackc-pgx-v4-dev\n",
		pgxVersion(), strings.TrimPrefix(runtime.Version(), "go"))
	if failed {
		os.Exit(1)
	}
}
