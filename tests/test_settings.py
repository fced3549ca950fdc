"""Bad settings get an error that names the setting (or the environment variable that sets it), at definition
load when the value is known there, else when a run starts — always before the first request is spent."""

from __future__ import annotations

import datetime as dt
import importlib

import dagster as dg
import pytest

from smsc_dagster import SMSCConfigError, SMSCResource, build_smsc_definitions
from smsc_dagster.testing import SimulatedAccount, SMSCSimulator

from .pipeline_support import QUIET, env_for, pipeline, range_tags

ACCOUNT = SimulatedAccount(seed=71, messages_per_day=50)


def build(tmp_path, **kwargs) -> dg.Definitions:
    kwargs.setdefault("start_date", "2026-09-01")
    kwargs.setdefault("data_dir", str(tmp_path / "data"))
    kwargs.setdefault("resource", SMSCResource(api_key="k", budget_path=str(tmp_path / "budget.sqlite3")))
    return build_smsc_definitions(**kwargs)


def run_failure(result: dg.ExecuteInProcessResult) -> str:
    """The text of the first failure event of a failed run (error class and message, with causes)."""
    assert not result.success
    failure = next(e for e in result.all_events if e.is_failure)
    return failure.event_specific_data.error.to_string()


# -- builder arguments, at load -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["yesterday", 20260901, "2026-13-01", dt.datetime(2026, 9, 1), None],
    ids=["word", "int", "no-such-month", "datetime", "none"],
)
def test_a_start_date_that_is_not_a_date_names_start_date(tmp_path, value):
    with pytest.raises(SMSCConfigError) as caught:
        build(tmp_path, start_date=value)
    message = str(caught.value)
    assert message.startswith("start_date must be a date")
    assert "YYYY-MM-DD" in message and repr(value) in message
    assert "isoformat" not in message


@pytest.mark.parametrize("value", ["three", 0, -1, 2.5, True, "3"])
def test_a_lookback_that_is_not_a_whole_number_of_days_names_lookback_days(tmp_path, value):
    with pytest.raises(SMSCConfigError) as caught:
        build(tmp_path, lookback_days=value)
    assert str(caught.value) == f"lookback_days must be a whole number of days, at least 1, got {value!r}"


@pytest.mark.parametrize(
    "base_url, message",
    [
        ("https://smsc.kz:notaport", "base_url has a port that is not a number in 1..65535: 'https://smsc.kz:notaport'"),
        ("https://smsc.kz:99999", "base_url has a port that is not a number in 1..65535: 'https://smsc.kz:99999'"),
        ("https://smsc.kz:0", "base_url has a port that is not a number in 1..65535: 'https://smsc.kz:0'"),
        ("smsc.kz", "base_url must look like https://smsc.kz, got 'smsc.kz'"),
        ("https://[smsc.kz", "base_url must look like https://smsc.kz, got 'https://[smsc.kz'"),
        ("http://smsc.kz", "base_url must use https://"),
    ],
)
def test_a_bad_base_url_is_refused_at_load_naming_base_url(tmp_path, base_url, message):
    resource = SMSCResource(api_key="k", base_url=base_url)
    with pytest.raises(SMSCConfigError) as caught:
        build(tmp_path, resource=resource)
    assert str(caught.value).startswith(f"SMSCResource: {message}")


def test_a_base_url_from_an_env_var_is_checked_when_the_run_starts(tmp_path, monkeypatch):
    monkeypatch.setenv("T_SMSC_BASE_URL", "https://smsc.kz:notaport")
    resource = SMSCResource(api_key="k", base_url=dg.EnvVar("T_SMSC_BASE_URL"), budget_path=str(tmp_path / "b"))
    defs = build(tmp_path, resource=resource)  # the value is not known at load
    result = defs.resolve_job_def("smsc_refresh").execute_in_process(
        tags=range_tags("2026-10-01", "2026-10-01"), run_config=QUIET, raise_on_error=False
    )
    text = run_failure(result)
    assert "SMSCConfigError: SMSCResource: base_url has a port that is not a number in 1..65535" in text


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"timezone": "Mars/Olympus"}, "timezone must be an IANA time zone such as 'Asia/Almaty', got 'Mars/Olympus'"),
        ({"channels": "sms,fax"}, "channels"),
        ({"schedule_cron": "daily"}, "schedule_cron must be a cron expression such as '30 5 * * *', got 'daily'"),
        ({"data_dir": ""}, "data_dir must be a directory path, got ''"),
        ({"account": "Acme"}, "account must be a short name"),
    ],
)
def test_other_bad_builder_settings_are_named(tmp_path, kwargs, message):
    with pytest.raises(SMSCConfigError) as caught:
        build(tmp_path, **kwargs)
    assert str(caught.value).startswith(message)


def test_a_bad_api_timezone_is_refused_at_load(tmp_path):
    with pytest.raises(SMSCConfigError, match=r"^SMSCResource: api_timezone 'Moscow' is not an IANA time zone"):
        build(tmp_path, resource=SMSCResource(api_key="k", api_timezone="Moscow"))


# -- the code location's environment variables ----------------------------------------------------------


@pytest.fixture
def location(tmp_path, monkeypatch):
    """``smsc_dagster.definitions`` (imported once with a working environment), and a clean ``SMSC_*``
    environment for the test to fill."""
    for name in list(__import__("os").environ):
        if name.startswith("SMSC_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir(exist_ok=True)
    monkeypatch.setenv("SMSC_START_DATE", "2026-09-01")
    monkeypatch.setenv("SMSC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SMSC_API_KEY", "k")
    monkeypatch.setenv("SMSC_BUDGET_PATH", str(tmp_path / "budget.sqlite3"))
    module = importlib.import_module("smsc_dagster.definitions")
    return module


@pytest.mark.parametrize(
    "env, message",
    [
        ({"SMSC_START_DATE": None}, "SMSC_START_DATE is not set: set it to the first day of history to keep, as YYYY-MM-DD"),
        ({"SMSC_START_DATE": "  "}, "SMSC_START_DATE is not set"),
        ({"SMSC_START_DATE": "yesterday"}, "SMSC_START_DATE must be a date written YYYY-MM-DD (for example 2026-01-01), got 'yesterday'"),
        ({"SMSC_LOOKBACK_DAYS": "three"}, "SMSC_LOOKBACK_DAYS must be a whole number of days, at least 1, got 'three'"),
        ({"SMSC_LOOKBACK_DAYS": "-2"}, "SMSC_LOOKBACK_DAYS must be a whole number of days, at least 1, got '-2'"),
        ({"SMSC_LOOKBACK_DAYS": "0"}, "SMSC_LOOKBACK_DAYS must be a whole number of days, at least 1, got 0"),
        ({"SMSC_BASE_URL": "https://smsc.kz:notaport"}, "SMSC_BASE_URL has a port that is not a number in 1..65535: 'https://smsc.kz:notaport'"),
        ({"SMSC_API_TIMEZONE": "Moscow"}, "SMSC_API_TIMEZONE 'Moscow' is not an IANA time zone"),
        ({"SMSC_TIMEZONE": "Almaty"}, "SMSC_TIMEZONE must be an IANA time zone such as 'Asia/Almaty', got 'Almaty'"),
        ({"SMSC_SCHEDULE_CRON": "5 * *"}, "SMSC_SCHEDULE_CRON must be a cron expression"),
        ({"SMSC_ACCOUNT": "Acme Corp"}, "SMSC_ACCOUNT must be a short name"),
        ({"SMSC_CHANNELS": "fax"}, "SMSC_CHANNELS"),
    ],
)
def test_bad_environment_names_the_variable(location, monkeypatch, env, message):
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name)
        else:
            monkeypatch.setenv(name, value)
    with pytest.raises(SMSCConfigError) as caught:
        location.definitions_from_env()
    assert str(caught.value).startswith(message), str(caught.value)
    assert "invalid literal" not in str(caught.value) and "isoformat" not in str(caught.value)


def test_the_first_partition_is_the_configured_start_date_and_does_not_move(location):
    defs = location.definitions_from_env()
    job = defs.resolve_job_def("smsc_refresh")
    keys = job.partitions_def.get_partition_keys(dt.datetime(2027, 3, 1, tzinfo=dt.timezone.utc))
    assert keys[0] == "2026-09-01"


def test_without_credentials_the_location_loads_and_a_run_fails_at_its_start_naming_both_ways(
    location, monkeypatch, tmp_path, clock
):
    monkeypatch.delenv("SMSC_API_KEY")
    with SMSCSimulator(ACCOUNT, clock=clock) as sim:
        monkeypatch.setenv("SMSC_BASE_URL", sim.base_url)
        defs = location.definitions_from_env()  # loads: the UI works without credentials
        result = defs.resolve_job_def("smsc_refresh").execute_in_process(
            tags=range_tags("2026-10-01", "2026-10-01"), run_config=QUIET, raise_on_error=False
        )
        requests = list(sim.requests)
    text = run_failure(result)
    assert (
        "SMSCConfigError: SMSCResource: no SMSC credentials: api_key, or login and password missing. "
        "Set SMSC_API_KEY, or SMSC_LOGIN and SMSC_PASSWORD, in the environment of the Dagster processes."
    ) in text
    assert requests == []
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("present", ["SMSC_LOGIN", "SMSC_PASSWORD"])
def test_half_a_login_fails_at_the_run_start_naming_both_ways(location, monkeypatch, clock, present):
    monkeypatch.delenv("SMSC_API_KEY")
    monkeypatch.setenv(present, "x")
    with SMSCSimulator(ACCOUNT, clock=clock) as sim:
        monkeypatch.setenv("SMSC_BASE_URL", sim.base_url)
        result = location.definitions_from_env().resolve_job_def("smsc_refresh").execute_in_process(
            tags=range_tags("2026-10-01", "2026-10-01"), run_config=QUIET, raise_on_error=False
        )
        requests = list(sim.requests)
    missing = "password" if present == "SMSC_LOGIN" else "login"
    assert f"no SMSC credentials: {missing} missing. Set SMSC_API_KEY, or SMSC_LOGIN and SMSC_PASSWORD" in run_failure(result)
    assert requests == []


# -- an unwritable data_dir -----------------------------------------------------------------------------


@pytest.mark.parametrize("data_dir", ["/proc/x", "file"])
def test_an_unwritable_data_dir_fails_the_run_before_any_request(tmp_path, clock, data_dir):
    if data_dir == "file":  # a data_dir that is a file
        (tmp_path / "file").write_text("not a directory")
        data_dir = str(tmp_path / "file")
    with SMSCSimulator(ACCOUNT, clock=clock) as sim:
        resource = SMSCResource(
            login=ACCOUNT.login, password=ACCOUNT.password, base_url=sim.base_url, api_timezone=ACCOUNT.timezone,
            budget_path=str(tmp_path / "budget.sqlite3"),
        )
        defs = build(tmp_path, data_dir=data_dir, resource=resource)  # loads: nothing is written at load
        result = defs.resolve_job_def("smsc_refresh").execute_in_process(
            tags=range_tags("2026-10-01", "2026-10-01"), run_config=QUIET, raise_on_error=False
        )
        requests = list(sim.requests)
    text = run_failure(result)
    assert f"SMSCConfigError: data_dir '{data_dir}' is not writable (" in text
    assert "point data_dir at a directory the Dagster processes can create and write to" in text
    assert "FileNotFoundError" not in text and "NotADirectoryError" not in text
    assert requests == []  # neither the balance nor a history request was spent
    # Nothing of the machine's paths in the run's metadata.
    for event in result.all_events:
        if event.is_step_materialization:
            assert data_dir not in str(event.event_specific_data.materialization.metadata)


def test_an_unwritable_data_dir_from_the_environment_names_it(location, monkeypatch, clock):
    with SMSCSimulator(ACCOUNT, clock=clock) as sim:
        monkeypatch.setenv("SMSC_BASE_URL", sim.base_url)
        monkeypatch.setenv("SMSC_DATA_DIR", "/proc/x")
        result = location.definitions_from_env().resolve_job_def("smsc_refresh").execute_in_process(
            tags=range_tags("2026-10-01", "2026-10-01"), run_config=QUIET, raise_on_error=False
        )
        requests = list(sim.requests)
    assert "SMSCConfigError: data_dir '/proc/x' is not writable" in run_failure(result)
    assert requests == []


def test_a_changed_zone_from_the_environment_names_the_variables(location, monkeypatch, tmp_path, clock):
    with pipeline(tmp_path, ACCOUNT, clock=clock) as p:  # data_dir is tmp_path/data, as in `location`
        assert p.run("2026-10-01").success
    monkeypatch.setenv("SMSC_TIMEZONE", "UTC")
    with pytest.raises(SMSCConfigError) as caught:
        location.definitions_from_env()
    assert str(caught.value) == (
        "SMSC_TIMEZONE is 'UTC' but the days stored in <data_dir> were filed in 'Asia/Almaty': re-reading a day "
        "in another zone would store its messages twice. Keep SMSC_TIMEZONE='Asia/Almaty', or point SMSC_DATA_DIR "
        "at a new directory for 'UTC' (and re-run the backfill there)."
    )


def test_a_correct_configuration_still_loads_and_runs(tmp_path, clock):
    """The checks at load and at the run's start do not get in the way of a correct configuration."""
    with pipeline(tmp_path, ACCOUNT, clock=clock) as p:
        result = p.run("2026-10-01")
        assert result.success
        assert [r.path for r in p.sim.requests][:1] == ["/sys/balance.php"]
    assert (tmp_path / "data" / "_smsc_store.json").exists()


def test_env_for_still_describes_a_loadable_location(location, monkeypatch, tmp_path, clock):
    with SMSCSimulator(ACCOUNT, clock=clock) as sim:
        for name, value in env_for(sim, tmp_path).items():
            if name.startswith("SMSC_"):
                monkeypatch.setenv(name, value)
        defs = location.definitions_from_env()
    assert defs.resolve_job_def("smsc_refresh").partitions_def.timezone == "Asia/Almaty"
