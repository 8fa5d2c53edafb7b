// knex (client 'pg') through apigres: the query builder as an application writes it, i.e.
// insert(...).returning('id'), update(...) with its affected-row count, del(), a join, and
// knex.transaction (committed, and rolled back). knex runs node-postgres underneath, so the
// API's refusal is pg's DatabaseError, thrown through knex with the SQL prefixed to its message.
'use strict';

const knexFactory = require('knex');
const pg = require('pg');
const { env, check, step, stripeGet, eventually, version, matrix, watchdog, done, refusalText } = require('./lib');

const ROW = 'knex';
const CID = env.CUSTOMER_ID;

class Rollback extends Error {}

function describe(err) {
  return err ? `${err.constructor.name} ${err.code} ${err.message}` : 'no error';
}

async function main() {
  watchdog(120);
  const knex = knexFactory({ client: 'pg', connection: env.DATABASE_URL, pool: { min: 0, max: 2 } });
  const customers = () => knex('stripe.customer');

  await step(`${ROW}: connects`, async () => {
    const r = await knex.raw('SELECT current_user AS u');
    check(`${ROW}: connects with knex({client: 'pg', connection: DATABASE_URL})`, r.rows[0].u === env.PGUSER, r.rows);
  });

  await step(`${ROW}: the join`, async () => {
    const rows = await knex('public.orders as o').join('stripe.customer as c', 'c.id', 'o.customer_id')
      .where('c.id', CID).select('c.email', 'o.note', 'o.amount');
    check(`${ROW}: a synced table joined with an application table (query builder join)`,
      rows.length === 1 && rows[0].email === env.CUSTOMER_EMAIL && rows[0].note === env.ORDER_NOTE &&
      rows[0].amount === Number(env.ORDER_AMOUNT), rows);
  });

  let id;
  await step(`${ROW}: create`, async () => {
    // Created in a transaction knex opens and commits, read back inside it.
    let inside;
    await knex.transaction(async (trx) => {
      [{ id }] = await trx('stripe.customer').insert({ email: 'knex@example.com', name: 'knex' }).returning('id');
      inside = await trx('stripe.customer').where({ id }).first('email', 'name');
    });
    check(`${ROW}: insert().returning('id') in knex.transaction, read back in it (${id})`,
      /^cus_/.test(id) && inside && inside.email === 'knex@example.com' && inside.name === 'knex', { id, inside });
    const up = await stripeGet(`customers/${id}`);
    check(`${ROW}: upstream has the email and name`, up.email === 'knex@example.com' && up.name === 'knex', up);
  });

  await step(`${ROW}: update`, async () => {
    const n = await customers().where({ id }).update({ name: 'knex, renamed' });
    check(`${ROW}: update() returns the affected-row count (${n})`, n === 1, n);
    const up = await stripeGet(`customers/${id}`);
    check(`${ROW}: upstream has the new name`, up.name === 'knex, renamed', up);
  });

  await step(`${ROW}: delete`, async () => {
    const n = await customers().where({ id }).del();
    check(`${ROW}: del() returns the affected-row count (${n})`, n === 1, n);
    const up = await stripeGet(`customers/${id}`);
    check(`${ROW}: upstream answers deleted: true`, up.deleted === true, up);
  });

  await step(`${ROW}: the refusal`, async () => {
    const want = refusalText();
    let err;
    try {
      await customers().where({ id: CID }).update({ email: 'not-an-email' });
    } catch (e) { err = e; }
    // knex prefixes the SQL: "update ... - Error updating customer ...".
    check(`${ROW}: the API's refusal is pg.DatabaseError with code 23514, through knex`,
      err instanceof pg.DatabaseError && err.code === '23514' && err.message.includes(' - ' + want) && !!err.detail,
      describe(err));
    const r = await customers().where({ id: CID }).first('email');
    check(`${ROW}: the pool goes on after it; the email is unchanged`, r.email === env.CUSTOMER_EMAIL, r);

    err = undefined;
    try {
      await knex.transaction((trx) => trx('stripe.customer').where({ id: CID }).update({ email: 'not-an-email' }));
    } catch (e) { err = e; }
    check(`${ROW}: in knex.transaction: pg.DatabaseError 23514, rolled back`,
      err instanceof pg.DatabaseError && err.code === '23514' && err.message.includes(want), describe(err));
    const s = await customers().where({ id: CID }).first('email');
    check(`${ROW}: the pool goes on after the rollback`, s.email === env.CUSTOMER_EMAIL, s);
  });

  await step(`${ROW}: transaction`, async () => {
    let inside;
    try {
      await knex.transaction(async (trx) => {
        await trx('stripe.customer').where({ id: CID }).update({ name: 'knex in a transaction' });
        ({ name: inside } = await trx('stripe.customer').where({ id: CID }).first('name'));
        throw new Rollback();
      });
    } catch (e) {
      if (!(e instanceof Rollback)) throw e;
    }
    check(`${ROW}: knex.transaction: update, read-your-write inside the transaction`, inside === 'knex in a transaction', inside);
    let last;
    const same = await eventually(async () => {
      const mine = await customers().where({ id: CID }).first('name', 'email');
      const up = await stripeGet(`customers/${CID}`);
      last = { mirror: mine, upstream: { name: up.name, email: up.email } };
      return mine.name === up.name && mine.email === up.email;
    });
    check(`${ROW}: after the rollback the table equals upstream`, same, last);
  });

  await knex.destroy().catch(() => {});
  matrix(ROW, `knex ${version('knex')} + pg ${version('pg')}`);
  done();
}

main();
