"""What the `inference` commands share about their settings: the error a bad one raises, range
checks for the numeric options, and where the `var/` folder is.

Settings fail closed: a value out of range, an endpoint that is not configured or an empty
``WORKBENCH_VAR_DIR`` stops the command with a message naming the option, never a fallback.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

# The checkout's root: the web app keeps its var/ here too (reasoner_site.settings.BASE_DIR).
REPOSITORY = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """A setting that cannot be used (the command line reports it as a usage error)."""


def option(name: str) -> str:
    """A config field's command-line flag: ``max_retries`` -> ``--max-retries``."""
    return "--" + name.replace("_", "-")


def check_ranges(config: Any) -> None:
    """Raise ConfigError for a number outside its field's ``min``/``max``/``above`` metadata, or
    not finite (``--top-p nan`` would pass every comparison)."""
    for item in dataclasses.fields(config):
        value = getattr(config, item.name)
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{option(item.name)} must be a finite number, not {value}")
        low, high, above = (item.metadata.get(k) for k in ("min", "max", "above"))
        if low is not None and value < low:
            raise ConfigError(f"{option(item.name)} must be at least {low}, not {value}")
        if above is not None and value <= above:
            raise ConfigError(f"{option(item.name)} must be more than {above}, not {value}")
        if high is not None and value > high:
            raise ConfigError(f"{option(item.name)} must be at most {high}, not {value}")


def var_dir() -> Path:
    """``$WORKBENCH_VAR_DIR``, else ``var/`` at the repository root (as the web app has it)."""
    value = os.environ.get("WORKBENCH_VAR_DIR")
    if value is None:
        return REPOSITORY / "var"
    if not value.strip():
        raise ConfigError("WORKBENCH_VAR_DIR is set but empty: unset it or name a folder")
    return Path(value)


def endpoint_url(value: str | None, source: str) -> str:
    """An endpoint's base URL, checked: it must say http:// or https://."""
    if value is None or not value.strip():
        raise ConfigError(f"no endpoint: {source}")
    value = value.strip()
    if not value.startswith(("http://", "https://")):
        raise ConfigError(f"endpoint {value!r} must start with http:// or https://")
    return value
