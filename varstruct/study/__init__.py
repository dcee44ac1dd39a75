"""Studies: a spec of runs (:mod:`.spec`), the sweep that trains them (:mod:`.sweep`), the collected
results (:mod:`.collect`) and their correlations (:mod:`.correlate`)."""
from .spec import Run, read_spec, runs_from_dict  # noqa: F401


def __getattr__(name):
    import importlib

    where = {"collect": ".collect", "correlate": ".correlate", "sweep": ".sweep", "to_table": ".correlate"}
    if name in where:
        return getattr(importlib.import_module(where[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
