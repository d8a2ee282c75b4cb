"""The typed configuration schema: one dataclass per component, a docstring per field.

Loaded by ``conf.loader.load_config`` with OmegaConf (schema, then a YAML file, then
``section.key=value`` overrides). Each component receives its own section, never the root.
Allowed values and ranges sit in each field's metadata and are checked on load. This
module imports nothing heavy.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def choice(default: str, *allowed: str):
    return field(default=default, metadata={"choices": allowed})


def bounded(default, low=None, high=None):
    return field(default=default, metadata={"min": low, "max": high})


@dataclass
class WorldConf:
    """The tiny world and its cached build stages (used where no model or data path is
    given): world, pretrain, warm-start, simulator SFT."""

    cache_dir: str = "~/.cache/simsearch"
    """Where each stage's output is built once and reused."""
    seed: int = 0
    """Seed of the synthetic world (entities, facts, question split)."""
    num_people: int = bounded(200, 5, 100000)
    """People in the synthetic world; each yields three questions, a fifth are held out."""
    pretrain_steps: int = bounded(1200, 1, 1 << 30)
    """Steps (batch 32) each tiny base LM reads its texts (see ``tinyworld.stages``)."""
    warm_start_steps: int = bounded(1000, 1, 1 << 30)
    """Steps (batch 16) of the policy's SFT on format demonstrations about invented people:
    the protocol (and copying names) is learnt while the world's answers are not."""
    warm_start_people: int = bounded(1000, 1, 100000)
    """Invented people outside the world whose questions the warm start demonstrates."""


@dataclass
class DataConf:
    train_path: str = ""
    """Search-R1-style parquet of training questions; empty = the tiny world's train set."""


@dataclass
class EngineConf:
    """Settings of one vLLM engine (policy rollout worker or simulator replica)."""

    model_path: str = ""
    """HF checkpoint folder; empty = the tiny model of that role built in world.cache_dir."""
    dtype: str = choice("float32", "float32", "bfloat16", "float16", "auto")
    """Weights dtype; float32 on CPU keeps the engine bit-identical to the learner."""
    max_model_len: int = bounded(2048, 64, 1 << 20)
    """Longest sequence the engine serves (prompt plus generation)."""
    kv_cache_gib: int = bounded(1, 1, 4096)
    """KV cache size in whole GiB on CPU (VLLM_CPU_KVCACHE_SPACE); ignored on GPU."""
    gpu_memory_utilization: float = bounded(0.85, 0.05, 0.99)
    """Share of GPU memory vLLM may take; ignored on CPU."""
    enforce_eager: bool = True
    """Skip graph capture and compilation (start-up cost dominates tiny models)."""


@dataclass
class EpisodeConf:
    max_turns: int = bounded(4, 1, 1024)
    """Policy turns per episode (anchors: 2-5 for QA, 10 deep research, 128 long horizon)."""
    max_turn_tokens: int = bounded(48, 1, 1 << 16)
    """Tokens the policy may generate in one turn (anchors: 500)."""
    max_obs_tokens: int = bounded(512, 1, 1 << 20)
    """Observation tokens allowed in one episode, all searches together."""
    max_context_tokens: int = bounded(1024, 16, 1 << 20)
    """Prompt plus everything generated and appended; reaching it ends the episode."""
    temperature: float = bounded(1.0, 0.0, 10.0)
    """Sampling temperature of the policy during training rollouts; the learner divides
    its logits by it, so its logprobs are those of the distribution tokens were drawn
    from."""


@dataclass
class RolloutConf:
    num_workers: int = bounded(1, 1, 4096)
    """Policy rollout workers, each with its own vLLM engine."""
    group_size: int = bounded(4, 1, 1024)
    """Samples per question (a GRPO group)."""
    max_groups_per_worker: int = bounded(16, 1, 100000)
    """Groups one worker runs at once (admission control bounds the total too)."""
    interrupt_on_update: bool = True
    """On new weights, abort the turns in flight and resume them from their tokens under
    the new weights (no wait for the longest turn); false = the update waits for them."""
    reward: str = choice("em", "em", "f1", "ssrl", "search_r1_format")
    """How a worker scores each episode: EM (Search-R1), F1 (ZeroSearch), SSRL, or
    Search-R1 format-aware."""
    num_cpus: float = bounded(0.5, 0.0, 1024.0)
    """Ray CPUs per rollout worker actor."""
    num_gpus: float = bounded(0.0, 0.0, 64.0)
    """Ray GPUs per rollout worker actor."""
    resource: str = ""
    """Custom Ray resource a worker needs one unit of (e.g. "policy", so workers land
    only on policy nodes of a cluster); empty = none."""
    max_group_failures: int = bounded(3, 1, 1000)
    """A group whose episodes raise is played again; one that fails this many times in a
    row stops the run, naming its question and the last error."""
    health_check_s: float = bounded(10.0, 0.5, 3600.0)
    """Period of the driver's health check of every rollout engine (a one-token probe, as
    slime's 10 s): a worker whose engine has died is replaced at once, one that misses three
    checks in a row too."""
    call_timeout_s: float = bounded(600.0, 1.0, 1e6)
    """Longest wait for one engine call of a worker (one turn's sampling, a weight load)
    or one call it makes to the queue; a call that takes longer is an error: its group is
    played again, and a worker whose groups keep failing is replaced."""
    max_restarts: int = bounded(32, 0, 1 << 20)
    """Rollout workers that may be replaced over the whole run (dead actor, dead or hung
    engine); one more stops the run. 0 = a lost worker stops the run."""
    engine: EngineConf = field(default_factory=EngineConf)
    """The policy engine."""
    episode: EpisodeConf = field(default_factory=EpisodeConf)
    """Episode limits and sampling."""


@dataclass
class CurriculumConf:
    start: float = bounded(0.0, 0.0, 1.0)
    """Noise probability at step 0 (ZeroSearch: 0, earlier 0.25)."""
    end: float = bounded(0.5, 0.0, 1.0)
    """Noise probability from `steps` on (ZeroSearch: 0.5)."""
    base: float = bounded(4.0, 1.0001, 1000.0)
    """Base b of the exponential schedule (ZeroSearch: 4)."""
    schedule: str = choice("exponential", "exponential", "linear", "constant")
    """How noise rises from start to end: ZeroSearch's exponential, linear, or constant
    (end throughout)."""
    steps: int = bounded(0, 0, 1 << 30)
    """Steps over which noise rises; 0 = trainer.total_steps."""


@dataclass
class AutoscalingConf:
    min_replicas: int = bounded(1, 0, 4096)
    """Fewest simulator replicas."""
    max_replicas: int = bounded(1, 1, 4096)
    """Most simulator replicas."""
    target_ongoing_requests: float = bounded(32.0, 1.0, 1e6)
    """Requests per replica the autoscaler aims for."""
    upscale_delay_s: float = bounded(5.0, 0.0, 3600.0)
    """How long load must stay high before adding replicas."""
    downscale_delay_s: float = bounded(30.0, 0.0, 3600.0)
    """How long load must stay low before removing replicas."""


@dataclass
class SimulatorConf:
    """The simulated search engine: prompt and sampling, and the pool that serves it."""

    prompt: str = choice("sft", "sft", "prompt_only")
    """sft: the fine-tuned simulator's format (mode keyword, question and gold answer);
    prompt_only: an un-tuned LLM, with a worked example (its noisy variant omits question
    and answer)."""
    with_question: bool = True
    """Show the simulator the question and its gold answer besides the query (ZeroSearch);
    false: the query alone, so the documents follow from what the policy searched, as a
    real engine's do, and a poor query is not rescued by the question."""
    doc_words: int = bounded(30, 1, 1000)
    """Words asked for per document (ZeroSearch: 30)."""
    max_tokens: int = bounded(96, 1, 1 << 16)
    """Tokens the simulator may write per search (ZeroSearch: 600)."""
    temperature: float = bounded(0.8, 0.0, 10.0)
    """Simulator sampling temperature (ZeroSearch: 0.8)."""
    num_cpus: float = bounded(0.5, 0.0, 1024.0)
    """Ray CPUs per simulator replica."""
    num_gpus: float = bounded(0.0, 0.0, 64.0)
    """Ray GPUs per simulator replica."""
    resource: str = "simulator"
    """Custom Ray resource a replica needs one unit of, so replicas land only on nodes that
    offer it and the cluster autoscaler adds or removes simulator nodes on its own; empty =
    no custom resource. An embedded local cluster offers max_replicas units."""
    start_timeout_s: float = bounded(900.0, 1.0, 1e6)
    """Longest wait for the pool's first replicas to start (nodes to be added, engines to
    load); then the run stops, saying what the pool is waiting for."""
    autoscaling: AutoscalingConf = field(default_factory=AutoscalingConf)
    """Ray Serve autoscaling of the simulator pool."""
    engine: EngineConf = field(default_factory=EngineConf)
    """The simulator engine."""


@dataclass
class OpenAIConf:
    base_url: str = ""
    """OpenAI-compatible endpoint, ending in /v1, whose model plays the simulator."""
    model: str = ""
    """Model name the endpoint serves."""
    api_key_env: str = "OPENAI_API_KEY"
    """Environment variable holding the API key (unset = no key sent)."""


@dataclass
class Bm25Conf:
    corpus_path: str = ""
    """Search-R1 jsonl corpus to index; empty = the tiny world's corpus."""


@dataclass
class HttpConf:
    url: str = "http://127.0.0.1:8000/retrieve"
    """A Search-R1 retrieval server's /retrieve endpoint."""
    batch_window_s: float = bounded(0.01, 0.0, 10.0)
    """Searches arriving within this window go out in one request."""


@dataclass
class SearchConf:
    """Where an episode's searches go."""

    backend: str = choice("simulator", "simulator", "openai", "bm25", "http", "self")
    """simulator: the Ray Serve pool; openai: an OpenAI-compatible LLM playing the
    simulator; bm25: a local retriever over a jsonl corpus; http: a Search-R1 retrieval
    server; self: no call, the policy writes its own information (SSRL)."""
    topk: int = bounded(3, 1, 50)
    """Documents per search (ZeroSearch: 5, Search-R1: 3)."""
    timeout_s: float = bounded(60.0, 0.001, 3600.0)
    """Deadline of one search call."""
    retries: int = bounded(2, 0, 100)
    """Retries (with exponential backoff) after a failed or timed-out call; then the search
    is recorded as failed and the episode sees a failure observation."""
    cache_size: int = bounded(0, 0, 1 << 24)
    """Simulated backends (simulator, openai): distinct requests (query, question, answers,
    useful or noisy) whose pages each rollout worker keeps and reuses, least recently used
    evicted. Identical requests then share one simulator call, as a real engine returns a
    query's pages each time; 0 samples every search afresh (ZeroSearch)."""
    openai: OpenAIConf = field(default_factory=OpenAIConf)
    """Settings of the openai backend."""
    bm25: Bm25Conf = field(default_factory=Bm25Conf)
    """Settings of the bm25 backend."""
    http: HttpConf = field(default_factory=HttpConf)
    """Settings of the http backend."""


@dataclass
class ServeConf:
    """`simsearch serve-simulator`: the pool behind a Search-R1 `POST /retrieve`."""

    host: str = "127.0.0.1"
    """Address the HTTP endpoint binds to; 0.0.0.0 exposes it to the network."""
    port: int = bounded(8000, 1, 65535)
    """HTTP port."""
    max_queries: int = bounded(1024, 1, 1 << 20)
    """Most queries one request may carry; more is refused with 413."""
    max_body_bytes: int = bounded(1 << 20, 64, 1 << 30)
    """Largest request body accepted; larger is refused with 413 as soon as the bytes
    read pass it (a chunked body too), so an oversized body is never read to its end."""
    max_query_chars: int = bounded(256, 1, 1 << 20)
    """Longest query, in characters; longer is refused with 400. The prompt must fit the
    simulator's context: a character can take up to 4 tokens (one per UTF-8 byte), so
    4 x this + the prompt + simulator.max_tokens should stay within
    simulator.engine.max_model_len (serve-simulator warns at start when it does not)."""
    max_pending_queries: int = bounded(128, 1, 1 << 24)
    """Most queries in flight at the pool (admitted, not yet answered); a request that
    would go beyond is refused at once with 503 and a Retry-After header, not queued, so
    a burst cannot grow latency or memory without bound. A request with more queries
    than this is admitted only when none is in flight. The default is what the tiny
    pool's one replica takes at once (4 x simulator.autoscaling.target_ongoing_requests);
    more only waits in Serve's queue, and the waiting slows the pool on a small host;
    raise it with the pool's replicas. Kept by the one RetrieveAPI replica, so it bounds
    the whole server."""


@dataclass
class SftConf:
    """`simsearch sft-simulator`: collect, label, fine-tune, save."""

    search: SearchConf = field(default_factory=lambda: SearchConf(backend="bm25"))
    """The real backend the policy searches while collecting (query, documents) pairs."""
    questions: int = bounded(0, 0, 1 << 30)
    """Training questions to play for collection; 0 = all."""
    samples: int = bounded(4, 1, 1024)
    """Episodes per question during collection (more samples, more distinct queries)."""
    question_queries: bool = False
    """Also search each training question verbatim: examples of what the real engine
    returns for a query that names the right entity, which a policy early in training may
    seldom write (a simulator that sees the query alone learns its knowledge from them)."""
    title_queries: bool = False
    """Also search the title of every document of the corpus (``sft.search.bm25.
    corpus_path``): examples that name every entity the simulator knows, held-out ones
    included, without any question."""
    label: str = choice("answer", "answer", "named", "query", "outcome")
    """answer: a document is useful when it contains a gold answer; named: when it also is
    about what the question or the query names (its title occurs in them), so an answer
    that occurs by chance in a document about something else does not count; query: a
    search that found a document about what the query names (its title, or a word of it,
    occurs in the query) is useful as a whole page, the other documents are noisy, answer
    or not (the label for a simulator that sees the query alone,
    ``simulator.with_question=false``); outcome: when its episode reached the right answer
    (a cheaper proxy for an LLM judge). Untitled documents fall back to answer under named
    and query."""
    steps: int = bounded(1000, 1, 1 << 30)
    """Fine-tuning steps (ZeroSearch reports 1000)."""
    lr: float = bounded(1e-3, 0.0, 1.0)
    """Fine-tuning learning rate (ZeroSearch reports 1e-6 for 3B-14B models; tiny models
    need far more)."""
    batch_size: int = bounded(16, 1, 1 << 16)
    """Examples per fine-tuning step."""
    bare_fraction: float = bounded(0.25, 0.0, 1.0)
    """Share of examples also written without the question and its answer, the prompt a
    bare ``POST /retrieve`` query gets; 0 = the simulator only sees questioned prompts."""
    output_dir: str = ""
    """Where the dataset and checkpoint go; empty = a new folder under trainer.run_dir."""


@dataclass
class EvalConf:
    """`simsearch eval`: score a policy checkpoint on a question set with any backend."""

    data_path: str = ""
    """Search-R1 parquet to score; empty = the tiny world's held-out test split."""
    policy_path: str = ""
    """HF checkpoint (with tokenizer) to score; empty = rollout.engine.model_path, else the
    tiny policy."""
    search: SearchConf = field(default_factory=lambda: SearchConf(backend="bm25"))
    """The backend searches go to; it may differ from training's (sim-to-real)."""
    samples: int = bounded(1, 1, 4096)
    """Episodes per question; pass@k is reported with k = samples."""
    temperature: float = bounded(0.0, 0.0, 10.0)
    """Policy sampling temperature (0 = greedy; raise it with samples > 1)."""
    max_questions: int = bounded(0, 0, 1 << 30)
    """Score only the first N questions; 0 = all."""
    output: str = ""
    """JSON report path; empty = <trainer.run_dir>/eval-<time>.json."""
    every: int = bounded(0, 0, 1 << 30)
    """During training: evaluate the starting policy (logged as start/eval/...), then
    every N steps and after the last, on rollout worker 0, logged as
    eval/<data_source>/<metric>; 0 = never."""
    also_training_search: bool = False
    """During training, also score with training's own search backend (noise 0), logged
    as eval_<backend>/...: e.g. the simulator next to a real retriever (sim-to-real)."""


@dataclass
class RollbackConf:
    """What a guard rollback changes on the way back (each rollback applies it again)."""

    lr_scale: float = bounded(0.5, 0.0, 1.0)
    """learner.lr is multiplied by this (1.0: unchanged)."""
    overrides: list[str] = field(default_factory=list)
    """Further settings as section.key=value, of the sections a rollback rebuilds
    (ROLLBACK_SECTIONS): e.g. ["learner.clip_ratio_high=0.24", "rollout.temperature=0.9"]."""


ROLLBACK_SECTIONS = ("rollout", "search", "curriculum", "queue", "learner")


@dataclass
class GuardConf:
    """The collapse guard (``orchestrator.guard``): signals read from each step's metrics,
    and what the run does when one fires. Defaults sit well outside the tiny world's
    healthy runs (five of 60-100 steps: 10-step averages of the entropy at 0.51-1.37 of its
    start, episodes without an answer at most 0.48, cut at the token limit at most 0.19,
    logprob difference at most 0.018, reward at least 0.67 of its best)."""

    action: str = choice("rollback", "rollback", "stop", "warn", "off")
    """rollback: restore the newest checkpoint taken before the trouble began and go on;
    stop: stop the run, naming the signal and step; warn: a W&B alert and a log line."""
    max_rollbacks: int = bounded(2, 0, 100)
    """Rollbacks a run may make; the next unhealthy step stops it."""
    on_rollback: RollbackConf = field(default_factory=lambda: RollbackConf())
    """Settings changed for the steps after each rollback."""
    window: int = bounded(10, 1, 10_000)
    """Steps in each moving average; signals other than nonfinite wait for this many."""
    reward_fraction: float = bounded(0.3, 0.0, 1.0)
    """reward fires when its moving average stays below this share of its best..."""
    reward_patience: int = bounded(10, 1, 10_000)
    """...for this many steps in a row."""
    reward_floor: float = bounded(0.02, 0.0, 1.0)
    """A best moving average at or under this is no baseline (a run that never learned)."""
    entropy_low: float = bounded(0.2, 0.0, 1.0)
    """entropy fires when its moving average falls under this share of its start..."""
    entropy_high: float = bounded(3.0, 1.0, 1000.0)
    """...or rises over this multiple of it."""
    max_no_answer: float = bounded(0.8, 0.0, 1.0)
    """Largest moving share of episodes ending without an answer."""
    max_truncated: float = bounded(0.6, 0.0, 1.0)
    """Largest moving share of episodes cut at the turn's token limit."""
    max_logprob_diff: float = bounded(0.1, 0.0, 100.0)
    """Largest moving mean |engine logprob - learner logprob| per token."""


@dataclass
class QueueConf:
    max_staleness: int = bounded(1, 0, 1000)
    """Staleness bound eta: learner version minus the oldest sampling version (0 = sync)."""
    bound: str = choice("strict", "strict", "admission")
    """strict: a step waits for a running group due at it, so no trajectory is trained more
    than eta versions stale; admission: eta bounds admission only (AReaL's rule), a step
    never waits for a running group, and one that finishes late is trained in a later batch
    (counted in queue/over_bound_groups), so one long episode does not stall every engine."""
    admit_timeout_s: float = bounded(5.0, 0.1, 3600.0)
    """How long a worker's admission request waits before it asks again."""


@dataclass
class LearnerConf:
    lr: float = bounded(1e-5, 0.0, 1.0)
    """AdamW learning rate."""
    weight_decay: float = bounded(0.0, 0.0, 1.0)
    """AdamW weight decay."""
    algorithm: str = choice("grpo", "grpo", "decoupled_ppo", "reinforce_pp")
    """grpo: group-normalised advantages, ratio to the behaviour policy clipped;
    decoupled_ppo: group advantages, ratio to the proximal (current) policy clipped, each
    token weighted by pi_prox / pi_behav truncated at behavior_cap (for stale data);
    reinforce_pp: group-mean baseline, batch-normalised advantages (REINFORCE++)."""
    clip_eps: float = bounded(0.2, 0.0, 10.0)
    """PPO ratio clip (ASearcher uses 0.4 with decoupled PPO)."""
    behavior_cap: float = bounded(5.0, 1.0, 1e6)
    """Truncation of the behaviour importance weight in decoupled_ppo (ASearcher: 5)."""
    kl_coef: float = bounded(0.0, 0.0, 100.0)
    """Weight of the k3 KL estimate to the frozen initial policy; 0 = off (no reference
    model is kept)."""
    max_grad_norm: float = bounded(1.0, 0.0, 1e6)
    """Gradient clipping norm; 0 disables."""
    micro_batch_size: int = bounded(8, 1, 100000)
    """Trajectories per forward/backward; gradients accumulate over the batch."""
    mini_batches: int = bounded(1, 1, 4096)
    """Optimizer steps per batch (PPO mini-batches, as verl's ppo_mini_batch_size): the
    batch's groups are split into this many parts, each one step, the later ones off-policy
    and held in by the clipped ratio; at most trainer.groups_per_step."""
    num_workers: int = bounded(1, 1, 4096)
    """Learner ranks: above 1, a group of actors sharding the model with FSDP2 (gloo on
    CPU, nccl on GPU); each rank trains on its slice of every batch."""
    num_cpus: float = bounded(1.0, 0.0, 1024.0)
    """Ray CPUs per learner rank."""
    num_gpus: float = bounded(0.0, 0.0, 64.0)
    """Ray GPUs per learner rank."""
    resource: str = ""
    """Custom Ray resource a rank needs one unit of (e.g. "learner"); empty = none."""
    weight_sync: str = choice("auto", "auto", "disk", "nccl")
    """How new weights reach the rollout engines: nccl = broadcast from learner rank 0 to
    every engine through vLLM's weight-transfer API, in buckets (GPUs only); disk = an HF
    checkpoint the engines reload; auto = nccl when learner and rollout workers hold
    GPUs, else disk, and disk if NCCL fails to set up."""
    sync_bucket_mb: int = bounded(256, 1, 1 << 16)
    """Bucket size of an NCCL weight update in MiB (two buckets in flight)."""


@dataclass
class TrainerConf:
    total_steps: int = bounded(20, 1, 1 << 30)
    """Learner steps to run."""
    groups_per_step: int = bounded(4, 1, 1 << 20)
    """Question groups per train batch (batch = groups_per_step * group_size)."""
    seed: int = 0
    """Seed of question order, sampling and the noise draws."""
    run_dir: str = "runs"
    """Parent folder of run directories."""
    ray_address: str = ""
    """Ray cluster to join; empty = RAY_ADDRESS if set, else an embedded local cluster."""
    step_timeout_s: float = bounded(900.0, 1.0, 1e6)
    """Longest wait for one batch (then the run stops), weight sync or train step (then
    the learner counts as lost)."""
    max_restarts: int = bounded(2, 0, 1000)
    """Times the run rebuilds its actors from the last checkpoint after losing the
    learner or the queue (AReaL's recover mode: 3); one more loss stops the run."""
    checkpoint_every: int = bounded(50, 0, 1 << 30)
    """Save a checkpoint every N steps and after the last; 0 = never."""
    keep_checkpoints: int = bounded(2, 1, 1000)
    """Checkpoints kept in the run directory (older ones are deleted)."""
    resume_from: str = ""
    """A run directory: go on in it from its newest complete checkpoint (after a lost
    driver: the same command with this set); or one checkpoint folder: a new run starts
    from it."""


@dataclass
class WandbConf:
    project: str = "simsearch"
    """W&B project (env WANDB_PROJECT wins when set)."""
    entity: str = ""
    """W&B entity; empty = the default of the API key (env WANDB_ENTITY wins)."""
    name: str = ""
    """Run name; empty = the run directory's name (env WANDB_NAME wins when set)."""
    mode: str = choice("auto", "auto", "online", "offline", "disabled")
    """auto = online when an API key is set (WANDB_API_KEY or `wandb login`), else
    offline."""


@dataclass
class Config:
    world: WorldConf = field(default_factory=WorldConf)
    data: DataConf = field(default_factory=DataConf)
    rollout: RolloutConf = field(default_factory=RolloutConf)
    simulator: SimulatorConf = field(default_factory=SimulatorConf)
    search: SearchConf = field(default_factory=SearchConf)
    curriculum: CurriculumConf = field(default_factory=CurriculumConf)
    queue: QueueConf = field(default_factory=QueueConf)
    learner: LearnerConf = field(default_factory=LearnerConf)
    trainer: TrainerConf = field(default_factory=TrainerConf)
    wandb: WandbConf = field(default_factory=WandbConf)
    serve: ServeConf = field(default_factory=ServeConf)
    eval: EvalConf = field(default_factory=EvalConf)
    sft: SftConf = field(default_factory=SftConf)
    guard: GuardConf = field(default_factory=GuardConf)


@dataclass
class Assets:
    """Resolved paths of what a run loads (``tinyworld.assets.resolve_assets``): the
    config's, or the tiny world's built stages."""

    train_path: str
    policy_path: str
    simulator_path: str
    corpus_path: str  # for the bm25 backend
