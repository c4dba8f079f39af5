"""The short-text accuracy bench: which texts each set holds, and how it scores a bundle."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import numpy as np

from bench.short_texts import accuracy, human_rated, last_sentences, proxy_sets
from tests.fixtures import make_reviews


def test_last_sentences_take_each_reviews_last_fitting_sentence(tmp_path: Path) -> None:
    reviews = [
        {"text": "Great cast and a story. I loved every single minute of it. Wow!", "label": 1},
        {"text": "Too short.", "label": 0},  # no sentence of 5-30 words: left out
        {"text": "The plot made no sense to me.<br />Skip this dull one, honestly.", "label": 0},
    ]
    path = tmp_path / "val.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(review) + "\n" for review in reviews)
    texts, labels = last_sentences(path)
    assert texts == ["I loved every single minute of it.", "Skip this dull one, honestly."]
    assert labels.tolist() == [True, False]


def _tar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_human_rated_sets_keep_polar_ratings_from_the_sdist(tmp_path: Path) -> None:
    rows = b"1\t2.5\tLove it.\r\n2\t-0.5\tMeh.\r\n3\t-1.2\tBroke fast.\r\n"
    inner = _tar(
        {
            "hutto_ICWSM_2014/amazonReviewSnippets_GroundTruth.txt": rows,
            "hutto_ICWSM_2014/tweets_GroundTruth.txt": b"9\t1.0\tyay\n",
        }
    )
    sdist = _tar({"vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz": inner})
    (tmp_path / "vaderSentiment-3.3.2.tar.gz").write_bytes(sdist)  # cached: no download
    sets = human_rated(tmp_path)
    texts, labels = sets["amazon snippets"]
    assert texts == ["Love it.", "Broke fast."]  # |rating| < 1 is too close to neutral
    assert labels.tolist() == [True, False]
    assert sets["tweets"][0] == ["yay"]


def test_proxy_has_every_domain_and_accuracy_matches_the_predictions(tiny_bundle: Path) -> None:
    sets = proxy_sets()
    assert len(sets["proxy"][0]) == sum(len(t) for n, (t, _) in sets.items() if n != "proxy")
    texts = [text for text, _ in make_reviews(40, seed=5)]
    labels = np.array([label == 1 for _, label in make_reviews(40, seed=5)])
    scored = accuracy(tiny_bundle, {"reviews": (texts, labels), "flipped": (texts, ~labels)})
    assert scored["reviews"] + scored["flipped"] == 1.0
