// postgres.js (`postgres`) through apigres. By default it prepares every query as a *named*
// statement (prepare: true), reuses it by name, and pipelines the queries that are waiting for
// one connection (several Parse/Bind/Execute before their Syncs' answers). Covered: the tagged
// template queries, its insert/update helpers (sql(object)), writes pipelined with reads on one
// connection, sql.begin(...) transactions (rolled back by an exception), one connection with
// prepare: false (unnamed statements), and the API's refusal as postgres.PostgresError.
'use strict';

const postgres = require('postgres');
const { env, check, step, stripeGet, eventually, version, matrix, watchdog, done, refusalText } = require('./lib');

const ROW = 'postgres.js';
const CID = env.CUSTOMER_ID;

// Thrown inside sql.begin to make it roll back.
class Rollback extends Error {}

function describe(err) {
  return err ? `${err.constructor.name} ${err.code} ${err.message}` : 'no error';
}

async function main() {
  watchdog(120);
  // max: 1 so that concurrent queries are pipelined on the one connection.
  const sql = postgres(env.DATABASE_URL, { max: 1, onnotice: () => {} });

  await step(`${ROW}: connects`, async () => {
    const [r] = await sql`SELECT current_user AS u`;
    check(`${ROW}: connects with postgres(DATABASE_URL)`, r.u === env.PGUSER, r);
  });

  await step(`${ROW}: the join`, async () => {
    const rows = await sql`
      SELECT c.email, o.note, o.amount FROM public.orders o JOIN stripe.customer c ON c.id = o.customer_id
      WHERE c.id = ${CID}`;
    check(`${ROW}: a synced table joined with an application table`,
      rows.length === 1 && rows[0].email === env.CUSTOMER_EMAIL && rows[0].note === env.ORDER_NOTE &&
      rows[0].amount === Number(env.ORDER_AMOUNT), rows);
  });

  let id;
  await step(`${ROW}: create`, async () => {
    const [r] = await sql`INSERT INTO stripe.customer ${sql({ email: 'postgres-js@example.com', name: 'postgres.js' })} RETURNING id`;
    id = r.id;
    check(`${ROW}: INSERT ... RETURNING id with sql(object), a named prepared statement (${id})`, /^cus_/.test(id), r);
    const up = await stripeGet(`customers/${id}`);
    check(`${ROW}: upstream has the email and name`, up.email === 'postgres-js@example.com' && up.name === 'postgres.js', up);
  });

  await step(`${ROW}: update`, async () => {
    const r = await sql`UPDATE stripe.customer SET ${sql({ name: 'postgres.js, renamed' })} WHERE id = ${id}`;
    check(`${ROW}: UPDATE with sql(object) (count ${r.count})`, r.command === 'UPDATE' && r.count === 1, r);
    const [mine] = await sql`SELECT name FROM stripe.customer WHERE id = ${id}`;
    let up = await stripeGet(`customers/${id}`);
    check(`${ROW}: upstream and the table have the new name`, up.name === 'postgres.js, renamed' && mine.name === up.name,
      { mirror: mine, upstream: up });

    // Two writes and two reads queued at once on one connection: all four statements are
    // prepared above, so postgres.js writes their Bind/Execute/Sync in one go before any answer
    // (a statement it has not prepared yet would first wait for its Parse/Describe's answer).
    const [w1, r1, w2, r2] = await Promise.all([
      sql`UPDATE stripe.customer SET ${sql({ name: 'postgres.js, pipelined 1' })} WHERE id = ${id}`,
      sql`SELECT name FROM stripe.customer WHERE id = ${id}`,
      sql`UPDATE stripe.customer SET ${sql({ name: 'postgres.js, pipelined 2' })} WHERE id = ${id}`,
      sql`SELECT name FROM stripe.customer WHERE id = ${id}`,
    ]);
    const got = [w1.count, r1[0].name, w2.count, r2[0].name];
    check(`${ROW}: pipelined UPDATE, SELECT, UPDATE, SELECT on one connection`,
      JSON.stringify(got) === JSON.stringify([1, 'postgres.js, pipelined 1', 1, 'postgres.js, pipelined 2']), got);
    up = await stripeGet(`customers/${id}`);
    check(`${ROW}: upstream has the last pipelined name`, up.name === 'postgres.js, pipelined 2', up);
  });

  await step(`${ROW}: prepare: false`, async () => {
    const unnamed = postgres(env.DATABASE_URL, { max: 1, prepare: false, onnotice: () => {} });
    try {
      const r = await unnamed`UPDATE stripe.customer SET name = ${'postgres.js, unprepared'} WHERE id = ${id} RETURNING name`;
      check(`${ROW}: UPDATE ... RETURNING with prepare: false (unnamed statements)`,
        r.count === 1 && r[0].name === 'postgres.js, unprepared', r);
      const up = await stripeGet(`customers/${id}`);
      check(`${ROW}: upstream has the unprepared update`, up.name === 'postgres.js, unprepared', up);
    } finally {
      await unnamed.end();
    }
  });

  await step(`${ROW}: delete`, async () => {
    const r = await sql`DELETE FROM stripe.customer WHERE id = ${id}`;
    check(`${ROW}: DELETE (count ${r.count})`, r.command === 'DELETE' && r.count === 1, r);
    const up = await stripeGet(`customers/${id}`);
    check(`${ROW}: upstream answers deleted: true`, up.deleted === true, up);
  });

  await step(`${ROW}: the refusal`, async () => {
    const want = refusalText();
    let err;
    try {
      await sql`UPDATE stripe.customer SET email = ${'not-an-email'} WHERE id = ${CID}`;
    } catch (e) { err = e; }
    check(`${ROW}: the API's refusal is postgres.PostgresError with code 23514`,
      err instanceof postgres.PostgresError && err.code === '23514' && err.message.startsWith(want) && !!err.detail,
      describe(err));
    const [r] = await sql`SELECT email FROM stripe.customer WHERE id = ${CID}`;
    check(`${ROW}: the connection goes on after it; the email is unchanged`, r.email === env.CUSTOMER_EMAIL, r);

    // In sql.begin the failure rejects the whole transaction, which postgres.js rolls back.
    err = undefined;
    try {
      await sql.begin((tx) => tx`UPDATE stripe.customer SET email = ${'not-an-email'} WHERE id = ${CID}`);
    } catch (e) { err = e; }
    check(`${ROW}: in sql.begin: postgres.PostgresError 23514, rolled back`,
      err instanceof postgres.PostgresError && err.code === '23514' && err.message.startsWith(want), describe(err));
    const [s] = await sql`SELECT email FROM stripe.customer WHERE id = ${CID}`;
    check(`${ROW}: the connection goes on after the rollback`, s.email === env.CUSTOMER_EMAIL, s);
  });

  await step(`${ROW}: transaction`, async () => {
    let inside;
    try {
      await sql.begin(async (tx) => {
        await tx`UPDATE stripe.customer SET ${tx({ name: 'postgres.js in a transaction' })} WHERE id = ${CID}`;
        [{ name: inside }] = await tx`SELECT name FROM stripe.customer WHERE id = ${CID}`;
        throw new Rollback();
      });
    } catch (e) {
      if (!(e instanceof Rollback)) throw e;
    }
    check(`${ROW}: sql.begin: UPDATE, read-your-write inside the transaction`, inside === 'postgres.js in a transaction', inside);
    let last;
    const same = await eventually(async () => {
      const [mine] = await sql`SELECT name, email FROM stripe.customer WHERE id = ${CID}`;
      const up = await stripeGet(`customers/${CID}`);
      last = { mirror: mine, upstream: { name: up.name, email: up.email } };
      return mine.name === up.name && mine.email === up.email;
    });
    check(`${ROW}: after the rollback the table equals upstream`, same, last);
  });

  await sql.end({ timeout: 5 }).catch(() => {});
  matrix(ROW, `postgres ${version('postgres')}`);
  done();
}

main();
