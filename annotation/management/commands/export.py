import os
import tempfile
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotation.exporting import FORMATS, ExportError, ExportOptions, export


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def check_out(out: Path) -> None:
    """Refuse an --out the snapshot cannot be written to, before a snapshot is numbered: a
    failed write would use up a snapshot number and leave a failed row behind.

    The folder is created (as the export would) and a file is written in it; that is the
    only sure test (permissions, read-only or virtual file systems such as /proc).
    """
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {out} is a file, not a folder")
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(f"--out {out}: cannot create this folder ({_reason(exc)})") from None
    try:
        if any(out.iterdir()):
            raise CommandError(f"--out {out} is not empty: a snapshot is written into a new folder")
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        if created:
            os.rmdir(out)  # only the empty folder this check made
        raise CommandError(f"--out {out}: cannot write in this folder ({_reason(exc)})") from None


class Command(BaseCommand):
    help = "Write a versioned dataset snapshot (SFT, PRM, GRPO, RadRBench JSONL + Parquet) to a new folder."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--format", default=",".join(FORMATS), help=f"comma-separated: {','.join(FORMATS)} (default: all)")
        parser.add_argument("--out", type=Path, required=True, help="the snapshot folder (new or empty)")
        parser.add_argument("--status", default="verified", help="comma-separated chain statuses (default: verified)")
        parser.add_argument("--task", default="", help="comma-separated task types (default: all)")
        parser.add_argument("--source", default="", help="comma-separated case sources (default: all)")
        parser.add_argument("--origin", default="", help="comma-separated chain origins (default: all)")
        parser.add_argument("--since", default="", help="chains decided on or after this date (YYYY-MM-DD)")
        parser.add_argument("--min-agreement", type=float, default=None,
                            help="keep double-read chains whose reader pair's kappa is at least K")
        parser.add_argument("--image-size", type=int, default=512, help="longest side of the exported PNGs (default 512)")
        parser.add_argument("--seed", default="0", help="split seed: patients are assigned by sha256(seed + patient)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            export_options = ExportOptions(
                formats=_list(options["format"]), status=_list(options["status"]),
                tasks=_list(options["task"]), sources=_list(options["source"]),
                origins=_list(options["origin"]), since=options["since"],
                min_agreement=options["min_agreement"], image_size=options["image_size"],
                seed=options["seed"],
            )
        except ExportError as exc:
            raise CommandError(str(exc)) from None
        check_out(options["out"])
        with tqdm(desc="Exporting", unit=" chains", disable=options["verbosity"] == 0, file=self.stderr) as bar:

            def progress(done: int, total: int, message: str) -> None:
                bar.total = total
                bar.n = done
                bar.set_postfix_str(message, refresh=False)
                bar.refresh()

            try:
                snapshot = export(export_options, options["out"], progress=progress)
            except ExportError as exc:
                raise CommandError(str(exc)) from None
            except OSError as exc:  # the disk filled up, the folder went away: the row says failed
                raise CommandError(f"Export failed writing to {options['out']}: {exc}") from None
        counts = snapshot.counts
        rows = ", ".join(f"{fmt} {sum(split.values())}" for fmt, split in counts["rows"].items())
        self.stdout.write(
            f"Exported snapshot v{snapshot.number}: {counts['chains']} chains, {counts['images']} images "
            f"({rows} rows) to {snapshot.path}"
        )
