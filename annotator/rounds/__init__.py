"""The iterated RLHF round loop, in one place.

- `states`: the states a round moves through, which steps run as tasks, which need a GPU;
- `settings`: round sizes from `Campaign.settings`, the models_rl configs' overrides, artifact folders;
- `state_machine`: start and resume a round, dispatch its step, the compare-and-set claims with a heartbeat,
  finish (store, charge GPU time, move on) and fail, close the labeling;
- `step_tasks`: the Celery task that runs each step, by name (worker/ registers them; this package never
  imports worker/);
- `lifecycle` and `step_context`: a step's life inside its task (claim, heartbeat, GPU check, work, finish);
- `step_reward_model`, `step_policy`, `step_sampling`, `step_selecting`: each step's inputs, its models_rl
  call and its store;
- `unconditional`: the empty prompt slots of a campaign with no prompts;
- `selectors`: reads (models only); `estimate`: what the next round will cost (run_round --dry-run).

A rating campaign (`Campaign.task_kind` "rating") goes through the same steps: its reward model is a rating model
(p(positive) from the ratings so far), RL and best-of-n follow log p(positive), and selecting publishes single
completions to rate. DPO needs pairs, so a rating campaign cannot use it (refused when a round starts).
"""
