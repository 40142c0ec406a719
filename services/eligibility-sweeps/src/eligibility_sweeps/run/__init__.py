"""Sweep runs: create them (ad hoc, rerun, retry of failed members, a schedule's run-now),
enqueue their ``sweep.run`` job after the commit, cancel them, read them with live counts,
and list their members for the exception queue."""
