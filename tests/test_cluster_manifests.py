"""cluster/ and conf/ agree. Every manifest parses (the launcher YAML also against Ray's
own schema); each GPU recipe's roles (learner ranks, rollout workers, simulator replicas)
find exactly one node type offering their custom resource, with the GPUs, CPUs and
capacity for all their actors; the launcher, KubeRay and local fake-cluster layouts
offer the same resources."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from conf.loader import load_config, shipped_configs

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "cluster"
GPU_RECIPES = [p for p in shipped_configs() if p.name.startswith("gpu-")]


@dataclass
class NodeShape:
    cpus: float
    gpus: float
    custom: dict[str, float]
    max_nodes: int


@dataclass
class Role:
    name: str
    resource: str
    actors: int
    cpus: float
    gpus: float


def load_yaml(path: Path):
    return yaml.safe_load(path.read_text())


def launcher_shapes(path: Path = CLUSTER / "launcher.yaml") -> dict[str, NodeShape]:
    shapes = {}
    for name, node in load_yaml(path)["available_node_types"].items():
        res = {k: v for k, v in node["resources"].items()
               if k not in ("memory", "object_store_memory")}
        shapes[name] = NodeShape(res.pop("CPU", 0), res.pop("GPU", 0), res,
                                 node["max_workers"])
    return shapes


def kuberay_shapes() -> dict[str, NodeShape]:
    spec = load_yaml(CLUSTER / "kuberay" / "raycluster.yaml")["spec"]
    shapes = {}
    for group in spec["workerGroupSpecs"]:
        params = group["rayStartParams"]
        custom = json.loads(json.loads(params.get("resources", '"{}"')))
        (container,) = group["template"]["spec"]["containers"]
        limits = container["resources"]["limits"]
        assert float(params["num-gpus"]) == float(limits.get("nvidia.com/gpu", 0))
        shapes[group["groupName"]] = NodeShape(float(params["num-cpus"]),
                                               float(params["num-gpus"]), custom,
                                               group["maxReplicas"])
    return shapes


def roles(recipe: Path) -> list[Role]:
    cfg = load_config(recipe)
    ro, sim, lrn = cfg.rollout, cfg.simulator, cfg.learner
    return [Role("learner", lrn.resource, lrn.num_workers, lrn.num_cpus, lrn.num_gpus),
            Role("rollout", ro.resource, ro.num_workers, ro.num_cpus, ro.num_gpus),
            Role("simulator", sim.resource, sim.autoscaling.max_replicas, sim.num_cpus,
                 sim.num_gpus)]


def by_resource(shapes: dict[str, NodeShape]) -> dict[str, tuple]:
    return {res: (units, s.gpus, s.cpus, s.max_nodes)
            for s in shapes.values() for res, units in s.custom.items()}


@pytest.mark.parametrize("path", sorted(CLUSTER.rglob("*.yaml")), ids=lambda p: p.name)
def test_every_cluster_yaml_parses_to_a_mapping(path):
    loaded = load_yaml(path)
    assert isinstance(loaded, dict) and loaded


def test_the_launcher_yaml_passes_rays_schema():
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(load_yaml(CLUSTER / "launcher.yaml")))


def test_there_are_gpu_recipes_for_two_policy_sizes():
    assert len(GPU_RECIPES) >= 2
    assert all(load_config(p).rollout.num_gpus >= 1 for p in GPU_RECIPES)


@pytest.mark.parametrize("layout", ["launcher", "kuberay"])
@pytest.mark.parametrize("recipe", GPU_RECIPES, ids=lambda p: p.name)
def test_each_role_fits_the_node_type_offering_its_resource(recipe, layout):
    shapes = launcher_shapes() if layout == "launcher" else kuberay_shapes()
    for role in roles(recipe):
        hosts = [s for s in shapes.values() if role.resource in s.custom]
        assert len(hosts) == 1, f"{role.name}: no single node type offers {role.resource!r}"
        node = hosts[0]
        units = node.custom[role.resource]
        assert units * role.gpus <= node.gpus, f"{role.name}: more units than GPUs"
        assert units * role.cpus <= node.cpus, f"{role.name}: more units than CPUs"
        assert units * node.max_nodes >= role.actors, f"{role.name}: too few nodes"


def test_launcher_kuberay_and_the_local_fake_cluster_offer_the_same_resources():
    launcher, kuberay = by_resource(launcher_shapes()), by_resource(kuberay_shapes())
    assert launcher == kuberay
    fake = launcher_shapes(CLUSTER / "local" / "fake-cluster.yaml")
    assert {r for s in fake.values() for r in s.custom} == set(launcher)


def test_the_rayjob_runs_a_shipped_recipe_on_the_raycluster():
    job = load_yaml(CLUSTER / "kuberay" / "rayjob.yaml")["spec"]
    cluster = load_yaml(CLUSTER / "kuberay" / "raycluster.yaml")["metadata"]["name"]
    assert job["clusterSelector"] == {"ray.io/cluster": cluster}
    command, verb, config = job["entrypoint"].split()[:3]
    assert (command, verb) == ("simsearch", "train")
    assert (ROOT / "conf" / Path(config).name) in GPU_RECIPES


def test_the_image_holds_every_package():
    import tomllib

    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"]
    dockerfile = (CLUSTER / "Dockerfile").read_text()
    assert all(f"COPY {p} {p}" in dockerfile for p in packages)


@pytest.mark.parametrize("recipe", GPU_RECIPES, ids=lambda p: p.name)
def test_an_embedded_cluster_offers_each_roles_resource_for_all_its_actors(recipe):
    from orchestrator.wiring import embedded_resources

    offered = embedded_resources(load_config(recipe))
    assert offered == {role.resource: role.actors for role in roles(recipe)}


# Closed by default: the job API runs any code, so no layout offers it on a public address
# or without Ray's token, and the README runbook reaches it the way the manifests allow.

DASHBOARD_PORT = 8265


def flag_value(command: str, flag: str) -> str | None:
    for word in command.split():
        if word.startswith(f"{flag}="):
            return word.split("=", 1)[1]
    return None


def container_env(container: dict) -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def runbook() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme[readme.index("## Run on a cluster"):readme.index("## Data formats")]


def test_the_launcher_keeps_the_dashboard_on_the_heads_loopback_with_token_auth():
    launcher = load_yaml(CLUSTER / "launcher.yaml")
    (head_start,) = [c for c in launcher["head_start_ray_commands"] if "ray start" in c]
    assert "0.0.0.0" not in yaml.safe_dump(launcher)
    assert flag_value(head_start, "--dashboard-host") == "127.0.0.1"
    starts = [c for c in launcher["head_start_ray_commands"]
              + launcher["worker_start_ray_commands"] if "ray start" in c]
    assert len(starts) == 2
    assert all("export RAY_AUTH_MODE=token;" in c for c in starts)
    # Every node holds the token in Ray's default place, copied from the submitter's own.
    assert launcher["file_mounts"] == {"~/.ray/auth_token": "~/.ray/auth_token"}


def test_the_raycluster_turns_on_token_auth_and_exposes_no_service():
    spec = load_yaml(CLUSTER / "kuberay" / "raycluster.yaml")["spec"]
    assert spec["authOptions"] == {"mode": "token"}
    head = spec["headGroupSpec"]
    assert head["serviceType"] == "ClusterIP" and head["enableIngress"] is False
    # The dashboard binds the pod's network (the operator and the RayJob submitter reach it
    # through the head Service); the NetworkPolicy below is what closes it.
    assert head["rayStartParams"]["dashboard-host"] == "0.0.0.0"


def test_the_networkpolicy_admits_only_the_clusters_pods_and_the_job_api_clients():
    cluster = load_yaml(CLUSTER / "kuberay" / "raycluster.yaml")["metadata"]["name"]
    policy = load_yaml(CLUSTER / "kuberay" / "networkpolicy.yaml")
    assert policy["kind"] == "NetworkPolicy"
    own_pods = {"matchLabels": {"ray.io/cluster": cluster}}
    spec = policy["spec"]
    assert spec["podSelector"] == own_pods and spec["policyTypes"] == ["Ingress"]
    among_pods, job_api = spec["ingress"]
    assert among_pods == {"from": [{"podSelector": own_pods}]}
    assert job_api["ports"] == [{"protocol": "TCP", "port": DASHBOARD_PORT}]
    assert all("ipBlock" not in peer for rule in spec["ingress"] for peer in rule["from"])
    submitter_labels = load_yaml(CLUSTER / "kuberay" / "rayjob.yaml")["spec"][
        "submitterPodTemplate"]["metadata"]["labels"]
    admitted = [peer["podSelector"]["matchLabels"] for peer in job_api["from"]]
    assert admitted == [{"app.kubernetes.io/name": "kuberay-operator"}, submitter_labels]


def test_the_rayjob_submitter_carries_the_clusters_token():
    cluster = load_yaml(CLUSTER / "kuberay" / "raycluster.yaml")["metadata"]["name"]
    job = load_yaml(CLUSTER / "kuberay" / "rayjob.yaml")["spec"]
    (submitter,) = job["submitterPodTemplate"]["spec"]["containers"]
    assert "command" not in submitter  # KubeRay writes the `ray job submit` command
    env = container_env(submitter)
    assert env["RAY_AUTH_MODE"] == "token"
    # authOptions keeps the token in a Secret named after the cluster, key auth_token.
    assert env["RAY_AUTH_TOKEN"] == {"secretKeyRef": {"name": cluster, "key": "auth_token"}}


def test_the_runbook_reaches_the_job_api_as_the_manifests_allow():
    text = runbook()
    cluster = load_yaml(CLUSTER / "kuberay" / "raycluster.yaml")["metadata"]["name"]
    address = f"--address http://127.0.0.1:{DASHBOARD_PORT}"
    assert "ray get-auth-token --generate" in text  # the token launcher.yaml copies out
    assert "ray dashboard cluster/launcher.yaml" in text
    assert f"kubectl port-forward svc/{cluster}-head-svc {DASHBOARD_PORT}:{DASHBOARD_PORT}" in text
    assert "kubectl apply -f cluster/kuberay/raycluster.yaml -f cluster/kuberay/networkpolicy.yaml" in text
    assert f"kubectl get secret {cluster} -o jsonpath='{{.data.auth_token}}'" in text
    assert "export RAY_AUTH_MODE=token" in text
    for verb in ("ray job submit", "ray job logs"):
        lines = [line for line in text.splitlines() if line.startswith(verb)]
        assert lines and all(address in line for line in lines)
