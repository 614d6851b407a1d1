"""Accepting a labeler's answer: validate, check the lease, store it once, charge it once.

A judgement for a live lease is always accepted and paid, even when the campaign's budget has since been
reached: its price was reserved when the item was claimed. Answers are never overwritten: a second submit
of the same assignment is refused with 409 and the first answer stands.

An answer is two statements. A plain read of the labeler's assignment (nothing locked) gives what prices it:
rates and the reservation. Then one call of the server function `annotator_answer` (annotator/sql/answer.sql)
locks the assignment (`FOR UPDATE`) and its campaign (`FOR SHARE`, see annotator.services.ledger), checks with the
time read after the lock whether the assignment can take the answer, and stores the answer, marks the assignment
submitted, charges it and counts it on its comparison. So the locks are held only while PostgreSQL works. The
refusals are decided there alone; this module words them for people.
"""

from collections.abc import Callable
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection

from annotator.core.errors import AlreadySubmitted, InvalidInput, LeaseExpired, NotFound, ServiceError
from annotator.core.pricing import ItemPrice, answer_unit, item_price
from annotator.core.sides import SCREEN_CHOICES, completion_choice
from annotator.models import Assignment, AssignmentStatus, Choice, Judgement, Rating, RatingValue, TaskKind
from annotator.services.access import ApiToken, assignment_get_for_labeler, labeler_profile_get
from annotator.sql.rows import mark_saved

MAX_RATIONALE_CHARS = 5000
MAX_MILLISECONDS = 24 * 3600 * 1000

# Why `annotator_answer` refused an answer.
WRONG_KIND = "wrong_kind"
ALREADY_SUBMITTED = "already_submitted"
LEASE_EXPIRED = "lease_expired"
NOT_FOUND = "not_found"


def _validate_common(*, rationale: str, milliseconds) -> int:
    if not isinstance(rationale, str):
        raise InvalidInput("rationale must be text.")
    if len(rationale) > MAX_RATIONALE_CHARS:
        raise InvalidInput(f"rationale is longer than {MAX_RATIONALE_CHARS} characters.")
    if "\x00" in rationale:  # PostgreSQL's text cannot hold it: storing one would fail with a 500
        raise InvalidInput("rationale must not contain NUL characters.")
    try:
        ms = int(milliseconds)
    except (TypeError, ValueError):
        raise InvalidInput("milliseconds must be a whole number.") from None
    if isinstance(milliseconds, bool) or ms < 0 or ms > MAX_MILLISECONDS:
        raise InvalidInput(f"milliseconds must be between 0 and {MAX_MILLISECONDS}.")
    return ms


def _refusal(reason: str, *, assignment: Assignment) -> ServiceError:
    if reason == WRONG_KIND:
        kind = "a rating" if assignment.comparison.completion_b_id is None else "a pairwise judgement"
        return InvalidInput(f"Assignment {assignment.pk} is an item that wants {kind}.")
    if reason == ALREADY_SUBMITTED:
        return AlreadySubmitted(
            f"Assignment {assignment.pk} was already answered; the first answer stands.", assignment_id=assignment.pk
        )
    if reason == LEASE_EXPIRED:
        return LeaseExpired(
            f"Your lease on assignment {assignment.pk} expired at {assignment.leased_until:%H:%M:%S} UTC and the "
            "item went back to the pool. Nothing was recorded; take the next item.",
            assignment_id=assignment.pk,
        )
    if reason == NOT_FOUND:
        return NotFound(f"No assignment {assignment.pk} for you.")
    raise ValueError(f"annotator_answer refused with an unknown reason {reason!r}")  # SQL and Python disagree


def _answer_price(*, assignment: Assignment, milliseconds: int) -> ItemPrice:
    """What the answer is paid: the labeler's rate for the time spent, never more than was reserved for the item
    (rates raised mid-lease must not push it past what the cap check counted)."""
    profile = labeler_profile_get(user=assignment.labeler)
    price = item_price(campaign=assignment.comparison.campaign, profile=profile, milliseconds=milliseconds)
    if price.total <= assignment.reserved_amount:
        return price
    fee = min(price.fee, assignment.reserved_amount)
    return ItemPrice(pay=assignment.reserved_amount - fee, fee=fee, paid_seconds=price.paid_seconds)


_ANSWER_CALL = """
    SELECT refused, answer_id, answered_at, stored_at
      FROM annotator_answer(%(assignment)s, %(labeler)s, %(task_kind)s, %(now)s, %(choice)s, %(strength)s,
                            %(value)s, %(rationale)s, %(milliseconds)s, %(pay)s, %(fee)s, %(paid_seconds)s, %(unit)s)"""


def _store(*, answer: Judgement | Rating, assignment: Assignment, task_kind: str, now: datetime | None) -> None:
    """Store, charge and count the answer with `annotator_answer`, which checks the assignment under its locks and
    refuses what it may not store (ServiceErrors worded by `_refusal`)."""
    price = _answer_price(assignment=assignment, milliseconds=answer.milliseconds)
    with connection.cursor() as cursor:
        cursor.execute(_ANSWER_CALL, {
            "assignment": assignment.pk, "labeler": assignment.labeler_id, "task_kind": task_kind, "now": now,
            "choice": getattr(answer, "choice", None), "strength": getattr(answer, "strength", None),
            "value": getattr(answer, "value", None), "rationale": answer.rationale,
            "milliseconds": answer.milliseconds, "pay": price.pay, "fee": price.fee,
            "paid_seconds": price.paid_seconds, "unit": answer_unit(task_kind),
        })
        refused, answer_id, answered_at, stored_at = cursor.fetchone()
    if refused is not None:
        raise _refusal(refused, assignment=assignment)
    answer.created_at = stored_at
    mark_saved(answer, answer_id)
    assignment.status, assignment.submitted_at = AssignmentStatus.SUBMITTED, answered_at


def _answer(
    *,
    labeler: AbstractBaseUser | ApiToken,
    assignment_id: int,
    task_kind: str,
    now: datetime | None,
    answer_for: Callable[[Assignment], Judgement | Rating],
) -> Judgement | Rating:
    """Store, charge and count the answer to the labeler's assignment (refused if it cannot take one)."""
    assignment = assignment_get_for_labeler(labeler=labeler, assignment_id=assignment_id)
    answer = answer_for(assignment)
    _store(answer=answer, assignment=assignment, task_kind=task_kind, now=now)
    return answer


def judgement_submit(
    *,
    labeler: AbstractBaseUser | ApiToken,
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
    them; mapped through the assignment's `swapped`). The labeler may be an unchecked API token (see
    access.ApiToken): the first statement checks it.
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

    def judgement_for(assignment: Assignment) -> Judgement:
        stored = choice if choice is not None else completion_choice(screen_choice=screen_choice,
                                                                      swapped=assignment.swapped)
        return Judgement(
            assignment=assignment, choice=stored, strength=strength, rationale=rationale.strip(), milliseconds=ms
        )

    return _answer(labeler=labeler, assignment_id=assignment_id, task_kind=TaskKind.PAIRWISE, now=now,
                   answer_for=judgement_for)


def rating_submit(
    *,
    labeler: AbstractBaseUser | ApiToken,
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
    return _answer(
        labeler=labeler, assignment_id=assignment_id, task_kind=TaskKind.RATING, now=now,
        answer_for=lambda assignment: Rating(
            assignment=assignment, value=value, rationale=rationale.strip(), milliseconds=ms
        ),
    )
