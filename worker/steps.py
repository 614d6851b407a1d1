"""The work of each round step: read inputs through the services, call models_rl, return the store call.

Each function runs with no transaction open and returns `store(round) -> metrics`, which
`round_step_finish` runs in the transaction that finishes the step. Output folders are
ARTIFACT_DIR/<campaign>/round-<n>/<step>/, emptied first, so a redone step overwrites its files.
"""

import dataclasses
import itertools
import random
import shutil
from pathlib import Path

import numpy as np

from annotator.models import ComparisonPurpose, Round
from annotator.selectors.rounds import round_reward_model
from annotator.services import round_steps
from annotator.core.errors import InvalidInput
from annotator.services.rounds import ml_settings, round_settings, round_step_dir
from worker.runner import StepContext


def _fresh_dir(round_: Round, step: str) -> Path:
    path = round_step_dir(round_=round_, step=step)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def _config(config_cls, given: dict, overrides: dict):
    """A models_rl config from the values we set plus the campaign's overrides; an unknown key is refused."""
    names = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise InvalidInput(f"{config_cls.__name__} has no setting {', '.join(unknown)}; it has {', '.join(sorted(names))}.")
    return config_cls(**{k: v for k, v in given.items() if k in names}, **overrides)


def _gold(round_: Round):
    from models_rl.gold import make_gold

    name = round_.campaign.gold_labeler
    return make_gold(name) if name else None


def train_reward_model(context: StepContext, round_: Round):
    from models_rl.reward_model import RewardModelConfig, train_reward_model

    export = round_steps.preference_pairs_export(round_=round_)
    if not export.train:
        raise InvalidInput(
            f"Round {round_.number} has no judgements to learn from ({export.judgements} in, "
            f"{export.both_bad_skipped} of them 'both bad'). Label the earlier rounds' pairs first."
        )
    round_sizes = round_settings(campaign=round_.campaign)
    config = _config(
        RewardModelConfig,
        {
            "base_model_path": round_steps.base_policy_path(round_=round_),
            "output_dir": str(_fresh_dir(round_, context.step)),
            "ensemble_size": round_sizes.reward_ensemble_size,
            "seed": round_sizes.seed + round_.number,
        },
        ml_settings(campaign=round_.campaign, section="reward_model"),
    )
    result = train_reward_model(
        export.train, config, heldout=export.heldout or None, gold=_gold(round_), progress=context.progress("reward model")
    )
    return lambda locked: round_steps.reward_model_store(round_=locked, path=result.path, metrics=result.metrics, export=export)


def optimize_policy(context: StepContext, round_: Round):
    from models_rl import policy_optimization as po

    inputs = round_steps.optimizing_inputs(round_=round_)
    given = {
        "policy_path": inputs.policy_path,
        "reference_path": inputs.reference_path,
        "reward_model_path": inputs.reward_model_path,
        "output_dir": str(_fresh_dir(round_, context.step)),
        "seed": inputs.seed,
    }
    overrides = ml_settings(campaign=round_.campaign, section="policy")
    progress = context.progress(f"policy ({inputs.optimizer})")
    if inputs.optimizer == "dpo":
        pairs = round_steps.preference_pairs_export(round_=round_).train
        result = po.optimize_dpo(pairs, _config(po.DPOConfig, given, overrides), progress=progress)
    elif inputs.optimizer == "best_of_n":
        result = po.optimize_best_of_n(inputs.prompts, _config(po.BestOfNConfig, given, overrides), progress=progress)
    elif inputs.optimizer == "rl":
        config = _config(po.RLConfig, given, overrides)
        config = dataclasses.replace(config, kl_limit=round_steps.round_kl_limit(inputs=inputs, policy_kl_limit=config.kl_limit))
        result = po.optimize_rl(inputs.prompts, config, progress=progress)
    else:
        raise InvalidInput(f"Unknown policy optimizer {inputs.optimizer!r}: use rl, dpo or best_of_n.")
    checkpoints = [
        round_steps.CheckpointResult(label=c.label, path=str(c.path), kl=c.kl, metrics=c.metrics) for c in result.checkpoints
    ]
    return lambda locked: round_steps.checkpoints_store(
        round_=locked, final_path=result.final_path, checkpoints=checkpoints, metrics=result.metrics
    )


def sample_completions(context: StepContext, round_: Round):
    from models_rl.sampling import SamplingConfig, sample

    base_path = None
    if round_.number == 0:
        base_path = str(_base_policy(context, round_))
    round_sizes = round_settings(campaign=round_.campaign)
    overrides = ml_settings(campaign=round_.campaign, section="sampling")
    gold = _gold(round_)
    results = []
    jobs = round_steps.sampling_jobs(round_=round_, base_path=base_path)
    for index, job in enumerate(jobs):
        config = _config(SamplingConfig, {"seed": round_sizes.seed * 1000 + round_.number * 50 + index}, overrides)
        samples = sample(
            job.checkpoint_path, job.prompt_texts, config, samples_per_prompt=job.samples_per_prompt,
            progress=context.progress(f"sampling {index + 1}/{len(jobs)}"),
        )
        per_prompt = [
            [
                round_steps.SampledText(text=s.text, gold_score=None if gold is None else gold.score(s.prompt, s.text))
                for s in samples[i * job.samples_per_prompt : (i + 1) * job.samples_per_prompt]
            ]
            for i in range(len(job.prompt_texts))
        ]
        results.append((job, per_prompt))
    return lambda locked: round_steps.completions_store(round_=locked, jobs=results, base_path=base_path)


def _base_policy(context: StepContext, round_: Round) -> Path:
    """The campaign's base model, or the embedded one (trained once, then found on disk)."""
    if round_.campaign.base_model_path:
        return Path(round_.campaign.base_model_path)
    from models_rl.base_model import BaseModelConfig, ensure_base_model

    config = _config(
        BaseModelConfig, {"output_dir": str(round_steps.embedded_base_model_dir())},
        ml_settings(campaign=round_.campaign, section="base_model"),
    )
    return ensure_base_model(config, progress=context.progress("base model"))


def select_pairs(context: StepContext, round_: Round):
    """Pair the round's completions within each prompt, mix in gold pairs, and pick the rest by acquisition
    score (round 0: at random, with no reward model yet)."""
    from models_rl.acquisition import AcquisitionConfig, CandidatePair, select_pairs

    round_sizes = round_settings(campaign=round_.campaign)
    completions = round_steps.selecting_candidates(round_=round_)
    members = _member_rewards(round_, completions)
    reward_scores = {}
    if round_.number > 0:
        reward_scores = {c.completion_id: (float(np.mean(members[c.completion_id])), float(np.std(members[c.completion_id])))
                         for c in completions}
    rng = random.Random(round_sizes.seed * 7919 + round_.number)
    candidates = []
    for _, group in itertools.groupby(completions, key=lambda c: c.prompt_id):
        for first, second in itertools.combinations(list(group), 2):
            candidates.append((first, second) if rng.random() < 0.5 else (second, first))

    gold_pairs = _gold_pairs(candidates, round(round_sizes.gold_share * round_sizes.pairs_per_round), round_)
    taken = {(p.completion_a, p.completion_b) for p in gold_pairs}
    pool = {(a.completion_id, b.completion_id): (a, b) for a, b in candidates if (a.completion_id, b.completion_id) not in taken}
    config = AcquisitionConfig(
        batch_size=max(round_sizes.pairs_per_round - len(gold_pairs), 0),
        strategy=round_.campaign.acquisition_strategy if round_.number > 0 else "random",
        random_share=round_sizes.random_share,
        max_per_prompt=round_sizes.max_pairs_per_prompt,
        seed=round_sizes.seed + round_.number,
    )
    selected = select_pairs(
        [CandidatePair(key=key, prompt_key=a.prompt_id, member_rewards_a=members[a.completion_id],
                       member_rewards_b=members[b.completion_id]) for key, (a, b) in pool.items()],
        config,
    )
    acquired = [
        round_steps.PairToPublish(
            completion_a=pick.key[0], completion_b=pick.key[1], prompt_id=pool[pick.key][0].prompt_id,
            # Round 0 is random throughout; later, the random control share is the reward model's held-out set.
            purpose=ComparisonPurpose.EVAL if pick.is_control and round_.number > 0 else ComparisonPurpose.TRAIN,
            acquisition_score=float(pick.score),
        )
        for pick in selected
    ]
    pairs = _interleave(acquired, gold_pairs)
    return lambda locked: round_steps.comparisons_publish(round_=locked, pairs=pairs, reward_scores=reward_scores)


def _member_rewards(round_: Round, completions) -> dict[int, list[float]]:
    """Each completion's reward from every ensemble member (round 0 has no reward model: one zero each)."""
    if round_.number == 0 or not completions:
        return {c.completion_id: [0.0] for c in completions}
    from models_rl.reward_model import RewardEnsemble

    reward_model = round_reward_model(round_=round_)
    if reward_model is None:
        raise InvalidInput(f"Round {round_.number} has no reward model to score its completions with.")
    scores = RewardEnsemble.load(reward_model.path).member_scores([c.prompt for c in completions], [c.text for c in completions])
    return {c.completion_id: [float(x) for x in scores[:, i]] for i, c in enumerate(completions)}


def _gold_pairs(candidates, wanted: int, round_: Round) -> list:
    """Pairs whose answer the gold labeler knows best (largest gold score gap), at most one per prompt."""
    if wanted <= 0 or not round_.campaign.gold_labeler:
        return []
    scored = [(abs(a.gold_score - b.gold_score), a, b) for a, b in candidates
              if a.gold_score is not None and b.gold_score is not None and a.gold_score != b.gold_score]
    scored.sort(key=lambda item: (-item[0], item[1].completion_id, item[2].completion_id))
    pairs, prompts = [], set()
    for _, a, b in scored:
        if a.prompt_id in prompts:
            continue
        prompts.add(a.prompt_id)
        pairs.append(round_steps.PairToPublish(
            completion_a=a.completion_id, completion_b=b.completion_id, prompt_id=a.prompt_id,
            purpose=ComparisonPurpose.GOLD, acquisition_score=None,
            gold_choice=round_steps.gold_choice_for(a.gold_score, b.gold_score),
        ))
        if len(pairs) == wanted:
            break
    return pairs


def _interleave(acquired: list, gold: list) -> list:
    """Gold pairs spread evenly through the acquired ones, so labelers meet them all along."""
    if not gold:
        return acquired
    every = max(len(acquired) // (len(gold) + 1), 1)
    out, gold_left = [], list(gold)
    for index, pair in enumerate(acquired, start=1):
        out.append(pair)
        if index % every == 0 and gold_left:
            out.append(gold_left.pop(0))
    return out + gold_left
