"""Every rendered object validates against the Kubernetes OpenAPI schemas.

kubernetes-validate ships the schemas of each Kubernetes release, so this
runs offline. Strict mode rejects unknown fields (a misspelt key would
otherwise be dropped silently by the API server). KEDA's custom resources
have no schema there: their required fields are checked by hand.
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from .conftest import OVERLAYS

# The oldest release the manifests support (PodDisruptionBudget policy/v1,
# autoscaling/v2, fsGroupChangePolicy...) and the newest the package knows.
K8S_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
CUSTOM_GROUPS = ("keda.sh/", "rabbitmq.com/", "postgresql.cnpg.io/")  # see test_operators


def native(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if not o["apiVersion"].startswith(CUSTOM_GROUPS)]


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_objects_match_the_kubernetes_schema(rendered, overlay, version):
    errors = []
    for obj in native(rendered[overlay]):
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = "/".join(str(p) for p in exc.caught.absolute_path)
            errors.append(f"{obj['kind']}/{obj['metadata']['name']} {path}: {exc.caught.message}")
    assert not errors, "\n".join(errors)


def test_the_validator_rejects_a_bad_object():
    bad = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {"replicas": "two", "selector": {}, "template": {}},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSIONS[0], strict=True)


def test_keda_objects_are_well_formed(rendered):
    custom = [o for o in rendered["prod"] if o["apiVersion"].startswith("keda.sh/")]
    kinds = {o["kind"]: o for o in custom}
    assert set(kinds) == {"ScaledObject", "TriggerAuthentication"}
    for obj in custom:
        assert obj["apiVersion"] == "keda.sh/v1alpha1"
    scaled = kinds["ScaledObject"]["spec"]
    assert scaled["scaleTargetRef"]["name"] == "relay-deid"
    assert 1 <= scaled["minReplicaCount"] < scaled["maxReplicaCount"]
    for trigger in scaled["triggers"]:
        assert isinstance(trigger["metadata"]["value"], str)  # KEDA wants strings
        assert (
            trigger["authenticationRef"]["name"]
            == kinds["TriggerAuthentication"]["metadata"]["name"]
        )
