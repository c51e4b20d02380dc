"""The prod overlay's broker and database run on their operators: their custom
resources validate against the operators' own CRD schemas (kept in tests/deploy/crds
with their release), offline and strictly (a misspelt field is an error, as with
kubectl's strict field validation), and they are wired to what the relay expects."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from .test_kustomize import by_kind

CRDS = Path(__file__).with_name("crds")
OPERATED = {("rabbitmq.com/v1beta1", "RabbitmqCluster"): "rabbitmq.com_rabbitmqclusters.yaml",
            ("postgresql.cnpg.io/v1", "Cluster"): "postgresql.cnpg.io_clusters.yaml"}


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """Unknown fields are errors, where the schema does not keep them on purpose."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        return [_strict(item) for item in schema]  # type: ignore[return-value]
    return schema


@cache
def crd_schema(api_version: str, kind: str) -> dict[str, Any]:
    crd = yaml.safe_load((CRDS / OPERATED[(api_version, kind)]).read_text())
    version = api_version.rsplit("/", 1)[1]
    served = next(v for v in crd["spec"]["versions"] if v["name"] == version)
    assert served["served"] and served["storage"], f"{kind} {version} is not the stored version"
    schema = copy.deepcopy(served["schema"]["openAPIV3Schema"])
    # metadata is checked by Kubernetes itself (ObjectMeta), not by the CRD.
    schema["properties"]["metadata"] = {"type": "object"}
    return _strict(schema)


def errors_of(obj: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(crd_schema(obj["apiVersion"], obj["kind"]))
    return [f"{obj['kind']}/{obj['metadata']['name']} {'/'.join(map(str, e.absolute_path))}: "
            f"{e.message}" for e in validator.iter_errors(obj)]


def operated(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if (o["apiVersion"], o["kind"]) in OPERATED]


def test_prod_runs_three_node_clusters_on_the_operators(rendered):
    objects = rendered["prod"]
    assert by_kind(objects, "RabbitmqCluster")["rabbitmq"]["spec"]["replicas"] == 3
    assert by_kind(objects, "Cluster")["postgres"]["spec"]["instances"] == 3
    assert set(by_kind(objects, "StatefulSet")) == {"mirth-postgres"}


def test_dev_keeps_the_single_statefulsets(rendered):
    objects = rendered["dev"]
    assert not operated(objects)
    assert {"postgres", "rabbitmq"} <= set(by_kind(objects, "StatefulSet"))


def test_custom_resources_match_their_crd_schemas(rendered):
    found = operated(rendered["prod"])
    assert len(found) == 2
    errors = [error for obj in found for error in errors_of(obj)]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize(("path", "value"), [
    (("spec", "replica"), 3),                      # misspelt field
    (("spec", "replicas"), "three"),               # wrong type
    (("spec", "rabbitmq", "additionalConfig"), 1),
])
def test_the_validation_rejects_a_bad_rabbitmq_cluster(rendered, path, value):
    bad = copy.deepcopy(by_kind(rendered["prod"], "RabbitmqCluster")["rabbitmq"])
    target = bad
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert errors_of(bad)


def test_the_validation_rejects_a_bad_postgres_cluster(rendered):
    bad = copy.deepcopy(by_kind(rendered["prod"], "Cluster")["postgres"])
    bad["spec"]["postgresql"]["synchronous"]["dataDurability"] = "sometimes"
    bad["spec"]["bootstrap"]["initdb"]["ownr"] = "relay"
    assert len(errors_of(bad)) == 2


def test_the_relay_finds_them_where_the_secrets_point(rendered):
    """relay-secrets is the same for both overlays: the broker's client Service is
    named after its cluster, and an extra Service named postgres follows the primary."""
    objects = rendered["prod"]
    rabbit = by_kind(objects, "RabbitmqCluster")["rabbitmq"]["spec"]
    assert rabbit["secretBackend"]["externalSecret"]["name"] == "rabbitmq-default-user"
    postgres = by_kind(objects, "Cluster")["postgres"]["spec"]
    services = postgres["managed"]["services"]["additional"]
    assert [(s["selectorType"], s["serviceTemplate"]["metadata"]["name"]) for s in services] \
        == [("rw", "postgres")]
    assert postgres["bootstrap"]["initdb"] == {"database": "relay", "owner": "relay",
                                               "secret": {"name": "postgres-owner"}}
    # The relay's network policies select the members by these labels.
    assert postgres["inheritedMetadata"]["labels"]["app.kubernetes.io/name"] == "postgres"
    script = (Path(__file__).parents[2] / "deploy" / "k8s" / "create-secrets.sh").read_text()
    for secret in ("rabbitmq-default-user", "postgres-owner"):
        assert f"create {secret}" in script, secret


def test_the_crds_are_the_releases_named_in_their_readme():
    readme = (CRDS / "README.md").read_text()
    for filename in OPERATED.values():
        assert f"`{filename}`" in readme
        crd = yaml.safe_load((CRDS / filename).read_text())
        assert crd["kind"] == "CustomResourceDefinition"
