"""Small input and output serializers, one per endpoint. Inputs only check shape; services check meaning."""

from django.utils import timezone
from rest_framework import exceptions, serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer

from annotator.core.sides import SCREEN_CHOICES, item_kind, screen_choice, screen_texts
from annotator.models import Assignment, Campaign, RatingValue, TaskKind
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
