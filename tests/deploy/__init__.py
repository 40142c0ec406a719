"""Static validation of deploy/ (Dockerfile, compose, Kubernetes) against the code.

No Docker engine, cluster, kubectl or network is needed: the files are parsed and
rendered here (``dockerfile``, ``compose``, ``kustomize``) and checked against a catalog
computed from the workspace (``catalog``: console scripts, settings classes, the route
tables of the real apps) by ``checks``, ``compose`` and ``k8s``. Fixture examples under
``fixtures/`` prove each check reports what it should.
"""
