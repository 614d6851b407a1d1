"""How a round step reaches the Celery task that runs it: by task name and queue, so the round loop never
imports worker/. Each name below is registered by a thin task in worker/tasks/ that calls
`annotator.rounds.lifecycle.step_task_run` for its step (tests/worker/test_step_tasks.py checks they agree).
"""

from dataclasses import dataclass

from annotator.models import RoundState
from config.celery import app as celery_app

GPU_QUEUE = "gpu"  # training, sampling and scoring: GPU workers listen here (acks_late, prefetch 1)
DEFAULT_QUEUE = "default"  # steps that run no model


@dataclass(frozen=True)
class StepTask:
    name: str
    queue: str


GPU_STEP_TASKS = {
    RoundState.TRAINING_REWARD: StepTask("worker.tasks.gpu.train_reward_model", GPU_QUEUE),
    RoundState.OPTIMIZING: StepTask("worker.tasks.gpu.optimize_policy", GPU_QUEUE),
    RoundState.SAMPLING: StepTask("worker.tasks.gpu.sample_completions", GPU_QUEUE),
    RoundState.SELECTING: StepTask("worker.tasks.gpu.select_pairs", GPU_QUEUE),
}
# Round 0 pairs its completions at random: the same step code, with no model to run.
MODEL_FREE_STEP_TASKS = {RoundState.SELECTING: StepTask("worker.tasks.default.select_pairs_at_random", DEFAULT_QUEUE)}


def step_task_for(*, step: str, needs_gpu: bool) -> StepTask:
    return (GPU_STEP_TASKS if needs_gpu else MODEL_FREE_STEP_TASKS)[step]


def step_enqueue(*, round_id: int, step: str, task_id: str, needs_gpu: bool) -> None:
    """Send the step's task under the id `round_dispatch` recorded as the step's owner. Call it after commit.

    With no broker (`task_always_eager`) the task runs here and now. Celery's `send_task` ignores eager mode,
    so the registered task is applied instead; only a worker imports the task modules at start, so this
    process asks the app to do the same (config/celery.py's autodiscovery) the first time.
    """
    task = step_task_for(step=step, needs_gpu=needs_gpu)
    if not celery_app.conf.task_always_eager:
        celery_app.send_task(task.name, args=[round_id], task_id=task_id, queue=task.queue)
        return
    if task.name not in celery_app.tasks:
        celery_app.loader.import_default_modules()
    celery_app.tasks[task.name].apply_async(args=[round_id], task_id=task_id, queue=task.queue)
