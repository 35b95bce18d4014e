"""`unetgan batch`: adapt-segment over an archive of studies, on local worker processes or a Dask cluster.

studies.py finds the studies and their output folders, worker.py runs one study in a worker
process, summary.py keeps `summary.csv`, runner.py hands the studies to the workers."""
from .runner import BatchResult, run_batch
from .studies import Study, find_studies
from .worker import StudyOptions

__all__ = ["BatchResult", "Study", "StudyOptions", "find_studies", "run_batch"]
