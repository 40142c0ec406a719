"""``make bench``: every benchmark in turn; each prints its report and writes it to
``bench/results/``. The first and so far only entry is the gateway's overhead."""

from __future__ import annotations

from bench import gateway_overhead

if __name__ == "__main__":
    gateway_overhead.main()
