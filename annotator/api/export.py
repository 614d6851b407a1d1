"""Export lines: judgements in the prompt / chosen / rejected form TRL reads, ties and both-bad kept as flags."""

from collections.abc import Iterator

from annotator.models import Campaign, Choice, Completion, Judgement, Rating, TaskKind
from annotator.selectors.judgements import judgements_for_export, ratings_for_export

EXPORT_CHUNK = 500


def _checkpoint(completion: Completion) -> str | None:
    return completion.checkpoint.label if completion.checkpoint else None


def _common(answer: Judgement | Rating) -> dict:
    assignment = answer.assignment
    comparison = assignment.comparison
    profile = getattr(assignment.labeler, "labeler", None)
    return {
        "prompt": comparison.prompt.text,
        "labeler": assignment.labeler.username,
        "labeler_kind": profile.kind if profile else None,
        "comparison_id": comparison.pk,
        "assignment_id": assignment.pk,
        "round": comparison.round.number if comparison.round else None,
        "purpose": comparison.purpose,
        "rationale": answer.rationale,
        "milliseconds": answer.milliseconds,
        "created_at": answer.created_at.isoformat(),
    }


def judgement_line(judgement: Judgement) -> dict:
    """chosen/rejected follow the choice; for a tie or both-bad they are completions a and b, and a flag says so."""
    comparison = judgement.assignment.comparison
    a, b = comparison.completion_a, comparison.completion_b
    chosen, rejected = (b, a) if judgement.choice == Choice.B else (a, b)
    return {
        **_common(judgement),
        "chosen": chosen.text,
        "rejected": rejected.text,
        "tie": judgement.choice == Choice.TIE,
        "both_bad": judgement.choice == Choice.BOTH_BAD,
        "choice": judgement.choice,
        "strength": judgement.strength,
        "judgement_id": judgement.pk,
        "checkpoint_a": _checkpoint(a),
        "checkpoint_b": _checkpoint(b),
    }


def rating_line(rating: Rating) -> dict:
    completion = rating.assignment.comparison.completion_a
    return {
        **_common(rating),
        "completion": completion.text,
        "rating": rating.value,
        "rating_id": rating.pk,
        "checkpoint": _checkpoint(completion),
    }


def export_lines(*, campaign: Campaign) -> Iterator[dict]:
    """All answers of a campaign, oldest first, read in chunks so a large export never sits in memory."""
    if campaign.task_kind == TaskKind.RATING:
        return (rating_line(r) for r in ratings_for_export(campaign=campaign).iterator(chunk_size=EXPORT_CHUNK))
    return (judgement_line(j) for j in judgements_for_export(campaign=campaign).iterator(chunk_size=EXPORT_CHUNK))
