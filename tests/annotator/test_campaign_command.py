"""manage.py campaign create / show / update: the YAML face of the campaign specification."""

from io import StringIO

import pytest
import yaml
from django.core.management import CommandError, call_command

from annotator.models import Campaign
from annotator.services.campaign_setup import campaign_spec

pytestmark = pytest.mark.django_db

CAMPAIGN_YAML = """\
name: helpful-answers
title: Helpful answers
instructions: |
  ## Pick the more *helpful* answer

  - Prefer correct over long.
task_kind: pairwise
overlap: 2
currency: EUR
pay_per_judgement: 0.25
money_budget: 500
policy_optimizer: best_of_n
acquisition_strategy: disagreement
gold_labeler: vader
pairs_per_round: 40
gold_share: 0.05
seed: 7
sampling:
  temperature: 0.8
"""


def run(*args) -> str:
    out = StringIO()
    call_command("campaign", *args, stdout=out)
    return out.getvalue()


def write(tmp_path, text: str, name: str = "campaign.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_create_show_and_create_back(tmp_path):
    out = run("create", "--file", write(tmp_path, CAMPAIGN_YAML))
    assert "Created campaign 'helpful-answers'" in out
    assert "one round: 40 pairs x overlap 2 = 80 judgements at 0.25 EUR = 20 EUR" in out
    campaign = Campaign.objects.get(name="helpful-answers")
    assert campaign.instructions.startswith("## Pick the more *helpful* answer\n\n- Prefer")
    assert str(campaign.pay_per_judgement) == "0.2500" and campaign.settings["sampling"] == {"temperature": 0.8}

    shown = run("show", "helpful-answers")
    assert "# Round sizes\n" in shown and "instructions: |" in shown  # grouped, and the Markdown as written
    assert yaml.safe_load(shown) == campaign_spec(campaign=campaign)

    run("create", "--file", write(tmp_path, shown, "shown.yaml"), "--name", "helpful-copy")
    copy = campaign_spec(campaign=Campaign.objects.get(name="helpful-copy"))
    assert {**copy, "name": "helpful-answers"} == campaign_spec(campaign=campaign)


def test_update_changes_the_fields_the_file_gives(tmp_path):
    run("create", "--file", write(tmp_path, CAMPAIGN_YAML))
    out = run("update", "helpful-answers", "--file", write(tmp_path, "pairs_per_round: 10\nsampling: {}\n", "u.yaml"))
    assert "Updated campaign 'helpful-answers'" in out
    campaign = Campaign.objects.get(name="helpful-answers")
    assert campaign.settings["pairs_per_round"] == 10 and "sampling" not in campaign.settings
    assert campaign.title == "Helpful answers" and campaign.overlap == 2


def test_every_bad_field_is_named_and_nothing_is_created(tmp_path):
    text = CAMPAIGN_YAML.replace("pairs_per_round: 40", "pairs_per_round: 0").replace(
        "acquisition_strategy: disagreement", "acquisition_strategy: clairvoyance").replace(
        "gold_share: 0.05", "gold_share: 3")
    with pytest.raises(CommandError) as refused:
        run("create", "--file", write(tmp_path, text))
    message = str(refused.value)
    assert "Refused (nothing was created); the specification has 3 problem(s)" in message
    assert "acquisition_strategy: Select a valid choice. clairvoyance" in message
    assert "pairs_per_round: Ensure this value is greater than or equal to 1." in message
    assert "gold_share: Ensure this value is less than or equal to 1." in message
    assert not Campaign.objects.exists()


def test_a_budget_below_one_round_is_refused_with_the_estimate(tmp_path):
    with pytest.raises(CommandError, match="money_budget: A money budget of 15 EUR is below one round's estimated "
                                           "cost of 20 EUR: 40 pairs x overlap 2"):
        run("create", "--file", write(tmp_path, CAMPAIGN_YAML.replace("money_budget: 500", "money_budget: 15")))
    assert not Campaign.objects.exists()


@pytest.mark.parametrize(("text", "message"), [
    ("name: [unclosed\n", "is not valid YAML"),
    ("- a list\n- not a mapping\n", "a mapping of field names to values"),
    ("", "a mapping of field names to values"),
    (CAMPAIGN_YAML + "pairs_per_rund: 3\n", "pairs_per_rund: Unknown field; the specification.s fields are name, "),
    (CAMPAIGN_YAML.replace("gold_labeler: vader", "gold_labeler: /no/such/reward-model"),
     "gold_labeler: Gold labeler '/no/such/reward-model': neither 'vader' nor a directory"),
])
def test_a_bad_file_is_refused_with_a_clear_message(tmp_path, text, message):
    with pytest.raises(CommandError, match=message):
        run("create", "--file", write(tmp_path, text))
    assert not Campaign.objects.exists()


def test_missing_files_and_campaigns(tmp_path):
    with pytest.raises(CommandError, match="No file"):
        run("create", "--file", str(tmp_path / "missing.yaml"))
    with pytest.raises(CommandError, match="No campaign 'nope'"):
        run("show", "nope")
    with pytest.raises(CommandError, match="No campaign 'nope'"):
        run("update", "nope", "--file", write(tmp_path, "title: x\n"))
    (tmp_path / "latin1.yaml").write_bytes("title: caf\xe9\n".encode("latin-1"))
    with pytest.raises(CommandError, match="is not UTF-8 text"):
        run("create", "--file", str(tmp_path / "latin1.yaml"))


def test_a_name_cannot_change_on_update(tmp_path):
    run("create", "--file", write(tmp_path, CAMPAIGN_YAML))
    refusal = "(?s)Refused \\(nothing was changed\\).*name: A campaign's name cannot change"
    with pytest.raises(CommandError, match=refusal):
        run("update", "helpful-answers", "--file", write(tmp_path, "name: other\n", "u.yaml"))


def test_the_example_in_the_docs_creates_a_campaign(tmp_path, settings):
    docs = (settings.BASE_DIR / "docs" / "campaigns.md").read_text()
    example = docs.split("```yaml\n", 1)[1].split("```", 1)[0]
    out = run("create", "--file", write(tmp_path, example))
    assert "one round: 40 pairs x overlap 2 = 80 judgements at 0.25 EUR = 20 EUR" in out
    assert Campaign.objects.get(name="helpful-answers").settings["policy"] == {"beta": 0.2}
