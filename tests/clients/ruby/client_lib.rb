# What both Ruby clients of the matrix share: the environment of tests/integration/78_clients.py,
# "ok - ..." / "not ok - ..." lines, a look at the Stripe fake (what upstream holds), the
# "# matrix:" line, and where a library was installed from (read at run time, not assumed).
# Uses only Ruby's standard library so that nothing but Debian's packages is needed.
require "json"
require "net/http"
require "uri"

CID = ENV.fetch("CUSTOMER_ID")
CUSTOMER_EMAIL = ENV.fetch("CUSTOMER_EMAIL")
ORDER_NOTE = ENV.fetch("ORDER_NOTE")
ORDER_AMOUNT = Integer(ENV.fetch("ORDER_AMOUNT"))
$failed = false

def ok(desc)
  puts "ok - #{desc}"
  $stdout.flush
end

def not_ok(desc, detail = nil)
  $failed = true
  puts "not ok - #{desc}"
  detail.to_s.each_line { |l| puts "#   #{l.chomp}" } if detail
  $stdout.flush
end

def check(desc, cond, detail = nil)
  cond ? ok(desc) : not_ok(desc, detail)
end

def check_eq(desc, expected, actual)
  check(desc, expected == actual, "expected: #{expected.inspect}\nactual:   #{actual.inspect}")
end

def note(text)
  puts "# #{text}"
end

# Runs one group of checks; an unexpected exception fails that group only, so the later
# rows of the matrix still get their say (the message of a driver exception names neither
# the password nor the URL).
def step(desc)
  yield
rescue StandardError => e
  not_ok("#{desc}: unexpected #{e.class}", "#{e.message}\n#{e.backtrace.first(3).join("\n")}")
end

# GET /v1/PATH at the Stripe fake: the record as upstream holds it.
def stripe_get(path)
  uri = URI("#{ENV.fetch('FAKE_URL')}/v1/#{path}")
  req = Net::HTTP::Get.new(uri)
  req.basic_auth(ENV.fetch("STRIPE_TEST_KEY"), "")
  res = Net::HTTP.start(uri.host, uri.port, read_timeout: 30) { |http| http.request(req) }
  JSON.parse(res.body)
end

# Waits (up to 5 s) for the block to be true. After a rollback apigres re-applies the
# mutated records to the mirror on its own connection, "within milliseconds", not before
# ROLLBACK's answer, so an immediate read could see the old row.
def eventually(timeout = 5.0)
  deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
  loop do
    return true if yield
    return false if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
    sleep 0.05
  end
end

def matrix(row, library, runtime, source)
  puts "# matrix: #{row} | #{library} | #{runtime} | #{source}"
end

# "Debian ruby-pg" when the file that Ruby loaded for FEATURE belongs to a Debian package,
# else the file's path, so the matrix says where the library really came from.
def installed_from(feature)
  path = $LOADED_FEATURES.find { |f| f.end_with?("/#{feature}") } or return "unknown"
  pkg = IO.popen(["dpkg", "-S", path], err: File::NULL, &:read).to_s[/\A([^:\s]+):/, 1]
  pkg ? "Debian #{pkg}" : path
end

def ruby_runtime
  "Ruby #{RUBY_VERSION}"
end

# libpq's version as PG.library_version gives it (150018) -> "15.18"
def libpq_version
  v = PG.library_version
  "#{v / 10000}.#{v % 10000}"
end
