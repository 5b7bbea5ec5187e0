from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from annotation.predictions import RunError, import_predictions


class Command(BaseCommand):
    help = (
        "Import a model's predictions (python -m inference generate/score output) into a run: "
        "scores, and one chain of origin 'model' per prediction for review."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file", type=Path, help="JSON Lines, one prediction a line")
        parser.add_argument("--run", required=True, help="Model run name (created on first import)")
        parser.add_argument(
            "--checkpoint",
            default="",
            help="Checkpoint path or id (default: the rows' settings.model)",
        )
        parser.add_argument(
            "--snapshot",
            default=None,
            help="Export snapshot the model was trained on: v7, 7 or a uuid",
        )
        parser.add_argument(
            "--source", default=None, help="Only match cases of this import source (item ids)"
        )

    def handle(
        self,
        *args: Any,
        file: Path,
        run: str,
        checkpoint: str,
        snapshot: str | None,
        source: str | None,
        **options: Any,
    ) -> None:
        if not file.is_file():
            raise CommandError(f"{file}: no such file")
        try:
            result = import_predictions(
                file, run=run, checkpoint=checkpoint, snapshot=snapshot, source=source
            )
        except RunError as exc:
            raise CommandError(str(exc)) from None
        for problem in result.problems[:20]:
            self.stderr.write(f"rejected: {file.name}:{problem}")
        if len(result.problems) > 20:
            self.stderr.write(f"... and {len(result.problems) - 20} more in the report")
        self.stdout.write(result.summary())
        if result.rejected:
            raise CommandError(f"{result.rejected} rows rejected", returncode=1)
