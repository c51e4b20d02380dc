"""Routing cost: rule evaluation for one series against 50 projects of 5 conditions each,
on one core, against a baseline in the same run.

  (a) baseline: a plain dict lookup of the header values, one per condition of every
      project (250 lookups and comparisons: the least any rule evaluation must do);
  (b) the relay's Router.route, worst case: every project but the last fails only at
      its last condition, so nearly all 250 conditions run;
  (c) the same, a typical case: the series is turned away by each project's first
      condition until the last project takes it.

Usage: python bench/routing_bench.py [--cpu 0] [--series 20000] [--rounds 5]
Prints microseconds of CPU per series for each, and (b)/(a), (c)/(a).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

from relay_shared.projects import Arrival, Router
from relay_shared.projects.schema import Project

PROJECTS = 50
TARGET_US = 50.0


def projects() -> list[Project]:
    """Project i wants a chest CT or MR, thin slices, of protocol i, no scouts."""
    return [Project.model_validate({
        "name": f"project-{i}", "destinations": ["d"],
        "match": {"header": {
            "Modality": {"in": ["CT", "MR"]},
            "BodyPartExamined": {"equals": "CHEST"},
            "SliceThickness": {"max": 5},
            "StudyDescription": {"regex": rf"(?i)chest.*protocol {i}\b"},
            "SeriesDescription": {"not_regex": "(?i)scout|localizer"},
        }}}) for i in range(PROJECTS)]


WORST = {"Modality": ("CT",), "BodyPartExamined": ("CHEST",), "SliceThickness": ("1.25",),
         "StudyDescription": (f"CT CHEST protocol {PROJECTS - 1}",),
         "SeriesDescription": ("Axial 1.25mm",)}
TYPICAL = {**WORST, "Modality": ("US",)}


def baseline(rules: list[Project]) -> Callable[[dict], object]:
    """Each condition as a dict lookup of the header value and an equality test."""
    wanted = [[(k, "x") for k in p.match.header] for p in rules]

    def look(header: dict) -> object:
        hits = 0
        for conditions in wanted:
            for keyword, value in conditions:
                hits += header.get(keyword) == value
        return hits

    return look


def per_series_us(call: Callable[[], object], series: int) -> float:
    """CPU time of this process, so time spent waiting for a core shared with other
    work is not counted."""
    start = time.process_time()
    for _ in range(series):
        call()
    return (time.process_time() - start) / series * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", type=int, default=0)
    parser.add_argument("--series", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    rules = projects()
    router = Router(rules)
    arrival = Arrival("scp", calling_ae="CT_ROOM1")
    assert router.route(arrival, WORST) == f"project-{PROJECTS - 1}"
    assert router.route(arrival, TYPICAL) is None
    look = baseline(rules)
    cases = {"(a) dict lookup baseline": lambda: look(WORST),
             "(b) Router.route, worst case": lambda: router.route(arrival, WORST),
             "(c) Router.route, typical case": lambda: router.route(arrival, TYPICAL)}
    timings: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):  # interleaved, so the machine's mood weighs on each alike
        for name, call in cases.items():
            timings[name].append(per_series_us(call, args.series))
    base = statistics.median(timings["(a) dict lookup baseline"])
    print(f"{PROJECTS} projects x 5 conditions, {args.series} series x {args.rounds} rounds, "
          f"cpu {args.cpu}; CPU time of this process, median and best round")
    for name, values in timings.items():
        median = statistics.median(values)
        print(f"  {name:34s} {median:8.2f} us/series (best {min(values):7.2f})"
              f"  x{median / base:5.2f} of (a)")
    worst = statistics.median(timings["(b) Router.route, worst case"])
    print(f"  target: under {TARGET_US:g} us/series: "
          f"{'met' if worst < TARGET_US else 'NOT met'} in the worst case (median)")


if __name__ == "__main__":
    main()
