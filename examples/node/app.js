// An application's view of apigres with node-postgres: its own table joined with the synced
// stripe.customer, a customer created, renamed and deleted with ordinary SQL (each write
// becomes a Stripe API call), and the API's refusal caught as a normal database error.
//
//   npm ci && DATABASE_URL=postgres://app:app@127.0.0.1:6432/app node app.js
//
// DATABASE_URL defaults to what `make run` prints.
const { Pool } = require('pg');

const pool = new Pool({ connectionString: process.env.DATABASE_URL || 'postgres://app:app@127.0.0.1:6432/app' });

async function main() {
  // the application's own table: apigres passes this through untouched
  await pool.query(`CREATE TABLE IF NOT EXISTS purchases (
      id serial PRIMARY KEY, customer_id text NOT NULL, amount integer NOT NULL)`);

  // a customer through the API: INSERT ... RETURNING gives the id Stripe assigned
  const { rows: [customer] } = await pool.query(
    'INSERT INTO stripe.customer (email, name) VALUES ($1, $2) RETURNING id, email, name',
    ['ada@example.com', 'Ada Lovelace']);
  console.log('created', customer.id, customer.email);
  await pool.query('INSERT INTO purchases (customer_id, amount) VALUES ($1, 4200), ($1, 1700)', [customer.id]);

  // synced data joined with application data
  const { rows: totals } = await pool.query(
    `SELECT c.id, c.name, count(p.id) AS purchases, sum(p.amount) AS total
       FROM stripe.customer c JOIN purchases p ON p.customer_id = c.id
      WHERE c.id = $1 GROUP BY c.id, c.name`, [customer.id]);
  console.log('purchases of', totals[0].name, '->', totals[0].purchases, 'totalling', totals[0].total);

  // an UPDATE inside a transaction, as an application writes it
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const res = await client.query('UPDATE stripe.customer SET name = $1 WHERE id = $2', ['Ada King', customer.id]);
    await client.query('COMMIT');
    console.log('renamed:', res.command, res.rowCount);
  } finally {
    client.release();
  }

  // the API refuses: a standard Postgres error with the SQLSTATE and Stripe's message
  try {
    await pool.query('UPDATE stripe.customer SET email = $1 WHERE id = $2', ['not-an-email', customer.id]);
  } catch (err) {
    console.log(`refused: ${err.code} ${err.message}`);
  }

  await pool.query('DELETE FROM purchases WHERE customer_id = $1', [customer.id]);
  const del = await pool.query('DELETE FROM stripe.customer WHERE id = $1', [customer.id]);
  console.log('deleted:', del.command, del.rowCount);
}

main()
  .then(() => pool.end())
  .catch((err) => { console.error(err); process.exit(1); });
