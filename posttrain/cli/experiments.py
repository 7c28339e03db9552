"""``posttrain experiment validate|plan|launch|show``: experiments from config files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table as RichTable

from posttrain.cli._app import HomeOption, app, console, err_console, open_warehouse

if TYPE_CHECKING:
    from posttrain.platform.experiments.manifest import Manifest
    from posttrain.platform.experiments.plan import Plan
    from posttrain.platform.warehouse import Warehouse

experiment_app = typer.Typer(
    name="experiment",
    help=(
        "Validate, plan, launch and show experiments written as config files.\n\n"
        "An experiment file (experiments/NAME.yaml) names the base model, the corpora to "
        "blend (gold.sft@v3, a filtered snapshot, weights), sequence length and packing, the "
        "trainer (sft, dpo, grpo) and its settings, eval suites and a seed. `launch` freezes "
        "the exact snapshot ids in a manifest (lineage.experiments) before any compute, then "
        "trains with TRL and registers the checkpoint (lineage.checkpoints).\n\n"
        "[bold]Example:[/] posttrain experiment plan experiments/sft-tiny.yaml"
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(experiment_app)

FileArgument = Annotated[
    Path, typer.Argument(help="An experiment file, e.g. experiments/sft-tiny.yaml.")
]


def _problems_exit(exc: Exception) -> typer.Exit:
    # One line per problem (file, line, key, what is wrong), then a non-zero status.
    for line in str(exc).splitlines():
        err_console.print(f"[bold red]error:[/] {escape(line)}", soft_wrap=True)
    return typer.Exit(2)


@experiment_app.command("validate")
def validate(
    files: Annotated[list[Path], typer.Argument(help="Experiment files to check.")],
    offline: Annotated[
        bool,
        typer.Option("--offline", help="Check the files alone, not their tables and versions."),
    ] = False,
    home: HomeOption = None,
) -> None:
    """Check experiment files: keys, types, weights, trainer settings (against TRL's config
    class), eval suites and, unless --offline, that every table and version exists."""
    from posttrain.platform.experiments.config import ExperimentConfigError
    from posttrain.platform.experiments.launch import validate_file

    warehouse = None if offline else open_warehouse(home)
    failed: list[Exception] = []
    for path in files:
        try:
            parsed, plan = validate_file(warehouse, path)
        except ExperimentConfigError as exc:
            failed.append(exc)
            continue
        detail = f", manifest {plan.manifest_id}" if plan is not None else ""
        console.print(f"{path}: ok ({parsed.config.trainer.kind}, {parsed.config.name}{detail})")
    if failed:
        raise _problems_exit(Exception("\n".join(str(exc) for exc in failed)))


def _plan_view(plan: Plan) -> RichTable:
    view = RichTable(header_style="bold", title="blend")
    for column in ("ref", "table", "snapshot id", "weight", "rows"):
        view.add_column(column, overflow="fold")
    for source in plan.sources:
        view.add_row(
            source.ref,
            source.table,
            str(source.snapshot_id),
            f"{source.weight:g}",
            str(source.rows if source.rows is not None else "-"),
        )
    return view


@experiment_app.command("plan")
def plan(
    file: FileArgument,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    home: HomeOption = None,
) -> None:
    """What `launch` would run: the trainer, the model and the exact snapshot ids."""
    from posttrain.platform.experiments.config import ExperimentConfigError
    from posttrain.platform.experiments.launch import validate_file
    from posttrain.platform.experiments.plan import describe

    try:
        _, found = validate_file(open_warehouse(home), file)
    except ExperimentConfigError as exc:
        raise _problems_exit(exc) from None
    assert found is not None
    if as_json:
        print(json.dumps(describe(found), indent=2, sort_keys=True))
        return
    config = found.config
    console.print(
        f"[bold]{config.name}[/]: {config.trainer.kind} on {config.model.base} "
        f"(tokenizer {config.model.tokenizer_name}), seq_length {config.data.seq_length}, "
        f"packing {'on' if config.data.packing else 'off'}, seed {config.seed}"
    )
    console.print(f"manifest {found.manifest_id}, config hash {config.config_hash()}")
    console.print(_plan_view(found))
    settings = json.dumps(config.trainer.settings, sort_keys=True)
    console.print(f"trainer settings: {settings}")
    console.print(f"evals: {', '.join(config.evals) or 'none'}")


@experiment_app.command("launch")
def launch(
    file: Annotated[
        Path | None, typer.Argument(help="The experiment file to launch.", show_default=False)
    ] = None,
    manifest: Annotated[
        str | None,
        typer.Option(
            "--manifest",
            help="Re-run a recorded launch (experiment id or manifest id): same config, "
            "same pinned snapshots, the same data stream byte for byte.",
        ),
    ] = None,
    changed_since: Annotated[
        str | None,
        typer.Option(
            "--changed-since",
            help="Launch every experiment file added or changed since this git ref (CI).",
        ),
    ] = None,
    folder: Annotated[
        Path, typer.Option("--dir", help="Where experiment files live (with --changed-since).")
    ] = Path("experiments"),
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", help="Checkpoint folder (default: <home>/checkpoints).", show_default=False
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Record nothing, train nothing: list what would run.")
    ] = False,
    home: HomeOption = None,
) -> None:
    """Freeze the manifest (lineage.experiments) before any compute, train with TRL,
    register the checkpoint (lineage.checkpoints), run the eval suites."""
    from posttrain.platform.experiments.config import ExperimentConfigError
    from posttrain.platform.experiments.launch import changed_experiments

    chosen = [file is not None, manifest is not None, changed_since is not None]
    if sum(chosen) != 1:
        raise typer.BadParameter("give exactly one of FILE, --manifest ID or --changed-since REF")
    warehouse = open_warehouse(home)
    root = output or _home(home) / "checkpoints"
    if changed_since is not None:
        files = changed_experiments(folder, changed_since)
        console.print(
            f"{len(files)} experiment file(s) added or changed since {changed_since}: "
            + (", ".join(str(f) for f in files) or "nothing to launch")
        )
    else:
        files = [file] if file is not None else []
    try:
        if manifest is not None:
            _launch_one(warehouse, None, manifest, root, dry_run, _home(home))
        for path in files:
            _launch_one(warehouse, path, None, root, dry_run, _home(home))
    except ExperimentConfigError as exc:
        raise _problems_exit(exc) from None


def _home(home: Path | None) -> Path:
    from posttrain.platform.settings import posttrain_home

    return home.expanduser().resolve() if home is not None else posttrain_home()


def _launch_one(
    warehouse: Warehouse,
    path: Path | None,
    manifest: str | None,
    root: Path,
    dry_run: bool,
    home: Path,
) -> None:
    from posttrain.platform.evals.cache import CACHE_FILE, EvalCache
    from posttrain.platform.experiments.launch import execute, prepare, validate_file

    if dry_run:
        if path is not None:
            _, found = validate_file(warehouse, path)
            assert found is not None
            console.print(f"would launch {path} (manifest {found.manifest_id})")
        else:
            console.print(f"would re-run manifest {manifest}")
        return
    frozen = prepare(warehouse, path=path, manifest=manifest)
    console.print(
        f"experiment {frozen.experiment_id}: manifest {frozen.manifest_id} recorded in "
        f"lineage.experiments ({', '.join(f'{r} → {s}' for r, s in frozen.snapshots.items())})"
    )
    # The eval cache of the home this launch writes to, not of the current directory.
    cache = EvalCache(home / CACHE_FILE)
    result = execute(
        warehouse, frozen, root, log=lambda line: console.print(escape(line)), eval_cache=cache
    )
    console.print(
        f"checkpoint {result.checkpoint.checkpoint_id} (step {result.checkpoint.step}, "
        f"{result.checkpoint.examples} examples, stream {result.checkpoint.stream_digest[:16]})"
    )


@experiment_app.command("show")
def show(
    ident: Annotated[
        str, typer.Argument(help="An experiment id, a manifest id, or an experiment file.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
    home: HomeOption = None,
) -> None:
    """A launch's manifest (config hash, snapshot ids, code and package versions) and its
    checkpoints; for a file, its latest launch."""
    from posttrain.platform.experiments.config import load_experiment
    from posttrain.platform.experiments.manifest import (
        ManifestNotFoundError,
        checkpoints,
        find_manifest,
        manifests,
    )

    warehouse = open_warehouse(home)
    if Path(ident).is_file():
        name = load_experiment(Path(ident), check_trainer=False).config.name
        launches = [m for m in manifests(warehouse) if m.name == name]
        if not launches:
            raise ManifestNotFoundError(f"{ident}: experiment {name!r} was never launched")
        found = launches[-1]
    else:
        found = find_manifest(warehouse, ident)
    registered = checkpoints(warehouse, found.experiment_id)
    if as_json:
        data = found.as_dict()
        data["checkpoints"] = [
            {**c.__dict__, "created_at": c.created_at.isoformat() if c.created_at else None}
            for c in registered
        ]
        print(json.dumps(data, indent=2, sort_keys=True, default=str))
        return
    _print_manifest(found)
    if not registered:
        console.print("checkpoints: none (still running, or the training failed)")
        return
    view = RichTable(header_style="bold", title="checkpoints")
    for column in ("checkpoint", "step", "examples", "stream sha256", "path"):
        view.add_column(column, overflow="fold")
    for c in registered:
        view.add_row(c.checkpoint_id, str(c.step), str(c.examples), c.stream_digest[:16], c.path)
    console.print(view)


def _print_manifest(found: Manifest) -> None:
    when = found.launched_at.strftime("%Y-%m-%d %H:%M:%S") if found.launched_at else "-"
    console.print(
        f"[bold]{found.experiment_id}[/] ({found.name}): manifest {found.manifest_id}, "
        f"config hash {found.config_hash}, {found.trainer} on {found.base_model}, seed "
        f"{found.seed}, launched by {found.launched_by} at {when} UTC"
        + (f", replay of {found.replay_of}" if found.replay_of else "")
    )
    console.print(f"file: {found.config_path or '-'}")
    console.print(f"code: {found.code_version} (git {found.git_sha or '-'})")
    packages = ", ".join(f"{k} {v}" for k, v in sorted(found.package_versions.items()))
    console.print(f"packages: {packages}")
    view = RichTable(header_style="bold", title="corpora")
    for column in ("ref", "table", "snapshot id"):
        view.add_column(column, overflow="fold")
    for ref, table, snapshot_id in found.pinned_sources():
        view.add_row(ref, table, str(snapshot_id))
    console.print(view)
    console.print(f"evals: {', '.join(found.eval_suites) or 'none'}")


@experiment_app.command("list")
def list_experiments(home: HomeOption = None) -> None:
    """Every launch recorded in lineage.experiments, oldest first."""
    from posttrain.platform.experiments.manifest import checkpoints, manifests

    warehouse = open_warehouse(home)
    found = manifests(warehouse)
    if not found:
        console.print("No experiments yet: `posttrain experiment launch experiments/NAME.yaml`.")
        return
    done = {c.experiment_id for c in checkpoints(warehouse)}
    view = RichTable(header_style="bold")
    for column in ("experiment", "manifest", "trainer", "corpora", "checkpoint", "at (UTC)"):
        view.add_column(column, overflow="fold")
    for m in found:
        view.add_row(
            m.experiment_id,
            m.manifest_id,
            m.trainer,
            ", ".join(f"{r} → {s}" for r, s in m.snapshots.items()),
            "yes" if m.experiment_id in done else "no",
            m.launched_at.strftime("%Y-%m-%d %H:%M:%S") if m.launched_at else "-",
        )
    console.print(view)
