#!/usr/bin/env python3
"""Rewrite a Parquet message log as another tool would write it with its default settings.

    python3 scripts/rewrite_log.py IN_DIR OUT_DIR --writer {pyarrow-one,pyarrow-many,duckdb-one,duckdb-many}

Reads every *.parquet under IN_DIR (recursively, in sorted path order; IN_DIR may also be one
file) and writes the same rows, in the same order, to OUT_DIR:

  pyarrow-one   OUT_DIR/log.parquet, streamed through pyarrow.parquet.ParquetWriter with
                write_table's defaults (row groups of 1024*1024 rows, snappy, ...);
                schema of the first input file.
  pyarrow-many  OUT_DIR/part-NNNNN.parquet, --rows-per-file rows each (500000), each file
                written by pyarrow.parquet.write_table with its defaults.
  duckdb-one    COPY (SELECT * FROM read_parquet([...files...])) TO 'OUT_DIR/log.parquet'
                (FORMAT parquet) with DuckDB's defaults.
  duckdb-many   COPY ... TO 'OUT_DIR' (FORMAT parquet, FILE_SIZE_BYTES '32MB', PRESERVE_ORDER
                true): DuckDB's own data_0.parquet, data_1.parquet, ... in row order (note:
                data_10 sorts before data_2). PRESERVE_ORDER is stated because DuckDB 2.0.1's
                size-rotating writer ignores the global preserve_insertion_order=true and, with
                2 threads, interleaves row groups across files; --unordered leaves it out and
                so writes what a plain COPY ... FILE_SIZE_BYTES gives (rows out of order).

DuckDB runs with threads=2, memory_limit=4GB, preserve_insertion_order=true (its default) and a
spill directory inside the output directory, removed afterwards. Partition keys in hive paths
(month=...) are not added as columns: the rows are the files' rows.

Output goes to OUT_DIR.tmp first and is renamed to OUT_DIR when complete; OUT_DIR must not exist
(unless --force). The written row count is checked against the input's. Prints one summary line:
    writer=... rows=N files=M out=OUT_DIR
Exit status: 0 done, 1 failed (message on stderr), 2 bad arguments.
"""

import argparse
import os
import shutil
import sys
import time

WRITERS = ("pyarrow-one", "pyarrow-many", "duckdb-one", "duckdb-many")
PYARROW_ROW_GROUP = 1024 * 1024  # pyarrow.parquet.write_table's default maximum row group length
READ_BATCH = 64 * 1024


class Failure(Exception):
    pass


def find_inputs(in_path):
    if os.path.isfile(in_path):
        return [os.path.abspath(in_path)]
    if not os.path.isdir(in_path):
        raise Failure(f"{in_path}: no such file or directory")
    found = []
    for root, dirs, files in os.walk(in_path):
        dirs[:] = [d for d in dirs if not d.startswith((".", "_"))]
        for name in files:
            if name.endswith(".parquet") and not name.startswith((".", "_")):
                found.append(os.path.abspath(os.path.join(root, name)))
    if not found:
        raise Failure(f"{in_path}: no *.parquet files found")
    # Sorted by path relative to IN_DIR: month=2024-01/... before month=2024-02/...
    return sorted(found)


def parquet_rows(paths):
    import pyarrow.parquet as pq

    total = 0
    for p in paths:
        try:
            total += pq.ParquetFile(p).metadata.num_rows
        except Exception as e:  # noqa: BLE001 - any unreadable file is a clear failure
            raise Failure(f"{p}: not a readable Parquet file: {e}") from e
    return total


def output_files(out_dir):
    found = []
    for root, _dirs, files in os.walk(out_dir):
        for name in files:
            if name.endswith(".parquet"):
                found.append(os.path.join(root, name))
    return sorted(found)


def iter_tables(paths, schema):
    """Yield the inputs' rows as tables of the first file's schema, file by file, in order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for p in paths:
        f = pq.ParquetFile(p)
        same = f.schema_arrow.remove_metadata().equals(schema.remove_metadata())
        for batch in f.iter_batches(batch_size=READ_BATCH, use_threads=True):
            t = pa.Table.from_batches([batch])
            if not same:
                try:
                    t = t.select(schema.names).cast(schema)
                except Exception as e:  # noqa: BLE001
                    raise Failure(
                        f"{p}: schema differs from the first file's and cannot be cast to it: {e}"
                    ) from e
            yield t


def chunks(paths, schema, rows):
    """Yield tables of exactly `rows` rows (the last may be shorter), memory bounded to ~2 chunks."""
    import pyarrow as pa

    pending, n = [], 0
    for t in iter_tables(paths, schema):
        pending.append(t)
        n += t.num_rows
        while n >= rows:
            whole = pa.concat_tables(pending)
            yield whole.slice(0, rows)
            rest = whole.slice(rows)
            pending, n = ([rest] if rest.num_rows else []), rest.num_rows
    if n:
        yield pa.concat_tables(pending)


def write_pyarrow_one(paths, tmp):
    import pyarrow.parquet as pq

    schema = pq.ParquetFile(paths[0]).schema_arrow
    target = os.path.join(tmp, "log.parquet")
    # ParquetWriter's defaults are write_table's; each write_table call below is one full
    # default-sized row group, exactly as write_table on the whole log would cut it.
    with pq.ParquetWriter(target, schema) as writer:
        for t in chunks(paths, schema, PYARROW_ROW_GROUP):
            writer.write_table(t)


def write_pyarrow_many(paths, tmp, rows_per_file):
    import pyarrow.parquet as pq

    schema = pq.ParquetFile(paths[0]).schema_arrow
    for i, t in enumerate(chunks(paths, schema, rows_per_file)):
        pq.write_table(t, os.path.join(tmp, f"part-{i:05d}.parquet"))


def sql_str(s):
    return "'" + s.replace("'", "''") + "'"


def write_duckdb(paths, tmp, many, file_size, unordered=False):
    import duckdb

    spill = os.path.join(tmp, ".duckdb_tmp")
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET threads = 2")
        con.execute("SET memory_limit = '4GB'")
        con.execute(f"SET temp_directory = {sql_str(spill)}")
        con.execute("SET preserve_insertion_order = true")  # DuckDB's default, stated
        files = "[" + ", ".join(sql_str(p) for p in paths) + "]"
        source = f"SELECT * FROM read_parquet({files}, filename = false, hive_partitioning = false)"
        if many:
            con.execute(
                f"COPY ({source}) TO {sql_str(tmp)} "
                f"(FORMAT parquet, FILE_SIZE_BYTES {sql_str(file_size)}"
                + ("" if unordered else ", PRESERVE_ORDER true") + ")"
            )
        else:
            target = os.path.join(tmp, "log.parquet")
            con.execute(f"COPY ({source}) TO {sql_str(target)} (FORMAT parquet)")
    except duckdb.Error as e:
        raise Failure(f"DuckDB: {e}") from e
    finally:
        con.close()
    shutil.rmtree(spill, ignore_errors=True)


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Rewrite a Parquet message log with another tool's default writer settings."
    )
    ap.add_argument("in_dir", metavar="IN_DIR")
    ap.add_argument("out_dir", metavar="OUT_DIR")
    ap.add_argument("--writer", required=True, choices=WRITERS)
    ap.add_argument("--rows-per-file", type=int, default=500_000, metavar="N",
                    help="pyarrow-many: rows per file (default 500000)")
    ap.add_argument("--file-size", default="32MB", metavar="SIZE",
                    help="duckdb-many: FILE_SIZE_BYTES (default 32MB)")
    ap.add_argument("--unordered", action="store_true",
                    help="duckdb-many: no PRESERVE_ORDER (DuckDB then mixes the rows' order)")
    ap.add_argument("--force", action="store_true", help="replace OUT_DIR if it exists")
    args = ap.parse_args(argv)
    if args.rows_per_file < 1:
        ap.error("--rows-per-file must be at least 1")

    out = os.path.abspath(args.out_dir.rstrip("/") or "/")
    tmp = out + ".tmp"
    made_tmp = keep_tmp = False
    try:
        try:
            import pyarrow  # noqa: F401
            if args.writer.startswith("duckdb"):
                import duckdb  # noqa: F401
        except ImportError as e:
            raise Failure(f"{e}; pip install -r scripts/requirements-bench.txt") from e

        paths = find_inputs(args.in_dir)
        in_root = os.path.abspath(args.in_dir)
        for p in (out, tmp):
            if os.path.isdir(in_root) and (p == in_root or p.startswith(in_root + os.sep)):
                raise Failure(f"{p}: the output must not be inside IN_DIR {in_root}")
        if os.path.exists(out) and not args.force:
            raise Failure(f"{out}: already exists (pass --force to replace it)")
        expected = parquet_rows(paths)

        if os.path.exists(tmp):
            print(f"removing a stale {tmp}", file=sys.stderr)
            shutil.rmtree(tmp)
        os.makedirs(tmp)
        made_tmp = True

        started = time.monotonic()
        if args.writer == "pyarrow-one":
            write_pyarrow_one(paths, tmp)
        elif args.writer == "pyarrow-many":
            write_pyarrow_many(paths, tmp, args.rows_per_file)
        elif args.writer == "duckdb-one":
            write_duckdb(paths, tmp, many=False, file_size=None)
        else:
            write_duckdb(paths, tmp, many=True, file_size=args.file_size,
                         unordered=args.unordered)
        elapsed = time.monotonic() - started

        written = output_files(tmp)
        rows = parquet_rows(written)
        if rows != expected:
            keep_tmp = True
            raise Failure(f"wrote {rows} rows but the input has {expected}; {tmp} kept for a look")

        if os.path.isdir(out) and not os.path.islink(out):  # --force
            shutil.rmtree(out)
        elif os.path.lexists(out):
            os.remove(out)
        os.rename(tmp, out)
    except (Failure, Exception) as e:  # noqa: BLE001 - e.g. disk full, an Arrow error
        msg = str(e) if isinstance(e, Failure) else f"{type(e).__name__}: {e}"
        print(f"rewrite_log: error: {msg}", file=sys.stderr)
        if made_tmp and not keep_tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        return 1
    except KeyboardInterrupt:
        if made_tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        return 130

    print(f"writer={args.writer} input_files={len(paths)} rows={rows} files={len(written)} "
          f"seconds={elapsed:.1f} out={out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
