"""Running one round step inside a task: claim it, keep its heartbeat, do the work, finish or fail it.

The work function gets a `StepContext` and the round, does the slow part with no transaction open, and
returns the `store` callable that `round_step_finish` runs in the finishing transaction.
"""

import logging
import threading
import time
from collections.abc import Callable

from django.db import connection
from django.utils import timezone

from annotator.models import Round
from annotator.core.errors import ServiceError
from annotator.services.rounds import (
    HEARTBEAT_SECONDS,
    StepRun,
    round_step_claim,
    round_step_fail,
    round_step_finish,
    round_step_heartbeat,
    round_step_needs_gpu,
    round_step_progress,
    round_step_release,
)

logger = logging.getLogger(__name__)

PROGRESS_MIN_INTERVAL_SECONDS = 1.0


class StepLost(Exception):
    """Another task took the step over (this one looked dead); stop without writing anything."""


class StepContext:
    """What a step's work may use: the ids, and progress callbacks that also beat the heartbeat."""

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


class _Heartbeat:
    """Beats the step's heartbeat from a thread while the work runs (model loading reports no progress)."""

    def __init__(self, *, round_id: int, task_id: str):
        self._round_id, self._task_id = round_id, task_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-round-{round_id}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.wait(HEARTBEAT_SECONDS):
                if not round_step_heartbeat(round_id=self._round_id, task_id=self._task_id):
                    return
        finally:
            connection.close()  # this thread's own connection

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def run_step(
    *, round_id: int, step: str, task_id: str, work: Callable[[StepContext, Round], Callable[[Round], dict]],
    in_worker: bool,
) -> str:
    """Run `work` for the round's step if this task can claim it; "done", "skipped", "lost" or "failed".

    `in_worker`: a real worker process beats the heartbeat from a thread. An in-process (eager) run does not:
    it runs inside the caller, often inside the caller's transaction, where a second connection would wait.
    A failure marks the round failed with the error (the task itself succeeds: there is nothing to retry
    until someone resumes the round). Ctrl-C in an in-process run gives the step back for a rerun.
    """
    from models_rl.device import device_name  # the ML stack loads only where steps run

    from annotator.services.budget import gpu_step_check

    if not round_step_claim(round_id=round_id, step=step, task_id=task_id):
        logger.info("Round %s step %s: not claimable by task %s (finished, or held by a live task).", round_id, step, task_id)
        return "skipped"
    heartbeat = _Heartbeat(round_id=round_id, task_id=task_id) if in_worker else None
    try:
        round_ = Round.objects.select_related("campaign").get(pk=round_id)
        needs_gpu = round_step_needs_gpu(round_=round_, step=step)
        device_type = device_name() if needs_gpu else "cpu"
        if needs_gpu:
            gpu_step_check(campaign=round_.campaign, step=step, device_type=device_type)
        started = time.monotonic()
        store = work(StepContext(round_id=round_id, step=step, task_id=task_id), round_)
        run = StepRun(device_type=device_type, seconds=time.monotonic() - started, charge_gpu=needs_gpu)
        finished = round_step_finish(round_id=round_id, step=step, task_id=task_id, store=store, run=run)
        return "done" if finished is not None else "lost"
    except StepLost:
        logger.warning("Round %s step %s was taken over; task %s stopped.", round_id, step, task_id)
        return "lost"
    except ServiceError as exc:
        round_step_fail(round_id=round_id, step=step, task_id=task_id, error=exc.message)
        return "failed"
    except Exception as exc:
        logger.exception("Round %s step %s failed.", round_id, step)
        round_step_fail(round_id=round_id, step=step, task_id=task_id, error=f"{type(exc).__name__}: {exc}")
        return "failed"
    except BaseException:
        round_step_release(round_id=round_id, step=step, task_id=task_id)
        raise
    finally:
        if heartbeat is not None:
            heartbeat.stop()
