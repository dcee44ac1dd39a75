"""`varstruct correlate DIR|study.nc --out REPORT_DIR`: correlations of measures and scores, with a report."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from .common import app, console


@app.command("correlate")
def correlate_cmd(
    study: Path = typer.Argument(..., help="A models dir or a collected study.nc."),
    out: Path = typer.Option(..., "--out", "-o", help="Report folder (created): correlations.nc/.csv, report.md, PNGs."),
    x: Optional[str] = typer.Option(None, "--x", help="Comma-separated x variables (default: every measure of the level)."),
    y: Optional[str] = typer.Option(None, "--y", help="Comma-separated y variables (default: every score of the level)."),
    level: str = typer.Option("model", "--level", help="model (each model a point) or factor (each dataset "
                              "configuration x factor a point, averaged over its models)."),
    by: Optional[str] = typer.Option(None, "--by", help="Repeat within groups of this model coordinate (e.g. method)."),
    method: str = typer.Option("spearman", "--method", help="spearman, pearson or kendall."),
    permutations: int = typer.Option(999, "--permutations", help="Permutations of the p-value."),
    resamples: int = typer.Option(999, "--resamples", help="Bootstrap resamples of the 95% CI."),
    seed: int = typer.Option(0, "--seed", help="Seed of the permutations and resamples."),
    top: int = typer.Option(15, "--top", help="Rows of the table printed here."),
    scatters: int = typer.Option(4, "--scatters", help="Scatter plots of the strongest pairs."),
):
    """Correlate measures (x) with scores (y): coefficient, permutation p, bootstrap 95% CI, BH q, n."""
    from ..errors import ConfigError, OutputError
    from ..io import write_netcdf, write_text
    from ..study.correlate import LEVELS, METHODS, _load, correlate, to_table
    from ..validate import check_choice
    from .collect_cmd import warnings_to_stderr

    check_choice("--level", level, LEVELS, error=ConfigError)
    check_choice("--method", method, METHODS, error=ConfigError)
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} exists and is not a folder")
    if not out.parent.is_dir():
        raise OutputError(f"--out {out}: folder {out.parent} does not exist")
    with warnings_to_stderr():
        collected = _load(study)
    corr = correlate(collected, x=x, y=y, level=level, by=by, method=method, n_permutations=permutations,
                     n_resamples=resamples, seed=seed)
    out.mkdir(exist_ok=True)
    write_netcdf(corr, out / "correlations.nc")
    table = to_table(corr)
    write_text(out / "correlations.csv", table.to_csv(index=False, float_format="%.6g"))
    figures = _figures(collected, corr, table, out, level, scatters)
    write_text(out / "report.md", _report(corr, table, figures, study))
    _print(corr, table, top)
    console.print(f"wrote {out}/: correlations.nc, correlations.csv, report.md, {', '.join(figures)}")


def _figures(collected, corr, table, out: Path, level: str, scatters: int) -> list[str]:
    from ..plots import plot_correlation_heatmap, plot_scatter

    names = []
    groups = corr["group"].values.tolist() if "group" in corr.dims else [None]
    for g in groups:
        ax = plot_correlation_heatmap(corr, group=g)
        name = "heatmap.png" if g is None else f"heatmap-{_safe(g)}.png"
        ax.figure.savefig(out / name, dpi=110)
        names.append(name)
    seen = set()
    for _, row in table[table["r"].notna()].iterrows():
        if len(seen) >= scatters:
            break
        key = (row["x"], row["y"])
        if key in seen:
            continue
        seen.add(key)
        ax = plot_scatter(collected, row["x"], row["y"], level=level, corr=corr)
        name = f"scatter-{_safe(row['y'])}-vs-{_safe(row['x'])}.png"
        ax.figure.savefig(out / name, dpi=110)
        names.append(name)
    return names


def _safe(s) -> str:
    import re
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(s))


def _fmt(v) -> str:
    import math
    if isinstance(v, str):
        return v
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _report(corr, table, figures, source) -> str:
    a = corr.attrs
    lines = [f"# Correlations: {source}", "",
             f"- unit of analysis: **{a['level']}**: {a['unit']}",
             f"- coefficient: {a['method']}; p: {a['p_value']}, {a['n_permutations']} permutations; "
             f"95% CI: {a['ci']}, {a['n_resamples']} resamples; q: {a['q_value']} ({a['n_tests']} tests); "
             f"seed {a['seed']}" + (f"; repeated within groups of `{a['by']}`" if a["by"] else ""),
             "- NaN rows give the reason (fewer than 4 points, constant x or y).", "",
             "| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    for _, row in table.iterrows():
        lines.append("| " + " | ".join(_fmt(row[c]) for c in table.columns) + " |")
    lines += ["", "## Figures", ""] + [f"![{f}]({f})" for f in figures]
    return "\n".join(lines) + "\n"


def _print(corr, table, top: int) -> None:
    t = Table(title=f"{corr.attrs['method']} correlations, {corr.attrs['level']} level "
                    f"({len(table)} pairs, top {min(top, len(table))} by |r|)")
    for col in table.columns:
        t.add_column(col, justify="left" if col in ("x", "y", "group", "reason") else "right")
    for _, row in table.head(top).iterrows():
        t.add_row(*[_fmt(row[c]) for c in table.columns])
    console.print(t)
