"""A campaign set up without the admin: one specification, checked in one place, the same campaign from the page, the
YAML command and the API; every bad input refused with a clear message and nothing created."""

import json
import shutil
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from annotator.core.errors import AccessDenied, InvalidInput
from annotator.models import Campaign, CampaignMembership, CampaignRole, Prompt, PromptSplit
from annotator.services import prompts as prompt_service
from annotator.services.campaign_setup import (
    CampaignSpecInvalid,
    campaign_create,
    campaign_spec,
    campaign_update,
    instructions_render,
)
from annotator.services.prompts import campaign_prompts_from_dataset_dir
from tests.annotator.api.conftest import client_with_token
from tests.factories import CampaignFactory, LabelerFactory, PromptFactory, UserFactory

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}

# A specification as a team would write it: every kind of field, a nested models_rl section.
SPEC = {
    "title": "Helpful answers",
    "instructions": "## Pick the more *helpful* answer\n\n- Prefer correct over long.\n- Ties are fine.",
    "task_kind": "pairwise",
    "overlap": 2,
    "currency": "EUR",
    "pay_model": "per_judgement",
    "pay_per_judgement": "0.25",
    "money_budget": "500",
    "gpu_hour_budget": "10",
    "default_gpu_hour_price": "3.5",
    "policy_optimizer": "dpo",
    "acquisition_strategy": "thompson",
    "gold_labeler": "vader",
    "pairs_per_round": 40,
    "prompts_per_round": 20,
    "gold_share": 0.05,
    "seed": 7,
    "sampling": {"temperature": 0.8, "max_new_tokens": 24},
}


def spec_without_name(campaign: Campaign) -> dict:
    spec = campaign_spec(campaign=Campaign.objects.get(pk=campaign.pk))
    spec.pop("name")
    return spec


def page_post_data(spec: dict) -> dict:
    """What the new-campaign page posts for a spec: every field as text (the form shows them all)."""
    data = {}
    for name, value in spec.items():
        if isinstance(value, dict):
            data[name] = json.dumps(value)
        elif isinstance(value, bool):
            data[name] = "on" if value else "false"
        else:
            data[name] = "" if value is None else str(value)
    return data


@pytest.fixture
def staff_client(staff):
    client = Client()
    client.force_login(staff)
    return client


def manager_of(campaign):
    user = UserFactory()
    CampaignMembership.objects.create(campaign=campaign, user=user, role=CampaignRole.MANAGER)
    return user


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def no_tokenizer_dir(word_policy_dir, tmp_path):
    """The tiny model's config and weights, without its tokenizer files."""
    folder = tmp_path / "no-tokenizer"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(Path(word_policy_dir) / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def reward_model_dir(word_policy_dir, tmp_path_factory):
    """A one-output sequence classifier on the tiny model, with its tokenizer: what a gold reward model is."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = tmp_path_factory.mktemp("reward") / "member_0"
    AutoModelForSequenceClassification.from_pretrained(word_policy_dir, num_labels=1).save_pretrained(folder)
    AutoTokenizer.from_pretrained(word_policy_dir).save_pretrained(folder)
    (folder.parent / "ensemble.json").write_text(json.dumps({"members": ["member_0"]}))
    return folder


# -- one specification, three faces ---------------------------------------------------------------------------------


def test_the_page_the_yaml_command_and_the_api_make_the_same_campaign(staff, staff_client, word_policy_dir, tmp_path):
    spec = {**SPEC, "base_model_path": str(word_policy_dir)}

    response = staff_client.post(reverse("setup:new"), page_post_data({**campaign_spec(campaign=Campaign()), **spec,
                                                                       "name": "by-page"}))
    assert response.status_code == 302, response.content.decode()
    assert response["Location"] == reverse("setup:prompts", args=["by-page"])

    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump({**spec, "name": "by-yaml"}))
    call_command("campaign", "create", "--file", str(path), stdout=StringIO())

    response = client_with_token(staff).post("/api/campaigns/setup/", {**spec, "name": "by-api"}, format="json")
    assert response.status_code == 201, response.json()

    by_page, by_yaml, by_api = (Campaign.objects.get(name=name) for name in ("by-page", "by-yaml", "by-api"))
    assert spec_without_name(by_page) == spec_without_name(by_yaml) == spec_without_name(by_api)
    made = spec_without_name(by_yaml)
    assert {key: made[key] for key in spec} == spec  # what was given is what is stored, money as text
    assert by_yaml.pay_per_judgement == Decimal("0.25") and by_yaml.money_budget == Decimal("500")
    assert by_yaml.settings["pairs_per_round"] == 40 and by_yaml.settings["sampling"] == {"temperature": 0.8,
                                                                                           "max_new_tokens": 24}


def test_a_campaign_spec_round_trips_and_the_defaults_fill_the_rest():
    campaign = campaign_create(data={"name": "first", "title": "First", "instructions": "Be fair."}, created_by=None)
    spec = campaign_spec(campaign=campaign)
    assert spec["policy_optimizer"] == "rl" and spec["pairs_per_round"] == 24 and spec["money_budget"] is None
    again = campaign_create(data={**spec, "name": "second"}, created_by=None)
    assert spec_without_name(again) == spec_without_name(campaign)


def test_an_update_changes_what_it_names_and_keeps_the_other_settings():
    campaign = CampaignFactory(settings={"pairs_per_round": 10, "policy": {"learning_rate": 1e-4}, "webhooks": [1]})
    updated = campaign_update(campaign=campaign, data={"pairs_per_round": 30, "policy": {}, "title": "New title"},
                              changed_by=None)
    assert updated.title == "New title"
    assert updated.settings["pairs_per_round"] == 30
    assert updated.settings["webhooks"] == [1]  # another part of the platform's key, untouched
    assert "policy" not in updated.settings  # an emptied section is gone
    assert campaign_spec(campaign=updated)["instructions"] == campaign.instructions


# -- every bad input: a clear message, nothing created ---------------------------------------------------------------

BASE = {"name": "bad-one", "title": "Bad", "instructions": "Judge."}


@pytest.mark.parametrize(("given", "field", "message"), [
    ({"acquisition_strategy": "psychic"}, "acquisition_strategy", "Select a valid choice. psychic"),
    ({"policy_optimizer": "ppo"}, "policy_optimizer", "Select a valid choice. ppo"),
    ({"prompts_per_round": -3}, "prompts_per_round", "greater than or equal to 1"),
    ({"train_prompts": -1}, "train_prompts", "greater than or equal to 0"),
    ({"pairs_per_round": 0}, "pairs_per_round", "greater than or equal to 1"),
    ({"gold_share": 1.5}, "gold_share", "less than or equal to 1"),
    ({"seed": 2.5}, "seed", "whole number"),
    ({"overlap": 0}, "overlap", "greater than or equal to 1"),
    ({"pay_per_judgement": "-1"}, "pay_per_judgement", "greater than or equal to 0"),
    ({"pay_per_judgement": "0.00001"}, "pay_per_judgement", "no more than 4 decimal places"),
    ({"currency": "dollars"}, "currency", "three-letter ISO 4217 code"),
    ({"name": "Not a slug!"}, "name", "letters, numbers, underscores or hyphens"),
    ({"name": "2026"}, "name", "digits only would read as a campaign's id"),
    ({"money_budget": "2"}, "money_budget",
     "A money budget of 2 USD is below one round's estimated cost of 2.4 USD: 24 pairs x overlap 1 = 24 judgements "
     "at 0.1 USD = 2.4 USD"),
    ({"policy": {"learning_rate": "fast"}}, "policy", "policy.learning_rate must be a number; got 'fast'"),
    ({"policy_optimizer": "dpo", "policy": {"beta": 0.1, "nope": 1}}, "policy", "DPOConfig has no setting nope;"),
    ({"policy": {"seed": 3}}, "policy", "policy.seed cannot be set here"),
    ({"sampling": [1, 2]}, "sampling", "Give a mapping"),
    ({"gold_labeler": "/no/such/model"}, "gold_labeler", "neither 'vader' nor a directory"),
    ({"base_model_path": "/no/such/model"}, "base_model_path", "'/no/such/model': no such directory"),
    ({"task_kind": "rating", "policy_optimizer": "dpo"}, "non_field_errors", "DPO learns from preference pairs"),
    ({"task_kind": "rating", "acquisition_strategy": "thompson"}, "non_field_errors", "Thompson sampling chooses between two"),
])
def test_a_bad_field_is_named_with_a_clear_message_and_nothing_is_created(given, field, message):
    with pytest.raises(CampaignSpecInvalid) as refused:
        campaign_create(data={**BASE, **given}, created_by=None)
    assert message in " ".join(refused.value.details["fields"][field]), refused.value.details
    assert message in refused.value.message
    assert not Campaign.objects.exists()


def test_unknown_fields_and_a_spec_that_is_no_mapping_are_refused():
    with pytest.raises(InvalidInput, match="Unknown field\\(s\\) pairs_per_rund: the specification's fields are"):
        campaign_create(data={**BASE, "pairs_per_rund": 3}, created_by=None)
    with pytest.raises(InvalidInput, match="mapping of field names"):
        campaign_create(data=["name", "x"], created_by=None)
    assert not Campaign.objects.exists()


def test_the_base_model_directory_is_loaded_and_checked(word_policy_dir, no_tokenizer_dir, reward_model_dir, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "model.bin").write_bytes(b"weights")
    cases = {
        str(tmp_path / "model.bin"): "is a file, not a directory",
        str(tmp_path / "empty"): "holds no config.json, so it is no Hugging Face model directory",
        str(no_tokenizer_dir): "has no tokenizer (no tokenizer.json or vocabulary files)",
        str(reward_model_dir): "is GPT2ForSequenceClassification, not a causal language model",
    }
    for path, message in cases.items():
        with pytest.raises(CampaignSpecInvalid) as refused:
            campaign_create(data={**BASE, "base_model_path": path}, created_by=None)
        assert message in refused.value.details["fields"]["base_model_path"][0], path
    assert not Campaign.objects.exists()
    campaign = campaign_create(data={**BASE, "base_model_path": str(word_policy_dir)}, created_by=None)
    assert campaign.base_model_path == str(word_policy_dir)


@pytest.mark.skipif(shutil.os.geteuid() == 0, reason="root reads every directory")
def test_an_unreadable_model_directory_is_refused(word_policy_dir, tmp_path):
    folder = tmp_path / "locked"
    shutil.copytree(word_policy_dir, folder)
    folder.chmod(0)
    try:
        with pytest.raises(CampaignSpecInvalid, match="cannot be read"):
            campaign_create(data={**BASE, "base_model_path": str(folder)}, created_by=None)
    finally:
        folder.chmod(0o755)


def test_the_gold_labeler_must_be_a_reward_model(word_policy_dir, reward_model_dir):
    cases = {
        str(word_policy_dir): "is GPT2LMHeadModel, not a reward model",
        str(reward_model_dir.parent): "is a reward-model ensemble: name one member's folder",
    }
    for value, message in cases.items():
        with pytest.raises(CampaignSpecInvalid) as refused:
            campaign_create(data={**BASE, "gold_labeler": value}, created_by=None)
        assert message in refused.value.details["fields"]["gold_labeler"][0]
    assert not Campaign.objects.exists()
    campaign = campaign_create(data={**BASE, "gold_labeler": str(reward_model_dir)}, created_by=None)
    assert campaign.gold_labeler == str(reward_model_dir)


def test_a_name_never_changes_and_the_currency_not_once_money_was_recorded():
    campaign = CampaignFactory()
    with pytest.raises(CampaignSpecInvalid, match="A campaign's name cannot change"):
        campaign_update(campaign=campaign, data={"name": "renamed"}, changed_by=None)
    assert campaign_update(campaign=campaign, data={"currency": "GBP"}, changed_by=None).currency == "GBP"


def test_only_staff_create_campaigns(labeler):
    with pytest.raises(AccessDenied, match="Only staff"):
        campaign_create(data=BASE, created_by=labeler)
    assert not Campaign.objects.exists()


def test_unsafe_markdown_is_stripped_from_the_instructions():
    html = instructions_render("# Rules\n\n*Be kind.* <script>alert(1)</script>\n\n"
                               '<img src=x onerror="alert(2)"> [link](javascript:alert(3)) <b>bold</b>')
    assert "<h1>Rules</h1>" in html and "<em>Be kind.</em>" in html and "<b>bold</b>" in html
    assert "<script" not in html and "alert(1)" not in html and "onerror" not in html
    assert 'href="javascript' not in html


# -- the pages -------------------------------------------------------------------------------------------------------


def test_the_new_campaign_page_shows_grouped_fields_and_the_cost_of_a_round(staff_client):
    html = staff_client.get(reverse("setup:new")).content.decode()
    for text in ("Pay and budgets", "Round sizes", "Training settings (advanced)", 'name="pairs_per_round"',
                 "One round's cost", "24 pairs x overlap 1 = 24 judgements at 0.1 USD = 2.4 USD",
                 'hx-post="/staff/campaigns/new/preview/"'):
        assert text in html, text


def test_the_cost_preview_follows_the_form_without_saving(staff_client):
    data = page_post_data({**campaign_spec(campaign=Campaign()), "pairs_per_round": 10, "overlap": 3,
                           "instructions": "**Hi** <script>x()</script>", "money_budget": "1"})
    response = staff_client.post(reverse("setup:new_preview"), data, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert "10 pairs x overlap 3 = 30 judgements at 0.1 USD = 3 USD" in html
    assert "below one round&#x27;s estimated cost of 3 USD" in html  # the budget too small, said before saving
    assert "<strong>Hi</strong>" in html and "<script>" not in html
    assert not Campaign.objects.exists()


def test_a_refused_form_comes_back_with_its_messages_and_creates_nothing(staff_client):
    data = page_post_data({**campaign_spec(campaign=Campaign()), **BASE, "gold_share": "2", "money_budget": "1"})
    response = staff_client.post(reverse("setup:new"), data)
    html = response.content.decode()
    assert response.status_code == 400
    assert "Nothing was saved" in html and "less than or equal to 1" in html
    assert not Campaign.objects.exists()


def test_an_unchecked_box_on_the_page_turns_a_setting_off(staff):
    campaign = CampaignFactory(unconditional=True)
    data = page_post_data(campaign_spec(campaign=campaign))
    data["unconditional"] = "false"  # what the hidden input before the box posts when the box is unchecked
    response = client_of(staff).post(reverse("setup:edit", args=[campaign.name]), data)
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.unconditional is False


def test_who_may_open_the_set_up_pages(db):
    campaign, other = CampaignFactory(), CampaignFactory()
    manager = client_of(manager_of(campaign))
    labeler = client_of(LabelerFactory())
    assert manager.get(reverse("setup:campaigns")).status_code == 200
    assert manager.get(reverse("setup:edit", args=[campaign.name])).status_code == 200
    assert manager.get(reverse("setup:prompts", args=[campaign.name])).status_code == 200
    assert manager.get(reverse("setup:new")).status_code == 403
    assert manager.post(reverse("setup:new"), page_post_data({**campaign_spec(campaign=Campaign()), **BASE})
                        ).status_code == 403
    response = manager.post(reverse("setup:edit", args=[other.name]), {"title": "Taken over"})
    assert response.status_code == 403 and "do not manage" in response.content.decode()
    assert manager.get(reverse("setup:prompts", args=[other.name])).status_code == 403
    assert labeler.get(reverse("setup:campaigns")).status_code == 403
    assert Client().get(reverse("setup:campaigns")).status_code == 302  # to the login page
    other.refresh_from_db()
    assert other.title != "Taken over" and Campaign.objects.count() == 2


def test_a_manager_edits_their_campaign(db):
    campaign = CampaignFactory()
    data = page_post_data({**campaign_spec(campaign=campaign), "title": "Renamed title", "pairs_per_round": 12})
    response = client_of(manager_of(campaign)).post(reverse("setup:edit", args=[campaign.name]), data)
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.title == "Renamed title" and campaign.settings["pairs_per_round"] == 12


def test_a_manager_cannot_name_folders_on_the_server(word_policy_dir, dataset_dir):
    campaign = CampaignFactory()
    manager = manager_of(campaign)
    for change in ({"base_model_path": str(word_policy_dir)}, {"gold_labeler": str(word_policy_dir)}):
        with pytest.raises(AccessDenied, match="Only staff may change .*: they name folders on the server"):
            campaign_update(campaign=campaign, data=change, changed_by=manager)
    assert campaign_update(campaign=campaign, data={"gold_labeler": "vader"}, changed_by=manager).gold_labeler == "vader"
    response = client_of(manager).post(reverse("setup:prompts", args=[campaign.name]),
                                       {"dataset_dir": str(dataset_dir), "column": "question"})
    assert response.status_code == 403 and "Only staff may read a dataset folder" in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.base_model_path == "" and not campaign.prompts.exists()


# -- prompts --------------------------------------------------------------------------------------------------------


def upload(client, campaign, name: str, content: bytes, **fields):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(reverse("setup:prompts", args=[campaign.name]),
                       {"file": SimpleUploadedFile(name, content), **fields})


def test_the_prompts_page_adds_a_file_and_reports_what_it_skipped(staff_client):
    campaign = CampaignFactory()
    lines = [json.dumps({"prompt": f"Question {n}?"}) for n in range(10)] + ["{oops", json.dumps({"prompt": ""})]
    response = upload(staff_client, campaign, "p.jsonl", "\n".join(lines).encode(), heldout_fraction="0.2", seed="3")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Added 10 prompts" in html and "8 train, 2 held out; 2 skipped" in html
    assert "not JSON" in html and "empty" in html
    assert "<strong>8</strong> train prompts, <strong>2</strong> held out" in html


@pytest.mark.parametrize(("name", "content", "fields", "message"), [
    ("p.csv", b"id,text\n1,hello\n", {"column": "question"}, "The CSV has no column &#x27;question&#x27;"),
    ("p.txt", b"fine\n\xff\xfe bad\n", {}, "is not UTF-8 text (line 2"),
    ("p.txt", b"", {}, "holds no prompt to add: it is empty"),
    ("p.txt", b"fine\n", {"heldout_fraction": "abc"}, "heldout_fraction: Enter a number."),
])
def test_a_bad_upload_is_refused_on_the_page_and_adds_nothing(staff_client, name, content, fields, message):
    campaign = CampaignFactory()
    response = upload(staff_client, campaign, name, content, **fields)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not campaign.prompts.exists()


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(staff_client, monkeypatch):
    monkeypatch.setattr(prompt_service, "MAX_PROMPT_FILE_BYTES", 100)
    campaign = CampaignFactory()
    response = upload(staff_client, campaign, "big.txt", b"a prompt\n" * 20)
    assert response.status_code == 400 and "files of up to" in response.content.decode()
    assert not campaign.prompts.exists()


def test_the_plays_button_adds_the_campaigns_sizes_once(staff_client):
    campaign = CampaignFactory(settings={"train_prompts": 6, "heldout_prompts": 2})
    url = reverse("setup:prompts", args=[campaign.name])
    assert staff_client.post(url, {"plays": "true"}).status_code == 200
    assert campaign.prompts.filter(split=PromptSplit.TRAIN).count() == 6
    response = staff_client.post(url, {"plays": "true"})
    assert response.status_code == 400 and "already has 8 prompts" in response.content.decode()


@pytest.fixture
def dataset_dir(tmp_path):
    import datasets

    folder = tmp_path / "prompts-ds"
    rows = {"question": ["One?", "Two?", "Two?", "", "Three?"],
            "id": [1, 2, 3, 4, 5]}
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows)}).save_to_disk(str(folder))
    return folder


def test_a_dataset_folder_adds_its_train_split_with_the_file_rules(staff_client, dataset_dir):
    campaign = CampaignFactory()
    PromptFactory(campaign=campaign, text="Three?")
    response = staff_client.post(reverse("setup:prompts", args=[campaign.name]),
                                 {"dataset_dir": str(dataset_dir), "column": "question", "heldout_fraction": "0"})
    html = response.content.decode()
    assert response.status_code == 200 and "Added 2 prompts" in html
    assert "the same as row 2" in html and "already in the campaign" in html
    assert set(campaign.prompts.filter(source="dataset:prompts-ds").values_list("text", flat=True)) == {"One?", "Two?"}


def test_a_bad_dataset_folder_is_refused_and_adds_nothing(dataset_dir, tmp_path):
    import datasets

    campaign = CampaignFactory()
    plain = tmp_path / "plain"
    datasets.Dataset.from_dict({"prompt": ["Hi?"] * 3}).save_to_disk(str(plain))
    (tmp_path / "not-a-dataset").mkdir()
    cases = [
        ({"path": str(dataset_dir)}, "The dataset has no column 'prompt'; its columns: question, id"),
        ({"path": str(dataset_dir), "column": "id"}, "holds no prompt to add (5 rows skipped, the first: row 1, not "
                                                     "text (int))"),
        ({"path": str(tmp_path / "not-a-dataset")}, "is not a dataset saved with datasets' save_to_disk"),
        ({"path": str(tmp_path / "missing")}, "no such folder on this server"),
        ({"path": str(plain), "heldout_fraction": 1.0}, "held-out fraction must be at least 0 and below 1"),
    ]
    for options, message in cases:
        with pytest.raises(InvalidInput) as refused:
            campaign_prompts_from_dataset_dir(campaign=campaign, **options)
        assert message in refused.value.message, refused.value.message
    assert not campaign.prompts.exists()
    assert campaign_prompts_from_dataset_dir(campaign=campaign, path=str(plain), heldout_fraction=0).train == 1
    assert Prompt.objects.filter(campaign=campaign).count() == 1


def test_the_campaign_list_shows_what_a_user_may_set_up(staff_client):
    campaign = CampaignFactory(title="Sentiment")
    PromptFactory(campaign=campaign, split=PromptSplit.HELDOUT)
    html = staff_client.get(reverse("setup:campaigns")).content.decode()
    assert "New campaign" in html and "Sentiment" in html and "0 / 1" in html
    manager_html = client_of(manager_of(campaign)).get(reverse("setup:campaigns")).content.decode()
    assert "Sentiment" in manager_html and "New campaign" not in manager_html


def test_the_admin_shows_the_settings_indented_and_links_to_the_checked_page(staff_client):
    campaign = CampaignFactory(settings={"pairs_per_round": 3, "policy": {"beta": 0.1}})
    html = staff_client.get(reverse("admin:annotator_campaign_change", args=[campaign.pk])).content.decode()
    assert '\n  &quot;pairs_per_round&quot;: 3' in html
    assert reverse("setup:edit", args=[campaign.name]) in html
