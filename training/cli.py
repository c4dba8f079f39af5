"""Command-line entry points: `sentiment-train` and `sentiment-evaluate`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from training.corpora import corpus_path, shipped_corpora
from training.errors import TrainingError
from training.model import CELLS, POOLINGS, ModelConfig
from training.nbsvm import NbsvmConfig
from training.preprocessing import SIDES
from training.pretrain import PretrainConfig
from training.train import TrainConfig
from training.word_vectors import RANKINGS

log = logging.getLogger("training")
DATA_ENV = "SENTIMENT_DATA_DIR"  # where the default IMDB files are looked up


def _default_data(name: str) -> str | None:
    base = os.environ.get(DATA_ENV)
    return str(Path(base) / name) if base else None


def _label_names(value: str) -> dict[str, str]:
    pairs = [item.split("=", 1) for item in value.split(",") if item]
    if not pairs or any(len(pair) != 2 or not all(pair) for pair in pairs):
        raise argparse.ArgumentTypeError(
            "expected RAW=NAME[,RAW=NAME...], e.g. 0=negative,1=positive"
        )
    return {raw.strip(): name.strip() for raw, name in pairs}


def _data_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data format")
    group.add_argument("--text-column", default="text", help="text column/key (default: text)")
    group.add_argument("--label-column", default="label", help="label column/key (default: label)")
    group.add_argument(
        "--label-names",
        type=_label_names,
        metavar="RAW=NAME,...",
        help="rename raw labels, in output order, e.g. 0=negative,1=positive",
    )


def build_train_parser() -> argparse.ArgumentParser:
    """Return the `sentiment-train` argument parser."""
    parser = argparse.ArgumentParser(
        prog="sentiment-train",
        description="Train an Embedding + RNN sentiment classifier and write a model bundle "
        "(model.keras, tokenizer.json, metadata.json) plus history.csv, training_curves.png "
        "and evaluation.{json,md}.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--config",
        metavar="RECIPE",
        help="take option values from a recipe: a TOML file of options named as their flags "
        "without '--' (num-words = 20000), or the name of one shipped in training/recipes "
        "('default': the default model's); flags given here override it",
    )
    data = parser.add_argument_group("data (CSV/TSV, JSON Lines, aclImdb dir or .tar.gz)")
    data.add_argument(
        "--train",
        default=_default_data("train.jsonl.gz"),
        help=f"labelled training data (default: ${DATA_ENV}/train.jsonl.gz)",
    )
    data.add_argument(
        "--val",
        default=_default_data("val.jsonl.gz"),
        help=f"labelled validation data for early stopping and selection "
        f"(default: ${DATA_ENV}/val.jsonl.gz; else --val-split of --train)",
    )
    data.add_argument(
        "--val-split",
        type=float,
        default=0.1,
        help="fraction of --train held out when --val is not given",
    )
    data.add_argument(
        "--group-column",
        metavar="NAME",
        help="with --val-split: hold out whole groups of --train rows sharing this column/key "
        "(e.g. movie: no movie on both sides, as in a real test set) instead of a stratified "
        "sample of rows",
    )
    data.add_argument(
        "--download-aclimdb",
        metavar="DIR",
        help="download aclImdb_v1.tar.gz into DIR and train on its train split",
    )
    _data_arguments(parser)

    out = parser.add_argument_group("output")
    out.add_argument(
        "--out",
        "--output-dir",
        dest="out",
        default="models/trained",
        help="bundle directory to write",
    )
    out.add_argument("--name", default="sentiment", help="model name in the bundle and the API")
    out.add_argument("--model-version", help="bundle version (default: UTC timestamp)")
    out.add_argument(
        "--baseline",
        action="store_true",
        help="also fit TF-IDF bigrams + logistic regression and report its val accuracy",
    )

    data.add_argument(
        "--snippets",
        type=float,
        default=TrainConfig.snippets,
        metavar="FRACTION",
        help="add this fraction of one-sentence snippets of the training texts (labelled as "
        "their text) so the model also learns short inputs; 0.5 adds one per two texts",
    )

    data.add_argument(
        "--extra-train",
        metavar="DATA",
        help="more labelled data fitted on beside --train, never validated on nor cut into "
        "snippets: a file in --train's formats, or the name of a corpus shipped in "
        f"training/corpora ({', '.join(shipped_corpora()) or 'none'}); e.g. short reviews of "
        "the domains the service will see",
    )
    data.add_argument(
        "--negations",
        type=float,
        default=TrainConfig.negations,
        metavar="FRACTION",
        help="add this fraction of short rule-labelled sentences pairing polar adjectives of "
        "the training texts with and without a negation ('not boring' is the other class from "
        "'boring'; binary labels, needs the train extra)",
    )

    pre = parser.add_argument_group("preprocessing")
    pre.add_argument(
        "--num-words", type=int, default=TrainConfig.num_words, help="vocabulary size cap"
    )
    pre.add_argument("--maxlen", type=int, default=TrainConfig.maxlen, help="max tokens per text")
    pre.add_argument("--padding", choices=SIDES, default=TrainConfig.padding, help="pad side")
    pre.add_argument(
        "--truncating",
        choices=SIDES,
        default=TrainConfig.truncating,
        help="truncate side (pre keeps the end of a long text)",
    )

    model = parser.add_argument_group("model")
    model.add_argument("--cell", choices=CELLS, default=ModelConfig.cell, help="recurrent cell")
    model.add_argument(
        "--units", type=int, default=ModelConfig.units, help="units per direction and layer"
    )
    model.add_argument(
        "--layers", type=int, default=ModelConfig.layers, help="stacked recurrent layers"
    )
    model.add_argument(
        "--bidirectional",
        action=argparse.BooleanOptionalAction,
        default=ModelConfig.bidirectional,
        help="read the text both ways",
    )
    model.add_argument(
        "--embedding-dim", type=int, default=ModelConfig.embedding_dim, help="embedding width"
    )
    model.add_argument(
        "--pooling",
        choices=POOLINGS,
        default=ModelConfig.pooling,
        help="how the RNN outputs over time become one vector",
    )
    model.add_argument(
        "--embedding-dropout",
        type=float,
        default=ModelConfig.embedding_dropout,
        help="spatial dropout on embedding channels",
    )
    model.add_argument(
        "--dropout", type=float, default=ModelConfig.dropout, help="dropout before the output"
    )
    model.add_argument(
        "--recurrent-dropout",
        type=float,
        default=ModelConfig.recurrent_dropout,
        help="> 0 disables the cuDNN kernel on GPU",
    )
    model.add_argument("--l2", type=float, default=ModelConfig.l2, help="L2 weight decay")
    model.add_argument(
        "--ngram-buckets",
        type=int,
        default=ModelConfig.ngram_buckets,
        help="> 0 adds a fastText-style branch: mean embedding of the words and of their "
        "bigrams hashed into this many buckets, beside the RNN (0 = RNN only)",
    )
    model.add_argument(
        "--ngram-dim", type=int, default=ModelConfig.ngram_dim, help="width of that branch"
    )

    nb = parser.add_argument_group(
        "NB-SVM branch (binary labels): NB-weighted word + bigram evidence beside the RNN"
    )
    nb.add_argument(
        "--nb-buckets",
        type=int,
        default=NbsvmConfig.buckets,
        help="hashed bigram buckets of the NB-SVM branch; 0 = no branch",
    )
    nb.add_argument(
        "--nb-c", type=float, default=NbsvmConfig.c, help="NB-SVM inverse regularization"
    )
    nb.add_argument("--nb-alpha", type=float, default=NbsvmConfig.alpha, help="NB count smoothing")
    nb.add_argument(
        "--nb-weight",
        type=float,
        default=NbsvmConfig.weight,
        help="the branch's logit is added to the RNN's times this",
    )
    vectors = parser.add_argument_group(
        "general-domain word vectors (frozen, beside the learned embedding)"
    )
    vectors.add_argument(
        "--word-vectors",
        metavar="SOURCE",
        help="'glove-6b-50d' (GloVe 6B 50-d, packaged in the train extra) or a GloVe/word2vec "
        "text file: a frozen vector per word, so words the training texts lack still mean "
        "something; off by default",
    )
    vectors.add_argument(
        "--word-vectors-extra",
        type=int,
        default=TrainConfig.word_vectors_extra,
        metavar="N",
        help="add the N most frequent words (see --word-ranking) that --num-words lacks to "
        "the vocabulary; they get a frozen vector only",
    )
    vectors.add_argument(
        "--word-ranking",
        choices=RANKINGS,
        default=TrainConfig.word_ranking,
        help="what 'most frequent' means for --word-vectors-extra: general English use "
        "(wordfreq, train extra) or the order of the vector file (GloVe: news and Wikipedia)",
    )
    vectors.add_argument(
        "--word-vectors-projection",
        type=int,
        default=ModelConfig.word_vectors_projection,
        help="the frozen vectors enter the RNN through a Dense layer this wide, folded into "
        "their table after training (0 = as they are)",
    )
    vectors.add_argument(
        "--word-dropout",
        type=float,
        default=ModelConfig.word_dropout,
        help="while training, this share of tokens is OOV for the learned embedding only, so "
        "the model learns to read words from their frozen vector alone",
    )
    pre_train = parser.add_argument_group("pre-training (word2vec embeddings, needs gensim)")
    pre_train.add_argument(
        "--pretrain-unlabelled",
        metavar="PATH",
        help="unlabelled texts (CSV/TSV/JSONL/TXT, e.g. imdb/unsup.jsonl.gz): learn word2vec "
        "vectors on them plus --train to initialize the embedding",
    )
    pre_train.add_argument(
        "--pretrain-epochs", type=int, default=PretrainConfig.epochs, help="word2vec epochs"
    )
    pre_train.add_argument(
        "--pretrain-window", type=int, default=PretrainConfig.window, help="word2vec window"
    )

    fit = parser.add_argument_group("optimization")
    fit.add_argument(
        "--optimizer", choices=("adam", "rmsprop", "sgd"), default=TrainConfig.optimizer
    )
    fit.add_argument("--learning-rate", type=float, default=TrainConfig.learning_rate)
    fit.add_argument(
        "--momentum", type=float, default=TrainConfig.momentum, help="SGD momentum (Nesterov)"
    )
    fit.add_argument(
        "--clipnorm", type=float, default=TrainConfig.clipnorm, help="gradient norm clip; 0 = off"
    )
    fit.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    fit.add_argument(
        "--epochs",
        type=int,
        default=TrainConfig.epochs,
        help="upper bound; early stopping ends sooner",
    )
    fit.add_argument(
        "--patience",
        type=int,
        default=TrainConfig.patience,
        help="early-stopping patience (epochs)",
    )
    fit.add_argument(
        "--monitor",
        default=TrainConfig.monitor,
        help="metric for early stopping, checkpointing and LR reduction",
    )
    fit.add_argument("--seed", type=int, default=TrainConfig.seed)
    fit.add_argument(
        "--ensemble",
        type=int,
        default=TrainConfig.ensemble,
        metavar="N",
        help="train N models (seeds SEED..SEED+N-1) and bundle them as one model serving "
        "their mean; N times the training and serving cost",
    )
    fit.add_argument(
        "--tensorboard", action="store_true", help="write TensorBoard logs to OUT/tensorboard"
    )
    fit.add_argument(
        "--quiet", action="store_true", help="one line per epoch instead of progress bars"
    )
    return parser


def train_main(argv: Sequence[str] | None = None) -> int:
    """Run `sentiment-train`."""
    from training.recipe import apply_recipe

    parser = build_train_parser()
    recipe = apply_recipe(parser, argv)  # --config: the recipe's values become the defaults
    args = parser.parse_args(argv)
    _configure_logging()
    if recipe is not None:
        log.info("recipe: %s", recipe)
    return _run(lambda: _train(args))


def _train(args: argparse.Namespace) -> None:
    from training.data import read_labelled, split_dataset
    from training.train import train

    train_path = args.train
    if args.download_aclimdb:
        from training.aclimdb import download_aclimdb

        train_path = str(download_aclimdb(Path(args.download_aclimdb)))
    if not train_path:
        raise TrainingError(f"no training data: pass --train PATH or set ${DATA_ENV}")
    read = {
        "text_column": args.text_column,
        "label_column": args.label_column,
        "label_names": args.label_names,
    }
    if args.val:
        if args.group_column:
            log.warning("--group-column %s ignored: --val is given", args.group_column)
        train_set = read_labelled(train_path, **read)
        val_set = read_labelled(args.val, **read)
    else:
        train_set = read_labelled(train_path, **read, group_column=args.group_column or None)
        train_set, val_set = split_dataset(train_set, args.val_split, seed=args.seed)
        if val_set.groups is not None and train_set.groups is not None:
            log.info(
                "validation: %d rows of %d %s groups held out (%d groups left for training)",
                len(val_set),
                len(set(val_set.groups)),
                args.group_column,
                len(set(train_set.groups)),
            )
            # Groups only decide the split; training does not use them.
            train_set, val_set = replace(train_set, groups=None), replace(val_set, groups=None)
    config = TrainConfig(
        num_words=args.num_words,
        maxlen=args.maxlen,
        padding=args.padding,
        truncating=args.truncating,
        optimizer=args.optimizer,
        learning_rate=args.learning_rate,
        momentum=args.momentum,
        clipnorm=args.clipnorm or None,
        batch_size=args.batch_size,
        epochs=args.epochs,
        patience=args.patience,
        monitor=args.monitor,
        seed=args.seed,
        snippets=args.snippets,
        negations=args.negations,
        word_vectors=args.word_vectors,
        word_vectors_extra=args.word_vectors_extra,
        word_ranking=args.word_ranking,
        ensemble=args.ensemble,
        tensorboard=args.tensorboard,
        verbose=2 if args.quiet else "auto",
    )
    model_options: dict[str, Any] = {
        "cell": args.cell,
        "units": args.units,
        "layers": args.layers,
        "bidirectional": args.bidirectional,
        "embedding_dim": args.embedding_dim,
        "pooling": args.pooling,
        "embedding_dropout": args.embedding_dropout,
        "dropout": args.dropout,
        "recurrent_dropout": args.recurrent_dropout,
        "l2": args.l2,
        "ngram_buckets": args.ngram_buckets,
        "ngram_dim": args.ngram_dim,
        "word_vectors_projection": args.word_vectors_projection,
        "word_dropout": args.word_dropout,
    }
    pretrain_texts = None
    if args.pretrain_unlabelled:
        from training.data import read_texts

        pretrain_texts = read_texts(args.pretrain_unlabelled, text_column=args.text_column)
    pretrain_config = PretrainConfig(
        epochs=args.pretrain_epochs, window=args.pretrain_window, workers=os.cpu_count() or 1
    )
    nbsvm_config = NbsvmConfig(
        buckets=args.nb_buckets, c=args.nb_c, alpha=args.nb_alpha, weight=args.nb_weight
    )
    extra_set = read_labelled(corpus_path(args.extra_train), **read) if args.extra_train else None
    result = train(
        train_set,
        val_set,
        args.out,
        config=config,
        model_options=model_options,
        label_names=args.label_names,
        name=args.name,
        version=args.model_version,
        baseline=args.baseline,
        pretrain_texts=pretrain_texts,
        pretrain_config=pretrain_config,
        nbsvm_config=nbsvm_config,
        extra_set=extra_set,
    )
    metrics = result.metadata.metrics
    print(json.dumps({"bundle": str(result.bundle_dir), **metrics}, indent=2))


def build_evaluate_parser() -> argparse.ArgumentParser:
    """Return the `sentiment-evaluate` argument parser."""
    parser = argparse.ArgumentParser(
        prog="sentiment-evaluate",
        description="Evaluate a model bundle on a labelled file; print and write a report "
        "with accuracy, per-class precision/recall/F1, ROC-AUC and the confusion matrix.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model-dir", required=True, help="model bundle directory")
    parser.add_argument("--data", required=True, help="labelled data (CSV/TSV, JSONL, aclImdb)")
    parser.add_argument("--split", default="test", help="aclImdb split to read")
    parser.add_argument("--out", help="report JSON path (a Markdown twin is written beside it)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument(
        "--explain-errors",
        type=int,
        default=0,
        metavar="N",
        help="write an HTML report of the N most confident wrong predictions, each word "
        "shaded by its attribution (0: none)",
    )
    parser.add_argument(
        "--explain-out",
        help="the HTML report's path (default: beside --out as <stem>_errors.html, else "
        "explain_errors.html)",
    )
    _data_arguments(parser)
    return parser


def evaluate_main(argv: Sequence[str] | None = None) -> int:
    """Run `sentiment-evaluate`."""
    args = build_evaluate_parser().parse_args(argv)
    _configure_logging()
    return _run(lambda: _evaluate(args))


def _evaluate(args: argparse.Namespace) -> None:
    from training.bundle import load_bundle
    from training.data import read_labelled
    from training.evaluate import (
        evaluate_bundle,
        label_ids,
        score_bundle,
        with_bundle_labels,
        write_report,
    )

    bundle = load_bundle(args.model_dir)
    dataset = read_labelled(
        args.data,
        split=args.split,
        text_column=args.text_column,
        label_column=args.label_column,
        label_names=args.label_names,
    )
    # Raw labels (0/1) map to the bundle's names (negative/positive) as they did in training.
    if args.label_names is None:
        dataset = with_bundle_labels(dataset, bundle.metadata)
    probabilities = score_bundle(bundle, dataset, batch_size=args.batch_size)
    report = evaluate_bundle(bundle, dataset, probabilities=probabilities)
    if args.out:
        out = Path(args.out)
        write_report(report, out.parent, out.stem)
    if args.explain_errors > 0:
        from training import explain_report

        target = Path(
            args.explain_out
            or (Path(args.out).with_name(f"{Path(args.out).stem}_errors.html") if args.out else "")
            or "explain_errors.html"
        )
        truth = label_ids(dataset, bundle.metadata.labels)
        html = explain_report.render_report(
            bundle, dataset, truth, probabilities, args.explain_errors
        )
        explain_report.write_report(target, html)
        logging.getLogger(__name__).info("wrote the explained errors to %s", target)
    print(json.dumps(report, indent=2))


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide TF's C++ info banners


def _run(action: Any) -> int:
    try:
        action()
    except TrainingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
