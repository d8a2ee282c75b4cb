"""The episode loop with a scripted engine and search backend (logic only; the real vLLM
engine runs the same loop in the integration test)."""

import asyncio

import pytest

from actors.dataset import Question
from actors.episode import (INVALID_ACTION, MAX_QUERY_CHARS, Limits, format_observation,
                            parse_action, play_episodes, run_episode, sample_keys)
from actors.trajectory import TurnOutput
from actors.search import SearchResult

Q = Question(0, "where?", "prompt", ["Paris"], "test")
LIMITS = Limits(max_turns=4, max_turn_tokens=50, max_obs_tokens=1000, max_context_tokens=1000)


def encode(text: str) -> list[int]:
    """One token per character, offset so observation ids differ from sampled ids."""
    return [1000 + ord(c) for c in text]


class ScriptedEngine:
    def __init__(self, turns: list[str], finish: str = "stop"):
        self.turns, self.finish, self.calls = list(turns), finish, []

    async def generate(self, token_ids, max_tokens, stop=None, key=""):
        self.calls.append((list(token_ids), max_tokens))
        text = self.turns.pop(0)
        ids = [ord(c) for c in text][:max_tokens]
        # logprob of token i is -(i+1)/100 within the turn: checks alignment later
        return TurnOutput(ids, [-(i + 1) / 100 for i in range(len(ids))], text, self.finish,
                          [len(self.calls)] * len(ids))


class ScriptedSearch:
    def __init__(self, result=SearchResult([("T", "Paris is big")])):
        self.result, self.queries, self.keys = result, [], []

    async def search(self, request):
        self.queries.append(request.query)
        self.keys.append(request.key)
        return self.result


def play(engine, search=None, limits=LIMITS, prompt=(1, 2, 3)):
    return asyncio.run(run_episode(list(prompt), Q, engine, search or ScriptedSearch(),
                                   encode, limits, key="g7/s1"))


def test_masks_exactly_the_observation_spans_and_aligns_logprobs():
    turns = ["<search> capital </search>", "junk", "<answer> Paris </answer>"]
    engine, search = ScriptedEngine(turns), ScriptedSearch()
    traj = play(engine, search)
    obs = format_observation(search.result)
    expected_ids = ([1, 2, 3] + [ord(c) for c in turns[0]] + encode(obs)
                    + [ord(c) for c in turns[1]] + encode(INVALID_ACTION)
                    + [ord(c) for c in turns[2]])
    assert traj.token_ids == expected_ids
    expected_mask = ([0] * 3 + [1] * len(turns[0]) + [0] * len(encode(obs))
                     + [1] * len(turns[1]) + [0] * len(encode(INVALID_ACTION))
                     + [1] * len(turns[2]))
    assert traj.loss_mask == expected_mask
    # every sampled token keeps its own logprob and the version of the turn that made it
    sampled = [(lp, v) for lp, v, m in zip(traj.logprobs, traj.versions, traj.loss_mask) if m]
    want = [(-(i + 1) / 100, turn + 1) for turn, text in enumerate(turns)
            for i in range(len(text))]
    assert sampled == want
    assert all(lp == 0.0 and v == -1
               for lp, v, m in zip(traj.logprobs, traj.versions, traj.loss_mask) if not m)
    assert (traj.end_reason, traj.turns, traj.search_calls) == ("answer", 3, 1)
    assert traj.answer == "Paris"
    assert search.queries == ["capital"]
    assert search.keys == ["g7/s1/t0"]  # the noise draw's key: group, sample, turn
    # the engine always received the exact trajectory so far (token in, token out)
    assert engine.calls[1][0] == expected_ids[:3 + len(turns[0]) + len(encode(obs))]
    assert "<information>" in traj.response_text and traj.response_text.endswith("</answer>")


@pytest.mark.parametrize("text, expected", [
    ("<search> q </search>", ("search", "q")),
    ("<think> x </think><search> q </search>", ("search", "q")),
    ("Let me look it up. <search>capital of France</search>",
     ("search", "capital of France")),
    ("<think> need\nthe city </think>\n<search> where is\nParis </search>",
     ("search", "where is\nParis")),
    ("<answer> a </answer>", ("answer", "a")),
    ("<think> it is Paris </think> <answer> Paris </answer>", ("answer", "Paris")),
    ("<search> " + "q" * MAX_QUERY_CHARS + " </search>", ("search", "q" * MAX_QUERY_CHARS)),
    ("<search> C++ <vector> size </search>", ("search", "C++ <vector> size")),  # not ours
])
def test_parse_well_formed_action(text, expected):
    assert parse_action(text) == expected


@pytest.mark.parametrize("text", [
    "nothing",
    "",
    "<search> q",  # unclosed (the turn ran out of tokens)
    "q </search>",  # closed, never opened
    "<search>  </search>",  # blank query
    "<search>\n\t</search>",
    "<search> " + "q" * (MAX_QUERY_CHARS + 1) + " </search>",  # over-long query
    "<search><search> q </search>",  # nested
    "<search> a <search> b </search>",
    "<search> q </search></search>",
    "<search> q </answer>",  # mismatched
    "<answer> a </search>",
    "<search> q <answer> a </answer> </search>",  # an answer inside a search
    "<search> q <answer> a </search>",
    "<answer> <search> q </search> a </answer>",  # a search inside an answer
    "<answer> a <search> q </search>",
    "<search> q <information> docs </information> </search>",
    "<search> q </information> </search>",
    "<search> <think> q </search>",
    "<search> q </think> </search>",
    "<search> <SEARCH> q </search>",  # any spelling of a tag
    "<search> q < /answer > </search>",
    "<SEARCH> q </SEARCH>",  # not the protocol's tag
    "<answer></answer>",  # blank answer
    "<answer>   </answer>",
    "<answer><answer> a </answer>",
    "<answer> <think> a </think> </answer>",
    "<answer> a <information> </answer>",
    "<search> q </search> <answer> a </answer>",  # two actions in one turn
])
def test_malformed_action_is_invalid(text):
    assert parse_action(text) == ("invalid", "")


def test_malformed_search_gets_the_invalid_action_observation():
    search = ScriptedSearch()
    traj = play(ScriptedEngine(["<search><search> q </search>", "<answer></answer>",
                                "<answer> Paris </answer>"]), search)
    assert search.queries == [] and traj.search_calls == 0
    assert traj.response_text.count(INVALID_ACTION) == 2
    assert (traj.end_reason, traj.answer, traj.turns) == ("answer", "Paris", 3)


def test_max_turns():
    traj = play(ScriptedEngine(["<search> q </search>"] * 4))
    assert (traj.end_reason, traj.turns) == ("max_turns", 4)


def test_turn_token_limit():
    traj = play(ScriptedEngine(["x" * 80], finish="length"))
    assert traj.end_reason == "turn_tokens" and traj.num_sampled == LIMITS.max_turn_tokens


def test_context_limit_shrinks_the_last_turn_then_ends():
    limits = Limits(max_turns=10, max_turn_tokens=50, max_obs_tokens=10_000,
                    max_context_tokens=120)
    engine = ScriptedEngine(["junk"] * 10 + ["y" * 60], finish="stop")
    traj = play(engine, limits=limits)
    assert traj.end_reason == "context"
    assert len(traj.token_ids) <= limits.max_context_tokens
    assert all(budget <= limits.max_context_tokens - len(ids) for ids, budget in engine.calls)


def test_observation_token_limit():
    limits = Limits(max_turns=10, max_turn_tokens=50, max_obs_tokens=60,
                    max_context_tokens=10_000)
    traj = play(ScriptedEngine(["<search> q </search>"] * 10), limits=limits)
    assert traj.end_reason == "obs_tokens"
    assert len(traj.token_ids) - traj.num_sampled - 3 <= 60


def test_failed_search_becomes_an_observation():
    failed = SearchResult([], failed=True, error="timeout")
    traj = play(ScriptedEngine(["<search> q </search>", "<answer> a </answer>"]),
                ScriptedSearch(failed))
    assert traj.search_failures == 1 and "The search failed: timeout" in traj.response_text
    assert traj.end_reason == "answer"


def test_long_horizon_episode_runs_to_its_turn_limit_or_context_cap():
    turns = ["<search> q </search>"] * 40
    long = Limits(max_turns=40, max_turn_tokens=50, max_obs_tokens=100_000,
                  max_context_tokens=100_000)
    traj = play(ScriptedEngine(list(turns)), limits=long)
    assert (traj.end_reason, traj.turns, traj.search_calls) == ("max_turns", 40, 40)
    capped = Limits(max_turns=40, max_turn_tokens=50, max_obs_tokens=100_000,
                    max_context_tokens=2_000)
    traj = play(ScriptedEngine(list(turns)), limits=capped)
    assert traj.end_reason == "context" and len(traj.token_ids) <= 2_000 and traj.turns > 5


class KeyedEngine:
    """Answers with the question's index; raises for `fail_on`, after the others began."""

    def __init__(self, fail_on: int = -1):
        self.fail_on, self.cancelled = fail_on, 0

    async def generate(self, token_ids, max_tokens, stop=None, key=""):
        index = token_ids[0] - 1000 - ord("0")
        try:
            await asyncio.sleep(0.05 if index != self.fail_on else 0.01)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if index == self.fail_on:
            raise RuntimeError("engine fault")
        text = f"<answer> a{index} </answer>"
        return TurnOutput([ord(c) for c in text], [0.0] * len(text), text, "stop",
                          [0] * len(text))


def questions(n: int) -> list[Question]:
    return [Question(i, f"q{i}", str(i), ["x"], "test") for i in range(n)]


def test_play_episodes_keeps_order_keys_and_the_search_step():
    jobs = sample_keys(questions(3), 2, "g")
    assert [key for _, key in jobs] == ["g0/s0", "g0/s1", "g1/s0", "g1/s1", "g2/s0", "g2/s1"]
    trajs = asyncio.run(play_episodes(jobs, KeyedEngine(), ScriptedSearch(), encode, LIMITS))
    assert [t.answer for t in trajs] == ["a0", "a0", "a1", "a1", "a2", "a2"]

    search = ScriptedSearch()
    steps = []
    search.search = lambda request: steps.append(request.step) or ScriptedSearch().search(
        request)
    engine = ScriptedEngine(["<search> x </search>", "<answer> y </answer>"])
    asyncio.run(play_episodes([(Q, "g0/s0")], engine, search, encode, LIMITS, step=7))
    assert steps == [7]  # the curriculum's step reaches the search


def test_play_episodes_cancels_the_others_when_one_raises():
    engine = KeyedEngine(fail_on=1)
    with pytest.raises(RuntimeError, match="engine fault"):
        asyncio.run(play_episodes(sample_keys(questions(3), 2, "g"), engine,
                                  ScriptedSearch(), encode, LIMITS))
    assert engine.cancelled == 4  # every episode of the other two questions
