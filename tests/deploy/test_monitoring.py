"""The Prometheus alert rules and the Grafana dashboard in deploy/monitoring/ are sound:
promtool accepts the rules and passes their unit tests, every dashboard query is valid
PromQL, and every metric they query is one the relay exports (a renamed metric would
otherwise leave an alert that can never fire and a panel that stays empty)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

import relay_shared.metrics  # noqa: F401  (registers the relay's metrics)

from .conftest import ROOT

MONITORING = ROOT / "deploy" / "monitoring"
RULES = MONITORING / "alerts.yml"
DASHBOARD = MONITORING / "grafana-dashboard.json"
# Series a histogram or counter family exposes besides its own name.
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum",
                                                             "_created"), "gauge": ("",)}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
                "and", "or", "unless", "offset", "inf", "nan", "le"}


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool not found: bash tests/support/install-system-deps.sh installs "
                    "Debian's prometheus package, which has it")
    return found


def run_promtool(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *args], capture_output=True, text=True, timeout=120,
                          cwd=MONITORING)


def rule_expressions() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    panels: list[dict[str, Any]] = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


def exported_series_names() -> set[str]:
    names = set()
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are not functions
    (followed by "("), keywords, label names (inside {} or a grouping clause), strings,
    durations or numbers."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values, format strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges and subqueries
    names = set()
    for match in re.finditer(r"(?<![\w.])([A-Za-z_:][\w:]*)\b(\s*\()?", expr):
        word, call = match.group(1), match.group(2)
        if call is None and word.lower() not in PROMQL_WORDS:
            names.add(word)
    return names


def test_promtool_accepts_the_rules(promtool):
    out = run_promtool(promtool, "check", "rules", RULES.name)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_each_alert_passes_its_unit_tests(promtool):
    out = run_promtool(promtool, "test", "rules", "alerts.test.yml")
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_alert_has_a_unit_test():
    tests = yaml.safe_load((MONITORING / "alerts.test.yml").read_text())["tests"]
    tested = {case["alertname"] for test in tests for case in test["alert_rule_test"]
              if case.get("exp_alerts")}
    groups = yaml.safe_load(RULES.read_text())["groups"]
    alerts = {rule["alert"] for group in groups for rule in group["rules"]}
    assert alerts == tested


def test_every_dashboard_query_is_valid_promql(promtool, tmp_path):
    # promtool parses a recording rule's expression as PromQL: the dashboard's queries,
    # written as rules, get the same check as the alerts.
    rules = [{"record": f"dashboard:query_{n}", "expr": expr}
             for n, expr in enumerate(dashboard_expressions())]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    out = run_promtool(promtool, "check", "rules", str(path))
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("source", ["alerts", "dashboard"])
def test_every_queried_metric_is_exported(source):
    expressions = rule_expressions() if source == "alerts" else dashboard_expressions()
    queried = set().union(*(metric_names(expr) for expr in expressions))
    assert queried, "no metric names found: the parser is broken"
    unknown = queried - exported_series_names()
    assert not unknown, f"queried but not exported by shared/metrics.py: {sorted(unknown)}"


def test_dashboard_covers_what_the_team_watches():
    queried = set().union(*(metric_names(expr) for expr in dashboard_expressions()))
    assert {"relay_stage_seconds_count", "relay_queue_depth", "relay_instances_failed_total",
            "relay_series_done_seconds_bucket"} <= queried


@pytest.mark.parametrize(("expr", "names"), [
    ('sum by (stage, reason) (increase(relay_instances_failed_total{stage="deid"}[1h]))',
     {"relay_instances_failed_total"}),
    ("histogram_quantile(0.95, sum by (le) (rate(relay_series_done_seconds_bucket[5m])))",
     {"relay_series_done_seconds_bucket"}),
    ('a_metric - time() < 3 * 86400 and on (instance) other:recorded offset 1d',
     {"a_metric", "other:recorded"}),
    ('label_replace(up, "x", "$1", "job", "(.*)") unless bool nothing_else',
     {"up", "nothing_else"}),
])
def test_metric_names_are_read_from_promql(expr, names):
    assert metric_names(expr) == names


def test_dashboard_is_importable_grafana_json():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["schemaVersion"] >= 36
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


def test_rules_file_is_where_the_docs_say(tmp_path: Path):
    docs = (ROOT / "docs" / "operations.md").read_text()
    assert "deploy/monitoring/alerts.yml" in docs
    for rule in {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"]
                 for r in g["rules"]}:
        assert f"### {rule}" in docs, f"docs/operations.md does not explain {rule}"
