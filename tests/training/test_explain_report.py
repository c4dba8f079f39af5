"""Occlusion on real (tiny) bundles, n-gram branches included, and the explained-errors report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from training.batches import predict_probabilities
from training.bundle import load_bundle
from training.cli import evaluate_main
from training.explain_report import confident_errors, explain_texts, highlight
from training.spans import TokenSpan

TEXT = "A great film, but the plot was awful and dull!<br />Loved the actors."


@pytest.mark.parametrize("fixture", ["tiny_nbsvm_bundle", "tiny_hybrid_bundle"])
def test_deleting_a_token_from_the_text_moves_the_score_by_its_attribution(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    bundle = load_bundle(request.getfixturevalue(fixture))
    ((spans, attribution),) = explain_texts(bundle, [TEXT])
    best = attribution.best
    without = [TEXT[: span.start] + " " + TEXT[span.end :] for span in spans]
    scored = predict_probabilities(bundle.model, bundle.preprocessor, [TEXT, *without])
    np.testing.assert_allclose(attribution.probabilities, scored[0], atol=1e-5)
    # The whole model, NB-SVM / n-gram branch included: each deletion, re-encoded from the
    # edited text, lowers the predicted label's probability by exactly the attribution.
    np.testing.assert_allclose(
        attribution.attributions[:, best], scored[0, best] - scored[1:, best], atol=1e-5
    )


def test_identical_tokens_have_identical_attributions(tiny_nbsvm_bundle: Path) -> None:
    bundle = load_bundle(tiny_nbsvm_bundle)
    ((_, attribution),) = explain_texts(bundle, ["great great great great"])
    assert np.ptp(attribution.attributions, axis=0).max() < 1e-6


def test_confident_errors_are_wrong_and_sorted() -> None:
    truth = np.array([0, 1, 1, 0, 1])
    probabilities = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.3, 0.7], [0.99, 0.01]])
    assert confident_errors(truth, probabilities, 5) == [4, 1, 3]
    assert confident_errors(truth, probabilities, 1) == [4]


def test_highlight_escapes_and_keeps_the_text() -> None:
    text = "<b>bad</b> & good"
    spans = [TokenSpan("bad", 5, 3, 6), TokenSpan("good", 6, 13, 17)]
    shown = highlight(text, spans, [-0.3, 0.1])
    assert "<b>" not in shown
    assert "&lt;b&gt;" in shown
    assert shown.count("<span") == 2


def test_evaluate_writes_the_explained_errors(
    tiny_nbsvm_bundle: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    _, val = tiny_data
    # Flip the labels: the tiny model is good, and the report needs wrong predictions.
    flipped = tmp_path / "flipped.jsonl"
    rows = [json.loads(line) for line in val.read_text().splitlines()]
    flipped.write_text("".join(json.dumps({**r, "label": 1 - r["label"]}) + "\n" for r in rows))
    out = tmp_path / "reports" / "eval.json"
    argv = ["--model-dir", str(tiny_nbsvm_bundle), "--data", str(flipped), "--out", str(out)]
    assert evaluate_main([*argv, "--explain-errors", "3"]) == 0
    report = (tmp_path / "reports" / "eval_errors.html").read_text()
    assert report.count('class="case"') == 3
    assert "<script" not in report
    assert "<span style" in report


@pytest.mark.parametrize("text", ["", "<br />", "   "])
def test_a_text_without_tokens_is_scored_as_predict_scores_it(
    tiny_nbsvm_bundle: Path, text: str
) -> None:
    bundle = load_bundle(tiny_nbsvm_bundle)
    ((spans, attribution),) = explain_texts(bundle, [text])
    assert spans == []
    expected = predict_probabilities(bundle.model, bundle.preprocessor, [text])[0]
    np.testing.assert_allclose(attribution.probabilities, expected, atol=1e-6)
