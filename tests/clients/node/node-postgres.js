// node-postgres (`pg`) through apigres, as an application uses it: a Pool and a Client from the
// connection string, parameterised queries (the extended protocol, unnamed statements), a
// *named* prepared statement ({name, text, values}) used several times (after its first use pg
// sends only Bind/Execute, so apigres must remember the write behind the name), transactions
// with BEGIN/ROLLBACK on a checked-out client, and the API's refusal as pg's DatabaseError.
'use strict';

const pg = require('pg');
const { env, check, step, stripeGet, eventually, version, matrix, watchdog, done, refusalText } = require('./lib');

const ROW = 'node-postgres';
const CID = env.CUSTOMER_ID;
// pg's own statement names: the same name with the same text is prepared once per connection.
const CREATE = { name: 'apigres-create-customer', text: 'INSERT INTO stripe.customer (email, name) VALUES ($1, $2) RETURNING id' };
const RENAME = { name: 'apigres-rename-customer', text: 'UPDATE stripe.customer SET name = $1 WHERE id = $2 RETURNING name' };

async function main() {
  watchdog(120);
  const pool = new pg.Pool({ connectionString: env.DATABASE_URL, max: 2 });
  const client = new pg.Client({ connectionString: env.DATABASE_URL });

  await step(`${ROW}: connects with Pool and Client`, async () => {
    await client.connect();
    const r = await pool.query('SELECT current_user AS u');
    check(`${ROW}: connects with a Pool and a Client (DATABASE_URL)`, r.rows[0].u === env.PGUSER, r.rows);
  });

  await step(`${ROW}: the join`, async () => {
    const r = await pool.query(
      'SELECT c.email, o.note, o.amount FROM public.orders o JOIN stripe.customer c ON c.id = o.customer_id WHERE c.id = $1',
      [CID]);
    check(`${ROW}: a synced table joined with an application table (parameterised)`,
      r.rows.length === 1 && r.rows[0].email === env.CUSTOMER_EMAIL && r.rows[0].note === env.ORDER_NOTE &&
      r.rows[0].amount === Number(env.ORDER_AMOUNT), r.rows);
  });

  // Two creates and two renames share their named statements on the one Client connection.
  const ids = [];
  await step(`${ROW}: create with a named statement`, async () => {
    for (const n of [1, 2]) {
      const r = await client.query({ ...CREATE, values: [`node-pg-${n}@example.com`, `node-postgres ${n}`] });
      ids.push(r.rows[0].id);
    }
    check(`${ROW}: INSERT ... RETURNING id with a named prepared statement, twice (${ids.join(', ')})`,
      ids.length === 2 && ids.every((id) => /^cus_/.test(id)) && ids[0] !== ids[1], ids);
    const up = await Promise.all(ids.map((id) => stripeGet(`customers/${id}`)));
    check(`${ROW}: upstream has both created customers' email and name`,
      up.every((c, i) => c.email === `node-pg-${i + 1}@example.com` && c.name === `node-postgres ${i + 1}`), up);
  });

  await step(`${ROW}: update with a named statement`, async () => {
    const counts = [];
    for (const [i, id] of ids.entries()) {
      const r = await client.query({ ...RENAME, values: [`node-postgres ${i + 1}, renamed`, id] });
      counts.push(`${r.command} ${r.rowCount} ${r.rows[0] && r.rows[0].name}`);
    }
    check(`${ROW}: UPDATE with a named prepared statement, twice (rowCount 1 each)`,
      counts[0] === 'UPDATE 1 node-postgres 1, renamed' && counts[1] === 'UPDATE 1 node-postgres 2, renamed', counts);
    const up = await Promise.all(ids.map((id) => stripeGet(`customers/${id}`)));
    check(`${ROW}: upstream has the new names`, up.every((c, i) => c.name === `node-postgres ${i + 1}, renamed`), up);
  });

  await step(`${ROW}: delete`, async () => {
    const counts = [];
    for (const id of ids) counts.push((await pool.query('DELETE FROM stripe.customer WHERE id = $1', [id])).rowCount);
    check(`${ROW}: DELETE through the Pool (rowCount 1 each)`, counts.join() === '1,1', counts);
    const up = await Promise.all(ids.map((id) => stripeGet(`customers/${id}`)));
    check(`${ROW}: upstream answers deleted: true`, up.every((c) => c.deleted === true), up);
  });

  await step(`${ROW}: the refusal`, async () => {
    const want = refusalText();
    let err;
    try {
      await pool.query('UPDATE stripe.customer SET email = $1 WHERE id = $2', ['not-an-email', CID]);
    } catch (e) { err = e; }
    check(`${ROW}: the API's refusal is pg.DatabaseError with code 23514 (Pool)`,
      err instanceof pg.DatabaseError && err.code === '23514' && err.message.startsWith(want) && !!err.detail,
      err ? `${err.constructor.name} ${err.code} ${err.message}` : 'no error');
    const r = await pool.query('SELECT email FROM stripe.customer WHERE id = $1', [CID]);
    check(`${ROW}: the Pool goes on after it; the email is unchanged`, r.rows[0].email === env.CUSTOMER_EMAIL, r.rows);

    // Inside a transaction the failure aborts it, as any failed statement does; ROLLBACK recovers.
    err = undefined;
    await client.query('BEGIN');
    try {
      await client.query({ name: 'apigres-bad-email', text: 'UPDATE stripe.customer SET email = $1 WHERE id = $2', values: ['not-an-email', CID] });
    } catch (e) { err = e; }
    await client.query('ROLLBACK');
    check(`${ROW}: in a transaction, with a named statement: pg.DatabaseError 23514, then ROLLBACK`,
      err instanceof pg.DatabaseError && err.code === '23514' && err.message.startsWith(want),
      err ? `${err.constructor.name} ${err.code} ${err.message}` : 'no error');
    const s = await client.query('SELECT email FROM stripe.customer WHERE id = $1', [CID]);
    check(`${ROW}: the Client goes on after the ROLLBACK`, s.rows[0].email === env.CUSTOMER_EMAIL, s.rows);
  });

  await step(`${ROW}: transaction`, async () => {
    await client.query('BEGIN');
    await client.query({ ...RENAME, values: ['node-postgres in a transaction', CID] });
    const inside = (await client.query('SELECT name FROM stripe.customer WHERE id = $1', [CID])).rows[0].name;
    await client.query('ROLLBACK');
    check(`${ROW}: BEGIN, UPDATE, read-your-write inside the transaction`, inside === 'node-postgres in a transaction', inside);
    let last;
    const same = await eventually(async () => {
      const mine = (await pool.query('SELECT name, email FROM stripe.customer WHERE id = $1', [CID])).rows[0];
      const up = await stripeGet(`customers/${CID}`);
      last = { mirror: mine, upstream: { name: up.name, email: up.email } };
      return mine.name === up.name && mine.email === up.email;
    });
    check(`${ROW}: after ROLLBACK the table equals upstream`, same, last);
  });

  await client.end().catch(() => {});
  await pool.end().catch(() => {});
  matrix(ROW, `pg ${version('pg')}`);
  done();
}

main();
