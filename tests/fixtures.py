"""Tiny generated data and models shared by the test packages (never the real IMDB files)."""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from training.bundle import BundleMetadata
from training.spans import TokenSpan

POSITIVE_WORDS = ["great", "wonderful", "loved", "superb", "moving", "brilliant", "fun"]
NEGATIVE_WORDS = ["awful", "boring", "hated", "dull", "terrible", "waste", "bad"]
FILLER_WORDS = ["the", "film", "movie", "plot", "actors", "was", "and", "it", "a", "story"]


def make_review(rng: random.Random, label: int, length: int | None = None) -> str:
    """Return a synthetic review whose sentiment words match ``label`` (1 positive, 0 negative)."""
    cue = POSITIVE_WORDS if label == 1 else NEGATIVE_WORDS
    length = length or rng.randint(3, 25)
    words = [
        rng.choice(cue) if rng.random() < 0.3 else rng.choice(FILLER_WORDS) for _ in range(length)
    ]
    words[rng.randrange(length)] = rng.choice(cue)  # at least one cue word
    return " ".join(words) + rng.choice([".", "!", "", "<br /><br />"])


def make_reviews(count: int, seed: int = 0) -> list[tuple[str, int]]:
    """Return ``count`` balanced (text, label) pairs."""
    rng = random.Random(seed)
    return [(make_review(rng, i % 2), i % 2) for i in range(count)]


# Words the synthetic reviews never use, with vectors beside their sentiment's cue words in
# ``write_word_vectors``: a model can only score them from those vectors.
UNSEEN_POSITIVE_WORDS = ["splendid", "marvellous"]
UNSEEN_NEGATIVE_WORDS = ["dreadful", "atrocious"]


def write_word_vectors(path: Path, dim: int = 6, seed: int = 0) -> Path:
    """Write GloVe-format vectors: cue words (seen and unseen) apart by sentiment, filler near 0.

    Dimension 0 is +1 for positive words and -1 for negative ones; the rest is small noise.
    The words come most frequent first, as in GloVe: filler, then cues, then unseen cues.
    """
    rng = np.random.default_rng(seed)
    lines = []
    groups = [
        (FILLER_WORDS, 0.0),
        (POSITIVE_WORDS, 1.0),
        (NEGATIVE_WORDS, -1.0),
        (UNSEEN_POSITIVE_WORDS, 1.0),
        (UNSEEN_NEGATIVE_WORDS, -1.0),
    ]
    for words, polarity in groups:
        for word in words:
            vector = rng.normal(0.0, 0.1, dim)
            vector[0] = polarity
            lines.append(" ".join([word, *(f"{value:.4f}" for value in vector)]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_jsonl(path: Path, rows: list[tuple[str, int]]) -> Path:
    """Write rows in the IMDB JSON Lines layout."""
    with path.open("w", encoding="utf-8") as handle:
        for index, (text, label) in enumerate(rows):
            handle.write(json.dumps({"id": f"x/{index}", "text": text, "label": label}) + "\n")
    return path


# A model small enough to train in seconds on 2 CPU cores.
TINY_TRAIN_ARGS = [
    "--num-words",
    "64",
    "--maxlen",
    "24",
    "--embedding-dim",
    "8",
    "--units",
    "4",
    "--epochs",
    "3",
    "--batch-size",
    "16",
    "--patience",
    "3",
    "--learning-rate",
    "0.02",
    "--label-names",
    "0=negative,1=positive",
    "--quiet",
]


# -- a fake predictor for fast service tests (no TensorFlow) ---------------------------------

# The fake model's vocabulary: id 0 is padding, id 1 out-of-vocabulary, the rest words.
FAKE_OOV = 1
FAKE_VOCABULARY = {"good": 2, "great": 3, "bad": 4, "awful": 5, "the": 6, "film": 7, "was": 8}
FAKE_POSITIVE_IDS = frozenset({2, 3})


def fake_metadata() -> BundleMetadata:
    """Return the metadata of the fake model, built in code."""
    return BundleMetadata(
        format_version=1,
        name="fake",
        version="3",
        created_at="2024-01-01T00:00:00+00:00",
        labels=["negative", "positive"],
        maxlen=16,
        padding="post",
        truncating="pre",
        vocabulary_size=10,
    )


def fake_score(text: str) -> float:
    """Return the fake model's positive score: the share of positive words in the text."""
    ids = FakePredictor.encode_one(text)
    return sum(i in FAKE_POSITIVE_IDS for i in ids) / len(ids) if ids else 0.5


class FakePredictor:
    """A ``ServableModel`` (service/model.py) without TensorFlow, for the service tests.

    ``encode`` maps each whitespace word to an id (``FAKE_OOV`` for unknown words, truncated
    to the last ``maxlen`` words); the score is the share of positive words (0.5 for an empty
    text). ``fail_with`` makes ``predict_encoded`` raise, ``load_error`` makes ``load`` raise,
    ``delay_s`` slows every model call, ``load_gate`` blocks ``load`` and ``gate`` blocks every
    model call until set (``entered`` is set once a call is waiting on it). With
    ``runs_model_here`` false it stands for a model in another process (``RemoteModel``).
    """

    def __init__(
        self,
        *,
        fail_with: Exception | None = None,
        load_error: Exception | None = None,
        delay_s: float = 0.0,
        load_gate: threading.Event | None = None,
        gate: threading.Event | None = None,
        runs_model_here: bool = True,
    ) -> None:
        self._ready = threading.Event()
        self.runs_model_here = runs_model_here
        self.fail_with = fail_with
        self.load_error = load_error
        self.delay_s = delay_s
        self.load_gate = load_gate
        self.gate = gate
        self.entered = threading.Event()
        self.batch_sizes: list[int] = []
        self.warmed_up = False
        self._metadata = fake_metadata()
        self._on_ready_change: Callable[[], None] | None = None

    def open_gates(self) -> None:
        """Let every load and model call blocked on a gate go on (at teardown: no thread stays
        blocked)."""
        for gate in (self.load_gate, self.gate):
            if gate is not None:
                gate.set()

    def load(self, *, warmup: bool = True) -> None:
        """Turn ready (after ``load_gate``, if any), or raise ``load_error``."""
        if self.load_gate is not None and not self.load_gate.wait(timeout=10):
            raise RuntimeError("load_gate was never opened")
        if self.load_error is not None:
            raise self.load_error
        self.warmed_up = warmup
        self._ready.set()

    @property
    def ready(self) -> bool:
        """Return whether ``load`` ran (and the model was not made unavailable since)."""
        return self._ready.is_set()

    def watch_readiness(self, on_change: Callable[[], None]) -> None:
        """Keep ``on_change``: ``set_available`` calls it, as a lost model process would."""
        self._on_ready_change = on_change

    def set_available(self, available: bool) -> None:
        """Make the model go away or come back (as a model process dying or returning)."""
        if available:
            self._ready.set()
        else:
            self._ready.clear()
        if self._on_ready_change is not None:
            self._on_ready_change()

    @property
    def runtime_name(self) -> str:
        """The fake is its own runtime."""
        return "fake"

    @property
    def metadata(self) -> BundleMetadata:
        """Return the fake model's metadata (once loaded, as the real predictor)."""
        if not self.ready:
            raise RuntimeError("Predictor.load() has not run")
        return self._metadata

    @property
    def oov_index(self) -> int | None:
        """Return the out-of-vocabulary id."""
        return FAKE_OOV

    @staticmethod
    def encode_one(text: str) -> list[int]:
        """Encode one text: one id per whitespace word, the last ``maxlen`` kept."""
        ids = [FAKE_VOCABULARY.get(word, FAKE_OOV) for word in text.lower().split()]
        return ids[-fake_metadata().maxlen :]

    def encode_spans(self, text: str) -> list[TokenSpan]:
        """Return ``encode_one``'s ids with each word's span."""
        words = list(re.finditer(r"\S+", text))[-fake_metadata().maxlen :]
        return [
            TokenSpan(m.group(), FAKE_VOCABULARY.get(m.group().lower(), FAKE_OOV), *m.span())
            for m in words
        ]

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Encode texts deterministically."""
        return [self.encode_one(text) for text in texts]

    def predict_encoded(self, encoded: Sequence[Sequence[int]]) -> np.ndarray:
        """Return one sigmoid-like column: the share of positive ids per text."""
        self.batch_sizes.append(len(encoded))
        if self.gate is not None:
            self.entered.set()
            if not self.gate.wait(timeout=10):
                raise RuntimeError("gate was never opened")
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail_with is not None:
            raise self.fail_with
        scores = [
            sum(i in FAKE_POSITIVE_IDS for i in ids) / len(ids) if ids else 0.5 for ids in encoded
        ]
        return np.asarray(scores, dtype=np.float32).reshape(-1, 1)


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``condition`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)
