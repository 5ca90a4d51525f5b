"""The static leaderboard site, opened over file:// in headless Chromium (Debian's chromium + chromedriver).

The site is built from runs scored in the test; expected values are read back from the runs'
samples.parquet and run.json, never typed in. Skipped only where chromium is absent and CI is unset.
"""

from __future__ import annotations

import csv
import math
import os
import shutil
from pathlib import Path

import pytest

from conftest import REPO
from triptych.leaderboard.build import build_site
from triptych.leaderboard.reported import load_reported
from triptych.results import list_runs, read_run, read_samples
from triptych.scoring import score

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
ARTIFACTS = REPO / "artifacts"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1360,1000")


def _need_browser() -> None:
    missing = [name for name, path in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)) if path is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip)")
    if missing:
        reason = f"{', '.join(missing)} not installed (apt-get install chromium chromium-driver; pip install selenium)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> tuple[Path, Path]:
    """(results folder, site folder): two fast sample runs and the site built from them."""
    _need_browser()
    results = tmp_path_factory.mktemp("site-results")
    score("sample-tennis", results, method="mean_fill")
    score("sample-triplets", results, method="linear_blend")
    out = tmp_path_factory.mktemp("site") / "site"
    build_site(results, out)
    return results, out


def start_browser(tmp_path_factory):
    """Headless Chromium with its own profile folder, keeping the page's console log."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    return driver


@pytest.fixture(scope="module")
def browser(site, tmp_path_factory):
    driver = start_browser(tmp_path_factory)
    yield driver
    driver.quit()


def _open(driver, page: Path) -> list[dict]:
    """Load a page, wait for its plots, and return the browser log entries it produced."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get_log("browser")  # drop anything left from the previous page
    driver.get(page.as_uri())
    WebDriverWait(driver, 30).until(lambda d: all(
        el.get_attribute("data-rendered") for el in d.find_elements(By.CSS_SELECTOR, "[data-spec]")))
    return driver.get_log("browser")


def _expected_reproduced(results: Path) -> dict[tuple[str, str, str, str], float]:
    """(benchmark, method, metric, metric_variant) -> pooled mean, read from the runs' parquet files."""
    expected = {}
    for run in list_runs(results):
        samples = read_samples(results / run["run_id"])
        for (bench, method, metric, variant), frame in samples.groupby(["benchmark", "method", "metric",
                                                                        "metric_variant"]):
            expected[(bench, method, metric, variant)] = float(frame["value"].mean())
    return expected


def _table(driver, selector: str = "#leaderboard") -> list[dict[str, str]]:
    """The rows of the table matched by ``selector`` (default: the leaderboard table) as {column field: data-value}."""
    return driver.execute_script("""
        const t = document.querySelector(arguments[0]);
        const fields = Array.from(t.tHead.rows[0].cells).map(c => c.dataset.field);
        return Array.from(t.tBodies[0].rows).map(r =>
            Object.fromEntries(Array.from(r.cells).map((c, i) => [fields[i], c.getAttribute('data-value')])));
    """, selector)


def test_every_page_renders_without_console_errors_and_plots_are_drawn(site, browser):
    from selenium.webdriver.common.by import By

    _, out = site
    pages = sorted(out.glob("*.html"))
    assert {"index.html", "video_inpainting.html", "frame_interpolation.html"} <= {p.name for p in pages}
    for page in pages:
        log = _open(browser, page)
        errors = [e for e in log if e["level"] in ("SEVERE", "ERROR")]
        assert not errors, f"{page.name}: console errors {errors}"
        plots = browser.find_elements(By.CSS_SELECTOR, "[data-spec]")
        assert all(p.get_attribute("data-rendered") == "true" for p in plots), page.name
        for plot in plots:
            assert plot.find_elements(By.CSS_SELECTOR, "svg, canvas"), f"{page.name}: {plot.get_attribute('id')}"
        if page.name in ("video_inpainting-sample-tennis.html", "frame_interpolation-sample-triplets.html"):
            kinds = {p.find_element(By.XPATH, "..").get_attribute("data-kind") for p in plots}
            assert kinds == {"interval", "per-sample", "group-mean", "distribution"}, page.name
        if page.name == "frame_interpolation.html":
            assert browser.find_elements(By.CSS_SELECTOR, "[data-kind=efficiency] .plot svg")


def test_main_page_screenshot_is_kept_as_an_artifact(site, browser):
    _, out = site
    _open(browser, out / "index.html")
    ARTIFACTS.mkdir(exist_ok=True)
    height = browser.execute_script("return document.body.scrollHeight")
    browser.set_window_size(1360, min(int(height) + 140, 4000))
    target = ARTIFACTS / "leaderboard-index.png"
    assert browser.save_screenshot(str(target)) and target.stat().st_size > 10_000
    browser.set_window_size(1360, 1000)


def test_table_rows_equal_the_results_and_the_published_rows(site, browser):
    results, out = site
    expected = _expected_reproduced(results)
    reported = load_reported()
    runs = {r["run_id"]: r for r in list_runs(results)}
    seen = set()
    for page, bench in (("video_inpainting-sample-tennis.html", "sample-tennis"),
                        ("frame_interpolation-sample-triplets.html", "sample-triplets")):
        _open(browser, out / page)
        for row in _table(browser):
            key = (bench, row["method"], row["metric"], row["metric_variant"])
            assert float(row["reproduced"]) == pytest.approx(expected[key], rel=1e-12), key
            run = runs[row["run_id"]]
            assert run["benchmark"] == bench and run["method"] == row["method"]
            version = {(m["metric"], m["variant"]): m["version"] for m in run["metrics"]}[key[2:]]
            assert int(row["metric_version"]) == version and row["benchmark_variant"] == run["benchmark_variant"]
            interval = {(m["metric"], m["variant"]): m["aggregate"]["interval"] for m in run["metrics"]}[key[2:]]
            assert row["ci_unit"] == interval["unit"]
            assert (row["ci_low"], row["ci_high"]) == ("" if interval["low"] is None else repr(interval["low"]),
                                                       "" if interval["high"] is None else repr(interval["high"]))
            seen.add(key)
    assert seen == set(expected)

    # a published benchmark: every reported row with a metric variant, with its raw value
    _open(browser, out / "video_inpainting-davis.html")
    rows = _table(browser)
    davis = reported[(reported.benchmark == "davis") & (reported.metric_variant != "")]
    assert len(rows) == len(davis)
    got = sorted((r["method"], r["metric"], r["reported"]) for r in rows)
    want = sorted((m, k, "" if math.isnan(v) else repr(float(v))) for m, k, v in zip(davis.method, davis.metric,
                                                                                       davis.value))
    assert got == want

    # the CSV download holds the same reproduced numbers
    with open(out / "data" / "video_inpainting-sample-tennis.csv", newline="") as handle:
        for rec in csv.DictReader(handle):
            key = ("sample-tennis", rec["method"], rec["metric"], rec["metric_variant"])
            assert float(rec["reproduced"]) == pytest.approx(expected[key], rel=1e-12)


def test_each_task_page_shows_its_ablation_tables_as_a_section_of_their_own(site, browser, fixtures_dir):
    """Every published ablation cell (../shared/reported/thesis_ablations.csv) is on its task's page, on the
    raw scale, with its note; none is on a benchmark page, where rows pair."""
    _, out = site
    with open(fixtures_dir.parent / "reported/thesis_ablations.csv", newline="") as handle:
        published = list(csv.DictReader(handle))
    scale = {"%": 0.01}
    for task in ("video_inpainting", "frame_interpolation", "personalization"):
        _open(browser, out / f"{task}.html")
        rows = _table(browser, "table[data-table=ablations]")
        want = [p for p in published if p["task"] == task]
        assert len(rows) == len(want) > 0, task
        for row, pub in zip(rows, want):
            assert (row["table"], row["method"], row["metric"]) == (pub["table"], pub["method"], pub["metric"])
            assert float(row["reported"]) == pytest.approx(float(pub["value"]) * scale.get(pub["unit"], 1.0))
            assert row["note"] == pub["note"]
    # labels only the ablation tables print (table 3.3 also prints E2FGVI's and FuseFormer's parameters)
    ablation_methods = {p["method"] for p in published} - set(load_reported()["method"])
    assert len(ablation_methods) > 40
    for page in out.glob("*-*.html"):
        _open(browser, page)
        assert not ablation_methods & {r["method"] for r in _table(browser)}, page.name


def test_provenance_panel_opens_from_the_row_and_shows_the_run_json(site, browser):
    from selenium.webdriver.common.by import By

    results, out = site
    _open(browser, out / "video_inpainting-sample-tennis.html")
    link = browser.find_element(By.CSS_SELECTOR, "#leaderboard a.run-link")
    run_id = link.get_attribute("title")
    link.click()
    panel = browser.find_element(By.ID, f"run-{run_id}")
    assert panel.get_attribute("open") is not None
    run = read_run(results / run_id)
    text = panel.text
    for needed in (run_id, run["data"]["manifest_sha256"], run["code"]["git_revision"], run["benchmark_variant"]):
        assert needed in text
    for metric in run["metrics"]:
        assert f"{metric['metric']}:{metric['variant']} version {metric['version']}" in text


def test_sorting_on_header_click(site, browser):
    from selenium.webdriver.common.by import By

    _, out = site
    _open(browser, out / "frame_interpolation-snu-film.html")
    header = browser.find_element(By.CSS_SELECTOR, "#leaderboard th[data-field=reported]")
    header.click()
    values = [float(r["reported"]) for r in _table(browser) if r["reported"]]
    assert len(values) > 3 and values == sorted(values) and header.get_attribute("aria-sort") == "ascending"
    header.click()
    values = [float(r["reported"]) for r in _table(browser) if r["reported"]]
    assert values == sorted(values, reverse=True) and header.get_attribute("aria-sort") == "descending"
    method = browser.find_element(By.CSS_SELECTOR, "#leaderboard th[data-field=method]")
    method.click()
    names = [r["method"] for r in _table(browser)]
    assert names == sorted(names, key=str.lower)
