// Prisma 7 through apigres, the way a Prisma user writes it: the generated PrismaClient with the
// PrismaPg driver adapter (node-postgres underneath, Prisma's Wasm query compiler, no engine
// binary), a model per table and `include` for the join, create/update/updateMany/delete of a
// synced Stripe customer, a nested create (Prisma's own BEGIN/COMMIT), an interactive
// $transaction rolled back by throwing, and the API's
// refusal as the error class Prisma throws for a database error. Run by ./run with tsx;
// environment: see tests/integration/78_clients.py. Prints "ok - " / "not ok - " lines and
// one "# matrix:" line; exits 1 if any check failed. Prisma's SQL goes to stderr.
import { readFileSync } from "node:fs";
import { PrismaPg } from "@prisma/adapter-pg";
import { Prisma, PrismaClient } from "./generated/client.ts";

const env = process.env as Record<string, string>;
const CID = env.CUSTOMER_ID;
let failed = false;

function check(desc: string, cond: boolean, detail: unknown = ""): boolean {
  console.log((cond ? "ok - " : "not ok - ") + desc);
  if (!cond) {
    failed = true;
    const text = typeof detail === "string" ? detail : JSON.stringify(detail, null, 1);
    for (const line of text.split("\n")) if (line) console.log("#   " + line);
  }
  return cond;
}

// The version of an installed package, read from its package.json (never hard-coded; not
// require.resolve: the packages' "exports" hide their package.json).
function version(pkg: string): string {
  return JSON.parse(readFileSync(new URL(`./node_modules/${pkg}/package.json`, import.meta.url), "utf8")).version;
}

// One record as the Stripe fake (upstream) has it; the key stays in the header only.
async function upstream(id: string): Promise<Record<string, unknown>> {
  const auth = "Basic " + Buffer.from(env.STRIPE_TEST_KEY + ":").toString("base64");
  const r = await fetch(`${env.FAKE_URL}/v1/customers/${id}`, { headers: { Authorization: auth } });
  return (await r.json()) as Record<string, unknown>;
}

// After a rollback apigres re-applies the mutated records through its own connection
// "within milliseconds": wait for the mirror to equal upstream instead of racing it.
async function mirrorEqualsUpstream(prisma: PrismaClient, id: string, field: "name" | "email") {
  let mirror: unknown, up: unknown;
  for (let i = 0; i < 50; i++) {
    mirror = (await prisma.customer.findUnique({ where: { id } }))?.[field];
    up = (await upstream(id))[field];
    if (mirror === up) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  return { mirror, up };
}

class Rollback extends Error {}

// What Prisma's error object carries, with the driver adapter's cause when there is one.
function describeError(e: any) {
  return {
    class: e?.constructor?.name,
    code: e?.code,
    message: e?.message,
    meta: e?.meta,
    cause: e?.cause && { name: e.cause.name, ...e.cause },
  };
}

async function main() {
  const adapter = new PrismaPg({ connectionString: env.DATABASE_URL });
  const prisma = new PrismaClient({ adapter, log: [{ emit: "event", level: "query" }] });
  prisma.$on("query", (q) => console.error(`sql: ${q.query} -- ${q.params}`));

  // 1. connect through the proxy
  try {
    await prisma.$connect();
    const [row] = await prisma.$queryRaw<{ one: number }[]>`SELECT 1 AS one`;
    check("prisma: connect through apigres with the PrismaPg adapter (DATABASE_URL)", row?.one === 1, row);
  } catch (e) {
    check("prisma: connect through apigres with the PrismaPg adapter (DATABASE_URL)", false, describeError(e));
  }

  // 2. the synced model with the application model, by include
  try {
    const c = await prisma.customer.findUnique({ where: { id: CID }, include: { orders: true } });
    const got = [c?.email, c?.orders.map((o) => `${o.note}|${o.amount}`).join(",")];
    const want = [env.CUSTOMER_EMAIL, `${env.ORDER_NOTE}|${env.ORDER_AMOUNT}`];
    check("prisma: findUnique of Customer (stripe.customer) with include of its Orders (public.orders)",
      JSON.stringify(got) === JSON.stringify(want), { want, got });
  } catch (e) {
    check("prisma: findUnique of Customer with include of its Orders", false, describeError(e));
  }

  // 3.-5. and 7. on a customer of its own: create, update, updateMany, $transaction, delete
  let id = "";
  try {
    const c = await prisma.customer.create({ data: { email: "prisma@example.com", name: "prisma client" } });
    id = c.id;
    const up = await upstream(id);
    check(`prisma: customer.create returns the API's id (${id}) and upstream has email and name`,
      id.startsWith("cus_") && c.email === "prisma@example.com" && up.email === "prisma@example.com" &&
      up.name === "prisma client", { returned: c, upstream: { email: up.email, name: up.name } });
  } catch (e) {
    check("prisma: customer.create", false, describeError(e));
  }
  if (id) {
    try {
      const c = await prisma.customer.update({ where: { id }, data: { name: "prisma client, renamed" } });
      const up = await upstream(id);
      check("prisma: customer.update returns the renamed record and upstream has the name",
        c.name === "prisma client, renamed" && up.name === "prisma client, renamed", { returned: c.name, upstream: up.name });
    } catch (e) {
      check("prisma: customer.update", false, describeError(e));
    }
    try {
      const r = await prisma.customer.updateMany({ where: { id }, data: { description: "via updateMany" } });
      const up = await upstream(id);
      check(`prisma: customer.updateMany reports count ${r.count} and upstream has the description`,
        r.count === 1 && up.description === "via updateMany", { count: r.count, upstream: up.description });
    } catch (e) {
      check("prisma: customer.updateMany", false, describeError(e));
    }
    try {
      let inside: string | null | undefined;
      await prisma.$transaction(async (tx) => {
        await tx.customer.update({ where: { id }, data: { name: "prisma, in a transaction" } });
        inside = (await tx.customer.findUnique({ where: { id } }))?.name;
        throw new Rollback("roll back");
      }).catch((e) => { if (!(e instanceof Rollback)) throw e; });
      check("prisma: inside an interactive $transaction the update reads back", inside === "prisma, in a transaction",
        { inside });
      const { mirror, up } = await mirrorEqualsUpstream(prisma, id, "name");
      // The API has no transactions: upstream keeps the name, and so must the table.
      check(`prisma: after the $transaction rolls back the table equals upstream (name ${JSON.stringify(up)})`,
        mirror === up, { mirror, upstream: up });
    } catch (e) {
      check("prisma: interactive $transaction with rollback", false, describeError(e));
    }
    try {
      const c = await prisma.customer.delete({ where: { id } });
      const up = await upstream(id);
      check("prisma: customer.delete returns the record and upstream answers deleted: true",
        c.id === id && up.deleted === true, { returned: c.id, upstream: up });
    } catch (e) {
      check("prisma: customer.delete", false, describeError(e));
    }
  }

  // A nested create is where Prisma opens a transaction of its own: the customer's INSERT ...
  // RETURNING id, then the order's INSERT with that id, then COMMIT.
  try {
    const c = await prisma.customer.create({
      data: { email: "prisma-nested@example.com", name: "prisma nested", orders: { create: { note: "nested", amount: 7 } } },
      include: { orders: true },
    });
    const up = await upstream(c.id);
    check(`prisma: a nested create (customer with an order, in Prisma's transaction) links the order to ${c.id}`,
      c.id.startsWith("cus_") && c.orders.length === 1 && c.orders[0].customerId === c.id &&
      up.email === "prisma-nested@example.com", { returned: c, upstream: { email: up.email } });
    const n = await prisma.order.deleteMany({ where: { customerId: c.id } });
    await prisma.customer.delete({ where: { id: c.id } });
    check("prisma: order.deleteMany and customer.delete clean up the nested create",
      n.count === 1 && (await upstream(c.id)).deleted === true, { count: n.count });
  } catch (e) {
    check("prisma: a nested create of a customer with an order", false, describeError(e));
  }

  // 6. the API's refusal as Prisma's own error, then the client goes on
  try {
    await prisma.customer.update({ where: { id: CID }, data: { email: "not-an-email" } });
    check("prisma: the API's refusal raises", false);
  } catch (e: any) {
    const d = describeError(e);
    console.log("# prisma's error: " + JSON.stringify(d));
    // Prisma 7 has no code of its own for a check violation: the driver adapter's error
    // (kind "postgres", the SQLSTATE, message and detail) rides in meta.driverAdapterError.
    const cause = e?.meta?.driverAdapterError?.cause ?? {};
    check(`prisma: the API's refusal is ${d.class} (code ${d.code}), meta.driverAdapterError.cause ` +
      `has originalCode ${cause.originalCode} and the API's message`,
      e instanceof Prisma.PrismaClientKnownRequestError && cause.originalCode === "23514" &&
      String(cause.originalMessage).startsWith(`Error updating customer ${CID}: Invalid email address`) &&
      String(e.message).includes("Invalid email address"), d);
  }
  try {
    const c = await prisma.customer.findUnique({ where: { id: CID } });
    check("prisma: after the refusal the client works and the email is unchanged",
      c?.email === env.CUSTOMER_EMAIL, { email: c?.email });
  } catch (e) {
    check("prisma: after the refusal the client works", false, describeError(e));
  }

  await prisma.$disconnect();
  const prismaVersion = version("prisma");
  console.log(`# matrix: Prisma ${prismaVersion.split(".")[0]} | prisma ${prismaVersion}, @prisma/client ` +
    `${version("@prisma/client")}, @prisma/adapter-pg ${version("@prisma/adapter-pg")}, pg ${version("pg")} | ` +
    `Node ${process.versions.node} | npm registry (package-lock.json)`);
}

main().then(
  () => process.exit(failed ? 1 : 0),
  (e) => { check("prisma: ran to its end", false, describeError(e)); process.exit(1); },
);
