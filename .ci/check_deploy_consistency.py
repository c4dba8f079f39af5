"""Cross-checks between Dockerfile, .dockerignore and the rendered Kubernetes manifests.

The linters look at one file at a time; these are the facts that must agree across files:
the build context holds what the Dockerfile copies (and nothing it should not), the pods run
as the image's user, listen on its port, keep the metrics directory on a writable volume, and
the shutdown and warm-up timings fit the service's settings.

Run by .ci/deploy-checks.sh with the deploy venv's Python (docker SDK and PyYAML):

    python .ci/check_deploy_consistency.py RENDERED_DIR
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from docker.utils.build import exclude_paths
from dockerfile_stages import dockerfile_instructions, final_stage  # beside this script

ROOT = Path(__file__).resolve().parent.parent
BUNDLE_FILES = ("model.keras", "tokenizer.json", "metadata.json")
# Never in the build context: secrets of the checkout, environments, caches, other models.
NEVER_IN_CONTEXT = re.compile(
    r"^(\.git|\.venv[^/]*|\.mypy_cache|\.ruff_cache|\.pytest_cache|\.hypothesis|tests|bench"
    r"|build|dist|k8s)(/|$)|(^|/)__pycache__(/|$)|^models/(?!default(/|$))|^models/default/\."
)
MIN_STARTUP_BUDGET_S = 120
DEFAULT_GRACEFUL_TIMEOUT_S = 25  # service/config.py

errors: list[str] = []


def fail(message: str) -> None:
    """Record one failed check."""
    errors.append(message)


def check_build_context(instructions: list[tuple[str, str]]) -> None:
    """Every COPY source is in the context; nothing private or bulky is."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    context = set(exclude_paths(str(ROOT), patterns))
    for keyword, arguments in instructions:
        if keyword not in {"COPY", "ADD"}:
            continue
        words = shlex.split(arguments)
        if any(word.startswith("--from=") for word in words):
            continue
        sources = [word for word in words if not word.startswith("--")][:-1]
        for written in sources:
            source = written.rstrip("/")
            if source not in context:
                fail(f"Dockerfile copies {source!r}, which .dockerignore leaves out")
            elif (ROOT / source).is_dir() and not any(
                item.startswith(source + "/") for item in context
            ):
                fail(f"Dockerfile copies {source!r}, but none of its files are in the context")
    for name in BUNDLE_FILES:
        if f"models/default/{name}" not in context:
            fail(f"the build context lacks the default bundle's {name}")
    for item in sorted(context):
        if NEVER_IN_CONTEXT.search(item):
            fail(f"the build context includes {item!r}: add it to .dockerignore")
    size = sum((ROOT / item).stat().st_size for item in context if (ROOT / item).is_file())
    print(f"build context: {len(context)} paths, {size / 2**20:.1f} MiB")


def image_facts(stage: list[tuple[str, str]]) -> dict[str, Any]:
    """Return the runtime stage's user id, exposed port, ENV and entrypoint."""
    env: dict[str, str] = {}
    facts: dict[str, Any] = {"env": env}
    for keyword, arguments in stage:
        if keyword == "USER":
            facts["uid"] = int(arguments.split(":")[0])
        elif keyword == "EXPOSE":
            facts["port"] = int(arguments.split("/")[0])
        elif keyword == "ENV":
            for pair in shlex.split(arguments):
                name, _, value = pair.partition("=")
                env[name] = value
        elif keyword == "ENTRYPOINT":
            facts["entrypoint"] = json.loads(arguments)
    return facts


def documents(rendered: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (file name, object) for every manifest of every rendered kustomization."""
    for path in sorted(rendered.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document:
                yield path.name, document


def check_pod(where: str, spec: dict[str, Any], image: dict[str, Any]) -> None:
    """The pod runs as the image's user, with a read-only root and the token not mounted."""
    pod_security = spec.get("securityContext", {})
    if spec.get("automountServiceAccountToken") is not False:
        fail(f"{where}: automountServiceAccountToken must be false")
    for container in spec["containers"]:
        security = {**pod_security, **container.get("securityContext", {})}
        name = f"{where} container {container['name']}"
        if security.get("runAsUser") != image["uid"]:
            fail(f"{name}: runAsUser {security.get('runAsUser')} != image USER {image['uid']}")
        if security.get("readOnlyRootFilesystem") is not True:
            fail(f"{name}: readOnlyRootFilesystem must be true")
        if ":" not in container["image"] or container["image"].endswith(":latest"):
            fail(f"{name}: image {container['image']!r} needs a release tag")


def check_server(
    where: str, spec: dict[str, Any], config: dict[str, str], image: dict[str, Any]
) -> None:
    """Port, writable metrics dir, probes and the shutdown budget of the serving container."""
    (container,) = [c for c in spec["containers"] if c["name"] == "server"]
    env = {**image["env"], **config, **{e["name"]: e.get("value") for e in container["env"]}}
    ports = {port["containerPort"] for port in container["ports"]}
    if int(env.get("SENTIMENT_PORT", 8000)) not in ports or image["port"] not in ports:
        fail(f"{where}: containerPort {ports} vs SENTIMENT_PORT / EXPOSE {image['port']}")
    mounts = [mount["mountPath"] for mount in container.get("volumeMounts", [])]
    for variable in ("PROMETHEUS_MULTIPROC_DIR", "KERAS_HOME"):
        path = env.get(variable, "")
        if not any(path == mount or path.startswith(mount + "/") for mount in mounts):
            fail(f"{where}: {variable}={path} is not on a writable volume ({mounts})")
    model_dir = env.get("SENTIMENT_MODEL_DIR", "")
    if not model_dir.startswith("/app/") and not any(
        model_dir.startswith(mount + "/") for mount in mounts
    ):
        fail(f"{where}: SENTIMENT_MODEL_DIR={model_dir} is neither in the image nor mounted")

    probes = {kind: container.get(kind, {}) for kind in ("startupProbe", "readinessProbe")}
    probes["livenessProbe"] = container.get("livenessProbe", {})
    expected = {"startupProbe": "/readyz", "readinessProbe": "/readyz", "livenessProbe": "/healthz"}
    for kind, path in expected.items():
        if probes[kind].get("httpGet", {}).get("path") != path:
            fail(f"{where}: {kind} must GET {path}")
    startup = probes["startupProbe"]
    budget = startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3)
    if budget < MIN_STARTUP_BUDGET_S:
        fail(f"{where}: startupProbe allows {budget} s to warm up, < {MIN_STARTUP_BUDGET_S} s")

    command = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command")
    if not command or command[0] != "sleep":
        fail(f"{where}: preStop must be a sleep")
        return
    graceful = int(env.get("SENTIMENT_GRACEFUL_TIMEOUT_S", DEFAULT_GRACEFUL_TIMEOUT_S))
    needed = int(command[1]) + graceful
    grace = spec.get("terminationGracePeriodSeconds", 30)
    if grace <= needed:
        fail(f"{where}: terminationGracePeriodSeconds {grace} <= preStop + graceful = {needed}")


def ray_pods(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (role, pod spec) for a RayJob's submitter, head and worker groups."""
    if "submitterPodTemplate" in spec:
        yield "submitter", spec["submitterPodTemplate"]["spec"]
    cluster = spec["rayClusterSpec"]
    yield "head", cluster["headGroupSpec"]["template"]["spec"]
    for group in cluster.get("workerGroupSpecs", []):
        yield f"workers {group['groupName']}", group["template"]["spec"]


def check_manifests(rendered: Path, image: dict[str, Any]) -> None:
    """Walk every rendered kustomization."""
    by_file: dict[str, list[dict[str, Any]]] = {}
    for name, document in documents(rendered):
        by_file.setdefault(name, []).append(document)
    for name, objects in by_file.items():
        kinds = [obj["kind"] for obj in objects]
        if name.startswith("overlays-") and "Job" in kinds:
            fail(f"{name}: a serving overlay must not start a training Job")
        config: dict[str, str] = {}
        for obj in objects:
            if obj["kind"] == "ConfigMap" and obj["metadata"]["name"].startswith("sentiment-"):
                config.update(obj.get("data", {}))
        for obj in objects:
            where = f"{name}: {obj['kind']}/{obj['metadata']['name']}"
            if obj["kind"] in {"Deployment", "Job"}:
                spec = obj["spec"]["template"]["spec"]
                check_pod(where, spec, image)
            if obj["kind"] == "RayJob":
                for role, pod in ray_pods(obj["spec"]):
                    check_pod(f"{where} {role}", pod, image)
            if obj["kind"] == "Deployment":
                check_server(where, obj["spec"]["template"]["spec"], config, image)
                containers = obj["spec"]["template"]["spec"]["containers"]
                wants_gpu = any(
                    "nvidia.com/gpu" in c.get("resources", {}).get("limits", {}) for c in containers
                )
                if ("gpu" in name) != wants_gpu:
                    fail(f"{where}: nvidia.com/gpu limit only and always in the GPU overlay")


def main(argv: list[str]) -> int:
    """Run every check; print each failure and exit 1 if there was one."""
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    instructions = dockerfile_instructions(ROOT / "Dockerfile")
    check_build_context(instructions)
    image = image_facts(final_stage(instructions))
    if image.get("entrypoint") is None or "uid" not in image or "port" not in image:
        fail("Dockerfile: the last stage needs ENTRYPOINT, USER and EXPOSE")
    else:
        check_manifests(Path(argv[0]), image)
    for message in errors:
        print(f"FAIL {message}", file=sys.stderr)
    if not errors:
        print("Dockerfile, .dockerignore and manifests agree")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
