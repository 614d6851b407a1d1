"""Celery tasks. `gpu`: training, sampling and scoring (acks_late, prefetch 1); `default`: the rest.

Every task takes a round id, claims its step by row state and runs it (worker.runner); the services
decide what a step does. `enqueue_step` is how annotator.services.rounds sends a step to its task.
"""

from annotator.models import RoundState
from worker.tasks import default, gpu

GPU_STEP_TASKS = {
    RoundState.TRAINING_REWARD: gpu.train_reward_model,
    RoundState.OPTIMIZING: gpu.optimize_policy,
    RoundState.SAMPLING: gpu.sample_completions,
    RoundState.SELECTING: gpu.select_pairs,
}
DEFAULT_STEP_TASKS = {RoundState.SELECTING: default.select_pairs_at_random}


def enqueue_step(*, round_id: int, step: str, task_id: str, needs_gpu: bool) -> None:
    """Send the step's task under the id `round_dispatch` recorded as the step's owner."""
    task = (GPU_STEP_TASKS if needs_gpu else DEFAULT_STEP_TASKS)[step]
    task.apply_async(args=[round_id], task_id=task_id)
