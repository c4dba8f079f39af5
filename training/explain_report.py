"""``sentiment-evaluate --explain-errors N``: the N most confident wrong predictions, explained.

One self-contained HTML file (no script, no external resource): each wrong prediction's text
with every token shaded by its occlusion attribution toward the (wrong) predicted label, green
for, red against. What a model owner reads to see what the model learned, e.g. a title or an
actor's name carrying sentiment.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from training.batches import model_function
from training.bundle import Bundle
from training.data import Dataset
from training.occlusion import Attribution, explain_ids
from training.spans import TokenSpan, encode_spans

# The shade is strongest at this attribution (a share of the predicted label's probability).
FULL_SHADE = 0.25
TOP_TOKENS = 8  # strongest tokens listed under each text
STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; color: #222; }
.case { border: 1px solid #ddd; border-radius: 4px; padding: .75rem 1rem; margin: 1rem 0; }
.text { line-height: 1.9; white-space: pre-wrap; }
.meta, .top { color: #555; font-size: .9rem; }
"""


def confident_errors(truth: np.ndarray, probabilities: np.ndarray, count: int) -> list[int]:
    """Return the rows predicted wrong, most confident first, at most ``count``."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != truth)
    confidence = probabilities[wrong, predicted[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")][:count].tolist()


def explain_texts(
    bundle: Bundle, texts: Sequence[str]
) -> list[tuple[list[TokenSpan], Attribution]]:
    """Explain each text with the bundle's model (occlusion, as the service does)."""
    preprocessor = bundle.preprocessor
    call = model_function(bundle.model)

    def run(rows: Sequence[Sequence[int]]) -> np.ndarray:
        longest = max(len(row) for row in rows)
        return np.asarray(call(preprocessor.pad(rows, longest)), dtype=np.float32)

    empty = preprocessor.encode([""])[0]
    results = []
    for text in texts:
        spans = encode_spans(preprocessor, text)
        ids = [span.id for span in spans]
        results.append((spans, explain_ids(ids, run, empty=empty)))
    return results


def _shade(value: float) -> str:
    alpha = 0.85 * min(abs(value) / FULL_SHADE, 1.0)
    rgb = "34 160 60" if value >= 0 else "214 40 40"
    return f"rgb({rgb} / {alpha:.3f})"


def highlight(text: str, spans: Sequence[TokenSpan], attributions: Sequence[float]) -> str:
    """Return ``text`` as escaped HTML with each token in a shaded ``<span>``."""
    parts, position = [], 0
    for span, value in zip(spans, attributions, strict=True):
        if span.start < position:  # one character split into two tokens: shade it once
            continue
        parts.append(html.escape(text[position : span.start]))
        parts.append(
            f'<span style="background:{_shade(value)}" title="{html.escape(span.token)}: '
            f'{value:+.3f}">{html.escape(text[span.start : span.end])}</span>'
        )
        position = span.end
    parts.append(html.escape(text[position:]))
    return "".join(parts)


def render_report(
    bundle: Bundle,
    dataset: Dataset,
    truth: np.ndarray,
    probabilities: np.ndarray,
    count: int,
) -> str:
    """Return the HTML report of the ``count`` most confident errors."""
    labels = bundle.metadata.labels
    rows = confident_errors(truth, probabilities, count)
    explained = explain_texts(bundle, [dataset.texts[row] for row in rows])
    cases = []
    for rank, (row, (spans, attribution)) in enumerate(zip(rows, explained, strict=True), 1):
        best = attribution.best
        values = attribution.attributions[:, best].tolist()
        strongest = sorted(zip(values, (s.token for s in spans), strict=True), reverse=True)
        top = ", ".join(
            f"{html.escape(token)} ({value:+.3f})" for value, token in strongest[:TOP_TOKENS]
        )
        cases.append(
            f'<div class="case"><p class="meta">#{rank} · row {row} · true '
            f"<b>{html.escape(labels[int(truth[row])])}</b> · predicted "
            f"<b>{html.escape(labels[best])}</b> ({probabilities[row, best]:.3f})</p>"
            f'<p class="text">{highlight(dataset.texts[row], spans, values)}</p>'
            f'<p class="top">Strongest for the prediction: {top}</p></div>'
        )
    title = f"{len(rows)} most confident errors of {bundle.metadata.name} {bundle.metadata.version}"
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}'
        f"</title><style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p>Data: {html.escape(dataset.source)}. Each word is shaded by how much the predicted "
        f"label's probability drops when it is deleted (occlusion): green for, red against.</p>"
        f"{''.join(cases)}</body></html>\n"
    )


def write_report(path: Path, content: str) -> None:
    """Write the report, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
