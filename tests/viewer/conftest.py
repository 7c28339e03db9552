"""One warehouse, one server and one browser for the viewer tests (session scope: the
browser tests share them and stay within their time budget)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from viewer_data import build
from viewer_server import ServerThread

from posttrain.platform.curation import create_branch, fix_record
from posttrain.platform.schemas import TableName
from posttrain.platform.settings import Settings, load_settings
from posttrain.platform.warehouse import Warehouse, WarehouseSettings
from posttrain.viewer.access import WORKSPACE_PROPERTY

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def viewer_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("viewer-home")
    warehouse = Warehouse(WarehouseSettings.local(home))
    build(warehouse)
    create_branch(warehouse, TableName.GOLD_SFT, "review-fix", curator="ana")
    fix_record(
        warehouse,
        TableName.GOLD_SFT,
        "review-fix",
        "ticket-00003",
        {"license": "MIT"},
        curator="ana",
    )
    # A table of another team: only principals of workspace research may open it.
    with warehouse.table(TableName.SILVER_ROLLOUTS).transaction() as transaction:
        transaction.set_properties({WORKSPACE_PROPERTY: "research"})
    return home


@pytest.fixture(scope="session")
def viewer_warehouse(viewer_home: Path) -> Warehouse:
    return Warehouse(WarehouseSettings.local(viewer_home))


@pytest.fixture(scope="session")
def viewer_settings(viewer_home: Path) -> Settings:
    return load_settings(viewer_home)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny random Qwen2 saved with the shipped tokenizer: a real local checkpoint."""
    from tiny_models import tiny_model

    from posttrain.platform.gold.tokenize import load_tokenizer

    folder = tmp_path_factory.mktemp("tiny-checkpoint")
    tokenizer = load_tokenizer("posttrain-chat-8k")
    tiny_model(len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return f"transformers:{folder}"


@pytest.fixture(scope="session")
def viewer_server(viewer_settings: Settings, viewer_warehouse: Warehouse) -> Iterator[ServerThread]:
    """The viewer mounted at /view (local single-user mode, as ``posttrain serve`` mounts
    it) and a second one at /team behind tokens and workspaces."""
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from posttrain.viewer.access import Principal, TokenAccess
    from posttrain.viewer.app import create_viewer_app

    # The generate test adds its tiny checkpoint (torch is slow to load: only it pays).
    local = create_viewer_app(viewer_settings, warehouse=viewer_warehouse, checkpoints={})
    team = create_viewer_app(
        viewer_settings,
        warehouse=viewer_warehouse,
        access=TokenAccess(
            {
                "support-token": Principal("sam", "viewer", frozenset({"support"})),
            }
        ),
        checkpoints={},
    )
    root = Starlette(routes=[Mount("/view", local), Mount("/team", team)])
    with ServerThread(root) as server:
        server.app = local
        yield server


# Module scope: while Playwright's sync API is open it keeps an event loop running in this
# thread, and any later test in the same process that calls asyncio.run() would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"],
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(45_000)
    opened = context.new_page()
    try:
        yield opened
    finally:
        context.close()
