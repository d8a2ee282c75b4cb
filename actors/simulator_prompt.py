"""The simulator's prompt and the parsing of its output (pure, no engine).

The simulator plays a search engine: given a query it writes ``num_docs`` documents that
are either useful or noisy. The gold answer is given in both modes (the ZeroSearch SFT
format); the mode keyword is what steers quality. Output is read as ``Doc 1: ...`` up to
``Doc k``, cut at ``Doc k+1``; missing, merged or empty documents are tolerated and the
number of usable ones is reported.
"""

from __future__ import annotations

import re

PROMPT = (
    "You are a search engine. Given a query, write {num_docs} {mode} documents for it. "
    "The user is trying to answer the question \"{question}\" whose answer is {answer}. "
    "Each document has about {doc_words} words and contains {mode} information.\n"
    "Query: {query}\n{mode_title} output:\n"
)

_DOC_HEAD = re.compile(r"Doc\s*(\d+)\s*:", re.IGNORECASE)


def simulator_prompt(query: str, question: str, answers: list[str], noisy: bool,
                     num_docs: int, doc_words: int) -> str:
    mode = "noisy" if noisy else "useful"
    return PROMPT.format(num_docs=num_docs, mode=mode, question=question,
                         answer=", ".join(answers) or "unknown", doc_words=doc_words,
                         query=query, mode_title=mode.capitalize())


def parse_documents(text: str, num_docs: int) -> list[str]:
    """Split simulator output into at most num_docs non-empty documents.

    Text before the first ``Doc N:`` header counts as a document when there is no header
    at all (a model that ignored the format still produced something). Parsing stops at a
    header numbered above num_docs.
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
        if body:
            docs.append(body)
    return docs[:num_docs]
