"""Evaluation runs on PostgreSQL with a real tiny policy: plan, sampling, publishing, blindness, charges, the cap."""

import json
from decimal import Decimal

import pytest
from django.urls import reverse

from annotator.core.errors import BudgetExhausted, InvalidInput
from annotator.evaluation.plan import evaluation_plan
from annotator.evaluation.runs import evaluation_close, evaluation_start
from annotator.models import (
    Comparison,
    ComparisonPurpose,
    EvaluationState,
    LedgerCategory,
    LedgerEntry,
    PolicyCheckpoint,
    Rating,
)
from annotator.services.assignments import assignment_next
from annotator.services.judgements import judgement_submit, rating_submit
from tests.factories import CampaignFactory, LabelerFactory

pytestmark = pytest.mark.django_db


def _start(campaign, django_capture_on_commit_callbacks, **kwargs):
    plan = evaluation_plan(campaign=campaign, **kwargs)
    with django_capture_on_commit_callbacks(execute=True):  # no broker: the sampling task runs here
        run = evaluation_start(plan=plan)
    run.refresh_from_db()
    assert run.state == EvaluationState.LABELING, run.error
    return run


def test_a_run_publishes_battles_and_blind_ratings_charged_apart(eval_campaign, django_capture_on_commit_callbacks):
    run = _start(eval_campaign, django_capture_on_commit_callbacks, prompts=4, ratings_per_checkpoint=3)
    items = Comparison.objects.filter(evaluation=run)
    battles, ratings = items.filter(completion_b__isnull=False), items.filter(completion_b__isnull=True)
    assert battles.count() == 4  # one pair x 4 prompts
    assert ratings.count() == 6  # 3 of the base, 3 of the final
    assert set(items.values_list("purpose", flat=True)) == {ComparisonPurpose.EVALUATION}
    assert not items.filter(round__isnull=False).exists()
    for battle in battles:
        assert battle.completion_a.checkpoint_id != battle.completion_b.checkpoint_id
        assert battle.completion_a.prompt_id == battle.completion_b.prompt_id == battle.prompt_id
    # Ratings never reuse a battle's completion.
    battle_completions = set(battles.values_list("completion_a", flat=True)) | set(battles.values_list("completion_b", flat=True))
    assert not battle_completions & set(ratings.values_list("completion_a", flat=True))
    gpu = LedgerEntry.objects.get(campaign=eval_campaign, category=LedgerCategory.GPU)
    assert gpu.reason == "GPU step: evaluation_sampling" and gpu.task_ref == f"evaluation-{run.pk}/sampling"

    labeler = LabelerFactory(campaigns=[eval_campaign])
    for _ in range(items.count()):
        lease = assignment_next(labeler=labeler, campaign=eval_campaign)[0]
        if lease.comparison.completion_b_id is None:
            rating_submit(labeler=labeler, assignment_id=lease.pk, value="positive", milliseconds=900)
        else:
            judgement_submit(labeler=labeler, assignment_id=lease.pk, screen_choice="first", milliseconds=900)
    charges = LedgerEntry.objects.filter(campaign=eval_campaign, assignment__isnull=False)
    assert set(charges.values_list("category", flat=True)) == {LedgerCategory.EVALUATION}
    assert charges.count() == 10 and sum(charges.values_list("amount", flat=True)) == Decimal("1.0000")
    assert Rating.objects.filter(assignment__labeler=labeler).count() == 6
    assert evaluation_close(run=run)
    run.refresh_from_db()
    assert run.state == EvaluationState.DONE


def test_nothing_a_labeler_receives_names_a_checkpoint_round_or_evaluation(
    eval_campaign, django_capture_on_commit_callbacks, client
):
    _start(eval_campaign, django_capture_on_commit_callbacks, prompts=2, ratings_per_checkpoint=2)
    labeler = LabelerFactory(campaigns=[eval_campaign])
    client.force_login(labeler)
    secrets = ["round", "checkpoint", "evaluation", "final", "kl_", str(PolicyCheckpoint.objects.first().path)]
    secrets += [str(c.path) for c in PolicyCheckpoint.objects.all()]
    seen_rating = seen_battle = False
    for _ in range(4):
        page = client.get(reverse("labeling:label", args=[eval_campaign.name])).content.decode().lower()
        api = client.get(f"/api/campaigns/{eval_campaign.name}/next/")
        assert api.status_code == 200, api.content
        raw = api.content.decode().lower()
        item = json.loads(raw)
        for secret in secrets:
            assert secret.lower() not in raw
        for secret in [s for s in secrets if s not in ("round", "final")]:  # the page's own words may say "round"
            assert secret.lower() not in page
        seen_rating |= item["task_kind"] == "rating"
        seen_battle |= item["task_kind"] == "pairwise"
        answer = {"value": "neutral"} if item["task_kind"] == "rating" else {"choice": "tie"}
        path = f"/api/assignments/{item['assignment_id']}/{'rating' if item['task_kind'] == 'rating' else 'judgement'}/"
        done = client.post(path, {**answer, "milliseconds": 500}, content_type="application/json")
        assert done.status_code in (200, 201), done.content
    history = client.get("/api/me/history/").content.decode().lower()
    for secret in secrets:
        assert secret.lower() not in history
    assert seen_rating and seen_battle


def test_bad_requests_are_refused_and_nothing_is_written(eval_campaign, tmp_path):
    other = CampaignFactory()
    foreign = PolicyCheckpoint.objects.create(campaign=other, label="base", path=str(tmp_path), kl_from_base=0.0)
    ids = list(PolicyCheckpoint.objects.filter(campaign=eval_campaign).values_list("pk", flat=True))
    with pytest.raises(InvalidInput, match="belongs to another campaign"):
        evaluation_plan(campaign=eval_campaign, checkpoint_ids=[ids[0], foreign.pk])
    with pytest.raises(InvalidInput, match="at least two"):
        evaluation_plan(campaign=eval_campaign, checkpoint_ids=[])
    with pytest.raises(InvalidInput, match="prompts"):
        evaluation_plan(campaign=eval_campaign, prompts=99)
    missing = PolicyCheckpoint.objects.create(campaign=eval_campaign, label="kl_2", path=str(tmp_path / "gone"), kl_from_base=2.0)
    with pytest.raises(InvalidInput, match="missing"):
        evaluation_plan(campaign=eval_campaign, checkpoint_ids=[ids[0], missing.pk])
    eval_campaign.money_budget = Decimal("0.50")
    eval_campaign.save()
    with pytest.raises(BudgetExhausted, match=r"costs 1\.4000 USD \(14 answers"):
        evaluation_plan(campaign=eval_campaign, checkpoint_ids=ids, prompts=4, ratings_per_checkpoint=5)
    assert not Comparison.objects.filter(campaign=eval_campaign).exists()


def test_the_cap_holds_on_evaluation_items(eval_campaign, django_capture_on_commit_callbacks):
    run = _start(eval_campaign, django_capture_on_commit_callbacks, prompts=4, ratings_per_checkpoint=0)
    spent = sum(LedgerEntry.objects.filter(campaign=eval_campaign).values_list("amount", flat=True))
    eval_campaign.money_budget = spent + Decimal("0.25")  # room for two answers at 0.10
    eval_campaign.save()
    labeler, other = LabelerFactory.create_batch(2, campaigns=[eval_campaign])
    first = assignment_next(labeler=labeler, campaign=eval_campaign)[0]
    second = assignment_next(labeler=other, campaign=eval_campaign)[0]
    with pytest.raises(BudgetExhausted):
        assignment_next(labeler=LabelerFactory(campaigns=[eval_campaign]), campaign=eval_campaign)
    for lease, who in ((first, labeler), (second, other)):
        judgement_submit(labeler=who, assignment_id=lease.pk, screen_choice="first", milliseconds=100)
    total = sum(LedgerEntry.objects.filter(campaign=eval_campaign).values_list("amount", flat=True))
    assert total <= eval_campaign.money_budget
    assert Comparison.objects.filter(evaluation=run, is_open=True).count() == 2
