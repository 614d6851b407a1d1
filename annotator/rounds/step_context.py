"""What a step's work may use while it runs: its ids, and progress callbacks that also beat the heartbeat."""

import time
from collections.abc import Callable

from django.utils import timezone

from annotator.rounds.state_machine import round_step_progress

PROGRESS_MIN_INTERVAL_SECONDS = 1.0


class StepLost(Exception):
    """Another task took the step over (this one looked dead); stop without writing anything."""


class StepContext:
    def __init__(self, *, round_id: int, step: str, task_id: str):
        self.round_id, self.step, self.task_id = round_id, step, task_id

    def progress(self, phase: str) -> Callable[[dict], None]:
        """A models_rl progress callback for one phase of the step ("reward model", "sampling", ...).

        Writes {"phase", "done", "total", "phase_started_at", "updated_at", "metrics"} into the round's
        metrics["progress"] at most once a second (and at the last step); raises StepLost once the step
        belongs to another task.
        """
        phase_started = timezone.now().isoformat()
        last_write = 0.0

        def report(update: dict) -> None:
            nonlocal last_write
            done, total = int(update.get("step", 0)), int(update.get("total", 0))
            if time.monotonic() - last_write < PROGRESS_MIN_INTERVAL_SECONDS and done < total:
                return
            last_write = time.monotonic()
            numbers = {k: v for k, v in update.items() if k not in ("step", "total") and isinstance(v, (int, float))}
            payload = {
                "phase": phase, "done": done, "total": total, "phase_started_at": phase_started,
                "updated_at": timezone.now().isoformat(), "metrics": numbers,
            }
            if not round_step_progress(round_id=self.round_id, step=self.step, task_id=self.task_id, progress=payload):
                raise StepLost(f"round {self.round_id} step {self.step}")

        return report
