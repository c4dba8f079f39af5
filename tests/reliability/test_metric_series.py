"""Label values stay in fixed sets on the real server: junk requests cannot mint series."""

from __future__ import annotations

import random
import string
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from service.app import METRIC_METHODS, OTHER_METHOD
from tests.integration.server import Server, running_server

pytestmark = pytest.mark.integration
TOKEN = "metric-series-token"


def series(server: Server) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    """Return every series /metrics exposes, as (sample name, sorted labels)."""
    text = requests.get(f"{server.url}/metrics", timeout=10).text
    return {
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_random_methods_paths_and_models_add_a_bounded_number_of_series(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    rng = random.Random(3)
    authorized = {"Authorization": f"Bearer {TOKEN}"}
    with (
        running_server(
            tiny_bundle, tmp_path, workers="2", xla="false", auth_tokens=TOKEN
        ) as server,
        requests.Session() as session,
    ):
        session.post(f"{server.url}/predict", json={"text": "fun"}, headers=authorized)
        before = series(server)
        for index in range(1000):
            method = "".join(rng.choices(string.ascii_uppercase, k=rng.randint(1, 10)))
            name = "".join(rng.choices(string.ascii_lowercase + string.digits, k=8))
            path = rng.choice(
                [f"/{name}", f"/v1/models/{name}:predict", f"/v1/models/{name}", "/predict"]
            )
            headers = authorized if index % 2 else {}  # half answered 401 before routing
            reply = session.request(method, f"{server.url}{path}", headers=headers, timeout=10)
            assert reply.status_code < 500
        after = series(server)
    new = after - before
    assert len(new) <= 60, sorted(new)[:20]
    methods = {dict(labels).get("method") for _, labels in after} - {None}
    assert methods <= METRIC_METHODS | {OTHER_METHOD}
