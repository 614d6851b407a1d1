"""A step's life inside its task: claim it, keep its heartbeat, check the GPU budget, do the work, then finish
it (store, charge GPU time, move the round on) or fail it.

The work function of each step (annotator.rounds.step_*) gets a `StepContext` and the round, does the slow part
with no transaction open, and returns the `store` callable that `round_step_finish` runs in the finishing
transaction. The Celery tasks in worker/ call `step_task_run` with their step's name.
"""

import logging
import threading
import time
from collections.abc import Callable

from django.db import connection

from annotator.core.errors import ServiceError
from annotator.models import Round, RoundState
from annotator.rounds import step_policy, step_reward_model, step_sampling, step_selecting
from annotator.rounds.settings import HEARTBEAT_SECONDS
from annotator.rounds.state_machine import (
    StepRun,
    round_step_claim,
    round_step_fail,
    round_step_finish,
    round_step_heartbeat,
    round_step_release,
)
from annotator.rounds.states import round_step_needs_gpu
from annotator.rounds.step_context import StepContext, StepLost
from annotator.services.budget import gpu_step_check

logger = logging.getLogger(__name__)

StepWork = Callable[[StepContext, Round], Callable[[Round], dict]]

STEP_WORK: dict[str, StepWork] = {
    RoundState.TRAINING_REWARD: step_reward_model.train_reward_model,
    RoundState.OPTIMIZING: step_policy.optimize_policy,
    RoundState.SAMPLING: step_sampling.sample_completions,
    RoundState.SELECTING: step_selecting.select_for_labeling,  # round 0 too: at random, with no reward model
}


class Heartbeat:
    """Beats a step's heartbeat from a thread while the work runs (model loading reports no progress).

    `beat()` records a sign of life and says whether the task still holds its step; the thread stops when not.
    """

    def __init__(self, *, name: str, beat: Callable[[], bool]):
        self._beat = beat
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.wait(HEARTBEAT_SECONDS):
                if not self._beat():
                    return
        finally:
            connection.close()  # this thread's own connection

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def step_task_run(*, round_id: int, step: str, task_id: str, in_worker: bool) -> str:
    """What a step's Celery task does: run the step's work for the round (see `run_step`)."""
    return run_step(round_id=round_id, step=step, task_id=task_id, work=STEP_WORK[step], in_worker=in_worker)


def run_step(*, round_id: int, step: str, task_id: str, work: StepWork, in_worker: bool) -> str:
    """Run `work` for the round's step if this task can claim it; "done", "skipped", "lost" or "failed".

    `in_worker`: a real worker process beats the heartbeat from a thread. An in-process (eager) run does not:
    it runs inside the caller, often inside the caller's transaction, where a second connection would wait.
    A failure marks the round failed with the error (the task itself succeeds: there is nothing to retry
    until someone resumes the round). Ctrl-C in an in-process run gives the step back for a rerun.
    """
    from models_rl.device import device_name  # the ML stack loads only where steps run

    if not round_step_claim(round_id=round_id, step=step, task_id=task_id):
        logger.info("Round %s step %s: not claimable by task %s (finished, or held by a live task).", round_id, step, task_id)
        return "skipped"
    heartbeat = None
    if in_worker:
        heartbeat = Heartbeat(name=f"round-{round_id}",
                              beat=lambda: round_step_heartbeat(round_id=round_id, task_id=task_id))
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
