"""The round state machine: start, dispatch, claim (compare-and-set), finish once, fail and resume."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from annotator.models import (
    AssignmentStatus,
    LedgerCategory,
    LedgerEntry,
    PromptSplit,
    RewardModel,
    Round,
    RoundState,
)
from annotator.core.errors import InvalidInput
from annotator.rounds.lifecycle import run_step
from annotator.rounds.settings import embedded_base_model_dir, round_settings, step_stale_seconds
from annotator.rounds.state_machine import (
    StepRun,
    round_dispatch,
    round_labeling_close,
    round_start,
    round_step_claim,
    round_step_fail,
    round_step_finish,
    round_step_progress,
    round_step_release,
)
from tests.factories import AssignmentFactory, CampaignFactory, ComparisonFactory, PromptFactory

pytestmark = pytest.mark.django_db

CPU = StepRun(device_type="cpu", seconds=1.5, charge_gpu=True)


@pytest.fixture
def campaign():
    campaign = CampaignFactory(gpu_hour_budget=Decimal("10"))
    PromptFactory.create_batch(4, campaign=campaign)
    PromptFactory.create_batch(2, campaign=campaign, split=PromptSplit.HELDOUT)
    return campaign


def start(campaign, django_capture_on_commit_callbacks) -> Round:
    """round_start without running the enqueued task (the on-commit callbacks are captured, not run)."""
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        round_ = round_start(campaign=campaign)
    assert len(callbacks) == 1  # one task sent for the step
    round_.refresh_from_db()
    return round_


def test_round_zero_starts_at_sampling_and_is_dispatched(campaign, django_capture_on_commit_callbacks):
    round_ = start(campaign, django_capture_on_commit_callbacks)
    assert (round_.number, round_.state) == (0, RoundState.SAMPLING)
    assert round_.step_owner and round_.task_ids[RoundState.SAMPLING] == round_.step_owner
    assert round_.step_started_at is None  # queued, not started
    assert round_.metrics["steps"][RoundState.TRAINING_REWARD] == {"status": "skipped"}


def test_starting_again_while_a_step_is_live_sends_nothing(campaign, django_capture_on_commit_callbacks):
    first = start(campaign, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        again = round_start(campaign=campaign)
    assert again.pk == first.pk and callbacks == []
    assert Round.objects.filter(campaign=campaign).count() == 1


def test_claim_is_compare_and_set(campaign, django_capture_on_commit_callbacks):
    round_ = start(campaign, django_capture_on_commit_callbacks)
    task_id = round_.step_owner
    assert not round_step_claim(round_id=round_.pk, step=RoundState.SAMPLING, task_id="someone-else")
    assert not round_step_claim(round_id=round_.pk, step=RoundState.SELECTING, task_id=task_id)  # not that step
    assert round_step_claim(round_id=round_.pk, step=RoundState.SAMPLING, task_id=task_id)
    # A second delivery of the same task while it runs is refused: the step has started.
    assert not round_step_claim(round_id=round_.pk, step=RoundState.SAMPLING, task_id=task_id)
    # Once its heartbeat is stale, another task may take the step over.
    later = timezone.now() + timedelta(seconds=step_stale_seconds() + 1)
    assert round_step_claim(round_id=round_.pk, step=RoundState.SAMPLING, task_id="rescuer", now=later)
    round_.refresh_from_db()
    assert round_.step_owner == "rescuer"


def test_dispatch_resends_only_a_stale_step(campaign, django_capture_on_commit_callbacks):
    round_ = start(campaign, django_capture_on_commit_callbacks)
    assert round_step_claim(round_id=round_.pk, step=RoundState.SAMPLING, task_id=round_.step_owner)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert round_dispatch(round_id=round_.pk) is None
    assert callbacks == []
    later = timezone.now() + timedelta(seconds=step_stale_seconds() + 1)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        new_task = round_dispatch(round_id=round_.pk, now=later)
    assert new_task and len(callbacks) == 1
    round_.refresh_from_db()
    assert round_.step_owner == new_task and round_.step_started_at is None


def store_reward_model(path):
    def store(locked: Round) -> dict:
        RewardModel.objects.update_or_create(campaign=locked.campaign, path=path, defaults={"round": locked})
        return {"eval/accuracy": 0.75}

    return store


def training_round(campaign) -> Round:
    Round.objects.create(campaign=campaign, number=0, state=RoundState.DONE)
    return Round.objects.create(campaign=campaign, number=1, state=RoundState.TRAINING_REWARD)


def test_finish_moves_on_once_and_charges_gpu_once(campaign, django_capture_on_commit_callbacks):
    round_ = training_round(campaign)
    assert round_step_claim(round_id=round_.pk, step=RoundState.TRAINING_REWARD, task_id="t1")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        finished = round_step_finish(round_id=round_.pk, step=RoundState.TRAINING_REWARD, task_id="t1",
                                     store=store_reward_model("/rm/round-1"), run=CPU)
    assert finished.state == RoundState.OPTIMIZING
    assert len(callbacks) == 1  # the next step was sent
    assert finished.metrics[RoundState.TRAINING_REWARD] == {"eval/accuracy": 0.75}
    assert finished.metrics["steps"][RoundState.TRAINING_REWARD]["status"] == "done"
    # A redelivery of the finished step can neither claim it nor finish it again.
    assert not round_step_claim(round_id=round_.pk, step=RoundState.TRAINING_REWARD, task_id="t1")
    assert round_step_finish(round_id=round_.pk, step=RoundState.TRAINING_REWARD, task_id="t1",
                             store=store_reward_model("/rm/other"), run=CPU) is None
    assert RewardModel.objects.filter(campaign=campaign).count() == 1
    gpu = LedgerEntry.objects.filter(campaign=campaign, category=LedgerCategory.GPU)
    assert gpu.count() == 1 and gpu.get().quantity == Decimal("1.5")


def test_taken_over_step_overwrites_and_the_old_task_writes_nothing(campaign):
    round_ = training_round(campaign)
    assert round_step_claim(round_id=round_.pk, step=RoundState.TRAINING_REWARD, task_id="dead")
    later = timezone.now() + timedelta(seconds=step_stale_seconds() + 1)
    assert round_step_claim(round_id=round_.pk, step=RoundState.TRAINING_REWARD, task_id="rescuer", now=later)
    # The presumed-dead task wakes up: it may not report progress or finish.
    assert not round_step_progress(round_id=round_.pk, step=RoundState.TRAINING_REWARD, task_id="dead", progress={})
    assert round_step_finish(round_id=round_.pk, step=RoundState.TRAINING_REWARD, task_id="dead",
                             store=store_reward_model("/rm/round-1"), run=CPU) is None
    assert not RewardModel.objects.exists()
    # The redo writes to the step's own path: the row is updated in place, never duplicated.
    RewardModel.objects.create(campaign=campaign, round=round_, path="/rm/round-1", heldout_accuracy=0.1)
    round_step_finish(round_id=round_.pk, step=RoundState.TRAINING_REWARD, task_id="rescuer",
                      store=store_reward_model("/rm/round-1"), run=CPU)
    assert RewardModel.objects.filter(campaign=campaign).count() == 1
    assert LedgerEntry.objects.filter(campaign=campaign, category=LedgerCategory.GPU).count() == 1


def test_failure_then_resume_at_the_failed_step(campaign, django_capture_on_commit_callbacks):
    round_ = training_round(campaign)
    assert round_step_claim(round_id=round_.pk, step=RoundState.TRAINING_REWARD, task_id="t1")
    assert round_step_finish(round_id=round_.pk, step=RoundState.TRAINING_REWARD, task_id="t1",
                             store=store_reward_model("/rm/1"), run=CPU)
    round_.refresh_from_db()
    sent = round_.step_owner  # finishing sent the next step to a new task
    assert round_step_claim(round_id=round_.pk, step=RoundState.OPTIMIZING, task_id=sent)
    assert round_step_fail(round_id=round_.pk, step=RoundState.OPTIMIZING, task_id=sent, error="CUDA out of memory")
    round_.refresh_from_db()
    assert (round_.state, round_.error, round_.step_owner) == (RoundState.FAILED, "CUDA out of memory", "")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        resumed = round_start(campaign=campaign)
    resumed.refresh_from_db()
    assert resumed.pk == round_.pk and resumed.state == RoundState.OPTIMIZING and resumed.error == ""
    assert len(callbacks) == 1
    assert resumed.metrics["errors"][0]["error"] == "CUDA out of memory"
    # The finished step is not run again: its results stand.
    assert resumed.metrics["steps"][RoundState.TRAINING_REWARD]["status"] == "done"
    assert RewardModel.objects.count() == 1


def test_run_step_marks_the_round_failed_with_the_error(campaign):
    round_ = training_round(campaign)

    def broken(context, round_):
        raise RuntimeError("disk full")

    assert run_step(round_id=round_.pk, step=RoundState.TRAINING_REWARD, task_id="t1", work=broken, in_worker=False) == "failed"
    round_.refresh_from_db()
    assert round_.state == RoundState.FAILED and "disk full" in round_.error
    assert round_.metrics["failed_step"] == RoundState.TRAINING_REWARD


def test_ctrl_c_in_an_in_process_step_gives_the_step_back(campaign):
    round_ = training_round(campaign)

    def interrupted(context, round_):
        context.progress("reward model")({"step": 1, "total": 10})
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_step(round_id=round_.pk, step=RoundState.TRAINING_REWARD, task_id="t1", work=interrupted, in_worker=False)
    round_.refresh_from_db()
    assert round_.state == RoundState.TRAINING_REWARD and round_.step_owner == ""
    assert round_.metrics["progress"]["done"] == 1
    assert round_step_claim(round_id=round_.pk, step=RoundState.TRAINING_REWARD, task_id="rerun")
    assert not round_step_release(round_id=round_.pk, step=RoundState.TRAINING_REWARD, task_id="t1")


def test_a_step_over_the_gpu_budget_fails_with_a_clear_message(campaign):
    campaign.gpu_hour_budget = Decimal("0")
    campaign.save()
    round_ = training_round(campaign)
    ran = []
    assert run_step(round_id=round_.pk, step=RoundState.TRAINING_REWARD, task_id="t1",
                    work=lambda context, round_: ran.append(1), in_worker=False) == "failed"
    round_.refresh_from_db()
    assert ran == [] and round_.state == RoundState.FAILED and "GPU budget" in round_.error


def test_labeling_closes_when_all_labels_are_in_and_the_next_round_starts(campaign, django_capture_on_commit_callbacks):
    round_ = Round.objects.create(campaign=campaign, number=0, state=RoundState.LABELING)
    comparison = ComparisonFactory(campaign=campaign, round=round_, judgements_wanted=2)
    AssignmentFactory(comparison=comparison, status=AssignmentStatus.SUBMITTED)
    assert not round_labeling_close(round_=round_)
    with pytest.raises(InvalidInput, match="1 of 2 judgements"):
        round_start(campaign=campaign)

    AssignmentFactory(comparison=comparison, status=AssignmentStatus.SUBMITTED)
    with django_capture_on_commit_callbacks(execute=False):
        next_round = round_start(campaign=campaign)
    round_.refresh_from_db()
    comparison.refresh_from_db()
    assert round_.state == RoundState.DONE and round_.finished_at is not None and not comparison.is_open
    assert (next_round.number, next_round.state) == (1, RoundState.TRAINING_REWARD)


def test_round_settings_are_checked():
    good = CampaignFactory(settings={"pairs_per_round": 8, "gold_share": 0.25, "policy": {"max_steps": 5}, "other": 1})
    assert round_settings(campaign=good).pairs_per_round == 8
    for bad in ({"pairs_per_round": "many"}, {"gold_share": 2}, {"prompts_per_round": 1.5}, {"policy": [1]}):
        with pytest.raises(InvalidInput):
            round_settings(campaign=CampaignFactory(settings=bad))


def test_the_embedded_base_model_is_the_shipped_one_unless_the_campaign_overrides_it(db, settings, tmp_path):
    """A campaign without a base model gets the converged one shipped with the code (no training); overriding
    settings.base_model trains one of its own under ARTIFACT_DIR, never over the shipped files."""
    import json

    from models_rl import EMBEDDED_BASE_MODEL_DIR

    settings.ARTIFACT_DIR = str(tmp_path)
    shipped = embedded_base_model_dir(campaign=CampaignFactory())
    assert shipped == EMBEDDED_BASE_MODEL_DIR
    marker = json.loads((shipped / "base_model.json").read_text())
    assert marker["config"]["max_steps"] == 3000 and marker["metrics"]["eval/loss"] <= 4.0
    overridden = CampaignFactory(settings={"base_model": {"n_layer": 2, "time_budget_s": 30}})
    assert embedded_base_model_dir(campaign=overridden) == tmp_path / "base-model"


def finish(round_: Round, step: str, store=lambda locked: {}) -> Round:
    """Claim the round's current step as the task it was sent to, and finish it."""
    round_.refresh_from_db()
    assert round_.state == step and round_step_claim(round_id=round_.pk, step=step, task_id=round_.step_owner)
    return round_step_finish(round_id=round_.pk, step=step, task_id=round_.step_owner, store=store, run=CPU)


def test_a_final_round_trains_optimises_and_samples_then_is_done_with_nothing_to_label(
        campaign, django_capture_on_commit_callbacks):
    Round.objects.create(campaign=campaign, number=0, state=RoundState.DONE)
    with django_capture_on_commit_callbacks(execute=False):
        final = round_start(campaign=campaign, final=True)
    assert (final.number, final.final, final.state) == (1, True, RoundState.TRAINING_REWARD)
    assert final.metrics["steps"] == {RoundState.SELECTING: {"status": "skipped"}, RoundState.LABELING: {"status": "skipped"}}
    with django_capture_on_commit_callbacks(execute=False):
        finish(final, RoundState.TRAINING_REWARD, store_reward_model("/rm/final"))
        finish(final, RoundState.OPTIMIZING)
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            done = finish(final, RoundState.SAMPLING)
    assert done.state == RoundState.DONE and done.finished_at is not None
    assert callbacks == []  # nothing is sent after the last step: no selecting, no labeling
    assert LedgerEntry.objects.filter(round=final, category=LedgerCategory.GPU).count() == 3


def test_a_final_round_is_refused_without_labels_and_right_after_another(campaign, django_capture_on_commit_callbacks):
    with pytest.raises(InvalidInput, match="run round 0 first"):
        round_start(campaign=campaign, final=True)
    assert not Round.objects.exists()
    Round.objects.create(campaign=campaign, number=0, state=RoundState.DONE)
    Round.objects.create(campaign=campaign, number=1, state=RoundState.DONE, final=True)
    with pytest.raises(InvalidInput, match="already trained on every label"):
        round_start(campaign=campaign, final=True)
    # More labels after a final round: an ordinary round may follow it.
    with django_capture_on_commit_callbacks(execute=False):
        after = round_start(campaign=campaign)
    assert (after.number, after.final, after.state) == (2, False, RoundState.TRAINING_REWARD)


def test_resuming_keeps_the_kind_of_round(campaign, django_capture_on_commit_callbacks):
    round_ = training_round(campaign)  # an ordinary round 1, running
    with pytest.raises(InvalidInput, match="is an ordinary round and has not finished"):
        round_start(campaign=campaign, final=True)
    round_.final = True
    round_.save(update_fields=["final"])
    with pytest.raises(InvalidInput, match="is a final round and has not finished"):
        round_start(campaign=campaign)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        resumed = round_start(campaign=campaign, final=True)
    assert resumed.pk == round_.pk and len(callbacks) == 1


def test_a_final_round_samples_only_the_heldout_prompts(campaign):
    """It publishes no pairs, so it samples nothing to pair: only its checkpoints on the held-out prompts, for
    their gold reward."""
    from annotator.models import PolicyCheckpoint
    from annotator.rounds.step_sampling import sampling_jobs

    zero = Round.objects.create(campaign=campaign, number=0, state=RoundState.DONE)
    PolicyCheckpoint.objects.create(campaign=campaign, round=zero, label="base", path="/base", kl_from_base=0.0)
    for final in (False, True):
        round_ = Round.objects.create(campaign=campaign, number=1 + final, state=RoundState.SAMPLING, final=final)
        PolicyCheckpoint.objects.create(campaign=campaign, round=round_, label="final", path=f"/p{final}", kl_from_base=1.0)
        jobs = sampling_jobs(round_=round_)
        purposes = sorted(job.purpose for job in jobs)
        assert purposes == (["eval"] if final else ["eval", "train", "train"]), jobs
        assert all(len(job.prompt_ids) == 2 for job in jobs if job.purpose == "eval")
