"""A learner group: N Learner actors (FSDP2 ranks) that the driver uses as one learner.

Each method call goes to every rank (they must all take part in the collectives) and the
returned ObjectRef resolves to rank 0's answer once every rank has answered, so an error on
any rank reaches the driver instead of leaving rank 0 waiting in a collective.
"""

from __future__ import annotations


class Fanout:
    """``.remote(*args)`` on every rank; one ObjectRef for rank 0's result."""

    def __init__(self, actors: list, method: str):
        import ray

        self.actors, self.method = actors, method
        self.first = ray.remote(num_cpus=0)(_rank0)  # runs once all ranks' refs resolve

    def remote(self, *args):
        refs = [getattr(actor, self.method).remote(*args) for actor in self.actors]
        return self.first.remote(*refs)


def _rank0(*results):
    return results[0]


class LearnerGroup:
    def __init__(self, actors: list):
        self.actors = actors
        self.train_step = Fanout(actors, "train_step")
        self.publish = Fanout(actors, "publish")
        self.save_checkpoint = Fanout(actors, "save_checkpoint")
        self.weights = Fanout(actors, "weights")
        self.gradients = Fanout(actors, "gradients")
        self.prompt_logprobs = Fanout(actors, "prompt_logprobs")
        self.open_weight_transfer = Fanout(actors, "open_weight_transfer")
        self.send_weights = Fanout(actors, "send_weights")
