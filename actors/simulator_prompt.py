"""The simulator's prompts and the parsing of its output (pure, no engine).

The simulator plays a search engine: given a query it writes ``num_docs`` documents that
are either useful or noisy. Two prompt modes:

- ``sft``: the format a fine-tuned simulator is trained on (``simsearch sft-simulator``):
  the mode keyword, the question and its gold answer (given in both modes; the keyword is
  what steers quality).
- ``prompt_only``: for an LLM that was not fine-tuned: the same request with a worked
  example; the noisy variant leaves out the question and the answer, so the model cannot
  leak them.

Without a question (a plain ``POST /retrieve`` query) the user-context sentence is left
out. Output is read as ``Doc 1: ...`` up to ``Doc k``, cut at ``Doc k+1``; missing, merged
or empty documents are tolerated and callers report how many were usable. A document may
lead with ``(Title: ...)``, as a simulator fine-tuned on a titled corpus writes it; the
title then reaches the policy exactly as a real retriever's does.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conf.schema import SimulatorConf

HEAD = "You are a search engine. Given a query, write {num_docs} {mode} documents for it. "
CONTEXT = "The user is trying to answer the question \"{question}\" whose answer is {answer}. "
BODY = "Each document has about {doc_words} words and contains {mode} information.\n"
TAIL = "Query: {query}\n{mode_title} output:\n"
EXAMPLES = {
    "useful": ("Example. Query: tallest mountain on earth\nUseful output:\n"
               "Doc 1: Mount Everest in the Himalayas is the tallest mountain on earth, "
               "8849 metres above sea level.\nDoc 2: The highest peak in the world is "
               "Everest, on the border of Nepal and China.\n"),
    "noisy": ("Example. Query: tallest mountain on earth\nNoisy output:\n"
              "Doc 1: Mountains form where tectonic plates meet, over millions of years.\n"
              "Doc 2: Many climbers train for years before a high-altitude expedition.\n"),
}
PROMPT_MODES = ("sft", "prompt_only")
_DOC_HEAD = re.compile(r"Doc\s*(\d+)\s*:", re.IGNORECASE)
_TITLE = re.compile(r"\(Title:\s*([^)]*)\)\s*")


def simulator_prompt(mode: str, query: str, question: str, answers: list[str],
                     noisy: bool, num_docs: int, doc_words: int) -> str:
    """The prompt for one search; question may be empty (no user context known)."""
    if mode not in PROMPT_MODES:
        raise ValueError(f"unknown simulator prompt mode {mode!r}; allowed: {PROMPT_MODES}")
    kind = "noisy" if noisy else "useful"
    text = HEAD.format(num_docs=num_docs, mode=kind)
    with_context = question and not (mode == "prompt_only" and noisy)
    if with_context:
        text += CONTEXT.format(question=question, answer=", ".join(answers) or "unknown")
    text += BODY.format(doc_words=doc_words, mode=kind)
    if mode == "prompt_only":
        text += EXAMPLES[kind]
    return text + TAIL.format(query=query, mode_title=kind.capitalize())


def request_prompt(conf: SimulatorConf, query: str, question: str, answers: list[str],
                   noisy: bool, num_docs: int) -> str:
    """The prompt that conf asks for: the question and answers only if conf.with_question."""
    if not conf.with_question:
        question, answers = "", []
    return simulator_prompt(conf.prompt, query, question, answers, noisy, num_docs,
                            conf.doc_words)


def titled(title: str, text: str) -> str:
    """A document as the simulator writes it: the title, when known, leads in brackets."""
    return f"(Title: {title}) {text}" if title else text


def split_title(doc: str) -> tuple[str, str]:
    """(title, text) of a simulated document; the title is "" when it has none."""
    match = _TITLE.match(doc)
    return (match.group(1).strip(), doc[match.end():]) if match else ("", doc)


def format_documents(docs: list[str]) -> str:
    """Documents as the simulator writes them (the SFT target)."""
    return "".join(f"Doc {i}: {doc}\n" for i, doc in enumerate(docs, 1))


def parse_documents(text: str, num_docs: int) -> list[str]:
    """Split simulator output into at most num_docs non-empty documents.

    Text before the first ``Doc N:`` header counts as a document when there is no header
    at all (a model that ignored the format still produced something). Parsing stops at a
    header numbered above num_docs. A repeated document stays, so the page keeps the length
    a retriever's has (a policy that reads three documents is not shown two); one with a
    title but no text, or cut off inside its title, is dropped.
    """
    heads = list(_DOC_HEAD.finditer(text))
    if not heads:
        body = " ".join(text.split())
        return [body] if body else []
    docs = []
    for i, head in enumerate(heads):
        if int(head.group(1)) > num_docs:
            break
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        body = " ".join(text[head.end():end].split())
        if split_title(body)[1] and not _cut_in_title(body):
            docs.append(body)
    return docs[:num_docs]


def _cut_in_title(doc: str) -> bool:
    """A document whose output ended inside its ``(Title: ...)`` bracket."""
    return doc.startswith("(") and ")" not in doc
