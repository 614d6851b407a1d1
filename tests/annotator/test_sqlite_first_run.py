"""The labeling hot path on SQLite, the database a first run (`make demo`) uses when DATABASE_URL is unset.

Its SQL is written by hand (annotator.services.rows), so SQLite's dialect is checked here, in a separate
process with its own settings: claim, reuse of a live lease, submit, the money check and comparisons closing.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json
from decimal import Decimal
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.test import Client
from rest_framework.authtoken.models import Token
from annotator.models import Comparison, Judgement, LedgerEntry
from annotator.selectors.budget import ledger_prefix_check
from tests.factories import CampaignFactory, ComparisonFactory, LabelerFactory

campaign = CampaignFactory(money_budget=Decimal("0.50"), pay_per_judgement=Decimal("0.10"),
                           platform_fee_percent=Decimal("0"), overlap=2)
ComparisonFactory.create_batch(3, campaign=campaign, judgements_wanted=2)
statuses = []
for user in LabelerFactory.create_batch(3):
    client = Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    while True:
        item = client.get(f"/api/campaigns/{campaign.name}/next/")
        if item.status_code != 200:
            statuses.append(item.status_code)
            break
        again = client.get(f"/api/campaigns/{campaign.name}/next/")
        assert again.json()["assignment_id"] == item.json()["assignment_id"], again.content
        answer = client.post(f"/api/assignments/{item.json()['assignment_id']}/judgement/",
                             json.dumps({"choice": "first", "milliseconds": 900}), content_type="application/json")
        assert answer.status_code == 201, answer.content
print(json.dumps({
    "statuses": statuses,
    "judgements": Judgement.objects.count(),
    "spent": str(sum(entry.amount for entry in LedgerEntry.objects.all())),
    "comparisons": sorted(Comparison.objects.values_list("judgements_received", "is_open")),
    "prefix_ok": ledger_prefix_check(campaign=campaign).ok,
}))
"""


def test_claim_reuse_and_submit_work_on_sqlite(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'first-run.sqlite3'}",
        "DEBUG": "1",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("CELERY_BROKER_URL", None)
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # Five items fit the budget (0.50 at 0.10 each). The first labeler answers all three comparisons and then
    # has nothing left (204); the second fills two of them, which close, and then, like the third, finds the
    # campaign paused for budget (402).
    assert result["judgements"] == 5 and result["spent"] == "0.5000"
    assert result["comparisons"] == [[1, True], [2, False], [2, False]]
    assert result["statuses"] == [204, 402, 402]
    assert result["prefix_ok"]
