"""No form of a secret is ever kept: not cut in half by an excerpt, not re-spelled by whitespace collapsing or
percent-encoding, not echoed back by a proxy page into the run database or the logs."""

from __future__ import annotations

import datetime as dt
import logging
from urllib.parse import quote, quote_plus

import pytest

from smsc_dagster.core.errors import SMSCResponseError
from smsc_dagster.core.response import EXCERPT_CHARS, excerpt, parse_json_body, redact
from smsc_dagster.testing import FAULT_KINDS, FaultPlan, SimulatedAccount, SMSCSimulator

from .pipeline_support import pipeline

# '&', '=', '%', '/', a double space and a tab: every encoding spells it differently, collapsing changes it.
PASSWORD = "p&ss=  1/0%x\ty"


def forms(secret: str) -> dict[str, str]:
    return {
        "raw": secret,
        "collapsed": " ".join(secret.split()),
        "quote safe=''": quote(secret, safe=""),
        "quote": quote(secret),
        "quote_plus": quote_plus(secret),
        "quote lowercase escapes": quote(secret, safe="").lower(),
    }


def pieces(text: str, size: int = 10) -> set[str]:
    return {text[i : i + size] for i in range(len(text) - size + 1)}


def test_the_forms_really_differ():
    assert len(set(forms(PASSWORD).values())) == 6


# -- excerpt and redact -----------------------------------------------------------------------------------


def test_a_secret_straddling_the_cut_is_redacted_before_cutting():
    secret = "Straddle-Secret-0042"
    text = "a" * (EXCERPT_CHARS - 10) + secret + " after"
    assert excerpt(text, [secret]) == "a" * (EXCERPT_CHARS - 10) + "*** after"


def test_a_secret_whose_whitespace_collapsing_changes_is_redacted():
    text = f"<p>\n  {PASSWORD}\n</p>\n<p>next</p>"
    assert excerpt(text, [PASSWORD]) == "<p> *** </p> <p>next</p>"
    # wrapped differently by the page, and already collapsed by someone else
    assert redact("x p&ss=\n1/0%x y x", [PASSWORD]) == "x *** x"
    assert redact("x p&ss= 1/0%x y x", [PASSWORD]) == "x *** x"


@pytest.mark.parametrize("name", list(forms(PASSWORD)))
def test_every_spelling_is_redacted(name):
    form = forms(PASSWORD)[name]
    assert excerpt(f"echo: {form} end", [PASSWORD]) == "echo: *** end"
    assert redact(f"echo: {form} end", [PASSWORD]) == "echo: *** end"


def test_credential_parameters_are_dropped_whatever_they_look_like():
    body = "cnt=1000&login=shop&psw=not-our-password&apikey=SOMEKEY123&fmt=3"
    assert excerpt(body) == "cnt=1000&login=***&psw=***&apikey=***&fmt=3"
    assert excerpt('{"login": "shop", "psw": "two words", "cnt": 1}') == '{"login": ***, "psw": ***, "cnt": 1}'
    assert redact("<input name=x value=1> PSW%3Dabc%21&x=1 apikey: k3y;", []) == (
        "<input name=x value=1> PSW%3D***&x=1 apikey: ***;"
    )


def test_an_html_body_quoting_the_form_gives_an_error_without_the_secret():
    page = "<html><body>" + " " * 300 + f"<p>login=shop&psw={quote_plus(PASSWORD)}&fmt=3</p></body></html>"
    with pytest.raises(SMSCResponseError) as info:
        parse_json_body(page, [PASSWORD])
    assert info.value.excerpt == "<html><body> <p>login=***&psw=***&fmt=3</p></body></html>"
    assert str(info.value) == f"SMSC answered with an HTML page instead of JSON: {info.value.excerpt!r}"


# -- the simulator's echoing proxy ----------------------------------------------------------------------------


def test_echo_403_is_asked_for_by_name_only():
    assert "echo_403" not in FAULT_KINDS and FaultPlan().kinds == FAULT_KINDS
    assert FaultPlan(schedule={1: "echo_403"}).schedule == {1: "echo_403"}
    with pytest.raises(ValueError, match="unknown fault kind"):
        FaultPlan(schedule={1: "echo_404"})


def test_the_client_reports_a_403_echo_page_without_any_form_of_the_secret(make_client, clock, caplog):
    caplog.set_level(logging.DEBUG)
    account = SimulatedAccount(seed=81, messages_per_day=10, password=PASSWORD)
    with SMSCSimulator(account, clock=clock, faults=FaultPlan(schedule={1: "echo_403"})) as sim:
        client = make_client(sim, max_retries=3)
        with pytest.raises(SMSCResponseError) as info:
            list(client.iter_history(dt.date(2026, 11, 1), dt.date(2026, 11, 1)))
        history = sim.history_requests()
        base_url = sim.base_url
    exc = info.value
    for text in (str(exc), exc.excerpt, repr(exc.args), caplog.text):
        for name, form in forms(PASSWORD).items():
            assert form not in text, name
        for piece in pieces(PASSWORD) | pieces(quote_plus(PASSWORD)):
            assert piece not in text, piece
    assert [r.http_status for r in history] == [403]  # not retried
    assert not exc.retryable and exc.attempts == 1
    assert str(exc).startswith(f"HTTP 403 (an HTML page) from {base_url}/sys/get.php: '<html>")
    assert "403 Forbidden" in exc.excerpt and "login=***&psw=***&fmt=3" in exc.excerpt
    assert len(exc.excerpt) == EXCERPT_CHARS


# -- end to end: a real Dagster run, every file it leaves, every log --------------------------------------


def test_a_proxy_echoing_the_form_leaves_no_form_of_the_password_anywhere(tmp_path, clock, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    account = SimulatedAccount(seed=82, messages_per_day=50, password=PASSWORD)
    with pipeline(tmp_path, account, clock=clock, max_retries=2) as p:
        p.sim.set_faults(FaultPlan(schedule={1: "echo_403"}))
        result = p.run("2026-10-20", raise_on_error=False)
        history = p.sim.history_requests()
        request_log = repr(p.sim.requests)
    captured = capfd.readouterr()
    texts = {"caplog": caplog.text, "stdout": captured.out, "stderr": captured.err, "request log": request_log}
    files = [f for f in tmp_path.rglob("*") if f.is_file()]
    names = {f.name for f in files}
    assert "index.db" in names and any(f.parent.name == "runs" and f.suffix == ".db" for f in files)
    texts.update({str(f.relative_to(tmp_path)): f.read_bytes().decode("utf-8", "replace") for f in files})
    # the failure really was stored: the scan looks at the place the secret would have gone
    assert any("HTTP 403 " in text for name, text in texts.items() if name.endswith(".db"))
    needles = {**forms(PASSWORD)}
    needles.update({f"piece {piece!r}": piece for piece in pieces(PASSWORD) | pieces(quote_plus(PASSWORD))})
    leaks = [(where, name) for where, text in texts.items() for name, needle in needles.items() if needle in text]
    assert leaks == []

    assert not result.success
    assert [r.http_status for r in history] == [403]  # an HTTP 4xx is not retried
    error = next(e for e in result.all_events if e.is_step_failure).event_specific_data.error
    cause = error.cause or error
    assert cause.cls_name == "SMSCResponseError"
    assert "HTTP 403 (an HTML page) from http://127.0.0.1:" in cause.message
    assert "403 Forbidden" in cause.message and "psw=***" in cause.message
