"""Label efficiency of pair acquisition on the embedded default: how many labels a reward model, and the RL policy
trained on it, need to reach a target gold agreement (win rate) when pairs are chosen by the campaign's acquisition,
by other strategies, and at random.

Everything goes through models_rl (no site, no Django):

1. candidate pool: the base model samples 4 completions (`--samples-per-prompt`) of each of 600 training prompts
   (`--pool-prompts`) once; every pair of completions of one prompt is a candidate (6 a prompt, 3,600 in all).
   The gold-evaluation set is drawn the same way from 500 held-out prompts (`--eval-prompts`) that are never in
   the pool: all their pairs, those with equal VADER scores left out, ordered by noiseless VADER. Both are cached.
2. per seed and arm: the same random first batch (50 labels, identical in every arm), then rounds up to each
   label count in `--budgets`: train the reward model on all labels so far (the demo's bag of tokens: embeddings
   features, mean pooling, lr 0.01, 20 epochs, weight decay 1.0, max length 96; an ensemble of 3 for the
   disagreement), measure its `eval/gold_agreement` (models_rl.reward_model: the share of evaluation pairs the
   ensemble mean orders as VADER does), score the pool with every member and let the arm's acquisition
   (`models_rl.acquisition.select_pairs`, the campaign's settings: 20 % random control share, at most 2 pairs of a
   prompt per batch) choose the next unlabelled pairs. The noisy VADER labeler of bench/sentiment_rlhf.py
   (temperature 0.1, tie band 0.05, seeded by the seed) labels them; ties are kept as ties. The random arm goes on
   to `--baseline-budgets`, so that the labels it needs can be found where the other arms get further. Each
   (arm, seed) curve is cached, so arms can run in separate invocations; the summary pools every cached arm.
3. summary: per arm and target agreement, the labels each seed needed (first crossing, linearly interpolated;
   a seed that never gets there counts as its last budget and is flagged), their mean with a 95 % t-interval over
   seeds, and the ratio random / arm (geometric mean of the paired per-seed ratios, 95 % t-interval on the logs);
   then the agreement by label count (mean and 95 % CI, and the paired difference to random).
4. `--rl`, reduced to fit a CPU: for random and each of `--rl-arms`, every seed in `--rl-seeds` and label count in
   `--rl-budgets` (random also `--rl-baseline-budgets`), retrain the reward model on the arm's first n labels, run
   RLOO with bench/sentiment_rlhf.py's earlier one-round settings (lr 2e-4, KL limit 8 nats) and measure the
   share of 200 held-out prompts on which gold prefers the final policy's sample to the base model's (ties
   half); summarised as above.

On 2 CPU cores (1 torch thread) an arm takes 1.5 to 3 minutes a seed (the random arm, which goes to 1,000 labels,
2.5 to 4), so the default run (random and disagreement, 5 seeds) takes about 15 minutes; `--rl` adds about a minute
per RL run (25 with the defaults; run budgets in separate invocations to split it, results are cached too).

    .venv/bin/python bench/label_efficiency.py [--arms random disagreement uncertainty information_gain thompson
        disagreement-spread uncertainty-spread random-spread] [--seeds 0 1 2 3 4] [--rl --rl-arms disagreement] [--summary-only]
        [--base-model PATH] [--out results.md]
"""

import argparse
import hashlib
import itertools
import json
import math
import os
import random
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout, for bench.sentiment_rlhf

import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from bench.sentiment_rlhf import artifact_dir, gold_rewards, win_rate  # noqa: E402

from models_rl.acquisition import AcquisitionConfig, CandidatePair, select_pairs  # noqa: E402
from models_rl.base_model import EMBEDDED_BASE_MODEL_DIR, MARKER  # noqa: E402
from models_rl.data import shakespeare_prompts  # noqa: E402
from models_rl.gold import NoisyLabeler, VaderGold  # noqa: E402
from models_rl.reward_ensemble import RewardEnsemble  # noqa: E402
from models_rl.reward_model import (  # noqa: E402
    PreferencePair,
    RewardModelConfig,
    pairwise_eval_metrics,
    train_reward_model,
)
from models_rl.sampling import SamplingConfig, sample  # noqa: E402


@dataclass(frozen=True)
class Arm:
    """How one arm picks its pairs: an acquisition strategy with the campaign's batch settings (annotator.rounds
    .settings: 20 % random control, at most 2 pairs of a prompt per batch), and optionally `spread`: a candidate
    is offered only while neither of its completions has a label yet (at most 2 labels a prompt over all rounds;
    each label brings two new completions), as the campaign's rounds do by sampling fresh completions."""

    strategy: str
    spread: bool = False
    random_share: float = 0.2
    max_per_prompt: int = 2


ARMS = {
    "random": Arm("random"),  # the baseline every other arm is compared with
    "disagreement": Arm("disagreement"),  # the campaigns' default until this bench measured it
    "uncertainty": Arm("uncertainty"),  # the campaigns' default since (docs/benchmarks.md)
    "information_gain": Arm("information_gain"),
    "thompson": Arm("thompson"),  # double Thompson sampling over the ensemble: each prompt's top pair under two members
    "disagreement-spread": Arm("disagreement", spread=True),
    "uncertainty-spread": Arm("uncertainty", spread=True),
    "random-spread": Arm("random", spread=True),  # the control for what spreading alone buys
}
BASELINE = "random"
TOKENS = 32  # completion length, as bench/sentiment_rlhf.py


def quiet(report: dict) -> None:
    """A progress callback that drops the reports: it turns the trainers' progress bars off."""


def resolve_base_model(path: str | None) -> Path:
    """The base model to sample from: `path`, or the shipped embedded default. Refuses a folder without
    base_model.json instead of calling embedded_base_model(), which would train one for 25 minutes."""
    base = Path(path) if path else EMBEDDED_BASE_MODEL_DIR
    if not (base / MARKER).is_file():
        sys.exit(f"error: {base} holds no finished base model ({MARKER} is missing). Train it first "
                 "(python -c 'from models_rl.base_model import embedded_base_model; embedded_base_model()', ~25 "
                 "minutes on 2 CPU cores) or pass --base-model PATH, e.g. a quick one from "
                 "ensure_base_model(BaseModelConfig(output_dir=..., time_budget_s=60)).")
    return base


class Clock:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    def log(self, message: str) -> None:
        print(f"[{time.perf_counter() - self.started:6.0f} s] {message}", flush=True)


# ---------------------------------------------------------------------------------------------------------------
# Candidate pool and gold-evaluation set


@dataclass
class Pool:
    """`samples_per_prompt` completions of each prompt with their VADER scores, and the candidate pairs:
    (prompt index, first completion, second completion), every pair of completions of one prompt once."""

    prompts: list[str]
    texts: list[list[str]]
    gold: list[list[float]]
    pairs: list[tuple[int, int, int]]

    def flat(self) -> tuple[list[str], list[str]]:
        """Prompts and texts of every completion, prompt by prompt: completion j of prompt i is at i * k + j."""
        k = len(self.texts[0])
        return [p for p in self.prompts for _ in range(k)], [t for texts in self.texts for t in texts]


def sampled_pool(base: Path, prompts: list[str], samples_per_prompt: int, seed: int, cache: Path) -> Pool:
    """Sample (or read from `cache`) the completions of `prompts` and pair them within each prompt, in a random
    order of first and second (as the campaign's selecting step does)."""
    if cache.is_file():
        return Pool(**{k: [tuple(p) for p in v] if k == "pairs" else v for k, v in json.loads(cache.read_text()).items()})
    drawn = sample(base, prompts, SamplingConfig(max_new_tokens=TOKENS, seed=seed, batch_size=64),
                   samples_per_prompt=samples_per_prompt, progress=quiet)
    gold = VaderGold()
    texts = [[s.text for s in drawn[i * samples_per_prompt : (i + 1) * samples_per_prompt]] for i in range(len(prompts))]
    scores = [[gold.score(prompt, text) for text in group] for prompt, group in zip(prompts, texts)]
    rng = random.Random(seed)
    pairs = [(i, a, b) if rng.random() < 0.5 else (i, b, a)
             for i in range(len(prompts)) for a, b in itertools.combinations(range(samples_per_prompt), 2)]
    pool = Pool(prompts, texts, scores, pairs)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(asdict(pool)))
    return pool


def gold_evaluation_pairs(pool: Pool) -> list[PreferencePair]:
    """The pool's pairs as gold orders them, pairs with equal VADER scores left out (nothing to agree with)."""
    ordered = []
    for i, a, b in pool.pairs:
        difference = pool.gold[i][a] - pool.gold[i][b]
        if difference:
            better, worse = (a, b) if difference > 0 else (b, a)
            ordered.append(PreferencePair(pool.prompts[i], pool.texts[i][better], pool.texts[i][worse]))
    return ordered


class CachedGold:
    """VADER scores of texts already scored (pairwise_eval_metrics asks for every evaluation text each round)."""

    def __init__(self, pools: list[Pool]):
        self._scores = {(prompt, text): score for pool in pools
                        for prompt, texts, golds in zip(pool.prompts, pool.texts, pool.gold)
                        for text, score in zip(texts, golds)}
        self._vader = VaderGold()

    def score(self, prompt: str, text: str) -> float:
        found = self._scores.get((prompt, text))
        return self._vader.score(prompt, text) if found is None else found


# ---------------------------------------------------------------------------------------------------------------
# Rounds of acquisition, labelling and reward-model training


@dataclass
class Setup:
    base: Path
    pool: Pool
    evaluation: list[PreferencePair]
    gold: CachedGold
    budgets: list[int]  # label counts at which the reward model is trained, measured and (but the last) acquires
    baseline_budgets: list[int]  # further budgets for the random arm alone, so that its curve reaches where others go
    work_dir: Path

    def budgets_of(self, arm: str) -> list[int]:
        return self.budgets + self.baseline_budgets if arm == BASELINE else self.budgets

    def signature(self) -> str:
        """What a cached curve depends on besides its arm and seed."""
        described = {"base": str(self.base.resolve()), "pool": len(self.pool.pairs), "pool_first": self.pool.texts[0],
                     "evaluation": len(self.evaluation), "reward_model": REWARD_MODEL_SETTINGS,
                     "labeler": LABELER_SETTINGS}
        return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]


REWARD_MODEL_SETTINGS = {"ensemble_size": 3, "epochs": 20, "learning_rate": 0.01, "max_length": 96,
                         "features": "embeddings", "pooling": "mean", "weight_decay": 1.0}
LABELER_SETTINGS = {"temperature": 0.1, "tie_band": 0.05}


def label_pair(labeler: NoisyLabeler, pool: Pool, index: int) -> PreferencePair:
    """The noisy labeler's answer to candidate `index`, as bench/sentiment_rlhf.py turns it into a pair."""
    i, a, b = pool.pairs[index]
    first, second = pool.texts[i][a], pool.texts[i][b]
    choice, strength = labeler.prefer(pool.prompts[i], first, second)
    chosen, rejected = (second, first) if choice == "b" else (first, second)
    return PreferencePair(pool.prompts[i], chosen, rejected, tie=choice == "tie", strength=strength)


def train_ensemble(setup: Setup, pairs: list[PreferencePair], seed: int, output_dir: Path) -> RewardEnsemble:
    # heldout=[]: every label trains; the model is measured on the fixed gold-evaluation set instead.
    train_reward_model(pairs, RewardModelConfig(base_model_path=str(setup.base), output_dir=str(output_dir), seed=seed,
                                                **REWARD_MODEL_SETTINGS), heldout=[], progress=quiet)
    return RewardEnsemble.load(output_dir)


def gold_agreement(setup: Setup, ensemble: RewardEnsemble) -> float:
    return pairwise_eval_metrics(ensemble, setup.evaluation, gold=setup.gold)["eval/gold_agreement"]


def acquire(setup: Setup, arm: Arm, member_scores: np.ndarray | None, offered: list[int], size: int,
            seed: int) -> list[int]:
    """`size` of the `offered` candidate indices, chosen by the arm's acquisition from every member's scores of the
    pool's completions (`member_scores`, [members, completions]; None for a random arm, which needs none)."""
    pool, k = setup.pool, len(setup.pool.texts[0])

    def rewards(i: int, j: int) -> list[float]:
        return [0.0] if member_scores is None else member_scores[:, i * k + j].tolist()

    candidates = [CandidatePair(key=c, prompt_key=i, member_rewards_a=rewards(i, a), member_rewards_b=rewards(i, b))
                  for c, (i, a, b) in ((c, pool.pairs[c]) for c in offered)]
    config = AcquisitionConfig(batch_size=size, strategy=arm.strategy, random_share=arm.random_share,
                               max_per_prompt=arm.max_per_prompt, seed=seed)
    return [s.key for s in select_pairs(candidates, config)]


def offered_candidates(pool: Pool, labelled: list[int], *, spread: bool) -> list[int]:
    """The unlabelled candidates; with `spread`, only those neither of whose completions is in a labelled pair."""
    taken = set(labelled)
    used = {(pool.pairs[c][0], j) for c in labelled for j in pool.pairs[c][1:]}
    return [c for c, (i, a, b) in enumerate(pool.pairs)
            if c not in taken and not (spread and ((i, a) in used or (i, b) in used))]


def learning_curve(setup: Setup, arm: str, seed: int, clock: Clock) -> dict:
    """Label, train and measure round by round up to the last budget; returns the curve and the label order."""
    labeler = NoisyLabeler(VaderGold(), seed=seed, **LABELER_SETTINGS)
    order: list[int] = []
    labelled: list[PreferencePair] = []
    agreements = []
    member_scores = None
    prompts, texts = setup.pool.flat()
    budgets = setup.budgets_of(arm)
    rm_dir = setup.work_dir / f"rm_{arm}_{seed}"  # each round's reward model replaces the last one
    for round_number, budget in enumerate(budgets):
        offered = offered_candidates(setup.pool, order, spread=ARMS[arm].spread)
        # With no reward model yet, every arm takes the same random first batch; the selection seed depends on
        # seed and round only, so that the arms differ in their acquisition alone.
        picks_by = ARMS[BASELINE] if round_number == 0 else ARMS[arm]
        chosen = acquire(setup, picks_by, member_scores, offered, budget - len(order), seed * 1000 + round_number)
        order += chosen
        labelled += [label_pair(labeler, setup.pool, c) for c in chosen]
        ensemble = train_ensemble(setup, labelled, seed, rm_dir)
        agreements.append(gold_agreement(setup, ensemble))
        if ARMS[arm].strategy != "random" and budget != budgets[-1]:  # random picks need no scores
            member_scores = ensemble.member_scores(prompts, texts)
        clock.log(f"{arm:>24} seed {seed}: {len(labelled):4d} labels ({sum(p.tie for p in labelled):3d} ties), "
                  f"gold agreement {agreements[-1]:.3f}")
    shutil.rmtree(rm_dir, ignore_errors=True)  # 3 members of 4 MB; the label order is enough to retrain it
    return {"arm": asdict(ARMS[arm]), "budgets": budgets, "agreement": agreements, "order": order}


def cached_curve(setup: Setup, arm: str, seed: int, clock: Clock, *, compute: bool) -> dict | None:
    """The (arm, seed) learning curve from the cache, else computed (with `compute`) and cached, else None."""
    path = setup.work_dir / "curves" / setup.signature() / f"{arm}_seed{seed}.json"
    budgets = setup.budgets_of(arm)
    if path.is_file():
        cached = json.loads(path.read_text())
        # A longer run serves a shorter one; an arm whose settings changed since is run again.
        if cached["arm"] == asdict(ARMS[arm]) and cached["budgets"][: len(budgets)] == budgets:
            measured = len(budgets)
            return {**cached, "budgets": budgets, "agreement": cached["agreement"][:measured],
                    "order": cached["order"][: budgets[-1]]}
    if not compute:
        return None
    curve = learning_curve(setup, arm, seed, clock)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(curve))
    return curve


# ---------------------------------------------------------------------------------------------------------------
# Statistics over seeds


def labels_to_reach(budgets: list[int], agreements: list[float], target: float) -> tuple[float, bool]:
    """Label count at which the curve first reaches `target`, linearly interpolated between the two measured
    budgets around the crossing; (last budget, False) when it never does."""
    previous_budget, previous = None, None
    for budget, agreement in zip(budgets, agreements):
        if agreement >= target:
            if previous is None:
                return float(budget), True
            return previous_budget + (target - previous) / (agreement - previous) * (budget - previous_budget), True
        previous_budget, previous = budget, agreement
    return float(budgets[-1]), False


def t_interval(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and its 95 % t-interval over seeds."""
    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = stats.t.ppf(0.975, len(values) - 1) * float(np.std(values, ddof=1)) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def ratio_interval(baseline: np.ndarray, arm: np.ndarray) -> tuple[float, float, float]:
    """Geometric mean of the paired per-seed ratios baseline / arm, with a 95 % t-interval on their logs."""
    mean, low, high = t_interval(np.log(baseline / arm))
    return math.exp(mean), math.exp(low), math.exp(high)


def common_seeds(curves: dict[str, dict[int, dict]]) -> list[int]:
    return sorted(set.intersection(*(set(by_seed) for by_seed in curves.values())))


def value_at(curve: dict, metric: str, budget: int) -> float:
    return curve[metric][curve["budgets"].index(budget)]


def target_table(curves: dict[str, dict[int, dict]], metric: str, targets: list[float]) -> list[str]:
    """Per target and arm: the labels each seed needed to reach it, their mean, and the ratio random / arm."""
    seeds = common_seeds(curves)
    lines = ["| target | arm | labels per seed | mean labels [95 % CI] | random / arm [95 % CI] |",
             "| --- | --- | --- | --- | --- |"]
    for target in targets:
        reached = {arm: [labels_to_reach(by_seed[s]["budgets"], by_seed[s][metric], target) for s in seeds]
                   for arm, by_seed in curves.items()}
        baseline = np.array([n for n, _ in reached[BASELINE]])
        for arm, per_seed in reached.items():
            counts = np.array([n for n, _ in per_seed])
            missed = sum(not ok for _, ok in per_seed)
            ratio = "" if arm == BASELINE else "{:.2f} [{:.2f}, {:.2f}]".format(*ratio_interval(baseline, counts))
            lines.append(f"| {target:.3f} | {arm} | {' '.join(f'{n:.0f}' for n in counts)}"
                         f"{f' *{missed}' if missed else ''} | {'{:.0f} [{:.0f}, {:.0f}]'.format(*t_interval(counts))} | "
                         f"{ratio} |")
    return lines


def curve_table(curves: dict[str, dict[int, dict]], metric: str) -> list[str]:
    """The metric by label count, per arm: mean [95 % CI] over seeds and, for an arm, the paired difference arm -
    random (mean [95 % CI]) where random was measured at that count too."""
    seeds = common_seeds(curves)
    lines = ["| labels | " + " | ".join(curves) + " |", "| --- " * (len(curves) + 1) + "|"]
    budgets = sorted({b for by_seed in curves.values() for b in by_seed[seeds[0]]["budgets"]})
    for budget in budgets:
        cells = []
        for arm, by_seed in curves.items():
            if budget not in by_seed[seeds[0]]["budgets"]:
                cells.append("")
                continue
            values = np.array([value_at(by_seed[s], metric, budget) for s in seeds])
            cell = "{:.3f} [{:.3f}, {:.3f}]".format(*t_interval(values))
            if arm != BASELINE and budget in curves[BASELINE][seeds[0]]["budgets"]:
                paired = values - np.array([value_at(curves[BASELINE][s], metric, budget) for s in seeds])
                cell += " ({:+.3f} [{:+.3f}, {:+.3f}])".format(*t_interval(paired))
            cells.append(cell)
        lines.append(f"| {budget} | " + " | ".join(cells) + " |")
    return lines


# What each change to the campaign's acquisition bought: (from, to) arms compared like random / arm.
CHANGES = [("disagreement", "uncertainty"), ("disagreement", "information_gain"), ("uncertainty", "thompson"),
           ("disagreement", "disagreement-spread"), ("uncertainty", "uncertainty-spread"), (BASELINE, "random-spread"),
           ("random-spread", "disagreement-spread"), ("random-spread", "uncertainty-spread")]


def change_table(curves: dict[str, dict[int, dict]], metric: str, targets: list[float]) -> list[str]:
    """Per change (from, to) and target: labels(from) / labels(to), paired over seeds (above 1: `to` needs fewer)."""
    seeds = common_seeds(curves)
    lines = ["| change | " + " | ".join(f"labels ratio at {t:.3f} [95 % CI]" for t in targets) + " |",
             "| --- " * (len(targets) + 1) + "|"]
    for before, after in CHANGES:
        if before not in curves or after not in curves:
            continue
        cells = []
        for target in targets:
            reached = [[labels_to_reach(curves[arm][s]["budgets"], curves[arm][s][metric], target) for s in seeds]
                       for arm in (before, after)]
            counts = [np.array([n for n, _ in per_seed]) for per_seed in reached]
            censored = any(not ok for per_seed in reached for _, ok in per_seed)
            cells.append("{:.2f} [{:.2f}, {:.2f}]".format(*ratio_interval(*counts)) + (" *" if censored else ""))
        lines.append(f"| {before} -> {after} | " + " | ".join(cells) + " |")
    return lines


def twofold_table(curves: dict[str, dict[int, dict]], metric: str) -> list[str]:
    """The direct test of "half the labels": the arm with n labels minus random with 2n, paired over seeds (mean
    [95 % CI]); a difference >= 0 means the arm did at least as well on half the labels."""
    seeds = common_seeds(curves)
    random_budgets = curves[BASELINE][seeds[0]]["budgets"]
    halves = [n for n in curves[BASELINE][seeds[0]]["budgets"] if 2 * n in random_budgets]
    lines = ["| arm | " + " | ".join(f"{n} vs random {2 * n}" for n in halves) + " |", "| --- " * (len(halves) + 1) + "|"]
    for arm, by_seed in curves.items():
        cells = []
        for n in halves:
            if n not in by_seed[seeds[0]]["budgets"]:
                cells.append("")
                continue
            paired = np.array([value_at(by_seed[s], metric, n) - value_at(curves[BASELINE][s], metric, 2 * n) for s in seeds])
            cells.append("{:+.3f} [{:+.3f}, {:+.3f}]".format(*t_interval(paired)))
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return lines


CROSSING_NOTE = ("labels to reach a target: first crossing of the seed's curve, linear between the two measured label "
                 "counts around it; '*n': n seeds never got there within the arm's last budget and count as that "
                 "budget (the arm's mean is then a lower bound, and its ratio random / arm an upper bound); a seed already "
                 "there at its first measured count counts as that count. Ratio: "
                 "geometric mean of the paired per-seed ratios, 95 % t-interval on their logs.")


# ---------------------------------------------------------------------------------------------------------------
# RL on the labels of a budget


def rl_win_rate(setup: Setup, curve: dict, arm: str, seed: int, budget: int, heldout_prompts: list[str],
                base_gold: np.ndarray) -> dict:
    """Retrain the reward model on the arm's first `budget` labels, optimise the policy against it with
    bench/sentiment_rlhf.py's earlier one-round settings (lr 2e-4, KL limit 8), and measure the gold win rate
    against the base model."""
    from models_rl.rloo import RLConfig, optimize_rl  # TRL takes seconds to import; only this part needs it

    labeler = NoisyLabeler(VaderGold(), seed=seed, **LABELER_SETTINGS)
    pairs = [label_pair(labeler, setup.pool, c) for c in curve["order"][:budget]]
    out = setup.work_dir / f"rl_{arm}_{seed}"
    ensemble = train_ensemble(setup, pairs, seed, out / "reward_model")
    result = optimize_rl(setup.pool.prompts, RLConfig(
        policy_path=str(setup.base), reward_model_path=str(out / "reward_model"), output_dir=str(out / "policy"),
        kl_coef=0.05, kl_limit=8.0, kl_window=5, max_steps=400, batch_size=32, num_generations=8, num_iterations=2,
        max_new_tokens=TOKENS, learning_rate=2e-4, reward_norm_samples=1024, seed=seed), progress=quiet)
    wins = win_rate(gold_rewards(result.final_path, heldout_prompts, TOKENS, seed=7)[1], base_gold)
    measured = {"gold_agreement": gold_agreement(setup, ensemble), "win_rate": wins,
                "kl": result.checkpoints[-1].kl, "rl_steps": result.metrics["train/steps"]}
    shutil.rmtree(out, ignore_errors=True)  # a policy and its checkpoints: 4 MB each, nobody reads them again
    return measured


def cached_rl(setup: Setup, arm: str, seed: int, budget: int, measure) -> dict | None:
    """The RL measurement of (arm, seed, budget) from the cache, else `measure()` (None: do not compute)."""
    path = setup.work_dir / "rl" / setup.signature() / f"{arm}_seed{seed}_{budget}.json"
    if path.is_file():
        return json.loads(path.read_text())
    if measure is None:
        return None
    measured = measure()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(measured))
    return measured


def rl_curves(setup: Setup, arms: list[str], seeds: list[int]) -> dict[str, dict[int, dict]]:
    """Cached RL measurements as curves (arm -> seed -> budgets, win_rate, ...), the budgets every seed has."""
    found = {}
    for arm in arms:
        budgets = sorted({int(p.stem.rsplit("_", 1)[1]) for p in (setup.work_dir / "rl" / setup.signature()).glob(f"{arm}_seed*_*.json")})
        by_seed = {seed: {b: cached_rl(setup, arm, seed, b, None) for b in budgets} for seed in seeds}
        common = [b for b in budgets if all(by_seed[s][b] is not None for s in seeds)]
        if common:
            found[arm] = {seed: {"budgets": common, **{key: [by_seed[seed][b][key] for b in common]
                                                      for key in ("win_rate", "gold_agreement", "kl", "rl_steps")}}
                          for seed in seeds}
    return found


# ---------------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-model", default=None, help=f"base model folder (default: {EMBEDDED_BASE_MODEL_DIR})")
    parser.add_argument("--arms", nargs="+", default=["random", "disagreement"], choices=list(ARMS),
                        help="arms to run now (random is always run); every cached arm is summarised")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--pool-prompts", type=int, default=600)
    parser.add_argument("--eval-prompts", type=int, default=500, help="held-out prompts of the gold-evaluation set")
    parser.add_argument("--samples-per-prompt", type=int, default=4)
    parser.add_argument("--budgets", nargs="+", type=int, default=[50, 100, 150, 200, 250, 300, 400, 500, 600],
                        help="label counts after each round; the first batch is random and shared by all arms")
    parser.add_argument("--baseline-budgets", nargs="*", type=int, default=[800, 1000],
                        help="further budgets for the random arm, so that the labels it needs can be found")
    parser.add_argument("--targets", nargs="+", type=float, default=[0.56, 0.57, 0.58],
                        help="gold agreements to reach (chosen from the random arm's range: 0.54 at 50 labels, ~0.6 at 1,000)")
    parser.add_argument("--summary-only", action="store_true", help="summarise cached curves, run nothing")
    parser.add_argument("--rl", action="store_true", help="also run the RL part (minutes per run)")
    parser.add_argument("--rl-arms", nargs="+", default=["uncertainty"], choices=list(ARMS),
                        help="arms of the RL part (random is always run)")
    parser.add_argument("--rl-seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--rl-budgets", nargs="+", type=int, default=[300, 600])
    parser.add_argument("--rl-baseline-budgets", nargs="*", type=int, default=[1000],
                        help="further label counts for the random arm's RL runs (within its --baseline-budgets)")
    parser.add_argument("--rl-targets", nargs="+", type=float, default=[0.6, 0.65], help="gold win rates to reach")
    parser.add_argument("--out", default=None, help="results file (markdown) to write the summary to")
    args = parser.parse_args()
    clock = Clock()
    base = resolve_base_model(args.base_model)
    work_dir = artifact_dir() / "label_efficiency"

    train_prompts = shakespeare_prompts(args.pool_prompts, seed=0)
    seen = set(train_prompts)
    eval_prompts = [p for p in shakespeare_prompts(args.eval_prompts * 2, seed=99) if p not in seen][: args.eval_prompts]
    tag = hashlib.sha256(str(base.resolve()).encode()).hexdigest()[:8]
    k = args.samples_per_prompt
    pool = sampled_pool(base, train_prompts, k, 0, work_dir / f"pool_{tag}_{args.pool_prompts}x{k}.json")
    held = sampled_pool(base, eval_prompts, k, 1, work_dir / f"eval_{tag}_{args.eval_prompts}x{k}.json")
    budgets = sorted(args.budgets)
    setup = Setup(base, pool, gold_evaluation_pairs(held), CachedGold([pool, held]), budgets,
                  sorted(b for b in args.baseline_budgets if b > budgets[-1]), work_dir)
    clock.log(f"base model {base}; pool: {len(pool.pairs)} candidate pairs of {len(pool.prompts)} prompts; "
              f"gold evaluation: {len(setup.evaluation)} pairs of {len(eval_prompts)} held-out prompts; "
              f"budgets {budgets} (random also {setup.baseline_budgets})")

    arms = list(dict.fromkeys([BASELINE, *args.arms]))
    if not args.summary_only:
        for seed in args.seeds:
            for arm in arms:
                cached_curve(setup, arm, seed, clock, compute=True)
    curves = {arm: {seed: curve for seed in args.seeds if (curve := cached_curve(setup, arm, seed, clock, compute=False))}
              for arm in ARMS}
    curves = {arm: by_seed for arm, by_seed in curves.items() if len(by_seed) == len(args.seeds)}
    lines = [f"setup {setup.signature()}: base model {base}; {len(pool.pairs)} candidate pairs of {len(pool.prompts)} "
             f"prompts; {len(setup.evaluation)} gold-evaluation pairs of {len(eval_prompts)} held-out prompts; "
             f"seeds {args.seeds}", "", "## Reward model: labels to reach a gold agreement", "", CROSSING_NOTE, "",
             *target_table(curves, "agreement", args.targets), "",
             "## Half the labels? Gold agreement of the arm with n labels minus random's with 2n", "",
             "paired over seeds, mean [95 % CI]; an arm with 2x fewer labels would score >= 0", "",
             *twofold_table(curves, "agreement"), "",
             "## What each change bought", "",
             "labels the first arm needs / labels the second needs, paired over seeds (above 1: the change saves labels; "
             "'*': some seed of either arm never reached the target)",
             "", *change_table(curves, "agreement", args.targets), "",
             "## Reward model: gold agreement by labels", "",
             "mean [95 % CI] over seeds; in brackets after it, the paired difference arm - random", "",
             *curve_table(curves, "agreement")]

    if args.rl and not args.summary_only:
        rl_prompts = eval_prompts[:200]
        base_gold = gold_rewards(base, rl_prompts, TOKENS, seed=7)[1]
        for arm, seed in itertools.product(list(dict.fromkeys([BASELINE, *args.rl_arms])), args.rl_seeds):
            for budget in args.rl_budgets + (args.rl_baseline_budgets if arm == BASELINE else []):
                measured = cached_rl(setup, arm, seed, budget, lambda: rl_win_rate(
                    setup, curves[arm][seed], arm, seed, budget, rl_prompts, base_gold))
                clock.log(f"RL {arm} seed {seed} at {budget} labels: gold agreement {measured['gold_agreement']:.3f}, "
                          f"win rate {100 * measured['win_rate']:.1f} %, KL {measured['kl']:.2f}, {measured['rl_steps']} steps")
    rl = rl_curves(setup, list(ARMS), args.rl_seeds)
    if BASELINE in rl:
        lines += ["", "## RL: gold win rate of the final policy over the base model", "",
                  f"seeds {args.rl_seeds}; RLOO (lr 2e-4, KL limit 8 nats, one round) on a reward model retrained "
                  "on the arm's first n labels; 200 held-out prompts, ties count half", "",
                  *target_table(rl, "win_rate", args.rl_targets), "",
                  "win rate by labels: mean [95 % CI] over seeds (paired difference arm - random)", "",
                  *curve_table(rl, "win_rate"), "", "final KL (nats) by labels", "", *curve_table(rl, "kl")]
    lines += ["", f"wall {time.perf_counter() - clock.started:.0f} s"]
    print("\n".join(lines))
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
