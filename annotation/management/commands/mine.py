from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotation.llm_mining import LLMConfig, LLMConfigError, LLMEndpointError
from annotation.mining import mine, parse_tasks
from cxr.mining import TASKS


class Command(BaseCommand):
    help = "Mine questions and reasoning chains from radiology reports (rules, or an LLM with --llm)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--reports", type=Path, required=True,
                            help="JSONL/CSV of reports (report or original_report, optional study_id, patient_id, "
                                 "image_path, prior_study_id), or a MIMIC-CXR-style folder of sNNN.txt reports")
        parser.add_argument("--labels", type=Path, help="Labels CSV: study_id, one column per observation (1, 0, -1, blank), "
                                                        "optional <observation>_progression columns")
        parser.add_argument("--images", type=Path, help="Folder the reports' images resolve under")
        parser.add_argument("--tasks", default=",".join(TASKS), help=f"Comma-separated task types (default: {','.join(TASKS)})")
        parser.add_argument("--llm", action="store_true", help="Write chains with the LLM endpoint (WORKBENCH_LLM_*)")
        parser.add_argument("--llm-base-url", help="OpenAI-compatible base URL (default: WORKBENCH_LLM_BASE_URL)")
        parser.add_argument("--llm-model", help="Model name (default: WORKBENCH_LLM_MODEL)")
        parser.add_argument("--llm-api-key", help="API key (default: WORKBENCH_LLM_API_KEY; prefer the variable)")
        parser.add_argument("--llm-concurrency", type=int, help="Cases in flight at once (default: WORKBENCH_LLM_CONCURRENCY)")
        parser.add_argument("--limit", type=int, help="Mine only the first N reports")
        parser.add_argument("--seed", type=int, default=0, help="Seed for option order and wording (default 0)")
        parser.add_argument("--source", help="Source name (default: the reports file or folder name)")

    def handle(self, *args: Any, **options: Any) -> None:
        reports: Path = options["reports"]
        if not reports.exists():
            raise CommandError(f"--reports {reports}: no such file or folder")
        for name in ("labels",):
            if options[name] is not None and not options[name].is_file():
                raise CommandError(f"--{name} {options[name]}: no such file")
        if options["images"] is not None and not options["images"].is_dir():
            raise CommandError(f"--images {options['images']}: no such folder")
        if options["limit"] is not None and options["limit"] < 1:
            raise CommandError("--limit must be at least 1")
        try:
            tasks = parse_tasks(options["tasks"])
        except ValueError as exc:
            raise CommandError(f"--tasks: {exc}") from None
        config = None
        if options["llm"]:
            try:
                config = LLMConfig.from_settings(
                    base_url=options["llm_base_url"], model=options["llm_model"],
                    api_key=options["llm_api_key"], concurrency=options["llm_concurrency"],
                )
            except LLMConfigError as exc:
                raise CommandError(str(exc)) from None
        # The bar writes to the raw stream: Django's wrapper would end every redraw with a newline.
        stream = getattr(self.stderr, "_out", self.stderr)
        with tqdm(unit=" reports", disable=options["verbosity"] == 0, file=stream, delay=0.5) as bar:
            def progress(done: int, total: int, message: str) -> None:
                bar.total = total
                bar.set_description(message, refresh=False)
                bar.update(done - bar.n)

            try:
                result = mine(
                    reports, labels_csv=options["labels"], images_dir=options["images"], tasks=tasks,
                    llm=options["llm"], limit=options["limit"], seed=options["seed"],
                    source=options["source"] or reports.stem or reports.name, progress=progress, llm_config=config,
                )
            except LLMEndpointError as exc:
                raise CommandError(f"LLM endpoint unusable, stopped (what was mined so far is kept): {exc}") from None
        problems = [*result.problems, *result.llm_errors]
        for problem in problems[:20]:
            self.stderr.write(f"{problem.kind}: {problem}")
        if len(problems) > 20:
            self.stderr.write(f"... and {len(problems) - 20} more in the report")
        self.stdout.write(result.summary())
        if result.rejected:
            raise CommandError(f"{result.rejected} inputs rejected", returncode=1)
