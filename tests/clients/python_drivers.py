"""Writes to a synced table through apigres with Python's drivers: psycopg2 (simple
protocol, values interpolated by the driver) and asyncpg (extended protocol, named
statements, binary formats). Run by tests/integration/75_write.py with Debian's python3:

    python_drivers.py PROXY_DSN CUSTOMER_ID

Prints "ok - ..." / "not ok - ..." lines; exits 1 if any check failed.
"""

import asyncio
import sys

import asyncpg
import psycopg2
import psycopg2.errors

DSN, CID = sys.argv[1], sys.argv[2]
failed = False


def check(desc, cond, detail=""):
    global failed
    print(("ok - " if cond else "not ok - ") + desc, flush=True)
    if not cond:
        failed = True
        for line in str(detail).splitlines():
            print("#   " + line, flush=True)


# --- psycopg2
conn = psycopg2.connect(DSN)
cur = conn.cursor()
cur.execute("UPDATE stripe.customer SET name = %s WHERE id = %s RETURNING name", ("psycopg2", CID))
check("psycopg2: UPDATE ... RETURNING", cur.fetchall() == [("psycopg2",)] and cur.rowcount == 1)
conn.commit()
cur.execute("INSERT INTO stripe.customer (email, name) VALUES (%s, %s) RETURNING id", ("py@example.com", "Py"))
new_id = cur.fetchone()[0]
cur.execute("SELECT email FROM stripe.customer WHERE id = %s", (new_id,))
check("psycopg2: INSERT ... RETURNING id inside the driver's transaction, read back in it (%s)" % new_id,
      new_id.startswith("cus_") and cur.fetchone() == ("py@example.com",))
cur.execute("DELETE FROM stripe.customer WHERE id = %s", (new_id,))
check("psycopg2: DELETE", cur.rowcount == 1)
conn.commit()
try:
    cur.execute("UPDATE stripe.customer SET email = %s WHERE id = %s", ("not-an-email", CID))
    check("psycopg2: the API's refusal raises", False)
except psycopg2.errors.CheckViolation as e:
    check("psycopg2: the API's refusal is psycopg2.errors.CheckViolation (%s)" % e.pgcode,
          e.pgcode == "23514" and "Invalid email address" in e.pgerror and e.diag.message_detail, e.pgerror)
conn.rollback()
conn.close()


# --- asyncpg
async def run_asyncpg():
    a = await asyncpg.connect(DSN)
    rows = await a.fetch("UPDATE stripe.customer SET name = $1 WHERE id = $2 RETURNING id, name", "asyncpg", CID)
    check("asyncpg: UPDATE ... RETURNING (binary results)", [tuple(r) for r in rows] == [(CID, "asyncpg")], rows)
    status = await a.execute("UPDATE stripe.customer SET balance = $1 WHERE id = $2", 1234, CID)
    check("asyncpg: a binary bigint parameter (%s)" % status, status == "UPDATE 1")
    check("asyncpg: the mirror has it", await a.fetchval("SELECT balance FROM stripe.customer WHERE id = $1", CID) == 1234)
    async with a.transaction():
        nid = await a.fetchval("INSERT INTO stripe.customer (email) VALUES ($1) RETURNING id", "apg@example.com")
        own = await a.fetchval("SELECT email FROM stripe.customer WHERE id = $1", nid)
    check("asyncpg: INSERT in a transaction, read back in it", own == "apg@example.com", own)
    check("asyncpg: DELETE", await a.execute("DELETE FROM stripe.customer WHERE id = $1", nid) == "DELETE 1")
    try:
        await a.execute("UPDATE stripe.customer SET email = $1 WHERE id = $2", "not-an-email", CID)
        check("asyncpg: the API's refusal raises", False)
    except asyncpg.exceptions.CheckViolationError as e:
        check("asyncpg: the API's refusal is asyncpg's CheckViolationError (%s)" % e.sqlstate,
              e.sqlstate == "23514" and "Invalid email address" in str(e), e)
    check("asyncpg: the connection goes on",
          await a.fetchval("SELECT name FROM stripe.customer WHERE id = $1", CID) == "asyncpg")
    await a.close()


asyncio.run(run_asyncpg())
sys.exit(1 if failed else 0)
