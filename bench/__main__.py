"""``make bench``: every benchmark in turn; each prints its report and writes it to
``bench/results/``. ``python -m bench NAME ...`` runs only the named ones:

- ``gateway``: the latency and throughput the gateway adds (issue 2);
- ``contracts``: the contract list through the gateway with 10,000 contracts (issue 3);
- ``dispatcher``: one expiry-alert tick over 50 tenants x 20 due alerts (issue 3);
- ``x12``: 270 build + 271 parse per second in-process, the pure X12 cost (issue 4);
- ``checks``: eligibility checks per second through one sweeps-api against the sandbox,
  next to the raw partner round trip (issue 4);
- ``roster``: the sweep worker's roster SQL over 100,000 and 1,000,000 service events,
  with and without a covering index;
- ``sweeps``: members per second of a 10,000-member sweep through one and two
  ``sweeps-worker`` processes at 0 and 200 ms partner latency, next to the raw partner
  round trip and the serial fan-out (issue 5).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from bench import (
    check_throughput,
    contract_list,
    dispatcher_tick,
    gateway_overhead,
    sweep_roster,
    sweep_throughput,
    x12_codec,
)

BENCHMARKS: dict[str, Callable[[list[str]], None]] = {
    "gateway": gateway_overhead.main,
    "contracts": contract_list.main,
    "dispatcher": dispatcher_tick.main,
    "x12": x12_codec.main,
    "checks": check_throughput.main,
    "roster": sweep_roster.main,
    "sweeps": sweep_throughput.main,
}


def main(argv: list[str]) -> None:
    names = argv or list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        sys.exit(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    for name in names:
        print(f"\n=== bench: {name} ===\n", flush=True)
        BENCHMARKS[name]([])


if __name__ == "__main__":
    main(sys.argv[1:])
