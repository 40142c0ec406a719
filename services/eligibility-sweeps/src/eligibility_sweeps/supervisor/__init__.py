"""``sweeps-supervisor``: fires sweep schedules, at most one run per firing.

- ``main``: the process (settings, health port, signals, shutdown).
- ``loop``: ``Supervisor``, its tick, the change listener, heartbeat and health.
- ``armed``: the schedules held in memory (when to look, never what to fire).
- ``firing``: one schedule's firing, decided by a compare-and-set in its database.
- ``slots``: the missed-slot policy after downtime.
- ``reconcile``: runs left QUEUED or RUNNING without a live arq job get it again.
- ``repository``: the supervisor's queries; ``config``: its settings.
"""
