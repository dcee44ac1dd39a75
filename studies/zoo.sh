#!/usr/bin/env bash
# Make a zoo like pretrained/ from the zoo specs (the toy groups a few hours on 2 cores, the dSprites
# family a day; see pretrained/README.md) into a new folder OUT (default pretrained: a packed zoo
# there, with its manifest.csv, takes no new training). Run from the repository root.
# Finished runs are skipped, so an interrupted build resumes where it stopped.
set -u
OUT=${1:-pretrained}
PY=${PYTHON:-python}
for pair in toy_context:zoo_toy_context toy_h1:zoo_toy_h1 mask:zoo_mask \
            toy_baselines:zoo_toy_baselines toy_baselines:zoo_toy_context_baselines toy_baselines:zoo_toy_untrained \
            longitudinal:zoo_longitudinal longitudinal:zoo_longitudinal_beta dsprites_baselines:zoo_dsprites_baselines \
            dsprites_baselines:zoo_dsprites_baselines_family dsprites_baselines:zoo_dsprites_pca; do
  group=${pair%%:*}; spec=${pair##*:}
  $PY -m varstruct sweep studies/$spec.toml --out "$OUT/$group" --workers 2 --threads 1 || exit $?
done
# the dSprites-family zoo trains until converged (hours: pretrained/README.md); a run enters
# $OUT/dsprites only if it meets the convergence criterion by its own train_log.csv
WORK=${ZOO_WORK:-zoo_work}
for spec in zoo_dsprites_betas zoo_dsprites_variants zoo_dsprites_tc_factor zoo_shapes3d; do
  $PY -m varstruct sweep studies/$spec.toml --out "$WORK" --workers 2 --threads 1 || exit $?
done
$PY -m varstruct.study.keep_converged "$WORK" "$OUT/dsprites" || exit $?
# the training-length check (RESULTS section 11): toy zoo runs trained again to a fixed 20,000 (or
# 40,000) steps. They need not meet the convergence criterion, so they stay out of $OUT, in
# benchmarks/results/training_length; only their config, log and scores are kept (no figure reads
# their measures or weights)
LEN=${TRAINING_LENGTH:-benchmarks/results/training_length}
for spec in zoo_toy_h1_longer zoo_toy_h1_longer_b zoo_toy_context_longer; do
  $PY -m varstruct sweep studies/$spec.toml --out "$LEN/toy_longer" --workers 2 --threads 1 || exit $?
done
for spec in zoo_toy_context_40k zoo_toy_context_40k_b; do
  $PY -m varstruct sweep studies/$spec.toml --out "$LEN/toy_longer_40k" --workers 2 --threads 1 || exit $?
done
find "$LEN" -name measures.nc -delete
$PY -m varstruct.study.manifest "$LEN" --half float16 --without-weights toy_longer --without-weights toy_longer_40k || exit $?
# float16 weights (loading upcasts to float32) and the manifest with every run's sha256; the toy
# runs of seed >= 1 and the untrained baselines of color_dsprites, noisy_dsprites and shapes3d (no
# figure loads them) are kept as results without weights (their config.json retrains them)
RELEASE=()
for d in $(cd "$OUT" && find toy_context toy_h1 mask toy_baselines -type d -name 'seed*' ! -name seed0 2>/dev/null | sort); do
  RELEASE+=(--without-weights "$d")
done
for d in color_dsprites noisy_dsprites shapes3d; do
  [ -d "$OUT/dsprites_baselines/$d" ] && RELEASE+=(--without-weights "dsprites_baselines/$d")
done
$PY -m varstruct.study.manifest "$OUT" --half float16 "${RELEASE[@]}" || exit $?
# the dataset-measure cache ($OUT/_dataset_measures), so that correlate needs no computing
$PY -m varstruct collect "$OUT" --out "${TMPDIR:-/tmp}/zoo_study.nc"
# and the training-length runs' own cache (figure training_length reads them with collect)
$PY -m varstruct collect "$LEN" --out "${TMPDIR:-/tmp}/training_length_study.nc"
