"""Test session set-up: private HOME/TMPDIR, Ray auth off, W&B offline, one Ray cluster.

The Ray cluster starts only when an integration test asks for it (the ``ray_cluster``
fixture), once per session, dashboard off, and is shut down at the end.
"""

import os
import tempfile

import pytest

_PRIVATE = tempfile.mkdtemp(prefix="simsearch-tests-")
os.environ.update({
    "HOME": _PRIVATE,
    "TMPDIR": _PRIVATE,
    "RAY_AUTH_MODE": "disabled",
    "WANDB_MODE": "offline",
    "WANDB_SILENT": "true",
    "TOKENIZERS_PARALLELISM": "false",
})
os.environ.pop("WANDB_API_KEY", None)
os.environ.pop("RAY_ADDRESS", None)
tempfile.tempdir = _PRIVATE


@pytest.fixture(scope="session")
def ray_cluster():
    import ray

    # the simulator pool's replicas need the custom resource `simulator` (one unit each)
    ray.init(include_dashboard=False, num_cpus=os.cpu_count(), log_to_driver=True,
             resources={"simulator": 8})
    yield ray
    from ray import serve

    serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="session")
def tiny_assets():
    """The tiny world and models of conf/tiny.yaml (built once under the private HOME, and
    the same stages that the tests running `conf/tiny.yaml` find)."""
    from conf.loader import load_config
    from tinyworld.stages import ensure_tiny_assets

    return ensure_tiny_assets(load_config("conf/tiny.yaml").world)

