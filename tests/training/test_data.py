"""Tests for reading labelled data, fingerprinting it and fetching the aclImdb archive."""

from __future__ import annotations

import gzip
import io
import json
import pickle
import random
import tarfile
from pathlib import Path
from typing import Any

import pytest

from training.data import (
    Dataset,
    concatenate,
    download_aclimdb,
    fingerprint,
    read_labelled,
    read_texts,
    split_dataset,
    summarize,
)
from training.errors import ConfigError, DataError, TrainingError

# A tiny aclImdb tree: relative path -> review text; unsup and non-review files must be ignored.
REVIEWS = {
    "train/pos/10_9.txt": "Loved it.",
    "train/pos/2_7.txt": "Pretty good.",
    "train/neg/5_1.txt": "Awful <br />acting.",
    "train/unsup/0_0.txt": "No label here.",
    "train/urls_pos.txt": "http://example.com",
    "test/pos/0_10.txt": "Masterpiece.",
    "test/neg/1_2.txt": "Boring.",
}
TRAIN_TEXTS = ["Awful <br />acting.", "Pretty good.", "Loved it."]
TRAIN_LABELS = ["0", "1", "1"]


def write(path: Path, content: str | bytes) -> Path:
    """Write text as UTF-8 (gzipped for .gz names) or bytes verbatim; return the path."""
    if isinstance(content, str):
        data = content.encode("utf-8")
        content = gzip.compress(data) if path.name.endswith(".gz") else data
    path.write_bytes(content)
    return path


def jsonl(*records: Any) -> str:
    """Return one JSON document per line."""
    return "".join(json.dumps(record) + "\n" for record in records)


def make_tree(root: Path, reviews: dict[str, str]) -> Path:
    """Lay out reviews under root/aclImdb and return root/aclImdb."""
    for name, text in reviews.items():
        write_to = root / "aclImdb" / name
        write_to.parent.mkdir(parents=True, exist_ok=True)
        write_to.write_text(text, encoding="utf-8")
    return root / "aclImdb"


def make_archive(path: Path, reviews: dict[str, str | bytes]) -> Path:
    """Build an aclImdb-style .tar.gz in memory order with folder entries, as the release has."""
    with tarfile.open(path, "w:gz") as archive:
        for folder in sorted({str(Path("aclImdb", name).parent) for name in reviews}):
            info = tarfile.TarInfo(folder)
            info.type = tarfile.DIRTYPE
            archive.addfile(info)
        for name, text in reviews.items():
            data = text.encode("utf-8") if isinstance(text, str) else text
            info = tarfile.TarInfo(f"aclImdb/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


# --- formats --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["data.csv", "data.csv.gz", "DATA.CSV"])
def test_csv_round_trip(tmp_path: Path, name: str) -> None:
    content = 'text,label\r\n"Great, really",1\r\n"Two\nlines",0\r\nplain,1\r\n'
    path = write(tmp_path / name, content)
    dataset = read_labelled(path)
    assert dataset == Dataset(["Great, really", "Two\nlines", "plain"], ["1", "0", "1"], str(path))
    assert len(dataset) == 3


@pytest.mark.parametrize("name", ["data.tsv", "data.tsv.gz"])
def test_tsv_round_trip(tmp_path: Path, name: str) -> None:
    path = write(tmp_path / name, 'label\ttext\npositive\tnice, "quoted" film\nnegative\tbad\n')
    dataset = read_labelled(path)
    assert dataset.texts == ['nice, "quoted" film', "bad"]
    assert dataset.labels == ["positive", "negative"]


def test_csv_tolerates_byte_order_mark_and_blank_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "data.csv", "\ufefftext,label\n\nfine,1\n\n")
    assert read_labelled(path).texts == ["fine"]


@pytest.mark.parametrize("name", ["data.jsonl", "data.jsonl.gz", "data.ndjson"])
def test_jsonl_round_trip(tmp_path: Path, name: str) -> None:
    content = jsonl(
        {"id": "train/pos/123", "text": "Good.", "label": 1, "rating": 8},
        {"id": "train/neg/7", "text": "Bad.", "label": 0, "rating": 2},
    )
    path = write(tmp_path / name, "\n" + content + "   \n")
    dataset = read_labelled(path)
    assert dataset == Dataset(["Good.", "Bad."], ["1", "0"], str(path))


def test_custom_column_names(tmp_path: Path) -> None:
    csv_path = write(tmp_path / "data.csv", "review,sentiment,extra\nhi,pos,x\n")
    jsonl_path = write(tmp_path / "data.jsonl", jsonl({"review": "hi", "sentiment": "pos"}))
    for path in (csv_path, jsonl_path):
        dataset = read_labelled(path, text_column="review", label_column="sentiment")
        assert (dataset.texts, dataset.labels) == (["hi"], ["pos"])


def test_labels_are_normalized_to_strings(tmp_path: Path) -> None:
    path = write(
        tmp_path / "data.jsonl",
        jsonl(
            {"text": "a", "label": 1},
            {"text": "b", "label": 0.0},
            {"text": "c", "label": " positive "},
            {"text": "d", "label": "2"},
            {"text": "e", "label": -1},
        ),
    )
    assert read_labelled(path).labels == ["1", "0", "positive", "2", "-1"]


def test_multi_class_labels_and_summary(tmp_path: Path) -> None:
    rows = [("x", "neutral"), ("y", "positive"), ("z", "negative"), ("w", "neutral")]
    path = write(tmp_path / "data.csv", "text,label\n" + "".join(f"{t},{c}\n" for t, c in rows))
    dataset = read_labelled(path)
    assert dataset.labels == [label for _, label in rows]
    assert summarize(dataset) == {"negative": 1, "neutral": 2, "positive": 1}
    assert list(summarize(dataset)) == ["negative", "neutral", "positive"]


def test_label_names_map_raw_labels(tmp_path: Path) -> None:
    path = write(
        tmp_path / "data.jsonl", jsonl({"text": "a", "label": 1}, {"text": "b", "label": 0})
    )
    dataset = read_labelled(path, label_names={"0": "negative", "1": "positive"})
    assert dataset.labels == ["positive", "negative"]


# --- aclImdb --------------------------------------------------------------------------------


@pytest.mark.parametrize("point_at", ["aclImdb", "parent"])
def test_aclimdb_folder(tmp_path: Path, point_at: str) -> None:
    folder = make_tree(tmp_path, REVIEWS)
    path = folder if point_at == "aclImdb" else tmp_path
    train = read_labelled(path)
    assert (train.texts, train.labels) == (TRAIN_TEXTS, TRAIN_LABELS)
    assert train.source == str(path)
    test = read_labelled(path, split="test")
    assert (test.texts, test.labels) == (["Boring.", "Masterpiece."], ["0", "1"])


def test_aclimdb_archive_matches_folder(tmp_path: Path) -> None:
    archive = make_archive(tmp_path / "aclImdb_v1.tar.gz", dict(REVIEWS))
    folder = make_tree(tmp_path / "extracted", REVIEWS)
    from_archive, from_folder = read_labelled(archive), read_labelled(folder)
    assert (from_archive.texts, from_archive.labels) == (TRAIN_TEXTS, TRAIN_LABELS)
    assert fingerprint(from_archive) == fingerprint(from_folder)
    assert read_labelled(archive, split="test").texts == ["Boring.", "Masterpiece."]
    assert not (tmp_path / "aclImdb").exists()  # read in place, nothing extracted


def test_aclimdb_label_names(tmp_path: Path) -> None:
    folder = make_tree(tmp_path, REVIEWS)
    names = {"0": "negative", "1": "positive"}
    assert read_labelled(folder, label_names=names).labels == ["negative", "positive", "positive"]


# --- unlabelled texts -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content"),
    [
        (
            "unsup.jsonl.gz",
            jsonl({"id": "unsup/1", "text": "one"}, {"id": "unsup/2", "text": "two"}),
        ),
        ("texts.csv", "id,text\n1,one\n2,two\n"),
        ("texts.txt", "one\r\n\n  \ntwo\n"),
        ("texts.txt.gz", "one\ntwo"),
    ],
)
def test_read_texts(tmp_path: Path, name: str, content: str) -> None:
    assert read_texts(write(tmp_path / name, content)) == ["one", "two"]


def test_read_texts_custom_column(tmp_path: Path) -> None:
    path = write(tmp_path / "texts.jsonl", jsonl({"body": "one"}))
    assert read_texts(path, text_column="body") == ["one"]


# --- errors ---------------------------------------------------------------------------------

GOOD = {"text": "fine", "label": 1}

ERROR_CASES = [
    # name, content, keyword arguments, expected line, expected part of the reason
    ("data.csv", "review,label\nhi,1\n", {}, 1, "missing column 'text'"),
    ("data.csv", "text,stars\nhi,1\n", {}, 1, "missing column 'label'"),
    ("data.csv", "text,label\nhi,1\n", {"text_column": "body"}, 1, "missing column 'body'"),
    ("data.csv", "", {}, 1, "missing column 'text'"),
    ("data.csv", "text,label\n", {}, None, "no rows"),
    ("data.csv", "text,label\nok,1\n  ,0\n", {}, 3, "empty text"),
    ("data.csv", "text,label\nok,\n", {}, 2, "empty label"),
    ("data.csv", "text,label\nok,1,extra\n", {}, 2, "expected 2 fields"),
    ("data.csv", "text,label\nlonely\n", {}, 2, "expected 2 fields"),
    ("data.csv", 'text,label\n"two\nlines",1\nok,\n', {}, 4, "empty label"),
    ("data.csv", 'text,label\nok,1\n"a"b,1\n', {}, 3, "malformed csv"),
    ("data.csv", b"text,label\nok,1\n\xff\xfe,0\n", {}, 3, "not valid UTF-8"),
    ("data.csv.gz", gzip.compress(b"text,label\n\xc3,1\n"), {}, 2, "not valid UTF-8"),
    ("data.csv.gz", b"definitely not gzip", {}, None, "unreadable gzip file"),
    ("data.tsv", "text\tlabel\nok\t1\ttab inside\n", {}, 2, "expected 2 fields"),
    (
        "data.csv",
        "text,label\nok,maybe\n",
        {"label_names": {"0": "n", "1": "p"}},
        2,
        "unknown label 'maybe'",
    ),
    ("data.jsonl", jsonl(GOOD) + '{"text": "a", "label": \n', {}, 2, "invalid JSON"),
    ("data.jsonl", "[1, 2]\n", {}, 1, "expected a JSON object, found array"),
    ("data.jsonl", jsonl(GOOD) + "\n" + jsonl({"text": "b"}), {}, 3, "missing column 'label'"),
    ("data.jsonl", jsonl({"label": 1}), {}, 1, "missing column 'text'"),
    ("data.jsonl", jsonl(GOOD, {"text": 5, "label": 1}), {}, 2, "text must be a string"),
    ("data.jsonl", jsonl({"text": " \n\t", "label": 1}), {}, 1, "empty text"),
    ("data.jsonl", jsonl({"text": "a", "label": None}), {}, 1, "missing label"),
    ("data.jsonl", jsonl({"text": "a", "label": ""}), {}, 1, "empty label"),
    ("data.jsonl", jsonl({"text": "a", "label": True}), {}, 1, "found boolean"),
    ("data.jsonl", jsonl({"text": "a", "label": 0.5}), {}, 1, "found 0.5"),
    ("data.jsonl", jsonl({"text": "a", "label": [1]}), {}, 1, "found array"),
    (
        "data.jsonl",
        jsonl({"text": "a", "label": 2}),
        {"label_names": {"0": "n", "1": "p"}},
        1,
        "unknown label '2'",
    ),
    ("data.jsonl", "", {}, None, "no rows"),
    ("data.jsonl", "\n \n", {}, None, "no rows"),
    (
        "data.jsonl.gz",
        gzip.compress(b'{"text": "ok", "label": 1}\n"\xe9"\n'),
        {},
        2,
        "not valid UTF-8",
    ),
    ("data.json", jsonl(GOOD), {}, None, "unsupported file type '.json'"),
    ("data.xlsx", "", {}, None, "unsupported file type '.xlsx'"),
    ("data", "", {}, None, "unsupported file type 'data'"),
    ("data.txt", "a text\n", {}, None, "unsupported file type '.txt'"),
]


@pytest.mark.parametrize(
    ("file", "kwargs", "line", "reason"),
    [
        ((name, content), kwargs, line, reason)
        for name, content, kwargs, line, reason in ERROR_CASES
    ],
)
def test_read_labelled_errors(
    tmp_path: Path,
    file: tuple[str, str | bytes],
    kwargs: dict[str, Any],
    line: int | None,
    reason: str,
) -> None:
    path = write(tmp_path / file[0], file[1])
    with pytest.raises(DataError) as caught:
        read_labelled(path, **kwargs)
    assert_error(caught.value, path, line, reason)


def assert_error(error: DataError, path: Path | str, line: int | None, reason: str) -> None:
    """Check that the error names the file, the line and the reason, in that order."""
    assert (error.path, error.line) == (str(path), line)
    assert reason in error.reason
    where = str(path) if line is None else f"{path}:{line}"
    assert str(error) == f"{where}: {error.reason}"
    assert not isinstance(error.__cause__, KeyError)


def test_missing_file(tmp_path: Path) -> None:
    for reader in (read_labelled, read_texts):
        with pytest.raises(DataError) as caught:
            reader(tmp_path / "nope.csv")
        assert_error(caught.value, tmp_path / "nope.csv", None, "file not found")


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "data.csv", "text,label\nok,1\n")

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    # Tests often run as root, where chmod 000 does not stop reading.
    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(DataError) as caught:
        read_labelled(path)
    assert_error(caught.value, path, None, "unreadable file (Permission denied)")


@pytest.mark.parametrize(
    ("name", "content", "line", "reason"),
    [
        ("texts.txt", "\n \n", None, "no rows"),
        ("texts.jsonl", jsonl({"id": 1}), 1, "missing column 'text'"),
        ("texts.csv", "id,text\n1,\n", 2, "empty text"),
        ("texts.txt", b"ok\n\x80\n", 2, "not valid UTF-8"),
        ("texts.md", "# hi\n", None, "unsupported file type '.md'"),
    ],
)
def test_read_texts_errors(
    tmp_path: Path, name: str, content: str | bytes, line: int | None, reason: str
) -> None:
    path = write(tmp_path / name, content)
    with pytest.raises(DataError) as caught:
        read_texts(path)
    assert_error(caught.value, path, line, reason)


def without(name: str) -> dict[str, str]:
    """Return the sample reviews minus those under one folder."""
    return {key: text for key, text in REVIEWS.items() if not key.startswith(name)}


@pytest.mark.parametrize(
    ("reviews", "split", "reason"),
    [
        (without("train/pos/"), "train", "no reviews in 'train/pos/'"),
        (without("test/neg/"), "test", "no reviews in 'test/neg/'"),
        ({}, "train", "no reviews in 'train/neg/'"),
        (REVIEWS, "validation", "unknown split 'validation'"),
    ],
)
def test_aclimdb_layout_errors(
    tmp_path: Path, reviews: dict[str, str], split: str, reason: str
) -> None:
    folder = make_tree(tmp_path / "tree", reviews)
    folder.mkdir(parents=True, exist_ok=True)
    archive = make_archive(tmp_path / "aclImdb_v1.tar.gz", dict(reviews))
    for path in (folder, archive):
        with pytest.raises(DataError) as caught:
            read_labelled(path, split=split)
        assert_error(caught.value, path, None, reason)


@pytest.mark.parametrize(
    ("raw", "line", "reason"),
    [(b"fine\n\xff", 2, "not valid UTF-8"), (b"  \n", None, "empty text")],
)
def test_aclimdb_bad_review_names_its_file(
    tmp_path: Path, raw: bytes, line: int | None, reason: str
) -> None:
    folder = make_tree(tmp_path / "tree", REVIEWS)
    (folder / "train/neg/5_1.txt").write_bytes(raw)
    archive = make_archive(tmp_path / "reviews.tgz", {**REVIEWS, "train/neg/5_1.txt": raw})
    expected: list[Path | str] = [
        folder / "train/neg/5_1.txt",
        f"{archive}/aclImdb/train/neg/5_1.txt",
    ]
    for path, review in zip((folder, archive), expected, strict=True):
        with pytest.raises(DataError) as caught:
            read_labelled(path)
        assert_error(caught.value, review, line, reason)


def test_corrupt_archive(tmp_path: Path) -> None:
    archive = write(tmp_path / "aclImdb_v1.tar.gz", gzip.compress(b"not a tarball" * 100))
    with pytest.raises(DataError) as caught:
        read_labelled(archive)
    assert_error(caught.value, archive, None, "unreadable archive")


def test_data_error_is_a_training_error_and_pickles() -> None:
    error = DataError("data.csv", "missing column 'text'", 12)
    assert isinstance(error, TrainingError)
    assert str(error) == "data.csv:12: missing column 'text'"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.path, copy.line, copy.reason) == ("data.csv", 12, error.reason)
    assert str(copy) == str(error)
    unplaced = DataError(Path("data.csv"), "unreadable file (gone)")
    assert str(unplaced) == "data.csv: unreadable file (gone)"


def test_dataset_rejects_unpaired_labels() -> None:
    with pytest.raises(ValueError, match="2 texts but 1 labels"):
        Dataset(["a", "b"], ["1"], "x")


# --- fingerprint ----------------------------------------------------------------------------


def test_fingerprint_is_stable_across_formats_and_sources(tmp_path: Path) -> None:
    csv_path = write(tmp_path / "data.csv", "text,label\nGood.,1\nBad.,0\n")
    jsonl_path = write(
        tmp_path / "data.jsonl", jsonl({"text": "Good.", "label": 1}, {"text": "Bad.", "label": 0})
    )
    first = fingerprint(read_labelled(csv_path))
    assert first == fingerprint(read_labelled(jsonl_path)) == fingerprint(read_labelled(csv_path))
    assert len(first) == 64
    assert int(first, 16) >= 0


@pytest.mark.parametrize(
    "changed",
    [
        Dataset(["Good!", "Bad."], ["1", "0"], "s"),
        Dataset(["Good.", "Bad."], ["1", "1"], "s"),
        Dataset(["Bad.", "Good."], ["0", "1"], "s"),
        Dataset(["Good."], ["1"], "s"),
        Dataset(["Good.1", "Bad."], ["", "0"], "s"),
    ],
)
def test_fingerprint_changes_with_content(changed: Dataset) -> None:
    assert fingerprint(Dataset(["Good.", "Bad."], ["1", "0"], "s")) != fingerprint(changed)


def test_fingerprint_survives_lone_surrogates(tmp_path: Path) -> None:
    path = write(tmp_path / "data.jsonl", '{"text": "odd \\ud800", "label": 1}\n')
    assert len(fingerprint(read_labelled(path))) == 64


# --- download -------------------------------------------------------------------------------


def test_download_from_file_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = make_archive(tmp_path / "source.tar.gz", dict(REVIEWS))
    archive = download_aclimdb(tmp_path / "cache" / "new", url=source.as_uri())
    assert archive == tmp_path / "cache" / "new" / "aclImdb_v1.tar.gz"
    assert archive.read_bytes() == source.read_bytes()
    assert read_labelled(archive).texts == TRAIN_TEXTS
    assert "downloading aclImdb_v1.tar.gz" in capsys.readouterr().err
    assert [p.name for p in archive.parent.iterdir()] == ["aclImdb_v1.tar.gz"]


def test_download_skips_existing_archive(tmp_path: Path) -> None:
    existing = write(tmp_path / "aclImdb_v1.tar.gz", b"already here")
    missing_url = (tmp_path / "missing.tar.gz").as_uri()
    assert download_aclimdb(tmp_path, url=missing_url) == existing
    assert existing.read_bytes() == b"already here"


@pytest.mark.parametrize("url", ["file:///definitely/not/here.tar.gz", "not a url"])
def test_download_failure(tmp_path: Path, url: str) -> None:
    with pytest.raises(DataError) as caught:
        download_aclimdb(tmp_path, url=url)
    assert_error(caught.value, url, None, "download failed")
    assert list(tmp_path.iterdir()) == []


# --- validation split -----------------------------------------------------------------------


def test_split_dataset_is_stratified_and_deterministic() -> None:
    labels = ["0"] * 80 + ["1"] * 20
    dataset = Dataset([f"text {i}" for i in range(100)], labels, "data.csv")
    rest, held = split_dataset(dataset, 0.1, seed=7)
    assert (summarize(rest), summarize(held)) == ({"0": 72, "1": 18}, {"0": 8, "1": 2})
    assert sorted(rest.texts + held.texts) == sorted(dataset.texts)
    assert rest.texts == sorted(rest.texts, key=dataset.texts.index)  # file order kept
    assert rest.source == "data.csv"
    assert held.source == "data.csv [held out: 10 rows, a stratified sample of rows, seed 7]"
    assert split_dataset(dataset, 0.1, seed=7) == (rest, held)
    assert split_dataset(dataset, 0.1, seed=8)[1] != held


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_split_dataset_rejects_bad_fraction(fraction: float) -> None:
    with pytest.raises(ConfigError, match="between 0 and 1"):
        split_dataset(Dataset(["a", "b"], ["0", "1"], "x"), fraction)


def test_split_dataset_needs_enough_rows() -> None:
    with pytest.raises(DataError) as caught:
        split_dataset(Dataset(["a", "b"], ["0", "1"], "tiny.csv"), 0.1)
    assert_error(caught.value, "tiny.csv", None, "too few rows (2) to hold out 10%")


# --- grouped validation split (--group-column) ----------------------------------------------


def grouped_dataset(groups: int = 120, seed: int = 0) -> Dataset:
    """Reviews of many movies, 1-30 each, each movie leaning positive or negative (as IMDB)."""
    rng = random.Random(seed)
    texts, labels, movies = [], [], []
    for movie in range(groups):
        lean = rng.random()
        for review in range(rng.randint(1, 30)):
            texts.append(f"movie {movie} review {review}")
            labels.append("1" if rng.random() < lean else "0")
            movies.append(f"tt{movie:07d}")
    return Dataset(texts, labels, "reviews.jsonl", groups=movies)


def test_read_labelled_carries_groups(tmp_path: Path) -> None:
    csv_path = write(tmp_path / "data.csv", "text,label,movie\nGood.,1,tt1\nBad.,0, tt2 \n")
    jsonl_path = write(
        tmp_path / "data.jsonl",
        jsonl(
            {"text": "Good.", "label": 1, "movie": "tt1"},
            {"text": "Bad.", "label": 0, "movie": "tt2"},
        ),
    )
    tsv_path = write(tmp_path / "data.tsv", "movie\ttext\tlabel\ntt1\tGood.\t1\ntt2\tBad.\t0\n")
    for path in (csv_path, jsonl_path, tsv_path):
        dataset = read_labelled(path, group_column="movie")
        assert dataset.groups == ["tt1", "tt2"]
        assert (dataset.texts, dataset.labels) == (["Good.", "Bad."], ["1", "0"])
        # The group is not part of the data's identity: same fingerprint as without it.
        assert fingerprint(dataset) == fingerprint(read_labelled(path))
    numbered = write(
        tmp_path / "ids.jsonl",
        jsonl({"text": "a", "label": 1, "movie": 17}, {"text": "b", "label": 0, "movie": 17.0}),
    )
    assert read_labelled(numbered, group_column="movie").groups == ["17", "17"]


def test_default_read_has_no_groups(tmp_path: Path) -> None:
    path = write(tmp_path / "data.csv", "text,label,movie\nGood.,1,tt1\n")
    assert read_labelled(path).groups is None
    assert read_labelled(path) == Dataset(["Good."], ["1"], str(path))


@pytest.mark.parametrize(
    ("name", "content", "line", "reason"),
    [
        (
            "data.jsonl",
            jsonl({"text": "a", "label": 1, "movie": "tt1"}, {"text": "b", "label": 0}),
            2,
            "missing column 'movie'",
        ),
        ("data.csv", "text,label\na,1\n", 1, "missing column 'movie' (header has 'text', 'label')"),
        ("data.csv", "text,label,movie\na,1,tt1\nb,0,\n", 3, "empty group 'movie'"),
        ("data.tsv", "text\tlabel\tmovie\na\t1\t \n", 2, "empty group 'movie'"),
        (
            "data.jsonl",
            jsonl({"text": "a", "label": 1, "movie": None}),
            1,
            "missing group 'movie' (null)",
        ),
        (
            "data.jsonl",
            jsonl({"text": "a", "label": 1, "movie": ["tt1"]}),
            1,
            "group 'movie' must be a string or integer, found array",
        ),
    ],
)
def test_group_column_errors(
    tmp_path: Path, name: str, content: str, line: int | None, reason: str
) -> None:
    path = write(tmp_path / name, content)
    with pytest.raises(DataError) as caught:
        read_labelled(path, group_column="movie")
    assert_error(caught.value, path, line, reason)


def test_group_column_is_an_error_for_aclimdb(tmp_path: Path) -> None:
    folder = make_tree(tmp_path, REVIEWS)
    with pytest.raises(DataError) as caught:
        read_labelled(folder, group_column="movie")
    assert_error(caught.value, folder, None, "group column 'movie' needs a csv/tsv/jsonl file")


def test_dataset_rejects_unpaired_groups() -> None:
    with pytest.raises(ValueError, match="2 texts but 1 groups"):
        Dataset(["a", "b"], ["1", "0"], "x", groups=["g"])


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.5])
def test_grouped_split_keeps_groups_whole_and_the_fraction(fraction: float) -> None:
    dataset = grouped_dataset()
    assert dataset.groups is not None
    rest, held = split_dataset(dataset, fraction, seed=3)
    assert rest.groups is not None
    assert held.groups is not None
    assert not set(rest.groups) & set(held.groups)  # no movie on both sides
    assert set(rest.groups) | set(held.groups) == set(dataset.groups)
    assert sorted(rest.texts + held.texts) == sorted(dataset.texts)
    # Each part keeps file order, and its groups stay paired with its texts.
    assert rest.texts == sorted(rest.texts, key=dataset.texts.index)
    assert held.texts == sorted(held.texts, key=dataset.texts.index)
    pairs = set(zip(dataset.texts, dataset.groups, strict=True))
    assert set(zip(held.texts, held.groups, strict=True)) <= pairs
    # The largest group has 30 rows, so the size can miss by a few rows; far less in practice.
    assert abs(len(held) - fraction * len(dataset)) <= 10
    for label, count in summarize(dataset).items():
        assert abs(summarize(held).get(label, 0) - fraction * count) <= 10
    groups = len(set(held.groups or []))
    assert held.source.endswith(
        f"[held out: {len(held)} rows, {groups} whole groups, none on both sides, seed 3]"
    )


def test_grouped_split_is_deterministic_with_the_seed() -> None:
    dataset = grouped_dataset()
    rest, held = split_dataset(dataset, 0.2, seed=7)
    assert split_dataset(dataset, 0.2, seed=7) == (rest, held)
    assert set(split_dataset(dataset, 0.2, seed=8)[1].groups or []) != set(held.groups or [])
    # The held-out groups depend on the seed, not on the order the rows come in.
    assert dataset.groups is not None
    backwards = Dataset(
        dataset.texts[::-1], dataset.labels[::-1], dataset.source, groups=dataset.groups[::-1]
    )
    assert set(split_dataset(backwards, 0.2, seed=7)[1].texts) == set(held.texts)


def test_default_split_ignores_groups_it_was_not_given() -> None:
    dataset = grouped_dataset()
    plain = Dataset(dataset.texts, dataset.labels, dataset.source)
    rest, held = split_dataset(plain, 0.2, seed=7)
    assert rest.groups is None
    assert held.groups is None
    movie = {text: text.split(" review ")[0] for text in dataset.texts}
    # A stratified row sample puts reviews of the same movie on both sides: what groups prevent.
    assert {movie[t] for t in rest.texts} & {movie[t] for t in held.texts}
    # Stratified exactly as before: round(fraction * count) of each label.
    for label, count in summarize(plain).items():
        assert summarize(held)[label] == round(0.2 * count)


def test_grouped_split_needs_two_groups() -> None:
    dataset = Dataset(["a", "b", "c", "d"], ["0", "1", "0", "1"], "one.csv", groups=["m"] * 4)
    with pytest.raises(DataError) as caught:
        split_dataset(dataset, 0.5)
    assert_error(caught.value, "one.csv", None, "too few groups (1) to hold out 50%")


def test_labels_already_named_are_kept(tmp_path: Path) -> None:
    path = write(
        tmp_path / "data.jsonl",
        jsonl({"text": "a", "label": 1}, {"text": "b", "label": "negative"}),
    )
    dataset = read_labelled(path, label_names={"0": "negative", "1": "positive"})
    assert dataset.labels == ["positive", "negative"]


def test_a_raw_label_is_mapped_even_when_it_is_also_a_name(tmp_path: Path) -> None:
    path = write(tmp_path / "data.jsonl", jsonl({"text": "a", "label": 1}))
    assert read_labelled(path, label_names={"0": "1", "1": "0"}).labels == ["0"]


def test_concatenate_keeps_order_sources_and_groups() -> None:
    first = Dataset(["a", "b"], ["x", "y"], "one.csv", groups=["g1", "g2"])
    second = Dataset(["c"], ["x"], "two.csv", groups=["g3"])
    joined = concatenate(first, second)
    assert (joined.texts, joined.labels, joined.groups) == (
        ["a", "b", "c"],
        ["x", "y", "x"],
        ["g1", "g2", "g3"],
    )
    assert joined.source == "one.csv + two.csv"
    assert concatenate(first, Dataset(["c"], ["x"], "three.csv")).groups is None
