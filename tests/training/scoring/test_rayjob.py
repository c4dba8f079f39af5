"""k8s/batch: the KubeRay RayJob runs a valid `sentiment-predict --engine ray` on its volumes.

kubernetes-validate has no schema for RayJob (a custom resource), so its structure is checked
here: the fields KubeRay's ray.io/v1 API requires, a command line our own parser accepts, and
every path the command uses on a mounted volume.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from training.scoring.cli import build_parser

BATCH = Path(__file__).resolve().parents[3] / "k8s" / "batch"


@pytest.fixture(scope="module")
def rayjob() -> dict[str, Any]:
    """Return the RayJob manifest."""
    document: dict[str, Any] = yaml.safe_load((BATCH / "rayjob.yaml").read_text())
    return document


def _pods(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    cluster = spec["rayClusterSpec"]
    pods = [("submitter", spec["submitterPodTemplate"]), ("head", cluster["headGroupSpec"])]
    pods += [(group["groupName"], group) for group in cluster["workerGroupSpecs"]]
    return [
        (name, part["template"]["spec"] if "template" in part else part["spec"])
        for name, part in pods
    ]


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((BATCH / "kustomization.yaml").read_text())
    files = {path.name for path in BATCH.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


def test_rayjob_has_what_kuberay_requires(rayjob: dict[str, Any]) -> None:
    assert (rayjob["apiVersion"], rayjob["kind"]) == ("ray.io/v1", "RayJob")
    spec = rayjob["spec"]
    assert spec["shutdownAfterJobFinishes"] is True  # the cluster goes away with the job
    assert spec["submissionMode"] in {"K8sJobMode", "HTTPMode"}
    cluster = spec["rayClusterSpec"]
    assert isinstance(cluster["headGroupSpec"]["rayStartParams"], dict)
    for group in cluster["workerGroupSpecs"]:
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        assert isinstance(group["rayStartParams"], dict)
    head = cluster["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert head["name"] == "ray-head"


def test_entrypoint_is_a_valid_ray_engine_command(rayjob: dict[str, Any]) -> None:
    words = shlex.split(rayjob["spec"]["entrypoint"])
    assert words[0] == "sentiment-predict"
    args = build_parser().parse_args(words[1:])
    assert args.engine == "ray"
    assert args.address == "auto"
    workers = rayjob["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    cpus = sum(
        group["replicas"]
        * int(group["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"])
        for group in workers
    )
    assert args.actors * args.cpus_per_actor == cpus, "one actor per worker CPU"
    head = rayjob["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    mounts = [mount["mountPath"] for mount in head["containers"][0]["volumeMounts"]]
    for path in (str(args.data), str(args.out)):
        assert any(path.startswith(mount + "/") for mount in mounts), path
    assert str(args.model_dir).startswith("/app/"), "the bundle baked into the image"


def test_every_pod_is_hardened(rayjob: dict[str, Any]) -> None:
    for name, pod in _pods(rayjob["spec"]):
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            assert "limits" in container["resources"], name
            mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
            assert "/tmp" in mounts, f"{name}: Ray needs a writable /tmp"
