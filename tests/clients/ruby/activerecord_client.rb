# ActiveRecord (Rails' ORM, postgresql adapter over the `pg` driver) through apigres, used
# the Rails way: establish_connection with the URL, a model per table (Customer on the
# synced stripe.customer, Order on the application's orders) with belongs_to/has_many,
# joins/includes, create!/save!/update!/destroy! (each in the transaction AR opens itself),
# update_all for an affected-row count, ActiveRecord::Base.transaction with
# ActiveRecord::Rollback, and the API's refusal as AR raises it.
# Everything runs twice: with AR's default prepared_statements: true (in 6.1 that is named
# statements "a1", "a2", ... for reads and $n parameters of unnamed statements for writes)
# and with prepared_statements: false (values inlined as literals, no named statements).
# One row of the client matrix; run by ./run with the environment of 78_clients.py.
require_relative "client_lib"
require "active_record"

ROW = "ActiveRecord"

# Every statement AR sends: kept for the statements check, and on stderr
# (client-ruby/stderr.log) for when a check fails.
$statements = []
ActiveSupport::Notifications.subscribe("sql.active_record") do |*, payload|
  $statements << [payload[:name], payload[:sql]]
  $stderr.puts "#{payload[:name]}: #{payload[:sql]}"
end

class Customer < ActiveRecord::Base
  self.table_name = "stripe.customer"
  has_many :orders, foreign_key: :customer_id, inverse_of: :customer
end

class Order < ActiveRecord::Base
  self.table_name = "orders"
  belongs_to :customer, inverse_of: :orders
end

def connection
  ActiveRecord::Base.connection
end

def upstream(id)
  stripe_get("customers/#{id}")
end

def run_mode(prepared)
  $statements.clear
  tag = prepared ? "ActiveRecord (prepared_statements: true)" : "ActiveRecord (prepared_statements: false)"

  step("#{tag}: connect") do
    ActiveRecord::Base.establish_connection(url: ENV.fetch("DATABASE_URL"), prepared_statements: prepared)
    check("#{tag}: establish_connection with DATABASE_URL (#{connection.adapter_name}, " \
          "server #{connection.database_version})",
          connection.active? && connection.prepared_statements == prepared &&
            connection.select_value("SELECT 1") == 1)
  end

  step("#{tag}: read") do
    order = Order.joins(:customer).where(customer: { id: CID }).first
    check_eq("#{tag}: Order.joins(:customer) on the synced table",
             [CUSTOMER_EMAIL, ORDER_NOTE, ORDER_AMOUNT], [order&.customer&.email, order&.note, order&.amount])
    customer = Customer.includes(:orders).find(CID)
    check_eq("#{tag}: Customer.includes(:orders).find",
             [CUSTOMER_EMAIL, [[ORDER_NOTE, ORDER_AMOUNT]]], [customer.email, customer.orders.map { |o| [o.note, o.amount] }])
  end

  created = nil
  email = "ruby-ar-#{prepared ? 'prep' : 'noprep'}-#{Process.pid}@example.com"
  step("#{tag}: create") do
    created = Customer.create!(email: email, name: "ActiveRecord")
    check("#{tag}: Customer.create! gets the API's id (#{created.id})",
          created.persisted? && created.id.to_s.start_with?("cus_"))
    check_eq("#{tag}: upstream has the created customer's email and name",
             [email, "ActiveRecord"], upstream(created.id).values_at("email", "name"))
    check_eq("#{tag}: Customer.find reads it back", email, Customer.find(created.id).email)
  end

  step("#{tag}: update") do
    created.name = "ActiveRecord, saved"
    created.save!
    check_eq("#{tag}: save! reaches upstream", "ActiveRecord, saved", upstream(created.id)["name"])
    created.update!(description: "updated by ActiveRecord")
    check_eq("#{tag}: update! reaches upstream", "updated by ActiveRecord", upstream(created.id)["description"])
    count = Customer.where(id: created.id).update_all(name: "ActiveRecord, update_all")
    check_eq("#{tag}: update_all returns the affected-row count", 1, count)
    check_eq("#{tag}: update_all reaches upstream and the table",
             ["ActiveRecord, update_all"] * 2, [upstream(created.id)["name"], created.reload.name])
  end

  step("#{tag}: destroy") do
    created.destroy!
    check_eq("#{tag}: destroy!, upstream answers deleted: true", true, upstream(created.id)["deleted"])
    check_eq("#{tag}: Customer.exists? is false after destroy!", false, Customer.exists?(created.id))
  end

  step("#{tag}: refusal") do
    customer = Customer.find(CID)
    begin
      customer.update!(email: "not-an-email")
      not_ok("#{tag}: the API's refusal raises")
    rescue ActiveRecord::StatementInvalid => e
      # AR 6.1 has no class of its own for 23514: the driver's PG::CheckViolation is the cause
      cause = e.cause
      sqlstate = cause.respond_to?(:result) && cause.result&.error_field(PG::PG_DIAG_SQLSTATE)
      check("#{tag}: the API's refusal raises #{e.class} caused by #{cause.class}, SQLSTATE #{sqlstate}",
            cause.is_a?(PG::CheckViolation) && sqlstate == "23514" &&
              e.message.include?("Error updating customer #{CID}: Invalid email address"), e.message)
    end
    check_eq("#{tag}: afterwards no transaction is open and reload gives the unchanged email",
             [false, CUSTOMER_EMAIL], [connection.transaction_open?, customer.reload.email])
  end

  step("#{tag}: transaction") do
    original = upstream(CID)["name"]
    seen = nil
    ActiveRecord::Base.transaction do
      Customer.find(CID).update!(name: "ActiveRecord, rolled back")
      seen = Customer.find(CID).name
      raise ActiveRecord::Rollback
    end
    check_eq("#{tag}: inside ActiveRecord::Base.transaction the update reads back", "ActiveRecord, rolled back", seen)
    same = eventually { Customer.find(CID).name == upstream(CID)["name"] }
    check("#{tag}: after ActiveRecord::Rollback the table equals upstream (the API has no rollback)", same,
          "table: #{Customer.find(CID).name.inspect}, upstream: #{upstream(CID)['name'].inspect}")
    Customer.find(CID).update!(name: original) # leave the customer as it was
  end

  # What "prepared statements" means in AR 6.1: reads (select_all) go through named
  # server-side statements, writes through exec_params, i.e. an unnamed statement with $n
  # parameters; with prepared_statements: false every value is inlined as a literal.
  step("#{tag}: statements") do
    named = connection.select_rows("SELECT name, statement FROM pg_prepared_statements ORDER BY name")
    note("#{tag}: server-side prepared statements: #{named.map(&:first).join(' ')}")
    reads_synced = named.any? { |_, sql| sql.include?('FROM "stripe"."customer"') }
    writes = $statements.select { |_, sql| sql =~ /\A(INSERT INTO|UPDATE|DELETE FROM) "stripe"\."customer"/ }
    with_params = writes.count { |_, sql| sql.include?("$1") }
    if prepared
      check("#{tag}: reads of stripe.customer used named prepared statements, its #{writes.size} writes $n parameters",
            reads_synced && writes.any? && with_params == writes.size, named.inspect)
    else
      check("#{tag}: no named prepared statements, the #{writes.size} writes with inlined literals",
            named.empty? && writes.any? && with_params.zero?, named.inspect)
    end
  end
ensure
  ActiveRecord::Base.remove_connection
end

run_mode(true)
run_mode(false)
matrix(ROW, "activerecord #{ActiveRecord.version} (pg #{PG::VERSION})", ruby_runtime,
       installed_from("active_record.rb"))
exit($failed ? 1 : 0)
