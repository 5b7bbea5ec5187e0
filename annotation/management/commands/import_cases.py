from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotation.importing import import_cases
from annotation.models import Chain


class Command(BaseCommand):
    help = "Import RadRBench-style case records (JSONL or JSON) and their images."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file", type=Path, help="JSONL (one case a line) or a JSON array")
        parser.add_argument("--images", type=Path, help="Folder the records' image_path entries resolve under")
        parser.add_argument("--source", default=None, help="Source name (default: the file's stem)")
        parser.add_argument("--origin", default=Chain.Origin.MINED_LLM, choices=Chain.Origin.values,
                            help="Origin of the chains in the file (default: mined_llm)")

    def handle(self, *args: Any, file: Path, images: Path | None, source: str | None, origin: str, **options: Any) -> None:
        if file.is_dir():
            raise CommandError(f"{file} is a folder: give the JSONL or JSON file in it")
        if not file.is_file():
            raise CommandError(f"{file}: no such file")
        try:
            file.open("rb").close()
        except OSError as exc:  # a file this user may not read
            raise CommandError(f"{file}: cannot read it ({exc.strerror or exc})") from None
        if images is not None and images.exists() and not images.is_dir():
            raise CommandError(f"--images {images} is a file: give the folder the images are in")
        if images is not None and not images.is_dir():
            raise CommandError(f"--images {images}: no such folder")
        with tqdm(desc="Reading cases", unit=" cases", disable=options["verbosity"] == 0, file=self.stderr) as bar:
            try:
                result = import_cases(file, source=source or file.stem, image_dir=images, origin=origin, progress=bar.update)
            except ValueError as exc:  # a source name the database cannot hold
                raise CommandError(f"{exc} (name one with --source)") from None
        for problem in result.problems[:20]:
            self.stderr.write(f"{problem.kind}: {problem}")
        if len(result.problems) > 20:
            self.stderr.write(f"... and {len(result.problems) - 20} more in the report")
        self.stdout.write(result.summary())
        if result.rejected:
            raise CommandError(f"{result.rejected} records rejected", returncode=1)
