"""``posttrain version create|list|show|diff``, ``posttrain rollback`` and ``posttrain
lineage``: cut, inspect and trace corpus versions."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table as RichTable

from posttrain.cli._app import HomeOption, app, console, open_warehouse
from posttrain.platform.errors import ConfigError, VersionError

if TYPE_CHECKING:
    from posttrain.platform.version_stats import Breakdown
    from posttrain.platform.versions import CorpusVersion

version_app = typer.Typer(
    name="version",
    help=(
        "Cut, list, show and compare corpus versions.\n\n"
        "A version tags every table of a corpus at one snapshot each (no data is copied) "
        "and is recorded in lineage.corpus_versions; read it back as TABLE@VERSION.\n\n"
        "[bold]Example:[/] posttrain version create sft --as v3"
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(version_app)

LicensePolicyOption = Annotated[
    Path | None,
    typer.Option(
        "--license-policy",
        help="YAML with forbidden: [...] and forbidden_together: [[A, B], ...] licenses.",
        exists=True,
        dir_okay=False,
    ),
]


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


@version_app.command("create")
def create(
    corpus: Annotated[str, typer.Argument(help="Corpus name, e.g. sft.")],
    name: Annotated[str, typer.Option("--as", help="Version name, e.g. v3.")],
    by: Annotated[str | None, typer.Option("--by", help="Who cuts it (default: $USER).")] = None,
    license_policy: LicensePolicyOption = None,
    home: HomeOption = None,
) -> None:
    """Tag every table of CORPUS at its current snapshot and record the version."""
    from posttrain.platform.corpora import corpus as get_corpus
    from posttrain.platform.provenance import LicensePolicy, corpus_licenses
    from posttrain.platform.versions import create_version

    warehouse = open_warehouse(home)
    spec = get_corpus(corpus)
    pinned = warehouse.pin(*spec.tables)
    if license_policy is not None:
        policy = LicensePolicy.from_file(license_policy)
        counts = corpus_licenses(warehouse, pinned)
        broken = policy.violations(set(counts))
        if broken:
            raise VersionError(
                f"refusing to version {corpus}: {'; '.join(broken)} ({license_policy}); "
                f"rows per license: {dict(counts.most_common())}"
            )
    version = create_version(warehouse, corpus, name, created_by=by, pinned=pinned)
    console.print(f"Created {corpus} version {name} (tag {version.ref}):")
    console.print(_snapshots_view(version))


def _snapshots_view(version: CorpusVersion) -> RichTable:
    view = RichTable(header_style="bold")
    for column in ("table", "snapshot", "config hash"):
        view.add_column(column)
    for table, snapshot_id in sorted(version.snapshots.items()):
        view.add_row(table, str(snapshot_id or "-"), version.config_hashes.get(table) or "-")
    return view


@version_app.command("list")
def list_versions(
    corpus: Annotated[str | None, typer.Argument(help="Only this corpus.")] = None,
    events: Annotated[
        bool, typer.Option("--events", help="Every event, rollbacks and recuts included.")
    ] = False,
    home: HomeOption = None,
) -> None:
    """The versions of every corpus (or of CORPUS), oldest first."""
    from posttrain.platform import versions as v

    warehouse = open_warehouse(home)
    found = v.events(warehouse) if events else v.versions(warehouse, corpus)
    if corpus is not None:
        found = [e for e in found if e.corpus == corpus]
    if not found:
        console.print("No versions yet. Cut one with `posttrain version create sft --as v1`.")
        return
    view = RichTable(header_style="bold")
    for column in ("event", "corpus", "version", "tables", "by", "at (UTC)"):
        view.add_column(column)
    for event in found:
        tables = ", ".join(f"{t}@{s or '-'}" for t, s in sorted(event.snapshots.items()))
        view.add_row(
            event.event,
            event.corpus or "-",
            event.version or "-",
            tables,
            event.created_by or "-",
            _when(event.created_at),
        )
    console.print(view)


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{k}: {n}" for k, n in counter.most_common()) or "-"


@version_app.command("show")
def show_version(
    corpus: Annotated[str, typer.Argument(help="Corpus name.")],
    name: Annotated[str, typer.Argument(help="Version name.")],
    home: HomeOption = None,
) -> None:
    """A version's snapshots, who cut it, and its rows per table, source, license, reason."""
    from posttrain.platform.version_stats import version_summary
    from posttrain.platform.versions import get_version

    warehouse = open_warehouse(home)
    version = get_version(warehouse, corpus, name)
    console.print(
        f"{corpus} {name}: created by {version.created_by} at {_when(version.created_at)} "
        f"UTC, code {version.code_version}, outcome cut-off {_when(version.outcome_cutoff)}"
        f", outcomes {version.outcomes_included or '-'}"
    )
    console.print(_snapshots_view(version))
    view = RichTable(header_style="bold")
    for column in ("table", "rows", "by source", "by license", "by reason"):
        view.add_column(column, overflow="fold")
    for table, breakdown in version_summary(warehouse, version).items():
        view.add_row(table, str(breakdown.rows), *_by(breakdown))
    console.print(view)


def _by(breakdown: Breakdown) -> list[str]:
    return [
        _counts(breakdown.by[c]) if c in breakdown.by else "-"
        for c in ("source", "license", "reason")
    ]


@version_app.command("diff")
def diff(
    corpus: Annotated[str, typer.Argument(help="Corpus name.")],
    old: Annotated[str, typer.Argument(help="The older version, e.g. v2.")],
    new: Annotated[str, typer.Argument(help="The newer version, e.g. v3.")],
    home: HomeOption = None,
) -> None:
    """Rows added and removed per table (matched by key), by source, license and reason."""
    from posttrain.platform.version_stats import diff_versions
    from posttrain.platform.versions import get_version

    warehouse = open_warehouse(home)
    before, after = get_version(warehouse, corpus, old), get_version(warehouse, corpus, new)
    view = RichTable(header_style="bold", title=f"{corpus}: {old} → {new}")
    for column in ("table", "change", "rows", "by source", "by license", "by reason"):
        view.add_column(column, overflow="fold")
    for change in diff_versions(warehouse, before, after):
        view.add_row(change.table, "added", f"+{change.added.rows}", *_by(change.added))
        view.add_row("", "removed", f"-{change.removed.rows}", *_by(change.removed))
    console.print(view)


@app.command()
def rollback(
    table: Annotated[str, typer.Argument(help="Table whose main to move back, e.g. gold.sft.")],
    to: Annotated[str, typer.Option("--to", help="A version (v2), snapshot id, tag or branch.")],
    by: Annotated[str | None, typer.Option("--by", help="Who (default: $USER).")] = None,
    home: HomeOption = None,
) -> None:
    """Move TABLE's main back to an earlier snapshot (no data rewritten); recorded as an
    event in lineage.corpus_versions."""
    from posttrain.platform.versions import rollback as do_rollback

    event = do_rollback(open_warehouse(home), table, to, created_by=by)
    before = event.previous_snapshots.get(table)
    console.print(
        f"{table}: main moved from snapshot {before or '-'} to {event.snapshots[table]} ({to})."
    )


@app.command()
def lineage(
    spec: Annotated[
        str,
        typer.Argument(help="TABLE, TABLE@REF (e.g. gold.sft@v3) or checkpoint:ID."),
    ],
    licenses: Annotated[
        bool, typer.Option("--licenses", help="Only the rows per license.")
    ] = False,
    license_policy: LicensePolicyOption = None,
    home: HomeOption = None,
) -> None:
    """The snapshot chain of TABLE@REF down to bronze, its source files and licenses; for
    checkpoint:ID, the chain checkpoint → experiment → corpora → snapshots → bronze."""
    from posttrain.platform.provenance import LicensePolicy
    from posttrain.platform.provenance import lineage as trace

    if spec.startswith("checkpoint:"):
        _checkpoint_lineage(spec, licenses, license_policy, home)
        return
    found = trace(open_warehouse(home), spec)
    if not licenses:
        console.print(
            f"{found.table}@{found.snapshot_id or '-'}: {found.rows} rows, "
            f"{found.records} records ({found.records_in_bronze} found in bronze)"
        )
        for link in found.chain:
            indent = "  " * link.depth
            console.print(f"{indent}← {link.table}@{link.snapshot_id or '-'} {link.stage}")
        _counter_table("source file", found.by_source_uri)
        _counter_table("source", found.by_source)
    _counter_table("license", found.by_license)
    if license_policy is not None:
        broken = LicensePolicy.from_file(license_policy).violations(set(found.by_license))
        if broken:
            raise ConfigError(f"{spec}: {'; '.join(broken)} ({license_policy})")


def _counter_table(label: str, counts: Counter[str]) -> None:
    view = RichTable(header_style="bold")
    view.add_column(label, overflow="fold")
    view.add_column("records", justify="right")
    for key, n in counts.most_common():
        view.add_row(key, str(n))
    view.add_row("[bold]total[/]", str(sum(counts.values())))
    console.print(view)


def _checkpoint_lineage(
    spec: str, licenses: bool, license_policy: Path | None, home: Path | None
) -> None:
    from posttrain.platform.experiments.trace import trace_checkpoint
    from posttrain.platform.provenance import LicensePolicy

    found = trace_checkpoint(open_warehouse(home), spec)
    checkpoint, manifest = found.checkpoint, found.manifest
    if not licenses:
        console.print(
            f"checkpoint {checkpoint.checkpoint_id}: step {checkpoint.step}, "
            f"{checkpoint.examples} examples (stream sha256 {checkpoint.stream_digest[:16]}), "
            f"{checkpoint.path}"
        )
        console.print(
            f"← experiment {manifest.experiment_id} ({manifest.name}, {manifest.trainer} on "
            f"{manifest.base_model}), manifest {manifest.manifest_id}, config hash "
            f"{manifest.config_hash}, code {manifest.code_version}"
        )
        for corpus in found.corpora:
            trace = corpus.provenance
            console.print(
                f"  ← corpus {corpus.ref} = {corpus.table}@{corpus.snapshot_id}: "
                f"{trace.rows} rows, {trace.records} records "
                f"({trace.records_in_bronze} found in bronze)"
            )
            for link in trace.chain[1:]:
                indent = "  " * (link.depth + 1)
                console.print(f"  {indent}← {link.table}@{link.snapshot_id or '-'} {link.stage}")
        _counter_table("source", found.by_source)
    _counter_table("license", found.by_license)
    if license_policy is not None:
        broken = LicensePolicy.from_file(license_policy).violations(set(found.by_license))
        if broken:
            raise ConfigError(f"{spec}: {'; '.join(broken)} ({license_policy})")
