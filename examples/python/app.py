#!/usr/bin/env python3
"""An application's view of apigres with psycopg2: its own table joined with the synced
stripe.customer, a customer created, renamed and deleted with ordinary SQL (each write
becomes a Stripe API call), and the API's refusal caught as psycopg2's own exception.

    DATABASE_URL=postgres://app:app@127.0.0.1:6432/app python3 app.py

DATABASE_URL defaults to what `make run` prints. Needs psycopg2 (Debian: python3-psycopg2).
"""

import os

import psycopg2
import psycopg2.errors

conn = psycopg2.connect(os.environ.get("DATABASE_URL", "postgres://app:app@127.0.0.1:6432/app"))

with conn, conn.cursor() as cur:  # one transaction, committed at the end of the block
    # the application's own table: apigres passes this through untouched
    cur.execute("CREATE TABLE IF NOT EXISTS purchases ("
                " id serial PRIMARY KEY, customer_id text NOT NULL, amount integer NOT NULL)")
    # a customer through the API: INSERT ... RETURNING gives the id Stripe assigned
    cur.execute("INSERT INTO stripe.customer (email, name) VALUES (%s, %s) RETURNING id, email",
                ("grace@example.com", "Grace Hopper"))
    customer_id, email = cur.fetchone()
    print("created", customer_id, email)
    cur.execute("INSERT INTO purchases (customer_id, amount) VALUES (%s, 4200), (%s, 1700)", (customer_id, customer_id))

with conn, conn.cursor() as cur:
    # synced data joined with application data
    cur.execute("SELECT c.name, count(p.id), sum(p.amount) FROM stripe.customer c"
                " JOIN purchases p ON p.customer_id = c.id WHERE c.id = %s GROUP BY c.name", (customer_id,))
    name, n, total = cur.fetchone()
    print("purchases of", name, "->", n, "totalling", total)
    cur.execute("UPDATE stripe.customer SET name = %s WHERE id = %s", ("Grace B. Hopper", customer_id))
    print("renamed:", cur.statusmessage)

try:
    with conn, conn.cursor() as cur:
        cur.execute("UPDATE stripe.customer SET email = %s WHERE id = %s", ("not-an-email", customer_id))
except psycopg2.errors.CheckViolation as e:  # the API refused: the transaction rolled back
    print("refused:", e.pgcode, e.diag.message_primary)

with conn, conn.cursor() as cur:
    cur.execute("DELETE FROM purchases WHERE customer_id = %s", (customer_id,))
    cur.execute("DELETE FROM stripe.customer WHERE id = %s", (customer_id,))
    print("deleted:", cur.statusmessage)
conn.close()
