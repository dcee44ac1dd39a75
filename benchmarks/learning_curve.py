"""Learning curves of the dSprites β-VAE: scores and losses at checkpoints along one long run.

Issue: "a dSprites-family zoo trained long enough to mean something". Each configuration
(β × lr × seed × batch) is trained once, as one run of ``--milestones``' last value steps; the run
stops (checkpoints) at each milestone, is scored from its checkpoint weights, and resumes. The
stream of batches is a function of (seed, step) and resuming is bit-exact, so the model at
milestone m is exactly the model a run of m steps would be (β-VAE's loss does not depend on the
total number of steps).

The work is done breadth-first: every configuration reaches milestone m before any goes on to
the next, so an interrupted study already holds whole curves up to some m. It resumes: rows
already in the table are skipped, and runs continue from their checkpoints.

Row per (configuration, milestone), written to ``--table`` (CSV, atomically):
    recon, kl: the mean of the train_log rows in the last 10% of steps before the milestone
        (nats per image, the training batches);
    mig, active_mig, dci_disentanglement, dci_completeness, dci_informativeness_test:
        ``varstruct.evaluate`` on ``--n-train`` / ``--n-test`` uniform grid points (seed 0);
    active_latents: latents whose mean KL to the prior (on the train points) is >= 0.05 nats;
    seconds: training wall time to the milestone (shared machine: indicative only);
    recon_improvement, converged: the convergence criterion (varstruct.training.convergence)
        applied to the log rows up to the milestone, as if the run had been m steps long.

    python benchmarks/learning_curve.py                       # the issue's grid, resumes
    python benchmarks/learning_curve.py --milestones 500,1000 --betas 4 --seeds 0 --lrs 1e-3
"""
from __future__ import annotations

import argparse
import csv
import itertools
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package

COLUMNS = ["dataset", "method", "beta", "lr", "batch_size", "seed", "step", "recon", "kl", "mig", "active_mig",
           "dci_disentanglement", "dci_completeness", "dci_informativeness_test", "active_latents", "seconds",
           "recon_improvement", "converged"]
KEY = ["dataset", "method", "beta", "lr", "batch_size", "seed", "step"]


def _key(row) -> tuple:
    return (row["dataset"], row["method"], float(row["beta"]), float(row["lr"]), int(row["batch_size"]),
            int(row["seed"]), int(row["step"]))


def read_table(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_table(path: Path, rows: list[dict]) -> None:
    rows = sorted(rows, key=_key)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


def log_window(rows, columns, step: int, frac: float = 0.1) -> dict:
    """Mean of each logged term over the rows with step in (step·(1 − frac), step]."""
    import numpy as np

    rows = np.asarray(rows, dtype=float).reshape(-1, len(columns))
    sel = rows[(rows[:, 0] > step * (1 - frac)) & (rows[:, 0] <= step)]
    return {c: float(sel[:, i].mean()) for i, c in enumerate(columns) if c not in ("step", "seconds")} | \
        {"seconds": float(sel[-1, -1])}


def score_at(run: Path, record: dict, step: int, n_train: int, n_test: int, threads: int) -> dict:
    """Scores and losses of the run in ``run`` at ``step`` (its checkpoint, or its final weights)."""
    import torch

    from varstruct.metrics.evaluate import evaluate
    from varstruct.models.nets import build_model
    from varstruct.runs.weights import read_weights
    from varstruct.models.load import dataset_from_config
    from varstruct.runs.layout import RunDir

    rd = RunDir(run)
    with torch.random.fork_rng(devices=[]):
        model = build_model(record)
    if rd.has_checkpoint:
        t = read_weights(rd.checkpoint_path)
        ckpt_step = int(t["meta.step"])
        if ckpt_step != step:
            raise RuntimeError(f"{run}: checkpoint at step {ckpt_step}, expected {step}")
        model.load_state_dict({k[6:]: v for k, v in t.items() if k.startswith("model.")})
        from safetensors import safe_open
        import json
        with safe_open(str(rd.checkpoint_path), framework="pt") as f:
            columns = json.loads(f.metadata()["columns"])
        rows = t["log.rows"].tolist()
    else:
        model.load_state_dict(read_weights(rd.weights_path))
        log = rd.read_log()
        columns, rows = list(log.columns), log.to_numpy().tolist()
    model.eval()
    losses = log_window(rows, columns, step)
    conv = _convergence(rows, columns, step)
    ds = dataset_from_config(record)
    sc = evaluate(model, ds, metrics=["mig", "active_mig", "dci"], seed=0, n_train=n_train, n_test=n_test,
                  threads=threads)
    return {"recon": losses["recon"], "kl": losses["kl"], "mig": float(sc["mig"]),
            "active_mig": float(sc["active_mig"]), "dci_disentanglement": float(sc["dci_disentanglement"]),
            "dci_completeness": float(sc["dci_completeness"]),
            "dci_informativeness_test": float(sc["dci_informativeness_test"]),
            "active_latents": int((sc["latent_kl"] >= 0.05).sum()), "seconds": losses["seconds"],
            "recon_improvement": conv["improvement"], "converged": conv["converged"]}


def _convergence(rows, columns, step: int) -> dict:
    import numpy as np

    from varstruct.training.convergence import convergence

    rows = np.asarray(rows, dtype=float).reshape(-1, len(columns))
    rows = rows[rows[:, 0] <= step]
    return convergence(rows[:, 0], rows[:, columns.index("recon")], total_steps=step)


def backfill(table_rows: list[dict], out: str) -> list[dict]:
    """Rows written before the convergence columns existed: computed from the run's log rows
    (the checkpoint's rows, or the finished run's train_log.csv), where the run dir is still there."""
    import json

    from safetensors import safe_open

    from varstruct.runs.weights import read_weights
    from varstruct.runs.layout import RunDir

    for row in table_rows:
        if row.get("converged") not in (None, ""):
            continue
        run = Path(out) / row["dataset"] / f"beta{float(row['beta']):g}-lr{float(row['lr']):g}-b{int(row['batch_size'])}" \
            / f"seed{int(row['seed'])}"
        rd = RunDir(run)
        if rd.has_checkpoint:
            t = read_weights(rd.checkpoint_path)
            with safe_open(str(rd.checkpoint_path), framework="pt") as f:
                columns = json.loads(f.metadata()["columns"])
            rows = t["log.rows"].tolist()
        elif rd.log_path.is_file():
            log = rd.read_log()
            columns, rows = list(log.columns), log.to_numpy().tolist()
        else:
            continue
        conv = _convergence(rows, columns, int(row["step"]))
        row["recon_improvement"], row["converged"] = conv["improvement"], conv["converged"]
    return table_rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="scratch/learning_curve", help="folder of the run dirs (not committed)")
    p.add_argument("--table", default="benchmarks/results/learning_curve.csv")
    p.add_argument("--dataset", default="dsprites")
    p.add_argument("--milestones", default="2500,5000,10000,20000,40000,80000")
    p.add_argument("--betas", default="4,16")
    p.add_argument("--lrs", default="1e-4,5e-4")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--batch-sizes", default="64")
    p.add_argument("--n-train", type=int, default=4000)
    p.add_argument("--n-test", type=int, default=2000)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)

    from varstruct.training.loop import train

    milestones = sorted(int(m) for m in a.milestones.split(","))
    total = milestones[-1]
    grid = list(itertools.product([float(b) for b in a.betas.split(",")], [float(x) for x in a.lrs.split(",")],
                                  [int(b) for b in a.batch_sizes.split(",")], [int(s) for s in a.seeds.split(",")]))
    table = Path(a.table)
    table.parent.mkdir(parents=True, exist_ok=True)
    rows = backfill(read_table(table), a.out)
    if rows:
        write_table(table, rows)
    done = {_key(r) for r in rows}
    for m in milestones:
        for beta, lr, batch, seed in grid:
            key = (a.dataset, "beta_vae", beta, lr, batch, seed, m)
            if key in done:
                continue
            run = Path(a.out) / a.dataset / f"beta{beta:g}-lr{lr:g}-b{batch}" / f"seed{seed}"
            cfg = {"dataset": a.dataset, "method": "beta_vae", "hparams": {"beta": beta}, "seed": seed,
                   "steps": total, "batch_size": batch, "lr": lr, "latent_dim": 10, "log_every": 100,
                   "checkpoint_every": 5000}
            t0 = time.perf_counter()
            resume = (run / "config.json").is_file()
            run.parent.mkdir(parents=True, exist_ok=True)
            if _checkpoint_step(run) != m:  # a checkpoint already at m (stopped while scoring): score it
                train(cfg, out=run, resume=resume, stop_after=m if m < total else None, threads=a.threads)
            t1 = time.perf_counter()
            r = score_at(run, {**cfg, **_record(run)}, m, a.n_train, a.n_test, a.threads)
            row = {"dataset": a.dataset, "method": "beta_vae", "beta": beta, "lr": lr, "batch_size": batch,
                   "seed": seed, "step": m, **r}
            rows.append(row)
            done.add(key)
            write_table(table, rows)
            print(f"beta={beta:g} lr={lr:g} b={batch} seed={seed} step={m}: train {t1 - t0:.0f}s, "
                  f"score {time.perf_counter() - t1:.0f}s; recon {r['recon']:.1f} kl {r['kl']:.2f} "
                  f"mig {r['mig']:.3f} dci {r['dci_disentanglement']:.3f} active {r['active_latents']}",
                  flush=True)
    return 0


def _checkpoint_step(run: Path) -> int | None:
    from varstruct.runs.weights import read_weights
    from varstruct.runs.layout import RunDir

    rd = RunDir(run)
    return int(read_weights(rd.checkpoint_path)["meta.step"]) if rd.has_checkpoint else None


def _record(run: Path) -> dict:
    from varstruct.runs.layout import RunDir
    return RunDir(run).read_config()


if __name__ == "__main__":
    raise SystemExit(main())
