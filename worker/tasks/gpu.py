"""Round steps that train, sample or score models: the `gpu` queue."""

from celery import shared_task

from annotator.models import RoundState
from worker import steps
from worker.runner import run_step

# The gpu queue comes from CELERY_TASK_ROUTES ("worker.tasks.gpu.*"): Celery 5.7 deprecates a task's own queue.
GPU_TASK_OPTIONS = {"acks_late": True, "bind": True}


@shared_task(name="worker.tasks.gpu.train_reward_model", **GPU_TASK_OPTIONS)
def train_reward_model(self, round_id: int) -> str:
    return run_step(round_id=round_id, step=RoundState.TRAINING_REWARD, task_id=self.request.id,
                    work=steps.train_reward_model, in_worker=not self.request.is_eager)


@shared_task(name="worker.tasks.gpu.optimize_policy", **GPU_TASK_OPTIONS)
def optimize_policy(self, round_id: int) -> str:
    return run_step(round_id=round_id, step=RoundState.OPTIMIZING, task_id=self.request.id,
                    work=steps.optimize_policy, in_worker=not self.request.is_eager)


@shared_task(name="worker.tasks.gpu.sample_completions", **GPU_TASK_OPTIONS)
def sample_completions(self, round_id: int) -> str:
    return run_step(round_id=round_id, step=RoundState.SAMPLING, task_id=self.request.id,
                    work=steps.sample_completions, in_worker=not self.request.is_eager)


@shared_task(name="worker.tasks.gpu.select_pairs", **GPU_TASK_OPTIONS)
def select_pairs(self, round_id: int) -> str:
    return run_step(round_id=round_id, step=RoundState.SELECTING, task_id=self.request.id,
                    work=steps.select_pairs, in_worker=not self.request.is_eager)
