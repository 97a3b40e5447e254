"""GENRE's batched CPU engine (``llm.backend: llama_engine``): at float32 it reproduces ``transformers`` greedy
tokens prompt by prompt through every path of the engine (shared prefix, length-sorted prefill groups, continuous
batching with refills, cache compaction, stop tokens, sampling); unsupported models and options fail naming what."""
from __future__ import annotations

import pytest
import torch

from genre_core.llm.backends import LLMRequest, get_backend
from genre_core.llm.config import LLMConfig
from genre_core.llm.llama_engine import LlamaEngine, _common_prefix
from genre_core.llm.pipeline import run_enrich


def _tiny(gqa: bool = True, eos_weight: float = 0.0, seed: int = 0):  # noqa: ANN202
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=97, hidden_size=48, intermediate_size=96, num_hidden_layers=3,
                      num_attention_heads=6, num_key_value_heads=2 if gqa else 6, max_position_embeddings=128,
                      tie_word_embeddings=True, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        model.model.embed_tokens.weight[2] *= eos_weight  # tied head: scale the end token's logit
    return model


def _prompts(n: int, prefix: int, seed: int = 1) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    head = torch.randint(3, 97, (prefix,), generator=g).tolist()
    lens = torch.randint(1, 20, (n,), generator=g).tolist()
    return [head + torch.randint(3, 97, (k,), generator=g).tolist() for k in lens]


def _hf_greedy(model, prompt: list[int], max_new: int, stop: int = 2) -> list[int]:  # noqa: ANN001
    with torch.inference_mode():
        out = model.generate(torch.tensor([prompt]), max_new_tokens=max_new, do_sample=False, pad_token_id=0,
                             eos_token_id=stop)[0, len(prompt):].tolist()
    return out[: out.index(stop)] if stop in out else out


@pytest.mark.parametrize(("batch", "refill", "gqa"), [(32, None, True), (4, 1, True), (3, 2, False)])
def test_float32_engine_reproduces_transformers_greedy(batch, refill, gqa):
    model = _tiny(gqa=gqa)
    prompts = _prompts(11, prefix=9)
    max_new = [3 + i % 9 for i in range(len(prompts))]  # different lengths: rows finish at different steps
    done: list[int] = []
    out = LlamaEngine(model, torch.float32).generate(prompts, max_new, {2}, batch_size=batch, refill=refill,
                                                     prefill_tokens=40, on_done=done.append)
    assert out == [_hf_greedy(model, p, m) for p, m in zip(prompts, max_new)]
    assert sorted(done) == list(range(len(prompts)))  # every prompt finished exactly once


def test_stop_token_ends_a_row_and_its_slot_is_reused():
    model = _tiny(eos_weight=6.0, seed=3)  # a strong end token: some rows stop early
    prompts = _prompts(9, prefix=5, seed=4)
    out = LlamaEngine(model, torch.float32).generate(prompts, [12] * 9, {2}, batch_size=2, refill=1)
    expected = [_hf_greedy(model, p, 12) for p in prompts]
    assert out == expected
    assert any(len(o) < 12 for o in expected), "the test needs rows that stop early"


def test_no_shared_prefix_and_single_token_prompts():
    model = _tiny()
    prompts = [[5], [7, 8], [9, 10, 11]]
    assert _common_prefix(prompts) == 0
    out = LlamaEngine(model, torch.float32).generate(prompts, [4, 4, 4], {2}, batch_size=2)
    assert out == [_hf_greedy(model, p, 4) for p in prompts]
    assert _common_prefix([[1, 2, 3], [1, 2, 3]]) == 2  # every prompt keeps a token of its own


def test_bfloat16_engine_runs_close_to_float32():
    model = _tiny()
    prompts = _prompts(6, prefix=9)
    fp32 = LlamaEngine(model, torch.float32).generate(prompts, [8] * 6, {2}, batch_size=4)
    bf16 = LlamaEngine(model, torch.bfloat16).generate(prompts, [8] * 6, {2}, batch_size=4)
    assert [len(o) for o in bf16] == [8] * 6
    first_same = sum(a[0] == b[0] for a, b in zip(fp32, bf16))
    assert first_same >= 4, (fp32, bf16)  # the first token is almost always the same at bfloat16


def test_sampling_is_seeded():
    model = _tiny()
    prompts = _prompts(4, prefix=3)
    eng = LlamaEngine(model, torch.float32)
    a = eng.generate(prompts, [6] * 4, {2}, batch_size=2, temperature=1.0, seed=7)
    b = eng.generate(prompts, [6] * 4, {2}, batch_size=2, temperature=1.0, seed=7)
    c = eng.generate(prompts, [6] * 4, {2}, batch_size=2, temperature=1.0, seed=8)
    assert a == b and a != c


def test_unsupported_models_and_limits_fail_naming_what():
    from transformers import GPT2Config, GPT2LMHeadModel

    with pytest.raises(ValueError, match="'gpt2' is not supported"):
        LlamaEngine(GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50)))
    eng = LlamaEngine(_tiny(), torch.float32)
    with pytest.raises(ValueError, match="exceeds the model's 128 positions"):
        eng.generate([[5] * 120], [20], {2})
    with pytest.raises(ValueError, match="empty prompt"):
        eng.generate([[5], []], [2, 2], {2})
    assert eng.generate([], [], {2}) == []


REQUESTS = [LLMRequest("a", "you write short", "title space robot", 6),
            LLMRequest("b", "you write", "love story in the city", 3),
            LLMRequest("c", "you write short", "dark night city", 5)]


def _cfg(model: str, **kw: object) -> LLMConfig:
    return LLMConfig(**{"backend": "llama_engine", "model": model, "device": "cpu", "cpu_threads": 1, **kw})


def test_backend_float32_matches_the_transformers_backend_prompt_by_prompt(genre_home, tiny_lm):
    eng = get_backend(_cfg(str(tiny_lm), dtype="fp32", batch_size=2))
    hf = get_backend(LLMConfig(backend="transformers", model=str(tiny_lm), device="cpu", batch_size=1))
    got, ref = eng.generate(REQUESTS), hf.generate(REQUESTS)
    assert [r.status for r in got] == ["ok"] * 3, [r.error for r in got]
    assert [r.output for r in got] == [r.output for r in ref]
    assert [r.tokens for r in got] == [r.tokens for r in ref]
    assert eng.model_id == f"{tiny_lm}@engine-fp32"
    assert eng.chunk_size == 8  # batch_size x 4: a call has prompts to refill finished rows with


def test_backend_refuses_options_it_does_not_implement(tiny_lm):
    with pytest.raises(ValueError, match="repetition_penalty"):
        get_backend(_cfg(str(tiny_lm), repetition_penalty=1.2))
    with pytest.raises(ValueError, match="fp16"):
        get_backend(_cfg(str(tiny_lm), dtype="fp16"))


def test_too_long_prompt_is_a_recorded_failure(genre_home, tiny_lm):
    long = LLMRequest("x", "you write", " ".join(["robot"] * 300), 4)
    res = get_backend(_cfg(str(tiny_lm), dtype="fp32")).generate([long, REQUESTS[0]])
    assert res[0].status == "failed" and "prompt too long" in res[0].error
    assert res[1].status == "ok"


def test_enrich_stage_through_the_engine_then_cache(warehouse_cfg, tiny_lm):
    llm = warehouse_cfg.llm.model_copy(update={"backend": "llama_engine", "model": str(tiny_lm), "device": "cpu",
                                               "dtype": "fp32", "embed": False, "item_attribute": None})
    cfg = warehouse_cfg.model_copy(update={"llm": llm})
    first = run_enrich(cfg, progress=False)
    assert (first["calls"], first["failures"], first["pending"]) == (6, 0, 0)
    assert first["model"].endswith("@engine-fp32")
    again = run_enrich(cfg, progress=False)
    assert (again["calls"], again["cache_hits"]) == (0, 6)


def test_each_prompt_is_checked_against_its_own_output_limit():
    """A long prompt with a short limit beside a short prompt with a long one: both fit (128 positions), though
    the longest prompt plus the largest limit would not."""
    model = _tiny()
    prompts = [[5] * 100, [6, 7]]
    out = LlamaEngine(model, torch.float32).generate(prompts, [4, 40], {2}, batch_size=2)
    assert out == [_hf_greedy(model, p, m) for p, m in zip(prompts, [4, 40])]
    with pytest.raises(ValueError, match=">= 1"):
        LlamaEngine(model, torch.float32).generate(prompts, [0, 4], {2})


def test_backend_stops_at_every_end_token_of_the_generation_config(genre_home, tmp_path):
    """A chat model whose generation config lists more end tokens than its tokenizer's eos: the engine stops at
    each, as transformers does (same outputs and token counts)."""
    from llm_helpers import build_tiny_lm
    from transformers import GenerationConfig

    folder = build_tiny_lm(tmp_path / "multi_eos", seed=5)
    hf = get_backend(LLMConfig(backend="transformers", model=str(folder), device="cpu", batch_size=1))
    plain = hf.generate(REQUESTS)
    words = hf._load_tokenizer()  # the second word of the first answer becomes an extra end token
    first = words.convert_tokens_to_ids(plain[0].output.split()[1])
    GenerationConfig(eos_token_id=[3, first], pad_token_id=0, bos_token_id=2).save_pretrained(folder)
    ref = get_backend(LLMConfig(backend="transformers", model=str(folder), device="cpu", batch_size=1)).generate(
        REQUESTS)
    got = get_backend(_cfg(str(folder), dtype="fp32")).generate(REQUESTS)
    assert [r.tokens for r in got] == [r.tokens for r in ref]
    # the transformers backend decodes the end token with the answer (real end tokens are special and vanish;
    # this one is a plain word), the engine leaves it out
    word = plain[0].output.split()[1]
    assert [r.output for r in got] == [r.output.removesuffix(f" {word}") for r in ref]
    assert got[0].output == plain[0].output.split()[0]
    assert [r.tokens for r in ref] != [r.tokens for r in plain]  # the extra end token did stop something
