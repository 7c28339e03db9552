"""``posttrain serve``: the capture service (HTTP, OpenAPI at /docs)."""

from __future__ import annotations

from typing import Annotated

import typer

from posttrain.cli._app import HomeOption, app, console


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(help="Interface to listen on; 0.0.0.0 exposes it to the network.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=0, max=65535)] = 8710,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    home: HomeOption = None,
) -> None:
    """Capture agent sessions, turns and outcomes over HTTP into bronze.

    Events are acknowledged once in the fsync'd write-ahead log and land in
    bronze.records / bronze.outcomes in micro-batches (settings: capture: in
    posttrain.yaml). Tokens come from `posttrain workspace token`. API
    documentation: http://HOST:PORT/docs
    """
    import uvicorn

    from posttrain.platform.settings import load_settings
    from posttrain.serve.app import create_app

    settings = load_settings(home)
    console.print(
        f"posttrain serve on http://{host}:{port} (docs: /docs), "
        f"log {settings.capture.wal_path(settings.home)}"
    )
    app = create_app(settings)
    _tune_gc()
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=30,
    )


def _tune_gc() -> None:
    """Keep the cyclic garbage collector off the request path.

    The service imports pyiceberg, pyarrow, pandas and FastAPI: hundreds of thousands of
    long-lived objects that every full collection walks again, while a batch of events
    allocates thousands of short-lived dicts that trigger collections. Freezing what exists
    at start-up and collecting the young generation less often doubled the events handled
    per CPU-second (bench/capture_load.py).
    """
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 50, 1000)
