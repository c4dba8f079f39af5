"""Token spans: the span-aware path must give exactly the tokenizer's ids, and honest spans."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fixtures import make_reviews
from training.preprocessing import SequenceSpec, TextPreprocessor
from training.spans import encode_spans, raw_spans
from training.tokenizer import KerasLegacyStandardizer, Standardizer, Tokenizer, WordStandardizer

STANDARDIZERS: dict[str, Standardizer] = {
    "words": WordStandardizer(),
    "keras": KerasLegacyStandardizer(),
    "keras-multichar-split": KerasLegacyStandardizer(split="<>"),
    "keras-no-lower": KerasLegacyStandardizer(lower=False),
    "keras-chars": KerasLegacyStandardizer(char_level=True),
}
HOSTILE = [
    "",
    "<br />",
    "Great film!!<br /><br />Loved it.",
    "İstanbul İİ was GREAT",  # lowercases to two characters each
    "ΟΔΟΣ ΣΑΣ",  # final sigma depends on context
    "ﬁne ẞtraße ǅemal",  # ligature, capital sharp s, titlecase digraph
    "e\u0301te\u0301 cafe\u0301",  # combining accents
    "don't won't 'quoted' rock'n'roll",
    "emoji 👍🏽 and 🇫🇷 flags",
    "tab\tnew\nline\u2028sep\u3000ideo",
    "<BR><br   /><bR/ >< br>",
    "<br" + " " * 50,
    "a" * 300,
    "\x00\x01 control \ufeff bom",
]


def _preprocessor(
    standardizer: Standardizer, maxlen: int = 24, truncating: str = "pre"
) -> TextPreprocessor:
    texts = [text for text, _ in make_reviews(50)] + HOSTILE
    tokenizer = Tokenizer.fit(texts, num_words=40, standardizer=standardizer)
    return TextPreprocessor(tokenizer, SequenceSpec(maxlen, truncating=truncating))  # type: ignore[arg-type]


@pytest.mark.parametrize("name", STANDARDIZERS)
@pytest.mark.parametrize("text", HOSTILE)
def test_tokens_equal_the_tokenizers(name: str, text: str) -> None:
    standardizer = STANDARDIZERS[name]
    assert [token for token, _, _ in raw_spans(standardizer, text)] == standardizer.tokens(text)


@pytest.mark.parametrize("name", STANDARDIZERS)
@pytest.mark.parametrize("truncating", ["pre", "post"])
@pytest.mark.parametrize("text", HOSTILE)
def test_ids_equal_encode(name: str, truncating: str, text: str) -> None:
    preprocessor = _preprocessor(STANDARDIZERS[name], truncating=truncating)
    spans = encode_spans(preprocessor, text)
    expected = preprocessor.tokenizer.encode(text)
    expected = expected[-24:] if truncating == "pre" else expected[:24]
    assert [span.id for span in spans] == expected


@pytest.mark.parametrize("name", STANDARDIZERS)
@pytest.mark.parametrize("text", HOSTILE)
def test_spans_point_at_the_token(name: str, text: str) -> None:
    standardizer = STANDARDIZERS[name]
    for token, start, end in raw_spans(standardizer, text):
        assert 0 <= start < end <= len(text)
        piece, lowered = text[start:end].lower(), token.lower()
        # The original characters standardize to the token (a lengthened character, such as
        # "İ" -> "i̇", may give one token per part: each part's span is the whole character).
        assert lowered in piece or piece in lowered or len(piece) == 1, (token, piece)


def test_spans_are_in_order_and_skip_breaks() -> None:
    text = "Loved it!<br /><br />Truly GREAT."
    spans = raw_spans(WordStandardizer(), text)
    assert [text[start:end] for _, start, end in spans] == [
        "Loved",
        "it",
        "!",
        "Truly",
        "GREAT",
        ".",
    ]


def test_a_lengthening_capital_keeps_later_spans_right() -> None:
    text = "İİ great"
    spans = raw_spans(WordStandardizer(), text)
    assert spans[-1] == ("great", 3, 8)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_any_text_gives_the_tokenizers_ids(text: str) -> None:
    for standardizer in STANDARDIZERS.values():
        preprocessor = _preprocessor(standardizer, maxlen=500)
        assert [s.id for s in encode_spans(preprocessor, text)] == preprocessor.tokenizer.encode(
            text
        )
