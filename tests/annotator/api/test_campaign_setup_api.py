"""The campaign set-up API: create (staff), read and change (staff, the campaign's managers), estimate, prompts."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotator.models import Campaign, CampaignMembership, CampaignRole, Prompt
from annotator.services import prompts as prompt_service
from annotator.services.campaign_setup import campaign_spec
from tests.annotator.api.conftest import client_with_token
from tests.factories import CampaignFactory, UserFactory

pytestmark = pytest.mark.django_db

SPEC = {"name": "api-made", "title": "Made over the API", "instructions": "Pick the **kinder** reply.",
        "overlap": 3, "pay_per_judgement": 0.2, "money_budget": "100", "pairs_per_round": 10,
        "policy_optimizer": "dpo", "acquisition_strategy": "information_gain", "policy": {"beta": 0.2}}


def manager_api(campaign):
    user = UserFactory()
    CampaignMembership.objects.create(campaign=campaign, user=user, role=CampaignRole.MANAGER)
    return client_with_token(user)


def test_staff_create_a_campaign_and_get_its_spec_and_estimate(staff_api, word_policy_dir):
    response = staff_api.post("/api/campaigns/setup/", {**SPEC, "base_model_path": str(word_policy_dir)},
                              format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["spec"]["pay_per_judgement"] == "0.2" and body["spec"]["policy"] == {"beta": 0.2}
    assert body["estimate"]["judgements"] == 30 and body["estimate"]["labeling_cost"] == "6.0000"
    assert body["estimate"]["text"].startswith("10 pairs x overlap 3 = 30 judgements at 0.2 USD = 6 USD")
    assert body["prompts"] == {"train": 0, "heldout": 0}
    campaign = Campaign.objects.get(name="api-made")
    assert staff_api.get("/api/campaigns/api-made/setup/").json()["spec"] == campaign_spec(campaign=campaign)


def test_a_non_staff_user_cannot_create_a_campaign(api, db):
    response = api.post("/api/campaigns/setup/", SPEC, format="json")
    assert response.status_code == 403 and response.json()["detail"] == "Only staff may create a campaign."
    assert api.post("/api/campaigns/setup/preview/", SPEC, format="json").status_code == 403
    assert not Campaign.objects.exists()


@pytest.mark.parametrize(("given", "field", "message"), [
    ({"acquisition_strategy": "oracle"}, "acquisition_strategy", "Select a valid choice. oracle"),
    ({"policy_optimizer": "ppo"}, "policy_optimizer", "Select a valid choice. ppo"),
    ({"pairs_per_round": 0}, "pairs_per_round", "greater than or equal to 1"),
    ({"random_share": 1.2}, "random_share", "less than or equal to 1"),
    ({"max_pairs_per_prompt": -1}, "max_pairs_per_prompt", "greater than or equal to 0"),
    ({"money_budget": "5"}, "money_budget", "below one round's estimated cost of 6 USD"),
    ({"base_model_path": "/nowhere"}, "base_model_path", "no such directory"),
    ({"instructions": ""}, "instructions", "This field is required."),
    ({"colour": "blue"}, "colour", "Unknown field"),
])
def test_bad_input_is_a_400_naming_the_field(staff_api, given, field, message):
    response = staff_api.post("/api/campaigns/setup/", {**SPEC, **given}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and message in " ".join(body["fields"][field]), body
    assert not Campaign.objects.exists()


def test_bodies_that_are_no_specification(staff_api):
    for body in ([1, 2], "text", None):
        response = staff_api.post("/api/campaigns/setup/", json.dumps(body), content_type="application/json")
        assert response.status_code == 400, body
        assert "mapping of field names" in response.json()["detail"]
    assert not Campaign.objects.exists()


def test_a_model_without_a_tokenizer_is_refused(staff_api, word_policy_dir, tmp_path):
    import shutil

    for name in ("config.json", "model.safetensors"):
        shutil.copy(f"{word_policy_dir}/{name}", tmp_path / name)
    response = staff_api.post("/api/campaigns/setup/", {**SPEC, "base_model_path": str(tmp_path)}, format="json")
    assert response.status_code == 400
    assert "has no tokenizer" in response.json()["fields"]["base_model_path"][0]
    assert not Campaign.objects.exists()


def test_a_manager_changes_their_campaign_but_not_another(db):
    campaign, other = CampaignFactory(settings={"seed": 4, "kept": "yes"}), CampaignFactory()
    client = manager_api(campaign)
    response = client.patch(f"/api/campaigns/{campaign.name}/setup/", {"pairs_per_round": 8, "overlap": 2},
                            format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["estimate"]["judgements"] == 16
    campaign.refresh_from_db()
    assert campaign.settings["pairs_per_round"] == 8 and campaign.settings["kept"] == "yes"
    assert campaign.settings["seed"] == 4

    for method, url in (("patch", f"/api/campaigns/{other.name}/setup/"),
                        ("get", f"/api/campaigns/{other.name}/setup/"),
                        ("get", f"/api/campaigns/{other.name}/setup/estimate/"),
                        ("post", f"/api/campaigns/{other.name}/prompts/")):
        response = getattr(client, method)(url, {"title": "Mine now"}, format="json")
        assert response.status_code == 403, (method, url)
    other.refresh_from_db()
    assert other.title != "Mine now"


def test_a_patch_with_bad_fields_changes_nothing(staff_api):
    campaign = CampaignFactory()
    response = staff_api.patch(f"/api/campaigns/{campaign.name}/setup/",
                               {"title": "Changed", "gold_share": 2, "name": "other-name"}, format="json")
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"gold_share", "name"}
    campaign.refresh_from_db()
    assert campaign.title != "Changed"


def test_estimates_of_a_stored_and_an_edited_spec(staff_api):
    campaign = CampaignFactory(settings={"pairs_per_round": 5})
    body = staff_api.get(f"/api/campaigns/{campaign.name}/setup/estimate/").json()
    assert body["estimate"]["judgements"] == 5 and body["fields"] == {}
    body = staff_api.post(f"/api/campaigns/{campaign.name}/setup/estimate/", {"overlap": 4, "money_budget": "1"},
                          format="json").json()
    assert body["estimate"]["judgements"] == 20 and "money_budget" in body["fields"]
    body = staff_api.post("/api/campaigns/setup/preview/", {"pairs_per_round": -1}, format="json").json()
    assert body["estimate"] is None and "pairs_per_round" in body["fields"]
    assert Campaign.objects.count() == 1


def upload(client, campaign, name, content: bytes, **fields):
    return client.post(f"/api/campaigns/{campaign.name}/prompts/",
                       {"file": SimpleUploadedFile(name, content), **fields}, format="multipart")


def test_prompts_upload_reports_what_was_added_and_skipped(staff_api):
    campaign = CampaignFactory(settings={"seed": 2})
    content = "\n".join(["What is love?", "", "What is love?", "Why?", "How?"]).encode()
    response = upload(staff_api, campaign, "p.txt", content, heldout_fraction="0.34")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["train"], body["heldout"]) == (2, 1)
    assert body["skipped"] == [{"number": 3, "reason": "the same as line 1"}]
    assert body["prompts"] == {"train": 2, "heldout": 1}
    assert staff_api.get(f"/api/campaigns/{campaign.name}/prompts/").json() == {"train": 2, "heldout": 1}


@pytest.mark.parametrize(("name", "content", "fields", "message"), [
    ("p.csv", b"id,text\n1,hi\n", {"column": "question"}, "The CSV has no column 'question'; its columns: id, text"),
    ("p.jsonl", b'{"prompt": "ok"}\n\xc3\x28\n', {}, "is not UTF-8 text (line 2"),
    ("p.txt", b"", {}, "holds no prompt to add: it is empty"),
    ("p.pdf", b"%PDF", {}, "name a .jsonl, .csv or .txt file"),
])
def test_a_bad_prompt_file_is_a_400_and_adds_nothing(staff_api, name, content, fields, message):
    campaign = CampaignFactory()
    response = upload(staff_api, campaign, name, content, **fields)
    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert not Prompt.objects.exists()


def test_a_prompt_file_over_the_size_limit_is_a_400(staff_api, monkeypatch):
    monkeypatch.setattr(prompt_service, "MAX_PROMPT_FILE_BYTES", 64)
    campaign = CampaignFactory()
    response = upload(staff_api, campaign, "big.txt", b"a prompt\n" * 10)
    assert response.status_code == 400 and "files of up to" in response.json()["detail"]
    assert not Prompt.objects.exists()


def test_prompts_from_a_dataset_folder_and_the_plays(staff_api, tmp_path):
    import datasets

    campaign = CampaignFactory(settings={"train_prompts": 3, "heldout_prompts": 1})
    folder = tmp_path / "ds"
    datasets.Dataset.from_dict({"prompt": ["A?", "B?", "C?"]}).save_to_disk(str(folder))
    url = f"/api/campaigns/{campaign.name}/prompts/"
    response = staff_api.post(url, {"dataset_dir": str(folder), "heldout_fraction": 0}, format="json")
    assert response.status_code == 201 and response.json()["train"] == 3
    response = staff_api.post(url, {"dataset_dir": str(folder), "column": "text"}, format="json")
    assert response.status_code == 400 and "no column 'text'" in response.json()["detail"]
    response = staff_api.post(url, {"dataset_dir": str(tmp_path)}, format="json")
    assert response.status_code == 400 and "not a dataset saved with" in response.json()["detail"]
    response = staff_api.post(url, {"plays": True}, format="json")
    assert response.status_code == 400 and "already has 3 prompts" in response.json()["detail"]
    other = CampaignFactory(settings={"train_prompts": 3, "heldout_prompts": 1})
    response = staff_api.post(f"/api/campaigns/{other.name}/prompts/", {"plays": True}, format="json")
    assert response.status_code == 201 and response.json()["prompts"] == {"train": 3, "heldout": 1}


def test_a_prompts_request_names_exactly_one_source(staff_api):
    campaign = CampaignFactory()
    url = f"/api/campaigns/{campaign.name}/prompts/"
    assert "exactly one source" in staff_api.post(url, {}, format="json").json()["detail"]
    assert "exactly one source" in staff_api.post(url, {"plays": True, "dataset_dir": "/x"}, format="json"
                                                  ).json()["detail"]
    response = staff_api.post(url, {"plays": True, "sead": 1}, format="json")
    assert response.status_code == 400 and "Unknown field 'sead'" in response.json()["detail"]
