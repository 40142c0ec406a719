"""``sweeps-worker``: runs eligibility sweeps on arq.

- ``settings``: ``WorkerSettings`` (every variable, its default and its rule).
- ``jobs``: ``sweep.run`` (drives a run: slot, roster, lanes, stale claims, completion)
  and ``sweep.send`` (one lane of a run's fan-out), the runtime they share, the arq
  ``Worker``.
- ``gate``: ``INGEST_QUEUE_CONCURRENCY`` slots in Redis (one sweep per tenant, first come
  first served between tenants).
- ``roster``: the roster as one ``INSERT ... SELECT``.
- ``sender``: a lane: batched claims, concurrent 270s, batched settlements, retries.
- ``repository``: every statement, with the claim and completion rules.
- ``main``: the process (health and metrics port, signals, bounded shutdown).
"""
