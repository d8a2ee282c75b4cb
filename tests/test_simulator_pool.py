"""The simulator pool on a local Ray cluster: real Ray Serve, real vLLM replicas of the
tiny simulator. It scales up under load and down when idle, a killed replica loses no
search, a replica whose engine died fails Serve's health check and is replaced, and a
search that times out ends as a recorded failure."""

import asyncio
import os
import signal

import psutil
import pytest

from actors.curriculum import NoiseSchedule
from actors.episode import format_observation
from actors.search import SearchRequest, SimulatedSearch
from actors.simulator import pool_writer
from conf.schema import AutoscalingConf, SearchConf, SimulatorConf
from orchestrator.wiring import simulator_replicas, start_simulator
from tests.helpers import wait_until

pytestmark = pytest.mark.integration


def pool_conf(min_replicas: int, max_replicas: int, **scale) -> SimulatorConf:
    return SimulatorConf(max_tokens=48, num_cpus=0.1, autoscaling=AutoscalingConf(
        min_replicas=min_replicas, max_replicas=max_replicas, **scale))


def requests(n: int, tag: str) -> list[SearchRequest]:
    return [SearchRequest(f"where was person {i} born", f"where was person {i} born?",
                          ["Lima"], f"{tag}/g{i}/s0/t0") for i in range(n)]


async def search_all(search: SimulatedSearch, batch: list[SearchRequest]):
    return await asyncio.gather(*[search.search(r) for r in batch])


@pytest.fixture(scope="module")
def two_replicas(ray_cluster, tiny_assets):
    handle = start_simulator(pool_conf(2, 2), str(tiny_assets.simulator), seed=0,
                             app_name="pool-fixed")
    yield handle
    from ray import serve

    serve.delete("pool-fixed")


def test_replicas_hold_the_custom_resource(two_replicas):
    import ray

    # one unit of `simulator` per replica, so only nodes offering it host the pool
    held = wait_until(lambda: ray.cluster_resources()["simulator"]
                      - ray.available_resources().get("simulator", 0), 30,
                      "the replicas' resource use to show")
    assert held == 2


def test_a_batch_of_queries_is_answered(two_replicas):
    search = SimulatedSearch(pool_writer(two_replicas), SearchConf(topk=3), seed=0,
                             noise=NoiseSchedule(end=0.5, total_steps=1))
    results = asyncio.run(search_all(search, requests(16, "batch")))
    assert all(not r.failed and 1 <= len(r.docs) <= 3 for r in results)
    assert 0 < sum(r.noisy for r in results) < 16
    stats = search.stats.drain()
    assert len(stats["latencies"]) == 16 and all(t > 0 for t in stats["tokens"])


def test_a_killed_replica_loses_no_search(two_replicas):
    import ray

    search = SimulatedSearch(pool_writer(two_replicas),
                             SearchConf(topk=3, timeout_s=60, retries=3), seed=0)
    victim = _replica_actors("pool-fixed")[0]

    async def search_while_killing():
        pending = asyncio.ensure_future(search_all(search, requests(120, "kill")))
        # kill as soon as searches are flowing: most of the 120 are still in flight
        while len(search.stats.latencies) < 3:
            await asyncio.sleep(0.01)
        ray.kill(victim, no_restart=True)
        done_at_kill = len(search.stats.latencies)
        return done_at_kill, await pending

    done_at_kill, results = asyncio.run(search_while_killing())
    assert done_at_kill < 120
    # requests the dead replica had accepted come back through our retry; those it had
    # not accepted yet Serve routes elsewhere itself: either way none is lost
    assert [r.failed for r in results] == [False] * 120
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(victim.__ray_ready__.remote(), timeout=30)
    wait_until(lambda: simulator_replicas("pool-fixed") == 2, 180, "a replacement replica")


def test_a_replica_whose_engine_died_is_replaced(two_replicas):
    import ray

    name = _replica_names("pool-fixed")[0]
    victim = ray.get_actor(name, namespace="serve")
    pid = ray.get(victim.__ray_call__.remote(lambda replica: os.getpid()), timeout=30)
    (core,) = [p for p in psutil.Process(pid).children()
               if "EngineCore" in " ".join(p.cmdline())]
    core.send_signal(signal.SIGKILL)  # the replica lives on, its engine is gone
    search = SimulatedSearch(pool_writer(two_replicas),
                             SearchConf(topk=3, timeout_s=10, retries=3), seed=0)

    def replaced() -> bool:
        asyncio.run(search_all(search, requests(4, "probe")))  # traffic meanwhile
        return name not in _replica_names("pool-fixed") and \
            simulator_replicas("pool-fixed") == 2

    wait_until(replaced, 240, "Serve to replace the replica whose engine died")
    results = asyncio.run(search_all(search, requests(16, "after")))
    assert [r.failed for r in results] == [False] * 16


def test_a_timed_out_search_is_a_recorded_failure(two_replicas):
    search = SimulatedSearch(pool_writer(two_replicas),
                             SearchConf(topk=3, timeout_s=0.001, retries=1), seed=0)
    (result,) = asyncio.run(search_all(search, requests(1, "timeout")))
    assert result.failed and "timed out" in result.error
    assert (search.stats.failures, search.stats.retried) == (1, 1)
    assert "The search failed: timed out" in format_observation(result)


def test_pool_scales_up_under_load_and_down_when_idle(ray_cluster, tiny_assets):
    from ray import serve

    conf = pool_conf(1, 2, target_ongoing_requests=1.0, upscale_delay_s=0.5,
                     downscale_delay_s=2.0)
    handle = start_simulator(conf, str(tiny_assets.simulator), seed=0, app_name="pool-auto")
    try:
        assert simulator_replicas("pool-auto") == 1
        search = SimulatedSearch(pool_writer(handle), SearchConf(topk=3), seed=0)

        async def load_until_two_replicas():
            rounds = 0
            while simulator_replicas("pool-auto") < 2:
                results = await search_all(search, requests(16, f"load{rounds}"))
                assert not any(r.failed for r in results)
                rounds += 1
                assert rounds < 400, "the pool never scaled up"
            return rounds

        assert asyncio.run(load_until_two_replicas()) >= 1
        wait_until(lambda: simulator_replicas("pool-auto") == 1, 120, "scale-down when idle")
    finally:
        serve.delete("pool-auto")


def _replica_names(app_name: str) -> list[str]:
    import ray

    return [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
            if a["name"].startswith(f"SERVE_REPLICA::{app_name}#")]


def _replica_actors(app_name: str) -> list:
    import ray

    return [ray.get_actor(name, namespace="serve") for name in _replica_names(app_name)]


def test_a_pool_no_node_can_host_stops_at_its_start_bound(ray_cluster, tiny_assets):
    from ray import serve

    from actors.errors import RunStopped

    conf = SimulatorConf(max_tokens=48, num_cpus=0.1, resource="no-such-node",
                         start_timeout_s=5.0)
    try:
        with pytest.raises(RunStopped, match="did not start within simulator.start_timeout_s"
                                             "=5 s") as err:
            start_simulator(conf, str(tiny_assets.simulator), seed=0, app_name="pool-stuck")
        assert "a replica needs" in str(err.value) and "'no-such-node': 1" in str(err.value)
    finally:
        serve.delete("pool-stuck")
