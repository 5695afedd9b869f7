"""Use cases without the command line: serving bootstrap and training requests."""

from __future__ import annotations

import functools
import os
import pickle

import pytest

from churnops.errors import ConfigError
from churnops.workflows.serving import plan_service, worker_app
from churnops.workflows.training import TrainRequest, load_training_data

STRONG = "correct-horse-battery-staple"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if (name.startswith("CHURN_") and name != "CHURN_HOME") or name == "PORT":
            monkeypatch.delenv(name)
    return monkeypatch


def test_plan_reads_options_over_the_environment_and_changes_no_variable(
    synthetic_model, clean_env
):
    clean_env.setenv("CHURN_USER", "ops")
    clean_env.setenv("CHURN_PASSWORD", STRONG)
    clean_env.setenv("CHURN_PORT", "9000")
    clean_env.setenv("CHURN_MAX_RECORDS", "77")
    before = dict(os.environ)
    model = str(synthetic_model[1].path)
    plan = plan_service({"model": model, "port": 9100, "workers": None, "host": None})
    assert dict(os.environ) == before
    settings = plan.settings
    assert (settings.model, settings.port, settings.max_records) == (model, 9100, 77)
    assert plan.served.artifact.version == synthetic_model[1].version
    assert not plan.generated_credentials
    assert plan.password_weakness is None


def test_generated_credentials_live_in_the_settings_not_the_environment(synthetic_model, clean_env):
    plan = plan_service({"model": str(synthetic_model[1].path)}, generate_credentials=True)
    assert "CHURN_PASSWORD" not in os.environ
    credentials = plan.settings.credentials()
    assert credentials is not None
    assert plan.generated_credentials
    assert len(credentials[1].get_secret_value()) >= 20
    # What a worker process receives: the factory and these settings, pickled.
    factory = pickle.loads(pickle.dumps(functools.partial(worker_app, plan.settings, None)))
    assert factory.args[0].credentials() == credentials


def test_no_auth_listens_on_loopback_unless_told(synthetic_model, clean_env):
    model = str(synthetic_model[1].path)
    assert plan_service({"model": model, "no_auth": True}).settings.host == "127.0.0.1"
    wide = plan_service({"model": model, "no_auth": True, "host": "0.0.0.0"})
    assert wide.settings.host == "0.0.0.0"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "no credentials"),
        ({"CHURN_USER": "ops", "CHURN_PASSWORD": "short"}, "use at least 12"),
        ({"CHURN_USER": "ops"}, "CHURN_PASSWORD"),
    ],
)
def test_unsafe_settings_are_refused_before_the_model_is_read(clean_env, tmp_path, env, message):
    for name, value in env.items():
        clean_env.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        plan_service({"model": str(tmp_path / "no-such-model")})


def test_register_without_tracking_is_refused_before_reading_data(tmp_path):
    from churnops.pipeline.build import AutoMLSettings
    from churnops.pipeline.evaluate import ThresholdPolicy

    request = TrainRequest(
        settings=AutoMLSettings(),
        policy=ThresholdPolicy(),
        out=tmp_path / "m",
        data=tmp_path / "missing.csv",
        register="churn",
    )
    with pytest.raises(ConfigError, match="--register needs tracking"):
        load_training_data(request)
