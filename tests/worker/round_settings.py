"""Campaign settings for the round tests on real parts."""

# A tiny word-level policy's campaign (the in-process round-0 test). Learning on real parts is tested with the
# demo's own recipe (tests/worker/test_rounds_end_to_end.py): this policy is too small to show a blind margin.
TINY_ROUND_SETTINGS = {
    "train_prompts": 48,
    "heldout_prompts": 48,
    "prompts_per_round": 48,
    "completions_per_prompt": 8,
    "contrast_per_prompt": 1,
    "pairs_per_round": 480,
    "gold_share": 0.1,
    "random_share": 0.2,
    "max_pairs_per_prompt": 10,
    "eval_samples_per_prompt": 16,
    "reward_ensemble_size": 2,
    "kl_per_round": 5.0,
    "sampling": {"max_new_tokens": 16},
    "reward_model": {"epochs": 20, "batch_size": 16, "max_length": 64, "features": "embeddings", "pooling": "mean",
                     "learning_rate": 1e-2, "weight_decay": 1.0},
    "policy": {"max_steps": 200, "batch_size": 32, "num_generations": 8, "max_new_tokens": 16,
               "reward_norm_samples": 64, "learning_rate": 5e-4, "kl_coef": 0.03, "kl_levels": [0.5, 2]},
}

# For tests of the machinery rather than of learning (the crash test): one round in seconds.
QUICK_ROUND_SETTINGS = {
    "train_prompts": 24,
    "heldout_prompts": 12,
    "prompts_per_round": 12,
    "completions_per_prompt": 2,
    "contrast_per_prompt": 1,
    "pairs_per_round": 24,
    "max_pairs_per_prompt": 3,
    "eval_samples_per_prompt": 8,
    "reward_ensemble_size": 2,
    "sampling": {"max_new_tokens": 16},
    "reward_model": {"epochs": 4, "batch_size": 16, "max_length": 64},
    "policy": {"max_steps": 10, "batch_size": 16, "num_generations": 4, "max_new_tokens": 16,
               "reward_norm_samples": 32, "learning_rate": 1e-3, "kl_coef": 0.02, "kl_levels": [0.5, 2]},
}
