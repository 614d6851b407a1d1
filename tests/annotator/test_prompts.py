"""A campaign's prompts are always chosen: the plays' openings by command, and no round without prompts."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from annotator.core.errors import InvalidInput
from annotator.models import Prompt, PromptSplit, Round
from annotator.rounds.state_machine import round_start
from annotator.services.prompts import (
    MAX_PROMPT_FILE_BYTES,
    PLAYS_SOURCE,
    campaign_prompts_from_file,
    campaign_prompts_from_plays,
)
from tests.factories import CampaignFactory, PromptFactory

pytestmark = pytest.mark.django_db


def test_a_campaign_without_train_prompts_cannot_start_a_round():
    campaign = CampaignFactory()
    PromptFactory(campaign=campaign, split=PromptSplit.HELDOUT)  # held-out prompts alone give nothing to train on
    with pytest.raises(InvalidInput, match=f"has no train prompts.*campaign_prompts --campaign {campaign.name} --plays"):
        round_start(campaign=campaign)
    assert not Round.objects.filter(campaign=campaign).exists()
    assert list(Prompt.objects.filter(campaign=campaign).values_list("split", flat=True)) == [PromptSplit.HELDOUT]


def test_run_round_says_what_to_do_about_missing_prompts():
    campaign = CampaignFactory()
    with pytest.raises(CommandError, match="no train prompts"):
        call_command("run_round", campaign=campaign.name, stdout=StringIO())


def test_the_plays_prompts_follow_the_campaign_settings_and_are_added_once():
    campaign = CampaignFactory(settings={"train_prompts": 12, "heldout_prompts": 5, "seed": 3})
    out = StringIO()
    call_command("campaign_prompts", campaign=campaign.name, plays=True, stdout=out)
    assert "Added 17 prompts from the plays" in out.getvalue() and "12 train, 5 held out" in out.getvalue()
    prompts = Prompt.objects.filter(campaign=campaign)
    assert set(prompts.values_list("source", flat=True)) == {PLAYS_SOURCE}
    assert (prompts.filter(split=PromptSplit.TRAIN).count(), prompts.filter(split=PromptSplit.HELDOUT).count()) == (12, 5)
    assert len(set(prompts.values_list("text", flat=True))) == 17  # no prompt is both trained on and held out

    other = CampaignFactory()  # the same seed draws the same openings
    campaign_prompts_from_plays(campaign=other, train=12, heldout=5, seed=3)
    assert sorted(other.prompts.values_list("text", "split")) == sorted(prompts.values_list("text", "split"))

    with pytest.raises(CommandError, match="already has 17 prompts"):
        call_command("campaign_prompts", campaign=campaign.name, plays=True, train=3, stdout=StringIO())
    assert prompts.count() == 17


def test_campaign_prompts_refuses_bad_input_with_a_clear_message():
    campaign = CampaignFactory()
    with pytest.raises(CommandError, match="No campaign 'nope'"):
        call_command("campaign_prompts", campaign="nope", plays=True)
    with pytest.raises(CommandError, match="Say where the prompts come from"):
        call_command("campaign_prompts", campaign=campaign.name)
    with pytest.raises(CommandError, match="at least 1 train prompt"):
        call_command("campaign_prompts", campaign=campaign.name, plays=True, train=0)
    with pytest.raises(CommandError, match="at least 1 train prompt"):
        call_command("campaign_prompts", campaign=campaign.name, plays=True, heldout=-1)
    assert not Prompt.objects.filter(campaign=campaign).exists()


def import_file(campaign, tmp_path, name, content: bytes | str, **options) -> str:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    out = StringIO()
    call_command("campaign_prompts", campaign=campaign.name, file=str(path), stdout=out, **options)
    return out.getvalue()


def test_a_jsonl_file_adds_its_prompts_split_by_seed_and_reports_what_it_skipped(tmp_path):
    campaign = CampaignFactory(settings={"seed": 4})
    PromptFactory(campaign=campaign, text="Already here")
    lines = [json.dumps({"prompt": f"Prompt {n}"}) for n in range(20)] + [
        json.dumps({"messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hello?"},
                                 {"role": "assistant", "content": "Hi."}]}),
        json.dumps({"prompt": "Prompt 3"}),  # a duplicate within the file
        json.dumps({"prompt": "Already here"}),
        json.dumps({"prompt": "   "}),
        "{not json",
        json.dumps({"text": "no prompt field"}),
        json.dumps({"prompt": "x" * 5000}),
        "",
    ]
    out = import_file(campaign, tmp_path, "prompts.jsonl", "\n".join(lines), heldout_fraction=0.25)
    assert "Added 21 prompts from prompts.jsonl" in out and "16 train, 5 held out (seed 4); 6 lines skipped" in out
    for expected in ("line 22: the same as line 4", "line 23: already in the campaign", "line 24: empty",
                     "line 25: not JSON", "line 26: no 'prompt' text and no 'messages'",
                     "line 27: longer than 4000 characters"):
        assert expected in out, out
    added = Prompt.objects.filter(campaign=campaign, source="file:prompts.jsonl")
    assert added.filter(text="Be kind.\nHello?").exists()  # the turns up to the last user turn
    heldout = set(added.filter(split=PromptSplit.HELDOUT).values_list("text", flat=True))

    again = CampaignFactory(settings={"seed": 4})  # the same file and seed hold out the same prompts
    PromptFactory(campaign=again, text="Already here")
    import_file(again, tmp_path, "prompts.jsonl", "\n".join(lines), heldout_fraction=0.25)
    assert set(again.prompts.filter(split=PromptSplit.HELDOUT).values_list("text", flat=True)) == heldout


def test_csv_and_text_files(tmp_path):
    campaign = CampaignFactory()
    out = import_file(campaign, tmp_path, "p.csv", "id,question\n1,How are you?\n2,\n3,\"Tell me, why?\"\n",
                      column="question", heldout_fraction=0)
    assert "Added 2 prompts" in out and "line 3: empty" in out
    assert set(campaign.prompts.values_list("text", flat=True)) == {"How are you?", "Tell me, why?"}
    out = import_file(campaign, tmp_path, "p.txt", "\ufeffOne line\n\nHow are you?\nAnother line\n", heldout_fraction=0)
    assert "Added 2 prompts" in out and "already in the campaign" in out
    assert campaign.prompts.filter(text="One line").exists()  # the byte-order mark is not part of the prompt


@pytest.mark.parametrize(("name", "content", "options", "message"), [
    ("p.csv", "id,text\n1,hello\n", {}, "no column 'prompt'; its columns: id, text"),
    ("p.csv", "id,text\n1,hello\n", {"column": "question"}, "no column 'question'"),
    ("p.txt", b"good line\n\xff\xfe bad bytes\n", {}, "is not UTF-8 text \\(line 2"),
    ("p.txt", "", {}, "holds no prompt to add: it is empty"),
    ("p.jsonl", "{bad\n[1]\n", {}, "2 lines skipped, the first: line 1, not JSON"),
    ("p.parquet", "x", {}, "name a .jsonl, .csv or .txt file"),
    ("p.txt", "fine\n", {"heldout_fraction": 1.0}, "held-out fraction must be at least 0 and below 1"),
])
def test_a_bad_file_is_refused_with_a_clear_message_and_adds_nothing(tmp_path, name, content, options, message):
    campaign = CampaignFactory()
    with pytest.raises(CommandError, match=message):
        import_file(campaign, tmp_path, name, content, **options)
    assert not campaign.prompts.exists()


def test_a_file_over_the_size_limit_is_refused(tmp_path, monkeypatch):
    campaign = CampaignFactory()
    with pytest.raises(InvalidInput, match="files of up to 20 MB"):
        campaign_prompts_from_file(campaign=campaign, data=b"x\n" * (MAX_PROMPT_FILE_BYTES // 2 + 1), name="big.txt")
    with pytest.raises(CommandError, match="No file"):
        call_command("campaign_prompts", campaign=campaign.name, file=str(tmp_path / "missing.txt"))
    assert not campaign.prompts.exists()
