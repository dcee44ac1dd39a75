"""Writes the disentanglement_lib fixtures in tests/data/dlib/: four model zips laid out like the
released ``unsupervised_study_v1/<n>.zip`` files, whose TF-Hub modules TensorFlow wrote with
disentanglement_lib's own architecture and export code, and the outputs TensorFlow computed
with them (dlib_outputs.npz) plus disentanglement_lib's metric scores on those outputs.

Two stages, in two environments (TensorFlow never enters the project's environment):

1. ``points`` (the project's venv): renders the fixed metric points with varstruct
   (``render_points``: seeded, so the tests render the very same images) into a temporary npz:

       python tests/data/make_dlib_fixture.py points /tmp/dlib_points.npz

2. ``fixtures`` (a scratch venv outside the repository; Python 3.11)::

       python3 -m venv /tmp/dlib-venv && . /tmp/dlib-venv/bin/activate
       pip install "tensorflow-cpu==2.15.*" "tensorflow_hub==0.15.*" gin-config scikit-learn
       git clone https://github.com/google-research/disentanglement_lib /tmp/dlib
       git -C /tmp/dlib checkout 86a644d4ed35c771560dc3360756363d35477357
       python tests/data/make_dlib_fixture.py fixtures /tmp/dlib_points.npz --dlib /tmp/dlib

   (recorded with tensorflow-cpu 2.15.1, tensorflow_hub 0.15.0, gin-config 0.5.0,
   scikit-learn 1.9.x, numpy 1.26; dlib_fixture.json records the exact versions.)

What stage 2 does, per case (model number of the study, its gin bindings from dlib's own sweep):
- builds disentanglement_lib's ``conv_encoder`` / ``deconv_decoder`` (``architectures.py``,
  through its gin wrappers ``encoder`` / ``decoder``) in a TF1 graph and sets every variable to
  sparse ternary values (about FAN non-zero inputs per unit, ±s with s a He-style
  scale): random enough that any
  wrong transpose, flatten order or layer mapping changes the outputs, and compressible, so the
  zips stay small;
- saves a checkpoint and exports it with dlib's ``export_as_tf_hub`` (the function that wrote
  the released modules);
- loads the exported module with ``hub.Module`` and records its ``gaussian_encoder`` outputs
  (mean, logvar) for 4 fixed images and its ``decoder`` outputs (logits) for 2 fixed latents;
- encodes the metric points with the module and runs dlib's ``_compute_mig`` (histogram
  discretizer, 20 bins), ``_compute_sap`` (discrete factors) and ``_compute_dci`` on the codes
  (after ``np.random.seed(0)``), stored as the zip's ``metrics/mean/<metric>/results/json/
  evaluation_results.json``;
- zips ``<n>/model/tfhub/...``, ``<n>/model/results/gin/train.gin`` (dlib's shared.gin plus the
  sweep's bindings, as ``dlib_reproduce`` passes them) and the metric results.

The fixed inputs are drawn from ``np.random.default_rng(SEED + case)``; the recording keeps their
sha256, which the test checks before comparing.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

OUT = Path(__file__).with_name("dlib")
SEED = 20261202
# (file stem, model number in unsupervised_study_v1): dlib's sweep gives method, hparams, dataset.
CASES = (("beta_vae_dsprites", 100), ("beta_tcvae_dsprites", 1350),
         ("beta_vae_color_dsprites", 1900), ("beta_tcvae_color_dsprites", 3150))
CHANNELS = {"dsprites_full": 1, "color_dsprites": 3}
VARSTRUCT_NAME = {"dsprites_full": "dsprites", "color_dsprites": "color_dsprites"}
N_IMAGES, N_LATENTS, LATENT_DIM = 4, 1, 10
N_TRAIN, N_TEST, POINTS_SEED = 600, 300, 7
FAN = 6  # non-zero weights per unit on average (density 6 / fan-in, at least MIN_DENSITY)
MIN_DENSITY = 0.01
PERIOD = 16  # see _repeating


def fixed_inputs(case: int, channels: int):
    """(images float32 [N_IMAGES, 64, 64, C] in [0, 1] (multiples of 1/255), latents float32
    [N_LATENTS, LATENT_DIM]) of case number ``case``."""
    rng = np.random.default_rng(SEED + case)
    images = rng.integers(0, 256, size=(N_IMAGES, 64, 64, channels)).astype(np.float32) / np.float32(255)
    latents = rng.normal(size=(N_LATENTS, LATENT_DIM)).astype(np.float32)
    return images, latents


def inputs_sha256(images, latents) -> str:
    return hashlib.sha256(np.ascontiguousarray(images).tobytes() + np.ascontiguousarray(latents).tobytes()).hexdigest()


def render_points(dataset: str):
    """(factors int64 [N_TRAIN + N_TEST, K], images float32 [N, 64, 64, C]) of varstruct's
    ``dataset``, drawn with seed POINTS_SEED (the first N_TRAIN are the train points)."""
    from varstruct import data

    return data.get(dataset).sample(N_TRAIN + N_TEST, POINTS_SEED)


# ---------------------------------------------------------------- stage 1 (project venv)
def stage_points(path):
    arrays = {}
    for ds in sorted(set(VARSTRUCT_NAME.values())):
        f, x = render_points(ds)
        arrays[f"{ds}_factors"], arrays[f"{ds}_images"] = f, x.astype(np.float32)
    np.savez(path, **arrays)
    print(f"wrote {path}")


# ---------------------------------------------------------------- stage 2 (scratch venv with TF)
def _sparse_ternary(rng, shape, fan_in):
    """Kernels: density FAN / fan_in (at least MIN_DENSITY), scale sqrt(2 / (density fan_in));
    biases (fan_in None): density 0.9, scale 0.1."""
    if fan_in is None:
        density, scale = 0.9, np.float32(0.1)
    else:
        density = min(1.0, max(FAN / fan_in, MIN_DENSITY))
        scale = np.float32(np.sqrt(2.0 / (density * fan_in)))
    nz = rng.random(shape) < density
    sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    return (nz * sign * scale).astype(np.float32)


def _repeating(rng, shape, fan_in):
    """The two 1024x256 dense kernels, 3/4 of the weights: :func:`_sparse_ternary` values whose
    256-side repeats with period PERIOD (e5: its outputs, [1024, 256]; the decoder's
    [256, 1024]: its inputs). The 1024-side, where TF's HWC flatten order meets PyTorch's CHW,
    stays all distinct, so a wrong permutation there still changes the outputs."""
    if shape[0] == 1024:
        return np.tile(_sparse_ternary(rng, [1024, PERIOD], fan_in), (1, 256 // PERIOD))
    return np.tile(_sparse_ternary(rng, [PERIOD, 1024], fan_in), (256 // PERIOD, 1))


def stage_fixtures(points_path, dlib_path):
    sys.path.insert(0, str(dlib_path))
    import gin
    import sklearn
    import tensorflow as tf1
    import tensorflow.compat.v1 as tf
    import tensorflow_hub as hub
    from disentanglement_lib.config.unsupervised_study_v1 import sweep
    from disentanglement_lib.evaluation.metrics import dci, mig, sap_score
    from disentanglement_lib.methods.shared import architectures
    from disentanglement_lib.methods.unsupervised import gaussian_encoder_model as gem

    tf.disable_eager_execution()
    points = np.load(points_path)
    study = sweep.UnsupervisedStudyV1()
    shared_gin = (Path(dlib_path) / "disentanglement_lib/config/unsupervised_study_v1/model_configs/shared.gin").read_text()
    metric_dir = Path(dlib_path) / "disentanglement_lib/config/unsupervised_study_v1/metric_configs"

    class Model(gem.GaussianEncoderModel):
        """BaseVAE's gaussian_encoder and decode (vae.py imports tf.contrib, gone from TF 2)."""

        def gaussian_encoder(self, input_tensor, is_training):
            return architectures.make_gaussian_encoder(input_tensor, is_training=is_training)

        def decode(self, latent_tensor, observation_shape, is_training):
            return architectures.make_decoder(latent_tensor, observation_shape, is_training=is_training)

    OUT.mkdir(exist_ok=True)
    outputs, record = {}, {"cases": {}}
    for case, (stem, model_num) in enumerate(CASES):
        bindings, _ = study.get_model_config(model_num)
        bindings = ["model.name = '{}'".format("shared"), f"model.model_num = {model_num}"] + bindings
        b = dict(line.split(" = ", 1) for line in bindings)
        dataset = b["dataset.name"].strip("'")
        channels = CHANNELS[dataset]
        gin.clear_config()
        gin.parse_config(["encoder.num_latent = 10", "encoder.encoder_fn = @conv_encoder",
                          "decoder.decoder_fn = @deconv_decoder"])
        shape = [64, 64, channels]
        rng = np.random.default_rng(SEED + 100 + case)
        with tempfile.TemporaryDirectory() as tmp:
            ckpt = os.path.join(tmp, "ckpt", "model.ckpt")
            with tf.Graph().as_default():
                x = tf.placeholder(tf.float32, [None] + shape)
                model = Model()
                mean, logvar = model.gaussian_encoder(x, is_training=False)
                model.decode(model.sample_from_latent_distribution(mean, logvar), shape, is_training=False)
                assigns, names = [], []
                for v in tf.global_variables():
                    s = v.shape.as_list()
                    fan_in = int(np.prod(s[:-1])) if len(s) > 1 else None
                    if "conv2d_transpose" in v.name and len(s) == 4:  # [h, w, out, in]
                        fan_in = s[0] * s[1] * s[3]
                    if "conv2d_transpose_3/kernel" in v.name:  # the logits: every weight non-zero
                        fan_in = 1.0 * FAN
                    if s in ([1024, 256], [256, 1024]):  # e5 and the decoder's 2nd dense layer
                        w = _repeating(rng, s, fan_in)
                    else:
                        w = _sparse_ternary(rng, s, fan_in)
                    assigns.append(v.assign(w))
                    names.append(v.name)
                with tf.Session() as sess:
                    sess.run(assigns)
                    tf.train.Saver().save(sess, ckpt)
            gin.clear_config()
            gin.parse_config(["encoder.num_latent = 10", "encoder.encoder_fn = @conv_encoder",
                              "decoder.decoder_fn = @deconv_decoder"])
            hub_dir = os.path.join(tmp, "tfhub")
            gem.export_as_tf_hub(Model(), shape, ckpt, hub_dir)

            images, latents = fixed_inputs(case, channels)
            px = points[f"{VARSTRUCT_NAME[dataset]}_images"]
            with tf.Graph().as_default():
                m = hub.Module(hub_dir)
                xi = tf.placeholder(tf.float32, [None] + shape)
                zi = tf.placeholder(tf.float32, [None, LATENT_DIM])
                enc = m(dict(images=xi), signature="gaussian_encoder", as_dict=True)
                dec = m(dict(latent_vectors=zi), signature="decoder", as_dict=True)
                with tf.Session() as sess:
                    sess.run(tf.global_variables_initializer())
                    mu, lv = sess.run([enc["mean"], enc["logvar"]], {xi: images})
                    logits = sess.run(dec["images"], {zi: latents})
                    codes = np.concatenate([sess.run(enc["mean"], {xi: px[i:i + 100]})
                                            for i in range(0, len(px), 100)])
            outputs[f"{stem}_mean"], outputs[f"{stem}_logvar"], outputs[f"{stem}_logits"] = mu, lv, logits
            fac = points[f"{VARSTRUCT_NAME[dataset]}_factors"]
            tr, te = codes[:N_TRAIN].T, codes[N_TRAIN:].T  # dlib's [dims, points]
            ftr, fte = fac[:N_TRAIN].T, fac[N_TRAIN:].T
            gin.clear_config()
            gin.parse_config(["discretizer.discretizer_fn = @histogram_discretizer", "discretizer.num_bins = 20"])
            scores = {"mig": mig._compute_mig(tr, ftr)}
            scores["sap_score"] = sap_score._compute_sap(tr, ftr, te, fte, False)
            np.random.seed(0)
            scores["dci"] = dci._compute_dci(tr, ftr, te, fte)
            scores = {k: {n: float(v) for n, v in d.items() if np.ndim(v) == 0} for k, d in scores.items()}

            zbuf = io.BytesIO()
            with zipfile.ZipFile(zbuf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
                root = f"{model_num}/"
                for dirpath, _, files in sorted(os.walk(hub_dir)):
                    for name in sorted(files):
                        full = os.path.join(dirpath, name)
                        zf.write(full, root + "model/tfhub/" + os.path.relpath(full, hub_dir))
                # dlib_reproduce: the config file, then the bindings (which win)
                train_gin = shared_gin + "\n" + "\n".join(bindings) + "\n"
                zf.writestr(root + "model/results/gin/train.gin", train_gin)
                for metric, res in scores.items():
                    base = f"{root}metrics/mean/{metric}/results/"
                    zf.writestr(base + "gin/train.gin", train_gin)
                    zf.writestr(base + "gin/evaluate.gin", (metric_dir / f"{metric}.gin").read_text()
                                + f"\nevaluation.name = '{metric}'\n")
                    zf.writestr(base + "json/evaluation_results.json",
                                json.dumps({**res, "elapsed_time": 0.0, "uuid": "fixture"}, indent=2))
            (OUT / f"{stem}.zip").write_bytes(zbuf.getvalue())
        record["cases"][stem] = {"model_num": model_num, "dataset": dataset, "bindings": bindings,
                                 "variables": names, "inputs_sha256": inputs_sha256(images, latents),
                                 "case": case, "scores": scores}
        print(f"{stem}: {len(zbuf.getvalue()) / 1024:.0f} KiB, scores {scores}")
    np.savez_compressed(OUT / "dlib_outputs.npz", **outputs)
    record.update({"source": "disentanglement_lib @ 86a644d4ed35c771560dc3360756363d35477357 "
                             "(architectures.conv_encoder/deconv_decoder, gaussian_encoder_model.export_as_tf_hub, "
                             "evaluation/metrics mig/sap_score/dci _compute_*)",
                   "tensorflow": tf1.__version__, "tensorflow_hub": hub.__version__, "gin": gin.__version__
                   if hasattr(gin, "__version__") else "0.5.0", "scikit_learn": sklearn.__version__,
                   "numpy": np.__version__, "python": sys.version.split()[0],
                   "points": {"n_train": N_TRAIN, "n_test": N_TEST, "seed": POINTS_SEED}})
    (OUT / "dlib_fixture.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {OUT}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("stage", choices=["points", "fixtures"])
    p.add_argument("points", help="the npz of metric points (written by stage points)")
    p.add_argument("--dlib", help="a disentanglement_lib checkout (stage fixtures)")
    a = p.parse_args()
    if a.stage == "points":
        stage_points(a.points)
    else:
        if not a.dlib:
            p.error("stage fixtures needs --dlib")
        stage_fixtures(a.points, a.dlib)


if __name__ == "__main__":
    main()
