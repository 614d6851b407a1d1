"""The leaderboard as plain text, for `manage.py evaluate --show`, `run_round`'s summary and the demo."""


def _num(value, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _interval(low, high, digits: int = 0) -> str:
    return "" if low is None or high is None else f"[{low:.{digits}f}, {high:.{digits}f}]"


def _percent(value) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def leaderboard_text(data: dict, *, answers: int | None = None) -> str:
    """The standings (ratings with 95 % intervals, length-controlled, win rate against the base), the blind
    ratings, the over-optimisation sentence and the recommended checkpoint."""
    lines = []
    head = f"Leaderboard: {data['battles']} battles"
    if answers is not None:
        head += f", {answers} evaluation answers"
    lines.append(head + f" (Bradley-Terry, base = 1000, 95 % bootstrap intervals; {data['tie_rule']})")
    if data["standings"]:
        header = (f"  {'checkpoint':<16} {'KL':>5}  {'rating':>6} {'interval':<13} {'length-ctl':>10} "
                  f"{'interval':<13} {'battles':>7}  {'win vs base':>11} {'interval':<11}")
        lines += [header, "  " + "-" * (len(header) - 2)]
        recommended = (data.get("recommended") or {}).get("checkpoint_id")
        for row in data["standings"]:
            mark = " *" if row["checkpoint_id"] == recommended else ""
            win = "" if row["win_rate_vs_baseline"] is None else _interval(
                100 * row["win_rate_low"], 100 * row["win_rate_high"])
            lines.append(
                f"  {row['name'] + mark:<16} {_num(row['kl'], 2):>5}  {_num(row['rating']):>6} "
                f"{_interval(row['rating_low'], row['rating_high']):<13} {_num(row['lc_rating']):>10} "
                f"{_interval(row['lc_rating_low'], row['lc_rating_high']):<13} {row['battles']:>7}  "
                f"{_percent(row['win_rate_vs_baseline']):>11} {win:<11}"
            )
        if data.get("length_coefficient") is not None:
            lines.append(f"  length coefficient {data['length_coefficient']:+.2f} "
                         f"{_interval(data['length_coefficient_low'], data['length_coefficient_high'], 2)} "
                         "(logits per unit of relative length difference; > 0: the longer text wins more)")
    else:
        lines.append("  no battles answered yet")
    if data.get("not_yet_linked"):
        lines.append(f"  not yet linked to the base by battles: {', '.join(data['not_yet_linked'])}")
    if data["ratings"]:
        lines.append("Blind ratings (positive 1, neutral 0, negative -1):")
        for row in data["ratings"]:
            lines.append(f"  {row['name']:<16} n {row['n']:>3}  +{row['positive']} ={row['neutral']} -{row['negative']}  "
                         f"mean {_num(row['mean'], 2)} {_interval(row['low'], row['high'], 2)}")
        for row in data["rating_comparisons"]:
            lines.append(f"  {row['name_y']} minus {row['name_x']}: {_num(row['difference'], 2)} "
                         f"{_interval(row['low'], row['high'], 2)}")
    lines.append(f"Over-optimisation: {data['overoptimization']['sentence']}")
    if data.get("recommended"):
        lines.append(f"Recommended (*): {data['recommended']['reason']}")
    return "\n".join(lines)
