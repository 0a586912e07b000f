"""The run aggregate: a sync run of one feed, its partitions and its dead letters.

- states.py: the statuses, and the rules of operators' changes (replay, cancel, resume); pure.
- lifecycle.py: where runs are changed; every status transition, under the run's row lock.
- reads.py: what activities, the CLI and the API read of runs.
- partitions.py, dead_letters.py: every statement about those tables.
- starts.py: the orchestrations that drive runs: their instance ids, inputs and start helpers.
"""
