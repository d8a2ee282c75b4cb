"""Simulator SFT: turn an LLM into a controllable search-engine simulator.

What ``simsearch sft-simulator`` (``orchestrator.sft_simulator``) and the tiny world's SFT
stage both run, on model and data paths they pass in:

1. Collect: the policy plays episodes on training questions against a real backend
   (``sft.search``, bm25 over the corpus by default); with ``sft.question_queries`` each
   question is also searched verbatim, with ``sft.title_queries`` the title of each corpus
   document. Every (query, documents) pair is recorded.
2. Label each document useful or noisy: ``answer`` = it contains a gold answer
   (normalised), ``named`` = that, and its title occurs in the question or the query,
   ``outcome`` = its episode reached the right answer. ``query`` (for a simulator that
   sees the query alone) labels a document noisy unless its title, or a word of it,
   occurs in the query (BM25 matches a name in part too), and a search that found one is
   useful as a whole page, as the real engine returned it.
   Documents keep their titles, which the fine-tuned simulator then writes.
3. Write ``sft_simulator.jsonl``: per search, a useful example (its useful documents) and a
   noisy one (its noisy documents), in the ``sft`` prompt format with the mode keyword,
   balanced by down-sampling the larger class; a ``sft.bare_fraction`` share also without
   the question (all of them without ``simulator.with_question``).
4. Fine-tune the simulator model on them (loss on the documents only).
5. Save an HF checkpoint (``<output>/simulator``) that the pool loads by path
   (``simulator.engine.model_path``).

``controllability`` measures the result: the share of useful-mode documents that contain
the gold answer versus the share of noisy-mode ones.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field, replace
from pathlib import Path

from actors.dataset import Question
from actors.rewards import contains_answer, exact_match
from actors.simulator_prompt import (format_documents, parse_documents, request_prompt,
                                     simulator_prompt, split_title, titled)
from conf.loader import ConfigError
from conf.schema import Assets, Config, SftConf, SimulatorConf

# Backends that can run here without a Ray cluster and that are not the simulator itself.
REAL_BACKENDS = ("bm25", "http", "openai")
# Raised when the steps change what they build from the same settings, so that cached
# builds (tinyworld.stages) are not reused: 2, the collection's turns are seeded per key
# and its searches kept in key order.
BUILD_VERSION = 2


@dataclass
class SearchRecord:
    key: str  # episode key and turn, "q<index>/s<sample>/t<turn>"
    query: str
    question: str
    answers: list[str]
    docs: list[str]
    titles: list[str] = field(default_factory=list)  # one per document; "" when untitled


@dataclass
class LabeledSearch:
    query: str
    question: str
    answers: list[str]
    useful: list[str]
    noisy: list[str]


class RecordingSearch:
    """Passes searches to a backend and keeps every answered (query, documents) pair; the
    backend is closed by whoever made it, after its last search."""

    def __init__(self, backend):
        self.backend, self.stats = backend, backend.stats
        self.records: list[SearchRecord] = []

    async def search(self, request):
        result = await self.backend.search(request)
        if not result.failed and result.docs:
            self.records.append(SearchRecord(
                request.key, request.query, request.question, request.answers,
                [text for _, text in result.docs], [title for title, _ in result.docs]))
        return result

    async def close(self) -> None:
        pass


def collect(cfg: Config, policy_path: str, questions: list[Question], search_conf,
            ) -> tuple[list[SearchRecord], dict[str, float]]:
    """Play sft.samples episodes per question, then search the extra queries; the searches
    and each episode's EM."""
    from actors.play import play_questions
    from actors.search import BackendContext, make_backend

    backend = make_backend(search_conf, BackendContext(cfg.simulator, cfg.trainer.seed))
    recorder = RecordingSearch(backend)

    async def run():
        try:
            played = await play_questions(cfg.rollout.engine, cfg.rollout.episode, policy_path,
                                          cfg.trainer.seed, questions, cfg.sft.samples,
                                          lambda generator, encode: recorder)
            extra = extra_queries(cfg.sft, questions, search_conf.bm25.corpus_path)
            await asyncio.gather(*[recorder.search(request) for request in extra])
            return played
        finally:
            await backend.close()

    played = asyncio.run(run())
    episode_em = {p.key: exact_match(p.trajectory.answer, p.question.answers) for p in played}
    # in the order of their keys, not of their answers' arrival: the examples drawn from
    # them then depend on the settings alone
    return sorted(recorder.records, key=lambda r: r.key), episode_em


def extra_queries(sft: SftConf, questions: list[Question], corpus_path: str) -> list:
    """Searches besides the policy's: each question verbatim (sft.question_queries) and the
    title of each corpus document (sft.title_queries)."""
    from actors.retrievers import load_corpus
    from actors.search import SearchRequest

    extra = [SearchRequest(q.question, q.question, q.answers, f"q{q.index}/question")
             for q in questions if sft.question_queries]
    if sft.title_queries:
        if not corpus_path:
            raise ConfigError("sft.title_queries needs the corpus: set sft.search.bm25."
                              "corpus_path")
        titles = dict.fromkeys(title for title, _ in load_corpus(corpus_path) if title)
        extra += [SearchRequest(title, "", [], f"title{i}") for i, title in enumerate(titles)]
    return extra


def label_searches(records: list[SearchRecord], episode_em: dict[str, float],
                   how: str) -> list[LabeledSearch]:
    """Split each search's documents into useful and noisy (titled as the simulator
    writes them); repeated searches once."""
    seen, out = set(), []
    for rec in records:
        titles = rec.titles or [""] * len(rec.docs)
        docs = [titled(title, doc) for title, doc in zip(titles, rec.docs)]
        em = episode_em.get(rec.key.rsplit("/t", 1)[0], 0.0)
        keep = [_is_useful(doc, title, rec, how, em) for doc, title in zip(rec.docs, titles)]
        useful = [d for d, k in zip(docs, keep) if k]
        noisy = [d for d, k in zip(docs, keep) if not k]
        if how == "query" and useful:
            useful = docs  # the real engine's whole page for a query it could answer
        ident = (rec.query, rec.question, tuple(useful), tuple(noisy))
        if ident not in seen:
            seen.add(ident)
            out.append(LabeledSearch(rec.query, rec.question, rec.answers, useful, noisy))
    return out


def _is_useful(doc: str, title: str, rec: SearchRecord, how: str, em: float) -> bool:
    """One document's label (see the module doc); untitled ones fall back to answer."""
    if how == "outcome":
        return em == 1.0
    if how == "answer" or not title:
        return contains_answer(doc, rec.answers)
    if how == "query":
        return contains_answer(rec.query, title.split())  # a name's parts match alone
    return (contains_answer(doc, rec.answers)
            and contains_answer(f"{rec.question} {rec.query}", [title]))


def build_examples(labeled: list[LabeledSearch], num_docs: int, doc_words: int,
                   seed: int, bare_fraction: float = 0.0,
                   with_question: bool = True) -> list[dict]:
    """Balanced useful/noisy examples in the sft prompt format.

    Every prompt asks for num_docs documents (what the pool will be asked for) and the
    completion holds the documents of that label, possibly fewer: a count that followed
    the label would let the count, not the keyword, select the mode. A bare_fraction share
    of the examples is repeated without the question (as a bare ``/retrieve`` query asks);
    without with_question (``simulator.with_question``) every example is bare.
    """
    by_mode: dict[str, list[LabeledSearch]] = {"useful": [], "noisy": []}
    for item in labeled:
        for mode, docs in (("useful", item.useful), ("noisy", item.noisy)):
            if docs:
                by_mode[mode].append(item)
    size = min(len(v) for v in by_mode.values())
    rng = random.Random(seed)
    bare = size if not with_question else round(size * bare_fraction)  # same per mode
    examples = []
    for mode, items in by_mode.items():
        for i, item in enumerate(rng.sample(items, size)):
            if with_question:
                examples.append(_example(item, mode, item.question, num_docs, doc_words))
            if i < bare:
                examples.append(_example(item, mode, "", num_docs, doc_words))
    rng.shuffle(examples)
    return examples


def _example(item: LabeledSearch, mode: str, question: str, num_docs: int,
             doc_words: int) -> dict:
    docs = item.useful if mode == "useful" else item.noisy
    prompt = simulator_prompt("sft", item.query, question, item.answers, mode == "noisy",
                              num_docs, doc_words)
    return {"mode": mode, "query": item.query, "question": question,
            "answers": item.answers, "prompt": prompt, "completion": format_documents(docs)}


def check_backend(sft: SftConf) -> None:
    if sft.search.backend not in REAL_BACKENDS:
        raise ConfigError(f"sft.search.backend={sft.search.backend!r} cannot collect "
                          f"documents for simulator SFT; allowed: {', '.join(REAL_BACKENDS)}")


def build_simulator(cfg: Config, paths: Assets, out: Path) -> Path:
    """Run the five steps into `out` with paths' policy, questions and corpus, fine-tuning
    paths.simulator_path; returns the checkpoint folder."""
    from actors.dataset import load_questions
    from actors.search import with_corpus
    from learner.sft import finetune

    check_backend(cfg.sft)
    out.mkdir(parents=True, exist_ok=True)
    questions = load_questions(paths.train_path)[:cfg.sft.questions or None]
    search = with_corpus(cfg.sft.search, paths.corpus_path)
    records, episode_em = collect(cfg, paths.policy_path, questions, search)
    labeled = label_searches(records, episode_em, cfg.sft.label)
    examples = build_examples(labeled, search.topk, cfg.simulator.doc_words, cfg.trainer.seed,
                              cfg.sft.bare_fraction, cfg.simulator.with_question)
    if not examples:
        raise RuntimeError(f"no balanced examples from {len(records)} searches: every "
                           f"document was labelled the same way (sft.label={cfg.sft.label})")
    with open(out / "sft_simulator.jsonl", "w") as f:
        for ex in examples:
            f.write(json.dumps(ex) + "\n")
    checkpoint = out / "simulator"
    losses = finetune(paths.simulator_path, checkpoint,
                      [[(ex["prompt"], False), (ex["completion"], True)] for ex in examples],
                      cfg.sft.steps, cfg.sft.lr, cfg.sft.batch_size, cfg.trainer.seed,
                      end_with_eos=True)
    summary = {"searches": len(records), "labelled": len(labeled), "examples": len(examples),
               "label": cfg.sft.label, "loss_first": losses[0], "loss_last": losses[-1],
               "checkpoint": str(checkpoint)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"sft-simulator: {len(records)} searches -> {len(examples)} examples "
          f"(label={cfg.sft.label}); loss {losses[0]:.3f} -> {losses[-1]:.3f}; "
          f"checkpoint {checkpoint.resolve()}", flush=True)
    return checkpoint


async def controllability(sim: SimulatorConf, model_path: str, questions: list[Question],
                          num_docs: int, seed: int) -> dict[str, float]:
    """Shares of useful-mode and noisy-mode documents that contain the gold answer."""
    from actors.engine import generate, sampling_params, start_engine

    engine = start_engine(sim.engine, model_path, seed)
    try:
        tokenizer = engine.get_tokenizer()
        params = sampling_params(sim.max_tokens, sim.temperature, stop=[f"Doc {num_docs + 1}:"])

        async def docs(q: Question, noisy: bool) -> list[str]:
            prompt = request_prompt(replace(sim, prompt="sft"), q.question, q.question,
                                    q.answers, noisy, num_docs)
            out = await generate(engine, tokenizer.encode(prompt), params)
            return parse_documents(out.text, num_docs)

        useful = await asyncio.gather(*[docs(q, False) for q in questions])
        noisy = await asyncio.gather(*[docs(q, True) for q in questions])
    finally:
        engine.shutdown()
        del engine  # not left for interpreter teardown (see actors.play)
    result = {}
    for mode, per_question in (("useful", useful), ("noisy", noisy)):
        hits = [contains_answer(split_title(d)[1], q.answers)
                for q, ds in zip(questions, per_question) for d in ds]
        result[f"{mode}_docs"] = float(len(hits))
        result[f"{mode}_with_answer"] = sum(hits) / max(1, len(hits))
    return result

