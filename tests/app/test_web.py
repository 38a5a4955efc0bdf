"""The web pages in a real browser: Playwright driving Debian's Chromium, headless, against
the real app over HTTP and the real Redis. Screenshots go to build/screenshots/."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from app.config import EMBEDDED_MODEL
from app.failure_record import Correction

from .. import samples
from ..conftest import free_port

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# No first-run work and no background connections: this machine has no network.
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "build" / "screenshots"


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser) -> Page:
    context = browser.new_context(viewport={"width": 1200, "height": 1000})
    page = context.new_page()
    yield page
    context.close()


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def corrections(redis_client, key_prefix) -> list[Correction]:
    entries = redis_client.xrange(key_prefix + "corrections")
    return [
        Correction.from_fields({k.decode(): v.decode() for k, v in fields.items()})
        for _, fields in entries
    ]


def test_transcribe_a_sample_see_it_stream_and_correct_it(serve, page, redis_client, key_prefix):
    with serve(EMBEDDED_MODEL, max_tokens=256) as url:
        page.goto(f"{url}/")
        expect(page.locator("#model")).to_contain_text("ocrguard-tiny")
        expect(page.locator("#model-note")).to_contain_text("demo")  # says what it can read
        page.locator("#file").set_input_files(str(ROOT / "examples/receipt.png"))
        page.get_by_role("button", name="Transcribe").click()
        text = page.locator("form.page textarea[name=text]")
        expect(text).to_have_value("1 UN AGUA 3,50\n" * 4 + "TOTAL R$ 95,00", timeout=60_000)
        events = page.evaluate("window.ocrguardEvents")
        assert events[0] == "delta" and events.count("delta") > 5  # text before the result
        assert events.index("page") > events.index("delta")
        expect(page.locator("form.page textarea[name=header]")).to_have_value("Freitas")
        live = page.locator("#attempts pre").first.inner_text()
        assert live.startswith('{"header":"Freitas"')
        text.fill("1 UN AGUA 3,50\n" * 4 + "TOTAL R$ 14,00")
        page.get_by_role("button", name="Send correction").click()
        expect(page.locator("form.page .status")).to_contain_text("stored with the page image")
        shot(page, "transcribe")
    [stored] = corrections(redis_client, key_prefix)
    assert stored.fields["text"].endswith("TOTAL R$ 14,00") and stored.fields["header"] == "Freitas"
    assert stored.output.startswith('{"header":"Freitas"') and stored.image_sha256
    assert redis_client.get(f"{key_prefix}image:{stored.image_sha256}") is not None


def test_a_loop_is_marked_live_and_corrected_in_the_review_queue(
    serve, page, looping_model, redis_client, key_prefix, tmp_path
):
    upload = tmp_path / "page.png"
    upload.write_bytes(samples.png())
    with serve(looping_model, max_tokens=200) as url:
        page.goto(f"{url}/")
        page.locator("#file").set_input_files(str(upload))
        page.locator("#mode").select_option("abort")
        page.get_by_role("button", name="Transcribe").click()
        expect(page.locator("#attempts .event")).to_contain_text("ngram_loop", timeout=60_000)
        expect(page.locator("#attempts mark.loop")).not_to_be_empty()
        expect(page.locator(".guard-summary")).to_contain_text("aborted")
        shot(page, "loop-live")
        page.goto(f"{url}/review")
        card = page.locator("form.failure").first
        expect(card.locator(".event")).to_contain_text("ngram_loop", timeout=30_000)
        expect(card.locator("mark.loop")).not_to_be_empty()
        expect(page.locator("#counts")).to_contain_text("1 failures logged")
        page.wait_for_function("document.querySelector('form.failure img').naturalWidth > 0")
        card.locator("textarea[name=text]").fill("Nota fiscal 123")
        card.get_by_role("button", name="Send correction").click()
        expect(card.locator(".status")).to_contain_text("correction stored")
        page.get_by_role("button", name="Refresh").click()
        expect(page.locator("#counts")).to_contain_text("1 corrections stored")
        shot(page, "review-queue")
    [request_id] = {c.request_id for c in corrections(redis_client, key_prefix)}
    feedback = json.loads(redis_client.hget(f"{key_prefix}feedback:{request_id}", "1"))
    assert feedback["text"] == "Nota fiscal 123"


def test_the_pages_work_while_redis_is_down(serve, page):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    with serve(EMBEDDED_MODEL, max_tokens=64, redis_url=dead) as url:
        page.goto(f"{url}/")
        page.get_by_role("button", name="line.png").click()
        page.get_by_role("button", name="Transcribe").click()
        expect(page.locator("form.page textarea[name=text]")).to_have_value(
            "Gabriela Moura", timeout=60_000
        )
        page.goto(f"{url}/review")
        expect(page.locator("#counts")).to_contain_text("unavailable: Redis does not answer")
        shot(page, "review-redis-down")


def test_with_api_keys_the_page_asks_for_one(serve, page):
    with serve(EMBEDDED_MODEL, max_tokens=64, api_keys="k1") as url:
        page.goto(f"{url}/")
        key = page.locator("#keybox input")
        expect(key).to_be_visible()
        page.get_by_role("button", name="line.png").click()
        page.get_by_role("button", name="Transcribe").click()
        expect(page.locator("#status")).to_contain_text("valid API key is required")
        key.fill("k1")
        key.dispatch_event("change")
        page.get_by_role("button", name="Transcribe").click()
        expect(page.locator("form.page textarea[name=text]")).to_have_value(
            "Gabriela Moura", timeout=60_000
        )
