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
# the training-length check: toy zoo runs trained again to a fixed 20,000 steps (RESULTS section 11);
# only their config, log and scores are kept (no figure reads their measures; the zoo stays < 80 MB)
for spec in zoo_toy_h1_longer zoo_toy_h1_longer_b zoo_toy_context_longer; do
  $PY -m varstruct sweep studies/$spec.toml --out "$OUT/toy_longer" --workers 2 --threads 1 || exit $?
done
$PY -m varstruct sweep studies/zoo_toy_context_40k.toml --out "$OUT/toy_longer_40k" --workers 2 --threads 1 || exit $?
# no figure reads the measures of these groups or of the baselines (recompute them with
# `varstruct measure model DIR`): they are not kept, so the zoo stays under 80 MB
find "$OUT/toy_longer" "$OUT/toy_longer_40k" "$OUT/toy_baselines" -name measures.nc -delete
# float16 weights (loading upcasts to float32) and the manifest with every run's sha256; the toy
# runs of seed >= 1, every toy_longer run and the untrained baselines of color_dsprites, noisy_dsprites and shapes3d (no
# figure loads them) are kept as results without weights (their config.json retrains them)
RELEASE=()
for d in $(cd "$OUT" && find toy_context toy_h1 mask toy_baselines -type d -name 'seed*' ! -name seed0 2>/dev/null | sort); do
  RELEASE+=(--without-weights "$d")
done
for g in toy_longer toy_longer_40k; do [ -d "$OUT/$g" ] && RELEASE+=(--without-weights $g); done
for d in color_dsprites noisy_dsprites shapes3d; do
  [ -d "$OUT/dsprites_baselines/$d" ] && RELEASE+=(--without-weights "dsprites_baselines/$d")
done
$PY -m varstruct.study.manifest "$OUT" --half float16 "${RELEASE[@]}" || exit $?
# the dataset-measure cache ($OUT/_dataset_measures), so that correlate needs no computing
$PY -m varstruct collect "$OUT" --out "${TMPDIR:-/tmp}/zoo_study.nc"
