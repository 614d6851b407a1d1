"""The states a round moves through, which of its steps run as tasks, and which need a GPU.

training_reward -> optimizing -> sampling -> selecting -> labeling -> done (or failed at any step). Round 0 has
no judgements to learn from: it starts at sampling (from the base policy) and pairs completions at random.
"""

from annotator.models import Round, RoundState

TASK_STEPS = (RoundState.TRAINING_REWARD, RoundState.OPTIMIZING, RoundState.SAMPLING, RoundState.SELECTING)
STEPS = (*TASK_STEPS, RoundState.LABELING)
NEXT_STATE = {
    RoundState.TRAINING_REWARD: RoundState.OPTIMIZING,
    RoundState.OPTIMIZING: RoundState.SAMPLING,
    RoundState.SAMPLING: RoundState.SELECTING,
    RoundState.SELECTING: RoundState.LABELING,
    RoundState.LABELING: RoundState.DONE,
}
# Steps that train, sample or score models: they run on the gpu queue and are charged as GPU time.
GPU_STEPS = (RoundState.TRAINING_REWARD, RoundState.OPTIMIZING, RoundState.SAMPLING, RoundState.SELECTING)


def round_steps_of(round_: Round) -> tuple[str, ...]:
    """The steps this round runs (round 0 has no reward model and no optimisation)."""
    return STEPS if round_.number > 0 else (RoundState.SAMPLING, RoundState.SELECTING, RoundState.LABELING)


def round_step_needs_gpu(*, round_: Round, step: str) -> bool:
    """Whether the step runs models (gpu queue, charged). Round 0 pairs completions at random: no model."""
    return step in GPU_STEPS and not (step == RoundState.SELECTING and round_.number == 0)
