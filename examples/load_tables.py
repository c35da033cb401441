#!/usr/bin/env python3
"""Load a chimera campaign's compacted tables with pandas, polars and DuckDB.

    python3 examples/load_tables.py DATA/CAMPAIGN [--check]

DATA/CAMPAIGN is a campaign directory after `chimera compact --data DATA --campaign CAMPAIGN`
(it holds `tables/`). The script loads `cells`, `agents` and `requests` (and `telemetry` and
`provenance` when present) with each library and prints a short summary: row counts and the
mean published and true efficiency per scenario of the concurrent cells.

With --check it also asserts what notebooks rely on (docs/data.md), in all three libraries:

- timestamps (`started_at`, `sent_at`, every timestamp column) are timestamps with time zone
  UTC and hold the same instants;
- integer columns (`repetition`, `num_ctx`, `output_tokens`, `request_index`, ...) stay
  integers, nullable ones included (pandas: an Arrow-backed or nullable integer dtype, never
  float64);
- the option columns (`num_gpu`, `num_ctx`, `temperature`, `top_p`, `top_k`,
  `repeat_penalty`) are nullable and hold real nulls (not NaN) where the option was not sent:
  in the cells of the `baseline_vs_chimera` scenario, agent A (the baseline) sends none;
- the three libraries agree on row counts and on the per-scenario means.

Exit status: 0 on success, 1 when a check fails (each failure is printed), 2 on a usage
error (no `tables/`), 3 when a library is missing.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

MISSING = []
try:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds
except ImportError:
    MISSING.append("pyarrow")
try:
    import pandas as pd
except ImportError:
    MISSING.append("pandas")
try:
    import polars as pl
except ImportError:
    MISSING.append("polars")
try:
    import duckdb
except ImportError:
    MISSING.append("duckdb")

# Tables partitioned by report (`tables/<table>/report=<R>/part-00000.parquet`).
PARTITIONED = ["cells", "agents", "requests", "telemetry"]
# Tables that every compacted campaign has.
REQUIRED = ["cells", "agents", "requests"]
OPTION_COLUMNS = ["num_gpu", "num_ctx", "temperature", "top_p", "top_k", "repeat_penalty"]
# The scenario id (as in experiments/tr116.yaml) whose first agent sends no options.
BASELINE_SCENARIO = "baseline_vs_chimera"
BASELINE_AGENT = "A"
DUCKDB_INTEGERS = {
    "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
    "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT",
}


class Tables:
    """One campaign's tables as loaded by each library."""

    def __init__(self, campaign: Path):
        self.campaign = campaign
        self.root = campaign / "tables"
        self.arrow: dict[str, pa.Table] = {}
        self.pandas: dict[str, pd.DataFrame] = {}
        self.polars: dict[str, pl.DataFrame] = {}
        self.duck = duckdb.connect()
        self.names: list[str] = []

    def source(self, table: str) -> Path | None:
        """The folder (partitioned) or file (provenance) of a table, if compacted."""
        if table == "provenance":
            f = self.root / "provenance" / "part-00000.parquet"
            return f if f.is_file() else None
        d = self.root / table
        return d if d.is_dir() and any(d.glob("report=*/*.parquet")) else None

    def load(self) -> None:
        # The partition key is read as a string (not a dictionary, not a number).
        hive = ds.partitioning(pa.schema([("report", pa.string())]), flavor="hive")
        for table in PARTITIONED + ["provenance"]:
            src = self.source(table)
            if src is None:
                continue
            self.names.append(table)
            glob = str(src / "**" / "*.parquet") if src.is_dir() else str(src)
            part = hive if src.is_dir() else None

            # pyarrow: the reference the other libraries are compared with.
            self.arrow[table] = ds.dataset(src, format="parquet", partitioning=part).to_table()

            # pandas, Arrow-backed dtypes: nullable integers stay integers, UTC stays UTC.
            self.pandas[table] = pd.read_parquet(src, dtype_backend="pyarrow", partitioning=part)

            # polars: hive partitioning is explicit for a glob.
            if src.is_dir():
                self.polars[table] = pl.read_parquet(
                    glob, hive_partitioning=True, hive_schema={"report": pl.String}
                )
            else:
                self.polars[table] = pl.read_parquet(glob)

            # DuckDB: one view per table over the files.
            lit = glob.replace("'", "''")
            opts = ", hive_partitioning = true, hive_types_autocast = false" if src.is_dir() else ""
            self.duck.execute(f"create view {table} as select * from read_parquet('{lit}'{opts})")

    def duck_types(self, table: str) -> dict[str, str]:
        return {r[0]: r[1] for r in self.duck.execute(f"describe {table}").fetchall()}

    def duck_scalar(self, sql: str):
        row = self.duck.execute(sql).fetchone()
        return row[0] if row else None


def summary(t: Tables) -> dict[str, dict[str, tuple[float | None, float | None]]]:
    """Prints row counts and per-scenario efficiencies; returns the latter per library."""
    print(f"campaign {t.campaign}")
    print(f"  {'table':<11} {'pyarrow':>8} {'pandas':>8} {'polars':>8} {'duckdb':>8}")
    for name in t.names:
        counts = (
            t.arrow[name].num_rows,
            len(t.pandas[name]),
            t.polars[name].height,
            t.duck_scalar(f"select count(*) from {name}"),
        )
        print(f"  {name:<11} " + " ".join(f"{c:>8}" for c in counts))

    # Mean published vs true efficiency per scenario, concurrent cells that succeeded.
    cols = ["published_efficiency_pct", "true_efficiency_pct"]
    c = t.pandas["cells"]
    ok = c[(c["kind"] == "concurrent") & (c["status"] == "ok")]
    by_pandas = {
        str(k): tuple(_num(v) for v in row)
        for k, row in ok.groupby("scenario", dropna=False)[cols].mean().iterrows()
    }
    p = t.polars["cells"]
    by_polars = {
        str(r["scenario"]): (_num(r[cols[0]]), _num(r[cols[1]]))
        for r in p.filter((pl.col("kind") == "concurrent") & (pl.col("status") == "ok"))
        .group_by("scenario")
        .agg(pl.col(cols).mean())
        .iter_rows(named=True)
    }
    by_duck = {
        str(r[0]): (_num(r[1]), _num(r[2]))
        for r in t.duck.execute(
            "select scenario, avg(published_efficiency_pct), avg(true_efficiency_pct) from cells "
            "where kind = 'concurrent' and status = 'ok' group by scenario"
        ).fetchall()
    }
    print("  mean efficiency of concurrent cells per scenario (pandas):")
    print(f"    {'scenario':<24} {'published %':>12} {'true %':>8}")
    for k in sorted(by_pandas):
        pub, tru = by_pandas[k]
        print(f"    {k:<24} {_fmt(pub):>12} {_fmt(tru):>8}")
    if not by_pandas:
        print("    (no concurrent cell)")
    return {"pandas": by_pandas, "polars": by_polars, "duckdb": by_duck}


def _num(v) -> float | None:
    if v is None or v is pd.NA:
        return None
    f = float(v)
    return None if math.isnan(f) else f


def _fmt(v: float | None) -> str:
    return "null" if v is None else f"{v:.2f}"


def pandas_is_integer(dtype) -> bool:
    if isinstance(dtype, pd.ArrowDtype):
        return pa.types.is_integer(dtype.pyarrow_dtype)
    # numpy int64/uint32..., or pandas' nullable Int64/UInt32...: kind i or u, never f.
    return getattr(dtype, "kind", None) in ("i", "u")


def pandas_is_utc_timestamp(dtype) -> bool:
    if isinstance(dtype, pd.ArrowDtype):
        t = dtype.pyarrow_dtype
        return pa.types.is_timestamp(t) and t.tz in ("UTC", "+00:00", "Etc/UTC")
    return isinstance(dtype, pd.DatetimeTZDtype) and str(dtype.tz) == "UTC"


def check(t: Tables, per_scenario) -> list[str]:
    failures: list[str] = []

    def fail(msg: str) -> None:
        failures.append(msg)

    for name in REQUIRED:
        if name not in t.names:
            fail(f"table `{name}` missing under {t.root}")
    for name in t.names:
        arrow = t.arrow[name]
        pdf, pldf = t.pandas[name], t.polars[name]
        dtypes = t.duck_types(name)
        n = arrow.num_rows
        for lib, m in (("pandas", len(pdf)), ("polars", pldf.height),
                       ("duckdb", t.duck_scalar(f"select count(*) from {name}"))):
            if m != n:
                fail(f"{name}: {lib} reads {m} rows, pyarrow {n}")
        if name != "provenance" and "report" not in pdf.columns:
            fail(f"{name}: the partition column `report` is missing in pandas")

        for field in arrow.schema:
            col = field.name
            if pa.types.is_timestamp(field.type):
                if field.type.tz != "UTC":
                    fail(f"{name}.{col}: Arrow type {field.type}, expected timestamp with tz UTC")
                if not pandas_is_utc_timestamp(pdf[col].dtype):
                    fail(f"{name}.{col}: pandas dtype {pdf[col].dtype}, expected UTC timestamp")
                pt = pldf.schema[col]
                if not (isinstance(pt, pl.Datetime) and pt.time_zone == "UTC"):
                    fail(f"{name}.{col}: polars dtype {pt}, expected Datetime(time_zone='UTC')")
                if dtypes.get(col) != "TIMESTAMP WITH TIME ZONE":
                    fail(f"{name}.{col}: DuckDB type {dtypes.get(col)}, expected TIMESTAMP WITH TIME ZONE")
                # The same instants everywhere (ms since the Unix epoch).
                ms = pc.cast(arrow[col], pa.int64())
                want = (pc.min(ms).as_py(), pc.max(ms).as_py())
                got = {
                    "pandas": _minmax(pc.cast(pa.array(pdf[col]), pa.int64())),
                    "polars": (pldf[col].dt.epoch("ms").min(), pldf[col].dt.epoch("ms").max()),
                    "duckdb": tuple(t.duck.execute(
                        f"select min(epoch_ms({col})), max(epoch_ms({col})) from {name}"
                    ).fetchone()),
                }
                for lib, v in got.items():
                    if tuple(v) != want:
                        fail(f"{name}.{col}: {lib} reads instants {v}, pyarrow {want}")
            elif pa.types.is_integer(field.type):
                if not pandas_is_integer(pdf[col].dtype):
                    fail(f"{name}.{col}: pandas dtype {pdf[col].dtype}, expected an integer dtype")
                if not pldf.schema[col].is_integer():
                    fail(f"{name}.{col}: polars dtype {pldf.schema[col]}, expected an integer")
                if dtypes.get(col) not in DUCKDB_INTEGERS:
                    fail(f"{name}.{col}: DuckDB type {dtypes.get(col)}, expected an integer")

    if "agents" in t.names:
        failures += check_options(t)

    # The three libraries compute the same per-scenario means.
    ref = per_scenario["pandas"]
    for lib in ("polars", "duckdb"):
        other = per_scenario[lib]
        if set(other) != set(ref):
            fail(f"per-scenario means: {lib} has scenarios {sorted(other)}, pandas {sorted(ref)}")
            continue
        for k, vals in ref.items():
            for a, b in zip(vals, other[k]):
                if (a is None) != (b is None) or (a is not None and abs(a - b) > 1e-9 * max(1, abs(a))):
                    fail(f"per-scenario means of {k}: {lib} {other[k]}, pandas {vals}")
    return failures


def _minmax(arr: pa.Array):
    return (pc.min(arr).as_py(), pc.max(arr).as_py())


def check_options(t: Tables) -> list[str]:
    failures: list[str] = []
    arrow = t.arrow["agents"]
    pdf, pldf = t.pandas["agents"], t.polars["agents"]
    for col in OPTION_COLUMNS:
        if col not in arrow.column_names:
            failures.append(f"agents.{col}: column missing")
            continue
        if not arrow.schema.field(col).nullable:
            failures.append(f"agents.{col}: not nullable in the file schema")
        nulls = arrow[col].null_count
        got = {
            "pandas": int(pdf[col].isna().sum()),
            "polars": pldf[col].null_count(),
            "duckdb": t.duck_scalar(f"select count(*) - count({col}) from agents"),
        }
        for lib, m in got.items():
            if m != nulls:
                failures.append(f"agents.{col}: {lib} counts {m} nulls, pyarrow {nulls}")
        if pldf.schema[col].is_float() and pldf[col].is_nan().sum() > 0:
            failures.append(f"agents.{col}: NaN where a null was expected (polars)")

    # Where the option was not sent: the baseline agent of baseline_vs_chimera cells.
    cell_ids = set(
        t.pandas["cells"].loc[t.pandas["cells"]["scenario"] == BASELINE_SCENARIO, "cell_id"]
    )
    if not cell_ids:
        print(f"  note: no `{BASELINE_SCENARIO}` cells; the option-null check of agent "
              f"{BASELINE_AGENT} is skipped")
        return failures
    bvc = pdf[pdf["cell_id"].isin(cell_ids)]
    base, other = bvc[bvc["agent"] == BASELINE_AGENT], bvc[bvc["agent"] != BASELINE_AGENT]
    if base.empty or other.empty:
        failures.append(f"{BASELINE_SCENARIO}: expected rows of agent {BASELINE_AGENT} and of "
                        f"the other agents, found {len(base)} and {len(other)}")
        return failures
    for col in OPTION_COLUMNS:
        if not base[col].isna().all():
            failures.append(f"agents.{col}: agent {BASELINE_AGENT} of {BASELINE_SCENARIO} sent "
                            f"no options, but pandas reads {base[col].dropna().tolist()}")
    if other[OPTION_COLUMNS].isna().all().all():
        failures.append(f"{BASELINE_SCENARIO}: the chimera agent's option columns are all null")
    # The same in polars and DuckDB.
    ids = sorted(cell_ids)
    pl_base = pldf.filter(pl.col("cell_id").is_in(ids) & (pl.col("agent") == BASELINE_AGENT))
    if sum(pl_base[c].null_count() for c in OPTION_COLUMNS) != len(OPTION_COLUMNS) * pl_base.height:
        failures.append(f"polars: agent {BASELINE_AGENT} of {BASELINE_SCENARIO} has non-null options")
    non_null = t.duck_scalar(
        "select count(*) from agents a join cells c using (cell_id) "
        f"where c.scenario = '{BASELINE_SCENARIO}' and a.agent = '{BASELINE_AGENT}' and ("
        + " or ".join(f"a.{c} is not null" for c in OPTION_COLUMNS) + ")"
    )
    if non_null != 0:
        failures.append(f"DuckDB: {non_null} rows of agent {BASELINE_AGENT} of "
                        f"{BASELINE_SCENARIO} have options")
    return failures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("campaign", type=Path, help="campaign directory, DATA/CAMPAIGN")
    ap.add_argument("--check", action="store_true", help="assert column types and nulls")
    args = ap.parse_args()
    if MISSING:
        print("load_tables.py needs " + ", ".join(MISSING)
              + ": python3 -m pip install pyarrow pandas polars duckdb", file=sys.stderr)
        return 3
    if not (args.campaign / "tables").is_dir():
        print(f"{args.campaign / 'tables'} not found: run "
              f"`chimera compact --data {args.campaign.parent} --campaign {args.campaign.name}` first",
              file=sys.stderr)
        return 2
    t = Tables(args.campaign)
    t.load()
    if "cells" not in t.names:
        print(f"no compacted `cells` table under {t.root}", file=sys.stderr)
        return 2
    per_scenario = summary(t)
    if args.check:
        failures = check(t, per_scenario)
        if failures:
            for f in failures:
                print(f"check failed: {f}", file=sys.stderr)
            print(f"{len(failures)} check(s) failed", file=sys.stderr)
            return 1
        print("checks passed: UTC timestamps, integer columns, option nulls, "
              "and pyarrow/pandas/polars/DuckDB agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
