"""Progress bars: per chain, with phase and diagnostics; silent when asked or not a terminal."""

from __future__ import annotations

import pytest

import ember
import ember.distributions as dist
from ember.infer.mcmc import MCMC, NUTS
from ember.infer.mcmc import logger


def model() -> None:
    ember.sample("x", dist.Normal(0.0, 1.0))


def test_bar_shows_phase_step_size_and_acceptance(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(logger, "_is_terminal", lambda: True)
    MCMC(NUTS(model), num_samples=5, warmup_steps=5).run()
    err = capsys.readouterr().err
    assert "Sample" in err and "step size=" in err and "acc. prob=" in err and "10/10" in err


def test_vectorized_chains_get_one_bar_each(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(logger, "_is_terminal", lambda: True)
    MCMC(NUTS(model), num_samples=3, warmup_steps=3, num_chains=2, chain_method="vectorized").run()
    err = capsys.readouterr().err
    assert "Sample [1]" in err and "Sample [2]" in err


def test_silent_when_disabled_or_not_a_terminal(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    MCMC(NUTS(model), num_samples=3, warmup_steps=3).run()  # pytest's stderr is not a terminal
    monkeypatch.setattr(logger, "_is_terminal", lambda: True)
    MCMC(NUTS(model), num_samples=3, warmup_steps=3, disable_progbar=True).run()
    assert capsys.readouterr().err == ""
