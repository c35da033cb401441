#!/usr/bin/env python3
"""`make bench-analysis`, the DuckDB side (scripts/bench-analysis.sh runs it).

    bench_analysis_duckdb.py CAMPAIGN_DIR                 the per-configuration statistics
    bench_analysis_duckdb.py CAMPAIGN_DIR --compare FILE  ...checked against chimera's
                                                          analysis/summary.parquet

From the same Parquet parts `chimera analyze` reads (CAMPAIGN_DIR/cells/*/cells.parquet and
requests.parquet), per configuration and metric (throughput_tok_s, ttft_ms), with the row
selection chimera's per-configuration summary uses (src/analysis/select.rs): requests of measured
cells (kind single or concurrent) with status ok, warm-ups excluded, null or NaN values left out.
Statistics: n, mean, sample SD, p50, p95 and p99 (quantile_cont: linear interpolation between
closest ranks, Hyndman & Fan type 7, the definition of src/stats.rs), and the 95 % t interval of
the mean (mean ± t(0.975, n − 1) · SD / √n, as stats::t_ci95).

--compare checks every configuration's n (exactly) and mean, SD, median, p95 and the CI bounds
(relative difference ≤ 1e-9) against chimera's `summary.parquet` rows of grouping `config`;
chimera's summary has no p99 (its percentiles are the median and p95), so p99 is DuckDB's
alone. Exit 1 on any disagreement, naming it.
"""

import math
import sys

import duckdb

METRICS = ("throughput_tok_s", "ttft_ms")
TOLERANCE = 1e-9


def betacf(a, b, x):
    """Continued fraction of the regularized incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    return h


def betainc(a, b, x):
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbeta = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    front = math.exp(lbeta + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * betacf(a, b, x) / a
    return 1.0 - front * betacf(b, a, 1.0 - x) / b


def t_cdf(t, df):
    x = df / (df + t * t)
    tail = 0.5 * betainc(df / 2.0, 0.5, x)
    return 1.0 - tail if t > 0 else tail


Z975 = 1.959963984540054


def t975(df):
    """t(0.975, df): the Cornish-Fisher expansion in 1/df (Abramowitz & Stegun 26.7.5, error
    O(df^-5), below 1e-10 for df >= 200), else bisection on the CDF."""
    if df < 200:
        return t_quantile(0.975, df)
    z = Z975
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


def t_quantile(p, df):
    """Student t quantile by bisection on the CDF (p > 0.5)."""
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


def statistics(con, campaign):
    """{(config, metric): dict of statistics}."""
    cells = f"{campaign}/cells/*/cells.parquet"
    requests = f"{campaign}/cells/*/requests.parquet"
    out = {}
    for metric in METRICS:
        rows = con.execute(
            f"""
            WITH runs AS (
                SELECT cell_id, config_id FROM read_parquet('{cells}')
                WHERE kind IN ('single', 'concurrent') AND status = 'ok'
            ),
            x AS (
                SELECT cell_id, {metric} AS v FROM read_parquet('{requests}')
                WHERE NOT warmup AND {metric} IS NOT NULL AND NOT isnan({metric})
            )
            SELECT config_id, count(*), avg(v), stddev_samp(v),
                   quantile_cont(v, [0.5, 0.95, 0.99])
            FROM x JOIN runs USING (cell_id)
            GROUP BY config_id ORDER BY config_id
            """
        ).fetchall()
        for config, n, mean, sd, (p50, p95, p99) in rows:
            ci = None
            if n >= 2 and sd is not None:
                half = t975(n - 1) * sd / math.sqrt(n)
                ci = (mean - half, mean + half)
            out[(config, metric)] = {
                "n": n,
                "mean": mean,
                "sd": sd,
                "median": p50,
                "p95": p95,
                "p99": p99,
                "ci95_low": ci[0] if ci else None,
                "ci95_high": ci[1] if ci else None,
            }
    return out


def close(a, b):
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= TOLERANCE * max(abs(a), abs(b), 1e-300)


def compare(con, ours, summary):
    rows = con.execute(
        f"""
        SELECT "group", metric, n, mean, sd, median, p95, ci95_low, ci95_high
        FROM read_parquet('{summary}')
        WHERE grouping = 'config' AND metric IN {METRICS}
        """
    ).fetchall()
    chimera = {
        (g, m): dict(zip(("n", "mean", "sd", "median", "p95", "ci95_low", "ci95_high"), rest))
        for g, m, *rest in rows
    }
    problems = []
    if set(chimera) != set(ours):
        only_c = sorted(set(chimera) - set(ours))[:5]
        only_d = sorted(set(ours) - set(chimera))[:5]
        problems.append(f"different groups: only chimera {only_c}, only DuckDB {only_d}")
    worst = 0.0
    for key in sorted(set(chimera) & set(ours)):
        c, d = chimera[key], ours[key]
        if c["n"] != d["n"]:
            problems.append(f"{key}: n chimera {c['n']} vs DuckDB {d['n']}")
        for field in ("mean", "sd", "median", "p95", "ci95_low", "ci95_high"):
            if not close(c[field], d[field]):
                problems.append(f"{key} {field}: chimera {c[field]!r} vs DuckDB {d[field]!r}")
            elif c[field] is not None and d[field] is not None and c[field] != d[field]:
                worst = max(worst, abs(c[field] - d[field]) / max(abs(c[field]), abs(d[field])))
    for p in problems[:20]:
        print(f"DISAGREE {p}", file=sys.stderr)
    if problems:
        print(f"{len(problems)} disagreement(s) between chimera and DuckDB", file=sys.stderr)
        return False
    n = sum(v["n"] for (g, m), v in ours.items() if m == METRICS[0])
    print(
        f"agreement: {len(chimera)} (configuration, metric) rows over {n:,} requests: n equal, "
        f"mean, SD, median, p95 and 95 % CI within {TOLERANCE:g} relative "
        f"(largest difference {worst:.1e})"
    )
    return True


def main(argv):
    if len(argv) not in (2, 4) or (len(argv) == 4 and argv[2] != "--compare"):
        print(__doc__, file=sys.stderr)
        return 2
    campaign = argv[1]
    con = duckdb.connect()
    ours = statistics(con, campaign)
    if len(argv) == 4:
        return 0 if compare(con, ours, argv[3]) else 1
    print("config\tmetric\tn\tmean\tsd\tp50\tp95\tp99\tci95_low\tci95_high")
    for (config, metric), s in sorted(ours.items()):
        cols = [s[k] for k in ("n", "mean", "sd", "median", "p95", "p99", "ci95_low", "ci95_high")]
        print("\t".join([config, metric] + [str(c) for c in cols]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
