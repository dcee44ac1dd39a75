#!/usr/bin/env bash
# Remake pretrained/ from the zoo specs (about 42 min on a shared 2-core machine; see
# pretrained/README.md). Run from the repository root; OUT defaults to pretrained.
# Finished runs are skipped, so an interrupted build resumes where it stopped.
set -u
OUT=${1:-pretrained}
PY=${PYTHON:-python}
for pair in toy_profiles:zoo_toy_profiles toy_ratios:zoo_toy_ratios dsprites:zoo_dsprites \
            longitudinal:zoo_longitudinal mask:zoo_mask dsprites:zoo_dsprites_color_noisy; do
  group=${pair%%:*}; spec=${pair##*:}
  $PY -m varstruct sweep studies/$spec.toml --out "$OUT/$group" --workers 2 --threads 1 || exit $?
done
# float16 weights (loading upcasts to float32) and the manifest with every run's sha256
$PY -m varstruct.study.manifest "$OUT" --half float16 || exit $?
# the dataset-measure cache ($OUT/_dataset_measures), so that correlate needs no computing
$PY -m varstruct collect "$OUT" --out "${TMPDIR:-/tmp}/zoo_study.nc"
