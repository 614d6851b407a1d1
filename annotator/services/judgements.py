"""Accepting a labeler's answer: validate, check the lease, store it once, charge it once.

A judgement for a live lease is always accepted and paid, even when the campaign's budget has since been
reached: its price was reserved when the item was claimed. Answers are never overwritten: a second submit
of the same assignment is refused with 409 and the first answer stands.
"""

from collections.abc import Callable
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.utils import timezone

from annotator.models import (
    Assignment,
    AssignmentStatus,
    Choice,
    Judgement,
    Rating,
    RatingValue,
    TaskKind,
)
from annotator.services.sides import SCREEN_CHOICES, completion_choice
from annotator.services.access import assignment_get_for_labeler, labeler_profile_get
from annotator.services.assignments import comparison_answer_counted_statement
from annotator.services.errors import AlreadySubmitted, InvalidInput, LeaseExpired
from annotator.services.ledger import ledger_charge_item_statement
from annotator.services.pricing import item_price
from annotator.services.rows import pipelined_atomic, writes_run

MAX_RATIONALE_CHARS = 5000
MAX_MILLISECONDS = 24 * 3600 * 1000


def _validate_common(*, rationale: str, milliseconds) -> int:
    if not isinstance(rationale, str):
        raise InvalidInput("rationale must be text.")
    if len(rationale) > MAX_RATIONALE_CHARS:
        raise InvalidInput(f"rationale is longer than {MAX_RATIONALE_CHARS} characters.")
    try:
        ms = int(milliseconds)
    except (TypeError, ValueError):
        raise InvalidInput("milliseconds must be a whole number.") from None
    if isinstance(milliseconds, bool) or ms < 0 or ms > MAX_MILLISECONDS:
        raise InvalidInput(f"milliseconds must be between 0 and {MAX_MILLISECONDS}.")
    return ms


def _claim_for_answer(*, labeler: AbstractBaseUser, assignment_id: int, task_kind: str, now: datetime | None):
    """Lock the labeler's assignment (FOR UPDATE) and its campaign row (FOR SHARE), and check the assignment
    can take an answer now; returns (assignment, now)."""
    assignment = assignment_get_for_labeler(labeler=labeler, assignment_id=assignment_id, lock=True)
    campaign = assignment.comparison.campaign
    if campaign.task_kind != task_kind:
        kind = "a rating" if campaign.task_kind == TaskKind.RATING else "a pairwise judgement"
        raise InvalidInput(f"Assignment {assignment_id} belongs to campaign {campaign.name!r}, which wants {kind}.")
    now = now or timezone.now()  # after the campaign lock: see annotator.services.ledger
    if assignment.status == AssignmentStatus.SUBMITTED:
        raise AlreadySubmitted(
            f"Assignment {assignment_id} was already answered; the first answer stands.", assignment_id=assignment_id
        )
    if assignment.status == AssignmentStatus.EXPIRED or assignment.leased_until <= now:
        raise LeaseExpired(
            f"Your lease on assignment {assignment_id} expired at {assignment.leased_until:%H:%M:%S} UTC and the item "
            "went back to the pool. Nothing was recorded; take the next item.",
            assignment_id=assignment_id,
        )
    return assignment, now


def _store(
    *, answer: Judgement | Rating, assignment: Assignment, milliseconds: int, unit: str, now: datetime
) -> Callable[[], None]:
    """Store the answer, mark the assignment submitted, charge it, and count the answer on its comparison
    (closing it when this was the last one wanted), in one statement on PostgreSQL. Returns `writes_run`'s
    `saved`: call it after the transaction."""
    profile = labeler_profile_get(user=assignment.labeler)
    price = item_price(campaign=assignment.comparison.campaign, profile=profile, milliseconds=milliseconds)
    if price.total > assignment.reserved_amount:
        # Rates raised mid-lease never push an item above what was reserved for it (the cap must hold).
        price = type(price)(
            pay=assignment.reserved_amount - min(price.fee, assignment.reserved_amount),
            fee=min(price.fee, assignment.reserved_amount),
            paid_seconds=price.paid_seconds,
        )
    assignment.status = AssignmentStatus.SUBMITTED
    assignment.submitted_at = now
    return writes_run(
        [answer],
        (
            f"UPDATE {Assignment._meta.db_table} SET status = %s, submitted_at = %s WHERE id = %s",
            [assignment.status, connection.ops.adapt_datetimefield_value(now), assignment.pk],
        ),
        ledger_charge_item_statement(assignment=assignment, price=price, unit=unit),
        comparison_answer_counted_statement(comparison_id=assignment.comparison_id),
    )


def judgement_submit(
    *,
    labeler: AbstractBaseUser,
    assignment_id: int,
    choice: str | None = None,
    screen_choice: str | None = None,
    strength: int = 2,
    rationale: str = "",
    milliseconds: int,
    now: datetime | None = None,
) -> Judgement:
    """Record a pairwise judgement, given exactly one of `choice` (completion a / b / tie / both_bad of the
    comparison) or `screen_choice` (first / second / tie / both_bad, the texts in the order the labeler saw
    them; mapped through the assignment's `swapped`, read under its lock, so the API needs no read of its own).
    """
    if (choice is None) == (screen_choice is None):
        raise InvalidInput("Give either choice or screen_choice.")
    if choice is not None and choice not in Choice.values:
        raise InvalidInput(f"choice must be one of {', '.join(Choice.values)}; got {choice!r}.")
    if screen_choice is not None and screen_choice not in SCREEN_CHOICES:
        raise InvalidInput(f"choice must be one of {', '.join(SCREEN_CHOICES)}; got {screen_choice!r}.")
    if isinstance(strength, bool) or not isinstance(strength, int) or not 1 <= strength <= 3:
        raise InvalidInput(f"strength must be 1, 2 or 3; got {strength!r}.")
    ms = _validate_common(rationale=rationale, milliseconds=milliseconds)
    with pipelined_atomic():  # two round trips: BEGIN + the locked read, then the writes + COMMIT
        assignment, now = _claim_for_answer(
            labeler=labeler, assignment_id=assignment_id, task_kind=TaskKind.PAIRWISE, now=now
        )
        if screen_choice is not None:
            choice = completion_choice(screen_choice=screen_choice, swapped=assignment.swapped)
        judgement = Judgement(
            assignment=assignment, choice=choice, strength=strength, rationale=rationale.strip(), milliseconds=ms
        )
        saved = _store(answer=judgement, assignment=assignment, milliseconds=ms, unit="judgements", now=now)
    saved()
    return judgement


def rating_submit(
    *,
    labeler: AbstractBaseUser,
    assignment_id: int,
    value: str,
    rationale: str = "",
    milliseconds: int,
    now: datetime | None = None,
) -> Rating:
    """Record an absolute rating (positive / neutral / negative) of the assignment's completion."""
    if value not in RatingValue.values:
        raise InvalidInput(f"value must be one of {', '.join(RatingValue.values)}; got {value!r}.")
    ms = _validate_common(rationale=rationale, milliseconds=milliseconds)
    with pipelined_atomic():
        assignment, now = _claim_for_answer(
            labeler=labeler, assignment_id=assignment_id, task_kind=TaskKind.RATING, now=now
        )
        rating = Rating(assignment=assignment, value=value, rationale=rationale.strip(), milliseconds=ms)
        saved = _store(answer=rating, assignment=assignment, milliseconds=ms, unit="ratings", now=now)
    saved()
    return rating
