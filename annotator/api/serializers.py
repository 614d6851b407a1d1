"""Small input and output serializers, one per endpoint. Inputs only check shape; services check meaning."""

from collections.abc import Mapping

from django.utils import timezone
from rest_framework import exceptions, serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.settings import api_settings

from annotator.core.sides import SCREEN_CHOICES, item_kind, screen_choice, screen_texts
from annotator.evaluation.plan import (
    DEFAULT_PROMPTS,
    DEFAULT_RATINGS,
    MAX_CHECKPOINTS,
    MAX_JUDGEMENTS_WANTED,
    MAX_PROMPTS,
    MAX_RATINGS,
)
from annotator.evaluation.selectors import checkpoint_name
from annotator.models import Assignment, Campaign, EvaluationState, RatingValue, TaskKind
from annotator.services.access import MAX_ID
from annotator.services.judgements import MAX_MILLISECONDS, MAX_RATIONALE_CHARS
from annotator.services.sign_in import LOCKED_MESSAGE, sign_in_locked


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="One sentence saying what went wrong and what to do.")
    code = serializers.CharField(help_text="Stable machine name: invalid, not_found, lease_expired, ...")


class TokenRequestSerializer(AuthTokenSerializer):
    """DRF's username and password check, with the fields' rule (not blank) stated so the schema shows it."""

    username = serializers.CharField(min_length=1, write_only=True)
    password = serializers.CharField(
        min_length=1, trim_whitespace=False, write_only=True, style={"input_type": "password"}
    )

    def validate(self, attrs):
        if sign_in_locked(username=attrs["username"]):
            raise exceptions.Throttled(detail=LOCKED_MESSAGE)
        return super().validate(attrs)


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text='Send it as the header "Authorization: Token <token>".')


def _rationale_field():
    return serializers.CharField(required=False, allow_blank=True, default="", max_length=MAX_RATIONALE_CHARS)


def _milliseconds_field():
    return serializers.IntegerField(
        min_value=0, max_value=MAX_MILLISECONDS, help_text="Time the item was on screen, in milliseconds."
    )


class JudgementInputSerializer(serializers.Serializer):
    choice = serializers.ChoiceField(
        choices=SCREEN_CHOICES,
        help_text='"first" or "second" name the texts in the order the next-item answer listed them '
        '(first = left on screen); "tie" and "both_bad" say neither is better.',
    )
    strength = serializers.IntegerField(
        min_value=1, max_value=3, default=2, help_text="1 slightly, 2 clearly, 3 much better."
    )
    rationale = _rationale_field()
    milliseconds = _milliseconds_field()


class RatingInputSerializer(serializers.Serializer):
    value = serializers.ChoiceField(choices=RatingValue.values)
    rationale = _rationale_field()
    milliseconds = _milliseconds_field()


class CampaignSerializer(serializers.ModelSerializer):
    class Meta:
        model = Campaign
        fields = ["name", "title", "task_kind", "instructions", "lease_seconds"]


class NextItemSerializer(serializers.Serializer):
    """An item to answer, texts in screen order."""

    assignment_id = serializers.IntegerField(source="pk")
    campaign = serializers.CharField(source="comparison.campaign.name")
    task_kind = serializers.SerializerMethodField(help_text="pairwise or rating: the item's own kind (a pairwise "
                                                  "campaign may serve rating items).")
    prompt = serializers.CharField(source="comparison.prompt.text")
    first = serializers.SerializerMethodField(help_text="Shown first (left). For a rating item, the text to rate.")
    second = serializers.SerializerMethodField(help_text="Shown second (right); null for a rating item.")
    leased_until = serializers.DateTimeField(help_text="Answer before this instant, or the item goes back to the pool.")

    def get_task_kind(self, assignment: Assignment) -> str:
        return item_kind(assignment.comparison)

    def get_first(self, assignment: Assignment) -> str:
        return screen_texts(assignment)[0]

    def get_second(self, assignment: Assignment) -> str | None:
        return screen_texts(assignment)[1]


# The next-item and submit answers are built by the functions below rather than by instantiating these
# serializers, which document them for the schema: those two calls are the labeling hot path, and a
# serializer instance costs 0.1-0.2 ms (DRF deep-copies its fields every time). Tests check both agree.
def _timestamp(value) -> str:
    """What serializers.DateTimeField writes (ISO 8601 in the current time zone, UTC as "Z"), without a field."""
    text = timezone.localtime(value).isoformat()
    return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text


def next_item_data(assignment: Assignment) -> dict:
    """NextItemSerializer(assignment).data, built directly."""
    first, second = screen_texts(assignment)
    campaign = assignment.comparison.campaign
    return {
        "assignment_id": assignment.pk,
        "campaign": campaign.name,
        "task_kind": item_kind(assignment.comparison),
        "prompt": assignment.comparison.prompt.text,
        "first": first,
        "second": second,
        "leased_until": _timestamp(assignment.leased_until),
    }


def judgement_output_data(judgement) -> dict:
    """JudgementOutputSerializer(judgement).data, built directly."""
    return {
        "judgement_id": judgement.pk,
        "assignment_id": judgement.assignment_id,
        "choice": screen_choice(choice=judgement.choice, swapped=judgement.assignment.swapped),
        "completion_choice": judgement.choice,
        "strength": judgement.strength,
        "created_at": _timestamp(judgement.created_at),
    }


def rating_output_data(rating) -> dict:
    """RatingOutputSerializer(rating).data, built directly."""
    return {
        "rating_id": rating.pk,
        "assignment_id": rating.assignment_id,
        "value": rating.value,
        "created_at": _timestamp(rating.created_at),
    }


class JudgementOutputSerializer(serializers.Serializer):
    judgement_id = serializers.IntegerField(source="pk")
    assignment_id = serializers.IntegerField()
    choice = serializers.SerializerMethodField(help_text="The side as submitted: first / second / tie / both_bad.")
    completion_choice = serializers.CharField(source="choice", help_text="Stored as completion a / b / tie / both_bad.")
    strength = serializers.IntegerField()
    created_at = serializers.DateTimeField()

    def get_choice(self, judgement) -> str:
        return screen_choice(choice=judgement.choice, swapped=judgement.assignment.swapped)


class RatingOutputSerializer(serializers.Serializer):
    rating_id = serializers.IntegerField(source="pk")
    assignment_id = serializers.IntegerField()
    value = serializers.CharField()
    created_at = serializers.DateTimeField()


class HistoryEntrySerializer(NextItemSerializer):
    """One of the labeler's answered items as they saw it, with their answer."""

    leased_until = None
    submitted_at = serializers.DateTimeField()
    choice = serializers.SerializerMethodField(help_text="Pairwise: first / second / tie / both_bad; else null.")
    strength = serializers.SerializerMethodField()
    value = serializers.SerializerMethodField(help_text="Rating: positive / neutral / negative; else null.")
    rationale = serializers.SerializerMethodField()
    milliseconds = serializers.SerializerMethodField()

    def _answer(self, assignment: Assignment):
        return getattr(assignment, "judgement", None) or assignment.rating

    def get_choice(self, assignment: Assignment) -> str | None:
        judgement = getattr(assignment, "judgement", None)
        return screen_choice(choice=judgement.choice, swapped=assignment.swapped) if judgement else None

    def get_strength(self, assignment: Assignment) -> int | None:
        judgement = getattr(assignment, "judgement", None)
        return judgement.strength if judgement else None

    def get_value(self, assignment: Assignment) -> str | None:
        rating = getattr(assignment, "rating", None)
        return rating.value if rating else None

    def get_rationale(self, assignment: Assignment) -> str:
        return self._answer(assignment).rationale

    def get_milliseconds(self, assignment: Assignment) -> int:
        return self._answer(assignment).milliseconds


class ProgressSerializer(serializers.Serializer):
    done_today = serializers.IntegerField()
    done_total = serializers.IntegerField()
    remaining = serializers.IntegerField()
    available_to_me = serializers.IntegerField()


class MoneySerializer(serializers.Serializer):
    currency = serializers.CharField()
    budget = serializers.DecimalField(max_digits=14, decimal_places=4, allow_null=True)
    spent = serializers.DecimalField(max_digits=14, decimal_places=4)
    reserved = serializers.DecimalField(max_digits=14, decimal_places=4)


class CampaignStatsSerializer(serializers.Serializer):
    campaign = serializers.CharField()
    task_kind = serializers.ChoiceField(choices=TaskKind.choices)
    is_active = serializers.BooleanField()
    items = serializers.IntegerField()
    open_items = serializers.IntegerField()
    remaining_slots = serializers.IntegerField(help_text="Judgements still wanted on open items, beyond live leases.")
    answers = serializers.IntegerField()
    live_leases = serializers.IntegerField()
    labelers = serializers.IntegerField(help_text="Labelers with at least one answer.")
    choices = serializers.DictField(child=serializers.IntegerField(), help_text="Judgements per stored choice a/b/tie/both_bad.")
    ratings = serializers.DictField(child=serializers.IntegerField())
    gold_answered = serializers.IntegerField()
    gold_agreement = serializers.FloatField(allow_null=True, help_text="Share of gold items answered as known.")
    money = MoneySerializer(allow_null=True, help_text="Staff only; null for labelers.")
    me = ProgressSerializer(allow_null=True, help_text="Your own progress, when you label in this campaign.")


# --- evaluation (staff) -----------------------------------------------------------------------------------------

def _checkpoint_ids_field(help_text: str):
    return serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID), required=False, max_length=MAX_CHECKPOINTS,
        help_text=help_text,
    )


class EvaluationStartInputSerializer(serializers.Serializer):
    """The shape of a start request; `evaluation_plan` checks what it asks for (the checkpoints are the campaign's,
    the prompts held out, the budget enough). A key it does not know is refused, so a misspelt `dry_run` never
    starts a run."""

    checkpoints = _checkpoint_ids_field(
        "Checkpoint ids of this campaign, at least two. Default: the base, every round's final policy and the "
        "newest round's KL checkpoints."
    )
    prompts = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_PROMPTS,
        help_text=f"Held-out prompts to sample on. Default: {DEFAULT_PROMPTS}, or all when there are fewer.",
    )
    ratings_per_checkpoint = serializers.IntegerField(
        default=DEFAULT_RATINGS, min_value=0, max_value=MAX_RATINGS,
        help_text="Blind ratings of each rated checkpoint; 0 for none.",
    )
    rated_checkpoints = _checkpoint_ids_field(
        "Which of `checkpoints` to rate blindly. Default: the base and the newest final policy."
    )
    judgements_wanted = serializers.IntegerField(
        default=1, min_value=1, max_value=MAX_JUDGEMENTS_WANTED, help_text="Answers wanted per item."
    )
    dry_run = serializers.BooleanField(
        default=False, help_text="true: answer the plan's figures and cost, and start nothing."
    )

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(str(key) for key in data if key not in self.fields and key != "csrfmiddlewaretoken")
            if unknown:
                raise exceptions.ValidationError(
                    {api_settings.NON_FIELD_ERRORS_KEY: [f"Unknown field {', '.join(map(repr, unknown))}; "
                                                         f"the fields are {', '.join(self.fields)}."]}
                )
        return super().to_internal_value(data)

    def plan_arguments(self, fields: dict) -> dict:
        """The checked fields as `evaluation_plan`'s keyword arguments (absent lists and prompts: its defaults)."""
        return {
            "checkpoint_ids": fields.get("checkpoints"),
            "prompts": fields.get("prompts"),
            "ratings_per_checkpoint": fields["ratings_per_checkpoint"],
            "rated_checkpoint_ids": fields.get("rated_checkpoints"),
            "judgements_wanted": fields["judgements_wanted"],
        }


class CheckpointRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    name = serializers.SerializerMethodField(help_text='"base", "round 2" (its final policy) or "round 2 kl_1".')
    kl = serializers.FloatField(source="kl_from_base", allow_null=True, help_text="KL divergence from the base.")

    def get_name(self, checkpoint) -> str:
        return checkpoint_name(checkpoint)


class EvaluationPlanSerializer(serializers.Serializer):
    """What a run would evaluate and cost (a dry run's answer); money as decimal strings."""

    dry_run = serializers.SerializerMethodField()
    checkpoints = CheckpointRefSerializer(many=True)
    rated = CheckpointRefSerializer(many=True, help_text="The checkpoints rated blindly.")
    prompts = serializers.SerializerMethodField(help_text="Held-out prompts sampled.")
    prompt_ids = serializers.ListField(child=serializers.IntegerField())
    ratings_per_checkpoint = serializers.IntegerField()
    judgements_wanted = serializers.IntegerField()
    pairs = serializers.IntegerField()
    battles = serializers.IntegerField(help_text="Every pair of checkpoints on every prompt.")
    ratings = serializers.IntegerField()
    answers = serializers.IntegerField(help_text="(battles + ratings) x judgements_wanted.")
    labeling_cost = serializers.CharField()
    gpu_seconds = serializers.CharField(help_text="The sampling step's estimate, from earlier runs.")
    gpu_cost = serializers.CharField()
    total_cost = serializers.CharField()
    currency = serializers.CharField(source="campaign.currency")
    device_type = serializers.CharField()
    description = serializers.CharField(source="describe", help_text="The plan in words, one line per figure.")

    def get_dry_run(self, plan) -> bool:
        return True

    def get_prompts(self, plan) -> int:
        return len(plan.prompt_ids)


class EvaluationRunSerializer(serializers.Serializer):
    """A run as `evaluation_runs_for_campaign` reads it (with its items and answers counted). Battles and ratings
    are the published items once sampling is done, the plan's figures before; money as decimal strings."""

    number = serializers.IntegerField()
    state = serializers.ChoiceField(choices=EvaluationState.choices)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    checkpoints = CheckpointRefSerializer(source="checkpoints.all", many=True)
    rated = CheckpointRefSerializer(source="rated_checkpoints.all", many=True, help_text="Rated blindly.")
    prompts = serializers.SerializerMethodField(help_text="Held-out prompts sampled.")
    ratings_per_checkpoint = serializers.IntegerField()
    judgements_wanted = serializers.IntegerField(help_text="Answers wanted per item.")
    battles = serializers.SerializerMethodField()
    ratings = serializers.SerializerMethodField()
    items = serializers.IntegerField(source="item_count", help_text="Published items (0 while sampling).")
    open_items = serializers.IntegerField()
    answers_wanted = serializers.SerializerMethodField()
    answers_in = serializers.IntegerField()
    labeling_cost = serializers.SerializerMethodField(help_text="The plan's labeling cost.")
    gpu_cost_estimate = serializers.SerializerMethodField(help_text="The plan's sampling estimate.")
    progress = serializers.SerializerMethodField(help_text="While sampling: {done, total} samples; else null.")
    error = serializers.SerializerMethodField(help_text="Why sampling failed; null unless the run failed.")

    def _plan(self, run) -> dict:
        return run.metrics.get("plan", {})

    def get_prompts(self, run) -> int:
        return len(run.prompt_ids)

    def get_battles(self, run) -> int:
        return run.battle_count if run.item_count else self._plan(run).get("battles", 0)

    def get_ratings(self, run) -> int:
        return run.item_count - run.battle_count if run.item_count else self._plan(run).get("ratings", 0)

    def get_answers_wanted(self, run) -> int:
        return (run.answers_wanted or 0) if run.item_count else self._plan(run).get("answers", 0)

    def get_labeling_cost(self, run) -> str | None:
        return self._plan(run).get("labeling_cost")

    def get_gpu_cost_estimate(self, run) -> str | None:
        return self._plan(run).get("gpu_cost_estimate")

    def get_progress(self, run) -> dict[str, int] | None:
        return run.metrics.get("progress") if run.state == EvaluationState.SAMPLING else None

    def get_error(self, run) -> str | None:
        return run.error or None if run.state == EvaluationState.FAILED else None


class StandingSerializer(serializers.Serializer):
    """One checkpoint's row; ratings on the 400 x log10 scale with the base at 1000, 95 % bootstrap intervals."""

    model = serializers.CharField(help_text="The checkpoint id, as text.")
    checkpoint_id = serializers.IntegerField()
    name = serializers.CharField()
    kl = serializers.FloatField(allow_null=True)
    rating = serializers.FloatField()
    rating_low = serializers.FloatField()
    rating_high = serializers.FloatField()
    battles = serializers.IntegerField()
    battles_vs_baseline = serializers.IntegerField()
    win_rate_vs_baseline = serializers.FloatField(allow_null=True, help_text="Ties and both-bad count half a win.")
    win_rate_low = serializers.FloatField(allow_null=True)
    win_rate_high = serializers.FloatField(allow_null=True)
    lc_rating = serializers.FloatField(allow_null=True, help_text="Length-controlled rating.")
    lc_rating_low = serializers.FloatField(allow_null=True)
    lc_rating_high = serializers.FloatField(allow_null=True)


class BlindRatingSerializer(serializers.Serializer):
    model = serializers.CharField(help_text="The checkpoint id, as text.")
    checkpoint_id = serializers.IntegerField()
    name = serializers.CharField()
    n = serializers.IntegerField()
    positive = serializers.IntegerField()
    neutral = serializers.IntegerField()
    negative = serializers.IntegerField()
    mean = serializers.FloatField(allow_null=True, help_text="positive 1, neutral 0, negative -1.")
    low = serializers.FloatField(allow_null=True)
    high = serializers.FloatField(allow_null=True)


class RatingComparisonSerializer(serializers.Serializer):
    model_x = serializers.CharField()
    model_y = serializers.CharField()
    name_x = serializers.CharField()
    name_y = serializers.CharField()
    difference = serializers.FloatField(allow_null=True, help_text="mean(y) - mean(x), in [-2, 2].")
    low = serializers.FloatField(allow_null=True)
    high = serializers.FloatField(allow_null=True)


class RecommendedSerializer(serializers.Serializer):
    checkpoint_id = serializers.IntegerField()
    name = serializers.CharField()
    path = serializers.CharField(help_text="Where its files are: a round can start from it.")
    rating = serializers.FloatField()
    rating_low = serializers.FloatField()
    rating_high = serializers.FloatField()
    reason = serializers.CharField()


class LeaderboardSerializer(serializers.Serializer):
    """The newest leaderboard snapshot (annotator.evaluation.export.leaderboard_document)."""

    campaign = serializers.CharField()
    snapshot_id = serializers.IntegerField()
    answers = serializers.IntegerField(help_text="Evaluation answers the snapshot was computed from.")
    answers_since = serializers.IntegerField(help_text="Answers given after it was computed.")
    stale = serializers.BooleanField(help_text="true when answers came in since: POST .../leaderboard/refresh/.")
    computed_at = serializers.DateTimeField()
    baseline = serializers.CharField(allow_null=True, help_text="The checkpoint rated 1000 (the base).")
    tie_rule = serializers.CharField()
    battles = serializers.IntegerField()
    bootstrap = serializers.IntegerField()
    seed = serializers.IntegerField()
    confidence = serializers.FloatField()
    length_coefficient = serializers.FloatField(allow_null=True, help_text="> 0: longer texts win.")
    length_coefficient_low = serializers.FloatField(allow_null=True)
    length_coefficient_high = serializers.FloatField(allow_null=True)
    standings = StandingSerializer(many=True, help_text="Best rating first.")
    not_yet_linked = serializers.ListField(
        child=serializers.CharField(), help_text="Checkpoints with battles, but none linking them to the base."
    )
    ratings = BlindRatingSerializer(many=True, help_text="The blind ratings per checkpoint.")
    rating_comparisons = RatingComparisonSerializer(many=True, help_text="Each rated checkpoint against the base.")
    overoptimization = serializers.DictField(
        help_text="Every checkpoint against sqrt(KL): points, Gao et al.'s fits, the onset sentence."
    )
    recommended = RecommendedSerializer(allow_null=True, help_text="The checkpoint a round can start from, or null.")


# --- campaign set-up (annotator.api.setup); the specification itself is checked by annotator.services.campaign_setup


class RoundEstimateSerializer(serializers.Serializer):
    """One full round's estimated cost (annotator.rounds.estimate.round_estimate_of_spec)."""

    pairs = serializers.IntegerField()
    judgements = serializers.IntegerField(help_text="pairs x overlap")
    labeling_cost = serializers.DecimalField(max_digits=None, decimal_places=4)
    gpu_seconds = serializers.DecimalField(
        max_digits=None, decimal_places=4, help_text="From earlier charged runs of the same steps; 0 when none ran."
    )
    gpu_cost = serializers.DecimalField(max_digits=None, decimal_places=4)
    total = serializers.DecimalField(max_digits=None, decimal_places=4)
    currency = serializers.CharField()
    text = serializers.CharField(help_text="The estimate in words.")


class PromptCountsSerializer(serializers.Serializer):
    train = serializers.IntegerField()
    heldout = serializers.IntegerField()


class CampaignSetupSerializer(serializers.Serializer):
    """A campaign's specification (docs/campaigns.md lists its fields; PATCH and the create POST take the same
    mapping), one round's estimate and its prompts."""

    spec = serializers.DictField(help_text="Every field of the specification, as the create POST takes them.")
    estimate = RoundEstimateSerializer()
    prompts = PromptCountsSerializer()


class CostPreviewSerializer(serializers.Serializer):
    estimate = RoundEstimateSerializer(allow_null=True, help_text="null while a field it depends on is invalid.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="What is wrong with the specification so far, by field (models are not loaded for a preview).",
    )


class SkippedPromptSerializer(serializers.Serializer):
    number = serializers.IntegerField(help_text="The file's line, or the dataset's row, from 1.")
    reason = serializers.CharField()


class PromptImportInputSerializer(serializers.Serializer):
    """One source of prompts: `file` (multipart), `dataset_dir` (a save_to_disk folder on the server) or `plays`."""

    file = serializers.FileField(required=False, allow_empty_file=True,  # the import says why an empty one adds nothing
                                 help_text="A .jsonl (prompt or messages), .csv or .txt file.")
    dataset_dir = serializers.CharField(required=False, allow_blank=True, max_length=1000,
                                        help_text="A folder written by datasets' save_to_disk, on the server.")
    plays = serializers.BooleanField(default=False, help_text="Openings of lines from Shakespeare's plays.")
    column = serializers.CharField(required=False, allow_blank=True, max_length=200,
                                   help_text="The CSV column, JSONL field or dataset column (default: prompt).")
    heldout_fraction = serializers.FloatField(required=False, help_text="Share held out, 0 to below 1 (default 0.1).")
    seed = serializers.IntegerField(required=False, help_text="Seed of the held-out draw (default: the campaign's).")

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(str(key) for key in data if key not in self.fields and key != "csrfmiddlewaretoken")
            if unknown:
                raise exceptions.ValidationError(
                    {api_settings.NON_FIELD_ERRORS_KEY: [f"Unknown field {', '.join(map(repr, unknown))}; "
                                                         f"the fields are {', '.join(self.fields)}."]}
                )
        return super().to_internal_value(data)


class PromptImportSerializer(serializers.Serializer):
    train = serializers.IntegerField(help_text="Train prompts added.")
    heldout = serializers.IntegerField(help_text="Held-out prompts added.")
    skipped = SkippedPromptSerializer(many=True)
    prompts = PromptCountsSerializer(help_text="The campaign's prompts now.")
