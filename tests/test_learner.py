"""One learner step per algorithm on the tiny policy (transformers on CPU, no Ray): every
parameter changes, and each algorithm reports its own statistics."""

from pathlib import Path

import pytest
import torch

from actors.trajectory import Trajectory
from conf.schema import LearnerConf
from learner.batching import micro_batches, mini_batch_bounds
from learner.learner import Learner

pytestmark = pytest.mark.integration


def batch(model_path: str) -> list[list[Trajectory]]:
    """Two groups of three with different rewards; behaviour logprobs a little off."""
    torch.manual_seed(0)
    groups = []
    for g in range(2):
        group = []
        for s in range(3):
            traj = Trajectory.from_prompt(list(range(10 + g, 30 + g)))
            sampled = torch.randint(40, 200, (12,)).tolist()
            traj.add_sampled(sampled, (-3.0 - 0.2 * torch.rand(12)).tolist(), [0] * 12)
            traj.add_observation(list(range(50, 60)))
            traj.add_sampled(sampled[:5], [-2.5] * 5, [0] * 5)
            traj.group_index, traj.reward = g, float(s == g)
            group.append(traj)
        groups.append(group)
    return groups


@pytest.mark.parametrize("algorithm, kl_coef", [
    ("grpo", 0.0), ("decoupled_ppo", 0.0), ("reinforce_pp", 0.1)])
def test_every_parameter_changes(tiny_assets, tmp_path, algorithm, kl_coef):
    conf = LearnerConf(algorithm=algorithm, kl_coef=kl_coef, lr=1e-3, micro_batch_size=4)
    learner = Learner(conf, str(tiny_assets.policy), str(tmp_path), seed=0)
    before = learner.weights()
    metrics = learner.train_step(batch(str(tiny_assets.policy)))
    after = learner.weights()
    assert not [k for k in before if torch.equal(before[k], after[k])]
    assert metrics["learner/entropy"] > 0 and metrics["learner/train_tokens"] == 6 * 17
    assert ("learner/kl" in metrics) == (kl_coef > 0)
    assert ("learner/behavior_weight_mean" in metrics) == (algorithm == "decoupled_ppo")
    if kl_coef:
        assert metrics["learner/kl"] == pytest.approx(0.0, abs=1e-6)  # reference = start


def test_a_checkpoint_restores_model_optimizer_and_version(tiny_assets, tmp_path):
    conf = LearnerConf(lr=1e-3, micro_batch_size=4)
    learner = Learner(conf, str(tiny_assets.policy), str(tmp_path / "w"), seed=0)
    learner.train_step(batch(str(tiny_assets.policy)))
    learner.save_checkpoint(str(tmp_path / "ckpt"))
    resumed = Learner(conf, str(tiny_assets.policy), str(tmp_path / "w2"), seed=0,
                      resume_dir=str(tmp_path / "ckpt"))
    assert resumed.version == learner.version == 1
    for name, tensor in learner.weights().items():
        assert torch.equal(tensor, resumed.weights()[name]), name
    state, again = learner.optimizer.state_dict(), resumed.optimizer.state_dict()
    assert state["state"].keys() == again["state"].keys() and state["state"]
    for key, slot in state["state"].items():
        assert torch.equal(slot["exp_avg"], again["state"][key]["exp_avg"])
        assert torch.equal(slot["exp_avg_sq"], again["state"][key]["exp_avg_sq"])
    # the next step from either is the same step
    a = learner.train_step(batch(str(tiny_assets.policy)))
    b = resumed.train_step(batch(str(tiny_assets.policy)))
    assert a["learner/loss"] == pytest.approx(b["learner/loss"], abs=1e-6)
    assert torch.equal(learner.weights()["lm_head.weight"], resumed.weights()["lm_head.weight"])


def _touch(path: str) -> None:
    Path(path).touch()


class _WritesAFile:
    """Unpickling it runs code: it creates its path (what a malicious checkpoint would do)."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (_touch, (self.path,))


def test_resume_loads_the_optimizer_state_as_data_only(tiny_assets, tmp_path):
    """The optimizer file is read with weights_only=True: one holding a pickled object
    (here one whose unpickling would create a file) is refused before any code runs."""
    import pickle

    conf = LearnerConf(micro_batch_size=4)
    learner = Learner(conf, str(tiny_assets.policy), str(tmp_path / "w"), seed=0)
    learner.train_step(batch(str(tiny_assets.policy)))
    learner.save_checkpoint(str(tmp_path / "ckpt"))
    state = learner.optimizer.state_dict()
    marker = tmp_path / "code-ran"
    state["param_groups"][0]["payload"] = _WritesAFile(str(marker))
    torch.save(state, tmp_path / "ckpt" / "optimizer-rank0.pt")
    with pytest.raises(pickle.UnpicklingError, match="weights_only"):
        Learner(conf, str(tiny_assets.policy), str(tmp_path / "w2"), seed=0,
                resume_dir=str(tmp_path / "ckpt"))
    assert not marker.exists()
    torch.load(tmp_path / "ckpt" / "optimizer-rank0.pt", weights_only=False)
    assert marker.exists()  # the payload was live: a full unpickle runs it


def test_publishing_after_a_restart_keeps_the_new_weights(tiny_assets, tmp_path):
    """A learner rebuilt from a checkpoint publishes versions that the undone steps had
    published too; their later folders go, the new ones stay."""
    learner = Learner(LearnerConf(), str(tiny_assets.policy), str(tmp_path), seed=0)
    learner.version = 7
    learner.publish()
    learner.version = 8
    learner.publish()
    learner.version = 9
    learner.publish()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v000008", "v000009"]
    learner.version = 5  # rebuilt from the checkpoint of version 5 (steps 6 to 9 undone)
    path = learner.publish()
    assert (tmp_path / "v000005" / "config.json").exists() and path.endswith("v000005")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v000005"]


def test_mini_batch_bounds_keep_groups_whole():
    assert mini_batch_bounds([3, 3], 1) == [(0, 6)]
    assert mini_batch_bounds([3, 3], 2) == [(0, 3), (3, 6)]
    assert mini_batch_bounds([2, 3, 1, 4, 2], 2) == [(0, 5), (5, 12)]
    assert mini_batch_bounds([2, 2], 5) == [(0, 2), (2, 4)]  # at most one per group


def test_micro_batches_pad_trajectories_of_similar_length_together():
    trajs = []
    for length in (30, 5, 28, 6):
        traj = Trajectory.from_prompt([1] * (length - 1))
        traj.add_sampled([length], [-1.0], [0])
        trajs.append(traj)
    advantages = torch.tensor([0.3, 0.05, 0.28, 0.06])  # (B,) each length / 100
    batches = micro_batches(trajs, advantages, 2, pad_id=0)
    assert [tuple(mb.input_ids.shape) for mb in batches] == [(2, 6), (2, 30)]
    for mb in batches:  # each row keeps its own advantage, its last token is its length
        lengths = mb.attention_mask.sum(-1)
        last = mb.input_ids.gather(1, (lengths - 1).unsqueeze(-1)).squeeze(-1)
        assert torch.equal(last, lengths)
        assert torch.allclose(mb.advantages, lengths / 100)


def test_mini_batches_step_once_per_part(tiny_assets, tmp_path):
    """GRPO's advantages are per group, so two mini-batches of one group each are the same
    two optimizer steps as two batches of one group; the version rises once per batch."""
    groups = batch(str(tiny_assets.policy))
    split = Learner(LearnerConf(lr=1e-3, micro_batch_size=4, mini_batches=2),
                    str(tiny_assets.policy), str(tmp_path / "a"), seed=0)
    split.train_step(groups)
    apart = Learner(LearnerConf(lr=1e-3, micro_batch_size=4), str(tiny_assets.policy),
                    str(tmp_path / "b"), seed=0)
    for group in groups:
        apart.train_step([group])
    assert split.version == 1 and apart.version == 2
    assert all(s["step"] == 2 for s in split.optimizer.state_dict()["state"].values())
    for name, tensor in split.weights().items():
        torch.testing.assert_close(tensor, apart.weights()[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mini_batches", [1, 2])
def test_decoupled_ppo_keeps_the_proximal_policy_of_the_batch(tiny_assets, tmp_path,
                                                               mini_batches):
    """The ratio to the proximal policy is 1 on the first step; with a second mini-batch
    it is taken against the policy before the first step, which has moved."""
    conf = LearnerConf(algorithm="decoupled_ppo", lr=1e-2, micro_batch_size=4,
                       mini_batches=mini_batches)
    learner = Learner(conf, str(tiny_assets.policy), str(tmp_path), seed=0)
    ratio = learner.train_step(batch(str(tiny_assets.policy)))["learner/ratio_mean"]
    if mini_batches == 1:
        assert ratio == pytest.approx(1.0, abs=1e-6)
    else:
        assert abs(ratio - 1.0) > 1e-3


def test_logprobs_are_those_of_the_rollout_temperature(tiny_assets, tmp_path):
    """Behaviour logprobs sampled at temperature 0.5 (logits / 0.5) match the learner's
    when it is told that temperature, and not when it is left at 1."""
    from transformers import AutoModelForCausalLM

    from learner.losses import token_logprobs

    model = AutoModelForCausalLM.from_pretrained(tiny_assets.policy, dtype=torch.float32)
    ids = torch.tensor([list(range(10, 40))])
    with torch.no_grad():
        tempered = token_logprobs(model(input_ids=ids).logits / 0.5, ids)[0]
    groups = []
    for g in range(2):
        traj = Trajectory.from_prompt(ids[0, :18].tolist())
        traj.add_sampled(ids[0, 18:].tolist(), tempered[18:].tolist(), [0] * 12)
        traj.group_index, traj.reward = g, float(g)
        groups.append([traj])
    conf = LearnerConf(lr=0.0, micro_batch_size=4)
    diffs = [Learner(conf, str(tiny_assets.policy), str(tmp_path / str(t)), seed=0,
                     temperature=t).train_step(groups)["learner/logprob_diff"]
             for t in (0.5, 1.0)]
    assert diffs[0] < 1e-4 and diffs[1] > 0.05
