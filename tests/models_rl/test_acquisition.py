"""Pair acquisition: disagreement / uncertainty / information gain / random scores, a random control share, a
per-prompt cap."""

import io
import json
import math

import pytest

from models_rl.acquisition import AcquisitionConfig, CandidatePair, main, score_pairs, select_pairs


def pair(key, prompt_key, rewards_a, rewards_b) -> CandidatePair:
    return CandidatePair(key=key, prompt_key=prompt_key, member_rewards_a=rewards_a, member_rewards_b=rewards_b)


def mixed_candidates() -> list[CandidatePair]:
    """Even keys: the three members disagree on the winner; odd keys: they agree that A wins clearly."""
    return [pair(k, f"prompt-{k}", [2.0, -2.0, 0.5], [0.0, 0.0, 0.0]) if k % 2 == 0
            else pair(k, f"prompt-{k}", [3.0, 3.1, 2.9], [0.0, 0.0, 0.0]) for k in range(40)]


def test_scores_follow_their_definitions():
    agree = pair(1, "p", [1.0, 1.0], [0.0, 0.0])
    split = pair(2, "p", [2.0, -2.0], [0.0, 0.0])
    even = pair(3, "p", [0.5, 0.5], [0.5, 0.5])
    disagreement = score_pairs([agree, split, even], "disagreement")
    assert disagreement[0] == pytest.approx(0) and disagreement[2] == pytest.approx(0) and disagreement[1] > 0.3
    uncertainty = score_pairs([agree, split, even], "uncertainty")
    assert uncertainty[2] == pytest.approx(0.25) and uncertainty[1] == pytest.approx(0.25)  # mean p is 0.5
    assert uncertainty[0] < 0.25
    random_scores = score_pairs([agree, split, even], "random", seed=1)
    assert random_scores == score_pairs([agree, split, even], "random", seed=1)
    assert all(0 <= s < 1 for s in random_scores)


def test_information_gain_is_the_mutual_information_between_label_and_member():
    agree = pair(1, "p", [1.0, 1.0], [0.0, 0.0])  # sure and agreeing: nothing to learn about the members
    even = pair(2, "p", [0.5, 0.5], [0.5, 0.5])  # both say coin toss: the label is noise, no information either
    split = pair(3, "p", [20.0, -20.0], [0.0, 0.0])  # both sure, opposite: the label says which one is right
    lean = pair(4, "p", [1.0, -1.0], [0.0, 0.0])
    gain = score_pairs([agree, even, split, lean], "information_gain")
    assert gain[0] == pytest.approx(0, abs=1e-9) and gain[1] == pytest.approx(0, abs=1e-9)
    assert gain[2] == pytest.approx(math.log(2), abs=1e-6)  # one bit, in nats
    p = 1 / (1 + math.exp(-1))
    entropy = -(p * math.log(p) + (1 - p) * math.log(1 - p))
    assert gain[3] == pytest.approx(math.log(2) - entropy)
    # p (1 - p) rates the coin toss and the confident split alike: mean p is 0.5 for both.
    assert score_pairs([even, split], "uncertainty") == pytest.approx([0.25, 0.25])


def test_information_gain_selection_prefers_confident_splits():
    selected = select_pairs(mixed_candidates(), AcquisitionConfig(batch_size=10, strategy="information_gain",
                                                                  random_share=0.0, max_per_prompt=1))
    assert len(selected) == 10 and all(s.key % 2 == 0 for s in selected)


def test_disagreement_selection_prefers_pairs_the_ensemble_disagrees_on():
    selected = select_pairs(mixed_candidates(), AcquisitionConfig(batch_size=10, strategy="disagreement",
                                                                  random_share=0.0))
    assert len(selected) == 10 and all(s.key % 2 == 0 and not s.is_control for s in selected)
    assert [s.score for s in selected] == sorted((s.score for s in selected), reverse=True)


def test_uncertainty_selection_prefers_coin_tosses():
    candidates = [pair(k, k, [0.1 * k], [0.0]) for k in range(30)]
    selected = select_pairs(candidates, AcquisitionConfig(batch_size=5, strategy="uncertainty", random_share=0.0))
    assert [s.key for s in selected] == [0, 1, 2, 3, 4]


def completions_pairs(prompt, rewards_by_completion):
    """Every pair of a prompt's completions; rewards_by_completion[c] holds each member's reward of completion c."""
    n = len(rewards_by_completion)
    return [pair((prompt, i, j), prompt, rewards_by_completion[i], rewards_by_completion[j])
            for i in range(n) for j in range(i + 1, n)]


def test_thompson_pairs_the_best_completion_of_one_member_with_the_best_of_another():
    # Two members: member 0 likes completion 0 best, member 1 completion 3; completions 1 and 2 are middling.
    rewards = [[5.0, 0.0], [1.0, 1.0], [0.5, 0.5], [0.0, 5.0]]
    candidates = completions_pairs("p", rewards) + completions_pairs("q", rewards)
    scores = score_pairs(candidates, "thompson", seed=3)
    picked = [c.key for c, s in zip(candidates, scores) if s >= 1]
    assert picked == [("p", 0, 3), ("q", 0, 3)]  # one pair a prompt, whichever member was drawn first
    uncertainty = score_pairs(candidates, "uncertainty")
    expected = [u + (1 if c.key in picked else 0) for c, u in zip(candidates, uncertainty)]
    assert scores == pytest.approx(expected)


def test_thompson_draws_members_by_seed_and_a_batch_takes_one_pair_of_each_prompt_first():
    # Three members, each with its own favourite: which pair a prompt gets depends on the two members drawn.
    rewards = [[5.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 5.0], [1.0, 1.0, 1.0]]
    candidates = [c for prompt in range(12) for c in completions_pairs(f"prompt-{prompt}", rewards)]

    def picks(seed):
        return [c.key[1:] for c, s in zip(candidates, score_pairs(candidates, "thompson", seed=seed)) if s >= 1]

    assert picks(1) == picks(1) and len(picks(1)) == 12
    assert set(picks(1)) <= {(0, 1), (0, 2), (1, 2)}  # the favourites of two distinct members
    assert len(set(picks(1))) > 1 and any(picks(seed) != picks(1) for seed in range(2, 6))
    selected = select_pairs(candidates, AcquisitionConfig(batch_size=12, strategy="thompson", random_share=0.0,
                                                          max_per_prompt=2, seed=1))
    assert sorted(s.key[0] for s in selected) == sorted(f"prompt-{p}" for p in range(12))


def test_a_share_of_the_batch_is_random_control():
    config = AcquisitionConfig(batch_size=10, strategy="disagreement", random_share=0.3, seed=5)
    selected = select_pairs(mixed_candidates(), config)
    control = [s for s in selected if s.is_control]
    assert len(selected) == 10 and len(control) == 3
    assert all(s.key % 2 == 0 for s in selected if not s.is_control)
    assert len({s.key for s in selected}) == 10
    assert select_pairs(mixed_candidates(), config) == selected
    other_seeds = [[s.key for s in select_pairs(mixed_candidates(), AcquisitionConfig(batch_size=10, random_share=0.3,
                                                                                      seed=seed)) if s.is_control]
                   for seed in range(6, 12)]
    assert any(keys != [s.key for s in control] for keys in other_seeds)


def test_no_prompt_appears_more_often_than_the_cap():
    candidates = [pair((p, i), f"prompt-{p}", [2.0, -2.0], [0.0, 0.0]) for p in range(3) for i in range(10)]
    selected = select_pairs(candidates, AcquisitionConfig(batch_size=20, random_share=0.5, max_per_prompt=2))
    per_prompt = [sum(1 for s in selected if s.key[0] == p) for p in range(3)]
    assert per_prompt == [2, 2, 2]  # the cap leaves only six pairs, fewer than the batch


def test_bad_input_is_refused_with_a_clear_message():
    for strategy in ("disagreement", "information_gain", "thompson"):
        with pytest.raises(ValueError, match=f"the {strategy} strategy needs .* at least 2 members"):
            score_pairs([pair(1, "p", [1.0], [0.0])], strategy)
    with pytest.raises(ValueError, match="same, non-zero number"):
        score_pairs([pair(1, "p", [1.0, 2.0], [0.0]), pair(2, "p", [1.0, 2.0], [0.0, 1.0])], "uncertainty")
    with pytest.raises(ValueError, match="unknown acquisition strategy"):
        score_pairs([pair(1, "p", [1.0], [0.0])], "entropy")
    with pytest.raises(ValueError, match="random_share"):
        select_pairs([], AcquisitionConfig(batch_size=4, random_share=1.5))
    assert select_pairs([], AcquisitionConfig(batch_size=4)) == []


def test_command_line_selects_from_json_lines(monkeypatch, capsys):
    lines = [json.dumps({"key": c.key, "prompt_key": c.prompt_key, "member_rewards_a": c.member_rewards_a,
                         "member_rewards_b": c.member_rewards_b}) for c in mixed_candidates()]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines)))
    main(["--batch-size", "4", "--random-share", "0.25"])
    selected = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(selected) == 4 and sum(s["is_control"] for s in selected) == 1
