"""Reads about rounds: the latest round, its labeling progress, its checkpoints, samples and spend.

Queries only: models and the step order (states), nothing that writes."""

from collections import defaultdict
from decimal import Decimal

from django.db.models import Case, CharField, Count, F, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Coalesce

from annotator.models import (
    Assignment,
    AssignmentStatus,
    Campaign,
    Choice,
    Comparison,
    ComparisonPurpose,
    Completion,
    Judgement,
    LedgerCategory,
    LedgerEntry,
    PolicyCheckpoint,
    PromptSplit,
    Rating,
    RewardModel,
    Round,
    RoundState,
)
from annotator.rounds.states import STEPS

BASE_LABEL = "base"
FINAL_LABEL = "final"


def round_latest(*, campaign: Campaign) -> Round | None:
    return Round.objects.filter(campaign=campaign).order_by("-number").first()


def round_get(*, campaign: Campaign, number: int) -> Round | None:
    return Round.objects.select_related("campaign").filter(campaign=campaign, number=number).first()


def rounds_for_campaign(*, campaign: Campaign) -> QuerySet[Round]:
    """The campaign's rounds, newest first, with their pairs and judgements counted."""
    return (
        Round.objects.filter(campaign=campaign)
        .annotate(
            pairs=Count("comparisons", distinct=True),
            judgements=Count(
                "comparisons__assignments",
                filter=Q(comparisons__assignments__status=AssignmentStatus.SUBMITTED),
                distinct=True,
            ),
        )
        .order_by("-number")
    )


def round_labeling_counts(*, round_: Round) -> tuple[int, int]:
    """(judgements submitted, judgements wanted) over the round's comparisons."""
    submitted = Assignment.objects.filter(comparison__round=round_, status=AssignmentStatus.SUBMITTED).count()
    wanted = Comparison.objects.filter(round=round_).aggregate(n=Coalesce(Sum("judgements_wanted"), 0))["n"]
    return submitted, wanted


def campaign_base_checkpoint(*, campaign: Campaign) -> PolicyCheckpoint | None:
    return PolicyCheckpoint.objects.filter(campaign=campaign, label=BASE_LABEL).order_by("pk").first()


def round_policy_checkpoint(*, round_: Round) -> PolicyCheckpoint | None:
    """The policy a round produced: its final checkpoint (round 0: the base policy)."""
    label = FINAL_LABEL if round_.number > 0 else BASE_LABEL
    return PolicyCheckpoint.objects.filter(round=round_, label=label).first()


def policy_checkpoint_before(*, campaign: Campaign, number: int) -> PolicyCheckpoint | None:
    """The newest policy of the rounds before round `number`: where round `number` starts from."""
    return (
        PolicyCheckpoint.objects.filter(campaign=campaign, round__number__lt=number)
        .filter(Q(label=FINAL_LABEL) | Q(label=BASE_LABEL, round__number=0))
        .order_by("-round__number")
        .first()
    )


def round_checkpoints(*, round_: Round) -> QuerySet[PolicyCheckpoint]:
    """The checkpoints a round made (round 0: the base policy), by KL from the base."""
    return PolicyCheckpoint.objects.filter(round=round_).order_by("kl_from_base", "pk")


def campaign_checkpoints(*, campaign: Campaign) -> QuerySet[PolicyCheckpoint]:
    return PolicyCheckpoint.objects.filter(campaign=campaign).select_related("round").order_by("round__number", "kl_from_base", "pk")


def round_reward_model(*, round_: Round) -> RewardModel | None:
    return RewardModel.objects.filter(round=round_).order_by("-pk").first()


def judgements_for_training(*, campaign: Campaign, before_number: int) -> QuerySet[Judgement]:
    """Every judgement of the campaign on comparisons of rounds before `before_number` (or of no round),
    with the texts the export needs, in a stable order. Never an evaluation's battles: they are on held-out
    prompts, and a reward model that learnt from them would be judged on its own training data."""
    return (
        Judgement.objects.filter(assignment__comparison__campaign=campaign, assignment__comparison__completion_b__isnull=False)
        .exclude(assignment__comparison__purpose=ComparisonPurpose.EVALUATION)
        .filter(Q(assignment__comparison__round__isnull=True) | Q(assignment__comparison__round__number__lt=before_number))
        .select_related(
            "assignment__comparison__prompt",
            "assignment__comparison__completion_a",
            "assignment__comparison__completion_b",
        )
        .order_by("pk")
    )


def ratings_for_training(*, campaign: Campaign, before_number: int) -> QuerySet[Rating]:
    """Every rating of the campaign's single completions (items with no `completion_b`) of rounds before
    `before_number` (or of no round), with their texts, in a stable order. Never an evaluation's blind ratings,
    for the reason `judgements_for_training` gives."""
    return (
        Rating.objects.filter(assignment__comparison__campaign=campaign, assignment__comparison__completion_b__isnull=True)
        .exclude(assignment__comparison__purpose=ComparisonPurpose.EVALUATION)
        .filter(Q(assignment__comparison__round__isnull=True) | Q(assignment__comparison__round__number__lt=before_number))
        .select_related("assignment__comparison__prompt", "assignment__comparison__completion_a")
        .order_by("pk")
    )


def round_spend(*, round_: Round) -> dict:
    """Money and GPU time charged to the round, from the ledger."""
    totals = LedgerEntry.objects.filter(round=round_).aggregate(
        labeling=Coalesce(Sum("amount", filter=~Q(category=LedgerCategory.GPU)), Decimal(0)),
        gpu_money=Coalesce(Sum("amount", filter=Q(category=LedgerCategory.GPU)), Decimal(0)),
        gpu_seconds=Coalesce(Sum("quantity", filter=Q(category=LedgerCategory.GPU)), Decimal(0)),
    )
    return {**totals, "total": totals["labeling"] + totals["gpu_money"]}


def round_samples_side_by_side(*, round_: Round, prompts: int = 6) -> tuple[list[PolicyCheckpoint], list[dict]]:
    """Held-out prompts with one sample from each of the round's checkpoints (and the round's starting
    policy, for contrast): (checkpoints, rows of {"prompt", "texts": [text or "" per checkpoint]})."""
    checkpoints = list(round_checkpoints(round_=round_))
    start = policy_checkpoint_before(campaign=round_.campaign, number=round_.number) if round_.number > 0 else None
    if start is not None:
        checkpoints.insert(0, start)
    completions = (
        Completion.objects.filter(checkpoint__in=checkpoints, prompt__split=PromptSplit.HELDOUT)
        .select_related("prompt")
        .order_by("prompt_id", "pk")
    )
    by_prompt: dict[int, dict] = {}
    texts: dict[tuple[int, int], str] = {}
    for completion in completions:
        by_prompt.setdefault(completion.prompt_id, {"prompt": completion.prompt.text})
        texts.setdefault((completion.prompt_id, completion.checkpoint_id), completion.text)
    rows = []
    for prompt_id, row in list(by_prompt.items())[:prompts]:
        rows.append({**row, "texts": [texts.get((prompt_id, checkpoint.pk), "") for checkpoint in checkpoints]})
    return checkpoints, rows


def campaign_reward_kl_points(*, campaign: Campaign) -> list[dict]:
    """(sqrt KL, gold reward) of every checkpoint that has a measured gold reward, by round."""
    points = []
    for checkpoint in campaign_checkpoints(campaign=campaign):
        reward = checkpoint.metrics.get("eval/gold_reward")
        if reward is None:
            continue
        kl = max(checkpoint.kl_from_base or 0.0, 0.0)
        points.append({
            "round": checkpoint.round.number if checkpoint.round else None,
            "label": checkpoint.label,
            "sqrt_kl": kl ** 0.5,
            "reward": float(reward),
        })
    return points


def round_comparison_counts(*, round_: Round) -> dict[str, int]:
    counts = defaultdict(int)
    for purpose, n in Comparison.objects.filter(round=round_).values_list("purpose").annotate(n=Count("pk")):
        counts[purpose] = n
    return dict(counts)


def round_reward_model_accuracy(*, round_: Round) -> dict[str, dict]:
    """How often the labelers' judgements of the round's pairs agree with the reward model that chose them (its
    scores stored on the completions when the pairs were selected, before it saw these labels), apart for the
    random control pairs (purpose eval) and the pairs chosen by acquisition (purpose train): if acquisition picks
    pairs the model finds hard, its accuracy on them is lower. Per judgement; ties, both-bad and equal scores are
    left out. {purpose: {"agreed", "judged", "accuracy"}} for the purposes with judged pairs."""
    a_score, b_score = "assignment__comparison__completion_a__reward_score", "assignment__comparison__completion_b__reward_score"
    counts = (
        Judgement.objects.filter(
            assignment__comparison__round=round_,
            assignment__comparison__purpose__in=[ComparisonPurpose.CONTROL, ComparisonPurpose.TRAIN],
            choice__in=[Choice.A, Choice.B], **{f"{a_score}__isnull": False, f"{b_score}__isnull": False},
        )
        .annotate(predicted=Case(
            When(**{f"{a_score}__gt": F(b_score)}, then=Value(Choice.A.value)),
            When(**{f"{a_score}__lt": F(b_score)}, then=Value(Choice.B.value)),
            output_field=CharField(),
        ))
        .filter(predicted__isnull=False)
        .values("assignment__comparison__purpose")
        .annotate(judged=Count("pk"), agreed=Count("pk", filter=Q(predicted=F("choice"))))
    )
    return {
        row["assignment__comparison__purpose"]: {
            "agreed": row["agreed"], "judged": row["judged"], "accuracy": row["agreed"] / row["judged"],
        }
        for row in counts
    }


def round_is_active(round_: Round) -> bool:
    return round_.state not in (RoundState.DONE, RoundState.FAILED, RoundState.LABELING)


def round_summary(*, round_: Round) -> dict:
    """What a round did, for run_round's closing table and the round pages."""
    reward_model = round_reward_model(round_=round_)
    submitted, wanted = round_labeling_counts(round_=round_)
    training = round_.metrics.get(RoundState.TRAINING_REWARD, {})
    return {
        "round": round_,
        "judgements_used": training.get("data/judgements"),
        # A rating campaign's reward model learns from rated completions rather than pairs.
        "train_pairs": training.get("data/train_pairs", training.get("data/train_ratings")),
        "heldout_pairs": training.get("data/heldout_pairs", training.get("data/heldout_ratings")),
        "reward_model": reward_model,
        "checkpoints": list(round_checkpoints(round_=round_)),
        "pairs": round_comparison_counts(round_=round_),
        "labels_submitted": submitted,
        "labels_wanted": wanted,
        "spend": round_spend(round_=round_),
        "reward_model_accuracy": round_reward_model_accuracy(round_=round_),
    }


def round_step_states(*, round_: Round) -> list[dict]:
    """Each step of the round with its status: done, skipped, failed, running, queued, labeling or pending."""
    recorded = round_.metrics.get("steps", {})
    failed_step = round_.metrics.get("failed_step") if round_.state == RoundState.FAILED else None
    progress = round_.metrics.get("progress") or {}
    states = []
    for step in STEPS:
        status = recorded.get(step, {}).get("status", "pending")
        info = {"name": step, "label": RoundState(step).label, "status": status,
                "seconds": recorded.get(step, {}).get("seconds")}
        if step == failed_step:
            info["status"] = "failed"
        elif step == round_.state and status != "done":
            if step == RoundState.LABELING:
                info["status"] = "labeling"
            else:
                info["status"] = "running" if round_.step_started_at else "queued"
                if progress.get("total"):
                    info["progress"] = {**progress, "percent": round(100 * progress["done"] / progress["total"])}
        states.append(info)
    return states
