"""The registry answers the web process without loading torch."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ml import registry

ROOT = Path(__file__).resolve().parents[3]


def test_listing_pipelines_does_not_import_torch():
    code = (
        "import json, sys; from ml import registry; "
        "print(json.dumps({'names': registry.names(), 'torch': 'torch' in sys.modules, "
        "'schemas': [p['config_schema']['type'] for p in registry.available()]}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    answer = json.loads(out.stdout)
    assert {"dfr", "patchcore", "unet"} <= set(answer["names"])
    assert answer["torch"] is False
    assert set(answer["schemas"]) == {"object"}


def test_validating_a_config_names_the_bad_key_without_torch():
    from ml.config import ConfigError

    with pytest.raises(ConfigError) as err:
        registry.validate_config("patchcore", {"image_sise": 128})
    assert err.value.key == "image_sise"
    with pytest.raises(ConfigError) as err:
        registry.validate_config("dfr", {"image_size": "big"})
    assert err.value.key == "image_size"


def test_unknown_pipeline_lists_the_known_ones():
    with pytest.raises(registry.UnknownPipeline) as err:
        registry.describe("no-such-pipeline")
    for name in ("dfr", "patchcore", "unet"):
        assert name in str(err.value)


def test_duplicate_registration_is_refused():
    from ml.base import Pipeline

    first = registry.get("patchcore")

    class Impostor(Pipeline):
        name = "patchcore"
        supervision = "unsupervised"

    with pytest.raises(ValueError, match="already registered"):
        registry.register(Impostor)
    assert registry.get("patchcore") is first
