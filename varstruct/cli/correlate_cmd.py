"""`varstruct correlate DIR|study.nc --out REPORT_DIR`: correlations of measures and scores, with a report."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from . import common as c
from .common import app, console, warnings_to_stderr


@app.command("correlate")
def correlate_cmd(
    study: Path = typer.Argument(..., help="A models dir or a collected study.nc."),
    out: Path = typer.Option(..., "--out", "-o", help="Report folder (created): correlations.nc/.csv, report.md, PNGs."),
    x: Optional[str] = typer.Option(None, "--x", help="Comma-separated x variables (default: every measure of the level)."),
    y: Optional[str] = typer.Option(None, "--y", help="Comma-separated y variables (default: every score of the level)."),
    level: str = typer.Option("model", "--level", help="model (each model a point) or factor (each dataset "
                              "configuration x factor a point, averaged over its models)."),
    by: Optional[str] = typer.Option(None, "--by", help="Repeat within groups of this model coordinate (e.g. method)."),
    within: Optional[str] = typer.Option(None, "--within", help="dataset_config or training_config: correlate "
                                         "deviations from the unit means, x permuted within units (among models "
                                         "trained on the same data, do those with a higher x score higher?)."),
    method: str = typer.Option("spearman", "--method", help="spearman, pearson or kendall."),
    permutations: int = typer.Option(999, "--permutations", help="Permutations of the p-value."),
    resamples: int = typer.Option(999, "--resamples", help="Bootstrap resamples of the 95% CI."),
    seed: int = c.seed_option("the permutations and resamples"),
    top: int = typer.Option(15, "--top", help="Rows of the table printed here."),
    scatters: int = typer.Option(4, "--scatters", help="Scatter plots of the strongest pairs."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the report in a non-empty --out (its "
                                   "own files are removed first; other files are left alone)."),
):
    """Correlate measures (x) with scores (y) at each pair's unit of analysis: coefficient, permutation p,
    bootstrap 95% CI, BH q, units, models, dropped models and selection test."""
    from ..errors import ConfigError
    from ..io import check_output_dir, write_netcdf, write_text
    from ..study.correlate import LEVELS, METHODS, _load, correlate, to_table
    from ..study.units import LEVELS as UNIT_LEVELS
    from ..validate import check_choice, check_int, check_seed

    check_choice("--level", level, LEVELS, error=ConfigError)
    seed = check_seed("--seed", seed)
    check_choice("--method", method, METHODS, error=ConfigError)
    if within is not None:
        check_choice("--within", within, UNIT_LEVELS[:-1], error=ConfigError)
    check_int("--top", top, 0, error=ConfigError)
    check_int("--scatters", scatters, 0, error=ConfigError)
    check_int("--permutations", permutations, 1, error=ConfigError)
    check_int("--resamples", resamples, 2, error=ConfigError)
    created = not out.exists()
    check_output_dir(out, overwrite, owned=OWNED, label="--out")  # before the work: refuse early
    try:
        with warnings_to_stderr():
            collected = _load(study)
        corr = correlate(collected, x=x, y=y, level=level, by=by, method=method, n_permutations=permutations,
                         n_resamples=resamples, seed=seed, within=within)
    except BaseException:
        if created:
            import contextlib
            with contextlib.suppress(OSError):
                out.rmdir()  # leave no empty report folder behind
        raise
    write_netcdf(corr, out / "correlations.nc")
    table = to_table(corr)
    write_text(out / "correlations.csv", table.to_csv(index=False, float_format="%.6g"))
    figures = _figures(collected, corr, table, out, level, scatters)
    write_text(out / "report.md", _report(corr, table, figures, study))
    _print(corr, table, top)
    console.print(f"wrote {out}/: correlations.nc, correlations.csv, report.md, {', '.join(figures)}")


OWNED = ("correlations.nc", "correlations.csv", "report.md", "heatmap*.png", "scatter-*.png")


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


READING = (
    "How to read this report. Each row is one (x, y) pair, tested at its **unit of analysis**: the "
    "coarsest grouping of models within which x or y is constant. A dataset measure has one value per "
    "dataset configuration, so its units are the configurations (`dataset_config`), however many "
    "models (seeds, methods) were trained on each; a config value such as `hp_beta` is constant "
    "within a training configuration (`training_config`); model measures and scores vary per `model`. "
    "The points of the test are the units, each with the mean of its models' values: `n_units` is "
    "the number of points behind r, p and the CI, and `n_models` the models they pool. Models "
    "with x or y NaN are left out: `n_dropped` counts them, `dropped_reason` says why (from the "
    "variable's definition), and `selection_p` tests (Mann-Whitney) whether the dropped models "
    "differ in y from the kept ones; a flagged pair (selection_p < 0.05) describes a selected "
    "subset, not the whole study. `n_distinct_x` is the number of distinct x values: a "
    "correlation over few distinct values rests on few independent observations. Pairs with "
    "fewer than 4 units are not tested (NaN, with a reason). Rows are ranked by q, then |r|.")


def _report(corr, table, figures, source) -> str:
    a = corr.attrs
    lines = [f"# Correlations: {source}", "", READING, "",
             f"- points: **{a['unit']}**" + (f" (within-unit analysis, `--within {a['within']}`)" if a.get("within") else ""),
             f"- coefficient: {a['method']}; p: {a['p_value']}, {a['n_permutations']} permutations; "
             f"95% CI: {a['ci']}, {a['n_resamples']} resamples; q: {a['q_value']} ({a['n_tests']} tests); "
             f"seed {a['seed']}" + (f"; repeated within groups of `{a['by']}`" if a["by"] else ""),
             f"- selection: {a['selection']}; flagged below {a['selection_alpha']}", ""]
    cols = [c for c in table.columns]
    lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in table.iterrows():
        lines.append("| " + " | ".join(_fmt(row[c]) for c in cols) + " |")
    flagged = corr["selection_flag"].values.astype(bool) & (corr["n_dropped"].values > 0)
    if flagged.any():
        lines += ["", "## Selection effects", "",
                  "Pairs whose dropped models differ from the kept ones (Mann-Whitney p < "
                  f"{a['selection_alpha']}):", ""]
        df = corr[["n_dropped", "n_dropped_units", "selection_p", "dropped_reason"]].to_dataframe().reset_index()
        df = df[flagged.ravel()]
        for _, row in df.iterrows():
            g = f" [{row['group']}]" if "group" in df else ""
            lines.append(f"- {row['y']} vs {row['x']}{g}: {int(row['n_dropped'])} models dropped "
                         f"({int(row['n_dropped_units'])} whole units), p = {row['selection_p']:.3g}: "
                         f"{row['dropped_reason']}")
    lines += ["", "## Figures", ""] + [f"![{f}]({f})" for f in figures]
    return "\n".join(lines) + "\n"


def _print(corr, table, top: int) -> None:
    table = table[[c for c in ("group", "x", "y", "r", "q", "unit", "n_units", "n_models", "reason") if c in table]]
    table = table.rename(columns={"n_units": "units", "n_models": "models"})
    t = Table(title=f"{corr.attrs['method']} correlations, {corr.attrs['level']} level "
                    f"({len(table)} pairs, top {min(top, len(table))} by q, then |r|)")
    for col in table.columns:
        t.add_column(col, justify="left" if col in ("x", "y", "group", "unit", "reason") else "right", overflow="fold")
    for _, row in table.head(top).iterrows():
        t.add_row(*[_fmt(row[c]) for c in table.columns])
    console.print(t)
