# Ruby's `pg` driver (libpq underneath) through apigres, used the way its documentation
# shows: PG.connect with the URL, exec_params (unnamed extended-protocol statements),
# prepare/exec_prepared (named ones), the `transaction` block, and PG::Error subclasses
# per SQLSTATE (a check violation is PG::CheckViolation, its SQLSTATE in result.error_field).
# One row of the client matrix; run by ./run with the environment of 78_clients.py.
require_relative "client_lib"
require "pg"

conn = nil

def print_matrix
  matrix("Ruby pg", "pg #{PG::VERSION} (libpq #{libpq_version})", ruby_runtime, installed_from("pg.rb"))
end

step("pg: connect") do
  conn = PG.connect(ENV.fetch("DATABASE_URL"))
  # results decoded to Ruby types (Integer for amount), as most pg users configure it
  conn.type_map_for_results = PG::BasicTypeMapForResults.new(conn)
  check("pg: PG.connect(DATABASE_URL) through apigres (server #{conn.parameter_status('server_version')})",
        conn.status == PG::CONNECTION_OK && conn.exec("SELECT 1 AS one").getvalue(0, 0) == 1)
end
unless conn # nothing else can run, but the row still belongs in the matrix
  print_matrix
  exit 1
end

step("pg: join") do
  r = conn.exec_params(<<~SQL, [CID])
    SELECT c.email, o.note, o.amount
    FROM public.orders o JOIN stripe.customer c ON c.id = o.customer_id
    WHERE c.id = $1
  SQL
  check_eq("pg: exec_params, the synced table joined with an application table",
           [[CUSTOMER_EMAIL, ORDER_NOTE, ORDER_AMOUNT]], r.values)
end

new_id = nil
email = "ruby-pg-#{Process.pid}@example.com"
step("pg: create") do
  conn.prepare("create_customer", "INSERT INTO stripe.customer (email, name) VALUES ($1, $2) RETURNING id")
  r = conn.exec_prepared("create_customer", [email, "Ruby pg"])
  new_id = r.getvalue(0, 0)
  check("pg: prepare/exec_prepared INSERT ... RETURNING id gives the API's id (#{new_id}, #{r.cmd_status})",
        new_id.to_s.start_with?("cus_") && r.cmd_tuples == 1, r.cmd_status)
  up = stripe_get("customers/#{new_id}")
  check_eq("pg: upstream has the created customer's email and name", [email, "Ruby pg"], up.values_at("email", "name"))
end

step("pg: update") do
  conn.prepare("rename_customer", "UPDATE stripe.customer SET name = $1 WHERE id = $2")
  r = conn.exec_prepared("rename_customer", ["Ruby pg, renamed", new_id])
  check_eq("pg: exec_prepared UPDATE, cmd_tuples", 1, r.cmd_tuples)
  check_eq("pg: upstream has the new name", "Ruby pg, renamed", stripe_get("customers/#{new_id}")["name"])
  mirrored = conn.exec_params("SELECT name FROM stripe.customer WHERE id = $1", [new_id]).getvalue(0, 0)
  check_eq("pg: the table through the proxy has it too", "Ruby pg, renamed", mirrored)
  # result_format 1: RETURNING in binary, decoded by the type map (created as a Time)
  r = conn.exec_params("UPDATE stripe.customer SET description = $1 WHERE id = $2 RETURNING id, description, created",
                       ["described by Ruby pg", new_id], 1)
  up = stripe_get("customers/#{new_id}")
  check_eq("pg: UPDATE ... RETURNING with binary results",
           [[new_id, "described by Ruby pg", up["created"]]], r.values.map { |id, d, t| [id, d, t&.to_i] })
end

step("pg: delete") do
  r = conn.exec_params("DELETE FROM stripe.customer WHERE id = $1", [new_id])
  check_eq("pg: exec_params DELETE, cmd_tuples", 1, r.cmd_tuples)
  check_eq("pg: upstream answers deleted: true", true, stripe_get("customers/#{new_id}")["deleted"])
  left = conn.exec_params("SELECT count(*) FROM stripe.customer WHERE id = $1", [new_id]).getvalue(0, 0)
  check_eq("pg: the row is gone from the table", 0, left)
end

# The refusal must be the class a pg user rescues for a check violation, with the SQLSTATE
# and the API's message where libpq puts them.
def check_refusal(desc, conn)
  yield
  not_ok("#{desc}: no exception")
rescue PG::CheckViolation => e
  sqlstate = e.result.error_field(PG::PG_DIAG_SQLSTATE)
  message = e.result.error_field(PG::PG_DIAG_MESSAGE_PRIMARY).to_s
  check("#{desc}: PG::CheckViolation (a PG::Error), SQLSTATE #{sqlstate}",
        e.is_a?(PG::Error) && sqlstate == "23514" &&
          message.start_with?("Error updating customer #{CID}: Invalid email address"), e.message)
rescue PG::Error => e
  not_ok("#{desc}: PG::CheckViolation expected", "#{e.class}: #{e.message}")
ensure
  check_eq("#{desc}: afterwards the connection is idle and reads the unchanged email",
           [PG::PQTRANS_IDLE, CUSTOMER_EMAIL],
           [conn.transaction_status,
            conn.exec_params("SELECT email FROM stripe.customer WHERE id = $1", [CID]).getvalue(0, 0)])
end

step("pg: refusal") do
  check_refusal("pg: the API's refusal of exec_params UPDATE", conn) do
    conn.exec_params("UPDATE stripe.customer SET email = $1 WHERE id = $2", ["not-an-email", CID])
  end
  conn.prepare("set_email", "UPDATE stripe.customer SET email = $1 WHERE id = $2")
  check_refusal("pg: the API's refusal of exec_prepared inside conn.transaction", conn) do
    conn.transaction { |c| c.exec_prepared("set_email", ["not-an-email", CID]) }
  end
end

step("pg: transaction") do
  original = stripe_get("customers/#{CID}")["name"]
  rollback = Class.new(StandardError)
  seen = nil
  begin
    conn.transaction do |c|
      c.exec_prepared("rename_customer", ["Ruby pg, rolled back", CID])
      seen = c.exec_params("SELECT name FROM stripe.customer WHERE id = $1", [CID]).getvalue(0, 0)
      raise rollback # conn.transaction rolls back on any exception and re-raises it
    end
  rescue rollback
  end
  check_eq("pg: inside conn.transaction the UPDATE reads back", "Ruby pg, rolled back", seen)
  same = eventually do
    conn.exec_params("SELECT name FROM stripe.customer WHERE id = $1", [CID]).getvalue(0, 0) ==
      stripe_get("customers/#{CID}")["name"]
  end
  check("pg: after the rollback the table equals upstream (the API has no rollback)", same,
        "upstream: #{stripe_get("customers/#{CID}")['name'].inspect}")
  conn.exec_prepared("rename_customer", [original, CID]) # leave the customer as it was
end

conn.close
print_matrix
exit($failed ? 1 : 0)
