"""``posttrain view``: the dataset viewer alone, on 127.0.0.1."""

from __future__ import annotations

from typing import Annotated

import typer

from posttrain.cli._app import HomeOption, app, console


@app.command()
def view(
    host: Annotated[
        str,
        typer.Option(
            help="Address to listen on. The viewer runs in local single-user mode (no "
            "sign-in: whoever reaches the port is you), so keep it on 127.0.0.1; use "
            "`posttrain serve` for workspaces, tokens and roles."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free one).")] = 8765,
    checkpoint: Annotated[
        list[str] | None,
        typer.Option(
            "--checkpoint",
            help="NAME=ID offered for generation, repeatable: ID is transformers:/path/to/model "
            "or openai:http://host:8000/v1#model (adds to viewer.checkpoints in posttrain.yaml).",
        ),
    ] = None,
    home: HomeOption = None,
) -> None:
    """Browse tables, versions and rows in a browser: chat rendering, filters, histograms,
    malformed-content flags, diffs, generation and curation on review branches."""
    import uvicorn

    from posttrain.platform.errors import ConfigError
    from posttrain.platform.settings import load_settings
    from posttrain.viewer.app import create_viewer_app

    settings = load_settings(home)
    checkpoints = dict(settings.viewer.checkpoints)
    for item in checkpoint or []:
        name, sep, ident = item.partition("=")
        if not sep or not name.strip() or not ident.strip():
            raise ConfigError(f"--checkpoint {item!r}: expected NAME=ID, e.g. tiny=transformers:/m")
        checkpoints[name.strip()] = ident.strip()
    viewer = create_viewer_app(settings, checkpoints=checkpoints)
    console.print(f"posttrain viewer on http://{host}:{port}/ (local single-user mode)")
    uvicorn.run(viewer, host=host, port=port, log_level="warning")
