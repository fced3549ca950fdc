"""SMSCResource: configuration only, EnvVar-friendly, and a clear error for a configuration that cannot work."""

from __future__ import annotations

import dagster as dg
import pytest

from smsc_dagster import SMSCClient, SMSCResource


def test_fields_are_described_for_the_ui():
    fields = SMSCResource.model_fields
    expected = {
        "login", "password", "api_key", "base_url", "api_timezone", "requests_per_hour",
        "identical_per_minute", "timeout_s", "max_retries", "budget_path", "budget_url",
    }
    assert set(fields) == expected
    assert all(f.description for f in fields.values())
    assert fields["base_url"].default == "https://smsc.kz" and fields["api_timezone"].default == "Europe/Moscow"


def test_env_vars_resolve_at_run_time_and_secrets_stay_out_of_repr(monkeypatch, tmp_path):
    monkeypatch.setenv("T_SMSC_LOGIN", "shop")
    monkeypatch.setenv("T_SMSC_PASSWORD", "pw-env-secret")
    resource = SMSCResource(
        login=dg.EnvVar("T_SMSC_LOGIN"), password=dg.EnvVar("T_SMSC_PASSWORD"), budget_path=str(tmp_path / "b")
    )
    seen = {}

    @dg.asset
    def probe(smsc: SMSCResource) -> None:
        client = smsc.get_client()
        seen["client"] = repr(client)
        seen["resource"] = repr(smsc)
        assert isinstance(client, SMSCClient) and client.login == "shop"

    assert dg.materialize([probe], resources={"smsc": resource}).success
    assert "pw-env-secret" not in seen["client"] + seen["resource"]
    assert "login='shop'" in seen["client"]


@pytest.mark.parametrize(
    "config, message",
    [
        ({}, "api_key, or login and password missing"),
        ({"login": "shop"}, "password missing"),
        ({"api_key": "k", "login": "shop"}, "not both"),
        ({"api_key": "k", "base_url": "http://smsc.kz"}, "must use https://"),
        ({"api_key": "k", "api_timezone": "Mars/Olympus"}, "not an IANA time zone"),
    ],
)
def test_bad_configuration_fails_at_setup_with_the_fix(config, message, tmp_path):
    calls = []

    @dg.asset
    def probe(smsc: SMSCResource) -> None:
        calls.append(1)

    result = dg.materialize(
        [probe], resources={"smsc": SMSCResource(budget_path=str(tmp_path / "b"), **config)}, raise_on_error=False
    )
    assert not result.success and calls == []  # failed before the asset body ran
    failure = next(e for e in result.all_events if e.is_failure)
    assert message in str(failure.event_specific_data.error.to_string())


def test_from_env_prefers_the_api_key(monkeypatch):
    monkeypatch.setenv("SMSC_API_KEY", "from-env")
    monkeypatch.setenv("SMSC_BASE_URL", "https://smsc.ru")
    resource = SMSCResource.from_env()
    assert resource.base_url == "https://smsc.ru"
    assert isinstance(resource.api_key, dg.EnvVar) or resource.api_key == "from-env"
