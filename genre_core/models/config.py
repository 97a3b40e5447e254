"""Config section ``train``: split, models, hybrid, multi-task losses, early stopping."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SplitConfig(_Strict):
    kind: Literal["user_temporal", "global_time"] = "user_temporal"
    test_fraction: float = Field(0.2, gt=0, lt=1)  # per user (user_temporal) or of all events (global_time)
    test_last_n: int | None = Field(None, ge=1)  # user_temporal: the last N events to test instead of a fraction
    valid_fraction: float = Field(0.1, ge=0, lt=1)  # carved from the training part the same way (0: no early stop)
    valid_last_n: int | None = Field(None, ge=1)  # user_temporal: the last N training events validate instead
    # (with test_last_n: 1 and valid_last_n: 1, the leave-one-out protocol: test = last, validation = the one before)
    cold_item_fraction: float = Field(0.05, ge=0, lt=1)  # items held out of training entirely (cold-item slice)
    cold_item_min_interactions: int = Field(5, ge=1)  # only items with at least this many positives can be cold
    cold_user_fraction: float = Field(0.05, ge=0, lt=1)  # users kept out of training but for a few first events
    cold_user_history: int = Field(3, ge=0)  # events of a cold user that stay in training (0: fully cold)
    # deprecated (use the `events` section): a value threshold for positives of every event type without a rule
    min_positive_value: float | None = None


class PopularityConfig(_Strict):
    half_life_days: float | None = None  # None: plain counts; else counts decayed with this half-life


class ItemKNNConfig(_Strict):
    # defaults tuned on the MovieLens 100K validation split (recent history matters most there)
    neighbors: int = Field(50, ge=1)  # neighbours kept per item
    shrink: float = Field(0.0, ge=0)  # cosine shrinkage: co / (norm_i * norm_j + shrink)
    alpha: float = Field(0.5, ge=0, le=1)  # asymmetric cosine exponent (0.5 = plain cosine)
    recency_half_life: float | None = Field(2.0, gt=0)  # history events weigh 0.5 ** (events_since / this)


class BPRConfig(_Strict):
    dim: int = Field(64, ge=1)  # latent factors
    optimizer: Literal["adagrad", "adam"] = "adagrad"  # adagrad: per-row steps suit sparse embedding updates
    lr: float = Field(0.15, gt=0)  # learning rate
    weight_decay: float = Field(0.01, ge=0)  # L2 on the embeddings of a batch (per triple)
    batch_size: int = Field(1024, ge=1)  # (user, positive, negative) triples per step
    epochs: int = Field(100, ge=1)  # upper bound; early stopping picks the best epoch on validation
    patience: int = Field(10, ge=1)  # evaluations without improvement before stopping (validation is noisy)


class ContentConfig(_Strict):
    # defaults tuned on the MovieLens 100K validation split (posters add noise to a pure content model)
    modalities: list[str] | None = Field(default_factory=lambda: ["text"])  # None: every stored item modality
    recency_half_life: float | None = Field(10.0, gt=0)  # history events weigh 0.5 ** (events_since / this)


class HybridConfig(_Strict):
    # defaults tuned on the MovieLens 100K validation split (never on test)
    dim: int = Field(64, ge=1)  # embedding size of items, users and content projections
    modalities: list[str] | None = None  # None: every item modality stored among text, image (+text_llm)
    use_llm_features: bool = False  # add item modality "text_llm" and user modality "profile" (LLM enrichment)
    # with modalities null: also use item modality "text_llm" whenever it is stored (LLM-enriched descriptions,
    # only after `genre enrich`). docs/llm-ablation.md, MovieLens 100K, whole catalogue enriched, 3 seeds: NDCG@10
    # +0.0043 +- 0.0030 (beyond the spread) but cold-item NDCG@10 -0.017 +- 0.010; on by default for the former
    use_llm_text: bool = True
    # add the LLM-generated item descriptions of cold users (user_features "cold_gen", llm role cold_gen) to their
    # history pooling, projected like item text (needs the "text" item modality)
    use_cold_gen: bool = False
    # add the LLM-written user interest profiles (user_features "profile", llm role profile) as a user tower, alone
    # (use_llm_features turns on text_llm and profiles together); needs stored profile vectors
    use_profiles: bool = False
    fusion: Literal["sum", "concat", "gated"] = "gated"  # how id and content embeddings combine per item
    id_dropout: float = Field(0.1, ge=0, le=1)  # drop item id embeddings in training so content stands alone
    user_embedding: bool = False  # a learned user id embedding added to the history encoding
    history: Literal["mean", "attention"] = "mean"  # pooling of the training history into the user vector
    recency_half_life: float = Field(10.0, gt=0)  # history events weigh 0.5 ** (age_in_events / this) at start
    learn_recency: bool = True  # learn the recency weights (per age bucket) from that starting point
    max_history: int = Field(400, ge=1)  # most recent events kept in the history encoder
    ranking_loss: Literal["softmax", "sampled_softmax", "bpr"] = "softmax"  # full softmax over the catalogue
    negatives: int = Field(256, ge=1)  # sampled negatives for sampled_softmax / bpr
    ranking_weight: float = Field(1.0, ge=0)  # multi-task weight of the implicit ranking loss
    negative_weight: float = Field(1.0, ge=0)  # weight of the impression-aware term: targets above the explicit
    # negatives (events role: negative) of the same time window, pairwise logistic; 0 or no negatives: off
    max_negatives: int = Field(64, ge=1)  # explicit negatives used per training example (the earliest first)
    rating_weight: float = Field(0.1, ge=0)  # multi-task weight of the rating regression (where values exist)
    target_window: int = Field(5, ge=1)  # a training example predicts the next events after a history cut
    cuts_per_user: int = Field(4, ge=1)  # history cuts sampled per user and epoch
    dropout: float = Field(0.1, ge=0, lt=1)  # on the user vector
    lr: float = Field(3e-3, gt=0)  # AdamW learning rate
    weight_decay: float = Field(1e-4, ge=0)  # AdamW weight decay
    batch_size: int = Field(256, ge=1)  # training examples (user, cut) per step
    epochs: int = Field(60, ge=1)  # upper bound; early stopping picks the best epoch on validation
    patience: int = Field(6, ge=1)  # evaluations without improvement before stopping

    @model_validator(mode="after")
    def _check_modalities(self) -> HybridConfig:
        if self.modalities is not None and not self.modalities and not self.use_llm_features:
            raise ValueError("modalities must name at least one item modality (or be null for all stored)")
        return self


class SASRecConfig(_Strict):
    # genre_core/models/sasrec.py; defaults checked on the validation splits of MovieLens 100K and Beauty
    dim: int = Field(64, ge=1)  # embedding / hidden size (divisible by heads)
    heads: int = Field(2, ge=1)  # attention heads per block
    layers: int = Field(2, ge=1)  # pre-LN transformer blocks
    max_len: int = Field(50, ge=1)  # most recent history events the encoder reads
    dropout: float = Field(0.2, ge=0, lt=1)  # on embeddings and block outputs (training only)
    id_dropout: float = Field(0.1, ge=0, le=1)  # share of item ids dropped per step so content stands alone
    modalities: list[str] | None = None  # None: every stored item modality (text, image, text_llm, ...)
    loss: Literal["softmax", "sampled_softmax"] = "softmax"  # full softmax over the trained catalogue
    negatives: int = Field(256, ge=1)  # uniform negatives per batch for sampled_softmax
    negative_weight: float = Field(1.0, ge=0)  # weight of the impression-aware term: each target above the
    # explicit negatives (events role: negative) between its input event and it; 0 or no negatives: off
    max_negatives: int = Field(64, ge=1)  # explicit negatives used per position (the earliest first)
    lr: float = Field(1e-3, gt=0)  # Adam learning rate
    weight_decay: float = Field(0.0, ge=0)  # Adam L2
    batch_size: int = Field(128, ge=1)  # users (one history window each) per step
    epochs: int = Field(40, ge=1)  # upper bound; early stopping picks the best epoch on validation
    patience: int = Field(4, ge=1)  # evaluations without improvement before stopping


class BlendConfig(_Strict):
    # genre_core/models/blend.py: members fitted as usual, weights fitted on the validation split
    members: list[str] = Field(default_factory=lambda: ["hybrid", "sasrec", "itemknn", "popularity"])  # registered
    step: float = Field(0.1, gt=0, le=0.5)  # weight grid step: weights are multiples of it, summing to 1
    metric: str = "ndcg@10"  # validation metric the weights maximise
    valid_users: int = Field(3000, ge=1)  # validation users sampled (seeded) to fit the weights on
    # users whose training history has at most this many events are scored with the cold weights (0: off)
    cold_max_history: int = Field(5, ge=0)
    # the cold weights are fitted on the sampled validation users cut to their first this many training events
    # (as train.split.cold_user_history keeps for cold users)
    cold_history: int = Field(3, ge=1)
    # a mix of members must beat the best single member on validation by this relative margin to be used (else that
    # member alone gets weight 1): small validation gains of a mix are noise more often than not (0: plain argmax)
    min_gain: float = Field(0.01, ge=0.0)
    # ... and beat it in at least this share of paired bootstrap resamples of the validation users (0: off): with a
    # few hundred cold validation users a 1% gain can be noise (docs/llm-ablation.md, the cold-user slice)
    min_confidence: float = Field(0.95, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _check_members(self) -> BlendConfig:
        if len(self.members) < 2 or len(set(self.members)) != len(self.members) or "blend" in self.members:
            raise ValueError(f"members must name at least two distinct models other than blend, got {self.members}")
        from genre_core.models.registry import MODELS  # noqa: PLC0415 - the registry imports the model modules

        for name in self.members:
            MODELS.check(name)
        return self


class TrainConfig(BaseModel):
    """``train``: the models to train (registered names) and one section per model, ``train.<name>``, validated
    against that model class's ``Config`` (built-in sections are typed fields below; a plugin model's section is
    any other key naming a registered model)."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    seed: int = 42  # drives the split, initialisation, sampling: a CPU run repeats exactly
    device: Literal["auto", "cpu", "cuda"] = "auto"
    cpu_threads: int | None = Field(1, ge=1)  # torch threads while training on CPU (None: torch's default);
    # small models train fastest on one thread, and far faster than on two when other work shares the CPU
    amp: bool = True  # mixed precision (bf16/fp16 autocast) when training on a GPU; ignored on CPU
    models: list[str] = Field(default_factory=lambda: ["popularity", "itemknn", "bpr", "content", "hybrid", "sasrec",
                                                       "blend"])
    split: SplitConfig = SplitConfig()
    k_values: list[int] = Field(default_factory=lambda: [10, 20])  # cut-offs of Recall/NDCG/HitRate/coverage (10, 20 always)
    early_stopping_metric: str = "ndcg@10"  # validation metric watched by early stopping
    eval_every: int = Field(1, ge=1)  # epochs between validation evaluations
    refit: bool = True  # after early stopping, refit on train + validation for the best number of epochs
    skip_unchanged: bool = True  # skip training when the data/config fingerprint matches the champion's run
    llm_ablation: bool = True  # with hybrid.use_llm_features/use_profiles/use_cold_gen: also train without them
    register_model: str | None = "blend"  # the model registered as tracking.registered_model (None: none)
    popularity: PopularityConfig = PopularityConfig()
    itemknn: ItemKNNConfig = ItemKNNConfig()
    bpr: BPRConfig = BPRConfig()
    content: ContentConfig = ContentConfig()
    hybrid: HybridConfig = HybridConfig()
    sasrec: SASRecConfig = SASRecConfig()
    blend: BlendConfig = Field(default_factory=BlendConfig)  # members checked against MODELS on use

    @field_validator("models")
    @classmethod
    def _registered(cls, v: list[str]) -> list[str]:
        from genre_core.models.registry import MODELS  # noqa: PLC0415 - the registry imports the model modules

        return [MODELS.check(name) for name in v]

    @model_validator(mode="after")
    def _plugin_sections(self) -> TrainConfig:
        from genre_core.models.registry import MODELS  # noqa: PLC0415
        from genre_core.registry import validate_plugin_sections  # noqa: PLC0415

        validate_plugin_sections(self, MODELS, "train")
        return self

    def section(self, name: str) -> BaseModel:
        """The typed config section of model ``name``: ``train.<name>``, or its ``Config`` defaults."""
        from genre_core.models.registry import MODELS  # noqa: PLC0415
        from genre_core.registry import section_for  # noqa: PLC0415

        out = section_for(self, MODELS, name)
        return out if out is not None else MODELS.get(name).Config()

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if not self.models:
            raise ValueError("models must list at least one model")
        if len(set(self.models)) != len(self.models):
            raise ValueError(f"models lists a name twice: {self.models}")
        if any(k < 1 for k in self.k_values):
            raise ValueError("k_values must be positive integers")
        return self
