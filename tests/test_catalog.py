"""The app's catalog (finding served checkpoints by name and kind) and the cache behind its
services (values computed once, the least recently used dropped past the size)."""

from __future__ import annotations

import pytest

from explorer.ui.services import Memo


def test_a_checkpoint_is_found_by_name_and_kind(catalog):
    assert catalog.checkpoint("mnist-vae").model.name == "vae"
    assert catalog.checkpoint("mnist-vae", "latent") is catalog.latent["mnist-vae"]
    assert catalog.checkpoint("mnist-pixelcnn", "autoregressive") is catalog.autoregressive["mnist-pixelcnn"]
    assert catalog.checkpoint("mnist-pixelcnn") is catalog.autoregressive["mnist-pixelcnn"]
    with pytest.raises(ValueError, match=r"Unknown model 'mnist-pixelcnn'\. Available: .*mnist-vae"):
        catalog.checkpoint("mnist-pixelcnn", "latent")
    with pytest.raises(ValueError, match=r"Unknown autoregressive model 'mnist-vae'\. Available: .*mnist-pixelcnn"):
        catalog.checkpoint("mnist-vae", "autoregressive")
    with pytest.raises(ValueError, match="Unknown model None"):
        catalog.checkpoint(None)
    with pytest.raises(ValueError, match="kind must be one of"):
        catalog.checkpoint("mnist-vae", "classifier")
    assert "mnist-classifier" not in catalog.latent_names + catalog.autoregressive_names


def test_memo_computes_each_value_once():
    calls = []
    memo: Memo[int] = Memo()
    for _ in range(3):
        assert memo.get("a", lambda: calls.append("a") or 1) == 1
    assert calls == ["a"]


def test_a_sized_memo_forgets_the_least_recently_used():
    memo: Memo[str] = Memo(size=2)
    memo.get(1, lambda: "one")
    memo.get(2, lambda: "two")
    memo.get(1, lambda: pytest.fail("1 was remembered"))   # 1 is now the most recent
    memo.get(3, lambda: "three")                          # 2 goes
    assert memo.get(1, lambda: "again") == "one" and memo.get(2, lambda: "recomputed") == "recomputed"
