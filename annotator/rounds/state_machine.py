"""The round state machine, and who may run a round's current step.

A round goes training_reward -> optimizing -> sampling -> selecting -> labeling -> done (annotator.rounds.states).
Every step but labeling is run by one Celery task, sent by name (annotator.rounds.step_tasks):
- `round_dispatch` hands the current step to a new task id (`step_owner`) and enqueues it after commit;
- the task claims the step with a compare-and-set on the round row (`round_step_claim`): state is the step
  and the step is unowned, awaits exactly this task, or its owner's heartbeat is stale (a dead worker);
- the slow work runs outside any transaction, beating the heartbeat (`round_step_progress`,
  `round_step_heartbeat`; annotator.rounds.lifecycle drives this);
- `round_step_finish` stores the results and moves the round on in ONE transaction that re-checks the owner,
  so a step is finished at most once and a finished step is never run again. Results are keyed by round and
  step (artifact folders, paths unique per campaign), so a redone step overwrites rather than duplicates.
A failing step sets the round to failed with the error; `round_start` resumes it at that step.

Lock order, everywhere: the campaign row, then the round row.
"""

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from annotator.core.errors import InvalidInput
from annotator.models import Campaign, Comparison, Prompt, PromptSplit, Round, RoundState
from annotator.rounds.selectors import round_labeling_counts, round_latest
from annotator.rounds.settings import campaign_task_kind_check, round_settings, step_stale_seconds
from annotator.rounds.states import STEPS, TASK_STEPS, round_next_state, round_step_needs_gpu, round_steps_of
from annotator.rounds.step_tasks import step_enqueue
from annotator.rounds.unconditional import unconditional_prompts_ensure
from annotator.services.budget import gpu_usage_charge

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------------------------
# Starting, resuming, dispatching


def _prompts_check(*, campaign: Campaign) -> None:
    """A round samples the campaign's own prompts: none is an error to fix, not a cue to use some other text. An
    unconditional campaign needs none: it gets its empty prompt slots here (annotator.rounds.unconditional)."""
    if campaign.unconditional:
        unconditional_prompts_ensure(campaign=campaign)
        return
    if not Prompt.objects.filter(campaign=campaign, split=PromptSplit.TRAIN).exists():
        raise InvalidInput(
            f"{campaign.name!r} has no train prompts to sample from. Add some first, e.g. openings of lines from "
            f"Shakespeare's plays: python manage.py campaign_prompts --campaign {campaign.name} --plays"
        )


@transaction.atomic
def round_start(*, campaign: Campaign, final: bool = False, now: datetime | None = None) -> Round:
    """Start the campaign's next round, or resume the current one, and dispatch its step.

    - no round yet, or the last one done: a new round (round 0 starts at sampling); with `final`, a final
      round, which trains on every label so far and publishes no pairs (refused for round 0, which has no
      labels, and right after another final round, which already trained on them all);
    - the last one failed: it goes back to the step that failed;
    - the last one labeling: it is closed when its labels are all in, and the next one starts; otherwise
      InvalidInput says how many labels are missing;
    - the last one running a step: nothing changes, except that a step whose task died is dispatched again.
    Resuming never changes what kind of round it is: `final` must match the round being resumed.
    Holds the campaign row lock (`FOR UPDATE`) so two starts cannot make two rounds.
    """
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    round_settings(campaign=campaign)  # bad settings are refused before anything starts
    campaign_task_kind_check(campaign=campaign)
    now = now or timezone.now()
    latest = round_latest(campaign=campaign)
    if latest is not None and latest.state == RoundState.LABELING:
        if not round_labeling_close(round_=latest, now=now):
            submitted, wanted = round_labeling_counts(round_=latest)
            raise InvalidInput(
                f"Round {latest.number} of {campaign.name!r} is still labeling: {submitted} of {wanted} judgements are "
                "in. Wait for them (run_round --wait), or close the round's labeling first."
            )
        latest.refresh_from_db()
    if latest is None or latest.state == RoundState.DONE:
        _prompts_check(campaign=campaign)
        number = 0 if latest is None else latest.number + 1
        if final and number == 0:
            raise InvalidInput(f"{campaign.name!r} has no labels yet: a final round trains on labels, so run round 0 first.")
        if final and latest.final:
            raise InvalidInput(
                f"Round {latest.number} of {campaign.name!r} was a final round and already trained on every label. "
                "Run an ordinary round to buy more labels first."
            )
        latest = Round(campaign=campaign, number=number, final=final)
        steps = round_steps_of(latest)
        latest.state = steps[0]
        latest.metrics = {"steps": {step: {"status": "skipped"} for step in STEPS if step not in steps}}
        latest.save()
    elif latest.final != final:
        kind = "a final round" if latest.final else "an ordinary round"
        raise InvalidInput(
            f"Round {latest.number} of {campaign.name!r} is {kind} and has not finished: resume it as it is "
            f"({'with' if latest.final else 'without'} final), then start the next."
        )
    elif latest.state == RoundState.FAILED:
        failed_step = latest.metrics.get("failed_step") or round_steps_of(latest)[0]
        latest.metrics.setdefault("errors", []).append({"step": failed_step, "error": latest.error, "at": now.isoformat()})
        latest.state, latest.error = failed_step, ""
        latest.step_owner, latest.step_started_at, latest.step_heartbeat_at = "", None, None
        latest.save(update_fields=["state", "error", "metrics", "step_owner", "step_started_at", "step_heartbeat_at"])
    round_dispatch(round_id=latest.pk, now=now)
    return latest


def _free_or_stale(now: datetime) -> Q:
    return Q(step_owner="") | Q(step_heartbeat_at__lt=now - timedelta(seconds=step_stale_seconds()))


@transaction.atomic
def round_dispatch(*, round_id: int, now: datetime | None = None) -> str | None:
    """Give the round's current step to a new task and enqueue it after commit; its task id, or None when the
    step needs no task (labeling, done, failed) or a live task holds or awaits it.

    Compare-and-set under the round row lock: only a step with no owner, or whose owner's heartbeat is stale,
    is dispatched, so calling this again and again (run_round polls it) sends one task per live step.
    """
    now = now or timezone.now()
    round_ = (
        Round.objects.select_for_update()
        .filter(pk=round_id, state__in=TASK_STEPS)
        .filter(_free_or_stale(now))
        .first()
    )
    if round_ is None:
        return None
    task_id = str(uuid.uuid4())
    round_.step_owner, round_.step_started_at, round_.step_heartbeat_at = task_id, None, now
    round_.task_ids = {**round_.task_ids, round_.state: task_id}
    round_.save(update_fields=["step_owner", "step_started_at", "step_heartbeat_at", "task_ids"])
    step = round_.state
    needs_gpu = round_step_needs_gpu(round_=round_, step=step)
    transaction.on_commit(lambda: step_enqueue(round_id=round_id, step=step, task_id=task_id, needs_gpu=needs_gpu))
    return task_id


# ---------------------------------------------------------------------------------------------------------------
# A task's life with its step


def round_step_claim(*, round_id: int, step: str, task_id: str, now: datetime | None = None) -> bool:
    """Claim the step for the task: compare-and-set on the round row. False when the round is past the step
    (it finished: a redelivery does nothing) or another live task holds it.

    Claimable: the round is at `step` and the step is unowned, dispatched to this task and not started yet,
    or held by a task whose heartbeat is stale. A second delivery of a running task is refused (started).
    """
    now = now or timezone.now()
    claimable = (
        Q(step_owner="")
        | Q(step_owner=task_id, step_started_at__isnull=True)
        | Q(step_heartbeat_at__lt=now - timedelta(seconds=step_stale_seconds()))
    )
    updated = (
        Round.objects.filter(pk=round_id, state=step)
        .filter(claimable)
        .update(step_owner=task_id, step_started_at=now, step_heartbeat_at=now)
    )
    return updated == 1


@transaction.atomic
def round_step_progress(*, round_id: int, step: str, task_id: str, progress: dict | None = None) -> bool:
    """Beat the step's heartbeat and, when given, store its progress in `metrics["progress"]`.

    False when the task no longer holds the step (it was taken over): the caller should stop its work.
    Holds the round row lock for one short statement pair.
    """
    round_ = Round.objects.select_for_update().filter(pk=round_id, state=step, step_owner=task_id).first()
    if round_ is None:
        return False
    round_.step_heartbeat_at = timezone.now()
    update_fields = ["step_heartbeat_at"]
    if progress is not None:
        round_.metrics = {**round_.metrics, "progress": {"name": step, **progress}}
        update_fields.append("metrics")
    round_.save(update_fields=update_fields)
    return True


def round_step_heartbeat(*, round_id: int, task_id: str) -> bool:
    """Only the heartbeat (from the task's heartbeat thread): one UPDATE, no lock held beyond it."""
    return Round.objects.filter(pk=round_id, step_owner=task_id).update(step_heartbeat_at=timezone.now()) == 1


@dataclass(frozen=True)
class StepRun:
    """How a step's work ran: where, and for how long (charged as GPU time for GPU steps)."""

    device_type: str
    seconds: float
    charge_gpu: bool


def round_step_finish(
    *, round_id: int, step: str, task_id: str, store: Callable[[Round], dict], run: StepRun
) -> Round | None:
    """Store a step's results and move the round to the next state, once.

    `store(round)` writes the step's rows (keyed by round and step: update_or_create, or rows replaced in
    this transaction) and returns the step's metrics. The GPU time is charged in the same transaction, keyed
    by round and step, so a step is charged once. Returns None, writing nothing, when the task no longer
    holds the step. Holds the campaign row lock and then the round row lock until commit; when the next step
    needs a task it is dispatched after commit.
    """
    with transaction.atomic():
        campaign_id = Round.objects.values_list("campaign_id", flat=True).get(pk=round_id)
        Campaign.objects.select_for_update().get(pk=campaign_id)
        round_ = (
            Round.objects.select_for_update(of=("self",)).select_related("campaign")
            .filter(pk=round_id, state=step, step_owner=task_id).first()
        )
        if round_ is None:
            logger.warning("Round %s lost step %s to another task; results of %s discarded.", round_id, step, task_id)
            return None
        step_metrics = store(round_)
        if run.charge_gpu:
            gpu_usage_charge(
                campaign=round_.campaign, round=round_, step=step, task_ref=f"round-{round_.pk}/{step}",
                device_type=run.device_type, gpu_seconds=Decimal(str(round(run.seconds, 3))),
            )
        now = timezone.now()
        steps = dict(round_.metrics.get("steps", {}))
        steps[step] = {
            "status": "done",
            "started_at": round_.step_started_at.isoformat() if round_.step_started_at else None,
            "finished_at": now.isoformat(),
            "seconds": round(run.seconds, 3),
            "device": run.device_type,
            "task_id": task_id,
        }
        metrics = {key: value for key, value in round_.metrics.items() if key not in ("progress", "failed_step")}
        round_.metrics = {**metrics, "steps": steps, step: step_metrics}
        round_.state = round_next_state(round_=round_, step=step)
        if round_.state == RoundState.DONE:
            round_.finished_at = now
        round_.step_owner, round_.step_started_at, round_.step_heartbeat_at = "", None, None
        round_.save(update_fields=["metrics", "state", "finished_at", "step_owner", "step_started_at", "step_heartbeat_at"])
        round_dispatch(round_id=round_.pk, now=now)
    return round_


@transaction.atomic
def round_step_fail(*, round_id: int, step: str, task_id: str, error: str) -> bool:
    """Mark the round failed at `step` with the error, if the task still holds the step (False otherwise).

    Holds the round row lock. `round_start` resumes the round at this step.
    """
    round_ = Round.objects.select_for_update().filter(pk=round_id, state=step, step_owner=task_id).first()
    if round_ is None:
        return False
    steps = dict(round_.metrics.get("steps", {}))
    steps[step] = {**steps.get(step, {}), "status": "failed", "task_id": task_id}
    metrics = {key: value for key, value in round_.metrics.items() if key != "progress"}
    round_.metrics = {**metrics, "steps": steps, "failed_step": step}
    round_.state, round_.error = RoundState.FAILED, error[:10_000]
    round_.step_owner, round_.step_started_at, round_.step_heartbeat_at = "", None, None
    round_.save(update_fields=["metrics", "state", "error", "step_owner", "step_started_at", "step_heartbeat_at"])
    return True


def round_step_release(*, round_id: int, step: str, task_id: str) -> bool:
    """Give the step back unfinished (Ctrl-C in an in-process run), so a rerun takes it at once."""
    return (
        Round.objects.filter(pk=round_id, state=step, step_owner=task_id)
        .update(step_owner="", step_started_at=None, step_heartbeat_at=None)
        == 1
    )


# ---------------------------------------------------------------------------------------------------------------
# Labeling


@transaction.atomic
def round_labeling_close(*, round_: Round, force: bool = False, now: datetime | None = None) -> bool:
    """Finish the round's labeling when every comparison has the judgements it wants (or `force`), closing
    its comparisons; True when the round is (now) done. Holds the round row lock."""
    locked = Round.objects.select_for_update().filter(pk=round_.pk, state=RoundState.LABELING).first()
    if locked is None:
        return Round.objects.filter(pk=round_.pk, state=RoundState.DONE).exists()
    submitted, wanted = round_labeling_counts(round_=locked)
    if submitted < wanted and not force:
        return False
    now = now or timezone.now()
    Comparison.objects.filter(round=locked, is_open=True).update(is_open=False)
    steps = dict(locked.metrics.get("steps", {}))
    steps[RoundState.LABELING] = {"status": "done", "finished_at": now.isoformat(), "judgements": submitted, "wanted": wanted}
    locked.metrics = {**locked.metrics, "steps": steps}
    locked.state, locked.finished_at = RoundState.DONE, now
    locked.save(update_fields=["metrics", "state", "finished_at"])
    return True
