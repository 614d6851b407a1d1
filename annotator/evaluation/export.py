"""A leaderboard snapshot as the staff page's CSV download and the API's JSON document: the one home of their
columns and keys, read by annotator.views.evaluation and annotator.api.views alike.

- `leaderboard_rows`: one row per checkpoint, its standing (ranked) joined with its blind ratings;
- `leaderboard_csv_text`: those rows as CSV, text a spreadsheet would run as a formula quoted;
- `leaderboard_document`: the snapshot's data with its id, its answer count and whether answers came in since.
"""

import csv
import io

from annotator.evaluation.selectors import evaluation_answer_count
from annotator.models import LeaderboardSnapshot

CSV_COLUMNS = [
    "rank", "checkpoint_id", "checkpoint", "kl", "rating", "rating_low", "rating_high", "lc_rating", "lc_rating_low",
    "lc_rating_high", "battles", "battles_vs_base", "win_rate_vs_base", "win_rate_low", "win_rate_high",
    "blind_ratings", "positive", "neutral", "negative", "blind_mean", "blind_mean_low", "blind_mean_high",
    "recommended",
]


def leaderboard_rows(data: dict) -> list[dict]:
    """One row per checkpoint of a snapshot: its standing (ranked) joined with its blind ratings; checkpoints that
    were only rated come last, unranked."""
    ratings = {r["checkpoint_id"]: r for r in data["ratings"]}
    recommended = (data.get("recommended") or {}).get("checkpoint_id")
    rows = []
    for rank, s in enumerate(data["standings"], start=1):
        rows.append({
            "rank": rank, "checkpoint_id": s["checkpoint_id"], "checkpoint": s["name"], "kl": s["kl"],
            "rating": s["rating"], "rating_low": s["rating_low"], "rating_high": s["rating_high"],
            "lc_rating": s["lc_rating"], "lc_rating_low": s["lc_rating_low"], "lc_rating_high": s["lc_rating_high"],
            "battles": s["battles"], "battles_vs_base": s["battles_vs_baseline"],
            "win_rate_vs_base": s["win_rate_vs_baseline"], "win_rate_low": s["win_rate_low"],
            "win_rate_high": s["win_rate_high"],
        })
    ranked = {row["checkpoint_id"] for row in rows}
    rows += [{"rank": None, "checkpoint_id": r["checkpoint_id"], "checkpoint": r["name"]}
             for r in data["ratings"] if r["checkpoint_id"] not in ranked]
    for row in rows:
        given = ratings.get(row["checkpoint_id"], {})
        row.update({"blind_ratings": given.get("n"), "positive": given.get("positive"),
                    "neutral": given.get("neutral"), "negative": given.get("negative"), "blind_mean": given.get("mean"),
                    "blind_mean_low": given.get("low"), "blind_mean_high": given.get("high"),
                    "recommended": "yes" if row["checkpoint_id"] == recommended else ""})
        for column in CSV_COLUMNS:
            row.setdefault(column, None)
    return rows


def _csv_cell(value) -> str:
    """Empty for None; text a spreadsheet would run as a formula gets a leading quote."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if isinstance(value, str) and text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def leaderboard_csv_text(data: dict) -> str:
    """A snapshot's `leaderboard_rows` as CSV, with a header row of CSV_COLUMNS."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in leaderboard_rows(data):
        writer.writerow([_csv_cell(row[column]) for column in CSV_COLUMNS])
    return out.getvalue()


def leaderboard_document(*, snapshot: LeaderboardSnapshot) -> dict:
    """The snapshot's data (standings, ratings, the over-optimisation view, `recommended`) with its id, the answers it
    was computed from, and the answers given since (one count query): `stale` when there are any."""
    since = max(evaluation_answer_count(campaign=snapshot.campaign) - snapshot.answers, 0)
    return {
        "campaign": snapshot.campaign.name, "snapshot_id": snapshot.pk, "answers": snapshot.answers,
        "answers_since": since, "stale": since > 0, **snapshot.data,
    }
