"""Studies: a spec of runs (:mod:`.spec`), the sweep that trains them (:mod:`.sweep`), the collected
results (:mod:`.collect`, also ``varstruct.collect``) and their correlations (:mod:`.correlate`,
also ``varstruct.correlate``)."""
from .spec import Run, read_spec, runs_from_dict  # noqa: F401
