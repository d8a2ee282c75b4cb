"""The multi-turn search episode, token-in/token-out.

Each turn the policy generates until ``</search>`` or ``</answer>`` (stop text kept). An
answer ends the episode; a search query goes to the search backend and the documents come
back as an ``<information>`` observation; anything else, a malformed action included (see
``parse_action``), gets the invalid-action observation. Observations are appended as token
ids with mask 0 and text is never re-tokenized: the trajectory is exactly what the engine
produced plus what we appended.
Limits on turns, tokens per turn, observation tokens per episode and context each end the
episode with a recorded reason. The engine and the search backend come in as small
protocols, so the loop is tested with scripted stand-ins as well as with vLLM.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Callable, Protocol

from actors.dataset import Question
from actors.search import SearchBackend, SearchRequest, SearchResult
from actors.trajectory import Trajectory, TurnOutput

STOP_STRINGS = ["</search>", "</answer>"]
INVALID_ACTION = (
    "\nMy previous action is invalid. To search, I should put the query between <search> "
    "and </search>. To give the final answer, I should put it between <answer> and "
    "</answer>. Let me try again.\n"
)
# Any spelling of a protocol tag (case, inner spaces), so that none slips into a payload.
_TAG = re.compile(r"<\s*/?\s*(search|answer|information|think)\s*>", re.IGNORECASE)
# A longer query is reasoning pasted into the search box, not a query (QA queries run to
# tens of characters): an invalid action, not a prompt for the retriever or the simulator
# to choke on. Counted in characters, so parsing needs no tokenizer.
MAX_QUERY_CHARS = 512


@dataclass(frozen=True)
class Limits:
    max_turns: int
    max_turn_tokens: int
    max_obs_tokens: int
    max_context_tokens: int

    @classmethod
    def of(cls, conf) -> Limits:
        """The limits of an EpisodeConf."""
        return cls(conf.max_turns, conf.max_turn_tokens, conf.max_obs_tokens,
                   conf.max_context_tokens)


class Generator(Protocol):
    async def generate(self, token_ids: list[int], max_tokens: int,
                       stop: list[str] | None = None, key: str = "") -> TurnOutput: ...


def parse_action(text: str) -> tuple[str, str]:
    """('search', query) | ('answer', answer) | ('invalid', '') for one turn's text.

    A turn stops at its first ``</search>`` or ``</answer>``, so a well-formed turn holds
    exactly one ``<search>``/``<answer>`` pair, after free text or ``<think>`` blocks if
    any. Anything else is invalid: a second action tag (nested, unclosed, a search inside
    an answer or the reverse), mismatched tags, any protocol tag inside the payload, a blank
    payload or a query longer than MAX_QUERY_CHARS.
    """
    actions = [m for m in _TAG.finditer(text) if m.group(1).lower() in ("search", "answer")]
    if len(actions) != 2:
        return "invalid", ""
    opening, closing = actions
    kind = opening.group(1).lower()
    if (opening.group(0), closing.group(0)) != (f"<{kind}>", f"</{kind}>"):
        return "invalid", ""
    payload = text[opening.end():closing.start()].strip()
    too_long = kind == "search" and len(payload) > MAX_QUERY_CHARS
    if not payload or too_long or _TAG.search(payload):
        return "invalid", ""
    return kind, payload


def format_observation(result: SearchResult) -> str:
    if result.failed:
        body = f"The search failed: {result.error}"
    elif not result.docs:
        body = "No results."
    else:
        body = "\n".join(f"Doc {i} (Title: {title}) {text}" if title else f"Doc {i}: {text}"
                         for i, (title, text) in enumerate(result.docs, 1))
    return f"\n\n<information>{body}</information>\n\n"


async def run_episode(prompt_ids: list[int], question: Question, generator: Generator,
                      search: SearchBackend, encode: Callable[[str], list[int]],
                      limits: Limits, key: str = "", step: int = 0) -> Trajectory:
    """Play one episode; the trajectory's end_reason says why it stopped.

    `key` names the episode in the run (group/sample); each search adds its turn to it.
    `step` is the curriculum's step for its searches (its group's admission version).
    """
    traj = Trajectory.from_prompt(prompt_ids)
    texts: list[str] = []
    obs_tokens, start = 0, time.monotonic()
    traj.end_reason = "max_turns"
    for turn in range(limits.max_turns):
        budget = min(limits.max_turn_tokens, limits.max_context_tokens - len(traj.token_ids))
        if budget <= 0:
            traj.end_reason = "context"
            break
        t0 = time.monotonic()
        out = await generator.generate(traj.token_ids, budget, key=f"{key}/t{turn}")
        traj.generate_s += time.monotonic() - t0
        traj.add_sampled(out.token_ids, out.logprobs, out.versions)
        traj.turns += 1
        texts.append(out.text)
        kind, payload = parse_action(out.text)
        if kind == "answer":
            traj.end_reason, traj.answer = "answer", payload
            break
        if out.finish_reason == "length":
            traj.end_reason = "turn_tokens" if budget == limits.max_turn_tokens else "context"
            break
        if kind == "search":
            request = SearchRequest(payload, question.question, question.answers,
                                    f"{key}/t{turn}", traj.token_ids, step)
            observation, obs_ids = await _search(traj, search, request, encode)
        else:
            observation, obs_ids = INVALID_ACTION, encode(INVALID_ACTION)
        obs_tokens += len(obs_ids)
        if obs_tokens > limits.max_obs_tokens:
            traj.end_reason = "obs_tokens"
            break
        if len(traj.token_ids) + len(obs_ids) >= limits.max_context_tokens:
            traj.end_reason = "context"
            break
        traj.add_observation(obs_ids)
        texts.append(observation)
    traj.response_text = "".join(texts)
    traj.total_s = time.monotonic() - start
    return traj


def sample_keys(questions: list[Question], samples: int, prefix: str
                ) -> list[tuple[Question, str]]:
    """(question, episode key) for `samples` episodes of each question, keys
    "<prefix><index>/s<sample>"."""
    return [(q, f"{prefix}{q.index}/s{s}") for q in questions for s in range(samples)]


async def play_episodes(jobs: list[tuple[Question, str]], generator: Generator,
                        search: SearchBackend, encode: Callable[[str], list[int]],
                        limits: Limits, step: int = 0) -> list[Trajectory]:
    """One episode per (question, key), all at once, in order. If one raises, the others
    are cancelled and the error propagates (a group is played whole or not at all)."""
    prompts: dict[int, list[int]] = {}
    tasks = [asyncio.ensure_future(run_episode(
        prompts.setdefault(q.index, encode(q.prompt)), q, generator, search, encode, limits,
        key, step)) for q, key in jobs]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def _search(traj: Trajectory, search: SearchBackend, request: SearchRequest,
                  encode: Callable[[str], list[int]]) -> tuple[str, list[int]]:
    """The observation's text and token ids (self-search hands over its own ids)."""
    t0 = time.monotonic()
    result = await search.search(request)
    traj.search_s += time.monotonic() - t0
    traj.search_calls += 1
    traj.search_failures += int(result.failed)
    traj.noisy_searches += int(result.noisy)
    if result.token_ids is not None:
        return result.text, result.token_ids
    observation = format_observation(result)
    return observation, encode(observation)
