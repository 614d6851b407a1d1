"""Reads about evaluation: checkpoint names, the default selection, the battles and ratings answered so far, runs
with their progress, and the latest leaderboard snapshot. Queries only."""

from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery, Sum

from annotator.models import (
    AssignmentStatus,
    Campaign,
    Comparison,
    ComparisonPurpose,
    EvaluationRun,
    Judgement,
    LeaderboardSnapshot,
    PolicyCheckpoint,
    Rating,
)
from annotator.rounds.selectors import BASE_LABEL, FINAL_LABEL


def checkpoint_name(checkpoint: PolicyCheckpoint) -> str:
    """How staff pages name a checkpoint: "base", "round 2" (its final policy) or "round 2 kl_1"."""
    if checkpoint.label == BASE_LABEL:
        return BASE_LABEL
    number = checkpoint.round.number if checkpoint.round_id else "?"
    return f"round {number}" if checkpoint.label == FINAL_LABEL else f"round {number} {checkpoint.label}"


def campaign_checkpoint_list(*, campaign: Campaign) -> list[PolicyCheckpoint]:
    """Every checkpoint of the campaign: the base first, then by round and KL."""
    rows = list(PolicyCheckpoint.objects.filter(campaign=campaign).select_related("round"))
    return sorted(rows, key=lambda c: (c.label != BASE_LABEL, c.round.number if c.round_id else -1, c.kl_from_base or 0.0, c.pk))


def default_evaluation_checkpoints(*, campaign: Campaign) -> list[PolicyCheckpoint]:
    """The base, every round's final policy, and the KL checkpoints of the newest round that has any."""
    rows = campaign_checkpoint_list(campaign=campaign)
    kl_rounds = [c.round.number for c in rows if c.label not in (BASE_LABEL, FINAL_LABEL) and c.round_id]
    newest = max(kl_rounds, default=None)
    return [c for c in rows if c.label in (BASE_LABEL, FINAL_LABEL) or (c.round_id and c.round.number == newest)]


def base_checkpoint(*, campaign: Campaign) -> PolicyCheckpoint | None:
    return PolicyCheckpoint.objects.filter(campaign=campaign, label=BASE_LABEL).order_by("pk").first()


@dataclass(frozen=True)
class BattleRow:
    """One answered battle: checkpoint ids of completions A and B, the stored choice, the completions' lengths."""

    checkpoint_a: int
    checkpoint_b: int
    choice: str
    length_a: int
    length_b: int


def evaluation_battles(*, campaign: Campaign) -> list[BattleRow]:
    """Every judgement on the campaign's evaluation battles, oldest first (choices refer to completions A and B)."""
    rows = (
        Judgement.objects.filter(
            assignment__comparison__campaign=campaign, assignment__comparison__purpose=ComparisonPurpose.EVALUATION,
            assignment__comparison__completion_b__isnull=False,
        )
        .order_by("pk")
        .values_list(
            "assignment__comparison__completion_a__checkpoint_id", "assignment__comparison__completion_b__checkpoint_id",
            "choice", "assignment__comparison__completion_a__text", "assignment__comparison__completion_b__text",
        )
    )
    return [BattleRow(a, b, choice, len(text_a), len(text_b)) for a, b, choice, text_a, text_b in rows]


def evaluation_ratings(*, campaign: Campaign) -> dict[int, list[str]]:
    """The blind ratings given so far, per checkpoint id."""
    ratings: dict[int, list[str]] = defaultdict(list)
    rows = (
        Rating.objects.filter(
            assignment__comparison__campaign=campaign, assignment__comparison__purpose=ComparisonPurpose.EVALUATION
        )
        .order_by("pk")
        .values_list("assignment__comparison__completion_a__checkpoint_id", "value")
    )
    for checkpoint_id, value in rows:
        ratings[checkpoint_id].append(value)
    return dict(ratings)


def evaluation_answer_count(*, campaign: Campaign) -> int:
    """Answers (judgements and ratings) on the campaign's evaluation items: what a snapshot is computed from."""
    judged = Judgement.objects.filter(
        assignment__comparison__campaign=campaign, assignment__comparison__purpose=ComparisonPurpose.EVALUATION
    ).count()
    rated = Rating.objects.filter(
        assignment__comparison__campaign=campaign, assignment__comparison__purpose=ComparisonPurpose.EVALUATION
    ).count()
    return judged + rated


def evaluation_runs_for_campaign(*, campaign: Campaign) -> QuerySet[EvaluationRun]:
    """The campaign's runs, newest first, with their items and answers counted."""
    return (
        EvaluationRun.objects.filter(campaign=campaign)
        .annotate(
            item_count=Count("items", distinct=True),
            open_items=Count("items", filter=Q(items__is_open=True), distinct=True),
            battle_count=Count("items", filter=Q(items__completion_b__isnull=False), distinct=True),
            # A subquery: summed over the same join as the assignments it would count each item once per lease.
            answers_wanted=Subquery(
                Comparison.objects.filter(evaluation=OuterRef("pk")).values("evaluation")
                .annotate(total=Sum("judgements_wanted")).values("total")
            ),
            answers_in=Count("items__assignments", filter=Q(items__assignments__status=AssignmentStatus.SUBMITTED),
                             distinct=True),
        )
        .prefetch_related("checkpoints__round", "rated_checkpoints__round")
        .order_by("-number")
    )


def evaluation_run_get(*, campaign: Campaign, number: int) -> EvaluationRun | None:
    return EvaluationRun.objects.filter(campaign=campaign, number=number).first()


def evaluation_items_unanswered(*, run: EvaluationRun) -> int:
    """Answers the run's open items still want (live leases count as not yet answered)."""
    left = run.items.filter(is_open=True).aggregate(
        left=Sum(F("judgements_wanted") - F("judgements_received"))
    )["left"]
    return int(left or 0)


def leaderboard_latest(*, campaign: Campaign) -> LeaderboardSnapshot | None:
    return LeaderboardSnapshot.objects.filter(campaign=campaign).order_by("-pk").first()
