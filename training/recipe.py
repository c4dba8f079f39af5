"""Training recipes: `sentiment-train --config RECIPE` takes its option values from a TOML file.

A recipe holds `sentiment-train` options, keyed by their flag without the leading ``--``
(``num-words = 20000``; ``num_words`` is read the same), and becomes the parser's defaults, so
any flag on the command line still overrides it. Data paths and per-run settings
(``PER_RUN``) are refused in a recipe: they belong to the command line. Every value is checked
as the flag's would be (type, choices); an unknown key is an error, not ignored.

``RECIPE`` is a file path, or the bare name of a recipe shipped in ``training/recipes/``
(``default``: the recipe of ``models/default``, used by `make train` and the training Job).
"""

from __future__ import annotations

import argparse
import difflib
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from training.errors import ConfigError

RECIPES_DIR = Path(__file__).resolve().parent / "recipes"
# Destinations a recipe may not set: where the data and the bundle are, and what varies per run.
PER_RUN = frozenset(
    {"train", "val", "out", "pretrain_unlabelled", "download_aclimdb", "model_version", "config"}
)


def recipe_path(recipe: str) -> Path:
    """Return the file of ``recipe``: a path, or the bare name of a shipped recipe."""
    if "/" in recipe or "." in recipe:
        return Path(recipe)
    path = RECIPES_DIR / f"{recipe}.toml"
    if not path.is_file():
        shipped = sorted(p.stem for p in RECIPES_DIR.glob("*.toml"))
        raise ConfigError(f"no recipe named {recipe!r}; shipped recipes: {', '.join(shipped)}")
    return path


def load_recipe(recipe: str) -> tuple[Path, dict[str, Any]]:
    """Return the path and the raw key/value pairs of ``recipe``."""
    path = recipe_path(recipe)
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read recipe {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"recipe {path} is not valid TOML: {exc}") from exc
    return path, values


def recipe_defaults(
    parser: argparse.ArgumentParser, values: Mapping[str, Any], source: str
) -> dict[str, Any]:
    """Validate recipe ``values`` against ``parser``'s options; return {dest: parsed value}."""
    options = {
        flag[2:]: action
        for action in parser._actions  # argparse offers no public list of its options
        for flag in action.option_strings
        if flag.startswith("--")
    }
    defaults: dict[str, Any] = {}
    for key, value in values.items():
        action = options.get(key.replace("_", "-"))
        if action is None:
            close = difflib.get_close_matches(key.replace("_", "-"), options, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"recipe {source}: unknown option {key!r}{hint}")
        if action.dest in PER_RUN or action.dest == "help":
            raise ConfigError(
                f"recipe {source}: {key!r} is a data path or per-run setting; "
                f"pass {action.option_strings[0]} on the command line instead"
            )
        if action.dest in defaults:
            raise ConfigError(f"recipe {source}: {key!r} is given twice")
        defaults[action.dest] = _parse(action, value, f"recipe {source}: {key}")
    return defaults


def _parse(action: argparse.Action, value: Any, where: str) -> Any:
    if action.nargs == 0:  # a switch: store_true, --x/--no-x
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        if isinstance(action, argparse.BooleanOptionalAction):
            return value
        return action.const if value else action.default
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ConfigError(f"{where} must be a string or a number, got {value!r}")
    try:
        parsed = action.type(str(value)) if callable(action.type) else str(value)
    except (ValueError, TypeError, argparse.ArgumentTypeError) as exc:
        raise ConfigError(f"{where}: invalid value {value!r} ({exc})") from exc
    if action.choices is not None and parsed not in action.choices:
        choices = ", ".join(map(str, action.choices))
        raise ConfigError(f"{where}: {value!r} is not one of {choices}")
    return parsed


def apply_recipe(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> Path | None:
    """If ``argv`` has ``--config RECIPE``, make the recipe ``parser``'s defaults.

    Call it before ``parser.parse_args(argv)``; a bad recipe is a usage error (exit 2).
    Returns the recipe file, or None without ``--config``.
    """
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--config")
    known, _ = first.parse_known_args(argv)
    if not known.config:
        return None
    try:
        path, values = load_recipe(known.config)
        parser.set_defaults(**recipe_defaults(parser, values, str(path)))
    except ConfigError as exc:
        parser.error(str(exc))
    return path
