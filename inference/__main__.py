"""``python -m inference generate|score``: thin command lines over `generate.run` and `score.run`.

    python -m inference generate --model PATH_OR_URL --cases FILE --out predictions.jsonl [...]
    python -m inference score --predictions FILE --out scores.jsonl [--judge offline|llm] [...]

Options mirror the config dataclasses' fields (``--help`` lists them with their help). Prints a
one-line summary; exits 1 when a case failed or a line could not be read.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from pathlib import Path
from typing import Any

from inference.generate import GenerateConfig
from inference.score import ScoreConfig


def _add_fields(parser: argparse.ArgumentParser, config: type) -> None:
    """One option per dataclass field: required without a default, typed from its annotation."""
    hints = typing.get_type_hints(config)
    for item in dataclasses.fields(config):
        kind = hints[item.name]
        if isinstance(kind, types.UnionType):  # "int | None" -> int
            kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
        flag = "--" + item.name.replace("_", "-")
        help_text = item.metadata.get("help", "")
        required = item.default is dataclasses.MISSING
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
            help=help_text + ("" if required else f" (default: {item.default})"),
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
    if command == "generate":
        from inference import generate as module

        config: Any = GenerateConfig(**args)
        if not config.cases.is_file():
            parser.error(f"--cases {config.cases}: no such file")
        result = module.run(config)
        print(result.summary(config.out))
        return 1 if result.failed or result.bad_lines else 0
    from inference import score as scoring

    config = ScoreConfig(**args)
    for path in (config.predictions, config.cases):
        if path is not None and not Path(path).is_file():
            parser.error(f"{path}: no such file")
    result = scoring.run(config)
    print(result.table(), file=sys.stderr)
    print(result.summary(config.out))
    return 1 if result.failed or result.bad_lines else 0


if __name__ == "__main__":
    raise SystemExit(main())
