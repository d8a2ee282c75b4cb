"""The tiny world's build stages, each cached in a folder named by what it depends on.

    world        the synthetic world (corpus, train/test parquet) and its tokenizer
    pretrain     two base LMs: the simulator reads the whole corpus (it "knows" every
                 entity, held-out ones included: the method's premise that an LLM's
                 knowledge can play the search engine); the policy reads the cities, the
                 training people and general text, so held-out questions need a search
    warm-start   a short SFT of the policy base on format demonstrations about invented
                 people outside the world
    sft          the simulator SFT for useful/noisy control (``learner.simulator_sft``)

A stage's folder is ``<world.cache_dir>/<stage>-<hash>``, the hash taken over the stage's
settings and the names of the stage folders it reads (not where the cache lies), so a
rerun finds a stage already built and skips it, and a changed setting rebuilds that stage
and those after it. Stages build under a file lock (concurrent runs build once) and count
as built only once their ``DONE`` file exists.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

from conf.schema import Assets, Config, WorldConf

BUILD_VERSION = "tiny-v11"
DONE = "DONE"


@dataclass(frozen=True)
class TinyPaths:
    data: Path
    tokenizer: Path
    policy: Path  # the warm-started policy
    simulator: Path  # the simulator base (before its SFT)


def cached_stage(cache_dir: str, name: str, depends: dict, build: Callable[[Path], None],
                 quiet: bool = False) -> Path:
    """The folder of stage `name` for `depends`; build(folder) runs only if not yet built
    (quiet: say nothing when it was)."""
    digest = hashlib.sha256(json.dumps(depends, sort_keys=True).encode()).hexdigest()[:10]
    out = Path(cache_dir).expanduser() / f"{name}-{digest}"
    if (out / DONE).exists():
        if not quiet:
            print(f"stage {name}: cached, {out}", flush=True)
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f".{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / DONE).exists():
            shutil.rmtree(out, ignore_errors=True)  # a build that died half-way
            out.mkdir()
            start = time.monotonic()
            build(out)
            seconds = time.monotonic() - start
            (out / DONE).write_text(json.dumps({"depends": depends, "seconds": seconds}))
            print(f"stage {name}: built in {seconds:.1f} s, {out}", flush=True)
    return out


def world_stage(world: WorldConf, quiet: bool = False) -> Path:
    """data/ (corpus.jsonl, train.parquet, test.parquet) and tokenizer/."""
    from tinyworld.models import build_tokenizer
    from tinyworld.world import world_text, write_world

    def build(out: Path) -> None:
        write_world(out / "data", world.seed, world.num_people)
        build_tokenizer(world_text(out / "data"), out / "tokenizer")

    depends = {"version": BUILD_VERSION, "seed": world.seed, "people": world.num_people}
    return cached_stage(world.cache_dir, "world", depends, build, quiet)


def pretrain_stage(world: WorldConf, built: Path | None = None, quiet: bool = False) -> Path:
    """policy/ and simulator/: base LMs pretrained on the corpus (see the module doc);
    built is the world stage's folder when known."""
    from actors.retrievers import load_corpus
    from tinyworld.pretrain import GENERIC_DOCUMENTS, corpus_examples, pretrain
    from tinyworld.world import generic_documents, held_out_titles

    built = built or world_stage(world)

    def build(out: Path) -> None:
        corpus = built / "data" / "corpus.jsonl"
        titles = {title for title, _ in load_corpus(corpus)}
        general = [[(doc, True)] for doc in
                   generic_documents(GENERIC_DOCUMENTS, world.seed, exclude=titles)]
        policy = corpus_examples(corpus, held_out_titles(built / "data")) + general
        pretrain(built / "tokenizer", out / "policy", policy, world.pretrain_steps,
                 world.seed + 1)
        pretrain(built / "tokenizer", out / "simulator", corpus_examples(corpus, set()),
                 world.pretrain_steps, world.seed + 2)

    depends = {"world": built.name, "steps": world.pretrain_steps}
    return cached_stage(world.cache_dir, "pretrain", depends, build, quiet)


def warm_start_stage(world: WorldConf, self_search: bool = False) -> Path:
    """The policy base fine-tuned on format demonstrations about invented people (their
    world in demo/); self_search (SSRL) also trains the information the policy writes."""
    from tinyworld.warm_start import warm_start
    from tinyworld.world import write_demo_world

    bases = pretrain_stage(world)

    def build(out: Path) -> None:
        write_demo_world(out / "demo", world.seed, world.num_people, world.warm_start_people)
        warm_start(bases / "policy", out, out / "demo", world.warm_start_steps, self_search,
                   world.seed)

    depends = {"pretrain": bases.name, "steps": world.warm_start_steps,
               "people": world.warm_start_people, "self_search": self_search}
    return cached_stage(world.cache_dir, "warm-start", depends, build)


def ensure_tiny_assets(world: WorldConf, self_search: bool = False) -> TinyPaths:
    """World, tokenizer, warm-started policy and simulator base, built once."""
    policy = warm_start_stage(world, self_search)
    built = world_stage(world, quiet=True)
    return TinyPaths(built / "data", built / "tokenizer", policy,
                     pretrain_stage(world, built, quiet=True) / "simulator")


def simulator_sft_stage(cfg: Config, assets: Assets, tiny: TinyPaths) -> Path:
    """The simulator base after the simulator SFT (``learner.simulator_sft``) on `assets`,
    the run's paths with the untuned simulator (by default the warm-started policy, the
    world's questions and BM25 over its corpus)."""
    from learner.simulator_sft import BUILD_VERSION, build_simulator

    run_cfg = replace(cfg, sft=replace(cfg.sft, output_dir=""))

    def build(out: Path) -> None:
        build_simulator(run_cfg, assets, out)

    depends = {"version": BUILD_VERSION, "policy": tiny.policy.name,
               "simulator": f"{tiny.simulator.parent.name}/{tiny.simulator.name}",
               "sft": asdict(run_cfg.sft), "episode": asdict(cfg.rollout.episode),
               "doc_words": cfg.simulator.doc_words, "seed": cfg.trainer.seed,
               "with_question": cfg.simulator.with_question}
    return cached_stage(cfg.world.cache_dir, "simulator-sft", depends, build) / "simulator"
