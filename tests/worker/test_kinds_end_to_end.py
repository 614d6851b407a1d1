"""Every kind of campaign through rounds, in process (no broker: each step's task runs where it is sent) on the
tiny word-writing policy: a rating campaign, a DPO and a best-of-n campaign run round 0 and round 1 to done with
labels from simulated labelers in between, and an unconditional campaign samples with no prompts at all."""

from decimal import Decimal

import pytest
import torch
from transformers import AutoModelForCausalLM

from annotator.models import (
    Campaign,
    CampaignMembership,
    Comparison,
    ComparisonPurpose,
    Completion,
    PolicyCheckpoint,
    Prompt,
    PromptSplit,
    Rating,
    RewardModel,
    Round,
    RoundState,
)
from annotator.rounds.state_machine import round_labeling_close, round_start
from annotator.services.assignments import assignment_next
from annotator.services.judgements import judgement_submit, rating_submit
from annotator.services.prompts import campaign_prompts_from_plays
from tests.factories import LabelerFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

# Seconds a round, not learning: the loop must run, each kind through its own code.
KIND_SETTINGS = {
    "train_prompts": 12,
    "heldout_prompts": 4,
    "prompts_per_round": 8,
    "completions_per_prompt": 3,
    "contrast_per_prompt": 1,
    "pairs_per_round": 16,
    "max_pairs_per_prompt": 3,
    "eval_samples_per_prompt": 2,
    "reward_ensemble_size": 2,
    "sampling": {"max_new_tokens": 12},
    "reward_model": {"epochs": 2, "batch_size": 8, "max_length": 48},
}
RL_POLICY = {"max_steps": 4, "batch_size": 8, "num_generations": 4, "max_new_tokens": 12, "reward_norm_samples": 16,
             "learning_rate": 1e-3, "kl_coef": 0.05, "kl_levels": [0.5]}
DPO_POLICY = {"batch_size": 8, "eval_samples": 8, "max_new_tokens": 12, "learning_rate": 1e-3}
BEST_OF_N_POLICY = {"n": 4, "epochs": 1, "batch_size": 8, "eval_samples": 8, "max_new_tokens": 12, "learning_rate": 1e-3}


def kind_campaign(name: str, word_policy_dir, *, policy: dict, prompts: bool = True, **fields) -> Campaign:
    campaign = Campaign.objects.create(
        name=name, title=name, instructions="Label the sentiment.", overlap=1, pay_per_judgement=Decimal("0.01"),
        base_model_path=str(word_policy_dir), gold_labeler="vader", settings={**KIND_SETTINGS, "policy": policy},
        **fields,
    )
    if prompts:
        campaign_prompts_from_plays(campaign=campaign)
    return campaign


def start_round(campaign: Campaign, capture) -> Round:
    """Start the campaign's next round (closing the last one's labeling) and run its steps here."""
    with capture(execute=True):  # eager tasks run here, each sending the next
        round_ = round_start(campaign=campaign)
    round_.refresh_from_db()
    assert round_.state == RoundState.LABELING, round_.error
    return round_


def label_everything(campaign: Campaign, *, labelers: int = 2) -> int:
    """Simulated labelers (VADER, as `run_round --simulate vader` answers) take items until none is left: a
    preference for a pair, a rating for a single completion. Returns how many answers they gave."""
    from models_rl.gold import NoisyLabeler, VaderGold

    gold, answered = VaderGold(), 0
    for seed in range(labelers):
        labeler = LabelerFactory()
        CampaignMembership.objects.create(campaign=campaign, user=labeler, role="labeler")
        simulated = NoisyLabeler(gold, temperature=0.05, seed=seed)
        while leases := assignment_next(labeler=labeler, campaign=campaign):
            item = leases[0].comparison
            prompt, first = item.prompt.text, item.completion_a.text
            if item.completion_b_id is None:
                rating_submit(labeler=labeler, assignment_id=leases[0].pk, value=simulated.rate(prompt, first),
                              milliseconds=900)
            else:
                choice, strength = simulated.prefer(prompt, first, item.completion_b.text)
                judgement_submit(labeler=labeler, assignment_id=leases[0].pk, choice=choice, strength=strength,
                                 milliseconds=900)
            answered += 1
    return answered


def two_rounds(campaign: Campaign, capture) -> tuple[Round, Round]:
    """Round 0 and round 1, each labeled, both done."""
    first = start_round(campaign, capture)
    assert label_everything(campaign) == first.metrics["selecting"]["judgements_wanted"]
    second = start_round(campaign, capture)
    assert second.number == 1
    assert label_everything(campaign) == second.metrics["selecting"]["judgements_wanted"]
    assert round_labeling_close(round_=second)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.state, second.state) == (RoundState.DONE, RoundState.DONE)
    return first, second


def weights_changed(round_: Round) -> bool:
    base = PolicyCheckpoint.objects.get(campaign=round_.campaign, label="base")
    final = PolicyCheckpoint.objects.get(round=round_, label="final")
    before = AutoModelForCausalLM.from_pretrained(base.path).state_dict()
    after = AutoModelForCausalLM.from_pretrained(final.path).state_dict()
    return any(not torch.equal(before[name], after[name]) for name in before)


def test_a_rating_campaign_runs_rounds_on_a_rating_model(word_policy_dir, artifact_dir, django_capture_on_commit_callbacks):
    from models_rl.reward_ensemble import RewardEnsemble

    campaign = kind_campaign("kinds-rating", word_policy_dir, task_kind="rating", policy=RL_POLICY)
    first, second = two_rounds(campaign, django_capture_on_commit_callbacks)

    # Both rounds published single completions to rate, as many as a pairwise round publishes pairs.
    for round_ in (first, second):
        items = Comparison.objects.filter(round=round_)
        assert items.count() == KIND_SETTINGS["pairs_per_round"] == round_.metrics["selecting"]["items_published"]
        assert not items.filter(completion_b__isnull=False).exists()
        gold = items.filter(purpose=ComparisonPurpose.GOLD)
        assert gold.exists() and set(gold.values_list("gold_choice", flat=True)) <= {"positive", "neutral", "negative"}
    # Round 0 rates at random; round 1 by the uncertainty p(1 - p) of the rating ensemble's p(positive), with a
    # random control share held out.
    acquired = Comparison.objects.filter(round=second, purpose=ComparisonPurpose.TRAIN)
    assert all(0 <= score <= 0.25 for score in acquired.values_list("acquisition_score", flat=True))
    assert Comparison.objects.filter(round=second, purpose=ComparisonPurpose.CONTROL).exists()
    assert not Completion.objects.filter(pk__in=acquired.values("completion_a"), reward_score__isnull=True).exists()

    # Round 1's reward model is a rating model trained on round 0's ratings.
    training = second.metrics["training_reward"]
    assert training["data/judgements"] == Rating.objects.filter(assignment__comparison__round=first).count() > 0
    assert training["data/train_ratings"] + training["data/heldout_ratings"] == training["data/judgements"]
    reward_model = RewardModel.objects.get(round=second)
    ensemble = RewardEnsemble.load(reward_model.path)
    assert ensemble.kind == "rating" and len(ensemble.members) == KIND_SETTINGS["reward_ensemble_size"]
    # ... and RL followed log p(positive): a log-probability, never above 0 (a raw score would be any number).
    final = PolicyCheckpoint.objects.get(round=second, label="final")
    assert final.metrics["policy/reward"] < 0
    assert weights_changed(second)


@pytest.mark.parametrize("optimizer, policy", [("dpo", DPO_POLICY), ("best_of_n", BEST_OF_N_POLICY)])
def test_dpo_and_best_of_n_campaigns_run_rounds(optimizer, policy, word_policy_dir, artifact_dir,
                                                 django_capture_on_commit_callbacks):
    campaign = kind_campaign(f"kinds-{optimizer.replace('_', '-')}", word_policy_dir, policy_optimizer=optimizer,
                             policy=policy)
    first, second = two_rounds(campaign, django_capture_on_commit_callbacks)

    optimizing = second.metrics["optimizing"]
    final = PolicyCheckpoint.objects.get(round=second, label="final")
    assert final.kl_from_base is not None and "policy/reward" in final.metrics
    if optimizer == "dpo":
        # DPO learnt from round 0's preferences (ties carry no DPO signal and are left out).
        pairs = second.metrics["training_reward"]["data/train_pairs"]
        assert 0 < optimizing["train/pairs"] <= pairs + second.metrics["training_reward"]["data/heldout_pairs"]
    else:
        # Best-of-n fine-tuned on the reward model's favourite of n samples per prompt.
        assert optimizing["bon/reward_best"] >= optimizing["bon/reward_all"]
        assert optimizing["train/examples"] > 0
    assert weights_changed(second)
    # Round 1 sampled from the policy it made, and published pairs of those samples.
    comparisons = Comparison.objects.filter(round=second)
    assert comparisons.count() > 0 and not comparisons.filter(completion_b__isnull=True).exists()
    assert Completion.objects.filter(checkpoint=final, prompt__split=PromptSplit.TRAIN).exists()


def test_an_unconditional_campaign_samples_from_the_start_token_without_prompts(word_policy_dir, artifact_dir,
                                                                                django_capture_on_commit_callbacks):
    campaign = kind_campaign("kinds-unconditional", word_policy_dir, unconditional=True, policy=RL_POLICY, prompts=False)
    assert not Prompt.objects.filter(campaign=campaign).exists()
    first, second = two_rounds(campaign, django_capture_on_commit_callbacks)

    # Round 0 gave it empty prompt slots of its sizes, once: round 1 added none.
    prompts = Prompt.objects.filter(campaign=campaign)
    assert set(prompts.values_list("text", flat=True)) == {""}
    assert prompts.filter(split=PromptSplit.TRAIN).count() == KIND_SETTINGS["train_prompts"]
    assert prompts.filter(split=PromptSplit.HELDOUT).count() == KIND_SETTINGS["heldout_prompts"]
    # Every completion was written from the start token alone, and they are not all the same text.
    completions = Completion.objects.filter(prompt__campaign=campaign)
    texts = list(completions.values_list("text", flat=True))
    assert completions.count() > 0 and not completions.exclude(prompt__text="").exists()
    assert len(set(texts)) > len(texts) // 2 and sum(bool(text.strip()) for text in texts) > len(texts) // 2
    assert Comparison.objects.filter(round=first).exists() and Comparison.objects.filter(round=second).exists()
    final = PolicyCheckpoint.objects.get(round=second, label="final")
    assert final.kl_from_base is not None and "policy/reward" in final.metrics
