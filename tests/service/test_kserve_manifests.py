"""k8s/kserve: no CRD schema offline, so a structural test of what KServe and the app need."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from flask import Flask
from flask.testing import FlaskClient

ROOT = Path(__file__).resolve().parents[2]
KSERVE = ROOT / "k8s" / "kserve"
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((KSERVE / name).read_text(encoding="utf-8"))
    return document


def server_container() -> dict[str, Any]:
    deployment = load("../base/deployment.yaml")
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def test_kustomization_lists_both_objects() -> None:
    assert load("kustomization.yaml")["resources"] == [
        "servingruntime.yaml",
        "inferenceservice.yaml",
    ]


def test_inference_service_uses_the_v2_runtime() -> None:
    service = load("inferenceservice.yaml")
    runtime = load("servingruntime.yaml")
    assert (service["apiVersion"], service["kind"]) == (
        "serving.kserve.io/v1beta1",
        "InferenceService",
    )
    assert (runtime["apiVersion"], runtime["kind"]) == (
        "serving.kserve.io/v1alpha1",
        "ServingRuntime",
    )
    model = service["spec"]["predictor"]["model"]
    assert model["protocolVersion"] == "v2"
    assert model["runtime"] == runtime["metadata"]["name"]
    formats = [entry["name"] for entry in runtime["spec"]["supportedModelFormats"]]
    assert model["modelFormat"]["name"] in formats
    assert "v2" in runtime["spec"]["protocolVersions"]


def test_runtime_container_matches_the_deployment() -> None:
    [container] = load("servingruntime.yaml")["spec"]["containers"]
    base = server_container()
    assert container["name"] == "kserve-container"  # the name KServe expects
    assert container["image"] == base["image"]
    env = {item["name"]: item["value"] for item in container["env"]}
    [port] = container["ports"]
    assert str(port["containerPort"]) == env["SENTIMENT_PORT"]
    assert env["PROMETHEUS_MULTIPROC_DIR"] == "/tmp/metrics"
    assert container["resources"] == base["resources"]
    assert container["securityContext"] == base["securityContext"]
    for probe in PROBES:
        assert container[probe]["httpGet"]["port"] == port["containerPort"]
        for field in ("periodSeconds", "timeoutSeconds", "failureThreshold"):
            assert container[probe][field] == base[probe][field]


def test_probes_are_the_v2_health_routes(client: FlaskClient) -> None:
    [container] = load("servingruntime.yaml")["spec"]["containers"]
    paths = {probe: container[probe]["httpGet"]["path"] for probe in PROBES}
    assert paths == {
        "startupProbe": "/v2/health/ready",
        "readinessProbe": "/v2/health/ready",
        "livenessProbe": "/v2/health/live",
    }
    for path in set(paths.values()):
        assert client.get(path).status_code == 200


def test_probes_need_no_token_when_auth_is_on(make_app: Callable[..., Flask]) -> None:
    client = make_app(auth_tokens="sekret").test_client()
    [container] = load("servingruntime.yaml")["spec"]["containers"]
    for probe in PROBES:
        assert client.get(container[probe]["httpGet"]["path"]).status_code == 200
