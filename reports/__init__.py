"""Reports on top of the pipeline: the leaderboard of every method and the validation curves of the runs."""
