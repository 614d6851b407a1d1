"""Round steps that train, sample or score models: the `gpu` queue.

The queue is given where the task is sent (annotator.rounds.step_tasks) and by CELERY_TASK_ROUTES
("worker.tasks.gpu.*"), not here: Celery 5.7 deprecates a task's own `queue`.
"""

from celery import shared_task

from annotator.evaluation.runs import evaluation_task_run
from annotator.models import RoundState
from annotator.rounds.lifecycle import step_task_run

GPU_TASK_OPTIONS = {"acks_late": True, "bind": True}


@shared_task(name="worker.tasks.gpu.train_reward_model", **GPU_TASK_OPTIONS)
def train_reward_model(self, round_id: int) -> str:
    return step_task_run(round_id=round_id, step=RoundState.TRAINING_REWARD, task_id=self.request.id,
                         in_worker=not self.request.is_eager)


@shared_task(name="worker.tasks.gpu.optimize_policy", **GPU_TASK_OPTIONS)
def optimize_policy(self, round_id: int) -> str:
    return step_task_run(round_id=round_id, step=RoundState.OPTIMIZING, task_id=self.request.id,
                         in_worker=not self.request.is_eager)


@shared_task(name="worker.tasks.gpu.sample_completions", **GPU_TASK_OPTIONS)
def sample_completions(self, round_id: int) -> str:
    return step_task_run(round_id=round_id, step=RoundState.SAMPLING, task_id=self.request.id,
                         in_worker=not self.request.is_eager)


@shared_task(name="worker.tasks.gpu.select_pairs", **GPU_TASK_OPTIONS)
def select_pairs(self, round_id: int) -> str:
    return step_task_run(round_id=round_id, step=RoundState.SELECTING, task_id=self.request.id,
                         in_worker=not self.request.is_eager)


@shared_task(name="worker.tasks.gpu.sample_evaluation", **GPU_TASK_OPTIONS)
def sample_evaluation(self, run_id: int) -> str:
    """An evaluation run's sampling step (annotator.evaluation.runs sends it by this name)."""
    return evaluation_task_run(run_id=run_id, task_id=self.request.id, in_worker=not self.request.is_eager)
