"""Celery tasks: one thin wrapper per round step, registered under the names annotator.rounds.step_tasks sends.

`gpu` (gpu.py): training, sampling and scoring, acks_late with a prefetch of 1; `default` (default.py): the rest.
Each task calls `annotator.rounds.lifecycle.step_task_run` with its step; the round package decides the rest.
Importing both modules here is what registers them when the app autodiscovers `worker.tasks`.
"""

from worker.tasks import default, gpu

__all__ = ["default", "gpu"]
