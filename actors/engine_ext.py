"""A vLLM worker extension: read the engine's weights back through collective_rpc.

Used to check that a weight sync made the rollout engine equal to the learner. Tensors go
back as nested lists, which vLLM's RPC serializer carries without extra settings.
"""

from __future__ import annotations


class WeightExport:
    def export_weights(self) -> dict[str, list]:
        model = self.model_runner.get_model()
        return {name: p.detach().float().cpu().tolist() for name, p in model.named_parameters()}
