# An application's view of apigres with Rails (ActiveRecord through railties, in one file):
# models for the synced stripe.customer and an application table, a customer created,
# renamed and destroyed the ActiveRecord way (each write becomes a Stripe API call), and the
# API's refusal caught as ActiveRecord::StatementInvalid, its cause PG::CheckViolation.
#
#   DATABASE_URL=postgres://app:app@127.0.0.1:6432/app ruby app.rb
#
# DATABASE_URL defaults to what `make run` prints. Needs Debian's ruby-railties and ruby-pg.
require "rails"
require "active_record/railtie"

ENV["DATABASE_URL"] ||= "postgres://app:app@127.0.0.1:6432/app"

class ExampleApp < Rails::Application
  config.root = __dir__
  config.eager_load = false
  config.logger = Logger.new(nil)
  config.active_record.legacy_connection_handling = false
end
ExampleApp.initialize!

# The API assigns the id: ActiveRecord leaves a nil primary key out of the INSERT and reads
# it back with RETURNING "id".
class Customer < ActiveRecord::Base
  self.table_name = "stripe.customer"
  has_many :purchases
end

class Purchase < ActiveRecord::Base
  belongs_to :customer
end

# the application's own table: apigres passes this through untouched
ActiveRecord::Schema.define do
  create_table :purchases, if_not_exists: true do |t|
    t.string :customer_id, null: false
    t.integer :amount, null: false
  end
end

customer = Customer.create!(email: "linus@example.com", name: "Linus Torvalds")
puts "created #{customer.id} #{customer.email}"
customer.purchases.create!(amount: 4200)
customer.purchases.create!(amount: 1700)

# synced data joined with application data
row = Customer.joins(:purchases).where(id: customer.id).group(:id, :name)
              .pluck(:name, Arel.sql("count(purchases.id)"), Arel.sql("sum(purchases.amount)")).first
puts "purchases of #{row[0]} -> #{row[1]} totalling #{row[2]}"

Customer.transaction { customer.update!(name: "Linus B. Torvalds") }
puts "renamed: #{customer.reload.name}"

begin
  customer.update!(email: "not-an-email")
rescue ActiveRecord::StatementInvalid => e
  puts "refused: #{e.cause.result.error_field(PG::PG_DIAG_SQLSTATE)} #{e.cause.result.error_field(PG::PG_DIAG_MESSAGE_PRIMARY)}"
end

customer.purchases.destroy_all
customer.destroy!
puts "deleted: #{!Customer.exists?(customer.id)}"
