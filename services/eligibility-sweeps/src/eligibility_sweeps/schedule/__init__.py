"""Sweep schedules: CRUD, pause and resume, cron help (presets, preview), the scheduler's
status, and the two things the supervisor shares with the API: cron semantics
(``cron``), its heartbeat (``heartbeat``) and the change signal (``signals``)."""
