"""The ablation in the HTML report and on `report serve`'s /ablation page, in headless Chromium, from a
real (small) `corpusforge quality-eval --ablate` on the shared data: the table a person reads holds
ablation.json's numbers, the chart has one interval per variant, and the page is reached by links."""

import json
import threading

import pytest

from corpusforge.cli import main
from corpusforge.report.build import RunReport, gather_extra
from corpusforge.report.serve import make_server
from tests.unit.test_ablate import build, config


@pytest.fixture(scope="module")
def ablation(shared_data, tmp_path_factory):
    d = tmp_path_factory.mktemp("ablb")
    build(d, shared_data)
    cfg = config(d, seeds=[1, 2], train={"steps": 10, "batch_size": 8, "lr": 0.01, "device": "cpu"})
    assert main(["quality-eval", "--ablate", str(cfg), "--no-progress"]) == 0
    path = d / "abl_out" / "ablation.json"
    a = json.loads(path.read_text())
    return path, a, d / "abl_out" / a["variants"]["full"]["run_dir"]


def _check_table(page, a):
    for n in a["order"]:
        row = page.locator(f'table.ablation-table tr[data-variant="{n}"]')
        v = a["variants"][n]
        assert float(row.locator('td[data-k="mean PPL"]').get_attribute("data-v")) == pytest.approx(v["mean_ppl"])
        assert int(row.locator('td[data-k="kept docs"]').get_attribute("data-v")) == v["kept_docs"]
        for s, p in zip(v["seeds"], v["heldout_ppl"]):
            assert float(row.locator(f'td[data-k="PPL seed {s}"]').get_attribute("data-v")) == pytest.approx(p)
        sign = row.locator('td[data-k="sign holds every seed"]').inner_text()
        assert sign == ("—" if v["sign_holds_every_seed"] is None else "yes" if v["sign_holds_every_seed"] else "no")
        if v["delta_vs_full"] is not None:
            assert float(row.locator('td[data-k="Δ vs full"]').get_attribute("data-v")) == pytest.approx(v["delta_vs_full"])
    assert page.locator("#ablation svg.intervals circle.mean").count() == len(a["order"])
    assert page.evaluate("document.scripts.length") == 0


def test_ablation_section_in_the_report_file(page, ablation, tmp_path, artifacts):
    path, a, full_run = ablation
    out = tmp_path / "r.html"
    assert main(["report", str(full_run), "--ablation", str(path), "--out", str(out)]) == 0
    page.goto(out.as_uri())
    page.locator('nav a[href="#ablation"]').click()
    assert page.locator("#ablation").is_visible()
    _check_table(page, a)
    page.locator("#ablation").screenshot(path=str(artifacts / "ablation.png"))


def test_ablation_page_served_and_reached_by_links(page, ablation):
    path, a, full_run = ablation
    r = RunReport(str(full_run), eval_samples=2)
    srv = make_server(r, gather_extra([str(full_run)], [r.found], ablation=[str(path)]), "127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        page.goto(f"http://127.0.0.1:{srv.server_address[1]}/human-eval")
        page.locator('nav a[href="/ablation"]').click()
        assert page.url.endswith("/ablation")
        _check_table(page, a)
        page.locator('nav a[href="/"]').click()
        assert page.locator("#ablation table.ablation-table").count() == 1  # the report page has it too
    finally:
        srv.shutdown()
        srv.server_close()
