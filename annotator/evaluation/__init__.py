"""Blind evaluation of a campaign's checkpoints: evaluation runs, their battles and blind ratings, the Bradley-Terry
leaderboard and the over-optimisation view.

- `plan`: what a run will evaluate and cost, checked before anything is written (`evaluation_plan`);
- `runs`: starting a run, its sampling step's life (claimed like a round step) and closing it;
- `sampling`: the sampling step's work and the one transaction that publishes the run's items;
- `schedule`: where the next battle labels go (the pairs the leaderboard is least certain about);
- `selectors`: reads (battles, ratings, runs, checkpoint names, the latest leaderboard);
- `leaderboard`: the leaderboard and the over-optimisation view, computed by models_rl and kept as snapshots.

Labelers answer evaluation items like any other (purpose `evaluation`, charged under its own ledger category);
nothing they receive names a checkpoint, a round or the run.
"""
