"""``python -m inference generate|score``: thin command lines over `generate.run` and `score.run`.

    python -m inference generate --model PATH_OR_URL --cases FILE --out predictions.jsonl [...]
    python -m inference score --predictions FILE --out scores.jsonl [--judge offline|llm] [...]

Options mirror the config dataclasses' fields (``--help`` lists them with their help). Prints a
one-line summary; exits 1 when a case failed or a line could not be read or used, 2 for a bad
option or setting (an out-of-range number, an LLM judge with no endpoint), and prints one line,
never a traceback, for a file it cannot read or an endpoint that stays down.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from pathlib import Path
from typing import Any

from inference.config import ConfigError, option
from inference.generate import GenerateConfig
from inference.openai_client import EndpointError
from inference.score import ScoreConfig


def _add_fields(parser: argparse.ArgumentParser, config: type) -> None:
    """One option per dataclass field: required without a default, typed from its annotation."""
    hints = typing.get_type_hints(config)
    for item in dataclasses.fields(config):
        kind = hints[item.name]
        if isinstance(kind, types.UnionType):  # "int | None" -> int
            kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
        flag = option(item.name)
        help_text = item.metadata.get("help", "")
        required = item.default is dataclasses.MISSING
        shown = required or item.default is None  # None: the help says what it falls back to
        if kind is bool:
            parser.add_argument(flag, dest=item.name, action="store_true", help=help_text)
            continue
        parser.add_argument(
            flag,
            dest=item.name,
            type=kind,
            choices=item.metadata.get("choices"),
            required=required,
            default=None if required else item.default,
            help=help_text + ("" if shown else f" (default: {item.default})"),
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m inference", description=__doc__.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    generate = commands.add_parser("generate", help="run a model over a case file")
    _add_fields(generate, GenerateConfig)
    score = commands.add_parser("score", help="accuracy and RadRScore for a predictions file")
    _add_fields(score, ScoreConfig)
    score.set_defaults(judge="offline")
    args = vars(parser.parse_args(argv))
    command = args.pop("command")
    config: Any
    try:
        config = (GenerateConfig if command == "generate" else ScoreConfig)(**args)
        for path in _inputs(config):
            if not path.is_file():
                raise ConfigError(f"{path}: no such file")
        return _run(command, config)
    except ConfigError as exc:
        (generate if command == "generate" else score).error(str(exc))  # exits 2
    except EndpointError as exc:  # still failing after its retries, or no model to use
        print(f"python -m inference {command}: error: endpoint: {exc}", file=sys.stderr)
    except OSError as exc:  # a file that cannot be read or written
        where = f"{exc.filename}: " if exc.filename else ""
        print(
            f"python -m inference {command}: error: {where}{exc.strerror or exc}", file=sys.stderr
        )
    return 1


def _inputs(config: Any) -> list[Path]:
    if isinstance(config, GenerateConfig):
        return [config.cases]
    return [Path(p) for p in (config.predictions, config.cases) if p is not None]


def _run(command: str, config: Any) -> int:
    if command == "generate":
        from inference import generate as module

        result = module.run(config)
        print(result.summary(config.out))
        return 1 if result.failed or result.bad_lines else 0
    from inference import score as scoring

    scored = scoring.run(config)
    print(scored.table(), file=sys.stderr)
    print(scored.summary(config.out))
    return 1 if scored.failed or scored.bad_lines else 0


if __name__ == "__main__":
    raise SystemExit(main())
