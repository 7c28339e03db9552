"""The viewer in headless Chromium against a real server and a real warehouse.

Set POSTTRAIN_SCREENSHOTS=1 to also refresh the README's screenshots in docs/.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from viewer_data import HOSTILE
from viewer_server import ServerThread

pytestmark = pytest.mark.slow

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _shot(page: Any, name: str) -> None:
    if os.environ.get("POSTTRAIN_SCREENSHOTS") == "1":
        page.wait_for_function(
            "[...document.querySelectorAll('.lazy')].every(e => e.classList.contains('loaded'))"
        )
        DOCS.mkdir(exist_ok=True)
        page.screenshot(path=str(DOCS / f"viewer-{name}.png"), full_page=False)


def test_a_table_opens_pages_and_filters(page: Any, viewer_server: ServerThread) -> None:
    page.goto(f"{viewer_server.url}/view/")
    page.click("text=gold.sft")
    assert page.locator("article.row").count() == 25
    _shot(page, "table")
    first = page.locator("article.row header a.rowlink").first.inner_text()
    page.click("#next")
    assert "offset=25" in page.url
    assert page.locator("article.row header a.rowlink").first.inner_text() != first
    page.fill("#where", "source = 'math-tutor'")
    page.click("#apply")
    assert page.locator("article.row").count() == 1
    assert "where=source" in page.url
    page.fill("#where", "")
    page.fill("#q", "ZeroDivisionError")
    page.click("#apply")
    rows = page.locator("article.row")
    assert rows.count() >= 1
    assert "zerodivisionerror" in rows.first.inner_text().lower()


def test_a_histogram_bin_filters_the_table(page: Any, viewer_server: ServerThread) -> None:
    page.goto(f"{viewer_server.url}/view/t/gold.sft")
    link = page.locator(".histogram[data-column=source] a.binlink", has_text="math-tutor")
    link.click()
    page.wait_for_url(re.compile(r"where=source"))
    assert page.locator("article.row").count() == 1


def test_a_hostile_row_renders_as_text_and_runs_no_script(
    page: Any, viewer_server: ServerThread
) -> None:
    page.goto(f"{viewer_server.url}/view/t/gold.sft/row?key=planted-hostile")
    assert page.evaluate("window.__pwned") is None
    assert "<script>window.__pwned = 1</script>" in page.locator(".role-user").inner_text()
    assert page.locator(".chat img").count() == 0
    page.goto(f"{viewer_server.url}/view/t/gold.sft?q=pwned")
    assert page.evaluate("window.__pwned") is None
    assert HOSTILE[:20] in page.content().replace("&lt;", "<") or page.locator("article").count()


def test_a_malformed_row_is_flagged_with_counts(page: Any, viewer_server: ServerThread) -> None:
    page.goto(f"{viewer_server.url}/view/t/gold.sft")
    counts = page.locator(".flagcounts")
    counts.locator("a.flaglink", has_text="invalid_json").wait_for()
    counts.locator("a.flaglink", has_text="invalid_json").click()
    page.wait_for_url(re.compile("flagged=invalid_json"))
    row = page.locator("article.row.flagged")
    assert row.count() == 1
    assert "planted-broken-tool-call" in row.inner_text()
    assert "get_weather" in row.locator("ul.flags").inner_text()
    _shot(page, "malformed")
    page.goto(f"{viewer_server.url}/view/flags")
    assert "control_token" in page.locator("table.list").inner_text()


def test_two_versions_diff_with_reasons(page: Any, viewer_server: ServerThread) -> None:
    base = f"{viewer_server.url}/view/t/gold.sft/diff"
    page.goto(f"{base}?old=sft/v1&new=sft/v2&kind=removed")
    assert "removed: 1" in page.locator("#counts").inner_text()
    change = page.locator("article.change-removed")
    assert "ticket-00002" in change.inner_text() and "dedup" in change.inner_text()
    page.click("#counts >> text=added: 1")
    assert "new source math-tutor" in page.locator("article.change-added").inner_text()
    page.goto(f"{base}?old=main&new=review-fix&kind=changed")
    changed = page.locator("article.change-changed")
    assert "ticket-00003" in changed.inner_text() and "fix by ana" in changed.inner_text()
    assert "MIT" in changed.locator(".after").inner_text()
    _shot(page, "diff")


def test_generate_with_a_tiny_local_model_beside_the_stored_answer(
    page: Any, viewer_server: ServerThread, tiny_checkpoint: str
) -> None:
    viewer_server.app.state.viewer.checkpoints["tiny"] = tiny_checkpoint
    page.goto(f"{viewer_server.url}/view/t/gold.sft/row?key=math-1")
    page.click("#generate")
    page.locator("#answer.done").wait_for(timeout=30_000)
    assert "transformers:" in page.locator("#answer").inner_text()
    _shot(page, "generate")


def test_a_flag_lands_on_the_review_branch_and_not_on_main(
    page: Any, viewer_server: ServerThread
) -> None:
    page.goto(f"{viewer_server.url}/view/t/gold.sft/row?key=ticket-00004")
    page.fill("#branch", "review-flags")
    page.fill("#note", "the answer is off-topic")
    page.click("#flag")
    page.wait_for_url(re.compile("ref=review-flags"))
    assert "off-topic" in page.locator("p.note").inner_text()
    page.goto(
        f"{viewer_server.url}/view/t/gold.sft?ref=review-flags&where=record_id = 'ticket-00004'"
    )
    assert page.locator("article.row .note-flag").count() == 1
    page.goto(f"{viewer_server.url}/view/t/gold.sft?where=record_id = 'ticket-00004'")
    assert page.locator("article.row").count() == 1
    assert page.locator("article.row .note-flag").count() == 0


def test_a_dropped_row_is_gone_on_the_branch_and_still_on_main(
    page: Any, viewer_server: ServerThread
) -> None:
    page.goto(f"{viewer_server.url}/view/t/gold.sft/row?key=ticket-00005")
    page.fill("#branch", "review-drop")
    page.click("#drop")
    page.wait_for_url(re.compile("ref=review-drop"))
    assert "drop: 1 row" in page.locator("p.message").inner_text()
    page.goto(f"{viewer_server.url}/view/t/gold.sft?ref=review-drop&q=ticket-00005")
    assert page.locator("article.row").count() == 0
    page.goto(f"{viewer_server.url}/view/t/gold.sft?where=record_id = 'ticket-00005'")
    assert page.locator("article.row").count() == 1


def test_a_workspace_user_sees_only_their_rows_and_is_refused_other_tables(
    page: Any, viewer_server: ServerThread
) -> None:
    base = f"{viewer_server.url}/team"
    response = page.goto(f"{base}/t/gold.sft")
    assert response.status == 401
    page.goto(f"{base}/t/gold.sft?token=support-token&limit=100")
    shown = page.locator("article.row .field-workspace td").all_inner_texts()
    assert shown and set(shown) == {"support"}
    response = page.goto(f"{base}/t/silver.rollouts")  # workspace research's table
    assert response.status == 403
    assert "belongs to workspace 'research'" in page.locator("#error").inner_text()
    response = page.goto(f"{base}/t/lineage.corpus_versions")  # not split by workspace
    assert response.status == 403
    page.goto(f"{base}/sql?q=select distinct workspace from gold.sft")
    assert page.locator("#result td").all_inner_texts() == ["support"]
    response = page.goto(f"{base}/t/gold.sft/row?key=ticket-00004")  # a research row
    assert response.status == 404


def test_the_sql_console_runs_one_select_and_refuses_writes(
    page: Any, viewer_server: ServerThread
) -> None:
    page.goto(f"{viewer_server.url}/view/sql")
    page.fill("#sql", "select source, count(*) n from gold.sft group by 1 order by 2 desc")
    page.click("#run")
    assert "dev-support" in page.locator("#result").inner_text()
    _shot(page, "sql")
    page.fill("#sql", "copy gold.sft to '/tmp/x.csv'")
    page.click("#run")
    assert "read-only" in page.locator("#sqlerror").inner_text()


def test_preference_pairs_show_the_prompt_once_beside_both_answers(
    page: Any, viewer_server: ServerThread
) -> None:
    page.goto(f"{viewer_server.url}/view/t/gold.dpo")
    first = page.locator("article.kind-preference").first
    assert first.locator(".prompt-once").count() == 1
    assert (
        first.locator(".side.chosen").count() == 1 and first.locator(".side.rejected").count() == 1
    )
    _shot(page, "preferences")


def test_posttrain_serve_mounts_the_viewer_behind_workspace_tokens(
    viewer_settings: Any, viewer_home: Path
) -> None:
    import urllib.error
    import urllib.request

    from posttrain.platform.access import Role, WorkspaceStore
    from posttrain.serve.app import create_app

    store = WorkspaceStore.open(viewer_home)
    store.create("support")
    token, _ = store.issue_token("support", Role.READER)

    def status(server: ServerThread, path: str, bearer: str | None) -> tuple[int, str]:
        request = urllib.request.Request(f"{server.url}{path}")
        if bearer:
            request.add_header("Authorization", f"Bearer {bearer}")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    with ServerThread(create_app(viewer_settings)) as server:
        assert status(server, "/view/t/gold.sft", None)[0] == 401
        code, body = status(server, "/view/t/gold.sft?limit=100", token)
        assert code == 200 and "research" not in body
        assert status(server, "/view/t/silver.rollouts", token)[0] == 403
