"""How every entry point reads its flags and reports bad input.

    if __name__ == "__main__":
        run_cli(main)                       # or run_cli({"evaluate": evaluate}) for sub-commands

The command line is the typed signature of `main`, read with fire's syntax (`--name=value`, `--name value`,
`--flag` / `--noflag` for booleans, positional values in parameter order, `-` and `_` alike in names). Unlike plain
`fire.Fire`, which reports leftover arguments only after the function has run (a mistyped `--max_minute=1` would
train for days first), everything is checked *before* `main` runs:

- an unknown flag is refused, naming the valid ones (and the closest match);
- each value is converted by its annotation: `str` keeps the text as typed (`--output_dir=2024` stays a folder
  name), `bool` accepts true/false/yes/no/1/0/on/off (so `--resume=false` means False), `int` and `float` must
  parse (finite), `X | None` also takes `none`, `list[int]` takes `0,1,2`;
- a flag given twice is refused.

Each problem is one `error: ...` line on stderr and the exit status is 2. The converted values are then handed to
fire (as Python literals it reads back exactly), which calls `main` and serves `--help`. Inside `main`, a
`UsageError` (a flag value that is well-typed but invalid, checked before any work: see `check_flags`) also exits
with status 2, an `InputError` (bad input data; the message names the file and the record) with status 1, and
Ctrl-C with status 130, each as one line and without a traceback.
"""
from __future__ import annotations

import difflib
import inspect
import math
import os
import sys
import types
import typing
from pathlib import Path
from typing import Any, Callable, Mapping

import fire

from common.jsonio import InputError

TRUE, FALSE = {"true", "yes", "1", "on"}, {"false", "no", "0", "off"}


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
                return [convert(name, p.strip(), item) for p in parts]
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


def parse_args(fn: Callable[..., Any], argv: list[str]) -> tuple[dict[str, Any], list[str]]:
    """(keyword arguments for `fn` from `argv`, the problems found: one message per line)."""
    sig = inspect.signature(fn)
    hints = typing.get_type_hints(fn)
    params = {n: p for n, p in sig.parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    annotation = {n: hints.get(n, inspect.Parameter.empty) for n in params}
    names = list(params)
    valid = ", ".join(f"--{n}" for n in names) or "none"
    raw: dict[str, str | bool] = {}
    problems: list[str] = []
    positional: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        i += 1
        if not token.startswith("--") or token == "--":
            if token != "--":
                positional.append(token)
            continue
        body = token[2:]
        name, has_value, value = body.partition("=")
        name = name.replace("-", "_")
        if name not in params and name.startswith("no") and name[2:] in params and _is_bool(annotation[name[2:]]) \
                and not has_value:
            name, value, has_value = name[2:], "false", True
        if name not in params:
            problems.append(f"unknown flag --{name}{_suggest(name, names)}; valid flags: {valid}")
            continue
        if not has_value:
            if _is_bool(annotation[name]) and (i >= len(argv) or argv[i].lower() not in TRUE | FALSE):
                value = "true"
            elif i < len(argv) and not argv[i].startswith("--"):
                value, i = argv[i], i + 1
            else:
                problems.append(f"--{name} needs a value")
                continue
        if name in raw:
            problems.append(f"--{name} is given twice")
            continue
        raw[name] = value
    free = [n for n in names if n not in raw]
    if len(positional) > len(free):
        problems.append(f"unexpected argument(s) {' '.join(positional[len(free):])}; valid flags: {valid}")
    raw.update(zip(free, positional))
    kwargs = {}
    for name, value in raw.items():
        try:
            kwargs[name] = convert(name, value, annotation[name])
        except UsageError as e:
            problems.append(str(e))
    missing = [n for n, p in params.items() if p.default is p.empty and n not in kwargs]
    problems += [f"--{n} is required" for n in missing]
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


def check_output_file(flag: str, path: str | os.PathLike) -> None:
    """The file `path` can be written: it is not a folder, and its nearest existing ancestor is a writable folder."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"--{flag}={path} is a folder; give a file name")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"--{flag}={path}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"--{flag}={path}: cannot write in {parent}")


def check_output_dir(flag: str, path: str | os.PathLike) -> None:
    """The folder `path` exists and is writable, or can be created."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--{flag}={path} is a file, not a folder")
    check_output_file(flag, path / "x")
