"""The lowest layer: what every other folder uses (the command line, JSON files, the task's rules and metric)."""
