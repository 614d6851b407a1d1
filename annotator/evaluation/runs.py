"""An evaluation run's life: started from a checked plan, sampled by one GPU task, labeled, closed.

sampling -> labeling -> done (or failed at sampling; `evaluation_resume` sends it again). The sampling step is
claimed the way a round step is (annotator.rounds.state_machine): `evaluation_dispatch` gives it to a new task
id after commit; the task claims it with a compare-and-set on the run row (unowned, awaiting exactly this
task, or its owner's heartbeat stale); the slow work runs outside any transaction; `sampling.evaluation_publish`
stores everything in one transaction that re-checks the owner, so a run is published at most once.

Lock order, everywhere: the campaign row, then the run row.
"""

import logging
import time
import uuid
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from annotator.core.errors import InvalidInput, ServiceError
from annotator.evaluation.plan import EvaluationPlan
from annotator.evaluation.selectors import evaluation_items_unanswered
from annotator.models import EvaluationRun, EvaluationState
from annotator.rounds.settings import step_stale_seconds
from annotator.rounds.step_context import StepLost
from annotator.services.ledger import campaign_lock

logger = logging.getLogger(__name__)

SAMPLING_TASK = "worker.tasks.gpu.sample_evaluation"


@transaction.atomic
def evaluation_start(*, plan: EvaluationPlan, created_by: AbstractBaseUser | None = None) -> EvaluationRun:
    """Create the run of a checked plan (annotator.evaluation.plan) and dispatch its sampling step.

    Holds the campaign row lock, so two starts number their runs apart.
    """
    campaign = campaign_lock(campaign_id=plan.campaign.pk)
    number = (EvaluationRun.objects.filter(campaign=campaign).aggregate(n=Max("number"))["n"] or 0) + 1
    run = EvaluationRun.objects.create(
        campaign=campaign, number=number, prompt_ids=plan.prompt_ids,
        ratings_per_checkpoint=plan.ratings_per_checkpoint if plan.rated else 0,
        judgements_wanted=plan.judgements_wanted, created_by=created_by,
        metrics={"plan": {"battles": plan.battles, "ratings": plan.ratings, "answers": plan.answers,
                          "labeling_cost": str(plan.labeling_cost), "gpu_cost_estimate": str(plan.gpu_cost),
                          "samples_per_prompt": {str(k): v for k, v in plan.samples_per_prompt.items()}}},
    )
    run.checkpoints.set(plan.checkpoints)
    run.rated_checkpoints.set(plan.rated)
    evaluation_dispatch(run_id=run.pk)
    return run


@transaction.atomic
def evaluation_resume(*, run: EvaluationRun) -> EvaluationRun:
    """Send a failed run's sampling step again (or a sampling step whose task died)."""
    locked = EvaluationRun.objects.select_for_update().get(pk=run.pk)
    if locked.state == EvaluationState.FAILED:
        locked.state, locked.error = EvaluationState.SAMPLING, ""
        locked.step_owner, locked.step_started_at, locked.step_heartbeat_at = "", None, None
        locked.save(update_fields=["state", "error", "step_owner", "step_started_at", "step_heartbeat_at"])
    elif locked.state != EvaluationState.SAMPLING:
        raise InvalidInput(f"Evaluation {locked.number} is {locked.get_state_display().lower()}: nothing to resume.")
    evaluation_dispatch(run_id=locked.pk)
    return locked


def _stale(now: datetime) -> Q:
    return Q(step_heartbeat_at__lt=now - timedelta(seconds=step_stale_seconds()))


@transaction.atomic
def evaluation_dispatch(*, run_id: int, now: datetime | None = None) -> str | None:
    """Give the run's sampling step to a new task and send it after commit; None when no task is needed (the run
    is past sampling) or a live task holds it. Compare-and-set under the run row lock: one task per live step."""
    now = now or timezone.now()
    run = (
        EvaluationRun.objects.select_for_update()
        .filter(pk=run_id, state=EvaluationState.SAMPLING)
        .filter(Q(step_owner="") | _stale(now))
        .first()
    )
    if run is None:
        return None
    task_id = str(uuid.uuid4())
    run.step_owner, run.step_started_at, run.step_heartbeat_at = task_id, None, now
    run.save(update_fields=["step_owner", "step_started_at", "step_heartbeat_at"])
    transaction.on_commit(lambda: _enqueue(run_id=run_id, task_id=task_id))
    return task_id


def _enqueue(*, run_id: int, task_id: str) -> None:
    """Send the sampling task by name (the evaluation never imports worker/); with no broker it runs here."""
    from annotator.rounds.step_tasks import GPU_QUEUE
    from config.celery import app as celery_app

    if not celery_app.conf.task_always_eager:
        celery_app.send_task(SAMPLING_TASK, args=[run_id], task_id=task_id, queue=GPU_QUEUE)
        return
    if SAMPLING_TASK not in celery_app.tasks:
        celery_app.loader.import_default_modules()
    celery_app.tasks[SAMPLING_TASK].apply_async(args=[run_id], task_id=task_id, queue=GPU_QUEUE)


def evaluation_step_claim(*, run_id: int, task_id: str, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    claimable = Q(step_owner="") | Q(step_owner=task_id, step_started_at__isnull=True) | _stale(now)
    return (
        EvaluationRun.objects.filter(pk=run_id, state=EvaluationState.SAMPLING).filter(claimable)
        .update(step_owner=task_id, step_started_at=now, step_heartbeat_at=now)
        == 1
    )


def evaluation_step_heartbeat(*, run_id: int, task_id: str, progress: dict | None = None) -> bool:
    """Beat the heartbeat (and store progress); False once another task holds the step."""
    fields = {"step_heartbeat_at": timezone.now()}
    if progress is None:
        return EvaluationRun.objects.filter(pk=run_id, step_owner=task_id).update(**fields) == 1
    with transaction.atomic():
        run = EvaluationRun.objects.select_for_update().filter(pk=run_id, step_owner=task_id).first()
        if run is None:
            return False
        run.step_heartbeat_at = fields["step_heartbeat_at"]
        run.metrics = {**run.metrics, "progress": progress}
        run.save(update_fields=["step_heartbeat_at", "metrics"])
    return True


@transaction.atomic
def evaluation_step_fail(*, run_id: int, task_id: str, error: str) -> bool:
    run = EvaluationRun.objects.select_for_update().filter(pk=run_id, step_owner=task_id).first()
    if run is None:
        return False
    run.state, run.error = EvaluationState.FAILED, error[:10_000]
    run.step_owner, run.step_started_at, run.step_heartbeat_at = "", None, None
    run.metrics = {k: v for k, v in run.metrics.items() if k != "progress"}
    run.save(update_fields=["state", "error", "step_owner", "step_started_at", "step_heartbeat_at", "metrics"])
    return True


def evaluation_step_release(*, run_id: int, task_id: str) -> bool:
    return (
        EvaluationRun.objects.filter(pk=run_id, step_owner=task_id)
        .update(step_owner="", step_started_at=None, step_heartbeat_at=None)
        == 1
    )


def evaluation_task_run(*, run_id: int, task_id: str, in_worker: bool) -> str:
    """What the sampling task does: claim the step, check the GPU budget, sample, publish; "done", "skipped",
    "lost" or "failed" (a failure marks the run failed with the error; Ctrl-C gives the step back)."""
    from annotator.evaluation.plan import SAMPLING_STEP
    from annotator.evaluation.sampling import evaluation_publish, evaluation_sample
    from annotator.rounds.lifecycle import Heartbeat
    from annotator.services.budget import gpu_step_check
    from models_rl.device import device_name  # the ML stack loads only where steps run

    if not evaluation_step_claim(run_id=run_id, task_id=task_id):
        logger.info("Evaluation %s: sampling not claimable by task %s.", run_id, task_id)
        return "skipped"
    heartbeat = None
    if in_worker:
        heartbeat = Heartbeat(name=f"evaluation-{run_id}",
                              beat=lambda: evaluation_step_heartbeat(run_id=run_id, task_id=task_id))
    try:
        run = EvaluationRun.objects.select_related("campaign").get(pk=run_id)
        device_type = device_name()
        gpu_step_check(campaign=run.campaign, step=SAMPLING_STEP, device_type=device_type)
        started = time.monotonic()
        samples = evaluation_sample(
            run=run, beat=lambda progress: evaluation_step_heartbeat(run_id=run_id, task_id=task_id, progress=progress)
        )
        published = evaluation_publish(run_id=run_id, task_id=task_id, samples=samples, device_type=device_type,
                                       seconds=time.monotonic() - started)
        return "done" if published else "lost"
    except StepLost:
        logger.warning("Evaluation %s sampling was taken over; task %s stopped.", run_id, task_id)
        return "lost"
    except ServiceError as exc:
        evaluation_step_fail(run_id=run_id, task_id=task_id, error=exc.message)
        return "failed"
    except Exception as exc:
        logger.exception("Evaluation %s sampling failed.", run_id)
        evaluation_step_fail(run_id=run_id, task_id=task_id, error=f"{type(exc).__name__}: {exc}")
        return "failed"
    except BaseException:
        evaluation_step_release(run_id=run_id, task_id=task_id)
        raise
    finally:
        if heartbeat is not None:
            heartbeat.stop()


@transaction.atomic
def evaluation_close(*, run: EvaluationRun, force: bool = False, now: datetime | None = None) -> bool:
    """Finish a labeling run when its items have every answer they want (or `force`: its open items are closed,
    their answers so far kept); True when the run is (now) done. Holds the run row lock."""
    locked = EvaluationRun.objects.select_for_update().filter(pk=run.pk).first()
    if locked is None or locked.state == EvaluationState.DONE:
        return locked is not None
    if locked.state != EvaluationState.LABELING:
        if force:
            raise InvalidInput(f"Evaluation {locked.number} is {locked.get_state_display().lower()}: it has nothing "
                               "to close yet.")
        return False
    left = evaluation_items_unanswered(run=locked)
    if left and not force:
        return False
    locked.items.filter(is_open=True).update(is_open=False)
    locked.state, locked.finished_at = EvaluationState.DONE, now or timezone.now()
    locked.metrics = {**locked.metrics, "closed_with_answers_missing": left}
    locked.save(update_fields=["state", "finished_at", "metrics"])
    return True
