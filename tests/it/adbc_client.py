"""ADBC's Flight SQL driver against `wausage serve`, for tests/it/serve.rs.

Usage: adbc_client.py URI CASES.json, where each case is {"sql", "expected"}:
a query and the Parquet file `wausage query --format parquet` wrote for it.
Prints what matched; exits 1 on the first difference.
"""

import json
import sys

import adbc_driver_flightsql.dbapi as flight_sql
import pyarrow.parquet as pq


def normalized(table):
    """Rows as sorted JSON lines: equal whatever the batches and row order."""
    return sorted(json.dumps(r, default=str, sort_keys=True) for r in table.to_pylist())


def fail(message):
    print(message)
    sys.exit(1)


def main():
    uri, cases_file = sys.argv[1], sys.argv[2]
    with open(cases_file) as f:
        cases = json.load(f)
    with flight_sql.connect(uri) as conn:
        cur = conn.cursor()
        for case in cases:
            cur.execute(case["sql"])
            got = cur.fetch_arrow_table()
            want = pq.read_table(case["expected"])
            if got.column_names != want.column_names:
                fail(f"{case['sql']}: columns {got.column_names} != {want.column_names}")
            if normalized(got) != normalized(want):
                fail(f"{case['sql']}: {got.num_rows} rows differ from {want.num_rows} local rows")
        print(f"{len(cases)} results equal")

        tricky = "o'brien'); DROP VIEW messages; --"
        cur.execute("SELECT $1 AS s, $2 AS n", parameters=(tricky, 7))
        row = cur.fetchone()
        if tuple(row) != (tricky, 7):
            fail(f"bound parameters came back as {row!r}")
        report = cases[-1]
        cur.execute("SELECT * FROM monthly_utilization($1, $2)", parameters=("2024-02", 30000))
        got = cur.fetch_arrow_table()
        if normalized(got) != normalized(pq.read_table(report["expected"])):
            fail("monthly_utilization($1, $2) differs from `wausage run monthly-utilization`")
        print("parameters ok")

        objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
        tables = {
            t["table_name"]
            for catalog in objects
            for schema in catalog["catalog_db_schemas"] or []
            for t in schema["db_schema_tables"] or []
        }
        for name in ("messages", "message_conversations", "message_pricing"):
            if name not in tables:
                fail(f"{name} not among the catalog's tables: {sorted(tables)}")
        schema = conn.adbc_get_table_schema("messages")
        if "customer_id" not in schema.names:
            fail(f"messages' schema lacks customer_id: {schema}")
        try:
            cur.execute("DROP VIEW messages")
            fail("DROP VIEW ran")
        except flight_sql.Error as e:
            if "read-only" not in str(e):
                fail(f"DROP VIEW refused without saying why: {e}")
        print("catalog ok")


if __name__ == "__main__":
    main()
