"""The states a round moves through, which of its steps run as tasks, and which need a GPU.

training_reward -> optimizing -> sampling -> selecting -> labeling -> done (or failed at any step). Round 0 has
no judgements to learn from: it starts at sampling (from the base policy) and pairs completions at random. A
final round (`Round.final`) trains on every label and optimises, samples the held-out prompts to measure its
policy, and stops there: it publishes no pairs, so the last labels a budget buys still train a policy.
"""

from annotator.models import Round, RoundState

TASK_STEPS = (RoundState.TRAINING_REWARD, RoundState.OPTIMIZING, RoundState.SAMPLING, RoundState.SELECTING)
STEPS = (*TASK_STEPS, RoundState.LABELING)
FIRST_ROUND_STEPS = (RoundState.SAMPLING, RoundState.SELECTING, RoundState.LABELING)
FINAL_ROUND_STEPS = (RoundState.TRAINING_REWARD, RoundState.OPTIMIZING, RoundState.SAMPLING)
# Steps that train, sample or score models: they run on the gpu queue and are charged as GPU time.
GPU_STEPS = (RoundState.TRAINING_REWARD, RoundState.OPTIMIZING, RoundState.SAMPLING, RoundState.SELECTING)


def round_steps_of(round_: Round) -> tuple[str, ...]:
    """The steps this round runs, in order (round 0 has no reward model and no optimisation; a final round
    selects and labels nothing)."""
    if round_.number == 0:
        return FIRST_ROUND_STEPS
    return FINAL_ROUND_STEPS if round_.final else STEPS


def round_next_state(*, round_: Round, step: str) -> str:
    """The state after `step` in this round: its next step, or done after its last."""
    steps = round_steps_of(round_)
    index = steps.index(step)
    return steps[index + 1] if index + 1 < len(steps) else RoundState.DONE


def round_step_needs_gpu(*, round_: Round, step: str) -> bool:
    """Whether the step runs models (gpu queue, charged). Round 0 pairs completions at random: no model."""
    return step in GPU_STEPS and not (step == RoundState.SELECTING and round_.number == 0)
