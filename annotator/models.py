"""The platform's data: campaigns, the items labelers judge, their judgements, money and rounds.

Rules the database itself enforces live here as constraints; behaviour lives in `annotator.services`.
Judgements, ratings and ledger entries are append-only: on PostgreSQL a trigger (migration 0002)
refuses UPDATE and DELETE on them, so not even a buggy admin action can rewrite what was paid for.
"""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

MONEY = {"max_digits": 14, "decimal_places": 4}


class LabelerKind(models.TextChoices):
    HUMAN = "human", "Human"
    SIMULATED = "simulated", "Simulated (gold model)"
    AI_JUDGE = "ai_judge", "AI judge"


class LabelerProfile(models.Model):
    """Who a labeler is and what they are paid; rates left empty fall back to the campaign's."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="labeler")
    kind = models.CharField(max_length=16, choices=LabelerKind.choices, default=LabelerKind.HUMAN)
    pay_per_judgement = models.DecimalField(**MONEY, null=True, blank=True, validators=[MinValueValidator(0)])
    hourly_rate = models.DecimalField(**MONEY, null=True, blank=True, validators=[MinValueValidator(0)])
    api_cost_per_call = models.DecimalField(
        **MONEY, default=Decimal("0"), validators=[MinValueValidator(0)],
        help_text="For AI judges: what one call costs, charged as the judgement's price.",
    )
    notes = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"{self.user.username} ({self.kind})"


class TaskKind(models.TextChoices):
    PAIRWISE = "pairwise", "Pairwise comparison"
    RATING = "rating", "Absolute rating"


class PayModel(models.TextChoices):
    PER_JUDGEMENT = "per_judgement", "Per judgement"
    HOURLY = "hourly", "Hourly (time on page, capped per item)"


class PolicyOptimizer(models.TextChoices):
    RL = "rl", "Online RL (RLOO/GRPO with KL penalty)"
    DPO = "dpo", "DPO on collected pairs"
    BEST_OF_N = "best_of_n", "Best-of-n / ReST"


class AcquisitionStrategy(models.TextChoices):
    """models_rl.acquisition's strategies (a test keeps the two lists equal; the web layer does not import numpy)."""

    UNCERTAINTY = "uncertainty", "Uncertainty: pairs the reward ensemble thinks a coin toss, p(1 - p)"
    DISAGREEMENT = "disagreement", "Disagreement: the spread of the ensemble members' probabilities"
    INFORMATION_GAIN = "information_gain", "Information gain (BALD): members sure and split"
    THOMPSON = "thompson", "Double Thompson sampling: each prompt's best pair under two drawn members"
    RANDOM = "random", "Random pairs"


class Campaign(models.Model):
    name = models.SlugField(max_length=100, unique=True)
    title = models.CharField(max_length=200)
    instructions = models.TextField(help_text="Shown to labelers before they start; plain text or simple HTML.")
    task_kind = models.CharField(max_length=16, choices=TaskKind.choices, default=TaskKind.PAIRWISE)
    is_active = models.BooleanField(default=True)
    overlap = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1)], help_text="Judgements wanted per item by default."
    )
    lease_seconds = models.PositiveIntegerField(default=300, validators=[MinValueValidator(10)])

    # Money
    currency = models.CharField(max_length=3, default="USD")
    money_budget = models.DecimalField(
        **MONEY, null=True, blank=True, validators=[MinValueValidator(0)],
        help_text="Hard cap on all money spent and reserved; empty means no cap.",
    )
    pay_model = models.CharField(max_length=16, choices=PayModel.choices, default=PayModel.PER_JUDGEMENT)
    pay_per_judgement = models.DecimalField(**MONEY, default=Decimal("0.10"), validators=[MinValueValidator(0)])
    hourly_rate = models.DecimalField(**MONEY, default=Decimal("15.00"), validators=[MinValueValidator(0)])
    max_paid_seconds_per_item = models.PositiveIntegerField(
        default=120, help_text="Hourly pay counts at most this many seconds per item, so an idle tab earns nothing."
    )
    platform_fee_percent = models.DecimalField(
        max_digits=6, decimal_places=3, default=Decimal("0"),
        validators=[MinValueValidator(0), MaxValueValidator(100)],
    )

    # GPU
    gpu_hour_budget = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True, validators=[MinValueValidator(0)],
        help_text="Hard cap on GPU hours; empty means no cap.",
    )
    default_gpu_hour_price = models.DecimalField(**MONEY, default=Decimal("2.00"), validators=[MinValueValidator(0)])

    # RLHF
    base_model_path = models.CharField(max_length=500, blank=True, help_text="Empty: the embedded Shakespeare model.")
    # p(1 - p) measured best in bench/label_efficiency.py (docs/benchmarks.md): as good as random pairs, where
    # ensemble disagreement and information gain needed more labels for the same reward-model agreement.
    acquisition_strategy = models.CharField(
        max_length=32, choices=AcquisitionStrategy.choices, default=AcquisitionStrategy.UNCERTAINTY,
        help_text="How every round after round 0 chooses pairs (models_rl.acquisition).",
    )
    policy_optimizer = models.CharField(max_length=16, choices=PolicyOptimizer.choices, default=PolicyOptimizer.RL)
    # No default labeler: VADER answers sentiment questions only, so a campaign gets gold (honeypot) pairs only
    # when someone chose who answers them.
    gold_labeler = models.CharField(
        max_length=500, blank=True, default="",
        help_text="Who answers the gold (honeypot) pairs: empty for none, 'vader' (positive sentiment only), or "
                  "the directory of a reward model the workers can read.",
    )
    # The curriculum's first exercise: labelling samples the policy writes from its start token alone.
    unconditional = models.BooleanField(
        default=False, help_text="No prompts: the policy samples from its start token, and labelers see no prompt.",
    )
    settings = models.JSONField(default=dict, blank=True, help_text="Round sizes and training knobs.")

    created_at = models.DateTimeField(auto_now_add=True)

    # A memo of the ledger's sum, so the money check on every claim reads only recent entries: the sum of this
    # campaign's entries with id <= ledger_prefix_end_id. Ledger entries are immutable and every insert holds
    # the campaign row lock (share or exclusive), so the prefix read under the exclusive lock is complete and
    # never changes; annotator.services.ledger advances it and `manage.py budget --verify` re-adds it.
    ledger_prefix_end_id = models.BigIntegerField(default=0, editable=False)
    ledger_prefix_sum = models.DecimalField(**MONEY, default=Decimal("0"), editable=False)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(money_budget__gte=0) | Q(money_budget__isnull=True), name="campaign_budget_not_negative"),
        ]

    def __str__(self) -> str:
        return self.name


class CampaignRole(models.TextChoices):
    LABELER = "labeler", "Labeler"
    MANAGER = "manager", "Manager (that campaign's budget, rounds and evaluation pages)"


class CampaignMembership(models.Model):
    """Who takes part in a campaign and as what: a labeler sees and labels only the campaigns they are a member
    of; a manager runs one campaign's pages and nothing of the others. Staff see every campaign."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="campaign_memberships")
    role = models.CharField(max_length=16, choices=CampaignRole.choices, default=CampaignRole.LABELER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "user"], name="membership_once_per_campaign")]

    def __str__(self) -> str:
        return f"{self.user} in {self.campaign} ({self.role})"


class Invitation(models.Model):
    """A single-use, expiring link that makes its holder a member of a campaign. Only a hash of the secret in the
    link is stored, so a database reader cannot use an invitation."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="invitations")
    role = models.CharField(max_length=16, choices=CampaignRole.choices, default=CampaignRole.LABELER)
    email = models.EmailField(blank=True, help_text="Where the link was sent, if it was e-mailed.")
    token_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the link's secret, hex.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(used_at__isnull=True) | Q(used_by__isnull=False), name="invitation_used_by_someone"
            ),
        ]

    def __str__(self) -> str:
        return f"invitation to {self.campaign} ({self.role})"


class GpuPrice(models.Model):
    """Price of one GPU-hour of a device type for a campaign (falls back to the campaign default)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="gpu_prices")
    device_type = models.CharField(max_length=64)
    price_per_hour = models.DecimalField(**MONEY, validators=[MinValueValidator(0)])

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "device_type"], name="gpu_price_unique")]


class RoundState(models.TextChoices):
    TRAINING_REWARD = "training_reward", "Training reward model"
    OPTIMIZING = "optimizing", "Optimising policy"
    SAMPLING = "sampling", "Sampling completions"
    SELECTING = "selecting", "Selecting pairs"
    LABELING = "labeling", "Labeling"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class Round(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="rounds")
    number = models.PositiveIntegerField()
    state = models.CharField(max_length=20, choices=RoundState.choices, default=RoundState.TRAINING_REWARD)
    final = models.BooleanField(
        default=False,
        help_text="A final round trains the reward model on every label and optimises the policy, then stops: "
        "it samples only the held-out prompts and publishes no pairs.",
    )
    step_started_at = models.DateTimeField(null=True, blank=True)
    step_owner = models.CharField(
        max_length=64, blank=True, help_text="Id of the task that holds the current step; empty when none runs it."
    )
    step_heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Last sign of life of the step's task; a stale one may be taken over."
    )
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    task_ids = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "number"], name="round_number_unique")]
        ordering = ["campaign", "number"]

    def __str__(self) -> str:
        return f"{self.campaign.name} round {self.number} ({self.state})"


class PolicyCheckpoint(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="checkpoints")
    round = models.ForeignKey(Round, on_delete=models.PROTECT, null=True, blank=True, related_name="checkpoints")
    label = models.CharField(max_length=64, help_text="e.g. base, kl-0.5, kl-2, final")
    path = models.CharField(max_length=500)
    kl_from_base = models.FloatField(null=True, blank=True, help_text="KL(policy || base) in nats per completion.")
    metrics = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "path"], name="checkpoint_path_unique")]

    def __str__(self) -> str:
        return f"{self.campaign.name}:{self.label}"


class RewardModel(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="reward_models")
    round = models.ForeignKey(Round, on_delete=models.PROTECT, null=True, blank=True, related_name="reward_models")
    path = models.CharField(max_length=500)
    heldout_accuracy = models.FloatField(null=True, blank=True)
    gold_agreement = models.FloatField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "path"], name="reward_model_path_unique")]


class PromptSplit(models.TextChoices):
    TRAIN = "train", "Train"
    HELDOUT = "heldout", "Held out"


class Prompt(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="prompts")
    text = models.TextField()
    source = models.CharField(max_length=200, blank=True)
    split = models.CharField(max_length=16, choices=PromptSplit.choices, default=PromptSplit.TRAIN)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.text[:60]


class Completion(models.Model):
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="completions")
    checkpoint = models.ForeignKey(
        PolicyCheckpoint, on_delete=models.PROTECT, null=True, blank=True, related_name="completions"
    )
    text = models.TextField()
    reward_score = models.FloatField(null=True, blank=True)
    reward_uncertainty = models.FloatField(null=True, blank=True)
    gold_score = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.text[:60]


class ComparisonPurpose(models.TextChoices):
    TRAIN = "train", "Train"
    # The acquisition's uniform random share: the reward model's held-out set (stored as "eval" since round 1).
    CONTROL = "eval", "Random control"
    GOLD = "gold", "Gold (known answer)"
    # Battles and blind ratings of an evaluation run: never training data for a reward model.
    EVALUATION = "evaluation", "Blind evaluation"


class EvaluationState(models.TextChoices):
    SAMPLING = "sampling", "Sampling the checkpoints"
    LABELING = "labeling", "Labeling"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class EvaluationRun(models.Model):
    """A blind evaluation of some of a campaign's checkpoints on held-out prompts.

    Its sampling step (a GPU task, claimed like a round step) samples every checkpoint once per prompt and
    publishes, in one transaction, battles (every pair of checkpoints on every prompt, as comparisons) and blind
    ratings (`ratings_per_checkpoint` samples of each rated checkpoint, as rating items), all with purpose
    `evaluation` and this run as their `evaluation`. Labelers answer them like any item and never see whence they came.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="evaluations")
    number = models.PositiveIntegerField()
    state = models.CharField(max_length=16, choices=EvaluationState.choices, default=EvaluationState.SAMPLING)
    checkpoints = models.ManyToManyField(PolicyCheckpoint, related_name="evaluations")
    rated_checkpoints = models.ManyToManyField(PolicyCheckpoint, related_name="rated_in_evaluations", blank=True)
    prompt_ids = models.JSONField(default=list, help_text="The held-out prompts sampled, in order.")
    ratings_per_checkpoint = models.PositiveSmallIntegerField(default=0)
    judgements_wanted = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    step_owner = models.CharField(max_length=64, blank=True)
    step_started_at = models.DateTimeField(null=True, blank=True)
    step_heartbeat_at = models.DateTimeField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "number"], name="evaluation_number_unique")]
        ordering = ["campaign", "number"]

    def __str__(self) -> str:
        return f"{self.campaign.name} evaluation {self.number} ({self.state})"


class LeaderboardSnapshot(models.Model):
    """A campaign's leaderboard as computed from the answers so far (`answers` of them): the fit with its
    bootstrap takes seconds, so pages read the latest snapshot and a refresh writes a new one."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="leaderboards")
    answers = models.PositiveIntegerField(help_text="Evaluation answers the snapshot was computed from.")
    data = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["campaign", "-id"]


class Comparison(models.Model):
    """One unit of labeling work.

    A pairwise item: a prompt with two completions to compare. A rating item: `completion_b` is empty and the
    labeler rates `completion_a` alone. A campaign's items are of its task kind, except an evaluation's blind
    ratings, which are rating items in any campaign; the item's kind is always read from `completion_b`. Either way it wants `judgements_wanted` labels from
    different labelers, and is handed out through `Assignment`s.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="comparisons")
    round = models.ForeignKey(Round, on_delete=models.PROTECT, null=True, blank=True, related_name="comparisons")
    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="comparisons")
    completion_a = models.ForeignKey(Completion, on_delete=models.PROTECT, related_name="+")
    completion_b = models.ForeignKey(Completion, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    purpose = models.CharField(max_length=16, choices=ComparisonPurpose.choices, default=ComparisonPurpose.TRAIN)
    evaluation = models.ForeignKey(
        EvaluationRun, on_delete=models.PROTECT, null=True, blank=True, related_name="items",
        help_text="The evaluation run that published this item (purpose evaluation).",
    )
    acquisition_score = models.FloatField(null=True, blank=True)
    priority = models.FloatField(default=0, help_text="Higher is served first.")
    judgements_wanted = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])
    gold_choice = models.CharField(max_length=8, blank=True, help_text="Known answer for gold items.")
    judgements_received = models.PositiveSmallIntegerField(
        default=0, editable=False, help_text="Answers submitted so far (kept by the submit that stores each one)."
    )
    is_open = models.BooleanField(default=True, help_text="Closed items are never handed out again.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~Q(completion_a=models.F("completion_b")), name="comparison_two_different_completions"
            ),
            models.CheckConstraint(condition=Q(judgements_wanted__gte=1), name="comparison_wants_a_judgement"),
        ]
        indexes = [models.Index(fields=["campaign", "is_open", "-priority", "id"], name="comparison_queue")]

    def __str__(self) -> str:
        return f"comparison {self.pk} ({self.campaign.name})"


class AssignmentStatus(models.TextChoices):
    LEASED = "leased", "Leased"
    SUBMITTED = "submitted", "Submitted"
    EXPIRED = "expired", "Expired"


class Assignment(models.Model):
    """A comparison handed to one labeler, leased until `leased_until`.

    A lease is live while it is LEASED and not past `leased_until`; an expired lease frees its slot and
    its money reservation without any sweep (EXPIRED exists for staff who close a lease by hand).
    `swapped` records the sides: when true, completion B was shown on the left.
    """

    # No single-column indexes of their own: `assignment_once_per_labeler` / `assignment_live` lead with the
    # comparison and `assignment_labeler_live` with the labeler, and every lease write and submit maintains each index.
    comparison = models.ForeignKey(Comparison, on_delete=models.PROTECT, related_name="assignments", db_index=False)
    labeler = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="assignments", db_index=False
    )
    status = models.CharField(max_length=12, choices=AssignmentStatus.choices, default=AssignmentStatus.LEASED)
    swapped = models.BooleanField(default=False, help_text="True when completion B was shown on the left.")
    leased_at = models.DateTimeField()
    leased_until = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True)
    reserved_amount = models.DecimalField(
        **MONEY, default=Decimal("0"), help_text="Money held for this item while the lease is live."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["comparison", "labeler"], name="assignment_once_per_labeler"),
            models.CheckConstraint(condition=Q(reserved_amount__gte=0), name="assignment_reservation_not_negative"),
        ]
        indexes = [
            models.Index(fields=["comparison", "status", "leased_until"], name="assignment_live"),
            models.Index(fields=["labeler", "status", "leased_until"], name="assignment_labeler_live"),
            # The money check sums reservations over unsubmitted leases only: a small index, whatever the history.
            models.Index(
                fields=["leased_until"], include=["comparison", "reserved_amount"],
                condition=Q(status="leased"), name="assignment_leased",
            ),
        ]

    def __str__(self) -> str:
        return f"assignment {self.pk} of comparison {self.comparison_id} to {self.labeler_id}"


class Choice(models.TextChoices):
    A = "a", "A is better"
    B = "b", "B is better"
    TIE = "tie", "Tie"
    BOTH_BAD = "both_bad", "Both bad"


class Judgement(models.Model):
    """A labeler's answer to a pairwise assignment. Immutable; `choice` refers to completion A/B, not screen sides."""

    assignment = models.OneToOneField(Assignment, on_delete=models.PROTECT, related_name="judgement")
    choice = models.CharField(max_length=8, choices=Choice.choices)
    strength = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(3)], default=2)
    rationale = models.TextField(blank=True)
    milliseconds = models.PositiveIntegerField(help_text="Time the item was on the labeler's page.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(strength__gte=1) & Q(strength__lte=3), name="judgement_strength_1_to_3"),
            models.CheckConstraint(condition=Q(choice__in=["a", "b", "tie", "both_bad"]), name="judgement_choice_valid"),
        ]


class RatingValue(models.TextChoices):
    POSITIVE = "positive", "Positive"
    NEUTRAL = "neutral", "Neutral"
    NEGATIVE = "negative", "Negative"


class Rating(models.Model):
    """A labeler's absolute rating of one completion. Immutable."""

    assignment = models.OneToOneField(Assignment, on_delete=models.PROTECT, related_name="rating")
    value = models.CharField(max_length=8, choices=RatingValue.choices)
    rationale = models.TextField(blank=True)
    milliseconds = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(value__in=["positive", "neutral", "negative"]), name="rating_value_valid"
            ),
        ]


class LedgerCategory(models.TextChoices):
    LABELING = "labeling", "Labeling"
    EVALUATION = "evaluation", "Evaluation labeling"
    GPU = "gpu", "GPU"
    CONTRACTOR = "contractor", "Contractor"
    PLATFORM_FEE = "platform_fee", "Platform fee"
    OTHER = "other", "Other"


# What an answer is charged under: labeler pay on training items, and apart from it on evaluation items.
ANSWER_CHARGE_CATEGORIES = (LedgerCategory.LABELING, LedgerCategory.EVALUATION)


class LedgerEntry(models.Model):
    """One movement of money (and GPU time), append-only.

    Balances are sums over entries, never counters bumped alongside them (the campaign's memo of an immutable
    prefix caches such a sum; `manage.py budget --verify` re-adds it). A correction is a new entry that points
    at the one it reverses with the opposite amount. A labeling charge is tied to its assignment, at most once.
    """

    # Indexed by `ledger_campaign_tail` (campaign first), so no index of its own.
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="ledger_entries", db_index=False)
    category = models.CharField(max_length=16, choices=LedgerCategory.choices)
    amount = models.DecimalField(**MONEY, help_text="In the campaign's currency; negative for a reversal.")
    quantity = models.DecimalField(max_digits=16, decimal_places=4, default=Decimal("0"))
    unit = models.CharField(max_length=32, blank=True, help_text="judgements, gpu_seconds, invoice, ...")
    labeler = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="earnings"
    )
    assignment = models.ForeignKey(
        Assignment, on_delete=models.PROTECT, null=True, blank=True, related_name="ledger_entries"
    )
    round = models.ForeignKey(Round, on_delete=models.PROTECT, null=True, blank=True, related_name="ledger_entries")
    task_ref = models.CharField(max_length=200, blank=True, help_text="Celery task id or step key.")
    device_type = models.CharField(max_length=64, blank=True)
    seconds_on_page = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True)
    reverses = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="reversed_by"
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["assignment"],
                condition=Q(category__in=["labeling", "evaluation"], reverses__isnull=True, assignment__isnull=False),
                name="ledger_one_labeling_charge_per_assignment",
            ),
            models.UniqueConstraint(
                fields=["campaign", "task_ref"],
                condition=Q(category="gpu", reverses__isnull=True) & ~Q(task_ref=""),
                name="ledger_one_gpu_charge_per_task",
            ),
        ]
        indexes = [
            models.Index(fields=["campaign", "category"], name="ledger_campaign_category"),
            # A campaign's spent is its memoised prefix plus SUM(amount) over the entries after it: an index-only
            # scan of a few rows (see Campaign.ledger_prefix_sum).
            models.Index(fields=["campaign", "id"], include=["amount"], name="ledger_campaign_tail"),
        ]
        verbose_name_plural = "ledger entries"

    def __str__(self) -> str:
        return f"{self.category} {self.amount} ({self.campaign.name})"
