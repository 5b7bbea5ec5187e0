"""``python -m training sft|prm|grpo --config training/configs/NAME.yaml [--key value ...]``."""

from __future__ import annotations

import importlib
import sys

STAGES = {
    "sft": "training.sft",  # supervised fine-tuning on verified chains
    "prm": "training.prm",  # process reward model from the radiologists' step verdicts
    "grpo": "training.grpo",  # GRPO with format, answer and process rewards
}
USAGE = (
    "usage: python -m training {sft,prm,grpo} --config FILE [--key value ...]\n"
    "       python -m training STAGE --help   (every setting, with its help)"
)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in STAGES:
        print(USAGE, file=sys.stderr)
        return 0 if argv and argv[0] in {"-h", "--help"} else 2
    stage = importlib.import_module(STAGES[argv[0]])
    return int(stage.main(argv[1:]) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
