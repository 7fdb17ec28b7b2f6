"""How every entry point reads its flags and reports bad input.

    if __name__ == "__main__":
        run_cli(main)                       # or run_cli({"evaluate": evaluate}) for sub-commands

The command line is the typed signature of `main`, read with fire's syntax (`--name=value`, `--name value`,
`--flag` / `--noflag` for booleans, `-` and `_` alike in names; bare values only for the required parameters, in
order, as evaluate.py's official `evaluate GT REC`). Unlike plain `fire.Fire`, which reports leftover arguments only
after the function has run (a mistyped `--max_minute=1` would train for days first), everything is checked *before*
`main` runs:

- an unknown flag is refused, naming the valid ones (and the closest match);
- each value is converted by its annotation: `str` keeps the text as typed (`--output_dir=2024` stays a folder
  name), `bool` accepts true/false/yes/no/1/0/on/off (so `--resume=false` means False), `int` and `float` must
  parse (finite), `X | None` also takes `none`, `list[int]` takes `0,1,2`;
- a flag given twice is refused, and so is a bare word no required parameter takes (`--members a b`: a list given
  with spaces, named as such).

Each problem is one `error: ...` line on stderr and the exit status is 2. The converted values are then handed to
fire (as Python literals it reads back exactly), which calls `main` and serves `--help`. Inside `main`, a
`UsageError` (a flag value that is well-typed but invalid, checked before any work: see `check_flags`) also exits
with status 2, an `InputError` (bad input data; the message names the file and the record) with status 1, and
Ctrl-C with status 130, each as one line and without a traceback.

The checks for the top of an entry point (`check_flags`, `check_gpu`, `check_output_dir`, `check_output_file`) name
the flag and the path as given. `check_output_file(flag, path, step_inputs(...))` also holds the one rule of what an
output file must never be: one of the pipeline's inputs (the dataset's files and split, the question or weights file,
the dumps, a checkpoint), compared through symlinks.
"""
from __future__ import annotations

import difflib
import inspect
import math
import os
import sys
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import fire

from common.jsonio import InputError

TRUE, FALSE = {"true", "yes", "1", "on"}, {"false", "no", "0", "off"}
LIST_OF = {int: "a comma-separated list of integers (e.g. 0,1,2)",
           float: "a comma-separated list of numbers (e.g. 0.5,1)"}


class UsageError(ValueError):
    """A command-line flag the entry point cannot use (unknown, mistyped, out of range)."""


# ----------------------------------------------------------------------------------------------------------------
# Reading the command line against a signature


def _options(annotation: Any) -> tuple[list[Any], bool]:
    """(the non-None types of an annotation, whether None is allowed)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        return [a for a in args if a is not type(None)], type(None) in args
    return [annotation], annotation is type(None)


def _is_bool(annotation: Any) -> bool:
    return bool in _options(annotation)[0]


def convert(name: str, raw: str, annotation: Any) -> Any:
    """The value of flag `name` typed as `raw`, converted to `annotation`; UsageError if it does not fit."""
    kinds, optional = _options(annotation)
    if optional and raw.lower() == "none":
        return None
    problems = []
    for kind in kinds:
        origin = typing.get_origin(kind) or kind
        try:
            if kind is inspect.Parameter.empty or kind is Any or kind is str:
                return raw
            if kind is bool:
                if raw.lower() in TRUE | FALSE:
                    return raw.lower() in TRUE
                problems.append("true or false")
            elif kind is int:
                return int(raw)
            elif kind is float:
                value = float(raw)
                if not math.isfinite(value):
                    raise ValueError
                return value
            elif origin in (list, tuple):
                item = (typing.get_args(kind) or (str,))[0]
                parts = [p for p in raw.strip("[]()").split(",") if p.strip()]
                try:
                    return [convert(name, p.strip(), item) for p in parts]
                except UsageError:  # say what the whole value must be, not what its bad item must be
                    problems.append(LIST_OF.get(item, f"a comma-separated list of {getattr(item, '__name__', item)}"))
                    continue
            elif origin is dict:
                continue  # only as one option of several (a JSON value given as text: the function parses it)
            else:
                raise TypeError(f"--{name}: run_cli cannot read values of type {kind}")
        except UsageError as e:
            problems.append(str(e).split(": ", 1)[-1])
        except ValueError:
            problems.append("an integer" if kind is int else "a finite number" if kind is float else str(kind))
    if any(typing.get_origin(k) is dict or k is dict for k in kinds):
        return raw
    wanted = " or ".join(dict.fromkeys(problems + (["none"] if optional else [])))
    raise UsageError(f"--{name} must be {wanted}, got {raw!r}")


def _suggest(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    return f" (did you mean --{close[0]}?)" if close else ""


def _is_list(annotation: Any) -> bool:
    return any((typing.get_origin(k) or k) in (list, tuple) for k in _options(annotation)[0])


@dataclass(frozen=True)
class _After:
    """The flag just before a bare word: as typed, its name, its value, whether it takes a list."""

    typed: str | None = None
    name: str = ""
    value: str = ""
    is_list: bool = False


def _stray(words: list[str], after: _After, valid: str) -> str:
    """The message for bare words that no parameter takes; after a list flag they are most likely its further
    items, given with spaces instead of commas."""
    what = f"unexpected argument{'s' if len(words) > 1 else ''} {', '.join(map(repr, words))}"
    if after.typed is None:
        return f"{what}: give every value as --flag=value; valid flags: {valid}"
    if after.is_list:
        items = ",".join([after.value, *words])
        return f"{what} after {after.typed}: give list items joined by commas without spaces (--{after.name}={items})"
    return f"{what} after {after.typed}: a flag takes one value (quote a value with spaces)"


def parse_args(fn: Callable[..., Any], argv: list[str]) -> tuple[dict[str, Any], list[str]]:
    """(keyword arguments for `fn` from `argv`, the problems found: one message per line).

    Bare words (not --flags) fill only the required parameters, in order (evaluate.py's file names, as the official
    fire command takes them); any other bare word is refused, naming the flag it follows: `--members a b` is a list
    given with spaces, not a value for the next parameter.
    """
    sig = inspect.signature(fn)
    hints = typing.get_type_hints(fn)
    params = {n: p for n, p in sig.parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    annotation = {n: hints.get(n, inspect.Parameter.empty) for n in params}
    names = list(params)
    valid = ", ".join(f"--{n}" for n in names) or "none"
    required = [n for n, p in params.items() if p.default is p.empty]
    raw: dict[str, str | bool] = {}
    problems: list[str] = []
    bare: list[tuple[str, _After]] = []  # the words that are not flags, and the flag before each
    after = _After()
    i = 0
    while i < len(argv):
        token = argv[i]
        i += 1
        if not token.startswith("--") or token == "--":
            if token != "--":
                bare.append((token, after))
            continue
        body = token[2:]
        name, has_value, value = body.partition("=")
        name = name.replace("-", "_")
        after = _After()
        if name not in params and name.startswith("no") and name[2:] in params and _is_bool(annotation[name[2:]]) \
                and not has_value:
            name, value, has_value = name[2:], "false", True
        if name not in params:
            problems.append(f"unknown flag --{name}{_suggest(name, names)}; valid flags: {valid}")
            continue
        typed = token
        if not has_value:
            if _is_bool(annotation[name]) and (i >= len(argv) or argv[i].lower() not in TRUE | FALSE):
                value = "true"
            elif i < len(argv) and not argv[i].startswith("--"):
                value, i = argv[i], i + 1
                typed = f"{token} {value}"
            else:
                problems.append(f"--{name} needs a value")
                continue
        after = _After(typed, name, str(value), _is_list(annotation[name]))
        if name in raw:
            problems.append(f"--{name} is given twice")
            continue
        raw[name] = value
    free = [n for n in required if n not in raw]
    raw.update((n, word) for n, (word, _) in zip(free, bare))
    strays: dict[_After, list[str]] = {}
    for word, context in bare[len(free):]:
        strays.setdefault(context, []).append(word)
    problems += [_stray(words, context, valid) for context, words in strays.items()]
    kwargs = {}
    for name, value in raw.items():
        try:
            kwargs[name] = convert(name, value, annotation[name])
        except UsageError as e:
            problems.append(str(e))
    problems += [f"--{n} is required" for n in required if n not in raw]
    return kwargs, problems


def _help_requested(argv: list[str]) -> bool:
    return any(a in ("--help", "-h") for a in argv)


def run_cli(component: Callable[..., Any] | Mapping[str, Callable[..., Any]],
            errors: tuple[type[Exception], ...] = (), argv: list[str] | None = None,
            fill: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> None:
    """Check the command line against `component`'s signature, then fire.Fire it with the converted values.

    `component` is the entry function, or {command name: function} for sub-commands (the first argument names
    the command). `fill`, given the flags on the command line, returns values for flags left out (a resumed
    training run: its recorded flags instead of the defaults). Usage problems exit with status 2; an InputError
    (or one of `errors`) raised by `fill` or the function prints `error: <message>` and exits with status 1.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    fn: Any = component
    prefix: list[str] = []
    if isinstance(component, Mapping):
        commands = ", ".join(component)
        if not argv or argv[0] not in component:
            if argv and _help_requested(argv[:1]):
                fire.Fire(dict(component), command=argv)
                return
            _usage_exit([f"the first argument must be a command: {commands}"
                         + (f" (got {argv[0]!r})" if argv else "")])
        prefix, fn, argv = [argv[0]], component[argv[0]], argv[1:]
    if _help_requested(argv):
        fire.Fire(component, command=prefix + ["--help"])
        return
    kwargs, problems = parse_args(fn, argv)
    if problems:
        _usage_exit(problems)
    try:
        if fill is not None:
            kwargs = {**fill(kwargs), **kwargs}
        fire.Fire(component, command=prefix + [f"--{k}={v!r}" for k, v in kwargs.items()])
    except UsageError as e:
        _usage_exit(str(e).splitlines())
    except (InputError, *errors) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:  # Ctrl-C outside a trainer's own handling: one line, not a traceback
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)


def _usage_exit(problems: list[str]) -> typing.NoReturn:
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    sys.exit(2)


# ----------------------------------------------------------------------------------------------------------------
# Checks of flag values, for the top of an entry point (before any work)


def check_flags(**conditions: tuple[bool, str]) -> None:
    """Raise a UsageError naming every flag whose condition is False: check_flags(bs=(bs >= 1, "at least 1"))."""
    bad = [f"--{name} must be {what}" for name, (ok, what) in conditions.items() if not ok]
    if bad:
        raise UsageError("\n".join(bad))  # printed as one error line each


def check_gpu(gpu: int | None) -> None:
    """--gpu is a CUDA device index or -1 (the CPU); the type check already refused words like 'cpu'."""
    if gpu is not None and gpu < -1:
        raise UsageError(f"--gpu must be a CUDA device index (0, 1, ...) or -1 for the CPU, got {gpu}")


@dataclass(frozen=True)
class Input:
    """A file a step must never write over: `path` itself, or with `tree` everything under the folder `path` (with
    `suffix`, only the files whose name ends so)."""

    path: Path
    what: str  # for the message: "the split's answers"
    tree: bool = False
    suffix: str = ""


# The dataset's own files (the official ones, step 0's sample answers) and step 1's split beside them
DATASET_FILES = ("train.json", "val.json", "test.json", "song_meta.json", "genre_gn_all.json")
DATASET_FOLDERS = {"orig": "step 1's split", "questions": "the split's questions", "answers": "the split's answers",
                   "sample_answers": "step 0's sample answers"}


def step_inputs(dataset_dir: str | os.PathLike, output_dir: str | os.PathLike | None = None,
                question_path: str | os.PathLike | None = None,
                weights: str | os.PathLike | None = None) -> list[Input]:
    """What an output file of a step must not be: the dataset's files and split, the step's question and weights
    files, and under output_dir the dumps and the training checkpoints."""
    d = Path(dataset_dir)
    inputs = [Input(d / name, f"the dataset's {name}") for name in DATASET_FILES]
    inputs += [Input(d / folder, f"{what}, {d / folder}", tree=True) for folder, what in DATASET_FOLDERS.items()]
    inputs += [Input(Path(f), what) for f, what in ((question_path, "the question file, --question_path"),
                                                     (weights, "the weights file, --weights")) if f is not None]
    if output_dir is not None:
        inputs += [Input(Path(output_dir) / "dumps", f"step 1's dumps, {Path(output_dir) / 'dumps'}", tree=True),
                   Input(Path(output_dir), "a training checkpoint", tree=True, suffix=".pt")]
    return inputs


def _entry(path: Path) -> Path:
    """Where a file written at `path` lands: its folder with every symlink resolved, and its own name (an atomic
    write replaces a symlink at `path` itself, not the file it points to)."""
    return path.parent.resolve() / path.name


def _overwrites(target: Path, protected: Input) -> bool:
    """Whether writing the file `target` (resolved by _entry) replaces `protected` or a file under it."""
    if protected.tree:
        folder = protected.path.resolve()
        return (folder in target.parents or target == folder) and target.name.endswith(protected.suffix)
    return target in (_entry(protected.path), protected.path.resolve())


def _check_writable(flag: str, given: Path, folder: Path) -> None:
    """The folder `folder` (`given` itself, or the folder of the file `given`) exists and is writable, or can be
    made: its nearest existing ancestor is a writable folder. The message names `given`, the path the user typed."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"--{flag}={given}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"--{flag}={given}: cannot write there, {existing} is not writable")


def check_output_file(flag: str, path: str | os.PathLike, protected: Sequence[Input] = ()) -> None:
    """The file `path` can be written: it is not a folder, nor one of the step's inputs `protected` (step_inputs;
    compared through symlinks and `..`), and its folder is writable or can be made."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"--{flag}={path} is a folder; give a file name")
    target = _entry(path)
    hit = next((p for p in protected if _overwrites(target, p)), None)
    if hit is not None:
        raise UsageError(f"--{flag} {path} would overwrite an input ({hit.what}); choose another file")
    _check_writable(flag, path, path.parent)


def check_output_dir(flag: str, path: str | os.PathLike) -> None:
    """The folder `path` exists and is writable, or can be created."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--{flag}={path} is a file, not a folder")
    _check_writable(flag, path, path)
