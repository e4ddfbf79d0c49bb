"""Generator throughput: operations/s of generate() at 100k and 1M operations, and the bulk-load path (COPY)
side by side with a plain executemany INSERT baseline on the same sample of operation rows.

Why: the demo and the scale tests need 1M+ operation ledgers in minutes; this shows where the time goes and
that COPY is the reason it is feasible. Not part of the test suite (it takes minutes):

    .venv/bin/python benchmarks/bench_generate.py [--sizes 100000,1000000] [--sample 20000] [--revision r1]
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime

import psycopg

from reconciliation.demo.gen_model import copy_line
from reconciliation.demo.gen_sink import copy_lines
from reconciliation.demo.generator import OP_COLS_R1, OP_COLS_R2, TX_COLS_R1, TX_COLS_R2, generate
from reconciliation.demo.servers import LocalStack


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
           for r in rows]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def bench_generate(stack: LocalStack, revision: str, size: int) -> tuple[str, ...]:
    env = stack.new_env(revision)
    try:
        t0 = time.perf_counter()
        stats = generate(env, operations=size, seed=1, now=datetime.now(UTC))
        secs = time.perf_counter() - t0
        rows = stats["operations"] + stats["transactions"] + stats["balance"]
        return (f"generate {revision} {size:,} ops", f"{stats['operations']:,}", f"{rows:,}", f"{secs:.1f}",
                f"{stats['operations'] / secs:,.0f}", f"{rows / secs:,.0f}",
                f"sim+COPY {stats['seconds']['transactions']}s, rest {stats['seconds']['finish']}s")
    finally:
        stack.drop_env(env)


def bench_load_paths(stack: LocalStack, revision: str, sample: int) -> list[tuple[str, ...]]:
    """The same `sample` operation rows loaded by COPY (text) and by executemany INSERT, into an empty table."""
    src = stack.new_env(revision)
    dst = stack.new_env(revision)
    op_cols = OP_COLS_R2 if revision == "r2" else OP_COLS_R1
    tx_cols = TX_COLS_R2 if revision == "r2" else TX_COLS_R1
    try:
        generate(src, operations=sample, seed=2, now=datetime.now(UTC), inflight=False)
        with psycopg.connect(src.transaction_conninfo) as conn:
            txs = conn.execute(f'SELECT {", ".join(tx_cols)} FROM "transaction"').fetchall()
            ops = conn.execute(f"SELECT {', '.join(op_cols)} FROM operation").fetchall()
        out = []
        with psycopg.connect(dst.transaction_conninfo) as conn:
            copy_lines(conn, "transaction", tx_cols, [copy_line(list(r)) for r in txs])
            conn.commit()
            cols = ", ".join(op_cols)
            lines = [copy_line(list(r)) for r in ops]  # the generator builds these lines while simulating
            timings: dict[str, float] = {}
            for method in ("copy_text", "copy_write_row", "executemany") * 2:  # two rounds, best of each
                t0 = time.perf_counter()
                if method == "copy_text":
                    copy_lines(conn, "operation", op_cols, lines)
                elif method == "copy_write_row":
                    with conn.cursor() as cur, cur.copy(f"COPY operation ({cols}) FROM STDIN") as cp:
                        for r in ops:
                            cp.write_row(r)
                else:  # baseline: parameterised INSERTs (psycopg 3 pipelines executemany)
                    with conn.cursor() as cur:
                        cur.executemany(f"INSERT INTO operation ({cols}) VALUES ({', '.join(['%s'] * len(op_cols))})",
                                        ops)
                conn.commit()
                timings[method] = min(timings.get(method, 1e9), time.perf_counter() - t0)
                conn.execute("TRUNCATE operation")
                conn.commit()
        n = len(ops)
        base = timings["executemany"]
        labels = {"copy_text": "COPY text lines (generator path)", "copy_write_row": "COPY write_row (psycopg encodes)",
                  "executemany": "executemany INSERT (baseline)"}
        for method, secs in timings.items():
            note = "baseline" if method == "executemany" else f"{base / secs:.1f}x executemany"
            out.append((f"{labels[method]}, {n:,} op rows", f"{n:,}", f"{n:,}", f"{secs:.2f}", "", f"{n / secs:,.0f}",
                        note))
        return out
    finally:
        stack.drop_env(src)
        stack.drop_env(dst)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--sample", type=int, default=20000)
    ap.add_argument("--revision", choices=["r1", "r2"], default="r1")
    args = ap.parse_args()
    rows = [("what", "operations", "rows", "seconds", "ops/s", "rows/s", "note")]
    with LocalStack() as stack:
        rows += bench_load_paths(stack, args.revision, args.sample)
        for size in (int(s) for s in args.sizes.split(",")):
            rows.append(bench_generate(stack, args.revision, size))
            print(_table(rows), flush=True)
            print()
    print(_table(rows))
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
