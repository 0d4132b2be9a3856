#!/usr/bin/env python3
"""The plain group-by in DuckDB, to be timed as a whole process against wausage.

    python3 scripts/duckdb_plain.py DATA_DIR

Runs, with threads=2,
    SELECT count(*) FROM (SELECT account_id, customer_id, count(*)
      FROM read_parquet('DATA_DIR/**/*.parquet', hive_partitioning=false) GROUP BY 1, 2)
and prints the one number. The wausage counterpart:
    wausage --data DATA_DIR --format csv query
      "SELECT count(*) FROM (SELECT account_id, customer_id, count(*) FROM messages_raw GROUP BY 1, 2)"
Exit status: 0 done, 1 failed (message on stderr), 2 bad arguments.
"""

import os
import sys


def main(argv):
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    data = argv[1].rstrip("/") or "/"
    if not os.path.isdir(data):
        print(f"duckdb_plain: error: {data}: not a directory", file=sys.stderr)
        return 1
    try:
        import duckdb
    except ImportError as e:
        print(f"duckdb_plain: error: {e}; pip install -r scripts/requirements-bench.txt",
              file=sys.stderr)
        return 1
    glob = (data + "/**/*.parquet").replace("'", "''")
    sql = ("SELECT count(*) FROM (SELECT account_id, customer_id, count(*) "
           f"FROM read_parquet('{glob}', hive_partitioning=false) GROUP BY 1, 2)")
    try:
        con = duckdb.connect(":memory:")
        con.execute("SET threads=2")
        (n,) = con.execute(sql).fetchone()
        con.close()
    except duckdb.Error as e:
        print(f"duckdb_plain: error: {e}", file=sys.stderr)
        return 1
    print(n)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
