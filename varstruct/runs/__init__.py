"""Run (model) dirs, torch-free (docs/run-dirs.md).

- :mod:`.layout`: :class:`~.layout.RunDir`, every file name of a run dir, its state
  (:class:`~.layout.RunState`) and its writer lock;
- :mod:`.weights`: safetensors files (header parsing, reading, atomic writing) and their sha256
  (sidecar files and manifest rows).

Both import only :mod:`varstruct.errors`, :mod:`varstruct.io` and the standard library at module
level (torch, safetensors, filelock and pandas on first use), and nothing above them. Loading a
run's model or dataset lives above both, in :mod:`varstruct.models.load`. This ``__init__``
imports nothing, so that importing a submodule does not pull in its siblings.
"""
