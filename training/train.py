"""Fit a tokenizer and a model, evaluate it, and write a complete bundle with its artifacts."""

from __future__ import annotations

import logging
import platform
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any, Literal

import numpy as np

from training.augment import with_snippets
from training.batches import BucketedBatches, predict_probabilities
from training.bundle import BundleMetadata, new_version, save_bundle
from training.data import Dataset, concatenate, fingerprint, summarize
from training.errors import ConfigError
from training.evaluate import classification_report, label_ids, plot_history, write_report
from training.model import ModelConfig, build_model, fold_word_vectors, folded_config
from training.nbsvm import NbsvmConfig, fit_ngram_coefficients, ngram_logits
from training.negations import with_negations
from training.preprocessing import SequenceSpec, Side, TextPreprocessor
from training.pretrain import PretrainConfig, pretrain_embeddings
from training.tokenizer import DEFAULT_OOV_TOKEN, Tokenizer
from training.word_vectors import RANKINGS

log = logging.getLogger(__name__)

Optimizer = Literal["adam", "rmsprop", "sgd"]
HISTORY_FILE = "history.csv"
CURVES_FILE = "training_curves.png"


@dataclass(frozen=True)
class TrainConfig:
    """Preprocessing and optimization settings; every field is a `sentiment-train` option."""

    num_words: int = 30_000  # vocabulary cap, OOV and padding ids included
    maxlen: int = 400  # tokens; IMDB reviews average ~230 words, p90 ~460
    padding: Side = "post"
    truncating: Side = "pre"
    oov_token: str | None = DEFAULT_OOV_TOKEN
    optimizer: Optimizer = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.9  # SGD only
    clipnorm: float | None = 1.0  # gradient clipping; RNNs are prone to exploding gradients
    batch_size: int = 64
    epochs: int = 8
    patience: int = 2  # epochs without improvement before early stopping
    monitor: str = "val_accuracy"
    reduce_lr_patience: int = 1
    reduce_lr_factor: float = 0.5
    seed: int = 1337
    snippets: float = 0.0  # share of one-sentence snippets added to the training texts
    negations: float = 0.0  # share of rule-labelled negation sentences (training.negations)
    # General-domain vectors (training.word_vectors): "glove-6b-50d" or a GloVe text file,
    # and how many of their most frequent words join the vocabulary beyond num_words.
    word_vectors: str | None = None
    word_vectors_extra: int = 0
    word_ranking: str = "wordfreq"  # which words are "most frequent": wordfreq or the vectors'
    ensemble: int = 1  # models trained with seeds seed, seed+1, ...; served as their mean
    tensorboard: bool = False
    verbose: int | str = "auto"  # Keras fit verbosity: progress bars on a terminal

    def __post_init__(self) -> None:
        if self.optimizer not in ("adam", "rmsprop", "sgd"):
            raise ConfigError(f"optimizer must be adam, rmsprop or sgd, got {self.optimizer!r}")
        if self.learning_rate <= 0 or self.batch_size < 1 or self.epochs < 1:
            raise ConfigError("learning_rate, batch_size and epochs must be positive")
        if not 1 <= self.ensemble <= 8:
            raise ConfigError(f"ensemble must be 1-8 models, got {self.ensemble}")
        if self.num_words < 2:
            raise ConfigError(f"num_words must be >= 2, got {self.num_words}")
        if self.word_vectors_extra < 0:
            raise ConfigError(f"word_vectors_extra must be >= 0, got {self.word_vectors_extra}")
        if self.word_ranking not in RANKINGS:
            raise ConfigError(f"word_ranking must be one of {RANKINGS}, got {self.word_ranking!r}")
        SequenceSpec(self.maxlen, self.padding, self.truncating)  # validates the three


@dataclass
class TrainResult:
    """What a training run produced."""

    bundle_dir: Path
    metadata: BundleMetadata
    report: dict[str, Any]
    history: dict[str, list[float]] = field(default_factory=dict)


def order_labels(labels: Sequence[str], preferred: Sequence[str] | None = None) -> list[str]:
    """Return the label order of the model's outputs: ``preferred`` if given, else sorted."""
    present = set(labels)
    if preferred:
        missing = present - set(preferred)
        if missing:
            raise ConfigError(f"labels {sorted(missing)} are in the data but not in --labels")
        return list(preferred)
    if all(label.lstrip("-").isdigit() for label in present):
        return sorted(present, key=int)
    return sorted(present)


@dataclass
class PreparedData:
    """The labelled data as the model sees it: label order, texts to fit on, label ids."""

    label_order: list[str]
    # As read, plus any extra labelled data (tokenizer, pre-training, baseline and
    # fingerprints see this).
    train_set: Dataset
    fit_set: Dataset  # what the model fits on: train_set plus any snippets and negations
    validation_set: Dataset
    y_fit: np.ndarray
    y_val: np.ndarray


@dataclass
class FittedModel:
    """The servable model, its validation probabilities and what the fit recorded."""

    model: Any
    val_probabilities: np.ndarray
    history: dict[str, list[float]]
    metrics: dict[str, Any] = field(default_factory=dict)
    members: int = 1


def train(
    train_set: Dataset,
    validation_set: Dataset,
    out_dir: str | Path,
    *,
    config: TrainConfig | None = None,
    model_options: Mapping[str, Any] | None = None,
    label_names: Mapping[str, str] | None = None,
    name: str = "sentiment",
    version: str | None = None,
    baseline: bool = False,
    pretrain_texts: Sequence[str] | None = None,
    pretrain_config: PretrainConfig | None = None,
    nbsvm_config: NbsvmConfig | None = None,
    extra_set: Dataset | None = None,
) -> TrainResult:
    """Train on ``train_set``, select on ``validation_set``, write the bundle to ``out_dir``.

    The stages, each a function below: labels and data, tokenizer, pre-training (word2vec on
    ``pretrain_texts`` plus the training texts, never the validation texts), general-domain
    word vectors (a larger vocabulary), fitting (one model or an ensemble), the NB-SVM n-gram
    branch, scoring (with the TF-IDF baseline on the same split), and the bundle with its
    reports. ``extra_set`` is more labelled data (short texts of other domains) fitted on
    beside ``train_set`` but never cut into snippets.
    """
    import keras

    config = config or TrainConfig()
    nbsvm_config = nbsvm_config or NbsvmConfig()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    started = time.perf_counter()

    data = prepare_data(train_set, validation_set, config, label_names, extra_set)
    preprocessor = fit_preprocessor(data.train_set.texts, config)
    model_config = ModelConfig(
        vocabulary_size=preprocessor.tokenizer.vocabulary_size,
        num_classes=len(data.label_order),
        **dict(model_options or {}),
    )
    embedding_weights, pretraining = pretrain(
        pretrain_texts,
        data.train_set.texts,
        preprocessor.tokenizer,
        model_config,
        pretrain_config,
        seed=config.seed,
    )
    preprocessor, model_config, word_vector_table, word_vector_stats = add_word_vectors(
        preprocessor, model_config, config
    )
    fitted = fit_models(
        data,
        preprocessor,
        model_config,
        (embedding_weights, word_vector_table),
        config=config,
        out_dir=out_dir,
    )
    if nbsvm_config.buckets > 0:
        fitted = add_ngram_evidence(fitted, data, preprocessor, nbsvm_config, seed=config.seed)
    train_seconds = time.perf_counter() - started

    report = classification_report(data.label_order, data.y_val, fitted.val_probabilities)
    report["data"] = validation_set.source
    metrics: dict[str, Any] = {
        "validation": {k: report[k] for k in ("accuracy", "macro_f1", "roc_auc", "count")},
        "validation_split": validation_set.source,
        "epochs_run": len(fitted.history.get("loss", [])),
        "train_seconds": round(train_seconds, 1),
        **fitted.metrics,
    }
    if pretraining:
        metrics["pretraining"] = pretraining
    if word_vector_stats:
        metrics["word_vectors"] = word_vector_stats
    if baseline:
        from training.baseline import tfidf_baseline

        metrics["baseline"] = tfidf_baseline(data.train_set, validation_set)
        log.info("TF-IDF baseline: val accuracy %.4f", metrics["baseline"]["accuracy"])
    log.info("validation accuracy %.4f (%d texts)", report["accuracy"], report["count"])
    report["notes"] = _report_notes(metrics)

    metadata = write_bundle(
        out_dir,
        fitted,
        preprocessor,
        data,
        {
            "name": name,
            "version": version or new_version(),
            "architecture": {
                "config": folded_config(model_config).to_dict(),
                "ensemble": fitted.members,
                "nbsvm": asdict(nbsvm_config),
            },
            "training": asdict(config),
            "metrics": metrics,
            "label_names": dict(label_names or {}),
        },
    )
    write_report(report, out_dir)
    if (out_dir / HISTORY_FILE).exists():
        plot_history(out_dir / HISTORY_FILE, out_dir / CURVES_FILE)
    return TrainResult(out_dir, metadata, report, fitted.history)


def _report_notes(metrics: dict[str, Any]) -> list[str]:
    """Return what evaluation.md says besides the scores: which split, and what it is beside."""
    notes = [
        "split: the data above, a file given with --val or the part of --train held out as its "
        "brackets say; used for early stopping and model selection, never for fitting"
    ]
    if "baseline" in metrics:
        notes.append(
            f"TF-IDF baseline on the same split: accuracy {metrics['baseline']['accuracy']:.4f}"
        )
    if "rnn_val_accuracy" in metrics:
        notes.append(
            f"parts alone on the same split: RNN {metrics['rnn_val_accuracy']:.4f}, "
            f"NB-SVM branch {metrics['nbsvm_val_accuracy']:.4f}"
        )
    return notes


def prepare_data(
    train_set: Dataset,
    validation_set: Dataset,
    config: TrainConfig,
    label_names: Mapping[str, str] | None,
    extra_set: Dataset | None = None,
) -> PreparedData:
    """Fix the label order; add snippets, negation sentences and extra data; make label ids.

    Snippets are cut from ``train_set`` only: the extra data is short texts already.
    """
    fit_set = with_snippets(train_set, config.snippets, seed=config.seed)
    snippets = len(fit_set) - len(train_set)
    fit_set = with_negations(fit_set, config.negations, seed=config.seed, source=train_set)
    negations = len(fit_set) - len(train_set) - snippets
    log.info("train: %s", summarize(train_set))
    extra = 0
    if extra_set is not None:
        extra = len(extra_set)
        log.info("extra: %s from %s", summarize(extra_set), extra_set.source)
        train_set = concatenate(train_set, extra_set)
        fit_set = concatenate(fit_set, extra_set)
    # label_names (raw -> display) was applied by the reader; its order is the output order.
    label_order = order_labels(fit_set.labels, list(label_names.values()) if label_names else None)
    if snippets or negations or extra:
        log.info(
            "fitting on %d texts + %d snippets + %d negation sentences + %d extra texts",
            len(train_set) - extra,
            snippets,
            negations,
            extra,
        )
    log.info("validation: %s", summarize(validation_set))
    return PreparedData(
        label_order,
        train_set,
        fit_set,
        validation_set,
        label_ids(fit_set, label_order),
        label_ids(validation_set, label_order),
    )


def fit_preprocessor(texts: Sequence[str], config: TrainConfig) -> TextPreprocessor:
    """Fit the tokenizer on the training texts; pair it with the sequence spec."""
    tokenizer = Tokenizer.fit(texts, num_words=config.num_words, oov_token=config.oov_token)
    log.info(
        "tokenizer: %d words seen, %d ids used",
        len(tokenizer.word_index),
        tokenizer.vocabulary_size,
    )
    return TextPreprocessor(
        tokenizer, SequenceSpec(config.maxlen, config.padding, config.truncating)
    )


def pretrain(
    unlabelled: Sequence[str] | None,
    train_texts: Sequence[str],
    tokenizer: Tokenizer,
    model_config: ModelConfig,
    config: PretrainConfig | None,
    *,
    seed: int,
) -> tuple[Any, dict[str, Any]]:
    """Return word2vec embedding weights (or None) and what pre-training recorded."""
    if unlabelled is None:
        return None, {}
    config = config or PretrainConfig()
    weights, stats = pretrain_embeddings(
        [*unlabelled, *train_texts], tokenizer, model_config.embedding_dim, config=config, seed=seed
    )
    return weights, {"word2vec": asdict(config), **stats}


def add_word_vectors(
    preprocessor: TextPreprocessor, model_config: ModelConfig, config: TrainConfig
) -> tuple[TextPreprocessor, ModelConfig, Any, dict[str, Any]]:
    """Extend the vocabulary with general-domain words; return the frozen table for them.

    The learned embedding keeps the fitted tokenizer's ids (and their word2vec rows); the
    added words have a general vector only (``training.word_vectors``).
    """
    if not config.word_vectors:
        return preprocessor, model_config, None, {}
    from training.word_vectors import (
        extend_vocabulary,
        load_word_vectors,
        ranked_words,
        vector_table,
    )

    vectors = load_word_vectors(config.word_vectors)
    learned = preprocessor.tokenizer
    candidates = ranked_words(vectors, config.word_ranking)
    tokenizer = extend_vocabulary(learned, candidates, config.word_vectors_extra)
    table, coverage = vector_table(tokenizer, vectors)
    extended = replace(
        model_config,
        vocabulary_size=tokenizer.vocabulary_size,
        learned_vocabulary_size=learned.vocabulary_size,
        word_vectors_dim=vectors.dim,
    )
    stats = {
        "source": vectors.source,
        "dim": vectors.dim,
        "ranking": config.word_ranking,
        "learned_ids": learned.vocabulary_size,
        "added_words": tokenizer.vocabulary_size - learned.vocabulary_size,
        "coverage": round(coverage, 4),
        # The trained Dense is folded into the table after training (model.fold_word_vectors).
        "served_dim": folded_config(extended).word_vectors_dim,
    }
    log.info("word vectors: %s", stats)
    return TextPreprocessor(tokenizer, preprocessor.spec), extended, table, stats


def fit_models(
    data: PreparedData,
    preprocessor: TextPreprocessor,
    model_config: ModelConfig,
    initial_weights: tuple[Any, Any],
    *,
    config: TrainConfig,
    out_dir: Path,
) -> FittedModel:
    """Fit one model, or ``config.ensemble`` seeds served as their mean; score each on val.

    ``initial_weights``: the learned embedding's (or None) and the frozen word vectors' (or
    None).
    """
    import keras

    embedding_weights, word_vectors = initial_weights
    val_batches = BucketedBatches(
        preprocessor.encode(data.validation_set.texts),
        data.y_val,
        preprocessor,
        batch_size=config.batch_size * 4,
        shuffle=False,
    )
    encoded_fit = preprocessor.encode(data.fit_set.texts)
    members: list[Any] = []
    member_accuracy: list[float] = []
    history: dict[str, list[float]] = {}
    probabilities = np.zeros((0, 0))
    for index in range(config.ensemble):
        seed = config.seed + index  # each member: its own initialization and batch order
        keras.utils.set_random_seed(seed)
        if config.ensemble > 1:
            log.info("ensemble member %d/%d (seed %d)", index + 1, config.ensemble, seed)
        member = build_model(model_config, embedding_weights, word_vectors)
        if index == 0:
            member.summary(print_fn=lambda line, *_, **__: log.info("%s", line))
        train_batches = BucketedBatches(
            encoded_fit,
            data.y_fit,
            preprocessor,
            batch_size=config.batch_size,
            shuffle=True,
            seed=seed,
        )
        fitted = _fit(member, config, train_batches, val_batches, out_dir=out_dir, index=index)
        if index == 0:  # the first model's epochs are the bundle's history
            history = fitted
        member = fold_word_vectors(member, model_config)  # what is served and scored below
        probabilities = predict_probabilities(member, preprocessor, data.validation_set.texts)
        member_accuracy.append(float(np.mean(probabilities.argmax(axis=1) == data.y_val)))
        log.info("model %d: validation accuracy %.4f", index + 1, member_accuracy[-1])
        members.append(member)
    if len(members) == 1:
        return FittedModel(members[0], probabilities, history)
    model = average_members(members, model_config)
    return FittedModel(
        model,
        predict_probabilities(model, preprocessor, data.validation_set.texts),
        history,
        {"ensemble_members_val_accuracy": [round(a, 4) for a in member_accuracy]},
        members=len(members),
    )


def add_ngram_evidence(
    fitted: FittedModel,
    data: PreparedData,
    preprocessor: TextPreprocessor,
    config: NbsvmConfig,
    *,
    seed: int,
) -> FittedModel:
    """Fit NB-SVM on the training texts' ids and add its logit to the model's (binary only)."""
    import keras

    from training.layers import LogitBlend, NgramLogit

    if len(data.label_order) != 2:
        raise ConfigError("--nb-buckets needs binary labels (NB-SVM compares two classes)")
    vocabulary_size = preprocessor.tokenizer.vocabulary_size
    started = time.perf_counter()
    coefficients = fit_ngram_coefficients(
        preprocessor.encode(data.fit_set.texts), data.y_fit, vocabulary_size, config, seed=seed
    )
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    rnn = keras.Model(fitted.model.input, fitted.model.output, name="rnn")(token_ids)
    branch = NgramLogit(vocabulary_size, config.buckets, name="ngram_logit")
    evidence = branch(token_ids)
    branch.coefficients.assign(coefficients.weights)
    branch.bias.assign(coefficients.bias)
    output = LogitBlend(config.weight, name="blend")([rnn, evidence])
    model = keras.Model(token_ids, output, name=f"{fitted.model.name}_nbsvm")

    val_encoded = preprocessor.encode(data.validation_set.texts)
    nb_alone = ngram_logits(val_encoded, coefficients, vocabulary_size) > 0
    probabilities = predict_probabilities(model, preprocessor, data.validation_set.texts)
    rnn_accuracy = float(np.mean(fitted.val_probabilities.argmax(axis=1) == data.y_val))
    metrics = {
        **fitted.metrics,
        "rnn_val_accuracy": round(rnn_accuracy, 4),
        "nbsvm_val_accuracy": round(float(np.mean(nb_alone == data.y_val)), 4),
        "nbsvm_fit_seconds": round(time.perf_counter() - started, 1),
    }
    log.info(
        "NB-SVM branch: alone %.4f, RNN alone %.4f, blended (weight %g) %.4f on validation",
        metrics["nbsvm_val_accuracy"],
        rnn_accuracy,
        config.weight,
        float(np.mean(probabilities.argmax(axis=1) == data.y_val)),
    )
    return FittedModel(model, probabilities, fitted.history, metrics, fitted.members)


def write_bundle(
    out_dir: Path,
    fitted: FittedModel,
    preprocessor: TextPreprocessor,
    data: PreparedData,
    fields: dict[str, Any],
) -> BundleMetadata:
    """Save model, tokenizer and metadata (with the model summary and data fingerprints)."""
    summary_lines: list[str] = []
    fitted.model.summary(print_fn=lambda line, *_, **__: summary_lines.append(line))
    spec = preprocessor.spec
    architecture = {
        **fields["architecture"],
        "parameters": int(fitted.model.count_params()),
        "summary": summary_lines,
    }
    return save_bundle(
        out_dir,
        fitted.model,
        preprocessor.tokenizer,
        {
            "name": fields["name"],
            "version": fields["version"],
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "labels": data.label_order,
            "maxlen": spec.maxlen,
            "padding": spec.padding,
            "truncating": spec.truncating,
            "vocabulary_size": preprocessor.tokenizer.vocabulary_size,
            "architecture": architecture,
            "training": fields["training"],
            "data": {
                "train": _data_info(data.train_set),
                "validation": _data_info(data.validation_set),
                "label_names": fields["label_names"],
            },
            "versions": _library_versions(),
            "metrics": fields["metrics"],
        },
    )


def _fit(
    model: Any,
    config: TrainConfig,
    train_batches: BucketedBatches,
    val_batches: BucketedBatches,
    *,
    out_dir: Path,
    index: int,
) -> dict[str, list[float]]:
    """Compile and fit one model, keep its best epoch's weights; return its history."""
    binary = int(model.output_shape[-1]) == 1
    model.compile(
        optimizer=_optimizer(config),
        loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    checkpoint_dir = out_dir / ".checkpoint"
    # The first (or only) model's epochs are history.csv; further ensemble members get their own.
    history_file = HISTORY_FILE if index == 0 else f"history_member{index + 1}.csv"
    history = model.fit(
        train_batches.to_tf_dataset(),
        validation_data=val_batches.to_tf_dataset(),
        epochs=config.epochs,
        shuffle=False,  # BucketedBatches reshuffles every epoch itself
        callbacks=_callbacks(config, out_dir / history_file, checkpoint_dir),
        verbose=config.verbose,
    )
    best_weights = checkpoint_dir / "best.weights.h5"
    if best_weights.exists():  # the best epoch may not be the last one
        model.load_weights(best_weights)
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return dict(history.history)


def average_members(members: Sequence[Any], config: ModelConfig) -> Any:
    """Return one model whose output is the mean of the members' probabilities.

    Still one servable model on the same token ids, so serving needs nothing new; it costs
    the members' sum per call.
    """
    import keras

    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    outputs = [
        keras.Model(member.input, member.output, name=f"member_{i + 1}")(token_ids)
        for i, member in enumerate(members)
    ]
    mean = keras.layers.Average(name="mean_probabilities")(outputs)
    return keras.Model(token_ids, mean, name=f"sentiment_{config.cell}_x{len(members)}")


def _optimizer(config: TrainConfig) -> Any:
    import keras

    common: dict[str, Any] = {"learning_rate": config.learning_rate}
    if config.clipnorm:
        common["clipnorm"] = config.clipnorm
    if config.optimizer == "adam":
        return keras.optimizers.Adam(**common)
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(**common)
    return keras.optimizers.SGD(momentum=config.momentum, nesterov=True, **common)


def _callbacks(config: TrainConfig, history_path: Path, checkpoint_dir: Path) -> list[Any]:
    import keras

    mode = "max" if "acc" in config.monitor else "min"
    callbacks: list[Any] = [
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.EarlyStopping(
            monitor=config.monitor,
            mode=mode,
            patience=config.patience,
            restore_best_weights=True,
            verbose=1,
        ),
        keras.callbacks.ModelCheckpoint(
            checkpoint_dir / "best.weights.h5",
            monitor=config.monitor,
            mode=mode,
            save_best_only=True,
            save_weights_only=True,
        ),
        keras.callbacks.ReduceLROnPlateau(
            monitor=config.monitor,
            mode=mode,
            factor=config.reduce_lr_factor,
            patience=config.reduce_lr_patience,
            verbose=1,
        ),
        keras.callbacks.CSVLogger(history_path),
    ]
    if config.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=history_path.parent / "tensorboard"))
    return callbacks


def _data_info(dataset: Dataset) -> dict[str, Any]:
    return {
        "source": dataset.source,
        "count": len(dataset),
        "labels": summarize(dataset),
        "sha256": fingerprint(dataset),
    }


def _library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("tensorflow", "tensorflow-cpu", "keras", "numpy", "sentiment-service"):
        try:
            versions[package] = package_metadata.version(package)
        except package_metadata.PackageNotFoundError:
            continue
    return versions
