"""The reference web client (web/), in headless Chromium driven by Playwright, against
the local stack that serves it: two browser contexts are two users."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.slow

LONG = 15_000  # ms: what may take a reconnect (backoff) or a sync to show


def open_page(browser, stack, user: str, **query) -> Page:
    """A new browser context (its own storage, like another person's browser) on
    http://127.0.0.1:<port>/?userId=<user>, connected."""
    page = browser.new_context(viewport={"width": 900, "height": 560}).new_page()
    errors, failed = [], []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("response", lambda response: failed.append(response.url) if response.status >= 400 else None)
    page.errors, page.failed = errors, failed  # (the favicon's 404 once showed in the console)
    qs = "&".join(f"{k}={v}" for k, v in {"userId": user, **query}.items())
    page.goto(f"http://127.0.0.1:{stack.port}/?{qs}")
    expect(page.locator("#status")).to_have_text("online")
    return page


def send(page: Page, text: str) -> None:
    page.fill("#text", text)
    page.press("#text", "Enter")


def start_with(page: Page, peer: str) -> None:
    page.fill("#start-user", peer)
    page.press("#start-user", "Enter")


def test_two_users_chat_with_ticks_unread_badges_typing_and_content_that_stays_text(stack, browser, artifacts):
    alice, bob = open_page(browser, stack, "alice"), open_page(browser, stack, "bob")
    # Alice starts a conversation with bob by his user id and writes twice
    start_with(alice, "bob")
    send(alice, "hello bob")
    send(alice, "are you there?")
    # Bob's list shows the conversation with two unread; alice's ticks say delivered once
    # bob's tab has confirmed them (markDelivered), not merely received
    badge = bob.locator(".conversation[data-peer=alice] .badge")
    expect(badge).to_have_text("2")
    expect(alice.locator(".message.mine .ticks.delivered")).to_have_count(2)
    # Bob opens it: the badge goes, alice's ticks turn to read
    bob.click(".conversation[data-peer=alice]")
    expect(badge).to_have_count(0)
    expect(bob.locator(".message .text")).to_have_text(["hello bob", "are you there?"])
    expect(alice.locator(".message.mine .ticks.read")).to_have_count(2)
    # Bob types: alice sees it, and sees him online
    bob.locator("#text").press_sequentially("yes, h")
    expect(alice.locator("#typing")).to_have_text("bob is typing…")
    expect(alice.locator("#presence")).to_have_text("online")
    send(bob, "yes, here")
    expect(alice.locator(".message:not(.mine) .text")).to_have_text(["yes, here"])
    expect(alice.locator("#typing")).to_have_text("")
    # A message that is HTML stays text: no element, no script
    payload = "<img src=x onerror=\"document.title='pwned';window.pwned=1\"><b>bold?</b>"
    send(alice, payload)
    expect(bob.locator(".message .text").last).to_have_text(payload)
    assert bob.locator("#messages img, #messages b, .conversation img").count() == 0
    assert bob.evaluate("window.pwned") is None and bob.title() != "pwned"
    # A message too long for one frame is refused on the page, and the connection lives on
    send(alice, "x" * 40_000)
    expect(alice.locator(".error").last).to_contain_text("too long")
    send(alice, "still here")
    expect(bob.locator(".message .text").last).to_have_text("still here")
    # An error frame is put in words
    alice.evaluate("state.socket.send(JSON.stringify({action: 'history', conversationId: 'not-yours'}))")
    expect(alice.locator(".error").last).to_contain_text("Not allowed")
    alice.screenshot(path=artifacts / "web-client-alice.png")
    bob.screenshot(path=artifacts / "web-client-bob.png")
    assert alice.errors == [] and bob.errors == []
    assert alice.failed == [] and bob.failed == []


def test_a_tab_that_was_away_gets_what_it_missed_pages_back_through_history_and_reconnects(start_stack, browser):
    stack = start_stack()  # its own: it restarts it
    alice, bob = open_page(browser, stack, "alice"), open_page(browser, stack, "bob")
    start_with(alice, "bob")
    send(alice, "first")
    expect(alice.locator(".ticks.delivered")).to_have_count(1)
    # Bob's tab goes away; alice writes seven more, which are stored but not delivered
    bob.context.close()
    for i in range(1, 8):
        send(alice, f"while away {i}")
    expect(alice.locator(".ticks.sent")).to_have_count(7)
    # Bob comes back in a new tab (three messages per history page): sync brings the seven,
    # the badge counts all eight unread, and alice's ticks turn to delivered
    bob = open_page(browser, stack, "bob", pageSize=3)
    expect(bob.locator(".conversation[data-peer=alice] .badge")).to_have_text("8")
    expect(alice.locator(".ticks.delivered")).to_have_count(8)
    # Opening it pages back through history to the first message, in order, no repeats
    bob.click(".conversation[data-peer=alice]")
    earlier, clicks = bob.locator("#earlier"), 0
    expect(earlier).to_be_visible()  # the newest page came, and there is more
    while earlier.count():  # one older page per click, until the start of the conversation
        cursor = bob.evaluate("state.history.get(state.open.id)")
        earlier.click()
        clicks += 1
        bob.wait_for_function("cursor => state.history.get(state.open.id) !== cursor", arg=cursor)
    assert clicks == 2  # eight messages, three a page
    expected = ["first", *(f"while away {i}" for i in range(1, 8))]
    expect(bob.locator(".message .text")).to_have_text(expected)
    # The stack restarts (same port, same data): both tabs reconnect on their own and sync
    stack.stop()
    expect(bob.locator("#status")).to_have_text(re.compile("offline: reconnecting"), timeout=LONG)
    stack.start()
    expect(bob.locator("#status")).to_have_text("online", timeout=LONG)
    expect(alice.locator("#status")).to_have_text("online", timeout=LONG)
    send(alice, "after the restart")
    expect(bob.locator(".message .text").last).to_have_text("after the restart")
    # and a reload keeps the conversation: the list and history come from the server
    bob.reload()
    bob.click(".conversation[data-peer=alice]")
    expect(bob.locator(".message .text").last).to_have_text("after the restart", timeout=LONG)


def test_in_token_mode_the_page_signs_in_with_a_local_token_or_a_pasted_one_and_a_forged_one_gets_nowhere(
    start_stack, cognito_cdk_out, browser
):
    stack = start_stack(cognito_cdk_out)
    # ?userId= on the local stack in token mode: the page asks the local issuer for a token
    alice = open_page(browser, stack, "alice")
    # ?url= as for a deployed stack: the page asks for a token; bob pastes his (make token USER=bob)
    bob = browser.new_context().new_page()
    bob.goto(f"http://127.0.0.1:{stack.port}/?url=ws://127.0.0.1:{stack.port}/production")
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.port}/@local/token?userId=bob") as reply:  # noqa: S310
        token = json.load(reply)["token"]
    bob.fill("#login-token", token)
    bob.click("#login button")
    expect(bob.locator("#status")).to_have_text("online")
    expect(bob.locator("#me")).to_have_text("bob")
    start_with(alice, "bob")
    send(alice, "signed in")
    expect(bob.locator(".conversation[data-peer=alice] .badge")).to_have_text("1")
    # A token signed by someone else is refused at connect, and the page says so
    mallory = browser.new_context().new_page()
    header, claims, _ = token.split(".")
    mallory.goto(f"http://127.0.0.1:{stack.port}/?token={header}.{claims}.forged")
    expect(mallory.locator(".error")).to_contain_text("Could not connect")
    expect(mallory.locator("#status")).to_have_text(re.compile("offline: reconnecting"))


def test_the_page_names_an_icon_the_stack_serves_so_a_browser_asks_for_no_favicon_ico(stack):
    # (browsers ask for /favicon.ico, a 404 in the console, unless the page names its icon)
    base = f"http://127.0.0.1:{stack.port}"
    with urllib.request.urlopen(f"{base}/?userId=alice", timeout=10) as page:  # noqa: S310 (a local URL)
        [icon] = re.findall(r'<link rel="icon" href="([^"]+)"', page.read().decode())
    with urllib.request.urlopen(f"{base}/{icon}", timeout=10) as served:  # noqa: S310
        assert served.status == 200 and served.headers["Content-Type"].startswith("image/svg+xml")
