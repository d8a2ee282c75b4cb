"""The tiny world: a synthetic question-answering world and its locally built models, the
CPU default that runs the whole method with nothing downloaded.

``world`` writes the world (people, cities, corpus, questions) and the demonstrations;
``models`` builds the tiny tokenizer and base LMs, ``pretrain`` pretrains them,
``warm_start`` teaches the policy the tag protocol; ``stages`` caches each build by a hash
of its settings; ``assets`` resolves a config's model and data paths, defaulting to these
stages. It depends on ``conf``, ``actors`` and ``learner`` and never the other way: the
driver (``orchestrator``) calls ``assets.resolve_assets``.
"""
