"""`hotline intents ...`: train, eval, test, predict.

``--data DIR`` (an intents folder) and ``--model DIR`` (a model root) make any data set
trainable and evaluable the same way as the demo hotline's.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from app.console import console

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

if TYPE_CHECKING:
    from app.nlu.service import NluService

intents_app = typer.Typer(no_args_is_help=True)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML settings file (HOTLINE_CONFIG)")
]
DataOpt = Annotated[
    Path | None, typer.Option("--data", help="intents folder (default: settings.intents_dir)")
]
ModelOpt = Annotated[
    Path | None, typer.Option("--model", help="model root (default: models/intents)")
]

out = console()
err = console(stderr=True)


def _service(config: Path | None, data: Path | None, model: Path | None) -> NluService:
    from app.nlu.intents import IntentFileError
    from app.nlu.service import NluService
    from app.seed import seed_intent_model
    from app.settings import load_settings

    settings = load_settings(config)
    if model is None and data is None:
        seed_intent_model(settings)
    try:
        return NluService(settings, data_dir=data, model_dir=model)
    except IntentFileError as exc:
        err.print(f"[red]error:[/red] intent data: {exc}", highlight=False)
        raise typer.Exit(2) from exc


def _ready(
    config: Path | None, data: Path | None, model: Path | None, force: bool = False,
    train_if_stale: bool = True,
) -> tuple[NluService, Any]:
    """A loaded ``NluService`` and its classifier, trained first when missing or stale
    (``train_if_stale`` False: refuse, naming the command that trains)."""
    service = _service(config, data, model)
    reason = service.stale_reason()
    if reason is not None and not force and not train_if_stale:
        err.print(f"[red]error:[/red] the intent model cannot serve the current intent data "
                  f"({reason}); train it first: hotline intents train", highlight=False)
        raise typer.Exit(1)
    if reason is not None or force:
        from app.nlu.intents import check_trainable

        check_trainable(service.catalog)  # a one-class locale: refused before any work
        err.print(f"training a new intent model ({reason or 'requested'}); this takes a "
                  "minute", highlight=False)
        folder = service.ensure_trained(progress=True) if not force else _force_train(service)
        err.print(f"model written to {folder}")
    problem = service.load()
    if problem is not None:
        err.print(f"[red]{problem}[/red]")
        raise typer.Exit(1)
    return service, service.classifier


def _force_train(service: NluService) -> Path:
    from app.nlu.pipeline import train_folder
    from app.nlu.service import RichProgress

    with RichProgress() as bar:
        return train_folder(service.data_dir, service.model_dir, service.settings,
                            progress=bar, catalog=service.catalog)


@intents_app.command()
def train(config: ConfigOpt = None, data: DataOpt = None, model: ModelOpt = None) -> None:
    """Train the intent classifier on an intents folder; write a new model version."""
    _, classifier = _ready(config, data, model, force=True)
    manifest = classifier.manifest
    table = Table(title=f"intent model {manifest['version']}")
    for col in ("locale", "examples", "classes", "cv accuracy", "temperature", "seconds"):
        table.add_column(col)
    for loc, m in manifest["metrics"].items():
        table.add_row(loc, str(m["n_examples"]), str(m["n_classes"]),
                      str(m.get("cv_accuracy", "-")), str(m["temperature"]),
                      str(m["train_seconds"]))
    out.print(table)
    out.print(f"total training time {manifest['train_seconds']} s")


@intents_app.command("eval")
def eval_cmd(
    test_file: Annotated[list[Path], typer.Option("--test-file", help="eval YAML (repeatable)")],
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    report_dir: Annotated[Path | None, typer.Option("--report-dir", help="PNG reports")] = None,
    noise: Annotated[list[float] | None, typer.Option(
        "--noise", help="also score a noisy copy at this rate (repeatable; default 0.1; "
        "0 for clean only)")] = None,
    seed: Annotated[int, typer.Option("--seed", help="noise seed")] = 0,
    config: ConfigOpt = None, data: DataOpt = None, model: ModelOpt = None,
) -> None:
    """Evaluate on a test file: in-scope accuracy, oos recall, macro F1 per locale, clean
    and beside it on noisy copies (``hotline intents noise``, same procedure)."""
    from app.nlu.evaluate import EvalFileError, evaluate, load_eval_files, summary, write_report
    from app.nlu.noise import noisy_evalset

    try:
        evalset = load_eval_files(test_file)
    except (EvalFileError, OSError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    rates = [r for r in (noise if noise is not None else [0.1]) if r > 0]
    if any(r > 1 for r in rates):
        err.print("[red]--noise must be within [0, 1][/red]")
        raise typer.Exit(2)
    service, classifier = _ready(config, data, model)
    results = evaluate(classifier, evalset)
    figures = summary(results)
    figures["noisy"] = {
        f"{r:g}": summary(evaluate(classifier, noisy_evalset(evalset, r, seed)))
        for r in rates
    }
    if as_json:
        if report_dir is not None:
            figures["reports"] = [str(p) for p in write_report(results, report_dir)]
        sys.stdout.write(json.dumps(figures) + "\n")
        return
    _print_summary(figures, classifier.version, seed)
    _print_confusions(results)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    folder = report_dir or service.settings.data_dir / "reports" / f"intents-{stamp}"
    for path in write_report(results, folder):
        out.print(f"report: {path}")


def _print_summary(figures: dict[str, Any], version: str, seed: int = 0) -> None:
    table = Table(title=f"intent evaluation (model {version})")
    for col in ("locale", "text", "in-scope accuracy", "oos recall", "macro F1", "n"):
        table.add_column(col, justify="right")
    variants = [("clean", figures)] + [
        (f"noise {rate} (seed {seed})", f) for rate, f in figures.get("noisy", {}).items()
    ]
    for loc in [*figures["by_locale"], "overall"]:
        for name, f in variants:
            m = f["overall"] if loc == "overall" else f["by_locale"][loc]
            table.add_row(loc, name, f"{m['in_scope_accuracy']:.3f}", f"{m['oos_recall']:.3f}",
                          f"{m['macro_f1']:.3f}", str(m["n"]))
    out.print(table)


def _print_confusions(results: dict[str, Any]) -> None:
    table = Table(title="worst confusions (gold -> predicted)")
    for col in ("locale", "gold", "predicted", "count"):
        table.add_column(col)
    for loc, ev in results.items():
        for gold, pred, n in ev.confusions(8):
            table.add_row(loc, gold, pred, str(n))
    out.print(table)


@intents_app.command()
def test(config: ConfigOpt = None, data: DataOpt = None, model: ModelOpt = None) -> None:
    """Run the held-out files; exit 1 if any locale is under the configured thresholds."""
    from app.nlu.evaluate import evaluate, load_eval_files, summary

    service, classifier = _ready(config, data, model)
    files = sorted((service.data_dir / "tests").glob("*.y*ml"))
    if not files:
        err.print(f"[red]no held-out files under {service.data_dir / 'tests'}[/red]")
        raise typer.Exit(1)
    figures = summary(evaluate(classifier, load_eval_files(files)))
    _print_summary(figures, classifier.version)
    s = service.settings
    failures = [
        f"{loc}: {key} {m[key]:.3f} < {floor:.3f}"
        for loc, m in figures["by_locale"].items()
        for key, floor in (("in_scope_accuracy", s.intent_min_accuracy),
                           ("oos_recall", s.intent_min_oos_recall))
        if m[key] < floor
    ]
    for line in failures:
        err.print(f"[red]FAIL[/red] {line}")
    if failures:
        raise typer.Exit(1)
    out.print("[green]held-out evaluation passes the configured thresholds[/green]")


@intents_app.command("noise")
def noise_cmd(
    locale: Annotated[str, typer.Option("--locale", "-l", help="zh or en")],
    rate: Annotated[float, typer.Option("--rate", help="share of characters/words touched")],
    seed: Annotated[int, typer.Option("--seed")] = 0,
    test_file: Annotated[Path | None, typer.Option(
        "--test-file", help="eval YAML (default: <intents>/tests/heldout_<locale>.yaml)")] = None,
    output: Annotated[Path | None, typer.Option("--out", "-o", help="default: stdout")] = None,
    config: ConfigOpt = None, data: DataOpt = None,
) -> None:
    """Write a noisy copy of a test file's locale: homophones, drops, fillers (zh);
    phonetic confusions, deletions, fillers (en). Seeded; see app/nlu/noise.py."""
    import yaml

    from app.nlu.evaluate import EvalFileError, load_eval_file
    from app.nlu.noise import noisy_evalset
    from app.nlu.text import base_locale
    from app.settings import load_settings

    loc = base_locale(locale)
    if not 0.0 <= rate <= 1.0:
        err.print(f"[red]--rate must be within [0, 1], got {rate}[/red]")
        raise typer.Exit(2)
    source = test_file or (data or load_settings(config).intents_dir) / "tests" / (
        f"heldout_{loc}.yaml")
    try:
        evalset = load_eval_file(source)
    except (EvalFileError, OSError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    if loc not in evalset:
        err.print(f"[red]{source}: no {loc!r} section[/red]")
        raise typer.Exit(2)
    noised = noisy_evalset({loc: evalset[loc]}, rate, seed)
    header = (f"# noisy copy of {source.name}: locale {loc}, rate {rate}, seed {seed} "
              f"(hotline intents noise; procedure in app/nlu/noise.py)\n")
    text = header + yaml.safe_dump(noised, allow_unicode=True, sort_keys=False)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {output}")


@intents_app.command()
def predict(
    text: Annotated[str, typer.Argument(help="what the caller said")],
    locale: Annotated[str, typer.Option("--locale", "-l")] = "zh",
    as_json: Annotated[bool, typer.Option("--json", help="one line of plain JSON")] = False,
    config: ConfigOpt = None, data: DataOpt = None, model: ModelOpt = None,
) -> None:
    """Classify one utterance; print intent, ranking, entities, sentiment and the answer."""
    from app.nlu.text import base_locale

    service, classifier = _ready(config, data, model, train_if_stale=False)
    trained = sorted(classifier.locales)
    if base_locale(locale) not in trained:
        from app.settings_check import did_you_mean

        err.print(f"[red]error:[/red] --locale {locale!r}: the intent model knows "
                  f"{', '.join(trained)}{did_you_mean(base_locale(locale), trained)}",
                  highlight=False)
        raise typer.Exit(2)
    found = service.understand(text, locale)
    intent = found.intent.intent
    result: dict[str, Any] = {
        "intent": found.intent.model_dump(),
        "entities": [e.model_dump() for e in found.entities],
        "sentiment": found.sentiment.model_dump(),
        "answer": service.catalog.render_answer(intent, locale, {}) if intent else None,
    }
    if as_json:
        sys.stdout.write(json.dumps(result, ensure_ascii=False, default=str) + "\n")
        return
    out.print_json(json.dumps(result, ensure_ascii=False, default=str))
