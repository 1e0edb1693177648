"""The HTML report: one self-contained page rendered from the JSON document,
checked in a real browser (headless Chromium), with everything from a file escaped."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fraudit.cli import app
from fraudit.report.html import render_html

EXAMPLES = Path(__file__).parents[1] / "reference_models" / "examples"
BASE = Path(__file__).parents[1] / "reference_models" / "base" / "fraudit-reference-base.safetensors"
SCREENSHOT = Path(__file__).parents[1] / "docs" / "html-report.png"
# a quick search: enough to draw its pictures, not the calibrated budget (so at most a WARN)
QUICK_SEARCH = ["--base", str(BASE), "--search-steps", "2", "--search-faces", "4"]
runner = CliRunner()


@pytest.fixture(scope="module")
def example_reports(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One scan of the shipped examples: its JSON and, from the same run, its HTML."""
    folder = tmp_path_factory.mktemp("html")
    json_path, html_path = folder / "report.json", folder / "report.html"
    result = runner.invoke(app, ["scan", str(EXAMPLES), *QUICK_SEARCH, "-f", "json", "-o", str(json_path),
                                 "--html", str(html_path)])
    assert result.exit_code == 1, result.output  # the backdoored example FAILs
    return json_path, html_path


def test_the_page_is_self_contained_and_says_what_the_json_says(example_reports: tuple[Path, Path]) -> None:
    json_path, html_path = example_reports
    document, page = json.loads(json_path.read_text()), html_path.read_text()
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)=["'](https?:)?//""", page), "the page must not load anything from a network"
    for result in document["results"]:
        assert result["source"] in page
        assert f'data-verdict="{result["verdict"]}"' in page
        for check in result["checks"]:
            assert check["summary"].replace("'", "&#39;").replace("<", "&lt;").replace(">", "&gt;") in page
    verdicts = sorted(r["verdict"] for r in document["results"])
    assert verdicts == ["FAIL", "PASS"]
    # the pictures: bank readings, the search's gain map, the pattern worn by probe faces
    for alt in ("weight-bank readings against the clean references", "trigger search gain over the face",
                "probe faces wearing the strongest pattern found"):
        assert page.count(f'alt="{alt}"') == 2, alt
    # the page is the JSON document rendered: one run, one creation time
    assert render_html(document) == page


def test_format_html_writes_the_page_alone(tmp_path: Path) -> None:
    result = runner.invoke(app, ["scan", str(EXAMPLES / "clean.safetensors"), "-f", "html", "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "r.html").read_text()
    assert page.startswith("<!doctype html>") and 'data-verdict="PASS"' in page


def test_names_from_files_are_escaped(tmp_path: Path) -> None:
    """A file name is attacker-chosen: markup in it is shown, never run."""
    hostile = tmp_path / "<script>alert(1)<\x1b[2J>.safetensors"
    shutil.copy(EXAMPLES / "clean.safetensors", hostile)
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["scan", str(hostile), "--html", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert "<script" not in page and "\x1b" not in page
    assert "&lt;script&gt;alert(1)&lt;\\x1b[2J&gt;.safetensors" in page


def test_a_broken_and_an_unsafe_candidate_still_render(tmp_path: Path) -> None:
    (tmp_path / "broken.safetensors").write_bytes(b"\x00" * 16)
    shutil.copy(EXAMPLES / "clean.safetensors", tmp_path / "ok.safetensors")
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["scan", str(tmp_path), str(tmp_path / "missing.pt"), "--html", str(out)])
    assert result.exit_code == 2, result.output
    page = out.read_text()
    assert page.count('class="candidate"') == 3
    assert 'data-verdict="ERROR"' in page and 'data-verdict="PASS"' in page


def _browser() -> str | None:
    return next(filter(None, (shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome"))), None)


@pytest.mark.slow
def test_the_report_in_a_real_browser(example_reports: tuple[Path, Path], tmp_path: Path) -> None:
    """Headless Chromium opens the page: its title, one verdict per candidate, every
    image decoded at a non-zero size; the screenshot is the README's picture."""
    browser = _browser()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("no Chromium in CI: .ci/run installs Debian's chromium")
        pytest.skip("no Chromium installed (Debian: apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api", reason="the test extra installs playwright")
    document = json.loads(example_reports[0].read_text())
    shot = tmp_path / "report.png"
    with playwright.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=browser, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        try:
            page = chromium.new_page(viewport={"width": 1100, "height": 1400})
            page.goto(example_reports[1].as_uri())
            title = page.title()
            verdicts = page.eval_on_selector_all(
                "section.candidate", "sections => sections.map(s => [s.dataset.verdict, "
                "s.querySelectorAll('h2 .verdict').length, s.querySelector('h2 .verdict').textContent])")
            images = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
            page.screenshot(path=str(shot), full_page=True)
        finally:
            chromium.close()
    assert title == "fraudit report: 1 PASS, 1 FAIL"
    assert [v[0] for v in verdicts] == [r["verdict"] for r in document["results"]]
    assert all(count == 1 and text == verdict for verdict, count, text in verdicts)
    assert len(images) >= 6 and all(done and width > 0 and height > 0 for done, width, height in images), images
    assert shot.stat().st_size > 50_000
    if os.environ.get("FRAUDIT_UPDATE_SCREENSHOT"):
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copy(shot, SCREENSHOT)
