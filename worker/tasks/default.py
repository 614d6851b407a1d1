"""Round steps that run no model: the `default` queue (CELERY_TASK_DEFAULT_QUEUE)."""

from celery import shared_task

from annotator.models import RoundState
from annotator.rounds.lifecycle import step_task_run


@shared_task(name="worker.tasks.default.select_pairs_at_random", acks_late=True, bind=True)
def select_pairs_at_random(self, round_id: int) -> str:
    """Round 0: pair the base policy's completions at random (the same step code, with no reward model)."""
    return step_task_run(round_id=round_id, step=RoundState.SELECTING, task_id=self.request.id,
                         in_worker=not self.request.is_eager)
