"""Property tests: any input either parses to a valid object or raises the documented error."""

from __future__ import annotations

import contextlib
import json
import tempfile
from dataclasses import fields
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zoo_rl.errors import ConfigError
from zoo_rl.rl.config import RunConfig, algo_defaults
from zoo_rl.rl.zoo.manifest import ManifestError, read_manifest

FIELDS = [f.name for f in fields(RunConfig)]
VALID = RunConfig("transfer", "Pong", "ppo", steps=1000, seed=0, method="zoo", zoo=["a.zip"]).to_dict()
scalars = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=True) | st.text(max_size=12)
values = st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                      max_leaves=8)  # fmt: skip
keys = st.sampled_from([*FIELDS, "bogus"]) | st.text(max_size=8)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parse_config(data) -> None:
    try:
        config = RunConfig.from_dict(data, where="run/config.yaml")
    except ConfigError as err:
        assert str(err).startswith("run/config.yaml: ") and "\n" not in str(err)
        return
    assert RunConfig.from_dict(config.to_dict()) == config  # what parses, round-trips


@SETTINGS
@given(st.dictionaries(keys, values, max_size=6))
def test_config_mutations_parse_or_raise_config_error(changes):
    parse_config({**VALID, **changes})


@SETTINGS
@given(st.dictionaries(st.sampled_from(FIELDS), values, max_size=len(FIELDS)) | values)
def test_arbitrary_config_data_parses_or_raises_config_error(data):
    parse_config(data)


@SETTINGS
@given(st.text(max_size=200))
def test_arbitrary_yaml_text_parses_or_raises_config_error(text):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(text)
        with contextlib.suppress(ConfigError):
            RunConfig.load(path)
        try:
            n_envs, hyperparams = algo_defaults("ppo", path)
            assert isinstance(n_envs, int) and isinstance(hyperparams, dict)
        except ConfigError:
            pass


@SETTINGS
@given(st.dictionaries(st.sampled_from(["n_envs", "hyperparams", "x"]), values) | values)
def test_algo_entries_parse_or_raise_config_error(entry):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "algos.yaml"
        path.write_text(yaml.safe_dump({"ppo": entry}))
        try:
            algo_defaults("ppo", path)
        except ConfigError as err:
            assert "\n" not in str(err)


ENTRY = {"file": "a.zip", "game": "Pong", "algorithm": "ppo", "agent_steps": 1, "seed": 0,
         "eval": {"mean": 1.0, "std": 0.0, "episodes": 10}, "sha256": "ab"}  # fmt: skip
entry_keys = st.sampled_from([*ENTRY, "extra"]) | st.text(max_size=6)


def parse_manifest(text: str | bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "manifest.json"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        try:
            entries = read_manifest(path)
        except ManifestError as err:
            assert str(err).startswith(str(path))
            return
        assert all(isinstance(e["file"], str) and e["file"] for e in entries)


@SETTINGS
@given(st.lists(st.dictionaries(entry_keys, values, max_size=4), max_size=3))
def test_manifest_entry_mutations_read_or_raise_manifest_error(changes):
    parse_manifest(json.dumps({"agents": [{**ENTRY, **c} for c in changes]}))


@SETTINGS
@given(values | st.binary(max_size=64))
def test_arbitrary_manifest_data_reads_or_raises_manifest_error(data):
    parse_manifest(data if isinstance(data, bytes) else json.dumps(data))
