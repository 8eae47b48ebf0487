"""Clean settings errors: what is wrong, where (variable, file:line, key) and the fix.

``load_settings`` calls these before and after pydantic validates, so a newcomer sees
``hotline.yaml:3: unknown setting 'intent_treshold' (did you mean 'intent_threshold'?)``
instead of a 47-line traceback. Bad settings are bad input: the CLI exits with code 2.
"""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

ENV_PREFIX = "HOTLINE_"
# HOTLINE_* variables read by tools rather than by Settings
OTHER_ENV_VARS = frozenset({"HOTLINE_CONFIG", "HOTLINE_PG_BIN"})
TYPO_CUTOFF = 0.8  # an unknown name this close to a setting is refused as a typo


class SettingsError(ValueError):
    """A setting Hotline cannot use; the message says which and how to fix it."""


def _fields() -> list[str]:
    from app.settings import Settings

    return list(Settings.model_fields)


def did_you_mean(name: str, choices: list[str], cutoff: float = 0.6) -> str:
    found = difflib.get_close_matches(name, choices, n=1, cutoff=cutoff)
    return f" (did you mean {found[0]!r}?)" if found else ""


def check_yaml(path: Path, origin: str) -> dict[str, int]:
    """Parse the settings file; return key -> line. Raise ``SettingsError`` for a missing
    file, a YAML syntax error, a document that is not a mapping, or an unknown key."""
    if path.is_dir():
        raise SettingsError(f"settings file {path} (from {origin}) is a folder, not a YAML file")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SettingsError(f"settings file not found: {path} (from {origin})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"cannot read settings file {path} (from {origin}): {exc}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise SettingsError(f"{where}: YAML syntax error: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path}: YAML syntax error: {exc}") from None
    if root is None:
        return {}
    if not isinstance(root, yaml.MappingNode):
        raise SettingsError(f"{path}:{root.start_mark.line + 1}: a settings file is a mapping "
                            "of setting: value (e.g. `port: 9000`)")
    fields = _fields()
    lines: dict[str, int] = {}
    for key_node, _ in root.value:
        key, line = str(key_node.value), key_node.start_mark.line + 1
        if key not in fields:
            raise SettingsError(f"{path}:{line}: unknown setting {key!r}"
                                f"{did_you_mean(key, fields)}; see app/settings.py")
        lines[key] = line
    return lines


def check_env(environ: Mapping[str, str]) -> list[str]:
    """Refuse a HOTLINE_* variable that is a typo of a setting; warn (stderr) about other
    unknown ones. Returns the warnings."""
    fields = _fields()
    names = [ENV_PREFIX + f.upper() for f in fields]
    warned: list[str] = []
    for var in sorted(environ):
        if not var.startswith(ENV_PREFIX) or var in OTHER_ENV_VARS:
            continue
        if var in names or any(var.startswith(n + "__") for n in names):
            continue
        close = difflib.get_close_matches(var, names, n=1, cutoff=TYPO_CUTOFF)
        if close:
            raise SettingsError(f"environment variable {var} is not a setting (did you mean "
                                f"{close[0]}?); rename or unset it")
        message = f"warning: environment variable {var} is not a Hotline setting; ignored"
        print(message, file=sys.stderr)
        warned.append(message)
    return warned


def _env_var(field: str, environ: Mapping[str, str]) -> str | None:
    var = ENV_PREFIX + field.upper()
    if var in environ:
        return var
    return next((v for v in sorted(environ) if v.startswith(var + "__")), None)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def explain(exc: ValidationError, path: Path | None, yaml_lines: dict[str, int],
            environ: Mapping[str, str]) -> SettingsError:
    """One line per invalid setting, naming where its value came from."""
    out: list[str] = []
    for err in exc.errors():
        loc = [str(x) for x in err["loc"]]
        field = loc[0] if loc else "?"
        key = ".".join(loc)
        msg = str(err["msg"]).removeprefix("Value error, ")
        var = _env_var(field, environ)
        if err["type"] == "extra_forbidden":
            out.append(f"unknown setting {key!r}{did_you_mean(field, _fields())}")
        elif var is not None:
            out.append(f"{var}={environ[var]!r}: {msg}")
        elif path is not None and field in yaml_lines:
            out.append(f"{path}:{yaml_lines[field]}: {key}: {msg} (got {_short(err['input'])})")
        else:
            out.append(f"setting {key}: {msg} (got {_short(err['input'])})")
    return SettingsError("; ".join(out) if len(out) == 1 else "\n".join(out))


def explain_source_error(exc: Exception, environ: Mapping[str, str]) -> SettingsError:
    """pydantic-settings could not parse an environment value (a mapping or list setting
    takes JSON)."""
    found = re.search(r'field "([a-z_]+)"', str(exc))
    field = found.group(1) if found else "?"
    var = _env_var(field, environ) or ENV_PREFIX + field.upper()
    return SettingsError(
        f"{var}={environ.get(var, '')!r}: not valid JSON; this setting takes JSON, e.g. "
        f"{var}='{{\"zh\": \"...\"}}' (or set {field} in the YAML file)"
    )
