"""App fixtures for the service tests: a real app over a ``FakePredictor`` (no TensorFlow)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.app import create_app
from service.config import Settings
from service.inference_process import InferenceServer
from service.metrics import Metrics
from service.runtime import Runtime
from service.state import EXTENSION
from tests.fixtures import FakePredictor

# Small limits, so every limit is cheap to exceed.
TEST_LIMITS: dict[str, Any] = {
    "max_texts_per_request": 5,
    "max_text_chars": 50,
    "max_body_bytes": 4096,
    "max_queue_texts": 64,
    "max_batch_size": 8,
    "max_batch_wait_ms": 0,
    "request_timeout_s": 5.0,
    "graceful_timeout_s": 5,
    "log_level": "warning",
}

AppFactory = Callable[..., Flask]
ServerFactory = Callable[..., InferenceServer]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's SENTIMENT_* and multiprocess metrics settings out of the tests."""
    for name in list(os.environ):
        if name.startswith("SENTIMENT_") or name == "PROMETHEUS_MULTIPROC_DIR":
            monkeypatch.delenv(name)


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Return a factory of Settings with the test limits; keyword arguments override them."""

    def make(**overrides: Any) -> Settings:
        return Settings(model_dir=tmp_path, **{**TEST_LIMITS, **overrides})

    return make


@pytest.fixture
def make_app(make_settings: Callable[..., Settings]) -> Iterator[AppFactory]:
    """Return a factory of apps over a FakePredictor; every app's runtime is stopped after."""
    made: list[tuple[Runtime, FakePredictor]] = []

    def make(
        predictor: FakePredictor | None = None,
        *,
        load_in_background: bool = False,
        **overrides: Any,
    ) -> Flask:
        fake = predictor or FakePredictor()
        app = create_app(
            make_settings(**overrides), predictor=fake, load_in_background=load_in_background
        )
        made.append((app.extensions[EXTENSION], fake))
        return app

    yield make
    for runtime, fake in made:
        fake.open_gates()
        runtime.stop()


@pytest.fixture
def predictor() -> FakePredictor:
    """Return the fake predictor behind ``app``."""
    return FakePredictor()


@pytest.fixture
def app(make_app: AppFactory, predictor: FakePredictor) -> Flask:
    """Return a ready app over ``predictor``, loaded in the foreground."""
    return make_app(predictor)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """Return a test client of ``app``."""
    return app.test_client()


@pytest.fixture
def runtime(app: Flask) -> Runtime:
    """Return ``app``'s Runtime."""
    runtime: Runtime = app.extensions[EXTENSION]
    return runtime


@pytest.fixture
def socket_path(tmp_path: Path) -> Path:
    """Return the socket path, in a directory that does not exist yet."""
    return tmp_path / "s" / "model.sock"


@pytest.fixture
def make_server(
    make_settings: Callable[..., Settings], socket_path: Path
) -> Iterator[ServerFactory]:
    """Return a factory of listening servers over a fake model; all are stopped after."""
    made: list[tuple[InferenceServer, FakePredictor]] = []

    def make(
        predictor: FakePredictor | None = None, *, metrics: Metrics | None = None, **overrides: Any
    ) -> InferenceServer:
        fake = predictor or FakePredictor()
        settings = make_settings(inference_socket=socket_path, **overrides)
        server = InferenceServer(settings, fake, metrics=metrics)
        made.append((server, fake))
        server.start(background=False)
        assert server.load_error is None
        return server

    yield make
    for server, fake in made:
        fake.open_gates()
        server.stop(timeout=5)
